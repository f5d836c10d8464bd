"""What a metric is (sacrebleu's habit): a small object that computes its own statistics and its own signature.

One class per metric and recipe (``compat``), found through :data:`REGISTRY`, keyed by ``(metric, compat)``:

=========  ==========================================  ==========================================
metric     compat mmskin (MM-Skin's VQA_test.py)       compat standard
=========  ==========================================  ==========================================
bleu       nltk corpus_bleu, whitespace tokens         sacrebleu (13a)
rouge      the ``rouge`` package 1.0.1 recipe          rouge-score with the Porter stemmer
meteor     nltk meteor_score, whitespace tokens        nltk meteor_score, lower-cased 13a tokens
recall     word sets, whitespace tokens                word sets, lower-cased 13a tokens
bertscore  bert_score recipe (bert-base-uncased L9)    bert_score recipe (all-MiniLM-L6-v2)
=========  ==========================================  ==========================================

Entries are ``"module:Class"`` strings inside this package, imported on first use (sacrebleu, rouge-score and
torch load only when their metric runs).

    >>> from mmskin.evaluate.metrics.base import Pairs, get_metric
    >>> recall = get_metric("recall", "standard")
    >>> recall.compute(Pairs(["A NEVUS."], ["a nevus"])).values["recall"].tolist(), recall.signature()
    ([1.0], {'recall': 'token-recall|word sets|tok:13a|case:lc'})
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

GROUPS: dict[str, tuple[str, ...]] = {
    "bleu": ("bleu1", "bleu2", "bleu3", "bleu4"),
    "meteor": ("meteor",),
    "rouge": ("rouge1", "rouge2", "rougeL"),
    "bertscore": ("bertscore_p", "bertscore_r", "bertscore_f1"),
    "recall": ("recall",),
}
KEYS = (
    *GROUPS["bleu"],
    *GROUPS["meteor"],
    *GROUPS["rouge"],
    *GROUPS["bertscore"],
    *GROUPS["recall"],
)
METRIC_NAMES = tuple(GROUPS)
COMPATS = ("mmskin", "standard")

REGISTRY: dict[tuple[str, str], str] = {
    ("bleu", "mmskin"): "bleu:NltkCorpusBleu",
    ("bleu", "standard"): "bleu:SacreBleu",
    ("rouge", "mmskin"): "rouge:Rouge101",
    ("rouge", "standard"): "rouge:RougeScore",
    ("meteor", "mmskin"): "meteor:MeteorWhitespace",
    ("meteor", "standard"): "meteor:Meteor13a",
    ("recall", "mmskin"): "recall:RecallWhitespace",
    ("recall", "standard"): "recall:Recall13a",
    ("bertscore", "mmskin"): "bertscore:BertScore",
    ("bertscore", "standard"): "bertscore:BertScore",
}


# ---- tokenisers (each compat's words) ---------------------------------------------------------------------


class Whitespace:
    """MM-Skin's words: ``str.split()``, case kept."""

    label = "tok:whitespace|case:mixed"
    lowercases = False

    def __call__(self, texts: Sequence[str]) -> list[list[str]]:
        return [t.split() for t in texts]


class Lower13a:
    """sacrebleu's 13a tokeniser on lower-cased text."""

    label = "tok:13a|case:lc"
    lowercases = True

    def __call__(self, texts: Sequence[str]) -> list[list[str]]:
        from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

        tok = Tokenizer13a()
        return [tok(t.lower()).split() for t in texts]


WHITESPACE = Whitespace()
LOWER_13A = Lower13a()


class Pairs:
    """Predictions (after the empty rule) and answers; each tokeniser's words are computed once and shared."""

    def __init__(self, hyps: Sequence[str], refs: Sequence[str]) -> None:
        self.hyps, self.refs = list(hyps), list(refs)
        self._tokens: dict[str, tuple[list[list[str]], list[list[str]]]] = {}

    def __len__(self) -> int:
        return len(self.hyps)

    def tokens(self, tokenizer: Whitespace | Lower13a) -> tuple[list[list[str]], list[list[str]]]:
        if tokenizer.label not in self._tokens:
            self._tokens[tokenizer.label] = (tokenizer(self.hyps), tokenizer(self.refs))
        return self._tokens[tokenizer.label]


# ---- metrics ----------------------------------------------------------------------------------------------


@dataclass
class Scored:
    """What a metric computed for every pair: per-pair values (mean metrics) or per-pair statistics (corpus
    metrics), and counts worth reporting (e.g. pairs the reference package would have refused)."""

    values: dict[str, np.ndarray] = field(default_factory=dict)
    stats: np.ndarray | None = None
    counts: dict[str, int] = field(default_factory=dict)


Progress = Callable[[int], None]


class Metric:
    """One metric in one recipe: ``compute`` per-pair numbers, ``signature`` per key."""

    name: ClassVar[str]
    compat: ClassVar[str]
    packages: ClassVar[tuple[str, ...]] = ()  # distributions whose version shapes the numbers
    fork: ClassVar[bool] = False  # slow pure Python: worth a forked process on large inputs
    reports_progress: ClassVar[bool] = (
        False  # compute() advances the progress itself (else: 1 step when done)
    )

    def __init__(self, **_: Any) -> None:
        pass

    @property
    def keys(self) -> tuple[str, ...]:
        return GROUPS[self.name]

    def compute(self, pairs: Pairs, progress: Progress | None = None) -> Scored:
        raise NotImplementedError

    def progress_steps(self, pairs: Pairs) -> int:
        return 1

    def signature(self) -> dict[str, str]:
        raise NotImplementedError


class CorpusMetric(Metric):
    """A metric computed from summed per-pair statistics (corpus BLEU), not as a mean of per-pair values."""

    def corpus(self, sums: np.ndarray) -> list[float]:
        """One value per key from statistics summed over the pairs."""
        raise NotImplementedError

    def corpus_batch(self, sums: np.ndarray) -> np.ndarray:
        """(B, len(keys)) values from B rows of summed statistics (bootstrap resamples)."""
        return np.array([self.corpus(s) for s in sums])


def metric_class(name: str, compat: str) -> type[Metric]:
    """The class registered for ``(name, compat)``; ValueError naming the choices otherwise."""
    if compat not in COMPATS:
        raise ValueError(f"unknown compat {compat!r} (choose from {', '.join(COMPATS)})")
    entry = REGISTRY.get((name, compat))
    if entry is None:
        raise ValueError(f"unknown metric {name!r} (choose from {', '.join(METRIC_NAMES)})")
    module, _, attr = entry.partition(":")
    return getattr(importlib.import_module(f"{__package__}.{module}"), attr)


def get_metric(name: str, compat: str, **options: Any) -> Metric:
    """An instance of the registered class; ``options`` (e.g. ``bertscorer``) go to its constructor."""
    return metric_class(name, compat)(**options)


def nltk_version() -> str:
    from ...provenance import package_versions

    return package_versions(["nltk"])["nltk"]
