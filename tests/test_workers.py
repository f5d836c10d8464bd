"""Worker processes die with their parent (kill -9 included); SIGTERM stops a command as Ctrl-C does."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_build_cli import _book

from mmskin.cli import main

SRC = str(Path(__file__).resolve().parents[1] / "src")
POOL = """
import time
from mmskin.workers import process_pool
with process_pool(2) as ex:
    futures = [ex.submit(time.sleep, 60) for _ in range(2)]
    time.sleep(0.5)
    print(" ".join(str(p) for p in ex._processes), flush=True)
    time.sleep(60)
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended
    except OSError:
        return False


def _children(pid: int) -> list[int]:
    found = []
    for d in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{d}/stat") as f:
                if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(d))
        except (OSError, ValueError):
            pass
    return found


def _gone(pids: list[int], within: float = 10.0) -> bool:
    deadline = time.time() + within
    while time.time() < deadline:
        if not any(_alive(p) for p in pids):
            return True
        time.sleep(0.1)
    return False


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc")
def test_pool_workers_die_with_a_killed_parent() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", POOL], stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": SRC}
    )
    workers = [int(p) for p in proc.stdout.readline().split()]
    assert len(workers) == 2 and all(_alive(p) for p in workers)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    alive = [p for p in workers if not _gone([p])]
    for p in alive:
        os.kill(p, signal.SIGKILL)
    assert not alive, "workers outlived their parent"


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc")
def test_sigterm_stops_a_build_like_ctrl_c_and_a_rerun_finishes_it(tmp_path: Path) -> None:
    book = _book(tmp_path / "book.pdf", repeat=12)
    out = tmp_path / "ds"
    cmd = [sys.executable, "-m", "mmskin", "build", str(book), "--out", str(out), "--workers", "2", "--quiet"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": SRC})
    deadline = time.time() + 60
    workers: list[int] = []
    while time.time() < deadline and len(workers) < 2:
        workers = _children(proc.pid)
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143 and err.strip().splitlines()[-1] == "terminated"
    assert _gone(workers, 5)
    assert main(["build", str(book), "--out", str(out), "--workers", "2", "--quiet"]) == 0
    ref = tmp_path / "ref"
    assert main(["build", str(book), "--out", str(ref), "--workers", "1", "--quiet"]) == 0
    assert (out / "records.jsonl").read_bytes() == (ref / "records.jsonl").read_bytes()
    assert not list(out.rglob(".*.tmp"))
