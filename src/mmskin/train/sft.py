"""LoRA supervised fine-tuning (SkinVL) of any Hugging Face image-text-to-text model.

    from mmskin.train.config import load_train_config
    from mmskin.train.sft import train
    metrics = train(load_train_config("configs/train/tiny-cpu.yaml"), out="runs/tiny")

Built on ``transformers.Trainer`` + ``peft`` rather than TRL's SFTTrainer: the label masking (prompt, expanded image
tokens, padding) is ours and tested for any processor, the projector gets its own learning rate through one
``create_optimizer`` override, and Trainer brings resume, logging, TensorBoard and DeepSpeed/accelerate as is.

What is trained: LoRA on the language model's linear layers only (a regex on the language-model module path, so the
vision tower's ``q_proj`` & co. are never hit), plus the projector in full (peft ``modules_to_save``, its own LR);
the vision tower stays frozen unless ``train_vision_tower``. Trainable weights are kept in fp32; with bf16 the
frozen base is loaded in bf16 and the forward runs under autocast.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from pathlib import Path
from typing import Any

from .. import __version__
from ..models.loading import ModelError, architecture, load_config, resolve_model_path
from ..provenance import package_versions
from ..records import atomic_write_bytes
from .config import TrainConfig, dump_config
from .data import Collator, DataError, SFTDataset, load_sources

CHECKPOINTS = "checkpoints"


class TrainError(RuntimeError):
    """Training cannot go on; the message is one line saying what to change."""


def lora_target_regex(lm_fragment: str, targets: list[str]) -> str:
    """peft ``target_modules`` regex: the named linear layers inside the language model, nowhere else."""
    alts = "|".join(re.escape(t) for t in targets)
    return rf"(.*\.)?{re.escape(lm_fragment)}\.(.*\.)?({alts})"


def _linear_names(model, lm_fragment: str) -> dict[str, int]:
    import torch

    pat = re.compile(rf"(.*\.)?{re.escape(lm_fragment)}\.")
    counts: dict[str, int] = {}
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.Linear) and pat.match(name):
            leaf = name.rsplit(".", 1)[-1]
            counts[leaf] = counts.get(leaf, 0) + 1
    return counts


def apply_lora(model, cfg: TrainConfig, base_name: str, upcast: bool = True):
    """Wrap ``model`` with LoRA on the language model + the projector as modules_to_save; checks every target."""
    from peft import LoraConfig, get_peft_model

    arch = architecture(model.config.model_type)
    lm = arch["language_model"]
    linear = _linear_names(model, lm)
    if not linear:
        raise ModelError(
            f"{base_name}: no linear layers under a module named {lm!r} (model type {model.config.model_type!r}); "
            "add the model type to mmskin/data/models/architectures.yaml"
        )
    missing = [t for t in cfg.lora_target_modules if t not in linear]
    if missing:
        raise ModelError(
            f"{base_name}: LoRA target(s) {', '.join(missing)} match no linear layer of the language model "
            f"({lm}); its linear layers are named {', '.join(sorted(linear))}"
        )
    names = [n for n, _ in model.named_modules()]

    def present(suffixes: list[str], what: str) -> list[str]:
        for s in suffixes:
            if not any(n == s or n.endswith("." + s) for n in names):
                raise ModelError(
                    f"{base_name}: no {what} module named {s!r} (model type {model.config.model_type!r}); "
                    f"set train_{what.replace(' ', '_')}: false or fix mmskin/data/models/architectures.yaml"
                )
        return suffixes

    to_save = (present(arch["projector"], "projector") if cfg.train_projector else []) + (
        present(arch["vision"], "vision tower") if cfg.train_vision_tower else []
    )
    lcfg = LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=lora_target_regex(lm, cfg.lora_target_modules),
        modules_to_save=to_save or None,
        task_type="CAUSAL_LM",
    )
    peft_model = get_peft_model(model, lcfg)
    for p in peft_model.parameters() if upcast else ():  # DeepSpeed keeps its own fp32 master weights
        if p.requires_grad and p.dtype != _fp32():
            p.data = p.data.float()  # optimizer state and updates in fp32 even when the frozen base is bf16
    return peft_model


def _fp32():
    import torch

    return torch.float32


def _package_versions() -> dict[str, str]:
    return package_versions(("torch", "transformers", "peft", "accelerate", "deepspeed"))


def _report_to(cfg: TrainConfig) -> list[str]:
    import importlib.util

    if cfg.report_to == "none":
        return []
    if cfg.report_to == "tensorboard":
        return ["tensorboard"]
    has_tb = importlib.util.find_spec("tensorboard") or importlib.util.find_spec("tensorboardX")
    return ["tensorboard"] if has_tb else []


def oom_message(cfg: TrainConfig, exc: BaseException) -> str:
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
    gc = "" if cfg.gradient_checkpointing else ", or set gradient_checkpointing: true"
    return (
        f"out of memory at per_device_batch_size={cfg.per_device_batch_size}, max_length={cfg.max_length} "
        f"({first}): lower per_device_batch_size (raise gradient_accumulation_steps to keep the effective "
        f"batch), lower max_length{gc}"
    )


def _is_oom(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.OutOfMemoryError) or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()
    )


def _make_trainer_class():
    from transformers import Trainer

    class SkinVLTrainer(Trainer):
        """Trainer with a separate learning rate for the projector (and vision tower when trained)."""

        projector_lr: float | None = None

        def create_optimizer(self, model=None):
            if self.optimizer is not None or self.projector_lr is None:
                return super().create_optimizer(model)
            opt_model = self.model if model is None else model
            decay = set(self.get_decay_parameter_names(opt_model))
            groups: dict[tuple[bool, bool], list] = {}
            for n, p in opt_model.named_parameters():
                if p.requires_grad:
                    groups.setdefault(("modules_to_save" in n, n in decay), []).append(p)
            param_groups = []
            for (is_proj, is_decay), params in groups.items():
                g: dict[str, Any] = {
                    "params": params,
                    "weight_decay": self.args.weight_decay if is_decay else 0.0,
                }
                if is_proj:
                    g["lr"] = self.projector_lr
                param_groups.append(g)
            cls, kwargs = self.get_optimizer_cls_and_kwargs(self.args, opt_model)
            self.optimizer = cls(param_groups, **kwargs)
            return self.optimizer

    return SkinVLTrainer


def _checkpointing_args(on: bool) -> dict[str, Any]:
    """transformers >= 5.2x renamed gradient_checkpointing to activation_checkpointing."""
    import dataclasses

    from transformers import TrainingArguments

    names = {f.name for f in dataclasses.fields(TrainingArguments)}
    key = "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"
    return {key: on, f"{key}_kwargs": {"use_reentrant": False} if on else None}


def _loss_history(log_history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for e in log_history:
        if "loss" in e and "step" in e:
            rows.append({"step": e["step"], "loss": e["loss"], "learning_rate": e.get("learning_rate")})
    return rows


def model_card(cfg: TrainConfig, base_ref: str, reports: list, metrics: dict[str, Any]) -> str:
    from ..models.tiny import MARKER

    mix = "\n".join(
        f"| {r.name} | `{r.path}` | {r.format} | {r.weight:g} | {r.read} | {len(r.bad)} | {r.used} |"
        for r in reports
    )
    targets = ", ".join(cfg.lora_target_modules)
    packages = ", ".join(f"{k} {v}" for k, v in metrics["packages"].items())
    smoke = cfg.base_model.startswith("tiny:") or (Path(metrics["base_model_path"]) / MARKER).is_file()
    warn = (
        "\n> **Smoke run**: the base model is a tiny random-weight test model. This adapter is not a real model "
        "and its answers mean nothing.\n"
        if smoke
        else ""
    )
    return f"""---
library_name: peft
base_model: {base_ref}
pipeline_tag: image-text-to-text
tags: [mmskin, skinvl, lora, dermatology]
---

# SkinVL LoRA adapter (mmskin {__version__})
{warn}
LoRA fine-tune of `{base_ref}` made with `mmskin train` (MM-Skin, arXiv 2505.06152).

- LoRA r={cfg.lora_r}, alpha={cfg.lora_alpha:g}, dropout={cfg.lora_dropout:g} on the language model's {targets}
- projector trained: {cfg.train_projector}; vision tower trained: {cfg.train_vision_tower}

## Data mix

| source | file | format | weight | samples | rejected | used |
|---|---|---|---|---|---|---|
{mix}

## Training

- steps: {metrics["steps"]}, epochs: {metrics["epochs"]:.3g}, seed: {cfg.seed}
- learning rate {cfg.learning_rate:g} (projector {cfg.projector_learning_rate:g}), {cfg.lr_scheduler} schedule, \
warmup ratio {cfg.warmup_ratio:g}, weight decay {cfg.weight_decay:g}
- per-device batch {cfg.per_device_batch_size} x accumulation {cfg.gradient_accumulation_steps}, max length \
{cfg.max_length}, precision {cfg.precision}, gradient checkpointing {cfg.gradient_checkpointing}
- loss: {metrics["initial_loss"]:.4f} (first step) -> {metrics["final_loss"]:.4f} (last step)
- time: {metrics["train_seconds"]:.1f} s; trainable parameters {metrics["trainable_params"]:,} of \
{metrics["total_params"]:,}
- packages: {packages}

## Config

```yaml
{dump_config(cfg).rstrip()}
```

The same config is in `config.yaml` (`mmskin train config.yaml` reruns it); numbers are in `metrics.json`. Merge
into a full model with `mmskin merge {{this folder}} --out DIR`.
"""


def train(
    cfg: TrainConfig, out: str | os.PathLike[str] | None = None, resume: bool = False, quiet: bool = False
) -> dict[str, Any]:
    """Train, save adapter + processor + model card + metrics.json + config.yaml into ``out``; return metrics."""
    return train_model(cfg, out, resume, quiet)[0]


def train_model(
    cfg: TrainConfig, out: str | os.PathLike[str] | None = None, resume: bool = False, quiet: bool = False
) -> tuple[dict[str, Any], Any, Any]:
    """As :func:`train`, also returning the trained (peft) model and the processor."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch
    from transformers import TrainingArguments
    from transformers.trainer_utils import get_last_checkpoint

    from ..models.loading import load_vlm

    out_dir = Path(out or cfg.output_dir)
    cfg.output_dir = str(out_dir)
    ckpt_dir = out_dir / CHECKPOINTS
    last_ckpt = get_last_checkpoint(str(ckpt_dir)) if ckpt_dir.is_dir() else None
    if resume and last_ckpt is None:
        raise TrainError(f"{ckpt_dir}: no checkpoint to resume from (run without --resume to start)")
    if not resume and last_ckpt is not None:
        raise TrainError(
            f"{out_dir}: holds checkpoints of an earlier run; pass --resume or choose another --out"
        )

    # data first: a bad file should fail in seconds, not after loading a 7B model
    samples, reports = load_sources(cfg.data, seed=cfg.seed)
    bad = [line for r in reports for line in r.bad]
    if bad and cfg.on_bad_sample == "error":
        more = (
            f" (and {len(bad) - 1} more bad samples; on_bad_sample: skip trains on the rest)"
            if len(bad) > 1
            else ""
        )
        raise DataError(bad[0] + more)
    if not samples:
        raise DataError("no usable training samples in " + ", ".join(r.path for r in reports))

    base_path = resolve_model_path(cfg.base_model)
    if Path(base_path).is_dir():
        base_path = str(Path(base_path).resolve())  # the adapter must find its base from any folder
    load_config(base_path)
    load_dtype = {"bf16": "bf16", "fp16": "fp32", "fp32": "fp32"}[cfg.precision]
    model, processor = load_vlm(base_path, dtype=load_dtype)
    model.config.use_cache = False
    if cfg.gradient_checkpointing:
        model.enable_input_require_grads()
    torch.manual_seed(cfg.seed)  # LoRA init
    model = apply_lora(model, cfg, cfg.base_model, upcast=not cfg.deepspeed)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())

    dataset = SFTDataset(samples, processor, cfg.max_length)
    args = TrainingArguments(
        output_dir=str(ckpt_dir),
        per_device_train_batch_size=cfg.per_device_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=cfg.warmup_ratio,  # a float in [0, 1) is a ratio of the total steps
        weight_decay=cfg.weight_decay,
        num_train_epochs=cfg.num_epochs,
        max_steps=cfg.max_steps,
        bf16=cfg.precision == "bf16",
        fp16=cfg.precision == "fp16",
        **_checkpointing_args(cfg.gradient_checkpointing),
        dataloader_pin_memory=torch.cuda.is_available(),
        seed=cfg.seed,
        data_seed=cfg.seed,
        logging_steps=cfg.logging_steps,
        logging_first_step=True,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit,
        report_to=_report_to(cfg),
        remove_unused_columns=False,
        dataloader_num_workers=cfg.dataloader_workers,
        deepspeed=cfg.deepspeed,
        disable_tqdm=quiet,
    )
    trainer_cls = _make_trainer_class()
    trainer_cls.projector_lr = cfg.projector_learning_rate
    trainer = trainer_cls(
        model=model,
        args=args,
        train_dataset=dataset,
        data_collator=Collator(processor),
        processing_class=processor,
    )
    threads = torch.get_num_threads()
    if cfg.cpu_threads > 0:
        torch.set_num_threads(cfg.cpu_threads)
    if quiet:
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)
    t0 = time.perf_counter()
    try:
        result = trainer.train(resume_from_checkpoint=last_ckpt if resume else None)
    except Exception as e:  # noqa: BLE001 - OOM comes as several exception types
        if _is_oom(e):
            raise TrainError(oom_message(cfg, e)) from None
        raise
    finally:
        torch.set_num_threads(threads)
    seconds = time.perf_counter() - t0

    history = _loss_history(trainer.state.log_history)
    if not history:
        raise TrainError("training logged no loss (no optimizer step ran); check num_epochs / max_steps")
    steps = trainer.state.global_step
    metrics: dict[str, Any] = {
        "initial_loss": history[0]["loss"],
        "final_loss": history[-1]["loss"],
        "steps": steps,
        "epochs": float(trainer.state.epoch or 0.0),
        "train_seconds": round(seconds, 3),
        "steps_per_second": round(result.metrics.get("train_steps_per_second", 0.0), 4),
        "samples_per_second": round(result.metrics.get("train_samples_per_second", 0.0), 4),
        "resumed_from": Path(last_ckpt).name if resume and last_ckpt else None,
        "trainable_params": trainable,
        "total_params": total,
        "base_model": cfg.base_model,
        "base_model_path": base_path,
        "data": [r.as_dict() for r in reports],
        "rejected_samples": bad,
        "loss_history": history,
        "seed": cfg.seed,
        "mmskin_version": __version__,
        "packages": _package_versions(),
        "config": cfg.to_dict(),
    }
    if not all(math.isfinite(h["loss"]) for h in history):
        metrics["warning"] = "non-finite loss during training"
    trainer.save_model(
        str(out_dir)
    )  # every rank: gathers the adapter under ZeRO-3; rank 0 writes it + processor
    if trainer.is_world_process_zero():
        (out_dir / "training_args.bin").unlink(missing_ok=True)  # a pickle; config.yaml says the same in YAML
        atomic_write_bytes(out_dir / "config.yaml", dump_config(cfg).encode("utf-8"))
        atomic_write_bytes(out_dir / "metrics.json", (json.dumps(metrics, indent=2) + "\n").encode("utf-8"))
        card = model_card(cfg, cfg.base_model, reports, metrics)
        atomic_write_bytes(out_dir / "README.md", card.encode("utf-8"))
    return metrics, trainer.model, processor
