"""The ``openai`` generator: question-answer pairs from any OpenAI-compatible chat completions endpoint.

    OPENAI_API_KEY=... mmskin vqa data/derm --generator openai --base-url http://localhost:8000/v1 \\
        --model Qwen2.5-7B-Instruct --concurrency 4

Works with vLLM, Ollama (``http://localhost:11434/v1``), llama.cpp server, OpenAI. The prompt is a versioned file
(``data/vqa/prompts/openai_v1.yaml``); replies must be JSON that matches the schema (a list of
``{question, answer, question_type}``). Transient failures (HTTP 429/5xx, timeouts, refused or dropped
connections) are retried with exponential backoff and jitter, at most ``max_retries`` times; a reply that is not
valid JSON is asked for once more. Validated replies are cached under ``DATASET/.cache/vqa-llm/`` keyed by prompt
version + model + caption + the record facts sent, so a rerun makes no request for them. The API key comes from
``OPENAI_API_KEY`` and is never logged or written.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import random
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..records import atomic_write_bytes
from .lexicon import LexiconError, _bundled, read_yaml

MAX_QUESTION_CHARS = 300
MAX_ANSWER_CHARS = 1000
_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.S)


class LLMError(Exception):
    """A request that failed for good; ``reason`` is a short code counted in vqa_info.json."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


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
    return _bundled("prompts/openai_v1.yaml")


def load_prompt(path: str | Path | None = None) -> Prompt:
    p = Path(path) if path else default_prompt_path()
    obj, sha = read_yaml(p)
    for key in ("version", "system", "user"):
        if not isinstance(obj.get(key), str) or not obj[key].strip():
            raise LexiconError(f"{p}: needs a non-empty string {key!r}")
    return Prompt(obj["version"], sha, obj["system"].strip(), obj["user"].strip(), p)


def public_url(url: str) -> str:
    """The base URL without credentials, query or fragment (what may be written to vqa_info.json)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    try:
        if parts.port:
            host = f"{host}:{parts.port}"
    except ValueError:
        pass
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


@dataclass
class LLMConfig:
    base_url: str
    model: str
    api_key: str | None = field(default=None, repr=False)
    timeout: float = 60.0
    max_retries: int = 4
    retry_base: float = 1.0  # seconds before the first retry; doubles each time (with jitter)
    retry_cap: float = 30.0
    temperature: float = 0.0
    seed: int | None = 0
    max_tokens: int = 1024
    json_mode: bool = True  # response_format json_object; dropped once if the server refuses it


@dataclass
class Stats:
    requests: int = 0
    retries: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    invalid_json: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **kw: int) -> None:
        with self.lock:
            for k, v in kw.items():
                setattr(self, k, getattr(self, k) + v)

    def as_dict(self) -> dict[str, int]:
        return {
            k: getattr(self, k) for k in ("requests", "retries", "cache_hits", "cache_misses", "invalid_json")
        }


class ChatClient:
    """Minimal OpenAI-compatible ``/chat/completions`` client on urllib (no extra dependency)."""

    def __init__(self, cfg: LLMConfig, stats: Stats | None = None, sleep=time.sleep):
        self.cfg = cfg
        self.stats = stats or Stats()
        self._sleep = sleep
        parts = urllib.parse.urlsplit(cfg.base_url)
        try:
            port = parts.port
        except ValueError:
            port = -1
        if parts.scheme not in ("http", "https") or not parts.hostname or port == -1:
            raise ValueError(f"--base-url {public_url(cfg.base_url)!r} is not an http(s) URL")
        path = parts.path.rstrip("/")
        if not path.endswith("/chat/completions"):
            path += "/chat/completions"
        # credentials in the URL are never sent on (urllib would mistake them for the host) nor shown
        netloc = parts.hostname + (f":{port}" if port else "")
        self.url = urllib.parse.urlunsplit((parts.scheme, netloc, path, parts.query, ""))
        self._json_mode = cfg.json_mode
        self._rng = random.Random()

    def _redact(self, text: str) -> str:
        key = self.cfg.api_key
        return text.replace(key, "***") if key else text

    def _post(self, payload: dict[str, Any]) -> dict[str, Any]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.cfg.api_key:
            headers["Authorization"] = f"Bearer {self.cfg.api_key}"
        req = urllib.request.Request(self.url, json.dumps(payload).encode(), headers, method="POST")
        self.stats.add(requests=1)
        with urllib.request.urlopen(req, timeout=self.cfg.timeout) as resp:
            body = resp.read()
        try:
            return json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise LLMError("bad_response", "the server's reply is not JSON") from None

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        delay = min(self.cfg.retry_cap, self.cfg.retry_base * (2**attempt))
        delay = self._rng.uniform(delay / 2, delay)  # jitter: concurrent workers do not retry in lockstep
        if retry_after:
            try:
                delay = max(delay, min(self.cfg.retry_cap, float(retry_after)))
            except ValueError:
                pass
        return delay

    def complete(self, messages: list[dict[str, str]]) -> str:
        """The assistant message's content; retries transient failures, raises LLMError when it gives up."""
        attempt = 0
        while True:
            payload: dict[str, Any] = {
                "model": self.cfg.model,
                "messages": messages,
                "temperature": self.cfg.temperature,
                "max_tokens": self.cfg.max_tokens,
            }
            if self.cfg.seed is not None:
                payload["seed"] = self.cfg.seed
            if self._json_mode:
                payload["response_format"] = {"type": "json_object"}
            retry_after = None
            try:
                obj = self._post(payload)
                try:
                    content = obj["choices"][0]["message"]["content"]
                except (KeyError, IndexError, TypeError):
                    raise LLMError("bad_response", "no choices[0].message.content in the reply") from None
                if not isinstance(content, str):
                    raise LLMError("bad_response", "message content is not a string")
                return content
            except urllib.error.HTTPError as e:
                detail = ""
                try:
                    detail = e.read(300).decode("utf-8", "replace")
                except Exception:  # noqa: BLE001 - the body is only decoration for the message
                    pass
                if e.code == 400 and self._json_mode and "response_format" in detail:
                    self._json_mode = False  # some servers do not know json_object: ask again without it
                    continue
                if e.code != 429 and e.code < 500:
                    raise LLMError(f"http_{e.code}", self._redact(detail.strip()[:200])) from None
                reason, retry_after = f"http_{e.code}", e.headers.get("Retry-After") if e.headers else None
            except TimeoutError:
                reason = "timeout"
            except urllib.error.URLError as e:
                if isinstance(e.reason, TimeoutError):
                    reason = "timeout"
                else:
                    reason = "connection_error"
            except (ConnectionError, http.client.HTTPException, OSError):
                reason = "connection_error"
            if attempt >= self.cfg.max_retries:
                raise LLMError(reason, f"gave up after {attempt + 1} attempts")
            self.stats.add(retries=1)
            self._sleep(self._delay(attempt, retry_after))
            attempt += 1


def parse_items(content: str) -> list[dict[str, Any]]:
    """The reply's QA items as plain dicts, or LLMError('invalid_json') when the reply does not match the schema:
    a JSON object with a list under ``questions`` (or ``qa``/``items``/``samples``), or a bare JSON list."""
    text = content.strip()
    m = _FENCE.match(text)
    if m:
        text = m.group(1)
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise LLMError("invalid_json", f"reply is not JSON ({e.msg})") from None
    if isinstance(obj, dict):
        for key in ("questions", "qa", "items", "samples", "pairs"):
            if isinstance(obj.get(key), list):
                obj = obj[key]
                break
    if not isinstance(obj, list):
        raise LLMError("invalid_json", "reply has no list of question-answer items")
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
    """(raw items, from_cache) for one caption; raises LLMError when the endpoint fails for good."""
    key = cache.key(prompt, client.cfg.model, caption, facts)
    cached = cache.get(key)
    if cached is not None:
        client.stats.add(cache_hits=1)
        return cached, True
    client.stats.add(cache_misses=1)
    messages = prompt.messages(caption, facts, k, types)
    for attempt in range(json_retries + 1):
        content = client.complete(messages)
        try:
            items = parse_items(content)
        except LLMError:
            client.stats.add(invalid_json=1)
            if attempt >= json_retries:
                raise
            continue
        cache.put(key, items, {"prompt_version": prompt.version, "model": client.cfg.model})
        return items, False
    raise LLMError("invalid_json")  # unreachable: the loop returns or raises
