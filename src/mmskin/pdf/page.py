"""Page model: what one PDF page holds, as typed boxes (text lines, images, vector drawings).

Everything downstream (captions, figure assembly, assignment) works on these frozen dataclasses, never on
PyMuPDF objects, so the same logic serves born-digital pages and OCR'd scans (``mmskin.pdf.ocr`` builds the
same ``Page`` from a page image).

    >>> import pymupdf
    >>> from mmskin.pdf.page import read_page
    >>> page = read_page(pymupdf.open("book.pdf")[0], page_no=1)
    >>> len(page.lines), len(page.graphics)
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

Box = tuple[float, float, float, float]

# the most pixels (width x height) one picture may be decoded or rendered at (``mmskin build --max-pixels``): a
# 14,000 x 14,000 raster in a 1 MB PDF would otherwise take gigabytes in a worker
MAX_PIXELS = 40_000_000

# vector ops from PyMuPDF's bbox log that draw something visible (text and clips are not graphics)
_VECTOR_OPS = {"fill-path", "stroke-path", "fill-shade", "fill-imgmask"}


def area(b: Box) -> float:
    return max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])


def union(boxes: list[Box] | tuple[Box, ...]) -> Box:
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


def intersect(a: Box, b: Box) -> Box:
    return (max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3]))


def inter_area(a: Box, b: Box) -> float:
    return area(intersect(a, b))


def iou(a: Box, b: Box) -> float:
    i = inter_area(a, b)
    u = area(a) + area(b) - i
    return i / u if u > 0 else 0.0


def h_overlap(a: Box, b: Box) -> float:
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0]))


def v_overlap(a: Box, b: Box) -> float:
    return max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def gap(a: Box, b: Box) -> float:
    """Euclidean distance between two boxes (0 when they touch or overlap)."""
    dx = max(0.0, max(a[0], b[0]) - min(a[2], b[2]))
    dy = max(0.0, max(a[1], b[1]) - min(a[3], b[3]))
    return (dx * dx + dy * dy) ** 0.5


@dataclass(frozen=True)
class Span:
    text: str
    font: str
    size: float
    bold: bool
    bbox: Box


@dataclass(frozen=True)
class TextLine:
    """One printed line; ``block`` numbers the paragraph-like block it came from (reading order)."""

    bbox: Box
    text: str
    spans: tuple[Span, ...]
    block: int

    def __post_init__(self) -> None:
        if self.bbox[2] < self.bbox[0] or self.bbox[3] < self.bbox[1]:
            raise ValueError(f"inverted line box {self.bbox}")

    @property
    def size(self) -> float:
        """Dominant font size (by characters)."""
        if not self.spans:
            return 0.0
        weights: dict[float, int] = {}
        for s in self.spans:
            weights[round(s.size, 1)] = weights.get(round(s.size, 1), 0) + len(s.text.strip())
        return max(weights, key=lambda k: weights[k])

    @property
    def words(self) -> int:
        return len(self.text.split())


@dataclass(frozen=True)
class Graphic:
    """A visible picture element: an embedded raster (or merged tiles), a vector cluster, or a scanned region.

    ``xrefs`` lists the embedded images (0 for inline images); ``native`` is set when the graphic is exactly one
    unclipped, axis-aligned raster that can be stored at its native resolution.
    """

    bbox: Box
    kind: Literal["image", "vector", "region"]
    xrefs: tuple[int, ...] = ()
    pixel_size: tuple[int, int] = (0, 0)
    native: bool = False
    parts: tuple[Box, ...] = field(default=())

    def __post_init__(self) -> None:
        if area(self.bbox) <= 0:
            raise ValueError(f"empty graphic box {self.bbox}")

    @property
    def dpi(self) -> float:
        """Effective resolution of the raster on the page (0 for vectors)."""
        w = self.bbox[2] - self.bbox[0]
        return 72.0 * self.pixel_size[0] / w if w > 0 and self.pixel_size[0] else 0.0


@dataclass(frozen=True)
class Page:
    number: int  # 1-based
    width: float
    height: float
    lines: tuple[TextLine, ...]
    graphics: tuple[Graphic, ...]
    scanned: bool = False

    def __post_init__(self) -> None:
        if self.number < 1:
            raise ValueError("page numbers are 1-based")


# ----------------------------------------------------------------------------------------------------------
# reading a born-digital page


def _is_bold(span: dict) -> bool:
    return bool(span.get("flags", 0) & 16) or _bold_font(span.get("font", ""))


@functools.lru_cache(maxsize=1024)
def _bold_font(font: str) -> bool:
    return any(k in font for k in ("Bold", "bold", "Black", "Heavy", "-Bd", "Semibold"))


# typographic ligatures are decomposed (search, tokenisers and caption cleaning expect letters); symbols such as
# Δ, ×, µ and ° are kept as printed
_LIGATURES = str.maketrans({"ﬀ": "ff", "ﬁ": "fi", "ﬂ": "fl", "ﬃ": "ffi", "ﬄ": "ffl", "ﬅ": "st", "ﬆ": "st"})
# a run of 18 letters and digits (some lower case) is words glued together by a PDF that positions glyphs without space
# characters ("structureoftheRgt2glucosesensor"), or a rare long word: on such a page every span has
# its glyph gaps looked at (long chemical names pay one extra text pass; sequences in capitals do not)
_GLUED_RUN = re.compile(r"(?=[A-Za-z0-9]*[a-z])[A-Za-z0-9]{18,}")
_RESPACE = re.compile(r"\S{4}")


def respace_glyphs(chars: list[tuple[str, float, float]], size: float) -> str:
    """Text of a glyph run with spaces put back where the glyph gaps show word breaks.

    ``chars``: (char, x0, x1) in reading order. Inside a word the gap between glyphs is about zero (kerning
    moves it a little either way); a word break leaves a gap a clear step above that. A gap counts as a break
    when it exceeds the run's typical glyph gap by 0.1 em (at least 0.08 em in absolute terms).
    """
    gaps = [b[1] - a[2] for a, b in zip(chars, chars[1:])]
    if not gaps:
        return "".join(c for c, _, _ in chars)
    typical = sorted(gaps)[len(gaps) // 2]
    limit = max(typical + 0.1 * size, 0.08 * size)
    out = [chars[0][0]]
    for (c, _, _), g in zip(chars[1:], gaps):
        if g > limit and not out[-1].isspace() and not c.isspace():
            out.append(" ")
        out.append(c)
    return "".join(out)


@dataclass
class _Frag:
    """A piece of a printed line as PyMuPDF reports it (often a single word in PDFs that place words one by one)."""

    bbox: Box
    spans: list[Span]
    texts: list[str]  # each span's text as printed (its own spaces kept)
    block: int
    size: float


def _span_text(s: dict, raw_chars) -> str:
    text = s["text"]
    if raw_chars is not None and _RESPACE.search(text):
        chars = [(c["c"], c["bbox"][0], c["bbox"][2]) for c in raw_chars]
        if "".join(c for c, _, _ in chars) == text:
            text = respace_glyphs(chars, float(s.get("size", 0)) or 1.0)
    return text.translate(_LIGATURES)


def _fragments(pg) -> list[_Frag]:
    import pymupdf

    flags = pymupdf.TEXTFLAGS_DICT & ~pymupdf.TEXT_PRESERVE_IMAGES
    # what a viewer shows (mediabox clip on); no image data in the dict: placements come from get_image_info
    tp = pg.get_textpage(flags=flags)  # one text page for the dict and, where needed, the glyph boxes
    d = pg.get_text("dict", textpage=tp)
    raw = None
    if any(
        _GLUED_RUN.search(s["text"])
        for b in d["blocks"]
        if b.get("type") == 0
        for ln in b["lines"]
        for s in ln["spans"]
    ):
        raw = pg.get_text("rawdict", textpage=tp)["blocks"]  # glyph boxes, only for pages that need them
    frags: list[_Frag] = []
    for bno, b in enumerate(d["blocks"]):
        if b.get("type") != 0:
            continue
        for lno, ln in enumerate(b["lines"]):
            # keep only horizontal text: rotated labels inside figures are figure content
            if abs(ln.get("dir", (1, 0))[1]) > 0.05:
                continue
            spans, texts = [], []
            for sno, s in enumerate(ln["spans"]):
                if not s["text"].strip() or float(s.get("size", 0)) < 0.5:
                    continue  # blank, or invisible zero-size text (word separators of some typesetters)
                rc = raw[bno]["lines"][lno]["spans"][sno]["chars"] if raw is not None else None
                text = _span_text(s, rc)
                spans.append(
                    Span(
                        " ".join(text.split()),
                        s.get("font", ""),
                        float(s["size"]),
                        _is_bold(s),
                        tuple(s["bbox"]),
                    )
                )
                texts.append(text)
            if spans:
                x0 = min(sp.bbox[0] for sp in spans)
                x1 = max(sp.bbox[2] for sp in spans)
                size = max(spans, key=lambda sp: len(sp.text)).size
                frags.append(_Frag((x0, ln["bbox"][1], x1, ln["bbox"][3]), spans, texts, bno, size))
    return frags


def _same_row(a: Box, b: Box) -> bool:
    """Two fragments on one baseline: bottoms within a quarter of a line height, boxes overlapping by half."""
    hmax = max(a[3] - a[1], b[3] - b[1])
    return abs(a[3] - b[3]) <= 0.25 * hmax and v_overlap(a, b) >= 0.5 * min(a[3] - a[1], b[3] - b[1])


def _join_spans(spans: list[Span], texts: list[str]) -> str:
    """Span texts joined as printed: a space at a boundary only where the text has one or the glyphs leave a gap
    (small capitals and mixed sizes, "F" + "IG. 1", join without one)."""
    out = texts[0]
    for prev, sp, t in zip(spans, spans[1:], texts[1:]):
        gap = sp.bbox[0] - prev.bbox[2]
        if not out[-1:].isspace() and not t[:1].isspace() and gap > 0.1 * min(prev.size, sp.size):
            out += " "
        out += t
    return " ".join(out.split())


def _merge_row(frags: list[_Frag]) -> list[list[_Frag]]:
    """Fragments of one row, left to right, chained into printed lines: the next fragment starts about a word
    space after the previous one (a column gutter is wider), or, within one PyMuPDF block, a few spaces after
    it ("Figure 3   Third day …": a label followed only by spaces)."""
    lines: list[list[_Frag]] = []
    for f in sorted(frags, key=lambda f: f.bbox[0]):
        if lines:
            last = lines[-1][-1]
            em = max(f.size, last.size, 1.0)
            gap = f.bbox[0] - last.bbox[2]
            similar = abs(f.size - last.size) <= 0.25 * em
            if gap >= -1.0 and similar and (gap <= 0.6 * em or (f.block == last.block and gap <= 3 * em)):
                lines[-1].append(f)
                continue
        lines.append([f])
    return lines


def read_text_lines(pg) -> list[TextLine]:
    """The printed lines of a born-digital page, rebuilt from PyMuPDF's fragments.

    Some typesetters place every word on its own (PyMuPDF then reports one "line" per word, in blocks that cut a
    caption in two); fragments on one baseline and about a space apart are joined into one printed line, and
    the blocks they came from become one block. Ligatures are decomposed; words glued together by glyph
    positioning get their spaces back.
    """
    frags = _fragments(pg)
    # rows: fragments whose boxes share a baseline band
    frags.sort(key=lambda f: (round(f.bbox[3], 1), f.bbox[0]))
    rows: list[list[_Frag]] = []
    for f in frags:
        for row in reversed(rows[-6:]):
            if _same_row(row[0].bbox, f.bbox):
                row.append(f)
                break
        else:
            rows.append([f])
    parent: dict[int, int] = {}

    def find(b: int) -> int:
        while parent.get(b, b) != b:
            b = parent[b]
        return b

    printed: list[list[_Frag]] = [grp for row in rows for grp in _merge_row(row)]
    for grp in printed:
        for f in grp[1:]:
            ra, rb = find(grp[0].block), find(f.block)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    lines: list[TextLine] = []
    for grp in printed:
        spans = [sp for f in grp for sp in f.spans]
        texts = [t for f in grp for t in f.texts]
        text = _join_spans(spans, texts)
        bb = (grp[0].bbox[0], min(f.bbox[1] for f in grp), grp[-1].bbox[2], max(f.bbox[3] for f in grp))
        lines.append(TextLine(bb, text, tuple(spans), find(grp[0].block)))
    # reading order of the source: by block, then top to bottom, left to right
    lines.sort(key=lambda ln: (ln.block, round(ln.bbox[1], 1), ln.bbox[0]))
    return _drop_overprints(lines)


def _drop_overprints(lines: list[TextLine]) -> list[TextLine]:
    """Text printed twice at (nearly) the same place — fake bold, shadows, duplicated layers — is read once."""
    seen: dict[str, list[Box]] = {}
    out = []
    for ln in lines:
        boxes = seen.setdefault(ln.text, [])
        if any(iou(ln.bbox, b) > 0.6 for b in boxes):
            continue
        boxes.append(ln.bbox)
        out.append(ln)
    return out


def connected_groups(n: int, pairs: Iterable[tuple[int, int]]) -> list[list[int]]:
    """Connected components of items 0..n-1 joined by ``pairs`` (union-find); groups are ordered by their
    smallest member and list their members in ascending order."""
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in pairs:
        ri, rj = find(i), find(j)
        if ri != rj:
            parent[ri] = rj
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(find(i), []).append(i)
    return list(groups.values())


def _merge_tiles(items: list[tuple[Box, int, tuple[int, int]]], tol: float = 1.5) -> list[list[int]]:
    """Group image placements that tile one picture: edge to edge (gap <= tol) and aligned on the shared edge.

    Grid tiles whose corners touch share rows or columns with a neighbour, so they join transitively.
    """

    def touching():
        for i, (a, _, _) in enumerate(items):
            for j in range(i + 1, len(items)):
                b = items[j][0]
                same_cols = abs(a[0] - b[0]) <= tol and abs(a[2] - b[2]) <= tol
                same_rows = abs(a[1] - b[1]) <= tol and abs(a[3] - b[3]) <= tol
                if (same_cols and (abs(a[3] - b[1]) <= tol or abs(b[3] - a[1]) <= tol)) or (
                    same_rows and (abs(a[2] - b[0]) <= tol or abs(b[2] - a[0]) <= tol)
                ):
                    yield i, j

    return connected_groups(len(items), touching())


def _image_infos(pg, max_pixels: int = MAX_PIXELS) -> list[dict]:
    """Image placements with their xrefs.

    ``get_image_info(xrefs=True)`` decodes and hashes every image to find its xref, which costs more than the rest
    of the page; instead the placements are matched to the page's image list by pixel size, and only pages where
    that is ambiguous pay for hashing. A page holding an image over ``max_pixels`` is never hashed (that would
    decode it whole): its ambiguous placements get xref 0 and are rendered from the page.
    """
    infos = pg.get_image_info()
    if not infos:
        return []
    items = pg.get_images(full=True)
    by_size: dict[tuple[int, int], list] = {}
    for it in items:
        by_size.setdefault((int(it[2]), int(it[3])), []).append(it)
    placed: dict[int, list[tuple[float, ...]]] = {}  # xref -> placement boxes, for same-size images only
    out = []
    for info in infos:
        xref = _placed_xref(pg, info, items, by_size, placed)
        if xref is None:  # not told apart by size and place: hash, unless that would decode a huge image
            if all(int(it[2]) * int(it[3]) <= max_pixels for it in items):
                return pg.get_image_info(xrefs=True)
            xref = 0
        out.append({**info, "xref": xref})
    return out


def _placed_xref(pg, info: dict, items: list, by_size: dict, placed: dict) -> int | None:
    """The xref of one placement from its pixel size (and where same-size images are drawn); 0 for an inline
    image; None when that does not tell."""
    cands = by_size.get((int(info.get("width", 0)), int(info.get("height", 0))), [])
    xrefs = {int(it[0]) for it in cands}
    if len(xrefs) == 1:
        return next(iter(xrefs))
    if not cands:
        return None if items else 0  # no image list at all: an inline image, rendered from the page
    # several images of this size: tell them apart by where each is drawn (cheaper than hashing pixels)
    hit = None
    for it in cands:
        x = int(it[0])
        if x not in placed:
            try:
                r = pg.get_image_bbox(it)
                placed[x] = [(r.x0, r.y0, r.x1, r.y1)] if r.is_valid and not r.is_empty else []
            except Exception:
                placed[x] = []
        if any(max(abs(a - b) for a, b in zip(bb, info["bbox"])) < 0.5 for bb in placed[x]):
            if hit is not None:
                return None  # two images drawn at the same place
            hit = x
    return hit


def read_images(pg, page_box: Box, max_pixels: int = MAX_PIXELS) -> list[Graphic]:
    """The page's rasters (tiles merged). One over ``max_pixels`` is never ``native``: it is rendered from the
    page at the render resolution instead of being decoded whole."""
    raw: list[tuple[Box, int, tuple[int, int]]] = []
    axis_aligned: list[bool] = []
    seen: set[tuple] = set()
    for info in _image_infos(pg, max_pixels):
        bb = tuple(info["bbox"])
        vis = intersect(bb, page_box)
        if area(vis) <= 0:
            continue
        key = (round(bb[0], 1), round(bb[1], 1), round(bb[2], 1), round(bb[3], 1), info.get("xref", 0))
        if key in seen:  # the same image drawn twice at the same place (e.g. image + its mask)
            continue
        seen.add(key)
        t = info.get("transform", (1, 0, 0, 1, 0, 0))
        aligned = (
            abs(t[1]) < 1e-3 and abs(t[2]) < 1e-3 and t[0] > 0 and t[3] > 0 and area(vis) >= 0.98 * area(bb)
        )
        raw.append((vis, int(info.get("xref", 0)), (int(info.get("width", 0)), int(info.get("height", 0)))))
        axis_aligned.append(aligned)
    out: list[Graphic] = []
    for group in _merge_tiles(raw):
        boxes = [raw[i][0] for i in group]
        bb = union(boxes)
        if len(group) == 1:
            i = group[0]
            out.append(
                Graphic(
                    bb,
                    "image",
                    (raw[i][1],),
                    raw[i][2],
                    native=axis_aligned[i] and raw[i][1] > 0 and raw[i][2][0] * raw[i][2][1] <= max_pixels,
                    parts=(bb,),
                )
            )
        else:
            # tiles: pixel width of the union estimated from the densest tile
            dens = max(raw[i][2][0] / max(1e-6, raw[i][0][2] - raw[i][0][0]) for i in group)
            px = (int(round(dens * (bb[2] - bb[0]))), int(round(dens * (bb[3] - bb[1]))))
            out.append(
                Graphic(bb, "image", tuple(raw[i][1] for i in group), px, native=False, parts=tuple(boxes))
            )
    return out


def _cluster_boxes(boxes: list[Box], tol: float) -> list[list[int]]:
    """Connected components of boxes closer than ``tol`` (sweep over x keeps it near-linear on real pages)."""

    def near():
        active: list[int] = []
        for i in sorted(range(len(boxes)), key=lambda i: boxes[i][0]):
            b = boxes[i]
            active = [j for j in active if boxes[j][2] + tol >= b[0]]
            for j in active:
                a = boxes[j]
                if a[1] - tol <= b[3] and b[1] - tol <= a[3]:
                    yield i, j
            active.append(i)

    return connected_groups(len(boxes), near())


def read_vectors(pg, page_box: Box, images: list[Graphic], tol: float = 4.0) -> list[Graphic]:
    """Vector drawings grouped into clusters; page backgrounds and marks drawn on top of images are dropped."""
    pa = area(page_box)
    boxes: list[Box] = []
    for op, r in pg.get_bboxlog():
        if op not in _VECTOR_OPS:
            continue
        b = intersect(tuple(r), page_box)
        if b[2] - b[0] < 0 or b[3] - b[1] < 0 or (b[2] - b[0]) + (b[3] - b[1]) < 0.5:
            continue
        if area(b) > 0.5 * pa:  # page or column backgrounds
            continue
        if any(inter_area(b, g.bbox) >= 0.9 * max(area(b), 1e-6) for g in images):
            continue  # arrows, letters, circles drawn over a photo belong to the photo
        # zero-height rules still count: give them a hairline thickness
        b = (b[0], b[1], max(b[2], b[0] + 0.5), max(b[3], b[1] + 0.5))
        boxes.append(b)
    out = []
    for grp in _cluster_boxes(boxes, tol):
        bb = union([boxes[i] for i in grp])
        out.append(Graphic(bb, "vector", parts=tuple(sorted(boxes[i] for i in grp))))
    return out


def read_page(
    pg,
    page_no: int,
    with_vectors: bool | Callable[[list[TextLine]], bool] = True,
    max_pixels: int = MAX_PIXELS,
) -> Page:
    """Build the page model of a PyMuPDF page (born-digital; see ``mmskin.pdf.ocr`` for scans).

    ``with_vectors`` may be a test on the page's text lines: vector drawings (the costliest part to read) are
    only read when it passes, e.g. when the page has a caption at all. ``max_pixels``: see :func:`read_images`."""
    r = pg.rect
    page_box: Box = (r.x0, r.y0, r.x1, r.y1)
    lines = read_text_lines(pg)
    images = read_images(pg, page_box, max_pixels)
    wanted = with_vectors(lines) if callable(with_vectors) else with_vectors
    vectors = read_vectors(pg, page_box, images) if wanted else []
    return Page(page_no, r.width, r.height, tuple(lines), tuple(images + vectors), scanned=False)
