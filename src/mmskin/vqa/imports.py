"""``mmskin import``: LLaVA JSON, MM-Skin CSV or HF Parquet back into VQA samples
``{id, record_id, image, question, answer, question_type, generator}`` usable by mmskin train / mmskin eval.

    mmskin import llava derm_llava.json --out samples.jsonl --image-root data/derm
    >>> from mmskin.vqa.imports import ImportConfig, run
    >>> result = run(ImportConfig(format="mmskin-csv", path=Path("MM-Skin_test.csv"), out=Path("test.jsonl")))

A malformed item is one problem and the rest are kept; an image path that escapes the image root is refused, one
that is not under ``image_root`` (when given) is a missing image. Writes OUT and ``OUT.info.json``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from ..config import ConfigError, option
from ..provenance import provenance, write_info
from ..records import RecordError, check_relpath, write_jsonl
from ..stage import SILENT, Problems, Reporter, StageResult
from .parquet import image_of, is_file_in, parquet_rows
from .samples import IMAGE_TOKEN, ExportError, Tally, add_missing, read_csv, short_hash, tally_counts

IMPORT_FORMATS = ("llava", "mmskin-csv", "hf")


@dataclass
class ImportConfig:
    """Settings of ``mmskin import`` (``format`` and ``path`` are its positional arguments)."""

    format: str = field(metadata={"help": "llava, mmskin-csv or hf", "cli": False, "choices": IMPORT_FORMATS})
    path: Path = field(metadata={"help": "file to import", "cli": False})
    out: Path = field(
        metadata={"help": "output VQA samples (JSONL)", "metavar": "VQA.jsonl", "required": True}
    )
    image_root: Path | None = option(
        None,
        "folder the image paths are relative to: checked to exist; hf images without a file are written here",
        metavar="DIR",
    )

    def __post_init__(self) -> None:
        self.path, self.out = Path(self.path), Path(self.out)
        self.image_root = Path(self.image_root) if self.image_root else None
        if self.format not in IMPORT_FORMATS:
            raise ConfigError(f"format must be one of {', '.join(IMPORT_FORMATS)} (got {self.format!r})")


def _strip_image_token(text: str) -> str:
    return text.replace(IMAGE_TOKEN, "").strip()


def _sample(
    image: str, question: str, answer: str, generator: str, idx: str, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    extra = extra or {}
    s = {
        "id": str(extra.get("id") or short_hash(generator, idx, image, question)),
        "record_id": str(extra.get("record_id") or PurePosixPath(image).stem),
        "image": image,
        "question": question,
        "answer": answer,
        "question_type": extra.get("question_type") or "open",
        "generator": extra.get("generator") or generator,
    }
    for k in ("modality", "split"):
        if extra.get(k):
            s[k] = extra[k]
    return s


# --- the formats ---------------------------------------------------------------------------------------------
Reader = Callable[[ImportConfig, Tally, Problems], Iterator[dict[str, Any]]]


def _llava_items(path: Path, problems: Problems) -> Iterator[tuple[str, Any]]:
    """(where, item) of a LLaVA JSON list, or of JSON Lines (one item per line) when the file is not one JSON."""
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        if text.lstrip().startswith("["):
            raise ExportError(f"{path}: not JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    yield f"{path}:{n}", json.loads(line)
                except json.JSONDecodeError as e2:
                    problems.add(f"{path}:{n}", f"not JSON ({e2.msg})")
        return
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise ExportError(f"{path}: a LLaVA file is a JSON list of conversations")
    for i, item in enumerate(data):
        yield f"{path}[{i}]", item


def _llava_turns(where: str, item: Any, problems: Problems) -> list[dict] | None:
    """The turns of one conversation item, or None (one problem) when the item is malformed."""
    if not isinstance(item, dict) or not isinstance(item.get("image"), str) or not item["image"].strip():
        problems.add(where, "no 'image' string")
        return None
    conv = item.get("conversations")
    if not isinstance(conv, list) or not conv:
        problems.add(where, "no 'conversations' list")
        return None
    turns = [t for t in conv if isinstance(t, dict) and isinstance(t.get("value"), str)]
    if len(turns) != len(conv):
        problems.add(where, "a turn is not {'from', 'value'}")
        return None
    return turns


def read_llava(cfg: ImportConfig, tally: Tally, problems: Problems) -> Iterator[dict[str, Any]]:
    """One sample per (human, gpt) turn pair of each conversation."""
    for where, item in _llava_items(cfg.path, problems):
        tally.read += 1
        turns = _llava_turns(where, item, problems)
        if turns is None:
            continue
        for k in range(0, len(turns) - 1, 2):
            h, g = turns[k], turns[k + 1]
            if h.get("from") not in ("human", "user") or g.get("from") not in ("gpt", "assistant"):
                problems.add(where, f"turn {k} is not a human turn followed by a gpt turn")
                break
            q, a = _strip_image_token(h["value"]), g["value"].strip()
            if not q or not a:
                problems.add(where, f"turn {k} has an empty question or answer")
                continue
            extra = {
                kk: item.get(kk) for kk in ("record_id", "question_type", "generator", "modality", "split")
            }
            if len(turns) == 2:
                extra["id"] = item.get("id")
            elif item.get("id"):
                extra["record_id"] = extra["record_id"] or str(item["id"])
            yield _sample(item["image"].strip(), q, a, "import:llava", f"{where}/{k}", extra)
        if len(turns) % 2:
            tally.skipped["unanswered last turns"] += 1


def read_mmskin_csv(cfg: ImportConfig, tally: Tally, problems: Problems) -> Iterator[dict[str, Any]]:
    """One sample per row of an ``image,question,answer`` CSV (MM-Skin_test.csv)."""
    path = cfg.path
    header, rows = read_csv(path, problems)
    if not {"image", "question", "answer"} <= set(header):
        raise ExportError(f"{path}: needs the columns image,question,answer (got {header})")
    for line, row in rows:
        tally.read += 1
        where = f"{path}:{line}"
        vals = {k: (row.get(k) or "").strip() for k in ("image", "question", "answer")}
        if None in row:
            problems.add(where, "more fields than the header")
            continue
        if missing := [k for k, v in vals.items() if not v]:
            problems.add(where, f"empty {', '.join(missing)}")
            continue
        extra = {k: row.get(k) for k in ("id", "record_id", "question_type", "generator") if row.get(k)}
        q = _strip_image_token(vals["question"])
        yield _sample(vals["image"], q, vals["answer"], "import:mmskin-csv", where, extra)


def read_hf(cfg: ImportConfig, tally: Tally, problems: Problems) -> Iterator[dict[str, Any]]:
    """Parquet with question/answer/image columns. An embedded image whose path is not a file under the image
    root is written there (content-addressed); without an image root, next to the output."""
    root = cfg.image_root or cfg.out.parent
    for where, row in parquet_rows(cfg.path):
        tally.read += 1
        q, a = (row.get("question") or "").strip(), (row.get("answer") or "").strip()
        if not q or not a:
            problems.add(where, "empty question or answer")
            continue
        rel = image_of(row.get("image"), root)
        if not rel:
            problems.add(where, "no image path or bytes")
            continue
        extra = {
            k: row.get(k) for k in ("id", "record_id", "question_type", "generator", "modality", "split")
        }
        yield _sample(rel, _strip_image_token(q), a, "import:hf", where, extra)


READERS: dict[str, Reader] = {"llava": read_llava, "mmskin-csv": read_mmskin_csv, "hf": read_hf}


# --- the stage -----------------------------------------------------------------------------------------------
def checked_samples(cfg: ImportConfig, tally: Tally, problems: Problems) -> list[dict[str, Any]]:
    """The samples of the file with a safe image path, the first of each id; images not under the image root
    are missing (kept: the root may be given later)."""
    samples, seen = [], set()
    try:
        for s in READERS[cfg.format](cfg, tally, problems):
            try:
                check_relpath(s["image"])
            except RecordError as e:
                problems.add(f"{cfg.path}: sample {s['id']}", str(e))
                continue
            if cfg.image_root is not None and not is_file_in(cfg.image_root, s["image"]):
                where = f"{cfg.path}: sample {s['id']}"
                add_missing(problems, where, f"image {s['image']} not found under {cfg.image_root}")
            if s["id"] in seen:
                tally.skipped["duplicate ids"] += 1
                continue
            seen.add(s["id"])
            tally.by_question_type[s["question_type"]] += 1
            samples.append(s)
    except UnicodeDecodeError:
        raise ExportError(f"{cfg.path}: not UTF-8 text") from None
    return samples


def run(config: ImportConfig, reporter: Reporter | None = None) -> StageResult:
    """Import ``config.path`` into VQA samples (JSONL at ``config.out``, plus ``<out>.info.json``). Raises
    ExportError (exit status 2) when the file cannot be read as the format at all."""
    cfg = config
    if not cfg.path.is_file():
        raise ExportError(f"{cfg.path}: no such file")
    if cfg.image_root is not None and not cfg.image_root.is_dir():
        raise ExportError(f"{cfg.image_root}: --image-root is not a folder")
    problems = Problems(reporter or SILENT)
    tally = Tally()
    samples = checked_samples(cfg, tally, problems)
    tally.rows = write_jsonl(cfg.out, samples)
    counts = tally_counts(tally, problems)
    info = {
        "provenance": provenance("import", config=cfg, packages=["pyarrow"] if cfg.format == "hf" else []),
        "format": cfg.format,
        "source": str(cfg.path.resolve()),
        "image_root": str(cfg.image_root.resolve()) if cfg.image_root else None,  # read by mmskin train
        "counts": counts,
    }
    write_info(Path(f"{cfg.out}.info.json"), info)
    summary = tally.line(f"import {cfg.format}", problems, cfg.out)
    return StageResult("import", counts, problems, summary, extra={"out": str(cfg.out)})
