"""One client for OpenAI-compatible ``/chat/completions`` servers (vLLM, Ollama, llama.cpp, the OpenAI API).

Both network uses of mmskin go through it: the ``openai`` VQA generator (``mmskin vqa --generator openai``) and
the ``openai:MODEL`` adapter of ``mmskin eval``. Plain urllib, no extra dependency.

- Transient failures are retried: HTTP 408, 409, 429 and 5xx, timeouts, refused or dropped connections, a reply
  that is not JSON. The wait doubles from ``retry_base`` (with jitter, so concurrent workers do not retry in
  lockstep), is capped at ``retry_cap``, and is never shorter than the server's ``Retry-After``. A request gives
  up after ``max_retries`` retries or when the next wait would end more than ``retry_time`` seconds after its
  first try, whichever comes first. Once ``max_failures`` requests in a row have failed for good (a server that
  is down or always answers 500), the client sends no more: every later request fails at once, saying why.
- The API key is ``api_key`` or ``$OPENAI_API_KEY``. It is sent only in the ``Authorization`` header, never
  logged or written. Credentials in the base URL are stripped (never sent as part of the host, never shown);
  :func:`public_url` is the form that may be printed or stored. Every secret (the key, the URL's user and
  password, its query values such as ``?api-key=…``) is blanked out of every error detail and of the replies
  themselves, so a server that echoes one back cannot get it into a cache, a predictions file or a log.
- ``json_mode`` asks for ``response_format: json_object``; a server that refuses that field with HTTP 400 is
  asked again without it (once per client).

    >>> from mmskin.chat import ChatClient, ChatConfig
    >>> client = ChatClient(ChatConfig(base_url="http://localhost:11434/v1", model="llama3.1"))
    >>> client.complete([{"role": "user", "content": "Name one skin lesion."}])
    'A melanocytic nevus.'
"""

from __future__ import annotations

import email.utils
import http.client
import json
import os
import random
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

RETRY_STATUS = frozenset({408, 409, 429})  # and every 5xx


class ChatError(Exception):
    """A request that failed for good. ``reason`` is a short code (``http_429``, ``timeout``,
    ``connection_error``, ``bad_response``, ...) that callers count; ``detail`` says what happened."""

    def __init__(self, reason: str, detail: str = "", status: int | None = None) -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason, self.detail, self.status = reason, detail, status


@dataclass
class ChatConfig:
    base_url: str  # e.g. http://localhost:8000/v1; /chat/completions is appended
    model: str
    api_key: str | None = field(default=None, repr=False)  # None: $OPENAI_API_KEY
    timeout: float = 60.0  # seconds per request
    max_retries: int = 4
    retry_base: float = 1.0  # seconds before the first retry; doubles each time (with jitter)
    retry_cap: float = 30.0  # longest single wait, Retry-After included
    retry_time: float = 300.0  # no retry starts later than this many seconds after the first try
    max_failures: int = 10  # after this many requests in a row failed for good, send no more (0: never stop)
    json_mode: bool = False  # response_format json_object; dropped once if the server refuses it
    params: dict[str, Any] = field(default_factory=dict)  # sent with every request: temperature, seed, ...


# the retry settings as command-line options (``mmskin vqa --generator openai`` and ``mmskin eval --model openai:``
# declare them with :func:`retry_option`, so both commands offer the same ones): name -> (default, help, metavar)
RETRY_OPTIONS: dict[str, tuple[Any, str, str | None]] = {
    "timeout": (60.0, "seconds per request", "S"),
    "max_retries": (4, "retries on 429/5xx/timeouts", None),
    "retry_base": (1.0, "seconds before the first retry, doubled each time, with jitter", "S"),
    "retry_time": (300.0, "no retry of a request starts later than this after its first try", "S"),
    "max_failures": (
        10,
        "send no more requests after this many in a row failed for good (0: never stop)",
        "N",
    ),
}


def retry_option(name: str, prefix: str = "", default: Any = None) -> Any:
    """The config field of one of :data:`RETRY_OPTIONS` (``prefix`` starts its help; ``default`` replaces its
    default)."""
    from .config import option

    value, help, metavar = RETRY_OPTIONS[name]
    meta = {"metavar": metavar} if metavar else {}
    return option(value if default is None else default, prefix + help, **meta)


class Stats:
    """Thread-safe counters (``requests`` and ``retries`` are kept by the client; callers may add their own)."""

    def __init__(self, names: Iterable[str] = ("requests", "retries")) -> None:
        self._counts = dict.fromkeys(names, 0)
        self._lock = threading.Lock()

    def add(self, **amounts: int) -> None:
        with self._lock:
            for name, n in amounts.items():
                self._counts[name] = self._counts.get(name, 0) + n

    def __getattr__(self, name: str) -> int:
        counts = self.__dict__.get("_counts", {})
        if name in counts:
            return counts[name]
        raise AttributeError(name)

    def as_dict(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


def public_url(url: str) -> str:
    """The base URL without credentials, query or fragment (what may be printed or written)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    try:
        if parts.port:
            host = f"{host}:{parts.port}"
    except ValueError:
        pass
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


def endpoint(base_url: str) -> str:
    """The chat-completions URL of a base URL, without credentials; ValueError when it is not http(s)."""
    parts = urllib.parse.urlsplit(base_url)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in ("http", "https") or not parts.hostname or port == -1:
        raise ValueError(f"{public_url(base_url)!r} is not an http(s) URL")
    path = parts.path.rstrip("/")
    if not path.endswith("/chat/completions"):
        path += "/chat/completions"
    # credentials in the URL are never sent on (urllib would mistake them for the host) nor shown
    netloc = parts.hostname + (f":{port}" if port else "")
    return urllib.parse.urlunsplit((parts.scheme, netloc, path, parts.query, ""))


def url_secrets(url: str) -> list[str]:
    """The secrets a base URL may carry: its user name, password and query values (4 characters or more)."""
    parts = urllib.parse.urlsplit(url)
    found = [parts.username or "", parts.password or ""]
    found += [urllib.parse.unquote(p) for p in (parts.username or "", parts.password or "")]
    found += [v for _, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)]
    found += [p.partition("=")[2] for p in parts.query.split("&")]  # as written, still percent-encoded
    return sorted({f for f in found if len(f) >= 4}, key=len, reverse=True)


def redact(text: str, secret: str | Iterable[str] | None, limit: int | None = None) -> str:
    """``text`` with every secret (one string, or several) replaced by ``***``, cut to ``limit`` characters
    without leaving the start of a secret at the cut."""
    secrets = [secret] if isinstance(secret, str) else [x for x in secret or () if x]
    for x in sorted(secrets, key=len, reverse=True):
        text = text.replace(x, "***")
    if limit is not None and len(text) > limit:
        text = text[:limit]
        for x in secrets:
            for n in range(min(len(x), len(text)), 3, -1):
                if text.endswith(x[:n]):
                    return text[:-n] + "***"
    return text


def retryable_status(code: int) -> bool:
    return code in RETRY_STATUS or code >= 500


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def backoff_delay(
    attempt: int, base: float, cap: float, retry_after: float | None = None, rng: random.Random | None = None
) -> float:
    """Seconds to wait before retry ``attempt`` (0 = the first retry): ``base * 2**attempt`` capped at ``cap``,
    drawn in its upper half (jitter), and never shorter than the server's Retry-After (itself capped at ``cap``)."""
    delay = min(cap, base * (2**attempt))
    delay = (rng or random).uniform(delay / 2, delay)
    if retry_after is not None:
        delay = max(delay, min(cap, retry_after))
    return delay


@dataclass(frozen=True)
class _Failure:
    """One try that may be retried."""

    reason: str
    description: str
    retry_after: float | None = None


class ChatClient:
    """``complete(messages)`` against ``cfg.base_url``; see the module docstring for retries and key handling."""

    def __init__(
        self,
        cfg: ChatConfig,
        stats: Stats | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cfg = cfg
        self.url = endpoint(cfg.base_url)
        self.stats = stats if stats is not None else Stats()
        self._key = cfg.api_key if cfg.api_key is not None else os.environ.get("OPENAI_API_KEY")
        self._secrets = [self._key or "", *url_secrets(cfg.base_url)]
        self._sleep, self._clock = sleep, clock
        self._json_mode = cfg.json_mode
        self._rng = random.Random()
        self._failed_in_row = 0  # requests in a row that failed for good (any thread)
        self._last_failure: ChatError | None = None
        self._lock = threading.Lock()

    @property
    def public_url(self) -> str:
        return public_url(self.url)

    def _redact(self, text: str, limit: int | None = None) -> str:
        return redact(text, self._secrets, limit)

    def _payload(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        payload: dict[str, Any] = {"model": self.cfg.model, "messages": messages, **self.cfg.params}
        if self._json_mode:
            payload["response_format"] = {"type": "json_object"}
        return payload

    def _send(self, payload: dict[str, Any]) -> dict[str, Any]:
        """One HTTP request; the reply's JSON object. Raises urllib/OS errors and ValueError (not JSON)."""
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        req = urllib.request.Request(self.url, json.dumps(payload).encode(), headers, method="POST")
        self.stats.add(requests=1)
        with urllib.request.urlopen(req, timeout=self.cfg.timeout) as resp:
            body = resp.read()
        return json.loads(body)

    @staticmethod
    def _content(reply: Any) -> str | None:
        try:
            content = reply["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise ChatError("bad_response", "no choices[0].message.content in the reply") from None
        if content is not None and not isinstance(content, str):
            raise ChatError("bad_response", "message content is not a string")
        return content

    def _try(self, messages: list[dict[str, Any]]) -> tuple[str | None, _Failure | None]:
        """(content, None) or (None, a failure worth retrying); raises ChatError for one that is not."""
        try:
            return self._content(self._send(self._payload(messages))), None
        except urllib.error.HTTPError as e:
            status = f"HTTP {e.code} {e.reason}".strip()
            body = _body(e)
            if e.code == 400 and self._json_mode and "response_format" in body:
                self._json_mode = False  # some servers do not know json_object: ask again without it
                return self._try(messages)
            if not retryable_status(e.code):
                detail = f"{status}: {body.strip()}" if body.strip() else status
                raise ChatError(f"http_{e.code}", self._redact(detail, 240), e.code) from None
            ra = retry_after_seconds(e.headers.get("Retry-After") if e.headers else None)
            return None, _Failure(f"http_{e.code}", status, ra)
        except TimeoutError:
            return None, _Failure("timeout", f"no reply within {self.cfg.timeout:g} s")
        except urllib.error.URLError as e:
            if isinstance(e.reason, TimeoutError):
                return None, _Failure("timeout", f"no reply within {self.cfg.timeout:g} s")
            return None, _Failure("connection_error", self._redact(f"{type(e.reason).__name__}: {e.reason}"))
        except (ConnectionError, http.client.HTTPException, OSError) as e:
            return None, _Failure("connection_error", self._redact(f"{type(e).__name__}: {e}"))
        except (ValueError, UnicodeDecodeError):
            return None, _Failure("bad_response", "the server's reply is not JSON")

    def complete(self, messages: list[dict[str, Any]]) -> str | None:
        """The assistant message's content (None when the server sent null; secrets blanked out); raises
        ChatError when it gives up, at once when ``max_failures`` requests in a row have failed for good."""
        with self._lock:
            stop = self.cfg.max_failures and self._failed_in_row >= self.cfg.max_failures
            last = self._last_failure
        if stop and last is not None:
            raise ChatError(
                last.reason,
                f"not sent: the last {self._failed_in_row} requests failed for good (last: {last.detail})",
                last.status,
            )
        try:
            content = self._complete(messages)
        except ChatError as e:
            with self._lock:
                self._failed_in_row += 1
                self._last_failure = e
            raise
        with self._lock:
            self._failed_in_row = 0
        return None if content is None else self._redact(content)

    def _complete(self, messages: list[dict[str, Any]]) -> str | None:
        start = self._clock()
        tries = 0
        while True:
            content, failure = self._try(messages)
            tries += 1
            if failure is None:
                return content
            gave_up = f"gave up after {tries} tries ({failure.description})"
            if tries > self.cfg.max_retries:
                raise ChatError(failure.reason, gave_up)
            delay = backoff_delay(
                tries - 1, self.cfg.retry_base, self.cfg.retry_cap, failure.retry_after, self._rng
            )
            if self._clock() - start + delay > self.cfg.retry_time:
                raise ChatError(failure.reason, f"{gave_up}; the {self.cfg.retry_time:g} s retry time is up")
            self.stats.add(retries=1)
            self._sleep(delay)


def _body(e: urllib.error.HTTPError, limit: int = 4096) -> str:
    """The start of an error reply's body: only decoration for the message."""
    try:
        return e.read(limit).decode("utf-8", "replace")
    except Exception:  # noqa: BLE001 - a body that cannot be read changes nothing
        return ""
