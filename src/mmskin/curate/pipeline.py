"""`mmskin curate`: fill modality, cleaned caption, demographics, flags, duplicates and splits in place.

Reads ``DATASET/records.jsonl``, never deletes a record, rewrites it atomically (sorted keys, so a rerun on the
curated output is byte-identical) and writes ``DATASET/curate_info.json`` (the provenance block, config, seed,
weights hash, corrections, counts, seconds). :func:`run` is one visible chain of steps:

1. :func:`clean_text`: ``caption_uncleaned`` keeps the build's per-panel caption, ``caption`` its cleaned form
   (:func:`mmskin.curate.text.clean_caption`), age/sex from the cleaned caption; then human corrections
   (:mod:`mmskin.curate.corrections`: this run's ``--corrections`` CSV and every earlier one, kept in
   ``DATASET/corrections.jsonl``, where ``mmskin review --serve`` saves) fix a record's modality and caption
   (``modality_source``/``caption_source: human``); after step 4 a curator's exclude/include sets ``excluded`` or
   ``included`` over curate's flags.
2. the image pass (:mod:`mmskin.curate.image_pass`, a process pool): modality (image + caption cues), annotation
   cues, faces, hashes; :func:`apply_image_results` writes ``modality``, ``modality_score``, ``modality_source``,
   ``modality_evidence`` and the decoded size.
3. :func:`mmskin.curate.flags.decide_flags`, a pure function of the record, its evidence and the config:
   ``{flag: reason}`` for each record (the flag table is ``data/flags.yaml``).
4. :func:`find_duplicates` (near-duplicate groups across books) and :func:`set_flags` (``duplicate_of``,
   ``flags``, ``flag_reasons``; flags of other stages are kept).
5. :func:`set_splits` (train/val/test grouped by book and duplicate group).
6. :func:`write_curate_info`.

An unreadable image, an image path outside the dataset or a bad corrections line is one problem; the record is
kept and the batch goes on. The run holds the dataset's writer lock (:mod:`mmskin.lock`): a build or another
curate of the same dataset waits for it.

    >>> from mmskin.curate.pipeline import CurateConfig, run
    >>> result = run(CurateConfig(dataset=Path("data/derm"), workers=2, seed=0))
    >>> print(result.summary)
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import ConfigError, option
from ..engine import ENGINE_FIELDS, check_engine, engine_option, ray_address_option
from ..lock import dataset_lock
from ..provenance import provenance, write_info
from ..records import MODALITIES, RecordError, read_records, resolve_in_root, sha256_file, write_jsonl
from ..resources import load_yaml
from ..stage import SILENT, Problems, Reporter, StageError, StageResult
from .corrections import Corrections, Store, human_flags, read_corrections, sync_store
from .flags import Evidence, decide_flags, duplicate_flag, merge_flags

# the packages whose versions shape curate's output (whichever OpenCV wheel is installed is recorded)
PACKAGES = ("numpy", "opencv-python", "opencv-python-headless", "pyyaml")


def _threshold(section: str, key: str, help: str) -> Any:
    """A threshold whose default is ``data/curate/config.yaml``'s ``section.key`` (not a command-line option)."""
    return option(load_yaml("curate", "config.yaml")[section][key], help, cli=False)


@dataclass
class CurateConfig:
    """Settings of ``mmskin curate``; thresholds default to ``data/curate/config.yaml``."""

    dataset: Path | None = option(
        None,
        "dataset folder made by mmskin build (records.jsonl is curated in place)",
        cli=False,
        required=True,
    )
    corrections: Path | None = option(
        None,
        "human corrections to add to DATASET/corrections.jsonl (CSV: id,modality[,exclude,caption])",
        metavar="CSV",
    )
    workers: int = option(0, "worker processes for image work; 0 = all cores")
    seed: int = option(0, "seed of the train/val/test split")
    ratios: tuple[float, float, float] = option(
        (0.8, 0.1, 0.1), "train, val, test shares of the split (--split-ratios T,V,E)", cli=False
    )
    review_below: float = _threshold("modality", "review_below", "fused probability under this: flag review")
    cue_cap: float = _threshold("modality", "cue_cap", "most log-odds the caption may add to one class")
    figure_weight: float = _threshold("modality", "figure_weight", "weight of the other panels of a figure")
    min_side: int = _threshold("low_resolution", "min_side", "px; a shorter side under this: low_resolution")
    max_marks: int = _threshold("annotated", "max_marks", "printed marks inside a picture up to this: marked")
    face_min_rel: float = _threshold(
        "sensitive", "face_min_rel", "faces under this share of the shorter side: ignored"
    )
    face_min_px: int = _threshold("sensitive", "face_min_px", "faces under this many pixels: ignored")
    face_min_neighbors: int = _threshold("sensitive", "face_min_neighbors", "detections a face needs")
    phash_max: int = _threshold("duplicates", "phash_max", "pHash distance (of 64 bits): the same picture")
    dhash_max: int = _threshold("duplicates", "dhash_max", "dHash distance: the same picture (with phash)")
    candidate_phash_max: int = _threshold(
        "duplicates", "candidate_phash_max", "pHash distance of a candidate"
    )
    candidate_dhash_max: int = _threshold(
        "duplicates", "candidate_dhash_max", "dHash distance of a candidate"
    )
    min_similarity: float = _threshold(
        "duplicates", "min_similarity", "thumbnail correlation: a candidate is it"
    )
    weights: str | None = option(None, "modality weights npz (default: the shipped one)", cli=False)
    wait: bool = option(
        True,
        "when another mmskin command is writing the dataset, wait for it (--no-wait: stop at once, exit 1)",
    )
    engine: str = engine_option("the image pass")
    ray_address: str | None = ray_address_option()

    @classmethod
    def from_defaults(cls, **overrides: Any) -> CurateConfig:
        """The config with ``overrides`` (None values leave the default)."""
        return cls(**{k: v for k, v in overrides.items() if v is not None})

    def settings(self) -> dict[str, Any]:
        """Every setting but the inputs (the dataset and corrections files), as curate_info.json records it."""
        skip = ("dataset", "corrections", "wait", *ENGINE_FIELDS)  # where it ran changes nothing
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in skip}


def dedupe_thresholds(cfg: CurateConfig):
    from .dedupe import DedupeThresholds

    return DedupeThresholds(
        cfg.phash_max, cfg.dhash_max, cfg.candidate_phash_max, cfg.candidate_dhash_max, cfg.min_similarity
    )


# ---------------------------------------------------------------- the run


def run(config: CurateConfig, reporter: Reporter | None = None) -> StageResult:
    """Curate ``config.dataset`` in place, holding its writer lock. StageError when its records cannot be read at
    all (or, with ``wait`` off, when another mmskin command is writing it)."""
    if config.dataset is None:
        raise ConfigError("curate: no dataset folder given")
    check_engine(config.engine)
    dataset = Path(config.dataset)
    if not (dataset / "records.jsonl").is_file():
        read_dataset(dataset)  # the one-line error, before a lock file is made in a folder that is no dataset
    with dataset_lock(dataset, "mmskin curate", reporter, wait=config.wait):
        return _curate(config, dataset, reporter)


def _curate(config: CurateConfig, dataset: Path, reporter: Reporter | None) -> StageResult:
    from .image_pass import image_pass
    from .modality import apply_figure_context
    from .text import intimate_regions

    t0 = time.time()
    problems = Problems(reporter)
    rec_path, records = read_dataset(dataset)
    corrections = None
    if config.corrections is not None:
        corrections = read_corrections(Path(config.corrections), {r["id"] for r in records}, problems)
    store = sync_store(dataset, records, corrections, problems)

    clean_text(records)
    restored = apply_corrections(records, store, set(corrections.applied) if corrections else set())
    paths = locate_images(dataset, rec_path, records, problems)
    model = modality_model(config, problems)
    images = image_pass(records, paths, config, reporter or SILENT)
    apply_figure_context(model, records, images, config.figure_weight)
    decided = []
    for rec, image, path in zip(records, images, paths):
        apply_image_results(rec, image)
        if "error" in image and path is not None:  # a refused path was reported by locate_images
            problems.add(f"{rec_path}: record {rec['id']}: {rec['image']}", image["error"])
        evidence = Evidence.of(image, intimate_regions(rec["caption"]))
        decided.append(decide_flags(rec, evidence, config))
    duplicates = find_duplicates(records, images, config, paths)
    set_flags(records, decided, duplicates)
    for rec in records:  # a curator's exclude / include, over curate's own flags
        if (human := human_flags(rec, store)) is not None:
            rec["flags"], rec["flag_reasons"] = human
    set_splits(records, config)

    write_jsonl(rec_path, records)
    counts = count(records, duplicates, corrections, problems)
    counts["corrections_restored"] = restored
    seconds = time.time() - t0
    info = write_curate_info(config, counts, corrections, seconds)
    return StageResult(
        "curate", counts, problems, summary_line(counts, seconds), {"records": rec_path, "info": info}
    )


def read_dataset(dataset: Path) -> tuple[Path, list[dict[str, Any]]]:
    """``(records.jsonl path, its records)``; StageError when the folder has none or they are unreadable."""
    rec_path = dataset / "records.jsonl"
    if not rec_path.is_file():
        raise StageError(rec_path, "no records.jsonl (not a dataset folder)")
    try:
        return rec_path, list(read_records(rec_path))
    except RecordError as e:
        raise StageError("", str(e)) from None  # the message names the file and line
    except (UnicodeDecodeError, OSError) as e:
        raise StageError(rec_path, str(e)) from None


def clean_text(records: list[dict[str, Any]]) -> None:
    """Cleaned caption (the build's text kept in ``caption_uncleaned``) and the age/sex it states."""
    from .demographics import extract_demographics
    from .text import clean_caption

    for rec in records:
        pre = rec.get("caption_uncleaned", rec.get("caption", ""))
        rec["caption_uncleaned"] = pre
        rec["caption"] = clean_caption(pre)
        d = extract_demographics(rec["caption"])
        rec["age"], rec["age_group"], rec["sex"] = d.age, d.age_group, d.sex
        rec["demographics_evidence"] = d.evidence


def apply_corrections(records: list[dict[str, Any]], store: Store, fresh: set[str] = frozenset()) -> int:
    """A human's modality and caption for each corrected record (``modality_source``/``caption_source: human``,
    file and line noted), from the corrections store; a human modality whose line was deleted from the store goes
    back to the model (its caption to the cleaned one). Returns how many records had lost an earlier modality
    correction (``fresh``: this run's ids)."""
    restored = 0
    for rec in records:
        fix = store.entries.get(rec["id"], {})
        _human_caption(rec, fix.get("caption"))
        if "modality" not in fix:
            if store.authoritative and rec.get("modality_source") == "human":
                rec["modality_source"] = None  # undone: the image pass sets the model's modality
                rec.pop("modality_correction", None)
            continue
        lost = rec.get("modality_source") != "human" or rec.get("modality") != fix["modality"]
        restored += lost and rec["id"] not in fresh
        rec["modality"], rec["modality_source"] = fix["modality"], "human"
        rec["modality_correction"] = {k: fix[k] for k in ("file", "line") if k in fix}
    return restored


def _human_caption(rec: dict[str, Any], caption: str | None) -> None:
    from .demographics import extract_demographics

    rec.pop("caption_source", None)
    if caption is None:
        return
    rec["caption"], rec["caption_source"] = caption, "human"
    d = extract_demographics(caption)
    rec["age"], rec["age_group"], rec["sex"] = d.age, d.age_group, d.sex
    rec["demographics_evidence"] = d.evidence


def locate_images(
    dataset: Path, rec_path: Path, records: list[dict[str, Any]], problems: Problems
) -> list[str | None]:
    """Absolute image path of each record; None (and a problem) for a path outside the dataset."""
    paths: list[str | None] = []
    for rec in records:
        try:
            paths.append(str(resolve_in_root(dataset, rec["image"])))
        except RecordError as e:
            paths.append(None)
            problems.add(f"{rec_path}: record {rec['id']}", str(e))
    return paths


def modality_model(config: CurateConfig, problems: Problems):
    """The modality model; a missing or corrupt weights file is one problem and captions alone decide."""
    from .modality import ModalityModel, weights_path

    model, why = ModalityModel.load_checked(
        Path(config.weights) if config.weights else None, cue_cap=config.cue_cap
    )
    if why:
        problems.add(weights_path(config.weights), why)
    return model


def apply_image_results(rec: dict[str, Any], image: dict[str, Any]) -> None:
    """The model's modality (unless a human set it), its evidence, and the decoded image size."""
    m = image["modality"]
    if rec.get("modality_source") == "human":
        rec["modality_score"] = 1.0
    else:
        rec["modality"], rec["modality_score"], rec["modality_source"] = m["modality"], m["score"], "model"
    rec["modality_evidence"] = {"image": m["image_probs"], "caption_cues": m["cues"], "fused": m["probs"]}
    if m.get("figure"):  # the prior from the figure's other panels
        rec["modality_evidence"]["figure"] = m["figure"]
    if "error" not in image:
        rec["width"], rec["height"] = image["width"], image["height"]


def find_duplicates(
    records: list[dict[str, Any]],
    images: list[dict[str, Any]],
    config: CurateConfig,
    paths: list[str | None] | None = None,
) -> dict[str, str]:
    """{record id: id of the kept copy} for every near-duplicate among the readable images (candidate pairs are
    checked again on their pixels when ``paths`` are given: look-alike charts are not duplicates)."""
    from .dedupe import detail_loader, duplicate_groups

    hashes: dict[str, tuple[int, int]] = {}
    pixels: dict[str, int] = {}
    aspects: dict[str, float] = {}
    thumbs: dict[str, Any] = {}
    for rec, res in zip(records, images):
        if "error" in res:
            continue
        hashes[rec["id"]] = (res["phash"], res["dhash"])
        pixels[rec["id"]] = res["width"] * res["height"]
        aspects[rec["id"]] = res["width"] / res["height"]
        thumbs[rec["id"]] = res["thumb"]
    detail = detail_loader({r["id"]: p for r, p in zip(records, paths)}) if paths else None
    return duplicate_groups(hashes, pixels, thumbs, aspects, dedupe_thresholds(config), detail)


def set_flags(
    records: list[dict[str, Any]], decided: list[dict[str, str]], duplicates: dict[str, str]
) -> None:
    """``duplicate_of``, ``flags`` and ``flag_reasons`` of every record."""
    for rec, reasons in zip(records, decided):
        rec["duplicate_of"] = duplicates.get(rec["id"])
        rec["flags"], rec["flag_reasons"] = merge_flags(
            rec, {**reasons, **duplicate_flag(rec["duplicate_of"])}
        )


def set_splits(records: list[dict[str, Any]], config: CurateConfig) -> None:
    from .splits import assign_splits

    splits = assign_splits(records, seed=config.seed, ratios=tuple(config.ratios))
    for rec in records:
        rec["split"] = splits.get(rec["id"])


# ---------------------------------------------------------------- counts, summary line, curate_info.json

INFO_COUNTS = (
    "records",
    "modality",
    "flags",
    "duplicates",
    "splits",
    "errors",
)  # the counts curate_info keeps


def count(
    records: list[dict[str, Any]],
    duplicates: dict[str, str],
    corrections: Corrections | None,
    problems: list[Any],
) -> dict[str, Any]:
    def tally(values: Any) -> dict[str, int]:
        return dict(sorted(Counter(values).items()))

    return {
        "records": len(records),
        "modality": tally(r["modality"] for r in records),
        "flags": tally(f for r in records for f in r["flags"]),
        "duplicates": len(duplicates),
        "splits": tally(r["split"] for r in records if r["split"]),
        "corrections": corrections.records() if corrections else 0,
        "errors": len(problems),
    }


def summary_line(counts: dict[str, Any], seconds: float) -> str:
    mods = ", ".join(f"{m} {counts['modality'].get(m, 0)}" for m in MODALITIES)
    fl = ", ".join(f"{k} {v}" for k, v in sorted(counts["flags"].items())) or "none"
    corr = f", {counts['corrections']} corrections" if counts["corrections"] else ""
    if counts.get("corrections_restored"):
        corr += f", {counts['corrections_restored']} earlier corrections restored from corrections.jsonl"
    return (
        f"curated {counts['records']} records ({mods}); flags: {fl}; {counts['duplicates']} duplicates{corr}; "
        f"{counts['errors']} errors; {seconds:.1f} s"
    )


def write_curate_info(
    config: CurateConfig, counts: dict[str, Any], corrections: Corrections | None, seconds: float
) -> Path:
    from .modality import weights_path

    wpath = weights_path(config.weights)
    settings = config.settings()
    info = {
        "provenance": provenance("curate", config=settings, packages=PACKAGES, seed=config.seed),
        "config": settings,
        "seed": config.seed,
        "modality_weights": {"file": wpath.name, "sha256": sha256_file(wpath) if wpath.is_file() else None},
        "corrections": corrections.info() if corrections else None,
        "counts": {k: counts[k] for k in INFO_COUNTS},
        "seconds": round(seconds, 2),
    }
    return write_info(Path(config.dataset or ".") / "curate_info.json", info, indent=2)
