"""Zero-shot classification: prompt a model with the class list, parse its answer back to a class, score it.

The benchmark is a taxonomy (``mmskin.taxonomy``: classes, synonyms, MM-Skin's prompt), shared with
``convert-public``. Answers are parsed with ``Taxonomy.match_class`` (normalised longest match over names and
synonyms); an answer that names no class, or two classes equally, is *unparsed*: it counts as wrong, is counted in
``unparsed`` and listed in the results, and has its own column in the confusion matrix.

    mmskin eval zeroshot HAM10000 --data HAM10000_test.csv --images data/ --model hf:models/skinvl --out zs.json
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from ..records import atomic_write_bytes, sha256_file
from .adapters import Adapter, adapter_info
from .classification import (
    LABEL_METRICS,
    bootstrap_label_ci,
    canonical_label,
    encode,
    label_metrics,
    markdown_table,
    read_classification_csv,
)
from .predict import PredictResult, run_predictions, versions


def _err(msg: str) -> None:
    print(f"error: {msg}", file=sys.stderr, flush=True)


def load_prompt(taxonomy: Any, prompt: str) -> tuple[str, str]:
    """(question, source): ``mmskin`` gives the taxonomy's MM-Skin prompt; anything else is a text file whose
    ``{classes}`` placeholder is filled with the class names joined by ', '."""
    if prompt == "mmskin":
        return taxonomy.format_prompt(), f"mmskin ({taxonomy.name})"
    path = Path(prompt)
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as e:
        raise ValueError(f"{path}: cannot read the prompt file ({e.strerror})") from None
    if "{classes}" not in text:
        raise ValueError(f"{path}: the prompt has no {{classes}} placeholder")
    # the same join as Taxonomy.format_prompt, so a custom prompt differs from MM-Skin's only in its wording
    return text.replace("{classes}", ", ".join(taxonomy.class_names())), str(path)


def build_samples(
    taxonomy: Any, data: Path, question: str, limit: int | None = None
) -> tuple[list[dict[str, Any]], list[str]]:
    """Samples ``{id, image, question, label}`` of a classification CSV; rows whose label is not a class of the
    taxonomy are errors. The id is the image path (``#2``, ``#3`` … for repeats), so a rerun resumes by id."""
    rows, errors = read_classification_csv(data)
    samples: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for row in rows:
        label = canonical_label(taxonomy, row["label"])
        if label is None:
            errors.append(
                f"{data}: image {row['image']}: label {row['label']!r} is not a class of {taxonomy.name}"
            )
            continue
        k = seen[row["image"]] = seen.get(row["image"], 0) + 1
        sid = row["image"] if k == 1 else f"{row['image']}#{k}"
        samples.append({"id": sid, "image": row["image"], "question": question, "label": label})
        if limit is not None and len(samples) >= limit:
            break
    return samples, errors


def score(taxonomy: Any, rows: list[dict[str, Any]], seed: int = 0, n_boot: int = 1000) -> dict[str, Any]:
    """Metrics of answered rows (``label`` + ``prediction``): parsed classes, unparsed list, confusion, CIs."""
    labels = taxonomy.class_names()
    y_true = [r["label"] for r in rows]
    y_pred = [taxonomy.match_class(r["prediction"]) for r in rows]
    res = label_metrics(y_true, y_pred, labels)
    t, p, names = encode(y_true, y_pred, labels)
    ci = bootstrap_label_ci(t, p, len(names), n_boot=n_boot, seed=seed) if rows and n_boot > 0 else {}
    unparsed = [
        {"id": r["id"], "image": r["image"], "label": r["label"], "prediction": r["prediction"]}
        for r, yp in zip(rows, y_pred, strict=True)
        if yp is None
    ]
    return {
        "n": len(rows),
        "unparsed": len(unparsed),
        "metrics": {m: res[m] for m in LABEL_METRICS},
        "ci95": ci,
        "confusion": res["confusion"],
        "unparsed_answers": unparsed,
    }


def run_zeroshot(
    adapter: Adapter,
    taxonomy: Any,
    data: Path,
    images: Path,
    out: Path,
    *,
    predictions_out: Path | None = None,
    prompt: str = "mmskin",
    batch_size: int = 8,
    seed: int = 0,
    n_boot: int = 1000,
    limit: int | None = None,
    quiet: bool = False,
) -> tuple[dict[str, Any], int]:
    """Predict, parse, score and write ``out``; returns (results, number of failed rows)."""
    question, prompt_source = load_prompt(taxonomy, prompt)
    samples, errors = build_samples(taxonomy, Path(data), question, limit)
    for e in errors:
        _err(e)
    preds = Path(predictions_out) if predictions_out else Path(out).with_suffix(".predictions.jsonl")
    pres: PredictResult = run_predictions(
        adapter,
        samples,
        Path(images),
        preds,
        batch_size=batch_size,
        quiet=quiet,
        extra_meta={"task": "zeroshot", "benchmark": taxonomy.name, "prompt": question, "seed": seed},
    )
    scored = score(taxonomy, pres.rows, seed=seed, n_boot=n_boot)
    results = {
        "task": "zeroshot",
        "benchmark": taxonomy.name,
        "model": adapter.name,
        **scored,
        "errors": len(errors) + len(pres.errors),
        "provenance": {
            "mmskin_version": versions()["mmskin"],
            "versions": versions(),
            "model": adapter_info(adapter),
            "taxonomy": {
                "name": taxonomy.name,
                "path": getattr(taxonomy, "path", ""),
                "source": getattr(taxonomy, "source", ""),
            },
            "prompt": question,
            "prompt_source": prompt_source,
            "prompt_sha256": hashlib.sha256(question.encode()).hexdigest(),
            "data": str(data),
            "data_sha256": sha256_file(data),
            "images": str(images),
            "predictions": str(preds),
            "answer_parsing": "Taxonomy.match_class: normalised longest name/synonym match; none or tie = unparsed",
            "seed": seed,
            "bootstrap": {"n_boot": n_boot, "interval": "percentile 95%"},
            "batch_size": batch_size,
            "limit": limit,
        },
    }
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, (json.dumps(results, indent=2, ensure_ascii=False) + "\n").encode())
    return results, len(errors) + len(pres.errors)


def markdown(results: dict[str, Any]) -> str:
    ci = results.get("ci95", {})
    rows = [(m, results["metrics"][m], ci.get(m)) for m in LABEL_METRICS]
    head = f"zero-shot {results['benchmark']} · {results['model']} · n={results['n']} · unparsed={results['unparsed']}"
    return head + "\n\n" + markdown_table(rows)
