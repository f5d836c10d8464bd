"""The model card (``README.md``) that ``mmskin train`` writes next to the adapter.

    card = model_card(cfg, reports, metrics)      # metrics as in metrics.json, with its provenance block
    (out_dir / "README.md").write_text(card)

The card says what was trained on what (the data mix with its rejected samples), how (LoRA, learning rates,
schedule, batch), the result (first and last loss), and the run's provenance block; a tiny random-weight base is
called out as a smoke run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .config import TrainConfig, dump_config
from .data import SourceReport


def is_smoke_run(cfg: TrainConfig, base_model_path: str) -> bool:
    """True when the base is a tiny random-weight test model (its answers mean nothing)."""
    from ..models.tiny import MARKER

    return cfg.base_model.startswith("tiny:") or (Path(base_model_path) / MARKER).is_file()


def provenance_lines(prov: dict[str, Any]) -> str:
    """The provenance block as card lines (the config is shown in full in its own section)."""
    packages = ", ".join(f"{k} {v}" for k, v in prov["packages"].items())
    return (
        f"- stage: {prov['stage']}, mmskin {prov['mmskin']}, Python {prov['python']}, seed {prov['seed']}\n"
        f"- packages: {packages}"
    )


def model_card(cfg: TrainConfig, reports: list[SourceReport], metrics: dict[str, Any]) -> str:
    base_ref = cfg.base_model
    prov = metrics["provenance"]
    mix = "\n".join(
        f"| {r.name} | `{r.path}` | {r.format} | {r.weight:g} | {r.read} | {len(r.bad)} | {r.used} |"
        for r in reports
    )
    targets = ", ".join(cfg.lora_target_modules)
    warn = (
        "\n> **Smoke run**: the base model is a tiny random-weight test model. This adapter is not a real model "
        "and its answers mean nothing.\n"
        if is_smoke_run(cfg, metrics["base_model_path"])
        else ""
    )
    return f"""---
library_name: peft
base_model: {base_ref}
pipeline_tag: image-text-to-text
tags: [mmskin, skinvl, lora, dermatology]
---

# SkinVL LoRA adapter (mmskin {prov["mmskin"]})
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

## Provenance

{provenance_lines(prov)}

## Config

```yaml
{dump_config(cfg).rstrip()}
```

The same config is in `config.yaml` (`mmskin train config.yaml` reruns it); numbers are in `metrics.json`. Merge
into a full model with `mmskin merge {{this folder}} --out DIR`.
"""
