"""Command-line registration for this stage (imports nothing heavy at import time)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add this stage's sub-commands to the mmskin parser."""
