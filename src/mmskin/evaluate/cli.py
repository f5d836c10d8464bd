"""``mmskin eval vqa|zeroshot|probe`` (imports nothing heavy at import time)."""

from __future__ import annotations

import argparse

from . import cli_models


def register(sub: argparse._SubParsersAction) -> None:
    ev = sub.add_parser("eval", help="benchmark models: open VQA metrics, zero-shot, linear probe")
    eval_sub = ev.add_subparsers(dest="eval_command", required=True, metavar="TASK")
    cli_models.register(eval_sub)
