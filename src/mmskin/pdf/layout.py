"""Figure assembly and caption↔figure assignment as one global matching over the page.

Not nearest-block: every caption proposes figures in each direction (figure above, below, left or right of it),
each proposal growing from the nearest picture element through neighbouring ones until body text, another
caption or a wide gap stops it. A branch-and-bound search then picks one proposal per caption so that no picture
element is claimed twice and the total score (figures found, elements covered, minus distance and
unusual-side penalties) is highest. This is what separates two side-by-side figures, keeps a composite's panels
together, and lets a book with captions above its figures work like one with captions below.

    >>> from mmskin.pdf.layout import assemble_figures
    >>> figures = assemble_figures(page)          # page: mmskin.pdf.page.Page
    >>> [(f.caption.label, len(f.atoms)) for f in figures]
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from .captions import Caption, find_captions
from .page import (
    Box,
    Graphic,
    Page,
    TextLine,
    area,
    connected_groups,
    gap,
    h_overlap,
    inter_area,
    union,
    v_overlap,
)

DIRECTIONS = ("up", "down", "left", "right")  # where the figure lies relative to its caption
_DIR_PRIOR = {"up": 0.0, "down": 0.12, "left": 0.22, "right": 0.22}


@dataclass(frozen=True)
class Atom:
    """A picture element that can belong to at most one figure (a raster, merged tiles, a vector cluster…)."""

    bbox: Box
    graphics: tuple[Graphic, ...]

    @property
    def is_raster(self) -> bool:
        return all(g.kind in ("image", "region") for g in self.graphics)


@dataclass(frozen=True)
class Proposal:
    caption: int
    direction: str
    atoms: frozenset[int]
    score: float


@dataclass(frozen=True)
class Figure:
    caption: Caption
    atoms: tuple[Atom, ...]  # in reading order
    bbox: Box
    direction: str
    extra_text: tuple[TextLine, ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.atoms:
            raise ValueError("a figure needs at least one picture element")


# a panel's own short caption printed under it: "(b) Number of examples", "a) loss function"
_SUBCAPTION = re.compile(r"^\(?[A-Za-z][0-9]?\)\s")


_MARKER = re.compile(r"^\(?[A-Za-z]\)$")


def _reads_as_figure_text(text: str) -> bool:
    """Text of a figure that OCR or the PDF gives as one long line: a row of axis ticks ("0 100000 200000"), the
    same category names under each panel ("Benign Malignant Benign Malignant"), or the panels' own captions side
    by side ("(a) Actual label (b) Actual label")."""
    words = [w.lower() for w in text.split() if sum(c.isalpha() for c in w) >= 2]
    if len(words) < 4:
        return True
    if sum(bool(_MARKER.match(t)) for t in text.split()) >= 2:
        return True
    return len(set(words)) <= 0.5 * len(words)


def _is_blocking(ln: TextLine, page_w: float) -> bool:
    """Body text that a figure cannot grow across (short labels, panel letters, a panel's own short caption and
    other figure text do not block)."""
    w = ln.bbox[2] - ln.bbox[0]
    if ln.words < 4 or w < 0.12 * page_w:
        return False
    if _SUBCAPTION.match(ln.text) and ln.words <= 8 and w < 0.4 * page_w:
        return False
    return not _reads_as_figure_text(ln.text)


def build_atoms(page: Page, captions: list[Caption]) -> tuple[list[Atom], list[TextLine], list[TextLine]]:
    """Filter and merge the page's graphics into atoms; split non-caption lines into figure text and body."""
    pw, ph = page.width, page.height
    cap_lines = {id(ln) for c in captions for ln in c.lines}
    others = [ln for ln in page.lines if id(ln) not in cap_lines]
    kept: list[Graphic] = []
    minor: list[Graphic] = []  # thin or small pieces: part of a figure only when they touch one
    for g in page.graphics:
        w, h = g.bbox[2] - g.bbox[0], g.bbox[3] - g.bbox[1]
        if g.kind == "vector":
            if w < 20 or h < 20:
                if min(w, h) >= 4 and max(w, h) >= 20:
                    minor.append(g)  # a trace or a strip of a plot; a rule or a bullet is thinner or smaller
                continue
            edge = min(g.bbox[1], ph - g.bbox[3])
            if w > 0.85 * pw and h < 0.12 * ph and edge < 0.06 * ph:
                continue  # a running-head or footer band across the page
            inside = [ln for ln in others if inter_area(ln.bbox, g.bbox) >= 0.6 * max(area(ln.bbox), 1e-6)]
            para = [ln for ln in inside if ln.words >= 6 and (ln.bbox[2] - ln.bbox[0]) >= 0.4 * w]
            holds_caption = any(inter_area(c.bbox, g.bbox) >= 0.5 * area(c.bbox) for c in captions)
            if holds_caption or (len(para) >= 2 and len(g.parts) <= 12):
                continue  # a frame or shading around text (a "key points" box), not a figure
        else:
            if w < 12 or h < 12 or w * h < 0.0015 * pw * ph:
                if min(w, h) >= 4 and max(w, h) >= 24 and not in_page_margin(g.bbox, pw, ph):
                    minor.append(g)  # a thin raster strip (a row of traces), kept if it touches a figure
                continue  # icons, bullets, decorations
            if in_page_margin(g.bbox, pw, ph):
                continue  # a running-head logo, a journal badge in the footer, a thumb-index tab
            if page.scanned is False and w * h > 0.85 * pw * ph:
                continue  # a full-page background raster behind a text layer
        kept.append(g)
    kept, frame_of = _clip_to_frames(kept)

    def overlapping():
        # graphics that overlap merge (a photo and the vector callouts drawn across its edge)
        for i in range(len(kept)):
            for j in range(i + 1, len(kept)):
                a, b = kept[i].bbox, kept[j].bbox
                fi, fj = frame_of[i], frame_of[j]
                if fi is not None and fj is not None and fi != fj:
                    continue  # two framed figures never merge, however their pieces spill
                if kept[i].kind != "vector" and kept[j].kind != "vector":
                    # separate rasters stay separate atoms (panels) unless one sits on top of the other
                    if inter_area(a, b) >= 0.5 * min(area(a), area(b)):
                        yield i, j
                elif inter_area(a, b) > 0 or gap(a, b) <= 1.0:
                    yield i, j

    groups = connected_groups(len(kept), overlapping())
    atoms = _attach_minor(
        [Atom(union([kept[i].bbox for i in g]), tuple(kept[i] for i in g)) for g in groups], minor
    )
    atoms.sort(key=lambda a: (round(a.bbox[1], 1), round(a.bbox[0], 1)))
    inside = {
        id(ln)
        for ln in others
        if any(inter_area(ln.bbox, a.bbox) >= 0.5 * max(area(ln.bbox), 1e-6) for a in atoms)
    }
    body = [ln for ln in others if id(ln) not in inside and _is_blocking(ln, pw)]
    bid = {id(ln) for ln in body}
    fig_text = [ln for ln in others if id(ln) not in bid]  # labels, panel letters, short headings
    return atoms, fig_text, body


def _attach_minor(atoms: list[Atom], minor: list[Graphic], reach: float = 6.0) -> list[Atom]:
    """Thin or small pieces (the traces of a plot, a strip of a montage) joined to the atom they touch or lie
    within ``reach`` of, repeatedly, so a column of stacked traces follows the figure down; the rest are left
    out (rules, bullets, decorations)."""
    atoms = list(atoms)
    left = sorted(minor, key=lambda g: (g.bbox[1], g.bbox[0]))
    changed = True
    while changed and left and atoms:
        changed = False
        for g in list(left):
            near = [i for i, a in enumerate(atoms) if gap(g.bbox, a.bbox) <= reach]
            if len(near) == 1:
                a = atoms[near[0]]
                atoms[near[0]] = Atom(union([a.bbox, g.bbox]), a.graphics + (g,))
                left.remove(g)
                changed = True
    return atoms


def in_page_margin(b: Box, pw: float, ph: float, band: float = 0.08) -> bool:
    """A small picture lying wholly in the outer band of the page (running heads, footers, side tabs)."""
    w, h = b[2] - b[0], b[3] - b[1]
    if (b[3] <= band * ph or b[1] >= (1 - band) * ph) and h < 0.06 * ph:
        return True
    return (b[2] <= band * pw or b[0] >= (1 - band) * pw) and w < 0.06 * pw


def _is_frame(g: Graphic) -> bool:
    """A vector cluster that is an outline around a figure: one part spans (nearly) the whole cluster."""
    w, h = g.bbox[2] - g.bbox[0], g.bbox[3] - g.bbox[1]
    if g.kind != "vector" or w < 60 or h < 60:
        return False
    return any(area(p) >= 0.9 * area(g.bbox) for p in g.parts)


def _clip_to_frames(graphics: list[Graphic]) -> tuple[list[Graphic], list[int | None]]:
    """Clip each raster to the smallest frame that holds its centre; return graphics and their frame index."""
    frames = [i for i, g in enumerate(graphics) if _is_frame(g)]
    out: list[Graphic] = []
    frame_of: list[int | None] = []
    for i, g in enumerate(graphics):
        if i in frames:
            out.append(g)
            frame_of.append(i)
            continue
        cx, cy = (g.bbox[0] + g.bbox[2]) / 2, (g.bbox[1] + g.bbox[3]) / 2
        holders = [
            f
            for f in frames
            if graphics[f].bbox[0] <= cx <= graphics[f].bbox[2]
            and graphics[f].bbox[1] <= cy <= graphics[f].bbox[3]
            and area(graphics[f].bbox) > area(g.bbox)
        ]
        if not holders:
            out.append(g)
            frame_of.append(None)
            continue
        f = min(holders, key=lambda k: area(graphics[k].bbox))
        fb = graphics[f].bbox
        clipped = (max(g.bbox[0], fb[0]), max(g.bbox[1], fb[1]), min(g.bbox[2], fb[2]), min(g.bbox[3], fb[3]))
        if clipped != g.bbox and area(clipped) > 0:
            g = replace(g, bbox=clipped, native=False)
        out.append(g)
        frame_of.append(f)
    return out, frame_of


def _corridor_blocked(a: Box, b: Box, vertical: bool, blockers: list[Box]) -> bool:
    """Is there blocking text in the strip between boxes a and b?"""
    if vertical:
        top, bot = (a, b) if a[3] <= b[1] + 2 else (b, a)
        x0, x1 = max(a[0], b[0]), min(a[2], b[2])
        if x1 - x0 < 2:  # no common column: use the narrower box's span
            nar = a if a[2] - a[0] < b[2] - b[0] else b
            x0, x1 = nar[0], nar[2]
        strip = (x0 + 1, top[3] - 1, x1 - 1, bot[1] + 1)
    else:
        lef, rig = (a, b) if a[2] <= b[0] + 2 else (b, a)
        y0, y1 = max(a[1], b[1]), min(a[3], b[3])
        if y1 - y0 < 2:
            nar = a if a[3] - a[1] < b[3] - b[1] else b
            y0, y1 = nar[1], nar[3]
        strip = (lef[2] - 1, y0 + 1, rig[0] + 1, y1 - 1)
    if strip[2] <= strip[0] or strip[3] <= strip[1]:
        return False
    return any(inter_area(bl, strip) > 0.5 for bl in blockers)


def _side_ok(atom: Box, cap: Box, direction: str, line_h: float = 10.0) -> bool:
    # a picture may run a little into its caption's first line (screenshots with a margin, bleed)
    tol = max(3.0, 0.8 * line_h)
    # or hold the caption in its own bottom (top) margin: a caption typeset over a screenshot's white border
    if direction == "up":
        return (atom[3] <= cap[1] + tol or atom[3] <= cap[3] + 1) and atom[1] < cap[1] - tol
    if direction == "down":
        return (atom[1] >= cap[3] - tol or atom[1] >= cap[1] - 1) and atom[3] > cap[3] + tol
    if direction == "left":
        return atom[2] <= cap[0] + tol
    return atom[0] >= cap[2] - tol


def _line_h(cap: Caption) -> float:
    b = cap.lines[0].bbox
    return b[3] - b[1]


def _aligned(atom: Box, cap: Box, direction: str) -> float:
    """How well the atom lines up with the caption across the gap (0..1)."""
    if direction in ("up", "down"):
        ov = h_overlap(atom, cap)
        return ov / max(1e-6, min(atom[2] - atom[0], cap[2] - cap[0]))
    ov = v_overlap(atom, cap)
    return ov / max(1e-6, min(atom[3] - atom[1], cap[3] - cap[1]))


def _distance(atom: Box, cap: Box, direction: str) -> float:
    if direction == "up":
        return max(0.0, cap[1] - atom[3])
    if direction == "down":
        return max(0.0, atom[1] - cap[3])
    if direction == "left":
        return max(0.0, cap[0] - atom[2])
    return max(0.0, atom[0] - cap[2])


def propose(
    ci: int, cap: Caption, atoms: list[Atom], blockers: list[Box], page: Page, max_props: int = 4
) -> list[Proposal]:
    """Candidate figures of one caption: per direction, the nearest aligned atom and its growth prefixes."""
    pw, ph = page.width, page.height
    other_caps = [b for b in blockers if b != cap.bbox]
    out: list[Proposal] = []
    for d in DIRECTIONS:
        vertical = d in ("up", "down")
        seeds = []
        for k, a in enumerate(atoms):
            if not _side_ok(a.bbox, cap.bbox, d, _line_h(cap)):
                continue
            al = _aligned(a.bbox, cap.bbox, d)
            if vertical:
                # a left-aligned caption under a centred figure overlaps it little or not at all; the
                # alignment penalty and the competition between captions decide those cases
                hgap = max(a.bbox[0], cap.bbox[0]) - min(a.bbox[2], cap.bbox[2])
                if al <= 0 and hgap > min(30.0, 0.25 * (a.bbox[2] - a.bbox[0])):
                    continue
            elif al < 0.5:
                continue
            dist = _distance(a.bbox, cap.bbox, d)
            limit = 0.45 * ph if vertical else 0.35 * pw
            if dist > limit or _corridor_blocked(a.bbox, cap.bbox, vertical, other_caps):
                continue
            seeds.append((round(dist / 3.0), -al, k))
        if not seeds:
            continue
        seeds.sort()
        # grow from the nearest seed and from the best-aligned ones: the nearest piece may belong to the next
        # column's figure, and the matching must be able to choose
        starts = [seeds[0]] + sorted(seeds[1:], key=lambda t: (t[1], t[0]))[:2]
        seen: set[frozenset[int]] = set()
        for _, neg_al, k0 in starts:
            for mem, pen in _grow(k0, cap, atoms, d, other_caps, ph, max_props):
                key = frozenset(mem)
                if key in seen:
                    continue
                seen.add(key)
                dist0 = _distance(atoms[k0].bbox, cap.bbox, d)
                dist_pen = 0.35 * min(1.0, dist0 / (0.15 * (ph if vertical else pw)))
                align_pen = 0.25 * (1.0 + neg_al)
                score = 1.0 + 0.5 * (len(mem) - 1) - dist_pen - align_pen - pen - _DIR_PRIOR[d]
                out.append(Proposal(ci, d, key, score))
    out.sort(key=lambda p: -p.score)
    return out


def _grow(
    k0: int, cap: Caption, atoms: list[Atom], d: str, other_caps: list[Box], ph: float, max_props: int
) -> list[tuple[list[int], float]]:
    """Growth prefixes from seed atom k0: the seed, then the nearest neighbouring atom, and so on."""
    vertical = d in ("up", "down")
    members = [k0]
    fig = atoms[k0].bbox
    grow_gap = max(14.0, 0.045 * ph)
    steps: list[tuple[list[int], float]] = [(list(members), 0.0)]
    growth_pen = 0.0
    while True:
        best = None
        for k, a in enumerate(atoms):
            if k in members or not _side_ok(a.bbox, cap.bbox, d, _line_h(cap)):
                continue
            g = gap(a.bbox, fig)
            if g > grow_gap:
                continue
            v = v_overlap(a.bbox, fig) > 0 and h_overlap(a.bbox, fig) <= 0
            if _corridor_blocked(a.bbox, fig, not v, other_caps):
                continue
            # stay in the caption's column: the atom must line up with the figure or the caption
            span = union([fig, cap.bbox]) if vertical else fig
            if vertical and h_overlap(a.bbox, span) < 0.3 * (a.bbox[2] - a.bbox[0]) and g > 8:
                continue
            if best is None or g < best[0]:
                best = (g, k)
        if best is None:
            break
        g, k = best
        members.append(k)
        fig = union([fig, atoms[k].bbox])
        growth_pen += 0.02 * g / 10.0
        steps.append((list(members), growth_pen))
    # a narrow caption under a figure twice its width may belong to just a part of it: keep the prefixes
    return steps[-max_props:] if len(steps) > max_props else steps


def solve(props: list[list[Proposal]], node_limit: int = 200_000) -> list[Proposal | None]:
    """Pick at most one proposal per caption, atoms disjoint, maximising the total score (branch and bound)."""
    n = len(props)
    best_total = -1.0
    best: list[Proposal | None] = [None] * n
    ub = [max((p.score for p in ps), default=0.0) for ps in props]
    suffix = [0.0] * (n + 1)
    for i in range(n - 1, -1, -1):
        suffix[i] = suffix[i + 1] + max(0.0, ub[i])
    nodes = 0
    cur: list[Proposal | None] = [None] * n

    def dfs(i: int, used: frozenset[int], total: float) -> None:
        nonlocal best_total, best, nodes
        nodes += 1
        if total + suffix[i] <= best_total + 1e-9 or nodes > node_limit:
            return
        if i == n:
            best_total, best = total, list(cur)
            return
        for p in props[i]:
            if p.score > 0 and not (p.atoms & used):
                cur[i] = p
                dfs(i + 1, used | p.atoms, total + p.score)
        cur[i] = None
        dfs(i + 1, used, total)

    dfs(0, frozenset(), 0.0)
    if nodes > node_limit and best_total < 0:  # fall back to greedy
        used: set[int] = set()
        for i in sorted(range(n), key=lambda i: -ub[i]):
            for p in props[i]:
                if p.score > 0 and not (p.atoms & used):
                    best[i] = p
                    used |= p.atoms
                    break
    return best


def reading_order(boxes: list[Box]) -> list[int]:
    """Row-major order: boxes whose vertical extents overlap by half form a row, rows top to bottom."""
    idx = sorted(range(len(boxes)), key=lambda i: (boxes[i][1], boxes[i][0]))
    rows: list[list[int]] = []
    for i in idx:
        b = boxes[i]
        for row in rows:
            r = union([boxes[j] for j in row])
            if v_overlap(b, r) >= 0.5 * min(b[3] - b[1], r[3] - r[1]):
                row.append(i)
                break
        else:
            rows.append([i])
    rows.sort(key=lambda r: min(boxes[j][1] for j in r))
    return [i for row in rows for i in sorted(row, key=lambda j: boxes[j][0])]


def assemble(page: Page, leftovers: bool = False) -> tuple[list[Figure], list[Atom]]:
    """The captioned figures of a page (in caption reading order) and, when ``leftovers`` is asked for, the
    pictures no caption claimed that are large enough to be content (not icons, logos or running-head art)."""
    caps = find_captions(page.lines)
    if not caps and not leftovers:
        return [], []
    atoms, fig_text, body = build_atoms(page, caps)
    figures = _match(page, caps, atoms, fig_text, body) if caps and atoms else []
    return figures, (_unclaimed(page, atoms, figures) if leftovers else [])


def assemble_figures(page: Page) -> list[Figure]:
    """All captioned figures of a page, in caption reading order."""
    return assemble(page)[0]


def _match(
    page: Page, caps: list[Caption], atoms: list[Atom], fig_text: list[TextLine], body: list[TextLine]
) -> list[Figure]:
    blockers = [ln.bbox for ln in body] + [c.bbox for c in caps]
    props = [propose(i, c, atoms, blockers, page) for i, c in enumerate(caps)]
    chosen = solve(props)
    figures: list[Figure] = []
    for ci, p in enumerate(chosen):
        if p is None:
            continue
        members = [atoms[k] for k in sorted(p.atoms)]
        order = reading_order([a.bbox for a in members])
        members = [members[i] for i in order]
        bb = union([a.bbox for a in members])
        extra: list[TextLine] = []
        if any(not a.is_raster for a in members):
            # labels of a vector drawing belong to its region (axis titles, callouts)
            grown = (bb[0] - 4, bb[1] - 4, bb[2] + 4, bb[3] + 4)
            extra = [ln for ln in fig_text if inter_area(ln.bbox, grown) > 0.5 * area(ln.bbox)]
            if extra:
                bb = union([bb] + [ln.bbox for ln in extra])
        figures.append(Figure(caps[ci], tuple(members), bb, p.direction, tuple(extra)))
    return figures


def _unclaimed(page: Page, atoms: list[Atom], figures: list[Figure]) -> list[Atom]:
    claimed = [a.bbox for f in figures for a in f.atoms]
    out = []
    for a in atoms:
        if any(inter_area(a.bbox, c) > 0.5 * area(a.bbox) for c in claimed) or not a.is_raster:
            continue
        w, h = a.bbox[2] - a.bbox[0], a.bbox[3] - a.bbox[1]
        in_margin = a.bbox[3] < 0.08 * page.height or a.bbox[1] > 0.92 * page.height
        if w >= 0.15 * page.width and h >= 0.08 * page.height and not in_margin:
            out.append(a)
    return out
