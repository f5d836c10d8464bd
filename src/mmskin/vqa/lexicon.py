"""The dermatology lexicon (``data/vqa/lexicon.yaml``): tokenising, lemma-ish normalisation and phrase matching.

    >>> from mmskin.vqa.lexicon import load_lexicon
    >>> lex = load_lexicon()
    >>> [(m.category, m.concept) for m in lex.match("Scaly erythematous plaques on the elbows")]
    [('morphology', 'scale'), ('morphology', 'erythema'), ('color', 'red'), ('morphology', 'plaque'), ('site', 'elbow')]

Matching is longest-phrase-first over word tokens across all categories, so "tumor cells" is a cell type, not a
morphology "tumor", and "dysplastic naevus" is one diagnosis, not a "nevus". A phrase that belongs to several
categories at the same length (e.g. "erythematous": a colour and a morphology) yields one mention per category.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..config import ConfigError, read_yaml_file
from ..resources import data_path

# words, numbers, "&" (H&E) and the punctuation that ends a negation scope
_TOKEN = re.compile(r"[A-Za-z\u00c0-\u024f]+|\d+(?:[.,]\d+)?|&|[.;:!?,()×]")
_ACCENTS = str.maketrans("àáâäãåçèéêëìíîïñòóôöõùúûüýÿ", "aaaaaaceeeeiiiinooooouuuuyy")
_PUNCT = frozenset(".;:!?,()")
_CONCEPT_KEYS = {"name", "synonyms", "abbr", "phrase", "group", "ambiguous", "parent", "malignant"}


class LexiconError(ConfigError):
    """A lexicon, template or prompt file that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class Token:
    raw: str  # as printed
    norm: str  # lower case, American spelling, singular
    start: int  # character offsets in the text
    end: int


@dataclass(frozen=True)
class Concept:
    category: str
    name: str
    phrase: str  # how an answer names it in running text
    group: str | None = None
    ambiguous: bool = False
    parent: str | None = None
    surfaces: tuple[str, ...] = ()  # name + synonyms + abbreviations, as written in the YAML
    abbr: tuple[str, ...] = ()  # matched case-sensitively


@dataclass(frozen=True)
class Match:
    category: str
    concept: str
    start_tok: int  # token index of the first token
    end_tok: int  # one past the last token
    start: int  # character offsets
    end: int


@dataclass
class Lexicon:
    path: Path
    sha256: str
    version: str
    concepts: dict[tuple[str, str], Concept]
    context: dict[str, Any]
    modifiers: dict[str, frozenset[str]]
    stopwords: frozenset[str]
    framing_words: frozenset[str]
    magnification: tuple[re.Pattern[str], ...]
    size_pattern: re.Pattern[str]
    size_context: frozenset[str]
    size_exclude: frozenset[str] = frozenset()
    _spelling: dict[str, str] = field(repr=False, default_factory=dict)
    _prefix: tuple[tuple[str, str], ...] = field(repr=False, default=())
    _irregular: dict[str, str] = field(repr=False, default_factory=dict)
    _keep_s: frozenset[str] = field(repr=False, default=frozenset())
    # first normalised token -> [(normalised phrase, [(category, concept)])], longest first
    _phrases: dict[str, list[tuple[tuple[str, ...], list[tuple[str, str]]]]] = field(
        repr=False, default_factory=dict
    )
    _abbr: dict[str, list[tuple[str, str]]] = field(repr=False, default_factory=dict)
    # normalised token -> concepts whose surfaces or phrase contain it (for grounding by concept)
    concept_tokens: dict[tuple[str, str], frozenset[str]] = field(repr=False, default_factory=dict)

    # -- normalisation -------------------------------------------------------------------------------------
    def norm(self, word: str) -> str:
        """Lemma-ish form of one word: lower case, no accents, American spelling, singular."""
        w = word.lower().translate(_ACCENTS)
        w = self._spelling.get(w, w)
        for old, new in self._prefix:
            if w.startswith(old):
                w = new + w[len(old) :]
                break
        if w in self._irregular:
            return self._irregular[w]
        if w in self._keep_s or not w.isalpha():
            return w
        if len(w) > 4 and w.endswith("ies"):
            return w[:-3] + "y"
        if w.endswith("sses") or w.endswith(("ches", "shes", "xes", "zes")):
            return w[:-2]
        if len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is", "ous")):
            return w[:-1]
        return w

    def tokenize(self, text: str) -> list[Token]:
        return [Token(m.group(), self.norm(m.group()), m.start(), m.end()) for m in _TOKEN.finditer(text)]

    def norm_phrase(self, text: str) -> tuple[str, ...]:
        return tuple(t.norm for t in self.tokenize(text) if t.norm not in _PUNCT)

    # -- matching ------------------------------------------------------------------------------------------
    def match_tokens(self, toks: list[Token]) -> list[Match]:
        out: list[Match] = []
        norms = [t.norm for t in toks]
        i = 0
        while i < len(toks):
            best_len, best = 0, []
            for phrase, owners in self._phrases.get(norms[i], ()):
                n = len(phrase)
                if n < best_len:
                    break
                if tuple(norms[i : i + n]) == phrase:
                    best_len, best = n, owners
                    break
            abbr = self._abbr.get(toks[i].raw)
            if abbr and best_len <= 1:
                best_len, best = 1, list(dict.fromkeys(best + abbr))
            if not best:
                i += 1
                continue
            for cat, name in best:
                c = self.concepts[(cat, name)]
                if c.ambiguous and not self._site_context(norms, i):
                    continue
                out.append(Match(cat, name, i, i + best_len, toks[i].start, toks[i + best_len - 1].end))
            i += best_len
        return out

    def match(self, text: str) -> list[Match]:
        return self.match_tokens(self.tokenize(text))

    def _site_context(self, norms: list[str], i: int) -> bool:
        # "back", "hand", "face" only as a body site after a preposition, article or laterality word
        prev = norms[i - 1] if i else ""
        return prev in self.context["site_cues"] or prev in self.modifiers.get("site", frozenset())


def _as_list(v: Any, where: str) -> list:
    if v is None:
        return []
    if not isinstance(v, list):
        raise LexiconError(f"{where}: expected a list, got {type(v).__name__}")
    return v


def _words(v: Any, where: str) -> list[str]:
    """A list of strings; YAML 1.1 turns bare yes/no/on/off into booleans, so a non-string is an error."""
    out = []
    for w in _as_list(v, where):
        if not isinstance(w, str):
            raise LexiconError(f"{where}: {w!r} is not a string (quote yes/no/on/off and numbers)")
        out.append(w)
    return out


def default_lexicon_path() -> Path:
    return data_path("vqa", "lexicon.yaml")


def read_yaml(path: Path) -> tuple[dict[str, Any], str]:
    """(parsed mapping, sha256 of the bytes); malformed YAML raises LexiconError naming the file."""
    return read_yaml_file(path, LexiconError, empty_ok=False)


# words before a body-site word that make it a site ("on the back", "of her hand")
_SITE_CUES = frozenset(
    ["on", "of", "over", "the", "his", "her", "their", "both", "involving", "affecting", "across", "around", "to",
     "and", "entire", "whole", "dorsum", "dorsal"]
)  # fmt: skip


@lru_cache(maxsize=8)
def load_lexicon(path: str | Path | None = None) -> Lexicon:
    """Parse and compile a lexicon YAML (the bundled one by default); cached per path. Normalisation comes first:
    every later word list is stored in normalised form."""
    p = Path(path) if path else default_lexicon_path()
    obj, sha = read_yaml(p)
    lex = _normaliser(p, obj, sha)
    lex.context = _context(lex, p, obj.get("context") or {})
    lex.modifiers = {
        k: frozenset(lex.norm(w) for w in _words(v, f"{p}: modifiers.{k}"))
        for k, v in (obj.get("modifiers") or {}).items()
    }
    g = obj.get("grounding") or {}
    lex.stopwords = frozenset(lex.norm(w) for w in _words(g.get("stopwords"), f"{p}: grounding.stopwords"))
    lex.framing_words = frozenset(
        lex.norm(w) for w in _words(g.get("framing_words"), f"{p}: grounding.framing")
    )
    _patterns(lex, p, obj)
    _concepts(lex, p, obj.get("categories"))
    return lex


def _normaliser(p: Path, obj: dict[str, Any], sha: str) -> Lexicon:
    """An empty lexicon that already normalises words: spelling map, prefixes, irregular plurals, keep-s words."""
    norm_cfg = obj.get("normalise") or {}
    return Lexicon(
        path=p,
        sha256=sha,
        version=str(obj.get("version", "")),
        concepts={},
        context={},
        modifiers={},
        stopwords=frozenset(),
        framing_words=frozenset(),
        magnification=(),
        size_pattern=re.compile(r"(?!x)x"),
        size_context=frozenset(),
        _spelling={str(k).lower(): str(v).lower() for k, v in (norm_cfg.get("spelling") or {}).items()},
        _prefix=tuple(
            (str(a), str(b)) for a, b in _as_list(norm_cfg.get("prefix"), f"{p}: normalise.prefix")
        ),
        _irregular={
            str(k).lower(): str(v).lower() for k, v in (norm_cfg.get("irregular_plurals") or {}).items()
        },
        _keep_s=frozenset(w.lower() for w in _words(norm_cfg.get("keep_s"), f"{p}: normalise.keep_s")),
    )


def _context(lex: Lexicon, p: Path, ctx: dict[str, Any]) -> dict[str, Any]:
    """Negation and uncertainty cues (words before/after a mention), their scope window and terminators."""
    out: dict[str, Any] = {"window": int(ctx.get("window", 6)), "site_cues": _SITE_CUES}
    out["negation_prefix"] = frozenset(
        lex.norm(w) for w in _words(ctx.get("negation_prefix"), f"{p}: context.negation_prefix")
    )
    for key in ("negation_pre", "negation_post", "uncertain_pre", "uncertain_post"):
        phrases = {lex.norm_phrase(s) for s in _words(ctx.get(key), f"{p}: context.{key}")}
        out[key] = frozenset(ph for ph in phrases if ph)
    out["terminators"] = frozenset(
        lex.norm(s) if s.isalpha() else s for s in _words(ctx.get("terminators"), f"{p}: context.terminators")
    )
    return out


def _patterns(lex: Lexicon, p: Path, obj: dict[str, Any]) -> None:
    """Magnification and size regular expressions, and the words that make a number a size."""
    size = obj.get("size") or {}
    try:
        lex.magnification = tuple(
            re.compile(str(r), re.I) for r in _as_list(obj.get("magnification"), str(p))
        )
        if size.get("pattern"):
            lex.size_pattern = re.compile(str(size["pattern"]), re.I)
    except re.error as e:
        raise LexiconError(f"{p}: bad regular expression ({e})") from None
    size_words = _words(size.get("context_words"), f"{p}: size.context_words")
    lex.size_context = frozenset(lex.norm(w) for w in size_words)
    size_excl = _words(size.get("exclude_next"), f"{p}: size.exclude_next")
    lex.size_exclude = frozenset(lex.norm(w) for w in size_excl)


def _concept(p: Path, cat: str, n: int, e: Any) -> Concept:
    """One entry of ``categories.<cat>`` checked and read."""
    if not isinstance(e, dict) or not isinstance(e.get("name"), str) or not e["name"].strip():
        raise LexiconError(f"{p}: categories.{cat}[{n}] needs a 'name' string")
    unknown = set(e) - _CONCEPT_KEYS
    if unknown:
        raise LexiconError(f"{p}: categories.{cat}.{e['name']}: unknown keys {sorted(unknown)}")
    name = e["name"].strip().lower()
    syns = _words(e.get("synonyms"), f"{p}: {cat}.{name}.synonyms")
    abbrs = _words(e.get("abbr"), f"{p}: {cat}.{name}.abbr")
    return Concept(
        str(cat),
        name,
        str(e.get("phrase") or name),
        e.get("group"),
        bool(e.get("ambiguous")),
        str(e["parent"]).lower() if e.get("parent") else None,
        tuple([name, *syns, *abbrs]),
        tuple(abbrs),
    )


def _concepts(lex: Lexicon, p: Path, cats: Any) -> None:
    """The concepts of every category, and the phrase table that matches them (longest phrase first)."""
    if not isinstance(cats, dict) or not cats:
        raise LexiconError(f"{p}: 'categories' must be a non-empty mapping")
    table: dict[tuple[str, ...], list[tuple[str, str]]] = {}
    for cat, entries in cats.items():
        for n, e in enumerate(_as_list(entries, f"{p}: categories.{cat}")):
            c = _concept(p, cat, n, e)
            key = (c.category, c.name)
            if key in lex.concepts:
                raise LexiconError(f"{p}: duplicate concept {cat}.{c.name}")
            lex.concepts[key] = c
            toks: set[str] = set()
            for s in c.surfaces[: len(c.surfaces) - len(c.abbr)]:  # name + synonyms
                ph = lex.norm_phrase(s)
                if not ph:
                    continue
                toks.update(ph)
                owners = table.setdefault(ph, [])
                if key not in owners:
                    owners.append(key)
            toks.update(lex.norm_phrase(c.phrase))
            for a in c.abbr:
                lex._abbr.setdefault(a, []).append(key)
                toks.add(lex.norm(a))
            lex.concept_tokens[key] = frozenset(toks)
    for ph, owners in table.items():
        lex._phrases.setdefault(ph[0], []).append((ph, owners))
    for lst in lex._phrases.values():
        lst.sort(key=lambda x: -len(x[0]))
