"""The offline ``template`` generator: caption facts -> question-answer pairs from ``data/vqa/templates.yaml``.

    >>> from mmskin.vqa.template import load_templates, template_samples
    >>> rec = {"id": "r1", "caption": "Scaly red plaques on both elbows.", "modality": "clinical"}
    >>> for qa in template_samples(rec, load_templates(), seed=0):
    ...     print(qa.question_type, "|", qa.question, "|", qa.answer)

Deterministic: phrasings and the ``per_image`` choice come from ``random.Random(f"{seed}:{record_id}")``, so a
record's samples do not depend on the other records or on their order. Every slot value is the caption's own
words (or a lexicon name of a concept the caption names, or a record field), so nothing is invented.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..resources import data_path
from .facts import Facts, Mention, extract_facts, format_age, split_sentences
from .lexicon import Lexicon, LexiconError, load_lexicon, read_yaml

UNKNOWN = "unknown"
_SLOT = re.compile(r"\{(\w+)\}")
MAX_ITEMS = 4  # list slots name at most this many findings
MAX_DESCRIPTION = 400  # characters of the "describe" answer (whole sentences, at least one)


@dataclass(frozen=True)
class QA:
    question: str
    answer: str
    question_type: str


@dataclass(frozen=True)
class Variant:
    requires: tuple[str, ...]
    questions: tuple[tuple[str, frozenset[str] | None], ...]  # (text, modalities or None for all)
    answers: tuple[str, ...]


@dataclass(frozen=True)
class QuestionType:
    name: str
    modalities: frozenset[str]
    variants: tuple[Variant, ...]
    weight: float = 1.0


@dataclass
class Templates:
    path: Path
    sha256: str
    version: str
    types: tuple[QuestionType, ...]
    modality_phrases: dict[str, str]
    classify_rules: tuple[tuple[str, re.Pattern[str]], ...]

    @property
    def type_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.types)

    def weight(self, qtype: str) -> float:
        return next((t.weight for t in self.types if t.name == qtype), 1.0)

    def choose(self, rng: random.Random, qtypes: list[str], k: int) -> list[int]:
        """Indices of ``k`` of the items (sorted), drawn without replacement with the types' weights
        (Efraimidis-Spirakis keys u ** (1 / w))."""
        if k >= len(qtypes):
            return list(range(len(qtypes)))
        keys = [rng.random() ** (1.0 / self.weight(t)) for t in qtypes]
        return sorted(sorted(range(len(qtypes)), key=lambda i: -keys[i])[:k])

    def classify(self, question: str) -> str:
        """Question type of a free-form question (first matching rule; ``other`` when none)."""
        q = " ".join(question.lower().split())
        for name, rx in self.classify_rules:
            if rx.search(q):
                return name
        return "other"


def default_templates_path() -> Path:
    return data_path("vqa", "templates.yaml")


@lru_cache(maxsize=8)
def load_templates(path: str | Path | None = None) -> Templates:
    p = Path(path) if path else default_templates_path()
    obj, sha = read_yaml(p)
    types = []
    qts = obj.get("question_types")
    if not isinstance(qts, dict) or not qts:
        raise LexiconError(f"{p}: 'question_types' must be a non-empty mapping")
    for name, spec in qts.items():
        if not isinstance(spec, dict) or not isinstance(spec.get("variants"), list) or not spec["variants"]:
            raise LexiconError(f"{p}: question type {name!r} needs a non-empty 'variants' list")
        variants = []
        for n, v in enumerate(spec["variants"]):
            where = f"{p}: {name}.variants[{n}]"
            if not isinstance(v, dict):
                raise LexiconError(f"{where}: must be a mapping")
            qs = []
            for q in v.get("questions") or []:
                if isinstance(q, str):
                    qs.append((q, None))
                elif isinstance(q, dict) and isinstance(q.get("text"), str):
                    qs.append((q["text"], frozenset(q.get("modalities") or []) or None))
                else:
                    raise LexiconError(f"{where}: a question must be a string or {{text, modalities}}")
            answers = tuple(str(a) for a in v.get("answers") or [])
            requires = tuple(str(r) for r in v.get("requires") or [])
            if not qs or not answers:
                raise LexiconError(f"{where}: needs 'questions' and 'answers'")
            for text in [q for q, _ in qs] + list(answers):
                extra = set(_SLOT.findall(text)) - set(requires)
                if extra:
                    raise LexiconError(f"{where}: {text!r} uses slots {sorted(extra)} not in 'requires'")
            variants.append(Variant(requires, tuple(qs), answers))
        mods = frozenset(spec.get("modalities") or ["clinical", "dermoscopy", "pathology", UNKNOWN])
        weight = spec.get("weight", 1)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight <= 0:
            raise LexiconError(f"{p}: question type {name!r}: weight must be a positive number")
        types.append(QuestionType(str(name), mods, tuple(variants), float(weight)))
    rules = []
    for n, r in enumerate(obj.get("classify") or []):
        try:
            rules.append((str(r["type"]), re.compile(str(r["pattern"]), re.I)))
        except (KeyError, TypeError, re.error) as e:
            raise LexiconError(f"{p}: classify[{n}]: {e}") from None
    return Templates(
        p,
        sha,
        str(obj.get("version", "")),
        tuple(types),
        {str(k): str(v) for k, v in (obj.get("modality_phrases") or {}).items()},
        tuple(rules),
    )


# -- slot values ----------------------------------------------------------------------------------------------


def join_items(items: list[str]) -> str:
    items = [i for i in dict.fromkeys(items) if i]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _surface(m: Mention, caption: str) -> str:
    """The caption's words for a mention; a capital only kept for abbreviations and mid-sentence names."""
    text = m.text
    before = caption[: m.start].rstrip()
    if text[:1].isupper() and not text[:2].isupper() and (not before or before[-1] in ".:;!?("):
        text = text[:1].lower() + text[1:]
    return text


def _named(m: Mention, lex: Lexicon, caption: str) -> str:
    """A diagnosis or stain as printed, spelled out when the caption uses its abbreviation ("BCC")."""
    surf = _surface(m, caption)
    core = re.sub(r"\s+stain$", "", surf, flags=re.I)
    if core in lex.concepts[(m.category, m.concept)].abbr or "&" in core:
        return f"{m.concept} ({core})"
    return surf


def _site_text(m: Mention, lex: Lexicon) -> str:
    """The site as printed when it is a noun ("both elbows"); else laterality words + the lexicon name
    ("axilla" for "axillary", "left sole" for "left plantar")."""
    words = m.text.split()
    if lex.norm_phrase(words[-1])[-1:] == lex.norm_phrase(m.concept)[-1:]:
        return m.text.lower()
    mods = []
    for w in words:
        if lex.norm(w) in lex.modifiers.get("site", frozenset()):
            mods.append(w.lower())
        else:
            break
    return " ".join([*mods, m.concept])


def _description(caption: str) -> str:
    out = ""
    for s in split_sentences(caption):
        if out and len(out) + 1 + len(s) > MAX_DESCRIPTION:
            break
        out = f"{out} {s}".strip()
    return out


def build_slots(
    facts: Facts, record: dict[str, Any], templates: Templates, rng: random.Random
) -> dict[str, str]:
    """Slot values for one record; a slot absent from the result has no grounded value."""
    lex = facts.lexicon or load_lexicon()
    cap = facts.caption
    slots: dict[str, str] = {}
    dx = facts.present("diagnosis")
    present_names = {m.concept for m in dx}
    parents = {lex.concepts[("diagnosis", c)].parent for c in present_names} - {None}
    dx = [m for m in dx if m.concept not in parents]
    # the image's diagnosis is named in the caption's first sentence (its title) or heads a later sentence (a
    # panel's subcaption: "Skin tissue classes. Melanoma: sheets of ..."); a diagnosis only mentioned inside a
    # later sentence ("some have adjacent lymphangiomas") is context, reported as "also mentions"
    sents = split_sentences(cap)
    first_end = len(sents[0]) if sents else 0
    starts, pos = set(), 0
    for sent in sents:
        pos = cap.find(sent, pos)
        starts.add(pos)
    main = [m for m in dx if m.start < first_end] or [m for m in dx if m.start in starts]
    if main:
        slots["diagnosis"] = _named(main[0], lex, cap)
        others = [_named(m, lex, cap) for m in dx if m is not main[0]][:2]
        if others:
            slots["diagnosis_others"] = join_items(others)
    mod = record.get("modality")
    if isinstance(mod, str) and mod in templates.modality_phrases:
        slots["modality_phrase"] = templates.modality_phrases[mod]
    phr = {k: c.phrase for k, c in lex.concepts.items()}
    for cat in ("morphology", "histology"):
        items = [phr[(cat, m.concept)] for m in facts.present(cat)][:MAX_ITEMS]
        if items:
            slots[cat] = join_items(items)
    for cat in ("distribution", "color"):
        # every distinct wording, not one per concept: "dark brown ... lighter brown" are two colours
        items = [_surface(m, cap).lower() for m in facts.mentions if m.category == cat and not m.negated]
        items = list(dict.fromkeys(items))[:MAX_ITEMS]
        if items:
            slots[cat] = join_items(items)
    sites = [_site_text(m, lex) for m in facts.present("site")][:MAX_ITEMS]
    if sites:
        slots["site"] = join_items(sites)
    cells = [m.concept for m in facts.present("cells")][:MAX_ITEMS]
    if cells:
        slots["cells"] = join_items(cells)
    stains = [_named(m, lex, cap) for m in facts.present("stain")][:2]
    if stains:
        slots["stain"] = join_items(stains)
    if facts.magnifications:
        slots["magnification"] = facts.magnifications[0]
    if facts.sizes:
        slots["size"] = facts.sizes[0]
    age = record.get("age")
    if isinstance(age, (int, float)) and not isinstance(age, bool) and age >= 1:
        slots["age"] = format_age(age)
    if record.get("sex") in ("male", "female"):
        slots["sex"] = record["sex"]
    if isinstance(record.get("age_group"), str) and record["age_group"]:
        slots["age_group"] = record["age_group"]
    # yes/no findings of the kind the image can show: lesion morphology in photographs, histology in sections
    mod_key = mod if isinstance(mod, str) else UNKNOWN
    cats = {"clinical": ("morphology",), "dermoscopy": ("morphology",), "pathology": ("histology",)}.get(
        mod_key, ("morphology", "histology")
    )
    neg = [phr[(m.category, m.concept)] for cat in cats for m in facts.negated(cat)]
    pos = [phr[(m.category, m.concept)] for cat in cats for m in facts.present(cat)]
    # the choice is made here, once, so it does not depend on which other slots exist
    if neg:
        slots["finding_no"] = rng.choice(sorted(set(neg)))
    if pos:
        slots["finding_yes"] = rng.choice(sorted(set(pos)))
    desc = _description(cap)
    if len(desc.split()) >= 3:
        slots["description"] = desc
    return slots


def _fill(text: str, slots: dict[str, str]) -> str:
    return _SLOT.sub(lambda m: slots[m.group(1)], text)


def template_samples(
    record: dict[str, Any],
    templates: Templates,
    seed: int = 0,
    per_image: int | None = None,
    lexicon: Lexicon | None = None,
    facts: Facts | None = None,
) -> list[QA]:
    """Question-answer pairs for one record (at most one per question type; ``per_image`` caps the count)."""
    lex = lexicon or load_lexicon()
    rng = random.Random(f"{seed}:{record.get('id', '')}")
    facts = facts or extract_facts(str(record.get("caption") or ""), lex)
    slots = build_slots(facts, record, templates, rng)
    modality = record.get("modality") if isinstance(record.get("modality"), str) else UNKNOWN
    out: list[QA] = []
    for qt in templates.types:
        if modality not in qt.modalities:
            continue
        for v in qt.variants:
            if not all(r in slots for r in v.requires):
                continue
            qs = [q for q, mods in v.questions if mods is None or modality in mods]
            if not qs:
                continue
            out.append(QA(_fill(rng.choice(qs), slots), _fill(rng.choice(v.answers), slots), qt.name))
            break
    if per_image is not None and per_image >= 0 and len(out) > per_image:
        out = [out[i] for i in templates.choose(rng, [qa.question_type for qa in out], per_image)]
    return out
