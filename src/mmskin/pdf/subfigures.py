"""Subfigures: split a figure into the panels its caption names, and give each panel its own name.

The caption says how many panels there are ("(a) … (b) …", "a) … b) …", rows "1) … 2) …"); the figure says
where they are: separate pictures (a row, a grid, a figure assembled from many image fragments) or one composite
raster cut at its gutters (:mod:`.panels`). Panel markers printed on or next to the pieces ("a", "(b)", "C" in a
corner, "(a)" under a column, "1)" left of a row) come from the text layer, or from OCR of the pixels when the
text layer has none; they name each piece, so column-major lettering and row/column-labelled grids come out
right. Without markers, pieces are lettered in reading order, but only when their number equals the caption's.
When pieces and markers do not agree, the figure is kept whole and the plan says why (``note``), so a curator
can find it.

    >>> plan = plan_panels(figure, split, page, pixels)   # pixels: a FigurePixels of mmskin.pdf.writer
    >>> [(p.name, p.bbox) for p in plan.panels], plan.note
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from .layout import Atom, Figure, reading_order
from .markers import PanelSplit
from .page import Box, Page, area, gap, h_overlap, intersect, union, v_overlap

# a panel marker as printed: "a", "(a)", "a)", "A.", "[b]", grid names "a1", "(b2)"; row numbers "1)", "(2)"
_LETTER_MARK = re.compile(r"^[(\[]?([a-zA-Z])(\d)?[)\]]?[.:]?$")
_NUMBER_MARK = re.compile(r"^(?:\(([1-9])\)|([1-9])\))$")


@dataclass(frozen=True)
class Mark:
    """A panel marker printed in or next to a figure: ``name`` is "a", "a1" (grid) or "1" (a numbered row)."""

    name: str
    bbox: Box
    number: bool = False  # a row/group number ("1)") rather than a letter


@dataclass(frozen=True)
class Piece:
    """A candidate panel: whole picture atoms, or one cell of a composite raster (``cell`` in its pixels)."""

    bbox: Box
    atoms: tuple[Atom, ...]
    cell: tuple[int, int, int, int] | None = None


@dataclass(frozen=True)
class PanelOut:
    name: str
    piece: Piece

    @property
    def bbox(self) -> Box:
        return self.piece.bbox


@dataclass(frozen=True)
class Plan:
    """The figure's panels (empty: store the figure whole) and, when a split was expected but not made, why."""

    panels: tuple[PanelOut, ...] = field(default=())
    note: str | None = None


class FigurePixels(Protocol):
    def composite_cells(self, atom: Atom, k: int) -> list[tuple[Box, tuple[int, int, int, int]]] | None: ...

    def ocr_marks(self, region: Box, holes: list[Box], allowed: str) -> list[Mark]: ...

    def glyph_marks(self, region: Box, allowed: str, zones: list[Box] | None = None) -> list[Mark]: ...

    def composite_bands(self, atom: Atom, k: int) -> list[tuple[Box, tuple[int, int, int, int]]] | None: ...

    def composite_leaves(self, atom: Atom) -> list[tuple[Box, tuple[int, int, int, int]]]: ...


def parse_mark(token: str) -> Mark | None:
    """A marker token, or None ("(a)" -> a, "B" -> b, "a1" -> a1, "2)" -> 2 as a number)."""
    t = token.strip()
    m = _NUMBER_MARK.match(t)
    if m:
        return Mark(m.group(1) or m.group(2), (0, 0, 0, 0), number=True)
    m = _LETTER_MARK.match(t)
    if m:
        return Mark(m.group(1).lower() + (m.group(2) or ""), (0, 0, 0, 0))
    return None


def text_marks(page: Page, fig: Figure, margin: float = 20.0) -> list[Mark]:
    """Panel markers in the text layer, inside the figure or within ``margin`` points of it: lines made of
    marker tokens only ("(a)", "a   b", "1)"), each token with its estimated box."""
    cap_lines = {id(ln) for ln in fig.caption.lines}
    bb = fig.bbox
    zone = (bb[0] - margin, bb[1] - margin, bb[2] + margin, bb[3] + margin)
    out = []
    for ln in page.lines:
        if id(ln) in cap_lines or ln.words > 8 or area(ln.bbox) <= 0:
            continue
        if not (
            zone[0] <= ln.bbox[0]
            and ln.bbox[2] <= zone[2]
            and zone[1] <= ln.bbox[1]
            and ln.bbox[3] <= zone[3]
        ):
            continue
        toks = []
        for sp in ln.spans:
            n = max(1, len(sp.text))
            w = (sp.bbox[2] - sp.bbox[0]) / n
            for m in re.finditer(r"\S+", sp.text):
                box = (sp.bbox[0] + m.start() * w, sp.bbox[1], sp.bbox[0] + m.end() * w, sp.bbox[3])
                toks.append((m.group(), box))
        marks = [(parse_mark(t), box) for t, box in toks]
        if marks and all(mk is not None for mk, _ in marks):
            out += [Mark(mk.name, box, mk.number) for mk, box in marks if mk is not None]
    # a subscript or superscript split off a label ("V" + "e") is smaller than the panel letters
    tallest = max((m.bbox[3] - m.bbox[1] for m in out), default=0.0)
    return [m for m in out if m.bbox[3] - m.bbox[1] >= 0.8 * tallest]


def content_pieces(fig: Figure) -> list[Piece]:
    """The figure's picture atoms that can be panels: tiny ones (letters drawn as paths, arrows, scale bars,
    logos) are not; pictures laid on one backdrop (a grey panel, a frame around the whole grid) are separate."""
    atoms = [x for a in fig.atoms for x in _off_backdrop(a)]
    big = max(area(a.bbox) for a in atoms)
    out = []
    for a in atoms:
        w, h = a.bbox[2] - a.bbox[0], a.bbox[3] - a.bbox[1]
        if area(a.bbox) < 0.04 * big or min(w, h) < 14:
            continue
        out.append(Piece(a.bbox, (a,)))
    return out


def _off_backdrop(atom: Atom) -> list[Atom]:
    """An atom of several rasters merged only through a vector drawn behind (or around) all of them: each raster
    on its own. Other atoms are returned unchanged."""
    rasters = [g for g in atom.graphics if g.kind != "vector"]
    vectors = [g for g in atom.graphics if g.kind == "vector"]
    if len(rasters) < 2 or not vectors:
        return [atom]
    backdrop = [v for v in vectors if area(v.bbox) >= 0.5 * area(atom.bbox)]
    if not backdrop or any(area(v.bbox) > 0.02 * area(atom.bbox) for v in vectors if v not in backdrop):
        return [atom]
    return [Atom(g.bbox, (g,)) for g in rasters]


def _graphic_pieces(pieces: list[Piece]) -> list[Piece]:
    """Every drawing or picture of the pieces' atoms as a piece of its own."""
    out = []
    for p in pieces:
        for a in p.atoms:
            out += (
                [Piece(g.bbox, (Atom(g.bbox, (g,)),)) for g in a.graphics]
                if len(a.graphics) > 1
                else [Piece(a.bbox, (a,))]
            )
    return out


def split_tiles(pieces: list[Piece]) -> list[Piece]:
    """Pieces with every merged image tile as a piece of its own: rasters drawn edge to edge were joined as
    tiles of one picture, but two panels printed without a gutter look the same."""
    from dataclasses import replace

    out = []
    for p in pieces:
        (atom,) = p.atoms
        tiles = [
            (g, part, x) for g in atom.graphics for part, x in zip(g.parts, g.xrefs) if g.kind == "image"
        ]
        if len(atom.graphics) == 1 and len(tiles) > 1:
            g = atom.graphics[0]
            dens = g.pixel_size[0] / max(
                1e-6, g.bbox[2] - g.bbox[0]
            )  # pixels per point of the merged picture
            for _, part, x in tiles:
                px = (round(dens * (part[2] - part[0])), round(dens * (part[3] - part[1])))
                one = replace(g, bbox=part, xrefs=(x,), native=False, parts=(part,), pixel_size=px)
                out.append(Piece(part, (Atom(part, (one,)),)))
        else:
            out.append(p)
    return out


def _grid(boxes: list[Box]) -> tuple[list[list[int]], list[list[int]]]:
    """Rows (top to bottom) and columns (left to right) of boxes, each a list of box indices."""

    def bands(lo: int, hi: int, overlap: Callable[[Box, Box], float]) -> list[list[int]]:
        idx = sorted(range(len(boxes)), key=lambda i: (boxes[i][lo], boxes[i][hi]))
        out: list[list[int]] = []
        for i in idx:
            for band in out:
                u = union([boxes[j] for j in band])
                size = min(boxes[i][hi] - boxes[i][lo], u[hi] - u[lo])
                if overlap(boxes[i], u) >= 0.5 * size:
                    band.append(i)
                    break
            else:
                out.append([i])
        return sorted(out, key=lambda b: min(boxes[j][lo] for j in b))

    return bands(1, 3, v_overlap), bands(0, 2, h_overlap)


def _owner(mark: Mark, boxes: list[Box]) -> int | None:
    """The piece a marker belongs to: the one it is printed on, else the one it sits right below, above or to the
    left of (within about two marker heights)."""
    mb = mark.bbox
    cx, cy = (mb[0] + mb[2]) / 2, (mb[1] + mb[3]) / 2
    inside = [i for i, b in enumerate(boxes) if b[0] - 1 <= cx <= b[2] + 1 and b[1] - 1 <= cy <= b[3] + 1]
    if inside:
        return min(inside, key=lambda i: area(boxes[i]))
    reach = 2.0 * (mb[3] - mb[1]) + 6.0
    best = None
    for i, b in enumerate(boxes):
        g = gap(mb, b)
        if g > reach:
            continue
        beside = b[0] <= cx <= b[2] or b[1] <= cy <= b[3]
        if beside and (best is None or g < best[0]):
            best = (g, i)
    return best[1] if best else None


def _names_from_own_marks(marks: list[Mark], boxes: list[Box]) -> list[str] | None:
    """One letter marker on or at each piece, all different: the pieces' names."""
    names: dict[int, list[str]] = {}
    for mk in marks:
        if mk.number:
            continue
        i = _owner(mk, boxes)
        if i is not None:
            names.setdefault(i, []).append(mk.name)
    if len(names) != len(boxes) or any(len(v) != 1 for v in names.values()):
        return None
    out = [names[i][0] for i in range(len(boxes))]
    return out if len(set(out)) == len(out) else None


def _bands_at(bands: list[list[int]], boxes: list[Box], lo: int, v: float) -> list[int]:
    """The bands (rows for lo = 1, columns for lo = 0) whose extent holds ``v`` (2 pt of slack)."""
    spans = [union([boxes[j] for j in band]) for band in bands]
    return [i for i, b in enumerate(spans) if b[lo] - 2 <= v <= b[lo + 2] + 2]


def _names_from_axes(marks: list[Mark], boxes: list[Box]) -> list[str] | None:
    """Markers along a grid's edges: numbers left of the rows, letters under (or over) the columns; a piece is
    named by its row and column ("1a"); a repeated name gets "-2", "-3" in reading order."""
    rows, cols = _grid(boxes)
    if sum(len(r) for r in rows) != len(boxes) or sum(len(c) for c in cols) != len(boxes):
        return None
    g = union(boxes)
    row_of = {i: r for r, band in enumerate(rows) for i in band}
    col_of = {i: c for c, band in enumerate(cols) for i in band}
    row_names: dict[int, str] = {}
    col_names: dict[int, str] = {}
    clash = False  # one band got two different markers: the pieces are coarser than the labelling
    for mk in marks:
        mb = mk.bbox
        cx, cy = (mb[0] + mb[2]) / 2, (mb[1] + mb[3]) / 2
        if mb[2] <= g[0] + 3 and len(hit := _bands_at(rows, boxes, 1, cy)) == 1:  # left of the grid: a row
            clash |= row_names.setdefault(hit[0], mk.name) != mk.name
        elif (mb[1] >= g[3] - 3 or mb[3] <= g[1] + 3) and len(hit := _bands_at(cols, boxes, 0, cx)) == 1:
            clash |= col_names.setdefault(hit[0], mk.name) != mk.name  # under or over the grid: a column
    full_rows = len(row_names) == len(rows) or (len(rows) == 1 and not row_names)
    full_cols = len(col_names) == len(cols) or (len(cols) == 1 and not col_names)
    if clash or not (row_names or col_names) or not (full_rows and full_cols):
        return None
    raw = [row_names.get(row_of[i], "") + col_names.get(col_of[i], "") for i in range(len(boxes))]
    seen: dict[str, int] = {}
    out = [""] * len(boxes)
    for i in reading_order(boxes):
        seen[raw[i]] = seen.get(raw[i], 0) + 1
        out[i] = raw[i] if seen[raw[i]] == 1 else f"{raw[i]}-{seen[raw[i]]}"
    return out


def group_by_marks(
    pieces: list[Piece], marks: list[Mark], letters: list[str]
) -> list[tuple[str, Piece]] | None:
    """Pieces gathered into the panels whose letters are printed at them: every caption letter printed once;
    each piece joins the region of the letter at its top-left (a letter owns the area up to the next letter of
    its row and the next row of letters), or else the nearest letter printed under it. None unless every letter gets pieces and the panels do not
    overlap. This joins a panel drawn as several pictures (a photo and its zoomed inset, an image and its
    colour bar) and the pieces of a vector chart."""
    by_name: dict[str, Mark] = {}
    for mk in sorted(marks, key=lambda m: (m.bbox[1] - m.bbox[3], m.bbox[1], m.bbox[0])):
        if not mk.number and mk.name in letters:
            by_name.setdefault(mk.name, mk)  # a letter printed twice: its tallest, then top-left-most, copy
    if sorted(by_name) != sorted(letters) or len(pieces) < len(letters):
        return None

    def centre(b: Box) -> tuple[float, float]:
        return (b[0] + b[2]) / 2, (b[1] + b[3]) / 2

    # letters printed at the top-left of their panels: each letter owns the region from itself to the next
    # letter of its row (rightwards) and to the next row of letters (downwards); a piece belongs to the region
    # its top edge's middle lies in (a tall panel starts in its own row; a letter inset from the panel's edge
    # does not push the panel into its left neighbour)
    anchors = sorted(by_name.values(), key=lambda m: (m.bbox[1], m.bbox[0]))
    rows: list[list[Mark]] = []
    for m in anchors:
        if rows and abs(m.bbox[1] - rows[-1][0].bbox[1]) <= 1.2 * (m.bbox[3] - m.bbox[1]):
            rows[-1].append(m)
        else:
            rows.append([m])
    regions: dict[str, Box] = {}
    for r, row in enumerate(rows):
        row.sort(key=lambda m: m.bbox[0])
        tol = max(m.bbox[3] - m.bbox[1] for m in row)
        bottom = min(m.bbox[1] for m in rows[r + 1]) - tol if r + 1 < len(rows) else float("inf")
        for i, m in enumerate(row):
            right = row[i + 1].bbox[0] - tol if i + 1 < len(row) else float("inf")
            regions[m.name] = (m.bbox[0] - tol, m.bbox[1] - tol, right, bottom)

    def top_left(p: Piece) -> str | None:
        x, y = (p.bbox[0] + p.bbox[2]) / 2, p.bbox[1] + 1  # its middle across, its top down
        hits = [n for n, b in regions.items() if b[0] <= x < b[2] and b[1] <= y < b[3]]
        return hits[0] if len(hits) == 1 else None

    def under(p: Piece) -> str | None:
        px, py = centre(p.bbox)
        cands = [
            m
            for m in by_name.values()
            if centre(m.bbox)[1] >= py and p.bbox[0] - 6 <= centre(m.bbox)[0] <= p.bbox[2] + 6
        ]
        return min(cands, key=lambda m: gap(m.bbox, p.bbox)).name if cands else None

    for rule in (top_left, under):
        owner = [rule(p) for p in pieces]
        if None in owner or set(owner) != set(letters):
            continue
        groups = {n: [p for p, o in zip(pieces, owner) if o == n] for n in letters}
        boxes = {n: union([p.bbox for p in g]) for n, g in groups.items()}
        names = list(boxes)
        clash = any(
            area(intersect(boxes[a], boxes[b])) > 0.1 * min(area(boxes[a]), area(boxes[b]))
            for i, a in enumerate(names)
            for b in names[i + 1 :]
        )
        if not clash:
            return [(n, _merged(groups[n])) for n in letters]
    return None


def _merged(pieces: list[Piece]) -> Piece:
    """One panel made of several pieces: the union of their boxes (and of their pixel cells in a composite)."""
    atoms = tuple(dict.fromkeys(a for p in pieces for a in p.atoms))
    cells = [p.cell for p in pieces if p.cell is not None]
    cell = None
    if cells and len(cells) == len(pieces):
        cell = (
            min(c[0] for c in cells),
            min(c[1] for c in cells),
            max(c[2] for c in cells),
            max(c[3] for c in cells),
        )
    return Piece(union([p.bbox for p in pieces]), atoms, cell)


def _in_corners(marks: list[Mark], pieces: list[Piece], zone: float = 0.35) -> list[Mark]:
    """Marks lying in a corner zone of some piece (where panel letters go), not in the middle of a photo."""
    out = []
    for mk in marks:
        cx, cy = (mk.bbox[0] + mk.bbox[2]) / 2, (mk.bbox[1] + mk.bbox[3]) / 2
        for p in pieces:
            x0, y0, x1, y1 = p.bbox
            if not (x0 <= cx <= x1 and y0 <= cy <= y1):
                continue
            near_x = cx - x0 <= zone * (x1 - x0) or x1 - cx <= zone * (x1 - x0)
            near_y = cy - y0 <= zone * (y1 - y0) or y1 - cy <= zone * (y1 - y0)
            if near_x and near_y:
                out.append(mk)
                break
    return out


def _fits_caption(names: list[str], split: PanelSplit) -> bool:
    """Names made of the caption's letters (and row numbers): markers read wrongly do not pass."""
    letters = set(split.letters)
    rows = {p.letter for p in split.rows}
    for n in names:
        m = re.fullmatch(r"(\d+)?([a-z]\d?)?(?:-\d+)?", n)
        if not m or not (m.group(1) or m.group(2)):
            return False
        if m.group(1) and m.group(1) not in rows:
            return False
        if m.group(2) and letters and m.group(2) not in letters and m.group(2)[0] not in letters:
            return False
    return True


def names_from_marks(pieces: list[Piece], marks: list[Mark], split: PanelSplit) -> list[str] | None:
    """Names of the pieces from their markers: one on or at each piece, else along the grid's edges."""
    boxes = [p.bbox for p in pieces]
    for names in (_names_from_own_marks(marks, boxes), _names_from_axes(marks, boxes)):
        if names and _fits_caption(names, split):
            return names
    return None


def reading_names(pieces: list[Piece], split: PanelSplit, marks: list[Mark] = ()) -> list[str] | None:
    """The caption's names in reading order ("1a", "1b", "2a", … when it numbers rows too), when the number of
    pieces is the number of names; else None. In a full grid the letters may run down the columns instead:
    the markers that were read (even only some of them) vote for row- or column-major order."""
    seq = [r.letter + n for r in split.rows for n in split.letters] if split.rows else split.letters
    if len(pieces) != len(seq):
        return None
    boxes = [p.bbox for p in pieces]
    orders = [reading_order(boxes)]
    rows, cols = _grid(boxes)
    if len(rows) > 1 and len(cols) > 1 and all(len(r) == len(cols) for r in rows):
        col_of = {i: c for c, band in enumerate(cols) for i in band}
        by_row = [sorted(r, key=lambda i: col_of[i]) for r in rows]
        orders.append([by_row[r][c] for c in range(len(cols)) for r in range(len(rows))])
    best, best_score = orders[0], 0
    for order in orders:
        name_of = {i: seq[rank] for rank, i in enumerate(order)}
        score = 0
        for mk in marks:
            owner = _owner(mk, boxes)
            if owner is not None and not mk.number:
                score += 1 if name_of[owner] == mk.name else -1
        if score > best_score:
            best, best_score = order, score
    out = [""] * len(pieces)
    for rank, i in enumerate(best):
        out[i] = seq[rank]
    return out


def name_pieces(pieces: list[Piece], marks: list[Mark], split: PanelSplit) -> list[str] | None:
    """Names of the pieces from their markers, else in reading order when their number is the caption's."""
    return names_from_marks(pieces, marks, split) or reading_names(pieces, split, marks)


def _plural(k: int, word: str) -> str:
    return f"{k} {word}{'' if k == 1 else 's'}"


def plan_panels(fig: Figure, split: PanelSplit, page: Page, pixels: FigurePixels) -> Plan:
    """The panels of one figure (see the module docstring)."""
    k = len(split.letters)
    if k < 2:
        return Plan()
    pieces = content_pieces(fig)
    if not pieces:
        return Plan(note="no picture piece large enough to be a panel")
    allowed = _allowed(split)
    marks = _known(text_marks(page, fig), split)
    want = k * max(1, len(split.rows))  # pieces expected: letters, times rows when the caption numbers them
    tiled = split_tiles(pieces)
    if (
        len(pieces) == 1
        and len(tiled) != want
        and all(g.kind != "vector" for g in pieces[0].atoms[0].graphics)
    ):
        atom = pieces[0].atoms[0]
        cells = pixels.composite_cells(atom, k) or pixels.composite_bands(atom, k)
        if cells is None:
            # no clean k-way split: the printed letters may still show which pieces between gutters belong together
            leaves = [Piece(bbox, (atom,), cell) for bbox, cell in pixels.composite_leaves(atom)]
            grouped = (
                group_by_marks(
                    leaves, marks or _known(pixels.glyph_marks(fig.bbox, allowed), split), split.letters
                )
                if leaves
                else None
            )
            if grouped is None:
                return Plan(
                    note=f"caption names {_plural(k, 'panel')} but the image has no clean {k}-way split"
                )
            names, pieces = [n for n, _ in grouped], [p for _, p in grouped]
        else:
            pieces = [Piece(bbox, (atom,), cell) for bbox, cell in cells]
            if not marks and _is_2d(pieces):
                zones = [p.bbox for p in pieces]
                marks = _in_corners(_known(pixels.glyph_marks(fig.bbox, allowed, zones), split), pieces)
            names = name_pieces(pieces, marks, split)
    else:
        options = [pieces] + ([tiled] if len(tiled) != len(pieces) else [])
        if all(len(ps) < want for ps in options) and (cut := _cut_one(pieces, want, pixels)) is not None:
            options.append(cut)
        options.sort(key=lambda ps: len(ps) != want)  # the reading that has the caption's count first
        if not marks and (all(len(ps) != want for ps in options) or _is_2d(options[0])):
            words = [ln.bbox for ln in page.lines if parse_mark(ln.text) is None]  # text is not a marker
            holes = [p.bbox for p in pieces] + [fig.caption.bbox] + words
            marks = _known(pixels.ocr_marks(fig.bbox, holes, allowed), split)
        names = None
        for name_fn in (
            lambda ps: names_from_marks(ps, marks, split),
            lambda ps: reading_names(ps, split, marks),
        ):
            for ps in options:
                if (names := name_fn(ps)) is not None:
                    pieces = ps
                    break
            if names is not None:
                break
        if names is None:
            # letters printed at the panels may still show which pictures belong together; a vector figure's
            # atoms can hold several charts, so its single drawings are tried too
            for ps in (options[0], _graphic_pieces(options[0])):
                if (grouped := group_by_marks(ps, marks, split.letters)) is not None:
                    names, pieces = [n for n, _ in grouped], [p for _, p in grouped]
                    break
    if names is None:
        why = f"caption names {_plural(k, 'panel')} ({', '.join(split.letters)}) but the figure has "
        why += f"{_plural(len(pieces), 'picture piece')}"
        why += f" and {_plural(len(marks), 'panel marker')} that do not name them" if marks else ""
        return Plan(note=why)
    order = reading_order([p.bbox for p in pieces])
    return Plan(tuple(PanelOut(names[i], pieces[i]) for i in order))


def _cut_one(pieces: list[Piece], want: int, pixels: FigurePixels) -> list[Piece] | None:
    """Fewer pictures than panels: one raster that holds the missing panels side by side (two panels printed as
    one image next to a third, or found as one region on a scanned page) cut at its own gutters."""
    extra = want - len(pieces)
    for i in sorted(range(len(pieces)), key=lambda i: -area(pieces[i].bbox)):
        p = pieces[i]
        if len(p.atoms) != 1 or p.cell is not None or any(g.kind == "vector" for g in p.atoms[0].graphics):
            continue
        cells = pixels.composite_cells(p.atoms[0], extra + 1)
        if cells is not None:
            return pieces[:i] + [Piece(b, p.atoms, c) for b, c in cells] + pieces[i + 1 :]
    return None


def _allowed(split: PanelSplit) -> str:
    """The characters a marker of this caption can contain (the OCR whitelist): its letters in both cases, its
    row numbers, brackets and the period."""
    chars = {c for n in split.letters for c in n} | {c for r in split.rows for c in r.letter}
    return "".join(sorted(chars | {c.upper() for c in chars if c.isalpha()} | set("().")))


def _known(marks: list[Mark], split: PanelSplit) -> list[Mark]:
    """Markers that name one of the caption's panels or rows (an axis label "x" in a chart does not)."""
    letters = set(split.letters) | {n[0] for n in split.letters}
    rows = {r.letter for r in split.rows}
    return [m for m in marks if (m.name in rows if m.number else (m.name in letters or m.name[0] in letters))]


def _is_2d(pieces: list[Piece]) -> bool:
    rows, cols = _grid([p.bbox for p in pieces])
    return len(rows) > 1 and len(cols) > 1
