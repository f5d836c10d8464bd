"""What every benchmark shares: where things are, and the one way a benchmark saves its results.

A script in ``benchmarks/<stage>/`` starts with::

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, for _common
    from _common import DEFAULT_DATA, WORK, add_data_argument, add_out_argument, save_results  # noqa: E402

and ends with::

    save_results("curate", "curate_cleaning", {"A": ..., "B": ...}, args)
    # -> benchmarks/results/curate/curate_cleaning_20261206T153000Z.json (printed), with the provenance block

Importing this module puts the repository's ``src/`` first on ``sys.path``: a benchmark measures the mmskin next
to it, whatever else is installed. The development data is ``../shared/data`` next to the repository
(``--data`` changes it); scratch files go to ``benchmarks/_work/``; both ``_work/`` and ``results/`` are
gitignored.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import os
import platform
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = REPO / "benchmarks"
WORK = BENCHMARKS / "_work"  # scratch: book set, datasets, caches (shared by the stages)
RESULTS = BENCHMARKS / "results"  # results/<stage>/<name>_<UTC time>.json
DEFAULT_DATA = REPO.parent / "shared" / "data"

if str(REPO / "src") not in sys.path:
    sys.path.insert(0, str(REPO / "src"))


def add_data_argument(
    parser: argparse.ArgumentParser, *parts: str, what: str = "the shared data folder"
) -> None:
    """``--data DIR``, by default ``../shared/data`` (joined with ``parts``: a subfolder of it)."""
    parser.add_argument(
        "--data", type=Path, default=DEFAULT_DATA.joinpath(*parts), help=f"{what} (default: %(default)s)"
    )


def add_out_argument(parser: argparse.ArgumentParser, stage: str, name: str, flag: str = "--json") -> None:
    """The option that names the results file instead of :func:`results_path`'s (``--json`` or ``--out``)."""
    parser.add_argument(
        flag,
        type=Path,
        default=None,
        metavar="FILE",
        help=f"results file (default: benchmarks/results/{stage}/{name}_<UTC time>.json)",
    )


def results_path(stage: str, name: str, when: dt.datetime, folder: Path | None = None) -> Path:
    """``benchmarks/results/<stage>/<name>_<UTC time>.json`` (or the same name in ``folder``)."""
    return Path(folder or RESULTS / stage) / f"{name}_{when.strftime('%Y%m%dT%H%M%SZ')}.json"


def save_results(
    stage: str,
    name: str,
    payload: dict[str, Any],
    config: argparse.Namespace | dict[str, Any] | None = None,
    *,
    out: Path | None = None,
    folder: Path | None = None,
    packages: Iterable[str] = (),
) -> Path:
    """Write ``payload`` + ``timestamp`` + the provenance block atomically; print and return the path.

    The file is ``out`` when given (a script's ``--json``/``--out``), else :func:`results_path` (``folder``
    replaces ``benchmarks/results/<stage>``). ``config`` (the parsed arguments) goes into the provenance block
    with the versions of mmskin, Python and ``packages``, the platform and the CPU count.
    """
    from mmskin.provenance import provenance, write_info

    now = dt.datetime.now(dt.UTC)
    path = Path(out) if out else results_path(stage, name, now, folder)
    settings = vars(config) if isinstance(config, argparse.Namespace) else config
    info = {
        **payload,
        "timestamp": now.isoformat(timespec="seconds"),
        "provenance": provenance(
            stage,
            config=settings,
            packages=packages,
            benchmark=name,
            platform=platform.platform(),
            cores=os.cpu_count(),
        ),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    write_info(path, info)
    print(f"results -> {path}", flush=True)
    return path


def save_printed(
    stage: str,
    name: str,
    bench: Callable[[], int | None],
    config: argparse.Namespace | dict[str, Any] | None = None,
    packages: Iterable[str] = (),
) -> int:
    """Run ``bench()`` (a benchmark whose numbers exist only as printed lines) and keep what it prints; when it
    returns 0 (or None), save the lines as ``{"report": [...]}`` with :func:`save_results`. Returns its status."""
    with _printed() as report:
        rc = bench() or 0
    if rc == 0:
        save_results(stage, name, {"report": report.lines()}, config, packages=packages)
    return rc


class _Tee(io.TextIOBase):
    def __init__(self, stream: Any) -> None:
        self.stream, self.buffer = stream, io.StringIO()

    def write(self, text: str) -> int:
        self.buffer.write(text)
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()

    def lines(self) -> list[str]:
        return self.buffer.getvalue().splitlines()


@contextlib.contextmanager
def _printed() -> Iterator[_Tee]:
    """Stdout as usual, plus a copy (``.lines()``)."""
    tee = _Tee(sys.stdout)
    with contextlib.redirect_stdout(tee):
        yield tee
