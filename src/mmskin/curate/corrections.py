"""Human corrections for curate: a CSV with the header ``id,modality[,exclude,caption]``.

``mmskin review DATASET --serve`` writes every decision at once to the dataset's own ``DATASET/corrections.csv``
(atomically), and ``mmskin curate DATASET`` applies that file on every run when it is there (``--corrections CSV``
names another one). The columns of a line, each empty when the curator did not decide it:

- ``modality``: clinical, dermoscopy, pathology or other (``modality_source: human``; kept on later runs even
  without the file, as before);
- ``exclude``: ``yes`` keeps the record out of VQA and exports (flag ``excluded``); ``no`` keeps it in although
  curate flagged it (curate's excluding flags are set aside under the flag ``included``, reasons kept);
- ``caption``: the caption as the curator wrote it (replaces the cleaned caption; ``caption_source: human``).

The old two-column ``id,modality`` file is still read. Each bad line is one problem (``corrections.csv:LINE``:
reason); the good lines still apply.

    mmskin curate data/derm --corrections review/corrections.csv

    >>> from mmskin.curate.corrections import read_corrections
    >>> corrections = read_corrections(Path("data/derm/corrections.csv"), known_ids, problems)
    >>> corrections.applied        # {record id: (modality, line number)}
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..records import EXCLUDING_FLAGS, MODALITIES, atomic_write_bytes, sha256_file
from ..stage import Problems

COLUMNS = ("id", "modality", "exclude", "caption")
DATASET_FILE = "corrections.csv"  # the dataset's own corrections file (written by mmskin review --serve)
YES, NO = ("yes", "true", "1", "exclude"), ("no", "false", "0", "include")


@dataclass(frozen=True)
class Decision:
    """A curator's decision on one record; None fields were not decided."""

    modality: str | None = None
    exclude: bool | None = None
    caption: str | None = None

    def empty(self) -> bool:
        return self.modality is None and self.exclude is None and self.caption is None

    def row(self, rid: str) -> list[str]:
        ex = "" if self.exclude is None else ("yes" if self.exclude else "no")
        return [rid, self.modality or "", ex, self.caption if self.caption is not None else ""]

    def as_dict(self) -> dict[str, Any]:
        return {"modality": self.modality, "exclude": self.exclude, "caption": self.caption}


@dataclass
class Corrections:
    """The usable lines of a corrections file and how many lines were refused."""

    path: Path
    applied: dict[str, tuple[str, int]] = field(default_factory=dict)  # record id -> (modality, line)
    exclude: dict[str, tuple[bool, int]] = field(default_factory=dict)  # record id -> (exclude?, line)
    captions: dict[str, tuple[str, int]] = field(default_factory=dict)  # record id -> (caption, line)
    bad_lines: int = 0

    def records(self) -> int:
        """How many records have a decision."""
        return len(set(self.applied) | set(self.exclude) | set(self.captions))

    def info(self) -> dict[str, Any]:
        """The ``corrections`` entry of curate_info.json."""
        sha = sha256_file(self.path) if self.path.is_file() else None
        return {
            "file": str(self.path),
            "sha256": sha,
            "applied": len(self.applied),
            "exclude": len(self.exclude),
            "captions": len(self.captions),
            "bad_lines": self.bad_lines,
        }


def parse_line(row: list[str], columns: list[str]) -> tuple[str, Decision]:
    """(record id, decision) of one CSV row under ``columns``; ValueError with the reason for a bad value."""
    if len(row) < 2:
        raise ValueError(f"expected '{','.join(columns)}', got {','.join(row)!r}")
    cells = dict(zip(columns, row))
    rid = cells.get("id", "").strip()
    if not rid:
        raise ValueError("empty record id")
    mod = cells.get("modality", "").strip().lower() or None
    if mod is not None and mod not in MODALITIES:
        raise ValueError(f"modality {cells['modality'].strip()!r} is not one of {', '.join(MODALITIES)}")
    ex_text = cells.get("exclude", "").strip().lower()
    if ex_text and ex_text not in YES + NO:
        raise ValueError(f"exclude {cells['exclude'].strip()!r} is not yes or no")
    exclude = None if not ex_text else ex_text in YES
    caption = cells.get("caption")
    caption = caption if caption is not None and caption.strip() else None
    return rid, Decision(mod, exclude, caption)


def _rows(path: Path, refuse) -> tuple[list[str], list[tuple[int, list[str]]]] | None:
    """(columns, [(line, row)]) of a corrections CSV; None (after ``refuse``) when the file is unusable."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        refuse(str(path), f"cannot read corrections ({type(e).__name__}: {e})")
        return None
    try:
        reader = csv.reader(io.StringIO(text, newline=""), strict=True)
        rows = [(reader.line_num, r) for r in reader]
    except csv.Error as e:
        refuse(str(path), f"malformed CSV ({e})")
        return None
    header = [c.strip().lower() for c in rows[0][1]] if rows else []
    if header[:2] != ["id", "modality"] or any(c not in COLUMNS for c in header):
        refuse(f"{path}:1", "header must be 'id,modality' (then optionally exclude, caption)")
        return None
    return header, rows[1:]


def read_corrections(path: Path, known_ids: set[str], problems: Problems) -> Corrections:
    """The corrections of ``path`` for records in ``known_ids``; every refused line becomes one problem."""
    path = Path(path)
    out = Corrections(path)

    def refuse(where: str, reason: str) -> None:
        problems.add(where, reason)
        out.bad_lines += 1

    parsed = _rows(path, refuse)
    if parsed is None:
        return out
    columns, rows = parsed
    for n, row in rows:
        if not row or all(not c.strip() for c in row):
            continue
        try:
            rid, d = parse_line(row, columns)
        except ValueError as e:
            refuse(f"{path}:{n}", str(e))
            continue
        if rid not in known_ids:
            refuse(f"{path}:{n}", f"unknown record id {rid!r}")
            continue
        if d.modality is not None:
            out.applied[rid] = (d.modality, n)
        if d.exclude is not None:
            out.exclude[rid] = (d.exclude, n)
        if d.caption is not None:
            out.captions[rid] = (d.caption, n)
    return out


def load_decisions(path: Path) -> dict[str, Decision]:
    """Every well-formed decision of a corrections file, in file order (bad lines are skipped: the review
    server rewrites the file from this, so a hand-made bad line is the only thing it drops)."""
    out: dict[str, Decision] = {}
    if not Path(path).is_file():
        return out
    parsed = _rows(Path(path), lambda where, reason: None)
    if parsed is None:
        return out
    columns, rows = parsed
    for _, row in rows:
        try:
            rid, d = parse_line(row, columns)
        except ValueError:
            continue
        if not d.empty():
            out[rid] = d
    return out


def write_decisions(path: Path, decisions: dict[str, Decision]) -> None:
    """The corrections file of ``decisions`` (header ``id,modality,exclude,caption``), written atomically."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for rid, d in decisions.items():
        if not d.empty():
            w.writerow(d.row(rid))
    atomic_write_bytes(path, buf.getvalue().encode("utf-8"))


def human_flags(
    rec: dict[str, Any], corrections: Corrections | None
) -> tuple[list[str], dict[str, str]] | None:
    """``(flags, flag_reasons)`` of a record after the curator's exclude/include, or None when there is none."""
    if corrections is None or rec["id"] not in corrections.exclude:
        return None
    exclude, line = corrections.exclude[rec["id"]]
    where = f"{corrections.path.name}:{line}"
    flags = [f for f in rec["flags"] if f not in ("excluded", "included")]
    reasons = {k: v for k, v in (rec.get("flag_reasons") or {}).items() if k not in ("excluded", "included")}
    if exclude:
        reasons["excluded"] = f"excluded by a curator ({where})"
        flags.append("excluded")
    else:
        over = [f for f in flags if f in EXCLUDING_FLAGS]
        said = "; ".join(f"{f}: {reasons.pop(f, '')}" for f in over)
        flags = [f for f in flags if f not in over] + ["included"]
        reasons["included"] = f"included by a curator ({where})" + (f" over {said}" if said else "")
    return sorted(flags), dict(sorted(reasons.items()))
