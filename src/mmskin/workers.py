"""Worker processes that never outlive the command that started them.

:func:`process_pool` is the ``ProcessPoolExecutor`` of ``build`` and ``curate``. Its workers end with their
parent however the parent ends: on Linux the kernel sends them SIGKILL when it dies (``PR_SET_PDEATHSIG``,
``kill -9`` included), and everywhere a watcher thread in each worker exits it once its parent is gone. Workers
ignore SIGINT: Ctrl-C (or SIGTERM, which the command line turns into the same interrupt) stops the parent, which
then terminates the workers at once instead of letting them finish their tasks.

    >>> from mmskin.workers import process_pool
    >>> with process_pool(2, initializer=load_model, initargs=(path,)) as ex:
    ...     results = list(ex.map(work, tasks))
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from typing import Any

PARENT_POLL_S = 0.5  # how often a worker checks that its parent still runs (where no death signal exists)
_PR_SET_PDEATHSIG = 1


def _death_signal() -> None:
    """Ask the kernel for SIGKILL when the parent dies (Linux); silently nothing elsewhere."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _watch_parent(parent: int) -> None:
    while True:
        if os.getppid() != parent:  # re-parented: the parent is gone
            os._exit(1)
        time.sleep(PARENT_POLL_S)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _init_worker(parent: int, initializer: Callable[..., Any] | None, initargs: tuple) -> None:
    _death_signal()
    ppid = os.getppid()  # the pool's process (fork, spawn) or its fork server
    if ppid != parent and not _alive(parent):  # the parent died before the death signal was set
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(ppid,), daemon=True, name="mmskin-parent-watch").start()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and ends the workers
    # a fork inherits the parent's SIGTERM-as-Ctrl-C handler; a worker ended by its parent must just die, not raise
    # inside a C callback (PyMuPDF prints those to the shared stderr, after the parent's last line)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if initializer is not None:
        initializer(*initargs)


def _terminate(ex: ProcessPoolExecutor) -> None:
    """End the workers now (the executor's own shutdown would wait for their running tasks). SIGKILL, not SIGTERM:
    a worker still starting has the parent's handler; half-written temp files are swept by the next run."""
    for p in list((getattr(ex, "_processes", None) or {}).values()):
        try:
            p.kill()
        except (OSError, AttributeError):
            pass
    ex.shutdown(wait=False, cancel_futures=True)


def _no_inherited_thread_pool() -> None:
    """Keep OpenCV's thread pool out of forked workers: a child that tears down a pool it inherited (made by
    earlier OpenCV work in this process, e.g. a build before a curate) waits forever on the parent's threads."""
    cv2 = sys.modules.get("cv2")  # a process that never used OpenCV has no pool to pass on
    if cv2 is not None:
        cv2.setNumThreads(1)


@contextmanager
def process_pool(
    workers: int, initializer: Callable[..., Any] | None = None, initargs: tuple = ()
) -> Iterator[ProcessPoolExecutor]:
    """A process pool whose workers die with this process; on any exception (Ctrl-C, SIGTERM) they are ended
    at once and the exception goes on."""
    _no_inherited_thread_pool()
    ex = ProcessPoolExecutor(
        max_workers=workers, initializer=_init_worker, initargs=(os.getpid(), initializer, initargs)
    )
    try:
        yield ex
    except BaseException:
        _terminate(ex)
        raise
    ex.shutdown(wait=True)


class Terminated(KeyboardInterrupt):
    """SIGTERM, delivered as the interrupt Ctrl-C gives (see :func:`sigterm_as_interrupt`)."""


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` (a KeyboardInterrupt) in the main thread, so ``kill
    PID`` cleans up like Ctrl-C (workers ended, nothing half-written). Outside the main thread this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise Terminated(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
