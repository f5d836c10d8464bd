"""MM-Skin-O generation (``mmskin vqa``): ``DATASET/records.jsonl`` -> ``DATASET/vqa.jsonl`` + ``vqa_info.json``.

    >>> from mmskin.vqa.generate import VQAConfig, run
    >>> result = run(VQAConfig(dataset=Path("data/derm"), generator="template", per_image=4))
    >>> result.counts["samples"], result.extra["info"]["question_types"]

One sample per line: ``{id, record_id, image, question, answer, question_type, generator}`` with a stable ``id``
(hash of record id + question type + question). The run, step by step:

1. select the usable records: a record with an excluding flag (``records.EXCLUDING_FLAGS``, the flag table) is
   skipped unless ``include_flagged``, and so is one without caption or image file; a ``review`` flag does not
   exclude a record;
2. generate candidate items with the configured generator (:data:`GENERATORS`: ``template``, offline; ``openai``,
   any OpenAI-compatible chat endpoint, in :mod:`mmskin.vqa.llm`);
3. keep the grounded ones: every item, from either generator, passes the same grounding check and near-duplicate
   filter, then the per-image cap; each drop is counted with its reason;
4. write ``vqa.jsonl``, then ``vqa_info.json`` (provenance, lexicon/template hashes, counts, drops).
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..chat import retry_option
from ..config import ConfigError, option
from ..lock import dataset_lock
from ..provenance import provenance, write_info
from ..records import (
    EXCLUDING_FLAGS,
    RecordError,
    excluding,
    is_curated,
    iter_jsonl,
    resolve_in_root,
    validate_record,
    write_jsonl,
)
from ..resources import data_path
from ..stage import SILENT, Problems, Reporter, StageError, StageResult
from .facts import Facts, build_support, check_answer, extract_facts, record_fact_texts
from .lexicon import Lexicon, load_lexicon
from .samples import add_line_errors, check_flag_names
from .template import Templates, load_templates, template_samples

NEAR_DUPLICATE_JACCARD = 0.8
DEFAULT_LLM_QUESTIONS = 5


@dataclass
class VQAConfig:
    """Settings of ``mmskin vqa`` (each field is the command-line option of the same name)."""

    dataset: Path = field(
        metadata={"help": "dataset folder with records.jsonl (from mmskin build/curate)", "cli": False}
    )
    generator: str = option(
        "template",
        "template: offline, deterministic; openai: an OpenAI-compatible LLM",
        choices=("template", "openai"),
    )
    per_image: int | None = option(
        None,
        "at most K samples per image (seeded choice among question types; default: all available)",
        metavar="K",
    )
    seed: int = option(0, "random seed for phrasings and the per-image choice")
    include_flagged: bool = option(False, "also use records with excluding flags")
    exclude_flags: list[str] = option(
        [], "informative flags that exclude a record too (e.g. marked panel_letter scale_bar)", metavar="FLAG"
    )
    base_url: str | None = option(
        None, "OpenAI-compatible API base, e.g. http://localhost:8000/v1", metavar="URL"
    )
    model: str | None = option(None, "model name the server knows", metavar="NAME")
    api_key: str | None = field(
        default=None,
        repr=False,
        metadata={"help": "API key (default: $OPENAI_API_KEY); never logged or written", "cli": False},
    )
    concurrency: int = option(4, "parallel requests")
    timeout: float = retry_option("timeout")
    max_retries: int = retry_option("max_retries")
    retry_base: float = retry_option("retry_base")
    retry_time: float = retry_option("retry_time")
    max_failures: int = retry_option("max_failures")
    prompt: Path | None = option(None, "prompt YAML (default: the bundled openai-v1)")
    lexicon: Path | None = option(None, "lexicon YAML (default: the bundled one)")
    templates: Path | None = option(None, "templates YAML (default: the bundled one)")
    wait: bool = option(
        True,
        "when another mmskin command is writing the dataset, wait for it (--no-wait: stop at once, exit 1)",
    )

    def __post_init__(self) -> None:
        self.dataset = Path(self.dataset)
        check_flag_names(self.exclude_flags)
        if self.generator not in GENERATORS:
            raise ConfigError(f"unknown generator {self.generator!r} (choose from {', '.join(GENERATORS)})")
        for name, value, ok, want in (
            ("--per-image", self.per_image, self.per_image is None or self.per_image >= 0, "0 or more"),
            ("--concurrency", self.concurrency, self.concurrency >= 1, "at least 1"),
            ("--timeout", self.timeout, self.timeout > 0, "positive"),
            ("--max-retries", self.max_retries, self.max_retries >= 0, "0 or more"),
            ("--retry-base", self.retry_base, self.retry_base > 0, "positive"),
            ("--retry-time", self.retry_time, self.retry_time >= 0, "0 or more"),
            ("--max-failures", self.max_failures, self.max_failures >= 0, "0 or more"),
        ):
            if not ok:
                raise ConfigError(f"{name} must be {want} (got {value})")
        if self.generator == "openai":
            if not self.base_url or not self.model:
                raise ConfigError("--generator openai needs --base-url and --model")
            from ..chat import endpoint

            try:
                endpoint(self.base_url)
            except ValueError as e:
                raise ConfigError(f"--base-url {e}") from None


# --- step 1: the usable records ------------------------------------------------------------------------------
def drop_reason(rec: dict[str, Any], include_flagged: bool, exclude: tuple[str, ...] = ()) -> str | None:
    """Why a (schema-valid) record is not used, judged from its fields alone; None when it is used. ``exclude``:
    informative flags that exclude too (``--exclude-flags``)."""
    flags = excluding(rec, exclude)
    if flags and not include_flagged:
        return f"flag:{flags[0]}"
    if not rec["caption"].strip():
        return "empty_caption"
    return None


def read_dataset_records(path: Path, problems: Problems) -> tuple[list[dict[str, Any]], int]:
    """(valid records, number of invalid lines) of a records.jsonl; each invalid line is one problem."""
    errors: list[str] = []
    recs = [rec for _, rec in iter_jsonl(path, errors, check=validate_record)]
    add_line_errors(problems, errors)
    return recs, len(errors)


def select_usable(
    records: list[dict[str, Any]],
    root: Path,
    include_flagged: bool,
    problems: Problems,
    curated_only: bool = False,
    exclude: tuple[str, ...] = (),
) -> tuple[list[dict[str, Any]], Counter[str]]:
    """The records to generate from, and the others counted by reason; a bad image path is also a problem.
    ``curated_only``: records curate has not seen yet are left out (``not_curated``) unless ``include_flagged``."""
    dropped: Counter[str] = Counter()
    usable: list[dict[str, Any]] = []
    for rec in records:
        reason = drop_reason(rec, include_flagged, exclude)
        if reason is None and curated_only and not include_flagged and not is_curated(rec):
            reason = "not_curated"
        if reason is None:
            try:
                path = resolve_in_root(root, rec["image"])
            except RecordError as e:
                problems.add(f"{root / 'records.jsonl'}: record {rec['id']}", str(e))
                reason = "bad_image_path"
            else:
                if not path.is_file():
                    problems.add(path, f"image of record {rec['id']} is missing")
                    reason = "image_missing"
        if reason is None:
            usable.append(rec)
        else:
            dropped[reason] += 1
    return usable, dropped


# --- step 2: the generators ----------------------------------------------------------------------------------
@dataclass
class Job:
    """What a generator gets: the settings, the usable records and their caption facts."""

    config: VQAConfig
    records: list[dict[str, Any]]
    facts: dict[str, Facts]  # record id -> facts of its caption
    templates: Templates
    lexicon: Lexicon


@dataclass
class Generated:
    """A generator's output: record id -> candidate ``{question, answer, question_type}`` items (a record it did
    not answer for is absent), records it dropped by reason, and its own vqa_info.json keys."""

    items: dict[str, list[dict[str, str]]]
    empty_reason: str  # the drop reason of a record that got no items
    dropped_records: Counter[str] = field(default_factory=Counter)
    info: dict[str, Any] = field(default_factory=dict)


def template_generator(job: Job, reporter: Reporter, problems: Problems) -> Generated:
    """Offline and deterministic for a seed: questions from data/vqa/templates.yaml, answers from caption facts."""
    items: dict[str, list[dict[str, str]]] = {}
    with reporter.progress(len(job.records), "vqa") as advance:
        for rec in job.records:
            qas = template_samples(
                rec, job.templates, job.config.seed, None, job.lexicon, job.facts[rec["id"]]
            )
            items[rec["id"]] = [qa.__dict__.copy() for qa in qas]
            advance(1)
    return Generated(items, "no_facts")


def openai_generator(job: Job, reporter: Reporter, problems: Problems) -> Generated:
    """Any OpenAI-compatible chat endpoint (:func:`mmskin.vqa.llm.generate_items`)."""
    from .llm import generate_items

    return generate_items(job, reporter, problems)


GENERATORS: dict[str, Callable[[Job, Reporter, Problems], Generated]] = {
    "template": template_generator,
    "openai": openai_generator,
}


# --- step 3: grounding, near-duplicates, per-image cap -------------------------------------------------------
_QUESTION_NOISE = frozenset(
    {"the", "this", "that", "these", "those", "a", "an", "of", "in", "on", "any", "you"}
)


def sample_id(record_id: str, question_type: str, question: str) -> str:
    return hashlib.sha256(f"{record_id}|{question_type}|{question}".encode()).hexdigest()[:20]


def _question_tokens(q: str, lex: Lexicon) -> frozenset[str]:
    """Normalised question words without articles and prepositions: "What does this image show?" and "What
    does the image show?" are the same question, "Does it show scaling?" and "... ulceration?" are not."""
    return frozenset(t.norm for t in lex.tokenize(q) if t.norm.isalnum() and t.norm not in _QUESTION_NOISE)


def is_near_duplicate(a: frozenset[str], b: frozenset[str]) -> bool:
    if not a or not b:
        return a == b
    return len(a & b) / len(a | b) >= NEAR_DUPLICATE_JACCARD


def grounded_items(
    rec: dict[str, Any], items: list[dict[str, str]], job: Job, dropped: Counter[str]
) -> list[dict[str, str]]:
    """The items of one record whose answer the caption supports and whose question is not a near-duplicate of
    an earlier one (question types outside the templates are classified), capped at ``per_image``."""
    templates, lex = job.templates, job.lexicon
    support = build_support(job.facts[rec["id"]], record_fact_texts(rec, templates.modality_phrases))
    kept: list[dict[str, str]] = []
    seen_q: list[frozenset[str]] = []
    for it in items:
        qtype = it["question_type"]
        if qtype not in templates.type_names:
            qtype = templates.classify(it["question"])
        ok, reason, _missing = check_answer(it["answer"], support, it["question"], lex)
        if not ok:
            dropped[f"ungrounded:{reason}"] += 1
            continue
        toks = _question_tokens(it["question"], lex)
        if any(is_near_duplicate(toks, s) for s in seen_q):
            dropped["near_duplicate"] += 1
            continue
        seen_q.append(toks)
        kept.append({**it, "question_type": qtype})
    cap = job.config.per_image
    if cap is not None and len(kept) > cap:
        rng = random.Random(f"{job.config.seed}:{rec['id']}:cap")
        dropped["per_image_cap"] += len(kept) - cap
        kept = [kept[i] for i in templates.choose(rng, [k["question_type"] for k in kept], cap)]
    return kept


def to_samples(
    job: Job, generated: Generated, dropped_records: Counter[str]
) -> tuple[list[dict], Counter[str]]:
    """The samples of every usable record, in record order, and the dropped items counted by reason."""
    samples: list[dict[str, Any]] = []
    dropped: Counter[str] = Counter()
    for rec in job.records:
        items = generated.items.get(rec["id"], [])
        if not items:
            if rec["id"] in generated.items:
                dropped_records[generated.empty_reason] += 1
            continue
        for it in grounded_items(rec, items, job, dropped):
            samples.append(
                {
                    "id": sample_id(rec["id"], it["question_type"], it["question"]),
                    "record_id": rec["id"],
                    "image": rec["image"],
                    "question": it["question"],
                    "answer": it["answer"],
                    "question_type": it["question_type"],
                    "generator": job.config.generator,
                }
            )
    return samples, dropped


# --- step 4: vqa_info.json -----------------------------------------------------------------------------------
def shown_path(p: Path | None) -> str | None:
    """'bundled:<name>' for the packaged data files, so vqa_info.json holds no machine-specific path for them."""
    if p is None:
        return None
    try:
        if p.resolve().parent in (data_path("vqa").resolve(), data_path("vqa", "prompts").resolve()):
            return f"bundled:{p.name}"
    except OSError:
        pass
    return str(p)


def info_config(config: VQAConfig) -> dict[str, Any]:
    """The settings as written to vqa_info.json: no key, no credentials, no dataset path (the file is in it)."""
    from ..chat import public_url

    out = {k: v for k, v in vars(config).items() if k not in ("dataset", "api_key", "wait")}
    out["base_url"] = public_url(config.base_url) if config.base_url else None
    for k in ("prompt", "lexicon", "templates"):
        out[k] = shown_path(out[k])
    return out


def vqa_info(
    job: Job,
    samples: list[dict[str, Any]],
    records: dict[str, int],
    dropped: dict[str, Counter[str]],
    generated: Generated,
) -> dict[str, Any]:
    cfg, lex, templates = job.config, job.lexicon, job.templates
    order = {t: i for i, t in enumerate(templates.type_names)}
    types = Counter(s["question_type"] for s in samples)
    return {
        "provenance": provenance("vqa", config=info_config(cfg), packages=["pyyaml"], seed=cfg.seed),
        "generator": cfg.generator,
        "seed": cfg.seed,
        "per_image": cfg.per_image,
        "include_flagged": cfg.include_flagged,
        "exclude_flags": [*EXCLUDING_FLAGS, *cfg.exclude_flags],
        "lexicon": {"version": lex.version, "sha256": lex.sha256, "path": shown_path(lex.path)},
        "templates": {
            "version": templates.version,
            "sha256": templates.sha256,
            "path": shown_path(templates.path),
        },
        "uncurated": records["uncurated"] > 0,
        "records": {k: records[k] for k in ("total", "invalid", "usable", "with_samples")},
        "samples": len(samples),
        "question_types": dict(sorted(types.items(), key=lambda kv: (order.get(kv[0], 99), kv[0]))),
        "dropped": {k: dict(sorted(v.items())) for k, v in dropped.items()},
        **generated.info,
    }


def summary_line(info: dict[str, Any], errors: int, out: Path) -> str:
    types = ", ".join(f"{k} {v}" for k, v in info["question_types"].items())
    rec = info["records"]
    dropped = sum(info["dropped"]["samples"].values())
    llm = info.get("llm")
    calls = f", {llm['requests']} requests, {llm['cache_hits']} cached" if llm else ""
    return (
        f"vqa ({info['generator']}): {rec['usable']} of {rec['total']} records usable, "
        f"{info['samples']} samples ({types or 'none'}), {dropped} dropped{calls}, {errors} errors -> {out}"
    )


# --- the stage -----------------------------------------------------------------------------------------------
def run(config: VQAConfig, reporter: Reporter | None = None) -> StageResult:
    """Generate, write vqa.jsonl and vqa_info.json atomically, and say what was done. Raises StageError when the
    folder is not a dataset, ConfigError when a lexicon, template or prompt file cannot be used."""
    reporter = reporter or SILENT
    root = config.dataset
    if not (root / "records.jsonl").is_file():
        raise StageError(
            root, "no records.jsonl (not a dataset folder; run `mmskin build` first)", exit_code=2
        )
    with dataset_lock(root, "mmskin vqa", reporter, wait=config.wait):
        return _generate(config, root, reporter)


def _generate(config: VQAConfig, root: Path, reporter: Reporter) -> StageResult:
    problems = Problems(reporter)
    lex, templates = load_lexicon(config.lexicon), load_templates(config.templates)
    records, invalid = read_dataset_records(root / "records.jsonl", problems)
    uncurated = bool(records) and not any("modality" in r for r in records)
    new = sum(not is_curated(r) for r in records)
    partly = 0 < new < len(records)  # a build added records since the last curate
    usable, dropped_records = select_usable(
        records, root, config.include_flagged, problems, partly, tuple(config.exclude_flags)
    )
    if uncurated:
        reporter.warning(
            f"{root}: records have no modality (the dataset is not curated): modality questions are skipped "
            f"and captions are used as built; run `mmskin curate {root}` first for the full question mix"
        )
    elif partly:
        reporter.warning(
            f"{root}: {new} of {len(records)} records are not curated (added by a build since the last curate) "
            f"and are left out{' (--include-flagged: used)' if config.include_flagged else ''}; run "
            f"`mmskin curate {root}` first"
        )
    facts = {r["id"]: extract_facts(r["caption"], lex) for r in usable}
    job = Job(config, usable, facts, templates, lex)
    generated = GENERATORS[config.generator](job, reporter, problems)
    dropped_records.update(generated.dropped_records)
    samples, dropped_samples = to_samples(job, generated, dropped_records)
    counts = {
        "total": len(records) + invalid,
        "invalid": invalid,
        "usable": len(usable),
        "with_samples": len({s["record_id"] for s in samples}),
        "uncurated": int(uncurated),
    }
    dropped = {"records": dropped_records, "samples": dropped_samples}
    info = vqa_info(job, samples, counts, dropped, generated)
    write_jsonl(root / "vqa.jsonl", samples)
    write_info(root / "vqa_info.json", info)
    result_counts = {"records": counts["total"], "usable": len(usable), "samples": len(samples)}
    result_counts["dropped"] = sum(dropped_samples.values())
    summary = summary_line(info, len(problems), root / "vqa.jsonl")
    return StageResult("vqa", result_counts, problems, summary, extra={"info": info, "samples": samples})
