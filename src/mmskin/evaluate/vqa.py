"""Open-VQA evaluation (``mmskin eval vqa``): score predictions overall and per modality, write signed results.

    mmskin eval vqa --predictions preds.csv --dataset data/derm --metrics bleu,meteor,rouge,recall --out r.json

    from mmskin.evaluate.vqa import EvalVQAConfig, run
    result = run(EvalVQAConfig(predictions=Path("preds.csv"), metrics="bleu,recall", out=Path("r.json")))
    result.summary        # 'eval vqa (mmskin): n=… empty_predictions=… malformed=… bleu4=… recall=… -> r.json'

The rows come from a predictions file, or from a model (``model.spec``) answering a samples file
(:mod:`.vqa_inputs`, :mod:`.predict`); the modality of each row from the row, else from the dataset's records by
image path, else "unknown". :func:`evaluate_rows` scores them:

    >>> from mmskin.evaluate.vqa import evaluate_rows
    >>> res = evaluate_rows([{"image": "a.png", "question": "q", "answer": "a red papule",
    ...                       "prediction": "a red papule", "modality": "clinical"}], metrics=("recall",))
    >>> res["overall"]["recall"], res["by_modality"]["clinical"]["n"]
    (1.0, 1)

Results (``out``): ``{"task": "vqa", "dataset", "model", "overall": {n, bleu1…4, meteor, rouge1, rouge2, rougeL,
bertscore_p/r/f1, recall}, "by_modality": {modality: {same keys}}, "ci95": {"overall": {key: [lo, hi]},
"by_modality": {…}}, "signature": {key: "…"}, "counts", "errors", "provenance": {…}}``; values are fractions in
[0, 1]; a metric not selected is null.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..config import ConfigError, option
from ..stage import SILENT, Problem, Problems, Reporter, StageError, StageResult, reason_of
from .metrics import (
    COMPATS,
    EMPTY_RULES,
    GROUPS,
    KEYS,
    METRIC_NAMES,
    is_empty,
    metric_packages,
    parse_metrics,
    progress_total,
    score_pairs,
    signatures,
)
from .mmskin_files import modality_from_captions, read_vqa_table
from .predict import MODEL_PACKAGES, ModelConfig
from .results import INTERVAL, eval_provenance, input_files, write_results
from .vqa_inputs import UNKNOWN, InputError, assign_modality, modality_map, read_table, samples_from_rows

BOOTSTRAP = {"interval": INTERVAL, "unit": "pairs, resampled within each group"}


@dataclass
class EvalVQAConfig:
    """Settings of ``mmskin eval vqa`` (each field is the command-line option of the same name)."""

    predictions: Path | None = option(None, "predictions CSV or JSONL to score", metavar="FILE")
    data: Path | None = option(
        None, "with --model: samples (image, question, answer)", metavar="VQA.jsonl|CSV"
    )
    images: Path | None = option(None, "with --model: root of the samples' image paths", metavar="ROOT")
    predictions_out: Path | None = option(
        None, "with --model: where the answers go (default: OUT.predictions.jsonl)", metavar="JSONL"
    )
    dataset: Path | None = option(None, "dataset folder: modality by image path", metavar="DATASET")
    captions: Path | None = option(
        None,
        "captions CSV with image and modality columns (MM-Skin's caption.csv): every row's modality is looked up "
        "by exact image path, first match, as VQA_test.py does (overrides the rows' own)",
        metavar="CSV",
    )
    limit: int | None = option(None, "use only the first N rows", metavar="N")
    compat: str = option("mmskin", "metric recipe", choices=COMPATS)
    metrics: str = option(
        "bleu,meteor,rouge,recall,bertscore", "comma list of bleu, meteor, rouge, recall, bertscore"
    )
    bertscore_model: str | None = option(
        None,
        "model folder, 'minilm' (packaged all-MiniLM-L6-v2) or a hub id already in the local HF cache "
        "(default: bert-base-uncased for --compat mmskin, minilm for standard)",
        metavar="PATH|minilm|HUB_ID",
    )
    bertscore_layer: int | None = option(None, "layer (default: 9 / all)", metavar="N")
    bertscore_baseline: str | None = option(None, "bert_score rescale baseline (LAYER,P,R,F)", metavar="TSV")
    bootstrap: int = option(1000, "bootstrap resamples", metavar="N")
    seed: int = option(0, "bootstrap (and model sampling) seed")
    out: Path | None = option(None, "results file to write", metavar="RESULTS.json", required=True)
    model: ModelConfig = option(ModelConfig(), "the model that answers --data (its options)", cli=False)


@dataclass
class _Inputs:
    """The rows to score and where they came from."""

    rows: list[dict[str, Any]]
    errors: list[Problem]  # the rows (or samples) that could not be used: the results' "errors"
    files: dict[str, Path | None] = field(default_factory=dict)
    dataset: Path | None = None


def run(config: EvalVQAConfig, reporter: Reporter | None = None) -> StageResult:
    """Read (or make) the predictions, score them, write ``config.out``. Raises ConfigError on bad settings
    (exit 2) and StageError when it cannot run (exit 2 for an unusable input, 1 for a failed model or scoring)."""
    reporter = reporter or SILENT
    metrics = _check(config)
    problems = Problems(reporter)
    with _input_errors():
        bertscorer, setup = _metric_setup(config, metrics)
        inputs = _read_inputs(config, problems, reporter)
    with reporter.progress(_steps(inputs.rows, config, metrics, bertscorer), "eval vqa scoring") as advance:
        try:
            scored = evaluate_rows(
                inputs.rows,
                compat=config.compat,
                metrics=metrics,
                bertscorer=bertscorer,
                n_boot=config.bootstrap,
                seed=config.seed,
                progress=advance,
            )
        except Exception as e:  # noqa: BLE001 - e.g. a BERTScore model that fails at run time: one line
            raise StageError("", f"scoring failed: {type(e).__name__}: {reason_of(e, 10_000)}") from None
    results = {
        "task": "vqa",
        "dataset": str(inputs.dataset) if inputs.dataset is not None else None,
        "model": config.model.spec,
        **{k: v for k, v in scored.items() if k != "task"},
        "errors": [str(p) for p in inputs.errors],
        "provenance": _provenance(config, metrics, inputs, setup),
    }
    write_results(config.out, results)
    return _result(config, results, problems)


def _check(config: EvalVQAConfig) -> tuple[str, ...]:
    """The selected metrics; ConfigError for settings that cannot go together."""
    if config.out is None:
        raise ConfigError("--out RESULTS.json is required")
    model = config.model.spec
    if (config.predictions is None) == (model is None):
        raise ConfigError("give --predictions FILE, or --data FILE --images ROOT --model SPEC")
    if model is not None and (config.data is None or config.images is None):
        raise ConfigError("--model needs --data FILE and --images ROOT")
    try:
        return parse_metrics(config.metrics)
    except ValueError as e:
        raise ConfigError(f"--metrics: {e}") from None


@contextmanager
def _input_errors() -> Iterator[None]:
    """An unusable input file is bad usage (exit 2); a failing model or predictions file a failed run (1)."""
    try:
        yield
    except InputError as e:
        raise StageError("", str(e), exit_code=2) from None
    except (ValueError, OSError, RuntimeError) as e:
        raise StageError("", reason_of(e, 10_000)) from None


def _metric_setup(config: EvalVQAConfig, metrics: Sequence[str]) -> tuple[Any, dict[str, Any]]:
    """(BertScorer or None, provenance of the metrics' resources): WordNet for METEOR, the BERTScore model.
    A resource that is not installed is bad usage (exit 2): the message says what to install or pass."""
    setup: dict[str, Any] = {}
    if "meteor" in metrics:
        from .wordnet import WordNetMissing, corpus_dir

        try:
            setup["wordnet"] = str(corpus_dir())
        except WordNetMissing as e:
            raise StageError("", str(e), exit_code=2) from None
    if "bertscore" not in metrics:
        return None, setup
    from .metrics.bertscore import BertScorer, BertScoreUnavailable

    try:
        scorer = BertScorer.from_spec(
            config.bertscore_model, config.bertscore_layer, config.compat, config.bertscore_baseline
        )
    except BertScoreUnavailable as e:
        raise StageError("", str(e), exit_code=2) from None
    setup["bertscore"] = {"model": scorer.name, "path": scorer.path, "layer": scorer.layer}
    return scorer, setup


def _read_inputs(config: EvalVQAConfig, problems: Problems, reporter: Reporter) -> _Inputs:
    """The rows to score, from the predictions file or from the model, each with its modality."""
    if config.model.spec is None:
        rows, errors = read_vqa_table(config.predictions)
        problems.take(errors)
        inputs = _Inputs(rows, errors, {"predictions": config.predictions})
    else:
        inputs = _predict(config, problems, reporter)
    if config.limit is not None:
        inputs.rows = inputs.rows[: config.limit]
    if not inputs.rows:
        if config.model.spec is not None and inputs.errors:  # the model answered nothing: say why
            raise StageError("", f"no row to score: {inputs.errors[-1].reason}")
        raise StageError("", f"no row to score ({len(inputs.errors)} malformed)")
    dataset = config.dataset
    if dataset is None and config.model.spec is not None and (config.images / "records.jsonl").is_file():
        dataset = config.images  # a model run on a dataset folder: its records know the modalities
    if dataset is not None:
        inputs.dataset, inputs.files["records"] = dataset, dataset / "records.jsonl"
    if (
        config.captions is not None
    ):  # VQA_test.py: df['modality'] = df['image'].apply(get_modality_from_image)
        inputs.files["captions"] = config.captions
        by_image = modality_from_captions(config.captions)
        for r in inputs.rows:
            r["modality"] = by_image.get(str(r.get("image", "")), "")
    assign_modality(inputs.rows, modality_map(dataset) if dataset is not None else None)
    return inputs


def _predict(config: EvalVQAConfig, problems: Problems, reporter: Reporter) -> _Inputs:
    """Rows answered by ``config.model`` for the samples of ``config.data`` (resumable predictions file)."""
    from .predict import errors_path, predict_vqa, predictions_meta

    data_rows, errors = read_table(config.data, needed=("image", "question", "answer"))
    problems.take(errors)
    if config.limit is not None:
        data_rows = data_rows[: config.limit]
    samples = samples_from_rows(data_rows)
    out = config.predictions_out or config.out.with_name(config.out.stem + ".predictions.jsonl")
    seen = len(problems)
    rows = predict_vqa(
        config.model,
        samples,
        config.images,
        out,
        seed=config.seed,
        meta=predictions_meta("vqa", config, config.seed),
        problems=problems,
        reporter=reporter,
    )
    if len(rows) < len(samples):
        failed = problems[seen:]
        first = f"; first: {failed[0].reason}" if failed else ""
        missing = Problem(
            "",
            f"{len(samples) - len(rows)} of {len(samples)} samples got no prediction{first} "
            f"(all listed in {errors_path(out)})",
        )
        errors.append(missing)
        problems.take([missing])
    return _Inputs(rows, errors, {"data": config.data, "predictions": out})


def _steps(rows: list[dict[str, Any]], config: EvalVQAConfig, metrics: Sequence[str], bertscorer: Any) -> int:
    """Progress steps of the scoring: each metric's, plus one for the bootstrap."""
    preds = [str(r["prediction"]) for r in rows]
    answers = [str(r["answer"]) for r in rows]
    return progress_total(preds, answers, config.compat, metrics, bertscorer) + 1


def _provenance(
    config: EvalVQAConfig, metrics: Sequence[str], inputs: _Inputs, setup: dict[str, Any]
) -> dict[str, Any]:
    packages = metric_packages(config.compat, metrics)
    if config.model.spec is not None:
        from .adapters import adapter_info
        from .predict import adapter_for

        packages += MODEL_PACKAGES
        setup = {
            **setup,
            "model": adapter_info(adapter_for(config.model, "vqa", config.seed)),
        }  # (not loaded)
    return eval_provenance(
        "vqa",
        config,
        packages,
        metrics=list(metrics),
        deselected_metrics=[k for m in METRIC_NAMES if m not in metrics for k in GROUPS[m]],
        bootstrap={"n_boot": config.bootstrap, **BOOTSTRAP},
        empty_prediction_rule=EMPTY_RULES[config.compat],
        inputs=input_files(inputs.files),
        malformed_rows=len(inputs.errors),
        **setup,
    )


def _result(config: EvalVQAConfig, results: dict[str, Any], problems: Problems) -> StageResult:
    ov = results["overall"]
    shown = " ".join(
        f"{k}={ov[k]:.4f}"
        for k in ("bleu4", "meteor", "rougeL", "bertscore_f1", "recall")
        if ov[k] is not None
    )
    counts = {
        "scored": ov["n"],
        "empty_predictions": results["counts"]["empty_predictions"],
        "malformed": len(results["errors"]),
    }
    summary = (
        f"eval vqa ({config.compat}): n={ov['n']} empty_predictions={counts['empty_predictions']} "
        f"malformed={counts['malformed']} {shown} -> {config.out}"
    )
    return StageResult(
        "eval vqa", counts, problems, summary, {"table": markdown(results), "results": results}
    )


def evaluate_rows(
    rows: list[dict[str, Any]],
    *,
    compat: str = "mmskin",
    metrics: Sequence[str] = METRIC_NAMES,
    bertscorer=None,
    n_boot: int = 1000,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
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
        progress(1)
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
