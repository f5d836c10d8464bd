"""`mmskin build`: PDFs → ``DATASET/records.jsonl`` + content-addressed ``DATASET/images/``.

The stage is a chain: collect inputs (:mod:`.inputs`; every input is built, skipped with its reason, or merged
with its byte-identical twin) → plan page-range chunks, skipping finished ones (:mod:`.chunks`) → run chunks in
worker processes (page model → captions → figures → panels → stored images, :mod:`.page`, :mod:`.captions`,
:mod:`.layout`, :mod:`.writer`) → gather every finished chunk of the dataset into ``records.jsonl`` (atomically,
sorted, so two runs give byte-identical output), keeping the curation of records that were curated before
(:func:`keep_curation`) → ``build_info.json``. The run holds the dataset's writer lock (:mod:`mmskin.lock`).

    mmskin build books/ --out data/derm --workers 2

    >>> from mmskin.pdf.build import BuildConfig, run
    >>> result = run(BuildConfig(inputs=["books/"], out=Path("data/derm"), workers=2))
    >>> result.summary, result.counts["records"], result.problems
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import ConfigError, option
from ..engine import check_engine, engine_option, ray_address_option
from ..lock import dataset_lock
from ..provenance import provenance, write_info
from ..records import (
    atomic_write_bytes,
    carry_curation,
    is_curated,
    iter_jsonl,
    sha256_file,
    write_jsonl,
)
from ..stage import Problems, Reporter, StageResult, reason_of
from ..workers import process_pool
from .chunks import (
    ChunkOptions,
    ChunkResult,
    chunk_done,
    chunk_path,
    load_chunk,
    load_manifest,
    process_chunk,
    save_chunk,
    save_manifest,
)
from .inputs import InputError, collect_pdfs, open_pdf
from .page import MAX_PIXELS
from .writer import MAX_RENDER_DPI, MIN_RENDER_DPI

CHUNK_PAGES = 8


@dataclass
class BuildConfig:
    """Settings of ``mmskin build`` (each field is also its command-line option)."""

    inputs: list[str] = option([], "PDF files or folders (searched recursively)", cli=False)
    out: Path = option(Path("dataset"), "dataset folder to create or extend", cli=False)
    workers: int = option(0, "worker processes (0: all cores)")
    ocr: str = option(
        "auto",
        "auto: OCR pages without a text layer; always; never",
        choices=("auto", "always", "never"),
    )
    debug_pages: Path | None = option(None, "write annotated page PNGs here", metavar="DIR")
    chunk_pages: int = option(CHUNK_PAGES, "pages per unit of work (and of resume)", cli=False)
    keep_uncaptioned: bool = option(
        False, "also keep large pictures that no caption claims (caption empty, flag no_caption)"
    )
    position_panels: bool = option(
        False,
        "also split figures whose caption names its pictures by position only ('Left: … Right: …', 'Top … "
        "bottom'); by default only lettered or numbered panels are split",
    )
    max_pixels: int = option(
        MAX_PIXELS,
        "most pixels (width x height) one picture is decoded or rendered at; a bigger one (a decompression "
        "bomb) is rendered down to it, with a warning",
        metavar="N",
    )
    wait: bool = option(
        True,
        "when another mmskin command is writing the dataset, wait for it (--no-wait: stop at once, exit 1)",
    )
    engine: str = engine_option("the page chunks")
    ray_address: str | None = ray_address_option()

    def chunk_options(self) -> ChunkOptions:
        debug = str(self.debug_pages) if self.debug_pages else None
        return ChunkOptions(self.ocr, self.keep_uncaptioned, self.position_panels, debug, self.max_pixels)


@dataclass
class _Plan:
    tasks: list[tuple[str, str, int, int]] = field(default_factory=list)  # (path, sha256, first, last)
    file_chunks: dict[str, list[int]] = field(default_factory=dict)  # sha256 -> first pages, this run's files
    manifest: dict[str, Any] = field(default_factory=dict)  # sha256 -> {file, pages}, every file ever built
    files: int = 0
    skipped: int = 0
    failed: int = 0
    unusable: int = (
        0  # inputs that gave no PDF: a folder without one, a dangling symlink, a FIFO, a missing path
    )
    twins: int = 0  # files byte-identical to another input (or to a file already built): merged with it


@dataclass
class Growth:
    """What a build did to a dataset whose records were curated before (all zero for an uncurated one)."""

    curated: int = 0  # records curated before this build
    kept: int = 0  # records that keep their curation
    todo: int = 0  # records new or changed since the last curate: they need `mmskin curate`
    gone: int = 0  # curated records this build no longer gives


def run(cfg: BuildConfig, reporter: Reporter | None = None) -> StageResult:
    """Build (or extend, or finish) the dataset ``cfg.out`` from ``cfg.inputs``, holding its writer lock."""
    t0 = time.perf_counter()
    if cfg.max_pixels < 1:
        raise ConfigError(f"--max-pixels must be at least 1 (got {cfg.max_pixels})")
    check_engine(cfg.engine)
    root = Path(cfg.out)
    root.mkdir(parents=True, exist_ok=True)
    if cfg.debug_pages:
        Path(cfg.debug_pages).mkdir(parents=True, exist_ok=True)
    reporter = reporter or Reporter()
    with dataset_lock(root, "mmskin build", reporter, wait=cfg.wait):
        return _build(cfg, root, reporter, t0)


def _build(cfg: BuildConfig, root: Path, reporter: Reporter, t0: float) -> StageResult:
    problems = Problems(reporter)
    _remove_stale_temp_files(root)
    plan = _plan(cfg, root, problems, reporter)
    _execute(cfg, root, plan, problems, reporter)
    records, totals = _gather(root, plan, cfg.chunk_pages)
    records, growth = keep_curation(root / "records.jsonl", records, reporter)
    n = write_jsonl(root / "records.jsonl", records)
    write_jsonl(root / "errors.jsonl", [p.to_dict() for p in problems])
    _write_build_info(root, cfg, n, plan.manifest)
    counts = {"files": plan.files, "skipped": plan.skipped, "failed": plan.failed, **totals, "records": n}
    counts.update(skipped_inputs=plan.unusable, twins=plan.twins, curation=dict(vars(growth)))
    secs = time.perf_counter() - t0
    summary = (
        f"built {plan.files} files ({plan.skipped} already done, {plan.failed} failed{_extra_inputs(plan)}):"
        f" {totals['pages']} pages ({totals['ocr_pages']} OCR), {totals['figures']} figures, {n} records"
        f"{_over_cap(totals)}, {len(problems)} errors in {secs:.1f} s -> {root}{_curation(growth)}"
    )
    return StageResult("build", counts, list(problems), summary, {"seconds": secs})


def _extra_inputs(plan: _Plan) -> str:
    out = f", {plan.unusable} inputs skipped" if plan.unusable else ""
    return out + (f", {plan.twins} merged with an identical twin" if plan.twins else "")


def _over_cap(totals: dict[str, int]) -> str:
    n = totals["over_cap"]
    return f" ({n} picture{'s' * (n > 1)} over the pixel cap rendered smaller)" if n else ""


def _curation(g: Growth) -> str:
    return f"; {g.kept} records keep their curation, {g.todo} to curate" if g.curated else ""


def _plan(cfg: BuildConfig, root: Path, problems: Problems, reporter: Reporter) -> _Plan:
    """Open every input once (bad files become problems) and list the chunks that are not done yet. An input that
    gives no PDF is a problem too; a file byte-identical to another one is built once (a warning names both)."""
    plan = _Plan(manifest=load_manifest(root))
    files, skipped = collect_pdfs(cfg.inputs)
    for where, reason in skipped:
        plan.unusable += 1
        problems.add(where, reason)
    config = cfg.chunk_options().config()
    first_of: dict[str, Path] = {}  # sha256 -> the first input with these bytes
    for f in files:
        try:
            doc = open_pdf(f)
        except InputError as e:
            plan.failed += 1
            problems.add(f, str(e))
            continue
        n = doc.page_count
        doc.close()
        sha = sha256_file(f)
        firsts = list(range(1, n + 1, cfg.chunk_pages))
        todo = [a for a in firsts if not chunk_done(chunk_path(root, sha, a), config)]
        earlier = plan.manifest.get(sha, {}).get("file")
        twin = str(first_of[sha]) if sha in first_of else None
        if twin is None and earlier not in (None, f.name) and not todo:
            twin = f"{earlier}, already in the dataset"
        if twin is not None:
            plan.twins += 1
            reporter.warning(f"{f}: the same bytes as {twin}: merged with it (built once, under its name)")
            continue
        first_of[sha] = f
        plan.files += 1
        plan.file_chunks[sha] = firsts
        plan.manifest[sha] = {"file": f.name, "pages": n}
        plan.skipped += not todo
        plan.tasks += [(str(f), sha, a, min(n, a + cfg.chunk_pages - 1)) for a in todo]
    save_manifest(root, plan.manifest)
    return plan


def _execute(cfg: BuildConfig, root: Path, plan: _Plan, problems: Problems, reporter: Reporter) -> None:
    """Run the planned chunks (in a pool when there are several workers, or on Ray); each is saved as it
    finishes, by this process (workers only write images)."""
    config = cfg.chunk_options().config()
    total_pages = sum(b - a + 1 for _, _, a, b in plan.tasks)
    with reporter.progress(total_pages, "pages") as advance, _outcomes(cfg, root, plan.tasks) as outcomes:
        for t, res, error in outcomes:
            if error is not None:
                problems.add(f"{Path(t[0]).name} pages {t[2]}-{t[3]}", f"worker failed: {reason_of(error)}")
                continue
            save_chunk(root, t[1], t[2], res, config)
            problems.take(res.problems)
            for note in res.notes:
                reporter.warning(str(note))
            advance(t[3] - t[2] + 1)


Outcome = tuple[tuple[str, str, int, int], ChunkResult, BaseException | None]


@contextmanager
def _outcomes(
    cfg: BuildConfig, root: Path, tasks: list[tuple[str, str, int, int]]
) -> Iterator[Iterator[Outcome]]:
    """(task, result, error) of every chunk as it finishes: in this process, in a local pool, or as Ray tasks
    (paths made absolute: a node's workers do not share our working folder, only the filesystem)."""
    opts = cfg.chunk_options()
    workers = cfg.workers or os.cpu_count() or 1
    if cfg.engine == "ray":
        from ..engine import RayEngine

        if opts.debug_dir:
            opts = dataclasses.replace(opts, debug_dir=os.path.abspath(opts.debug_dir))
        with RayEngine(cfg.ray_address, cfg.workers) as eng:
            absolute = [(os.path.abspath(t[0]), *t[1:]) for t in tasks]
            yield eng.tasks(process_chunk, absolute, os.path.abspath(root), opts, slots=cfg.workers)
    elif workers <= 1 or len(tasks) <= 1:
        yield ((t, process_chunk(*t, str(root), opts), None) for t in tasks)
    else:
        with process_pool(min(workers, len(tasks))) as ex:  # workers die with this process, kill -9 included
            yield _pool_outcomes(ex, tasks, (str(root), opts), min(workers, len(tasks)))


def _pool_outcomes(
    ex: Any, tasks: list[tuple[str, str, int, int]], chunk_args: tuple, workers: int
) -> Iterator[Outcome]:
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
                res, error = fut.result(), None
            except Exception as e:
                res, error = None, e
            yield t, res, error
            nxt = next(it, None)
            if nxt is not None:
                pending[ex.submit(process_chunk, *nxt, *chunk_args)] = nxt


def _gather(root: Path, plan: _Plan, chunk_pages: int) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The records of every finished chunk of this dataset (earlier runs' files too), sorted and de-duplicated
    by id, and the pages, OCR pages and figures of this run's files."""
    records: list[dict[str, Any]] = []
    totals = {"pages": 0, "ocr_pages": 0, "figures": 0, "over_cap": 0}
    for sha, meta in sorted(plan.manifest.items()):
        firsts = plan.file_chunks.get(sha) or list(range(1, meta["pages"] + 1, chunk_pages))
        for a in firsts:
            cp = chunk_path(root, sha, a)
            res = load_chunk(cp) if cp.exists() else None
            if res is None:
                continue
            records.extend(res.records)
            if sha in plan.file_chunks:
                totals["pages"] += res.pages
                totals["figures"] += res.figures
                totals["ocr_pages"] += res.ocr_pages
                totals["over_cap"] += len(res.notes)
    records.sort(key=_record_order)
    seen: set[str] = set()
    uniq = []
    for r in records:
        if r["id"] not in seen:
            seen.add(r["id"])
            uniq.append(r)
    return uniq, totals


def keep_curation(
    path: Path, built: list[dict[str, Any]], reporter: Reporter
) -> tuple[list[dict[str, Any]], Growth]:
    """The build's records, each keeping the curation its record in ``path`` (the records.jsonl being replaced)
    had (:func:`mmskin.records.carry_curation`), and what changed. Records new or changed since the last
    curate and curated records this build no longer gives are each counted and named in one warning. An old
    file with unreadable lines is first copied to ``records.jsonl.bak``."""
    growth = Growth()
    if not path.is_file():
        return built, growth
    errors: list[str] = []
    try:
        before = {rec["id"]: rec for _, rec in iter_jsonl(path, errors, check=_has_id)}
    except (OSError, UnicodeDecodeError) as e:
        before = {}
        errors.append(f"{path}: cannot read ({type(e).__name__}: {e})")
    if errors:
        backup = path.with_name(path.name + ".bak")
        atomic_write_bytes(backup, path.read_bytes())
        reporter.warning(f"{errors[0]}; {len(errors)} unreadable lines: the old file is kept as {backup}")
    curated = {i: r for i, r in before.items() if is_curated(r)}
    if not curated:
        return built, growth
    out = []
    for rec in built:
        old = curated.get(rec["id"])
        if old is None:
            growth.todo += 1
            out.append(rec)
            continue
        rec, same = carry_curation(rec, old)
        growth.kept += same
        growth.todo += not same
        out.append(rec)
    growth.curated = len(curated)
    growth.gone = len(curated.keys() - {r["id"] for r in built})
    root = path.parent
    if growth.todo:
        reporter.warning(
            f"{root}: {growth.todo} of {len(out)} records are new or changed since the last curate and are not "
            f"curated: run `mmskin curate {root}` (vqa leaves them out until then)"
        )
    if growth.gone:
        reporter.warning(
            f"{root}: {growth.gone} curated records are no longer given by the build (their pictures or captions "
            "changed); human corrections of them stay in corrections.jsonl"
        )
    return out, growth


def _has_id(obj: Any) -> list[str]:
    return [] if isinstance(obj, dict) and isinstance(obj.get("id"), str) else ["not a record with an id"]


def _remove_stale_temp_files(root: Path) -> None:
    """Temp files of a killed run (never referenced by any record) are removed before work starts."""
    for sub in ("images", ".build"):
        d = root / sub
        if d.is_dir():
            for t in d.rglob(".*.tmp"):
                t.unlink(missing_ok=True)
    for t in root.glob(".*.tmp"):
        t.unlink(missing_ok=True)


def _record_order(r: dict[str, Any]) -> tuple:
    s = r["source"]
    b = s["bbox"]
    return (s["file"], s["sha256"], s["page"], round(b[1] / 4), b[0], r["panel"] or "", r["id"])


def _write_build_info(root: Path, cfg: BuildConfig, records: int, manifest: dict[str, Any]) -> None:
    config = {
        "ocr": cfg.ocr,
        "chunk_pages": cfg.chunk_pages,
        "render_dpi": [MIN_RENDER_DPI, MAX_RENDER_DPI],
        "keep_uncaptioned": cfg.keep_uncaptioned,
        "position_panels": cfg.position_panels,
        "max_pixels": cfg.max_pixels,
    }
    info = {
        "provenance": provenance("build", config=config, packages=["pymupdf", "pillow", "numpy"]),
        "files": sorted({m["file"] for m in manifest.values()}),
        "records": records,
    }
    # no timestamps or timings here: the dataset folder must be identical across reruns
    write_info(root / "build_info.json", info)
