"""Open-VQA metrics: BLEU-1..4, METEOR, ROUGE-1/2/L, BERTScore P/R/F1, token recall, with bootstrap intervals.

Two recipes (``compat``):

* ``mmskin`` reproduces MM-Skin's VQA_test.py: nltk corpus BLEU and METEOR on whitespace tokens, the ``rouge``
  package 1.0.1, recall over whitespace word sets, BERTScore (bert-base-uncased layer 9 by default). Every
  metric is a native reimplementation, checked equal to the reference packages in the tests.
* ``standard``: sacrebleu BLEU (13a), rouge-score with the Porter stemmer, METEOR and recall on lower-cased 13a
  tokens, BERTScore (packaged all-MiniLM-L6-v2 by default); each number carries its signature.

A prediction with no letter or digit (empty, blank, only punctuation) is scored as the empty string: 0 on every
per-pair metric, length 0 in corpus BLEU, and counted (the ``rouge`` package would raise on it).

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

KEYS = (
    "bleu1",
    "bleu2",
    "bleu3",
    "bleu4",
    "meteor",
    "rouge1",
    "rouge2",
    "rougeL",
    "bertscore_p",
    "bertscore_r",
    "bertscore_f1",
    "recall",
)
GROUPS: dict[str, tuple[str, ...]] = {
    "bleu": ("bleu1", "bleu2", "bleu3", "bleu4"),
    "meteor": ("meteor",),
    "rouge": ("rouge1", "rouge2", "rougeL"),
    "bertscore": ("bertscore_p", "bertscore_r", "bertscore_f1"),
    "recall": ("recall",),
}
METRIC_NAMES = tuple(GROUPS)
COMPATS = ("mmskin", "standard")
_WORDCHAR = re.compile(r"[^\W_]")  # a letter or digit, any script


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


@dataclass
class PairScores:
    """Per-pair values (mean metrics) and per-pair BLEU statistics; aggregates any subset of pairs."""

    compat: str
    metrics: tuple[str, ...]
    n: int
    values: dict[str, np.ndarray] = field(default_factory=dict)  # key -> (n,) per-pair scores
    bleu_stats: np.ndarray | None = None  # (n, 10) nltk or sacrebleu statistics
    n_empty: int = 0
    rouge_rejected: int = 0  # pairs the `rouge` package would raise on (scored 0)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(k for m in self.metrics for k in GROUPS[m])

    def _bleu(self, sums: np.ndarray) -> list[float]:
        from . import bleu

        if self.compat == "mmskin":
            return bleu.nltk_corpus_bleu(sums)
        return bleu.sacrebleu_from_stats(sums)

    def summary(self, idx: np.ndarray | None = None) -> dict[str, float | int | None]:
        """``{"n": …, key: value}`` over the pairs ``idx`` (all by default); deselected metrics are None."""
        idx = np.arange(self.n) if idx is None else np.asarray(idx)
        out: dict[str, float | int | None] = {"n": int(len(idx))}
        for k in KEYS:
            out[k] = None
        if len(idx) == 0:
            return out
        if self.bleu_stats is not None:
            for k, v in zip(GROUPS["bleu"], self._bleu(self.bleu_stats[idx].sum(axis=0))):
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
        stats = self.bleu_stats[idx].astype(np.float64) if self.bleu_stats is not None else None
        n = len(idx)

        def statistic(counts: np.ndarray) -> np.ndarray:
            parts = [counts @ cols / n]
            if stats is not None:
                sums = counts @ stats
                if self.compat == "mmskin":
                    from .bleu import nltk_corpus_bleu_batch

                    parts.append(nltk_corpus_bleu_batch(sums))
                else:
                    parts.append(np.array([self._bleu(s) for s in sums]))
            return np.concatenate(parts, axis=1)

        ci = percentile_ci(n, n_boot, rng_for(seed, group), statistic)
        names = mean_keys + (list(GROUPS["bleu"]) if stats is not None else [])
        for k, (lo, hi) in zip(names, ci):
            out[k] = [float(lo), float(hi)]
        return out


def _tokens_standard(texts: Sequence[str]) -> list[list[str]]:
    from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

    tok = Tokenizer13a()
    return [tok(t.lower()).split() for t in texts]


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
    progress: Callable[[str, int], None] | None = None,
    parallel: bool = True,
) -> PairScores:
    """Score every (prediction, answer) pair once; aggregate with :meth:`PairScores.summary` / ``ci95``.

    ``progress(stage, advance)`` is called as metrics finish (and per BERTScore embedding batch). With
    ``parallel`` and at least 1,000 pairs, ROUGE runs in a forked process while the other metrics run here.
    """
    if compat not in COMPATS:
        raise ValueError(f"unknown compat {compat!r} (choose from {', '.join(COMPATS)})")
    metrics = parse_metrics(list(metrics))
    if "bertscore" in metrics and bertscorer is None:
        raise ValueError("bertscore selected but no BertScorer given")
    empty = np.fromiter((is_empty(p) for p in predictions), dtype=bool, count=len(predictions))
    hyps = ["" if e else p for p, e in zip(predictions, empty)]
    refs = list(answers)
    out = PairScores(compat=compat, metrics=metrics, n=len(hyps), n_empty=int(empty.sum()))

    def done(stage: str) -> None:
        if progress is not None:
            progress(stage, 1)

    if compat == "mmskin":
        htok = [h.split() for h in hyps]
        rtok = [r.split() for r in refs]
    else:
        htok, rtok = _tokens_standard(hyps), _tokens_standard(refs)

    rouge_result = None
    if "rouge" in metrics:
        from . import rouge

        fn = rouge.rouge_mmskin if compat == "mmskin" else rouge.rouge_score_standard
        if parallel and len(hyps) >= PARALLEL_MIN_PAIRS:
            rouge_result = _in_child(fn, hyps, refs)
        else:
            value = fn(hyps, refs)
            rouge_result = lambda: value  # noqa: E731
    if "bleu" in metrics:
        from . import bleu

        out.bleu_stats = (
            bleu.nltk_bleu_stats(htok, rtok) if compat == "mmskin" else bleu.sacrebleu_stats(hyps, refs)
        )
        done("bleu")
    if "meteor" in metrics:
        from .meteor import Meteor

        out.values["meteor"] = Meteor().score_many(htok, rtok)
        done("meteor")
    if "bertscore" in metrics:
        cb = (lambda k: progress("bertscore", k)) if progress is not None else None
        p, r, f = bertscorer.score(hyps, refs, progress=cb)
        out.values["bertscore_p"], out.values["bertscore_r"], out.values["bertscore_f1"] = p, r, f
    if "recall" in metrics:
        from .recall import token_recall_many

        out.values["recall"] = token_recall_many(htok, rtok)
        done("recall")
    if rouge_result is not None:
        r = rouge_result()
        if compat == "mmskin":
            r, rejected = r
            out.rouge_rejected = int(rejected.sum())
        for k, col in zip(GROUPS["rouge"], r.T):
            out.values[k] = np.ascontiguousarray(col)
        done("rouge")
    for arr in out.values.values():
        arr[empty] = 0.0
    return out


def signatures(compat: str, metrics: Sequence[str], bertscorer=None) -> dict[str, str]:
    """One signature string per selected metric key: tokeniser, case, implementation, model and layer, versions."""
    from importlib.metadata import version

    sig: dict[str, str] = {}
    nltk_v = version("nltk")
    if compat == "mmskin":
        tok = "tok:whitespace|case:mixed"
        if "bleu" in metrics:
            for k, w in zip(GROUPS["bleu"], ("1,0,0,0", "1/2,1/2,0,0", "1/3,1/3,1/3,0", "1/4,1/4,1/4,1/4")):
                sig[k] = f"nltk-corpus_bleu(native)|weights:{w}|smooth:none|{tok}|nltk:{nltk_v}"
        if "rouge" in metrics:
            for k in GROUPS["rouge"]:
                sig[k] = f"rouge-1.0.1(native)|{k}|F avg|split:'.' then ' '|empty:0|case:mixed"
        if "meteor" in metrics:
            sig["meteor"] = (
                f"nltk-meteor_score(native)|alpha:0.9,beta:3,gamma:0.5|{tok}->lower|stem:porter|wordnet:3.0|nltk:{nltk_v}"
            )
        if "recall" in metrics:
            sig["recall"] = f"token-recall|word sets|{tok}"
    else:
        from .bleu import sacrebleu_signature
        from .rouge import rouge_score_signature

        tok = "tok:13a|case:lc"
        if "bleu" in metrics:
            for n, k in enumerate(GROUPS["bleu"], 1):
                sig[k] = f"sacrebleu|{sacrebleu_signature(n)}"
        if "rouge" in metrics:
            for k in GROUPS["rouge"]:
                sig[k] = rouge_score_signature()
        if "meteor" in metrics:
            sig["meteor"] = (
                f"nltk-meteor_score(native)|alpha:0.9,beta:3,gamma:0.5|{tok}|stem:porter|wordnet:3.0|nltk:{nltk_v}"
            )
        if "recall" in metrics:
            sig["recall"] = f"token-recall|word sets|{tok}"
    if "bertscore" in metrics and bertscorer is not None:
        s = bertscorer.signature()
        for k in GROUPS["bertscore"]:
            sig[k] = s
    return sig
