"""Public dermatology classification datasets as VQA samples (SkinVL-Pub's training mix), ``mmskin convert-public``.

Reads a dataset's official metadata CSV (layout described in its taxonomy YAML, ``mmskin/data/taxonomies``), MM-Skin's
test CSV format (``image,atributes,categories``), or an image folder with one sub-folder per class (Dermnet,
Patch16), and asks per image: the diagnosis (open), the diagnosis from the class list (MM-Skin's zero-shot prompt is
one of the phrasings) and benign vs malignant where the taxonomy defines it. Phrasings are drawn per image from a
generator seeded by (seed, dataset, image), so the output does not depend on row order.

    mmskin convert-public HAM10000 HAM10000_metadata.csv --images ham10000/ --out ham_vqa.jsonl
    >>> from mmskin.vqa.public import convert_public
    >>> report = convert_public("ham10000", "HAM10000_metadata.csv", "ham10000/", "ham_vqa.jsonl")
"""

from __future__ import annotations

import ast
import csv
import functools
import hashlib
import json
import os
import random
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from .. import __version__
from ..records import RecordError, atomic_write_bytes, check_relpath, resolve_in_root, write_jsonl
from ..taxonomy import Taxonomy, TaxonomyError, load_taxonomy, normalize

_QUESTIONS = Path(__file__).resolve().parents[1] / "data" / "taxonomies" / "_questions.yaml"
MMSKIN_CSV_COLUMNS = ("image", "categories")  # + "atributes" (sic) or "attributes", optional "set"
IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
_NULLS = {"", "nan", "none", "null", "na", "n/a"}


class ConvertError(ValueError):
    """The whole conversion cannot run (unknown layout, unreadable metadata); one line naming the file."""


@dataclass(frozen=True)
class PublicItem:
    """One labelled image of a public dataset."""

    where: str  # file:line (or the image path for folder datasets), for messages
    image: str  # path relative to the images root, as the metadata gives it
    record_id: str
    label: str
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass
class ConvertReport:
    taxonomy: str
    rows: int = 0
    images: int = 0
    samples: int = 0
    by_type: Counter = field(default_factory=Counter)
    by_label: Counter = field(default_factory=Counter)
    missing: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    unlabelled: Counter = field(default_factory=Counter)  # raw label value -> rows
    duplicates: int = 0
    excluded: int = 0
    out: str = ""

    def line(self) -> str:
        types = ", ".join(f"{n} {t}" for t, n in sorted(self.by_type.items()))
        unl = sum(self.unlabelled.values())
        return (
            f"convert-public {self.taxonomy}: {self.rows} rows, {self.images} images, {self.samples} samples"
            f"{f' ({types})' if types else ''}, {len(self.missing)} missing images, {unl} unlabelled, "
            f"{self.duplicates} duplicates, {self.excluded} excluded, {len(self.errors)} errors"
            f"{f' -> {self.out}' if self.out else ''}"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "images": self.images,
            "samples": self.samples,
            "by_question_type": dict(sorted(self.by_type.items())),
            "by_label": dict(sorted(self.by_label.items())),
            "missing_images": len(self.missing),
            "unlabelled": dict(sorted(self.unlabelled.items())),
            "duplicates": self.duplicates,
            "excluded": self.excluded,
            "errors": len(self.errors),
        }


# --- reading -------------------------------------------------------------------------------------------------
def _cands(v: Any) -> list[str]:
    if v is None:
        return []
    return [v] if isinstance(v, str) else [str(x) for x in v]


def _read_csv(path: Path, errors: list[str]) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """Header and (line, row) pairs. A malformed CSV stops at the bad line with one error; earlier rows stay."""
    rows: list[tuple[int, dict[str, str]]] = []
    try:
        fh = open(path, newline="", encoding="utf-8-sig")
    except OSError as e:
        raise ConvertError(f"{path}: cannot read ({e.strerror})") from None
    with fh:
        reader = csv.DictReader(fh)
        try:
            header = [h.strip() for h in (reader.fieldnames or [])]
            reader.fieldnames = header
            for row in reader:
                rows.append((reader.line_num, row))
        except csv.Error as e:
            errors.append(f"{path}:{reader.line_num}: malformed CSV ({e}); rows after it were not read")
        except UnicodeDecodeError:
            raise ConvertError(f"{path}: not UTF-8 text") from None
    if not header:
        raise ConvertError(f"{path}: empty CSV (no header)")
    return header, rows


def _cell(row: dict[str, Any], col: str) -> str:
    v = row.get(col)
    return v.strip() if isinstance(v, str) else ""


def _first_col(cols: Iterable[str], header: set[str]) -> str | None:
    return next((c for c in cols if c in header), None)


def resolve_label(tax: Taxonomy, raw: str, label_values: dict[str, str] | None = None) -> str | None:
    """Canonical class for a raw metadata value: explicit value map, exact name, code/synonym/longest match;
    open-vocabulary taxonomies keep an unknown label verbatim."""
    raw = " ".join(raw.split())
    if raw.lower() in _NULLS:
        return None
    for k, v in (label_values or {}).items():
        if normalize(str(k)) == normalize(raw):
            return v
    if raw in tax.class_names():
        return raw
    hit = tax.match_class(raw)
    if hit is not None:
        return hit
    return raw if tax.open_vocabulary else None


def _dict_argmax(cell: str) -> tuple[str | None, str]:
    """Top key of a dict literal like "{'Eczema': 0.6, 'Psoriasis': 0.4}"; ties -> None. Returns (label, raw)."""
    try:
        d = ast.literal_eval(cell) if cell else {}
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None, "unparsable"
    if not isinstance(d, dict) or not d:
        return None, "empty"
    try:
        weights = {str(k): float(v) for k, v in d.items()}
    except (TypeError, ValueError):
        return None, "unparsable"
    top = max(weights.values())
    best = [k for k, w in weights.items() if w == top]
    return (best[0], best[0]) if len(best) == 1 else (None, "tie: " + " / ".join(sorted(best)))


def _onehot(row: dict[str, str], onehot: dict[str, str]) -> tuple[str | None, str]:
    on = []
    for col, code in onehot.items():
        try:
            if float(_cell(row, col) or 0) >= 0.5:
                on.append(code)
        except ValueError:
            return None, f"non-numeric {col}"
    if len(on) == 1:
        return on[0], on[0]
    return None, "none of " + "/".join(onehot) if not on else "several: " + "/".join(on)


def _layouts(tax: Taxonomy) -> list[dict[str, Any]]:
    meta = {k: v for k, v in tax.metadata.items() if k != "alternatives"}
    return [meta, *(tax.metadata.get("alternatives") or [])]


def _pick_layout(tax: Taxonomy, header: set[str], path: Path) -> dict[str, Any]:
    if set(MMSKIN_CSV_COLUMNS) <= header:
        return {"mmskin_csv": True, "image_column": "image"}
    tried = []
    for lay in _layouts(tax):
        if lay.get("labels_from") == "folder":
            continue
        img = _first_col(_cands(lay.get("image_column")), header) or (
            "image_columns" if any(c in header for c in _cands(lay.get("image_columns"))) else None
        )
        lab = _first_col(_cands(lay.get("label_column")), header)
        if lay.get("onehot"):
            lab = lab or ("onehot" if any(c in header for c in lay["onehot"]) else None)
        if img and lab:
            return lay
        want = _cands(lay.get("image_column") or lay.get("image_columns"))
        want += _cands(lay.get("label_column")) or list(lay.get("onehot") or {})
        tried.append("/".join(want))
    raise ConvertError(
        f"{path}: columns {sorted(header)[:12]} match no layout of taxonomy {tax.name} "
        f"(expected {' or '.join(tried) or 'a class folder tree'}, or MM-Skin's image,atributes,categories)"
    )


def read_items(
    tax: Taxonomy, metadata: Path, images: Path, join: Path | None, report: ConvertReport
) -> Iterator[PublicItem]:
    """Labelled images of a metadata CSV (official layout or MM-Skin's), or of a class-folder tree."""
    if metadata.is_dir():
        yield from _folder_items(tax, metadata, images, report)
        return
    header, rows = _read_csv(metadata, report.errors)
    hset = set(header)
    jheader: list[str] = []
    jrows: list[tuple[int, dict[str, str]]] = []
    if join is not None:
        jheader, jrows = _read_csv(join, report.errors)
    lay = _pick_layout(tax, hset | set(jheader), metadata)
    on = (lay.get("join") or {}).get("key")
    joined: dict[str, dict[str, str]] = {}
    if join is not None:
        if not on:
            raise ConvertError(f"{join}: taxonomy {tax.name} defines no join key for a second CSV")
        if on not in jheader or on not in hset:
            raise ConvertError(f"{join}: join column {on!r} missing in it or in {metadata.name}")
        for _, r in jrows:
            joined.setdefault(_cell(r, on), r)
    extras_map: dict[str, str] = dict(lay.get("extras") or {})
    label_values = {str(k): str(v) for k, v in (lay.get("label_values") or {}).items()}
    all_cols = hset | set(jheader)
    label_col = _first_col(_cands(lay.get("label_column")), all_cols)
    img_cols = [c for c in _cands(lay.get("image_columns")) if c in all_cols]
    img_col = _first_col(_cands(lay.get("image_column")), all_cols)
    suffix = str(lay.get("image_suffix") or "")
    label_in_main = (
        bool(lay.get("mmskin_csv")) or label_col in hset or any(c in hset for c in lay.get("onehot") or {})
    )
    for line, row in rows:
        where = f"{metadata}:{line}"
        report.rows += 1
        if None in row:  # more fields than the header
            report.errors.append(f"{where}: {len(row[None])} more fields than the header")
            continue
        if join is not None:
            other = joined.get(_cell(row, on))
            if other is not None:
                row = {**other, **{k: v for k, v in row.items() if v not in (None, "")}}
            elif not label_in_main:  # the label lives in the joined file
                report.unlabelled["no row in " + join.name] += 1
                continue
        # label
        if lay.get("mmskin_csv"):
            label, raw = _mmskin_label(tax, _cell(row, "categories"))
            if label is None and raw.startswith("malformed"):
                report.errors.append(f"{where}: categories {raw}")
                continue
        elif label_col and lay.get("label_format") == "dict_argmax":
            top, raw = _dict_argmax(_cell(row, label_col))
            label = resolve_label(tax, top, label_values) if top else None
        elif label_col:
            raw = _cell(row, label_col)
            label = resolve_label(tax, raw, label_values)
        else:
            code, raw = _onehot(row, lay.get("onehot") or {})
            label = resolve_label(tax, code, label_values) if code else None
        if label is None:
            report.unlabelled[raw or "empty"] += 1
            continue
        extras = {
            k: _coerce(_cell(row, c)) for k, c in extras_map.items() if _cell(row, c).lower() not in _NULLS
        }
        # images (SCIN has up to three per row)
        if img_cols:
            base = _cell(row, str(lay.get("id_column") or "")) or f"row{line}"
            paths = [(f"{base}/{i}", _cell(row, c)) for i, c in enumerate(img_cols, 1) if _cell(row, c)]
        else:
            v = _cell(row, img_col) if img_col else ""
            paths = [(PurePosixPath(v).stem, v)] if v else []
        if not paths:
            report.errors.append(f"{where}: no image name")
            continue
        for rid, p in paths:
            if suffix and PurePosixPath(p).suffix.lower() not in IMAGE_EXTS:
                p += suffix
            yield PublicItem(where, p, f"{tax.name}:{rid}", label, extras)


def _coerce(v: str) -> Any:
    try:
        f = float(v)
    except ValueError:
        return v
    return int(f) if f.is_integer() and "." not in v else f


def _mmskin_label(tax: Taxonomy, cell: str) -> tuple[str | None, str]:
    """MM-Skin's categories cell is a list literal ("['Nevus']"); parsed with ast.literal_eval, never eval. With
    several labels the first is used (MM-Skin picks one at random)."""
    try:
        cats = ast.literal_eval(cell)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None, f"malformed {cell[:40]!r} (not a list literal)"
    if isinstance(cats, str):
        cats = [cats]
    if isinstance(cats, list | tuple) and not cats:  # MSKCC_test.csv has three rows with categories []
        return None, "[]"
    if not isinstance(cats, list | tuple) or not all(isinstance(c, str) for c in cats):
        return None, f"malformed {cell[:40]!r} (not a list of strings)"
    return resolve_label(tax, cats[0]), cats[0]


def _folder_items(tax: Taxonomy, root: Path, images: Path, report: ConvertReport) -> Iterator[PublicItem]:
    """One sub-folder per class: the label is the nearest folder whose name resolves to a class."""
    images_r = images.resolve()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for fn in sorted(filenames):
            if Path(fn).suffix.lower() not in IMAGE_EXTS:
                continue
            full = Path(dirpath) / fn
            report.rows += 1
            try:
                rel = full.resolve().relative_to(images_r).as_posix()
            except ValueError:
                report.errors.append(f"{full}: outside --images {images}")
                continue
            parts = PurePosixPath(rel).parts[:-1]
            label = None
            for folder in reversed(parts):
                if tax.open_vocabulary:
                    break
                label = resolve_label(tax, folder)
                if label is not None:
                    break
            if label is None:
                report.unlabelled[parts[-1] if parts else "(top folder)"] += 1
                continue
            yield PublicItem(
                str(full), rel, f"{tax.name}:{PurePosixPath(rel).with_suffix('').as_posix()}", label
            )


# --- images --------------------------------------------------------------------------------------------------
class ImageFinder:
    """Finds an image under the root: the given relative path first, else a unique file of the same name anywhere
    below (the official archives split images into part folders)."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._index: dict[str, list[str]] | None = None

    def _by_name(self) -> dict[str, list[str]]:
        if self._index is None:
            self._index = {}
            for dirpath, _, files in os.walk(self.root):
                for fn in files:
                    rel = (Path(dirpath) / fn).relative_to(self.root).as_posix()
                    self._index.setdefault(fn, []).append(rel)
        return self._index

    def find(self, rel: str) -> str | None:
        """Relative path of the image, None when it is not there; RecordError when ``rel`` escapes the root."""
        rel = rel.replace("\\", "/") if not PurePosixPath(rel).is_absolute() else rel
        check_relpath(rel)
        if resolve_in_root(self.root, rel).is_file():
            return PurePosixPath(rel).as_posix()
        hits = self._by_name().get(PurePosixPath(rel).name, [])
        if len(hits) > 1:  # prefer the hit that ends with the given sub-path
            hits = [h for h in hits if h.endswith(rel)] or hits
        if len(hits) == 1:
            resolve_in_root(self.root, hits[0])  # refuses a symlink that leaves the root
            return hits[0]
        return None


def _verify_image(path: Path) -> str | None:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.verify()
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as e:
        return f"unreadable image ({type(e).__name__})"
    return None


# --- questions -----------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def question_templates() -> dict[str, Any]:
    import yaml

    return yaml.safe_load(_QUESTIONS.read_text(encoding="utf-8"))


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
def _exclusion_set(paths: Iterable[Path], report: ConvertReport) -> set[str]:
    """Image stems listed in CSVs with an ``image`` column (MM-Skin's test splits): keep them out of training."""
    stems: set[str] = set()
    for p in paths:
        header, rows = _read_csv(Path(p), report.errors)
        if "image" not in header:
            raise ConvertError(f"{p}: --exclude needs a CSV with an 'image' column")
        stems.update(PurePosixPath(_cell(r, "image")).stem for _, r in rows if _cell(r, "image"))
    return stems


def convert_public(
    name: str,
    metadata: str | Path,
    images: str | Path,
    out: str | Path,
    fmt: str = "vqa",
    seed: int = 0,
    join: str | Path | None = None,
    exclude: Iterable[str | Path] = (),
    max_choices: int = 0,
    verify_images: bool = False,
    progress: bool = False,
    on_message: Callable[[str], None] | None = None,
) -> ConvertReport:
    """Convert one public dataset to VQA samples (JSONL, ``fmt='vqa'``) or LLaVA conversation JSON
    (``fmt='llava'``) plus ``<out>.info.json``. Raises ConvertError / TaxonomyError when nothing can be done."""
    from .export import llava_item

    tax = load_taxonomy(name)
    metadata, images, out = Path(metadata), Path(images), Path(out)
    if fmt not in ("vqa", "llava"):
        raise ConvertError(f"--format must be vqa or llava (got {fmt!r})")
    if not images.is_dir():
        raise ConvertError(f"{images}: --images is not a folder")
    if not metadata.exists():
        raise ConvertError(f"{metadata}: no such file or folder")
    report = ConvertReport(taxonomy=tax.name)
    excluded = _exclusion_set([Path(p) for p in exclude], report)
    items = list(read_items(tax, metadata, images, Path(join) if join else None, report))
    finder = ImageFinder(images)
    found: list[tuple[PublicItem, str]] = []
    seen: set[str] = set()
    for it in _progress(items, progress, f"checking images of {tax.name}"):
        if excluded and PurePosixPath(it.image).stem in excluded:
            report.excluded += 1
            continue
        try:
            rel = finder.find(it.image)
        except RecordError as e:
            report.errors.append(f"{it.where}: {e}")
            continue
        if rel is None:
            report.missing.append(f"{it.where}: image {it.image} not found under {images}")
            continue
        if rel in seen:
            report.duplicates += 1
            continue
        if verify_images and (bad := _verify_image(finder.root / rel)):
            report.errors.append(f"{it.where}: {rel}: {bad}")
            continue
        seen.add(rel)
        found.append((it, rel))
    for msg in report.errors + report.missing[:20]:
        if on_message:
            on_message(msg)
    if len(report.missing) > 20 and on_message:
        on_message(f"... and {len(report.missing) - 20} more missing images")
    report.images = len(found)
    if not found:
        raise ConvertError(
            f"{metadata}: no labelled image found under {images} ({report.rows} rows, "
            f"{len(report.missing)} missing, {sum(report.unlabelled.values())} unlabelled)"
        )
    pool = sorted({it.label for it, _ in found}) if tax.open_vocabulary else None
    samples: list[dict[str, Any]] = []
    for it, rel in found:
        for s in make_samples(tax, it, rel, seed, pool, max_choices):
            samples.append(s)
            report.by_type[s["question_type"]] += 1
        report.by_label[it.label] += 1
    report.samples = len(samples)
    if fmt == "vqa":
        write_jsonl(out, samples)
    else:
        data = json.dumps([llava_item(s) for s in samples], ensure_ascii=False, indent=1)
        atomic_write_bytes(out, data.encode("utf-8"), durable=True)
    report.out = str(out)
    info = {
        "tool": "mmskin convert-public",
        "mmskin": __version__,
        "python": sys.version.split()[0],
        "taxonomy": tax.name,
        "taxonomy_file": tax.path,
        "metadata": str(metadata.resolve()),
        "join": str(Path(join).resolve()) if join else None,
        "exclude": [str(Path(p).resolve()) for p in exclude],
        "images": str(images.resolve()),
        "format": fmt,
        "seed": seed,
        "max_choices": max_choices,
        "questions_version": question_templates().get("version"),
        "counts": report.as_dict(),
    }
    atomic_write_bytes(Path(f"{out}.info.json"), json.dumps(info, indent=1, sort_keys=True).encode("utf-8"))
    return report


def _progress(items: list, show: bool, desc: str) -> Iterable:
    if not show:
        return items
    from rich.progress import track

    return track(items, description=desc, transient=True)


__all__ = [
    "ConvertError",
    "ConvertReport",
    "PublicItem",
    "TaxonomyError",
    "convert_public",
    "make_samples",
    "read_items",
    "resolve_label",
]
