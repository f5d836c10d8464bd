"""Fixtures of the vqa generation tests (prefixed ``vqa_gen_``): the demo dataset and a fake OpenAI-compatible
chat server on 127.0.0.1 (http.server in a thread, port 0, stopped at teardown)."""

from __future__ import annotations

import json
import re
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mmskin.cli import demo_pdf, main


@pytest.fixture(scope="session")
def _vqa_gen_built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("vqa_gen_demo") / "demo"
    assert main(["build", str(demo_pdf()), "--out", str(out), "--workers", "1", "--quiet"]) == 0
    return out


@pytest.fixture
def vqa_gen_dataset(_vqa_gen_built: Path, tmp_path: Path) -> Path:
    """A fresh copy of the built demo dataset (10 records with real captions, no curate fields yet)."""
    dst = tmp_path / "ds"
    shutil.copytree(_vqa_gen_built, dst)
    return dst


_CAPTION = re.compile(r'Caption: """(.*?)"""', re.S)


class FakeChatServer:
    """Answers /v1/chat/completions like an OpenAI-compatible server.

    ``plan`` is a queue of behaviours consumed one per request (then ``default``): ``ok`` (grounded answers built
    from the caption, plus a near-duplicate question and, if ``extra`` is set, the extra items), ``garbage``
    (content that is not JSON), ``429`` (rate limited, Retry-After: 0), ``500``, ``slow`` (answers after
    ``slow_s`` seconds)."""

    def __init__(self) -> None:
        self.plan: list[str] = []
        self.default = "ok"
        self.extra: list[dict] = []
        self.slow_s = 1.5
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.lock = threading.Lock()
        self.base_url = ""

    def next_behaviour(self) -> str:
        with self.lock:
            return self.plan.pop(0) if self.plan else self.default

    def good_items(self, caption: str) -> list[dict]:
        first = re.split(r"(?<=[.!?])\s+", caption)[0]
        return [
            {"question": "What does the image show?", "answer": first, "question_type": "diagnosis"},
            {"question": "What does this image show?", "answer": first, "question_type": "diagnosis"},
            {
                "question": "Can you describe the image in detail?",
                "answer": caption,
                "question_type": "Describe",
            },
            *self.extra,
        ]


def _handler(server: FakeChatServer):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep pytest output clean
            pass

        def _send(self, code: int, body: dict | str, headers: dict | None = None) -> None:
            data = (body if isinstance(body, str) else json.dumps(body)).encode()
            try:
                self.send_response(code)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client timed out and left: that is the point of the slow scenario

        def do_POST(self) -> None:
            n = int(self.headers.get("Content-Length", 0))
            req = json.loads(self.rfile.read(n))
            with server.lock:
                server.requests.append(req)
                server.headers.append(dict(self.headers))
            if self.path.split("?")[0] != "/v1/chat/completions":
                self._send(404, {"error": {"message": f"no route {self.path}"}})
                return
            behaviour = server.next_behaviour()
            if behaviour == "429":
                self._send(429, {"error": {"message": "rate limited"}}, {"Retry-After": "0"})
                return
            if behaviour == "500":
                self._send(500, {"error": {"message": "overloaded"}})
                return
            if behaviour == "slow":
                time.sleep(server.slow_s)
            caption = _CAPTION.search(req["messages"][-1]["content"]).group(1)
            if behaviour == "garbage":
                content = "Sure! Here are some questions: 1. What is it? It is a mole."
            else:
                content = json.dumps({"questions": server.good_items(caption)})
            self._send(200, {"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]})

    return Handler


@pytest.fixture
def vqa_gen_llm_server():
    fake = FakeChatServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    fake.base_url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    try:
        yield fake
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
