"""MM-Skin's own files, read as its scripts write and read them.

- ``predictions.csv`` of VQA_test.py: ``image,question,predicted_answer,ground_truth,modality``
  (:func:`read_vqa_table` reads it, or mmskin's own predictions table, as rows with ``answer`` and ``prediction``).
- ``caption.csv``: VQA_test.py takes each test row's modality from it, looking the image up by exact path and
  taking the first match (:func:`modality_from_captions`); an image it does not list has no modality (here
  ``unknown``).
- ``<experiment>_predictions.csv`` of ZS_classification.py: its header names six columns but every row holds seven
  (the raw answer, ``output``, sits after ``question``); :func:`read_zeroshot_predictions` reads the rows by
  position (or by name when the header has been fixed to seven names).

    rows, problems = read_vqa_table(Path("result/VQA/SkinVL_PubMM/predictions.csv"))
    by_image = modality_from_captions(Path("Dataset/MM-Skin/caption.csv"))
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from ..records import csv_header, open_csv
from ..stage import Problem
from .vqa_inputs import InputError, read_table

VQA_COLUMNS = ("image", "question", "predicted_answer", "ground_truth", "modality")
ZEROSHOT_COLUMNS = (
    "image",
    "question",
    "output",
    "predicted_answer",
    "ground_truth",
    "predicted_label",
    "ground_truth_label",
)


def _header(path: Path) -> list[str]:
    f, reader = open_csv(path, error=InputError)
    with f:
        return csv_header(reader)


def read_vqa_table(path: Path) -> tuple[list[dict[str, Any]], list[Problem]]:
    """Rows (``image, question, answer, prediction[, modality]``) of mmskin's predictions table or of VQA_test.py's
    predictions.csv; a problem ``FILE:LINE`` per skipped row. InputError when the file cannot be used."""
    path = Path(path)
    if path.suffix.lower() != ".csv" or not path.is_file():
        return read_table(path)
    header = _header(path)
    if "prediction" in header or not {"predicted_answer", "ground_truth"} <= set(header):
        return read_table(path)
    rows, problems = read_table(path, needed=("image", "question", "predicted_answer", "ground_truth"))
    for r in rows:
        r["answer"], r["prediction"] = r.pop("ground_truth"), r.pop("predicted_answer")
    return rows, problems


def modality_from_captions(path: Path) -> dict[str, str]:
    """image -> modality of a captions CSV (``image`` and ``modality`` columns), the first row of each image winning
    as in VQA_test.py's ``get_modality_from_image``; rows without a modality are left out."""
    f, reader = open_csv(path, error=InputError)
    out: dict[str, str] = {}
    with f:
        header = csv_header(reader)
        if not {"image", "modality"} <= set(header):
            raise InputError(
                f"{path}: a captions CSV needs 'image' and 'modality' columns (has {', '.join(header)})"
            )
        try:
            for row in reader:
                image, modality = row.get("image"), (row.get("modality") or "").strip()
                if image is not None and image not in out and modality:
                    out[image] = modality
        except csv.Error as e:
            raise InputError(f"{path}:{reader.line_num}: unreadable CSV ({e})") from None
    return out


def read_zeroshot_predictions(path: Path) -> tuple[list[dict[str, Any]], list[Problem]]:
    """Rows ``{id, image, answer, ground_truth}`` of ZS_classification.py's predictions CSV (``answer`` is its raw
    model output after its 'actinic keratoses' replacement; ``ground_truth`` the class it picked for the row)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror})") from None
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    reader = csv.reader(text.splitlines(keepends=True))
    header = [h.strip() for h in next(reader, [])]
    if not {"image", "ground_truth"} <= set(header):
        raise InputError(f"{path}: not a ZS_classification.py predictions CSV (header: {', '.join(header)})")
    rows: list[dict[str, Any]] = []
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    try:
        for fields in reader:
            line = reader.line_num
            if not fields:
                continue
            names = ZEROSHOT_COLUMNS if len(fields) == len(ZEROSHOT_COLUMNS) else header
            if len(fields) != len(names) or "output" not in names:
                problems.append(
                    Problem(f"{path}:{line}", f"{len(fields)} fields (expected {len(ZEROSHOT_COLUMNS)})")
                )
                continue
            row = dict(zip(names, fields, strict=True))
            k = seen[row["image"]] = seen.get(row["image"], 0) + 1
            sid = row["image"] if k == 1 else f"{row['image']}#{k}"
            rows.append(
                {
                    "id": sid,
                    "image": row["image"],
                    "answer": row["output"],
                    "ground_truth": row["ground_truth"],
                }
            )
    except csv.Error as e:
        problems.append(Problem(f"{path}:{reader.line_num}", f"unreadable CSV ({e}); rows after it skipped"))
    return rows, problems
