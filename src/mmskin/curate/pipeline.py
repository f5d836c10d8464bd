"""`mmskin curate`: fill modality, cleaned caption, demographics, flags, duplicates and splits in place.

Reads ``DATASET/records.jsonl``, never deletes a record, rewrites it atomically (sorted keys, so a rerun on the
curated output is byte-identical) and writes ``DATASET/curate_info.json`` (versions, config, seed, weights hash,
counts, seconds). Image work (features, modality, annotation, faces, hashes) runs in a process pool; results are
gathered by record index, so the output does not depend on the number of workers.

Per record:
- ``caption_uncleaned`` keeps the text before cleaning (the build's per-panel caption), ``caption`` its cleaned
  form (``mmskin.curate.text.clean_caption``); demographics come from the cleaned caption.
- ``modality``, ``modality_score``, ``modality_source`` ("model" or "human"), ``modality_evidence``
  ({"image": {class: p}, "caption_cues": [...], "fused": {...}}); a record corrected by a human keeps its modality
  on later runs.
- ``flags`` (curate's own are recomputed each run, others kept) with ``flag_reasons`` {flag: short reason}:
  ``annotated``, ``sensitive``, ``low_resolution``, ``non_dermatology``, ``no_caption``, ``duplicate``,
  ``review``, ``unreadable_image``.
- ``duplicate_of``, ``split``.

    >>> from mmskin.curate.pipeline import CurateConfig, curate
    >>> summary = curate(Path("data/derm"), CurateConfig(workers=2, seed=0))
    >>> print(summary.line())
"""

from __future__ import annotations

import csv
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..records import (
    MODALITIES,
    RecordError,
    atomic_write_bytes,
    read_records,
    resolve_in_root,
    sha256_file,
    write_jsonl,
)

CURATE_FLAGS = (
    "annotated",
    "sensitive",
    "low_resolution",
    "non_dermatology",
    "no_caption",
    "duplicate",
    "review",
    "unreadable_image",
)


def _config_defaults() -> dict[str, Any]:
    import yaml

    from .modality import data_path

    with open(data_path("config.yaml"), encoding="utf-8") as f:
        return yaml.safe_load(f)


@dataclass
class CurateConfig:
    workers: int = 1  # worker processes for the image work (0 = all cores)
    seed: int = 0  # splits
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)  # train, val, test
    review_below: float = 0.75  # fused modality probability under this -> flag review
    cue_cap: float = 6.0  # most log-odds the caption may add to one class
    min_side: int = 150  # px; shorter side below this -> flag low_resolution
    face_min_rel: float = 0.06  # faces smaller than this share of the shorter side are ignored
    face_min_px: int = 24
    face_min_neighbors: int = 6
    phash_max: int = 6  # near-duplicates: hashes this close are the same picture (Hamming distance, 64 bits)
    dhash_max: int = 10
    candidate_phash_max: int = 20  # ... this close: verified by aligned thumbnails
    candidate_dhash_max: int = 26
    min_similarity: float = 0.72
    weights: str | None = None  # modality weights npz (default: the shipped one)

    @classmethod
    def from_defaults(cls, **overrides: Any) -> CurateConfig:
        d = _config_defaults()
        base = {
            "review_below": d["modality"]["review_below"],
            "cue_cap": d["modality"]["cue_cap"],
            "min_side": d["low_resolution"]["min_side"],
            "face_min_rel": d["sensitive"]["face_min_rel"],
            "face_min_px": d["sensitive"]["face_min_px"],
            "face_min_neighbors": d["sensitive"]["face_min_neighbors"],
            **{k: d["duplicates"][k] for k in ("phash_max", "dhash_max", "candidate_phash_max")},
            **{k: d["duplicates"][k] for k in ("candidate_dhash_max", "min_similarity")},
        }
        base.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**base)


@dataclass
class CurateSummary:
    records: int = 0
    modalities: Counter = field(default_factory=Counter)
    flags: Counter = field(default_factory=Counter)
    duplicates: int = 0
    errors: int = 0
    corrections_applied: int = 0
    seconds: float = 0.0

    def line(self) -> str:
        mods = ", ".join(f"{m} {self.modalities.get(m, 0)}" for m in MODALITIES)
        fl = ", ".join(f"{k} {v}" for k, v in sorted(self.flags.items())) or "none"
        corr = f", {self.corrections_applied} corrections" if self.corrections_applied else ""
        return (
            f"curated {self.records} records ({mods}); flags: {fl}; {self.duplicates} duplicates{corr}; "
            f"{self.errors} errors; {self.seconds:.1f} s"
        )


# ---------------------------------------------------------------- worker side


_WORKER: dict[str, Any] = {}


def _init_worker(weights: str | None, cue_cap: float) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from .modality import ModalityModel

    _WORKER["model"] = ModalityModel.load(Path(weights) if weights else None, cue_cap=cue_cap)


def _image_task(task: tuple[int, str, str, str | None, dict[str, Any]]) -> tuple[int, dict[str, Any]]:
    """Everything that needs the pixels of one record; returns plain JSON-able values."""
    idx, path, caption, human_modality, cfg = task
    from .dedupe import image_hashes, thumbnail
    from .features import UnreadableImage, load_image
    from .filters import annotation_cues, detect_faces

    model = _WORKER["model"]
    try:
        rgb = load_image(path)
    except UnreadableImage as e:
        import numpy as np

        res = model.fuse(np.zeros(4), caption)  # uniform image prior: the caption alone decides
        return idx, {"error": str(e), "modality": res.__dict__}
    except Exception as e:  # noqa: BLE001 - any decoder failure is one bad record, not a failed run
        import numpy as np

        res = model.fuse(np.zeros(4), caption)
        return idx, {
            "error": f"cannot read image ({type(e).__name__}: {str(e)[:80]})",
            "modality": res.__dict__,
        }
    res = model.predict(rgb, caption)
    modality = human_modality or res.modality
    faces = []
    if modality in ("clinical", "other"):
        faces = detect_faces(rgb, cfg["face_min_rel"], cfg["face_min_px"], cfg["face_min_neighbors"])
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


# ---------------------------------------------------------------- corrections


def read_corrections(
    path: Path, known_ids: set[str], on_error: Callable[[str], None]
) -> tuple[dict[str, tuple[str, int]], int]:
    """{record id: (modality, line number)} from an ``id,modality`` CSV, and the number of bad lines (each
    reported as ``FILE:LINE: reason``; the good lines still apply)."""
    out: dict[str, tuple[str, int]] = {}
    bad = 0
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        on_error(f"error: {path}: cannot read corrections ({type(e).__name__}: {e})")
        return {}, 1
    lines = text.splitlines()
    try:
        rows = list(csv.reader(lines, strict=True))
    except csv.Error as e:
        on_error(f"error: {path}: malformed CSV ({e})")
        return {}, 1
    if not rows or [c.strip().lower() for c in rows[0][:2]] != ["id", "modality"]:
        on_error(f"error: {path}:1: header must be 'id,modality'")
        return {}, 1
    for n, row in enumerate(rows[1:], 2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) < 2:
            on_error(f"error: {path}:{n}: expected 'id,modality', got {','.join(row)!r}")
            bad += 1
            continue
        rid, mod = row[0].strip(), row[1].strip().lower()
        if rid not in known_ids:
            on_error(f"error: {path}:{n}: unknown record id {rid!r}")
            bad += 1
        elif mod not in MODALITIES:
            on_error(f"error: {path}:{n}: modality {row[1].strip()!r} is not one of {', '.join(MODALITIES)}")
            bad += 1
        else:
            out[rid] = (mod, n)
    return out, bad


# ---------------------------------------------------------------- the run


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _versions() -> dict[str, str]:
    import cv2
    import numpy
    import yaml

    return {
        "mmskin": __version__,
        "numpy": numpy.__version__,
        "opencv": cv2.__version__,
        "pyyaml": yaml.__version__,
    }


def curate(
    dataset: Path,
    cfg: CurateConfig | None = None,
    corrections: Path | None = None,
    progress: bool = False,
    on_error: Callable[[str], None] = _stderr,
) -> CurateSummary:
    """Curate ``dataset`` in place; returns the summary (``errors`` > 0 means the exit status is 1)."""
    from .demographics import extract_demographics
    from .modality import WEIGHTS_FILE, data_path
    from .splits import assign_splits
    from .text import clean_caption, intimate_regions

    t0 = time.time()
    cfg = cfg or CurateConfig.from_defaults()
    dataset = Path(dataset)
    summary = CurateSummary()
    rec_path = dataset / "records.jsonl"
    if not rec_path.is_file():
        on_error(f"error: {rec_path}: no records.jsonl (not a dataset folder)")
        summary.errors += 1
        return summary
    try:
        records = list(read_records(rec_path))
    except (RecordError, UnicodeDecodeError, OSError) as e:
        on_error(f"error: {e}" if isinstance(e, RecordError) else f"error: {rec_path}: {e}")
        summary.errors += 1
        return summary
    summary.records = len(records)

    corr: dict[str, tuple[str, int]] = {}
    corr_info = None
    if corrections is not None:
        corr, bad = read_corrections(Path(corrections), {r["id"] for r in records}, on_error)
        summary.errors += bad
        sha = sha256_file(corrections) if Path(corrections).is_file() else None
        corr_info = {"file": str(corrections), "sha256": sha, "applied": len(corr), "bad_lines": bad}

    # text: cheap, in this process
    tasks = []
    paths: list[str | None] = []
    for i, rec in enumerate(records):
        pre = rec.get("caption_uncleaned", rec.get("caption", ""))
        rec["caption_uncleaned"] = pre
        rec["caption"] = clean_caption(pre)
        d = extract_demographics(rec["caption"])
        rec["age"], rec["age_group"], rec["sex"], rec["demographics_evidence"] = (
            d.age,
            d.age_group,
            d.sex,
            d.evidence,
        )
        if rec["id"] in corr:
            mod, line = corr[rec["id"]]
            rec["modality"], rec["modality_source"] = mod, "human"
            rec["modality_correction"] = {"file": Path(corrections).name, "line": line}  # type: ignore[arg-type]
        human = rec["modality"] if rec.get("modality_source") == "human" else None
        try:
            path = str(resolve_in_root(dataset, rec["image"]))
        except RecordError as e:
            path = None
            on_error(f"error: {rec_path}: record {rec['id']}: {e}")
        paths.append(path)
        tasks.append((i, path or "", rec["caption"], human, asdict(cfg)))

    results: list[dict[str, Any] | None] = [None] * len(records)
    workers = cfg.workers or (os.cpu_count() or 1)
    with _Progress(progress, len(tasks)) as advance:
        if workers <= 1 or len(tasks) <= 1:
            _init_worker(cfg.weights, cfg.cue_cap)
            for t in tasks:
                i, r = _image_task(t)
                results[i] = r
                advance()
        else:
            with ProcessPoolExecutor(
                max_workers=min(workers, len(tasks)),
                initializer=_init_worker,
                initargs=(cfg.weights, cfg.cue_cap),
            ) as ex:
                for i, r in ex.map(_image_task, tasks, chunksize=4):
                    results[i] = r
                    advance()

    hashes: dict[str, tuple[int, int]] = {}
    pixels: dict[str, int] = {}
    aspects: dict[str, float] = {}
    thumbs: dict[str, Any] = {}
    for rec, res in zip(records, results):
        assert res is not None
        flags = [f for f in rec.get("flags", []) if f not in CURATE_FLAGS]
        reasons: dict[str, str] = {
            k: v for k, v in (rec.get("flag_reasons") or {}).items() if k not in CURATE_FLAGS
        }
        m = res["modality"]
        human = rec.get("modality_source") == "human"
        if human:
            rec["modality_score"] = 1.0
        else:
            rec["modality"], rec["modality_score"], rec["modality_source"] = (
                m["modality"],
                m["score"],
                "model",
            )
        rec["modality_evidence"] = {"image": m["image_probs"], "caption_cues": m["cues"], "fused": m["probs"]}
        if "error" in res:
            summary.errors += 1
            on_error(f"error: {rec_path}: record {rec['id']}: {rec['image']}: {res['error']}")
            reasons["unreadable_image"] = res["error"]
        else:
            rec["width"], rec["height"] = res["width"], res["height"]
            hashes[rec["id"]] = (res["phash"], res["dhash"])
            pixels[rec["id"]] = res["width"] * res["height"]
            aspects[rec["id"]] = res["width"] / res["height"]
            thumbs[rec["id"]] = res["thumb"]
            if res["annotation"]:
                reasons["annotated"] = "; ".join(res["annotation"].values())
            if min(res["width"], res["height"]) < cfg.min_side:
                reasons["low_resolution"] = (
                    f"shorter side {min(res['width'], res['height'])} px < {cfg.min_side}"
                )
            if res["faces"]:
                reasons["sensitive"] = (
                    f"{len(res['faces'])} face{'s' if len(res['faces']) > 1 else ''} detected"
                )
        if not human:
            imgp = m["image_probs"]
            top_img = max(imgp, key=imgp.get)
            if "error" in res:
                reasons["review"] = "image unreadable: modality from the caption alone"
            elif m["score"] < cfg.review_below:
                reasons["review"] = f"modality {m['modality']} at {m['score']:.2f} < {cfg.review_below}"
            elif top_img != m["modality"]:
                reasons["review"] = f"caption cues overrode the image ({top_img} {imgp[top_img]:.2f})"
        regions = intimate_regions(rec["caption"])
        if regions and rec["modality"] == "clinical":
            prev = reasons.get("sensitive")
            why = "caption names " + ", ".join(regions)
            reasons["sensitive"] = f"{prev}; {why}" if prev else why
        if rec["modality"] == "other":
            reasons["non_dermatology"] = "modality other (chart, drawing, radiology, ...)"
        if not rec["caption"].strip():
            reasons["no_caption"] = "empty caption after cleaning"
        rec["_flags"], rec["_reasons"] = flags, reasons

    dup = duplicate_groups_for(hashes, pixels, thumbs, aspects, cfg)
    for rec in records:
        rec["duplicate_of"] = dup.get(rec["id"])
        if rec["duplicate_of"]:
            rec["_reasons"]["duplicate"] = f"near-duplicate of {rec['duplicate_of']}"
        reasons = rec.pop("_reasons")
        flags = rec.pop("_flags")
        rec["flags"] = sorted(set(flags) | set(reasons))
        rec["flag_reasons"] = dict(sorted(reasons.items()))
    splits = assign_splits(records, seed=cfg.seed, ratios=tuple(cfg.ratios))
    for rec in records:
        rec["split"] = splits.get(rec["id"])
        summary.modalities[rec["modality"]] += 1
        summary.flags.update(rec["flags"])
    summary.duplicates = len(dup)
    summary.corrections_applied = len(corr)

    write_jsonl(rec_path, records)
    summary.seconds = time.time() - t0
    wpath = Path(cfg.weights) if cfg.weights else data_path(WEIGHTS_FILE)
    info = {
        "mmskin_version": __version__,
        "versions": _versions(),
        "config": {**asdict(cfg), "ratios": list(cfg.ratios)},
        "seed": cfg.seed,
        "modality_weights": {"file": wpath.name, "sha256": sha256_file(wpath)},
        "corrections": corr_info,
        "counts": {
            "records": summary.records,
            "modality": dict(sorted(summary.modalities.items())),
            "flags": dict(sorted(summary.flags.items())),
            "duplicates": summary.duplicates,
            "splits": dict(sorted(Counter(r["split"] for r in records if r["split"]).items())),
            "errors": summary.errors,
        },
        "seconds": round(summary.seconds, 2),
    }
    atomic_write_bytes(
        dataset / "curate_info.json", (json.dumps(info, indent=2, sort_keys=True) + "\n").encode()
    )
    return summary


def dedupe_thresholds(cfg: CurateConfig):
    from .dedupe import DedupeThresholds

    return DedupeThresholds(
        cfg.phash_max, cfg.dhash_max, cfg.candidate_phash_max, cfg.candidate_dhash_max, cfg.min_similarity
    )


def duplicate_groups_for(
    hashes: dict[str, tuple[int, int]],
    pixels: dict[str, int],
    thumbs: dict[str, Any],
    aspects: dict[str, float],
    cfg: CurateConfig,
) -> dict[str, str]:
    from .dedupe import duplicate_groups

    return duplicate_groups(hashes, pixels, thumbs, aspects, dedupe_thresholds(cfg))


class _Progress:
    """A rich progress bar (or nothing), used as ``with _Progress(on, total) as advance: advance()``."""

    def __init__(self, enabled: bool, total: int):
        self.enabled, self.total, self.p = enabled and total > 0, total, None

    def __enter__(self) -> Callable[[], None]:
        if not self.enabled:
            return lambda: None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        self.p = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
        )
        self.p.start()
        task = self.p.add_task("curate", total=self.total)
        return lambda: self.p.advance(task)  # type: ignore[union-attr]

    def __exit__(self, *exc: object) -> None:
        if self.p is not None:
            self.p.stop()
