"""Task bodies for the Ray engine tests, importable by Ray's workers (the test fixture puts this folder on their
PYTHONPATH). Each call appends a line to ``log`` first, so a test counts how often Ray ran it."""

from __future__ import annotations

import os


def _count(log: str) -> None:
    with open(log, "a", encoding="utf-8") as f:
        f.write("call\n")


def fails(item: int, log: str) -> int:
    """Raises every time: an error of the work itself, which must not be retried."""
    _count(log)
    raise ValueError(f"item {item} is bad")


def dies(item: int, log: str) -> int:
    """Kills its worker process every time: retried a bounded number of times, then an error."""
    _count(log)
    os._exit(1)


def square(item: int, log: str) -> int:
    _count(log)
    return item * item
