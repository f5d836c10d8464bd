"""What the export, import and convert-public commands share: the LLaVA conversation form of a sample, missing
images as their own kind of problem, the errors of line readers as problems, and the row tally of a run.

    >>> from mmskin.vqa.samples import llava_item
    >>> llava_item({"id": "q1", "image": "images/ab/ab.png", "question": "What is shown?", "answer": "A nevus."})
    {'id': 'q1', 'image': 'images/ab/ab.png', 'conversations': [{'from': 'human', 'value': '<image>\\nWhat is shown?'}, {'from': 'gpt', 'value': 'A nevus.'}]}
"""

from __future__ import annotations

import csv
import hashlib
from collections import Counter
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ..config import ConfigError
from ..records import FLAGS, csv_header, open_csv
from ..stage import Problem, Problems, StageError, add_line_errors

__all__ = ["add_line_errors"]  # re-exported: readers of JSONL files report bad lines with it

IMAGE_TOKEN = "<image>"


class ExportError(StageError):
    """An export or import that cannot run at all (exit status 2); one line naming the file and the reason."""

    def __init__(self, message: str) -> None:
        super().__init__("", message, exit_code=2)


@dataclass(frozen=True)
class MissingImage(Problem):
    """An image that a sample or metadata row names but that is not on disk (printed as ``missing: ...``)."""


def add_missing(problems: Problems, where: object, reason: str) -> MissingImage:
    p = MissingImage(str(where), reason)
    problems.take([p])
    return p


def split_problems(problems: list[Problem]) -> tuple[list[Problem], list[Problem]]:
    """(errors, missing images) of a run."""
    missing = [p for p in problems if isinstance(p, MissingImage)]
    return [p for p in problems if not isinstance(p, MissingImage)], missing


def read_csv(
    path: Path, problems: Problems, error: type[StageError] = ExportError
) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """Header (names stripped) and (line, row) pairs of a CSV; a row with more fields than the header has them
    under the key None. A malformed CSV stops at the bad line with one problem (earlier rows stay); a file that
    cannot be read, is not UTF-8 or has no header raises ``error``."""
    rows: list[tuple[int, dict[str, str]]] = []
    header: list[str] = []
    fh, reader = open_csv(path, error)
    with fh:
        try:
            header = csv_header(reader)
            for row in reader:
                rows.append((reader.line_num, row))
        except csv.Error as e:
            problems.add(f"{path}:{reader.line_num}", f"malformed CSV ({e}); rows after it were not read")
        except UnicodeDecodeError:
            raise error(f"{path}: not UTF-8 text") from None
    if not header:
        raise error(f"{path}: empty CSV (no header)")
    return header, rows


def llava_item(sample: dict[str, Any]) -> dict[str, Any]:
    """One VQA sample as a LLaVA conversation (the image token starts the human turn, as in LLaVA-Med's data)."""
    item = {
        "id": sample["id"],
        "image": sample["image"],
        "conversations": [
            {"from": "human", "value": f"{IMAGE_TOKEN}\n{sample['question']}"},
            {"from": "gpt", "value": sample["answer"]},
        ],
    }
    for k in ("record_id", "question_type"):  # extra keys: LLaVA's loader ignores them, our import reads them
        if sample.get(k):
            item[k] = sample[k]
    return item


def short_hash(*parts: str) -> str:
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:20]


def tally_counts(tally: Any, problems: list[Problem]) -> dict[str, Any]:
    """The ``counts`` of an info file: every field of a tally dataclass (counters as sorted dicts), plus the
    numbers of missing images and of other problems."""
    errors, missing = split_problems(problems)
    out = {}
    for f in fields(tally):
        v = getattr(tally, f.name)
        out[f.name] = dict(sorted(v.items())) if isinstance(v, Counter) else v
    return {**out, "missing_images": len(missing), "errors": len(errors)}


@dataclass
class Tally:
    """Rows of an export or import: read, written, left out (flagged, or skipped with a reason), per question type."""

    rows: int = 0
    read: int = 0
    flagged: int = 0
    skipped: Counter = field(default_factory=Counter)
    by_question_type: Counter = field(default_factory=Counter)

    def line(self, what: str, problems: list[Problem], out: object) -> str:
        """The summary line, e.g. 'export vqa as llava: 12 rows from 13 read, 1 flagged left out, ...'."""
        errors, missing = split_problems(problems)
        skipped = "".join(f", {n} {why}" for why, n in sorted(self.skipped.items()))
        flagged = f", {self.flagged} flagged left out" if what.startswith("export") else ""
        return (
            f"{what}: {self.rows} rows from {self.read} read{flagged}{skipped}, "
            f"{len(missing)} missing images, {len(errors)} errors{f' -> {out}' if out else ''}"
        )


def check_flag_names(names: list[str]) -> None:
    """ConfigError for a name of ``--exclude-flags`` that is not in the flag table."""
    known = [f.name for f in FLAGS]
    for n in names:
        if n not in known:
            raise ConfigError(f"--exclude-flags: unknown flag {n!r} (flags: {', '.join(known)})")
