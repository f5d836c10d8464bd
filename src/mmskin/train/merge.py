"""Merge a LoRA adapter from ``mmskin train`` into its base: a full model (safetensors) + processor (``mmskin merge``).

    from mmskin.train.config import MergeConfig
    from mmskin.train.merge import run
    run(MergeConfig(adapter="runs/skinvl-mm", out="models/skinvl-mm"))   # then load_vlm("models/skinvl-mm")

The base is the adapter's ``base_model_name_or_path`` unless ``base`` is given. The processor is the one saved with
the adapter (the training run's), else the base's. ``mmskin_merge.json`` records how the folder was made: the
adapter, the base, the dtype, the training run's key numbers and the provenance block.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..models.loading import ModelError, load_processor, load_vlm
from ..provenance import provenance, write_info
from ..stage import Reporter, StageError, StageResult, reason_of
from .config import MergeConfig

PACKAGES = ("torch", "transformers", "peft")
TRAINING_KEYS = ("base_model", "steps", "final_loss", "data")  # copied from the adapter's metrics.json


def adapter_base(adapter: Path) -> str:
    """The base model an adapter folder names in its ``adapter_config.json``."""
    cfg_path = adapter / "adapter_config.json"
    if not cfg_path.is_file():
        raise ModelError(f"{adapter}: no adapter_config.json (not a LoRA adapter folder from mmskin train)")
    try:
        base = json.loads(cfg_path.read_text(encoding="utf-8")).get("base_model_name_or_path")
    except ValueError as e:
        raise ModelError(f"{cfg_path}: not valid JSON ({e})") from None
    if not base:
        raise ModelError(f"{cfg_path}: names no base model; pass --base")
    return base


def run(config: MergeConfig, reporter: Reporter | None = None) -> StageResult:
    """Write the merged model + processor + ``mmskin_merge.json`` to ``config.out``.

    StageError (one line, exit status 1) when the adapter or its base cannot be loaded. ``result.extra["info"]`` is
    what mmskin_merge.json holds.
    """
    adapter_dir, out_dir = Path(config.adapter), Path(config.out)
    try:
        base_ref = config.base or adapter_base(adapter_dir)
        merged, processor = merged_model(adapter_dir, base_ref, config.dtype)
    except ModelError as e:
        raise StageError("", str(e)) from None
    out_dir.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(str(out_dir))  # safetensors (transformers >= 5 writes nothing else)
    processor.save_pretrained(str(out_dir))
    info = merge_info(config, adapter_dir, base_ref)
    write_info(out_dir / "mmskin_merge.json", info)
    summary = f"merged {config.adapter} into {base_ref}: {config.out}"
    return StageResult("merge", {"models": 1}, [], summary, {"info": info, "output_dir": out_dir})


def merged_model(adapter_dir: Path, base_ref: str, dtype: str) -> tuple[Any, Any]:
    """(base with the adapter merged in, processor: the training run's when the adapter has one, else the base's)."""
    from peft import PeftModel

    model, processor = load_vlm(base_ref, dtype=dtype)
    try:
        peft_model = PeftModel.from_pretrained(model, str(adapter_dir))
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        raise ModelError(f"{adapter_dir}: cannot apply the adapter to {base_ref} ({reason_of(e)})") from None
    merged = peft_model.merge_and_unload()
    for key, value in trained_settings(adapter_dir / "metrics.json").items():
        setattr(merged.config, key, value)  # image_aspect_ratio, vision_feature_layer: as trained
    if (adapter_dir / "tokenizer_config.json").is_file() or (adapter_dir / "processor_config.json").is_file():
        processor = load_processor(str(adapter_dir), model.config.model_type)
    return merged, processor


def trained_settings(metrics_path: Path) -> dict[str, Any]:
    """The model settings the training run applied (``model_settings`` of its metrics.json; none when absent)."""
    try:
        settings = json.loads(metrics_path.read_text(encoding="utf-8")).get("model_settings")
    except (OSError, ValueError, AttributeError):
        return {}
    return settings if isinstance(settings, dict) else {}


def merge_info(config: MergeConfig, adapter_dir: Path, base_ref: str) -> dict[str, Any]:
    """``mmskin_merge.json``: adapter, base, dtype, the training run's key numbers (when readable), provenance."""
    info: dict[str, Any] = {
        "adapter": str(adapter_dir.resolve()),
        "base_model": base_ref,
        "dtype": config.dtype,
        "provenance": provenance("merge", config=config, packages=PACKAGES),
    }
    training = training_summary(adapter_dir / "metrics.json")
    if training is not None:
        info["training"] = training
    return info


def training_summary(metrics_path: Path) -> dict[str, Any] | None:
    """Base, steps, final loss, seed and data mix from an adapter's ``metrics.json``; None when unreadable."""
    try:
        m = json.loads(metrics_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    out = {k: m.get(k) for k in TRAINING_KEYS}
    out["seed"] = m.get("provenance", {}).get("seed", m.get("seed"))  # top-level "seed" before the block
    return out
