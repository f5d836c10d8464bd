"""Split a composite raster (several panels in one bitmap) at its gutters.

Gutters are full-width (or full-height) runs of near-uniform rows (columns) in white, black or the image's border
colour. The image is cut recursively (guillotine: rows, then columns inside each band, …); tiny leaves (panel
letters, slivers) are dropped. Several gutter widths are tried and the first segmentation with exactly the number
of panels the caption names is used, so a photo with a white stripe is not cut when the caption names two panels.

    >>> import numpy as np
    >>> from mmskin.pdf.panels import split_composite
    >>> cells = split_composite(np.asarray(pil_image.convert("RGB")), 2)   # [(x0, y0, x1, y1), …] or None
"""

from __future__ import annotations

import numpy as np

Cell = tuple[int, int, int, int]


def _uniform(lines: np.ndarray, bg: np.ndarray, tol: float, frac: float) -> np.ndarray:
    """lines: (n, L, 3) → bool per line: at least ``frac`` of its pixels within ``tol`` of one background colour."""
    out = np.zeros(lines.shape[0], dtype=bool)
    for c in bg:
        close = (np.abs(lines - c).max(axis=2) <= tol).mean(axis=1) >= frac
        out |= close
    return out


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) of True runs."""
    if mask.size == 0:
        return []
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    starts = np.flatnonzero(d == 1)
    ends = np.flatnonzero(d == -1)
    return list(zip(starts.tolist(), ends.tolist()))


def _trim(img: np.ndarray, cell: Cell, bg: np.ndarray, tol: float) -> Cell | None:
    x0, y0, x1, y1 = cell
    sub = img[y0:y1, x0:x1]
    if sub.size == 0:
        return None
    rows = ~_uniform(sub, bg, tol, 0.995)
    cols = ~_uniform(sub.transpose(1, 0, 2), bg, tol, 0.995)
    if not rows.any() or not cols.any():
        return None
    r = np.flatnonzero(rows)
    c = np.flatnonzero(cols)
    return (x0 + int(c[0]), y0 + int(r[0]), x0 + int(c[-1]) + 1, y0 + int(r[-1]) + 1)


def _split(img: np.ndarray, cell: Cell, bg: np.ndarray, tol: float, min_run: int, axis: int, depth: int) -> list[Cell]:
    x0, y0, x1, y1 = cell
    sub = img[y0:y1, x0:x1]
    if depth > 4 or sub.shape[0] < 8 or sub.shape[1] < 8:
        return [cell]
    for ax in (axis, 1 - axis):
        lines = sub if ax == 0 else sub.transpose(1, 0, 2)
        mask = _uniform(lines, bg, tol, 0.985)
        n = mask.shape[0]
        cuts = [(s, e) for s, e in _runs(mask) if s > 0 and e < n and e - s >= min_run]
        if not cuts:
            continue
        pieces: list[Cell] = []
        prev = 0
        for s, e in cuts + [(n, n)]:
            if s > prev:
                pieces.append((x0, y0 + prev, x1, y0 + s) if ax == 0 else (x0 + prev, y0, x0 + s, y1))
            prev = e
        out: list[Cell] = []
        for p in pieces:
            out.extend(_split(img, p, bg, tol, min_run, 1 - ax, depth + 1))
        return out
    return [cell]


def _backgrounds(img: np.ndarray) -> np.ndarray:
    border = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]]).astype(np.int16)
    med = np.median(border, axis=0)
    return np.array([[255, 255, 255], [0, 0, 0], med], dtype=np.int16)


def split_composite(img: np.ndarray, k: int, min_fraction: float = 0.02) -> list[Cell] | None:
    """Cells (pixel boxes, reading order) of a composite with exactly ``k`` panels, or None if not found."""
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    img = img[:, :, :3].astype(np.int16)
    h, w = img.shape[:2]
    if k < 2 or h < 16 or w < 16:
        return None
    bg = _backgrounds(img)
    total = float(h * w)
    for tol in (12.0, 24.0):
        for min_run in sorted({2, max(2, int(0.006 * min(h, w))), max(3, int(0.015 * min(h, w)))}):
            leaves = _split(img, (0, 0, w, h), bg, tol, min_run, 0, 0)
            cells = []
            for c in leaves:
                t = _trim(img, c, bg, tol)
                if t is None:
                    continue
                cw, ch = t[2] - t[0], t[3] - t[1]
                if cw * ch < min_fraction * total or cw < 0.06 * w or ch < 0.06 * h:
                    continue  # a panel letter or a sliver
                cells.append(t)
            if len(cells) == k:
                return _order(cells)
    return None


def _order(cells: list[Cell]) -> list[Cell]:
    idx = sorted(range(len(cells)), key=lambda i: (cells[i][1], cells[i][0]))
    rows: list[list[int]] = []
    for i in idx:
        c = cells[i]
        for row in rows:
            r0 = min(cells[j][1] for j in row)
            r1 = max(cells[j][3] for j in row)
            if min(c[3], r1) - max(c[1], r0) >= 0.5 * min(c[3] - c[1], r1 - r0):
                row.append(i)
                break
        else:
            rows.append([i])
    rows.sort(key=lambda r: min(cells[j][1] for j in r))
    return [cells[i] for row in rows for i in sorted(row, key=lambda j: cells[j][0])]
