"""One shape for every stage: a config dataclass in, ``run(config, reporter) -> StageResult`` out.

A stage never prints. It reports what goes wrong as :class:`Problem` items (where + reason, one line each) and
the progress of long loops through a :class:`Reporter`; the command line passes a console reporter (stderr lines,
a rich progress bar), tests and library users pass none (silent). The result carries the counts, every problem
and one summary line; the CLI prints the line and maps problems to the exit status (0 = nothing failed).

    >>> from mmskin.stage import Problems, StageResult
    >>> problems = Problems()
    >>> problems.add("book.pdf page 3", "cannot render page")
    Problem(where='book.pdf page 3', reason='cannot render page')
    >>> result = StageResult("build", {"records": 12}, problems, "built 1 file: 12 records")
    >>> result.exit_code
    1
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Problem:
    """Something that failed for one input (a file, a page, a line, a record); the rest of the batch went on.

    ``where`` names the input as precisely as known (``book.pdf page 4``, ``corrections.csv:7``, a record id);
    ``reason`` is one line a user can act on.
    """

    where: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}" if self.where else self.reason

    def to_dict(self) -> dict[str, str]:
        return {"where": self.where, "reason": self.reason}


class Reporter:
    """Where a stage says what happens while it runs. This base class is silent (library use, tests)."""

    def problem(self, p: Problem) -> None:
        """Called once per problem, as it happens."""

    def warning(self, message: str) -> None:
        """Something worth knowing that is not a failure (no exit status change)."""

    @contextmanager
    def progress(self, total: int, description: str) -> Iterator[Callable[[int], None]]:
        """``with reporter.progress(n, "pages") as advance: advance(1)``; silent here."""
        yield lambda n=1: None


SILENT = Reporter()


class Problems(list):
    """The problems of one run: a list of :class:`Problem` that also tells the reporter about each one."""

    def __init__(self, reporter: Reporter | None = None) -> None:
        super().__init__()
        self._reporter = reporter or SILENT

    def add(self, where: object, reason: str) -> Problem:
        p = Problem(str(where), " ".join(str(reason).split()))
        self.append(p)
        self._reporter.problem(p)
        return p

    def take(self, problems: list[Problem]) -> None:
        """Add problems found elsewhere (a worker process) in their order."""
        for p in problems:
            self.append(p)
            self._reporter.problem(p)


_LINE_ERROR = re.compile(r"^(.*?:\d+): (.*)$", re.S)


def add_line_errors(problems: Problems, errors: list[str]) -> None:
    """Errors of ``records.iter_jsonl`` ('FILE:LINE: reason') as problems located at FILE:LINE."""
    for msg in errors:
        m = _LINE_ERROR.match(msg)
        problems.add(*(m.groups() if m else ("", msg)))


def reason_of(exc: BaseException, limit: int = 200) -> str:
    """A one-line reason from an exception: its first message line, else its type name."""
    text = str(exc).strip()
    first = text.splitlines()[0][:limit] if text else ""
    return first or type(exc).__name__


@dataclass
class StageResult:
    """What a stage did: ``counts`` (name → number, in a stable order), every problem, one summary line."""

    stage: str
    counts: dict[str, Any] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    summary: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # stage-specific details (paths written, tables)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1


class StageError(Exception):
    """A stage cannot start or go on at all (unreadable dataset, bad config): one line, exit status 1.

    Failures of single inputs are not raised; they become :class:`Problem` items and the batch goes on.
    """

    def __init__(self, where: object, reason: str, exit_code: int = 1) -> None:
        super().__init__(f"{where}: {reason}" if where else reason)
        self.where, self.reason, self.exit_code = str(where), reason, exit_code
