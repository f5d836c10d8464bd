"""ROUGE-1/2/L per pair.

``compat mmskin``: the numbers of the ``rouge`` package 1.0.1 (``Rouge().get_scores(hyps, refs, avg=True)``,
MM-Skin's VQA_test.py), reimplemented with its quirks kept: text is split into "sentences" at every ``.``, each
re-joined on single spaces; words are those sentences split on ``" "`` (so a blank sentence gives the word
``""``); ROUGE-N counts *distinct* n-grams over the whole text; ROUGE-L is the summary-level union LCS, counted
as distinct words of the LCS that the package's backtracking picks, over distinct words; F = 2PR/(P+R+1e-8).
The package raises ``ValueError`` on a hypothesis (or reference) with no sentence, i.e. empty or only dots;
here such a pair scores 0 and is counted (:data:`EMPTY`). Its recursive backtracking also raises
``RecursionError`` on a sentence pair longer than ~1000 words; this one is iterative.

    >>> from mmskin.evaluate.metrics.rouge import rouge_pair
    >>> rouge_pair("the cat sat", "the cat sat down")
    (0.8571428522448981, 0.7999999952000001, 0.8571428522448981)

``compat standard``: Google's ``rouge-score`` with the Porter stemmer. :class:`Rouge101` and
:class:`RougeScore` are the two recipes as metric objects.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .base import Metric, Pairs, Progress, Scored

EMPTY = (0.0, 0.0, 0.0)


def _sentences(text: str) -> list[list[str]]:
    return [" ".join(s.split()).split(" ") for s in text.split(".") if len(s) > 0]


def _f(overlap: int, n_hyp: int, n_ref: int) -> float:
    p = overlap / n_hyp if n_hyp else 0.0
    r = overlap / n_ref if n_ref else 0.0
    return 2.0 * ((p * r) / (p + r + 1e-8))


def _lcs_words(x: list[str], y: list[str]) -> set[str]:
    """Words of the LCS of x (reference) and y (hypothesis) that rouge 1.0.1's ``_recon_lcs`` returns.

    The DP table is kept as one bit-vector row per reference word (Hyyrö's bit-parallel LCS): the LCS length
    of x[:i] and y[:j] is ``j - popcount(row_i & (2**j - 1))``. The backtracking is the package's, step by
    step: diagonal on equal words, else up when ``L[i-1][j] > L[i][j-1]``, else left. It keeps the two
    popcounts it compares and updates them bit by bit as j falls, so a long hypothesis costs time linear in
    its length (times the reference's length / 64), not quadratic.
    """
    m = len(y)
    full = (1 << m) - 1
    nbytes = (m + 8) // 8
    wanted = set(x)
    marks: dict[str, bytearray] = {}  # word -> bits of its positions in y (only words of x matter)
    for j, w in enumerate(y):
        if w in wanted:
            mark = marks.get(w)
            if mark is None:
                mark = marks[w] = bytearray(nbytes)
            mark[j >> 3] |= 1 << (j & 7)
    masks = {w: int.from_bytes(mark, "little") for w, mark in marks.items()}
    rows = [full]
    v = full
    for w in x:
        mk = masks.get(w)
        if mk:
            u = v & mk
            v = ((v + u) | (v - u)) & full
        rows.append(v)
    bits: dict[int, bytes] = {}  # row index -> its bytes, for O(1) bit tests

    def bit(i: int, j: int) -> int:  # bit j of row i
        b = bits.get(i)
        if b is None:
            b = bits[i] = rows[i].to_bytes(nbytes, "little")
        return (b[j >> 3] >> (j & 7)) & 1

    def popcount(i: int, j: int) -> int:  # popcount(row_i & (2**j - 1))
        return (rows[i] & ((1 << j) - 1)).bit_count()

    out: set[str] = set()
    i, j = len(x), m
    if i == 0 or j == 0:
        return out
    pc_i, pc_up = popcount(i, j), popcount(i - 1, j)
    while i > 0 and j > 0:
        if x[i - 1] == y[j - 1]:
            out.add(x[i - 1])
            i -= 1
            j -= 1
            if i > 0 and j > 0:
                pc_i = pc_up - bit(i, j)
                pc_up = popcount(i - 1, j)
        elif j - pc_up > (j - 1) - (pc_i - bit(i, j - 1)):
            i -= 1
            pc_i = pc_up
            if i > 0:
                pc_up = popcount(i - 1, j)
        else:
            pc_i -= bit(i, j - 1)
            pc_up -= bit(i - 1, j - 1)
            j -= 1
    return out


def rouge_pair(hyp: str, ref: str) -> tuple[float, float, float]:
    """F of ROUGE-1, ROUGE-2, ROUGE-L for one pair, as ``rouge`` 1.0.1 computes them (0 for an empty side)."""
    hs, rs = _sentences(hyp), _sentences(ref)
    if not hs or not rs:
        return EMPTY
    hw = [w for s in hs for w in s]
    rw = [w for s in rs for w in s]
    h1, r1 = set(hw), set(rw)
    h2, r2 = set(zip(hw, hw[1:])), set(zip(rw, rw[1:]))
    f1 = _f(len(h1 & r1), len(h1), len(r1))
    f2 = _f(len(h2 & r2), len(h2), len(r2))
    union: set[str] = set()
    if h1 & r1:  # no shared word: every LCS is empty
        for r in rs:
            rset = set(r)
            for h in hs:
                if rset.intersection(h):
                    union |= _lcs_words(r, h)
    llcs = len(union)
    r_l, p_l = llcs / len(r1), llcs / len(h1)
    fl = 2.0 * ((p_l * r_l) / (p_l + r_l + 1e-8))
    return f1, f2, fl


def rouge_mmskin(hyps: Sequence[str], refs: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per-pair F (N, 3) for rouge-1, rouge-2, rouge-l, and a mask of pairs the package would reject."""
    out = np.zeros((len(hyps), 3), dtype=np.float64)
    rejected = np.zeros(len(hyps), dtype=bool)
    cache: dict[tuple[str, str], tuple[float, float, float]] = {}
    for i, (h, r) in enumerate(zip(hyps, refs)):
        sc = cache.get((h, r))
        if sc is None:
            sc = cache[(h, r)] = rouge_pair(h, r)
        out[i] = sc
        # the package raises when a side has no non-empty '.'-separated piece: empty or only dots
        rejected[i] = not h.replace(".", "") or not r.replace(".", "")
    return out, rejected


# ---- compat standard: rouge-score ------------------------------------------------------------------------


def rouge_score_standard(hyps: Sequence[str], refs: Sequence[str]) -> np.ndarray:
    """Per-pair F (N, 3) of Google's rouge-score (rouge1, rouge2, rougeL; Porter stemmer, its tokenizer)."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    out = np.zeros((len(hyps), 3), dtype=np.float64)
    for i, (h, r) in enumerate(zip(hyps, refs)):
        s = scorer.score(r, h)  # score(target, prediction)
        out[i] = (s["rouge1"].fmeasure, s["rouge2"].fmeasure, s["rougeL"].fmeasure)
    return out


def rouge_score_signature() -> str:
    from ...provenance import package_versions

    v = package_versions(["rouge-score"])["rouge-score"]
    return f"rouge-score {v}|rouge1,rouge2,rougeL|F|stemmer:porter|tok:rouge-score default (lowercase, [a-z0-9]+)"


# ---- the two recipes as metric objects --------------------------------------------------------------------


class Rouge101(Metric):
    """compat mmskin: the ``rouge`` package 1.0.1's F, natively; counts the pairs the package would refuse."""

    name, compat = "rouge", "mmskin"
    fork = True

    def compute(self, pairs: Pairs, progress: Progress | None = None) -> Scored:
        values, rejected = rouge_mmskin(pairs.hyps, pairs.refs)
        return Scored(_columns(self.keys, values), counts={"rouge_rejected": int(rejected.sum())})

    def signature(self) -> dict[str, str]:
        return {k: f"rouge-1.0.1(native)|{k}|F avg|split:'.' then ' '|empty:0|case:mixed" for k in self.keys}


class RougeScore(Metric):
    """compat standard: Google's rouge-score, Porter stemmer."""

    name, compat, packages = "rouge", "standard", ("rouge-score",)
    fork = True

    def compute(self, pairs: Pairs, progress: Progress | None = None) -> Scored:
        return Scored(_columns(self.keys, rouge_score_standard(pairs.hyps, pairs.refs)))

    def signature(self) -> dict[str, str]:
        sig = rouge_score_signature()
        return {k: sig for k in self.keys}


def _columns(keys: tuple[str, ...], values: np.ndarray) -> dict[str, np.ndarray]:
    return {k: np.ascontiguousarray(col) for k, col in zip(keys, values.T)}
