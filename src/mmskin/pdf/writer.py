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
from .captions import split_panels
from .layout import Figure
from .page import Box, Page
from .panels import split_composite
from .storage import crop_scan, native_image, pil_to_bytes, render_region, store_image

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

    def __init__(self, root: Path, doc, file_name: str, file_sha: str):
        self.root, self.doc, self.file_name, self.file_sha = root, doc, file_name, file_sha

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
                img = render_region(pg, bbox, _render_dpi(graphics))
                how = how or "render"
        data, ext = pil_to_bytes(img, photo)
        return store_image(self.root, data, ext), img.size, how

    def write_figure(self, pg, page: Page, fig: Figure, scan=None) -> list[dict[str, Any]]:
        """scan: (page image, pixels per point) for scanned pages."""
        sp = split_panels(fig.caption.text)
        letters = [p.letter for p in sp.panels]
        atoms = list(fig.atoms)
        records: list[dict[str, Any]] = []

        def emit(
            bbox: Box, panel: str | None, img=None, native_xref: int = 0, photo: bool = True, how: str = ""
        ) -> None:
            caption = sp.caption_for(panel) if panel and letters else fig.caption.text
            graphics = [g for a in atoms for g in a.graphics]
            rel, size, how = self.store_pixels(pg, bbox, graphics, scan, native_xref, img, photo, how)
            cap = fig.caption
            position = _POSITION[fig.direction]
            records.append(
                self._record(page.number, bbox, panel, cap.label, cap.text, caption, position, how, rel, size)
            )

        def emit_atom(atom, panel: str | None) -> None:
            photo = all(x.kind != "vector" for x in atom.graphics)
            emit(atom.bbox, panel, native_xref=_native_xref(atom, scan), photo=photo)

        if len(letters) >= 2 and len(atoms) == 1:
            cells = self._composite_cells(pg, atoms[0], len(letters), scan)
            if cells is not None:
                for letter, (bbox, img) in zip(letters, cells):
                    emit(bbox, letter, img=img, how="crop")
                return records
            if len(atoms[0].graphics) == 1:
                emit_atom(atoms[0], None)
            else:
                emit(fig.bbox, None)
            return records
        if len(letters) >= 2 and len(atoms) == len(letters):
            for letter, atom in zip(letters, atoms):
                emit_atom(atom, letter)
            return records
        # a different number of picture pieces than panel markers: which pieces form which panel is unknown,
        # so the figure is kept whole rather than lettered wrongly
        if len(atoms) == 1 and fig.bbox == atoms[0].bbox:
            emit_atom(atoms[0], None)
        else:
            photo = all(g.kind != "vector" for a in atoms for g in a.graphics)
            emit(fig.bbox, None, photo=photo)
        return records

    def write_uncaptioned(self, pg, page: Page, atom, scan=None) -> dict[str, Any]:
        """A picture without a caption: stored like any figure, caption empty, flagged ``no_caption``."""
        rel, size, how = self.store_pixels(pg, atom.bbox, atom.graphics, scan, _native_xref(atom, scan))
        rec = self._record(page.number, atom.bbox, None, None, "", "", None, how, rel, size)
        rec["flags"] = ["no_caption"]
        return rec

    def _composite_cells(self, pg, atom, k: int, scan):
        """Panels of a single raster as [(page bbox, PIL crop)], or None when no clean k-way split exists."""
        from PIL import Image

        if scan is not None:
            img = crop_scan(scan, atom.bbox)
        elif xref := _native_xref(atom, scan):
            data, _, img = native_image(self.doc, xref)
            if img is None:  # stored bytes passed through untouched: decode them once here
                img = Image.open(io.BytesIO(data))
                img.load()
        else:
            img = render_region(pg, atom.bbox, _render_dpi(atom.graphics))
        arr = np.asarray(img.convert("RGB"))
        cells = split_composite(arr, k)
        if cells is None:
            return None
        x0, y0, x1, y1 = atom.bbox
        sx, sy = (x1 - x0) / arr.shape[1], (y1 - y0) / arr.shape[0]
        out = []
        for c in cells:
            bbox = (x0 + c[0] * sx, y0 + c[1] * sy, x0 + c[2] * sx, y0 + c[3] * sy)
            out.append((bbox, img.crop(c)))
        return out
