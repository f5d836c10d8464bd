"""Page writer: the figures of one page become stored images and records (one per figure, or per panel).

>>> writer = PageWriter(Path("data/derm"), doc, "atlas.pdf", sha256)
>>> records = writer.write_figure(pg, page, figure)        # figure: mmskin.pdf.layout.Figure
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from ..records import empty_record_fields, record_id
from ..stage import Problem, reason_of
from .layout import Figure
from .markers import split_panels
from .page import MAX_PIXELS, Box, Page
from .panels import split_composite
from .storage import capped_dpi, crop_scan, native_image, pil_to_bytes, render_region, store_image
from .subfigures import Piece, Plan, plan_panels

MIN_RENDER_DPI = 200
MAX_RENDER_DPI = 300


_POSITION = {"up": "below", "down": "above", "left": "right", "right": "left"}  # caption relative to figure


def _render_dpi(fig_graphics) -> float:
    """Rasters keep their native resolution (capped); vector drawings need no more than the minimum."""
    dpi = max((g.dpi for g in fig_graphics if g.kind != "vector"), default=0.0)
    return float(min(MAX_RENDER_DPI, max(MIN_RENDER_DPI, dpi)))


def _native_xref(atom, scan) -> int:
    """The xref to store at native resolution: one unclipped raster on a born-digital page, else 0."""
    g = atom.graphics
    return g[0].xrefs[0] if len(g) == 1 and g[0].native and scan is None else 0


class PageWriter:
    """Turns the figures of one page into stored images and records."""

    def __init__(
        self,
        root: Path,
        doc,
        file_name: str,
        file_sha: str,
        position_panels: bool = False,
        max_pixels: int = MAX_PIXELS,
    ):
        self.root, self.doc, self.file_name, self.file_sha = root, doc, file_name, file_sha
        self.position_panels, self.max_pixels = position_panels, max_pixels
        self.notes: list[
            Problem
        ] = []  # what the user should know that is not a failure (pictures over the cap)
        self._noted: set[tuple] = set()
        self._shown: tuple[Any, Any] | None = None  # (page, its display list) of the page being written

    def render(self, pg, bbox: Box, dpi: float):
        """A region of ``pg`` as shown (capped at ``max_pixels``); the page's display list is made once for all
        its regions."""
        if self._shown is None or self._shown[0] is not pg:
            self._shown = (pg, pg.get_displaylist())
        return render_region(self._shown[1], bbox, dpi, self.max_pixels)

    def _record(
        self,
        page_no: int,
        bbox: Box,
        panel: str | None,
        label: str | None,
        caption_raw: str,
        caption: str,
        position: str | None,
        how: str,
        rel: str,
        size: tuple[int, int],
    ) -> dict[str, Any]:
        return {
            "id": record_id(self.file_sha, page_no, bbox, panel),
            "image": rel,
            "width": int(size[0]),
            "height": int(size[1]),
            "source": {
                "file": self.file_name,
                "sha256": self.file_sha,
                "page": page_no,
                "bbox": [round(float(v), 2) for v in bbox],
            },
            "figure_label": label,
            "panel": panel,
            "caption_raw": caption_raw,
            "caption": caption,
            "caption_position": position,
            "extraction": how,
            **empty_record_fields(),
        }

    def store_pixels(
        self,
        pg,
        bbox: Box,
        graphics,
        scan=None,
        native_xref: int = 0,
        img=None,
        photo: bool = True,
        how: str = "",
    ) -> tuple[str, tuple[int, int], str]:
        """Store one picture and return (relative path, pixel size, how it was obtained).

        Native embedded bytes when ``native_xref`` is given, else ``img``, else a crop of the scanned page image,
        else a render of the page region.
        """
        if native_xref:
            data, ext, pil = native_image(self.doc, native_xref)
            if pil is None:
                from PIL import Image

                with Image.open(io.BytesIO(data)) as im:
                    size = im.size
            else:
                size = pil.size
            return store_image(self.root, data, ext), size, how or "native"
        if img is None:
            if scan is not None:
                img = crop_scan(scan, bbox)
                how = how or "scan"
            else:
                img = self.render(pg, bbox, _render_dpi(graphics))
                how = how or "render"
                self._note_over_cap(pg, graphics, img.size)
        data, ext = pil_to_bytes(img, photo)
        return store_image(self.root, data, ext), img.size, how

    def _note_over_cap(self, pg, graphics, size: tuple[int, int]) -> None:
        """One note per picture over the pixel cap that was rendered smaller instead of decoded whole."""
        for g in graphics:
            w, h = g.pixel_size
            key = (pg.number, g.bbox)
            if g.kind == "image" and w * h > self.max_pixels and key not in self._noted:
                self._noted.add(key)
                self.notes.append(
                    Problem(
                        f"{self.file_name} page {pg.number + 1}",
                        f"a {w}x{h} picture ({w * h / 1e6:.0f} MP) is over the {self.max_pixels / 1e6:g} MP cap "
                        f"(--max-pixels): stored rendered at {size[0]}x{size[1]}",
                    )
                )

    def write_figure(self, pg, page: Page, fig: Figure, scan=None) -> list[dict[str, Any]]:
        """One record per panel the caption names and the figure holds, else one for the whole figure.

        scan: (page image, pixels per point) for scanned pages."""
        split = split_panels(fig.caption.text, positions=self.position_panels)
        pixels = _Pixels(self, pg, scan)
        try:
            plan = plan_panels(fig, split, page, pixels)
        except Exception as e:  # a panel split that fails never loses the figure
            plan = Plan(note=f"panel split failed ({type(e).__name__}: {reason_of(e)})")
        cap = fig.caption
        position = _POSITION[fig.direction]
        records = []
        for p in plan.panels:
            rel, size, how = self._store_piece(pg, p.piece, scan, pixels)
            caption = split.caption_for(p.name)
            records.append(
                self._record(
                    page.number, p.bbox, p.name, cap.label, cap.text, caption, position, how, rel, size
                )
            )
        if records:
            return records
        atoms = list(fig.atoms)
        if len(atoms) == 1 and fig.bbox == atoms[0].bbox:
            photo = all(x.kind != "vector" for x in atoms[0].graphics)
            rel, size, how = self.store_pixels(
                pg, fig.bbox, atoms[0].graphics, scan, _native_xref(atoms[0], scan), photo=photo
            )
        else:
            photo = all(g.kind != "vector" for a in atoms for g in a.graphics)
            rel, size, how = self.store_pixels(
                pg, fig.bbox, [g for a in atoms for g in a.graphics], scan, photo=photo
            )
        rec = self._record(
            page.number, fig.bbox, None, cap.label, cap.text, cap.text, position, how, rel, size
        )
        if plan.note:
            rec["panel_note"] = plan.note
            rec["flags"] = ["unsplit_panels"]
        return [rec]

    def _store_piece(self, pg, piece: Piece, scan, pixels: _Pixels) -> tuple[str, tuple[int, int], str]:
        if piece.cell is not None:
            img = pixels.atom_image(piece.atoms[0]).crop(piece.cell)
            return self.store_pixels(pg, piece.bbox, [], scan, img=img, how="crop")
        graphics = [g for a in piece.atoms for g in a.graphics]
        photo = all(g.kind != "vector" for g in graphics)
        xref = _native_xref(piece.atoms[0], scan) if len(piece.atoms) == 1 else 0
        return self.store_pixels(pg, piece.bbox, graphics, scan, xref, photo=photo)

    def write_uncaptioned(self, pg, page: Page, atom, scan=None) -> dict[str, Any]:
        """A picture without a caption: stored like any figure, caption empty, flagged ``no_caption``."""
        rel, size, how = self.store_pixels(pg, atom.bbox, atom.graphics, scan, _native_xref(atom, scan))
        rec = self._record(page.number, atom.bbox, None, None, "", "", None, how, rel, size)
        rec["flags"] = ["no_caption"]
        return rec


class _Pixels:
    """Pixels of one page for the panel planner: atom images (decoded once), composite cells, OCR'd markers."""

    def __init__(self, writer: PageWriter, pg, scan):
        self.writer, self.pg, self.scan = writer, pg, scan
        self._images: dict[Box, Any] = {}

    def atom_image(self, atom):
        if atom.bbox not in self._images:
            self._images[atom.bbox] = self._load(atom)
        return self._images[atom.bbox]

    def _load(self, atom):
        from PIL import Image

        if self.scan is not None:
            return crop_scan(self.scan, atom.bbox)
        if xref := _native_xref(atom, self.scan):
            data, _, img = native_image(self.writer.doc, xref)
            if img is None:  # stored bytes passed through untouched: decode them once here
                img = Image.open(io.BytesIO(data))
                img.load()
            return img
        img = self.writer.render(self.pg, atom.bbox, _render_dpi(atom.graphics))
        self.writer._note_over_cap(self.pg, atom.graphics, img.size)
        return img

    def _cut(self, atom, cutter):
        """[(page bbox, pixel cell)] of the cells ``cutter`` finds in the atom's pixels, or None."""
        arr = np.asarray(self.atom_image(atom).convert("RGB"))
        cells = cutter(arr)
        if cells is None:
            return None
        x0, y0, x1, y1 = atom.bbox
        sx, sy = (x1 - x0) / arr.shape[1], (y1 - y0) / arr.shape[0]
        return [((x0 + c[0] * sx, y0 + c[1] * sy, x0 + c[2] * sx, y0 + c[3] * sy), c) for c in cells]

    def composite_cells(self, atom, k: int):
        """[(page bbox, pixel cell)] of a single raster cut into ``k`` panels, or None."""
        return self._cut(atom, lambda arr: split_composite(arr, k))

    def ocr_marks(self, region: Box, holes: list[Box], allowed: str):
        """Markers printed around the figure's pictures (``holes``: pictures and text, painted out first)."""
        from .pixelmarks import region_marks

        pad = 16.0
        r = (region[0] - pad, region[1] - pad, region[2] + pad, region[3] + pad)
        img, scale = self._region(r, 300)
        return region_marks(img, scale, (r[0], r[1]), holes, allowed)

    def _region(self, region: Box, dpi: int):
        if self.scan is not None:
            return crop_scan(self.scan, region), self.scan[1]
        dpi = max(1, int(capped_dpi(region, dpi, self.writer.max_pixels)))
        return self.writer.render(self.pg, region, dpi), dpi / 72

    def glyph_marks(self, region: Box, allowed: str, zones: list[Box] | None = None):
        """Letters printed on the figure's pictures (read from the page as shown, overlays included)."""
        from .pixelmarks import glyph_marks

        img, scale = self._region(region, 150)
        return glyph_marks(img, scale, (region[0], region[1]), allowed, zones)

    def composite_bands(self, atom, k: int):
        """[(page bbox, pixel cell)] of a single raster cut into ``k`` bands between its pieces, or None."""
        from .panels import leaf_bands

        return self._cut(atom, lambda arr: leaf_bands(arr, k))

    def composite_leaves(self, atom):
        """[(page bbox, pixel cell)] of every piece between the gutters of a single raster."""
        from .panels import split_leaves

        return self._cut(atom, split_leaves)
