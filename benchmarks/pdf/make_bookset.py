"""Build a gold-annotated set of textbook-style PDFs for the figure/panel + caption extraction benchmark.

Every image, panel, drawing and caption is placed by this script, so the ground truth is exact. The material is
real: clinical photos with their NCI expert descriptions, H&E tiles, dermoscopy images (captions from their real
diagnosis/age/sex/site metadata), charts and diagrams, and pathology-textbook captions and sentences
(ARCH books set, *Basic Pathology*, PathVQA) from ``shared/data``. Layouts vary per book (one or two columns,
captions below / above / beside, side-by-side figures, full-width figures on two-column pages, separate-image
and composite panels, strip-tiled / SMask / CMYK / grey / JPX images, vector charts, decorative rules and boxes,
a figure-less book with a list of figures, and a scanned copy with no text layer). Two later books hold what real
publisher PDFs do: 2x2 and 3x4 grids (one composite or separate images, 3 pt / 6 pt gutters in white, black or a
colour, framed panels, letters burned into the pixels or set in the text layer inside the panels, lettered down
the columns, "1)" rows x "(a)" columns, names a1 ... c4), labels in small capitals ("F" + "IG. 3.1"), text
layers without space characters ("glued") or with one text object per word, and captions in the other column.
Panel names in the GT follow the printed names ("c" for the top-right panel of a column-major grid, "2b").

For every ``<name>.pdf`` a ``<name>.gt.json`` is written::

    {"file": "<name>.pdf", "style": "...", "pages": N, "scanned": false,
     "items": [{"page": 1, "bbox": [x0, y0, x1, y1], "figure_label": "3.2", "panel": "a" | null,
                "caption": "Fig. 3.2 ... (a) ... (b) ...", "subcaption": "..." | null,
                "caption_bbox": [...], "tags": ["panels", "caption_below", ...]}]}

Boxes are PDF points with a top-left origin. ``caption_bbox`` and ``tags`` are informational extras.

Example::

    .venv/bin/python benchmarks/pdf/make_bookset.py --out benchmarks/_work/bookset --seed 0
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import json
import math
import random
import re
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any

import numpy as np
import pymupdf
from PIL import Image, ImageDraw, ImageFilter, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, for _common
# DEFAULT_DATA stays a name of this module: callers and tests read make_bookset.DEFAULT_DATA
from _common import DEFAULT_DATA, WORK, add_data_argument  # noqa: E402, F401

DEFAULT_OUT = WORK / "bookset"

PAGE_SIZES = {"a4": (595.0, 842.0), "letter": (612.0, 792.0), "7x10": (504.0, 720.0)}
FIG_GAP = 13.0  # vertical space between a figure block and body text
MAX_CAPTION_LINES = 6

# ---------------------------------------------------------------------------------------------------------------
# text helpers
# ---------------------------------------------------------------------------------------------------------------

_ALLOWED = set(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:!?'\"()[]/-+%&=<>*#°µ×éèàüöäçñ–—‘’“”"
)
_BROKEN_LIGATURE = re.compile(r"(?:fi|fl)\s(?=[a-z])|\bff\s(?=[a-z])|\s(?:fi|fl)\b")
_FIG_WORD = re.compile(r"\b(fig|figs|figure|figures|plate|inset|insets)\b", re.I)


def clean_text(text: str) -> str:
    """Whitespace-normalised text restricted to characters the built-in fonts print; '' if it looks broken."""
    text = text.replace("\u00a0", " ").replace("\t", " ")
    text = " ".join(text.split()).strip(" .") if text.strip().startswith(".") else " ".join(text.split())
    if not text or _BROKEN_LIGATURE.search(text) or any(ch not in _ALLOWED for ch in text):
        return ""
    if text[-1] not in ".;!?":
        text += "."
    return text[0].upper() + text[1:]


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.;!?])\s+(?=[A-Z])", text) if s.strip()]


def first_sentences(text: str, max_chars: int) -> str:
    """Leading whole sentences of ``text`` not longer than ``max_chars`` (at least the first sentence)."""
    out = ""
    for s in split_sentences(text):
        if out and len(out) + 1 + len(s) > max_chars:
            break
        out = f"{out} {s}".strip()
    return out


def norm_ws(text: str) -> str:
    return " ".join(text.split())


_FONT_CACHE: dict[str, pymupdf.Font] = {}


def font(name: str) -> pymupdf.Font:
    """A built-in font; "hebo*0.78" is hebo drawn at 0.78 of the block's size (small capitals)."""
    base = name.split("*", 1)[0]
    if base not in _FONT_CACHE:
        _FONT_CACHE[base] = pymupdf.Font(base)
    return _FONT_CACHE[base]


def piece_size(fnt: str, size: float) -> float:
    """Font size of a piece: the block's size, scaled where the font name carries a "*ratio"."""
    return size * float(fnt.split("*", 1)[1]) if "*" in fnt else size


Piece = tuple[str, str]  # (text, font name)
Word = list[Piece]


BREAK = "\n"  # a word that is only a line break


def to_words(runs: list[Piece]) -> list[Word]:
    """Split runs of (text, font) into words; a word may consist of pieces in different fonts; "\\n" breaks."""
    words: list[Word] = []
    cur: Word = []
    for text, fnt in runs:
        for j, chunk in enumerate(text.split(BREAK)):
            if j > 0:
                if cur:
                    words.append(cur)
                    cur = []
                words.append([(BREAK, fnt)])
            for i, part in enumerate(chunk.split(" ")):
                if i > 0 and cur:
                    words.append(cur)
                    cur = []
                if part:
                    cur.append((part, fnt))
    if cur:
        words.append(cur)
    return words


_WIDTHS: dict[tuple[str, str, float], float] = {}


def text_width(text: str, fnt: str, size: float) -> float:
    key = (text, fnt, size)
    w = _WIDTHS.get(key)
    if w is None:
        w = _WIDTHS[key] = font(fnt).text_length(text, piece_size(fnt, size))
    return w


def word_width(word: Word, size: float) -> float:
    return sum(text_width(t, f, size) for t, f in word)


def take_line(words: list[Word], width: float, size: float, indent: float = 0.0) -> int:
    """How many of ``words`` fit on one line of ``width`` (at least one)."""
    w = indent
    for i, word in enumerate(words):
        add = word_width(word, size) + (text_width(" ", word[0][1], size) if i else 0.0)
        if i and w + add > width:
            return i
        w += add
    return len(words)


def wrap_words(words: list[Word], width: float, size: float, first_indent: float = 0.0) -> list[list[Word]]:
    lines: list[list[Word]] = []
    cur: list[Word] = []
    cur_w = first_indent
    for w in words:
        if w[0][0] == BREAK:
            if cur:
                lines.append(cur)
                cur, cur_w = [], 0.0
            continue
        ww = word_width(w, size)
        sp = text_width(" ", w[0][1], size) if cur else 0.0
        if cur and cur_w + sp + ww > width:
            lines.append(cur)
            cur, cur_w = [w], ww
        else:
            cur.append(w)
            cur_w += sp + ww
    if cur:
        lines.append(cur)
    return lines


def draw_line(
    tw: pymupdf.TextWriter,
    words: list[Word],
    x: float,
    baseline: float,
    size: float,
    width: float | None = None,
) -> float:
    """Draw one line. ``width`` given: justify (every word placed separately); else ragged, whole strings."""
    if width is not None and len(words) > 1:
        natural = sum(word_width(w, size) for w in words)
        gap = (width - natural) / (len(words) - 1)
        for w in words:
            xx = x
            for t, f in w:
                tw.append((xx, baseline), t, font=font(f), fontsize=piece_size(f, size))
                xx += text_width(t, f, size)
            x += word_width(w, size) + gap
        return x
    segs: list[Piece] = []
    for i, w in enumerate(words):
        for j, (t, f) in enumerate(w):
            t = (" " + t) if (i > 0 and j == 0) else t
            if segs and segs[-1][1] == f:
                segs[-1] = (segs[-1][0] + t, f)
            else:
                segs.append((t, f))
    for t, f in segs:
        tw.append((x, baseline), t, font=font(f), fontsize=piece_size(f, size))
        x += text_width(t, f, size)
    return x


# How words reach the text layer. "normal": a line is a few strings with real spaces (or, justified, one string per
# word). "glued": every word on its own at a computed x, with no space characters and a gap below the 0.15 em at
# which MuPDF puts a space back, so plain text extraction reads "structureoftheRgt2glucosesensor" while a reader
# sees the words apart. "word_per_line": every word is its own text object, emitted right to left within the line
# (as some producers write them), so PyMuPDF reports one line per word and starts a new block at every printed line.
TEXT_MODES = ("normal", "glued", "word_per_line")
GLUE_EM = 0.12  # word gap of glued text, in em


def word_xs(
    words: list[Word], x: float, size: float, mode: str, width: float | None = None, glue: float = GLUE_EM
) -> list[float]:
    """Left edge of every word of a line: glued gaps, justified to ``width``, or one space apart."""
    xs = []
    if mode == "glued":
        gaps = [glue * size] * len(words)
    elif width is not None and len(words) > 1:
        gaps = [(width - sum(word_width(w, size) for w in words)) / (len(words) - 1)] * len(words)
    else:
        gaps = [text_width(" ", w[0][1], size) for w in words[1:]] + [0.0]
    for w, g in zip(words, gaps):
        xs.append(x)
        x += word_width(w, size) + g
    return xs


def draw_words(
    page: pymupdf.Page,
    tw: pymupdf.TextWriter,
    words: list[Word],
    x: float,
    baseline: float,
    size: float,
    mode: str,
    width: float | None = None,
    color: tuple[float, float, float] = (0, 0, 0),
    glue: float = GLUE_EM,
) -> None:
    """Draw one line word by word in a "glued" (into ``tw``) or "word_per_line" (straight onto the page) mode."""
    placed = list(zip(words, word_xs(words, x, size, mode, width if mode != "glued" else None, glue)))
    if mode == "word_per_line":
        placed.reverse()
    for w, xx in placed:
        wt = tw if mode == "glued" else pymupdf.TextWriter(page.rect)
        for t, f in w:
            wt.append((xx, baseline), t, font=font(f), fontsize=piece_size(f, size))
            xx += text_width(t, f, size)
        if mode == "word_per_line":
            wt.write_text(page, color=color)


@dataclass
class TextBlock:
    """A wrapped block of text (caption, box content) with an exact height."""

    lines: list[list[Word]]
    size: float
    leading: float
    width: float
    justify: bool = False
    align: str = "left"
    mode: str = "normal"  # one of TEXT_MODES

    @property
    def asc(self) -> float:
        return max(font(p[1]).ascender for ln in self.lines for w in ln for p in w) * self.size

    @property
    def desc(self) -> float:
        return -min(font(p[1]).descender for ln in self.lines for w in ln for p in w) * self.size

    @property
    def height(self) -> float:
        return self.asc + (len(self.lines) - 1) * self.leading + self.desc

    def draw(
        self, page: pymupdf.Page, x: float, y: float, color: tuple[float, float, float] = (0, 0, 0)
    ) -> None:
        tw = pymupdf.TextWriter(page.rect)
        base = y + self.asc
        if self.mode != "normal":
            for i, ln in enumerate(self.lines):
                last = i == len(self.lines) - 1
                xx = x
                if self.align == "center":
                    end = word_xs(ln, 0.0, self.size, self.mode)[-1] + word_width(ln[-1], self.size)
                    xx = x + (self.width - end) / 2
                just = self.width if (self.justify and not last and self.align != "center") else None
                draw_words(page, tw, ln, xx, base, self.size, self.mode, just, color)
                base += self.leading
            tw.write_text(page, color=color)
            return
        for i, ln in enumerate(self.lines):
            last = i == len(self.lines) - 1
            if self.align == "center":
                lw = sum(word_width(w, self.size) for w in ln) + font(ln[0][0][1]).text_length(
                    " ", self.size
                ) * (len(ln) - 1)
                draw_line(tw, ln, x + (self.width - lw) / 2, base, self.size)
            else:
                draw_line(tw, ln, x, base, self.size, self.width if (self.justify and not last) else None)
            base += self.leading
        tw.write_text(page, color=color)


def make_block(
    runs: list[Piece], width: float, size: float, leading: float, justify: bool = False
) -> TextBlock:
    return TextBlock(wrap_words(to_words(runs), width, size), size, leading, width, justify)


# ---------------------------------------------------------------------------------------------------------------
# real material
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class Img:
    path: Path
    modality: str
    label: str = ""
    age: str = ""
    sex: str = ""
    site: str = ""
    caption: str = ""
    case: str = ""
    crop_top: int = 0  # pixels cut from the top (the source crops carry their own panel letter there)
    zoom: float = 1.0  # > 1: only the centre (1/zoom of each side) is shown, a detail at higher magnification


@dataclass
class PanelCaption:
    shared: str
    texts: list[str]


_PAREN = re.compile(r"\(([A-Fa-f])\)\s")
_COMMA = re.compile(r"(?:^|(?<=[\s.;]))([A-F]),\s")


def parse_panel_caption(text: str) -> PanelCaption | None:
    """Split a real multi-panel caption "Shared. (A) x (B) y" or "Shared. A, x B, y" into shared + panel texts."""
    text = " ".join(text.split()).lstrip(". ")
    text = re.sub(r"^\d+[-.]\d+[a-z]?\s+", "", text)
    for rx in (_PAREN, _COMMA):
        ms = list(rx.finditer(text))
        if len(ms) < 2:
            continue
        letters = [m.group(1).lower() for m in ms]
        if letters != [chr(ord("a") + i) for i in range(len(ms))]:
            continue
        shared = text[: ms[0].start()].strip()
        texts = [
            text[m.end() : (ms[i + 1].start() if i + 1 < len(ms) else len(text))].strip()
            for i, m in enumerate(ms)
        ]
        if re.search(r"\([A-Fa-f]\s*[-–,]|\b[A-F] and [A-F]\b|\([A-Fa-f]\)", " ".join(texts)):
            return None
        texts = [first_sentences(t, 170) for t in texts]
        texts = [clean_text(t.rstrip(" ;,")) for t in texts]
        shared = clean_text(shared) if shared else ""
        if any(not t or len(t) < 12 for t in texts) or (shared == "" and len(texts) < 2):
            return None
        if _FIG_WORD.search(shared + " ".join(texts)):
            return None
        return PanelCaption(first_sentences(shared, 160) if shared else "", texts)
    return None


SKIN_WORDS = re.compile(
    r"\b(?:skin|epiderm\w*|dermis|dermal|melanoma|melanocyt\w*|nevus|naevus|nevi|keratinocyt\w*|keratos\w*|"
    r"cutaneous|subcutis|subcutaneous|psoria\w*|lichen\w*|eczema|dermatitis|hair follicles?|sebaceous|sweat|"
    r"acanthosis|hyperkeratosis|parakeratosis|basal cell carcinoma|warts?|verruc\w*|bullous|blisters?|lupus|"
    r"urticaria\w*|mycosis fungoides|lentig\w*|dermatofibroma|panniculitis|vitiligo|pemphig\w*)\b",
    re.I,
)


class Corpus:
    """All real images and texts the books are made of (read once)."""

    def __init__(self, data: Path) -> None:
        self.data = data
        rows = list(csv.DictReader(open(data / "images" / "labels.csv", encoding="utf-8")))
        caps = {
            r["file"]: r
            for r in csv.DictReader(
                open(data / "images/clinical/nci_nevus_recognition/image_captions.csv", encoding="utf-8")
            )
        }
        self.clinical: list[Img] = []
        self.cases: dict[str, list[Img]] = defaultdict(list)
        self.histo: list[Img] = []
        self.derm: list[Img] = []
        self.other: list[Img] = []
        self.rgba: list[Img] = []
        for r in rows:
            f = r["file"]
            img = Img(data / f, r["modality"], r["label"], r["age"], r["sex"], r["site"])
            if "nci_nevus_recognition" in f and f in caps:
                cap = clean_text(caps[f]["caption"].replace("\u2019", "'"))
                if not cap:
                    continue
                img.caption, img.case = cap, caps[f]["case_title"]
                self.clinical.append(img)
                self.cases[img.case].append(img)
            elif f.startswith("images/histopathology/") and "torchstain" not in f:
                if "kriegsmann" in f:
                    img.crop_top = 100
                self.histo.append(img)
            elif "torchstain/target" in f:
                self.rgba.append(img)
            elif f.startswith("images/dermoscopy/"):
                self.derm.append(img)
            elif "openmedlab_dataset_figures" in f and r["modality"] == "other":
                if re.search(r"chart|plot|diagram|table|flow|statistic", r["label"], re.I):
                    self.other.append(img)
        for v in self.cases.values():
            v.sort(key=lambda i: i.path.name)
        self.histo.sort(key=lambda i: i.path.name)
        self._load_texts(data)

    def _load_texts(self, data: Path) -> None:
        raw: list[str] = []
        arch = json.load(open(data / "captions/arch_histopath_textbook_captions/books_set/captions.json"))
        seen: set[str] = set()
        for v in arch.values():
            if v["caption"] not in seen:
                seen.add(v["caption"])
                raw.append(v["caption"])
        for line in open(
            data / "captions/pathvqa_textbook_captions/Basic_Pathology_i2.txt", encoding="utf-8"
        ):
            parts = line.rstrip("\n").split("\t")
            if len(parts) == 2 and parts[1].strip() and parts[1] not in seen:
                seen.add(parts[1])
                raw.append(parts[1])
        self.single_caps: list[str] = []
        self.panel_caps: dict[int, list[PanelCaption]] = defaultdict(list)
        self.body: list[str] = []
        for text in raw:
            skin = bool(SKIN_WORDS.search(text))
            pc = parse_panel_caption(text)
            if pc is not None:
                if skin:
                    self.panel_caps[len(pc.texts)].append(pc)
                continue
            t = " ".join(text.split()).lstrip(". ")
            t = re.sub(r"^\d+[-.]\d+[a-z]?\s+", "", t)
            if re.search(r"\([A-Fa-f]\)|\b[A-F],\s", t):
                continue
            c = clean_text(t)
            if not c or _FIG_WORD.search(c):
                continue
            if skin and 50 <= len(c) <= 420:
                self.single_caps.append(c)
            for s in split_sentences(c)[1:]:
                if (
                    60 <= len(s) <= 260
                    and len(s.split()) >= 9
                    and s[-1] == "."
                    and not _FIG_WORD.search(s)
                    and not re.match(r"[A-Fa-f][\s,.)]", s)
                ):
                    if skin:
                        self.body.append(s)
        self.diagram_caps: list[str] = []
        for line in open(
            data / "captions/pathvqa_textbook_captions/dataset_spacerow_i.txt", encoding="utf-8"
        ):
            parts = [p for p in line.rstrip("\n").split("\t") if p.strip()]
            if len(parts) >= 2 and re.search(r"diagram|schemat", parts[1], re.I):
                c = clean_text(first_sentences(" ".join(parts[1].split()), 200))
                if c and not re.search(r"\b[A-F],\s|\([A-F]\)", c) and not _FIG_WORD.search(c):
                    self.diagram_caps.append(c)
        self.single_caps = sorted(set(self.single_caps))
        self.body = sorted(set(self.body))
        self.diagram_caps = sorted(set(self.diagram_caps))


class Pool:
    """Per-book deterministic draws without replacement (refills when exhausted)."""

    def __init__(self, rng: random.Random, items: list[Any]) -> None:
        self.rng, self.items = rng, list(items)
        self.left: list[Any] = []

    def take(self, pred: Callable[[Any], bool] | None = None) -> Any:
        for _ in range(2):
            if not self.left:
                self.left = self.rng.sample(self.items, len(self.items))
            for i, it in enumerate(self.left):
                if pred is None or pred(it):
                    return self.left.pop(i)
            self.left = []
        raise ValueError("no item satisfies the constraint")


# ---------------------------------------------------------------------------------------------------------------
# book style, captions, figures
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class Style:
    name: str
    tag: str
    page: str = "a4"
    margins: tuple[float, float, float, float] = (72, 66, 60, 60)  # top, bottom, inner, outer
    col_gap: float = 18
    body_font: str = "tiro"
    body_bold: str = "tibo"
    body_size: float = 10.0
    body_lead: float = 1.25
    justify: bool = True
    indent: bool = True
    cap_font: str = "helv"
    cap_label_font: str | None = "hebo"  # None: label in the caption font
    cap_size: float = 8.5
    cap_lead: float = 1.2
    cap_justify: bool = False
    cap_width: str = "image"  # image | column
    label_word: str = "Fig."
    label_sep: str = " "
    numbering: str = "chapter_dot"  # chapter_dot | chapter_dash | three_level | plain
    cite_word: str = "Fig."
    fig_align: str = "center"
    head_font: str = "tiit"
    head_rule: bool = True
    page_num: str = "head"  # head | foot
    book_title: str = "Atlas of Clinical Dermatology"
    chapter: int = 3
    chapter_title: str = "Melanocytic Naevi"
    first_page: int = 41
    headings: list[str] = field(default_factory=list)
    cap_center_short: bool = False  # one-line captions centred under the figure
    opener_banner: bool = False  # decorative uncaptioned image on the chapter opener
    head_logo: bool = False  # small decorative raster in every running head


SMALL_CAPS = 0.78  # size of small capitals relative to the capitals (7 pt beside 9 pt)
MARKERS = ("paren_lower", "paren_upper", "comma_upper", "bare_lower", "left_right", "top_bottom")


@dataclass
class Caption:
    prefix: str  # "Fig. 3.2"
    label: str  # "3.2"
    sep: str
    shared: str
    panels: list[str]
    marker: str = "paren_lower"
    names: list[str] = field(default_factory=list)  # printed markers for marker "names": "(a1)", "1)", "(b)"
    small_caps: bool = False  # label in capitals, first letter full size, the rest smaller: "F" + "IG. 3.1"

    def marker_text(self, i: int) -> str:
        if self.marker == "names":
            return self.names[i]
        letter = chr(ord("a") + i)
        if self.marker in ("left_right", "top_bottom"):
            if i > 1:
                raise ValueError(f"{self.marker} markers need exactly two panels")
            return (["Left:", "Right:"] if self.marker == "left_right" else ["Top,", "Bottom,"])[i]
        return {
            "paren_lower": f"({letter})",
            "paren_upper": f"({letter.upper()})",
            "comma_upper": f"{letter.upper()},",
            "bare_lower": letter,
        }[self.marker]

    def runs(self, style: Style) -> list[Piece]:
        reg = style.cap_font
        lab = style.cap_label_font or reg
        sep = self.sep
        if style.cap_label_font and sep.strip() in (".", ":"):
            runs = [(self.prefix + sep.strip(), lab), (" ", reg)]
        else:
            runs = [(self.prefix, lab), (sep, reg)]
        if self.small_caps:
            head, fnt = runs[0]
            runs[0:1] = [(head[0], fnt), (head[1:], f"{fnt}*{SMALL_CAPS}")]
        if self.shared:
            runs.append((self.shared, reg))
        bold_markers = self.marker == "bare_lower" and style.cap_label_font is not None
        for i, t in enumerate(self.panels):
            runs.append((" " if (self.shared or i) else "", reg))
            runs.append((self.marker_text(i), lab if bold_markers else reg))
            runs.append((" " + t, reg))
        return runs

    @property
    def text(self) -> str:
        return norm_ws("".join(t for t, _ in self.runs(Style("x", "x", cap_label_font=None))))


@dataclass
class GridSpec:
    """How a "grid" figure is made: one composite raster or separate images, its gutters, frames and letters.

    Images (and caption panels) come in the order of their printed names; ``order`` "col" puts them down the
    columns (a b in the first column, c d in the second), so the names do not follow reading order.
    """

    composite: bool = False
    gutter_rgb: tuple[int, int, int] = (255, 255, 255)
    frame: bool = False  # a thin dark frame around every panel (in the pixels of a composite)
    letters: str = ""  # "" (none) | "pixels" (in the composite's pixels) | "text" (text layer, on the image)
    letter_fmt: str = "{l}"  # printed letter: {l} lower case, {L} upper case, e.g. "({l})"
    box: str = "white"  # "white": black letter on a white box; "dark": white letter on a dark box
    corner: str = "tl"  # tl | tr | bl | br
    order: str = "row"  # row | col
    printed: list[str] = field(default_factory=list)  # printed names ("a1", ...); default from letter_fmt
    names: list[str] = field(default_factory=list)  # GT panel names; default a, b, c, ...
    subcaps: list[str] = field(default_factory=list)  # GT subcaptions; default the caption's panel texts
    row_labels: list[str] = field(default_factory=list)  # printed left of the rows: "1)", "2)", ...
    col_labels: list[str] = field(default_factory=list)  # printed under the columns: "(a)", "(b)", ...

    def cell(self, k: int, rows: int, cols: int) -> int:
        """Row-major cell index of the k-th image."""
        return (k % rows) * cols + k // rows if self.order == "col" else k

    def label(self, k: int) -> str:
        if self.printed:
            return self.printed[k]
        letter = chr(ord("a") + k)
        return self.letter_fmt.format(l=letter, L=letter.upper())

    def name(self, k: int) -> str:
        return self.names[k] if self.names else chr(ord("a") + k)


@dataclass
class Fig:
    kind: str  # single | panels | composite | tiles | vector
    images: list[Img]
    caption: Caption
    width: float
    pos: str = "below"  # below | above | side
    grid: tuple[int, int] = (1, 1)
    gutter: float = 4.0
    enc: str = "native"  # native | png | alpha | cmyk | gray | jpx
    stretch: float = 1.0  # non-uniform scaling factor (height)
    letters: bool = False  # panel letters drawn on the image(s)
    gutter_color: str = "white"
    vector: str = ""  # bar | flow | line
    framed: bool = False
    side: str = "right"
    border: bool = False  # thin frame drawn around each image
    tags: list[str] = field(default_factory=list)
    spec: GridSpec | None = None  # kind "grid": how the panels are laid out, framed and lettered
    text_mode: str = "normal"  # how the caption reaches the text layer (TEXT_MODES)


class FigFactory:
    """Picks real images and captions for a book and numbers its figures in order of creation."""

    def __init__(self, corpus: Corpus, style: Style, rng: random.Random) -> None:
        self.c, self.s, self.rng = corpus, style, rng
        self.n = 0
        self.clin = Pool(rng, corpus.clinical)
        self.cases = Pool(rng, sorted(corpus.cases))
        self.histo = Pool(rng, corpus.histo)
        self.derm = Pool(rng, corpus.derm)
        self.other = Pool(rng, corpus.other)
        self.caps = Pool(rng, corpus.single_caps)
        self.pcaps = {n: Pool(rng, v) for n, v in corpus.panel_caps.items()}
        self.dcaps = Pool(rng, corpus.diagram_caps)
        self.labels: list[str] = []

    # numbering ------------------------------------------------------------------------------------------------
    def next_label(self) -> tuple[str, str]:
        self.n += 1
        s = self.s
        label = {
            "chapter_dot": f"{s.chapter}.{self.n}",
            "chapter_dash": f"{s.chapter}-{self.n}",
            "three_level": f"{s.chapter}.{1 + (self.n - 1) // 4}.{1 + (self.n - 1) % 4}",
            "plain": f"{s.first_page // 10 + self.n}",
        }[s.numbering]
        self.labels.append(label)
        return f"{s.label_word} {label}", label

    def _caption(self, shared: str, panels: list[str], marker: str = "paren_lower") -> Caption:
        prefix, label = self.next_label()
        return Caption(prefix, label, self.s.label_sep, shared, panels, marker)

    def _max_chars(self, width: float, lines: int = MAX_CAPTION_LINES) -> int:
        return int(lines * width / (self.s.cap_size * 0.5) * 0.88)

    # figure kinds ---------------------------------------------------------------------------------------------
    def single(self, source: str, width: float, pos: str = "below", enc: str = "native", **kw: Any) -> Fig:
        cap_w = kw.pop("cap_w", width if pos != "side" else 130)
        limit = self._max_chars(cap_w)
        if source == "clinical":
            img = self.clin.take()
            text = first_sentences(img.caption, limit)
            if len(img.case.split(": ", 1)[-1]) + len(text) + 2 < limit and self.rng.random() < 0.5:
                text = clean_text(img.case.split(": ", 1)[-1]) + " " + text
        elif source == "histo":
            img = self.histo.take()
            text = self.caps.take(lambda c: len(c) <= limit)
        elif source == "rgba":
            img = self.c.rgba[0]
            text = self.caps.take(lambda c: len(c) <= limit)
        elif source == "derm":
            img = self.derm.take()
            text = derm_caption(img, self.rng)
        elif source == "other":
            img = self.other.take()
            text = self.dcaps.take(lambda c: len(c) <= limit)
        else:
            raise ValueError(source)
        tags = [source, f"caption_{pos}"] + ([f"enc_{enc}"] if enc != "native" else [])
        return Fig(
            "single",
            [img],
            self._caption(first_sentences(text, limit), []),
            width,
            pos,
            enc=enc,
            tags=tags + kw.pop("tags", []),
            **kw,
        )

    def panels(
        self,
        source: str,
        grid: tuple[int, int],
        width: float,
        marker: str = "paren_lower",
        pos: str = "below",
        composite: bool = False,
        **kw: Any,
    ) -> Fig:
        n = grid[0] * grid[1]
        cap_w = kw.pop("cap_w", width if pos != "side" else 140)
        limit = self._max_chars(cap_w)
        if source == "clinical":
            case = self.cases.take(lambda k: len(self.c.cases[k]) >= n)
            imgs = self.c.cases[case][:n]
            shared = clean_text(case.split(": ", 1)[-1])
            per = max(40, (limit - len(shared)) // n - 6)
            texts = [first_sentences(i.caption, per) for i in imgs]
            while sum(len(t) + 5 for t in texts) + len(shared) > limit and max(len(t) for t in texts) > 40:
                texts = [t if len(t) < max(len(x) for x in texts) else shorten(t) for t in texts]
        elif source in ("histo", "derm"):
            pool = self.histo if source == "histo" else self.derm
            imgs = [pool.take() for _ in range(n)]
            if source == "histo":
                shared, texts = self._histo_panel_text(n, limit)
            else:
                shared = self.rng.choice(DERM_SHARED)
                texts = [clean_text(i.label) for i in imgs]
        else:
            raise ValueError(source)
        cap = self._caption(shared, texts, marker)
        kind = "composite" if composite else "panels"
        tags = [source, kind, f"caption_{pos}", f"grid_{grid[0]}x{grid[1]}", f"marker_{marker}"]
        return Fig(kind, imgs, cap, width, pos, grid=grid, tags=tags + kw.pop("tags", []), **kw)

    def _histo_panel_text(self, n: int, limit: int) -> tuple[str, list[str]]:
        """A real multi-panel caption with ``n`` panels that fits; else one real sentence per panel."""
        if n in self.pcaps:
            try:
                pc = self.pcaps[n].take(lambda p: len(p.shared) + sum(len(t) + 5 for t in p.texts) <= limit)
                return pc.shared, pc.texts
            except ValueError:
                pass
        per = max(50, limit // n - 8)
        texts = [
            first_sentences(self.caps.take(lambda c: len(split_sentences(c)[0]) <= per), per)
            for _ in range(n)
        ]
        return "", texts

    def tiles(
        self,
        source: str,
        width: float,
        strips: int,
        pos: str = "below",
        grid: tuple[int, int] | None = None,
        **kw: Any,
    ) -> Fig:
        f = self.single(source, width, pos, **kw)
        f.kind = "tiles"
        f.grid = grid or (strips, 1)
        f.tags.append("tiled")
        return f

    def vector(self, kind: str, width: float, framed: bool = False, pos: str = "below") -> Fig:
        text = VECTOR_CAPTIONS[kind]
        cap = self._caption(text, [])
        return Fig(
            "vector",
            [],
            cap,
            width,
            pos,
            vector=kind,
            framed=framed,
            tags=["vector", f"vector_{kind}", f"caption_{pos}"],
        )


def shorten(text: str) -> str:
    words = text.split()
    return " ".join(words[: max(6, int(len(words) * 0.7))]).rstrip(",;:") + "."


DERM_SHARED = [
    "Dermoscopic features of common pigmented lesions.",
    "Dermoscopy of melanocytic and non-melanocytic lesions.",
    "Polarised dermoscopy of lesions referred for a second opinion.",
]
VECTOR_CAPTIONS = {
    "bar": "Anatomical distribution of cutaneous melanoma by body site in a referral population.",
    "flow": "Diagnostic pathway for a changing pigmented lesion: history, dermoscopy, excision and histology.",
    "line": "Number of naevi per patient by age group, showing the peak in the third decade and decline thereafter.",
}
SITES = {"lower extremity": "leg", "upper extremity": "arm"}


def derm_caption(img: Img, rng: random.Random) -> str:
    label = img.label.replace("/", "or").strip()
    name = label[0].upper() + label[1:]
    try:
        age = int(float(img.age))
    except ValueError:
        age = 0
    who = {"male": "man", "female": "woman"}.get(img.sex, "")
    site = SITES.get(img.site, img.site)
    if age and who and site and site != "unknown":
        return clean_text(f"{name}. Dermoscopic image of a lesion on the {site} of a {age}-year-old {who}")
    return clean_text(
        f"{name}. {rng.choice(['Dermoscopic view', 'Contact dermoscopy', 'Polarised dermoscopy'])}"
    )


# ---------------------------------------------------------------------------------------------------------------
# image encoding and placement
# ---------------------------------------------------------------------------------------------------------------


def load_rgb(img: Img, aspect: float | None = None, max_px: int = 1200) -> Image.Image:
    im = Image.open(img.path)
    im = im.convert("RGBA" if im.mode in ("RGBA", "LA", "P") and "A" in im.getbands() else "RGB")
    if img.crop_top:
        im = im.crop((0, img.crop_top, im.width, im.height))
    if aspect is not None:
        w, h = im.size
        if w / h > aspect:
            nw = int(round(h * aspect))
            im = im.crop(((w - nw) // 2, 0, (w - nw) // 2 + nw, h))
        else:
            nh = int(round(w / aspect))
            im = im.crop((0, (h - nh) // 2, w, (h - nh) // 2 + nh))
    if img.zoom > 1.0:
        w, h = im.size
        zw, zh = round(w / img.zoom), round(h / img.zoom)
        im = im.crop(((w - zw) // 2, (h - zh) // 2, (w - zw) // 2 + zw, (h - zh) // 2 + zh))
    if max(im.size) > max_px:
        s = max_px / max(im.size)
        im = im.resize((max(1, int(im.width * s)), max(1, int(im.height * s))), Image.LANCZOS)
    return im


def encode(im: Image.Image, enc: str) -> bytes:
    bio = io.BytesIO()
    if enc == "alpha":
        im = im.convert("RGBA")
        if im.getextrema()[3][0] == 255:  # opaque: give it rounded transparent corners
            mask = Image.new("L", im.size, 0)
            r = max(4, min(im.size) // 10)
            ImageDraw.Draw(mask).rounded_rectangle((0, 0, im.width - 1, im.height - 1), r, fill=255)
            im.putalpha(mask)
        im.save(bio, "PNG")
    elif enc == "png":
        im.convert("RGB").save(bio, "PNG")
    elif enc == "cmyk":
        im.convert("RGB").convert("CMYK").save(bio, "JPEG", quality=88)
    elif enc == "gray":
        im.convert("L").save(bio, "JPEG", quality=88)
    elif enc == "jpx":
        im.convert("RGB").save(bio, "JPEG2000", quality_mode="rates", quality_layers=[25])
    else:
        im.convert("RGB").save(bio, "JPEG", quality=88)
    return bio.getvalue()


def insert(page: pymupdf.Page, rect: pymupdf.Rect, data: bytes) -> None:
    page.insert_image(rect, stream=data, keep_proportion=False)


def image_aspect(img: Img) -> float:
    with Image.open(img.path) as im:
        return im.width / (im.height - img.crop_top)


# ---------------------------------------------------------------------------------------------------------------
# figure blocks
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class FigLayout:
    fig: Fig
    w: float
    h: float
    img_rect: pymupdf.Rect  # relative to block origin
    cells: list[pymupdf.Rect]
    cap: TextBlock
    cap_xy: tuple[float, float]


def layout_fig(fig: Fig, avail: float, style: Style) -> FigLayout:
    size = style.cap_size
    lead = size * style.cap_lead
    if fig.pos == "side":
        cap_w = min(170.0, max(110.0, avail * 0.3))
        iw = min(fig.width, avail - cap_w - 12)
    else:
        iw = min(fig.width, avail)
    rows, cols = fig.grid
    if fig.kind == "vector":
        ih = iw * (0.3 if fig.vector == "flow" else 0.62)
        cells = [pymupdf.Rect(0, 0, iw, ih)]
    elif fig.kind == "grid":
        cells, ih = grid_cells(fig, iw)
    elif fig.kind in ("panels", "composite"):
        aspect = min(1.45, max(0.8, sum(image_aspect(i) for i in fig.images) / len(fig.images)))
        g = fig.gutter
        cw = (iw - (cols - 1) * g) / cols
        ch = cw / aspect
        ih = rows * ch + (rows - 1) * g
        cells = [
            pymupdf.Rect(c * (cw + g), r * (ch + g), c * (cw + g) + cw, r * (ch + g) + ch)
            for r in range(rows)
            for c in range(cols)
        ]
    else:
        ih = iw / image_aspect(fig.images[0]) * fig.stretch
        cells = [pymupdf.Rect(0, 0, iw, ih)]
    if fig.pos == "side":
        cap = make_block(fig.caption.runs(style), cap_w, size, lead, style.cap_justify)
        total_w = iw + 12 + cap_w
        x0 = 0.0 if style.fig_align == "left" else (avail - total_w) / 2
        if fig.side == "right":
            img_rect = pymupdf.Rect(x0, 0, x0 + iw, ih)
            cap_x = x0 + iw + 12
        else:
            cap_x = x0
            img_rect = pymupdf.Rect(x0 + cap_w + 12, 0, x0 + cap_w + 12 + iw, ih)
        cap_y = 0.0 if cap.height >= ih or style.tag != "side_caption" else ih - cap.height
        h = max(ih, cap.height)
        return FigLayout(fig, avail, h, img_rect, cells, cap, (cap_x, cap_y))
    x0 = 0.0 if style.fig_align == "left" else (avail - iw) / 2
    cap_w = iw if style.cap_width == "image" else avail
    cap_x = x0 if style.cap_width == "image" else 0.0
    if iw < 160:
        cap_w, cap_x = (
            max(iw, min(avail, 200)),
            (0.0 if style.fig_align == "left" else (avail - max(iw, 200)) / 2),
        )
    cap = make_block(fig.caption.runs(style), cap_w, size, lead, style.cap_justify)
    if style.cap_center_short and len(cap.lines) == 1:
        cap.align = "center"
    gap = 7.0
    if fig.pos == "above":
        img_rect = pymupdf.Rect(x0, cap.height + gap, x0 + iw, cap.height + gap + ih)
        return FigLayout(fig, avail, cap.height + gap + ih, img_rect, cells, cap, (cap_x, 0.0))
    img_rect = pymupdf.Rect(x0, 0, x0 + iw, ih)
    return FigLayout(fig, avail, ih + gap + cap.height, img_rect, cells, cap, (cap_x, ih + gap))


class Extent:
    """Union of the boxes of everything drawn for a vector figure."""

    def __init__(self) -> None:
        self.r: pymupdf.Rect | None = None

    def add(self, r: pymupdf.Rect) -> None:
        self.r = pymupdf.Rect(r) if self.r is None else self.r | r


def _vtext(
    tw: pymupdf.TextWriter,
    ext: Extent,
    x: float,
    y: float,
    text: str,
    size: float,
    fnt: str = "helv",
    anchor: str = "left",
) -> None:
    f = font(fnt)
    w = f.text_length(text, size)
    if anchor == "center":
        x -= w / 2
    elif anchor == "right":
        x -= w
    tw.append((x, y), text, font=f, fontsize=size)
    ext.add(pymupdf.Rect(x, y - f.ascender * size, x + w, y - f.descender * size))


def draw_vector(page: pymupdf.Page, fig: Fig, r: pymupdf.Rect, rng: random.Random) -> pymupdf.Rect:
    """Draw a simple chart/diagram inside ``r``; returns the union box of what was drawn."""
    ext = Extent()
    sh = page.new_shape()
    tw = pymupdf.TextWriter(page.rect)
    blue, grey = (0.16, 0.38, 0.62), (0.35, 0.35, 0.35)
    pad = 6.0 if fig.framed else 0.0
    box = pymupdf.Rect(r.x0 + pad, r.y0 + pad, r.x1 - pad, r.y1 - pad)
    if fig.vector in ("bar", "line"):
        left, bottom = box.x0 + 26, box.y1 - 16
        top, right = box.y0 + 14, box.x1 - 4
        _vtext(
            tw,
            ext,
            (left + right) / 2,
            box.y0 + 7,
            "Melanoma site (%)" if fig.vector == "bar" else "Naevi per patient",
            7,
            "hebo",
            "center",
        )
        sh.draw_line((left, top), (left, bottom))
        sh.draw_line((left, bottom), (right, bottom))
        sh.finish(color=(0, 0, 0), width=0.7)
        ext.add(pymupdf.Rect(left, top, right, bottom))
        for k in range(5):
            y = bottom - k * (bottom - top) / 4
            sh.draw_line((left - 3, y), (left, y))
            _vtext(tw, ext, left - 5, y + 2.2, str(k * 10), 6, "helv", "right")
        sh.finish(color=(0, 0, 0), width=0.5)
        cats = (
            ["Trunk", "Head", "Arm", "Leg", "Acral"]
            if fig.vector == "bar"
            else ["0-9", "10-19", "20-29", "30-39", "40-59", "60+"]
        )
        step = (right - left) / len(cats)
        vals = [rng.uniform(0.15, 0.95) for _ in cats]
        pts = []
        for i, (c, v) in enumerate(zip(cats, vals)):
            cx = left + step * (i + 0.5)
            _vtext(tw, ext, cx, bottom + 9, c, 6, "helv", "center")
            y = bottom - v * (bottom - top)
            if fig.vector == "bar":
                sh.draw_rect(pymupdf.Rect(cx - step * 0.3, y, cx + step * 0.3, bottom))
                sh.finish(color=None, fill=blue)
            else:
                pts.append(pymupdf.Point(cx, y))
        if pts:
            sh.draw_polyline(pts)
            sh.finish(color=blue, width=1.2)
            for p in pts:
                sh.draw_circle(p, 1.8)
            sh.finish(color=blue, fill=(1, 1, 1), width=0.8)
    else:  # flow diagram: boxes with arrows
        steps = ["History", "Dermoscopy", "Excision", "Histology"]
        n = len(steps)
        bw = (box.width - (n - 1) * 16) / n
        bh = box.height * 0.5
        y0 = box.y0
        for i, s in enumerate(steps):
            x0 = box.x0 + i * (bw + 16)
            rr = pymupdf.Rect(x0, y0, x0 + bw, y0 + bh)
            sh.draw_rect(rr)
            sh.finish(color=grey, fill=(0.9, 0.94, 0.98), width=0.8)
            ext.add(rr)
            _vtext(tw, ext, rr.x0 + bw / 2, rr.y0 + bh / 2 + 2.5, s, 7, "helv", "center")
            if i < n - 1:
                a, b = pymupdf.Point(rr.x1 + 2, rr.y0 + bh / 2), pymupdf.Point(rr.x1 + 14, rr.y0 + bh / 2)
                sh.draw_line(a, b)
                sh.draw_polyline([b + (-4, -2.5), b, b + (-4, 2.5)])
                sh.finish(color=(0, 0, 0), width=0.7, closePath=False)
        note = pymupdf.Rect(box.x0 + box.width * 0.25, box.y1 - 16, box.x1 - box.width * 0.25, box.y1)
        sh.draw_rect(note)
        sh.finish(color=grey, width=0.6, dashes="[2 2] 0")
        ext.add(note)
        _vtext(
            tw,
            ext,
            note.x0 + note.width / 2,
            note.y0 + 10.5,
            "Reassess at 3 months if equivocal",
            6.5,
            "heit",
            "center",
        )
        mid = pymupdf.Point(box.x0 + bw * 1.5 + 16, y0 + bh)
        sh.draw_line(mid, pymupdf.Point(mid.x, note.y0))
        sh.finish(color=grey, width=0.6)
    if fig.framed:
        sh.draw_rect(r)
        sh.finish(color=(0.5, 0.5, 0.5), width=0.6)
        ext.add(r)
    sh.commit()
    tw.write_text(page)
    assert ext.r is not None
    return ext.r


def draw_fig(
    page: pymupdf.Page, lay: FigLayout, x: float, y: float, rng: random.Random, style: Style, page_no: int
) -> list[dict[str, Any]]:
    fig = lay.fig
    ir = lay.img_rect + (x, y, x, y)
    cells = [c + (ir.x0, ir.y0, ir.x0, ir.y0) for c in lay.cells]
    boxes: list[tuple[pymupdf.Rect, str | None, str | None]] = []
    if fig.kind == "vector":
        boxes.append((draw_vector(page, fig, ir, rng), None, None))
    elif fig.kind == "single":
        im = load_rgb(fig.images[0])
        if (
            fig.enc == "native"
            and fig.images[0].path.suffix.lower() in (".jpg", ".jpeg")
            and max(im.size) <= 1200
        ):
            data = fig.images[0].path.read_bytes()
        else:
            data = encode(im, "png" if fig.enc == "native" else fig.enc)
        insert(page, ir, data)
        boxes.append((ir, None, None))
    elif fig.kind == "tiles":
        im = load_rgb(fig.images[0]).convert("RGB")
        rows, cols = fig.grid
        for rr in range(rows):
            for cc in range(cols):
                px = (
                    im.width * cc // cols,
                    im.height * rr // rows,
                    im.width * (cc + 1) // cols,
                    im.height * (rr + 1) // rows,
                )
                sub = pymupdf.Rect(
                    ir.x0 + ir.width * px[0] / im.width,
                    ir.y0 + ir.height * px[1] / im.height,
                    ir.x0 + ir.width * px[2] / im.width,
                    ir.y0 + ir.height * px[3] / im.height,
                )
                insert(page, sub, encode(im.crop(px), "native" if fig.enc == "native" else fig.enc))
        boxes.append((ir, None, None))
    elif fig.kind == "panels":
        for i, (img, cell) in enumerate(zip(fig.images, cells)):
            im = load_rgb(img, cell.width / cell.height)
            insert(page, cell, encode(im, fig.enc if fig.enc != "native" else "native"))
            if fig.letters:
                draw_panel_letter(page, cell, fig.caption, i)
            boxes.append((cell, chr(ord("a") + i), fig.caption.panels[i]))
    elif fig.kind == "composite":
        rows, cols = fig.grid
        scale = 3.0  # pixels per point of the composite bitmap
        cw, ch = round(cells[0].width * scale), round(cells[0].height * scale)
        gpx = max(2, round(fig.gutter * scale))
        W, H = cols * cw + (cols - 1) * gpx, rows * ch + (rows - 1) * gpx
        canvas = Image.new("RGB", (W, H), (255, 255, 255) if fig.gutter_color == "white" else (0, 0, 0))
        draw = ImageDraw.Draw(canvas)
        fnt = ImageFont.load_default(size=max(14, ch // 9))
        s = ir.width / W
        ir = pymupdf.Rect(ir.x0, ir.y0, ir.x1, ir.y0 + H * s)
        for i, img in enumerate(fig.images):
            r, c = divmod(i, cols)
            px0, py0 = c * (cw + gpx), r * (ch + gpx)
            canvas.paste(load_rgb(img, cw / ch).convert("RGB").resize((cw, ch), Image.LANCZOS), (px0, py0))
            if fig.letters:
                letter = (
                    fig.caption.marker_text(i).strip("(),:")
                    if fig.caption.marker not in ("left_right", "top_bottom")
                    else chr(ord("a") + i)
                )
                tb = draw.textbbox((0, 0), letter, font=fnt)
                bw, bh = tb[2] - tb[0] + 10, tb[3] - tb[1] + 10
                draw.rectangle((px0, py0, px0 + bw, py0 + bh), fill=(255, 255, 255))
                draw.text((px0 + 5 - tb[0], py0 + 5 - tb[1]), letter, fill=(0, 0, 0), font=fnt)
            cell = pymupdf.Rect(
                ir.x0 + px0 * s, ir.y0 + py0 * s, ir.x0 + (px0 + cw) * s, ir.y0 + (py0 + ch) * s
            )
            boxes.append((cell, chr(ord("a") + i), fig.caption.panels[i]))
        insert(page, ir, encode(canvas, "native" if fig.enc == "native" else fig.enc))
    elif fig.kind == "grid":
        boxes += draw_grid(page, fig, cells)
    if fig.border and fig.kind != "vector":
        for box, _, _ in boxes:
            page.draw_rect(box, color=(0.2, 0.2, 0.2), width=0.5)
    cx, cy = lay.cap_xy
    lay.cap.mode = fig.text_mode
    lay.cap.draw(page, x + cx, y + cy)
    cap_box = pymupdf.Rect(x + cx, y + cy, x + cx + lay.cap.width, y + cy + lay.cap.height)
    tags = list(fig.tags)
    tags += ["label_own_line"] if style.label_sep == BREAK else []
    tags += ["border"] if fig.border else []
    tags += (
        ["caption_body_font"]
        if (style.cap_font, style.cap_size) == (style.body_font, style.body_size)
        else []
    )
    out = []
    for box, panel, sub in boxes:
        out.append(
            {
                "page": page_no,
                "bbox": [round(v, 2) for v in box],
                "figure_label": fig.caption.label,
                "panel": panel,
                "caption": fig.caption.text,
                "subcaption": sub,
                "caption_bbox": [round(v, 2) for v in cap_box],
                "tags": tags,
            }
        )
    return out


def draw_panel_letter(page: pymupdf.Page, cell: pymupdf.Rect, cap: Caption, i: int) -> None:
    letter = chr(ord("a") + i)
    if cap.marker in ("paren_upper", "comma_upper"):
        letter = letter.upper()
    f = font("hebo")
    w = f.text_length(letter, 9)
    box = pymupdf.Rect(cell.x0, cell.y0, cell.x0 + w + 5, cell.y0 + 12)
    page.draw_rect(box, color=None, fill=(1, 1, 1))
    tw = pymupdf.TextWriter(page.rect)
    tw.append((box.x0 + 2.5, box.y0 + 9.3), letter, font=f, fontsize=9)
    tw.write_text(page)


def grid_cells(fig: Fig, iw: float) -> tuple[list[pymupdf.Rect], float]:
    """Row-major cells of a "grid" figure ``iw`` wide (room left of the rows and under the columns for printed
    row and column labels) and the figure's height."""
    assert fig.spec is not None
    rows, cols = fig.grid
    lw = 16.0 if fig.spec.row_labels else 0.0
    lh = 14.0 if fig.spec.col_labels else 0.0
    aspect = min(1.45, max(0.8, sum(image_aspect(i) for i in fig.images) / len(fig.images)))
    g = fig.gutter
    cw = (iw - lw - (cols - 1) * g) / cols
    ch = cw / aspect
    cells = [
        pymupdf.Rect(lw + c * (cw + g), r * (ch + g), lw + c * (cw + g) + cw, r * (ch + g) + ch)
        for r in range(rows)
        for c in range(cols)
    ]
    return cells, rows * ch + (rows - 1) * g + lh


def _corner_box(cell: pymupdf.Rect | tuple[float, ...], w: float, h: float, corner: str) -> tuple[float, ...]:
    x0, y0, x1, y1 = tuple(cell)
    bx = x0 if corner[1] == "l" else x1 - w
    by = y0 if corner[0] == "t" else y1 - h
    return bx, by, bx + w, by + h


def draw_text_letter(page: pymupdf.Page, cell: pymupdf.Rect, text: str, spec: GridSpec) -> None:
    """A panel letter in the text layer, on a small box in a corner of the image."""
    f, size = font("hebo"), 9.0
    box = pymupdf.Rect(_corner_box(cell, f.text_length(text, size) + 5, 12, spec.corner))
    dark = spec.box == "dark"
    page.draw_rect(box, color=None, fill=(0.12, 0.12, 0.12) if dark else (1, 1, 1))
    tw = pymupdf.TextWriter(page.rect)
    tw.append((box.x0 + 2.5, box.y0 + 9.3), text, font=f, fontsize=size)
    tw.write_text(page, color=(1, 1, 1) if dark else (0, 0, 0))


def draw_pixel_letter(
    draw: ImageDraw.ImageDraw, cell: tuple[int, int, int, int], text: str, spec: GridSpec
) -> None:
    """A panel letter burned into the composite's pixels (about 9 pt at 3 px/pt), on a box in a corner."""
    fnt = ImageFont.load_default(size=26)
    tb = draw.textbbox((0, 0), text, font=fnt)
    pad = 6
    x0, y0, x1, y1 = _corner_box(cell, tb[2] - tb[0] + 2 * pad, tb[3] - tb[1] + 2 * pad, spec.corner)
    dark = spec.box == "dark"
    draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=(25, 25, 25) if dark else (255, 255, 255))
    draw.text(
        (x0 + pad - tb[0], y0 + pad - tb[1]), text, fill=(255, 255, 255) if dark else (0, 0, 0), font=fnt
    )


def draw_grid(
    page: pymupdf.Page, fig: Fig, cells: list[pymupdf.Rect]
) -> list[tuple[pymupdf.Rect, str | None, str | None]]:
    """Draw a "grid" figure into its (absolute, row-major) cells; one GT box per image, named as printed."""
    spec = fig.spec
    assert spec is not None
    rows, cols = fig.grid
    subs = spec.subcaps or fig.caption.panels
    area = pymupdf.Rect(cells[0].x0, cells[0].y0, cells[-1].x1, cells[-1].y1)
    boxes: list[tuple[pymupdf.Rect, str | None, str | None]] = []
    if spec.composite:
        scale = 3.0  # pixels per point of the composite bitmap
        cw, ch = round(cells[0].width * scale), round(cells[0].height * scale)
        gpx = max(2, round(fig.gutter * scale))
        W, H = cols * cw + (cols - 1) * gpx, rows * ch + (rows - 1) * gpx
        canvas = Image.new("RGB", (W, H), spec.gutter_rgb)
        draw = ImageDraw.Draw(canvas)
        s = area.width / W
        for k, img in enumerate(fig.images):
            r, c = divmod(spec.cell(k, rows, cols), cols)
            px0, py0 = c * (cw + gpx), r * (ch + gpx)
            canvas.paste(load_rgb(img, cw / ch).convert("RGB").resize((cw, ch), Image.LANCZOS), (px0, py0))
            if spec.frame:
                draw.rectangle((px0, py0, px0 + cw - 1, py0 + ch - 1), outline=(40, 40, 40), width=2)
            if spec.letters == "pixels":
                draw_pixel_letter(draw, (px0, py0, px0 + cw, py0 + ch), spec.label(k), spec)
            box = pymupdf.Rect(
                area.x0 + px0 * s, area.y0 + py0 * s, area.x0 + (px0 + cw) * s, area.y0 + (py0 + ch) * s
            )
            boxes.append((box, spec.name(k), subs[k]))
        insert(page, pymupdf.Rect(area.x0, area.y0, area.x1, area.y0 + H * s), encode(canvas, "native"))
    else:
        if spec.gutter_rgb != (255, 255, 255):
            page.draw_rect(area, color=None, fill=tuple(v / 255 for v in spec.gutter_rgb))
        for k, img in enumerate(fig.images):
            cell = cells[spec.cell(k, rows, cols)]
            insert(page, cell, encode(load_rgb(img, cell.width / cell.height), "native"))
            if spec.frame:
                page.draw_rect(cell, color=(0.15, 0.15, 0.15), width=0.6)
            if spec.letters == "text":
                draw_text_letter(page, cell, spec.label(k), spec)
            boxes.append((cell, spec.name(k), subs[k]))
    if spec.row_labels or spec.col_labels:
        f, size = font("hebo"), 9.0
        tw = pymupdf.TextWriter(page.rect)
        for r, t in enumerate(spec.row_labels):
            c = cells[r * cols]
            tw.append((c.x0 - 15, (c.y0 + c.y1) / 2 + 3.2), t, font=f, fontsize=size)
        for c, t in enumerate(spec.col_labels):
            cell = cells[(rows - 1) * cols + c]
            tw.append(
                ((cell.x0 + cell.x1 - f.text_length(t, size)) / 2, cell.y1 + 10.5), t, font=f, fontsize=size
            )
        tw.write_text(page)
    return boxes


# ---------------------------------------------------------------------------------------------------------------
# body text
# ---------------------------------------------------------------------------------------------------------------


class TextFlow:
    """An endless stream of body paragraphs (real sentences) with headings and figure citations."""

    def __init__(self, corpus: Corpus, style: Style, rng: random.Random) -> None:
        self.s, self.rng = style, rng
        self.sent = Pool(rng, corpus.body)
        self.words: list[Word] = []  # what is left of the current paragraph
        self.at_start = True  # no line of the current paragraph drawn yet
        self.need_gap = False
        self.para_count = 0
        self.headings = list(style.headings)
        self.pending_heading: str | None = None
        self.cites: list[str] = []
        self.traps: list[str] = []
        self.cur_trap: str | None = None
        self.emitted_traps = 0
        self.sentence_ended = True
        self.mode = "normal"  # how words reach the text layer (TEXT_MODES); set per page

    def _line(
        self,
        page: pymupdf.Page,
        tw: pymupdf.TextWriter,
        words: list[Word],
        x: float,
        baseline: float,
        size: float,
        width: float | None = None,
    ) -> None:
        if self.mode == "normal":
            draw_line(tw, words, x, baseline, size, width)
        else:
            draw_words(page, tw, words, x, baseline, size, self.mode, width)

    @property
    def size(self) -> float:
        return self.s.body_size

    @property
    def lead(self) -> float:
        return self.s.body_size * self.s.body_lead

    def cite(self, labels: list[str], trap: str | None = None) -> None:
        """Cite these figure labels in the next paragraphs; ``trap``: start a paragraph with the label."""
        self.cites.extend(labels)
        if trap:
            self.traps.append(trap)

    def _paragraph(self) -> list[Word]:
        sents = [self.sent.take() for _ in range(self.rng.randint(3, 6))]
        cw = self.s.cite_word
        self.cur_trap = None
        if self.traps:
            label = self.cur_trap = self.traps.pop(0)
            verb = self.rng.choice(["shows", "illustrates", "demonstrates"])
            s0 = sents[0]
            sents[0] = f"{cw} {label} {verb} a typical example: {s0[0].lower()}{s0[1:]}"
        elif self.cites and self.rng.random() < 0.8:
            label = self.cites.pop(0)
            i = self.rng.randrange(len(sents))
            s = sents[i]
            word = "Plate" if cw == "Plate" else "Figure"
            sents[i] = [
                f"{s[:-1]} ({cw} {label}).",
                f"{s[:-1]} (see {word} {label}).",
                f"As shown in {word} {label}, {s[0].lower()}{s[1:]}",
                f"{s[:-1]}, as illustrated in {cw} {label}.",
            ][self.rng.randrange(4)]
        return to_words([(" ".join(sents), self.s.body_font)])

    def _load(self, allow_heading: bool) -> None:
        self.para_count += 1
        if (
            allow_heading
            and self.headings
            and not self.traps
            and self.para_count % self.rng.choice([3, 4]) == 0
        ):
            self.pending_heading = self.headings.pop(0)
        self.words = self._paragraph()
        self.at_start = True

    def _count_lines(self, words: list[Word], width: float, indent: float) -> int:
        n, i = 0, 0
        while i < len(words):
            i += take_line(words[i:], width, self.size, indent if n == 0 else 0.0)
            n += 1
        return n

    def _truncate(self, width: float, indent: float, lines_left: int) -> None:
        """Make the current paragraph end within ``lines_left`` lines, cutting at a sentence end (undrawn words)."""
        if self._count_lines(self.words, width, indent) <= lines_left:
            return
        ends = [k + 1 for k, w in enumerate(self.words) if w[-1][0].endswith((".", "?", "!"))]
        for k in reversed(ends):
            if self._count_lines(self.words[:k], width, indent) <= lines_left:
                self.words = self.words[:k]
                return
        if self.at_start or self.sentence_ended:
            if self.at_start and self.cur_trap:
                self.traps.insert(0, self.cur_trap)
            self.words = []

    def fill(self, page: pymupdf.Page, rect: pymupdf.Rect, end_para: bool = False) -> None:
        """Draw lines into ``rect`` while they fit; ``end_para``: end the paragraph before the bottom."""
        tw = pymupdf.TextWriter(page.rect)
        y, lead = rect.y0, self.lead
        gap = 0.0 if self.s.indent else lead * 0.5
        while True:
            if not self.words:
                if rect.y1 - (y + (gap if self.need_gap and y > rect.y0 else 0.0)) < lead - 0.01:
                    break  # no new paragraph starts in a full band
                if self.need_gap and y > rect.y0:
                    y += gap
                self.need_gap = False
                self._load(allow_heading=not end_para)
            if self.pending_heading:
                h, self.pending_heading = self.pending_heading, None
                if y + lead * 3.6 > rect.y1:  # no room: the heading comes later, the paragraph goes on here
                    self.headings.insert(0, h)
                else:
                    y += lead * 0.6 if y > rect.y0 else 0.0
                    self._line(
                        page, tw, to_words([(h, self.s.body_bold)]), rect.x0, y + self.size, self.size + 0.5
                    )
                    y += lead
            lines_left = int((rect.y1 - y + 0.01) // lead)
            if lines_left <= 0:
                break
            indent = self.size * 1.5 if (self.at_start and self.s.indent) else 0.0
            if end_para:
                self._truncate(rect.width, indent, lines_left)
                if not self.words:
                    self.need_gap = False
                    break
            n = take_line(self.words, rect.width, self.size, indent)
            line, self.words = self.words[:n], self.words[n:]
            justify = rect.width - indent if (self.s.justify and self.words) else None
            self._line(page, tw, line, rect.x0 + indent, y + self.size, self.size, justify)
            if self.at_start and self.cur_trap:
                self.emitted_traps += 1
                self.cur_trap = None
            self.at_start = False
            self.sentence_ended = line[-1][-1][0].endswith((".", "?", "!"))
            y += lead
            if not self.words:
                self.need_gap = True
        tw.write_text(page)

    def start_trap(self, label: str) -> None:
        """The next paragraph (it should start at the next band) begins with this figure label."""
        self.traps.insert(0, label)


# ---------------------------------------------------------------------------------------------------------------
# pages
# ---------------------------------------------------------------------------------------------------------------

# page plan elements: ("text", weight[, options]) | ("fig", Fig) | ("pair", [Fig, Fig]) | ("wrap", Fig, side)
# | ("keybox",) | ("opener",); text options: {"end": True} ends the paragraph inside the band, {"trap": Fig} starts
# the band with a body paragraph that begins with that figure's label ("Fig. 3.2 shows ...").
Element = tuple[Any, ...]


@dataclass
class PagePlan:
    columns: int
    bands: list[Element]  # ("full", element) | ("flow", [stack per column], weight)


def full(el: Element) -> Element:
    return ("full", el)


def flow(*stacks: list[Element], weight: float = 1.0) -> Element:
    return ("flow", list(stacks), weight)


T: Element = ("text", 1.0)
T_END: Element = ("text", 1.0, {"end": True})


def trap_text(fig: Fig, weight: float = 1.0) -> Element:
    fig.tags.append("label_paragraph_adjacent")
    return ("text", weight, {"trap": fig})


def wrap(fig: Fig, side: str = "right") -> Element:
    fig.tags.append("text_wrap")
    return ("wrap", fig, side)


def _figs_of(el: Element) -> list[Fig]:
    if el[0] in ("fig", "wrap", "xcol"):
        return [el[1]]
    return list(el[1]) if el[0] == "pair" else []


class BookWriter:
    def __init__(self, corpus: Corpus, style: Style, rng: random.Random) -> None:
        self.c, self.s, self.rng = corpus, style, rng
        self.doc = pymupdf.open()
        self.flow = TextFlow(corpus, style, rng)
        self.items: list[dict[str, Any]] = []
        self.keypool = Pool(rng, corpus.body)
        self._kb: dict[float, tuple[TextBlock, float]] = {}
        self.decorative: list[dict[str, Any]] = []
        self._logo: tuple[bytes, int] | None = None

    # geometry ------------------------------------------------------------------------------------------------
    def content(self, pno: int) -> pymupdf.Rect:
        w, h = PAGE_SIZES[self.s.page]
        top, bottom, inner, outer = self.s.margins
        odd = (self.s.first_page + pno) % 2 == 1
        left, right = (inner, outer) if odd else (outer, inner)
        return pymupdf.Rect(left, top, w - right, h - bottom)

    def columns(self, area: pymupdf.Rect, n: int) -> list[tuple[float, float]]:
        if n == 1:
            return [(area.x0, area.x1)]
        cw = (area.width - self.s.col_gap) / 2
        return [(area.x0, area.x0 + cw), (area.x1 - cw, area.x1)]

    # element sizes -------------------------------------------------------------------------------------------
    def el_height(self, el: Element, width: float) -> float:
        kind = el[0]
        if kind == "text":
            return 0.0
        if kind == "fig":
            return layout_fig(el[1], width, self.s).h
        if kind == "pair":
            half = (width - 18) / 2
            return max(layout_fig(f, half, self.s).h for f in el[1])
        if kind == "wrap":
            return layout_fig(el[1], min(el[1].width, width * 0.55), self.s).h
        if kind == "keybox":
            return self._keybox_block(width)[1] if len(el) == 1 else el[1]
        if kind == "xcol":
            return self._xcol(el[1], el[2], width)[0].h
        if kind == "opener":
            return 78.0 + (self._banner_h(width) + 14 if self.s.opener_banner else 0.0)
        raise ValueError(kind)

    def _keybox_block(self, width: float) -> tuple[TextBlock, float]:
        if width not in self._kb:
            sents = [self.keypool.take(lambda s: len(s) < 150) for _ in range(3)]
            lines: list[list[Word]] = []
            for s in sents:
                lines += wrap_words(
                    to_words([("\u2022 " + s, self.s.body_font)]), width - 20, self.s.body_size - 1
                )
            blk = TextBlock(lines, self.s.body_size - 1, (self.s.body_size - 1) * 1.25, width - 20)
            self._kb[width] = (blk, blk.height + 36)
        return self._kb[width]

    def gap(self, a: Element, b: Element) -> float:
        """Vertical space between two consecutive elements of a column."""
        if a[0] == "text" and b[0] == "text":
            return 0.0
        if {a[0], b[0]} == {"text", "wrap"}:
            return self.flow.lead * 0.3
        return FIG_GAP

    def stack_fixed(self, stack: list[Element], width: float) -> float:
        return sum(self.el_height(e, width) for e in stack) + sum(
            self.gap(a, b) for a, b in zip(stack, stack[1:])
        )

    # drawing -------------------------------------------------------------------------------------------------
    def draw_el(
        self, page: pymupdf.Page, el: Element, x0: float, x1: float, y: float, h: float, pno: int
    ) -> None:
        kind = el[0]
        width = x1 - x0
        if kind == "text":
            opts = el[2] if len(el) > 2 else {}
            if "trap" in opts:
                self.flow.start_trap(opts["trap"].caption.label)
            if h >= self.flow.lead:
                self.flow.fill(page, pymupdf.Rect(x0, y, x1, y + h), end_para=bool(opts.get("end")))
        elif kind == "wrap":
            fig, side = el[1], el[2]
            lay = layout_fig(fig, min(fig.width, width * 0.55), self.s)
            fx = x1 - lay.w if side == "right" else x0
            self.items += draw_fig(page, lay, fx, y, self.rng, self.s, pno)
            tx0, tx1 = (x0, fx - 12) if side == "right" else (x0 + lay.w + 12, x1)
            self.flow.fill(page, pymupdf.Rect(tx0, y, tx1, y + h))
        elif kind == "fig":
            lay = layout_fig(el[1], width, self.s)
            self.items += draw_fig(page, lay, x0, y, self.rng, self.s, pno)
        elif kind == "pair":
            half = (width - 18) / 2
            for i, f in enumerate(el[1]):
                lay = layout_fig(f, half, self.s)
                self.items += draw_fig(page, lay, x0 + i * (half + 18), y, self.rng, self.s, pno)
        elif kind == "keybox":
            blk, bh = self._keybox_block(width)
            box = pymupdf.Rect(x0, y, x1, y + bh)
            page.draw_rect(box, color=(0.1, 0.42, 0.7), fill=(0.93, 0.96, 1.0), width=0.8)
            tw = pymupdf.TextWriter(page.rect)
            tw.append(
                (x0 + 10, y + 16), "Key points", font=font(self.s.body_bold), fontsize=self.s.body_size + 0.5
            )
            tw.write_text(page, color=(0.1, 0.42, 0.7))
            blk.draw(page, x0 + 10, y + 24)
            del self._kb[width]
        elif kind == "xcol":
            fig, where = el[1], el[2]
            lay, (fx0, _), (cx0, cx1) = self._xcol(fig, where, width, x0)
            self.items += draw_fig(page, lay, fx0, y, self.rng, self.s, pno)
            ch = lay.cap.height
            if where.endswith("top"):
                tr = pymupdf.Rect(cx0, y + ch + FIG_GAP, cx1, y + h)
            else:
                tr = pymupdf.Rect(cx0, y, cx1, y + h - ch - FIG_GAP)
            if tr.height >= self.flow.lead:
                self.flow.fill(page, tr)
        elif kind == "opener":
            if self.s.opener_banner:
                bh = self._banner_h(width)
                img = self.rng.choice(self.c.histo + self.c.clinical)
                r = pymupdf.Rect(x0, y, x1, y + bh)
                insert(page, r, encode(load_rgb(img, r.width / r.height), "native"))
                self.decorative.append(
                    {"page": pno, "bbox": [round(v, 2) for v in r], "kind": "opener_banner"}
                )
                y += bh + 14
            tw = pymupdf.TextWriter(page.rect)
            tw.append((x0, y + 16), f"Chapter {self.s.chapter}", font=font("helv"), fontsize=12)
            tw.append((x0, y + 44), self.s.chapter_title, font=font("hebo"), fontsize=20)
            tw.write_text(page, color=(0.15, 0.15, 0.15))
            page.draw_line((x0, y + 58), (x1, y + 58), color=(0.6, 0.1, 0.1), width=1.5)

    def head(self, page: pymupdf.Page, pno: int, area: pymupdf.Rect, opener: bool) -> None:
        num = self.s.first_page + pno
        y = area.y0 - 24
        tw = pymupdf.TextWriter(page.rect)
        hf, hs = font(self.s.head_font), 8.5
        odd = num % 2 == 1
        if not opener:
            text = f"Chapter {self.s.chapter}  {self.s.chapter_title}" if odd else self.s.book_title
            w = hf.text_length(text, hs)
            tw.append((area.x1 - w if odd else area.x0, y), text, font=hf, fontsize=hs)
            if self.s.page_num == "head":
                nw = font("helv").text_length(str(num), 9)
                tw.append((area.x0 if odd else area.x1 - nw, y), str(num), font=font("helv"), fontsize=9)
            if self.s.head_rule:
                page.draw_line((area.x0, y + 5), (area.x1, y + 5), color=(0.3, 0.3, 0.3), width=0.5)
        if self.s.page_num == "foot" or opener:
            nw = font("helv").text_length(str(num), 9)
            tw.append(((area.x0 + area.x1 - nw) / 2, area.y1 + 30), str(num), font=font("helv"), fontsize=9)
        tw.write_text(page)
        if self.s.head_logo and not opener:
            tlen = hf.text_length(text, hs)
            lx = area.x1 - tlen - 20 if odd else area.x0 + tlen + 6
            r = pymupdf.Rect(lx, y - 11, lx + 14, y + 3)
            if self._logo is None:
                im = load_rgb(self.c.derm[0], 1.0).resize((64, 64), Image.LANCZOS)
                data = encode(im, "native")
                self._logo = (data, page.insert_image(r, stream=data, keep_proportion=False))
            else:
                page.insert_image(r, xref=self._logo[1], keep_proportion=False)
            self.decorative.append({"page": pno + 1, "bbox": [round(v, 2) for v in r], "kind": "head_logo"})

    def page(self, plan: PagePlan, trap: bool = False, text_mode: str = "normal") -> None:
        """Lay out and draw one page; ``text_mode`` (TEXT_MODES): how its body text and captions are written."""
        if text_mode != "normal":
            self.flow.mode = text_mode
            for band in plan.bands:
                for e in [band[1]] if band[0] == "full" else [e for st in band[1] for e in st]:
                    for f in _figs_of(e):
                        f.text_mode = text_mode
                        f.tags.append({"glued": "glued_words"}.get(text_mode, text_mode))
        self._page(plan, trap)
        self.flow.mode = "normal"

    def _page(self, plan: PagePlan, trap: bool = False) -> None:
        pno = len(self.doc)
        w, h = PAGE_SIZES[self.s.page]
        page = self.doc.new_page(width=w, height=h)
        area = self.content(pno)
        cols = self.columns(area, plan.columns)
        figs: list[Fig] = []
        for band in plan.bands:
            els = [band[1]] if band[0] == "full" else [e for st in band[1] for e in st]
            for e in els:
                figs += _figs_of(e)
        labels = [f.caption.label for f in figs]
        self.flow.cite(labels[1:] if trap else labels, labels[0] if trap and labels else None)
        # band heights; figures shrink (never below 120 pt) until the page content fits
        gaps = FIG_GAP * (len(plan.bands) - 1)
        for _ in range(20):
            fixed, flex = [], []
            for band in plan.bands:
                if band[0] == "full":
                    fixed.append(self.el_height(band[1], area.width))
                    flex.append(0.0)
                else:
                    mins = [self.stack_fixed(st, x1 - x0) for st, (x0, x1) in zip(band[1], cols)]
                    fixed.append(max(mins))
                    flex.append(band[2] if any(e[0] == "text" for st in band[1] for e in st) else 0.0)
            spare = area.height - sum(fixed) - gaps
            if spare >= -0.5 or all(f.width <= 120 for f in figs):
                break
            for f in figs:
                f.width = max(120.0, f.width * 0.93)
        if spare < -0.5:
            raise ValueError(f"{self.s.name} page {pno + 1}: content overflows by {-spare:.0f} pt")
        tot = sum(flex) or 1.0
        y = area.y0
        is_opener = any(b[0] == "full" and b[1][0] == "opener" for b in plan.bands)
        self.head(page, pno, area, is_opener)
        for band, fx, fl in zip(plan.bands, fixed, flex):
            bh = fx + spare * fl / tot
            if band[0] == "full":
                self.draw_el(page, band[1], area.x0, area.x1, y, bh, pno + 1)
            else:
                for st, (x0, x1) in zip(band[1], cols):
                    self.draw_stack(page, st, x0, x1, y, bh, pno + 1)
            y += bh + FIG_GAP

    def _xcol(
        self, fig: Fig, where: str, width: float, x0: float = 0.0
    ) -> tuple[FigLayout, tuple[float, float], tuple[float, float]]:
        """A one-column figure whose caption sits in the other column beside it (``where``: "right_top" puts the
        figure left and the caption right, top-aligned; "left_bottom" the caption left, bottom-aligned), and the
        figure's and the caption's column ranges."""
        (a0, a1), (b0, b1) = self.columns(pymupdf.Rect(x0, 0, x0 + width, 1), 2)
        (f0, f1), (c0, c1) = ((a0, a1), (b0, b1)) if where.startswith("right") else ((b0, b1), (a0, a1))
        lay = layout_fig(fig, f1 - f0, self.s)
        cap = make_block(
            fig.caption.runs(self.s),
            c1 - c0,
            self.s.cap_size,
            self.s.cap_size * self.s.cap_lead,
            self.s.cap_justify,
        )
        ih = lay.img_rect.y1
        cy = 0.0 if where.endswith("top") or cap.height >= ih else ih - cap.height
        lay = FigLayout(fig, f1 - f0, max(ih, cap.height), lay.img_rect, lay.cells, cap, (c0 - f0, cy))
        return lay, (f0, f1), (c0, c1)

    def _banner_h(self, width: float) -> float:
        return round(width / 5.0, 2)

    def draw_stack(
        self, page: pymupdf.Page, stack: list[Element], x0: float, x1: float, y: float, h: float, pno: int
    ) -> None:
        width = x1 - x0
        fixed = self.stack_fixed(stack, width)
        weights = [e[1] for e in stack if e[0] == "text"]
        spare = max(0.0, h - fixed)
        for i, el in enumerate(stack):
            eh = self.el_height(el, width) if el[0] != "text" else spare * el[1] / (sum(weights) or 1)
            self.draw_el(page, el, x0, x1, y, eh, pno)
            y += eh + (self.gap(el, stack[i + 1]) if i + 1 < len(stack) else 0.0)

    def save(self, path: Path) -> None:
        self.doc.set_metadata(
            {
                "title": self.s.book_title,
                "author": "mmskin benchmark generator",
                "producer": "PyMuPDF",
                "creator": "make_bookset.py",
                "creationDate": "D:20250101000000Z",
                "modDate": "D:20250101000000Z",
            }
        )
        self.doc.subset_fonts()
        self.doc.save(path, garbage=3, deflate=True, no_new_id=True)


# ---------------------------------------------------------------------------------------------------------------
# the books
# ---------------------------------------------------------------------------------------------------------------

HEAD_DERM = [
    "Clinical features",
    "Dermoscopy",
    "Histopathology",
    "Differential diagnosis",
    "Management",
    "Prognosis",
    "Epidemiology",
    "Pathogenesis",
]


def _h(prefix: str | None, names: list[str]) -> list[str]:
    return [f"{prefix}.{i + 1} {n}" if prefix else n for i, n in enumerate(names)]


def book_onecol(c: Corpus, s: Style, rng: random.Random) -> BookWriter:
    b, f = BookWriter(c, s, rng), FigFactory(c, s, rng)
    b.page(PagePlan(1, [full(("opener",)), flow([T, ("fig", f.single("clinical", 300))])]))
    b.page(PagePlan(1, [flow([T, ("fig", f.panels("clinical", (2, 2), 330, "paren_lower")), T])]))
    b.page(
        PagePlan(1, [flow([("fig", f.single("histo", 250)), T, ("fig", f.single("derm", 220))])]), trap=True
    )
    b.page(PagePlan(1, [flow([T, ("keybox",), T])]))
    fp = f.panels("clinical", (1, 3), 400, "paren_lower")
    b.page(PagePlan(1, [flow([T_END, trap_text(fp, 0.3), ("fig", fp), T, ("fig", f.single("other", 320))])]))
    b.page(
        PagePlan(
            1, [flow([T, wrap(f.single("clinical", 190)), T, ("fig", f.single("histo", 190)), ("text", 0.4)])]
        )
    )
    b.page(PagePlan(1, [flow([("fig", f.panels("derm", (2, 3), 380, "paren_lower")), T])]))
    b.page(
        PagePlan(
            1,
            [
                flow(
                    [
                        T,
                        (
                            "fig",
                            f.panels(
                                "histo", (2, 2), 300, "paren_lower", composite=True, letters=True, gutter=3
                            ),
                        ),
                        T,
                    ]
                )
            ],
        )
    )
    return b


def book_twocol(c: Corpus, s: Style, rng: random.Random) -> BookWriter:
    b, f = BookWriter(c, s, rng), FigFactory(c, s, rng)
    cw = 250
    b.page(PagePlan(2, [full(("opener",)), flow([T, ("fig", f.single("histo", cw)), T], [T])]))
    b.page(
        PagePlan(
            2,
            [
                full(("fig", f.panels("histo", (1, 3), 480, "comma_upper", tags=["full_width"]))),
                flow([T], [T]),
            ],
        ),
        trap=True,
    )
    b.page(
        PagePlan(
            2,
            [
                flow(
                    [("fig", f.single("clinical", cw)), T, ("fig", f.single("histo", 200))],
                    [T, ("fig", f.single("derm", 190)), T],
                )
            ],
        )
    )
    b.page(PagePlan(2, [flow([T], [T]), full(("fig", f.single("other", 440, tags=["full_width"])))]))
    b.page(PagePlan(2, [flow([T, ("keybox",), T], [T])]))
    b.page(
        PagePlan(2, [full(("pair", [f.single("clinical", 220), f.single("clinical", 220)])), flow([T], [T])])
    )
    b.page(
        PagePlan(
            2,
            [
                flow(
                    [T, ("fig", f.panels("clinical", (2, 1), 200, "top_bottom")), T],
                    [T, ("fig", f.panels("histo", (1, 2), cw, "comma_upper")), T],
                )
            ],
        )
    )
    b.page(
        PagePlan(
            2,
            [
                flow([T], [T]),
                full(
                    (
                        "fig",
                        f.panels(
                            "histo",
                            (2, 3),
                            420,
                            "comma_upper",
                            composite=True,
                            gutter_color="black",
                            gutter=2,
                            tags=["full_width"],
                        ),
                    )
                ),
                flow([T], [T], weight=0.5),
            ],
        )
    )
    return b


def book_side(c: Corpus, s: Style, rng: random.Random) -> BookWriter:
    b, f = BookWriter(c, s, rng), FigFactory(c, s, rng)
    b.page(PagePlan(1, [full(("opener",)), flow([T, ("fig", f.single("clinical", 280, "side"))])]))
    b.page(
        PagePlan(
            1,
            [
                flow(
                    [
                        ("fig", f.single("histo", 260, "side")),
                        T,
                        ("fig", f.panels("clinical", (1, 2), 300, "paren_upper", "side")),
                    ]
                )
            ],
        ),
        trap=True,
    )
    b.page(PagePlan(1, [flow([T, ("fig", f.panels("histo", (2, 2), 280, "paren_upper", "side")), T])]))
    b.page(
        PagePlan(
            1,
            [
                flow(
                    [
                        T,
                        ("fig", f.single("derm", 200, "side", side="left")),
                        T,
                        ("fig", f.single("histo", 300, "below")),
                    ]
                )
            ],
        )
    )
    b.page(PagePlan(1, [flow([("fig", f.single("other", 300, "side")), T, ("keybox",)])]))
    b.page(PagePlan(1, [flow([T, ("fig", f.panels("derm", (1, 3), 330, "paren_upper", "side")), T])]))
    b.page(
        PagePlan(
            1,
            [
                flow(
                    [
                        ("fig", f.single("clinical", 230, "side")),
                        T,
                        ("fig", f.single("histo", 230, "side")),
                        ("text", 0.3),
                    ]
                )
            ],
        )
    )
    return b


def book_above(c: Corpus, s: Style, rng: random.Random) -> BookWriter:
    b, f = BookWriter(c, s, rng), FigFactory(c, s, rng)
    b.page(PagePlan(1, [full(("opener",)), flow([T, ("fig", f.single("histo", 260, "above")), T])]))
    b.page(
        PagePlan(
            1,
            [
                flow(
                    [
                        ("fig", f.panels("histo", (1, 2), 360, "paren_upper", "above")),
                        T,
                        ("fig", f.single("clinical", 240, "above")),
                    ]
                )
            ],
        ),
        trap=True,
    )
    fo = f.single("other", 380, "above")
    b.page(PagePlan(1, [flow([T_END, ("fig", fo), trap_text(fo)])]))
    b.page(
        PagePlan(
            1, [flow([T, ("fig", f.panels("clinical", (2, 2), 320, "paren_upper", "above")), ("text", 0.3)])]
        )
    )
    b.page(
        PagePlan(
            1, [flow([("fig", f.single("derm", 200, "above")), T, ("fig", f.single("histo", 220, "below"))])]
        )
    )
    b.page(
        PagePlan(
            2,
            [
                flow(
                    [T, ("fig", f.single("clinical", 220, "above")), T],
                    [T, ("fig", f.panels("derm", (2, 1), 150, "paren_upper", "above")), T],
                )
            ],
        )
    )
    b.page(PagePlan(1, [flow([T, ("keybox",), T])]))
    return b


def book_composite(c: Corpus, s: Style, rng: random.Random) -> BookWriter:
    b, f = BookWriter(c, s, rng), FigFactory(c, s, rng)
    b.page(
        PagePlan(
            1,
            [
                full(("opener",)),
                flow(
                    [T, ("fig", f.panels("histo", (1, 2), 330, "bare_lower", composite=True, letters=True))]
                ),
            ],
        )
    )
    b.page(
        PagePlan(
            1,
            [
                flow(
                    [
                        T,
                        (
                            "fig",
                            f.panels(
                                "clinical",
                                (2, 2),
                                330,
                                "bare_lower",
                                composite=True,
                                gutter_color="black",
                                gutter=2,
                            ),
                        ),
                        T,
                    ]
                )
            ],
        ),
        trap=True,
    )
    b.page(
        PagePlan(
            1,
            [
                flow(
                    [
                        (
                            "fig",
                            f.panels(
                                "derm", (2, 3), 370, "bare_lower", composite=True, letters=True, gutter=3
                            ),
                        ),
                        T,
                    ]
                )
            ],
        )
    )
    b.page(PagePlan(1, [flow([T, ("fig", f.panels("histo", (2, 2), 300, "bare_lower", letters=True)), T])]))
    b.page(
        PagePlan(
            2,
            [
                flow(
                    [
                        T,
                        ("fig", f.panels("clinical", (1, 2), 200, "left_right", composite=True, gutter=2)),
                        T,
                    ],
                    [("fig", f.single("histo", 200)), T],
                )
            ],
        )
    )
    b.page(
        PagePlan(
            1,
            [
                flow(
                    [
                        T,
                        (
                            "fig",
                            f.panels(
                                "histo",
                                (1, 3),
                                390,
                                "bare_lower",
                                composite=True,
                                gutter_color="black",
                                letters=True,
                            ),
                        ),
                        T,
                        ("fig", f.single("derm", 180)),
                    ]
                )
            ],
        )
    )
    b.page(PagePlan(1, [flow([T, ("fig", f.panels("clinical", (1, 3), 360, "bare_lower")), T])]))
    return b


def book_plates(c: Corpus, s: Style, rng: random.Random) -> BookWriter:
    b, f = BookWriter(c, s, rng), FigFactory(c, s, rng)
    b.page(
        PagePlan(
            1,
            [
                full(("opener",)),
                flow([T, ("pair", [f.single("derm", 190, border=True), f.single("derm", 190, border=True)])]),
            ],
        )
    )
    b.page(
        PagePlan(
            1,
            [
                flow(
                    [
                        ("pair", [f.single("derm", 210, border=True), f.single("derm", 210, border=True)]),
                        T,
                        ("pair", [f.single("clinical", 220), f.single("derm", 180)]),
                    ]
                )
            ],
        ),
        trap=True,
    )
    b.page(
        PagePlan(
            1,
            [
                flow(
                    [
                        ("pair", [f.single("clinical", 200), f.single("clinical", 200)]),
                        ("pair", [f.single("derm", 200), f.single("derm", 200)]),
                        ("text", 0.2),
                    ]
                )
            ],
        )
    )
    b.page(
        PagePlan(
            1,
            [flow([T, ("pair", [f.single("histo", 200), f.panels("derm", (1, 2), 220, "paren_lower")]), T])],
        )
    )
    b.page(PagePlan(1, [flow([T])]))
    b.page(
        PagePlan(
            1,
            [
                flow(
                    [
                        ("fig", f.single("derm", 260)),
                        T,
                        ("pair", [f.single("derm", 180), f.single("clinical", 200)]),
                    ]
                )
            ],
        )
    )
    b.page(PagePlan(1, [flow([T, ("pair", [f.single("histo", 200), f.single("derm", 200)]), T])]))
    return b


def book_encodings(c: Corpus, s: Style, rng: random.Random) -> BookWriter:
    b, f = BookWriter(c, s, rng), FigFactory(c, s, rng)
    b.page(PagePlan(1, [full(("opener",)), flow([T, ("fig", f.tiles("histo", 260, 3)), T])]))
    b.page(
        PagePlan(
            1,
            [
                flow(
                    [
                        ("fig", f.single("rgba", 260, enc="alpha")),
                        T,
                        ("fig", f.single("clinical", 260, enc="cmyk")),
                    ]
                )
            ],
        ),
        trap=True,
    )
    b.page(
        PagePlan(
            1,
            [
                flow(
                    [
                        T,
                        ("fig", f.single("histo", 240, enc="gray")),
                        T,
                        ("fig", f.tiles("clinical", 300, 4, tags=[])),
                    ]
                )
            ],
        )
    )
    b.page(
        PagePlan(
            1,
            [
                flow(
                    [
                        T,
                        ("fig", f.single("derm", 240, enc="jpx")),
                        T,
                        ("fig", f.single("clinical", 320, stretch=0.8, tags=["stretched"])),
                    ]
                )
            ],
        )
    )
    b.page(
        PagePlan(
            1,
            [
                flow(
                    [
                        ("fig", f.tiles("histo", 280, 0, grid=(2, 2))),
                        T,
                        ("fig", f.single("clinical", 200, enc="alpha")),
                    ]
                )
            ],
        )
    )
    b.page(
        PagePlan(
            1,
            [
                flow(
                    [
                        T,
                        ("fig", f.panels("histo", (1, 2), 320, "paren_lower", enc="cmyk")),
                        T,
                        ("fig", f.single("other", 330, enc="png")),
                    ]
                )
            ],
        )
    )
    b.page(PagePlan(1, [flow([T, ("fig", f.tiles("derm", 220, 2, enc="gray")), T])]))
    return b


def book_vector(c: Corpus, s: Style, rng: random.Random) -> BookWriter:
    b, f = BookWriter(c, s, rng), FigFactory(c, s, rng)
    b.page(PagePlan(2, [full(("opener",)), flow([T, ("fig", f.vector("bar", 240)), T], [T, ("keybox",), T])]))
    b.page(PagePlan(2, [full(("fig", f.vector("flow", 460, framed=False))), flow([T], [T])]), trap=True)
    b.page(
        PagePlan(
            2, [flow([T, ("fig", f.single("histo", 230)), T], [T, ("fig", f.vector("line", 240, True)), T])]
        )
    )
    b.page(PagePlan(2, [flow([T, ("keybox",), T], [T, ("fig", f.single("other", 230)), T])]))
    b.page(PagePlan(2, [flow([T], [T]), full(("fig", f.single("other", 420, tags=["full_width"])))]))
    b.page(
        PagePlan(2, [flow([T, ("fig", f.vector("bar", 220, True))], [("fig", f.single("clinical", 240)), T])])
    )
    return b


def book_mixed_a(c: Corpus, s: Style, rng: random.Random) -> BookWriter:
    b, f = BookWriter(c, s, rng), FigFactory(c, s, rng)
    b.page(PagePlan(1, [full(("opener",)), flow([T, ("fig", f.single("clinical", 280)), T])]))
    b.page(
        PagePlan(
            2,
            [
                flow(
                    [T, ("fig", f.panels("clinical", (1, 2), 200, "left_right")), T],
                    [("fig", f.single("histo", 190, "above")), T],
                )
            ],
        ),
        trap=True,
    )
    b.page(
        PagePlan(
            1, [flow([("fig", f.single("histo", 230, "side")), T, ("fig", f.tiles("clinical", 300, 2))])]
        )
    )
    b.page(
        PagePlan(
            1,
            [
                flow(
                    [
                        T,
                        ("pair", [f.single("derm", 170), f.single("derm", 170)]),
                        T,
                        ("fig", f.panels("histo", (1, 3), 330, "paren_upper", composite=True, gutter=2)),
                    ]
                )
            ],
        )
    )
    b.page(
        PagePlan(
            2,
            [
                full(("fig", f.panels("clinical", (2, 2), 330, "comma_upper", tags=["full_width"]))),
                flow([T], [T]),
            ],
        )
    )
    b.page(
        PagePlan(1, [flow([T, ("fig", f.vector("bar", 280)), T, ("fig", f.single("derm", 180, enc="gray"))])])
    )
    b.page(
        PagePlan(
            2, [flow([T, ("keybox",)], [T, ("fig", f.panels("clinical", (2, 1), 150, "top_bottom")), T])]
        )
    )
    b.page(
        PagePlan(
            1,
            [
                flow(
                    [
                        T,
                        wrap(f.single("derm", 160), "left"),
                        T,
                        ("fig", f.panels("derm", (1, 2), 260, "paren_lower", "side")),
                    ]
                )
            ],
        )
    )
    return b


def book_mixed_b(c: Corpus, s: Style, rng: random.Random) -> BookWriter:
    b, f = BookWriter(c, s, rng), FigFactory(c, s, rng)
    b.page(
        PagePlan(
            2,
            [
                full(("opener",)),
                flow([T, ("fig", f.single("histo", 240)), T], [T, ("fig", f.single("clinical", 240))]),
            ],
        )
    )
    b.page(
        PagePlan(
            1,
            [
                flow(
                    [
                        T,
                        ("fig", f.panels("histo", (2, 2), 320, "paren_lower", letters=True, gutter=5)),
                        T,
                        ("fig", f.single("other", 300, "above")),
                    ]
                )
            ],
        ),
        trap=True,
    )
    b.page(
        PagePlan(
            2,
            [
                full(("pair", [f.single("clinical", 230), f.panels("clinical", (1, 2), 230, "paren_lower")])),
                flow([T], [T]),
            ],
        )
    )
    b.page(
        PagePlan(
            1,
            [
                flow(
                    [
                        ("fig", f.panels("derm", (2, 2), 260, "paren_upper", "side")),
                        T,
                        ("fig", f.tiles("histo", 240, 2)),
                        T,
                    ]
                )
            ],
        )
    )
    b.page(
        PagePlan(
            2, [flow([T], [T]), full(("fig", f.single("clinical", 400, enc="jpx", tags=["full_width"])))]
        )
    )
    fc = f.panels("histo", (2, 3), 360, "paren_lower", composite=True, letters=True)
    b.page(PagePlan(1, [flow([T_END, trap_text(fc, 0.25), ("fig", fc), T])]))
    b.page(PagePlan(1, [flow([T, ("keybox",), T, ("fig", f.vector("flow", 380, True))])]))
    return b


def book_nofig(c: Corpus, s: Style, rng: random.Random) -> BookWriter:
    """Front matter: preface, contents and a list of figures (caption-like lines, no figures)."""
    b = BookWriter(c, s, rng)
    w, h = PAGE_SIZES[s.page]
    # list of figures pages
    for part in range(2):
        page = b.doc.new_page(width=w, height=h)
        area = b.content(len(b.doc) - 1)
        b.head(page, len(b.doc) - 1, area, part == 0)
        tw = pymupdf.TextWriter(page.rect)
        y = area.y0 + 10
        if part == 0:
            tw.append((area.x0, y + 14), "List of Figures", font=font("hebo"), fontsize=18)
            y += 40
        caps = Pool(rng, c.single_caps)
        n = 1
        while y < area.y1 - 30:
            cap = first_sentences(caps.take(lambda x: len(x) < 90), 90).rstrip(".")
            label = f"Fig. {2 + part}.{n}"
            blk = make_block([(label, "hebo"), ("  " + cap, s.body_font)], area.width - 40, 9.5, 11.5)
            tw.write_text(page)
            tw = pymupdf.TextWriter(page.rect)
            blk.draw(page, area.x0, y)
            pg = str(10 + 4 * n + 40 * part)
            tw.append(
                (area.x1 - font("helv").text_length(pg, 9.5), y + blk.height - 3),
                pg,
                font=font("helv"),
                fontsize=9.5,
            )
            y += blk.height + 7
            n += 1
        tw.write_text(page)
    b.page(PagePlan(1, [full(("opener",)), flow([T])]))
    b.flow.cite(["2.1", "2.4", "3.2"])
    b.page(PagePlan(1, [flow([T, ("keybox",), T])]))
    b.page(PagePlan(2, [flow([T], [T])]), trap=False)
    b.flow.cite([], "3.1")
    b.page(PagePlan(2, [flow([T], [T, ("keybox",), T])]))
    return b


# ---------------------------------------------------------------------------------------------------------------
# grids and typesetting (b12, b13): what real publisher PDFs do that the books above do not
# ---------------------------------------------------------------------------------------------------------------

GREY = (205, 205, 205)
BLUE = (38, 78, 140)


def grid_tags(fig: Fig) -> list[str]:
    """Feature tags of a "grid" figure, so the score report gives recall per feature."""
    spec = fig.spec
    assert spec is not None
    tags = [f"gutter_{fig.gutter:g}pt"]
    tags.append(
        {(255, 255, 255): "gutter_white", (0, 0, 0): "gutter_black"}.get(spec.gutter_rgb, "gutter_colour")
    )
    tags += ["framed"] if spec.frame else []
    tags += [f"letters_{spec.letters}"] if spec.letters else []
    tags += ["column_major"] if spec.order == "col" else []
    tags += ["row_col_labels"] if spec.row_labels else []
    tags += ["grid_names"] if spec.printed else []
    return tags


class GridFactory(FigFactory):
    """The figure kinds of the grid and typesetting books, on top of the usual ones."""

    def grid(
        self,
        source: str,
        grid: tuple[int, int],
        width: float,
        spec: GridSpec,
        marker: str = "paren_lower",
        gutter: float = 3.0,
    ) -> Fig:
        """A r x c grid of real images, one composite raster or separate images, lettered as ``spec`` says."""
        f = self.panels(source, grid, width, marker, composite=spec.composite, gutter=gutter)
        f.kind, f.spec = "grid", spec
        f.tags += grid_tags(f)
        return f

    def named_grid(
        self, source: str, grid: tuple[int, int], width: float, spec: GridSpec, gutter: float = 3.0
    ) -> Fig:
        """Panels named row letter + column number, "(a1)" ... "(c4)" in the caption and "a1" ... in the panels."""
        rows, cols = grid
        names = [f"{chr(ord('a') + r)}{c + 1}" for r in range(rows) for c in range(cols)]
        spec = dataclasses.replace(spec, printed=names, names=names)
        f = self.grid(source, grid, width, spec, "names", gutter)
        f.caption.names = [f"({n})" for n in names]
        return f

    def rowcol_grid(self, width: float, gutter: float = 3.0) -> Fig:
        """Three H&E images (rows) at low magnification (a) and as a detail of their centre (b); "1)" "2)" "3)"
        printed left of the rows and "(a)" "(b)" under the columns, the caption naming both; panels "1a" ... "3b"."""
        limit = self._max_chars(width)
        rows = [self.histo.take() for _ in range(3)]
        texts = [
            first_sentences(self.caps.take(lambda c: len(split_sentences(c)[0]) <= limit // 5), limit // 5)
            for _ in rows
        ]
        cols = ["Low magnification.", "The centre of the same field at higher magnification."]
        imgs = [im for r in rows for im in (r, dataclasses.replace(r, zoom=2.5))]
        prefix, label = self.next_label()
        cap = Caption(
            prefix, label, self.s.label_sep, "", texts + cols, "names", names=["1)", "2)", "3)", "(a)", "(b)"]
        )
        spec = GridSpec(
            row_labels=["1)", "2)", "3)"],
            col_labels=["(a)", "(b)"],
            names=[f"{r + 1}{c}" for r in range(3) for c in "ab"],
            subcaps=[f"{t} {c}" for t in texts for c in cols],
        )
        f = Fig("grid", imgs, cap, width, grid=(3, 2), gutter=gutter, spec=spec)
        f.tags = ["histo", "panels", "caption_below", "grid_3x2", "marker_names"] + grid_tags(f)
        return f

    def small_caps(self, fig: Fig, word: str | None = None) -> Fig:
        """Print the figure's label in small capitals ("F" + "IG. 3.1"), optionally with another label word."""
        cap = fig.caption
        cap.prefix = f"{word or self.s.label_word} {cap.label}".upper()
        cap.small_caps = True
        fig.tags.append("small_caps")
        return fig

    def other_column(self, fig: Fig) -> Fig:
        """Tag a figure whose caption is set in the other column of a two-column page (element "xcol")."""
        fig.tags = [t for t in fig.tags if not t.startswith("caption_")] + ["caption_other_column"]
        return fig


def book_grids(c: Corpus, s: Style, rng: random.Random) -> BookWriter:
    """Grids of 2x2 and 3x4 panels: one composite raster or separate images, 3 pt and 6 pt gutters in white,
    black, grey or blue, framed panels, letters burned into the pixels or set in the text layer inside the
    panels, a grid lettered down the columns, a grid with row numbers and column letters, a grid named a1 ... c4."""
    b, f = BookWriter(c, s, rng), GridFactory(c, s, rng)
    G = GridSpec
    b.page(
        PagePlan(
            1,
            [
                full(("opener",)),
                flow([T, ("fig", f.grid("histo", (2, 2), 300, G(composite=True, letters="pixels"))), T]),
            ],
        )
    )
    dark_paren = G(composite=True, gutter_rgb=(0, 0, 0), letters="pixels", letter_fmt="({l})", box="dark")
    b.page(PagePlan(1, [flow([("fig", f.grid("derm", (3, 4), 440, dark_paren, gutter=6)), T])]), trap=True)
    framed_text = G(frame=True, letters="text", letter_fmt="{L}", box="dark", corner="tr")
    b.page(PagePlan(1, [flow([T, ("fig", f.grid("clinical", (2, 2), 320, framed_text, "paren_upper")), T])]))
    grey_text = G(gutter_rgb=GREY, letters="text", letter_fmt="{L}")
    b.page(
        PagePlan(1, [flow([T, ("fig", f.grid("derm", (3, 4), 430, grey_text, "comma_upper", gutter=6)), T])])
    )
    blue = G(composite=True, gutter_rgb=BLUE, frame=True, letters="pixels", letter_fmt="{L}", corner="bl")
    b.page(PagePlan(1, [flow([T, ("fig", f.grid("histo", (2, 2), 320, blue, "paren_upper", gutter=6)), T])]))
    grey_px = G(composite=True, gutter_rgb=GREY, frame=True, letters="pixels", box="dark", corner="tr")
    b.page(PagePlan(1, [flow([("fig", f.grid("derm", (3, 4), 430, grey_px, "bare_lower")), T])]))
    colmajor = G(letters="text", order="col")
    b.page(PagePlan(1, [flow([T, ("fig", f.grid("clinical", (2, 2), 300, colmajor, gutter=6)), T])]))
    colmajor_px = G(
        composite=True, gutter_rgb=(0, 0, 0), letters="pixels", letter_fmt="({l})", box="dark", order="col"
    )
    b.page(PagePlan(1, [flow([T, ("fig", f.grid("histo", (2, 3), 380, colmajor_px)), T])]))
    b.page(PagePlan(1, [flow([T, ("fig", f.rowcol_grid(300)), T])]))
    b.page(PagePlan(1, [flow([T, ("fig", f.named_grid("derm", (3, 4), 430, G(letters="text"))), T])]))
    return b


def book_typesetting(c: Corpus, s: Style, rng: random.Random) -> BookWriter:
    """Captions as publishers set them: labels in small capitals ("F" + "IG. 13.1" in two sizes, "FIGURE"),
    text layers of words placed one by one without space characters (glued) or as one text object per word
    (word per line), and captions beside their figure in the other column of a two-column page."""
    b, f = BookWriter(c, s, rng), GridFactory(c, s, rng)
    b.page(PagePlan(1, [full(("opener",)), flow([T, ("fig", f.small_caps(f.single("clinical", 300))), T])]))
    b.page(
        PagePlan(
            2,
            [
                flow([T], [T], weight=0.4),
                full(("xcol", f.other_column(f.single("histo", 300)), "right_top")),
                flow([T], [T]),
            ],
        ),
        trap=True,
    )
    b.page(
        PagePlan(
            1,
            [flow([T, ("fig", f.single("derm", 260)), T, ("fig", f.panels("clinical", (1, 2), 360)), T])],
        ),
        text_mode="glued",
    )
    b.page(
        PagePlan(
            1,
            [
                flow(
                    [
                        T,
                        ("fig", f.single("histo", 220)),
                        T,
                        ("fig", f.panels("histo", (2, 2), 250, "paren_upper")),
                        T,
                    ]
                )
            ],
        ),
        text_mode="word_per_line",
    )
    b.page(
        PagePlan(
            2,
            [
                flow(
                    [T, ("fig", f.small_caps(f.single("derm", 220), "Figure")), T],
                    [T, ("fig", f.small_caps(f.panels("histo", (1, 2), 230, "comma_upper"))), T],
                )
            ],
        )
    )
    b.page(
        PagePlan(
            2, [full(("xcol", f.other_column(f.single("clinical", 300)), "left_bottom")), flow([T], [T])]
        )
    )
    b.page(
        PagePlan(
            2,
            [
                flow(
                    [T, ("fig", f.small_caps(f.single("histo", 220))), T],
                    [T, ("fig", f.single("clinical", 220)), T],
                )
            ],
        ),
        text_mode="glued",
    )
    b.page(
        PagePlan(
            2,
            [flow([T], [T], weight=0.5), full(("xcol", f.other_column(f.single("derm", 300)), "right_top"))],
        ),
        text_mode="word_per_line",
    )
    return b


@dataclass
class BookDef:
    name: str
    builder: Callable[[Corpus, Style, random.Random], BookWriter]
    style: Style


def book_defs() -> list[BookDef]:
    return [
        BookDef(
            "b01_onecol_atlas",
            book_onecol,
            Style(
                "b01_onecol_atlas",
                "one_column",
                page="7x10",
                margins=(64, 58, 54, 48),
                body_font="tiro",
                body_bold="tibo",
                body_size=10.5,
                cap_font="helv",
                cap_label_font="hebo",
                cap_size=8.5,
                label_word="Fig.",
                cite_word="Fig.",
                chapter=3,
                chapter_title="Melanocytic Naevi",
                cap_center_short=True,
                book_title="Atlas of Clinical Dermatology",
                first_page=41,
                headings=_h(
                    "3",
                    [
                        "Common acquired naevi",
                        "Dysplastic naevi",
                        "Dermoscopy",
                        "Histopathology",
                        "Management",
                    ],
                ),
            ),
        ),
        BookDef(
            "b02_twocol_histopath",
            book_twocol,
            Style(
                "b02_twocol_histopath",
                "two_column",
                page="letter",
                margins=(70, 60, 54, 54),
                body_font="tiro",
                body_bold="tibo",
                body_size=9.5,
                cap_font="tiro",
                cap_label_font=None,
                cap_size=8.0,
                cap_width="column",
                label_word="Figure",
                numbering="chapter_dash",
                cite_word="Figure",
                chapter=12,
                chapter_title="Tumours of the Epidermis",
                book_title="Dermatopathology: A Practical Guide",
                first_page=310,
                head_font="helv",
                headings=HEAD_DERM[:],
            ),
        ),
        BookDef(
            "b03_side_captions",
            book_side,
            Style(
                "b03_side_captions",
                "side_caption",
                page="a4",
                margins=(70, 64, 60, 60),
                body_font="helv",
                body_bold="hebo",
                body_size=9.5,
                justify=False,
                indent=False,
                cap_font="helv",
                cap_label_font="hebo",
                cap_size=8.0,
                label_word="FIGURE",
                label_sep="\n",
                cite_word="Figure",
                chapter=7,
                chapter_title="Papulosquamous Disorders",
                book_title="Essential Dermatology",
                first_page=188,
                head_rule=False,
                page_num="foot",
                headings=_h(None, HEAD_DERM),
            ),
        ),
        BookDef(
            "b04_caption_above",
            book_above,
            Style(
                "b04_caption_above",
                "caption_above",
                page="letter",
                margins=(72, 64, 66, 66),
                body_font="helv",
                body_bold="hebo",
                body_size=10.0,
                cap_font="tiro",
                cap_label_font="tibo",
                cap_size=9.0,
                label_word="Fig",
                label_sep=": ",
                cite_word="Fig",
                chapter=4,
                chapter_title="Inflammatory Dermatoses",
                book_title="Clinical Dermatopathology",
                first_page=77,
                head_font="heit",
                headings=_h("4", HEAD_DERM[:5]),
            ),
        ),
        BookDef(
            "b05_composite_panels",
            book_composite,
            Style(
                "b05_composite_panels",
                "composite_panels",
                page="7x10",
                margins=(62, 56, 50, 46),
                body_font="tiro",
                body_bold="tibo",
                body_size=10.0,
                cap_font="helv",
                cap_label_font="hebo",
                cap_size=7.5,
                cap_justify=True,
                label_word="Fig.",
                numbering="three_level",
                cite_word="Fig.",
                chapter=10,
                chapter_title="Adnexal and Cutaneous Tumours",
                book_title="Skin Pathology Atlas",
                first_page=402,
                headings=_h("10.1", ["Basal cell carcinoma", "Squamous cell carcinoma", "Melanoma"]),
            ),
        ),
        BookDef(
            "b06_plates_side_by_side",
            book_plates,
            Style(
                "b06_plates_side_by_side",
                "side_by_side",
                page="a4",
                margins=(66, 60, 62, 62),
                body_font="tiro",
                body_bold="tibo",
                body_size=11.0,
                cap_font="tiit",
                cap_label_font="tibo",
                cap_size=9.0,
                label_word="Plate",
                label_sep=". ",
                numbering="plain",
                cite_word="Plate",
                chapter=2,
                chapter_title="Dermoscopy Plates",
                book_title="Colour Atlas of Dermoscopy",
                first_page=12,
                cap_center_short=True,
                opener_banner=True,
                headings=_h(None, ["Pigment network", "Globules and dots", "Vascular structures"]),
            ),
        ),
        BookDef(
            "b07_image_storage",
            book_encodings,
            Style(
                "b07_image_storage",
                "image_storage",
                page="letter",
                margins=(70, 62, 64, 64),
                body_font="tiro",
                body_bold="tibo",
                body_size=10.5,
                cap_font="helv",
                cap_label_font="hebo",
                cap_size=8.5,
                label_word="Fig.",
                cite_word="Fig.",
                chapter=6,
                chapter_title="Pigmentary Disorders",
                book_title="Textbook of Dermatology and Venereology",
                first_page=150,
                head_rule=True,
                head_logo=True,
                headings=_h("6", ["Hyperpigmentation", "Hypopigmentation", "Dermoscopic clues"]),
            ),
        ),
        BookDef(
            "b08_vector_figures",
            book_vector,
            Style(
                "b08_vector_figures",
                "vector",
                page="a4",
                margins=(72, 64, 56, 56),
                body_font="tiro",
                body_bold="hebo",
                body_size=9.5,
                cap_font="tiro",
                cap_label_font=None,
                cap_size=9.5,
                label_word="Figure",
                label_sep=" \u2013 ",
                numbering="plain",
                cite_word="Figure",
                chapter=1,
                chapter_title="Epidemiology of Skin Cancer",
                book_title="Skin Cancer: Principles and Practice",
                first_page=2,
                headings=_h("1", ["Incidence", "Risk factors", "Screening", "Referral pathways"]),
            ),
        ),
        BookDef(
            "b09_mixed_a",
            book_mixed_a,
            Style(
                "b09_mixed_a",
                "mixed",
                page="7x10",
                margins=(64, 58, 50, 46),
                body_font="tiro",
                body_bold="tibo",
                body_size=9.5,
                cap_font="helv",
                cap_label_font="hebo",
                cap_size=7.5,
                label_word="Fig.",
                label_sep=": ",
                numbering="plain",
                cite_word="Fig.",
                chapter=5,
                chapter_title="Benign Melanocytic Lesions",
                book_title="Handbook of Pigmented Lesions",
                first_page=96,
                headings=_h("5", HEAD_DERM[:6]),
            ),
        ),
        BookDef(
            "b10_mixed_b",
            book_mixed_b,
            Style(
                "b10_mixed_b",
                "mixed",
                page="a4",
                margins=(70, 64, 58, 58),
                body_font="tiro",
                body_bold="tibo",
                body_size=10.0,
                cap_font="cour",
                cap_label_font="cobo",
                cap_size=8.0,
                label_word="Figure",
                label_sep=". ",
                cite_word="Figure",
                chapter=8,
                chapter_title="Cutaneous Histology",
                book_title="Histology of the Skin",
                first_page=233,
                head_font="cour",
                opener_banner=True,
                headings=_h("8", ["Epidermis", "Dermis", "Adnexa", "Subcutis"]),
            ),
        ),
        BookDef(
            "b11_front_matter_nofig",
            book_nofig,
            Style(
                "b11_front_matter_nofig",
                "no_figures",
                page="letter",
                margins=(72, 64, 64, 64),
                body_font="tiro",
                body_bold="tibo",
                body_size=10.5,
                chapter=1,
                chapter_title="Preface",
                book_title="Atlas of Clinical Dermatology",
                first_page=1,
                headings=["About this book", "Acknowledgements", "How to use the atlas"],
            ),
        ),
        # added later (issue 11); appended so that the books above keep their bytes and GT
        BookDef(
            "b12_grids",
            book_grids,
            Style(
                "b12_grids",
                "grids",
                page="a4",
                margins=(70, 62, 60, 60),
                body_font="tiro",
                body_bold="tibo",
                body_size=10.0,
                cap_font="helv",
                cap_label_font="hebo",
                cap_size=8.5,
                label_word="Fig.",
                cite_word="Fig.",
                chapter=11,
                chapter_title="Dermoscopy and Histology in Grids",
                book_title="Comparative Atlas of Skin Lesions",
                first_page=270,
                headings=_h("11", ["Pigmented lesions", "Non-pigmented lesions", "Histological correlation"]),
            ),
        ),
        BookDef(
            "b13_typesetting",
            book_typesetting,
            Style(
                "b13_typesetting",
                "typesetting",
                page="letter",
                margins=(70, 62, 58, 58),
                body_font="tiro",
                body_bold="tibo",
                body_size=10.0,
                cap_font="helv",
                cap_label_font="hebo",
                cap_size=9.0,
                label_word="Fig.",
                cite_word="Fig.",
                chapter=13,
                chapter_title="Genodermatoses",
                book_title="Clinical and Pathological Dermatology",
                first_page=351,
                headings=_h("13", ["Keratinisation disorders", "Blistering disorders", "Pigmentation"]),
            ),
        ),
    ]


SCANNED_FROM = "b09_mixed_a"

# (label word, separator, in-text citation word) combinations seen in real books; "\n": label on its own line
LABEL_FORMATS = [
    ("Fig.", " ", "Fig."),
    ("Fig", " ", "Fig"),
    ("Fig.", ". ", "Fig."),
    ("Figure", " ", "Figure"),
    ("Figure", ". ", "Figure"),
    ("FIGURE", " ", "Figure"),
    ("Figure", " \u2013 ", "Figure"),
    ("Fig.", ": ", "Fig."),
    ("Plate", ". ", "Plate"),
    ("FIGURE", BREAK, "Figure"),
    ("Fig.", BREAK, "Fig."),
]
FAMILIES = [("tiro", "tibo", "tiit"), ("helv", "hebo", "heit"), ("cour", "cobo", "coit")]


def vary_style(style: Style, rng: random.Random) -> Style:
    """A typographic variant of a book (seed != 0): same layouts, other label format, fonts, sizes and page."""
    word, sep, cite = rng.choice(LABEL_FORMATS)
    body = rng.choice(FAMILIES[:2])
    cap = rng.choice(FAMILIES if rng.random() < 0.15 else FAMILIES[:2])
    body_size = rng.choice([9.5, 10.0, 10.5, 11.0])
    same = rng.random() < 0.15  # caption in the body font and size
    return dataclasses.replace(
        style,
        page=rng.choice(list(PAGE_SIZES)),
        body_font=body[0],
        body_bold=body[1],
        body_size=body_size,
        justify=rng.random() < 0.7,
        indent=rng.random() < 0.7,
        cap_font=body[0] if same else cap[0],
        cap_size=body_size if same else rng.choice([7.5, 8.0, 8.5, 9.0, 9.5]),
        cap_label_font=None if (same or rng.random() < 0.3) else cap[1],
        cap_justify=rng.random() < 0.3,
        cap_width=rng.choice(["image", "image", "column"]),
        cap_center_short=rng.random() < 0.3,
        label_word=word,
        label_sep=sep,
        cite_word=cite,
        numbering="plain"
        if word == "Plate"
        else rng.choice(["chapter_dot", "chapter_dash", "three_level", "plain"]),
        fig_align=rng.choice(["center", "center", "left"]),
        head_font=rng.choice(["tiit", "heit", "helv", "cour"]),
        head_rule=rng.random() < 0.6,
        page_num=rng.choice(["head", "foot"]),
        opener_banner=rng.random() < 0.3,
        head_logo=rng.random() < 0.2,
    )


# ---------------------------------------------------------------------------------------------------------------
# scanning
# ---------------------------------------------------------------------------------------------------------------


def rotate_box(box: list[float], angle: float, cx: float, cy: float) -> list[float]:
    """Bounding box of ``box`` rotated counter-clockwise (as seen) by ``angle`` degrees about (cx, cy)."""
    t = math.radians(angle)
    pts = []
    for x, y in ((box[0], box[1]), (box[2], box[1]), (box[0], box[3]), (box[2], box[3])):
        dx, dy = x - cx, y - cy
        pts.append((cx + dx * math.cos(t) + dy * math.sin(t), cy - dx * math.sin(t) + dy * math.cos(t)))
    return [
        round(min(p[0] for p in pts), 2),
        round(min(p[1] for p in pts), 2),
        round(max(p[0] for p in pts), 2),
        round(max(p[1] for p in pts), 2),
    ]


def scan_pdf(
    src: Path,
    dst: Path,
    items: list[dict[str, Any]],
    deco: list[dict[str, Any]],
    rng: random.Random,
    dpi: int = 200,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Render every page, degrade it like a scan and store it as a full-page image (no text layer)."""
    doc = pymupdf.open(src)
    out = pymupdf.open()
    angles = {}
    nrng = np.random.default_rng(rng.randrange(1 << 30))
    for pno, page in enumerate(doc):
        pix = page.get_pixmap(dpi=dpi)
        im = Image.frombytes("RGB", (pix.width, pix.height), pix.samples)
        angle = rng.uniform(-0.3, 0.3)
        angles[pno + 1] = angle
        im = im.rotate(angle, resample=Image.BICUBIC, fillcolor=(255, 255, 255))
        im = im.filter(ImageFilter.GaussianBlur(0.6))
        arr = np.asarray(im, dtype=np.float32) * np.array([0.985, 0.975, 0.95], dtype=np.float32)
        arr += nrng.normal(0.0, 4.0, arr.shape[:2])[..., None]
        im = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
        bio = io.BytesIO()
        im.save(bio, "JPEG", quality=75)
        np_ = out.new_page(width=page.rect.width, height=page.rect.height)
        np_.insert_image(np_.rect, stream=bio.getvalue(), keep_proportion=False)
    out.set_metadata(
        {
            "title": "scan",
            "producer": "scanner",
            "creationDate": "D:20250101000000Z",
            "modDate": "D:20250101000000Z",
        }
    )
    out.save(dst, garbage=3, deflate=True, no_new_id=True)

    def turn(box: list[float], pno: int) -> list[float]:
        r = doc[pno - 1].rect
        return rotate_box(box, angles[pno], r.width / 2, r.height / 2)

    new_items = [
        {
            **it,
            "bbox": turn(it["bbox"], it["page"]),
            "caption_bbox": turn(it["caption_bbox"], it["page"]),
            "tags": it["tags"] + ["scanned"],
        }
        for it in items
    ]
    return new_items, [{**d, "bbox": turn(d["bbox"], d["page"])} for d in deco]


# ---------------------------------------------------------------------------------------------------------------
# self-check and main
# ---------------------------------------------------------------------------------------------------------------


def reading_order(words: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """PyMuPDF words grouped into printed lines (bottoms within 2 pt), top to bottom, each left to right."""
    lines: list[list[tuple[Any, ...]]] = []
    for w in sorted(words, key=lambda w: w[3]):
        if lines and abs(lines[-1][0][3] - w[3]) <= 2.0:
            lines[-1].append(w)
        else:
            lines.append([w])
    return [w for ln in lines for w in sorted(ln, key=lambda w: w[0])]


def self_check(pdf: Path, items: list[dict[str, Any]]) -> list[str]:
    """Born-digital sanity checks: caption text is extractable as recorded; raster items are covered by images."""
    problems = []
    doc = pymupdf.open(pdf)
    words = {p.number + 1: p.get_text("words", sort=False) for p in doc}
    for it in items:
        page = doc[it["page"] - 1]
        r = pymupdf.Rect(it["caption_bbox"]) + (-1, -1, 1, 1)
        ws = [w for w in words[it["page"]] if r.contains(pymupdf.Point((w[0] + w[2]) / 2, (w[1] + w[3]) / 2))]
        if "word_per_line" in it["tags"]:  # PyMuPDF gives these words right to left: read them by position
            ws = reading_order(ws)
        got, want = " ".join(w[4] for w in ws), it["caption"]
        if "glued_words" in it["tags"]:  # no spaces in the text layer: compare the letters
            got, want = got.replace(" ", ""), want.replace(" ", "")
            lines = {round(w[3]) for w in ws}
            if len(ws) > len(lines) + 1:  # PyMuPDF must not find the word breaks: one "word" per printed line
                problems.append(
                    f"{pdf.name} p{it['page']} {it['figure_label']}: glued caption reads with spaces"
                )
        sim = SequenceMatcher(None, got, want, autojunk=False).ratio()
        if sim < 0.98:
            problems.append(
                f"{pdf.name} p{it['page']} {it['figure_label']}: caption text sim {sim:.3f}: {got[:80]!r}"
            )
        if "vector" in it["tags"]:
            continue
        box = pymupdf.Rect(it["bbox"])
        cover = [
            pymupdf.Rect(i["bbox"]) & box
            for i in page.get_image_info()
            if pymupdf.Rect(i["bbox"]).intersects(box)
        ]
        area = sum(c.get_area() for c in cover)
        if area < 0.97 * box.get_area():
            problems.append(
                f"{pdf.name} p{it['page']} {it['figure_label']}{it['panel'] or ''}: images cover "
                f"{area / box.get_area():.2f} of the GT box"
            )
    for page in doc:  # GT boxes of different items must not overlap much
        its = [pymupdf.Rect(i["bbox"]) for i in items if i["page"] == page.number + 1]
        for a in range(len(its)):
            for b in range(a + 1, len(its)):
                if (its[a] & its[b]).get_area() > 0.05 * min(its[a].get_area(), its[b].get_area()):
                    problems.append(f"{pdf.name} p{page.number + 1}: GT boxes overlap")
    return problems


def write_gt(
    path: Path,
    file: str,
    style: str,
    pages: int,
    scanned: bool,
    items: list[dict[str, Any]],
    extra: dict[str, Any] | None = None,
) -> None:
    items = sorted(items, key=lambda i: (i["page"], i["bbox"][1], i["bbox"][0]))
    gt = {"file": file, "style": style, "pages": pages, "scanned": scanned, **(extra or {}), "items": items}
    path.write_text(json.dumps(gt, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def build(data: Path, out: Path, seed: int, check: bool = True) -> list[dict[str, Any]]:
    out.mkdir(parents=True, exist_ok=True)
    corpus = Corpus(data)
    summary = []
    for bd in book_defs():
        rng = random.Random(f"{seed}:{bd.name}")
        style = bd.style if seed == 0 else vary_style(bd.style, random.Random(f"style:{seed}:{bd.name}"))
        writer = bd.builder(corpus, style, rng)
        pdf = out / f"{bd.name}.pdf"
        writer.save(pdf)
        if check:
            for p in self_check(pdf, writer.items):
                print("CHECK:", p, file=sys.stderr)
        if bd.style.tag != "no_figures" and writer.flow.emitted_traps == 0:
            print(f"CHECK: {bd.name}: no paragraph starting with a figure label was emitted", file=sys.stderr)
        pages = len(writer.doc)
        write_gt(
            out / f"{bd.name}.gt.json",
            pdf.name,
            bd.style.tag,
            pages,
            False,
            writer.items,
            {"decorative": writer.decorative},
        )
        summary.append(
            {
                "file": pdf.name,
                "style": bd.style.tag,
                "pages": pages,
                "items": len(writer.items),
                "figures": len({i["figure_label"] for i in writer.items}),
                "scanned": False,
                "traps": writer.flow.emitted_traps,
            }
        )
        if bd.name == SCANNED_FROM:
            name = f"{bd.name}_scanned"
            srng = random.Random(f"{seed}:{name}")
            items, deco = scan_pdf(pdf, out / f"{name}.pdf", writer.items, writer.decorative, srng)
            write_gt(
                out / f"{name}.gt.json",
                f"{name}.pdf",
                "scanned",
                pages,
                True,
                items,
                {"scanned_from": pdf.name, "source_style": bd.style.tag, "decorative": deco},
            )
            summary.append(
                {
                    "file": f"{name}.pdf",
                    "style": "scanned",
                    "pages": pages,
                    "items": len(items),
                    "figures": len({i["figure_label"] for i in items}),
                    "scanned": True,
                    "traps": writer.flow.emitted_traps,
                }
            )
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example: python benchmarks/pdf/make_bookset.py --out benchmarks/_work/bookset",
    )
    add_data_argument(ap)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: %(default)s)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-check", action="store_true", help="skip the born-digital self-check")
    args = ap.parse_args(argv)
    if not (args.data / "images" / "labels.csv").is_file():
        print(f"error: {args.data}: no images/labels.csv (pass --data)", file=sys.stderr)
        return 2
    t0 = time.time()
    summary = build(args.data.resolve(), args.out, args.seed, check=not args.no_check)
    by_style: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    print(f"{'file':34} {'style':18} {'pages':>5} {'figs':>5} {'items':>5} {'label-led paragraphs':>21}")
    for s in summary:
        print(
            f"{s['file']:34} {s['style']:18} {s['pages']:5d} {s['figures']:5d} {s['items']:5d} {s['traps']:21d}"
        )
        acc = by_style[s["style"]]
        acc[0] += 1
        acc[1] += s["pages"]
        acc[2] += s["items"]
    print(
        "per style: " + ", ".join(f"{k} {v[0]} books/{v[1]} pages/{v[2]} items" for k, v in by_style.items())
    )
    print(
        f"{len(summary)} PDFs, {sum(s['pages'] for s in summary)} pages, {sum(s['items'] for s in summary)} "
        f"GT items -> {args.out} ({time.time() - t0:.1f} s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
