"""Caption cleaning and intimate-region detection for curate.

``clean_caption`` turns a per-panel caption as the build wrote it (shared caption + subcaption, figure label
included) into the text a model should learn from: figure labels, credits, copyright lines, cross-references
and marker legends go; ligatures, hyphenated line breaks, Unicode and whitespace are repaired; stain and
magnification ("H&E, ×200") stay. All patterns live in ``mmskin/data/curate/text/cleaning.yaml``.

    >>> from mmskin.curate.text import clean_caption, intimate_regions
    >>> clean_caption("Fig. 3.2 Psoriasis (arrows; see Fig. 3.1). H&E, x200. (Courtesy of Dr. A. Smith.)")
    'Psoriasis. H&E, ×200.'
    >>> intimate_regions("Lichen sclerosus of the vulva and perianal skin")
    ['vulva', 'perianal']

The function is idempotent (it is applied until the text stops changing), so cleaning an already clean
caption is a no-op.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ..resources import load_yaml

_MAX_PASSES = 6


def load_lexicon(name: str) -> dict[str, Any]:
    """A YAML lexicon shipped under ``mmskin/data/curate/text/`` (parsed once per process; a copy per call)."""
    data = load_yaml("curate", "text", name)
    if not isinstance(data, dict):
        raise ValueError(f"mmskin/data/curate/text/{name}: expected a YAML mapping")
    return data


@dataclass(frozen=True)
class _Cleaner:
    table: dict[int, str]
    keep: frozenset[str]
    lig_split: re.Pattern[str]
    lig_prefixes: frozenset[str]
    lig_words: frozenset[str]
    hyphen: re.Pattern[str]
    hyphen_keep_left: frozenset[str]
    hyphen_suspended: frozenset[str]
    label: re.Pattern[str]
    credit: re.Pattern[str]
    from_credit: re.Pattern[str]
    from_requires: re.Pattern[str]
    abbreviations: frozenset[str]
    crossref_only: re.Pattern[str]
    crossref_phrase: re.Pattern[str]
    crossref_target_word: re.Pattern[str]
    marker_only: re.Pattern[str]
    marker_word: re.Pattern[str]
    marker_symbols: re.Pattern[str]
    marker_phrases: tuple[re.Pattern[str], ...]


@lru_cache(maxsize=1)
def _cleaner() -> _Cleaner:
    lex = load_lexicon("cleaning.yaml")
    char_map = dict(lex["ligatures"])
    char_map.update({c: "" for c in lex["delete_chars"]})
    frags = "|".join(sorted(map(re.escape, lex["split_ligature_fragments"]), key=len, reverse=True))
    labels = "|".join(f"(?:{p})" for p in lex["label_patterns"])
    credit = "|".join(f"(?:{p})" for p in lex["credit_starts"])
    target, lead = lex["crossref_target"], lex["crossref_lead"]
    # longest first, so "arrow heads" wins over "arrow"
    words = "|".join(f"(?:{w})" for w in sorted(lex["marker_words"], key=len, reverse=True))
    mods = "|".join(f"(?:{w})" for w in lex["marker_modifiers"])
    return _Cleaner(
        table=str.maketrans(char_map),
        keep=frozenset(lex["keep_chars"]),
        # a ligature fragment standing alone between letters: "myo fi broblastic", "super fi cial"
        lig_split=re.compile(rf"(?:(\b[A-Za-z]+) )?\b({frags}) ([a-z]+)\b", re.I),
        lig_prefixes=frozenset(w.lower() for w in lex["split_ligature_left_prefixes"]),
        lig_words=frozenset(w.lower() for w in lex["split_ligature_words"]),
        hyphen=re.compile(r"(?<![\w-])(\w*[^\W\d_])-\s+([a-z]{2,})\b"),
        hyphen_keep_left=frozenset(w.lower() for w in lex["hyphen_keep_left"]),
        hyphen_suspended=frozenset(w.lower() for w in lex["hyphen_suspended_next"]),
        label=re.compile(rf"^[\s•·.:|\-–—]*(?:{labels})\s*", re.I),
        credit=re.compile(rf"(?:^|(?<=[.;,!?:)\]])\s+|(?<=\s)[-–—]\s+|(?<=\())\s*(?:{credit})", re.I),
        from_credit=re.compile(r"(?:^|(?<=[.;!?])\s+|(?<=\())\s*from\s+(?-i:[A-Z])", re.I),
        from_requires=re.compile("|".join(f"(?:{p})" for p in lex["from_credit_requires"]), re.I),
        abbreviations=frozenset(a.lower() for a in lex["abbreviations"]),
        crossref_only=re.compile(rf"\s*(?:{lead}\s*)?{target}\s*(?:for\s+(?:details|comparison))?\s*", re.I),
        crossref_phrase=re.compile(rf"\s*[,;]?\s*\b{lead}\s+{target}", re.I),
        crossref_target_word=re.compile(rf"\b{target}", re.I),
        marker_only=re.compile(rf"(?:{mods}|[–\-])", re.I),
        marker_word=re.compile(rf"\b(?:{words})\b", re.I),
        marker_symbols=re.compile(lex["marker_symbols_only"]),
        marker_phrases=tuple(re.compile(p, re.I) for p in lex["marker_phrases"]),
    )


_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_ASCII_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _normalize_unicode(text: str, c: _Cleaner) -> str:
    text = text.translate(c.table)

    def fix(m: re.Match[str]) -> str:
        ch = m.group(0)
        if ch in c.keep:
            return ch
        # control and format characters (LRM, zero-width …) never belong in a caption
        if unicodedata.category(ch) in ("Cc", "Cf"):
            return " " if ch.isspace() else ""
        return unicodedata.normalize("NFKC", ch)

    if not text.isascii():
        text = _NON_ASCII.sub(fix, text)
    return _ASCII_CONTROL.sub("", text)


def _fix_split_ligatures(text: str, c: _Cleaner) -> str:
    def join(m: re.Match[str]) -> str:
        left, frag, right = m.group(1), m.group(2), m.group(3)
        if left is None:
            return frag + right
        whole = left + frag + right
        if left.lower() in c.lig_prefixes or whole.lower() in c.lig_words:
            return whole
        return f"{left} {frag}{right}"

    return c.lig_split.sub(join, text)


def _join_hyphen_breaks(text: str, c: _Cleaner) -> str:
    def join(m: re.Match[str]) -> str:
        left, right = m.group(1), m.group(2)
        if right.lower() in c.hyphen_suspended:
            return m.group(0)
        # abbreviations and codes keep their hyphen ("HPV- associated", "CD4- positive"); "Erythe- matous" joins
        if (
            left.lower() in c.hyphen_keep_left
            or any(ch.isdigit() for ch in left)
            or sum(map(str.isupper, left)) > 1
        ):
            return f"{left}-{right}"
        return left + right

    return c.hyphen.sub(join, text)


def _strip_label(text: str, c: _Cleaner) -> str:
    return c.label.sub("", text, count=1)


def _is_sentence_end(text: str, i: int, c: _Cleaner) -> bool:
    """Is the '.' at ``text[i]`` the end of a sentence (not an abbreviation, initial or decimal point)?"""
    nxt = text[i + 1 : i + 3]
    if nxt and not nxt[0].isspace():
        return False
    word = re.search(r"([\w.]+)$", text[:i])
    if word:
        w = word.group(1).lower()
        if w in c.abbreviations or (len(w) == 1 and w.isalpha()):
            return False
    rest = text[i + 1 :].lstrip()
    # a digit after the period is a citation's year or page ("Dermatology. 2006."), not a new sentence
    return not rest or rest[0].isupper() or rest[0] in "(['\""


def _sentence_end(text: str, start: int, c: _Cleaner) -> int:
    """Index just past the sentence that starts at ``start`` (stops early at an unbalanced ')')."""
    depth = 0
    for i in range(start, len(text)):
        ch = text[i]
        if ch in "([":
            depth += 1
        elif ch in ")]":
            if depth == 0:
                return i
            depth -= 1
        elif ch in ".!?" and depth == 0 and _is_sentence_end(text, i, c):
            return i + 1
    return len(text)


def _remove_credits(text: str, c: _Cleaner) -> str:
    for _ in range(10):
        m = c.credit.search(text)
        if m is None:
            m = next(
                (
                    f
                    for f in c.from_credit.finditer(text)
                    if c.from_requires.search(text[f.start() : _sentence_end(text, f.end(), c)])
                ),
                None,
            )
        if m is None:
            return text
        end = _sentence_end(text, m.end(), c)
        text = text[: m.start()] + " " + text[end:]
    return text


def _drop_segment(seg: str, c: _Cleaner) -> bool:
    s = seg.strip()
    if not s:
        return True
    if c.crossref_only.fullmatch(s):
        return True
    if c.marker_symbols.fullmatch(s) and re.search(r"[^\s,;&]", s):
        return True
    if c.marker_word.search(s):
        # marker-only: after replacing the marker words, every token is a modifier ("black", "in", "B", ",")
        rest = c.marker_word.sub(" ", s)
        if all(c.marker_only.fullmatch(tok) for tok in re.findall(r"\w+|[^\w\s]", rest)):
            return True
    return bool(c.credit.match(s) or c.from_credit.match(s) and c.from_requires.search(s))


def _clean_parentheticals(text: str, c: _Cleaner) -> str:
    def fix(m: re.Match[str]) -> str:
        open_, inner, close = m.group(1), m.group(2), m.group(3)
        segs = re.split(r";", inner)
        kept = []
        for seg in segs:
            if _drop_segment(seg, c):
                continue
            # "(poorly formed glands, arrows)" -> "(poorly formed glands)": drop marker-only comma parts
            parts = seg.split(",")
            if len(parts) > 1 and c.marker_word.search(seg):
                parts = [p for p in parts if not (c.marker_word.search(p) and _drop_segment(p, c))]
            kept.append(",".join(parts).strip())
        kept = [k for k in kept if k]
        if not kept:
            return "\x00"  # placeholder: removed, along with the space before it (in _tidy)
        new = f"{open_}{'; '.join(kept)}{close}"
        return m.group(0) if new.replace(" ", "") == m.group(0).replace(" ", "") else new

    return re.sub(r"([(\[])([^()\[\]]*)([)\]])", fix, text)


def _remove_phrases(text: str, c: _Cleaner) -> str:
    # cheap keyword checks first: the phrase patterns start with optional spaces and are slow to scan
    if c.crossref_target_word.search(text):
        text = c.crossref_phrase.sub("", text)
    if c.marker_word.search(text):
        for p in c.marker_phrases:
            text = p.sub("", text)
    return text


_MAGNIFICATION = re.compile(r"(?<=[\s(,;:])(?<!\d\s)[xX]\s?(\d{2,4})\b(?!\s*(?:[xX×]|mm|cm|µm|μm|nm|m)\b)")


def _tidy(text: str) -> str:
    text = re.sub(r"\s*\x00", "", text)
    text = re.sub(r"\(\s*\)|\[\s*\]", "", text)
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"\s+([.,;:!?)\]])", r"\1", text)
    text = re.sub(r"([(\[])\s+", r"\1", text)
    # runs of punctuation left by removals: ", ." -> "." ; ". ," -> "."
    text = re.sub(r"([.,;:])(?:\s*[.,;:])+", lambda m: "." if "." in m.group(0) else m.group(1), text)
    text = re.sub(r"^[\s.,;:|•·\-–—)\]]+", "", text)
    text = re.sub(r"[\s,;:\-–—(\[]+$", "", text)
    return text.strip()


def _clean_once(text: str, c: _Cleaner) -> str:
    text = _normalize_unicode(text, c)
    text = re.sub(r"\s+", " ", text).strip()
    text = _fix_split_ligatures(text, c)
    text = _join_hyphen_breaks(text, c)
    text = _strip_label(text, c)
    text = _clean_parentheticals(text, c)
    text = _remove_credits(text, c)
    text = _remove_phrases(text, c)
    text = _MAGNIFICATION.sub(r"×\1", text)
    return _tidy(text)


def clean_caption(text: str) -> str:
    """The cleaned caption (see module docstring); idempotent, '' for an empty or label-only caption."""
    if not text:
        return ""
    c = _cleaner()
    out = text
    for _ in range(_MAX_PASSES):
        new = _clean_once(out, c)
        if new == out:
            break
        out = new
    return out


@lru_cache(maxsize=1)
def _regions() -> tuple[re.Pattern[str], re.Pattern[str] | None]:
    lex = load_lexicon("sensitive_regions.yaml")
    pats = [p for plist in lex["regions"].values() for p in plist]
    alt = "|".join(f"(?:{p})" for p in sorted(pats, key=len, reverse=True))
    excl = lex.get("exclude") or []
    ex = re.compile("|".join(f"(?:{p})" for p in excl), re.I) if excl else None
    return re.compile(rf"\b(?:{alt})\b", re.I), ex


def intimate_regions(text: str) -> list[str]:
    """Intimate body regions named in ``text``, as the matched words (lower-case, first occurrence order).

    Covered (see ``sensitive_regions.yaml``): genitalia of both sexes, perianal/perineal region, anus, buttocks,
    breast/nipple/areola, pubic area, groin/inguinal fold. Phrases in the lexicon's ``exclude`` list ("inguinal
    lymph node", "breast milk") do not count. The caller decides what a hit means for the image (a pathology
    slide "of breast tissue" is not an intimate photograph).
    """
    if not text:
        return []
    pat, ex = _regions()
    blocked = [m.span() for m in ex.finditer(text)] if ex else []
    found: list[str] = []
    for m in pat.finditer(text):
        if any(a <= m.start() < b for a, b in blocked):
            continue
        word = re.sub(r"\s+", " ", m.group(0).lower())
        if word not in found:
            found.append(word)
    return found
