"""Merge a LoRA adapter from ``mmskin train`` into its base: a full model (safetensors) + processor.

    from mmskin.train.merge import merge_adapter
    merge_adapter("runs/skinvl-mm", "models/skinvl-mm")        # then load_vlm("models/skinvl-mm")

The base is the adapter's ``base_model_name_or_path`` unless ``base`` is given. The processor is the one saved with
the adapter (the training run's), else the base's. ``mmskin_merge.json`` records how the folder was made.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .. import __version__
from ..models.loading import ModelError, load_processor, load_vlm
from ..records import atomic_write_bytes


def adapter_base(adapter: Path) -> str:
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


def merge_adapter(
    adapter: str | os.PathLike[str],
    out: str | os.PathLike[str],
    base: str | None = None,
    dtype: str = "auto",
) -> dict[str, Any]:
    """Write the merged model + processor to ``out``; return the provenance dict (also in mmskin_merge.json)."""
    from peft import PeftModel

    adapter_dir = Path(adapter)
    base_ref = base or adapter_base(adapter_dir)
    model, processor = load_vlm(base_ref, dtype=dtype)
    try:
        peft_model = PeftModel.from_pretrained(model, str(adapter_dir))
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        msg = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ModelError(f"{adapter_dir}: cannot apply the adapter to {base_ref} ({msg})") from None
    merged = peft_model.merge_and_unload()
    if (adapter_dir / "tokenizer_config.json").is_file() or (adapter_dir / "processor_config.json").is_file():
        processor = load_processor(str(adapter_dir), model.config.model_type)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(str(out_dir))  # safetensors (transformers >= 5 writes nothing else)
    processor.save_pretrained(str(out_dir))
    info = {
        "adapter": str(adapter_dir.resolve()),
        "base_model": base_ref,
        "dtype": dtype,
        "mmskin_version": __version__,
    }
    metrics = adapter_dir / "metrics.json"
    if metrics.is_file():
        try:
            m = json.loads(metrics.read_text(encoding="utf-8"))
            info["training"] = {k: m.get(k) for k in ("base_model", "steps", "final_loss", "seed", "data")}
        except ValueError:
            pass
    atomic_write_bytes(out_dir / "mmskin_merge.json", (json.dumps(info, indent=2) + "\n").encode("utf-8"))
    return info
