"""The record: one image (or panel) of a dataset, and how it is read and written.

Every stage reads and writes ``DATASET/records.jsonl`` through this module, so the field names below are the
contract (see DESIGN.md). Writes are atomic (temp file + ``os.replace``) and use sorted keys, so two runs that
produce the same records produce byte-identical files.

    >>> from mmskin.records import read_records
    >>> for rec in read_records("out/records.jsonl"):
    ...     print(rec["id"], rec["figure_label"], rec["panel"], rec["caption"][:40])
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

MODALITIES = ("clinical", "dermoscopy", "pathology", "other")
AGE_GROUPS = ("infant", "child", "adolescent", "adult", "elderly")
SEXES = ("male", "female")
SPLITS = ("train", "val", "test")
# flags that keep a record out of VQA generation and exports (``review`` does not: it asks a human to look)
EXCLUDING_FLAGS = (
    "annotated",
    "sensitive",
    "low_resolution",
    "non_dermatology",
    "duplicate",
    "no_caption",
    "unreadable_image",
)


def is_usable(rec: dict[str, Any]) -> bool:
    """True when no excluding flag is set on the record."""
    return not (set(rec.get("flags") or ()) & set(EXCLUDING_FLAGS))


# field -> allowed JSON types (None means null is allowed)
_FIELDS: dict[str, tuple[type | None, ...]] = {
    "id": (str,),
    "image": (str,),
    "width": (int,),
    "height": (int,),
    "source": (dict,),
    "figure_label": (str, type(None)),
    "panel": (str, type(None)),
    "caption_raw": (str,),
    "caption": (str,),
    "modality": (str,),
    "modality_score": (float, int),
    "age": (float, int, type(None)),
    "age_group": (str, type(None)),
    "sex": (str, type(None)),
    "demographics_evidence": (str, type(None)),
    "flags": (list,),
    "duplicate_of": (str, type(None)),
    "split": (str, type(None)),
}
REQUIRED = (
    "id",
    "image",
    "width",
    "height",
    "source",
    "figure_label",
    "panel",
    "caption_raw",
    "caption",
    "flags",
)


class RecordError(ValueError):
    """A record (or a records file) that breaks the schema; the message names the file and line."""


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def record_id(file_sha256: str, page: int, bbox: Iterable[float], panel: str | None) -> str:
    """Stable id: the same source file, page, bbox (rounded to 0.1 pt) and panel give the same id on every run."""
    box = ",".join(f"{round(float(v), 1):.1f}" for v in bbox)
    key = f"{file_sha256}|{page}|{box}|{panel or ''}"
    return hashlib.sha256(key.encode()).hexdigest()[:20]


def check_relpath(rel: str) -> str:
    """Refuse an image path that is absolute or escapes the dataset root; returns it unchanged when safe."""
    p = PurePosixPath(rel)
    if not rel or p.is_absolute() or "\\" in rel or ".." in p.parts or rel.startswith("~"):
        raise RecordError(f"image path {rel!r} is absolute or escapes the dataset root")
    return rel


def resolve_in_root(root: str | os.PathLike[str], rel: str) -> Path:
    """Absolute path of ``rel`` under ``root``; refuses paths (and symlinks) that resolve outside it."""
    check_relpath(rel)
    root_p = Path(root).resolve()
    full = (root_p / rel).resolve()
    if root_p != full and root_p not in full.parents:
        raise RecordError(f"image path {rel!r} resolves outside the dataset root {root_p}")
    return full


def validate_record(rec: Any) -> list[str]:
    """Schema problems of one record (empty list when it is valid)."""
    if not isinstance(rec, dict):
        return ["record is not a JSON object"]
    errs = [f"missing field {k!r}" for k in REQUIRED if k not in rec]
    for k, types in _FIELDS.items():
        if k in rec and not isinstance(rec[k], types) or (k in rec and isinstance(rec[k], bool)):
            errs.append(f"field {k!r} has type {type(rec[k]).__name__}")
    if errs:
        return errs
    try:
        check_relpath(rec["image"])
    except RecordError as e:
        errs.append(str(e))
    src = rec["source"]
    for k in ("file", "sha256", "page", "bbox"):
        if k not in src:
            errs.append(f"source lacks {k!r}")
    if "bbox" in src and (not isinstance(src["bbox"], list) or len(src["bbox"]) != 4):
        errs.append("source.bbox is not [x0, y0, x1, y1]")
    if "page" in src and (not isinstance(src["page"], int) or src["page"] < 1):
        errs.append("source.page is not a 1-based int")
    if rec["width"] <= 0 or rec["height"] <= 0:
        errs.append("width/height not positive")
    if rec.get("modality") not in (None, *MODALITIES):
        errs.append(f"modality {rec.get('modality')!r} not in {MODALITIES}")
    if rec.get("age_group") not in (None, *AGE_GROUPS):
        errs.append(f"age_group {rec.get('age_group')!r} not in {AGE_GROUPS}")
    if rec.get("sex") not in (None, *SEXES):
        errs.append(f"sex {rec.get('sex')!r} not in {SEXES}")
    if rec.get("split") not in (None, *SPLITS):
        errs.append(f"split {rec.get('split')!r} not in {SPLITS}")
    if not all(isinstance(f, str) for f in rec["flags"]):
        errs.append("flags must be strings")
    return errs


def dumps(rec: dict[str, Any]) -> str:
    return json.dumps(rec, sort_keys=True, ensure_ascii=False, separators=(", ", ": "))


def read_records(path: str | os.PathLike[str], validate: bool = True) -> Iterator[dict[str, Any]]:
    """Yield the records of a JSONL file; a malformed line raises RecordError naming file and line."""
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise RecordError(f"{path}:{n}: not JSON ({e.msg})") from None
            if validate and (errs := validate_record(rec)):
                raise RecordError(f"{path}:{n}: {'; '.join(errs)}")
            yield rec


def iter_jsonl(
    path: str | os.PathLike[str], errors: list[str], check: Callable[[Any], list[str]] | None = None
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) of a JSON Lines file, for readers that go on past bad lines: a line that is not
    JSON, not an object, or fails ``check`` (a list of problems) becomes one error ``file:line: reason`` in
    ``errors`` and is skipped. Raises OSError when the file cannot be opened."""
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                errors.append(f"{path}:{n}: not JSON ({e.msg})")
                continue
            problems = check(obj) if check else ([] if isinstance(obj, dict) else ["not a JSON object"])
            if problems:
                errors.append(f"{path}:{n}: {'; '.join(problems)}")
                continue
            yield n, obj


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, durable: bool = False) -> None:
    """Write via a temp file in the same folder + rename: a reader (or a rerun after kill -9) never sees a
    partial file. ``durable`` adds an fsync, for files that must also survive a power cut."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_jsonl(path: str | os.PathLike[str], rows: Iterable[dict[str, Any]]) -> int:
    """Atomically write rows as sorted-key JSON Lines; returns the number of rows."""
    lines = [dumps(r) for r in rows]
    atomic_write_bytes(path, ("\n".join(lines) + ("\n" if lines else "")).encode("utf-8"), durable=True)
    return len(lines)


def empty_record_fields() -> dict[str, Any]:
    """Fields that later stages fill, at their neutral values (modality is left to curate: it has no neutral value)."""
    return {
        "age": None,
        "age_group": None,
        "sex": None,
        "demographics_evidence": None,
        "flags": [],
        "duplicate_of": None,
        "split": None,
    }
