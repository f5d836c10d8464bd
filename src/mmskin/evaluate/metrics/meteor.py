"""METEOR per pair, as ``nltk.translate.meteor_score.meteor_score`` computes it, with stems and synonyms cached.

nltk aligns lower-cased words in three stages (exact, Porter stem, WordNet synonym), each scanning the
hypothesis right to left and taking the right-most free reference position; then
``(1 - 0.5 * (chunks / matches) ** 3) * P*R / (0.9*P + 0.1*R)``. It stems every unmatched word and builds
WordNet synset objects for every word still unmatched, pair after pair; here each distinct word is stemmed once
and its synonym set (:class:`mmskin.evaluate.wordnet.WordNetLite`, checked equal to nltk's) looked up once.

    >>> from mmskin.evaluate.metrics.meteor import Meteor
    >>> round(Meteor().score("the cats sat on a mat".split(), "a cat sat on the mat".split()), 4)
    0.8519

:class:`MeteorWhitespace` (compat mmskin) and :class:`Meteor13a` (compat standard) are the metric objects: the
same METEOR on each recipe's words.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from .base import LOWER_13A, WHITESPACE, Metric, Pairs, Progress, Scored, nltk_version

ALPHA, BETA, GAMMA = 0.9, 3.0, 0.5


def _match(hyp: list[tuple[int, str]], ref: list[tuple[int, str]], matches: list[tuple[int, int]]):
    """nltk's ``_match_enums``: right-to-left over the hypothesis, right-most free reference position."""
    positions: dict[str, list[int]] = {}
    for j, (_, w) in enumerate(ref):
        positions.setdefault(w, []).append(j)
    mh: set[int] = set()
    mr: set[int] = set()
    for i in range(len(hyp) - 1, -1, -1):
        pos = positions.get(hyp[i][1])
        if pos:
            j = pos.pop()
            mh.add(i)
            mr.add(j)
            matches.append((hyp[i][0], ref[j][0]))
    if not mh:
        return hyp, ref
    return [p for i, p in enumerate(hyp) if i not in mh], [p for j, p in enumerate(ref) if j not in mr]


def _count_chunks(matches: list[tuple[int, int]]) -> int:
    chunks = 1
    for k in range(len(matches) - 1):
        a, b = matches[k], matches[k + 1]
        if not (b[0] == a[0] + 1 and b[1] == a[1] + 1):
            chunks += 1
    return chunks


class Meteor:
    """nltk-equal METEOR with a stem cache and a synonym cache shared across pairs."""

    def __init__(self, wordnet=None) -> None:
        from nltk.stem.porter import PorterStemmer

        self._stemmer = PorterStemmer()
        self._stems: dict[str, str] = {}
        self._wordnet = wordnet  # WordNetLite, loaded on first need

    def _stem(self, w: str) -> str:
        s = self._stems.get(w)
        if s is None:
            s = self._stemmer.stem(w)
            self._stems[w] = s
        return s

    def _syn(self, w: str) -> frozenset[str]:
        if self._wordnet is None:
            from ..wordnet import WordNetLite

            self._wordnet = WordNetLite.load()
        return self._wordnet.synonyms(w)

    def score(self, hypothesis: Sequence[str], reference: Sequence[str]) -> float:
        hyp = [(i, w.lower()) for i, w in enumerate(hypothesis)]
        ref = [(j, w.lower()) for j, w in enumerate(reference)]
        translation_length, reference_length = len(hyp), len(ref)
        if translation_length == 0 or reference_length == 0:
            return 0.0
        matches: list[tuple[int, int]] = []
        hyp, ref = _match(hyp, ref, matches)
        if hyp and ref:
            stem_h = [(i, self._stem(w)) for i, w in hyp]
            stem_r = [(j, self._stem(w)) for j, w in ref]
            stem_h, stem_r = _match(stem_h, stem_r, matches)
            if stem_h and stem_r:
                self._synonym_stage(stem_h, stem_r, matches)
        n = len(matches)
        if n == 0:
            return 0.0
        matches.sort(key=lambda m: m[0])
        precision = float(n) / translation_length
        recall = float(n) / reference_length
        fmean = (precision * recall) / (ALPHA * precision + (1 - ALPHA) * recall)
        frag_frac = float(_count_chunks(matches)) / n
        penalty = GAMMA * frag_frac**BETA
        return (1 - penalty) * fmean

    def _synonym_stage(self, hyp, ref, matches) -> None:
        # nltk's _enum_wordnetsyn_match; after the stem stage the words it sees are stems
        positions: dict[str, list[int]] = {}
        for j, (_, w) in enumerate(ref):
            positions.setdefault(w, []).append(j)
        for i in range(len(hyp) - 1, -1, -1):
            best_j, best_word = -1, None
            for syn in self._syn(hyp[i][1]):
                pos = positions.get(syn)
                if pos and pos[-1] > best_j:
                    best_j, best_word = pos[-1], syn
            if best_word is not None:
                positions[best_word].pop()
                matches.append((hyp[i][0], ref[best_j][0]))

    def score_many(self, hyps: Iterable[Sequence[str]], refs: Iterable[Sequence[str]]) -> np.ndarray:
        return np.fromiter((self.score(h, r) for h, r in zip(hyps, refs)), dtype=np.float64)


def wordnet_signature() -> str:
    from ..wordnet import corpus_dir

    return f"WordNet 3.0 ({corpus_dir()})"


class MeteorWhitespace(Metric):
    """compat mmskin: METEOR on whitespace tokens (nltk lower-cases them itself)."""

    name, compat, packages = "meteor", "mmskin", ("nltk",)
    tokenizer = WHITESPACE

    def compute(self, pairs: Pairs, progress: Progress | None = None) -> Scored:
        return Scored({"meteor": Meteor().score_many(*pairs.tokens(self.tokenizer))})

    def signature(self) -> dict[str, str]:
        case = self.tokenizer.label + ("" if self.tokenizer.lowercases else "->lower")
        params = f"alpha:{ALPHA:g},beta:{BETA:g},gamma:{GAMMA:g}"
        return {
            "meteor": f"nltk-meteor_score(native)|{params}|{case}|stem:porter|wordnet:3.0|nltk:{nltk_version()}"
        }


class Meteor13a(MeteorWhitespace):
    """compat standard: METEOR on lower-cased 13a tokens."""

    compat, packages = "standard", ("nltk", "sacrebleu")
    tokenizer = LOWER_13A
