"""Command-line registration (imports nothing heavy at import time)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add sub-commands to the ``mmskin`` parser."""
