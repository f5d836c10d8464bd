"""The training config: one dataclass that is the YAML schema, the defaults and the ``mmskin train --help`` text.

    cfg = load_train_config("configs/train/mm.yaml", overrides=["max_steps=20"])
    print(config_help())                        # every field with its default and meaning

Relative paths in a config (base model folder, data files, image roots, output dir, DeepSpeed JSON) are taken
relative to the current working directory, like any command-line path. Unknown keys are an error naming the key
and the file. Importing this module is light (no torch).
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

import yaml

DEFAULT_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class ConfigError(ValueError):
    """A config the trainer cannot use; the message is one line naming the file."""


def _f(default: Any, help: str, **kw: Any) -> Any:
    if isinstance(default, list | dict):
        return field(default_factory=lambda d=default: type(d)(d), metadata={"help": help, **kw})
    return field(default=default, metadata={"help": help, **kw})


@dataclass
class DataSource:
    """One training data file. Samples of all sources are pooled and shuffled."""

    path: str = _f(
        "", "LLaVA conversation JSON/JSONL, VQA samples JSONL (mmskin vqa, convert-public) or HF parquet"
    )
    format: str = _f("auto", "auto (.json/.jsonl: llava or vqa rows, .parquet: hf), llava, vqa or hf")
    image_root: str | None = _f(
        None,
        "folder the image paths are relative to (default: the folder named in PATH.info.json, else PATH's "
        "folder); paths may not leave it",
    )
    weight: float = _f(
        1.0, "mix weight: times each sample is used per epoch (0.5 = a random half, 2 = every sample twice)"
    )
    name: str | None = _f(None, "label in the model card (default: the file name)")


@dataclass
class TrainConfig:
    """LoRA supervised fine-tuning of an image-text-to-text model on VQA / conversation data."""

    base_model: str = _f(
        "",
        "base model: local folder or hub id in Hugging Face format (AutoModelForImageTextToText), "
        "or tiny:llava / tiny:qwen2_5_vl (random-weight test models, built on first use)",
    )
    data: list[DataSource] = _f([], "data sources: list of {path, format, image_root, weight, name}")
    output_dir: str = _f("runs/skinvl", "where the adapter, processor, model card and metrics go (--out)")
    # what is trained
    lora_r: int = _f(128, "LoRA rank")
    lora_alpha: float = _f(64, "LoRA alpha (scale = alpha / r)")
    lora_dropout: float = _f(0.05, "LoRA dropout")
    lora_target_modules: list[str] = _f(
        DEFAULT_TARGETS, "names of the language model's linear layers that get LoRA (never the vision tower)"
    )
    train_projector: bool = _f(True, "train the vision-language projector fully (its own learning rate)")
    train_vision_tower: bool = _f(False, "train the vision tower fully too (default: frozen)")
    # optimisation
    learning_rate: float = _f(5e-5, "learning rate of the LoRA weights")
    projector_learning_rate: float = _f(2e-5, "learning rate of the projector (and vision tower if trained)")
    lr_scheduler: str = _f("cosine", "learning-rate schedule: cosine, linear, constant, constant_with_warmup")
    warmup_ratio: float = _f(0.02, "fraction of the steps spent warming the learning rate up")
    weight_decay: float = _f(0.01, "AdamW weight decay (not on biases and norms)")
    num_epochs: float = _f(1.0, "passes over the (weighted) data")
    max_steps: int = _f(-1, "optimizer steps; > 0 overrides num_epochs")
    per_device_batch_size: int = _f(16, "samples per device per forward pass")
    gradient_accumulation_steps: int = _f(1, "forward passes per optimizer step")
    max_length: int = _f(2048, "tokens per sample incl. image tokens; longer answers are cut")
    precision: str = _f("bf16", "bf16, fp16 or fp32 (bf16 needs a GPU or CPU with bf16 support)")
    gradient_checkpointing: bool = _f(False, "recompute activations in backward: less memory, ~30% slower")
    seed: int = _f(42, "seed of data order, LoRA init and dropout")
    # bookkeeping
    logging_steps: int = _f(1, "log loss and learning rate every N steps")
    save_steps: int = _f(500, "write a resumable checkpoint every N steps")
    save_total_limit: int = _f(2, "checkpoints kept (older ones are deleted)")
    dataloader_workers: int = _f(0, "data loading processes (0: in the training process)")
    cpu_threads: int = _f(
        0, "torch CPU threads while training (0: torch's default); tiny models on a busy CPU are fastest on 1"
    )
    deepspeed: str | None = _f(None, "DeepSpeed JSON for multi-GPU (configs/accelerate/zero3.json)")
    on_bad_sample: str = _f(
        "error",
        "error: stop before training when a sample's image is missing or outside its root; skip: go on",
    )
    report_to: str = _f("auto", "auto (TensorBoard when installed), tensorboard or none")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


CHOICES = {
    ("DataSource", "format"): ("auto", "llava", "vqa", "hf"),
    ("TrainConfig", "lr_scheduler"): ("cosine", "linear", "constant", "constant_with_warmup"),
    ("TrainConfig", "precision"): ("bf16", "fp16", "fp32"),
    ("TrainConfig", "on_bad_sample"): ("error", "skip"),
    ("TrainConfig", "report_to"): ("auto", "tensorboard", "none"),
}


def _coerce(value: Any, tp: Any, where: str) -> Any:
    origin = get_origin(tp)
    if origin is list:
        (item_tp,) = get_args(tp)
        if isinstance(value, str | dict) or not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__}")
        return [_coerce(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
    args = get_args(tp)
    if args and type(None) in args:  # Optional[X]
        if value is None:
            return None
        tp = next(a for a in args if a is not type(None))
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping of {tp.__name__} fields")
        return _build(tp, value, where)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads 5e-5 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return str(value)
    return value


def _build(cls: type, raw: dict[str, Any], where: str) -> Any:
    hints = get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in raw.items():
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{where}: unknown key {key!r}{hint}")
        v = _coerce(value, hints[key], f"{where}: {key}")
        choices = CHOICES.get((cls.__name__, key))
        if choices and v not in choices:
            raise ConfigError(f"{where}: {key} must be one of {', '.join(choices)} (got {v!r})")
        kwargs[key] = v
    return cls(**kwargs)


def _parse_override(item: str, where: str) -> tuple[str, Any]:
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"{where}: expected KEY=VALUE, got {item!r}")
    try:
        return key.strip(), yaml.safe_load(value)
    except yaml.YAMLError as e:
        raise ConfigError(f"{where}: {item!r}: not a YAML value ({str(e).splitlines()[0]})") from None


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
    raw: dict[str, Any] = {}
    where = str(path) if path is not None else "config"
    if path is not None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as e:
            raise ConfigError(f"{where}: cannot read ({e.strerror or e})") from None
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ConfigError(f"{where}: not valid YAML ({str(e).splitlines()[0]})") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{where}: expected a mapping of settings at the top level")
        raw.update(loaded)
    for item in overrides or []:
        key, value = _parse_override(item, f"{where} (--set)")
        raw[key] = value
    return validate(_build(TrainConfig, raw, where), where)


def dump_config(cfg: TrainConfig) -> str:
    """The resolved config as YAML (loadable again with load_train_config)."""
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False, allow_unicode=True)


def config_help() -> str:
    """Every field with its default and help, for ``mmskin train --help``."""

    def rows(cls: type, indent: str) -> list[str]:
        out = []
        for f in dataclasses.fields(cls):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            if f.name == "data":
                default = "[]"
            elif f.name == "lora_target_modules":
                default = "[" + ", ".join(DEFAULT_TARGETS) + "]"
            if default == "" or default is None:
                default = "(required)" if f.name in ("base_model", "path") else "null"
            out.append(f"{indent}{f.name}: {default}")
            out += [f"{indent}    {ln}" for ln in textwrap.wrap(f.metadata["help"], 100 - len(indent))]
        return out

    lines = ["config keys (YAML; defaults are the paper's SkinVL recipe):"]
    lines += rows(TrainConfig, "  ")
    lines.append("  each data source:")
    lines += rows(DataSource, "    ")
    return "\n".join(lines)
