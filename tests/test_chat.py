"""mmskin.chat, the one OpenAI-compatible client, against a scripted chat-completions server on 127.0.0.1:
Retry-After is honoured, the retry time is capped as well as the retry count, client errors are not retried, the
json_object fallback, and the API key (or credentials in the base URL) never appear in an error."""

from __future__ import annotations

import json
import random
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mmskin.chat import (
    ChatClient,
    ChatConfig,
    ChatError,
    Stats,
    backoff_delay,
    endpoint,
    public_url,
    redact,
    retry_after_seconds,
    retryable_status,
    url_secrets,
)

KEY = "sk-test-KEY-0123456789"
OK = (200, {}, {"choices": [{"message": {"role": "assistant", "content": "a nevus"}}]})


class Server:
    """Answers each POST with the next scripted (status, headers, body) and records bodies and headers; ``echo``
    answers errors with the request's headers in the body (a server that leaks what it got)."""

    def __init__(self, script: list[tuple[int, dict, object]], default=OK, echo: bool = False) -> None:
        self.script, self.default, self.echo = list(script), default, echo
        self.bodies: list[dict] = []
        self.headers: list[dict] = []
        self.paths: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.bodies.append(body)
                outer.headers.append(dict(self.headers))
                outer.paths.append(self.path)
                status, headers, reply = outer.script.pop(0) if outer.script else outer.default
                if callable(reply):
                    status, headers, reply = reply(body)
                if outer.echo and status >= 400:
                    reply = {
                        "error": "bad request",
                        "auth": self.headers.get("Authorization"),
                        "all": dict(self.headers),
                    }
                data = reply if isinstance(reply, bytes) else json.dumps(reply).encode()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        return self

    def __exit__(self, *a) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


class FakeTime:
    """sleep() advances clock(): retry waits are recorded, not slept."""

    def __init__(self) -> None:
        self.now, self.slept = 0.0, []

    def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.now += s

    def clock(self) -> float:
        return self.now


def _client(url: str, t: FakeTime | None = None, **cfg) -> ChatClient:
    t = t or FakeTime()
    return ChatClient(ChatConfig(base_url=url, model="m", **cfg), sleep=t.sleep, clock=t.clock)


MSG = [{"role": "user", "content": "What is shown?"}]


def test_a_reply_with_the_key_and_params(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with Server([]) as srv:
        c = _client(srv.url, params={"temperature": 0.0, "seed": 3})
        assert c.complete(MSG) == "a nevus"
    assert srv.paths == ["/v1/chat/completions"]
    assert srv.headers[0]["Authorization"] == f"Bearer {KEY}"
    assert srv.bodies[0] == {"model": "m", "messages": MSG, "temperature": 0.0, "seed": 3}
    assert c.stats.as_dict() == {"requests": 1, "retries": 0}
    assert KEY not in repr(c.cfg)


def test_retry_after_is_honoured():
    t = FakeTime()
    with Server([(429, {"Retry-After": "7"}, {"error": "slow down"}), (503, {}, {})]) as srv:
        c = _client(srv.url, t, retry_base=0.01, retry_cap=30.0)
        assert c.complete(MSG) == "a nevus"
    assert len(srv.bodies) == 3 and c.stats.retries == 2
    assert t.slept[0] == 7.0  # the server's wait, not the 0.01 s backoff
    assert t.slept[1] <= 0.02


def test_the_total_retry_time_is_capped():
    t = FakeTime()
    with Server([], default=(503, {}, {"error": "overloaded"})) as srv:
        c = _client(srv.url, t, max_retries=100, retry_base=1.0, retry_cap=4.0, retry_time=20.0)
        with pytest.raises(ChatError) as e:
            c.complete(MSG)
    assert e.value.reason == "http_503" and "20 s retry time is up" in str(e.value)
    assert sum(t.slept) <= 20.0 and len(srv.bodies) == len(t.slept) + 1 < 101
    assert f"gave up after {len(srv.bodies)} tries" in str(e.value)


def test_the_retry_count_is_capped_and_client_errors_are_not_retried():
    with Server([], default=(500, {}, {})) as srv:
        with pytest.raises(ChatError, match=r"http_500: gave up after 3 tries \(HTTP 500"):
            _client(srv.url, max_retries=2, retry_base=0.01).complete(MSG)
        assert len(srv.bodies) == 3
    with Server([(404, {}, {"error": "no such model"})]) as srv:
        with pytest.raises(ChatError) as e:
            _client(srv.url, max_retries=5).complete(MSG)
        assert len(srv.bodies) == 1 and e.value.status == 404
        assert "HTTP 404" in str(e.value) and "no such model" in str(e.value)


@pytest.mark.parametrize("url_creds", [False, True])
def test_the_key_is_never_in_an_error(monkeypatch, url_creds):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with Server([(400, {}, {})], echo=True) as srv:  # the server echoes the Authorization header back
        url = srv.url.replace("http://", "http://user:pw-SECRET@") if url_creds else srv.url
        c = _client(url)
        with pytest.raises(ChatError) as e:
            c.complete(MSG)
        assert "Bearer ***" in str(e.value)
        assert KEY not in str(e.value) and "SECRET" not in str(e.value) and "SECRET" not in c.public_url
        assert "Basic" not in json.dumps(srv.headers)  # URL credentials are not sent either
    with Server([], default=(503, {}, {})) as srv:
        with pytest.raises(ChatError) as e:
            _client(srv.url, api_key=KEY, max_retries=1, retry_base=0.01).complete(MSG)
        assert KEY not in str(e.value) and srv.headers[0]["Authorization"] == f"Bearer {KEY}"


def test_json_mode_falls_back_once_when_the_server_refuses_it():
    def refuse(body):
        if "response_format" in body:
            return 400, {}, {"error": {"message": "unknown field response_format"}}
        return OK

    with Server([], default=(200, {}, refuse)) as srv:
        c = _client(srv.url, json_mode=True)
        assert c.complete(MSG) == "a nevus" and c.complete(MSG) == "a nevus"
    assert ["response_format" in b for b in srv.bodies] == [True, False, False]
    assert c.stats.retries == 0


def test_timeouts_bad_replies_and_refused_connections_are_retried():
    with Server([(200, {}, b"<html>gateway</html>")]) as srv:
        c = _client(srv.url, retry_base=0.01)
        assert c.complete(MSG) == "a nevus" and c.stats.retries == 1
    with Server([(200, {}, {"choices": []})]) as srv:
        with pytest.raises(ChatError, match="bad_response"):  # a reply without content is not retried
            _client(srv.url).complete(MSG)
    with Server([(200, {}, {"choices": [{"message": {"content": None}}]})]) as srv:
        assert _client(srv.url).complete(MSG) is None
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    t = FakeTime()
    c = _client(f"http://127.0.0.1:{port}/v1", t, max_retries=2, timeout=2)
    with pytest.raises(ChatError) as e:
        c.complete(MSG)
    assert e.value.reason == "connection_error" and len(t.slept) == 2 and c.stats.requests == 3


@pytest.mark.parametrize(
    "attempt, base, cap, retry_after, low, high",
    [
        (0, 1.0, 30.0, None, 0.5, 1.0),
        (1, 1.0, 30.0, None, 1.0, 2.0),
        (3, 1.0, 30.0, None, 4.0, 8.0),
        (10, 1.0, 8.0, None, 4.0, 8.0),  # capped
        (0, 1.0, 8.0, 5.0, 5.0, 5.0),  # Retry-After longer than the backoff wins
        (0, 1.0, 8.0, 100.0, 8.0, 8.0),  # ... but not past the cap
        (3, 1.0, 30.0, 0.0, 4.0, 8.0),  # Retry-After 0 does not shorten the backoff
    ],
)
def test_backoff_delay(attempt, base, cap, retry_after, low, high):
    for seed in range(20):
        d = backoff_delay(attempt, base, cap, retry_after, random.Random(seed))
        assert low <= d <= high


@pytest.mark.parametrize(
    "value, seconds",
    [
        (None, None),
        ("", None),
        ("3", 3.0),
        ("1.5", 1.5),
        ("-2", 0.0),
        ("soon", None),
        ("Wed, 21 Oct 2015 07:28:10 GMT", 10.0),
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),  # in the past
    ],
)
def test_retry_after_seconds(value, seconds):
    now = 1445412480.0  # Wed, 21 Oct 2015 07:28:00 GMT
    assert retry_after_seconds(value, now=now) == seconds


@pytest.mark.parametrize(
    "text, limit, shown",
    [
        (f"key {KEY} here", None, "key *** here"),
        (f"key {KEY} and {KEY}", 12, "key *** and "),
        (f"header: Bearer {KEY}", 24, "header: Bearer ***"),  # the cut falls inside the key
        ("nothing secret", 7, "nothing"),
    ],
)
def test_redact(text, limit, shown):
    assert redact(text, KEY, limit) == shown
    assert redact(text, None) == text


@pytest.mark.parametrize(
    "code, retry", [(400, False), (401, False), (404, False), (408, True), (409, True), (429, True), (500, True),
                    (501, True), (503, True)]
)  # fmt: skip
def test_retryable_status(code, retry):
    assert retryable_status(code) is retry


@pytest.mark.parametrize(
    "base, url, shown",
    [
        ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8000/v1/chat/completions", "http://127.0.0.1:8000/v1"),
        ("https://u:p@api.example.com/v1/?v=2#x", "https://api.example.com/v1/chat/completions?v=2",
         "https://api.example.com/v1/"),
        ("http://h/v1/chat/completions", "http://h/v1/chat/completions", "http://h/v1/chat/completions"),
    ],
)  # fmt: skip
def test_endpoint_and_public_url(base, url, shown):
    assert endpoint(base) == url and public_url(base) == shown


@pytest.mark.parametrize("base", ["ftp://x/v1", "localhost:8000", "http://h:notaport/v1", "http:///v1"])
def test_endpoint_refuses_other_urls(base):
    with pytest.raises(ValueError, match="not an http"):
        endpoint(base)


def test_stats_are_counted_across_threads():
    stats = Stats(("requests", "retries", "cache_hits"))
    threads = [
        threading.Thread(target=lambda: [stats.add(cache_hits=1) for _ in range(500)]) for _ in range(4)
    ]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert stats.as_dict() == {"requests": 0, "retries": 0, "cache_hits": 2000} and stats.cache_hits == 2000


def test_secrets_in_the_url_or_echoed_in_a_reply_are_blanked(monkeypatch):
    """A server that echoes what it got (the key, the URL's query) in an error or in its answer: nothing of it
    reaches the caller, so no cache, predictions file or log can hold it."""
    monkeypatch.setenv("OPENAI_API_KEY", KEY)

    def echo(body):
        return (
            200,
            {},
            {"choices": [{"message": {"content": f"your key is {KEY} and pw-SECRET, q=QSECRET99"}}]},
        )

    with Server([], default=(200, {}, echo)) as srv:
        url = srv.url.replace("http://", "http://user:pw-SECRET@") + "?api-key=QSECRET99"
        c = _client(url)
        assert c.complete(MSG) == "your key is *** and ***, q=***"
    assert srv.paths == ["/v1/chat/completions?api-key=QSECRET99"]  # the query is still sent
    assert redact("a QSECRET99 b", url_secrets(url)) == "a *** b"
    assert url_secrets("http://h/v1?v=1") == []  # values too short to be secrets are left alone


def test_a_server_that_always_fails_is_given_up(monkeypatch):
    """After max_failures requests in a row failed for good, the rest fail at once without a request."""
    t = FakeTime()
    with Server([], default=(500, {}, {})) as srv:
        c = _client(srv.url, t, max_retries=1, retry_base=0.01, max_failures=3)
        errors = []
        for _ in range(6):
            with pytest.raises(ChatError) as e:
                c.complete(MSG)
            errors.append(str(e.value))
    assert len(srv.bodies) == 3 * 2  # 3 requests of 2 tries each, then nothing
    assert errors[3].startswith("http_500: not sent: the last 3 requests failed for good (last: gave up")
    with Server([(500, {}, {}), OK, (500, {}, {}), OK]) as srv:
        c = _client(srv.url, max_retries=0, max_failures=2)
        with pytest.raises(ChatError):
            c.complete(MSG)
        assert c.complete(MSG) == "a nevus"  # a success resets the count ...
        with pytest.raises(ChatError):
            c.complete(MSG)
        assert c.complete(MSG) == "a nevus"  # ... so two failures apart do not stop the client


def test_provenance_never_holds_credentials():
    from mmskin.provenance import provenance

    block = provenance(
        "eval vqa",
        config={
            "model": {"base_url": "http://u:PW@h:8000/v1?api-key=QS", "spec": "openai:m"},
            "api_key": "sk",
        },
        urls=["https://x.org/a?token=T0KEN"],
    )
    text = json.dumps(block)
    assert "PW" not in text and "QS" not in text and "T0KEN" not in text and '"sk"' not in text
    assert block["config"]["model"]["base_url"] == "http://h:8000/v1" and block["config"]["api_key"] == "***"
