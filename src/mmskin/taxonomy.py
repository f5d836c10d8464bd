"""Label taxonomies of the public dermatology classification datasets: one YAML file per dataset.

Each file (``mmskin/data/taxonomies/<name>.yaml``) holds the dataset's classes as MM-Skin's test CSVs spell them,
their codes and synonyms, benign/malignant where it is defined, the imaging modality, how to read the official
metadata CSV, and MM-Skin's zero-shot prompt. ``mmskin convert-public`` and the zero-shot evaluation read the same
files, so a class list is fixed in exactly one place.

    >>> from mmskin.taxonomy import load_taxonomy, list_taxonomies
    >>> tax = load_taxonomy("HAM10000")
    >>> tax.class_names()[:2]
    ['Actinic Keratoses', 'Basal Cell Carcinoma']
    >>> tax.match_class("Dermoscopy shows a melanocytic nevus.")
    'Nevus'
    >>> tax.format_prompt()[:60]
    'This is a skin lesion image. From the following categories: '

A user's own taxonomy is a YAML file of the same shape: ``load_taxonomy("my_labels.yaml")``.

YAML keys: ``name``, ``title``, ``modality``, ``aliases`` (e.g. MM-Skin's experiment names), ``source`` (where the
lists came from), ``mmskin_csv`` (MM-Skin's test CSV), ``prompt`` (with ``{classes}``), ``questions`` (question
types convert-public asks), ``open_vocabulary`` (labels outside the list are kept verbatim), ``classes`` (``name``,
``code``, ``synonyms``, ``malignant``: true/false/null) and ``metadata``, how to read the official metadata CSV:
``image_column`` (one name or candidates), ``image_columns`` (several images per row), ``image_suffix``,
``label_column`` (one name or candidates), ``label_format`` (``value`` or ``dict_argmax``), ``onehot``
(column -> class code), ``label_values`` (raw value -> class name), ``labels_from: folder`` (class = image folder),
``join`` (``{file, key}``: a second CSV merged on a key column), ``extras`` (our name -> CSV column: age, sex, site, ...) and
``alternatives`` (other accepted layouts of the same keys).
"""

from __future__ import annotations

import difflib
import functools
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import ConfigError
from .resources import data_path, load_yaml

MODALITIES = ("clinical", "dermoscopy", "pathology")
QUESTION_TYPES = ("diagnosis", "diagnosis_choice", "benign_malignant")


class TaxonomyError(ConfigError):
    """A taxonomy that cannot be found or read; the message is one line naming the file (or name) and reason."""


# --- normalisation -------------------------------------------------------------------------------------------
# Both sides of a comparison go through the same function, so a rule only has to map singular and plural forms
# of one word to the same token; it does not have to produce correct English.
_IRREGULAR = {
    "nevi": "nevus",
    "naevi": "naevus",
    "lentigines": "lentigo",
    "metastases": "metastasis",
    "verrucae": "verruca",
    "bullae": "bulla",
    "vesicles": "vesicle",
    "carcinomata": "carcinoma",
    "stds": "std",
}
_TOKEN = re.compile(r"[a-z0-9]+")


def _singular(tok: str) -> str:
    if tok in _IRREGULAR:
        return _IRREGULAR[tok]
    if len(tok) <= 3 or not tok.endswith("s"):
        return tok
    if tok.endswith("oses"):  # keratoses -> keratosis, dermatoses -> dermatosis
        return tok[:-2] + "is"
    if tok.endswith("ies"):
        return tok[:-3] + "y"
    if tok.endswith(("ss", "us", "is")):  # abscess, nevus, psoriasis are singular
        return tok
    return tok[:-1]


def normalize(text: str) -> str:
    """Lower-case ASCII tokens, punctuation and whitespace collapsed, plurals folded: 'Actinic Keratoses!' ->
    'actinic keratosis'."""
    t = unicodedata.normalize("NFKD", text)
    t = "".join(c for c in t if not unicodedata.combining(c)).lower()
    return " ".join(_singular(tok) for tok in _TOKEN.findall(t))


def _key(name: str) -> str:
    """Lookup key of a taxonomy name or alias: case, '_', ' ' and '-' do not matter."""
    return re.sub(r"[\s_\-]+", "-", name.strip().lower())


# --- data model ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TaxClass:
    name: str
    code: str
    synonyms: tuple[str, ...]
    malignant: bool | None  # None: not defined (premalignant, non-neoplastic, mixed group)


@dataclass(frozen=True)
class Taxonomy:
    name: str
    modality: str  # clinical | dermoscopy | pathology
    classes: tuple[TaxClass, ...]
    metadata: dict  # how to read the official metadata CSV (keys in the module docstring)
    prompt: str  # MM-Skin's zero-shot prompt template with {classes}
    title: str = ""
    aliases: tuple[str, ...] = ()
    source: str = ""  # where the class list and prompt came from
    mmskin_csv: str | None = None  # file name of MM-Skin's test CSV for this taxonomy, if there is one
    questions: tuple[str, ...] = QUESTION_TYPES
    open_vocabulary: bool = False
    path: str = ""
    _phrases: dict[str, frozenset[str]] = field(default_factory=dict, repr=False, compare=False)
    _codes: dict[str, str] = field(default_factory=dict, repr=False, compare=False)
    _max_len: int = field(default=1, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.modality not in MODALITIES:
            raise TaxonomyError(f"{self.path or self.name}: modality {self.modality!r} not in {MODALITIES}")
        if not self.classes:
            raise TaxonomyError(f"{self.path or self.name}: no classes")
        names = [c.name for c in self.classes]
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise TaxonomyError(f"{self.path or self.name}: duplicate class names {dup}")
        if bad := [q for q in self.questions if q not in QUESTION_TYPES]:
            raise TaxonomyError(
                f"{self.path or self.name}: unknown question types {bad} (known: {QUESTION_TYPES})"
            )
        if "{classes}" not in self.prompt:
            raise TaxonomyError(f"{self.path or self.name}: prompt lacks the {{classes}} placeholder")
        phrases: dict[str, set[str]] = {}
        codes: dict[str, str] = {}
        for c in self.classes:
            for s in (c.name, *c.synonyms):
                n = normalize(s)
                if n:
                    phrases.setdefault(n, set()).add(c.name)
            if c.code:
                codes.setdefault(normalize(c.code), c.name)
        clash = {p: sorted(v) for p, v in phrases.items() if len(v) > 1}
        if clash:
            p, v = next(iter(clash.items()))
            raise TaxonomyError(f"{self.path or self.name}: phrase {p!r} names several classes {v}")
        object.__setattr__(self, "_phrases", {p: frozenset(v) for p, v in phrases.items()})
        object.__setattr__(self, "_codes", codes)
        object.__setattr__(self, "_max_len", max(len(p.split()) for p in phrases))

    def class_names(self) -> list[str]:
        return [c.name for c in self.classes]

    def get(self, name: str) -> TaxClass:
        for c in self.classes:
            if c.name == name:
                return c
        raise KeyError(f"{self.name}: no class {name!r}")

    def format_prompt(self, class_names: list[str] | None = None) -> str:
        """The zero-shot question: the prompt with the class names joined by ', ' (MM-Skin's join)."""
        return self.prompt.replace("{classes}", ", ".join(class_names or self.class_names()))

    def match_class(self, text: str) -> str | None:
        """Canonical class named in ``text``, or None. Normalised (case, punctuation, whitespace, plural); the
        whole text may also be a class code ('mel'). Otherwise every name or synonym occurring in the text as
        whole tokens is found, and a phrase inside a longer one is dropped (longest match: 'melanocytic nevus'
        hides its 'nevus'). Exactly one class left -> that class; none, or several different classes ('melanoma
        or basal cell carcinoma', a model repeating the class list) -> None: unparsed, never a guess."""
        if not text:
            return None
        n = normalize(text)
        if not n:
            return None
        if n in self._phrases:
            hit = self._phrases[n]
            return next(iter(hit)) if len(hit) == 1 else None
        if n in self._codes:
            return self._codes[n]
        toks = n.split()
        spans: list[
            tuple[int, int, frozenset[str]]
        ] = []  # (start, end, classes) of the longest phrase at each start
        for i in range(len(toks)):
            for length in range(min(self._max_len, len(toks) - i), 0, -1):
                hit = self._phrases.get(" ".join(toks[i : i + length]))
                if hit is not None:
                    spans.append((i, i + length, frozenset(hit)))
                    break  # shorter phrases starting here are inside this one
        found: set[str] = set()
        for a, b, hit in spans:
            if not any(a2 <= a and b <= b2 and (b2 - a2) > (b - a) for a2, b2, _ in spans):
                found |= hit
        return next(iter(found)) if len(found) == 1 else None


# --- loading -------------------------------------------------------------------------------------------------
def _as_bool_or_none(v: Any, where: str) -> bool | None:
    if v is None or isinstance(v, bool):
        return v
    raise TaxonomyError(f"{where}: 'malignant' must be true, false or null (got {v!r})")


def _from_dict(doc: Any, path: str) -> Taxonomy:
    if not isinstance(doc, dict):
        raise TaxonomyError(f"{path}: not a YAML mapping")
    for k in ("name", "modality", "classes", "prompt"):
        if k not in doc:
            raise TaxonomyError(f"{path}: missing key {k!r}")
    if not isinstance(doc["classes"], list):
        raise TaxonomyError(f"{path}: 'classes' must be a list")
    classes = []
    for i, c in enumerate(doc["classes"]):
        where = f"{path}: classes[{i}]"
        if isinstance(c, str):
            c = {"name": c}
        if not isinstance(c, dict) or not isinstance(c.get("name"), str) or not c["name"].strip():
            raise TaxonomyError(f"{where}: needs a non-empty 'name'")
        syn = c.get("synonyms") or []
        if not isinstance(syn, list) or not all(isinstance(s, str) for s in syn):
            raise TaxonomyError(f"{where}: 'synonyms' must be a list of strings")
        code = c.get("code")
        if code is not None and not isinstance(code, str):
            code = str(code)
        classes.append(
            TaxClass(
                name=c["name"],
                code=code or "",
                synonyms=tuple(syn),
                malignant=_as_bool_or_none(c.get("malignant"), where),
            )
        )
    meta = doc.get("metadata") or {}
    if not isinstance(meta, dict):
        raise TaxonomyError(f"{path}: 'metadata' must be a mapping")
    aliases = doc.get("aliases") or []
    if not isinstance(aliases, list):
        raise TaxonomyError(f"{path}: 'aliases' must be a list")
    if not isinstance(doc["prompt"], str):
        raise TaxonomyError(f"{path}: 'prompt' must be a string")
    return Taxonomy(
        name=str(doc["name"]),
        modality=str(doc["modality"]),
        classes=tuple(classes),
        metadata=meta,
        prompt=doc["prompt"].strip(),
        title=str(doc.get("title") or doc["name"]),
        aliases=tuple(str(a) for a in aliases),
        source=str(doc.get("source") or "").strip(),
        mmskin_csv=doc.get("mmskin_csv"),
        questions=tuple(doc.get("questions") or QUESTION_TYPES),
        open_vocabulary=bool(doc.get("open_vocabulary", False)),
        path=path,
    )


def _read_yaml(path: Path) -> Taxonomy:
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise TaxonomyError(f"{path}: cannot read ({e.strerror})") from None
    except UnicodeDecodeError:
        raise TaxonomyError(f"{path}: not UTF-8 text") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or type(e).__name__
        raise TaxonomyError(f"{path}:{where} malformed YAML ({problem})") from None
    return _from_dict(doc, str(path))


@functools.lru_cache(maxsize=1)
def _bundled() -> dict[str, Path]:
    """key (name or alias) -> bundled YAML file. Files starting with '_' hold shared data, not taxonomies."""
    index: dict[str, Path] = {}
    for p in _bundled_files():
        doc = load_yaml("taxonomies", p.name) or {}
        for k in (p.stem, doc.get("name", p.stem), *(doc.get("aliases") or [])):
            index.setdefault(_key(str(k)), p)
    return index


def _bundled_files() -> list[Path]:
    return sorted(p for p in data_path("taxonomies").glob("*.yaml") if not p.name.startswith("_"))


def list_taxonomies() -> list[str]:
    """Names of the bundled taxonomies (lower case, e.g. 'ham10000', 'ddi-2class')."""
    return [p.stem for p in _bundled_files()]


@functools.lru_cache(maxsize=64)
def _load_bundled(path: Path) -> Taxonomy:
    return _read_yaml(path)


def load_taxonomy(name_or_path: str | Path) -> Taxonomy:
    """A bundled taxonomy by name or alias (case-insensitive: 'HAM10000', 'ddi_2class', 'Fitzpatrick'), or a
    user's YAML file by path. Raises TaxonomyError with a one-line message."""
    s = str(name_or_path)
    p = Path(s)
    if p.suffix.lower() in (".yaml", ".yml") or p.is_file():
        if not p.is_file():
            raise TaxonomyError(f"{p}: no such taxonomy file")
        return _read_yaml(p)
    index = _bundled()
    k = _key(s)
    if k not in index:
        close = difflib.get_close_matches(k, list(index), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(list_taxonomies())}"
        raise TaxonomyError(f"unknown taxonomy {s!r}{hint}")
    return _load_bundled(index[k])
