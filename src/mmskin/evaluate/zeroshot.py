"""Zero-shot classification (``mmskin eval zeroshot``): prompt a model with the class list, parse its answer back
to a class, score it.

The benchmark is a taxonomy (``mmskin.taxonomy``: classes, synonyms, MM-Skin's prompt), shared with
``convert-public``. Every answer is parsed twice, and both are scored:

- ``Taxonomy.match_class`` (the headline ``metrics``): normalised longest match over names and synonyms; an answer
  that names no class, or two classes equally, is *unparsed*: it counts as wrong, is counted in ``unparsed`` and
  listed in the results, and has its own column in the confusion matrix.
- MM-Skin's parse (``mmskin_parse``, :func:`paper_parse`), as ZS_classification.py: "actinic keratosis" replaced by
  "actinic keratoses", then the first class in the benchmark's order whose lower-cased name is a substring of the
  lower-cased answer; none = wrong (its -1).

A CSV row that lists several categories gets one of them as its ground truth, picked as the script does
(``random.choice``) but seeded. ``--predictions FILE`` scores answers that already exist without loading a model:
mmskin's predictions JSONL or ZS_classification.py's ``<experiment>_predictions.csv``.

    mmskin eval zeroshot HAM10000 --data HAM10000_test.csv --images data/ --model hf:models/skinvl --out zs.json
    mmskin eval zeroshot HAM10000 --predictions result/zeroshot/HAM10000_predictions.csv --out zs.json

    from mmskin.evaluate.zeroshot import ZeroShotConfig, run
    cfg = ZeroShotConfig(benchmark="HAM10000", data=Path("ham.csv"), images=Path("data"), out=Path("zs.json"),
                         model=ModelConfig(spec="dummy:melanoma"))
    run(cfg).counts       # {'scored': …, 'unparsed': …, 'errors': …}
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
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
from .predict import (
    MODEL_PACKAGES,
    ModelConfig,
    ReplicaSpec,
    adapter_for,
    predictions_meta,
    read_predictions,
    run_predictions,
)
from .results import INTERVAL, eval_provenance, write_results

ANSWER_PARSING = "Taxonomy.match_class: normalised longest name/synonym match; none or tie = unparsed"
PAPER_PARSING = (
    "ZS_classification.py: 'actinic keratosis' -> 'actinic keratoses', then the first class (benchmark order) whose "
    "lower-cased name is a substring of the lower-cased answer; none = wrong"
)
GROUND_TRUTH = "the row's category; a row listing several: random.Random(seed).choice, rows in file order"
# the short forms in each number's signature
SIGNATURE_PARSE = {
    "metrics": "longest match (Taxonomy.match_class; none or tie = wrong)",
    "mmskin_parse": "ZS_classification.py (first class substring after actinic keratosis->keratoses; none = wrong)",
}


@dataclass
class ZeroShotConfig:
    """Settings of ``mmskin eval zeroshot`` (each field is the command-line option of the same name)."""

    benchmark: str = option(
        "", "taxonomy name (e.g. HAM10000) or taxonomy YAML path", cli=False, required=True
    )
    data: Path | None = option(None, "with --model: classification CSV (see below)", metavar="CSV")
    images: Path | None = option(None, "with --model: root of the CSV's image paths", metavar="DIR")
    predictions: Path | None = option(
        None,
        "score these answers instead of running a model: mmskin's predictions JSONL, or ZS_classification.py's "
        "<experiment>_predictions.csv",
        metavar="FILE",
    )
    prompt: str = option(
        "mmskin",
        "mmskin: the taxonomy's MM-Skin prompt; PATH: a text file with a {classes} placeholder",
        metavar="mmskin|PATH",
    )
    predictions_out: Path | None = option(
        None, "where the answers go (default: OUT.predictions.jsonl)", metavar="JSONL"
    )
    out: Path | None = option(None, "results file to write", metavar="RESULTS.json", required=True)
    seed: int = option(
        0, "seed of sampling, of the ground-truth pick for rows with several categories, bootstrap"
    )
    n_boot: int = option(1000, "bootstrap resamples for the 95 percent confidence interval")
    limit: int | None = option(None, "use only the first N rows (smoke runs)", metavar="N")
    model: ModelConfig = option(ModelConfig(), "the model that answers (its options)", cli=False)


def paper_parse(answer: str, classes: list[str]) -> str | None:
    """MM-Skin's parse: the first class whose lower-cased name is in the answer after its replace (or None)."""
    text = answer.replace("actinic keratosis", "actinic keratoses").lower()
    return next((c for c in classes if c.lower() in text), None)


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
    taxonomy: Any, data: Path, question: str, limit: int | None = None, seed: int = 0
) -> tuple[list[dict[str, Any]], list[Problem]]:
    """Samples ``{id, image, question, label}`` of a classification CSV; rows whose label is not a class of the
    taxonomy are problems. The id is the image path (``#2``, ``#3`` … for repeats), so a rerun resumes by id."""
    rows, errors = read_classification_csv(data, pick=random.Random(seed))
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


def _parsed(
    taxonomy: Any, rows: list[dict[str, Any]], y_pred: list[str | None], seed: int, n_boot: int
) -> dict:
    y_true = [r["label"] for r in rows]
    res = label_metrics(y_true, y_pred, taxonomy.class_names())
    t, p, names = encode(y_true, y_pred, taxonomy.class_names())
    ci = bootstrap_label_ci(t, p, len(names), n_boot=n_boot, seed=seed) if rows and n_boot > 0 else {}
    return {
        "unparsed": sum(y is None for y in y_pred),
        "metrics": {m: res[m] for m in LABEL_METRICS},
        "ci95": ci,
        "confusion": res["confusion"],
    }


def score(taxonomy: Any, rows: list[dict[str, Any]], seed: int = 0, n_boot: int = 1000) -> dict[str, Any]:
    """Metrics of answered rows (``label`` + ``prediction``) under both parses: parsed classes, the unparsed list,
    confusion matrices, intervals, and each number's signature."""
    classes = taxonomy.class_names()
    ours = [taxonomy.match_class(r["prediction"]) for r in rows]
    paper = [paper_parse(r["prediction"], classes) for r in rows]
    unparsed = [
        {"id": r["id"], "image": r["image"], "label": r["label"], "prediction": r["prediction"]}
        for r, yp in zip(rows, ours, strict=True)
        if yp is None
    ]
    return {
        "n": len(rows),
        **_parsed(taxonomy, rows, ours, seed, n_boot),
        "mmskin_parse": _parsed(taxonomy, rows, paper, seed, n_boot),
        "signature": {
            k: f"zeroshot|parse:{v}|multi-category gt:seeded choice|seed:{seed}"
            for k, v in SIGNATURE_PARSE.items()
        },
        "unparsed_answers": unparsed,
    }


@dataclass
class _Answers:
    """The answered rows to score, the rows that failed, and where the answers came from."""

    rows: list[dict[str, Any]]
    errors: int
    model: str
    prov: dict[str, Any] = field(default_factory=dict)


def run(config: ZeroShotConfig, reporter: Reporter | None = None) -> StageResult:
    """Predict (or read the answers), parse, score and write ``config.out``. ConfigError or StageError (exit 2) when
    the benchmark, data, images, prompt or model cannot be used; StageError (exit 1) when the model fails as a
    whole."""
    from ..taxonomy import TaxonomyError, load_taxonomy

    reporter = reporter or SILENT
    if config.out is None:
        raise ConfigError("--out RESULTS.json is required")
    if (config.predictions is None) == (config.model.spec is None):
        raise ConfigError("give --model SPEC (with --data CSV --images DIR), or --predictions FILE")
    if config.model.spec is not None and (config.data is None or config.images is None):
        raise ConfigError("--model needs --data CSV and --images DIR")
    problems = Problems(reporter)
    try:
        taxonomy = load_taxonomy(config.benchmark)
        if config.predictions is not None:
            answers = _read_answers(config, taxonomy, problems)
        else:
            answers = _model_answers(config, taxonomy, problems, reporter)
    except (TaxonomyError, ValueError, OSError) as e:
        raise StageError("", str(e), exit_code=2) from None
    except RuntimeError as e:  # ModelError and model failures: one line
        raise StageError("", str(e)) from None
    results = {
        "task": "zeroshot",
        "benchmark": taxonomy.name,
        "model": answers.model,
        **score(taxonomy, answers.rows, seed=config.seed, n_boot=config.n_boot),
        "errors": answers.errors,
        "provenance": _provenance(config, taxonomy, answers.prov),
    }
    write_results(config.out, results)
    if results["n"] == 0:
        problems.add(config.data or config.predictions, "nothing was scored (no usable rows)")
    m, mm = results["metrics"], results["mmskin_parse"]["metrics"]
    summary = (
        f"zeroshot {results['benchmark']}: n={results['n']} accuracy={m['accuracy']:.4f} "
        f"macro_f1={m['macro_f1']:.4f} unparsed={results['unparsed']} (MM-Skin's parse: accuracy="
        f"{mm['accuracy']:.4f} unmatched={results['mmskin_parse']['unparsed']}) errors={results['errors']} "
        f"-> {config.out}"
    )
    counts = {"scored": results["n"], "unparsed": results["unparsed"], "errors": results["errors"]}
    return StageResult(
        "eval zeroshot", counts, problems, summary, {"table": markdown(results), "results": results}
    )


def _model_answers(config: ZeroShotConfig, taxonomy: Any, problems: Problems, reporter: Reporter) -> _Answers:
    """The model's answers to the CSV's rows (resumable predictions file)."""
    if not config.images.is_dir():
        raise ValueError(f"{config.images}: no such image folder")
    adapter = adapter_for(config.model, task="zeroshot", seed=config.seed)
    question, prompt_source = load_prompt(taxonomy, config.prompt)
    samples, errors = build_samples(taxonomy, config.data, question, config.limit, config.seed)
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
        replicas=ReplicaSpec.of(config.model, "zeroshot", config.seed),
    )
    prov = {
        "model": adapter_info(adapter),
        "prompt": question,
        "prompt_source": prompt_source,
        "prompt_sha256": hashlib.sha256(question.encode()).hexdigest(),
        "data_sha256": sha256_file(config.data),
        "predictions": str(preds),
    }
    return _Answers(pres.rows, len(errors) + len(pres.errors), adapter.name, prov)


def _read_answers(config: ZeroShotConfig, taxonomy: Any, problems: Problems) -> _Answers:
    """Answers already made: mmskin's predictions JSONL (rows with label and prediction) or MM-Skin's CSV."""
    from .mmskin_files import read_zeroshot_predictions

    path = config.predictions
    if not path.is_file():
        raise ValueError(f"{path}: no such predictions file")
    if path.suffix.lower() == ".csv":
        raw, errors = read_zeroshot_predictions(path)
        rows = [{**r, "label": r["ground_truth"], "prediction": r["answer"]} for r in raw]
        model = f"predictions:{path.name}"
    else:
        rows, errors = list(read_predictions(path).values()), []
        model = next((str(r["model"]) for r in rows if r.get("model")), f"predictions:{path.name}")
    kept = []
    for r in rows[: config.limit] if config.limit is not None else rows:
        label = canonical_label(taxonomy, str(r.get("label", "")))
        if label is None or not isinstance(r.get("prediction"), str):
            errors.append(not_a_class(path, r.get("image", r.get("id")), r.get("label"), taxonomy))
            continue
        kept.append({**r, "label": label})
    problems.take(errors)
    return _Answers(
        kept, len(errors), model, {"predictions": str(path), "predictions_sha256": sha256_file(path)}
    )


def _provenance(config: ZeroShotConfig, taxonomy: Any, extra: dict[str, Any]) -> dict[str, Any]:
    return eval_provenance(
        "zeroshot",
        config,
        MODEL_PACKAGES,
        taxonomy={
            "name": taxonomy.name,
            "path": getattr(taxonomy, "path", ""),
            "source": getattr(taxonomy, "source", ""),
        },
        **extra,
        answer_parsing=ANSWER_PARSING,
        mmskin_parsing=PAPER_PARSING,
        ground_truth=GROUND_TRUTH,
        bootstrap={"n_boot": config.n_boot, "interval": INTERVAL},
    )


def markdown(results: dict[str, Any]) -> str:
    ci, mm = results.get("ci95", {}), results.get("mmskin_parse") or {}
    rows = [(m, results["metrics"][m], ci.get(m)) for m in LABEL_METRICS]
    rows += [
        (f"{m} (MM-Skin's parse)", mm["metrics"][m], mm.get("ci95", {}).get(m)) for m in mm.get("metrics", {})
    ]
    head = f"zero-shot {results['benchmark']} · {results['model']} · n={results['n']} · unparsed={results['unparsed']}"
    return head + "\n\n" + markdown_table(rows)
