"""Exports of a dataset to the formats trainers read (``mmskin export``).

Subsets: ``captions`` (MM-Skin-C: usable records, image + cleaned caption), ``demographics`` (MM-Skin-D: usable
records with age or sex), ``vqa`` (MM-Skin-O: ``DATASET/vqa.jsonl``). A record is usable when it has no excluding
flag (``records.excluding``, the flag table) unless ``include_flagged``. Formats: ``hf`` (Parquet with a Hugging
Face ``Image`` feature, images embedded; :mod:`mmskin.vqa.parquet`), ``llava`` (LLaVA conversation JSON, as
MM-Skin's released training JSON; image paths relative to the dataset root), ``mmskin-csv``
(``image,question,answer`` like MM-Skin_test.csv). :mod:`mmskin.vqa.imports` reads all three back.

    mmskin export data/derm --subset vqa --format llava --out derm_llava.json
    >>> from mmskin.vqa.export import ExportConfig, run
    >>> result = run(ExportConfig(dataset=Path("data/derm"), format="hf", subset="captions", out=Path("c.parquet")))

The run: read the rows of the subset -> keep those whose image is a file inside the dataset -> write them in the
format -> write ``OUT.info.json`` (provenance, counts).
"""

from __future__ import annotations

import csv
import functools
import io
import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import ConfigError, option
from ..provenance import provenance, write_info
from ..records import (
    EXCLUDING_FLAGS,
    RecordError,
    atomic_write_bytes,
    excluding,
    iter_jsonl,
    resolve_in_root,
    validate_record,
)
from ..resources import load_yaml
from ..stage import SILENT, Problems, Reporter, StageResult
from .samples import (
    ExportError,
    Tally,
    add_line_errors,
    add_missing,
    check_flag_names,
    llava_item,
    short_hash,
    tally_counts,
)

SUBSETS = ("captions", "demographics", "vqa")
FORMATS = ("hf", "llava", "mmskin-csv")

# column -> HF Value dtype; "image" is the Image feature
COLUMNS: dict[str, dict[str, str]] = {
    "vqa": {
        "id": "string",
        "record_id": "string",
        "image": "image",
        "question": "string",
        "answer": "string",
        "question_type": "string",
        "generator": "string",
        "modality": "string",
        "split": "string",
    },
    "captions": {
        "id": "string",
        "image": "image",
        "caption": "string",
        "modality": "string",
        "split": "string",
        "figure_label": "string",
        "book": "string",
    },
}
COLUMNS["demographics"] = {
    **COLUMNS["captions"],
    "age": "float64",
    "age_group": "string",
    "sex": "string",
    "demographics_evidence": "string",
}
TEXT_COLUMNS = ["image", "question", "answer"]

__all__ = ["COLUMNS", "ExportConfig", "ExportError", "run"]


@dataclass
class ExportConfig:
    """Settings of ``mmskin export`` (each field is the command-line option of the same name)."""

    dataset: Path = field(
        metadata={"help": "dataset folder (records.jsonl, images/, vqa.jsonl)", "cli": False}
    )
    format: str = field(metadata={"help": "output format", "choices": FORMATS, "required": True})
    out: Path = field(metadata={"help": "output file", "metavar": "PATH", "required": True})
    subset: str = option("vqa", "MM-Skin-C captions, MM-Skin-D demographics, MM-Skin-O vqa", choices=SUBSETS)
    seed: int = option(0, "seed of the instruction phrasings")
    include_flagged: bool = option(False, "also export records with excluding flags")
    exclude_flags: list[str] = option(
        [], "informative flags that exclude a record too (e.g. marked panel_letter scale_bar)", metavar="FLAG"
    )
    batch_rows: int = option(64, "rows per Parquet write (hf)", cli=False)

    def __post_init__(self) -> None:
        self.dataset, self.out = Path(self.dataset), Path(self.out)
        check_flag_names(self.exclude_flags)
        if self.format not in FORMATS:
            raise ConfigError(f"--format must be one of {', '.join(FORMATS)} (got {self.format!r})")
        if self.subset not in SUBSETS:
            raise ConfigError(f"--subset must be one of {', '.join(SUBSETS)} (got {self.subset!r})")


# --- the rows of a subset ------------------------------------------------------------------------------------
@functools.cache
def export_templates() -> dict[str, Any]:
    return load_yaml("taxonomies", "_export.yaml")


def read_jsonl(path: Path, problems: Problems, check: Callable[[Any], list[str]] | None = None) -> list[dict]:
    """Objects of a JSON Lines file; a bad line becomes one problem ('file:line': reason) and is skipped."""
    errors: list[str] = []
    try:
        rows = [obj for _, obj in iter_jsonl(path, errors, check)]
    except OSError as e:
        raise ExportError(f"{path}: cannot read ({e.strerror})") from None
    add_line_errors(problems, errors)
    return rows


def _check_sample(obj: Any) -> list[str]:
    if not isinstance(obj, dict):
        return ["not a JSON object"]
    bad = [
        k for k in ("image", "question", "answer") if not isinstance(obj.get(k), str) or not obj[k].strip()
    ]
    return [f"sample lacks {', '.join(bad)}"] if bad else []


def _age_phrase(age: float) -> tuple[str, str]:
    """('45-year-old', '45 years old') or ('8-month-old', '8 months old') for ages under one year."""
    if age < 1:
        n, unit = max(1, round(age * 12)), "month"
    else:
        n, unit = (int(age) if float(age).is_integer() else round(age, 1)), "year"
    s = "" if n == 1 else "s"
    return f"{n}-{unit}-old", f"{n} {unit}{s} old"


def demographics_qa(rec: dict[str, Any], rng: random.Random) -> tuple[str, str]:
    tpl = export_templates()["demographics_questions"]
    age, sex = rec.get("age"), rec.get("sex")
    if age is not None and sex:
        adj, _ = _age_phrase(float(age))
        art = "an" if adj.startswith(("8", "11-", "18-")) else "a"
        return rng.choice(tpl["both"]), f"The patient is {art} {adj} {sex}."
    if age is not None:
        return rng.choice(tpl["age"]), f"The patient is {_age_phrase(float(age))[1]}."
    return rng.choice(tpl["sex"]), f"The patient is {sex}."


def _vqa_rows(
    cfg: ExportConfig, records: dict[str, dict], tally: Tally, problems: Problems
) -> Iterator[dict[str, Any]]:
    """MM-Skin-O: the samples of vqa.jsonl whose record is usable, with the record's modality and split."""
    vqa_path = cfg.dataset / "vqa.jsonl"
    if not vqa_path.is_file():
        raise ExportError(f"{vqa_path}: missing (run `mmskin vqa {cfg.dataset}` first)")
    for s in read_jsonl(vqa_path, problems, _check_sample):
        tally.read += 1
        rec = records.get(s.get("record_id") or "")
        if rec is not None and not usable(rec, cfg):
            tally.flagged += 1
            continue
        yield {
            "id": str(s.get("id") or short_hash(s["image"], s["question"])),
            "record_id": s.get("record_id"),
            "image": s["image"],
            "question": s["question"],
            "answer": s["answer"],
            "question_type": s.get("question_type"),
            "generator": s.get("generator"),
            "modality": s.get("modality") or (rec or {}).get("modality"),
            "split": s.get("split") or (rec or {}).get("split"),
        }


def usable(rec: dict[str, Any], cfg: ExportConfig) -> bool:
    """Whether a record goes into the export: no excluding flag, none of ``--exclude-flags`` (unless
    ``--include-flagged``)."""
    return cfg.include_flagged or not excluding(rec, cfg.exclude_flags)


def _record_rows(cfg: ExportConfig, records: dict[str, dict], tally: Tally) -> Iterator[dict[str, Any]]:
    """MM-Skin-C (caption as the answer to a seeded instruction) or MM-Skin-D (an age/sex question) rows."""
    instructions = export_templates()["caption_instructions"]
    for rec in records.values():
        tally.read += 1
        if not usable(rec, cfg):
            tally.flagged += 1
            continue
        caption = (rec.get("caption") or "").strip()
        if not caption:
            tally.skipped["without caption"] += 1
            continue
        if cfg.subset == "demographics" and rec.get("age") is None and not rec.get("sex"):
            tally.skipped["without age or sex"] += 1
            continue
        rng = random.Random(f"{cfg.seed}|{cfg.subset}|{rec['id']}")
        row = {
            "id": rec["id"],
            "record_id": rec["id"],
            "image": rec["image"],
            "caption": caption,
            "modality": rec.get("modality"),
            "split": rec.get("split"),
            "figure_label": rec.get("figure_label"),
            "book": (rec.get("source") or {}).get("file"),
        }
        if cfg.subset == "captions":
            row.update(question=rng.choice(instructions), answer=caption, question_type="caption")
        else:
            q, a = demographics_qa(rec, rng)
            row.update(
                age=None if rec.get("age") is None else float(rec["age"]),
                age_group=rec.get("age_group"),
                sex=rec.get("sex"),
                demographics_evidence=rec.get("demographics_evidence"),
                question=q,
                answer=a,
                question_type="demographics",
            )
        yield row


def subset_rows(cfg: ExportConfig, tally: Tally, problems: Problems) -> Iterator[dict[str, Any]]:
    """Export rows: the subset's columns plus 'question'/'answer' for the text formats."""
    recs_path = cfg.dataset / "records.jsonl"
    if not recs_path.is_file():
        raise ExportError(f"{cfg.dataset}: no records.jsonl (not a dataset folder)")
    records = {r["id"]: r for r in read_jsonl(recs_path, problems, validate_record)}
    if cfg.subset == "vqa":
        return _vqa_rows(cfg, records, tally, problems)
    return _record_rows(cfg, records, tally)


def with_images(
    rows: Iterator[dict[str, Any]], dataset: Path, problems: Problems
) -> list[tuple[dict[str, Any], Path]]:
    """(row, image file) of the rows whose image is a file inside the dataset root; others are one problem each."""
    out = []
    for row in rows:
        where = f"{dataset}: record {row.get('record_id') or row['id']}"
        try:
            full = resolve_in_root(dataset, row["image"])
        except RecordError as e:
            problems.add(where, str(e))
            continue
        if not full.is_file():
            add_missing(problems, where, f"image {row['image']} missing")
            continue
        out.append((row, full))
    return out


# --- the formats ---------------------------------------------------------------------------------------------
Writer = Callable[[ExportConfig, list[tuple[dict, Path]], Tally, Problems, Callable[[int], None]], None]


def _text_rows(rows: list[tuple[dict, Path]], tally: Tally, advance: Callable[[int], None]) -> list[dict]:
    kept = []
    for row, _ in rows:
        kept.append(row)
        tally.by_question_type[row.get("question_type") or "none"] += 1
        advance(1)
    tally.rows = len(kept)
    return kept


def write_llava(cfg: ExportConfig, rows, tally: Tally, problems: Problems, advance) -> None:
    items = [llava_item(r) for r in _text_rows(rows, tally, advance)]
    text = json.dumps(items, ensure_ascii=False, indent=1) + "\n"
    atomic_write_bytes(cfg.out, text.encode("utf-8"), durable=True)


def write_mmskin_csv(cfg: ExportConfig, rows, tally: Tally, problems: Problems, advance) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(TEXT_COLUMNS)
    w.writerows([r["image"], r["question"], r["answer"]] for r in _text_rows(rows, tally, advance))
    atomic_write_bytes(cfg.out, buf.getvalue().encode("utf-8"), durable=True)


def write_hf(cfg: ExportConfig, rows, tally: Tally, problems: Problems, advance) -> None:
    from .parquet import write_parquet

    write_parquet(cfg.out, COLUMNS[cfg.subset], rows, tally, problems, advance, cfg.batch_rows)


WRITERS: dict[str, Writer] = {"hf": write_hf, "llava": write_llava, "mmskin-csv": write_mmskin_csv}


# --- the stage -----------------------------------------------------------------------------------------------
def run(config: ExportConfig, reporter: Reporter | None = None) -> StageResult:
    """Write the subset in the format at ``config.out`` and ``<out>.info.json``. Raises ExportError (exit status 2)
    when the dataset, or the vqa.jsonl the vqa subset needs, is not there."""
    reporter = reporter or SILENT
    problems = Problems(reporter)
    tally = Tally()
    cfg = config
    rows = with_images(subset_rows(cfg, tally, problems), cfg.dataset, problems)
    with reporter.progress(len(rows), f"exporting {cfg.subset}") as advance:
        WRITERS[cfg.format](cfg, rows, tally, problems, advance)
    packages = ["pyarrow"] if cfg.format == "hf" else []
    counts = tally_counts(tally, problems)
    info = {
        "provenance": provenance("export", config=cfg, packages=packages, seed=cfg.seed),
        "dataset": str(cfg.dataset.resolve()),  # mmskin train finds the images here
        "subset": cfg.subset,
        "format": cfg.format,
        "seed": cfg.seed,
        "include_flagged": cfg.include_flagged,
        "exclude_flags": list(cfg.exclude_flags),
        "excluding_flags": list(EXCLUDING_FLAGS),
        "columns": list(COLUMNS[cfg.subset]) if cfg.format == "hf" else TEXT_COLUMNS,
        "counts": counts,
    }
    write_info(Path(f"{cfg.out}.info.json"), info)
    summary = tally.line(f"export {cfg.subset} as {cfg.format}", problems, cfg.out)
    return StageResult("export", counts, problems, summary, extra={"out": str(cfg.out)})
