"""Panel markers in a caption: which panels it names, and each panel's own subcaption.

Letter markers come in many styles: "(a) … (b)", "(A–C)", "(a, b)", "a) … b)", "A, … B, …", Springer's bare
"a … b …", postfix "elbow (a) and knee (b)", "Left: … Right: …", "Top … bottom", grid names "(a1) … (b2)".
Numbered markers ("1) … 2) …", "(1) … (2)") are read as a second family (rows or groups of a grid). Each
panel's caption reads as a sentence on its own: the shared text + its own item, so "Wheals on the (A) face,
(B) legs and (C) chest" gives panel b "Wheals on the legs".

    >>> from mmskin.pdf.markers import split_panels
    >>> sp = split_panels("Fig. 3.2 Psoriasis. (a) Elbow. (b) Knee.")
    >>> [p.letter for p in sp.panels], sp.caption_for("b")
    (['a', 'b'], 'Fig. 3.2 Psoriasis. Knee.')
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .captions import _LABEL_RE

Span = tuple[int, int]
Mark = tuple[int, int, list[str]]  # (start, end, names) of one marker in the caption


@dataclass(frozen=True)
class Panel:
    letter: str  # "a", "b", … (or "a1" for a grid name, "1" for a numbered row)
    text: str  # the panel's own subcaption (may be empty)


@dataclass(frozen=True)
class PanelSplit:
    shared: str  # caption text outside all subcaptions (label included)
    panels: tuple[Panel, ...] = field(default=())
    style: str = ""  # "paren", "closeparen", "letter", "bare", "position", ""
    rows: tuple[Panel, ...] = field(default=())  # numbered items "1) … 2) …", when the caption has them

    @property
    def letters(self) -> list[str]:
        return [p.letter for p in self.panels]

    def caption_for(self, name: str) -> str:
        """Shared part + the subcaptions a panel name refers to ("b"; "1a" = row 1 + letter a; "1a-2")."""
        texts = {p.letter: p.text for p in self.panels}
        rows = {p.letter: p.text for p in self.rows}
        base = name.split("-")[0]
        parts = []
        m = re.fullmatch(r"(\d+)?([a-z]\d?)?", base)
        if m and m.group(1) and m.group(1) in rows:
            parts.append(rows[m.group(1)])
        if m and m.group(2):
            parts.append(texts.get(m.group(2), texts.get(m.group(2)[0], "")))
        elif base in texts:
            parts.append(texts[base])
        return " ".join(" ".join([self.shared, *parts]).split())


def _consecutive(names: list[str]) -> bool:
    """a, b, c … from a; or grid names a1, a2, b1 … (letters from a, numbers from 1 within each letter)."""
    if not names:
        return False
    if all(len(n) == 2 and n[1].isdigit() for n in names):
        letters = sorted({n[0] for n in names})
        if not _consecutive(letters):
            return False
        for c in letters:
            nums = sorted(int(n[1]) for n in names if n[0] == c)
            if nums != list(range(1, len(nums) + 1)):
                return False
        return True
    if not all(len(n) == 1 for n in names):
        return False
    ords = [ord(c.lower()) for c in names]
    return ords[0] == ord("a") and all(b == a + 1 for a, b in zip(ords, ords[1:]))


def _expand(spec: str) -> list[str]:
    """'a' -> [a]; 'a,b' / 'a and b' / 'a–c' -> the letters; 'a1' -> [a1]."""
    s = spec.lower().replace(" ", "")
    m = re.fullmatch(r"([a-z])[-–—]([a-z])", s)
    if m:
        return [chr(c) for c in range(ord(m.group(1)), ord(m.group(2)) + 1)]
    parts = re.split(r",|and|&", s)
    return [p for p in parts if re.fullmatch(r"[a-z]\d?", p)]


def _label_end(caption: str) -> int:
    m = _LABEL_RE.match(caption)
    return len(caption) - len(m.group("rest")) if m else 0


_ITEM_TAIL = re.compile(r"(?:[\s,;]+|\s+(?:and|or|&)\b)+$")
_ITEM_HEAD = re.compile(r"^(?:[\s,;:.]+|(?:and|or|&)\s+)+")


def _clean(text: str) -> str:
    """An item as a phrase: no list glue around it ("and legs," -> "legs")."""
    return _ITEM_TAIL.sub("", _ITEM_HEAD.sub("", " ".join(text.split())))


def _items(caption: str, marks: list[Mark], postfix: bool, stops: list[int]) -> dict[str, list[Span]]:
    """Caption spans of each name's subcaption. ``stops``: positions where an item must end (markers and items
    of the other family)."""
    items: dict[str, list[Span]] = {}
    if not postfix:
        for k, (_s, e, names) in enumerate(marks):
            nxt = marks[k + 1][0] if k + 1 < len(marks) else len(caption)
            nxt = min([nxt] + [p for p in stops if p >= e])
            for c in names:
                items.setdefault(c, []).append((e, nxt))
        return items
    prev_end = 0
    for s, e, names in marks:
        start = prev_end
        if prev_end == 0:
            # the shared lead-in ends at the sentence boundary before the first subcaption
            lab = _label_end(caption)
            cut = max(caption.rfind(". ", lab, s), caption.rfind(": ", lab, s))
            start = cut + 2 if cut >= 0 else lab
        start = max([start] + [p for p in stops if p <= s])
        for c in names:
            items.setdefault(c, []).append((start, s))
        prev_end = e
    return items


def _panels(caption: str, items: dict[str, list[Span]]) -> tuple[Panel, ...]:
    def text(c: str) -> str:
        return " ".join(_clean(caption[a:b]) for a, b in items[c]).strip()

    return tuple(Panel(c, text(c)) for c in sorted(items, key=lambda n: (n[0], n[1:])))


def _shared(caption: str, covered: list[Span]) -> str:
    """Caption text outside every marker and item, with orphaned list punctuation removed."""
    keep = []
    pos = 0
    for a, b in sorted(covered):
        if a > pos:
            keep.append(caption[pos:a])
        pos = max(pos, b)
    keep.append(caption[pos:])
    keep = [k for k in keep if k.strip(" .,;:")]  # list glue left between removed items
    text = " ".join(" ".join(keep).split())
    text = re.sub(r"\s+([.,;:])", r"\1", text)
    text = re.sub(r"([,;:])(?:[\s,;:]*[,;:])+", r"\1", text)  # "; ;" left between removed items
    text = re.sub(r"[\s,;]+(?=[.]|$)", "", text)
    text = re.sub(r"(?<=[.:])[\s.,;]+$", "", text)
    return text.strip()


def _letter_marks(caption: str, positions: bool) -> tuple[list[Mark], bool, str] | None:
    styles = (_paren, _close_paren, _letter_comma, _bare_letter) + ((_positions,) if positions else ())
    for fn in styles:
        res = fn(caption)
        if res is None:
            continue
        marks, postfix, style = _run_from_a(res[0]), res[1], res[2]
        names = []
        for _, _, ns in marks:
            names += [c for c in ns if c not in names]
        if len(names) >= 2 and _consecutive(sorted(names, key=lambda n: (n[0], n[1:]))):
            return marks, postfix, style
    return None


def _run_from_a(marks: list[Mark]) -> list[Mark]:
    """The markers of the letters a, b, c, … up to the first missing one: "(N)" for an N-terminus or "(I)" for
    a class among "(A)–(E)" is not a panel."""
    single = {c for _, _, ns in marks for c in ns if len(c) == 1}
    if not single:
        return marks
    last = "a"
    while chr(ord(last) + 1) in single:
        last = chr(ord(last) + 1)
    keep = {chr(c) for c in range(ord("a"), ord(last) + 1)} if "a" in single else set()
    if len(keep) >= 2:  # lettered panels: "(S1)" for an electrode is not a grid name
        return [m for m in marks if all(c in keep for c in m[2])]
    return [m for m in marks if all(len(c) > 1 or c in keep for c in m[2])]


def split_panels(caption: str, positions: bool = True) -> PanelSplit:
    """Split a caption at its panel markers; no markers (or an inconsistent sequence) gives no panels.

    ``positions``: also read "Left: … Right: …" / "Top … bottom" as panels a, b (the build asks for this only
    with ``--position-panels``: a figure list of lettered panels counts such a figure as one picture)."""
    letters = _letter_marks(caption, positions)
    numbers = _number_marks(caption)
    if letters is None and numbers is None:
        return PanelSplit(caption)
    covered: list[Span] = []
    panels: tuple[Panel, ...] = ()
    style = ""
    letter_items: dict[str, list[Span]] = {}
    if letters is not None:
        marks, postfix, style = letters
        stops = [s for s, _, _ in numbers] if numbers else []
        letter_items = _items(caption, marks, postfix, stops)
        panels = _panels(caption, letter_items)
        covered += [(s, e) for s, e, _ in marks] + [sp for v in letter_items.values() for sp in v]
    rows: tuple[Panel, ...] = ()
    if numbers is not None:
        stops = [a for v in letter_items.values() for a, _ in v] + (
            [s for s, _, _ in letters[0]] if letters else []
        )
        number_items = _items(caption, numbers, False, stops)
        rows = _panels(caption, number_items)
        covered += [(s, e) for s, e, _ in numbers] + [sp for v in number_items.values() for sp in v]
    if letters is None:
        # numbered items alone name the panels ("(1) … (2) …")
        return PanelSplit(_shared(caption, covered), rows, "number")
    return PanelSplit(_shared(caption, covered), panels, style, rows)


def _number_marks(caption: str) -> list[Mark] | None:
    """'1) … 2) …' or '(1) … (2) …' after the label, numbered from 1."""
    lab = _label_end(caption)
    pat = re.compile(r"(?:(?<=^)|(?<=[\s;:,.]))\(?([1-9])\)(?=\s)")
    marks = [(m.start(), m.end(), [m.group(1)]) for m in pat.finditer(caption, lab)]
    nums = [int(ns[0]) for _, _, ns in marks]
    if len(nums) < 2 or nums != list(range(1, len(nums) + 1)):
        return None
    return marks


def _paren(caption: str) -> tuple[list[Mark], bool, str] | None:
    # "(a)", "(A)", "(a, b)", "(a–c)", "(a and b)", "(a1)"
    pat = re.compile(r"\(\s*([a-zA-Z]\d?(?:\s*(?:[,–—-]|and|&)\s*[a-zA-Z]\d?)*)\s*\)")
    marks = [(m.start(), m.end(), ls) for m in pat.finditer(caption) if (ls := _expand(m.group(1)))]
    if len(marks) < 2 and not (len(marks) == 1 and len(marks[0][2]) >= 2):
        return None
    return marks, _postfix_vote(caption, marks), "paren"


def _close_paren(caption: str) -> tuple[list[Mark], bool, str] | None:
    # "a) original network; b) modified network" (no opening parenthesis)
    pat = re.compile(r"(?:(?<=^)|(?<=[\s;:,.]))([a-zA-Z]\d?)\)(?=\s)")
    marks = [(m.start(), m.end(), [m.group(1).lower()]) for m in pat.finditer(caption, _label_end(caption))]
    if len(marks) < 2:
        return None
    return marks, _postfix_vote(caption, marks), "closeparen"


def _postfix_vote(caption: str, marks: list[Mark]) -> bool:
    """Does each marker follow its subcaption ("elbow (a) and knee (b).") rather than open it?"""
    after = [caption[e:].strip()[:1] for _, e, _ in marks]
    before = [caption[:s].rstrip()[-1:] for s, _, _ in marks]
    postfix_votes = sum(1 for a in after if a in {"", ".", ",", ";", "a", "&"} or a in ")")
    postfix_votes += sum(1 for b in before if b.isalpha() or b in ")")
    prefix_votes = sum(1 for a in after if a[:1].isupper() or a[:1].isalpha()) + sum(
        1 for b in before if b in {".", ";", ":", ",", ""}
    )
    return postfix_votes > prefix_votes


def _letter_comma(caption: str) -> tuple[list[Mark], bool, str] | None:
    # "A, Clinical photo. B, Dermoscopy." / "A: … B: …" / "a. … b. …" at sentence starts
    pat = re.compile(
        r"(?:(?<=^)|(?<=[.;:]\s)|(?<=[.;:]))\s*([A-Za-z](?:\s*(?:,|and|&)\s*[A-Za-z])?)\s*[,:.]\s+(?=[A-Z(])"
    )
    offset = _label_end(caption)
    # a lone capital "A." opening a sentence could be an initial or article: accepted only in a sequence
    marks = [
        (m.start(1) + offset, m.end() + offset, _expand(m.group(1))) for m in pat.finditer(caption[offset:])
    ]
    return (marks, False, "letter") if _is_sequence(marks) else None


def _bare_letter(caption: str) -> tuple[list[Mark], bool, str] | None:
    # Springer style: "Fig. 3.2 a Psoriasis on the elbow. b Nail pitting."
    offset = _label_end(caption)
    pat = re.compile(r"(?:(?<=^)|(?<=[.;]\s)|(?<=^\s))\s*([a-z](?:\s*,\s*[a-z])?)\s+(?=[A-Z(])")
    marks = [
        (m.start(1) + offset, m.end() + offset, _expand(m.group(1))) for m in pat.finditer(caption[offset:])
    ]
    return (marks, False, "bare") if _is_sequence(marks) else None


def _is_sequence(marks: list[Mark]) -> bool:
    seq = [c for _, _, ls in marks for c in ls]
    return len(seq) >= 2 and _consecutive(seq)


def _positions(caption: str) -> tuple[list[Mark], bool, str] | None:
    pat = re.compile(
        r"(?:(?<=^)|(?<=[.;:]\s)|(?<=^\s))\s*(left|right|top|bottom|upper|lower|middle|center|centre)"
        r"(?:\s+(?:panel|image|photo|figure))?\s*[:,)\-–—]\s*",
        re.IGNORECASE,
    )
    offset = _label_end(caption)
    found = [
        (m.start(1) + offset, m.end() + offset, m.group(1).lower()) for m in pat.finditer(caption[offset:])
    ]
    if len(found) < 2:
        return None
    words = [w for _, _, w in found]
    horiz = {"left", "right", "middle", "center", "centre"}
    vert = {"top", "bottom", "upper", "lower", "middle", "center", "centre"}
    if not (all(w in horiz for w in words) or all(w in vert for w in words)):
        return None
    order = (
        ["left", "middle", "center", "centre", "right"]
        if words[0] in horiz
        else ["top", "upper", "middle", "center", "centre", "bottom", "lower"]
    )
    ranks = sorted({order.index(w) for w in words})
    if len(ranks) != len(words):
        return None
    marks = []
    for s, e, w in found:
        letter = chr(ord("a") + ranks.index(order.index(w)))
        if caption[s - 1 : s] == "(":
            s -= 1
        marks.append((s, e, [letter]))
    return marks, False, "position"
