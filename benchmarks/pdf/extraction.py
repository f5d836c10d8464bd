"""One command for the figure/caption extraction benchmark: build the book set, run the methods, score, report.

1. builds the gold book set with ``make_bookset.py`` when it is missing (or with ``--rebuild``);
2. runs the naive nearest-caption baseline (``baseline_nearest.py``) and scores it;
3. runs the real extractor, ``mmskin build PDFs --out DIR --workers N --position-panels`` (through ``mmskin.cli.main``), if it can
   be imported, and scores it; a failure is reported and the table shows the baseline alone;
4. prints one table, method x style -> P / R / F1 (plus overall, scanned and born-digital rows), and writes
   ``benchmarks/results/pdf/extraction_<UTC time>.json`` with the scores, seed, timestamp and provenance.

Example::

    .venv/bin/python benchmarks/pdf/extraction.py        # --rebuild to regenerate, --skip-mmskin for baseline only
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
import traceback
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))  # benchmarks/, for _common

import baseline_nearest  # noqa: E402
import make_bookset  # noqa: E402
import score_extraction  # noqa: E402
from _common import WORK, add_data_argument, save_results  # noqa: E402


def ensure_bookset(bookset: Path, data: Path, seed: int, rebuild: bool) -> None:
    meta = bookset / "bookset.json"
    same_seed = meta.is_file() and json.loads(meta.read_text()).get("seed") == seed
    if not rebuild and same_seed and any(bookset.glob("*.gt.json")):
        return
    print(f"building the book set -> {bookset}")
    if bookset.is_dir():
        for p in list(bookset.glob("*.pdf")) + list(bookset.glob("*.gt.json")):
            p.unlink()
    rc = make_bookset.main(["--data", str(data), "--out", str(bookset), "--seed", str(seed)])
    if rc != 0:
        raise SystemExit(f"error: make_bookset.py failed (exit {rc})")
    meta.write_text(json.dumps({"seed": seed, "data": str(data)}) + "\n")


def run_baseline(pdfs: list[Path], out: Path) -> Path:
    shutil.rmtree(out, ignore_errors=True)
    baseline_nearest.main([str(p) for p in pdfs] + ["--out", str(out)])
    return out / "records.jsonl"


def run_mmskin(pdfs: list[Path], out: Path, workers: int) -> tuple[Path | None, str | None]:
    """Run ``mmskin build``; returns (records path, None) or (None, reason)."""
    try:
        from mmskin.cli import main as mmskin_main
    except Exception as e:  # not written yet, or broken while being written
        return None, f"mmskin.cli is not importable ({type(e).__name__}: {e})"
    shutil.rmtree(out, ignore_errors=True)
    # the book set's ground truth counts "Left: … Right: …" figures as two panels
    argv = [
        "build",
        *[str(p) for p in pdfs],
        "--out",
        str(out),
        "--workers",
        str(workers),
        "--position-panels",
    ]
    try:
        rc = mmskin_main(argv)
    except SystemExit as e:
        rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except Exception as e:
        traceback.print_exc()
        return None, f"mmskin build raised {type(e).__name__}: {e}"
    records = out / "records.jsonl"
    if not records.is_file():
        return None, f"mmskin build exited {rc} and wrote no {records}"
    if rc:
        print(f"note: mmskin build exited {rc} (some PDFs failed); scoring what it wrote", file=sys.stderr)
    return records, None


def format_summary(scores: dict[str, dict[str, Any]]) -> str:
    methods = list(scores)
    rows: list[tuple[str, dict[str, dict[str, Any]]]] = [
        ("overall", {m: s["overall"] for m, s in scores.items()})
    ]
    for key in ("born_digital", "scanned"):
        rows.append((key, {m: s["by_scan"].get(key) for m, s in scores.items()}))
    styles = sorted({st for s in scores.values() for st in s["by_style"]})
    for st in styles:
        rows.append((f"style {st}", {m: s["by_style"].get(st) for m, s in scores.items()}))
    head = f"{'group':26} {'GT':>4} " + " ".join(f"{m[:20]:>20}" for m in methods)
    sub = f"{'':26} {'':>4} " + " ".join(f"{'P     R     F1':>20}" for _ in methods)
    lines = [head, sub, "-" * len(head)]
    for name, per in rows:
        gt = next((v["gt"] for v in per.values() if v), 0)
        cells = []
        for m in methods:
            v = per[m]
            cells.append(
                f"{v['precision']:.2f}  {v['recall']:.2f}  {v['f1']:.2f}".rjust(20) if v else " " * 20
            )
        lines.append(f"{name:26} {gt:4d} " + " ".join(cells))
    for m, s in scores.items():
        o = s["overall"]
        pa = "-" if o["panel_accuracy"] is None else f"{o['panel_accuracy']:.2f}"
        lines.append(
            f"{m}: box-only recall {o['bbox_recall']:.2f}, panel-letter accuracy {pa} (n={o['panel_n']}), "
            f"false positives on figure-less PDFs {s['figureless']['false_positives']}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example: python benchmarks/pdf/extraction.py --rebuild",
    )
    add_data_argument(ap)
    ap.add_argument("--bookset", type=Path, default=WORK / "bookset")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rebuild", action="store_true", help="regenerate the book set even if present")
    ap.add_argument("--skip-mmskin", action="store_true", help="score the baseline only")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument(
        "--results",
        type=Path,
        default=None,
        help="folder of the results JSON (default: benchmarks/results/pdf)",
    )
    args = ap.parse_args(argv)

    ensure_bookset(args.bookset, args.data, args.seed, args.rebuild)
    pdfs = sorted(args.bookset.glob("*.pdf"))
    gt_items = sum(len(g["items"]) for g in score_extraction.load_gt(args.bookset).values())
    print(f"book set: {len(pdfs)} PDFs, {gt_items} GT items ({args.bookset})")

    scores: dict[str, dict[str, Any]] = {}
    timing: dict[str, float] = {}
    errors: dict[str, str] = {}
    t0 = time.time()
    rec = run_baseline(pdfs, WORK / "runs" / "baseline_nearest")
    timing["baseline_nearest"] = round(time.time() - t0, 2)
    scores["baseline_nearest"] = score_extraction.score(args.bookset, rec)
    if not args.skip_mmskin:
        t0 = time.time()
        rec2, err = run_mmskin(pdfs, WORK / "runs" / "mmskin", args.workers)
        timing["mmskin"] = round(time.time() - t0, 2)
        if rec2 is None:
            errors["mmskin"] = err or "unknown error"
            print(f"mmskin: not scored: {err}", file=sys.stderr)
        else:
            scores["mmskin"] = score_extraction.score(args.bookset, rec2)

    print()
    print(format_summary(scores))
    result = {
        "benchmark": "figure/panel + caption extraction on the generated textbook set",
        "seed": args.seed,
        "bookset": str(args.bookset),
        "pdfs": len(pdfs),
        "gt_items": gt_items,
        "seconds": timing,
        "errors": errors,
        "scores": scores,
    }
    print()
    save_results("pdf", "extraction", result, args, folder=args.results, packages=["pymupdf"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
