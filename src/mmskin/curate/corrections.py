"""Human modality corrections for curate: an ``id,modality`` CSV (``mmskin review`` writes a template).

Each bad line is one problem (``corrections.csv:LINE``: reason); the good lines still apply. A corrected record
keeps ``modality_source: human`` and its modality on later runs without the file.

    mmskin curate data/derm --corrections review/corrections.csv

    >>> from mmskin.curate.corrections import read_corrections
    >>> corrections = read_corrections(Path("review/corrections.csv"), known_ids, problems)
    >>> corrections.applied        # {record id: (modality, line number)}
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..records import MODALITIES, sha256_file
from ..stage import Problems


@dataclass
class Corrections:
    """The usable lines of a corrections file and how many lines were refused."""

    path: Path
    applied: dict[str, tuple[str, int]] = field(default_factory=dict)  # record id -> (modality, line)
    bad_lines: int = 0

    def info(self) -> dict[str, Any]:
        """The ``corrections`` entry of curate_info.json."""
        sha = sha256_file(self.path) if self.path.is_file() else None
        return {
            "file": str(self.path),
            "sha256": sha,
            "applied": len(self.applied),
            "bad_lines": self.bad_lines,
        }


def read_corrections(path: Path, known_ids: set[str], problems: Problems) -> Corrections:
    """The corrections of ``path`` for records in ``known_ids``; every refused line becomes one problem."""
    path = Path(path)
    out = Corrections(path)

    def refuse(where: str, reason: str) -> None:
        problems.add(where, reason)
        out.bad_lines += 1

    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        refuse(str(path), f"cannot read corrections ({type(e).__name__}: {e})")
        return out
    try:
        rows = list(csv.reader(text.splitlines(), strict=True))
    except csv.Error as e:
        refuse(str(path), f"malformed CSV ({e})")
        return out
    if not rows or [c.strip().lower() for c in rows[0][:2]] != ["id", "modality"]:
        refuse(f"{path}:1", "header must be 'id,modality'")
        return out
    for n, row in enumerate(rows[1:], 2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) < 2:
            refuse(f"{path}:{n}", f"expected 'id,modality', got {','.join(row)!r}")
            continue
        rid, mod = row[0].strip(), row[1].strip().lower()
        if rid not in known_ids:
            refuse(f"{path}:{n}", f"unknown record id {rid!r}")
        elif mod not in MODALITIES:
            refuse(f"{path}:{n}", f"modality {row[1].strip()!r} is not one of {', '.join(MODALITIES)}")
        else:
            out.applied[rid] = (mod, n)
    return out
