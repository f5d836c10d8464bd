"""Command-line registration for the vqa stage: ``vqa`` (cli_generate), ``convert-public``, ``export`` and
``import`` (cli_convert). Imports nothing heavy at import time."""

from __future__ import annotations

import argparse

from . import cli_convert, cli_generate


def register(sub: argparse._SubParsersAction) -> None:
    cli_generate.register(sub)
    cli_convert.register(sub)
