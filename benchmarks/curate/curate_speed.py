"""Speed of `mmskin curate` (images/s) on 2 cores, on the book-style set and on the dev images.

1. Book set: ``make_bookset.py`` (seed 0) -> ``mmskin build`` -> a dataset of real textbook-style records (cached in
   ``benchmarks/_work/curate_speed/bookset_ds``); each timing curates a fresh copy of it.
2. Dev images: every image under ``../shared/data/images`` becomes one record (NCI photos get their real expert
   caption, the rest an empty one), so the image work is timed on varied sizes and classes.

Each is curated with ``--workers 1`` and ``--workers 2``; the time includes reading and writing records.jsonl,
model loading and the worker pool start.

    .venv/bin/python benchmarks/curate/curate_speed.py
    .venv/bin/python benchmarks/curate/curate_speed.py --repeat 3
    .venv/bin/python benchmarks/curate/curate_speed.py --no-bookset --compare-src ../main/src   # before/after
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, for _common
from _common import BENCHMARKS, REPO, WORK, add_data_argument, save_results  # noqa: E402

from mmskin import __version__  # noqa: E402
from mmskin.cli import main as mmskin_main  # noqa: E402
from mmskin.curate.pipeline import CurateConfig, run  # noqa: E402
from mmskin.records import record_id, sha256_file, write_jsonl  # noqa: E402

SPEED_WORK = WORK / "curate_speed"


def bookset_dataset() -> Path:
    ds = SPEED_WORK / "bookset_ds"
    if (ds / "records.jsonl").is_file():
        return ds
    books = WORK / "bookset"
    if not any(books.glob("*.pdf")):
        subprocess.run(
            [sys.executable, str(BENCHMARKS / "pdf" / "make_bookset.py"), "--out", str(books)], check=True
        )
    pdfs = sorted(str(p) for p in books.glob("*.pdf"))
    rc = mmskin_main(["build", *pdfs, "--out", str(ds), "--workers", "2", "--quiet"])
    if rc != 0:
        print(f"mmskin build exited {rc} (some pages failed); timing the records it wrote")
    return ds


def dev_dataset(data: Path) -> Path:
    ds = SPEED_WORK / "dev_ds"
    if (ds / "records.jsonl").is_file():
        return ds
    caps = {}
    cap_csv = data / "images" / "clinical" / "nci_nevus_recognition" / "image_captions.csv"
    if cap_csv.is_file():
        with open(cap_csv, newline="", encoding="utf-8") as f:
            caps = {r["file"]: r["caption"] for r in csv.DictReader(f)}
    from mmskin.curate.features import load_image

    recs = []
    for p in sorted((data / "images").rglob("*")):
        if p.suffix.lower() not in (".jpg", ".jpeg", ".png"):
            continue
        rel = str(p.relative_to(data))
        sha = sha256_file(p)
        dst = ds / "images" / sha[:2] / f"{sha}{p.suffix.lower()}"
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(p, dst)
        h, w = load_image(p).shape[:2]
        cap = caps.get(rel, "")
        recs.append(
            {
                "id": record_id(hashlib.sha256(rel.encode()).hexdigest(), 1, [0, 0, w, h], None),
                "image": str(dst.relative_to(ds)),
                "width": w,
                "height": h,
                "source": {
                    "file": rel.split("/")[2] + ".pdf",
                    "sha256": hashlib.sha256(rel.split("/")[2].encode()).hexdigest(),
                    "page": 1,
                    "bbox": [0, 0, w, h],
                },
                "figure_label": None,
                "panel": None,
                "caption_raw": cap,
                "caption": cap,
                "flags": [],
            }
        )
    write_jsonl(ds / "records.jsonl", recs)
    return ds


def time_curate(ds: Path, workers: int, repeat: int) -> tuple[float, int, str]:
    best, n, line = float("inf"), 0, ""
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            d = Path(tmp) / "ds"
            shutil.copytree(ds, d)
            t = time.perf_counter()
            s = run(CurateConfig.from_defaults(dataset=d, workers=workers))  # problems: silent, as before
            best = min(best, time.perf_counter() - t)
            n, line = s.counts["records"], s.summary
    return best, n, line


def time_cli(ds: Path, workers: int, repeat: int, src: Path) -> float:
    """Best wall time of ``python -m mmskin curate`` on a fresh copy of ``ds`` with the mmskin of ``src`` (a
    checkout's ``src/``): the before/after comparison, both sides timed the same way (interpreter start included)."""
    best = float("inf")
    env = {**os.environ, "PYTHONPATH": str(src)}
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            d = Path(tmp) / "ds"
            shutil.copytree(ds, d)
            cmd = [sys.executable, "-m", "mmskin", "curate", str(d), "--workers", str(workers), "--quiet"]
            t = time.perf_counter()
            subprocess.run(cmd, env=env, check=False, stdout=subprocess.DEVNULL)
            best = min(best, time.perf_counter() - t)
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_argument(ap)
    ap.add_argument("--repeat", type=int, default=1, help="best of N runs")
    ap.add_argument("--no-bookset", dest="bookset", action="store_false", help="only the dev images")
    ap.add_argument(
        "--compare-src",
        type=Path,
        default=None,
        help="also time this src/ (another checkout) by the command line",
    )
    a = ap.parse_args(argv)
    import cv2
    import numpy as np

    print(f"mmskin {__version__}, numpy {np.__version__}, opencv {cv2.__version__}, {os.cpu_count()} cores")
    sets = [("book set (make_bookset seed 0 + mmskin build)", bookset_dataset())] if a.bookset else []
    if (a.data / "images").is_dir():
        sets.append(("dev images (../shared/data/images)", dev_dataset(a.data)))
    runs = []
    for name, ds in sets:
        for workers in (1, 2):
            sec, n, line = time_curate(ds, workers, a.repeat)
            print(f"{name}: {n} records, --workers {workers}: {sec:.1f} s = {n / sec:.1f} images/s")
            runs.append({"set": name, "workers": workers, "records": n, "seconds": sec, "last_run": line})
        print(f"    last run: {line}")
        for label, src in (("this mmskin", REPO / "src"), (str(a.compare_src), a.compare_src)):
            for workers in (1, 2) if a.compare_src else ():
                sec = time_cli(ds, workers, a.repeat, src)
                print(f"  {label}, command line, --workers {workers}: {sec:.1f} s = {n / sec:.1f} images/s")
                runs.append({"set": name, "src": str(src), "workers": workers, "records": n, "seconds": sec})
    save_results("curate", "curate_speed", {"runs": runs}, a, packages=["numpy", "opencv-python-headless"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
