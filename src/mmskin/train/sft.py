"""LoRA supervised fine-tuning (SkinVL) of any Hugging Face image-text-to-text model: ``mmskin train``.

    from mmskin.train.config import TrainRun, load_train_config
    from mmskin.train.sft import run
    result = run(TrainRun(train=load_train_config("configs/train/tiny-cpu.yaml"), out="runs/tiny"))
    print(result.summary)   # trained 20 steps in 0.7 s: loss 6.2277 -> 6.0094; adapter: runs/tiny

:func:`run` is five named steps: :func:`load_data` (every image checked before any model is loaded),
:func:`load_model` (base + LoRA), :func:`build_trainer`, :func:`fit`, :func:`save_outputs` (adapter, processor,
``config.yaml``, ``metrics.json`` with the provenance block, the model card).

Built on ``transformers.Trainer`` + ``peft`` rather than TRL's SFTTrainer: the label masking (prompt, expanded image
tokens, padding) is ours and tested for any processor, the projector gets its own learning rate through one
``create_optimizer`` override, and Trainer brings resume, logging, TensorBoard and DeepSpeed/accelerate as is.

What is trained: LoRA on the language model's linear layers only (a regex on the language-model module path, so the
vision tower's ``q_proj`` & co. are never hit), plus the projector in full (peft ``modules_to_save``, its own LR);
the vision tower stays frozen unless ``train_vision_tower``. Trainable weights are kept in fp32; with bf16 the
frozen base is loaded in bf16 and the forward runs under autocast.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..models.loading import ModelError, architecture, load_config, resolve_model_path
from ..provenance import provenance, write_info
from ..records import atomic_write_bytes
from ..stage import Reporter, StageError, StageResult
from .card import model_card
from .config import TrainConfig, TrainRun, dump_config, validate
from .data import Collator, DataError, Sample, SFTDataset, SourceReport, load_sources

CHECKPOINTS = "checkpoints"
PACKAGES = ("torch", "transformers", "peft", "accelerate", "deepspeed")  # the versions that shape the numbers


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
        """Trainer with a separate learning rate for the projector (and vision tower when trained), and batches
        grouped by length from cheap lengths (``group_lengths``: words per sample) when set."""

        projector_lr: float | None = None
        group_lengths: list[int] | None = None

        def _get_train_sampler(self, train_dataset=None):
            if self.group_lengths is None:
                return super()._get_train_sampler(train_dataset)
            from transformers.trainer_pt_utils import LengthGroupedSampler

            size = self.args.train_batch_size * self.args.gradient_accumulation_steps
            return LengthGroupedSampler(size, lengths=self.group_lengths)

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


@dataclass
class TrainData:
    """Step 1's output: the weighted, shuffled samples and what each source gave."""

    samples: list[Sample]
    reports: list[SourceReport]
    rejected: list[str]  # one line per rejected sample (trained without them: on_bad_sample: skip)


@dataclass
class LoadedModel:
    """Step 2's output: the base with LoRA applied, its processor and parameter counts (before any sharding), and
    the image settings it was trained with (written into the merged model's config)."""

    model: Any
    processor: Any
    base_path: str
    trainable_params: int
    total_params: int
    settings: dict[str, Any]


def run(config: TrainRun, reporter: Reporter | None = None) -> StageResult:
    """Train; write the adapter, processor, model card, ``metrics.json`` and ``config.yaml`` to the output folder.

    Raises StageError (one line, exit status 1) when the data, the model or the training cannot go on, and
    ConfigError for settings that cannot work. ``result.extra`` holds ``metrics`` (as in metrics.json),
    ``output_dir``, the trained peft ``model`` and its ``processor``.
    """
    reporter = reporter or Reporter()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    out_dir = Path(config.out or config.train.output_dir)
    cfg = dataclasses.replace(validate(config.train, "config"), output_dir=str(out_dir))
    try:
        resume_from = checkpoint_to_resume(out_dir, config.resume)
        data = load_data(cfg)  # first: a bad file should fail in seconds, not after loading a 7B model
        loaded = load_model(cfg)
        trainer = build_trainer(cfg, loaded, data, out_dir / CHECKPOINTS, config.quiet)
        outcome, seconds = fit(trainer, cfg, resume_from)
    except (DataError, ModelError) as e:
        raise StageError("", str(e)) from None
    metrics = training_metrics(cfg, trainer, outcome, seconds, data, loaded, resume_from)
    if "warning" in metrics:
        reporter.warning(f"{out_dir}: {metrics['warning']}")
    save_outputs(trainer, out_dir, cfg, data.reports, metrics)
    note = f", {len(data.rejected)} bad samples skipped" if data.rejected else ""
    summary = (
        f"trained {metrics['steps']} steps in {metrics['train_seconds']:.1f} s: loss {metrics['initial_loss']:.4f}"
        f" -> {metrics['final_loss']:.4f}{note}; adapter: {cfg.output_dir}"
    )
    counts = {"steps": metrics["steps"], "samples": len(data.samples), "rejected": len(data.rejected)}
    extra = {"metrics": metrics, "output_dir": out_dir, "model": trainer.model, "processor": loaded.processor}
    return StageResult("train", counts, [], summary, extra)


def resume_decision(last_checkpoint: str | None, resume: bool, out_dir: Path) -> str | None:
    """The checkpoint to resume from (None: start afresh); StageError when ``resume`` and the folder disagree."""
    if resume and last_checkpoint is None:
        raise StageError(
            out_dir / CHECKPOINTS, "no checkpoint to resume from (run without --resume to start)"
        )
    if not resume and last_checkpoint is not None:
        raise StageError(
            out_dir, "holds checkpoints of an earlier run; pass --resume or choose another --out"
        )
    return last_checkpoint


def checkpoint_to_resume(out_dir: Path, resume: bool) -> str | None:
    """Step 0: the last checkpoint under ``out_dir/checkpoints`` when resuming (see :func:`resume_decision`)."""
    from transformers.trainer_utils import get_last_checkpoint

    ckpt_dir = out_dir / CHECKPOINTS
    last = get_last_checkpoint(str(ckpt_dir)) if ckpt_dir.is_dir() else None
    return resume_decision(last, resume, out_dir)


def load_data(cfg: TrainConfig) -> TrainData:
    """Step 1: read every source and check every image; bad samples stop the run unless on_bad_sample: skip."""
    samples, reports = load_sources(cfg.data, seed=cfg.seed)
    bad = [line for r in reports for line in r.bad]
    if bad and cfg.on_bad_sample == "error":
        more = (
            f" (and {len(bad) - 1} more bad samples; on_bad_sample: skip trains on the rest)"
            if len(bad) > 1
            else ""
        )
        raise StageError("", bad[0] + more)
    if not samples:
        raise StageError("", "no usable training samples in " + ", ".join(r.path for r in reports))
    return TrainData(samples, reports, bad)


def load_model(cfg: TrainConfig) -> LoadedModel:
    """Step 2: the base model (bf16 for bf16 training, else fp32) with LoRA + the trained projector."""
    import torch

    from ..models.loading import load_vlm

    base_path = resolve_model_path(cfg.base_model)
    if Path(base_path).is_dir():
        base_path = str(Path(base_path).resolve())  # the adapter must find its base from any folder
    load_config(base_path)
    load_dtype = {"bf16": "bf16", "fp16": "fp32", "fp32": "fp32"}[cfg.precision]
    model, processor = load_vlm(base_path, dtype=load_dtype)
    settings = model_settings(cfg, model.config)
    model.config.use_cache = False
    if cfg.gradient_checkpointing:
        model.enable_input_require_grads()
    torch.manual_seed(cfg.seed)  # LoRA init
    model = apply_lora(model, cfg, cfg.base_model, upcast=not cfg.deepspeed)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return LoadedModel(model, processor, base_path, trainable, total, settings)


def model_settings(cfg: TrainConfig, config: Any) -> dict[str, Any]:
    """Apply the recipe's image settings to the model ``config`` and return them: ``image_aspect_ratio`` (pad or
    none, as LLaVA keeps it in its config) and ``vision_feature_layer`` (the layer the projector reads)."""
    from ..models.llava_compat import aspect_mode

    settings: dict[str, Any] = {"image_aspect_ratio": aspect_mode(cfg.image_aspect_ratio, config)}
    if cfg.vision_feature_layer is not None:
        if not hasattr(config, "vision_feature_layer"):
            raise ModelError(
                f"{cfg.base_model}: model type {config.model_type!r} has no vision_feature_layer setting; "
                "set vision_feature_layer: null"
            )
        settings["vision_feature_layer"] = cfg.vision_feature_layer
    for key, value in settings.items():
        setattr(config, key, value)
    return settings


def training_arguments(cfg: TrainConfig, ckpt_dir: Path, quiet: bool):
    """``transformers.TrainingArguments`` of the config (checkpoints under ``ckpt_dir``)."""
    import torch
    from transformers import TrainingArguments
    from transformers.utils.import_utils import is_torch_tf32_available

    return TrainingArguments(
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
        tf32=True if cfg.tf32 and is_torch_tf32_available() else None,  # --tf32 True on a CPU would raise
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


def build_trainer(cfg: TrainConfig, loaded: LoadedModel, data: TrainData, ckpt_dir: Path, quiet: bool):
    """Step 3: the Trainer over the label-masked dataset, with the projector's own learning rate."""
    trainer_cls = _make_trainer_class()
    trainer_cls.projector_lr = cfg.projector_learning_rate
    dataset = SFTDataset(
        data.samples, loaded.processor, cfg.max_length, loaded.settings["image_aspect_ratio"]
    )
    trainer_cls.group_lengths = dataset.lengths if cfg.group_by_length else None
    trainer = trainer_cls(
        model=loaded.model,
        args=training_arguments(cfg, ckpt_dir, quiet),
        train_dataset=dataset,
        data_collator=Collator(loaded.processor),
        processing_class=loaded.processor,
    )
    if quiet:
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)
    return trainer


def fit(trainer, cfg: TrainConfig, resume_from: str | None) -> tuple[Any, float]:
    """Step 4: train (from ``resume_from`` when given); (Trainer's TrainOutput, seconds). Out of memory is one line."""
    import torch

    threads = torch.get_num_threads()
    if cfg.cpu_threads > 0:
        torch.set_num_threads(cfg.cpu_threads)
    t0 = time.perf_counter()
    try:
        outcome = trainer.train(resume_from_checkpoint=resume_from)
    except Exception as e:  # noqa: BLE001 - OOM comes as several exception types
        if _is_oom(e):
            raise StageError("", oom_message(cfg, e)) from None
        raise
    finally:
        torch.set_num_threads(threads)
    return outcome, time.perf_counter() - t0


def training_metrics(
    cfg: TrainConfig,
    trainer,
    outcome,
    seconds: float,
    data: TrainData,
    loaded: LoadedModel,
    resume_from: str | None,
) -> dict[str, Any]:
    """What ``metrics.json`` holds: losses, speed, sizes, the data mix and the provenance block."""
    history = _loss_history(trainer.state.log_history)
    if not history:
        raise StageError("", "training logged no loss (no optimizer step ran); check num_epochs / max_steps")
    metrics: dict[str, Any] = {
        "initial_loss": history[0]["loss"],
        "final_loss": history[-1]["loss"],
        "steps": trainer.state.global_step,
        "epochs": float(trainer.state.epoch or 0.0),
        "train_seconds": round(seconds, 3),
        "steps_per_second": round(outcome.metrics.get("train_steps_per_second", 0.0), 4),
        "samples_per_second": round(outcome.metrics.get("train_samples_per_second", 0.0), 4),
        "resumed_from": Path(resume_from).name if resume_from else None,
        "trainable_params": loaded.trainable_params,
        "total_params": loaded.total_params,
        "base_model": cfg.base_model,
        "base_model_path": loaded.base_path,
        "data": [r.as_dict() for r in data.reports],
        "model_settings": loaded.settings,
        "tf32": bool(trainer.args.tf32),
        "rejected_samples": data.rejected,
        "loss_history": history,
        "provenance": provenance("train", config=cfg, packages=PACKAGES, seed=cfg.seed),
    }
    if not all(math.isfinite(h["loss"]) for h in history):
        metrics["warning"] = "non-finite loss during training"
    return metrics


def save_outputs(
    trainer, out_dir: Path, cfg: TrainConfig, reports: list[SourceReport], metrics: dict[str, Any]
) -> None:
    """Step 5: adapter + processor (every rank: gathers the adapter under ZeRO-3), then rank 0's files."""
    trainer.save_model(str(out_dir))
    if not trainer.is_world_process_zero():
        return
    (out_dir / "training_args.bin").unlink(missing_ok=True)  # a pickle; config.yaml says the same in YAML
    atomic_write_bytes(out_dir / "config.yaml", dump_config(cfg).encode("utf-8"))
    write_info(out_dir / "metrics.json", metrics)
    atomic_write_bytes(out_dir / "README.md", model_card(cfg, reports, metrics).encode("utf-8"))
