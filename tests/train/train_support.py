"""Helpers shared by the train tests (a module with its own name: ``from conftest import …`` would resolve to
whichever conftest.py was imported first when several test folders run together)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
KINDS = ("llava", "qwen2_5_vl")

# the tiny model's settings that make 20 CPU steps learn something visible (tiny-cpu.yaml uses the same)
TINY_TRAIN = {
    "lora_r": 8,
    "lora_alpha": 16,
    "lora_dropout": 0.0,
    "learning_rate": 3.0e-3,
    "projector_learning_rate": 1.0e-3,
    "warmup_ratio": 0.0,
    "per_device_batch_size": 4,
    "max_steps": 20,
    "max_length": 512,
    "precision": "fp32",
    "seed": 0,
    "save_steps": 10,
    "cpu_threads": 1,
    "report_to": "none",
}


def shared_rows() -> list[dict[str, str]]:
    labels = SHARED / "images" / "labels.csv"
    if not labels.is_file():
        pytest.skip(f"../shared/data not present: {labels} is missing")
    with labels.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    out = []
    for modality in ("clinical", "dermoscopy", "histopathology"):
        out += [r for r in rows if r["modality"] == modality and (SHARED / r["file"]).is_file()][:8]
    return out


def llava_item(i: int, row: dict[str, str]) -> dict:
    modality = {"histopathology": "histopathology slide"}.get(row["modality"], row["modality"] + " image")
    return {
        "id": f"s{i}",
        "image": row["file"],
        "conversations": [
            {"from": "human", "value": "<image>\nWhat is the imaging modality of this image?"},
            {"from": "gpt", "value": f"The image is a {modality}."},
        ],
    }


def write_config(path: Path, base: str, data: list[dict], **over) -> Path:
    import yaml

    cfg = {"base_model": base, "data": data, **TINY_TRAIN, **over}
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


def batch(processor, n: int = 3):
    """A real two-image (or n-image) inference batch for logit comparisons."""
    from PIL import Image

    from mmskin.models import build_prompt

    rows = shared_rows()[:: max(1, 24 // n)][:n]
    images = [Image.open(SHARED / r["file"]).convert("RGB") for r in rows]
    prompts = [build_prompt(processor, "What is the imaging modality of this image?") for _ in rows]
    processor.tokenizer.padding_side = "left"
    return processor(images=images, text=prompts, return_tensors="pt", padding=True)
