"""`mmskin build --engine ray` against the local engine on this machine (≥ 1,000 pages), and what bounds it on N nodes.

The inputs are the generated book set and ../shared/data/pdfs, repeated until there are at least ``--pages``
pages: copy k of a PDF is its bytes plus a trailing PDF comment, so it is a new file (the build merges
byte-identical twins) with the same pages. Both engines build the same files with the same worker count as
``python -m mmskin build`` (a fresh process each, so the Ray time includes starting and stopping its private Ray;
the time to start one is measured on its own), alternated, ``--repeat`` times; the median wall time is reported
and the outputs are compared file by file (records.jsonl, images, chunk records).

Per-page costs, measured in this process on one copy of the inputs (one worker, no pool): the PDF parse floor
(PyMuPDF text dict + image placements), the whole chunk (parse, layout, captions, images), the image encode (each
output image decoded and encoded again as the build writes it), the disk (the output bytes written and fsynced to
a fresh folder), and the driver's serial work per page (saving the chunk records, which one process does for the
whole cluster). From them, the scaling estimate for N nodes of ``--node-cores`` cores on a shared filesystem of
``--fs-mb-s`` MB/s.

    python benchmarks/engine/overhead.py                      # book set + ../shared/data/pdfs, >= 1000 pages
    python benchmarks/engine/overhead.py --pages 300 --repeat 1
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pymupdf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, for _common
from _common import DEFAULT_DATA, REPO, WORK, add_out_argument, save_results  # noqa: E402

from mmskin.pdf.build import BuildConfig  # noqa: E402
from mmskin.pdf.chunks import process_chunk, save_chunk  # noqa: E402
from mmskin.pdf.inputs import collect_pdfs  # noqa: E402
from mmskin.records import sha256_file  # noqa: E402

BOOKSET = Path("/work/bookset_new")


def repeated_inputs(sources: list[Path], pages: int, folder: Path) -> tuple[list[Path], int]:
    """Copies of ``sources`` (copy k: the bytes + a trailing comment) until they hold at least ``pages`` pages."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    counts = [pymupdf.open(f).page_count for f in sources]
    out, total, k = [], 0, 0
    while total < pages:
        for i, (f, n) in enumerate(zip(sources, counts, strict=True)):
            dst = folder / f"c{k}_{i:02d}_{f.name}"
            dst.write_bytes(f.read_bytes() + f"\n% mmskin engine benchmark copy {k}\n".encode())
            out.append(dst)
            total += n
        k += 1
    return out, total


def _tree_cpu(root: int) -> dict[int, float]:
    """CPU seconds (user + system) so far of ``root`` and every process below it (Ray's raylet and workers)."""
    tick = os.sysconf("SC_CLK_TCK")
    parent, cpu = {}, {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        parent[int(d.name)] = int(fields[1])
        cpu[int(d.name)] = (int(fields[11]) + int(fields[12])) / tick
    below = {root}
    for _ in range(8):  # a few levels: driver -> raylet -> workers -> tesseract
        below |= {p for p, pp in parent.items() if pp in below}
    return {p: cpu[p] for p in below if p in cpu}


def timed_build(files: list[Path], out: Path, engine: str, workers: int) -> tuple[float, float]:
    """(wall s, CPU s of the command and all its processes) of one ``mmskin build``. The CPU seconds do not
    depend on what else the machine runs (the wall time does: this machine's 2 cores are shared)."""
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "mmskin", "build", *map(str, files), "--out", str(out), "--quiet"]
    cmd += ["--workers", str(workers), "--engine", engine]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    seen: dict[int, float] = {}
    while proc.poll() is None:
        for pid, c in _tree_cpu(proc.pid).items():
            seen[pid] = max(c, seen.get(pid, 0.0))
        time.sleep(0.2)
    wall = time.perf_counter() - t
    stdout, stderr = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"{engine} build failed ({proc.returncode}): {stderr.strip()[-500:]}")
    cpu = sum(seen.values())
    print(f"  {engine:5s} {wall:7.2f} s wall {cpu:7.2f} s CPU  {stdout.strip().splitlines()[-1]}", flush=True)
    return wall, cpu


def tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "build_info.json"  # its provenance names the engine settings
    }


def ray_start_s(workers: int) -> tuple[float, float]:
    """Seconds to start and stop a private local Ray of ``workers`` CPUs (what each --engine ray command pays)."""
    from mmskin.engine import RayEngine

    t = time.perf_counter()
    with RayEngine(None, workers):
        up = time.perf_counter() - t
    return up, time.perf_counter() - t - up


def per_page_costs(files: list[Path], scratch: Path) -> dict[str, float]:
    """Seconds per page of each part of the work, one worker, in this process."""
    from PIL import Image

    pages = sum(pymupdf.open(f).page_count for f in files)
    t = time.perf_counter()
    for f in files:
        with pymupdf.open(f) as doc:
            for pg in doc:
                pg.get_text("dict")
                pg.get_image_info()
    parse = time.perf_counter() - t
    root = scratch / "ds"
    shutil.rmtree(scratch, ignore_errors=True)
    (root / "images").mkdir(parents=True)
    cfg = BuildConfig(inputs=[], out=root, workers=1)
    opts = cfg.chunk_options()
    config = opts.config()
    results, chunk = [], 0.0
    for f in files:
        sha, n = sha256_file(f), pymupdf.open(f).page_count
        for a in range(1, n + 1, cfg.chunk_pages):
            t = time.perf_counter()
            res = process_chunk(str(f), sha, a, min(n, a + cfg.chunk_pages - 1), str(root), opts)
            chunk += time.perf_counter() - t
            results.append((sha, a, res))
    t = time.perf_counter()
    for sha, a, res in results:
        save_chunk(root, sha, a, res, config)
    driver = time.perf_counter() - t
    images = [p for p in sorted((root / "images").rglob("*")) if p.is_file()]
    nbytes = sum(p.stat().st_size for p in images)
    t = time.perf_counter()
    for p in images:
        with Image.open(p) as im:
            im.load()
            im.save(io.BytesIO(), format=im.format)
    encode = time.perf_counter() - t
    disk_dir = scratch / "disk"
    disk_dir.mkdir()
    t = time.perf_counter()
    for i, p in enumerate(images):
        with open(disk_dir / str(i), "wb") as fh:
            fh.write(p.read_bytes())
            fh.flush()
            os.fsync(fh.fileno())
    disk = time.perf_counter() - t
    shutil.rmtree(scratch, ignore_errors=True)
    return {
        "pages": pages,
        "images": len(images),
        "image_bytes_per_page": nbytes / pages,
        "parse_s_per_page": parse / pages,
        "chunk_s_per_page": chunk / pages,
        "encode_s_per_page": encode / pages,
        "disk_s_per_page": disk / pages,
        "driver_s_per_page": driver / pages,
    }


def scaling(costs: dict[str, float], cores: int, fs_mb_s: float, ray_task_s: float) -> list[dict[str, float]]:
    """Pages/s on N nodes: the least of the cluster's CPUs (a page's whole chunk cost plus the per-task Ray
    overhead, spread over all cores), the one driver saving every chunk, and the shared filesystem's bandwidth."""
    per_core = 1 / (costs["chunk_s_per_page"] + ray_task_s)
    driver = 1 / costs["driver_s_per_page"]
    disk = fs_mb_s * 1e6 / max(costs["image_bytes_per_page"], 1.0)
    rows = []
    for n in (1, 2, 4, 8, 16, 32, 64):
        cpu = n * cores * per_core
        best = min(cpu, driver, disk)
        bound = "CPU (parse+layout+encode)" if best == cpu else "driver" if best == driver else "filesystem"
        rows.append({"nodes": n, "pages_per_s": best, "cpu_pages_per_s": cpu, "bound": bound})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("inputs", nargs="*", default=[str(BOOKSET), str(DEFAULT_DATA / "pdfs")])
    ap.add_argument("--pages", type=int, default=1000, help="at least this many pages (inputs are repeated)")
    ap.add_argument("--workers", type=int, default=2, help="workers of both engines (Ray: its CPUs)")
    ap.add_argument("--repeat", type=int, default=2, help="runs per engine; the median is reported")
    ap.add_argument("--node-cores", type=int, default=16, help="cores per node in the scaling estimate")
    ap.add_argument("--fs-mb-s", type=float, default=500.0, help="shared filesystem write MB/s (estimate)")
    add_out_argument(ap, "engine", "overhead")
    args = ap.parse_args(argv)
    work = WORK / "engine"
    sources = collect_pdfs(args.inputs)[0] or sys.exit(f"no PDFs under {args.inputs}")
    files, pages = repeated_inputs(sources, args.pages, work / "inputs")
    print(f"{len(files)} PDFs ({len(sources)} distinct), {pages} pages, {args.workers} workers each engine")
    walls: dict[str, list[float]] = {"local": [], "ray": []}
    cpus: dict[str, list[float]] = {"local": [], "ray": []}
    for _ in range(args.repeat):
        for engine in walls:
            wall, cpu = timed_build(files, work / engine, engine, args.workers)
            walls[engine].append(wall)
            cpus[engine].append(cpu)
    same = tree_digest(work / "local") == tree_digest(work / "ray")
    records_same = (work / "local/records.jsonl").read_bytes() == (work / "ray/records.jsonl").read_bytes()
    up, down = ray_start_s(args.workers)
    local_s, ray_s = statistics.median(walls["local"]), statistics.median(walls["ray"])
    local_cpu, ray_cpu = statistics.median(cpus["local"]), statistics.median(cpus["ray"])
    # Ray's CPU cost per page (its start, tasks, scheduling, the raylet): the extra CPU seconds of a Ray build
    ray_task_s = max(0.0, ray_cpu - local_cpu) / max(1, pages)
    costs = per_page_costs(sources, work / "costs")
    res = {
        "files": len(files),
        "pages": pages,
        "workers": args.workers,
        "local_s": walls["local"],
        "ray_s": walls["ray"],
        "local_median_s": local_s,
        "ray_median_s": ray_s,
        "overhead_ratio": ray_s / local_s,
        "local_cpu_s": cpus["local"],
        "ray_cpu_s": cpus["ray"],
        "cpu_ratio": ray_cpu / local_cpu,
        "ray_start_s": up,
        "ray_stop_s": down,
        "overhead_ratio_without_start": (ray_s - up - down) / local_s,
        "ray_overhead_s_per_page_cpu": ray_task_s,
        "records_identical": records_same,
        "dataset_identical": same,
        "per_page": costs,
        "scaling": scaling(costs, args.node_cores, args.fs_mb_s, ray_task_s),
        "assumptions": {"node_cores": args.node_cores, "fs_mb_s": args.fs_mb_s},
    }
    print(f"local  median {local_s:7.2f} s  ({pages / local_s:.1f} pages/s)")
    print(f"ray    median {ray_s:7.2f} s  ({pages / ray_s:.1f} pages/s)  ratio {res['overhead_ratio']:.3f}x")
    print(
        f"  of which starting a private Ray {up:.2f} s, stopping it {down:.2f} s: without them "
        f"{res['overhead_ratio_without_start']:.3f}x"
    )
    print(
        f"CPU seconds (all processes): local {local_cpu:.1f}, ray {ray_cpu:.1f}: ratio {ray_cpu / local_cpu:.3f}x"
    )
    print(f"records.jsonl identical: {records_same}; whole dataset identical: {same}")
    ms = {k: v * 1000 for k, v in costs.items() if k.endswith("_s_per_page")}
    print(
        f"per page (1 worker): whole chunk {ms['chunk_s_per_page']:.1f} ms = parse floor "
        f"{ms['parse_s_per_page']:.1f} + image encode {ms['encode_s_per_page']:.1f} + disk "
        f"{ms['disk_s_per_page']:.2f} + layout/captions rest; driver {ms['driver_s_per_page']:.2f} ms; "
        f"{costs['image_bytes_per_page'] / 1e3:.0f} kB of images; Ray {ray_task_s * 1000:.2f} ms CPU"
    )
    print(f"scaling estimate ({args.node_cores} cores/node, shared filesystem {args.fs_mb_s:.0f} MB/s):")
    for row in res["scaling"]:
        print(f"  {row['nodes']:3d} nodes  {row['pages_per_s']:9.0f} pages/s  bound: {row['bound']}")
    save_results("engine", "overhead", res, args, out=args.json, packages=["pymupdf", "ray"])
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
