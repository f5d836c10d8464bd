"""``mmskin eval vqa|zeroshot|probe``: arguments to the task's config, its ``run()``, the exit status.

    mmskin eval vqa --predictions preds.csv --out results/vqa.json

The options are the config dataclasses' fields (:class:`~mmskin.evaluate.vqa.EvalVQAConfig`,
:class:`~mmskin.evaluate.zeroshot.ZeroShotConfig`, :class:`~mmskin.evaluate.probe.ProbeConfig` and the shared
:class:`~mmskin.evaluate.predict.ModelConfig`). Imports nothing heavy at import time.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable

from ..config import add_arguments, from_args
from ..console import finish, run_guarded
from ..stage import Reporter, StageResult
from . import cli_models
from .predict import ModelConfig

EPILOG_VQA = """examples:
  mmskin eval vqa --predictions preds.csv --metrics bleu,meteor,rouge,recall --out results/vqa.json
  mmskin eval vqa --predictions preds.jsonl --dataset data/derm --bertscore-model minilm --out vqa.json
  mmskin eval vqa --predictions preds.csv --compat standard --out vqa_standard.json
  mmskin eval vqa --predictions result/VQA/SkinVL_PubMM/predictions.csv --captions MM-Skin/caption.csv --out vqa.json
  mmskin eval vqa --data MM-Skin_test.csv --images datasets/ --model hf:models/skinvl \\
      --predictions-out preds.jsonl --out results/vqa.json

A predictions file (CSV or JSONL) has image, question, answer, prediction and optionally modality and id;
MM-Skin's own predictions.csv (image,question,predicted_answer,ground_truth,modality) is read as well.
Modality comes from --captions (MM-Skin's caption.csv, as VQA_test.py), else the row, else --dataset's records by
image path, else "unknown".
--compat mmskin (default) gives MM-Skin VQA_test.py's numbers: nltk corpus BLEU-1..4 and METEOR on whitespace
tokens, the `rouge` package's F (1.0.1), recall over word sets, BERTScore with bert-base-uncased layer 9 when it
is available offline (else pass --bertscore-model PATH --bertscore-layer N, e.g. --bertscore-model minilm, the
packaged all-MiniLM-L6-v2, or drop bertscore from --metrics). --compat standard: sacrebleu (13a), rouge-score
(Porter stemmer), METEOR and recall on lower-cased 13a tokens, BERTScore with all-MiniLM-L6-v2 by default.
Predictions without a letter or digit are counted; --compat mmskin scores them as written (as VQA_test.py; ROUGE
0 where the rouge package raises), standard as empty (0). Values are fractions in [0, 1]; metrics not
selected are null in the results. METEOR reads WordNet 3.0 from Debian's wordnet-base + wordnet-sense-index
(copied once to ~/.cache/mmskin/nltk_data, or $MMSKIN_CACHE/nltk_data).
exit status: 0 when every row was scored, 1 when some rows were malformed or failed, 2 on bad usage."""


# the option groups of ``eval vqa --help`` (fields not named here are listed at the top)
VQA_GROUPS = {
    "input": ("predictions", "data", "images", "predictions_out", "dataset", "captions", "limit"),
    "metrics": (
        "compat",
        "metrics",
        "bertscore_model",
        "bertscore_layer",
        "bertscore_baseline",
        "bootstrap",
        "seed",
    ),
}


def add_config_arguments(
    parser: argparse.ArgumentParser, cls: type, groups: dict[str, tuple[str, ...]] | None = None
) -> None:
    """The options of config ``cls`` (in argument ``groups`` by field name), ``--quiet``, then the model's."""
    names = [f.name for f in dataclasses.fields(cls)]
    grouped: set[str] = set()
    for title, members in (groups or {}).items():
        add_arguments(parser.add_argument_group(title), cls, skip=tuple(n for n in names if n not in members))
        grouped.update(members)
    add_arguments(parser, cls, skip=tuple(grouped))
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_arguments(parser.add_argument_group("model"), ModelConfig)


def config_from_args(cls: type, args: argparse.Namespace) -> object:
    """The task's config from parsed arguments, the model options as its ``model``."""
    return from_args(cls, args, model=from_args(ModelConfig, args))


def run_command(
    task: str, run: Callable[[object, Reporter], StageResult], config: object, quiet: bool
) -> int:
    """Run a task with a console reporter: its table and summary on stdout, problems on stderr; the exit status
    (2 for settings or inputs that cannot be used, 1 when something failed, 0 otherwise)."""
    result = run_guarded(f"error: mmskin eval {task}", run, config, quiet)
    if isinstance(result, int):
        return result
    if result.extra.get("table"):
        print(result.extra["table"], flush=True)
    return finish(result)


def _register_vqa(eval_sub: argparse._SubParsersAction) -> None:
    from .vqa import EvalVQAConfig

    v = eval_sub.add_parser(
        "vqa",
        help="open-VQA metrics (BLEU, METEOR, ROUGE, BERTScore, recall) per modality, from predictions or a model",
        epilog=EPILOG_VQA,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_arguments(v, EvalVQAConfig, VQA_GROUPS)
    v.set_defaults(func=_cmd_vqa)


EPILOG_BENCHMARK = """examples:
  mmskin benchmark configs/benchmark/mmskin.yaml --out results/bench          # every model, every dataset
  mmskin benchmark configs/benchmark/mmskin.yaml --out results/bench --only zeroshot,probe

runs MM-Skin's benchmark for each model of CONFIG: open VQA on MM-Skin_test.csv (per modality), zero-shot on the
datasets of ZS_classify_test.sh, the linear probe on those of SFT_classify_test.sh, --compat mmskin by default.
Writes OUT/runs/<model>/*.json (each task's results and predictions), OUT/benchmark.json, OUT/report.md and
OUT/report.html (the paper's tables, models side by side, 95% intervals, every number's signature). A rerun
skips finished tasks and resumes unfinished ones; a dataset whose images are missing is skipped with one line.
exit status: 0 when every configured task ran (or was skipped for missing images), 1 when one failed, 2 on a bad
config.

"""


def _register_benchmark(sub: argparse._SubParsersAction) -> None:
    from ..config import config_help
    from .benchmark import BenchmarkConfig, BenchmarkRun, BenchModel, ClassTask, VQATask

    keys = ["CONFIG keys (YAML):", *config_help(BenchmarkConfig, "  ")]
    for title, cls in (
        ("each model", BenchModel),
        ("vqa", VQATask),
        ("each zeroshot / probe dataset", ClassTask),
    ):
        keys += [f"  {title}:", *config_help(cls, "    ")]
    b = sub.add_parser(
        "benchmark",
        help="MM-Skin's whole benchmark (VQA, zero-shot, probe) for one or more models, one report",
        epilog=EPILOG_BENCHMARK + "\n".join(keys),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    b.add_argument(
        "config", metavar="CONFIG.yaml", help="the benchmark config (configs/benchmark/mmskin.yaml)"
    )
    add_arguments(b, BenchmarkRun)
    b.set_defaults(func=_cmd_benchmark)


def _cmd_benchmark(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .benchmark import BenchmarkRun, run

    result = run_guarded(
        "error: mmskin benchmark", run, from_args(BenchmarkRun, args, config=Path(args.config)), args.quiet
    )
    if isinstance(result, int):
        return result
    for rec in result.extra["records"]:
        if rec["status"] in ("done", "cached"):
            print(
                f"{rec['status']}: {rec['model']} {rec['kind']} {rec['dataset']} -> {rec['results']}",
                flush=True,
            )
    return finish(result)


def register(sub: argparse._SubParsersAction) -> None:
    ev = sub.add_parser("eval", help="benchmark models: open VQA metrics, zero-shot, linear probe")
    eval_sub = ev.add_subparsers(dest="eval_command", required=True, metavar="TASK")
    _register_vqa(eval_sub)
    cli_models.register(eval_sub)
    _register_benchmark(sub)


def _cmd_vqa(args: argparse.Namespace) -> int:
    from .vqa import EvalVQAConfig, run

    return run_command("vqa", run, config_from_args(EvalVQAConfig, args), args.quiet)
