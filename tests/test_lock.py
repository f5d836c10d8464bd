"""One writer per dataset: a second writer waits (saying for whom) or stops with one line; a killed holder
never leaves the dataset locked; two builds of different books started together end as their union."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from mmskin.lock import dataset_lock, lock_path
from mmskin.stage import Reporter, StageError

SRC = str(Path(__file__).resolve().parents[1] / "src")
HOLD = """
import sys, time
from pathlib import Path
from mmskin.lock import dataset_lock
with dataset_lock(Path(sys.argv[1]), "mmskin build"):
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
"""


class Warnings(Reporter):
    def __init__(self) -> None:
        self.lines: list[str] = []

    def warning(self, message: str) -> None:
        self.lines.append(message)


def _holder(ds: Path, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(ds), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": SRC},
    )
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_writer_stops_with_one_line_or_waits(tmp_path: Path) -> None:
    proc = _holder(tmp_path, 1.5)
    try:
        with pytest.raises(StageError) as e:
            with dataset_lock(tmp_path, "mmskin curate", wait=False):
                pass
        msg = str(e.value)
        assert "\n" not in msg and f"pid {proc.pid}, mmskin build, since" in msg and "busy" in msg
        rep = Warnings()
        t = time.perf_counter()
        with dataset_lock(tmp_path, "mmskin curate", rep):
            waited = time.perf_counter() - t
            assert f"pid {os.getpid()}, mmskin curate" in lock_path(tmp_path).read_text()
        assert (
            waited > 0.8 and len(rep.lines) == 1
        )  # the holder kept it 1.5 s and f"waiting for pid {proc.pid}" in rep.lines[0]
        assert lock_path(tmp_path).read_text() == ""  # emptied on release: reruns leave the same folder
    finally:
        proc.kill()
        proc.wait()


def test_a_killed_holder_leaves_no_stuck_lock(tmp_path: Path) -> None:
    proc = _holder(tmp_path, 60)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert "pid" in lock_path(tmp_path).read_text()  # its stale note is still there ...
    with dataset_lock(tmp_path, "mmskin build", wait=False):  # ... but the lock went with the process
        pass


def test_threads_of_one_process_exclude_each_other(tmp_path: Path) -> None:
    inside: list[int] = []
    overlap = []

    def writer() -> None:
        with dataset_lock(tmp_path, "mmskin build"):
            inside.append(1)
            overlap.append(len(inside))
            time.sleep(0.05)
            inside.pop()

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert overlap == [1, 1, 1, 1]
