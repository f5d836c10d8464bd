"""Token recall, MM-Skin's definition: |prediction words ∩ answer words| / |answer words|, over word sets.

    >>> from mmskin.evaluate.metrics.recall import token_recall
    >>> token_recall("a red papule".split(), "a red scaly papule".split())
    0.75

An answer without words scores 0 (the definition divides by zero there). :class:`RecallWhitespace` (compat
mmskin) and :class:`Recall13a` (compat standard) are the metric objects.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from .base import LOWER_13A, WHITESPACE, Metric, Pairs, Progress, Scored


def token_recall(hyp: Sequence[str], ref: Sequence[str]) -> float:
    r = set(ref)
    if not r:
        return 0.0
    return len(r.intersection(hyp)) / len(r)


def token_recall_many(hyps: Iterable[Sequence[str]], refs: Iterable[Sequence[str]]) -> np.ndarray:
    return np.fromiter((token_recall(h, r) for h, r in zip(hyps, refs)), dtype=np.float64)


class RecallWhitespace(Metric):
    """compat mmskin: recall over whitespace word sets, case kept."""

    name, compat = "recall", "mmskin"
    tokenizer = WHITESPACE

    def compute(self, pairs: Pairs, progress: Progress | None = None) -> Scored:
        return Scored({"recall": token_recall_many(*pairs.tokens(self.tokenizer))})

    def signature(self) -> dict[str, str]:
        return {"recall": f"token-recall|word sets|{self.tokenizer.label}"}


class Recall13a(RecallWhitespace):
    """compat standard: recall over lower-cased 13a word sets."""

    compat, packages = "standard", ("sacrebleu",)
    tokenizer = LOWER_13A
