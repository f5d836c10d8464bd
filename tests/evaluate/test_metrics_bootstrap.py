"""Bootstrap intervals: deterministic by seed, per group, and corpus BLEU recomputed per resample."""

from __future__ import annotations

import numpy as np
import pytest

from mmskin.evaluate.metrics import score_pairs
from mmskin.evaluate.metrics.bleu import nltk_bleu_stats, nltk_corpus_bleu, nltk_corpus_bleu_batch
from mmskin.evaluate.metrics.bootstrap import resample_counts

PAIRS = [
    ("a red papule on the arm", "a red scaly papule on the arm"),
    ("psoriasis plaques", "psoriasis with silvery plaques"),
    ("", "melanoma in situ"),
    ("the nevus is benign", "a benign nevus"),
    ("dermoscopy shows a pigment network", "dermoscopy shows an atypical pigment network"),
    ("no", "no, it is flat"),
] * 5


def _scores():
    return score_pairs([p for p, _ in PAIRS], [a for _, a in PAIRS], metrics=("bleu", "rouge", "recall"))


def test_same_seed_same_interval_other_seed_other_interval():
    s = _scores()
    a, b, c = s.ci95(300, seed=7), s.ci95(300, seed=7), s.ci95(300, seed=8)
    assert a == b
    assert a != c


def test_interval_brackets_the_estimate_and_deselected_are_none():
    s = _scores()
    est, ci = s.summary(), s.ci95(500, seed=0)
    for k in ("bleu1", "bleu4", "rouge1", "rougeL", "recall"):
        lo, hi = ci[k]
        assert 0.0 <= lo <= est[k] + 1e-12 and est[k] - 1e-12 <= hi <= 1.0, (k, lo, est[k], hi)
        assert hi > lo
    assert ci["meteor"] is None and ci["bertscore_f1"] is None


def test_groups_draw_independent_streams():
    s = _scores()
    idx = np.arange(0, len(PAIRS), 2)
    assert s.ci95(200, 0, "modality:a", idx) != s.ci95(200, 0, "modality:b", idx)


def test_resample_counts_sum_to_n():
    c = resample_counts(17, 50, np.random.default_rng(1))
    assert c.shape == (50, 17) and (c.sum(axis=1) == 17).all()


def test_vectorised_bleu_matches_scalar_on_resamples():
    stats = nltk_bleu_stats([p.split() for p, _ in PAIRS], [a.split() for _, a in PAIRS])
    counts = resample_counts(len(PAIRS), 40, np.random.default_rng(2))
    sums = counts @ stats
    batch = nltk_corpus_bleu_batch(sums)
    for row, got in zip(sums, batch):
        assert got == pytest.approx(nltk_corpus_bleu(row), rel=1e-9, abs=1e-300)
