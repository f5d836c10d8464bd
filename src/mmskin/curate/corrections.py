"""Human corrections: one store per dataset, ``DATASET/corrections.jsonl``, that no build touches.

Each line is one record's decisions, ``{"id", "modality"?, "exclude"?, "caption"?, "file", "line"?}``:

- ``modality``: clinical, dermoscopy, pathology or other (``modality_source: human``);
- ``exclude``: true keeps the record out of VQA and exports (flag ``excluded``); false keeps it in although
  curate flagged it (curate's excluding flags are set aside under the flag ``included``, reasons kept);
- ``caption``: the caption as the curator wrote it (replaces the cleaned caption; ``caption_source: human``);
- ``file``/``line``: where the decision came from (a CSV given to ``--corrections``, or ``mmskin review``).

Two writers fill it: ``mmskin review DATASET --serve`` (every decision at once) and ``mmskin curate
--corrections CSV`` (a CSV with the header ``id,modality[,exclude,caption]``; the old two-column ``id,modality``
file is still read; each bad line is one problem, the good lines still apply). Both rewrite the store atomically
under the store's own lock (``DATASET/.build/corrections.lock``), from the store as it is on disk, so neither
loses the other's lines; a review is not a build and never takes the dataset's writer lock. Every curate applies
the whole store; to undo a decision, delete its line. A store with a broken line is one problem per line; its
good lines apply, nothing is written to it, and human modalities it no longer holds are kept until it is fixed.

    mmskin curate data/derm --corrections review/corrections.csv

    >>> from mmskin.curate.corrections import read_corrections
    >>> corrections = read_corrections(Path("review/corrections.csv"), known_ids, problems)
    >>> corrections.applied        # {record id: (modality, line number)}
"""

from __future__ import annotations

import csv
import io
import json
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..lock import file_lock, lock_path
from ..records import EXCLUDING_FLAGS, MODALITIES, atomic_write_bytes, iter_jsonl, sha256_file
from ..stage import Problems, add_line_errors

COLUMNS = ("id", "modality", "exclude", "caption")
# the dataset's corrections store (mmskin review --serve and --corrections fill it)
STORE = "corrections.jsonl"
REVIEW_FILE = "mmskin review"  # the "file" of decisions made in the review web app
YES, NO = ("yes", "true", "1", "exclude"), ("no", "false", "0", "include")


@dataclass(frozen=True)
class Decision:
    """A curator's decision on one record; None fields were not decided."""

    modality: str | None = None
    exclude: bool | None = None
    caption: str | None = None

    def empty(self) -> bool:
        return self.modality is None and self.exclude is None and self.caption is None

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


def _store_problem(obj: Any) -> list[str]:
    if not isinstance(obj, dict) or not isinstance(obj.get("id"), str):
        return ["not a correction with an id"]
    if "modality" in obj and obj["modality"] not in MODALITIES:
        return [f"modality {obj.get('modality')!r} is not one of {', '.join(MODALITIES)}"]
    if "exclude" in obj and not isinstance(obj["exclude"], bool):
        return [f"exclude {obj['exclude']!r} is not true or false"]
    if "caption" in obj and not (isinstance(obj["caption"], str) and obj["caption"].strip()):
        return ["caption is not a non-empty text"]
    if not {"modality", "exclude", "caption"} & set(obj):
        return ["no decision (modality, exclude or caption)"]
    return []


@dataclass
class Store:
    """The corrections store of a dataset: entries by record id; ``authoritative`` when it was read whole (a
    record is then human exactly when it is in the store), False when missing or broken (nothing is undone)."""

    entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    authoritative: bool = False

    def decision(self, rid: str) -> Decision:
        e = self.entries.get(rid, {})
        return Decision(e.get("modality"), e.get("exclude"), e.get("caption"))

    def where(self, rid: str) -> str:
        """``file:line`` (or the file) the record's decisions came from."""
        e = self.entries.get(rid, {})
        return f"{e.get('file', STORE)}" + (f":{e['line']}" if "line" in e else "")


def store_path(dataset: Path) -> Path:
    return Path(dataset) / STORE


def store_lock(dataset: Path) -> AbstractContextManager[None]:
    """The store's own lock, for a read-change-write of the store (never the dataset's writer lock)."""
    return file_lock(lock_path(dataset).with_name("corrections.lock"))


def read_store(dataset: Path, problems: Problems) -> Store:
    """The corrections kept in ``DATASET/corrections.jsonl``; each bad line is one problem."""
    path = store_path(dataset)
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


def set_decision(store: Store, rid: str, d: Decision, file: str, line: int | None = None) -> None:
    """Record ``d`` (its decided parts replace the record's earlier ones; an empty decision removes the line)."""
    if d.empty():
        store.entries.pop(rid, None)
        return
    entry = {"id": rid, "file": file} | {k: v for k, v in d.as_dict().items() if v is not None}
    store.entries[rid] = entry | ({"line": line} if line is not None else {})


def update_store(store: Store, records: list[dict[str, Any]], corrections: Corrections | None) -> None:
    """Add this run's corrections to ``store`` (each decided part replaces the record's earlier one). A dataset
    without a store yet first gets the human modalities its records carry (curated before the store existed)."""
    if not store.authoritative:
        for rec in records:
            human = rec.get("modality_source") == "human" and rec.get("modality") in MODALITIES
            if human and rec["id"] not in store.entries:
                where = rec.get("modality_correction") or {}
                store.entries[rec["id"]] = {"id": rec["id"], "modality": rec["modality"], **where}
    if corrections is None:
        return
    for rid in sorted(set(corrections.applied) | set(corrections.exclude) | set(corrections.captions)):
        mod, ex, cap = (
            corrections.applied.get(rid),
            corrections.exclude.get(rid),
            corrections.captions.get(rid),
        )
        old = store.decision(rid)
        new = Decision(
            mod[0] if mod else old.modality,
            ex[0] if ex else old.exclude,
            cap[0] if cap else old.caption,
        )
        set_decision(store, rid, new, corrections.path.name, max(x[1] for x in (mod, ex, cap) if x))


def write_store(dataset: Path, store: Store) -> None:
    """Write the store (sorted by id, atomically) when it holds a correction or existed before; a store with
    broken lines is left as it is for its owner to fix."""
    path = store_path(dataset)
    if (not store.entries and not path.exists()) or (path.exists() and not store.authoritative):
        return
    entries = store.entries
    lines = [json.dumps(entries[k], sort_keys=True, ensure_ascii=False) + "\n" for k in sorted(entries)]
    data = "".join(lines).encode("utf-8")
    if not path.is_file() or path.read_bytes() != data:
        atomic_write_bytes(path, data, durable=True)


def sync_store(
    dataset: Path, records: list[dict[str, Any]], corrections: Corrections | None, problems
) -> Store:
    """Read the store, add this run's ``corrections`` and write it back, under the store's lock (taken only
    when there is something to read or write: a dataset without corrections gets no lock file)."""
    if corrections is None and not store_path(dataset).exists():
        return read_store(dataset, problems)
    with store_lock(dataset):
        store = read_store(dataset, problems)
        update_store(store, records, corrections)
        write_store(dataset, store)
    return store


def human_flags(rec: dict[str, Any], store: Store) -> tuple[list[str], dict[str, str]] | None:
    """``(flags, flag_reasons)`` of a record after the curator's exclude/include, or None when there is none."""
    exclude = store.decision(rec["id"]).exclude
    if exclude is None:
        return None
    where = store.where(rec["id"])
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
