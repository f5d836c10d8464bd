"""Adapters: the registry, the dummy model, Hugging Face batched greedy decoding on tiny random-weight models, and
the OpenAI-compatible adapter against a local HTTP server (retries, concurrency bound, key handling)."""

from __future__ import annotations

import base64
import io
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

from mmskin.evaluate.adapters import (
    PAPER_DECODING,
    Adapter,
    RequestError,
    adapter_kinds,
    generation_kwargs,
    get_adapter,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _images(n: int) -> list[Image.Image]:
    # distinct, deterministic pictures (gradients of different hue)
    out = []
    for i in range(n):
        im = Image.new("RGB", (40, 30), (30 * i % 255, 200 - 20 * i, 90 + 15 * i))
        im.putpixel((i, i), (255, 255, 255))
        out.append(im)
    return out


QUESTIONS = [
    "What is shown?",
    "Describe the lesion in this dermoscopy image, its colour and its border please.",
    "Diagnosis?",
    "Is this a melanoma or a benign nevus? Answer briefly.",
    "Which body site?",
]


def test_registry_and_dummy():
    assert {"hf", "openai", "dummy"} <= set(adapter_kinds())
    with pytest.raises(ValueError, match="did you mean 'openai'"):
        get_adapter("opnai:gpt")
    ims = _images(3)
    assert get_adapter("dummy:echo").generate(ims, ["a", "b", "c"]) == ["a", "b", "c"]
    assert get_adapter("dummy:melanoma").generate(ims[:1], ["x"]) == ["melanoma"]
    d = get_adapter("dummy")
    assert isinstance(d, Adapter) and d.generate(ims[:2], ["x", "y"]) == ["I don't know"] * 2
    feats = d.image_features(ims)
    assert feats.shape == (3, 15) and len({tuple(r) for r in feats.round(6)}) == 3


def test_generation_kwargs():
    assert generation_kwargs() == {"do_sample": False, "num_beams": 1, "max_new_tokens": 128}
    paper = generation_kwargs(paper_decoding=True, task="vqa")
    assert paper == PAPER_DECODING["vqa"] and paper["num_beams"] == 5 and paper["temperature"] == 0.2
    assert generation_kwargs(paper_decoding=True, task="zeroshot")["temperature"] == 0.5
    short = generation_kwargs(8, paper_decoding=True, task="vqa")
    assert short["max_new_tokens"] == 8 and short["min_new_tokens"] == 8
    with pytest.raises(ValueError, match="no MM-Skin decoding"):
        generation_kwargs(paper_decoding=True, task="caption")


@pytest.fixture(scope="module", params=["llava", "qwen2_5_vl"])
def tiny_hf(request, tiny_vlms):
    return get_adapter(f"hf:{tiny_vlms[request.param]}", device="cpu", max_new_tokens=10)


def test_hf_batched_equals_one_at_a_time(tiny_hf):
    ims = _images(5)
    batched = tiny_hf.generate(ims, QUESTIONS)
    single = [tiny_hf.generate([im], [q])[0] for im, q in zip(ims, QUESTIONS, strict=True)]
    assert batched == single
    assert len(set(batched)) > 1  # the prompts and images do reach the model
    assert tiny_hf.processor.tokenizer.padding_side == "left"
    # only the new tokens are decoded: neither the question nor the chat template's role markers come back
    for q, a in zip(QUESTIONS, batched, strict=True):
        assert q not in a and "USER:" not in a and "ASSISTANT" not in a and "im_start" not in a


def test_hf_paper_decoding_is_seeded(tiny_hf):
    ims, qs = _images(2), QUESTIONS[:2]
    tiny_hf.paper_decoding, tiny_hf.max_new_tokens = True, 4
    try:
        kw = tiny_hf.gen_kwargs()
        assert kw["do_sample"] is True and kw["num_beams"] == 5 and kw["max_new_tokens"] == 4
        assert tiny_hf.generate(ims, qs) == tiny_hf.generate(ims, qs)
        assert tiny_hf.info()["decoding"] == "mmskin-paper"
    finally:
        tiny_hf.paper_decoding, tiny_hf.max_new_tokens = False, 10


def test_hf_image_features(tiny_hf):
    feats = tiny_hf.image_features(_images(3))
    assert feats.ndim == 2 and feats.shape[0] == 3 and feats.dtype.name == "float32"
    assert (abs(feats[0] - feats[1]).max()) > 0
    # batched features equal one image at a time (the probe's cache must not depend on the batch size)
    one = tiny_hf.image_features(_images(3)[1:2])
    assert abs(one[0] - feats[1]).max() < 1e-5


# ------------------------------------------------------------------------------------------------ OpenAI server


class _Server:
    """A chat-completions server on 127.0.0.1: fails the first requests as scripted, records bodies and headers,
    counts requests in flight."""

    def __init__(self, script: list[int] | None = None, delay: float = 0.0):
        self.script = list(script or [])
        self.delay = delay
        self.bodies: list[dict] = []
        self.auth: list[str | None] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):  # keep test output clean
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with outer.lock:
                    outer.bodies.append(body)
                    outer.auth.append(self.headers.get("Authorization"))
                    status = outer.script.pop(0) if outer.script else 200
                    outer.in_flight += 1
                    outer.max_in_flight = max(outer.max_in_flight, outer.in_flight)
                try:
                    time.sleep(outer.delay)
                    if status != 200:
                        self.send_response(status)
                        if status == 429:
                            self.send_header("Retry-After", "0")
                        self.end_headers()
                        self.wfile.write(b'{"error": "scripted"}')
                        return
                    text = next(c["text"] for c in body["messages"][0]["content"] if c["type"] == "text")
                    out = json.dumps(
                        {"choices": [{"message": {"role": "assistant", "content": f"re: {text}"}}]}
                    )
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(out.encode())
                finally:
                    with outer.lock:
                        outer.in_flight -= 1

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *a):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


def test_openai_payload_concurrency_and_key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret")
    with _Server(delay=0.05) as srv:
        ad = get_adapter("openai:skinvl", base_url=srv.url, concurrency=3, max_new_tokens=32)
        answers = ad.generate(_images(8), [f"q{i}" for i in range(8)])
    assert answers == [f"re: q{i}" for i in range(8)]
    assert 1 < srv.max_in_flight <= 3
    assert set(srv.auth) == {"Bearer sk-test-secret"}
    body = srv.bodies[0]
    assert body["model"] == "skinvl" and body["max_tokens"] == 32 and body["temperature"] == 0.0
    url = next(c for c in body["messages"][0]["content"] if c["type"] == "image_url")["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    im = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert im.size == (40, 30)
    assert "sk-test-secret" not in json.dumps(ad.info())


def test_openai_retries_then_succeeds():
    with _Server(script=[429, 503, 500]) as srv:
        ad = get_adapter("openai:m", base_url=srv.url, retries=3, backoff=0.01)
        assert ad.generate(_images(1), ["hello"]) == ["re: hello"]
    assert len(srv.bodies) == 4


def test_openai_gives_up_and_does_not_retry_client_errors(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret")
    with _Server(script=[400]) as srv:
        ad = get_adapter("openai:m", base_url=srv.url, retries=3, backoff=0.01)
        with pytest.raises(RequestError, match="HTTP 400") as e:
            ad.generate(_images(1), ["x"])
        assert len(srv.bodies) == 1 and "sk-test-secret" not in str(e.value)
    with _Server(script=[503] * 10) as srv:
        ad = get_adapter("openai:m", base_url=srv.url, retries=2, backoff=0.01)
        with pytest.raises(RequestError, match="gave up after 3 tries"):
            ad.generate(_images(1), ["x"])
        assert len(srv.bodies) == 3


def test_openai_connection_refused_is_retried_then_reported():
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    ad = get_adapter("openai:m", base_url=f"http://127.0.0.1:{port}/v1", retries=1, backoff=0.01, timeout=2)
    with pytest.raises(RequestError, match="gave up after 2 tries"):
        ad.generate(_images(1), ["x"])


def test_hf_needs_a_path():
    with pytest.raises(ValueError, match="hf adapter needs a path"):
        get_adapter("hf:")
