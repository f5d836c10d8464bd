"""The image pass of curate: everything that needs a record's pixels, run in a process pool.

For each record: decode the image, the modality model (image features fused with the caption's cues; a human
correction keeps its modality), annotation cues, faces (in clinical and other pictures), perceptual hashes and
the aligned thumbnail that near-duplicate search compares. Results are plain JSON-able dicts gathered by record
index, so the output does not depend on the number of workers; an unreadable image gives ``{"error": reason,
"modality": ...}`` (the caption alone decides its modality).

    >>> from mmskin.curate.image_pass import image_pass
    >>> results = image_pass(records, paths, config, reporter)   # one dict per record, in record order
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..stage import SILENT, Reporter, StageError, reason_of
from ..workers import process_pool

if TYPE_CHECKING:
    from .pipeline import CurateConfig

# (record index, image path or "", cleaned caption, human modality or None, face detector settings)
ImageTask = tuple[int, str, str, str | None, dict[str, Any]]

_WORKER: dict[str, Any] = {}
# images per Ray task: enough to hide a task's overhead, small enough to spread a small dataset
RAY_BATCH = 16


def _init_worker(weights: str | None, cue_cap: float) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from .modality import ModalityModel

    # unusable weights: captions only (the main process reports the file and the reason once)
    _WORKER["model"] = ModalityModel.load_checked(Path(weights) if weights else None, cue_cap=cue_cap)[0]


def image_task(task: ImageTask) -> tuple[int, dict[str, Any]]:
    """Everything that needs the pixels of one record; returns plain JSON-able values."""
    idx, path, caption, human_modality, faces_cfg = task
    from .dedupe import image_hashes, thumbnail
    from .features import UnreadableImage, load_image
    from .filters import annotation_cues, detect_faces

    model = _WORKER["model"]
    try:
        rgb = load_image(path)
    except UnreadableImage as e:
        return idx, _unreadable(model, caption, str(e))
    except Exception as e:  # noqa: BLE001 - any decoder failure is one bad record, not a failed run
        return idx, _unreadable(model, caption, f"cannot read image ({type(e).__name__}: {str(e)[:80]})")
    res = model.predict(rgb, caption)
    modality = human_modality or res.modality
    faces = []
    if modality in ("clinical", "other"):
        faces = detect_faces(
            rgb, faces_cfg["face_min_rel"], faces_cfg["face_min_px"], faces_cfg["face_min_neighbors"]
        )
    ph, dh = image_hashes(rgb)
    h, w = rgb.shape[:2]
    return idx, {
        "modality": res.__dict__,
        "annotation": annotation_cues(rgb),
        "faces": [list(b) for b in faces],
        "phash": ph,
        "dhash": dh,
        "thumb": thumbnail(rgb),
        "width": int(w),
        "height": int(h),
    }


def _unreadable(model: Any, caption: str, reason: str) -> dict[str, Any]:
    import numpy as np

    res = model.fuse(np.zeros(4), caption)  # uniform image prior: the caption alone decides
    return {"error": reason, "modality": res.__dict__}


def image_tasks(
    records: list[dict[str, Any]], paths: list[str | None], config: CurateConfig
) -> list[ImageTask]:
    faces_cfg = {
        "face_min_rel": config.face_min_rel,
        "face_min_px": config.face_min_px,
        "face_min_neighbors": config.face_min_neighbors,
    }
    return [
        (
            i,
            path or "",
            rec["caption"],
            rec["modality"] if rec.get("modality_source") == "human" else None,
            faces_cfg,
        )
        for i, (rec, path) in enumerate(zip(records, paths))
    ]


def image_pass(
    records: list[dict[str, Any]],
    paths: list[str | None],
    config: CurateConfig,
    reporter: Reporter = SILENT,
) -> list[dict[str, Any]]:
    """The image results of every record (None path: the record's image could not be located), in order."""
    tasks = image_tasks(records, paths, config)
    results: list[dict[str, Any]] = [{}] * len(tasks)
    workers = config.workers or (os.cpu_count() or 1)
    with reporter.progress(len(tasks), "curate") as advance:
        if config.engine == "ray":
            for i, r in _ray_pass(tasks, config, advance):
                results[i] = r
        elif workers <= 1 or len(tasks) <= 1:
            _init_worker(config.weights, config.cue_cap)
            for t in tasks:
                i, r = image_task(t)
                results[i] = r
                advance(1)
        else:
            with process_pool(  # workers die with this process, kill -9 included
                min(workers, len(tasks)), _init_worker, (config.weights, config.cue_cap)
            ) as ex:
                for i, r in ex.map(image_task, tasks, chunksize=4):
                    results[i] = r
                    advance(1)
    return results


def image_batch(
    tasks: list[ImageTask], weights: str | None, cue_cap: float
) -> list[tuple[int, dict[str, Any]]]:
    """:func:`image_task` of each task, in a process that may have served other batches (a Ray worker): the
    modality model is loaded once per process and settings."""
    if _WORKER.get("settings") != (weights, cue_cap):
        _init_worker(weights, cue_cap)
        _WORKER["settings"] = (weights, cue_cap)
    return [image_task(t) for t in tasks]


def _ray_pass(
    tasks: list[ImageTask], config: CurateConfig, advance: Callable[[int], None]
) -> Iterator[tuple[int, dict[str, Any]]]:
    """The image pass as Ray tasks of :data:`RAY_BATCH` images each (absolute paths: workers on other nodes
    share the filesystem, not our working folder)."""
    from ..engine import RayEngine

    weights = os.path.abspath(config.weights) if config.weights else None
    tasks = [(t[0], os.path.abspath(t[1]) if t[1] else "", *t[2:]) for t in tasks]
    batches = [(tasks[i : i + RAY_BATCH],) for i in range(0, len(tasks), RAY_BATCH)]
    with RayEngine(config.ray_address, config.workers) as eng:
        for (batch,), out, error in eng.tasks(
            image_batch, batches, weights, config.cue_cap, slots=config.workers
        ):
            if error is not None:
                raise StageError(
                    "curate image pass", f"a batch of {len(batch)} images failed: {reason_of(error)}"
                )
            yield from out
            advance(len(batch))
