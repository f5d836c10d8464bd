"""Command-line registration for the vqa stage: ``vqa`` (cli_generate), ``convert-public``, ``export`` and
``import`` (cli_convert). Each command maps its arguments to the stage's config dataclass, runs the stage's
``run(config, reporter)`` with a console reporter and maps the result to the exit status: 0 when nothing failed,
1 when an input failed, 2 when the command cannot run (bad arguments, not a dataset, unreadable metadata).

    mmskin vqa data/derm --per-image 4
"""

from __future__ import annotations

import argparse
import dataclasses
from collections import Counter
from collections.abc import Callable
from typing import Any

from ..config import ConfigError
from ..console import ConsoleReporter, finish, stderr
from ..records import EXCLUDING_FLAGS
from ..stage import Problem, StageError, StageResult
from .samples import MissingImage

# the excluding flags in words, for the help texts ("annotated, sensitive, ... or unreadable_image")
EXCLUDING_WORDS = ", ".join(EXCLUDING_FLAGS[:-1]) + " or " + EXCLUDING_FLAGS[-1]


class ProblemLines(ConsoleReporter):
    """Problems as ``error: WHERE: REASON`` lines, missing images as ``missing: WHERE: REASON``. Past
    ``limits[kind]`` lines of a kind (no entry: no limit) only a count follows, printed by :meth:`close`."""

    NOUNS = {"error": "errors", "missing": "missing images"}

    def __init__(self, quiet: bool, limits: dict[str, int] | None = None) -> None:
        super().__init__(quiet)
        self.limits = limits or {}
        self.seen: Counter[str] = Counter()

    def problem(self, p: Problem) -> None:
        kind = "missing" if isinstance(p, MissingImage) else "error"
        self.seen[kind] += 1
        if kind not in self.limits or self.seen[kind] <= self.limits[kind]:
            stderr(f"{kind}: {p}")

    def close(self) -> None:
        for kind, limit in self.limits.items():
            if self.seen[kind] > limit:
                stderr(f"... and {self.seen[kind] - limit} more {self.NOUNS[kind]}")


def run_command(
    command: str,
    make_config: Callable[[], Any],
    run: Callable[[Any, ProblemLines], StageResult],
    reporter: ProblemLines,
) -> int:
    """Build the config, run the stage, print the summary; a config or stage that cannot run is one line
    ``mmskin COMMAND: reason`` and its exit status (2 for bad settings)."""
    try:
        result = run(make_config(), reporter)
    except (ConfigError, StageError) as e:
        reporter.close()
        stderr(f"mmskin {command}: {e}")
        return e.exit_code if isinstance(e, StageError) else 2
    reporter.close()
    return finish(result)


def positional(parser: argparse.ArgumentParser, cls: type, name: str, metavar: str) -> None:
    """A positional argument for the config field ``name`` (its help and choices come from the field)."""
    f = next(f for f in dataclasses.fields(cls) if f.name == name)
    kw: dict[str, Any] = {"metavar": metavar, "help": f.metadata["help"]}
    if f.metadata.get("choices"):
        kw["choices"] = f.metadata["choices"]
    parser.add_argument(name, **kw)


def register(sub: argparse._SubParsersAction) -> None:
    from . import cli_convert, cli_generate

    cli_generate.register(sub)
    cli_convert.register(sub)
