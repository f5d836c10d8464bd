"""The terminal side of every command: problems on stderr, rich progress bars, the summary line on stdout.

Stages talk to a :class:`~mmskin.stage.Reporter`; the CLI gives them a :class:`ConsoleReporter`. This module is
the only place that prints on behalf of a stage.

    >>> from mmskin.console import ConsoleReporter, finish
    >>> reporter = ConsoleReporter(quiet=True)
    >>> result = run(config, reporter)        # any stage
    >>> exit_code = finish(result)            # prints the summary line, returns 0 or 1
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from .stage import Problem, Reporter, StageResult


def stderr(message: str) -> None:
    """One line on stderr, flushed at once (errors and warnings must not wait behind a progress bar)."""
    print(message, file=sys.stderr, flush=True)


class ConsoleReporter(Reporter):
    """Problems as ``error: WHERE: REASON`` on stderr; a rich progress bar unless ``quiet``."""

    def __init__(self, quiet: bool = False, prefix: str = "error") -> None:
        self.quiet, self.prefix = quiet, prefix

    def problem(self, p: Problem) -> None:
        stderr(f"{self.prefix}: {p}")

    def warning(self, message: str) -> None:
        stderr(f"warning: {message}")

    @contextmanager
    def progress(self, total: int, description: str) -> Iterator[Callable[[int], None]]:
        if self.quiet or total <= 0:
            yield lambda n=1: None
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        bar = Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
        )
        with bar:
            task = bar.add_task(description, total=total)
            yield lambda n=1: bar.advance(task, n)


def run_guarded(
    prefix: str, run: Callable[..., StageResult], config: object, quiet: bool = False
) -> StageResult | int:
    """``run(config, ConsoleReporter(quiet))``, or the exit status of an error that stopped the stage: settings
    it cannot use (ConfigError) exit 2, a stage that cannot run (StageError) its own status; one line on
    stderr, ``PREFIX: REASON``."""
    from .config import ConfigError
    from .stage import StageError

    try:
        return run(config, ConsoleReporter(quiet=quiet))
    except ConfigError as e:
        stderr(f"{prefix}: {e}")
        return 2
    except StageError as e:
        stderr(f"{prefix}: {e}")
        return e.exit_code


def finish(result: StageResult) -> int:
    """Print the stage's summary line on stdout and return its exit status."""
    if result.summary:
        print(result.summary, flush=True)
    return result.exit_code
