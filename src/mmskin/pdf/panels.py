"""Split a composite raster (several panels in one bitmap) at its gutters.

Gutters are runs of rows (or columns) that are each one flat colour across the cell — white, black, grey, a
brand blue: any uniform colour — and as thin as a couple of pixels. The image is cut recursively (XY-cut,
rows then columns inside each band, …), giving r×c grids, uneven rows and nested layouts; tiny leaves (panel
letters, slivers) are dropped. Several gutter widths and flatness tolerances are tried and the first
segmentation with exactly the number of panels the caption names is used, so a photo with a flat stripe is not
cut when the caption names two panels. Finally the cells are squared up as a grid: a panel whose content does not
reach its edges (tissue on a white slide, a lesion on a white background) gets the height of its row and the
width of its column, up to the gutter, instead of being trimmed to its content.

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
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist()))


class _Image:
    """The analysed (downscaled) image with flatness tests of its lines, memoised per cell. Images of one
    picture at other tolerances share ``lines`` (each line's colour and its pixels' deviation from it)."""

    def __init__(self, small: np.ndarray, tol: float, lines: dict | None = None):
        self.a, self.tol = small, tol
        self._lines: dict[tuple[Cell, int], tuple[np.ndarray, np.ndarray]] = {} if lines is None else lines
        self._memo: dict[tuple[Cell, int], tuple[np.ndarray, np.ndarray]] = {}
        self._pieces: dict[tuple[Cell, int], list[tuple[int, int]]] = {}

    def flat_lines(self, cell: Cell, axis: int) -> tuple[np.ndarray, np.ndarray]:
        """Per row (axis 0) or column (axis 1) of the cell: is it one flat colour (98.5 % of its pixels within
        ``tol`` of its mean), and that colour."""
        key = (cell, axis)
        if key not in self._memo:
            along = 1 if axis == 0 else 0
            if key not in self._lines:
                x0, y0, x1, y1 = cell
                sub = self.a[y0:y1, x0:x1]
                mean = sub.mean(axis=along)
                d = sub - (mean[:, None, :] if axis == 0 else mean[None, :, :])
                np.abs(d, out=d)
                # the largest of the three channel deviations (np.maximum: a reduce over a size-3 axis is slow)
                dev = np.maximum(np.maximum(d[..., 0], d[..., 1]), d[..., 2])
                self._lines[key] = (dev, mean)
            dev, mean = self._lines[key]
            flat = np.count_nonzero(dev <= self.tol, axis=along) / dev.shape[along] >= 0.985
            self._memo[key] = (flat, mean)
        return self._memo[key]

    def flat_pieces(self, cell: Cell, axis: int) -> list[tuple[int, int]]:
        """``_flat_pieces`` of the cell's lines, memoised (every minimum gutter width filters the same list)."""
        key = (cell, axis)
        if key not in self._pieces:
            flat, colour = self.flat_lines(cell, axis)
            self._pieces[key] = _flat_pieces(flat, colour, self.tol)
        return self._pieces[key]


class _TooMany(Exception):
    pass


def _gutters(flat: np.ndarray, colour: np.ndarray, min_run: int, tol: float) -> list[tuple[int, int]]:
    """Inner runs of flat lines of one colour, at least ``min_run`` long: a run is cut where the colour jumps
    from one line to the next (a dark frame line beside a grey gutter), and a piece whose colour drifts by more
    than ``tol`` overall (a smooth gradient) is not a gutter."""
    return [(a, b) for a, b in _flat_pieces(flat, colour, tol) if b - a >= min_run]


def _flat_pieces(flat: np.ndarray, colour: np.ndarray, tol: float) -> list[tuple[int, int]]:
    """Every inner run of flat lines of one colour (any length); ``_gutters`` keeps the long enough ones."""
    n = flat.shape[0]
    jump = np.zeros(n, dtype=bool)
    if n > 1:
        jump[1:] = np.abs(np.diff(colour, axis=0)).max(axis=1) > tol
    out = []
    for s, e in _runs(flat):
        if s == 0 or e == n:
            continue
        cuts = [s] + (s + 1 + np.flatnonzero(jump[s + 1 : e])).tolist() + [e]
        for a, b in zip(cuts, cuts[1:]):
            if b - a == 1 or np.ptp(colour[a:b], axis=0).max() <= tol:
                out.append((a, b))
    return out


def _split(
    im: _Image,
    cell: Cell,
    min_run: int,
    axis: int,
    depth: int,
    budget: list[int],
    found: list,
    widest: bool = False,
) -> list[Cell]:
    x0, y0, x1, y1 = cell
    budget[0] -= 1
    if budget[0] < 0:
        raise _TooMany
    if depth > 5 or y1 - y0 < 8 or x1 - x0 < 8:
        return [cell]
    for ax in (axis, 1 - axis):
        flat, colour = im.flat_lines(cell, ax)
        cuts = [(a, b) for a, b in im.flat_pieces(cell, ax) if b - a >= min_run]
        if depth > 0 and found:
            # inside a panel band, a flat run is a gutter only in a gutter colour already cut: a lesion on a flat
            # pink or white background is not cut through its background
            palette = np.asarray(found)
            cuts = [(s, e) for s, e in cuts if (np.abs(palette - colour[s]).max(axis=1) <= im.tol).any()]
        if (
            cuts and widest
        ):  # charts: only the gutters about as wide as the widest (not the gaps between rows)
            top = max(e - s for s, e in cuts)
            cuts = [(s, e) for s, e in cuts if e - s >= 0.6 * top]
        if not cuts:
            continue
        for s, _ in cuts:  # the palette of gutter colours seen so far (one entry per colour)
            if not found or not (np.abs(np.asarray(found) - colour[s]).max(axis=1) <= im.tol).any():
                found.append(colour[s])
        pieces: list[Cell] = []
        prev = 0
        n = flat.shape[0]
        for s, e in cuts + [(n, n)]:
            if s > prev:
                pieces.append((x0, y0 + prev, x1, y0 + s) if ax == 0 else (x0 + prev, y0, x0 + s, y1))
            prev = e
        out: list[Cell] = []
        for p in pieces:
            out.extend(_split(im, p, min_run, 1 - ax, depth + 1, budget, found, widest))
        return out
    return [cell]


def _trim(im: _Image, cell: Cell, gutter_colours: list[np.ndarray]) -> Cell | None:
    """The cell without its edge lines of a gutter colour (outer margins, the rest of a wide gutter)."""

    def keep(axis: int) -> np.ndarray:
        flat, colour = im.flat_lines(cell, axis)
        if not gutter_colours:
            return np.ones_like(flat)
        palette = np.asarray(gutter_colours)  # (g, 3) against (n, 3): is each line near a gutter colour
        near = (np.abs(colour[:, None, :] - palette[None, :, :]).max(axis=2) <= im.tol).any(axis=1)
        return ~(flat & near)

    x0, y0, x1, y1 = cell
    if x1 <= x0 or y1 <= y0:
        return None
    rows, cols = keep(0), keep(1)
    if not rows.any() or not cols.any():
        return None
    r, c = np.flatnonzero(rows), np.flatnonzero(cols)
    return (x0 + int(c[0]), y0 + int(r[0]), x0 + int(c[-1]) + 1, y0 + int(r[-1]) + 1)


def _bands(cells: list[Cell], lo: int, hi: int) -> list[list[int]]:
    """Cells grouped into bands (rows for lo, hi = 1, 3) that overlap by more than half the smaller extent,
    and lie side by side (two cells stacked beside a tall one are not one row)."""
    olo, ohi = (0, 2) if lo == 1 else (1, 3)
    idx = sorted(range(len(cells)), key=lambda i: cells[i][lo])
    out: list[list[int]] = []
    for i in idx:
        for band in out:
            b0, b1 = min(cells[j][lo] for j in band), max(cells[j][hi] for j in band)
            size = min(cells[i][hi] - cells[i][lo], b1 - b0)
            beside = all(min(cells[i][ohi], cells[j][ohi]) <= max(cells[i][olo], cells[j][olo]) for j in band)
            if beside and min(cells[i][hi], b1) - max(cells[i][lo], b0) > 0.5 * size:
                band.append(i)
                break
        else:
            out.append([i])
    return out


def _apart(before: list[list[int]], after: list[list[int]]) -> list[list[int]]:
    """``after``, except that a cell whose new box overlaps another cell keeps its ``before`` box (a short
    panel beside a tall one must not grow over the panel stacked under it)."""

    def hit(a: list[int], b: list[int]) -> bool:
        return min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])

    out = [list(c) for c in after]
    for i, c in enumerate(after):
        if any(hit(c, q) for j, q in enumerate(after) if j != i):
            out[i] = list(before[i])
    return out


def _square_up(cells: list[Cell]) -> list[Cell]:
    """Cells of one row share its top and bottom, cells of one column its left and right; then each cell grows
    towards its neighbour up to the narrowest gutter seen (its content may not have reached the gutter). No
    step lets a cell grow into another."""
    start = [list(c) for c in cells]
    out = [list(c) for c in cells]
    rows = _bands(cells, 1, 3)
    for band in rows:
        a, b = min(cells[j][1] for j in band), max(cells[j][3] for j in band)
        for j in band:
            out[j][1], out[j][3] = a, b
    if (
        len(rows) > 1 and len({len(r) for r in rows}) == 1
    ):  # a regular grid: the j-th cell of each row is column j
        for col in zip(*(sorted(r, key=lambda j: cells[j][0]) for r in rows)):
            a, b = min(cells[j][0] for j in col), max(cells[j][2] for j in col)
            for j in col:
                out[j][0], out[j][2] = a, b
    out = _apart(start, out)
    aligned = [list(c) for c in out]
    gaps = []
    for i, p in enumerate(out):
        for q in out[i + 1 :]:
            for lo, hi, olo, ohi in ((0, 2, 1, 3), (1, 3, 0, 2)):
                if min(p[ohi], q[ohi]) - max(p[olo], q[olo]) > 0:  # facing each other
                    g = max(q[lo] - p[hi], p[lo] - q[hi])
                    if g >= 0:
                        gaps.append(g)
    g = min(gaps) if gaps else 0
    for i, p in enumerate(out):
        for lo, hi, olo, ohi in ((0, 2, 1, 3), (1, 3, 0, 2)):
            facing = [
                q for j, q in enumerate(out) if j != i and min(p[ohi], q[ohi]) - max(p[olo], q[olo]) > 0
            ]
            after = [q[lo] for q in facing if q[lo] >= p[hi]]
            before = [q[hi] for q in facing if q[hi] <= p[lo]]
            if after:
                p[hi] = max(p[hi], min(after) - g)
            if before:
                p[lo] = min(p[lo], max(before) + g)
    return [tuple(int(v) for v in c) for c in _apart(aligned, out)]  # type: ignore[misc]


def _small(img: np.ndarray, work_size: int) -> tuple[np.ndarray, int]:
    """A downscaled float copy for analysis (nearest neighbour keeps gutters crisp) and its step."""
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    img = img[:, :, :3]
    step = max(1, int(np.ceil(max(img.shape[:2]) / work_size)))
    return img[::step, ::step].astype(np.float32), step


def _settings(h: int, w: int, step: int):
    """(tolerance, minimum gutter, widest-only) in the order they are tried: strict flatness first (a real
    gutter is one exact colour, while skin or a slide background is only nearly flat; the looser tolerances are
    for gutters blurred by JPEG), narrow gutters first, then only the widest gutters of each cut (charts)."""
    fracs = (0.006, 0.015, 0.03, 0.05, 0.08)
    runs = sorted({1 if step > 1 else 2} | {max(2, int(f * min(h, w))) for f in fracs})
    for widest in (False, True):
        for tol in (6.0, 12.0, 24.0):
            for min_run in runs:
                yield tol, min_run, widest


def _cells(im: _Image, leaves: list[Cell], found: list, min_fraction: float) -> tuple[list[Cell], float]:
    """Trimmed leaves large enough to be panels, and the area of those that are not (letters, slivers)."""
    h, w = im.a.shape[:2]
    cells, dropped = [], 0.0
    for c in leaves:
        t = _trim(im, c, found)
        if t is None:
            continue
        cw, ch = t[2] - t[0], t[3] - t[1]
        if cw * ch < min_fraction * h * w or cw < 0.06 * w or ch < 0.06 * h:
            dropped += cw * ch
            continue
        cells.append(t)
    return cells, dropped


def split_composite(
    img: np.ndarray, k: int, min_fraction: float = 0.02, work_size: int = 700
) -> list[Cell] | None:
    """Cells (pixel boxes, reading order) of a composite with exactly ``k`` panels, or None if not found."""
    H, W = img.shape[:2]
    if k < 2 or H < 16 or W < 16:
        return None
    small, step = _small(img, work_size)
    h, w = small.shape[:2]
    images: dict[float, _Image] = {}
    lines: dict = {}
    best: tuple[float, list[Cell]] | None = None
    too_few: set[tuple[float, bool]] = set()  # settings whose gutters already gave fewer than k panels
    for tol, min_run, widest in _settings(h, w, step):
        if (tol, widest) in too_few:
            continue  # wider minimum gutters only cut less
        im = images.setdefault(tol, _Image(small, tol, lines))
        found: list[np.ndarray] = []
        try:
            leaves = _split(im, (0, 0, w, h), min_run, 0, 0, [12 * k + 24], found, widest)
        except _TooMany:
            continue  # a chart or a photo with many flat stripes: not a clean grid at this setting
        if len(leaves) < k:
            too_few.add((tol, widest))
            continue
        cells, dropped = _cells(im, leaves, found, min_fraction)
        # a segmentation that throws away more than letters and slivers cut a picture, not a gutter
        if len(cells) == k and dropped <= 0.03 * h * w:
            cells = _square_up(cells)
            quality = _quality(cells, h * w)
            if quality >= 0.5:
                return _full(cells, step, H, W)
            # panels very unequal, or covering little of the image: perhaps a flat background inside a photo was
            # cut and trimmed away rather than the gutter; a later setting may do better, else the best one stands
            if best is None or quality > best[0]:
                best = (quality, cells)
    bands = _single_cut(small, k, lines)
    if bands is not None and (best is None or _quality(bands, h * w) > best[0]):
        best = (_quality(bands, h * w), bands)
    return _full(best[1], step, H, W) if best is not None else None


def _quality(cells: list[Cell], total: float) -> float:
    """How plausible a k-way split is: the share of the image its panels cover, times how even they are (the
    smallest panel's area over the largest's, up to 1/4, scaled to 1)."""
    areas = [(c[2] - c[0]) * (c[3] - c[1]) for c in cells]
    return sum(areas) / total * min(1.0, 4 * min(areas) / max(areas))


def _full(cells: list[Cell], step: int, H: int, W: int) -> list[Cell]:
    """Cells of the analysed copy as boxes of the full-size image, in reading order."""
    return _order([(c[0] * step, c[1] * step, min(W, c[2] * step), min(H, c[3] * step)) for c in cells])


def _single_cut(small: np.ndarray, k: int, lines: dict | None = None) -> list[Cell] | None:
    """k panels side by side (or stacked) whose own content has flat gaps too (charts, plots with a table, a
    legend between two panels): one cut level across the whole image at its k-1 widest gutters, when those
    are clearly wider than every other gap and leave bands of comparable size."""
    h, w = small.shape[:2]
    for tol in (6.0, 12.0, 24.0):
        im = _Image(small, tol, lines)
        for ax in (0, 1):
            flat, colour = im.flat_lines((0, 0, w, h), ax)
            runs = sorted(_gutters(flat, colour, 2, tol), key=lambda r: r[0] - r[1])  # widest first
            if len(runs) < k - 1:
                continue
            chosen = sorted(runs[: k - 1])
            if len(runs) >= k and min(e - s for s, e in chosen) < 1.3 * (runs[k - 1][1] - runs[k - 1][0]):
                continue
            n = flat.shape[0]
            edges = [0] + [x for s, e in chosen for x in (s, e)] + [n]
            spans = [(edges[i], edges[i + 1]) for i in range(0, len(edges), 2)]
            if min(b - a for a, b in spans) < 0.4 * n / k:
                continue
            cells = [(0, a, w, b) if ax == 0 else (a, 0, b, h) for a, b in spans]
            found = [colour[s] for s, _ in chosen]
            trimmed = [_trim(im, c, found) for c in cells]
            if all(t is not None for t in trimmed):
                return trimmed  # type: ignore[return-value]
    return None


def split_leaves(img: np.ndarray, work_size: int = 700, budget: int = 400) -> list[Cell]:
    """Every piece between gutters (strict flatness, narrowest gutters), for grouping by printed letters when
    no clean k-way split exists. Pixel boxes; [] when the image has no gutter at all."""
    small, step = _small(img, work_size)
    h, w = small.shape[:2]
    H, W = img.shape[:2]
    for tol in (6.0, 12.0):
        im = _Image(small, tol)
        found: list[np.ndarray] = []
        try:
            leaves = _split(im, (0, 0, w, h), 2, 0, 0, [budget], found)
        except _TooMany:
            continue
        cells, _ = _cells(im, leaves, found, 0.002)
        if len(cells) > 1:
            return [(c[0] * step, c[1] * step, min(W, c[2] * step), min(H, c[3] * step)) for c in cells]
    return []


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


def leaf_bands(img: np.ndarray, k: int, tol: float = 24.0) -> list[Cell] | None:
    """k pictures in one row or one column whose labels stand outside them (charts: tick labels, axis titles and
    "(a)" beside the plot frames, so a clean k-way cut would drop too much): the whole image cut into k bands, each
    cut through the middle of the widest run of blank lines between two consecutive pieces. None when the pieces
    between the gutters are not k, overlap along both axes, or the widest run between two pieces is not clearly
    (1.5x) wider than the next one."""
    leaves = split_leaves(img)
    if len(leaves) != k:
        return None
    from .regions import background_colour

    H, W = img.shape[:2]
    bg = background_colour(img)
    near_bg = np.abs(img.astype(np.int16) - bg.astype(np.int16)).max(axis=2) <= tol
    for ax in (1, 0):  # 1: stacked, cut across rows; 0: side by side, cut across columns
        lo, hi = (1, 3) if ax == 1 else (0, 2)
        order = sorted(leaves, key=lambda c: c[lo])
        if any(order[i][hi] > order[i + 1][lo] for i in range(k - 1)):
            continue
        blank = near_bg.mean(axis=1 if ax == 1 else 0) >= 0.995
        cuts = []
        for a, b in zip(order, order[1:]):
            runs = sorted(_runs(blank[a[hi] : b[lo]]), key=lambda r: r[1] - r[0], reverse=True)
            widths = [e - s for s, e in runs]
            if not runs or widths[0] < 3 or (len(runs) > 1 and widths[0] < 1.5 * widths[1]):
                break  # no gutter, or two alike (beside a colour bar, a label column): which one parts them is unsure
            cuts.append(a[hi] + runs[0][0] + widths[0] // 2)
        else:
            edges = [0, *cuts, H if ax == 1 else W]
            return [
                (0, edges[i], W, edges[i + 1]) if ax == 1 else (edges[i], 0, edges[i + 1], H)
                for i in range(k)
            ]
    return None
