"""Chunks: the unit of work and of resume. A chunk is a page range of one PDF, run in a worker process.

Each finished chunk is written atomically to ``DATASET/.build/<sha256>/<first page>.jsonl`` (a ``_chunk`` header
line, then its records) after its images, so a killed run loses at most the chunks in flight and a rerun skips
what is done. A chunk built with other settings (OCR mode, mmskin version, …) is redone.

    >>> opts = ChunkOptions(ocr="auto")
    >>> res = process_chunk("atlas.pdf", sha, 1, 8, "data/derm", opts)
    >>> save_chunk(Path("data/derm"), sha, 1, res, opts.config())
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..records import atomic_write_bytes, dumps
from ..stage import Problem, reason_of
from . import ocr as ocr_mod
from .captions import parse_label
from .layout import assemble
from .page import MAX_PIXELS, Page, read_page
from .writer import PageWriter


@dataclass(frozen=True)
class ChunkOptions:
    """The build settings a worker needs (picklable)."""

    ocr: str = "auto"
    keep_uncaptioned: bool = False
    position_panels: bool = False
    debug_dir: str | None = None
    max_pixels: int = MAX_PIXELS

    def config(self) -> dict[str, Any]:
        """Settings that change a chunk's records: a finished chunk built with other settings is redone."""
        return {
            "ocr": self.ocr,
            "keep_uncaptioned": self.keep_uncaptioned,
            "position_panels": self.position_panels,
            "max_pixels": self.max_pixels,
            "mmskin": __version__,
        }


@dataclass
class ChunkResult:
    records: list[dict[str, Any]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    pages: int = 0
    figures: int = 0
    ocr_pages: int = 0
    notes: list[Problem] = field(default_factory=list)  # not failures: pictures rendered under the pixel cap


def _is_page_scan(page: Page) -> bool:
    """One raster covering (nearly) the whole page under a text layer: a digitised book page."""
    pa = page.width * page.height
    return any(
        g.kind == "image" and (g.bbox[2] - g.bbox[0]) * (g.bbox[3] - g.bbox[1]) >= 0.85 * pa
        for g in page.graphics
    )


def _may_have_caption(lines) -> bool:
    """A line that opens with a figure label: without one, no figure can be assembled on the page."""
    return any(parse_label(ln.text) is not None for ln in lines)


def read_any_page(pg, pno: int, ocr: str, keep_uncaptioned: bool = False, max_pixels: int = MAX_PIXELS):
    """The page model of any page: born-digital, OCR'd (no text layer) or a page scan under a text layer.

    Returns (page, scan, ocr_used); ``scan`` is (page image, pixels per point) when pixels come from a scan.
    Vector drawings are read only where a figure can be: on pages with a caption (or all pages when
    uncaptioned pictures are kept)."""
    vectors = True if keep_uncaptioned else _may_have_caption
    page = read_page(pg, pno, with_vectors=vectors, max_pixels=max_pixels) if ocr != "always" else None
    # born-digital pages pay for one text pass: the OCR decision reuses the text just read
    chars = None if page is None else sum(len(ln.text) - ln.text.count(" ") for ln in page.lines)
    if ocr_mod.needs_ocr(pg, ocr, chars=chars):
        page, simg, scale = ocr_mod.read_scanned_page(pg, pno)
        return page, (simg, scale), True
    if _is_page_scan(page):
        page, simg, scale = ocr_mod.read_text_layer_scan(pg, page)
        return page, (simg, scale), False
    return page, None, False


def process_chunk(
    path: str, file_sha: str, first: int, last: int, out: str, opts: ChunkOptions
) -> ChunkResult:
    """Pages first..last (1-based, inclusive) of one PDF; runs in a worker process."""
    import pymupdf

    from . import debug as debug_mod

    res = ChunkResult()
    doc = pymupdf.open(path, filetype="pdf")
    name = Path(path).name
    writer = PageWriter(Path(out), doc, name, file_sha, opts.position_panels, opts.max_pixels)
    try:
        for pno in range(first, last + 1):
            res.pages += 1
            try:
                pg = doc[pno - 1]
                page, scan, used_ocr = read_any_page(
                    pg, pno, opts.ocr, opts.keep_uncaptioned, opts.max_pixels
                )
                res.ocr_pages += used_ocr
                figures, leftovers = assemble(page, leftovers=opts.keep_uncaptioned)
                for fig in figures:
                    res.records.extend(writer.write_figure(pg, page, fig, scan))
                res.figures += len(figures)
                for atom in leftovers:
                    res.records.append(writer.write_uncaptioned(pg, page, atom, scan))
                if opts.debug_dir:
                    debug_mod.draw_page(
                        pg, page, figures, Path(opts.debug_dir) / f"{Path(path).stem}-p{pno:04d}.png"
                    )
            except Exception as e:  # one bad page must not sink the book
                res.problems.append(Problem(f"{name} page {pno}", f"{type(e).__name__}: {reason_of(e)}"))
        pymupdf.TOOLS.store_shrink(100)
    finally:
        doc.close()
    res.notes = writer.notes
    return res


def chunk_path(root: Path, sha: str, first: int) -> Path:
    return root / ".build" / sha / f"{first:06d}.jsonl"


def chunk_done(p: Path, config: dict[str, Any]) -> bool:
    try:
        with open(p, encoding="utf-8") as f:
            return json.loads(f.readline())["_chunk"].get("config") == config
    except (OSError, ValueError, KeyError):
        return False


def save_chunk(root: Path, sha: str, first: int, res: ChunkResult, config: dict[str, Any]) -> None:
    meta = {
        "pages": res.pages,
        "figures": res.figures,
        "ocr_pages": res.ocr_pages,
        "errors": [p.to_dict() for p in res.problems],
        "config": config,
    }
    if res.notes:
        meta["notes"] = [p.to_dict() for p in res.notes]
    lines = [json.dumps({"_chunk": meta}, sort_keys=True)] + [dumps(r) for r in res.records]
    atomic_write_bytes(chunk_path(root, sha, first), ("\n".join(lines) + "\n").encode())


def _problem(d: dict[str, Any]) -> Problem:
    if "where" in d:
        return Problem(d["where"], d["reason"])
    return Problem(
        f"{d.get('file', '')} page {d.get('page', '?')}", d.get("reason", "")
    )  # written by mmskin < 0.2


def load_chunk(p: Path) -> ChunkResult | None:
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
        meta = json.loads(lines[0])["_chunk"]
        recs = [json.loads(x) for x in lines[1:] if x.strip()]
        problems = [_problem(d) for d in meta.get("errors", [])]
        notes = [_problem(d) for d in meta.get("notes", [])]
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return None
    return ChunkResult(recs, problems, meta["pages"], meta["figures"], meta.get("ocr_pages", 0), notes)


def load_manifest(root: Path) -> dict[str, Any]:
    """sha256 → {file, pages} of every PDF ever built into this dataset."""
    p = root / ".build" / "manifest.json"
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return {}


def save_manifest(root: Path, m: dict[str, Any]) -> None:
    atomic_write_bytes(root / ".build" / "manifest.json", json.dumps(m, sort_keys=True, indent=1).encode())
