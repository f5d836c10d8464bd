"""Exports of a dataset to the formats trainers read, and the matching imports (``mmskin export`` / ``mmskin import``).

Subsets: ``captions`` (MM-Skin-C: usable records, image + cleaned caption), ``demographics`` (MM-Skin-D: usable
records with age or sex), ``vqa`` (MM-Skin-O: ``DATASET/vqa.jsonl``). Formats: ``hf`` (Parquet with a Hugging Face
``Image`` feature, images embedded), ``llava`` (LLaVA conversation JSON, as MM-Skin's released training JSON;
image paths relative to the dataset root), ``mmskin-csv`` (``image,question,answer`` like MM-Skin_test.csv).

    mmskin export data/derm --subset vqa --format llava --out derm_llava.json
    mmskin import llava derm_llava.json --out samples.jsonl --image-root data/derm
    >>> from mmskin.vqa.export import export_dataset
    >>> report = export_dataset("data/derm", "hf", "captions", "derm_captions.parquet")
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
import os
import random
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from .. import __version__
from ..records import (
    EXCLUDING_FLAGS,
    RecordError,
    atomic_write_bytes,
    check_relpath,
    is_usable,
    iter_jsonl,
    resolve_in_root,
    validate_record,
    write_jsonl,
)

SUBSETS = ("captions", "demographics", "vqa")
FORMATS = ("hf", "llava", "mmskin-csv")
IMPORT_FORMATS = ("llava", "mmskin-csv", "hf")
IMAGE_TOKEN = "<image>"
VQA_FIELDS = ("id", "record_id", "image", "question", "answer", "question_type", "generator")

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
_TEMPLATES = Path(__file__).resolve().parents[1] / "data" / "taxonomies" / "_export.yaml"


class ExportError(ValueError):
    """The export or import cannot run at all; one line naming the file and the reason."""


@dataclass
class Report:
    what: str
    rows: int = 0
    read: int = 0
    flagged: int = 0
    skipped: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    by_type: Counter = field(default_factory=Counter)
    out: str = ""

    def line(self) -> str:
        skipped = "".join(f", {n} {why}" for why, n in sorted(self.skipped.items()))
        flagged = f", {self.flagged} flagged left out" if self.what.startswith("export") else ""
        return (
            f"{self.what}: {self.rows} rows from {self.read} read{flagged}{skipped}, "
            f"{len(self.missing)} missing images, {len(self.errors)} errors"
            f"{f' -> {self.out}' if self.out else ''}"
        )

    def counts(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "read": self.read,
            "flagged": self.flagged,
            "skipped": dict(sorted(self.skipped.items())),
            "missing_images": len(self.missing),
            "errors": len(self.errors),
            "by_question_type": dict(sorted(self.by_type.items())),
        }


# --- shared helpers ------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def export_templates() -> dict[str, Any]:
    import yaml

    return yaml.safe_load(_TEMPLATES.read_text(encoding="utf-8"))


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


def read_jsonl(
    path: Path, errors: list[str], check: Callable[[Any], list[str]] | None = None
) -> Iterator[dict]:
    """Objects of a JSON Lines file; a bad line becomes one error ('file:line: reason') and is skipped."""
    try:
        rows = [obj for _, obj in iter_jsonl(path, errors, check)]
    except OSError as e:
        raise ExportError(f"{path}: cannot read ({e.strerror})") from None
    yield from rows


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


def _atomic_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), durable=True)


def _versions(fmt: str) -> dict[str, str]:
    v = {"mmskin": __version__, "python": sys.version.split()[0]}
    if fmt == "hf":
        import pyarrow

        v["pyarrow"] = pyarrow.__version__
    return v


def _write_info(out: Path, info: dict[str, Any]) -> None:
    atomic_write_bytes(Path(f"{out}.info.json"), json.dumps(info, indent=1, sort_keys=True).encode("utf-8"))


# --- export --------------------------------------------------------------------------------------------------
def _rows(
    dataset: Path, subset: str, seed: int, include_flagged: bool, report: Report
) -> Iterator[dict[str, Any]]:
    """Export rows: the subset's columns plus 'question'/'answer' for the text formats."""
    recs_path = dataset / "records.jsonl"
    if not recs_path.is_file():
        raise ExportError(f"{dataset}: no records.jsonl (not a dataset folder)")
    records = {r["id"]: r for r in read_jsonl(recs_path, report.errors, validate_record)}
    if subset == "vqa":
        vqa_path = dataset / "vqa.jsonl"
        if not vqa_path.is_file():
            raise ExportError(f"{vqa_path}: missing (run `mmskin vqa {dataset}` first)")
        for s in read_jsonl(vqa_path, report.errors, _check_sample):
            report.read += 1
            rec = records.get(s.get("record_id") or "")
            if rec is not None and not include_flagged and not is_usable(rec):
                report.flagged += 1
                continue
            yield {
                "id": str(s.get("id") or _hash(s["image"], s["question"])),
                "record_id": s.get("record_id"),
                "image": s["image"],
                "question": s["question"],
                "answer": s["answer"],
                "question_type": s.get("question_type"),
                "generator": s.get("generator"),
                "modality": s.get("modality") or (rec or {}).get("modality"),
                "split": s.get("split") or (rec or {}).get("split"),
            }
        return
    instructions = export_templates()["caption_instructions"]
    for rec in records.values():
        report.read += 1
        if not include_flagged and not is_usable(rec):
            report.flagged += 1
            continue
        caption = (rec.get("caption") or "").strip()
        if not caption:
            report.skipped["without caption"] += 1
            continue
        if subset == "demographics" and rec.get("age") is None and not rec.get("sex"):
            report.skipped["without age or sex"] += 1
            continue
        rng = random.Random(f"{seed}|{subset}|{rec['id']}")
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
        if subset == "captions":
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


def _hash(*parts: str) -> str:
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:20]


def _checked(rows: Iterable[dict[str, Any]], dataset: Path, report: Report) -> Iterator[tuple[dict, Path]]:
    """Rows whose image is a file inside the dataset root; others become one error line each."""
    for row in rows:
        try:
            full = resolve_in_root(dataset, row["image"])
        except RecordError as e:
            report.errors.append(f"{dataset}: record {row.get('record_id') or row['id']}: {e}")
            continue
        if not full.is_file():
            report.missing.append(
                f"{dataset}: record {row.get('record_id') or row['id']}: image {row['image']} missing"
            )
            continue
        yield row, full


def export_dataset(
    dataset: str | Path,
    fmt: str,
    subset: str,
    out: str | Path,
    seed: int = 0,
    include_flagged: bool = False,
    progress: bool = False,
    batch_rows: int = 64,
) -> Report:
    dataset, out = Path(dataset), Path(out)
    if fmt not in FORMATS:
        raise ExportError(f"--format must be one of {', '.join(FORMATS)} (got {fmt!r})")
    if subset not in SUBSETS:
        raise ExportError(f"--subset must be one of {', '.join(SUBSETS)} (got {subset!r})")
    report = Report(what=f"export {subset} as {fmt}")
    rows = _checked(_rows(dataset, subset, seed, include_flagged, report), dataset, report)
    if progress:
        rows = _spinner(rows, f"exporting {subset}")
    if fmt == "hf":
        _write_parquet(out, subset, rows, report, batch_rows)
    else:
        kept = []
        for row, _ in rows:
            kept.append(row)
            report.by_type[row.get("question_type") or "none"] += 1
        report.rows = len(kept)
        if fmt == "llava":
            items = [llava_item(r) for r in kept]
            _atomic_text(out, json.dumps(items, ensure_ascii=False, indent=1) + "\n")
        else:
            buf = io.StringIO()
            w = csv.writer(buf, lineterminator="\n")
            w.writerow(["image", "question", "answer"])
            w.writerows([r["image"], r["question"], r["answer"]] for r in kept)
            _atomic_text(out, buf.getvalue())
    report.out = str(out)
    _write_info(
        out,
        {
            "tool": "mmskin export",
            **_versions(fmt),
            "dataset": str(dataset.resolve()),
            "subset": subset,
            "format": fmt,
            "seed": seed,
            "include_flagged": include_flagged,
            "excluding_flags": list(EXCLUDING_FLAGS),
            "columns": list(COLUMNS[subset]) if fmt == "hf" else ["image", "question", "answer"],
            "counts": report.counts(),
        },
    )
    return report


def hf_features(subset: str) -> dict[str, Any]:
    """The 'huggingface' schema metadata that makes `datasets` decode the image column as an Image feature."""
    feats = {}
    for col, dtype in COLUMNS[subset].items():
        feats[col] = {"_type": "Image"} if dtype == "image" else {"dtype": dtype, "_type": "Value"}
    return {"info": {"features": feats}}


def _write_parquet(
    out: Path, subset: str, rows: Iterable[tuple[dict, Path]], report: Report, batch_rows: int
) -> None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ExportError("--format hf needs pyarrow: pip install 'mmskin[export]'") from None
    cols = COLUMNS[subset]
    img_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    fields = [
        pa.field(c, img_type if t == "image" else pa.float64() if t == "float64" else pa.string())
        for c, t in cols.items()
    ]
    schema = pa.schema(fields, metadata={"huggingface": json.dumps(hf_features(subset))})
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    os.close(fd)
    try:
        with pq.ParquetWriter(tmp, schema) as writer:
            batch: list[dict[str, Any]] = []
            for row, full in rows:
                try:
                    data = full.read_bytes()
                except OSError as e:
                    report.errors.append(f"{full}: cannot read ({e.strerror})")
                    continue
                rec = {c: row.get(c) for c in cols}
                rec["image"] = {"bytes": data, "path": row["image"]}
                batch.append(rec)
                report.by_type[row.get("question_type") or "none"] += 1
                if len(batch) >= batch_rows:
                    writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                    report.rows += len(batch)
                    batch = []
            if batch or report.rows == 0:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                report.rows += len(batch)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _spinner(rows: Iterable, desc: str) -> Iterator:
    from rich.progress import Progress, SpinnerColumn, TextColumn

    with Progress(SpinnerColumn(), TextColumn("{task.description} {task.completed}"), transient=True) as bar:
        task = bar.add_task(desc, total=None)
        for r in rows:
            bar.advance(task)
            yield r


# --- import --------------------------------------------------------------------------------------------------
def _strip_image_token(text: str) -> str:
    return text.replace(IMAGE_TOKEN, "").strip()


def _sample(
    image: str, question: str, answer: str, generator: str, idx: str, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    extra = extra or {}
    s = {
        "id": str(extra.get("id") or _hash(generator, idx, image, question)),
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


def _llava_items(path: Path, report: Report) -> Iterator[tuple[str, Any]]:
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
                    report.errors.append(f"{path}:{n}: not JSON ({e2.msg})")
        return
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise ExportError(f"{path}: a LLaVA file is a JSON list of conversations")
    for i, item in enumerate(data):
        yield f"{path}[{i}]", item


def import_llava(path: Path, report: Report) -> Iterator[dict[str, Any]]:
    for where, item in _llava_items(path, report):
        report.read += 1
        if not isinstance(item, dict) or not isinstance(item.get("image"), str) or not item["image"].strip():
            report.errors.append(f"{where}: no 'image' string")
            continue
        conv = item.get("conversations")
        if not isinstance(conv, list) or not conv:
            report.errors.append(f"{where}: no 'conversations' list")
            continue
        turns = [t for t in conv if isinstance(t, dict) and isinstance(t.get("value"), str)]
        if len(turns) != len(conv):
            report.errors.append(f"{where}: a turn is not {{'from', 'value'}}")
            continue
        for k in range(0, len(turns) - 1, 2):
            h, g = turns[k], turns[k + 1]
            if h.get("from") not in ("human", "user") or g.get("from") not in ("gpt", "assistant"):
                report.errors.append(f"{where}: turn {k} is not a human turn followed by a gpt turn")
                break
            q, a = _strip_image_token(h["value"]), g["value"].strip()
            if not q or not a:
                report.errors.append(f"{where}: turn {k} has an empty question or answer")
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
            report.skipped["unanswered last turns"] += 1


def import_mmskin_csv(path: Path, report: Report) -> Iterator[dict[str, Any]]:
    try:
        fh = open(path, newline="", encoding="utf-8-sig")
    except OSError as e:
        raise ExportError(f"{path}: cannot read ({e.strerror})") from None
    with fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or not {"image", "question", "answer"} <= {
            h.strip() for h in reader.fieldnames
        }:
            raise ExportError(f"{path}: needs the columns image,question,answer (got {reader.fieldnames})")
        reader.fieldnames = [h.strip() for h in reader.fieldnames]
        try:
            for row in reader:
                report.read += 1
                where = f"{path}:{reader.line_num}"
                vals = {k: (row.get(k) or "").strip() for k in ("image", "question", "answer")}
                if None in row:
                    report.errors.append(f"{where}: more fields than the header")
                    continue
                if missing := [k for k, v in vals.items() if not v]:
                    report.errors.append(f"{where}: empty {', '.join(missing)}")
                    continue
                extra = {
                    k: row.get(k) for k in ("id", "record_id", "question_type", "generator") if row.get(k)
                }
                yield _sample(
                    vals["image"],
                    _strip_image_token(vals["question"]),
                    vals["answer"],
                    "import:mmskin-csv",
                    where,
                    extra,
                )
        except csv.Error as e:
            report.errors.append(
                f"{path}:{reader.line_num}: malformed CSV ({e}); rows after it were not read"
            )


def import_hf(path: Path, report: Report, image_root: Path | None, out: Path) -> Iterator[dict[str, Any]]:
    """Parquet with question/answer/image columns. An embedded image whose path is not a file under the image root
    is written there (content-addressed, images/<sha[:2]>/<sha>.<ext>)."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ExportError("importing hf parquet needs pyarrow: pip install 'mmskin[export]'") from None
    try:
        pf = pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises several types for a broken file
        raise ExportError(f"{path}: not a Parquet file ({type(e).__name__})") from None
    names = set(pf.schema_arrow.names)
    if not {"image", "question", "answer"} <= names:
        raise ExportError(f"{path}: needs the columns image, question, answer (got {sorted(names)})")
    root = image_root or out.parent
    n = 0
    for batch in pf.iter_batches(batch_size=256):
        for row in batch.to_pylist():
            n += 1
            report.read += 1
            where = f"{path}[{n - 1}]"
            img = row.get("image")
            q, a = (row.get("question") or "").strip(), (row.get("answer") or "").strip()
            if not q or not a:
                report.errors.append(f"{where}: empty question or answer")
                continue
            rel = None
            if isinstance(img, str):
                rel = img
            elif isinstance(img, dict):
                p, data = img.get("path"), img.get("bytes")
                if p and (data is None or _is_file_in(root, p)):
                    rel = p
                elif data:
                    rel = _store_image(root, data, p)
            if not rel:
                report.errors.append(f"{where}: no image path or bytes")
                continue
            extra = {
                k: row.get(k) for k in ("id", "record_id", "question_type", "generator", "modality", "split")
            }
            yield _sample(rel, _strip_image_token(q), a, "import:hf", where, extra)


def _is_file_in(root: Path, rel: str) -> bool:
    try:
        return resolve_in_root(root, rel).is_file()
    except RecordError:
        return False


def _store_image(root: Path, data: bytes, name: str | None) -> str:
    ext = PurePosixPath(name or "").suffix.lower() or _sniff_ext(data)
    sha = hashlib.sha256(data).hexdigest()
    rel = f"images/{sha[:2]}/{sha}{ext}"
    dest = root / rel
    if not dest.is_file():
        atomic_write_bytes(dest, data)
    return rel


def _sniff_ext(data: bytes) -> str:
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return ".png"
    if data[:3] == b"\xff\xd8\xff":
        return ".jpg"
    return ".bin"


def import_samples(
    fmt: str, path: str | Path, out: str | Path, image_root: str | Path | None = None
) -> Report:
    """Read LLaVA JSON / MM-Skin CSV / HF parquet into VQA samples (JSONL at ``out``, plus ``<out>.info.json``)."""
    path, out = Path(path), Path(out)
    root = Path(image_root) if image_root else None
    if fmt not in IMPORT_FORMATS:
        raise ExportError(f"format must be one of {', '.join(IMPORT_FORMATS)} (got {fmt!r})")
    if not path.is_file():
        raise ExportError(f"{path}: no such file")
    if root is not None and not root.is_dir():
        raise ExportError(f"{root}: --image-root is not a folder")
    report = Report(what=f"import {fmt}")
    try:
        if fmt == "llava":
            gen = import_llava(path, report)
        elif fmt == "mmskin-csv":
            gen = import_mmskin_csv(path, report)
        else:
            gen = import_hf(path, report, root, out)
        samples, seen = [], set()
        for s in gen:
            try:
                check_relpath(s["image"])
            except RecordError as e:
                report.errors.append(f"{path}: sample {s['id']}: {e}")
                continue
            if root is not None and not _is_file_in(root, s["image"]):
                report.missing.append(f"{path}: sample {s['id']}: image {s['image']} not found under {root}")
            if s["id"] in seen:
                report.skipped["duplicate ids"] += 1
                continue
            seen.add(s["id"])
            report.by_type[s["question_type"]] += 1
            samples.append(s)
    except UnicodeDecodeError:
        raise ExportError(f"{path}: not UTF-8 text") from None
    report.rows = write_jsonl(out, samples)
    report.out = str(out)
    _write_info(
        out,
        {
            "tool": "mmskin import",
            **_versions("hf" if fmt == "hf" else fmt),
            "format": fmt,
            "source": str(path.resolve()),
            "image_root": str(root.resolve()) if root else None,
            "counts": report.counts(),
        },
    )
    return report
