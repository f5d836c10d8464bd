"""``mmskin eval zeroshot`` and ``mmskin eval probe`` registration (imports nothing heavy at import time)."""

from __future__ import annotations

import argparse


def register(eval_sub: argparse._SubParsersAction) -> None:
    """Add ``zeroshot`` and ``probe`` to the ``mmskin eval`` sub-parsers."""
