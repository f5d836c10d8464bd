"""One writer per dataset: ``build``, ``curate`` and ``vqa`` hold ``DATASET/.build/lock`` while they run.

A second writer on the same dataset waits for the first (one line on stderr says who it waits for) or, with
``wait=False``, stops at once with one line. Either way nothing is lost: the waiting run starts from what the
first one wrote (two builds with different inputs end as their union).

The lock is a POSIX record lock (``fcntl.lockf``) on the file: the kernel drops it when its process ends, however
it ends (``kill -9`` included), so a killed run never leaves the dataset locked; worker processes do not inherit
it. While held, the file names its holder (pid, command, start time) for the message; it is emptied on release.
Where ``fcntl`` does not exist (Windows) only writers in one process exclude each other.

    >>> from mmskin.lock import dataset_lock
    >>> with dataset_lock(Path("data/derm"), "mmskin build", reporter):
    ...     ...   # read, then rewrite records.jsonl
"""

from __future__ import annotations

import errno
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .stage import SILENT, Reporter, StageError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

_HELD: dict[
    str, threading.Lock
] = {}  # one per lock file: writers in this process (threads) exclude each other
_HELD_GUARD = threading.Lock()


def lock_path(root: Path) -> Path:
    return Path(root) / ".build" / "lock"


def _holder(fd: int) -> str:
    """Who holds the lock, as its holder wrote it ("pid 123, mmskin build, since 12:00:01")."""
    try:
        text = os.pread(fd, 400, 0).decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    return text or "another process"


def _try(fd: int, reporter: Reporter) -> bool:
    """True when this process now holds the lock (or the file system cannot lock: then it goes on unlocked)."""
    if fcntl is None:  # pragma: no cover
        return True
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError as e:
        if e.errno in (errno.EACCES, errno.EAGAIN):  # held by another process
            return False
        reporter.warning(
            f"cannot lock the dataset ({e.strerror}): make sure no other mmskin command writes it"
        )
        return True


@contextmanager
def _lock_file(path: Path) -> Iterator[int]:
    """The lock file open for reading and writing (made with its folder when missing), closed after the block;
    closing it releases any lock taken on it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        yield fd
    finally:
        os.close(fd)


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` for the block, waiting for it: a short read-change-write of a small file
    shared between processes (no holder message). Without ``fcntl`` (Windows) it does not lock."""
    with _lock_file(Path(path)) as fd:
        if fcntl is not None:
            fcntl.lockf(fd, fcntl.LOCK_EX)
        yield


@contextmanager
def dataset_lock(
    root: Path, command: str, reporter: Reporter | None = None, wait: bool = True
) -> Iterator[None]:
    """Hold the dataset's writer lock for the block. Raises StageError (exit status 1) when another process
    holds it and ``wait`` is False; otherwise waits for it, saying once on ``reporter`` whom it waits for."""
    reporter = reporter or SILENT
    path = lock_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)  # before resolve(): the key of a folder that exists
    with _HELD_GUARD:
        local = _HELD.setdefault(str(path.resolve()), threading.Lock())
    if not local.acquire(blocking=wait):
        raise StageError(root, "another mmskin command of this process is writing this dataset")
    try:
        with _lock_file(path) as fd:
            if not _try(fd, reporter):
                who = _holder(fd)
                if not wait:
                    raise StageError(
                        root,
                        f"busy: {who} is writing this dataset; run again when it ends (or leave out --no-wait)",
                    )
                reporter.warning(f"{root}: waiting for {who}, which is writing this dataset")
                fcntl.lockf(fd, fcntl.LOCK_EX)  # blocks; Ctrl-C or SIGTERM still stop the wait
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()}, {command}, since {stamp}\n".encode(), 0)
            try:
                yield
            finally:
                os.ftruncate(fd, 0)  # an empty file: the dataset folder is the same after every run
    finally:
        local.release()
