"""The ``openai`` generator: question-answer pairs from any OpenAI-compatible chat completions endpoint.

    OPENAI_API_KEY=... mmskin vqa data/derm --generator openai --base-url http://localhost:8000/v1 \\
        --model Qwen2.5-7B-Instruct --concurrency 4

Works with vLLM, Ollama (``http://localhost:11434/v1``), llama.cpp server, OpenAI, through the one chat client
(:mod:`mmskin.chat`: retries with backoff and jitter, Retry-After, the key from ``OPENAI_API_KEY``, never logged or
written). The prompt is a versioned file (``data/vqa/prompts/openai_v1.yaml``); replies must be JSON that matches
the schema (a list of ``{question, answer, question_type}``); a reply that is not is asked for once more.
Validated replies are cached under ``DATASET/.cache/vqa-llm/`` keyed by prompt version + model + caption + the
record facts sent, so a rerun makes no request for them. A record whose request fails for good is one problem;
its reason code (``http_429``, ``timeout``, ``invalid_json``, ...) is counted in vqa_info.json.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..chat import ChatClient, ChatConfig, ChatError, Stats, public_url
from ..records import atomic_write_bytes
from ..resources import data_path
from ..stage import Problems, Reporter
from .lexicon import LexiconError, read_yaml

if TYPE_CHECKING:
    from .generate import Generated, Job
    from .template import Templates

MAX_QUESTION_CHARS = 300
MAX_ANSWER_CHARS = 1000
_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.S)


@dataclass(frozen=True)
class Prompt:
    version: str
    sha256: str
    system: str
    user: str
    path: Path

    def messages(self, caption: str, facts: dict[str, Any], k: int, types: list[str]) -> list[dict[str, str]]:
        fact_text = "; ".join(f"{key}: {val}" for key, val in facts.items()) or "none"
        user = (
            self.user.replace("{caption}", caption)
            .replace("{facts}", fact_text)
            .replace("{k}", str(k))
            .replace("{types}", ", ".join(types))
        )
        return [{"role": "system", "content": self.system}, {"role": "user", "content": user}]


def default_prompt_path() -> Path:
    return data_path("vqa", "prompts", "openai_v1.yaml")


def load_prompt(path: str | Path | None = None) -> Prompt:
    p = Path(path) if path else default_prompt_path()
    obj, sha = read_yaml(p)
    for key in ("version", "system", "user"):
        if not isinstance(obj.get(key), str) or not obj[key].strip():
            raise LexiconError(f"{p}: needs a non-empty string {key!r}")
    return Prompt(obj["version"], sha, obj["system"].strip(), obj["user"].strip(), p)


def parse_items(content: str) -> list[dict[str, Any]]:
    """The reply's QA items as plain dicts, or ChatError('invalid_json') when the reply does not match the schema:
    a JSON object with a list under ``questions`` (or ``qa``/``items``/``samples``), or a bare JSON list."""
    text = content.strip()
    m = _FENCE.match(text)
    if m:
        text = m.group(1)
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise ChatError("invalid_json", f"reply is not JSON ({e.msg})") from None
    if isinstance(obj, dict):
        for key in ("questions", "qa", "items", "samples", "pairs"):
            if isinstance(obj.get(key), list):
                obj = obj[key]
                break
    if not isinstance(obj, list):
        raise ChatError("invalid_json", "reply has no list of question-answer items")
    return [x for x in obj if isinstance(x, dict)] if obj else []


def validate_item(item: dict[str, Any]) -> tuple[dict[str, str] | None, str | None]:
    """(clean item, None) or (None, reason) for one ``{question, answer, question_type}`` item."""
    q, a, t = item.get("question"), item.get("answer"), item.get("question_type", "")
    if not isinstance(q, str) or not q.strip():
        return None, "invalid_item:question"
    if not isinstance(a, str) or not a.strip():
        return None, "invalid_item:answer"
    if not isinstance(t, str):
        t = ""
    q, a = " ".join(q.split()), " ".join(a.split())
    if len(q) > MAX_QUESTION_CHARS or len(a) > MAX_ANSWER_CHARS:
        return None, "invalid_item:too_long"
    return {"question": q, "answer": a, "question_type": t.strip().lower()}, None


class ResponseCache:
    """Validated replies on disk, one JSON file per key (atomic writes; an unreadable file is a miss)."""

    def __init__(self, root: Path):
        self.root = root

    @staticmethod
    def key(prompt: Prompt, model: str, caption: str, facts: dict[str, Any]) -> str:
        material = json.dumps(
            {"prompt": prompt.version, "prompt_sha256": prompt.sha256, "model": model, "caption": caption,
             "facts": facts},
            sort_keys=True,
        )  # fmt: skip
        return hashlib.sha256(material.encode()).hexdigest()

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> list[dict[str, Any]] | None:
        try:
            obj = json.loads(self._path(key).read_text("utf-8"))
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            return None
        items = obj.get("items") if isinstance(obj, dict) else None
        return items if isinstance(items, list) else None

    def put(self, key: str, items: list[dict[str, Any]], meta: dict[str, Any]) -> None:
        data = json.dumps({**meta, "items": items}, sort_keys=True, ensure_ascii=False, indent=1)
        atomic_write_bytes(self._path(key), data.encode("utf-8"))


def ask_for_items(
    client: ChatClient,
    cache: ResponseCache,
    prompt: Prompt,
    caption: str,
    facts: dict[str, Any],
    k: int,
    types: list[str],
    json_retries: int = 1,
) -> tuple[list[dict[str, Any]], bool]:
    """(raw items, from_cache) for one caption; raises ChatError when the endpoint fails for good."""
    key = cache.key(prompt, client.cfg.model, caption, facts)
    cached = cache.get(key)
    if cached is not None:
        client.stats.add(cache_hits=1)
        return cached, True
    client.stats.add(cache_misses=1)
    messages = prompt.messages(caption, facts, k, types)
    for attempt in range(json_retries + 1):
        content = client.complete(messages)
        if content is None:  # a null message content: the server answered nothing we can read
            raise ChatError("bad_response", "message content is not a string")
        try:
            items = parse_items(content)
        except ChatError:
            client.stats.add(invalid_json=1)
            if attempt >= json_retries:
                raise
            continue
        cache.put(key, items, {"prompt_version": prompt.version, "model": client.cfg.model})
        return items, False
    raise ChatError("invalid_json")  # unreachable: the loop returns or raises


# --- the generator -------------------------------------------------------------------------------------------
SAMPLING = {"temperature": 0.0, "max_tokens": 1024}  # + the run's seed: the same reply for the same request


def record_facts(rec: dict[str, Any], templates: Templates) -> dict[str, Any]:
    """The record fields sent with the caption (modality phrase, age, sex), as far as curate filled them."""
    facts: dict[str, Any] = {}
    if isinstance(rec.get("modality"), str) and rec["modality"] in templates.modality_phrases:
        facts["modality"] = templates.modality_phrases[rec["modality"]]
    if isinstance(rec.get("age"), (int, float)) and not isinstance(rec.get("age"), bool):
        facts["age"] = rec["age"]
    if rec.get("sex") in ("male", "female"):
        facts["sex"] = rec["sex"]
    return facts


def generate_items(job: Job, reporter: Reporter, problems: Problems) -> Generated:
    """Ask the endpoint for the items of every usable record (``concurrency`` at a time, cached replies first);
    a record whose request fails for good is one problem and is dropped as ``llm_failed:<reason>``."""
    from .generate import DEFAULT_LLM_QUESTIONS, Generated, shown_path

    cfg = job.config
    prompt = load_prompt(cfg.prompt)
    stats = Stats(("requests", "retries", "cache_hits", "cache_misses", "invalid_json"))
    client = ChatClient(
        ChatConfig(
            base_url=cfg.base_url or "",
            model=cfg.model or "",
            api_key=cfg.api_key or None,
            timeout=cfg.timeout,
            max_retries=cfg.max_retries,
            retry_base=cfg.retry_base,
            retry_time=cfg.retry_time,
            max_failures=cfg.max_failures,
            json_mode=True,
            params={**SAMPLING, "seed": cfg.seed},
        ),
        stats,
    )
    cache = ResponseCache(Path(cfg.dataset) / ".cache" / "vqa-llm")
    k = cfg.per_image if cfg.per_image else DEFAULT_LLM_QUESTIONS
    types = list(job.templates.type_names)
    failures: Counter[str] = Counter()
    invalid_items: Counter[str] = Counter()
    lock = threading.Lock()  # workers count invalid items concurrently

    def one(rec: dict[str, Any]) -> list[dict[str, str]]:
        caption = job.facts[rec["id"]].caption
        facts = record_facts(rec, job.templates)
        items, _ = ask_for_items(client, cache, prompt, caption, facts, k, types)
        out = []
        for it in items:
            clean, reason = validate_item(it)
            if clean is None:
                with lock:
                    invalid_items[reason or "invalid_item"] += 1
                continue
            out.append(clean)
        return out

    generated = Generated({}, "no_items")
    with reporter.progress(len(job.records), "vqa (llm)") as advance:
        with ThreadPoolExecutor(max_workers=max(1, cfg.concurrency)) as pool:
            futures = {pool.submit(one, rec): rec for rec in job.records}
            for fut in as_completed(futures):
                rec = futures[fut]
                try:
                    generated.items[rec["id"]] = fut.result()
                except ChatError as e:
                    failures[e.reason] += 1
                    generated.dropped_records[f"llm_failed:{e.reason}"] += 1
                    problems.add(f"{public_url(cfg.base_url or '')}: record {rec['id']}", str(e))
                advance(1)
    generated.info = {
        "prompt": {"version": prompt.version, "sha256": prompt.sha256, "path": shown_path(prompt.path)},
        "model": cfg.model,
        "base_url": public_url(cfg.base_url or ""),
        "llm": {
            **stats.as_dict(),
            "failures": dict(sorted(failures.items())),
            "invalid_items": dict(sorted(invalid_items.items())),
            "concurrency": cfg.concurrency,
            "timeout_s": cfg.timeout,
            "max_retries": cfg.max_retries,
            "retry_time_s": cfg.retry_time,
            "max_failures": cfg.max_failures,
        },
    }
    return generated
