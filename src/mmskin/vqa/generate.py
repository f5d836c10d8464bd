"""MM-Skin-O generation: ``DATASET/records.jsonl`` -> ``DATASET/vqa.jsonl`` + ``DATASET/vqa_info.json``.

    >>> from mmskin.vqa.generate import GenerateConfig, generate
    >>> result = generate(GenerateConfig(dataset=Path("data/derm"), generator="template", per_image=4))
    >>> result.info["question_types"]

One sample per line: ``{id, record_id, image, question, answer, question_type, generator}`` with a stable ``id``
(hash of record id + question type + question). Only usable records are used: those flagged ``annotated``,
``sensitive``, ``low_resolution``, ``non_dermatology``, ``duplicate``, ``no_caption`` or ``unreadable_image``
are skipped unless ``include_flagged``; a ``review`` flag (or any other) does not exclude a record. Every sample,
from either generator, passes the same grounding check and near-duplicate filter; what is dropped is counted
with its reason in vqa_info.json.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import random
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..provenance import package_versions
from ..records import (
    EXCLUDING_FLAGS,
    RecordError,
    atomic_write_bytes,
    iter_jsonl,
    resolve_in_root,
    validate_record,
    write_jsonl,
)
from .facts import Facts, build_support, check_answer, extract_facts, record_fact_texts
from .lexicon import Lexicon, load_lexicon
from .template import Templates, load_templates, template_samples

GENERATORS = ("template", "openai")
NEAR_DUPLICATE_JACCARD = 0.8
DEFAULT_LLM_QUESTIONS = 5


@dataclass
class GenerateConfig:
    dataset: Path
    generator: str = "template"
    per_image: int | None = None
    seed: int = 0
    include_flagged: bool = False
    progress: bool = False
    # openai generator
    base_url: str | None = None
    model: str | None = None
    api_key: str | None = field(default=None, repr=False)
    concurrency: int = 4
    timeout: float = 60.0
    max_retries: int = 4
    retry_base: float = 1.0
    lexicon_path: Path | None = None
    templates_path: Path | None = None
    prompt_path: Path | None = None


@dataclass
class GenerateResult:
    samples: list[dict[str, Any]]
    info: dict[str, Any]
    errors: list[str]
    warnings: list[str]

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary_line(self, out: Path) -> str:
        types = ", ".join(f"{k} {v}" for k, v in self.info["question_types"].items())
        rec = self.info["records"]
        dropped = sum(self.info["dropped"]["samples"].values())
        llm = self.info.get("llm")
        calls = f", {llm['requests']} requests, {llm['cache_hits']} cached" if llm else ""
        return (
            f"vqa ({self.info['generator']}): {rec['usable']} of {rec['total']} records usable, "
            f"{len(self.samples)} samples ({types or 'none'}), {dropped} dropped{calls}, "
            f"{len(self.errors)} errors -> {out}"
        )


def sample_id(record_id: str, question_type: str, question: str) -> str:
    return hashlib.sha256(f"{record_id}|{question_type}|{question}".encode()).hexdigest()[:20]


_QUESTION_NOISE = frozenset(
    {"the", "this", "that", "these", "those", "a", "an", "of", "in", "on", "any", "you"}
)


def _question_tokens(q: str, lex: Lexicon) -> frozenset[str]:
    """Normalised question words without articles and prepositions: "What does this image show?" and "What
    does the image show?" are the same question, "Does it show scaling?" and "... ulceration?" are not."""
    return frozenset(t.norm for t in lex.tokenize(q) if t.norm.isalnum() and t.norm not in _QUESTION_NOISE)


def is_near_duplicate(a: frozenset[str], b: frozenset[str]) -> bool:
    if not a or not b:
        return a == b
    return len(a & b) / len(a | b) >= NEAR_DUPLICATE_JACCARD


def read_dataset_records(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Records of a JSONL file; a malformed line gives an error naming file and line and is skipped."""
    errors: list[str] = []
    recs = [rec for _, rec in iter_jsonl(path, errors, check=validate_record)]
    return recs, errors


def _package_versions() -> dict[str, str]:
    return {"python": platform.python_version(), **package_versions(("pyyaml",))}


def _progress(enabled: bool, total: int, label: str):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    prog = Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        disable=not enabled,
        transient=True,
    )
    return prog, total


def _llm_facts(rec: dict[str, Any], templates: Templates) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    if isinstance(rec.get("modality"), str) and rec["modality"] in templates.modality_phrases:
        facts["modality"] = templates.modality_phrases[rec["modality"]]
    if isinstance(rec.get("age"), (int, float)) and not isinstance(rec.get("age"), bool):
        facts["age"] = rec["age"]
    if rec.get("sex") in ("male", "female"):
        facts["sex"] = rec["sex"]
    return facts


def generate(
    cfg: GenerateConfig,
    on_error: Callable[[str], None] | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> GenerateResult:
    """Generate, write vqa.jsonl and vqa_info.json atomically, and return what was done."""
    if cfg.generator not in GENERATORS:
        raise ValueError(f"unknown generator {cfg.generator!r} (choose from {', '.join(GENERATORS)})")
    errors: list[str] = []
    warnings: list[str] = []

    def err(msg: str) -> None:
        errors.append(msg)
        if on_error:
            on_error(msg)

    def warn(msg: str) -> None:
        warnings.append(msg)
        if on_warning:
            on_warning(msg)

    root = Path(cfg.dataset)
    lex = load_lexicon(cfg.lexicon_path)
    templates = load_templates(cfg.templates_path)
    records, rec_errors = read_dataset_records(root / "records.jsonl")
    for e in rec_errors:
        err(e)

    dropped_records: Counter[str] = Counter()
    dropped_samples: Counter[str] = Counter()
    usable: list[dict[str, Any]] = []
    for rec in records:
        flags = [f for f in rec["flags"] if f in EXCLUDING_FLAGS]
        if flags and not cfg.include_flagged:
            dropped_records[f"flag:{flags[0]}"] += 1
            continue
        if not rec["caption"].strip():
            dropped_records["empty_caption"] += 1
            continue
        try:
            path = resolve_in_root(root, rec["image"])
        except RecordError as e:
            err(f"{root / 'records.jsonl'}: record {rec['id']}: {e}")
            dropped_records["bad_image_path"] += 1
            continue
        if not path.is_file():
            err(f"{path}: image of record {rec['id']} is missing")
            dropped_records["image_missing"] += 1
            continue
        usable.append(rec)

    uncurated = bool(records) and not any("modality" in r for r in records)
    if uncurated:
        warn(
            f"{root}: records have no modality (the dataset is not curated): modality questions are skipped "
            f"and captions are used as built; run `mmskin curate {root}` first for the full question mix"
        )

    facts_by_id: dict[str, Facts] = {r["id"]: extract_facts(r["caption"], lex) for r in usable}
    raw: dict[str, list[dict[str, str]]] = {}  # record id -> candidate items before checks
    llm_info: dict[str, Any] = {}
    if cfg.generator == "template":
        prog, _ = _progress(cfg.progress, len(usable), "vqa")
        with prog:
            task = prog.add_task("vqa", total=len(usable))
            for rec in usable:
                qas = template_samples(rec, templates, cfg.seed, None, lex, facts_by_id[rec["id"]])
                raw[rec["id"]] = [qa.__dict__.copy() for qa in qas]
                prog.advance(task)
    else:
        llm_info = _run_llm(cfg, usable, facts_by_id, templates, raw, dropped_records, err)

    samples: list[dict[str, Any]] = []
    type_counts: Counter[str] = Counter()
    records_with_samples = 0
    for rec in usable:
        items = raw.get(rec["id"], [])
        if not items:
            if rec["id"] in raw:
                dropped_records["no_facts" if cfg.generator == "template" else "no_items"] += 1
            continue
        facts = facts_by_id[rec["id"]]
        support = build_support(facts, record_fact_texts(rec, templates.modality_phrases))
        kept: list[dict[str, Any]] = []
        seen_q: list[frozenset[str]] = []
        for it in items:
            qtype = it["question_type"]
            if qtype not in templates.type_names:
                qtype = templates.classify(it["question"])
            ok, reason, _missing = check_answer(it["answer"], support, it["question"], lex)
            if not ok:
                dropped_samples[f"ungrounded:{reason}"] += 1
                continue
            toks = _question_tokens(it["question"], lex)
            if any(is_near_duplicate(toks, s) for s in seen_q):
                dropped_samples["near_duplicate"] += 1
                continue
            seen_q.append(toks)
            kept.append({**it, "question_type": qtype})
        if cfg.per_image is not None and len(kept) > cfg.per_image:
            rng = random.Random(f"{cfg.seed}:{rec['id']}:cap")
            dropped_samples["per_image_cap"] += len(kept) - cfg.per_image
            kept = [kept[i] for i in templates.choose(rng, [k["question_type"] for k in kept], cfg.per_image)]
        if kept:
            records_with_samples += 1
        for it in kept:
            type_counts[it["question_type"]] += 1
            samples.append(
                {
                    "id": sample_id(rec["id"], it["question_type"], it["question"]),
                    "record_id": rec["id"],
                    "image": rec["image"],
                    "question": it["question"],
                    "answer": it["answer"],
                    "question_type": it["question_type"],
                    "generator": cfg.generator,
                }
            )

    order = {t: i for i, t in enumerate(templates.type_names)}
    info: dict[str, Any] = {
        "mmskin_version": __version__,
        "packages": _package_versions(),
        "generator": cfg.generator,
        "seed": cfg.seed,
        "per_image": cfg.per_image,
        "include_flagged": cfg.include_flagged,
        "exclude_flags": list(EXCLUDING_FLAGS),
        "lexicon": {"version": lex.version, "sha256": lex.sha256, "path": _shown_path(lex.path)},
        "templates": {
            "version": templates.version,
            "sha256": templates.sha256,
            "path": _shown_path(templates.path),
        },
        "uncurated": uncurated,
        "records": {
            "total": len(records) + len(rec_errors),
            "invalid": len(rec_errors),
            "usable": len(usable),
            "with_samples": records_with_samples,
        },
        "samples": len(samples),
        "question_types": dict(sorted(type_counts.items(), key=lambda kv: (order.get(kv[0], 99), kv[0]))),
        "dropped": {
            "records": dict(sorted(dropped_records.items())),
            "samples": dict(sorted(dropped_samples.items())),
        },
        **llm_info,
    }
    write_jsonl(root / "vqa.jsonl", samples)
    atomic_write_bytes(
        root / "vqa_info.json",
        (json.dumps(info, indent=2, sort_keys=True) + "\n").encode("utf-8"),
        durable=True,
    )
    return GenerateResult(samples, info, errors, warnings)


def _shown_path(p: Path) -> str:
    """'bundled:<name>' for the packaged data files, so vqa_info.json holds no machine-specific path."""
    from .lexicon import _bundled

    try:
        if p.resolve().parent in (_bundled("").resolve(), _bundled("prompts").resolve()):
            return f"bundled:{p.name}"
    except OSError:
        pass
    return str(p)


def _run_llm(
    cfg: GenerateConfig,
    usable: list[dict[str, Any]],
    facts_by_id: dict[str, Facts],
    templates: Templates,
    raw: dict[str, list[dict[str, str]]],
    dropped_records: Counter[str],
    err: Callable[[str], None],
) -> dict[str, Any]:
    from .llm import (
        ChatClient,
        LLMConfig,
        LLMError,
        ResponseCache,
        Stats,
        ask_for_items,
        load_prompt,
        public_url,
    )

    if not cfg.base_url or not cfg.model:
        raise ValueError("the openai generator needs --base-url and --model")
    api_key = cfg.api_key if cfg.api_key is not None else os.environ.get("OPENAI_API_KEY")
    prompt = load_prompt(cfg.prompt_path)
    stats = Stats()
    client = ChatClient(
        LLMConfig(
            base_url=cfg.base_url,
            model=cfg.model,
            api_key=api_key or None,
            timeout=cfg.timeout,
            max_retries=cfg.max_retries,
            retry_base=cfg.retry_base,
            seed=cfg.seed,
        ),
        stats,
    )
    cache = ResponseCache(Path(cfg.dataset) / ".cache" / "vqa-llm")
    k = cfg.per_image if cfg.per_image else DEFAULT_LLM_QUESTIONS
    types = list(templates.type_names)
    failures: Counter[str] = Counter()
    invalid_items: Counter[str] = Counter()
    lock = threading.Lock()  # workers count invalid items concurrently
    from .llm import validate_item

    def one(rec: dict[str, Any]) -> tuple[str, list[dict[str, str]]]:
        caption = facts_by_id[rec["id"]].caption
        items, _ = ask_for_items(client, cache, prompt, caption, _llm_facts(rec, templates), k, types)
        out = []
        for it in items:
            clean, reason = validate_item(it)
            if clean is None:
                with lock:
                    invalid_items[reason or "invalid_item"] += 1
                continue
            out.append(clean)
        return rec["id"], out

    prog, _ = _progress(cfg.progress, len(usable), "vqa (llm)")
    with prog, ThreadPoolExecutor(max_workers=max(1, cfg.concurrency)) as pool:
        task = prog.add_task("vqa", total=len(usable))
        futures = {pool.submit(one, rec): rec for rec in usable}
        for fut in as_completed(futures):
            rec = futures[fut]
            try:
                rid, items = fut.result()
                raw[rid] = items
            except LLMError as e:
                failures[e.reason] += 1
                dropped_records[f"llm_failed:{e.reason}"] += 1
                err(f"{public_url(cfg.base_url)}: record {rec['id']}: {e}")
            prog.advance(task)
    return {
        "prompt": {"version": prompt.version, "sha256": prompt.sha256, "path": _shown_path(prompt.path)},
        "model": cfg.model,
        "base_url": public_url(cfg.base_url),
        "llm": {
            **stats.as_dict(),
            "failures": dict(sorted(failures.items())),
            "invalid_items": dict(sorted(invalid_items.items())),
            "concurrency": cfg.concurrency,
            "timeout_s": cfg.timeout,
            "max_retries": cfg.max_retries,
        },
    }
