"""``mmskin train`` and ``mmskin merge`` (imports nothing heavy at import time)."""

from __future__ import annotations

import argparse

EPILOG_TRAIN = """examples:
  mmskin train configs/train/tiny-cpu.yaml --out runs/tiny          # smoke run, < 1 min on 2 CPU cores
  mmskin train configs/train/mm.yaml --out runs/skinvl-mm           # SkinVL-MM, one GPU
  mmskin train configs/train/mm.yaml --out runs/skinvl-mm --resume  # continue from the last checkpoint
  mmskin train configs/train/pub.yaml --set max_steps=100 --set per_device_batch_size=4
  accelerate launch --config_file configs/accelerate/zero3.yaml -m mmskin train configs/train/pubmm.yaml
  torchrun --nproc_per_node 8 -m mmskin train configs/train/pubmm.yaml --set deepspeed=configs/accelerate/zero3.json
                                                                     # several GPUs, DeepSpeed ZeRO-3 (either line)

writes OUT/adapter_model.safetensors + adapter_config.json (LoRA + projector), the processor, README.md (model
card), metrics.json (initial_loss, final_loss, steps, train_seconds, loss history, provenance), config.yaml
(resolved) and OUT/checkpoints/ (resumable). exit status: 0 on success, 1 on a data/model/training error,
2 on a bad config.

"""

EPILOG_MERGE = """example:
  mmskin merge runs/skinvl-mm --out models/skinvl-mm
  mmskin eval vqa --model hf:models/skinvl-mm ...

writes a full model (config.json + model*.safetensors), the processor and mmskin_merge.json; it loads with
from_pretrained (AutoModelForImageTextToText) like any Hugging Face model."""


def _cmd_train(args: argparse.Namespace) -> int:
    from ..config import from_args
    from ..console import finish, run_guarded, stderr
    from .config import ConfigError, TrainRun, load_train_config
    from .sft import run

    try:
        cfg = load_train_config(args.config, args.set)
    except ConfigError as e:
        stderr(f"mmskin train: {e}")
        return 2
    result = run_guarded("mmskin train", run, from_args(TrainRun, args, train=cfg), args.quiet)
    if isinstance(result, int):
        return result
    for line in result.extra["metrics"]["rejected_samples"][
        :20
    ]:  # trained without them (on_bad_sample: skip)
        stderr(f"skipped: {line}")
    return finish(result)


def _cmd_merge(args: argparse.Namespace) -> int:
    from ..config import from_args
    from ..console import finish, run_guarded
    from .config import MergeConfig
    from .merge import run

    result = run_guarded("mmskin merge", run, from_args(MergeConfig, args))
    return result if isinstance(result, int) else finish(result)


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``train`` and ``merge`` to the mmskin parser."""
    from ..config import add_arguments
    from .config import MergeConfig, TrainRun, config_help

    t = sub.add_parser(
        "train",
        help="LoRA fine-tuning of an image-text-to-text model on VQA data (SkinVL)",
        description="LoRA SFT of any Hugging Face image-text-to-text model; the YAML keys are listed below.",
        epilog=EPILOG_TRAIN + config_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    t.add_argument("config", metavar="CONFIG.yaml", help="training config (see configs/train/)")
    add_arguments(t, TrainRun)
    t.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key (YAML value), e.g. --set max_steps=20; repeatable",
    )
    t.set_defaults(func=_cmd_train)

    m = sub.add_parser(
        "merge",
        help="merge a LoRA adapter into its base model (full safetensors model)",
        epilog=EPILOG_MERGE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    m.add_argument("adapter", metavar="ADAPTER", help="folder written by mmskin train")
    add_arguments(m, MergeConfig)
    m.set_defaults(func=_cmd_merge)
