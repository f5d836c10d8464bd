"""``mmskin eval zeroshot`` and ``mmskin eval probe``: their parsers and commands (nothing heavy at import time).

mmskin eval zeroshot HAM10000 --data test.csv --images imgs/ --model dummy --out zs.json
"""

from __future__ import annotations

import argparse
import dataclasses

EPILOG_ZEROSHOT = """examples:
  mmskin eval zeroshot HAM10000 --data Dataframe/test/classification/HAM10000_test.csv --images datasets/ \\
      --model hf:models/skinvl-pubmm --batch-size 32 --out results/zs_ham10000.json
  mmskin eval zeroshot my_labels.yaml --data test.csv --images imgs/ --model openai:skinvl \\
      --base-url http://127.0.0.1:8000/v1 --concurrency 16 --prompt prompts/short.txt --out zs.json

  mmskin eval zeroshot HAM10000 --predictions result/zeroshot/HAM10000_predictions.csv --out zs.json
                                        # MM-Skin's own answers (ZS_classification.py's CSV), no model

DATA is MM-Skin's classification CSV (image,atributes,categories with categories a list literal such as
['Nevus']; a row listing several gets one, picked as the script does but seeded) or a plain image,label CSV;
image paths are relative to --images. Every answer is parsed twice: by normalised longest match over class
names and synonyms (metrics; unparsed answers count as wrong and are listed) and as ZS_classification.py does
(mmskin_parse: the first class, in the benchmark's order, whose name is a substring of the answer).
--paper-decoding gives MM-Skin's sampling and, for LLaVA, its mistral_instruct prompt. Predictions go to
OUT.predictions.jsonl as they come: a rerun resumes where a run stopped.
exit status: 0 when every row was scored, 1 when some rows failed (bad image, unknown label), 2 on bad usage."""

EPILOG_PROBE = """examples:
  mmskin eval probe HAM10000 --data HAM10000_test.csv --train HAM10000_train.csv --images datasets/ \\
      --model hf:models/skinvl-pubmm --out results/probe_ham10000.json
  mmskin eval probe Patch16_2class --data Patch16_2class_test.csv --images datasets/ --model hf:llava-med \\
      --out probe.json                  # one CSV without a split column: nested 5-fold CV
  mmskin eval probe DDI_2class --features clip_ddi.npz --out probe_clip.json   # any encoder's features
  mmskin eval probe Patch16_2class --compat mmskin --train Patch16_2class_train.csv --val Patch16_2class_val.csv \\
      --data Patch16_2class_test.csv --train-fraction 0.1 --images datasets/ --model hf:models/skinvl --out p.json

Features: the model's vision tower + projector output, mean-pooled over image tokens, cached (npz) under
--cache-dir by model + dataset file + image list. A features file is an npz with 'features' (N x D), 'labels'
(N, class names or indices into the benchmark's classes) and optional 'split' (train/val/test).
Probe: StandardScaler + LogisticRegression, C over 10**linspace(-5, 1, 10) by stratified 5-fold CV on macro
AUROC; train/test from --train, a split/set column, or nested CV when there is neither. --compat mmskin is
SFT_classification.py's protocol: C by unshuffled 5-fold CV on train + val (--val, else a seeded 20 percent of
train), refit on train only, max_iter 1000, binary label p >= 0.5. LLaVA images are padded to squares first.
exit status: 0 when every row was used, 1 when some rows failed, 2 on bad usage."""


def _parser(eval_sub: argparse._SubParsersAction, name: str, cls: type, help: str, epilog: str) -> None:
    from .cli import add_config_arguments

    p = eval_sub.add_parser(
        name, help=help, epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    benchmark = {f.name: f for f in dataclasses.fields(cls)}["benchmark"]
    p.add_argument("benchmark", metavar="BENCHMARK", help=benchmark.metadata["help"])
    add_config_arguments(p, cls)
    p.set_defaults(func=lambda args: _command(name, cls, args))


def register(eval_sub: argparse._SubParsersAction) -> None:
    """Add ``zeroshot`` and ``probe`` to the ``mmskin eval`` sub-parsers."""
    from .probe import ProbeConfig
    from .zeroshot import ZeroShotConfig

    _parser(
        eval_sub,
        "zeroshot",
        ZeroShotConfig,
        "zero-shot classification: prompt with the class list, parse answers, accuracy/F1/confusion",
        EPILOG_ZEROSHOT,
    )
    _parser(
        eval_sub,
        "probe",
        ProbeConfig,
        "linear probe on frozen image features (the paper's SFT): AUROC, AUPRC, ECE, accuracy, F1",
        EPILOG_PROBE,
    )


def _command(name: str, cls: type, args: argparse.Namespace) -> int:
    from . import probe, zeroshot
    from .cli import config_from_args, run_command

    run = {"zeroshot": zeroshot.run, "probe": probe.run}[name]
    return run_command(name, run, config_from_args(cls, args), args.quiet)
