"""Scanned pages: OCR text lines and picture regions from a page that is only a picture (no text layer).

``mmskin build`` calls :func:`needs_ocr` for every page; pages that need it go through
:func:`read_scanned_page`, which rasterises the page, reads word boxes with Tesseract
(``pytesseract.image_to_data``) and finds the photos and drawings on the page image (everything large and
non-background once the OCR'd text is masked out). The result is the same :class:`~mmskin.pdf.page.Page` that
born-digital pages give, with ``scanned=True`` and graphics of kind ``"region"``, so caption detection and
figure assembly do not care where a page came from.

    >>> import pymupdf
    >>> from mmskin.pdf.ocr import needs_ocr, read_scanned_page
    >>> pg = pymupdf.open("scanned_atlas.pdf")[0]
    >>> if needs_ocr(pg, "auto"):
    ...     page, image, scale = read_scanned_page(pg, page_no=1)  # scale: image pixels per PDF point
    ...     crop = image.crop([round(v * scale) for v in page.graphics[0].bbox])

Needs the ``[ocr]`` extra (pytesseract, opencv-python-headless) and the tesseract binary
(``apt-get install tesseract-ocr``). Tesseract is run single-threaded (``OMP_THREAD_LIMIT=1`` unless the
caller set it): on small machines, one page per worker process is faster than Tesseract's own threads.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from mmskin.pdf.page import Box, Graphic, Page, Span, TextLine, area, union
from mmskin.pdf.regions import absorb_labels, caption_anchored_regions, find_picture_regions

if TYPE_CHECKING:
    import pymupdf
    from PIL import Image

TESSERACT_MISSING = "tesseract not found: apt-get install tesseract-ocr"

# a word must reach this Tesseract confidence (0-100) to become text; photos give low-confidence garbage
MIN_WORD_CONF = 40.0
# words this confident are masked out before picture regions are searched (lower ones may be picture texture)
MASK_WORD_CONF = 60.0
# pages with fewer non-space characters than this count as having no text layer
MIN_TEXT_CHARS = 20
# longest side of the rendered page image (posters and fold-outs are rendered below the requested dpi)
MAX_SIDE_PX = 7000


@functools.cache
def tesseract_available() -> bool:
    """True when pytesseract imports and the tesseract binary runs (answer cached for the process)."""
    try:
        import pytesseract

        pytesseract.get_tesseract_version()
    except Exception:
        return False
    return True


def image_coverage(pg: pymupdf.Page) -> float:
    """Fraction of the page area covered by embedded images (union, on a coarse grid)."""
    r = pg.rect
    if r.width <= 0 or r.height <= 0:
        return 0.0
    n = 128
    grid = np.zeros((n, n), dtype=bool)
    for info in pg.get_image_info():
        x0, y0, x1, y1 = info["bbox"]
        c0 = int(np.clip(np.floor((x0 - r.x0) / r.width * n), 0, n))
        c1 = int(np.clip(np.ceil((x1 - r.x0) / r.width * n), 0, n))
        r0 = int(np.clip(np.floor((y0 - r.y0) / r.height * n), 0, n))
        r1 = int(np.clip(np.ceil((y1 - r.y0) / r.height * n), 0, n))
        grid[r0:r1, c0:c1] = True
    return float(grid.mean())


def needs_ocr(pg: pymupdf.Page, mode: str, chars: int | None = None) -> bool:
    """Whether a PyMuPDF page should go through OCR.

    ``mode``: ``"always"``, ``"never"`` or ``"auto"``: (almost) no extractable text (< ``MIN_TEXT_CHARS``
    non-space characters) and either an image covering at least half of the page or no text at all.
    ``chars``: the page's non-space character count when the caller has already read its text.
    """
    if mode == "always":
        return True
    if mode == "never":
        return False
    if mode != "auto":
        raise ValueError(f"ocr mode must be auto, always or never, not {mode!r}")
    if chars is None:
        chars = sum(1 for c in pg.get_text("text") if not c.isspace())
    if chars >= MIN_TEXT_CHARS:
        return False
    return chars == 0 or image_coverage(pg) >= 0.5


# ----------------------------------------------------------------------------------------------------------
# OCR words → lines


@dataclass(frozen=True)
class OcrWord:
    """One Tesseract word in image pixels; ``key`` = (block, paragraph, line) numbers from Tesseract."""

    text: str
    conf: float
    box: Box
    key: tuple[int, int, int]


def ocr_words(image: Image.Image, lang: str = "eng", psm: int = 3) -> list[OcrWord]:
    """All non-empty words Tesseract reads on ``image`` (any confidence), in Tesseract's reading order."""
    import pytesseract

    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    d = pytesseract.image_to_data(
        image, lang=lang, config=f"--psm {psm}", output_type=pytesseract.Output.DICT
    )
    out: list[OcrWord] = []
    for i, level in enumerate(d["level"]):
        text = str(d["text"][i]).strip()
        if int(level) != 5 or not text:
            continue
        x, y, w, h = (int(d[k][i]) for k in ("left", "top", "width", "height"))
        if w <= 0 or h <= 0:
            continue
        key = (int(d["block_num"][i]), int(d["par_num"][i]), int(d["line_num"][i]))
        out.append(OcrWord(text, float(d["conf"][i]), (x, y, x + w, y + h), key))
    return out


def _has_alnum(s: str) -> bool:
    return any(c.isalnum() for c in s)


def words_to_lines(words: list[OcrWord], scale: float, min_conf: float = MIN_WORD_CONF) -> list[TextLine]:
    """Group confident words into one ``TextLine`` per Tesseract line (boxes in PDF points).

    Lines of one Tesseract paragraph share a running ``block`` number. A line with no letter or digit (rules,
    speckle read as "|" or "—") is dropped. The font size is estimated from the line height.
    """
    groups: dict[tuple[int, int, int], list[OcrWord]] = {}
    prev: OcrWord | None = None
    for w in words:
        # a label's number is often read right but with a low confidence ("Figure" 69, "3" 13): keep it there
        label_number = (
            prev is not None
            and prev.key == w.key
            and prev.conf >= min_conf
            and _LABEL_WORD.match(prev.text) is not None
            and _LABEL_NUMBER.match(w.text) is not None
        )
        if w.conf >= min_conf or label_number:
            groups.setdefault(w.key, []).append(w)
        prev = w
    lines: list[TextLine] = []
    blocks: dict[tuple[int, ...], int] = {}
    confident = [w for ws in groups.values() for w in ws]
    for key, ws in groups.items():  # dicts keep Tesseract's reading order
        others = [w for w in confident if w.key != key]
        for piece_no, piece in enumerate(_split_at_gutters(ws, others)):
            text = " ".join(w.text for w in piece)
            if not _has_alnum(text):
                continue
            bx = union([w.box for w in piece])
            bbox = (bx[0] / scale, bx[1] / scale, bx[2] / scale, bx[3] / scale)
            # the ink of a line spans ascender to descender, about 0.93 em in common book faces (scanned demo:
            # 10.5 pt body lines are 7.2 pt tall, 8.5 pt captions 6.1 pt); lines without descenders read low
            size = round(max(1.0, (bbox[3] - bbox[1]) / 0.93), 1)
            block = blocks.setdefault((*key[:2], piece_no), len(blocks))
            lines.append(TextLine(bbox, text, (Span(text, "ocr", size, False, bbox),), block))
    return lines


_LABEL_WORD = re.compile(r"^(fig\.?|figure|plate|table)$", re.IGNORECASE)
_LABEL_NUMBER = re.compile(r"^[A-Z]?\d{1,3}([.\-\u2013]\d{1,3})?[.:|]?$")
# a caption label standing alone: "Figure 1", "Fig. 2.", "FIGURE 3-1", "Plate 4:" (or the label word whose number the
# OCR lost); typesetters often follow it with an em space, which is not a column gutter
_LONE_LABEL = re.compile(
    r"^(fig\.?|figure|plate|table)(\s+[A-Z]?\d+([.\-\u2013]\d+)*[a-z]?)?\s*[.:|]?$", re.IGNORECASE
)


def _free_run(lo: float, hi: float, covered: list[tuple[float, float]]) -> float:
    """The longest stretch of [lo, hi] that none of the ``covered`` intervals touches."""
    best, x = 0.0, lo
    for a, b in sorted(covered):
        if b <= x:
            continue
        if a >= hi:
            break
        best = max(best, a - x)
        x = max(x, b)
    return max(best, hi - x)


def _split_at_gutters(ws: list[OcrWord], others: list[OcrWord] = ()) -> list[list[OcrWord]]:
    """Cut one Tesseract line where the words jump a column gutter.

    Tesseract often reads two side-by-side captions (or a caption and the body text wrapped beside a figure)
    as one line. A shorter gap (over 0.6 line heights) before a caption label starts a new line. A wide gap (over
    1.2 line heights) does too, unless it only follows a lone label ("Figure 1" + em space + caption text), or the
    lines just above and below (``others``: the page's other words) print across it: a gutter is a channel of
    white down the page, a wide space in a justified line is not.
    """
    if len(ws) < 2:
        return [ws]
    ws = sorted(ws, key=lambda w: w.box[0])
    h = float(np.median([w.box[3] - w.box[1] for w in ws]))
    top, bottom = min(w.box[1] for w in ws), max(w.box[3] for w in ws)
    near = [
        o.box for o in others if o.box[3] > top - h and o.box[1] < bottom + h
    ]  # the lines just above and below
    out = [[ws[0]]]
    for prev, w in zip(ws, ws[1:]):
        g = w.box[0] - prev.box[2]
        label_next = _LABEL_WORD.match(w.text) is not None
        if g > 0.6 * h and label_next:
            out.append([w])
            continue
        if g > 1.2 * h and not _LONE_LABEL.match(" ".join(x.text for x in out[-1])):
            covered = [(b[0], b[2]) for b in near if b[2] > prev.box[2] and b[0] < w.box[0]]
            if not near or _free_run(prev.box[2], w.box[0], covered) > 1.2 * h:
                out.append([w])
                continue
        out[-1].append(w)
    return out


# ----------------------------------------------------------------------------------------------------------
# picture regions on the page image


def text_mask_boxes(words: list[OcrWord], max_height: float) -> list[Box]:
    """Word boxes that are text, to mask before the picture search; never a box taller than ``max_height``.

    A word counts when it is confident, or when its line or its paragraph reads well as a whole (median
    confidence >= ``MIN_WORD_CONF`` resp. ``MASK_WORD_CONF``): badly read words in a good table column are
    text too, while the scattered garbage Tesseract reads inside photos stays picture.
    """
    groups: dict[tuple[int, ...], list[float]] = {}
    for w in words:
        groups.setdefault(w.key, []).append(w.conf)
        groups.setdefault(w.key[:2], []).append(w.conf)
    med = {k: float(np.median(v)) for k, v in groups.items()}
    out: list[Box] = []
    for w in words:
        if w.box[3] - w.box[1] > max_height:
            continue
        good = med[w.key] >= MIN_WORD_CONF or med[w.key[:2]] >= MASK_WORD_CONF
        if good or (w.conf >= MASK_WORD_CONF and _has_alnum(w.text)):
            out.append(w.box)
    return out


# ----------------------------------------------------------------------------------------------------------


def render_page(pg: pymupdf.Page, dpi: int) -> tuple[Image.Image, float]:
    """The page as an RGB PIL image and its scale (pixels per PDF point); huge pages get a lower dpi."""
    import pymupdf
    from PIL import Image

    longest = max(pg.rect.width, pg.rect.height) / 72.0
    dpi = max(1, min(dpi, int(MAX_SIDE_PX / longest))) if longest > 0 else dpi
    pix = pg.get_pixmap(dpi=dpi, colorspace=pymupdf.csRGB, alpha=False)
    img = Image.frombytes("RGB", (pix.width, pix.height), pix.samples)
    return img, pix.width / pg.rect.width


def read_scanned_page(
    pg: pymupdf.Page, page_no: int, dpi: int = 300, lang: str = "eng"
) -> tuple[Page, Image.Image, float]:
    """OCR a PyMuPDF page that is a picture: text lines + picture regions, the page image and its scale.

    Boxes are PDF points with a top-left origin; ``scale`` is image pixels per point, so a region ``g`` is
    ``image.crop([round(v * scale) for v in g.bbox])``. Text inside a picture region is kept as lines too
    (figure labels): the caller decides what to do with it.

    ``dpi`` 300 is the measured default. Caption lines of 7.5-10 pt (51 on 33 scanned journal pages): from
    300-dpi scans, 200 dpi reads the "Fig. N" label about as often (47 vs 46; CER 0.018 vs 0.027); from
    150-dpi scans 300 dpi is better (49 vs 47; CER 0.017 vs 0.021), and from 72-dpi page images much better (3
    vs 1 of 8). It costs about 25 % more time: 0.94 vs 1.20 pages/s with two worker processes on two cores.
    """
    if not tesseract_available():
        raise RuntimeError(TESSERACT_MISSING)
    r = pg.rect  # PyMuPDF page rects start at (0, 0): image pixels / scale are page points
    img, scale = render_page(pg, dpi)
    words = ocr_words(img.convert("L"), lang=lang)
    lines = words_to_lines(words, scale)
    mask = text_mask_boxes(words, max_height=0.05 * img.height)
    graphics = _picture_graphics(img, scale, mask, lines, r.width, r.height)
    return Page(page_no, r.width, r.height, tuple(lines), graphics, scanned=True), img, scale


def read_text_layer_scan(pg, page: Page, dpi: int = 200) -> tuple[Page, Image.Image, float]:
    """A digitised page: one full-page raster under an (invisible) OCR text layer.

    The text layer is trusted as it is (no OCR run); the pictures are found on the page image as for a scan.
    Returns the page with region graphics, the page image and its scale, like :func:`read_scanned_page`.
    """
    img, scale = render_page(pg, dpi)
    text_px = [tuple(v * scale for v in ln.bbox) for ln in page.lines]
    graphics = _picture_graphics(img, scale, text_px, list(page.lines), page.width, page.height)
    return replace(page, graphics=graphics, scanned=True), img, scale


def _picture_graphics(
    img: Image.Image, scale: float, text_px: list[Box], lines: list[TextLine], width: float, height: float
) -> tuple[Graphic, ...]:
    """Picture regions of a page image as ``region`` graphics in page points, with their nearby labels."""
    rgb = np.asarray(img)
    regions_px = find_picture_regions(rgb, text_px, dpi=72.0 * scale)
    regions = [(b[0] / scale, b[1] / scale, b[2] / scale, b[3] / scale) for b in regions_px]
    regions += caption_anchored_regions(rgb, scale, regions, lines, width)
    graphics = []
    for b in absorb_labels(regions, lines, reach=0.012 * width):
        bb = (max(0.0, b[0]), max(0.0, b[1]), min(width, b[2]), min(height, b[3]))
        if area(bb) > 0:
            px = (round((bb[2] - bb[0]) * scale), round((bb[3] - bb[1]) * scale))
            graphics.append(Graphic(bb, "region", pixel_size=px, parts=(bb,)))
    graphics.sort(key=lambda g: (g.bbox[1], g.bbox[0]))
    return tuple(graphics)
