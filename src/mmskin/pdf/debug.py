"""Debug drawings: a page PNG with caption boxes (blue), picture atoms (green), chosen figures (red) and a line
from each caption to its figure, so a wrong assignment can be seen at a glance.

    mmskin build book.pdf --out data/x --debug-pages debug/
"""

from __future__ import annotations

from pathlib import Path

from .captions import find_captions
from .layout import Figure, build_atoms
from .page import Page
from .storage import capped_dpi

DPI = 90


def draw_page(pg, page: Page, figures: list[Figure], path: Path) -> None:
    from PIL import Image, ImageDraw

    caps = find_captions(page.lines)
    if not caps and not page.graphics:
        return
    r = pg.rect
    dpi = max(1, int(capped_dpi((r.x0, r.y0, r.x1, r.y1), DPI)))  # a poster-sized page stays small
    pix = pg.get_pixmap(dpi=dpi, alpha=False)
    img = Image.frombytes("RGB", (pix.width, pix.height), pix.samples)
    s = dpi / 72.0
    d = ImageDraw.Draw(img)

    def box(b, color, w=2):
        d.rectangle([b[0] * s, b[1] * s, b[2] * s, b[3] * s], outline=color, width=w)

    atoms, _, body = build_atoms(page, caps)
    for ln in body:
        box(ln.bbox, (200, 200, 200), 1)
    for a in atoms:
        box(a.bbox, (0, 170, 0), 2)
    for c in caps:
        box(c.bbox, (0, 90, 255), 2)
    for f in figures:
        box(f.bbox, (230, 0, 0), 3)
        cb, fb = f.caption.bbox, f.bbox
        d.line(
            [
                ((cb[0] + cb[2]) / 2 * s, (cb[1] + cb[3]) / 2 * s),
                ((fb[0] + fb[2]) / 2 * s, (fb[1] + fb[3]) / 2 * s),
            ],
            fill=(230, 0, 0),
            width=2,
        )
        d.text((fb[0] * s + 3, fb[1] * s + 3), f"{f.caption.label} [{f.direction}]", fill=(230, 0, 0))
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
