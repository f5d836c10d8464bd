"""The train stage's configs: ``TrainConfig`` is the YAML schema, the defaults and the ``mmskin train --help`` text;
``TrainRun`` adds the options of one run (``--out``, ``--resume``, ``--quiet``); ``MergeConfig`` is ``mmskin merge``.

    cfg = load_train_config("configs/train/mm.yaml", overrides=["max_steps=20"])
    run = TrainRun(train=cfg, out="runs/mm")    # what mmskin.train.sft.run takes
    print(config_help())                        # every field with its default and meaning

Relative paths in a config (base model folder, data files, image roots, output dir, DeepSpeed JSON) are taken
relative to the current working directory, like any command-line path. Unknown keys are an error naming the key
and the file. Importing this module is light (no torch).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

import yaml

from ..config import ConfigError, build_config, option, parse_override, read_yaml_mapping
from ..config import config_help as field_help

__all__ = [
    "ConfigError",
    "DataSource",
    "MergeConfig",
    "TrainConfig",
    "TrainRun",
    "config_help",
    "dump_config",
    "load_train_config",
]

DEFAULT_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@dataclass
class DataSource:
    """One training data file. Samples of all sources are pooled and shuffled."""

    path: str = option(
        "",
        "LLaVA conversation JSON/JSONL, VQA samples JSONL (mmskin vqa, convert-public) or HF parquet",
        required=True,
    )
    format: str = option(
        "auto",
        "auto (.json/.jsonl: llava or vqa rows, .parquet: hf), llava, vqa or hf",
        choices=("auto", "llava", "vqa", "hf"),
    )
    image_root: str | None = option(
        None,
        "folder the image paths are relative to (default: the folder named in PATH.info.json, else PATH's "
        "folder); paths may not leave it",
    )
    weight: float = option(
        1.0, "mix weight: times each sample is used per epoch (0.5 = a random half, 2 = every sample twice)"
    )
    name: str | None = option(None, "label in the model card (default: the file name)")


@dataclass
class TrainConfig:
    """LoRA supervised fine-tuning of an image-text-to-text model on VQA / conversation data."""

    base_model: str = option(
        "",
        "base model: local folder or hub id in Hugging Face format (AutoModelForImageTextToText), "
        "or tiny:llava / tiny:qwen2_5_vl (random-weight test models, built on first use)",
        required=True,
    )
    data: list[DataSource] = option([], "data sources: list of {path, format, image_root, weight, name}")
    output_dir: str = option("runs/skinvl", "where the adapter, processor, model card and metrics go (--out)")
    # what is trained
    lora_r: int = option(128, "LoRA rank")
    lora_alpha: float = option(64, "LoRA alpha (scale = alpha / r)")
    lora_dropout: float = option(0.05, "LoRA dropout")
    lora_target_modules: list[str] = option(
        DEFAULT_TARGETS,
        "names of the language model's linear layers that get LoRA (never the vision tower)",
        shown_default="[" + ", ".join(DEFAULT_TARGETS) + "]",
    )
    train_projector: bool = option(True, "train the vision-language projector fully (its own learning rate)")
    train_vision_tower: bool = option(False, "train the vision tower fully too (default: frozen)")
    # optimisation
    learning_rate: float = option(5e-5, "learning rate of the LoRA weights")
    projector_learning_rate: float = option(
        2e-5, "learning rate of the projector (and vision tower if trained)"
    )
    lr_scheduler: str = option(
        "cosine",
        "learning-rate schedule: cosine, linear, constant, constant_with_warmup",
        choices=("cosine", "linear", "constant", "constant_with_warmup"),
    )
    warmup_ratio: float = option(0.02, "fraction of the steps spent warming the learning rate up")
    weight_decay: float = option(0.01, "AdamW weight decay (not on biases and norms)")
    num_epochs: float = option(1.0, "passes over the (weighted) data")
    max_steps: int = option(-1, "optimizer steps; > 0 overrides num_epochs")
    per_device_batch_size: int = option(16, "samples per device per forward pass")
    gradient_accumulation_steps: int = option(1, "forward passes per optimizer step")
    max_length: int = option(2048, "tokens per sample incl. image tokens; longer answers are cut")
    precision: str = option(
        "bf16",
        "bf16, fp16 or fp32 (bf16 needs a GPU or CPU with bf16 support)",
        choices=("bf16", "fp16", "fp32"),
    )
    gradient_checkpointing: bool = option(
        False, "recompute activations in backward: less memory, ~30% slower (the paper's recipes: true)"
    )
    tf32: bool = option(
        True, "TF32 matmuls on Ampere or newer GPUs, as finetune_lora.sh (--tf32 True); ignored without one"
    )
    group_by_length: bool = option(
        True,
        "batches of samples of similar length (LLaVA's --group_by_modality_length): less padding; lengths are "
        "word counts, so no sample is encoded to sort it",
    )
    image_aspect_ratio: str = option(
        "auto",
        "pad: expand each image to a square with the processor's mean colour before its resize and centre crop "
        "(LLaVA's --image_aspect_ratio pad: no lesion cropped off); none: the processor's own; auto: pad for "
        "LLaVA-family models. Written into the merged model's config, so eval feeds images the same way",
        choices=("auto", "pad", "none"),
    )
    vision_feature_layer: int | None = option(
        None,
        "vision-tower layer the projector reads (LLaVA's --mm_vision_select_layer; -2 in the paper's recipe, as "
        "LLaVA-Med's config); null keeps the model's",
    )
    seed: int = option(42, "seed of data order, LoRA init and dropout")
    # bookkeeping
    logging_steps: int = option(1, "log loss and learning rate every N steps")
    save_steps: int = option(500, "write a resumable checkpoint every N steps")
    save_total_limit: int = option(2, "checkpoints kept (older ones are deleted)")
    dataloader_workers: int = option(0, "data loading processes (0: in the training process)")
    cpu_threads: int = option(
        0, "torch CPU threads while training (0: torch's default); tiny models on a busy CPU are fastest on 1"
    )
    deepspeed: str | None = option(None, "DeepSpeed JSON for multi-GPU (configs/accelerate/zero3.json)")
    on_bad_sample: str = option(
        "error",
        "error: stop before training when a sample's image is missing or outside its root; skip: go on",
        choices=("error", "skip"),
    )
    report_to: str = option(
        "auto",
        "auto (TensorBoard when installed), tensorboard or none",
        choices=("auto", "tensorboard", "none"),
    )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class TrainRun:
    """One ``mmskin train`` run: the training config plus the options that belong to this run only."""

    train: TrainConfig = field(
        default_factory=TrainConfig, metadata={"help": "the training config (CONFIG.yaml)", "cli": False}
    )
    out: str | None = option(None, "output folder (overrides output_dir)", metavar="DIR")
    resume: bool = option(False, "continue from the last checkpoint in DIR/checkpoints")
    quiet: bool = option(False, "no progress bar")


@dataclass
class MergeConfig:
    """``mmskin merge``: a LoRA adapter folder merged into its base model."""

    adapter: str = option("", "folder written by mmskin train", cli=False, required=True)
    out: str = option("", "folder for the merged model", metavar="DIR", required=True)
    base: str | None = option(None, "base model (default: the one recorded in the adapter)")
    dtype: str = option("auto", "auto (as saved), bf16, fp16 or fp32")


def validate(cfg: TrainConfig, where: str) -> TrainConfig:
    """Cross-field checks with one-line messages."""
    if not cfg.base_model:
        raise ConfigError(f"{where}: base_model is required")
    if not cfg.data:
        raise ConfigError(f"{where}: data needs at least one source ({{path: ...}})")
    for i, src in enumerate(cfg.data):
        if not src.path:
            raise ConfigError(f"{where}: data[{i}]: path is required")
        if src.weight <= 0:
            raise ConfigError(f"{where}: data[{i}]: weight must be > 0 (drop the source instead)")
    positive = (
        "lora_r",
        "per_device_batch_size",
        "gradient_accumulation_steps",
        "max_length",
        "logging_steps",
    )
    for name in positive:
        if getattr(cfg, name) <= 0:
            raise ConfigError(f"{where}: {name} must be > 0")
    if cfg.max_steps <= 0 and cfg.num_epochs <= 0:
        raise ConfigError(f"{where}: set num_epochs > 0 or max_steps > 0")
    if not 0 <= cfg.warmup_ratio < 1:
        raise ConfigError(f"{where}: warmup_ratio must be in [0, 1)")
    if not cfg.lora_target_modules:
        raise ConfigError(f"{where}: lora_target_modules is empty")
    return cfg


def load_train_config(path: str | os.PathLike[str] | None, overrides: list[str] | None = None) -> TrainConfig:
    """Read ``path`` (YAML), apply ``KEY=VALUE`` overrides, check everything; ConfigError on any problem."""
    where = str(path) if path is not None else "config"
    raw: dict[str, Any] = read_yaml_mapping(path) if path is not None else {}
    for item in overrides or []:
        key, value = parse_override(item, f"{where} (--set)")
        raw[key] = value
    return validate(build_config(TrainConfig, raw, where), where)


def dump_config(cfg: TrainConfig) -> str:
    """The resolved config as YAML (loadable again with load_train_config)."""
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False, allow_unicode=True)


def config_help() -> str:
    """Every field with its default and help, for ``mmskin train --help``."""
    lines = ["config keys (YAML; defaults are the paper's SkinVL recipe):"]
    lines += field_help(TrainConfig, "  ")
    lines.append("  each data source:")
    lines += field_help(DataSource, "    ")
    return "\n".join(lines)
