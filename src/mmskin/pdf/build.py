"""`mmskin build`: PDFs → ``DATASET/records.jsonl`` + content-addressed ``DATASET/images/``.

Work is cut into (file, page range) chunks run in worker processes. Each finished chunk is written atomically to
``DATASET/.build/<sha256>/<first page>.jsonl`` after its images, so a killed run loses at most the chunks in
flight and a rerun skips what is done; ``records.jsonl`` is rewritten atomically from all finished files at the
end, sorted, so two runs give byte-identical output.

    mmskin build books/ --out data/derm --workers 2
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..records import atomic_write_bytes, dumps, empty_record_fields, record_id, sha256_file, write_jsonl
from . import ocr as ocr_mod
from .captions import split_panels
from .layout import Figure, assemble
from .page import Box, Page, read_page
from .panels import split_composite

CHUNK_PAGES = 8
MIN_RENDER_DPI = 200
MAX_RENDER_DPI = 300


@dataclass
class BuildConfig:
    out: Path
    workers: int = 0  # 0 = all cores
    ocr: str = "auto"  # auto | always | never
    debug_pages: Path | None = None
    chunk_pages: int = CHUNK_PAGES
    keep_uncaptioned: bool = False  # also emit large pictures no caption claimed, flagged "no_caption"


@dataclass
class ChunkResult:
    records: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    pages: int = 0
    figures: int = 0
    ocr_pages: int = 0


class InputError(Exception):
    """A file that cannot be read as a PDF; the message is the reason."""


def open_pdf(path: Path):
    import pymupdf

    if not path.is_file():
        raise InputError("not a file")
    if path.stat().st_size == 0:
        raise InputError("empty file")
    with open(path, "rb") as f:
        head = f.read(1024)
    if b"%PDF" not in head:
        raise InputError("not a PDF (no %PDF header)")
    try:
        doc = pymupdf.open(path, filetype="pdf")
    except Exception as e:  # pymupdf raises FileDataError / RuntimeError for broken files
        raise InputError(f"cannot open PDF ({str(e).splitlines()[0][:120]})") from None
    if doc.needs_pass:
        doc.close()
        raise InputError("encrypted PDF (password required)")
    if doc.is_repaired:
        with open(path, "rb") as f:
            f.seek(max(0, path.stat().st_size - 2048))
            tail = f.read()
        if b"%%EOF" not in tail:
            doc.close()
            raise InputError("truncated PDF (no %%EOF at the end; the file was cut short)")
    if doc.page_count == 0:
        doc.close()
        raise InputError("PDF has no pages (truncated or damaged)")
    return doc


# ----------------------------------------------------------------------------------------------------------
# image storage


def store_image(root: Path, data: bytes, ext: str) -> str:
    digest = hashlib.sha256(data).hexdigest()
    rel = f"images/{digest[:2]}/{digest}.{ext}"
    full = root / rel
    if not full.exists():
        atomic_write_bytes(full, data)
    return rel


def _pil_to_bytes(img, photo: bool) -> tuple[bytes, str]:
    buf = io.BytesIO()
    if img.mode not in ("RGB", "L"):
        img = img.convert("RGB")
    if photo:
        img.save(buf, format="JPEG", quality=92, optimize=False)
        return buf.getvalue(), "jpg"
    img.save(buf, format="PNG", compress_level=1)  # fast; level 6 saves ~15 % disk at 4x the time
    return buf.getvalue(), "png"


def native_image(doc, xref: int):
    """(bytes, ext, PIL image or None) of an embedded image at its native resolution, as RGB/grey."""
    import pymupdf
    from PIL import Image

    filt = doc.xref_get_key(xref, "Filter")[1]
    smask = (
        int(doc.xref_get_key(xref, "SMask")[1].split()[0] or 0)
        if doc.xref_get_key(xref, "SMask")[0] == "xref"
        else 0
    )
    ext = "jpeg" if "DCTDecode" in filt else ("jpx" if "JPXDecode" in filt else "")
    if ext == "jpeg" and not smask:
        info = doc.extract_image(xref)  # the stored JPEG bytes, untouched
        if info.get("ext") in ("jpeg", "jpg") and info.get("colorspace", 0) in (1, 3):
            return info["image"], "jpg", None
    # anything else is decoded once and written by PIL (PyMuPDF's own PNG writer is several times slower)
    pix = pymupdf.Pixmap(doc, xref)
    if pix.colorspace is None:
        # a stencil mask (/ImageMask, often CCITT fax): alpha only; PyMuPDF renders it as a grey PNG
        info = doc.extract_image(xref)
        return info["image"], info["ext"], None
    if smask:
        try:
            pix = pymupdf.Pixmap(pix, pymupdf.Pixmap(doc, smask))
        except Exception:
            pass  # a broken mask: keep the colour image
    if pix.colorspace is not None and pix.colorspace.n not in (1, 3):
        pix = pymupdf.Pixmap(pymupdf.csRGB, pix)
    mode = {1: "L", 3: "RGB"}.get(pix.n - pix.alpha, "RGB")
    img = Image.frombytes(mode + ("A" if pix.alpha else ""), (pix.width, pix.height), pix.samples)
    if pix.alpha:  # flatten transparency onto white, as the page shows it
        bg = Image.new(mode, img.size, 255 if mode == "L" else (255, 255, 255))
        bg.paste(img.convert(mode), mask=img.getchannel("A"))
        img = bg
    data, ext = _pil_to_bytes(img, photo=ext in ("jpeg", "jpg", "jpx"))
    return data, ext, img


def render_region(pg, bbox: Box, dpi: float):
    import pymupdf
    from PIL import Image

    pix = pg.get_pixmap(clip=pymupdf.Rect(bbox), dpi=int(dpi), alpha=False)
    mode = "L" if pix.n == 1 else "RGB"
    return Image.frombytes(mode, (pix.width, pix.height), pix.samples)


# ----------------------------------------------------------------------------------------------------------
# figure → outputs


_POSITION = {"up": "below", "down": "above", "left": "right", "right": "left"}  # caption relative to figure


def _render_dpi(fig_graphics) -> float:
    """Rasters keep their native resolution (capped); vector drawings need no more than the minimum."""
    dpi = max((g.dpi for g in fig_graphics if g.kind != "vector"), default=0.0)
    return float(min(MAX_RENDER_DPI, max(MIN_RENDER_DPI, dpi)))


def _native_xref(atom, scan) -> int:
    """The xref to store at native resolution: one unclipped raster on a born-digital page, else 0."""
    g = atom.graphics
    return g[0].xrefs[0] if len(g) == 1 and g[0].native and scan is None else 0


def _crop_scan(scan, bbox: Box):
    simg, scale = scan
    return simg.crop(tuple(int(round(v * scale)) for v in bbox))


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
                img = _crop_scan(scan, bbox)
                how = how or "scan"
            else:
                img = render_region(pg, bbox, _render_dpi(graphics))
                how = how or "render"
        data, ext = _pil_to_bytes(img, photo)
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
            img = _crop_scan(scan, atom.bbox)
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


# ----------------------------------------------------------------------------------------------------------
# chunks


def process_chunk(
    path: str,
    file_sha: str,
    first: int,
    last: int,
    out: str,
    ocr: str,
    debug_dir: str | None,
    keep_uncaptioned: bool = False,
) -> ChunkResult:
    """Pages first..last (1-based, inclusive) of one PDF; runs in a worker process."""
    import pymupdf

    from . import debug as debug_mod

    res = ChunkResult()
    root = Path(out)
    doc = pymupdf.open(path, filetype="pdf")
    name = Path(path).name
    writer = PageWriter(root, doc, name, file_sha)
    try:
        for pno in range(first, last + 1):
            res.pages += 1
            try:
                pg = doc[pno - 1]
                scan = None
                page = read_page(pg, pno) if ocr != "always" else None
                # born-digital pages pay for one text pass: the OCR decision reuses the text just read
                chars = None if page is None else sum(len(ln.text) - ln.text.count(" ") for ln in page.lines)
                if ocr_mod.needs_ocr(pg, ocr, chars=chars):
                    page, simg, scale = ocr_mod.read_scanned_page(pg, pno)
                    scan = (simg, scale)
                    res.ocr_pages += 1
                elif _is_page_scan(page):
                    page, simg, scale = ocr_mod.read_text_layer_scan(pg, page)
                    scan = (simg, scale)
                figures, leftovers = assemble(page, leftovers=keep_uncaptioned)
                for fig in figures:
                    res.records.extend(writer.write_figure(pg, page, fig, scan))
                res.figures += len(figures)
                for atom in leftovers:
                    res.records.append(writer.write_uncaptioned(pg, page, atom, scan))
                if debug_dir:
                    debug_mod.draw_page(
                        pg, page, figures, Path(debug_dir) / f"{Path(path).stem}-p{pno:04d}.png"
                    )
            except Exception as e:  # one bad page must not sink the book
                msg = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
                res.errors.append({"file": name, "page": pno, "reason": f"{type(e).__name__}: {msg}"})
        pymupdf.TOOLS.store_shrink(100)
    finally:
        doc.close()
    return res


def _is_page_scan(page: Page) -> bool:
    """One raster covering (nearly) the whole page under a text layer: a digitised book page."""
    pa = page.width * page.height
    return any(
        g.kind == "image" and (g.bbox[2] - g.bbox[0]) * (g.bbox[3] - g.bbox[1]) >= 0.85 * pa
        for g in page.graphics
    )


def _chunk_path(root: Path, sha: str, first: int) -> Path:
    return root / ".build" / sha / f"{first:06d}.jsonl"


def _chunk_config(cfg: BuildConfig) -> dict[str, Any]:
    """Settings that change a chunk's records: a finished chunk built with other settings is redone."""
    return {"ocr": cfg.ocr, "keep_uncaptioned": cfg.keep_uncaptioned, "mmskin": __version__}


def _chunk_done(p: Path, cfg: BuildConfig) -> bool:
    try:
        with open(p, encoding="utf-8") as f:
            return json.loads(f.readline())["_chunk"].get("config") == _chunk_config(cfg)
    except (OSError, ValueError, KeyError):
        return False


def _save_chunk(root: Path, sha: str, first: int, res: ChunkResult, cfg: BuildConfig) -> None:
    meta = {
        "pages": res.pages,
        "figures": res.figures,
        "ocr_pages": res.ocr_pages,
        "errors": res.errors,
        "config": _chunk_config(cfg),
    }
    lines = [json.dumps({"_chunk": meta}, sort_keys=True)] + [dumps(r) for r in res.records]
    atomic_write_bytes(_chunk_path(root, sha, first), ("\n".join(lines) + "\n").encode())


def _load_chunk(p: Path) -> ChunkResult | None:
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
        meta = json.loads(lines[0])["_chunk"]
        recs = [json.loads(x) for x in lines[1:] if x.strip()]
    except (OSError, ValueError, KeyError, IndexError):
        return None
    return ChunkResult(recs, meta.get("errors", []), meta["pages"], meta["figures"], meta.get("ocr_pages", 0))


def collect_pdfs(inputs: list[str]) -> tuple[list[Path], list[dict[str, Any]]]:
    """PDF files named or found (recursively, *.pdf) under the inputs; missing inputs are errors."""
    files: list[Path] = []
    errors = []
    for s in inputs:
        p = Path(s)
        if p.is_dir():
            files.extend(sorted(q for q in p.rglob("*") if q.is_file() and q.suffix.lower() == ".pdf"))
        elif p.exists():
            files.append(p)
        else:
            errors.append({"file": str(p), "reason": "no such file or directory"})
    seen: set[Path] = set()
    uniq = []
    for f in files:
        r = f.resolve()
        if r not in seen:
            seen.add(r)
            uniq.append(f)
    return uniq, errors


@dataclass
class BuildSummary:
    files: int = 0
    skipped: int = 0
    failed: int = 0
    pages: int = 0
    ocr_pages: int = 0
    figures: int = 0
    records: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def line(self, out: Path) -> str:
        return (
            f"built {self.files} files ({self.skipped} already done, {self.failed} failed): {self.pages} pages"
            f" ({self.ocr_pages} OCR), {self.figures} figures, {self.records} records, {len(self.errors)} errors"
            f" in {self.seconds:.1f} s -> {out}"
        )


def build(
    inputs: list[str],
    cfg: BuildConfig,
    on_error: Callable[[dict[str, Any]], None] | None = None,
    progress: bool = True,
) -> BuildSummary:
    t0 = time.perf_counter()
    root = Path(cfg.out)
    root.mkdir(parents=True, exist_ok=True)
    if cfg.debug_pages:
        Path(cfg.debug_pages).mkdir(parents=True, exist_ok=True)
    summary = BuildSummary()
    _remove_stale_temp_files(root)
    files, missing = collect_pdfs(inputs)
    errors: list[dict[str, Any]] = []

    def fail(err: dict[str, Any]) -> None:
        errors.append(err)
        if on_error:
            on_error(err)

    for e in missing:
        fail(e)
    # plan chunks
    tasks: list[tuple[str, str, int, int]] = []
    manifest = _load_manifest(root)
    file_chunks: dict[str, list[int]] = {}
    for f in files:
        try:
            doc = open_pdf(f)
        except InputError as e:
            summary.failed += 1
            fail({"file": f.name, "path": str(f), "reason": str(e)})
            continue
        n = doc.page_count
        doc.close()
        sha = sha256_file(f)
        summary.files += 1
        firsts = list(range(1, n + 1, cfg.chunk_pages))
        file_chunks[sha] = firsts
        manifest[sha] = {"file": f.name, "pages": n}
        todo = [a for a in firsts if not _chunk_done(_chunk_path(root, sha, a), cfg)]
        if not todo:
            summary.skipped += 1
        for a in todo:
            tasks.append((str(f), sha, a, min(n, a + cfg.chunk_pages - 1)))
    _save_manifest(root, manifest)
    workers = cfg.workers or os.cpu_count() or 1
    total_pages = sum(b - a + 1 for _, _, a, b in tasks)
    chunk_args = (str(root), cfg.ocr, _s(cfg.debug_pages), cfg.keep_uncaptioned)

    def finish(task: tuple[str, str, int, int], res: ChunkResult) -> None:
        _save_chunk(root, task[1], task[2], res, cfg)
        for e in res.errors:
            fail(e)

    with _progress(progress, total_pages) as advance:
        if workers <= 1 or len(tasks) <= 1:
            for t in tasks:
                res = process_chunk(*t, *chunk_args)
                finish(t, res)
                advance(t[3] - t[2] + 1)
        else:
            with ProcessPoolExecutor(max_workers=min(workers, len(tasks))) as ex:
                pending = {}
                it = iter(tasks)
                for t in it:  # keep the queue short so memory stays flat on huge books
                    pending[ex.submit(process_chunk, *t, *chunk_args)] = t
                    if len(pending) >= 2 * workers:
                        break
                while pending:
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in done:
                        t = pending.pop(fut)
                        try:
                            res = fut.result()
                        except Exception as e:
                            fail(
                                {
                                    "file": Path(t[0]).name,
                                    "pages": [t[2], t[3]],
                                    "reason": f"worker failed: {e}",
                                }
                            )
                            continue
                        finish(t, res)
                        advance(t[3] - t[2] + 1)
                        nxt = next(it, None)
                        if nxt is not None:
                            pending[ex.submit(process_chunk, *nxt, *chunk_args)] = nxt
    # assemble records.jsonl from every finished file of this dataset
    all_records: list[dict[str, Any]] = []
    for sha, meta in sorted(manifest.items()):
        firsts = file_chunks.get(sha) or list(range(1, meta["pages"] + 1, cfg.chunk_pages))
        for a in firsts:
            cp = _chunk_path(root, sha, a)
            res = _load_chunk(cp) if cp.exists() else None
            if res is None:
                continue
            all_records.extend(res.records)
            if sha in file_chunks:
                summary.pages += res.pages
                summary.figures += res.figures
                summary.ocr_pages += res.ocr_pages
    all_records.sort(key=_record_order)
    seen_ids: set[str] = set()
    uniq = []
    for r in all_records:
        if r["id"] not in seen_ids:
            seen_ids.add(r["id"])
            uniq.append(r)
    summary.records = write_jsonl(root / "records.jsonl", uniq)
    write_jsonl(root / "errors.jsonl", errors)
    summary.errors = errors
    summary.seconds = time.perf_counter() - t0
    _write_build_info(root, cfg, summary, manifest)
    return summary


def _remove_stale_temp_files(root: Path) -> None:
    """Temp files of a killed run (never referenced by any record) are removed before work starts."""
    for sub in ("images", ".build"):
        d = root / sub
        if d.is_dir():
            for t in d.rglob(".*.tmp"):
                t.unlink(missing_ok=True)
    for t in root.glob(".*.tmp"):
        t.unlink(missing_ok=True)


def _s(p: Path | None) -> str | None:
    return str(p) if p else None


def _record_order(r: dict[str, Any]) -> tuple:
    s = r["source"]
    b = s["bbox"]
    return (s["file"], s["sha256"], s["page"], round(b[1] / 4), b[0], r["panel"] or "", r["id"])


def _load_manifest(root: Path) -> dict[str, Any]:
    p = root / ".build" / "manifest.json"
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return {}


def _save_manifest(root: Path, m: dict[str, Any]) -> None:
    atomic_write_bytes(root / ".build" / "manifest.json", json.dumps(m, sort_keys=True, indent=1).encode())


def _write_build_info(root: Path, cfg: BuildConfig, s: BuildSummary, manifest: dict[str, Any]) -> None:
    import platform

    import pymupdf

    info = {
        "tool": "mmskin build",
        "mmskin": __version__,
        "pymupdf": getattr(pymupdf, "__version__", pymupdf.VersionBind),
        "python": platform.python_version(),
        "config": {
            "ocr": cfg.ocr,
            "chunk_pages": cfg.chunk_pages,
            "render_dpi": [MIN_RENDER_DPI, MAX_RENDER_DPI],
            "keep_uncaptioned": cfg.keep_uncaptioned,
        },
        "files": sorted({m["file"] for m in manifest.values()}),
        "records": s.records,
    }
    # no timestamps or timings here: the dataset folder must be identical across reruns
    atomic_write_bytes(root / "build_info.json", (json.dumps(info, sort_keys=True, indent=1) + "\n").encode())


class _progress:
    def __init__(self, enabled: bool, total: int):
        self.enabled, self.total = enabled, total
        self._p = None

    def __enter__(self):
        if self.enabled and self.total:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._p = Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                transient=False,
            )
            self._p.start()
            self._task = self._p.add_task("pages", total=self.total)
            return lambda n: self._p.advance(self._task, n)
        return lambda n: None

    def __exit__(self, *exc):
        if self._p:
            self._p.stop()
        return False
