"""Zero-shot classification (``mmskin eval zeroshot``): prompt a model with the class list, parse its answer back
to a class, score it.

The benchmark is a taxonomy (``mmskin.taxonomy``: classes, synonyms, MM-Skin's prompt), shared with
``convert-public``. Answers are parsed with ``Taxonomy.match_class`` (normalised longest match over names and
synonyms); an answer that names no class, or two classes equally, is *unparsed*: it counts as wrong, is counted in
``unparsed`` and listed in the results, and has its own column in the confusion matrix.

    mmskin eval zeroshot HAM10000 --data HAM10000_test.csv --images data/ --model hf:models/skinvl --out zs.json

    from mmskin.evaluate.zeroshot import ZeroShotConfig, run
    cfg = ZeroShotConfig(benchmark="HAM10000", data=Path("ham.csv"), images=Path("data"), out=Path("zs.json"),
                         model=ModelConfig(spec="dummy:melanoma"))
    run(cfg).counts       # {'scored': …, 'unparsed': …, 'errors': …}
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import ConfigError, option
from ..records import sha256_file
from ..stage import SILENT, Problem, Problems, Reporter, StageError, StageResult
from .adapters import adapter_info
from .classification import (
    LABEL_METRICS,
    bootstrap_label_ci,
    canonical_label,
    encode,
    label_metrics,
    markdown_table,
    not_a_class,
    read_classification_csv,
)
from .predict import MODEL_PACKAGES, ModelConfig, adapter_for, predictions_meta, run_predictions
from .results import INTERVAL, eval_provenance, write_results

ANSWER_PARSING = "Taxonomy.match_class: normalised longest name/synonym match; none or tie = unparsed"


@dataclass
class ZeroShotConfig:
    """Settings of ``mmskin eval zeroshot`` (each field is the command-line option of the same name)."""

    benchmark: str = option(
        "", "taxonomy name (e.g. HAM10000) or taxonomy YAML path", cli=False, required=True
    )
    data: Path | None = option(None, "classification CSV (see below)", metavar="CSV", required=True)
    images: Path | None = option(None, "root of the CSV's image paths", metavar="DIR", required=True)
    prompt: str = option(
        "mmskin",
        "mmskin: the taxonomy's MM-Skin prompt; PATH: a text file with a {classes} placeholder",
        metavar="mmskin|PATH",
    )
    predictions_out: Path | None = option(
        None, "where the answers go (default: OUT.predictions.jsonl)", metavar="JSONL"
    )
    out: Path | None = option(None, "results file to write", metavar="RESULTS.json", required=True)
    seed: int = option(0, "seed of sampling and bootstrap")
    n_boot: int = option(1000, "bootstrap resamples for the 95 percent confidence interval")
    limit: int | None = option(None, "use only the first N rows (smoke runs)", metavar="N")
    model: ModelConfig = option(ModelConfig(), "the model that answers (its options)", cli=False)


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
) -> tuple[list[dict[str, Any]], list[Problem]]:
    """Samples ``{id, image, question, label}`` of a classification CSV; rows whose label is not a class of the
    taxonomy are problems. The id is the image path (``#2``, ``#3`` … for repeats), so a rerun resumes by id."""
    rows, errors = read_classification_csv(data)
    samples: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for row in rows:
        label = canonical_label(taxonomy, row["label"])
        if label is None:
            errors.append(not_a_class(data, row["image"], row["label"], taxonomy))
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


def run(config: ZeroShotConfig, reporter: Reporter | None = None) -> StageResult:
    """Predict, parse, score and write ``config.out``. ConfigError or StageError (exit 2) when the benchmark,
    data, images, prompt or model cannot be used; StageError (exit 1) when the model fails as a whole."""
    from ..taxonomy import TaxonomyError, load_taxonomy

    reporter = reporter or SILENT
    if config.out is None or config.data is None or config.images is None:
        raise ConfigError("--data CSV, --images DIR and --out RESULTS.json are required")
    problems = Problems(reporter)
    try:
        taxonomy = load_taxonomy(config.benchmark)
        if not config.images.is_dir():
            raise ValueError(f"{config.images}: no such image folder")
        adapter = adapter_for(config.model, task="zeroshot", seed=config.seed)
        question, prompt_source = load_prompt(taxonomy, config.prompt)
        samples, errors = build_samples(taxonomy, config.data, question, config.limit)
        problems.take(errors)
        preds = config.predictions_out or config.out.with_suffix(".predictions.jsonl")
        meta = predictions_meta("zeroshot", config, config.seed, benchmark=taxonomy.name, prompt=question)
        pres = run_predictions(
            adapter,
            samples,
            config.images,
            preds,
            batch_size=config.model.batch_size,
            meta=meta,
            problems=problems,
            reporter=reporter,
        )
    except (TaxonomyError, ValueError, OSError) as e:
        raise StageError("", str(e), exit_code=2) from None
    except RuntimeError as e:  # ModelError and model failures: one line
        raise StageError("", str(e)) from None
    results = {
        "task": "zeroshot",
        "benchmark": taxonomy.name,
        "model": adapter.name,
        **score(taxonomy, pres.rows, seed=config.seed, n_boot=config.n_boot),
        "errors": len(errors) + len(pres.errors),
        "provenance": _provenance(config, taxonomy, adapter, question, prompt_source, preds),
    }
    write_results(config.out, results)
    if results["n"] == 0:
        problems.add(config.data, "nothing was scored (no usable rows)")
    m = results["metrics"]
    summary = (
        f"zeroshot {results['benchmark']}: n={results['n']} accuracy={m['accuracy']:.4f} "
        f"macro_f1={m['macro_f1']:.4f} unparsed={results['unparsed']} errors={results['errors']} -> {config.out}"
    )
    counts = {"scored": results["n"], "unparsed": results["unparsed"], "errors": results["errors"]}
    return StageResult(
        "eval zeroshot", counts, problems, summary, {"table": markdown(results), "results": results}
    )


def _provenance(
    config: ZeroShotConfig, taxonomy: Any, adapter: Any, question: str, prompt_source: str, preds: Path
) -> dict[str, Any]:
    return eval_provenance(
        "zeroshot",
        config,
        MODEL_PACKAGES,
        model=adapter_info(adapter),
        taxonomy={
            "name": taxonomy.name,
            "path": getattr(taxonomy, "path", ""),
            "source": getattr(taxonomy, "source", ""),
        },
        prompt=question,
        prompt_source=prompt_source,
        prompt_sha256=hashlib.sha256(question.encode()).hexdigest(),
        data_sha256=sha256_file(config.data),
        predictions=str(preds),
        answer_parsing=ANSWER_PARSING,
        bootstrap={"n_boot": config.n_boot, "interval": INTERVAL},
    )


def markdown(results: dict[str, Any]) -> str:
    ci = results.get("ci95", {})
    rows = [(m, results["metrics"][m], ci.get(m)) for m in LABEL_METRICS]
    head = f"zero-shot {results['benchmark']} · {results['model']} · n={results['n']} · unparsed={results['unparsed']}"
    return head + "\n\n" + markdown_table(rows)
