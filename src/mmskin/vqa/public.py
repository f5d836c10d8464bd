"""Public dermatology classification datasets as VQA samples (SkinVL-Pub's training mix), ``mmskin convert-public``.

Reads a dataset's official metadata CSV (layout described in its taxonomy YAML, ``mmskin/data/taxonomies``), MM-Skin's
test CSV format (``image,atributes,categories``), or an image folder with one sub-folder per class (Dermnet,
Patch16) (:mod:`mmskin.vqa.metadata`), and asks per image: the diagnosis (open), the diagnosis from the class list
(MM-Skin's zero-shot prompt is one of the phrasings) and benign vs malignant where the taxonomy defines it.
Phrasings are drawn per image from a generator seeded by (seed, dataset, image), so the output does not depend on
row order.

    mmskin convert-public HAM10000 HAM10000_metadata.csv --images ham10000/ --out ham_vqa.jsonl
    >>> from mmskin.vqa.public import ConvertConfig, run
    >>> result = run(ConvertConfig("ham10000", Path("HAM10000_metadata.csv"), images=Path("ham10000/"),
    ...                            out=Path("ham_vqa.jsonl")))

The run: read the labelled images -> find each image (left out: excluded, missing, duplicate, unreadable) ->
make the samples -> write OUT (JSONL samples or LLaVA JSON) -> write ``OUT.info.json``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from ..config import ConfigError, option
from ..provenance import provenance, write_info
from ..records import RecordError, atomic_write_bytes, write_jsonl
from ..resources import load_yaml
from ..stage import SILENT, Problems, Reporter, StageResult
from ..taxonomy import Taxonomy, load_taxonomy
from .metadata import (
    ConvertError,
    ConvertTally,
    ImageFinder,
    PublicItem,
    _cell,
    read_csv,
    read_items,
    resolve_label,
    verify_image,
)
from .samples import add_missing, llava_item, split_problems, tally_counts

__all__ = ["ConvertConfig", "ConvertError", "make_samples", "read_items", "resolve_label", "run"]


@dataclass
class ConvertConfig:
    """Settings of ``mmskin convert-public`` (``name`` and ``metadata`` are its positional arguments)."""

    name: str = field(metadata={"help": "taxonomy name or YAML file", "cli": False})
    metadata: Path = field(
        metadata={"help": "official metadata CSV, MM-Skin test CSV, or class folders", "cli": False}
    )
    images: Path = field(
        metadata={"help": "image folder; output paths are relative to it", "metavar": "DIR", "required": True}
    )
    out: Path = field(
        metadata={
            "help": "output file (.jsonl for vqa, .json for llava)",
            "metavar": "PATH",
            "required": True,
        }
    )
    format: str = option("vqa", "output format", choices=("vqa", "llava"))
    seed: int = option(0, "seed of the phrasing choices")
    join: Path | None = option(
        None, "second metadata CSV merged on the taxonomy's key (SCIN labels)", metavar="CSV"
    )
    exclude: list[Path] = option(
        [],
        "leave out images listed in this CSV (e.g. MM-Skin's test split, to build a training set); repeatable",
        metavar="CSV",
    )
    max_choices: int = option(0, "cap the class list of choice questions (0: all classes)")
    verify_images: bool = option(False, "open every image and refuse unreadable ones")
    allow_missing: bool = option(False, "missing images do not make the exit status 1")

    def __post_init__(self) -> None:
        self.metadata, self.images, self.out = Path(self.metadata), Path(self.images), Path(self.out)
        self.join = Path(self.join) if self.join else None
        self.exclude = [Path(x) for x in self.exclude]
        if self.format not in ("vqa", "llava"):
            raise ConfigError(f"--format must be vqa or llava (got {self.format!r})")


# --- questions -----------------------------------------------------------------------------------------------
@functools.cache
def question_templates() -> dict[str, Any]:
    return load_yaml("taxonomies", "_questions.yaml")


def sample_id(generator: str, record_id: str, question_type: str, question: str) -> str:
    return hashlib.sha256(f"{generator}|{record_id}|{question_type}|{question}".encode()).hexdigest()[:20]


def make_samples(
    tax: Taxonomy,
    item: PublicItem,
    image: str,
    seed: int,
    label_pool: list[str] | None = None,
    max_choices: int = 0,
) -> list[dict[str, Any]]:
    """The VQA samples of one labelled image. ``label_pool``: candidate labels of an open-vocabulary taxonomy;
    ``max_choices`` > 0 caps the class list of the choice question (the true class plus sampled distractors)."""
    tpl = question_templates()
    rng = random.Random(f"{seed}|{tax.name}|{item.record_id}")
    gen = f"public:{tax.name}"
    label = item.label
    out: list[tuple[str, str, str]] = []
    if "diagnosis" in tax.questions:
        qs = tpl["diagnosis"]["questions"]
        q = rng.choice(qs.get(tax.modality) or qs["default"])
        out.append(("diagnosis", q, rng.choice(tpl["diagnosis"]["answers"]).format(label=label)))
    if "diagnosis_choice" in tax.questions:
        names = tax.class_names()
        if tax.open_vocabulary or label not in names:
            pool = sorted(set(label_pool or []) - {label})
            k = min(len(pool), (max_choices or 6) - 1)
            canonical = sorted([label, *rng.sample(pool, k)]) if k > 0 else []
        elif max_choices and len(names) > max_choices:
            keep = {label, *rng.sample([n for n in names if n != label], max_choices - 1)}
            canonical = [n for n in names if n in keep]
        else:
            canonical = names
        if len(canonical) >= 2:
            phr = rng.choice(tpl["diagnosis_choice"]["questions"])
            shuffled = canonical[:]
            rng.shuffle(shuffled)
            q = phr.format(prompt=tax.format_prompt(canonical), classes=", ".join(shuffled))
            out.append(
                ("diagnosis_choice", q, rng.choice(tpl["diagnosis_choice"]["answers"]).format(label=label))
            )
    if "benign_malignant" in tax.questions and label in tax.class_names():
        mal = tax.get(label).malignant
        if mal is not None:
            bm = rng.choice(tpl["benign_malignant"])
            out.append(("benign_malignant", bm["question"], bm["malignant" if mal else "benign"]))
    samples = []
    for qtype, q, a in out:
        s = {
            "id": sample_id(gen, item.record_id, qtype, q),
            "record_id": item.record_id,
            "image": image,
            "question": q,
            "answer": a,
            "question_type": qtype,
            "generator": gen,
            "label": label,
            "modality": tax.modality,
        }
        if item.extras:
            s["meta"] = item.extras
        samples.append(s)
    return samples


# --- the command ---------------------------------------------------------------------------------------------
def _exclusion_set(paths: Iterable[Path], problems: Problems) -> set[str]:
    """Image stems listed in CSVs with an ``image`` column (MM-Skin's test splits): keep them out of training."""
    stems: set[str] = set()
    for p in paths:
        header, rows = read_csv(Path(p), problems)
        if "image" not in header:
            raise ConvertError(f"{p}: --exclude needs a CSV with an 'image' column")
        stems.update(PurePosixPath(_cell(r, "image")).stem for _, r in rows if _cell(r, "image"))
    return stems


def find_images(
    cfg: ConvertConfig,
    items: list[PublicItem],
    excluded: set[str],
    tally: ConvertTally,
    problems: Problems,
    advance: Callable[[int], None],
) -> Iterator[tuple[PublicItem, str]]:
    """(item, image path under ``images``) of the items to convert: excluded, duplicate, missing and (with
    ``verify_images``) unreadable images are left out, the last two as problems."""
    finder = ImageFinder(cfg.images)
    seen: set[str] = set()
    for it in items:
        advance(1)
        if excluded and PurePosixPath(it.image).stem in excluded:
            tally.excluded += 1
            continue
        try:
            rel = finder.find(it.image)
        except RecordError as e:
            problems.add(it.where, str(e))
            continue
        if rel is None:
            add_missing(problems, it.where, f"image {it.image} not found under {cfg.images}")
            continue
        if rel in seen:
            tally.duplicates += 1
            continue
        if cfg.verify_images and (bad := verify_image(finder.root / rel)):
            problems.add(it.where, f"{rel}: {bad}")
            continue
        seen.add(rel)
        yield it, rel


def write_samples(cfg: ConvertConfig, samples: list[dict[str, Any]]) -> None:
    if cfg.format == "vqa":
        write_jsonl(cfg.out, samples)
    else:
        data = json.dumps([llava_item(s) for s in samples], ensure_ascii=False, indent=1)
        atomic_write_bytes(cfg.out, data.encode("utf-8"), durable=True)


def summary_line(tax: Taxonomy, counts: dict[str, Any], out: Path) -> str:
    types = ", ".join(f"{n} {t}" for t, n in counts["by_question_type"].items())
    unl = sum(counts["unlabelled"].values())
    return (
        f"convert-public {tax.name}: {counts['rows']} rows, {counts['images']} images, {counts['samples']} samples"
        f"{f' ({types})' if types else ''}, {counts['missing_images']} missing images, {unl} unlabelled, "
        f"{counts['duplicates']} duplicates, {counts['excluded']} excluded, {counts['errors']} errors -> {out}"
    )


def convert_info(cfg: ConvertConfig, tax: Taxonomy, counts: dict[str, Any]) -> dict[str, Any]:
    return {
        "provenance": provenance("convert-public", config=cfg, seed=cfg.seed),
        "taxonomy": tax.name,
        "taxonomy_file": tax.path,
        "metadata": str(cfg.metadata.resolve()),
        "join": str(cfg.join.resolve()) if cfg.join else None,
        "exclude": [str(p.resolve()) for p in cfg.exclude],
        "images": str(cfg.images.resolve()),  # mmskin train finds the images here
        "format": cfg.format,
        "seed": cfg.seed,
        "max_choices": cfg.max_choices,
        "questions_version": question_templates().get("version"),
        "counts": counts,
    }


def run(config: ConvertConfig, reporter: Reporter | None = None) -> StageResult:
    """Convert one public dataset to VQA samples (JSONL, ``format='vqa'``) or LLaVA conversation JSON
    (``format='llava'``) plus ``<out>.info.json``. Raises TaxonomyError (a ConfigError) or ConvertError when
    nothing can be done; with ``allow_missing`` missing images are reported but are not problems of the result."""
    cfg, reporter = config, reporter or SILENT
    tax = load_taxonomy(cfg.name)
    if not cfg.images.is_dir():
        raise ConvertError(f"{cfg.images}: --images is not a folder")
    if not cfg.metadata.exists():
        raise ConvertError(f"{cfg.metadata}: no such file or folder")
    problems = Problems(reporter)
    tally = ConvertTally()
    excluded = _exclusion_set(cfg.exclude, problems)
    items = list(read_items(tax, cfg.metadata, cfg.images, cfg.join, tally, problems))
    with reporter.progress(len(items), f"checking images of {tax.name}") as advance:
        found = list(find_images(cfg, items, excluded, tally, problems, advance))
    tally.images = len(found)
    if not found:
        n_missing = len(split_problems(problems)[1])
        raise ConvertError(
            f"{cfg.metadata}: no labelled image found under {cfg.images} ({tally.rows} rows, "
            f"{n_missing} missing, {sum(tally.unlabelled.values())} unlabelled)"
        )
    pool = sorted({it.label for it, _ in found}) if tax.open_vocabulary else None
    samples: list[dict[str, Any]] = []
    for it, rel in found:
        for s in make_samples(tax, it, rel, cfg.seed, pool, cfg.max_choices):
            samples.append(s)
            tally.by_question_type[s["question_type"]] += 1
        tally.by_label[it.label] += 1
    tally.samples = len(samples)
    write_samples(cfg, samples)
    counts = tally_counts(tally, problems)
    write_info(Path(f"{cfg.out}.info.json"), convert_info(cfg, tax, counts))
    failed = split_problems(problems)[0] if cfg.allow_missing else list(problems)
    return StageResult("convert-public", counts, failed, summary_line(tax, counts, cfg.out))
