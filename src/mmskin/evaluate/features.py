"""Image features for the linear probe: extracted once per model + dataset, cached on disk as npz.

The cache key is the model's fingerprint (spec, weight files' sizes and mtimes, dtype), the sha256 of the dataset
file and the ordered image list, so a retrained model, an edited CSV or another subset gets its own file. Files are
written with ``np.savez`` (atomically) and read with ``allow_pickle=False``; features files from elsewhere (any
encoder) are read the same way and never unpickled.

    feats, ok, problems, cache = extract_features(adapter, Path("data"), images, data_sha, cache_dir=Path("cache"))
    X, labels, split = load_features_file(Path("clip_feats.npz"))
"""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ..models.loading import cache_dir as mmskin_cache_dir
from ..records import atomic_write_bytes
from ..stage import SILENT, Problem, Reporter
from .predict import ReplicaSpec, load_images

FEATURES_VERSION = 1  # bump when pooling or extraction changes, so old caches are not reused


def default_cache_dir() -> Path:
    return mmskin_cache_dir() / "features"


def cache_key(model_fingerprint: str, data_sha256: str, images: list[str]) -> str:
    h = hashlib.sha256(f"v{FEATURES_VERSION}|{model_fingerprint}|{data_sha256}|".encode())
    h.update("\n".join(images).encode())
    return h.hexdigest()[:24]


def _fingerprint(adapter: Any) -> str:
    fp = getattr(adapter, "fingerprint", None)
    return fp() if callable(fp) else adapter.name


def extract_features(
    adapter: Any,
    image_root: Path,
    images: list[str],
    data_sha256: str,
    *,
    cache_dir: Path | None = None,
    batch_size: int = 16,
    reporter: Reporter = SILENT,
    replicas: ReplicaSpec | None = None,
) -> tuple[np.ndarray, np.ndarray, list[Problem], Path]:
    """(features N x D float32, ok mask N, problems, cache file). Images that fail have ok=False and NaN rows;
    they are not cached as features, so a fixed image is picked up by a rerun (the key covers the list). With
    ``replicas`` the batches run on Ray replicas of the model (only when the cache misses)."""
    if not callable(getattr(adapter, "image_features", None)):
        raise ValueError(
            f"{adapter.name}: this model kind gives no image features (use hf:PATH or --features)"
        )
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    path = cache_dir / f"{cache_key(_fingerprint(adapter), data_sha256, images)}.npz"
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as z:
                if list(z["images"]) == images:
                    return z["features"].astype(np.float32), z["ok"].astype(bool), [], path
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
            reporter.warning(f"{path}: unreadable feature cache ({e}); extracting again")

    feats: list[np.ndarray | None] = [None] * len(images)
    problems: list[Problem] = []
    size = max(1, batch_size)
    chunks = [images[i : i + size] for i in range(0, len(images), size)]
    with reporter.progress(len(images), f"features {adapter.name}") as advance:
        if replicas is not None and chunks:
            with replicas.replicas() as pool:
                outs = pool.map(feature_batch, chunks, os.path.abspath(image_root))
                _collect(chunks, outs, feats, problems, advance)
        else:
            outs = (feature_batch(adapter, c, image_root) for c in chunks)
            _collect(chunks, outs, feats, problems, advance)
    dims = {f.shape for f in feats if f is not None}
    if len(dims) > 1:
        raise RuntimeError(f"{adapter.name}: features of different shapes {sorted(dims)}")
    d = next(iter(dims))[0] if dims else 0
    ok = np.array([f is not None for f in feats], dtype=bool)
    X = np.full((len(images), d), np.nan, dtype=np.float32)
    for k, f in enumerate(feats):
        if f is not None:
            X[k] = f
    if not problems:
        buf = io.BytesIO()
        np.savez(buf, features=X, ok=ok, images=np.array(images, dtype=str), model=np.array(adapter.name))
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, buf.getvalue())
    return X, ok, problems, path


def feature_batch(adapter: Any, chunk: list[str], image_root: str | Path) -> list[np.ndarray | Problem]:
    """The features of each image of ``chunk``, or the Problem of one that did not load (what a replica runs)."""
    loaded = load_images(Path(image_root), [{"image": im} for im in chunk])
    good = [im for im in loaded if not isinstance(im, Problem)]
    out = adapter.image_features(good) if good else []
    if len(out) != len(good):
        raise RuntimeError(f"{adapter.name}: {len(out)} feature rows for {len(good)} images")
    rows = iter(out)
    return [im if isinstance(im, Problem) else np.asarray(next(rows), dtype=np.float32) for im in loaded]


def _collect(chunks: list[list[str]], outs: Any, feats: list, problems: list[Problem], advance: Any) -> None:
    k = 0
    for chunk, out in zip(chunks, outs, strict=False):
        for row in out:
            if isinstance(row, Problem):
                problems.append(row)
            else:
                feats[k] = row
            k += 1
        advance(len(chunk))


def load_features_file(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(features N x D float64, labels N (str, or int = index into the taxonomy's classes), split N as str or
    None) of an npz with ``features``, ``labels`` and optional ``split``; ValueError (naming the file) when it is malformed or would need unpickling."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = set(z.files)
            if not {"features", "labels"} <= keys:
                raise ValueError(f"{path}: needs arrays 'features' and 'labels' (has {sorted(keys)})")
            X = z["features"]
            labels = z["labels"]
            split = z["split"] if "split" in keys else None
    except ValueError as e:
        msg = str(e)
        if "allow_pickle" in msg or "Object arrays" in msg:
            raise ValueError(f"{path}: holds Python objects (pickled); store str or numeric arrays") from None
        raise ValueError(msg if msg.startswith(str(path)) else f"{path}: {msg}") from None
    except (OSError, EOFError, zipfile.BadZipFile) as e:
        raise ValueError(f"{path}: not a readable npz file ({e})") from None
    if X.ndim != 2 or not np.issubdtype(X.dtype, np.number):
        raise ValueError(f"{path}: 'features' must be a numeric N x D array (got {X.dtype} {X.shape})")
    if labels.dtype.kind not in "iuU":
        raise ValueError(f"{path}: 'labels' must be str or int (got {labels.dtype})")
    if labels.ndim != 1 or len(labels) != len(X):
        raise ValueError(f"{path}: 'labels' must have one entry per feature row ({len(labels)} vs {len(X)})")
    if not np.isfinite(X).all():
        raise ValueError(f"{path}: 'features' holds NaN or infinite values")
    if split is not None and (split.ndim != 1 or len(split) != len(X)):
        raise ValueError(f"{path}: 'split' must have one entry per feature row")
    return X.astype(np.float64), labels, (None if split is None else split.astype(str))
