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


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) of True runs."""
    if mask.size == 0:
        return []
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    starts = np.flatnonzero(d == 1)
    ends = np.flatnonzero(d == -1)
    return list(zip(starts.tolist(), ends.tolist()))


def _uniform_lines(masks: np.ndarray, cell: Cell, axis: int, frac: float) -> np.ndarray:
    """masks: (m, H, W) bool, one per background colour → bool per row (axis 0) or column (axis 1) of the cell."""
    x0, y0, x1, y1 = cell
    sub = masks[:, y0:y1, x0:x1]
    return (sub.mean(axis=2 if axis == 0 else 1) >= frac).any(axis=0)


def _trim(masks: np.ndarray, cell: Cell) -> Cell | None:
    x0, y0, x1, y1 = cell
    if x1 <= x0 or y1 <= y0:
        return None
    rows = ~_uniform_lines(masks, cell, 0, 0.995)
    cols = ~_uniform_lines(masks, cell, 1, 0.995)
    if not rows.any() or not cols.any():
        return None
    r = np.flatnonzero(rows)
    c = np.flatnonzero(cols)
    return (x0 + int(c[0]), y0 + int(r[0]), x0 + int(c[-1]) + 1, y0 + int(r[-1]) + 1)


class _TooMany(Exception):
    pass


def _split(
    masks: np.ndarray, cell: Cell, min_run: int, axis: int, depth: int, budget: list[int]
) -> list[Cell]:
    x0, y0, x1, y1 = cell
    budget[0] -= 1
    if budget[0] < 0:
        raise _TooMany
    if depth > 4 or y1 - y0 < 8 or x1 - x0 < 8:
        return [cell]
    for ax in (axis, 1 - axis):
        mask = _uniform_lines(masks, cell, ax, 0.985)
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
            out.extend(_split(masks, p, min_run, 1 - ax, depth + 1, budget))
        return out
    return [cell]


def _backgrounds(img: np.ndarray) -> np.ndarray:
    border = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]]).astype(np.int16)
    med = np.median(border, axis=0)
    return np.array([[255, 255, 255], [0, 0, 0], med], dtype=np.int16)


def split_composite(
    img: np.ndarray, k: int, min_fraction: float = 0.02, work_size: int = 700
) -> list[Cell] | None:
    """Cells (pixel boxes, reading order) of a composite with exactly ``k`` panels, or None if not found."""
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    img = img[:, :, :3]
    H, W = img.shape[:2]
    if k < 2 or H < 16 or W < 16:
        return None
    # analyse a downscaled copy (nearest neighbour keeps gutters crisp); map cells back at the end
    step = max(1, int(np.ceil(max(H, W) / work_size)))
    small = img[::step, ::step].astype(np.int16)
    h, w = small.shape[:2]
    bg = _backgrounds(small)
    total = float(h * w)
    for tol in (12.0, 24.0):
        masks = np.stack([np.abs(small - c).max(axis=2) <= tol for c in bg])
        # narrow gutters first; wider ones for charts and tables whose rows are separated by white lines too
        fracs = (0.006, 0.015, 0.03, 0.05, 0.08)
        for min_run in sorted({1 if step > 1 else 2} | {max(2, int(f * min(h, w))) for f in fracs}):
            try:
                leaves = _split(masks, (0, 0, w, h), min_run, 0, 0, [12 * k + 24])
            except _TooMany:
                continue  # a chart or a photo with many flat stripes: not a clean grid at this setting
            cells = []
            for c in leaves:
                t = _trim(masks, c)
                if t is None:
                    continue
                cw, ch = t[2] - t[0], t[3] - t[1]
                if cw * ch < min_fraction * total or cw < 0.06 * w or ch < 0.06 * h:
                    continue  # a panel letter or a sliver
                cells.append(t)
            if len(cells) == k:
                full = [(c[0] * step, c[1] * step, min(W, c[2] * step), min(H, c[3] * step)) for c in cells]
                return _order(full)
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
