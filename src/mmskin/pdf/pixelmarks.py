"""Panel markers that exist only as pixels (burned into a photo) or as drawn paths: read with Tesseract.

Two reads, each one Tesseract call per figure:

- :func:`region_marks`: the figure's area with its pictures painted out, so only the labels printed around
  them remain ("(a)" under a column, "1)" left of a row, letters drawn as outlines);
- :func:`corner_marks`: the corners of each panel (where "a", "B", "(c)" are usually burned in), tiled into one
  strip image with white gaps; each corner is binarised so white-on-dark and dark-on-light letters both read.

Without pytesseract or the tesseract binary both return no markers and the caller letters in reading order.

    >>> marks = region_marks(image, scale, origin=(x0, y0), holes=[piece.bbox for piece in pieces])
"""

from __future__ import annotations

import os

import numpy as np

from .page import Box
from .subfigures import Mark, parse_mark

_WHITELIST = "abcdefghABCDEFGH123456789()"


def _ocr_tokens(img, psm: int) -> list[tuple[str, float, Box]]:
    """(text, confidence, pixel box) of every word Tesseract reads, or [] when OCR is not available."""
    from .ocr import tesseract_available

    if not tesseract_available():
        return []
    import pytesseract

    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    config = f"--psm {psm} -c tessedit_char_whitelist={_WHITELIST}"
    try:
        d = pytesseract.image_to_data(img, config=config, output_type=pytesseract.Output.DICT)
    except Exception:  # an OCR failure costs the markers, never the figure
        return []
    out = []
    for i, level in enumerate(d["level"]):
        text = str(d["text"][i]).strip()
        if int(level) != 5 or not text:
            continue
        x, y, w, h = (int(d[k][i]) for k in ("left", "top", "width", "height"))
        out.append((text, float(d["conf"][i]), (x, y, x + w, y + h)))
    return out


def region_marks(
    img, scale: float, origin: tuple[float, float], holes: list[Box], min_conf: float = 60
) -> list[Mark]:
    """Markers printed around the pictures of a figure region (``img`` at ``scale`` pixels per point, its
    top-left at page point ``origin``); ``holes`` (page boxes) are painted white first."""
    from PIL import ImageDraw

    im = img.convert("L").copy()
    draw = ImageDraw.Draw(im)
    ox, oy = origin
    pad = max(2.0, 0.75 * scale)  # picture edges left after painting would read as "l" or "|"
    for b in holes:
        x0, y0 = (b[0] - ox) * scale - pad, (b[1] - oy) * scale - pad
        draw.rectangle([x0, y0, (b[2] - ox) * scale + pad, (b[3] - oy) * scale + pad], fill=255)
    out = []
    for text, conf, (x0, y0, x1, y1) in _ocr_tokens(im, 12):
        mk = parse_mark(text)
        if mk is None or conf < min_conf:
            continue
        box = (ox + x0 / scale, oy + y0 / scale, ox + x1 / scale, oy + y1 / scale)
        out.append(Mark(mk.name, box, mk.number))
    return out


def _binarise(a: np.ndarray) -> np.ndarray:
    """Dark glyphs on white from a grey corner: the minority tone (the letter) becomes black."""
    t = (int(a.min()) + int(a.max())) / 2
    dark = a < t
    return np.where(dark if dark.mean() < 0.5 else ~dark, 0, 255).astype(np.uint8)


def corner_marks(crops: list[tuple[object, Box]], frac: float = 0.3, min_conf: float = 55) -> list[Mark]:
    """Letters in the corners of panel images: ``crops`` = [(PIL image of the panel, its page box)]."""
    from PIL import Image

    tiles: list[tuple[np.ndarray, Box, tuple[float, float, float, float]]] = []
    for img, page_box in crops:
        g = np.asarray(img.convert("L"))
        h, w = g.shape
        ch, cw = max(8, int(h * frac)), max(8, int(w * frac))
        for y0, x0 in ((0, 0), (0, w - cw), (h - ch, 0), (h - ch, w - cw)):
            corner = g[y0 : y0 + ch, x0 : x0 + cw]
            if corner.max() - corner.min() < 60:
                continue  # flat: nothing printed here
            sx, sy = (page_box[2] - page_box[0]) / w, (page_box[3] - page_box[1]) / h
            tiles.append((_binarise(corner), page_box, (x0, y0, sx, sy)))
    if not tiles:
        return []
    # one strip: tiles scaled to a common height, 24 px of white between them
    H = 64
    parts, offsets = [], []
    x = 24
    for arr, _, _ in tiles:
        r = H / arr.shape[0]
        im = Image.fromarray(arr).resize((max(1, int(arr.shape[1] * r)), H))
        parts.append(im)
        offsets.append((x, r))
        x += im.width + 24
    strip = Image.new("L", (x, H + 48), 255)
    for im, (ox, _) in zip(parts, offsets):
        strip.paste(im, (ox, 24))
    out = []
    for text, conf, (x0, y0, x1, y1) in _ocr_tokens(strip, 11):
        mk = parse_mark(text)
        if mk is None or mk.number or conf < min_conf:
            continue
        cx = (x0 + x1) / 2
        k = (
            max(i for i, (ox, _) in enumerate(offsets) if ox <= cx + 1)
            if any(ox <= cx + 1 for ox, _ in offsets)
            else 0
        )
        _, page_box, (cx0, cy0, sx, sy) = tiles[k]
        ox, r = offsets[k]
        px0, px1 = (x0 - ox) / r + cx0, (x1 - ox) / r + cx0
        py0, py1 = (y0 - 24) / r + cy0, (y1 - 24) / r + cy0
        box = (page_box[0] + px0 * sx, page_box[1] + py0 * sy, page_box[0] + px1 * sx, page_box[1] + py1 * sy)
        out.append(Mark(mk.name, box))
    return out
