"""Panel markers that exist only as pixels (burned into a photo) or as drawn paths: read with Tesseract.

Two reads, each one Tesseract call per figure:

- :func:`region_marks`: the figure's area with its pictures painted out, so only the labels printed around
  them remain ("(a)" under a column, "1)" left of a row, letters drawn as outlines);
- :func:`glyph_marks`: letters printed on the pictures ("a" in a white box in a corner, a white "B" on a photo):
  isolated letter-sized glyphs of either polarity are found with OpenCV and read together from one sheet.

Without pytesseract or the tesseract binary both return no markers and the caller letters in reading order.

    >>> marks = region_marks(image, scale, origin=(x0, y0), holes=[piece.bbox for piece in pieces])
"""

from __future__ import annotations

import os

import numpy as np

from .page import Box
from .subfigures import Mark, parse_mark


def _ocr_tokens(img, psm: int, allowed: str) -> list[tuple[str, float, Box]]:
    """(text, confidence, pixel box) of every word Tesseract reads, or [] when OCR is not available."""
    from .ocr import tesseract_available

    if not tesseract_available():
        return []
    import pytesseract

    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    config = f"--psm {psm} -c tessedit_char_whitelist={allowed}"
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
    img, scale: float, origin: tuple[float, float], holes: list[Box], allowed: str, min_conf: float = 60
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
    for text, conf, (x0, y0, x1, y1) in _ocr_tokens(im, 12, allowed):
        mk = parse_mark(text)
        if mk is None or conf < min_conf:
            continue
        box = (ox + x0 / scale, oy + y0 / scale, ox + x1 / scale, oy + y1 / scale)
        out.append(Mark(mk.name, box, mk.number))
    return out


def _glyph_tokens(gray: np.ndarray, dark: bool) -> list[tuple[float, Box]]:
    """(ring ink fraction, pixel box) of isolated glyph groups of one polarity ("a", "(B)", "C."): letter-sized
    connected components joined with the brackets or period beside them, with a clear margin all round (so
    texture, drawings and words are not taken). The cleaner the margin, the likelier a printed label."""
    import cv2

    H, W = gray.shape
    thr, _ = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    ink = (gray < min(thr, 170)) if dark else (gray > max(thr, 110))
    n, lab, st, _ = cv2.connectedComponentsWithStats(ink.astype(np.uint8), connectivity=8)
    hmin, hmax = max(7, int(0.012 * min(H, W))), max(16, int(0.08 * min(H, W)))
    boxes: list[list[int]] = []
    for i in range(1, n):
        x, y, w, h, a = (int(v) for v in st[i])
        if not (hmin <= h <= hmax and 2 <= w <= 1.6 * h and 0.12 <= a / (w * h) <= 0.85):
            continue
        box = [x, y, x + w, y + h]
        r = max(2, int(0.5 * h))
        near = lab[max(0, y - r) : min(H, y + h + r), max(0, x - r) : min(W, x + w + r)]
        for j in set(np.unique(near).tolist()) - {0, i}:
            jx, jy, jw, jh, _ = (int(v) for v in st[j])
            if jh <= 1.5 * h and jw <= 1.6 * h and jy + jh > y - 0.3 * h and jy < y + 1.3 * h:
                box = [min(box[0], jx), min(box[1], jy), max(box[2], jx + jw), max(box[3], jy + jh)]
        boxes.append(box)
    # tokens built from different members of one group ("(a" from the bracket, "a)" from the letter) are one
    merged: list[list[int]] = []
    for b in sorted(boxes):
        for m in merged:
            if b[0] <= m[2] and m[0] <= b[2] and b[1] <= m[3] and m[1] <= b[3]:
                m[:] = [min(m[0], b[0]), min(m[1], b[1]), max(m[2], b[2]), max(m[3], b[3])]
                break
        else:
            merged.append(list(b))
    out: list[tuple[float, Box]] = []
    for b in merged:
        m = max(2, int(0.2 * (b[3] - b[1])))
        X0, Y0, X1, Y1 = max(0, b[0] - m), max(0, b[1] - m), min(W, b[2] + m), min(H, b[3] + m)
        ring = ink[Y0:Y1, X0:X1].copy()
        ring[b[1] - Y0 : b[3] - Y0, b[0] - X0 : b[2] - X0] = False
        rest = (X1 - X0) * (Y1 - Y0) - (b[2] - b[0]) * (b[3] - b[1])
        if rest > 0 and (frac := float(ring.sum()) / rest) <= 0.08 and b[2] - b[0] <= 4 * (b[3] - b[1]):
            out.append((frac, (b[0], b[1], b[2], b[3])))
    return out


def glyph_marks(
    img, scale: float, origin: tuple[float, float], allowed: str, min_conf: float = 60, limit: int = 96
) -> list[Mark]:
    """Letters printed on or beside pictures ("a" in a corner, "(B)" on a box): isolated glyphs of either
    polarity, read together in one Tesseract call (a sheet of the glyphs, each in its own cell)."""
    from PIL import Image

    g = np.asarray(img.convert("L"))
    found = [(frac, b, dark) for dark in (True, False) for frac, b in _glyph_tokens(g, dark)]
    found.sort(
        key=lambda t: (t[0], t[1])
    )  # the cleanest margins first: labels before cell nuclei and texture
    crops: list[tuple[Box, np.ndarray]] = []
    for _, b, dark in found[:limit]:
        c = g[int(b[1]) : int(b[3]), int(b[0]) : int(b[2])]
        crops.append((b, c if dark else 255 - c))
    if not crops:
        return []
    per, cw, ch, gh = (
        12,
        110,
        90,
        36,
    )  # a sheet of 12 glyphs a row, each scaled to 36 px high in a 110x90 cell
    sheet = np.full(((len(crops) + per - 1) // per * ch + 40, per * cw + 40), 255, np.uint8)
    for k, (_, c) in enumerate(crops):
        r, q = divmod(k, per)
        im = np.asarray(
            Image.fromarray(c).resize((max(1, min(cw - 10, round(c.shape[1] * gh / c.shape[0]))), gh))
        )
        x, y = 20 + q * cw + (cw - im.shape[1]) // 2, 20 + r * ch + (ch - gh) // 2
        sheet[y : y + gh, x : x + im.shape[1]] = im
    out = []
    ox, oy = origin
    for text, conf, (x0, y0, x1, y1) in _ocr_tokens(Image.fromarray(sheet), 11, allowed):
        k = int(((y0 + y1) / 2 - 20) // ch) * per + int(((x0 + x1) / 2 - 20) // cw)
        mk = parse_mark(text)
        if mk is None or mk.number or conf < min_conf or not 0 <= k < len(crops):
            continue
        b = crops[k][0]
        out.append(
            Mark(mk.name, (ox + b[0] / scale, oy + b[1] / scale, ox + b[2] / scale, oy + b[3] / scale))
        )
    return out
