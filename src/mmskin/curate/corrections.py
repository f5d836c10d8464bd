"""Human modality corrections for curate: an ``id,modality`` CSV (``mmskin review`` writes a template).

Each bad line is one problem (``corrections.csv:LINE``: reason); the good lines still apply. Every correction
curate applies is also kept in the dataset's corrections store, ``DATASET/corrections.jsonl`` (one
``{id, modality, file, line}`` per record; a build never touches it), and applied again on every later curate:
a corrected record keeps ``modality_source: human`` and its modality without the file, even after a build
rewrote records.jsonl. The store is the list of corrections: to undo one, delete its line (the model's modality
comes back on the next curate). A store with a broken line changes nothing until it is fixed.

    mmskin curate data/derm --corrections review/corrections.csv

    >>> from mmskin.curate.corrections import read_corrections
    >>> corrections = read_corrections(Path("review/corrections.csv"), known_ids, problems)
    >>> corrections.applied        # {record id: (modality, line number)}
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..records import MODALITIES, atomic_write_bytes, iter_jsonl, sha256_file
from ..stage import Problems, add_line_errors

STORE = "corrections.jsonl"


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


def _store_problem(obj: Any) -> list[str]:
    if not isinstance(obj, dict) or not isinstance(obj.get("id"), str):
        return ["not a correction with an id"]
    if obj.get("modality") not in MODALITIES:
        return [f"modality {obj.get('modality')!r} is not one of {', '.join(MODALITIES)}"]
    return []


@dataclass
class Store:
    """The corrections store of a dataset: entries by record id; ``authoritative`` when it was read whole (a
    record is then human exactly when it is in the store), False when missing or broken (nothing is undone)."""

    entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    authoritative: bool = False


def read_store(dataset: Path, problems: Problems) -> Store:
    """The corrections kept in ``DATASET/corrections.jsonl``; each bad line is one problem."""
    path = Path(dataset) / STORE
    if not path.is_file():
        return Store()
    errors: list[str] = []
    try:
        entries = {obj["id"]: obj for _, obj in iter_jsonl(path, errors, check=_store_problem)}
    except (OSError, UnicodeDecodeError) as e:
        problems.add(path, f"cannot read the corrections store ({type(e).__name__}: {e})")
        return Store()
    add_line_errors(problems, errors)
    return Store(entries, authoritative=not errors)


def update_store(store: Store, records: list[dict[str, Any]], corrections: Corrections | None) -> None:
    """Add this run's corrections to ``store`` (they replace earlier ones of the same record). A dataset without
    a store yet first gets the human modalities its records carry (curated before the store existed)."""
    if not store.authoritative:
        for rec in records:
            human = rec.get("modality_source") == "human" and rec.get("modality") in MODALITIES
            if human and rec["id"] not in store.entries:
                where = rec.get("modality_correction") or {}
                store.entries[rec["id"]] = {"id": rec["id"], "modality": rec["modality"], **where}
    if corrections is not None:
        for rid, (mod, line) in corrections.applied.items():
            store.entries[rid] = {"id": rid, "modality": mod, "file": corrections.path.name, "line": line}


def write_store(dataset: Path, store: Store) -> None:
    """Write the store (sorted by id, atomically) when it holds a correction or existed before; a store with
    broken lines is left as it is for its owner to fix."""
    path = Path(dataset) / STORE
    if (not store.entries and not path.exists()) or (path.exists() and not store.authoritative):
        return
    entries = store.entries
    lines = [json.dumps(entries[k], sort_keys=True, ensure_ascii=False) + "\n" for k in sorted(entries)]
    data = "".join(lines).encode("utf-8")
    if not path.is_file() or path.read_bytes() != data:
        atomic_write_bytes(path, data, durable=True)
