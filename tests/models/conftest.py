"""Fixtures for the models tests: the tiny models, built once per session (shared with tests/train)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


@pytest.fixture(scope="session")
def models_cache(tmp_path_factory):
    cache = tmp_path_factory.getbasetemp() / "mmskin-cache"  # the same folder tests/train uses
    old = {k: os.environ.get(k) for k in ("MMSKIN_CACHE", "HF_HUB_OFFLINE")}
    os.environ["MMSKIN_CACHE"] = str(cache)
    os.environ["HF_HUB_OFFLINE"] = "1"
    yield cache
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def tiny(models_cache) -> dict[str, Path]:
    from mmskin.models.tiny import TINY_KINDS, build_tiny_vlm

    return {k: build_tiny_vlm(k, models_cache / "tiny" / k) for k in TINY_KINDS}


@pytest.fixture(scope="session")
def real_image():
    path = SHARED / "images" / "dermoscopy" / "ham10000" / "ISIC_0026319.jpg"
    if not path.is_file():
        pytest.skip(f"../shared/data not present: {path} is missing")
    from PIL import Image

    return Image.open(path).convert("RGB")


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny models on a shared 2-core box run ~30x faster on one thread (no OpenMP spin-waiting)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
