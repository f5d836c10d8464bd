"""Fixtures shared by the test areas: a session cache for mmskin (tiny models are built once, offline)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def mmskin_cache(tmp_path_factory):
    """MMSKIN_CACHE (and HF_HUB_OFFLINE) for the session, so tiny:KIND models are built in the test's temp folder."""
    cache = tmp_path_factory.getbasetemp() / "mmskin-cache"
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
def tiny_vlms(mmskin_cache) -> dict[str, Path]:
    """Every tiny random-weight model kind, built once per session."""
    from mmskin.models.tiny import TINY_KINDS, build_tiny_vlm

    return {k: build_tiny_vlm(k, mmskin_cache / "tiny" / k) for k in TINY_KINDS}


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models on a shared 2-core box run ~30x faster on one thread (no OpenMP spin-waiting)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
