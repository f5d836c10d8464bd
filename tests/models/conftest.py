"""Fixtures for the models tests: the tiny models, built once per session (shared with tests/train)."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


@pytest.fixture(scope="session")
def models_cache(mmskin_cache):
    return mmskin_cache


@pytest.fixture(scope="session")
def tiny(tiny_vlms) -> dict[str, Path]:
    return tiny_vlms


@pytest.fixture(scope="session")
def real_image():
    path = SHARED / "images" / "dermoscopy" / "ham10000" / "ISIC_0026319.jpg"
    if not path.is_file():
        pytest.skip(f"../shared/data not present: {path} is missing")
    from PIL import Image

    return Image.open(path).convert("RGB")


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread(one_torch_thread):
    yield
