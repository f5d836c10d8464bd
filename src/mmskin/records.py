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
import secrets
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path, PurePosixPath
from typing import Any

MODALITIES = ("clinical", "dermoscopy", "pathology", "other")
AGE_GROUPS = ("infant", "child", "adolescent", "adult", "elderly")
SEXES = ("male", "female")
SPLITS = ("train", "val", "test")


def _doc(help: str, set_by: str, required: bool = False, choices: tuple[str, ...] = ()) -> Any:
    return field(
        default=None, metadata={"help": help, "set_by": set_by, "required": required, "choices": choices}
    )


@dataclass(frozen=True)
class Source:
    """Where a record's picture is printed."""

    file: str = _doc("PDF file name (no folder)", "build", True)
    sha256: str = _doc("sha256 of the PDF file", "build", True)
    page: int = _doc("1-based page number", "build", True)
    bbox: list[float] = _doc(
        "[x0, y0, x1, y1] in PDF points, top-left origin, of the figure or panel", "build", True
    )


@dataclass(frozen=True)
class Record:
    """One image (a figure, or one panel of a multi-panel figure) of a dataset: a line of ``records.jsonl``.

    Records travel as plain dicts (JSON objects); this class is their documented schema. :func:`validate_record`
    checks a dict against it and :func:`schema_markdown` renders it as the README's table. Extra fields are
    allowed; these names are a contract and are never renamed.
    """

    id: str = _doc(
        "stable id: hash of source sha256 + page + bbox + panel; identical across reruns", "build", True
    )
    image: str = _doc(
        "path relative to the dataset root (`images/ab/abcd….png`), never absolute, never `..`", "build", True
    )
    width: int = _doc("pixels of the stored image", "build", True)
    height: int = _doc("pixels of the stored image", "build", True)
    source: Source = _doc("`{file, sha256, page, bbox}` (see Source)", "build", True)
    figure_label: str | None = _doc('the label as printed: `"3.12"`, `"12-4"`, `"7"`', "build", True)
    panel: str | None = _doc(
        '`"a"`, `"b"`, … for a panel of a multi-panel figure; null for a whole figure', "build", True
    )
    caption_raw: str = _doc("the whole figure caption as extracted", "build", True)
    caption: str = _doc(
        "this image's caption: shared part + its own subcaption for a panel; cleaned by curate",
        "build, curate",
        True,
    )
    caption_position: str | None = _doc("where the caption sits: below, above, left, right", "build")
    extraction: str | None = _doc(
        "how the pixels were obtained: native (embedded bytes), crop, render, scan", "build"
    )
    panel_note: str | None = _doc(
        "why a multi-panel figure was kept whole (pieces and markers disagree)", "build"
    )
    caption_uncleaned: str | None = _doc(
        "the build's caption before cleaning (reruns start from it)", "curate"
    )
    modality: str | None = _doc("null before curate", "curate", choices=MODALITIES)
    modality_score: float | None = _doc("classifier confidence in [0, 1]", "curate")
    modality_source: str | None = _doc("model, or human (a correction)", "curate")
    modality_evidence: dict | None = _doc("image probabilities, caption cues and the fused result", "curate")
    modality_correction: dict | None = _doc("the correction applied (file and line)", "curate")
    age: float | None = _doc("years, from the caption; null when not stated", "curate")
    age_group: str | None = _doc("from age or words like 'elderly'", "curate", choices=AGE_GROUPS)
    sex: str | None = _doc("from the caption", "curate", choices=SEXES)
    demographics_evidence: str | None = _doc("the caption span age/sex came from", "curate")
    flags: list[str] = _doc("reason codes (see the flag table); empty when usable", "build, curate", True)
    flag_reasons: dict | None = _doc("{flag: one-line reason}", "curate")
    duplicate_of: str | None = _doc("id of the kept record of a near-duplicate group", "curate")
    split: str | None = _doc("train/val/test, grouped by book", "curate", choices=SPLITS)


# JSON types each field may take (derived from the annotations above; bools are never numbers)
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (float, int),
    "dict": (dict,),
    "list[str]": (list,),
    "list[float]": (list,),
    "Source": (dict,),
}


def _json_types(annotation: str) -> tuple[type, ...]:
    parts = [p.strip() for p in annotation.split("|")]
    types: tuple[type, ...] = ()
    for p in parts:
        types += (type(None),) if p == "None" else _JSON_TYPES[p]
    return types


RECORD_FIELDS: dict[str, tuple[type, ...]] = {f.name: _json_types(str(f.type)) for f in fields(Record)}
REQUIRED = tuple(f.name for f in fields(Record) if f.metadata["required"])


@dataclass(frozen=True)
class Flag:
    name: str
    set_by: str
    excluding: bool
    meaning: str


def _load_flags() -> tuple[Flag, ...]:
    from .resources import load_yaml

    return tuple(Flag(**row) for row in load_yaml("flags.yaml"))


FLAGS: tuple[Flag, ...] = _load_flags()
# flags that keep a record out of VQA generation and exports (``review`` does not: it asks a human to look)
EXCLUDING_FLAGS = tuple(f.name for f in FLAGS if f.excluding)


def _set_by(set_by: str) -> set[str]:
    return {s.strip() for s in set_by.split(",")}


# the fields a build writes and a rebuild replaces; the rest of a record (curate's fields, a human's correction,
# fields other tools added) is the curation a rebuild keeps (:func:`carry_curation`)
BUILD_FIELDS = tuple(f.name for f in fields(Record) if _set_by(f.metadata["set_by"]) == {"build"})
# flags curate decides (recomputed on every curate run; kept across a rebuild until then)
CURATE_FLAGS = tuple(f.name for f in FLAGS if "curate" in _set_by(f.set_by))


def is_curated(rec: dict[str, Any]) -> bool:
    """True when ``mmskin curate`` has been over the record (it always keeps the build's caption)."""
    return "caption_uncleaned" in rec


def carry_curation(built: dict[str, Any], before: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The record a rebuild writes for ``built`` when the dataset already held ``before`` (same id, curated):
    the build's own fields from ``built``, everything else from ``before``; flags are the build's plus curate's.

    Returns (record, still curated): False when the build's caption changed (a new mmskin, other settings); the
    record then holds the new caption, uncleaned, and counts as not curated (:func:`is_curated`) until
    ``mmskin curate`` runs again; its other fields (a human's modality among them) stay."""
    out = {k: v for k, v in before.items() if k not in BUILD_FIELDS}
    for (
        k,
        v,
    ) in built.items():  # the build's own fields; its neutral values of later stages' only where missing
        if k not in ("caption", "flags") and (k in BUILD_FIELDS or k not in out):
            out[k] = v
    curated_flags = {f for f in before.get("flags") or () if f in CURATE_FLAGS}
    out["flags"] = sorted(set(built.get("flags") or ()) | curated_flags)
    if before.get("caption_uncleaned") == built["caption"]:
        out["caption"] = before["caption"]
        return out, True
    out.pop("caption_uncleaned", None)
    out["caption"] = built["caption"]
    return out, False


def excluding(rec: dict[str, Any], also: tuple[str, ...] | list[str] = ()) -> list[str]:
    """The record's flags that keep it out of VQA and exports; ``also``: informative flags a user chose to
    exclude by too (``--exclude-flags``)."""
    return [f for f in rec.get("flags") or () if f in EXCLUDING_FLAGS or f in also]


def is_usable(rec: dict[str, Any]) -> bool:
    """True when no excluding flag is set on the record."""
    return not excluding(rec)


def schema_markdown() -> str:
    """The record schema and the flag table as Markdown (the README's tables are generated by this)."""
    rows = ["| field | type | set by | meaning |", "|---|---|---|---|"]
    for cls, prefix in ((Record, ""), (Source, "source.")):
        for f in fields(cls):
            meaning = f.metadata["help"]
            if f.metadata["choices"]:
                meaning += " (" + " · ".join(f"`{c}`" for c in f.metadata["choices"]) + ")"
            typ = str(f.type).replace("|", "or")
            rows.append(f"| `{prefix}{f.name}` | {typ} | {f.metadata['set_by']} | {meaning} |")
    rows += ["", "| flag | set by | excludes from VQA/exports | meaning |", "|---|---|---|---|"]
    rows += [f"| `{f.name}` | {f.set_by} | {'yes' if f.excluding else 'no'} | {f.meaning} |" for f in FLAGS]
    return "\n".join(rows) + "\n"


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
    for k, types in RECORD_FIELDS.items():
        if k in rec and (not isinstance(rec[k], types) or isinstance(rec[k], bool)):
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


def umask() -> int:
    """The process's umask (read without changing it where the system allows: /proc on Linux)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore (no other thread of mmskin creates files meanwhile)
    os.umask(mask)
    return mask


def new_temp_file(path: str | os.PathLike[str]) -> tuple[int, Path]:
    """(open fd, path) of a new temp file ``.NAME.XXXXXXXX.tmp`` beside ``path``, created with mode 0o666 less
    the umask like any file a tool writes (``tempfile.mkstemp`` makes 0600: a dataset only its owner could
    read). Stale ones are found by the ``.*.tmp`` pattern."""
    path = Path(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"{path.parent}: no free temp file name for {path.name}")


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, durable: bool = False) -> None:
    """Write via a temp file in the same folder + rename: a reader (or a rerun after kill -9) never sees a
    partial file. The file's mode follows the umask. ``durable`` adds an fsync, for files that must also
    survive a power cut."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = new_temp_file(path)
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


def store_content(root: str | os.PathLike[str], data: bytes, ext: str) -> str:
    """Store bytes content-addressed under ``root/images/ab/abcd….ext`` (written once, atomically); returns the
    path relative to ``root``, as a record's ``image``."""
    digest = hashlib.sha256(data).hexdigest()
    rel = f"images/{digest[:2]}/{digest}.{ext.lstrip('.')}"
    full = Path(root) / rel
    if not full.is_file():
        atomic_write_bytes(full, data)
    return rel


def open_csv(path: str | os.PathLike[str], error: type[Exception] = ValueError):
    """(file, csv.DictReader) of a UTF-8 CSV (a BOM is fine); a file that cannot be opened raises ``error``
    naming it. Read the header with :func:`csv_header`; close the file (``with``) when done."""
    import csv

    try:
        fh = open(path, newline="", encoding="utf-8-sig")
    except OSError as e:
        raise error(f"{path}: cannot read ({e.strerror})") from None
    return fh, csv.DictReader(fh)


def csv_header(reader) -> list[str]:
    """The reader's header names, stripped of spaces (and set so rows use the stripped names)."""
    reader.fieldnames = [h.strip() for h in (reader.fieldnames or [])]
    return list(reader.fieldnames)


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
