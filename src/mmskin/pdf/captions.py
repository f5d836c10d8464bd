"""Caption detection: which printed lines are a figure's caption, and its label.

A caption starts a line with a figure label ("Fig. 3.2", "Figure 12-4", "FIGURE 7.1", "Fig. 10.1.1", "Plate 4")
followed by a separator, a font change or a capitalised word; in-text citations ("(Fig. 3.2)", "as shown in
Figure 4", a paragraph opening "Figure 4 shows …") are not captions. Panel markers inside a caption are read by
:mod:`mmskin.pdf.markers`.

    >>> from mmskin.pdf.captions import find_captions, parse_label
    >>> parse_label("Fig. 3.2 Psoriasis of the elbow.").label
    '3.2'
    >>> [c.label for c in find_captions(page.lines)]          # page: mmskin.pdf.page.Page
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .page import Box, TextLine, area, h_overlap, inter_area, union, v_overlap

# "3.2", "12-4", "12 - 4", "10.1.1", "S3", "3A"; a space may stand around a dash but never after a point ("Plate 36.
# 1) …" is label 36 followed by a numbered subcaption)
_NUM = r"(?:[A-Z]?\d{1,4}(?:\.\d{1,4}|\s?[\-–—‐‑]\s?\d{1,4}){0,3}(?:[a-z]|[A-Z](?![a-z]))?|[IVXLC]{1,6})"
# "Extended Data Fig. 1", "Supplementary Figure S3", "Suppl. Fig. 2": the prefix stays in the caption text; the
# label is the number as printed
_PREFIX = r"(?P<pre>(?i:extended\s+data|supplementary|suppl\.|supporting\s+information|online)\s+)?"
_LABEL_RE = re.compile(
    rf"^{_PREFIX}(?P<kw>(?i:fig(?:ure)?s?\.|fig(?:ure)?s?(?=\s)|plate(?=\s)|pl\.))\s*(?P<num>{_NUM})(?P<rest>.*)$",
    re.DOTALL,
)
_SEP_RE = re.compile(r"^\s*([.:|•·—–\-]|\s{2,})")
# words that continue a sentence: "Figure 4 shows", "Fig. 2 and 3", "Figure 5 in the appendix"
_CITING_WORDS = {
    "shows",
    "show",
    "showed",
    "shown",
    "illustrates",
    "illustrate",
    "illustrated",
    "depicts",
    "depict",
    "demonstrates",
    "demonstrate",
    "presents",
    "present",
    "displays",
    "gives",
    "summarizes",
    "summarises",
    "compares",
    "and",
    "or",
    "to",
    "in",
    "is",
    "are",
    "was",
    "were",
    "of",
    "for",
    "from",
    "with",
    "also",
    "above",
    "below",
    "as",
    "on",
    "which",
    "that",
    "provides",
    "contains",
    "lists",
    "highlights",
    "reveals",
    "represents",
    "see",
    "has",
    "have",
    "can",
    "may",
    "should",
    "will",
    "would",
    "we",
    "it",
}


@dataclass(frozen=True)
class Label:
    keyword: str
    label: str
    rest: str  # text after the label


def _norm_num(num: str) -> str:
    return re.sub(r"\s+", "", num).replace("–", "-").replace("—", "-").replace("‐", "-").replace("‑", "-")


def parse_label(text: str) -> Label | None:
    """The figure label that opens ``text`` if it reads like a caption start (not an in-text citation)."""
    t = text.lstrip()
    m = _LABEL_RE.match(t)
    if not m:
        return None
    kw, num, rest = m.group("kw"), m.group("num"), m.group("rest")
    if kw.lower().startswith("pl") and not kw.lower().startswith("plate"):
        if not kw.endswith("."):
            return None
    pre = m.group("pre") or ""
    if (pre or kw)[0].islower():
        return None  # lower-case "figure 3" or "supplementary figure 3" is prose
    if num and num[-1] in ".-–—" and not rest:
        num = num[:-1]
    # a roman numeral label must be followed by a separator ("Plate IV." / "Figure II:")
    roman = bool(re.fullmatch(r"[IVXLC]+", num))
    label = _norm_num(num).rstrip(".-")
    if not rest.strip():
        return Label(kw, label, "")
    glued = re.match(r"^\s?[,–\-]\s?[a-h](?:\s?[,–\-]\s?[a-h])*(?=\s)", rest)
    if glued and re.search(r"\d[a-h]$", num):
        # Springer style "Fig. 5.3a–c Lichen planus": the panel range belongs to the caption, not the label
        return Label(kw, re.sub(r"[a-h]$", "", label), rest[glued.end() :].strip())
    if _SEP_RE.match(rest):
        return Label(kw, label, re.sub(r"^\s*([.:|•·—–\-]\s*)", "", rest).strip())
    if roman:
        return None
    if not rest[0].isspace():
        return None  # "Figure3D" or "Fig. 3a," glued to other text
    first = rest.split()[0]
    word = re.sub(r"[^\w]", "", first)
    if not word:
        return None  # "(see Fig. 3 ) by …", "Fig. 3, 4": a citation broken over lines
    # prose continues in lower case ("Figure 4 shows", "Fig. 2 in the appendix"); a caption's first word is
    # capitalised ("In situ hybridization", "And-shaped…") or a panel letter ("Fig. 3 a Psoriasis")
    if re.fullmatch(r"[a-h](?:\s?[,–\-]\s?[a-h])+", first):
        return Label(kw, label, rest.strip())  # "Fig. 5.3 a–c Lichen planus" / "Fig. 2 a, b Acne"
    if word[0].islower() and (word in _CITING_WORDS or not re.fullmatch(r"[a-h]", word)):
        return None
    if first.startswith("(") and re.fullmatch(r"\(\w\)", first) is None:
        return None  # "Figure 3 (left panel) shows"
    return Label(kw, label, rest.strip())


@dataclass(frozen=True)
class Caption:
    """A detected caption: its lines, box, label and full text (whitespace-normalised, hyphen breaks joined)."""

    label: str
    text: str
    bbox: Box
    lines: tuple[TextLine, ...]

    def __post_init__(self) -> None:
        if not self.text:
            raise ValueError("empty caption")


def _join_lines(lines: list[TextLine]) -> str:
    out = ""
    for ln in lines:
        t = ln.text.strip()
        if not out:
            out = t
        elif out.endswith("-") and len(out) > 1 and out[-2].isalpha() and t[:1].islower():
            out = out[:-1] + t  # "hyper-\nkeratosis" -> "hyperkeratosis"
        else:
            out += " " + t
    return " ".join(out.split())


_LABEL_WORD = re.compile(r"^(fig(ure)?s?\.?|plate)$", re.IGNORECASE)
_LABEL_NUM = re.compile(r"^([A-Z]?\d|[IVXLC]+\b)")


def _split_label_number(lines: list[TextLine], i: int) -> int | None:
    """Index of the number of a label split from its keyword on one printed line ("FIGURE        12-1":
    justified captions, and OCR lines cut at wide gaps), or None."""
    if i + 1 >= len(lines) or not _LABEL_WORD.match(lines[i].text):
        return None
    ln, nx = lines[i], lines[i + 1]
    h = nx.bbox[3] - nx.bbox[1]
    same_row = abs(ln.bbox[1] - nx.bbox[1]) < 0.3 * h and abs(ln.bbox[3] - nx.bbox[3]) < 0.3 * h
    if nx.block == ln.block and same_row and nx.bbox[0] >= ln.bbox[2] - 1 and _LABEL_NUM.match(nx.text):
        return i + 1
    return None


def _is_ocr(ln: TextLine) -> bool:
    return bool(ln.spans) and ln.spans[0].font == "ocr"


def _same_size(nx: TextLine, first: TextLine, last: TextLine, lh: float) -> bool:
    """Is ``nx`` printed in the caption's size? An OCR'd line's size is guessed from its ink height ("(g/l)" reads
    taller), so for those the line pitch of the caption's own lines decides instead."""
    if abs(nx.size - first.size) <= 0.6 or abs(nx.size - last.size) <= 0.6:
        return True
    return _is_ocr(nx) and _is_ocr(last) and 0 < nx.bbox[1] - last.bbox[1] <= 1.6 * lh


def _same_printed_line(nx: TextLine, last: TextLine, lh: float, same_block: bool) -> bool:
    """``nx`` goes on the printed line that ``last`` ends: same row, starting right after it. Spans of one block
    may be a few line heights apart (justified, a label's em space); Tesseract also cuts a line into two lines of
    different blocks ("FIGURE 22. Graph" | "of training ..."), which are joined only when they nearly touch."""
    if abs(nx.bbox[1] - last.bbox[1]) >= 0.5 * lh or nx.bbox[0] < last.bbox[2] - 1:
        return False
    lone_label = (lab := parse_label(last.text)) is not None and not lab.rest.strip()
    if same_block or (
        lone_label and _is_ocr(nx)
    ):  # "Figure 6" in a margin column, its text indented beside it
        return nx.bbox[0] <= last.bbox[2] + 3 * max(lh, 1.0)
    return _is_ocr(nx) and _is_ocr(last) and nx.bbox[0] <= last.bbox[2] + 1.5 * lh


def _by_rows(lines: list[TextLine], lh: float) -> list[TextLine]:
    """Lines in reading order, row by row (a piece OCR read later may belong to an earlier row)."""
    rows: list[list[TextLine]] = []
    for ln in sorted(lines, key=lambda ln: ln.bbox[1]):
        if rows and abs(ln.bbox[1] - rows[-1][0].bbox[1]) < 0.5 * lh:
            rows[-1].append(ln)
        else:
            rows.append([ln])
    return [ln for row in rows for ln in sorted(row, key=lambda ln: ln.bbox[0])]


def find_captions(lines: tuple[TextLine, ...] | list[TextLine]) -> list[Caption]:
    """Captions on a page: a label line plus the lines that continue it.

    Continuation lines follow in the same block, or in the next lines below that share the caption's column,
    font size and line spacing, until a blank gap, another label, or a change of font size.
    """
    lines = list(lines)
    used: set[int] = set()
    caps: list[Caption] = []
    for i, ln in enumerate(lines):
        if i in used:
            continue
        lab = parse_label(ln.text)
        number = _split_label_number(lines, i) if lab is None else None
        if number is not None:
            lab = parse_label(f"{ln.text} {lines[number].text}")
        if lab is None:
            continue
        # a label mid-paragraph (previous line of the same block continues the text) is a citation
        prev = lines[i - 1] if i > 0 else None
        if (
            prev is not None
            and prev.block == ln.block
            and prev.bbox[3] <= ln.bbox[1] + 2
            and h_overlap(prev.bbox, ln.bbox) > 0
            and not prev.text.rstrip().endswith((".", ":", ")"))
            and parse_label(prev.text) is None
        ):
            continue
        group = [ln]
        used.add(i)
        if number is not None:
            group.append(lines[number])
            used.add(number)
        first = union([g.bbox for g in group])
        lh = max(1.0, first[3] - first[1])
        right_limit, left_limit = float("inf"), float("-inf")
        last = group[-1]
        for j in range(i + 1, len(lines)):
            nx = lines[j]
            if j in used:
                continue
            same_block = nx.block == last.block
            nx_label = parse_label(nx.text) is not None
            if not nx_label and any(_same_printed_line(nx, g, lh, nx.block == g.block) for g in group):
                # the same printed line, split into two spans (a label in a figure beside it is not)
                group.append(nx)
                used.add(j)
                continue
            gb = union([g.bbox for g in group])
            if v_overlap(nx.bbox, gb) > 0.3 * (nx.bbox[3] - nx.bbox[1]) and h_overlap(nx.bbox, gb) <= 0:
                if nx.bbox[0] >= gb[2]:
                    right_limit = min(right_limit, nx.bbox[0])
                elif nx.bbox[2] <= gb[0]:
                    left_limit = max(left_limit, nx.bbox[2])
            if h_overlap(nx.bbox, gb) <= 0 or nx.bbox[1] < last.bbox[1] + 0.5 * lh:
                # another column, or text beside/above the caption (OCR and some PDFs interleave the lines
                # of side-by-side captions): not a continuation, but not the end of this caption either
                continue
            if nx_label:
                break
            dy = nx.bbox[1] - last.bbox[3]
            # text seen beside the caption bounds its column: a line reaching into it is the body text the
            # caption sat next to (text wrapped round a figure), not more caption
            if nx.bbox[2] > right_limit + 1 or nx.bbox[0] < left_limit - 1:
                break
            # same column: overlapping most of the narrower of the two (a label alone on its line is narrow),
            # or starting at the same left edge
            col_ok = h_overlap(nx.bbox, gb) > 0.5 * min(nx.bbox[2] - nx.bbox[0], gb[2] - gb[0]) and (
                abs(nx.bbox[0] - gb[0]) < 0.25 * (gb[2] - gb[0]) + 3
                or h_overlap(nx.bbox, gb) > 0.5 * (nx.bbox[2] - nx.bbox[0])
            )
            size_ok = _same_size(nx, ln, group[-1], lh)
            if not col_ok or (not size_ok and not same_block):
                break
            if dy > 0.9 * lh and not same_block:
                break
            if not same_block and last.text.rstrip().endswith((".", "!", "?")) and nx.text[:1].islower():
                break  # the tail of a paragraph that wrapped round the figure, not more caption
            if dy > 1.6 * lh:
                break
            group.append(nx)
            used.add(j)
            last = nx
        group = _by_rows(group, lh)
        text = _join_lines(group)
        bb = union([g.bbox for g in group])
        cap = Caption(lab.label, text, bb, tuple(group))
        # the same caption twice at one place (a hidden duplicate text layer, overprinting): keep the first
        if any(
            c.label == cap.label and inter_area(c.bbox, bb) > 0.5 * min(area(c.bbox), area(bb)) for c in caps
        ):
            continue
        caps.append(cap)
    return caps
