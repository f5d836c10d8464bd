"""Fixtures for the train tests: tiny models, VQA data from real images, one trained run per model kind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from train_support import KINDS, SHARED, llava_item, shared_rows, write_config


@pytest.fixture(scope="session")
def tiny_models(tiny_vlms) -> dict[str, Path]:
    return {k: tiny_vlms[k] for k in KINDS}


@pytest.fixture(scope="session")
def vqa_json(tmp_path_factory) -> Path:
    """LLaVA JSON of 24 real images (8 per modality) with a modality question; images under ../shared/data."""
    rows = shared_rows()
    folder = tmp_path_factory.mktemp("vqa")
    path = folder / "vqa_llava.json"
    path.write_text(json.dumps([llava_item(i, r) for i, r in enumerate(rows)]), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def trained(tmp_path_factory, tiny_models, vqa_json):
    """One 20-step run per model kind: {kind: (out_dir, metrics, in-memory peft model, processor)}."""
    from mmskin.train.config import TrainRun, load_train_config
    from mmskin.train.sft import run

    runs = {}
    for kind in KINDS:
        folder = tmp_path_factory.mktemp(f"run-{kind}")
        src = {"path": str(vqa_json), "image_root": str(SHARED)}
        cfg = load_train_config(write_config(folder / "cfg.yaml", f"tiny:{kind}", [src]))
        out = folder / "out"
        result = run(TrainRun(train=cfg, out=str(out), quiet=True))
        runs[kind] = (out, result.extra["metrics"], result.extra["model"].eval(), result.extra["processor"])
    return runs


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread(one_torch_thread):
    yield
