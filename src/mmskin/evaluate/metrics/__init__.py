"""Open-VQA metrics: BLEU-1..4, METEOR, ROUGE-1/2/L, BERTScore P/R/F1, token recall, with bootstrap intervals.

Two recipes (``compat``), each metric a small object of :mod:`.base`'s registry that computes its own per-pair
statistics and its own signature:

* ``mmskin`` reproduces MM-Skin's VQA_test.py: nltk corpus BLEU and METEOR on whitespace tokens, the ``rouge``
  package 1.0.1, recall over whitespace word sets, BERTScore (bert-base-uncased layer 9 by default). Every
  metric is a native reimplementation, checked equal to the reference packages in the tests.
* ``standard``: sacrebleu BLEU (13a), rouge-score with the Porter stemmer, METEOR and recall on lower-cased 13a
  tokens, BERTScore (packaged all-MiniLM-L6-v2 by default); each number carries its signature.

Empty predictions (:data:`EMPTY_RULES`): a prediction with no letter or digit (empty, blank, only punctuation) is
counted in both recipes. ``standard`` scores it as the empty string: 0 on every per-pair metric, length 0 in corpus
BLEU. ``mmskin`` scores every prediction as written, as VQA_test.py does ("?" is a word to BLEU, METEOR and recall);
only where the ``rouge`` package raises (a side with no text between dots: empty or only dots) is that pair's ROUGE
0 (VQA_test.py has no number there: it stops), and an empty side's BERTScore is 0.

    >>> from mmskin.evaluate.metrics import score_pairs
    >>> s = score_pairs(["a red papule", ""], ["a red scaly papule", "a plaque"], metrics=("bleu", "recall"))
    >>> s.summary()["recall"], s.n_empty
    (0.375, 1)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from .base import (
    COMPATS,
    GROUPS,
    KEYS,
    METRIC_NAMES,
    CorpusMetric,
    Metric,
    Pairs,
    Scored,
    get_metric,
    metric_class,
)

__all__ = [
    "COMPATS",
    "EMPTY_RULES",
    "GROUPS",
    "KEYS",
    "METRIC_NAMES",
    "PairScores",
    "get_metric",
    "is_empty",
    "metric_packages",
    "parse_metrics",
    "progress_total",
    "score_pairs",
    "signatures",
]

_WORDCHAR = re.compile(r"[^\W_]")  # a letter or digit, any script
# the order of the signature block in results files and printed tables (kept from the first results files)
SIGNATURE_ORDER = ("bleu", "rouge", "meteor", "recall", "bertscore")
# how each recipe scores a prediction without a letter or digit (recorded in the results' provenance)
EMPTY_RULES = {
    "mmskin": "scored as written, as VQA_test.py; ROUGE 0 where the rouge package raises (empty or only dots), "
    "BERTScore 0 for an empty side; counted",
    "standard": "no letter or digit -> scored as the empty string (0, counted)",
}


def is_empty(text: str) -> bool:
    """No letter or digit: empty, blank, or punctuation only."""
    return _WORDCHAR.search(text) is None


def parse_metrics(spec: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"bleu,rouge"`` -> ("bleu", "rouge"); ValueError naming an unknown metric."""
    if spec is None:
        return METRIC_NAMES
    names = [m.strip().lower() for m in (spec.split(",") if isinstance(spec, str) else spec) if m.strip()]
    bad = [m for m in names if m not in GROUPS]
    if bad or not names:
        raise ValueError(
            f"unknown metric {bad[0]!r} (choose from {', '.join(METRIC_NAMES)})" if bad else "no metric"
        )
    return tuple(m for m in METRIC_NAMES if m in names)


def metric_packages(compat: str, metrics: Sequence[str]) -> list[str]:
    """The distributions whose versions shape the selected metrics' numbers (for the provenance block)."""
    pkgs = {"numpy"}
    for m in metrics:
        pkgs.update(metric_class(m, compat).packages)
    return sorted(pkgs)


@dataclass
class PairScores:
    """Per-pair values (mean metrics) and per-pair statistics (corpus metrics); aggregates any subset of pairs."""

    compat: str
    metrics: tuple[str, ...]
    n: int
    values: dict[str, np.ndarray] = field(default_factory=dict)  # key -> (n,) per-pair scores
    corpus: list[tuple[CorpusMetric, np.ndarray]] = field(default_factory=list)  # metric, (n, s) statistics
    counts: dict[str, int] = field(default_factory=dict)
    n_empty: int = 0

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(k for m in self.metrics for k in GROUPS[m])

    @property
    def rouge_rejected(self) -> int:
        """Pairs the ``rouge`` package would raise on (scored 0); compat mmskin only."""
        return int(self.counts.get("rouge_rejected", 0))

    def add(self, scored: Scored, metric: Metric) -> None:
        self.values.update(scored.values)
        if scored.stats is not None:
            assert isinstance(metric, CorpusMetric)
            self.corpus.append((metric, scored.stats))
        for k, v in scored.counts.items():
            self.counts[k] = self.counts.get(k, 0) + v

    def summary(self, idx: np.ndarray | None = None) -> dict[str, float | int | None]:
        """``{"n": …, key: value}`` over the pairs ``idx`` (all by default); deselected metrics are None."""
        idx = np.arange(self.n) if idx is None else np.asarray(idx)
        out: dict[str, float | int | None] = {"n": int(len(idx))}
        for k in KEYS:
            out[k] = None
        if len(idx) == 0:
            return out
        for metric, stats in self.corpus:
            for k, v in zip(metric.keys, metric.corpus(stats[idx].sum(axis=0))):
                out[k] = float(v)
        for k, arr in self.values.items():
            out[k] = float(np.mean(arr[idx]))
        return out

    def ci95(
        self, n_boot: int, seed: int, group: str = "overall", idx: np.ndarray | None = None
    ) -> dict[str, list[float] | None]:
        """Percentile-bootstrap 95% interval of every selected metric over the pairs ``idx``."""
        from .bootstrap import percentile_ci, rng_for

        idx = np.arange(self.n) if idx is None else np.asarray(idx)
        out: dict[str, list[float] | None] = {k: None for k in KEYS}
        if len(idx) == 0 or n_boot <= 0:
            return out
        mean_keys = list(self.values)
        cols = (
            np.stack([self.values[k][idx] for k in mean_keys], axis=1)
            if mean_keys
            else np.zeros((len(idx), 0))
        )
        corpus = [(metric, stats[idx].astype(np.float64)) for metric, stats in self.corpus]
        n = len(idx)

        def statistic(counts: np.ndarray) -> np.ndarray:
            parts = [counts @ cols / n]
            parts += [metric.corpus_batch(counts @ stats) for metric, stats in corpus]
            return np.concatenate(parts, axis=1)

        ci = percentile_ci(n, n_boot, rng_for(seed, group), statistic)
        names = mean_keys + [k for metric, _ in corpus for k in metric.keys]
        for k, (lo, hi) in zip(names, ci):
            out[k] = [float(lo), float(hi)]
        return out


PARALLEL_MIN_PAIRS = 1000


def _in_child(fn: Callable, *args) -> Callable[[], object]:
    """Start ``fn(*args)`` in a forked process; returns a function that waits for its result.

    Falls back to running in this process when fork is unavailable or the child dies.
    """
    import multiprocessing as mp
    import os

    if "fork" not in mp.get_all_start_methods() or (os.cpu_count() or 1) < 2:
        return lambda: fn(*args)
    ctx = mp.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)

    def target() -> None:
        try:
            send.send(("ok", fn(*args)))
        except BaseException as e:  # noqa: BLE001 - reported to the parent, which recomputes
            send.send(("error", repr(e)))
        finally:
            send.close()

    proc = ctx.Process(target=target, daemon=True)
    proc.start()
    send.close()

    def result():
        try:
            status, value = recv.recv()
        except (EOFError, OSError):
            status, value = "error", "worker died"
        finally:
            recv.close()
            proc.join()
        return value if status == "ok" else fn(*args)

    return result


def score_pairs(
    predictions: Sequence[str],
    answers: Sequence[str],
    compat: str = "mmskin",
    metrics: Sequence[str] = METRIC_NAMES,
    bertscorer=None,
    progress: Callable[[int], None] | None = None,
    parallel: bool = True,
) -> PairScores:
    """Score every (prediction, answer) pair once; aggregate with :meth:`PairScores.summary` / ``ci95``.

    ``progress(n)`` is called as each metric finishes (and per BERTScore embedding batch). With ``parallel`` and
    at least 1,000 pairs, the slow pure-Python metrics (ROUGE) run in a forked process while the others run here.
    """
    names = parse_metrics(list(metrics))
    chosen = [get_metric(m, compat, bertscorer=bertscorer) for m in names]
    empty = np.fromiter((is_empty(p) for p in predictions), dtype=bool, count=len(predictions))
    blank = compat != "mmskin"  # EMPTY_RULES: mmskin scores every prediction as written
    pairs = Pairs(["" if e and blank else p for p, e in zip(predictions, empty)], answers)
    out = PairScores(compat=compat, metrics=names, n=len(pairs), n_empty=int(empty.sum()))

    def done(metric: Metric, scored: Scored) -> None:
        out.add(scored, metric)
        if progress is not None and not metric.reports_progress:
            progress(1)

    # slow metrics start first (in a forked child when worth it) and are collected last
    fork = parallel and len(pairs) >= PARALLEL_MIN_PAIRS
    slow = [(m, _in_child(m.compute, pairs) if fork else None) for m in chosen if m.fork]
    for metric in chosen:
        if not metric.fork:
            done(metric, metric.compute(pairs, progress))
    for metric, result in slow:
        done(metric, result() if result is not None else metric.compute(pairs))
    if blank:
        for arr in out.values.values():
            arr[empty] = 0.0
    return out


def progress_total(
    predictions: Sequence[str], answers: Sequence[str], compat: str, metrics: Sequence[str], bertscorer=None
) -> int:
    """How far :func:`score_pairs` advances its ``progress``: each metric's steps (BERTScore: one per sentence)."""
    pairs = Pairs(["" if is_empty(p) and compat != "mmskin" else p for p in predictions], answers)
    return sum(get_metric(m, compat, bertscorer=bertscorer).progress_steps(pairs) for m in metrics)


def signatures(compat: str, metrics: Sequence[str], bertscorer=None) -> dict[str, str]:
    """One signature string per selected metric key: tokeniser, case, implementation, model and layer, versions."""
    sig: dict[str, str] = {}
    for m in SIGNATURE_ORDER:
        if m in metrics and (m != "bertscore" or bertscorer is not None):
            sig.update(get_metric(m, compat, bertscorer=bertscorer).signature())
    return sig
