"""Reading a public classification dataset (``mmskin convert-public``): its metadata CSV in one of the layouts
its taxonomy YAML describes, MM-Skin's test CSV (``image,atributes,categories``) or a tree of class folders, into
labelled images; and finding those images on disk.

    >>> from mmskin.vqa.metadata import ConvertTally, read_items
    >>> from mmskin.stage import Problems
    >>> items = list(read_items(load_taxonomy("ham10000"), Path("HAM10000_metadata.csv"), Path("ham/"), None,
    ...                         ConvertTally(), Problems()))
    >>> items[0].label
    'Nevus'
"""

from __future__ import annotations

import ast
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from ..records import check_relpath, resolve_in_root
from ..stage import Problems, StageError
from ..taxonomy import Taxonomy, normalize
from .samples import read_csv as _read_csv

MMSKIN_CSV_COLUMNS = ("image", "categories")  # + "atributes" (sic) or "attributes", optional "set"
IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
_NULLS = {"", "nan", "none", "null", "na", "n/a"}


class ConvertError(StageError):
    """The whole conversion cannot run (unknown layout, unreadable metadata; exit status 2); one line naming
    the file."""

    def __init__(self, message: str) -> None:
        super().__init__("", message, exit_code=2)


@dataclass(frozen=True)
class PublicItem:
    """One labelled image of a public dataset."""

    where: str  # file:line (or the image path for folder datasets), for messages
    image: str  # path relative to the images root, as the metadata gives it
    record_id: str
    label: str
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass
class ConvertTally:
    """What a conversion counted (missing images and errors are its problems)."""

    rows: int = 0
    images: int = 0
    samples: int = 0
    by_question_type: Counter = field(default_factory=Counter)
    by_label: Counter = field(default_factory=Counter)
    unlabelled: Counter = field(default_factory=Counter)  # raw label value -> rows
    duplicates: int = 0
    excluded: int = 0


# --- reading -------------------------------------------------------------------------------------------------
def read_csv(path: Path, problems: Problems) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """Header and (line, row) pairs of a metadata CSV; ConvertError when it cannot be read at all."""
    return _read_csv(path, problems, ConvertError)


def _cands(v: Any) -> list[str]:
    if v is None:
        return []
    return [v] if isinstance(v, str) else [str(x) for x in v]


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


@dataclass(frozen=True)
class Columns:
    """A metadata layout resolved against the CSV header(s): where each row's label, images and extras are."""

    layout: dict[str, Any]
    label_col: str | None
    img_cols: list[str]  # several images per row (SCIN)
    img_col: str | None
    label_in_main: bool  # False: the label lives in the joined CSV
    label_values: dict[str, str]  # raw value -> class name

    @classmethod
    def of(cls, lay: dict[str, Any], main: set[str], joined: set[str]) -> Columns:
        all_cols = main | joined
        label_col = _first_col(_cands(lay.get("label_column")), all_cols)
        in_main = (
            bool(lay.get("mmskin_csv"))
            or label_col in main
            or any(c in main for c in lay.get("onehot") or {})
        )
        return cls(
            lay,
            label_col,
            [c for c in _cands(lay.get("image_columns")) if c in all_cols],
            _first_col(_cands(lay.get("image_column")), all_cols),
            in_main,
            {str(k): str(v) for k, v in (lay.get("label_values") or {}).items()},
        )

    def label(self, tax: Taxonomy, row: dict[str, str]) -> tuple[str | None, str, str | None]:
        """(class, raw value, error): the class is None when the row has no label the taxonomy knows."""
        lay, label_values = self.layout, self.label_values
        if lay.get("mmskin_csv"):
            label, raw = _mmskin_label(tax, _cell(row, "categories"))
            if label is None and raw.startswith("malformed"):
                return None, raw, f"categories {raw}"
            return label, raw, None
        if self.label_col and lay.get("label_format") == "dict_argmax":
            top, raw = _dict_argmax(_cell(row, self.label_col))
            return (resolve_label(tax, top, label_values) if top else None), raw, None
        if self.label_col:
            raw = _cell(row, self.label_col)
            return resolve_label(tax, raw, label_values), raw, None
        code, raw = _onehot(row, lay.get("onehot") or {})
        return (resolve_label(tax, code, label_values) if code else None), raw, None

    def images(self, row: dict[str, str], line: int) -> list[tuple[str, str]]:
        """(record id suffix, image path) of the row's images, the layout's image suffix added."""
        if self.img_cols:
            base = _cell(row, str(self.layout.get("id_column") or "")) or f"row{line}"
            paths = [(f"{base}/{i}", _cell(row, c)) for i, c in enumerate(self.img_cols, 1) if _cell(row, c)]
        else:
            v = _cell(row, self.img_col) if self.img_col else ""
            paths = [(PurePosixPath(v).stem, v)] if v else []
        suffix = str(self.layout.get("image_suffix") or "")
        return [
            (rid, p + suffix if suffix and PurePosixPath(p).suffix.lower() not in IMAGE_EXTS else p)
            for rid, p in paths
        ]

    def extras(self, row: dict[str, str]) -> dict[str, Any]:
        """Our name -> value of the extra columns (age, sex, site, ...) that are filled."""
        cols = dict(self.layout.get("extras") or {})
        return {k: _coerce(_cell(row, c)) for k, c in cols.items() if _cell(row, c).lower() not in _NULLS}


def _joined_rows(
    tax: Taxonomy,
    lay: dict[str, Any],
    join: Path,
    jcsv: tuple[list[str], list],
    main: set[str],
    metadata: Path,
) -> dict[str, dict[str, str]]:
    """Key value -> first row of the second CSV, for the taxonomy's join key."""
    on = (lay.get("join") or {}).get("key")
    jheader, jrows = jcsv
    if not on:
        raise ConvertError(f"{join}: taxonomy {tax.name} defines no join key for a second CSV")
    if on not in jheader or on not in main:
        raise ConvertError(f"{join}: join column {on!r} missing in it or in {metadata.name}")
    joined: dict[str, dict[str, str]] = {}
    for _, r in jrows:
        joined.setdefault(_cell(r, on), r)
    return joined


def read_items(
    tax: Taxonomy, metadata: Path, images: Path, join: Path | None, tally: ConvertTally, problems: Problems
) -> Iterator[PublicItem]:
    """Labelled images of a metadata CSV (official layout or MM-Skin's), or of a class-folder tree."""
    if metadata.is_dir():
        yield from _folder_items(tax, metadata, images, tally, problems)
        return
    header, rows = read_csv(metadata, problems)
    main = set(header)
    jcsv: tuple[list[str], list] = read_csv(join, problems) if join is not None else ([], [])
    lay = _pick_layout(tax, main | set(jcsv[0]), metadata)
    joined = _joined_rows(tax, lay, join, jcsv, main, metadata) if join is not None else {}
    on = (lay.get("join") or {}).get("key")
    cols = Columns.of(lay, main, set(jcsv[0]))
    for line, row in rows:
        where = f"{metadata}:{line}"
        tally.rows += 1
        if None in row:  # more fields than the header
            problems.add(where, f"{len(row[None])} more fields than the header")
            continue
        if join is not None:
            other = joined.get(_cell(row, on))
            if other is not None:
                row = {**other, **{k: v for k, v in row.items() if v not in (None, "")}}
            elif not cols.label_in_main:  # the label lives in the joined file
                tally.unlabelled["no row in " + join.name] += 1
                continue
        label, raw, error = cols.label(tax, row)
        if error:
            problems.add(where, error)
            continue
        if label is None:
            tally.unlabelled[raw or "empty"] += 1
            continue
        paths = cols.images(row, line)
        if not paths:
            problems.add(where, "no image name")
            continue
        extras = cols.extras(row)
        for rid, p in paths:
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


def _folder_items(
    tax: Taxonomy, root: Path, images: Path, tally: ConvertTally, problems: Problems
) -> Iterator[PublicItem]:
    """One sub-folder per class: the label is the nearest folder whose name resolves to a class."""
    images_r = images.resolve()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for fn in sorted(filenames):
            if Path(fn).suffix.lower() not in IMAGE_EXTS:
                continue
            full = Path(dirpath) / fn
            tally.rows += 1
            try:
                rel = full.resolve().relative_to(images_r).as_posix()
            except ValueError:
                problems.add(full, f"outside --images {images}")
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
                tally.unlabelled[parts[-1] if parts else "(top folder)"] += 1
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


def verify_image(path: Path) -> str | None:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.verify()
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as e:
        return f"unreadable image ({type(e).__name__})"
    return None
