"""``mmskin train`` and ``mmskin merge`` (imports nothing heavy at import time)."""

from __future__ import annotations

import argparse
import sys

EPILOG_TRAIN = """examples:
  mmskin train configs/train/tiny-cpu.yaml --out runs/tiny          # smoke run, < 1 min on 2 CPU cores
  mmskin train configs/train/mm.yaml --out runs/skinvl-mm           # SkinVL-MM, one GPU
  mmskin train configs/train/mm.yaml --out runs/skinvl-mm --resume  # continue from the last checkpoint
  mmskin train configs/train/pub.yaml --set max_steps=100 --set per_device_batch_size=4
  accelerate launch --config_file configs/accelerate/zero3.yaml -m mmskin train configs/train/pubmm.yaml
  torchrun --nproc_per_node 8 -m mmskin train configs/train/pubmm.yaml --set deepspeed=configs/accelerate/zero3.json
                                                                     # several GPUs, DeepSpeed ZeRO-3 (either line)

writes OUT/adapter_model.safetensors + adapter_config.json (LoRA + projector), the processor, README.md (model
card), metrics.json (initial_loss, final_loss, steps, train_seconds, loss history), config.yaml (resolved) and
OUT/checkpoints/ (resumable). exit status: 0 on success, 1 on a data/model/training error, 2 on a bad config.

"""

EPILOG_MERGE = """example:
  mmskin merge runs/skinvl-mm --out models/skinvl-mm
  mmskin eval vqa --model hf:models/skinvl-mm ...

writes a full model (config.json + model*.safetensors), the processor and mmskin_merge.json; it loads with
from_pretrained (AutoModelForImageTextToText) like any Hugging Face model."""


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _cmd_train(args: argparse.Namespace) -> int:
    from ..models.loading import ModelError
    from .config import ConfigError, load_train_config

    try:
        cfg = load_train_config(args.config, args.set)
    except ConfigError as e:
        _stderr(f"mmskin train: {e}")
        return 2
    from .data import DataError
    from .sft import TrainError, train

    try:
        m = train(cfg, out=args.out, resume=args.resume, quiet=args.quiet)
    except (DataError, ModelError, TrainError) as e:
        _stderr(f"mmskin train: {e}")
        return 1
    for line in m["rejected_samples"][:20]:
        _stderr(f"skipped: {line}")
    skipped = len(m["rejected_samples"])
    note = f", {skipped} bad samples skipped" if skipped else ""
    print(
        f"trained {m['steps']} steps in {m['train_seconds']:.1f} s: loss {m['initial_loss']:.4f} -> "
        f"{m['final_loss']:.4f}{note}; adapter: {cfg.output_dir}"
    )
    return 0


def _cmd_merge(args: argparse.Namespace) -> int:
    from ..models.loading import ModelError
    from .merge import merge_adapter

    try:
        info = merge_adapter(args.adapter, args.out, base=args.base, dtype=args.dtype)
    except ModelError as e:
        _stderr(f"mmskin merge: {e}")
        return 1
    print(f"merged {args.adapter} into {info['base_model']}: {args.out}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``train`` and ``merge`` to the mmskin parser."""
    from .config import config_help

    t = sub.add_parser(
        "train",
        help="LoRA fine-tuning of an image-text-to-text model on VQA data (SkinVL)",
        description="LoRA SFT of any Hugging Face image-text-to-text model; the YAML keys are listed below.",
        epilog=EPILOG_TRAIN + config_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    t.add_argument("config", metavar="CONFIG.yaml", help="training config (see configs/train/)")
    t.add_argument("--out", default=None, metavar="DIR", help="output folder (overrides output_dir)")
    t.add_argument(
        "--resume", action="store_true", help="continue from the last checkpoint in DIR/checkpoints"
    )
    t.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key (YAML value), e.g. --set max_steps=20; repeatable",
    )
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=_cmd_train)

    m = sub.add_parser(
        "merge",
        help="merge a LoRA adapter into its base model (full safetensors model)",
        epilog=EPILOG_MERGE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    m.add_argument("adapter", metavar="ADAPTER", help="folder written by mmskin train")
    m.add_argument("--out", required=True, metavar="DIR", help="folder for the merged model")
    m.add_argument("--base", default=None, help="base model (default: the one recorded in the adapter)")
    m.add_argument("--dtype", default="auto", help="auto (as saved), bf16, fp16 or fp32 (default: auto)")
    m.set_defaults(func=_cmd_merge)
