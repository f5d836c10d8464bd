"""Corpus BLEU-1..4 from per-pair n-gram statistics, computed once for all orders.

``compat mmskin``: the numbers of ``nltk.translate.bleu_score.corpus_bleu`` (no smoothing) on whitespace tokens
with weights (1,0,0,0), (0.5,0.5,0,0), (0.33,0.33,0.33,0), (0.25,0.25,0.25,0.25), exactly as MM-Skin's VQA_test.py
calls it (BLEU-3 weighs with 0.33, not 1/3: the weights sum to 0.99, so BLEU-3 comes out slightly higher, about 1 %
when the n-gram precisions are near 0.3). nltk computes the clipped n-gram counts of every order again for each of
the four calls; here they are counted once, vectorised over the whole corpus (n-grams become integer ids, counts
come from ``np.unique``), and kept per pair so a bootstrap resample only re-sums them.

    >>> from mmskin.evaluate.metrics.bleu import nltk_bleu_stats, nltk_corpus_bleu
    >>> stats = nltk_bleu_stats([["a", "cat"]], [["a", "cat", "sat"]])
    >>> [round(b, 4) for b in nltk_corpus_bleu(stats.sum(axis=0))]
    [0.6065, 0.6065, 0.0, 0.0]

``compat standard``: sacrebleu's corpus BLEU (13a tokeniser, exp smoothing) for max order 1..4, with its
signature. :class:`NltkCorpusBleu` and :class:`SacreBleu` are the two recipes as metric objects.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence

import numpy as np

from .base import WHITESPACE, CorpusMetric, Pairs, Progress, Scored, nltk_version

MAX_N = 4
# MM-Skin's BLEU-1..4 weights as VQA_test.py writes them; nltk computes precisions up to the longest weight tuple (4)
WEIGHTS: tuple[tuple[float, ...], ...] = (
    (1, 0, 0, 0),
    (0.5, 0.5, 0, 0),
    (0.33, 0.33, 0.33, 0),
    (0.25, 0.25, 0.25, 0.25),
)
# columns of a stats row: clipped matches for n=1..4, nltk denominators for n=1..4, hyp length, ref length
NUM = slice(0, MAX_N)
DEN = slice(MAX_N, 2 * MAX_N)
HYP_LEN = 2 * MAX_N
REF_LEN = 2 * MAX_N + 1


def _flatten(seqs: Sequence[Sequence[str]], vocab: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    ids = [vocab.setdefault(t, len(vocab)) for s in seqs for t in s]
    lens = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    return np.asarray(ids, dtype=np.int64), lens


def ngram_match_counts(
    hyps: Sequence[Sequence[str]], refs: Sequence[Sequence[str]], max_n: int = MAX_N
) -> tuple[np.ndarray, np.ndarray]:
    """Per pair and order: clipped n-gram matches (N, max_n) and hypothesis n-gram counts (N, max_n)."""
    n_pairs = len(hyps)
    vocab: dict[str, int] = {}
    h_tok, h_len = _flatten(hyps, vocab)
    r_tok, r_len = _flatten(refs, vocab)
    tok = np.concatenate([h_tok, r_tok])
    lens = np.concatenate([h_len, r_len])
    seq = np.repeat(np.arange(2 * n_pairs, dtype=np.int64), lens)  # sequence index of each token
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]]) if len(lens) else np.zeros(0, np.int64)
    pos = np.arange(len(tok), dtype=np.int64) - np.repeat(starts, lens)
    remaining = np.repeat(lens, lens) - pos  # tokens from this one to the end of its sequence
    is_hyp = seq < n_pairs
    pair = np.where(is_hyp, seq, seq - n_pairs)
    v = max(len(vocab), 1)

    matches = np.zeros((n_pairs, max_n), dtype=np.int64)
    totals = np.zeros((n_pairs, max_n), dtype=np.int64)
    gram = tok  # id of the n-gram starting at each token (meaningful where remaining >= n)
    n_ids = v
    for n in range(1, max_n + 1):
        if n > 1:
            # the (n-1)-gram at i followed by the token at i+n-1, combined then re-numbered densely
            shifted = np.zeros_like(tok)
            if len(tok) >= n:
                shifted[: len(tok) - n + 1] = tok[n - 1 :]
            key = np.where(remaining >= n, gram * v + shifted, -1)
            uniq, inv = np.unique(key, return_inverse=True)
            gram, n_ids = inv.reshape(-1).astype(np.int64), max(len(uniq), 1)
        valid = remaining >= n
        hmask = valid & is_hyp
        rmask = valid & ~is_hyp
        uh, ch = np.unique(pair[hmask] * n_ids + gram[hmask], return_counts=True)
        ur, cr = np.unique(pair[rmask] * n_ids + gram[rmask], return_counts=True)
        if len(ur) and len(uh):
            idx = np.minimum(np.searchsorted(ur, uh), len(ur) - 1)
            clipped = np.where(ur[idx] == uh, np.minimum(ch, cr[idx]), 0)
            matches[:, n - 1] = np.bincount(uh // n_ids, weights=clipped, minlength=n_pairs)[:n_pairs]
        totals[:, n - 1] = np.maximum(h_len - n + 1, 0)
    return matches, totals


def nltk_bleu_stats(hyps: Sequence[Sequence[str]], refs: Sequence[Sequence[str]]) -> np.ndarray:
    """(N, 10) int64 per-pair statistics: nltk's numerators and denominators for n=1..4, hyp and ref length.

    nltk's denominator is ``max(1, number of hypothesis n-grams)``, so a hypothesis shorter than n still adds 1.
    """
    matches, totals = ngram_match_counts(hyps, refs)
    out = np.zeros((len(hyps), 2 * MAX_N + 2), dtype=np.int64)
    out[:, NUM] = matches
    out[:, DEN] = np.maximum(totals, 1)
    out[:, HYP_LEN] = [len(h) for h in hyps]
    out[:, REF_LEN] = [len(r) for r in refs]
    return out


def nltk_corpus_bleu(sums: np.ndarray, weights: Sequence[Sequence[float]] = WEIGHTS) -> list[float]:
    """nltk's corpus_bleu (smoothing method0) from summed statistics, for each weight tuple."""
    num = [int(x) for x in sums[NUM]]
    den = [int(x) for x in sums[DEN]]
    hyp_len, ref_len = int(sums[HYP_LEN]), int(sums[REF_LEN])
    if num[0] == 0:
        return [0.0] * len(weights)
    if hyp_len > ref_len:
        bp = 1.0
    elif hyp_len == 0:
        bp = 0.0
    else:
        bp = math.exp(1 - ref_len / hyp_len)
    # method0: an order without matches contributes log(sys.float_info.min), as nltk does
    p = [n / d if n != 0 else sys.float_info.min for n, d in zip(num, den)]
    out = []
    for w in weights:
        s = math.fsum(w_i * math.log(p_i) for w_i, p_i in zip(w, p) if p_i > 0)
        out.append(bp * math.exp(s))
    return out


def nltk_corpus_bleu_batch(sums: np.ndarray, weights: Sequence[Sequence[float]] = WEIGHTS) -> np.ndarray:
    """Vectorised :func:`nltk_corpus_bleu` over rows of summed statistics (bootstrap), shape (B, len(weights))."""
    sums = np.asarray(sums, dtype=np.float64)
    num, den = sums[:, NUM], sums[:, DEN]
    hyp_len, ref_len = sums[:, HYP_LEN], sums[:, REF_LEN]
    with np.errstate(divide="ignore", invalid="ignore"):
        bp = np.where(hyp_len > ref_len, 1.0, np.where(hyp_len == 0, 0.0, np.exp(1 - ref_len / hyp_len)))
        p = np.where(num != 0, num / np.maximum(den, 1), sys.float_info.min)
        logp = np.log(p)
    w = np.asarray(weights, dtype=np.float64)  # (W, 4)
    out = bp[:, None] * np.exp(logp @ w.T)
    out[num[:, 0] == 0] = 0.0
    return out


# ---- compat standard: sacrebleu -------------------------------------------------------------------------


def sacrebleu_stats(hyps: Sequence[str], refs: Sequence[str]) -> np.ndarray:
    """(N, 10) per-pair sacrebleu statistics: hyp len, ref len, correct n=1..4, total n=1..4 (13a, mixed case)."""
    from sacrebleu.metrics.bleu import BLEU

    stats = BLEU()._extract_corpus_statistics(list(hyps), [list(refs)])
    return np.asarray(stats, dtype=np.int64).reshape(len(hyps), 2 + 2 * MAX_N)


def sacrebleu_from_stats(sums: np.ndarray) -> list[float]:
    """sacrebleu corpus BLEU with max n-gram order 1..4, as fractions in [0, 1]."""
    from sacrebleu.metrics.bleu import BLEU

    out = []
    for k in range(1, MAX_N + 1):
        score = BLEU.compute_bleu(
            correct=[int(x) for x in sums[2 : 2 + k]],
            total=[int(x) for x in sums[2 + MAX_N : 2 + MAX_N + k]],
            sys_len=int(sums[0]),
            ref_len=int(sums[1]),
            smooth_method="exp",
            max_ngram_order=k,
        )
        out.append(score.score / 100.0)
    return out


def sacrebleu_signature(order: int) -> str:
    from sacrebleu.metrics.bleu import BLEU

    bleu = BLEU(max_ngram_order=order)
    bleu.corpus_score(["a"], [["a"]])  # sacrebleu fills the signature (nrefs) on first use
    return f"{bleu.get_signature()}|ngram:{order}"


# ---- the two recipes as metric objects --------------------------------------------------------------------


class NltkCorpusBleu(CorpusMetric):
    """compat mmskin: nltk ``corpus_bleu`` (no smoothing) on whitespace tokens, BLEU-1..4 by MM-Skin's weights."""

    name, compat, packages = "bleu", "mmskin", ("nltk",)
    tokenizer = WHITESPACE

    def compute(self, pairs: Pairs, progress: Progress | None = None) -> Scored:
        return Scored(stats=nltk_bleu_stats(*pairs.tokens(self.tokenizer)))

    def corpus(self, sums: np.ndarray) -> list[float]:
        return nltk_corpus_bleu(sums)

    def corpus_batch(self, sums: np.ndarray) -> np.ndarray:
        return nltk_corpus_bleu_batch(sums)

    def signature(self) -> dict[str, str]:
        tok, nltk_v = self.tokenizer.label, nltk_version()
        weights = [",".join(f"{w:g}" for w in ws) for ws in WEIGHTS]  # as VQA_test.py writes them
        return {
            k: f"nltk-corpus_bleu(native)|weights:{w}|smooth:none|{tok}|nltk:{nltk_v}"
            for k, w in zip(self.keys, weights)
        }


class SacreBleu(CorpusMetric):
    """compat standard: sacrebleu corpus BLEU (13a, mixed case, exp smoothing) with max order 1..4."""

    name, compat, packages = "bleu", "standard", ("sacrebleu",)

    def compute(self, pairs: Pairs, progress: Progress | None = None) -> Scored:
        return Scored(stats=sacrebleu_stats(pairs.hyps, pairs.refs))

    def corpus(self, sums: np.ndarray) -> list[float]:
        return sacrebleu_from_stats(sums)

    def signature(self) -> dict[str, str]:
        return {k: f"sacrebleu|{sacrebleu_signature(n)}" for n, k in enumerate(self.keys, 1)}
