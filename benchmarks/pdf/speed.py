"""Speed of `mmskin build` against the floor: a bare PyMuPDF pass over the same PDFs, in one run.

The floor opens each PDF and, for every page, calls ``get_text("dict")`` and ``get_image_info()`` (image
placements) — the least any PDF figure extractor has to do. `mmskin build` is timed on the same files into a
fresh dataset, once with one worker (same CPU budget as the floor) and once with all cores. Scanned pages are timed
separately (pages/s through OCR).

    python benchmarks/pdf/speed.py                   # book set (benchmarks/_work/bookset) + ../shared/data/pdfs
    python benchmarks/pdf/speed.py some/books/ --repeat 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pymupdf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, for _common
from _common import DEFAULT_DATA, WORK, add_out_argument, save_results  # noqa: E402

from mmskin.pdf.build import BuildConfig, run  # noqa: E402
from mmskin.pdf.inputs import collect_pdfs  # noqa: E402
from mmskin.pdf.ocr import needs_ocr  # noqa: E402


def floor_pass(files: list[Path]) -> tuple[float, int]:
    t = time.perf_counter()
    pages = 0
    for f in files:
        with pymupdf.open(f) as doc:
            for pg in doc:
                pg.get_text("dict")
                pg.get_image_info()
                pages += 1
    return time.perf_counter() - t, pages


def build_pass(files: list[Path], workers: int, ocr: str = "auto") -> float:
    out = Path(tempfile.mkdtemp(prefix="mmskin-speed-"))
    try:
        t = time.perf_counter()
        run(BuildConfig(inputs=[str(f) for f in files], out=out, workers=workers, ocr=ocr))
        return time.perf_counter() - t
    finally:
        shutil.rmtree(out, ignore_errors=True)


def split_scanned(files: list[Path]) -> tuple[list[Path], list[Path]]:
    digital, scanned = [], []
    for f in files:
        with pymupdf.open(f) as doc:
            (scanned if all(needs_ocr(pg, "auto") for pg in doc) else digital).append(f)
    return digital, scanned


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "inputs",
        nargs="*",
        default=[str(WORK / "bookset"), str(DEFAULT_DATA / "pdfs")],
    )
    ap.add_argument("--repeat", type=int, default=3, help="runs per measurement; the median is reported")
    add_out_argument(ap, "pdf", "speed")
    args = ap.parse_args(argv)
    files, errors = collect_pdfs(args.inputs)
    if not files:
        print(f"no PDFs under {args.inputs}: run benchmarks/pdf/make_bookset.py first", file=sys.stderr)
        return 1
    digital, scanned = split_scanned(files)
    cores = os.cpu_count() or 1
    res: dict = {"files": len(digital), "scanned_files": len(scanned)}
    floor = [floor_pass(digital) for _ in range(args.repeat)]
    res["pages"] = floor[0][1]
    res["floor_s"] = statistics.median(t for t, _ in floor)
    res["build_1worker_s"] = statistics.median(build_pass(digital, 1) for _ in range(args.repeat))
    res["build_allcores_s"] = statistics.median(build_pass(digital, cores) for _ in range(args.repeat))
    res["ratio_1worker"] = res["build_1worker_s"] / res["floor_s"]
    res["ratio_allcores"] = res["build_allcores_s"] / res["floor_s"]
    if scanned:
        n_scan = sum(pymupdf.open(f).page_count for f in scanned)
        t_scan = build_pass(scanned, cores)
        res.update(scanned_pages=n_scan, scanned_s=t_scan, scanned_pages_per_s=n_scan / t_scan)
    print(
        f"{res['files']} born-digital PDFs, {res['pages']} pages (median of {args.repeat} runs, {cores} cores)"
    )
    print(f"  bare PyMuPDF floor      {res['floor_s']:7.2f} s   {res['pages'] / res['floor_s']:7.1f} pages/s")
    print(f"  mmskin build, 1 worker  {res['build_1worker_s']:7.2f} s   ratio {res['ratio_1worker']:.2f}x")
    print(
        f"  mmskin build, {cores} workers {res['build_allcores_s']:7.2f} s   ratio {res['ratio_allcores']:.2f}x"
    )
    if scanned:
        print(
            f"  scanned: {res['scanned_pages']} pages in {res['scanned_s']:.1f} s = "
            f"{res['scanned_pages_per_s']:.2f} pages/s ({cores} workers, OCR)"
        )
    save_results("pdf", "speed", res, args, out=args.json, packages=["pymupdf"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
