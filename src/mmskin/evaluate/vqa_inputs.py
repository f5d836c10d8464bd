"""The inputs of ``mmskin eval vqa``: predictions or samples tables (CSV or JSONL), modalities from a dataset.

A predictions file has ``image, question, answer, prediction`` and optionally ``modality`` (and ``id``); a
samples file (for ``--model``) the same without ``prediction``. A malformed row (a byte that is not UTF-8
included) becomes a :class:`Problem` ``FILE:LINE: reason`` and is skipped, the other rows are read; a file that
cannot be used at all raises :class:`InputError`.

    >>> from mmskin.evaluate.vqa_inputs import read_table
    >>> rows, problems = read_table(Path("preds.csv"))
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..stage import Problem

REQUIRED = ("image", "question", "answer", "prediction")
UNKNOWN = "unknown"
CSV_FIELD_LIMIT = 2**31 - 1  # the largest the csv module takes (the default, 131,072, stops at a long answer)


class InputError(ValueError):
    """A whole input file is unusable (missing, wrong columns, not UTF-8); one line naming the file."""


def _row_problem(row: dict[str, Any], needed: Sequence[str]) -> str | None:
    missing = [k for k in needed if k not in row or row[k] is None]
    if missing:
        return f"missing {', '.join(missing)}"
    bad = [k for k in needed if not isinstance(row[k], str)]
    if bad:
        return f"{', '.join(bad)} not text"
    if "modality" in row and row["modality"] is not None and not isinstance(row["modality"], str):
        return "modality not text"
    return None


def _bad_byte(text: str) -> str | None:
    """Why text read with ``surrogateescape`` is not UTF-8 (its first undecodable byte), or None."""
    for ch in text:
        if "\udc80" <= ch <= "\udcff":
            return f"not UTF-8 (byte 0x{ord(ch) - 0xDC00:02x}); row skipped"
    return None


def read_table(path: Path, needed: Sequence[str] = REQUIRED) -> tuple[list[dict[str, Any]], list[Problem]]:
    """Rows of a CSV or JSONL file (each with ``_line``) and a problem ``FILE:LINE: reason`` per skipped row.

    One bad row costs that row only: a line that is not JSON, a CSV row with the wrong number of fields, a row
    holding a byte that is not UTF-8; fields of any length are read. Raises :class:`InputError` when the file as
    a whole cannot be used (missing, no header with the needed columns).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        text = path.read_bytes().decode("utf-8-sig", errors="surrogateescape")
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror})") from None
    if path.suffix.lower() in (".jsonl", ".json") or text.lstrip().startswith("{"):
        return _read_jsonl(path, text, needed)
    return _read_csv(path, text, needed)


def _read_jsonl(path: Path, text: str, needed: Sequence[str]) -> tuple[list[dict[str, Any]], list[Problem]]:
    rows: list[dict[str, Any]] = []
    errors: list[Problem] = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if bad := _bad_byte(line):
            errors.append(Problem(f"{path}:{n}", bad))
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            errors.append(Problem(f"{path}:{n}", f"not JSON ({e.msg})"))
            continue
        if not isinstance(row, dict):
            errors.append(Problem(f"{path}:{n}", "not a JSON object"))
            continue
        if problem := _row_problem(row, needed):
            errors.append(Problem(f"{path}:{n}", problem))
            continue
        row["_line"] = n
        rows.append(row)
    return rows, errors


def _read_csv(path: Path, text: str, needed: Sequence[str]) -> tuple[list[dict[str, Any]], list[Problem]]:
    csv.field_size_limit(max(csv.field_size_limit(), CSV_FIELD_LIMIT))  # answers may be long: no 131,072 cap
    rows: list[dict[str, Any]] = []
    errors: list[Problem] = []
    reader = csv.DictReader(text.splitlines(keepends=True))
    header = reader.fieldnames or []
    missing = [k for k in needed if k not in header]
    if missing:
        raise InputError(
            f"{path}: CSV header lacks {', '.join(missing)} (has: {', '.join(header) or 'nothing'})"
        )
    start = 2
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as e:  # one malformed row: the reader goes on at the next line
            errors.append(Problem(f"{path}:{start}", f"unreadable CSV row ({e}); row skipped"))
            start = reader.line_num + 1
            continue
        n, start = start, reader.line_num + 1
        if None in row:
            errors.append(
                Problem(f"{path}:{n}", f"{len(header) + len(row[None])} fields, header has {len(header)}")
            )
            continue
        if bad := _bad_byte("".join(v for v in row.values() if isinstance(v, str))):
            errors.append(Problem(f"{path}:{n}", bad))
            continue
        if problem := _row_problem(row, needed):
            errors.append(Problem(f"{path}:{n}", f"{problem} (row has fewer fields than the header)"))
            continue
        row["_line"] = n
        rows.append(row)
    return rows, errors


def modality_map(dataset: Path) -> dict[str, str]:
    """image path (and unique basename) -> modality, from ``DATASET/records.jsonl``."""
    from ..records import RecordError, read_records

    recs = Path(dataset) / "records.jsonl"
    if not recs.is_file():
        raise InputError(f"{dataset}: no records.jsonl (not a dataset folder)")
    out: dict[str, str] = {}
    base: dict[str, set[str]] = {}
    try:
        for rec in read_records(recs, validate=False):
            img, mod = rec.get("image"), rec.get("modality")
            if isinstance(img, str) and isinstance(mod, str) and mod:
                out[img] = mod
                base.setdefault(os.path.basename(img), set()).add(mod)
    except RecordError as e:
        raise InputError(str(e)) from None
    for name, mods in base.items():
        if len(mods) == 1 and name not in out:
            out[name] = next(iter(mods))
    return out


def assign_modality(rows: list[dict[str, Any]], by_image: dict[str, str] | None) -> None:
    for r in rows:
        mod = r.get("modality")
        if isinstance(mod, str) and mod.strip():
            r["modality"] = mod.strip()
            continue
        img = str(r.get("image", ""))
        found = None
        if by_image:
            found = by_image.get(img) or by_image.get(os.path.basename(img))
        r["modality"] = found or UNKNOWN


def sample_id(row: dict[str, Any]) -> str:
    key = "\x1f".join(str(row.get(k, "")) for k in ("image", "question", "answer"))
    return hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]


def samples_from_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """VQA samples with unique stable ids (given ``id``, else a hash of image, question and answer)."""
    seen: dict[str, int] = {}
    out = []
    for r in rows:
        sid = str(r["id"]) if r.get("id") not in (None, "") else sample_id(r)
        k = seen.get(sid, 0)
        seen[sid] = k + 1
        if k:
            sid = f"{sid}-{k}"
        s = {"id": sid, "image": r["image"], "question": r["question"], "answer": r["answer"]}
        if r.get("modality"):
            s["modality"] = r["modality"]
        out.append(s)
    return out
