"""Token recall, MM-Skin's definition: |prediction words ∩ answer words| / |answer words|, over word sets.

    >>> from mmskin.evaluate.metrics.recall import token_recall
    >>> token_recall("a red papule".split(), "a red scaly papule".split())
    0.75

An answer without words scores 0 (the definition divides by zero there).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np


def token_recall(hyp: Sequence[str], ref: Sequence[str]) -> float:
    r = set(ref)
    if not r:
        return 0.0
    return len(r.intersection(hyp)) / len(r)


def token_recall_many(hyps: Iterable[Sequence[str]], refs: Iterable[Sequence[str]]) -> np.ndarray:
    return np.fromiter((token_recall(h, r) for h, r in zip(hyps, refs)), dtype=np.float64)
