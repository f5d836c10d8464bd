"""``mmskin eval vqa|zeroshot|probe`` (imports nothing heavy at import time)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import cli_models

EPILOG_VQA = """examples:
  mmskin eval vqa --predictions preds.csv --metrics bleu,meteor,rouge,recall --out results/vqa.json
  mmskin eval vqa --predictions preds.jsonl --dataset data/derm --bertscore-model minilm --out vqa.json
  mmskin eval vqa --predictions preds.csv --compat standard --out vqa_standard.json
  mmskin eval vqa --data MM-Skin_test.csv --images datasets/ --model hf:models/skinvl \\
      --predictions-out preds.jsonl --out results/vqa.json

A predictions file (CSV or JSONL) has image, question, answer, prediction and optionally modality and id.
Modality comes from the row, else from --dataset's records by image path, else "unknown".
--compat mmskin (default) gives MM-Skin VQA_test.py's numbers: nltk corpus BLEU-1..4 and METEOR on whitespace
tokens, the `rouge` package's F (1.0.1), recall over word sets, BERTScore with bert-base-uncased layer 9 when it
is available offline (else pass --bertscore-model PATH --bertscore-layer N, e.g. --bertscore-model minilm, the
packaged all-MiniLM-L6-v2, or drop bertscore from --metrics). --compat standard: sacrebleu (13a), rouge-score
(Porter stemmer), METEOR and recall on lower-cased 13a tokens, BERTScore with all-MiniLM-L6-v2 by default.
Predictions without a letter or digit score 0 and are counted. Values are fractions in [0, 1]; metrics not
selected are null in the results. METEOR reads WordNet 3.0 from Debian's wordnet-base + wordnet-sense-index
(copied once to ~/.cache/mmskin/nltk_data, or $MMSKIN_CACHE/nltk_data).
exit status: 0 when every row was scored, 1 when some rows were malformed or failed, 2 on bad usage."""


def _err(msg: str) -> None:
    print(f"error: {msg}", file=sys.stderr, flush=True)


def _register_vqa(eval_sub: argparse._SubParsersAction) -> None:
    v = eval_sub.add_parser(
        "vqa",
        help="open-VQA metrics (BLEU, METEOR, ROUGE, BERTScore, recall) per modality, from predictions or a model",
        epilog=EPILOG_VQA,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    src = v.add_argument_group("input")
    src.add_argument("--predictions", type=Path, metavar="FILE", help="predictions CSV or JSONL to score")
    src.add_argument(
        "--data", type=Path, metavar="VQA.jsonl|CSV", help="with --model: samples (image, question, answer)"
    )
    src.add_argument(
        "--images", type=Path, metavar="ROOT", help="with --model: root of the samples' image paths"
    )
    src.add_argument(
        "--predictions-out", type=Path, metavar="JSONL", help="with --model: default OUT.predictions.jsonl"
    )
    src.add_argument("--dataset", type=Path, metavar="DATASET", help="dataset folder: modality by image path")
    src.add_argument("--limit", type=int, default=None, metavar="N", help="use only the first N rows")
    m = v.add_argument_group("metrics")
    m.add_argument(
        "--compat", default="mmskin", choices=("mmskin", "standard"), help="metric recipe (default: mmskin)"
    )
    m.add_argument(
        "--metrics",
        default="bleu,meteor,rouge,recall,bertscore",
        help="comma list of bleu, meteor, rouge, recall, bertscore (default: all)",
    )
    m.add_argument(
        "--bertscore-model",
        default=None,
        metavar="PATH|minilm|HUB_ID",
        help="model folder, 'minilm' (packaged all-MiniLM-L6-v2) or a hub id already in the local HF cache "
        "(default: bert-base-uncased for --compat mmskin, minilm for standard)",
    )
    m.add_argument("--bertscore-layer", type=int, default=None, metavar="N", help="layer (default: 9 / all)")
    m.add_argument(
        "--bertscore-baseline", default=None, metavar="TSV", help="bert_score rescale baseline (LAYER,P,R,F)"
    )
    m.add_argument(
        "--bootstrap", type=int, default=1000, metavar="N", help="bootstrap resamples (default: 1000)"
    )
    m.add_argument("--seed", type=int, default=0, help="bootstrap (and model sampling) seed (default: 0)")
    v.add_argument("--out", required=True, type=Path, metavar="RESULTS.json", help="results file to write")
    v.add_argument("--quiet", action="store_true", help="no progress bar")
    try:
        from .predict import add_model_arguments
    except ImportError:  # the model part is optional; scoring a predictions file does not need it
        v.add_argument("--model", default=None, help=argparse.SUPPRESS)
    else:
        add_model_arguments(v)
    v.set_defaults(func=_cmd_vqa)


def register(sub: argparse._SubParsersAction) -> None:
    ev = sub.add_parser("eval", help="benchmark models: open VQA metrics, zero-shot, linear probe")
    eval_sub = ev.add_subparsers(dest="eval_command", required=True, metavar="TASK")
    _register_vqa(eval_sub)
    cli_models.register(eval_sub)


def _progress(args: argparse.Namespace, total: int):
    if args.quiet:
        return None, None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    prog = Progress(
        TextColumn("eval vqa {task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
    )
    task = prog.add_task("scoring", total=total)

    def advance(stage: str, k: int) -> None:
        prog.update(task, advance=k, description=stage)

    return prog, advance


def _cmd_vqa(args: argparse.Namespace) -> int:
    from .metrics import parse_metrics
    from .vqa import (
        InputError,
        assign_modality,
        evaluate_rows,
        markdown,
        modality_map,
        provenance,
        read_table,
        samples_from_rows,
        write_results,
    )

    model = getattr(args, "model", None)
    if (args.predictions is None) == (model is None):
        _err("mmskin eval vqa: give --predictions FILE, or --data FILE --images ROOT --model SPEC")
        return 2
    if model is not None and (args.data is None or args.images is None):
        _err("mmskin eval vqa: --model needs --data FILE and --images ROOT")
        return 2
    try:
        metrics = parse_metrics(args.metrics)
    except ValueError as e:
        _err(f"mmskin eval vqa: --metrics: {e}")
        return 2

    extra: dict = {}
    bertscorer = None
    try:
        if "meteor" in metrics:
            from .wordnet import WordNetMissing, corpus_dir

            try:
                extra["wordnet"] = str(corpus_dir())
            except WordNetMissing as e:
                _err(f"mmskin eval vqa: {e}")
                return 2
        if "bertscore" in metrics:
            from .metrics.bertscore import BertScorer, BertScoreUnavailable

            try:
                bertscorer = BertScorer.from_spec(
                    args.bertscore_model, args.bertscore_layer, args.compat, args.bertscore_baseline
                )
            except BertScoreUnavailable as e:
                _err(f"mmskin eval vqa: {e}")
                return 2
            extra["bertscore"] = {
                "model": bertscorer.name,
                "path": bertscorer.path,
                "layer": bertscorer.layer,
            }

        failures: list[str] = []
        inputs: dict[str, Path] = {}
        if model is None:
            rows, failures = read_table(args.predictions)
            inputs["predictions"] = args.predictions
        else:
            from .predict import predict_vqa

            data_rows, failures = read_table(args.data, needed=("image", "question", "answer"))
            if args.limit is not None:
                data_rows = data_rows[: args.limit]
            samples = samples_from_rows(data_rows)
            pred_out = args.predictions_out or args.out.with_name(args.out.stem + ".predictions.jsonl")
            for f in failures:
                _err(f)
            rows = predict_vqa(args, samples, args.images, pred_out)
            if len(rows) < len(samples):
                failures.append(
                    f"{len(samples) - len(rows)} samples got no prediction (see {pred_out}.errors.jsonl)"
                )
            inputs.update({"data": args.data, "predictions": pred_out})
            extra["model"] = model
        if model is None:
            for f in failures:
                _err(f)
        if args.limit is not None:
            rows = rows[: args.limit]
        if not rows:
            _err(f"mmskin eval vqa: no row to score ({len(failures)} malformed)")
            return 1
        by_image = None
        dataset = args.dataset
        if dataset is None and model is not None and (args.images / "records.jsonl").is_file():
            dataset = args.images
        if dataset is not None:
            by_image = modality_map(dataset)
            inputs["records"] = dataset / "records.jsonl"
        assign_modality(rows, by_image)
    except InputError as e:
        _err(f"mmskin eval vqa: {e}")
        return 2
    except (ValueError, OSError, RuntimeError) as e:  # model or prediction-file failures: one line
        _err(f"mmskin eval vqa: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
        return 1

    stages = sum(m in metrics for m in ("bleu", "meteor", "rouge", "recall")) + 1
    if bertscorer is not None:
        stages += len({str(r["prediction"]) for r in rows} | {str(r["answer"]) for r in rows})
    prog, advance = _progress(args, stages)
    try:
        if prog is not None:
            prog.start()
        try:
            results = evaluate_rows(
                rows,
                compat=args.compat,
                metrics=metrics,
                bertscorer=bertscorer,
                n_boot=args.bootstrap,
                seed=args.seed,
                progress=advance,
            )
        finally:
            if prog is not None:
                prog.stop()
    except Exception as e:  # noqa: BLE001 - e.g. a BERTScore model that fails at run time: one line
        _err(
            f"mmskin eval vqa: scoring failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        )
        return 1
    results = {
        "task": "vqa",
        "dataset": str(dataset) if dataset is not None else None,
        "model": model,
        **{k: v for k, v in results.items() if k != "task"},
        "errors": failures,
        "provenance": provenance(
            compat=args.compat,
            metrics=metrics,
            seed=args.seed,
            n_boot=args.bootstrap,
            inputs=inputs,
            extra={**extra, "malformed_rows": len(failures), "limit": args.limit},
        ),
    }
    write_results(args.out, results)
    print(markdown(results))
    ov = results["overall"]
    shown = " ".join(
        f"{k}={ov[k]:.4f}"
        for k in ("bleu4", "meteor", "rougeL", "bertscore_f1", "recall")
        if ov[k] is not None
    )
    print(
        f"eval vqa ({args.compat}): n={ov['n']} empty_predictions={results['counts']['empty_predictions']} "
        f"malformed={len(failures)} {shown} -> {args.out}"
    )
    return 1 if failures else 0
