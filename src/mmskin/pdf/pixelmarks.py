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

import functools
import os
from pathlib import Path

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
    if not _glyph_tokens(np.asarray(im), True):
        return []  # nothing letter-like left around the pictures: no Tesseract call
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


_FONTS = (
    "DejaVuSans.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSerif-Bold.ttf",
    "STIXGeneral.ttf",
    "STIXGeneralBol.ttf",
)
_SIDE = 24  # templates and glyphs are compared as 24x24 ink masks


def _norm_mask(ink: np.ndarray) -> np.ndarray | None:
    """A binary glyph (True = ink) cropped to its ink and centred in a _SIDE x _SIDE float square."""
    from PIL import Image

    ys, xs = np.nonzero(ink)
    if ys.size == 0:
        return None
    g = ink[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    h, w = g.shape
    side = max(h, w)
    sq = np.zeros((side, side), np.uint8)
    sq[(side - h) // 2 : (side - h) // 2 + h, (side - w) // 2 : (side - w) // 2 + w] = g * 255
    a = np.asarray(Image.fromarray(sq).resize((_SIDE, _SIDE), Image.Resampling.BILINEAR), np.float32) / 255
    a -= a.mean()
    n = float(np.sqrt((a * a).sum()))
    return a / n if n > 0 else None


@functools.cache
def _templates(letters: str) -> tuple[tuple[str, np.ndarray, float], ...]:
    """(letter, mask, aspect) of each letter in both cases, in six fonts shipped with matplotlib."""
    import importlib.util

    from PIL import Image, ImageDraw, ImageFont

    # matplotlib's packaged fonts, found without importing matplotlib (tens of MB in every build worker)
    spec = importlib.util.find_spec("matplotlib")
    font_dir = Path(spec.origin).parent / "mpl-data" / "fonts" / "ttf" if spec and spec.origin else Path()
    out = []
    for name in _FONTS:
        try:
            font = ImageFont.truetype(str(font_dir / name), 64)
        except OSError:
            continue
        for c in letters:
            for ch in {c.lower(), c.upper()}:
                im = Image.new("L", (96, 96), 0)
                ImageDraw.Draw(im).text((16, 8), ch, fill=255, font=font)
                ink = np.asarray(im) > 127
                ys, xs = np.nonzero(ink)
                if (m := _norm_mask(ink)) is not None:
                    out.append((c.lower(), m, (np.ptp(xs) + 1) / (np.ptp(ys) + 1)))
    return tuple(out)


def _letter_of(crop: np.ndarray, letters: str) -> tuple[str, float] | None:
    """The caption letter a glyph crop (dark ink on light) shows, by template matching, with its score; None
    when no letter matches clearly (the caller may ask Tesseract)."""
    import cv2

    ink = crop < min(128, int(cv2.threshold(crop, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)[0]) + 1)
    n, lab, st, _ = cv2.connectedComponentsWithStats(ink.astype(np.uint8), connectivity=8)
    if n < 2:
        return None
    # the letter is the component with the most ink; brackets and a period beside it are left out
    k = 1 + int(np.argmax(st[1:, cv2.CC_STAT_AREA]))
    x, y, w, h = (int(v) for v in st[k, :4])
    glyph = lab[y : y + h, x : x + w] == k
    m = _norm_mask(glyph)
    if m is None:
        return None
    aspect = w / h
    best: dict[str, float] = {}
    for c, t, ta in _templates(letters):
        if 0.6 < aspect / ta < 1.6:
            best[c] = max(best.get(c, -1.0), float((m * t).sum()))
    ranked = sorted(best.items(), key=lambda kv: -kv[1])
    if not ranked or ranked[0][1] < 0.75 or (len(ranked) > 1 and ranked[0][1] - ranked[1][1] < 0.06):
        return None
    return ranked[0]


def glyph_marks(
    img,
    scale: float,
    origin: tuple[float, float],
    allowed: str,
    zones: list[Box] | None = None,
    min_conf: float = 60,
    limit: int = 96,
) -> list[Mark]:
    """Letters printed on or beside pictures ("a" in a corner, "(B)" on a box): isolated glyphs of either
    polarity, matched against the caption's letters rendered in six fonts; when that reads none of
    them, the glyphs left are read together in one Tesseract call (a sheet, one glyph per cell). With ``zones``
    (panel boxes, page points) only glyphs in a panel's corner count, and none are read unless half the panels
    have one."""
    g = np.asarray(img.convert("L"))
    ox, oy = origin

    def page_box(b: Box) -> Box:
        return (ox + b[0] / scale, oy + b[1] / scale, ox + b[2] / scale, oy + b[3] / scale)

    found = [(frac, b, dark) for dark in (True, False) for frac, b in _glyph_tokens(g, dark)]
    if zones is not None:
        found = [t for t in found if _corner_of(page_box(t[1]), zones) is not None]
        if len({_corner_of(page_box(t[1]), zones) for t in found}) * 2 < len(zones):
            return []  # most panels have no letter-like glyph in a corner
    found.sort(key=lambda t: (t[0], t[1]))  # the cleanest margins first: labels before nuclei and texture
    crops = [(b, g[int(b[1]) : int(b[3]), int(b[0]) : int(b[2])]) for _, b, _ in found[:limit]]
    crops = [(b, c if dark else 255 - c) for (b, c), (_, _, dark) in zip(crops, found)]
    letters = "".join(sorted({c.lower() for c in allowed if c.isalpha()}))
    out, left = [], []
    for b, c in crops:
        hit = _letter_of(c, letters) if letters else None
        if hit is None:
            left.append((b, c))
        else:
            out.append(Mark(hit[0], page_box(b)))
    if not out and left:
        out += [Mark(name, page_box(b)) for name, b in _sheet_read(left, allowed, min_conf)]
    return out


def _corner_of(b: Box, zones: list[Box], frac: float = 0.35) -> int | None:
    """The panel in whose corner a glyph is printed (within the outer 35 % of its width and height)."""
    cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
    for i, z in enumerate(zones):
        w, h = z[2] - z[0], z[3] - z[1]
        if z[0] <= cx <= z[2] and z[1] <= cy <= z[3]:
            near = min(cx - z[0], z[2] - cx) <= frac * w and min(cy - z[1], z[3] - cy) <= frac * h
            return i if near else None
    return None


def _sheet_read(crops: list[tuple[Box, np.ndarray]], allowed: str, min_conf: float) -> list[tuple[str, Box]]:
    """Tesseract on a sheet of glyph crops (12 a row, each 36 px high in a 110x90 cell): (name, crop box)."""
    from PIL import Image

    per, cw, ch, gh = 12, 110, 90, 36
    sheet = np.full(((len(crops) + per - 1) // per * ch + 40, per * cw + 40), 255, np.uint8)
    for k, (_, c) in enumerate(crops):
        r, q = divmod(k, per)
        w = max(1, min(cw - 10, round(c.shape[1] * gh / c.shape[0])))
        im = np.asarray(Image.fromarray(c).resize((w, gh)))
        x, y = 20 + q * cw + (cw - w) // 2, 20 + r * ch + (ch - gh) // 2
        sheet[y : y + gh, x : x + w] = im
    out = []
    for text, conf, (x0, y0, x1, y1) in _ocr_tokens(Image.fromarray(sheet), 11, allowed):
        k = int(((y0 + y1) / 2 - 20) // ch) * per + int(((x0 + x1) / 2 - 20) // cw)
        mk = parse_mark(text)
        if mk is not None and not mk.number and conf >= min_conf and 0 <= k < len(crops):
            out.append((mk.name, crops[k][0]))
    return out
