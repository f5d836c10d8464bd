"""Picture regions on a page image: where the photos, charts and drawings of a scanned page are.

:func:`find_picture_regions` finds them by texture once the OCR'd words are masked out (a photo is one dense blob,
a chart or drawing holds strokes taller than letters); :func:`caption_anchored_regions` finds, from its caption, a
chart or diagram whose ink is mostly words and thin lines; :func:`absorb_labels` joins axis and panel labels to
the region they belong to. Boxes are image pixels for the texture search and PDF points elsewhere, as each
function says. Used by :mod:`mmskin.pdf.ocr`.
"""

from __future__ import annotations

import re

import numpy as np

from mmskin.pdf.page import Box, TextLine, area, gap, inter_area, union

# picture regions: both sides at least this fraction of the page width
MIN_REGION_SIDE = 0.06
# analysis resolution of the picture-region search (the OCR itself runs at the render dpi)
_ANALYSIS_DPI = 100.0
# ink pieces taller than this (points) are drawing strokes, not letters of body or caption text
_TALL_PT = 12.0
# caption / table labels are never absorbed into a picture as axis or panel labels
_CAPTION_START = re.compile(r"^\s*(fig\.?|figure|plate|table|tab\.)\s*[\dIVXivx]", re.IGNORECASE)
_NUMERIC = re.compile(r"^[\d.,:%()+\-\u2212/]+$")


def background_colour(rgb: np.ndarray) -> np.ndarray:
    """The page colour: mean of the most frequent colour bin (8 levels per channel)."""
    q = (rgb[::2, ::2] >> 5).reshape(-1, 3).astype(np.int32)
    code = q[:, 0] * 64 + q[:, 1] * 8 + q[:, 2]
    top = int(np.bincount(code, minlength=512).argmax())
    sel = rgb[::2, ::2].reshape(-1, 3)[code == top]
    return sel.mean(axis=0) if len(sel) else np.array([255.0, 255.0, 255.0])


def _foreground(rgb: np.ndarray, threshold: float = 40.0) -> np.ndarray:
    bg = background_colour(rgb)
    diff = np.abs(rgb.astype(np.int16) - bg.astype(np.int16)).max(axis=2)
    return diff > threshold


def _merge_boxes(boxes: list[Box], pad: float = 0.0) -> list[Box]:
    """Union boxes that overlap (after padding each by ``pad``) until none do."""
    out = list(boxes)
    changed = True
    while changed:
        changed = False
        for i in range(len(out)):
            for j in range(i + 1, len(out)):
                a, b = out[i], out[j]
                ap = (a[0] - pad, a[1] - pad, a[2] + pad, a[3] + pad)
                if inter_area(ap, b) > 0:
                    out[i] = union([a, b])
                    del out[j]
                    changed = True
                    break
            if changed:
                break
    return out


def _merge_fragments(boxes: list[Box], pieces: list[Box], reach: float, thin: float) -> list[Box]:
    """Join the fragments of one photo that its white parts cut apart (a ruler, a white corner).

    A fragment (a region or a smaller piece of ink) within ``reach`` of a region joins it when it is thin
    (narrow side < ``thin``) or small (< 10 % of the region's area); panels of similar size stay apart.
    """
    out = sorted(boxes, key=area, reverse=True)
    changed = True
    while changed:
        changed = False
        for i, big in enumerate(out):
            for j in range(len(out) - 1, i, -1):
                b = out[j]
                small = min(b[2] - b[0], b[3] - b[1]) < thin or area(b) < 0.1 * area(big)
                if small and gap(big, b) <= reach:
                    out[i] = big = union([big, b])
                    del out[j]
                    changed = True
    for p in pieces:
        for i, big in enumerate(out):
            if gap(big, p) <= reach and (min(p[2] - p[0], p[3] - p[1]) < thin or area(p) < 0.1 * area(big)):
                out[i] = union([big, p])
                break
    return _merge_boxes(out)


def _is_picture(rgb: np.ndarray, fg: np.ndarray, text: np.ndarray, big: float) -> bool:
    """Texture test on one candidate's crop: ``rgb`` pixels, ``fg`` ink with text masked out, ``text`` mask.

    A picture is either one dense blob (a photo, a filled drawing) or holds ink structures taller than ``big``
    pixels that are not straight rules (curves, bars, shapes of a chart or diagram). Text that OCR could not
    read breaks up into letter-sized pieces; tables are rules plus text; shaded boxes are one flat colour
    under text.
    """
    import cv2

    h, w = fg.shape
    free = max(1, int((~text).sum()))
    fill = float(fg.sum()) / free
    cover = float(text.mean())
    if fill < 0.01 or cover >= 0.3:
        return False
    q = (rgb[fg] >> 4).astype(np.int32)
    code = q[:, 0] * 256 + q[:, 1] * 16 + q[:, 2]
    flat = np.bincount(code).max() / len(code) if len(code) else 0.0
    if flat >= 0.95 or (cover >= 0.1 and flat >= 0.5):  # a plain tint band, or text on a tint (shaded table)
        return False
    m = fg.astype(np.uint8)
    n, _, st, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    if n > 1:
        i = 1 + int(st[1:, 4].argmax())
        dense = st[i, 4] / max(1, st[i, 2] * st[i, 3])
        spans = st[i, 2] >= 0.5 * w and st[i, 3] >= 0.5 * h  # a blob, not a rule along one side
        if st[i, 4] >= 0.6 * st[1:, 4].sum() and dense >= 0.3 and spans:
            return True
    # thin straight rules (tables, frames) do not count; thick bars of a bar chart do
    hk = cv2.getStructuringElement(cv2.MORPH_RECT, (max(3, int(0.3 * w)), 1))
    vk = cv2.getStructuringElement(cv2.MORPH_RECT, (1, max(3, int(0.3 * h))))
    t = max(2, round(big / 4))
    thick = cv2.morphologyEx(m, cv2.MORPH_OPEN, np.ones((t, t), np.uint8))
    rules = (cv2.morphologyEx(m, cv2.MORPH_OPEN, hk) | cv2.morphologyEx(m, cv2.MORPH_OPEN, vk)) & (1 - thick)
    rest = m & (1 - rules)
    n, _, st, _ = cv2.connectedComponentsWithStats(rest, connectivity=8)
    if n <= 1:
        return False
    ink, cw, ch = st[1:, 4], st[1:, 2], st[1:, 3]
    # strokes taller than letters, or solid bars longer than a word is tall
    shape = (ch >= big) | ((cw >= 2 * big) & (ch >= big / 3) & (ink >= 0.6 * cw * ch))
    return float(ink[shape].sum()) >= 0.1 * float(ink.sum())


def find_picture_regions(
    rgb: np.ndarray, text_boxes: list[Box], dpi: float = 300.0, threshold: float = 40.0
) -> list[Box]:
    """Boxes (image pixels) of photos and drawings on a page image (``dpi`` pixels per inch), text masked out.

    ``text_boxes`` are OCR word boxes in the same pixels. Candidates are connected non-background regions
    after a morphological close; both sides must reach ``MIN_REGION_SIDE`` of the page width and the ink must
    look like a picture (see ``_is_picture``); overlapping results are merged.
    """
    import cv2

    h0, w0 = rgb.shape[:2]
    if h0 == 0 or w0 == 0:
        return []
    pw = float(w0)  # sizes are relative to the page width
    # analyse at about _ANALYSIS_DPI: closing and component stats are cheap there, and boxes lose < 1 px
    f = max(1.0, dpi / _ANALYSIS_DPI)
    size = (max(1, round(w0 / f)), max(1, round(h0 / f)))
    small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA) if f > 1 else rgb
    sh, sw = small.shape[:2]
    fx, fy = w0 / sw, h0 / sh
    fg = _foreground(small, threshold)
    text = np.zeros_like(fg)
    pad = max(1, round(0.002 * pw / fx))
    for b in text_boxes:
        x0, y0 = max(0, int(b[0] / fx) - pad), max(0, int(b[1] / fy) - pad)
        x1, y1 = max(0, int(np.ceil(b[2] / fx)) + pad), max(0, int(np.ceil(b[3] / fy)) + pad)
        text[y0:y1, x0:x1] = True
    fg &= ~text
    k = max(3, round(0.012 * pw / fx))
    closed = cv2.morphologyEx(
        fg.astype(np.uint8), cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (k, k))
    )
    n, _, stats, _ = cv2.connectedComponentsWithStats(closed, connectivity=8)
    min_side = MIN_REGION_SIDE * pw / fx
    boxes: list[Box] = []
    pieces: list[Box] = []
    for i in range(1, n):
        x, y, w, h, _ = (int(v) for v in stats[i])
        b = (float(x), float(y), float(x + w), float(y + h))
        if min(w, h) < 0.01 * pw / fx:
            continue
        crop = (slice(y, y + h), slice(x, x + w))
        if not _is_picture(small[crop], fg[crop], text[crop], big=_TALL_PT * dpi / 72.0 / fx):
            continue
        (boxes if w >= min_side and h >= min_side else pieces).append(b)
    merged = _merge_fragments(_merge_boxes(boxes), pieces, reach=0.02 * pw / fx, thin=0.1 * pw / fx)
    return [(b[0] * fx, b[1] * fy, min(w0, b[2] * fx), min(h0, b[3] * fy)) for b in merged]


def absorb_labels(regions: list[Box], lines: list[TextLine], reach: float, max_words: int = 4) -> list[Box]:
    """Grow each region over the short text lines around it (axis ticks, legends, panel letters).

    A line is absorbed when it lies within ``reach`` points of the region and its whole block holds only
    label-like lines: short (``max_words`` or fewer, or numbers only) and not starting like a caption ("Fig.
    2", "Table 1"). The first line of a caption that OCR broke off its paragraph stays out that way.
    """
    label_block: dict[int, bool] = {}
    for ln in lines:
        short = ln.words <= max_words or all(_NUMERIC.match(t) for t in ln.text.split())
        ok = short and not _CAPTION_START.match(ln.text)
        label_block[ln.block] = label_block.get(ln.block, True) and ok
    labels = [ln.bbox for ln in lines if label_block[ln.block]]
    out: list[Box] = []
    for reg in regions:
        r = reg
        for _ in range(6):
            grown = r
            for lb in labels:
                if inter_area(lb, r) >= 0.9 * area(lb) or gap(lb, r) > reach:
                    continue
                beside = lb[3] > r[1] and lb[1] < r[3]  # ticks left or right of a plot
                within = lb[0] >= r[0] - reach and lb[2] <= r[2] + reach  # ticks, legend, axis title below
                if beside or within:
                    grown = union([grown, lb])
            if grown == r:
                break
            r = grown
        out.append(r)
    return _merge_boxes(out)


def _prose_blocks(lines: list[TextLine], span: float) -> set[int]:
    """Blocks of running text: those with a line of five or more words across 70 % of ``span``."""
    return {
        ln.block
        for ln in lines
        if ln.bbox[2] - ln.bbox[0] >= 0.7 * span
        and sum(len(re.findall(r"[^\W\d_]", w)) >= 2 for w in ln.text.split()) >= 5
    }


def _attached(r: Box, cap: Box, near: float) -> bool:
    """A picture region just above or below the caption box, sharing at least 30 % of its width."""
    overlap = min(r[2], cap[2]) - max(r[0], cap[0])
    return overlap > 0.3 * (cap[2] - cap[0]) and (-2 <= cap[1] - r[3] <= near or -2 <= r[1] - cap[3] <= near)


def caption_anchored_regions(
    rgb: np.ndarray, scale: float, regions: list[Box], lines: list[TextLine], width: float
) -> list[Box]:
    """Figures the texture search missed (a chart or a diagram whose ink is mostly words and thin lines), found
    from their captions, in page points.

    For a caption with no picture region just above or below it: the ink between it and what bounds it above
    (a paragraph of running text, another caption or picture, the running head), across the caption's width
    widened by 4 % of the page, is its figure when that ink is at least ``MIN_REGION_SIDE`` of the page wide and
    tall and holds no running text.
    """
    from .captions import find_captions

    h_pt = rgb.shape[0] / scale
    out: list[Box] = []
    for cap in find_captions(lines):
        x0, y0, x1, y1 = cap.bbox
        if any(_attached(r, cap.bbox, 0.04 * h_pt) for r in regions + out):
            continue
        sx0, sx1 = max(0.0, x0 - 0.04 * width), min(width, x1 + 0.04 * width)
        prose = _prose_blocks(lines, sx1 - sx0)
        top = 0.0
        for ln in lines:
            lw = ln.bbox[2] - ln.bbox[0]
            if ln in cap.lines or ln.bbox[3] > y0 or min(ln.bbox[2], sx1) - max(ln.bbox[0], sx0) <= 0.3 * lw:
                continue
            if ln.block in prose or ln.bbox[3] < 0.07 * h_pt or find_captions([ln]):
                top = max(top, ln.bbox[3])
        for r in regions + out:
            if r[3] <= y0 and min(r[2], sx1) - max(r[0], sx0) > 0:
                top = max(top, r[3])
        # the text of a neighbouring column bounds the span sideways
        for ln in lines:
            if ln.block in prose and ln.bbox[3] > top and ln.bbox[1] < y0:
                if ln.bbox[2] <= x0 + 2:
                    sx0 = max(sx0, ln.bbox[2] + 1)
                elif ln.bbox[0] >= x1 - 2:
                    sx1 = min(sx1, ln.bbox[0] - 1)
        box = _ink_box(rgb, scale, (sx0, top + 1, sx1, y0 - 1))
        if box is None or min(box[2] - box[0], box[3] - box[1]) < MIN_REGION_SIDE * width:
            continue
        if any(ln.block in prose and inter_area(ln.bbox, box) >= 0.5 * area(ln.bbox) for ln in lines):
            continue
        out.append(box)
    return out


def _ink_box(rgb: np.ndarray, scale: float, box: Box) -> Box | None:
    """The tight box (page points) of the ink inside ``box``: rows and columns with a speck or two do not count,
    nor a thin rule set apart at its top or bottom (the line under a running head, above a footnote)."""
    x0, y0 = max(0, int(box[0] * scale)), max(0, int(box[1] * scale))
    x1, y1 = min(rgb.shape[1], int(box[2] * scale)), min(rgb.shape[0], int(box[3] * scale))
    if x1 - x0 < 4 or y1 - y0 < 4:
        return None
    fg = _foreground(rgb[y0:y1, x0:x1])
    rows, cols = np.flatnonzero(fg.sum(1) >= 2), np.flatnonzero(fg.sum(0) >= 2)
    if len(rows) == 0 or len(cols) == 0:
        return None
    runs = np.split(rows, np.flatnonzero(np.diff(rows) > max(2, round(2 * scale))) + 1)  # ink apart by > 2 pt
    thin = max(1, round(1.5 * scale))
    while len(runs) > 1 and len(runs[0]) <= thin:
        runs = runs[1:]
    while len(runs) > 1 and len(runs[-1]) <= thin:
        runs = runs[:-1]
    r0, r1 = int(runs[0][0]), int(runs[-1][-1])
    cols = np.flatnonzero(fg[r0 : r1 + 1].sum(0) >= 2)
    if len(cols) == 0:  # what is left is specks
        return None
    return ((x0 + cols[0]) / scale, (y0 + r0) / scale, (x0 + cols[-1] + 1) / scale, (y0 + r1 + 1) / scale)
