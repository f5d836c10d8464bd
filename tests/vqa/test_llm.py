"""The ``openai`` generator against a real HTTP server on 127.0.0.1 that speaks the chat completions protocol:
good replies, malformed JSON, 429 then success, a reply slower than the timeout, 5xx until the retries run out,
ungrounded and contradicting answers (dropped with their reason), and a rerun that makes no request (cache).
The chat client's own retry, backoff and key handling are tested in tests/test_chat.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmskin.chat import ChatError, public_url
from mmskin.cli import main
from mmskin.vqa.llm import parse_items, validate_item

KEY = "sk-test-SECRET-4242"


def _run(ds: Path, server, *extra: str) -> int:
    return main(
        ["vqa", str(ds), "--generator", "openai", "--base-url", server.base_url, "--model", "fake-derm-7b",
         "--retry-base", "0.01", "--timeout", "5", "--quiet", *extra]
    )  # fmt: skip


def _samples(ds: Path) -> list[dict]:
    return [json.loads(line) for line in (ds / "vqa.jsonl").read_text().splitlines()]


def _info(ds: Path) -> dict:
    return json.loads((ds / "vqa_info.json").read_text())


def test_good_replies_then_rerun_from_cache(
    vqa_gen_dataset: Path, vqa_gen_llm_server, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    assert _run(vqa_gen_dataset, vqa_gen_llm_server, "--concurrency", "3") == 0
    reqs = vqa_gen_llm_server.requests
    assert len(reqs) == 10
    assert all(h.get("Authorization") == f"Bearer {KEY}" for h in vqa_gen_llm_server.headers)
    body = reqs[0]
    assert body["model"] == "fake-derm-7b" and body["temperature"] == 0 and body["seed"] == 0
    assert body["response_format"] == {"type": "json_object"}
    user = body["messages"][-1]["content"]
    assert "Fig." not in user and "Kriegsmann" not in user  # label and credits are not sent as facts
    samples = _samples(vqa_gen_dataset)
    # 3 items per reply; the near-duplicate second question ("What does this image show?") is dropped
    assert len(samples) == 20
    assert {s["question_type"] for s in samples} == {"diagnosis", "describe"}  # "Describe" normalised
    assert all(s["generator"] == "openai" for s in samples)
    info = _info(vqa_gen_dataset)
    assert info["dropped"]["samples"] == {"near_duplicate": 10}
    assert (
        info["llm"]["requests"] == 10 and info["llm"]["cache_misses"] == 10 and info["llm"]["cache_hits"] == 0
    )
    assert info["model"] == "fake-derm-7b" and info["prompt"]["version"] == "openai-v1"
    assert len(list((vqa_gen_dataset / ".cache" / "vqa-llm").rglob("*.json"))) == 10
    first = (vqa_gen_dataset / "vqa.jsonl").read_bytes()
    out = capsys.readouterr()

    assert _run(vqa_gen_dataset, vqa_gen_llm_server) == 0  # rerun: everything from the cache
    assert len(vqa_gen_llm_server.requests) == 10
    assert (vqa_gen_dataset / "vqa.jsonl").read_bytes() == first
    info2 = _info(vqa_gen_dataset)
    assert info2["llm"]["requests"] == 0 and info2["llm"]["cache_hits"] == 10
    out2 = capsys.readouterr()
    # the key is never printed or written
    written = [p.read_text() for p in vqa_gen_dataset.rglob("*.json*")]
    assert not any(KEY in t for t in [out.out, out.err, out2.out, out2.err, *written])


def test_malformed_json_is_asked_again_then_the_record_fails(
    vqa_gen_dataset: Path, vqa_gen_llm_server, capsys
) -> None:
    srv = vqa_gen_llm_server
    srv.plan = ["garbage", "ok"]  # first record: one bad reply, then a good one
    assert _run(vqa_gen_dataset, srv, "--concurrency", "1") == 0
    info = _info(vqa_gen_dataset)
    assert info["llm"]["invalid_json"] == 1 and info["llm"]["requests"] == 11
    assert info["records"]["with_samples"] == 10

    for p in (vqa_gen_dataset / ".cache").rglob("*.json"):
        p.unlink()
    srv.plan = ["garbage", "garbage"]  # twice in a row: that record fails, the others go on
    assert _run(vqa_gen_dataset, srv, "--concurrency", "1") == 1
    err = capsys.readouterr().err
    assert "invalid_json" in err and "127.0.0.1" in err
    info = _info(vqa_gen_dataset)
    assert info["dropped"]["records"] == {"llm_failed:invalid_json": 1}
    assert info["llm"]["failures"] == {"invalid_json": 1}
    assert info["records"]["with_samples"] == 9 and len(_samples(vqa_gen_dataset)) == 18

    n = len(srv.requests)
    assert _run(vqa_gen_dataset, srv) == 0  # rerun: only the failed record is asked again
    assert len(srv.requests) == n + 1
    assert len(_samples(vqa_gen_dataset)) == 20


def test_429_then_success(vqa_gen_dataset: Path, vqa_gen_llm_server) -> None:
    vqa_gen_llm_server.plan = ["429", "429"]
    assert _run(vqa_gen_dataset, vqa_gen_llm_server, "--concurrency", "1") == 0
    info = _info(vqa_gen_dataset)
    assert info["llm"]["retries"] == 2 and info["llm"]["requests"] == 12
    assert info["records"]["with_samples"] == 10


def test_slow_reply_times_out_and_is_retried(vqa_gen_dataset: Path, vqa_gen_llm_server) -> None:
    vqa_gen_llm_server.plan = ["slow"]
    vqa_gen_llm_server.slow_s = 1.0
    rc = main(
        ["vqa", str(vqa_gen_dataset), "--generator", "openai", "--base-url", vqa_gen_llm_server.base_url,
         "--model", "m", "--timeout", "0.3", "--retry-base", "0.01", "--concurrency", "1", "--quiet"]
    )  # fmt: skip
    assert rc == 0
    info = _info(vqa_gen_dataset)
    assert info["llm"]["retries"] == 1 and info["records"]["with_samples"] == 10


def test_server_errors_until_retries_run_out(vqa_gen_dataset: Path, vqa_gen_llm_server, capsys) -> None:
    vqa_gen_llm_server.default = "500"
    assert _run(vqa_gen_dataset, vqa_gen_llm_server, "--max-retries", "2", "--concurrency", "2") == 1
    info = _info(vqa_gen_dataset)
    assert info["llm"]["failures"] == {"http_500": 10}
    assert info["llm"]["requests"] == 30  # 1 + 2 retries per record
    assert _samples(vqa_gen_dataset) == [] if (vqa_gen_dataset / "vqa.jsonl").read_text() else True
    assert capsys.readouterr().err.count("error:") == 10


def test_ungrounded_and_contradicting_answers_are_dropped(vqa_gen_dataset: Path, vqa_gen_llm_server) -> None:
    recs = [json.loads(x) for x in (vqa_gen_dataset / "records.jsonl").read_text().splitlines()]
    recs[0]["caption"] = "Erythematous nodule on the shin without ulceration."
    (vqa_gen_dataset / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    vqa_gen_llm_server.extra = [
        {"question": "How should it be treated?", "answer": "Topical steroids twice daily for two weeks.",
         "question_type": "other"},
        {"question": "Is the nodule ulcerated?", "answer": "Yes, the nodule is ulcerated.", "question_type": "presence"},
        {"question": "What is the size?", "answer": 42, "question_type": "size"},
    ]  # fmt: skip
    assert _run(vqa_gen_dataset, vqa_gen_llm_server) == 0
    info = _info(vqa_gen_dataset)
    # the advice, for every record, and "the nodule is ulcerated" for the 9 records that mention neither
    assert info["dropped"]["samples"]["ungrounded:unsupported_words"] == 19
    assert (
        info["dropped"]["samples"]["ungrounded:contradicts_caption"] == 1
    )  # "ulcerated" vs "without ulceration"
    assert info["llm"]["invalid_items"] == {"invalid_item:answer": 10}
    kept = [s for s in _samples(vqa_gen_dataset) if s["record_id"] == recs[0]["id"]]
    assert [s["question_type"] for s in kept] == ["diagnosis", "describe"]
    assert not any("ulcerated" in s["answer"] or "steroid" in s["answer"] for s in _samples(vqa_gen_dataset))
    assert info["dropped"]["samples"]["near_duplicate"] == 10


def test_missing_arguments_and_bad_url(vqa_gen_dataset: Path, capsys) -> None:
    assert main(["vqa", str(vqa_gen_dataset), "--generator", "openai", "--quiet"]) == 2
    assert "--base-url and --model" in capsys.readouterr().err
    assert main(["vqa", str(vqa_gen_dataset), "--generator", "openai", "--base-url", "ftp://x/v1", "--model", "m",
                 "--quiet"]) == 2  # fmt: skip
    assert "not an http(s) URL" in capsys.readouterr().err


def test_credentials_in_the_base_url_are_not_sent_or_written(
    vqa_gen_dataset: Path, vqa_gen_llm_server
) -> None:
    url = vqa_gen_llm_server.base_url.replace("http://", "http://user:pw-SECRET@") + "?api-version=1"
    assert public_url(url) == vqa_gen_llm_server.base_url
    rc = main(
        ["vqa", str(vqa_gen_dataset), "--generator", "openai", "--base-url", url, "--model", "m", "--quiet"]
    )
    assert rc == 0
    assert "SECRET" not in (vqa_gen_dataset / "vqa_info.json").read_text()
    assert _info(vqa_gen_dataset)["base_url"] == vqa_gen_llm_server.base_url


@pytest.mark.parametrize(
    "content, n",
    [
        ('{"questions": [{"question": "Q?", "answer": "A.", "question_type": "diagnosis"}]}', 1),
        ('```json\n[{"question": "Q?", "answer": "A."}]\n```', 1),
        ('{"qa": []}', 0),
    ],
)
def test_parse_items_accepts_the_schema(content, n) -> None:
    assert len(parse_items(content)) == n


@pytest.mark.parametrize("content", ["not json", '{"answer": "x"}', '"a string"', "[1, 2"])
def test_parse_items_rejects_other_replies(content) -> None:
    with pytest.raises(ChatError) as e:
        parse_items(content)
    assert e.value.reason == "invalid_json"


def test_validate_item() -> None:
    assert validate_item({"question": " What  colour? ", "answer": "Red.", "question_type": "Color"}) == (
        {"question": "What colour?", "answer": "Red.", "question_type": "color"},
        None,
    )
    assert validate_item({"question": "", "answer": "Red."})[1] == "invalid_item:question"
    assert validate_item({"question": "Q?", "answer": "x" * 2000})[1] == "invalid_item:too_long"


def test_a_key_echoed_by_the_server_reaches_no_cache_file(
    vqa_gen_dataset: Path, vqa_gen_llm_server, monkeypatch, capsys
) -> None:
    """A server that puts the key (or the URL's query secret) in its answers: the cached replies hold ***."""
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    srv = vqa_gen_llm_server
    srv.extra = [{"question": "Which key?", "answer": f"{KEY} and QSECRET-77", "question_type": "describe"}]
    url = srv.base_url + "?api-key=QSECRET-77"
    rc = main(
        ["vqa", str(vqa_gen_dataset), "--generator", "openai", "--base-url", url, "--model", "m", "--quiet"]
    )
    assert rc == 0
    cached = [p.read_text() for p in (vqa_gen_dataset / ".cache" / "vqa-llm").rglob("*.json")]
    assert cached and all("*** and ***" in t for t in cached)
    out = capsys.readouterr()
    for f in vqa_gen_dataset.rglob("*"):
        if f.is_file():
            assert KEY.encode() not in f.read_bytes() and b"QSECRET-77" not in f.read_bytes(), f
    assert KEY not in out.out + out.err and "QSECRET-77" not in out.out + out.err
