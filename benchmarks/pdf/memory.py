"""Peak memory of `mmskin build` on long books: a PDF of N pages (default 250, 500, 1000) is made by repeating
real book pages, built in a subprocess, and the resident memory of the whole process tree (main + workers) is
sampled every 20 ms from /proc. Flat means the peak does not grow with the page count.

    python benchmarks/pdf/memory.py                   # pages from benchmarks/_work/bookset
    python benchmarks/pdf/memory.py --pages 1000 --workers 2
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pymupdf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, for _common
from _common import REPO, WORK, add_out_argument, save_results  # noqa: E402


def _children(pid: int) -> list[int]:
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ppid == pid:
                out.append(int(d))
    return out


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def tree_rss(pid: int) -> tuple[float, float]:
    """(sum over the process tree, largest single process) in MB."""
    pids = [pid]
    i = 0
    while i < len(pids):
        pids.extend(_children(pids[i]))
        i += 1
    vals = [_rss_mb(p) for p in pids]
    return sum(vals), max(vals, default=0.0)


def make_book(src_dir: Path, pages: int, out: Path) -> Path:
    srcs = sorted(src_dir.glob("*.pdf"))
    if not srcs:
        raise SystemExit(f"no PDFs in {src_dir}: run benchmarks/pdf/make_bookset.py first")
    doc = pymupdf.open()
    while doc.page_count < pages:
        for s in srcs:
            with pymupdf.open(s) as d:
                if all(len(p.get_text().strip()) > 20 for p in d):  # born-digital books only
                    doc.insert_pdf(d, to_page=min(d.page_count, pages - doc.page_count) - 1)
            if doc.page_count >= pages:
                break
    doc.save(out, garbage=3, deflate=True)
    return out


def measure(pdf: Path, workers: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="mmskin-mem-") as out:
        cmd = [
            sys.executable,
            "-m",
            "mmskin",
            "build",
            str(pdf),
            "--out",
            out,
            "--workers",
            str(workers),
            "--quiet",
        ]
        t = time.perf_counter()
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(REPO / "src")},
        )
        peak_sum = peak_one = 0.0
        while proc.poll() is None:
            s, m = tree_rss(proc.pid)
            peak_sum, peak_one = max(peak_sum, s), max(peak_one, m)
            time.sleep(0.02)
        err = proc.stderr.read().decode() if proc.stderr else ""
        return {
            "rc": proc.returncode,
            "seconds": time.perf_counter() - t,
            "peak_tree_mb": peak_sum,
            "peak_process_mb": peak_one,
            "stderr": err[-500:],
        }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", type=Path, default=WORK / "bookset")
    ap.add_argument("--pages", type=int, nargs="+", default=[250, 500, 1000])
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    add_out_argument(ap, "pdf", "memory")
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="mmskin-membook-") as tmp:
        for n in args.pages:
            pdf = make_book(args.src, n, Path(tmp) / f"book{n}.pdf")
            r = measure(pdf, args.workers)
            r["pages"] = n
            rows.append(r)
            print(
                f"{n:5d} pages  {r['seconds']:6.1f} s  peak RSS (all processes) {r['peak_tree_mb']:6.0f} MB"
                f"  largest process {r['peak_process_mb']:5.0f} MB  rc={r['rc']}"
            )
    save_results(
        "pdf", "memory", {"workers": args.workers, "runs": rows}, args, out=args.json, packages=["pymupdf"]
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
