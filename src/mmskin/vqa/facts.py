"""Facts of a caption (lexicon mentions with negation and hedging) and the grounding check of answers.

    >>> from mmskin.vqa.facts import extract_facts
    >>> f = extract_facts("Erythematous plaque on the shin with fine scale but no ulceration.")
    >>> [c.concept for c in f.present("morphology")], [c.concept for c in f.negated("morphology")]
    (['erythema', 'plaque', 'scale'], ['ulcer'])

A concept is *present* when at least one mention is neither negated ("no ulceration", "without scale",
"ulceration is absent") nor, for diagnoses, hedged ("suspicious for melanoma", "psoriasis-like", "history of
melanoma"); it is *negated* when every mention is negated. The same extractor checks answers: an answer is
grounded when each of its content words is in the caption or the record's facts (after lemma-ish normalisation),
or names a concept the caption mentions (a lexicon synonym), and it does not assert what the caption negates.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .lexicon import Lexicon, Match, Token, load_lexicon

# leading figure label as printed ("Fig. 1.2", "Figure 12-4:", "FIGURE 7.1", "Plate 4", "Fig. 5.3a,b")
_LABEL = re.compile(
    r"^\s*(?:(?:fig(?:ure)?s?\.?|plate|table)\s*[A-Z]?\d+(?:[.\-–]\d+)*\s*"
    r"(?:(?-i:[a-z])(?:\s*[,–-]\s*(?-i:[a-z]))*)?\s*[.:]?"
    r"|\d+(?:[.\-–]\d+)+(?=\s+(?-i:[A-Z])))\s+",  # or a bare chapter-figure number ("14-13 Mycosis fungoides")
    re.I,
)
# credit, copyright and citation sentences: not facts about the image
_CREDIT = re.compile(
    r"courtesy|reproduced|reprinted|adapted from|with permission|image crops? from|copyright|©|\bcc[ -]by\b|"
    r"\bphoto(?:graph)? by\b|\bsource:|\bet al\b|\bdoi\b|https?://",
    re.I,
)
# a sentence ends at . ! ? followed by space and an upper-case letter or "(", except after common abbreviations
_ABBREV = re.compile(
    r"(?:\b(?i:fig|figs|e\.g|i\.e|al|dr|mr|mrs|ms|vs|approx|no|ca|cf|st|sp|spp|var|ref|inc|prof)\.|\b[A-Z]\.)$"
)  # the second branch: an initial ("Dr. A. Smith")
_SENT_END = re.compile(r"[.!?](?=\s+[A-Z(\"'])")
_WORD = re.compile(r"[A-Za-z\u00c0-\u024f]+|\d+(?:[.,]\d+)?")
_PUNCT = frozenset(".;:!?,()")


def split_sentences(text: str) -> list[str]:
    out, start = [], 0
    for m in _SENT_END.finditer(text):
        if _ABBREV.search(text[start : m.end()]):
            continue
        out.append(text[start : m.end()].strip())
        start = m.end()
    tail = text[start:].strip()
    if tail:
        out.append(tail)
    return [s for s in out if s]


def clean_caption(caption: str) -> str:
    """The caption as a statement about the image: no figure label, no credit or citation sentences, one line.
    Curate cleans captions; this only removes what is never a fact, so it is safe on cleaned captions too."""
    text = " ".join(caption.split())
    text = _LABEL.sub("", text, count=1)
    kept = [s for s in split_sentences(text) if not _CREDIT.search(s)]
    return " ".join(kept).strip()


@dataclass(frozen=True)
class Mention:
    category: str
    concept: str
    text: str  # the caption's own words (with colour/site modifiers)
    start: int
    end: int
    negated: bool = False
    uncertain: bool = False


@dataclass
class Facts:
    """Everything the template generator may say about one image: caption mentions plus record fields."""

    caption: str
    mentions: list[Mention]
    sizes: list[str] = field(default_factory=list)
    magnifications: list[str] = field(default_factory=list)
    lexicon: Lexicon | None = field(default=None, repr=False)

    def present(self, category: str) -> list[Mention]:
        """First asserted mention of each concept of a category, in caption order."""
        seen: dict[str, Mention] = {}
        for m in self.mentions:
            if m.category == category and not m.negated and not m.uncertain and m.concept not in seen:
                seen[m.concept] = m
        return list(seen.values())

    def negated(self, category: str) -> list[Mention]:
        """Concepts of a category that the caption only ever mentions as absent."""
        asserted = {m.concept for m in self.mentions if m.category == category and not m.negated}
        seen: dict[str, Mention] = {}
        for m in self.mentions:
            if m.category == category and m.negated and m.concept not in asserted and m.concept not in seen:
                seen[m.concept] = m
        return list(seen.values())

    def concepts(self, polarity: str = "any") -> set[tuple[str, str]]:
        if polarity == "positive":
            return {(m.category, m.concept) for m in self.mentions if not m.negated}
        if polarity == "negated":
            return {(m.category, m.concept) for m in self.mentions if m.negated}
        return {(m.category, m.concept) for m in self.mentions}


def _phrase_ends_at(norms: list[str], j: int, phrases: frozenset[tuple[str, ...]]) -> bool:
    for ph in phrases:
        n = len(ph)
        if j - n + 1 >= 0 and tuple(norms[j - n + 1 : j + 1]) == ph:
            return True
    return False


def _phrase_starts_at(norms: list[str], j: int, phrases: frozenset[tuple[str, ...]]) -> bool:
    return any(tuple(norms[j : j + len(ph)]) == ph for ph in phrases)


def _context(lex: Lexicon, toks: list[Token], m: Match) -> tuple[bool, bool]:
    """(negated, uncertain) for one match: NegEx-style triggers within a window, stopped by terminators."""
    norms = [t.norm for t in toks]
    ctx = lex.context
    window, terms = ctx["window"], ctx["terminators"]
    negated = uncertain = False
    if m.start_tok > 0 and norms[m.start_tok - 1] in ctx["negation_prefix"]:
        negated = True  # "non-scaly": the prefix negates the next word only
    for j in range(m.start_tok - 1, max(-1, m.start_tok - 1 - window), -1):
        if norms[j] in terms:
            break
        if not negated and _phrase_ends_at(norms, j, ctx["negation_pre"]):
            negated = True
        if not uncertain and _phrase_ends_at(norms, j, ctx["uncertain_pre"]):
            uncertain = True
    for j in range(m.end_tok, min(len(toks), m.end_tok + 4)):
        if _phrase_starts_at(norms, j, ctx["negation_post"]):
            negated = True
            break
        if norms[j] in terms:
            break
    if m.end_tok < len(toks) and _phrase_starts_at(norms, m.end_tok, ctx["uncertain_post"]):
        uncertain = True
    return negated, uncertain


def _with_modifiers(lex: Lexicon, text: str, toks: list[Token], m: Match, kind: str) -> tuple[int, str]:
    """Extend a colour or site mention leftwards over modifier words ("dark brown", "left forearm")."""
    mods = lex.modifiers.get(kind, frozenset())
    i = m.start_tok
    while i > 0 and toks[i - 1].norm in mods and m.start_tok - i < 3:
        i -= 1
    start = toks[i].start
    return start, text[start : m.end]


def extract_facts(caption: str, lexicon: Lexicon | None = None, clean: bool = True) -> Facts:
    """Mentions of every lexicon category in a caption, with negation/hedging, sizes and magnifications."""
    lex = lexicon or load_lexicon()
    text = clean_caption(caption) if clean else caption
    toks = lex.tokenize(text)
    mentions: list[Mention] = []
    for m in lex.match_tokens(toks):
        negated, uncertain = _context(lex, toks, m)
        if m.category != "diagnosis":
            uncertain = False  # hedges qualify diagnoses; "may show scale" still describes the lesion's scale
        if m.category == "site":
            negated = False  # "without scale on the back": the negation is about the scale, not the site
        start, surface = m.start, text[m.start : m.end]
        if m.category in ("color", "site"):
            start, surface = _with_modifiers(lex, text, toks, m, m.category)
        mentions.append(Mention(m.category, m.concept, surface, start, m.end, negated, uncertain))
    sizes = []
    for sm in lex.size_pattern.finditer(text):
        before = [lex.norm(w) for w in _WORD.findall(text[max(0, sm.start() - 40) : sm.start()])][-2:]
        after = [lex.norm(w) for w in _WORD.findall(text[sm.end() : sm.end() + 30])][:2]
        if after[:1] and after[0] in lex.size_exclude:
            continue  # "4 cm below the knee" is a distance, not a size
        if set(before + after) & lex.size_context:
            sizes.append(sm.group().strip())
    mags: list[str] = []
    taken: list[tuple[int, int]] = []
    for rx in lex.magnification:
        for mm in rx.finditer(text):
            if any(a < mm.end() and mm.start() < b for a, b in taken):
                continue
            taken.append((mm.start(), mm.end()))
            mags.append(mm.group().strip())
    return Facts(text, mentions, list(dict.fromkeys(sizes)), list(dict.fromkeys(mags)), lex)


# -- grounding ------------------------------------------------------------------------------------------------


def _stem(w: str) -> str:
    # a second, looser level for words outside the lexicon ("enlarging" vs "enlarged")
    for suf in ("ing", "ed", "ly", "es", "s", "e"):
        if w.endswith(suf) and len(w) - len(suf) >= 4:
            return w[: -len(suf)]
    return w


def content_words(text: str, lexicon: Lexicon | None = None) -> list[str]:
    """Normalised words of a text that carry content (not stopwords, not question/answer framing)."""
    lex = lexicon or load_lexicon()
    out = []
    for t in lex.tokenize(text):
        if t.norm in _PUNCT or t.norm == "&" or t.norm == "×":
            continue
        if t.norm in lex.stopwords or t.norm in lex.framing_words:
            continue
        out.append(t.norm)
    return out


@dataclass
class Support:
    """What an answer may use: the caption's words, the record's facts and the concepts the caption names."""

    words: set[str]
    stems: set[str]
    concept_words: set[str]
    positive: set[tuple[str, str]]  # concepts the caption asserts (at least once)
    negated: set[tuple[str, str]]  # concepts the caption negates (at least once)


def build_support(facts: Facts, extra_texts: Iterable[str] = ()) -> Support:
    lex = facts.lexicon or load_lexicon()
    words = set(content_words(facts.caption, lex))
    for t in extra_texts:
        words.update(content_words(t, lex))
    cwords: set[str] = set()
    for key in facts.concepts("any"):
        cwords.update(lex.concept_tokens.get(key, ()))
    return Support(
        words, {_stem(w) for w in words}, cwords, facts.concepts("positive"), facts.concepts("negated")
    )


def check_answer(
    answer: str, support: Support, question: str = "", lexicon: Lexicon | None = None
) -> tuple[bool, str | None, list[str]]:
    """(grounded, reason, unsupported words). Reasons: ``unsupported_words`` (content words not in the caption
    or record facts) and ``contradicts_caption`` (asserts a finding the caption negates, or denies one it
    asserts). A yes/no answer takes its polarity from the question's findings."""
    lex = lexicon or load_lexicon()
    missing = []
    for w in content_words(answer, lex):
        if w in support.words or w in support.concept_words or _stem(w) in support.stems:
            continue
        if w.isdigit() and w in support.words:
            continue
        missing.append(w)
    if missing:
        return False, "unsupported_words", list(dict.fromkeys(missing))
    afacts = extract_facts(answer, lex, clean=False)
    asserted = afacts.concepts("positive")
    denied = afacts.concepts("negated")
    first = answer.strip().lower()
    if question and (first.startswith("yes") or first.startswith("no")):
        qkeys = extract_facts(question, lex, clean=False).concepts("any")
        (asserted if first.startswith("yes") else denied).update(qkeys)
    # only a flat contradiction counts: asserting what the caption only ever negates, or the reverse
    if asserted & (support.negated - support.positive) or denied & (support.positive - support.negated):
        return False, "contradicts_caption", []
    return True, None, []


def record_fact_texts(record: dict[str, Any], modality_phrases: dict[str, str] | None = None) -> list[str]:
    """Record fields rendered as text, so answers that state them (age, sex, modality) count as supported."""
    out = []
    age = record.get("age")
    if isinstance(age, (int, float)) and not isinstance(age, bool):
        out.append(format_age(age))
    for k in ("sex", "age_group"):
        if isinstance(record.get(k), str):
            out.append(record[k])
    sex = record.get("sex")
    if sex == "male":
        out.append("man boy")
    elif sex == "female":
        out.append("woman girl")
    mod = record.get("modality")
    if isinstance(mod, str) and modality_phrases and mod in modality_phrases:
        out.append(modality_phrases[mod])
    return out


def format_age(age: float) -> str:
    if age < 1:
        months = round(age * 12)
        return f"{months} month{'s' if months != 1 else ''}"
    return f"{int(age)}" if float(age).is_integer() else f"{age:g}"
