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

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

Box = tuple[float, float, float, float]

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
    font = span.get("font", "")
    return bool(span.get("flags", 0) & 16) or any(
        k in font for k in ("Bold", "bold", "Black", "Heavy", "-Bd", "Semibold")
    )


def read_text_lines(pg) -> list[TextLine]:
    import pymupdf

    lines: list[TextLine] = []
    # what a viewer shows (mediabox clip on); no image data in the dict: placements come from get_image_info
    d = pg.get_text("dict", flags=pymupdf.TEXTFLAGS_DICT & ~pymupdf.TEXT_PRESERVE_IMAGES)
    for bno, b in enumerate(d["blocks"]):
        if b.get("type") != 0:
            continue
        for ln in b["lines"]:
            # keep only horizontal text: rotated labels inside figures are figure content
            if abs(ln.get("dir", (1, 0))[1]) > 0.05:
                continue
            spans = tuple(
                Span(s["text"], s.get("font", ""), float(s.get("size", 0)), _is_bold(s), tuple(s["bbox"]))
                for s in ln["spans"]
                if s["text"].strip()
            )
            if not spans:
                continue
            text = " ".join(" ".join(s.text.split()) for s in spans)
            x0 = min(s.bbox[0] for s in spans)
            x1 = max(s.bbox[2] for s in spans)
            y0, y1 = ln["bbox"][1], ln["bbox"][3]
            lines.append(TextLine((x0, y0, x1, y1), text, spans, bno))
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


def _image_infos(pg) -> list[dict]:
    """Image placements with their xrefs.

    ``get_image_info(xrefs=True)`` decodes and hashes every image to find its xref, which costs more than the rest
    of the page; instead the placements are matched to the page's image list by pixel size, and only pages where
    that is ambiguous pay for hashing.
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
        cands = by_size.get((int(info.get("width", 0)), int(info.get("height", 0))), [])
        xrefs = {int(it[0]) for it in cands}
        if len(xrefs) == 1:
            out.append({**info, "xref": next(iter(xrefs))})
            continue
        if not cands:
            if not items:  # an inline image: no xref, rendered from the page
                out.append({**info, "xref": 0})
                continue
            return pg.get_image_info(xrefs=True)
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
                    return pg.get_image_info(xrefs=True)  # two images drawn at the same place: hash them
                hit = x
        if hit is None:
            return pg.get_image_info(xrefs=True)
        out.append({**info, "xref": hit})
    return out


def read_images(pg, page_box: Box) -> list[Graphic]:
    raw: list[tuple[Box, int, tuple[int, int]]] = []
    axis_aligned: list[bool] = []
    seen: set[tuple] = set()
    for info in _image_infos(pg):
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
                    native=axis_aligned[i] and raw[i][1] > 0,
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


def read_page(pg, page_no: int, with_vectors: bool = True) -> Page:
    """Build the page model of a PyMuPDF page (born-digital; see ``mmskin.pdf.ocr`` for scans)."""
    r = pg.rect
    page_box: Box = (r.x0, r.y0, r.x1, r.y1)
    lines = read_text_lines(pg)
    images = read_images(pg, page_box)
    vectors = read_vectors(pg, page_box, images) if with_vectors else []
    return Page(page_no, r.width, r.height, tuple(lines), tuple(images + vectors), scanned=False)
