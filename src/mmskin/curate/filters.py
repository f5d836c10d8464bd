"""Image filters: annotated (overlaid letters, arrows, rulers, marker circles), sensitive (faces), low resolution.

Each detector returns short reasons; the pipeline turns them into flags and ``flag_reasons``. All of it is
numpy + OpenCV on the image scaled to at most ``ANNOT_SIDE`` pixels (no OCR: tesseract on every image would cost
~0.5 s each, and the shapes below find printed letters without reading them).

- **overlay** (letters, arrows, symbols put on the photo digitally): connected components of near-pure black,
  near-pure white or fully saturated primary colour, glyph- or arrow-sized, isolated, with a sharp border (the
  pixels two or three steps outside are much lighter/darker than inside; a natural dark spot fades out).
- **ruler**: at least ``RULER_MIN_TICKS`` short, thin, parallel dark bars on a light, grey background, lined up
  side by side with regular spacing.
- **marker circle**: a thin dark (ink) curve, found by black-hat, that covers most of the perimeter of the
  ellipse fitted to it and encloses a good part of the picture.
- **faces**: OpenCV Haar cascades (frontal with two eyes inside it when big enough, profile both ways, small
  ones confirmed by many overlapping detections), ignoring boxes smaller than a fraction of the picture, so
  that freckles in a close-up are not faces.

    >>> from mmskin.curate.filters import annotation_cues, detect_faces
    >>> annotation_cues(rgb)        # {"panel_letter": "1 printed glyph in a corner", "ruler": "9 ruler ticks"}
    >>> detect_faces(rgb)           # [(x, y, w, h), ...] in pixels of rgb
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .features import _cv2, resize_max

ANNOT_SIDE = 512
FACE_SIDE = 800  # faces are searched on the image scaled to at most this many pixels
EYE_CHECK_PX = 60
RULER_MIN_TICKS = 7


def _components(mask: np.ndarray):
    cv2 = _cv2()
    return cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)


def overlay_glyphs(rgb: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Boxes (x, y, w, h) of the isolated, sharp-edged components of pure black / pure white / pure primary
    colour that have the size of a printed letter or arrow."""
    cv2 = _cv2()
    img = rgb.astype(np.int16)
    h, w = img.shape[:2]
    side = min(h, w)
    mx, mn = img.max(2), img.min(2)
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    white_bg = (mn > 235).mean() > 0.25  # a drawing or a white page: white is background, not overlay
    masks = [("dark", mx < 45)]
    if not white_bg:
        masks.append(("light", mn > 238))
    sat = (mx - mn > 170) & (mx > 200)  # pure red / green / blue / yellow marks
    masks.append(("colour", sat))
    boxes: list[tuple[int, int, int, int]] = []
    k5 = np.ones((5, 5), np.uint8)
    for kind, m in masks:
        if m.mean() > 0.3:  # the picture's own background (radiology, dark field) - not an overlay
            continue
        n, lab, stats, _ = _components(m)
        for i in range(1, n):
            x, y, bw, bh, area = (int(v) for v in stats[i])
            ext = max(bw, bh)
            if not (0.035 * side <= ext <= 0.35 * side) or area < 25:
                continue
            if x == 0 or y == 0 or x + bw >= w or y + bh >= h:
                continue
            fill = area / float(bw * bh)
            if not 0.12 <= fill <= 0.85:
                continue
            if ext > 2.5 * max(1, min(bw, bh)) and fill > 0.45:  # a straight bar: a ruler tick, not a letter
                continue
            comp = lab[y : y + bh, x : x + bw] == i
            # the ring 2-3 px outside the component
            y0, y1, x0, x1 = max(0, y - 4), min(h, y + bh + 4), max(0, x - 4), min(w, x + bw + 4)
            sub = (lab[y0:y1, x0:x1] == i).astype(np.uint8)
            d1 = cv2.dilate(sub, np.ones((3, 3), np.uint8))
            d3 = cv2.dilate(sub, k5)
            ring = (d3 > 0) & (d1 == 0)
            if ring.sum() < 8:
                continue
            inner = gray[y : y + bh, x : x + bw][comp]
            outer = gray[y0:y1, x0:x1][ring]
            if kind == "dark":
                sharp = outer.mean() - inner.mean() > 70
            elif kind == "light":
                sharp = inner.mean() - outer.mean() > 70
            else:
                sharp = (
                    np.abs(img[y0:y1, x0:x1][ring].mean(0) - img[y : y + bh, x : x + bw][comp].mean(0)).max()
                    > 90
                )
            if sharp and inner.std() < 28:
                boxes.append((x, y, bw, bh))
    return boxes


CORNER_REL = 0.2  # a glyph wholly within this share of the shorter side from two edges sits in a corner


def in_corner(box: tuple[int, int, int, int], h: int, w: int) -> bool:
    """Whether a glyph box lies in a corner of the picture, where panel letters are printed."""
    x, y, bw, bh = box
    m = CORNER_REL * min(h, w)
    return (x + bw <= m or x >= w - m) and (y + bh <= m or y >= h - m)


def ruler_ticks(rgb: np.ndarray) -> int:
    """Size of the largest group of short, parallel, evenly spaced dark bars on a light grey background."""
    cv2 = _cv2()
    h, w = rgb.shape[:2]
    side = min(h, w)
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    bh_ = cv2.morphologyEx(gray, cv2.MORPH_BLACKHAT, cv2.getStructuringElement(cv2.MORPH_RECT, (9, 9)))
    m = (bh_ > 45).astype(np.uint8)
    lines = cv2.HoughLinesP(
        m * 255, 1, np.pi / 180, threshold=30, minLineLength=int(0.15 * side), maxLineGap=2
    )
    if lines is not None:
        for x1, y1, x2, y2 in lines[:, 0]:
            cv2.line(m, (int(x1), int(y1)), (int(x2), int(y2)), 0, 2)
    bright_grey = ((gray > 150) & (hsv[..., 1] < 70)).astype(np.uint8)
    bg = cv2.dilate(bright_grey, np.ones((5, 5), np.uint8))
    n, lab, stats, cent = _components(m)
    ticks = []
    for i in range(1, n):
        area = int(stats[i, 4])
        if area < 6 or area > 0.004 * h * w + 40:
            continue
        ys, xs = np.nonzero(
            lab[stats[i, 1] : stats[i, 1] + stats[i, 3], stats[i, 0] : stats[i, 0] + stats[i, 2]] == i
        )
        if len(xs) < 6:
            continue
        (cx, cy), (rw, rh), ang = cv2.minAreaRect(np.stack([xs, ys], 1).astype(np.float32))
        L, W = max(rw, rh), max(1.0, min(rw, rh))
        if not (0.015 * side <= L <= 0.12 * side) or L / W < 3.0 or area / (L * W) < 0.45:
            continue
        if bg[int(stats[i, 1] + cy), int(stats[i, 0] + cx)] == 0:
            continue
        theta = np.deg2rad(ang if rw >= rh else ang + 90)
        ticks.append((stats[i, 0] + cx, stats[i, 1] + cy, theta % np.pi, L, W))
    if len(ticks) < RULER_MIN_TICKS:
        return 0
    T = np.array(ticks)
    best = 0
    for j in range(len(T)):
        x0, y0, th, L0, _ = T[j]
        d = np.abs(((T[:, 2] - th) + np.pi / 2) % np.pi - np.pi / 2)
        dirv = np.array([np.cos(th), np.sin(th)])  # along the tick
        perp = np.array([-dirv[1], dirv[0]])  # along the ruler edge
        rel = T[:, :2] - [x0, y0]
        v = rel @ dirv
        u = rel @ perp
        # ticks share one end (the ruler edge): their far ends differ, so allow half a long tick of slack
        sel = (
            (d < np.deg2rad(12)) & (np.abs(v) < 0.8 * max(L0, np.median(T[:, 3]))) & (np.abs(u) < 0.6 * side)
        )
        if sel.sum() < RULER_MIN_TICKS or sel.sum() <= best:
            continue
        us = np.sort(u[sel])
        gaps = np.diff(us)
        gaps = gaps[gaps > 1.0]
        if len(gaps) < RULER_MIN_TICKS - 1:
            continue
        g0 = np.median(gaps)
        regular = np.mean(np.abs(gaps / g0 - np.round(gaps / g0)) < 0.25) if g0 > 0 else 0
        if regular >= 0.75 and g0 < 0.12 * side:
            best = int(sel.sum())
    return best


CIRCLE_MIN_INSIDE = 0.5
CIRCLE_KERNEL_REL = 0.04  # black-hat kernel as a share of the shorter side: wider than a felt-pen stroke


def marker_circle(rgb: np.ndarray) -> float:
    """Largest share of an ellipse's perimeter covered by a thin dark ink curve (0 when none)."""
    cv2 = _cv2()
    h, w = rgb.shape[:2]
    side = min(h, w)
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    k = max(7, int(side * CIRCLE_KERNEL_REL) | 1)
    bh_ = cv2.morphologyEx(gray, cv2.MORPH_BLACKHAT, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    m = (bh_ > 40).astype(np.uint8)
    m = cv2.morphologyEx(m, cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
    n, lab, stats, _ = _components(m)
    best = 0.0
    for i in range(1, n):
        x, y, bw, bh, area = (int(v) for v in stats[i])
        if min(bw, bh) < 0.2 * side or area / float(bw * bh) > 0.3:
            continue
        ys, xs = np.nonzero(lab == i)
        pts = np.stack([xs, ys], 1).astype(np.float32)
        if len(pts) < 20:
            continue
        (ex, ey), (ea, eb), eang = cv2.fitEllipse(pts)
        if not (0.2 * side <= min(ea, eb) and max(ea, eb) <= 2.5 * max(h, w)) or max(ea, eb) > 4 * min(
            ea, eb
        ):
            continue
        t = np.linspace(0, 2 * np.pi, 90, endpoint=False)
        c, s = np.cos(np.deg2rad(eang)), np.sin(np.deg2rad(eang))
        px = ex + ea / 2 * np.cos(t) * c - eb / 2 * np.sin(t) * s
        py = ey + ea / 2 * np.cos(t) * s + eb / 2 * np.sin(t) * c
        inside = (px >= 0) & (px < w) & (py >= 0) & (py < h)
        if inside.mean() < CIRCLE_MIN_INSIDE:  # circles cut by the frame are common; most must still show
            continue
        near = cv2.dilate((lab == i).astype(np.uint8), np.ones((7, 7), np.uint8))
        hit = near[py[inside].astype(int), px[inside].astype(int)] > 0
        # coverage of the visible part of the ellipse
        best = max(best, float(hit.sum()) / float(inside.sum()))
    return best


def annotation_cues(rgb: np.ndarray) -> dict[str, str]:
    """What is printed or drawn on the picture, each with its reason: ``panel_letter`` (glyphs in a corner),
    ``overlay`` (other letters and arrows; the reason starts with their number), ``ruler`` (ruler ticks or a
    scale), ``marker_circle`` (an ink ring). Empty when none. :func:`mmskin.curate.flags.decide_flags` decides
    which of them only inform and which make the picture unusable."""
    img = resize_max(rgb, ANNOT_SIDE) if max(rgb.shape[:2]) > ANNOT_SIDE else rgb
    h, w = img.shape[:2]
    out: dict[str, str] = {}
    glyphs = overlay_glyphs(img)
    corner = sum(in_corner(b, h, w) for b in glyphs)
    inside = len(glyphs) - corner
    if corner:
        out["panel_letter"] = f"{corner} printed glyph{'s' if corner > 1 else ''} in a corner"
    if inside:
        out["overlay"] = f"{inside} printed letter/arrow-like mark{'s' if inside > 1 else ''}"
    t = ruler_ticks(img)
    if t:
        out["ruler"] = f"{t} evenly spaced ruler ticks"
    c = marker_circle(img)
    if c >= 0.6:
        out["marker_circle"] = f"ink curve around {c:.0%} of an ellipse"
    return out


def overlay_count(cues: dict[str, str]) -> int:
    """How many printed letters/arrows inside the picture ``annotation_cues`` found (its ``overlay`` reason
    starts with the number)."""
    head = cues.get("overlay", "0").split(" ", 1)[0]
    return int(head) if head.isdigit() else 1


# ---------------------------------------------------------------- faces


@lru_cache(maxsize=1)
def _cascades():
    cv2 = _cv2()
    base = cv2.data.haarcascades
    out = {}
    for name in ("frontalface_default", "profileface", "eye"):
        c = cv2.CascadeClassifier(base + f"haarcascade_{name}.xml")
        if c.empty():
            raise RuntimeError(f"OpenCV Haar cascade {name} missing (needs opencv-python-headless 4.x)")
        out[name] = c
    return out


def detect_faces(
    rgb: np.ndarray, min_rel: float = 0.06, min_px: int = 24, min_neighbors: int = 6
) -> list[tuple[int, int, int, int]]:
    """Face boxes (x, y, w, h) in ``rgb``'s pixels. Boxes smaller than ``min_rel`` of the shorter side (and than
    ``min_px``) are ignored. A frontal face big enough to show its eyes (>= EYE_CHECK_PX) must contain two; a
    smaller one, and a profile, must instead be confirmed by more overlapping detections (the cascades'
    neighbour count), which is what keeps skin texture in close-ups from passing as faces."""
    cv2 = _cv2()
    h, w = rgb.shape[:2]
    scale = min(1.0, FACE_SIDE / max(h, w))
    img = (
        cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        if scale < 1
        else rgb
    )
    gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)  # no histogram equalisation: a page margin would swamp it
    side = min(gray.shape)
    mins = max(int(min_px * scale), int(min_rel * side), 20)
    if mins > side:
        return []
    cs = _cascades()
    found: list[tuple[int, int, int, int]] = []
    boxes, hits = cs["frontalface_default"].detectMultiScale2(gray, 1.15, min_neighbors, minSize=(mins, mins))
    for (x, y, fw, fh), n in zip(boxes, np.ravel(hits) if len(boxes) else []):
        if fw >= EYE_CHECK_PX:
            roi = gray[y : y + fh // 2 + fh // 8, x : x + fw]
            eyes = cs["eye"].detectMultiScale(roi, 1.1, 3, minSize=(max(8, fw // 10), max(8, fw // 10)))
            cx = sorted(ex + ew / 2 for ex, ey, ew, eh in eyes)
            ok = len(cx) >= 2 and cx[-1] - cx[0] > 0.2 * fw  # two eyes side by side
        else:
            ok = n >= min_neighbors + 14
        if ok:
            found.append((int(x), int(y), int(fw), int(fh)))
    for flip in (False, True):
        g = gray[:, ::-1].copy() if flip else gray
        boxes, hits = cs["profileface"].detectMultiScale2(g, 1.15, min_neighbors + 2, minSize=(mins, mins))
        for (x, y, fw, fh), n in zip(boxes, np.ravel(hits) if len(boxes) else []):
            if n >= min_neighbors + 6:
                x = g.shape[1] - x - fw if flip else x
                found.append((int(x), int(y), int(fw), int(fh)))
    return sorted({tuple(round(v / scale) for v in b) for b in found})  # type: ignore[misc]
