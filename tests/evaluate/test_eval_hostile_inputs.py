"""``mmskin eval vqa`` on hostile inputs: one bad byte or row costs that row only (named FILE:LINE), a field of any
length is read, ROUGE stays linear in a long prediction, and a server that always fails is given up quickly with
a final line that says why, without any credential reaching a file or stderr."""

from __future__ import annotations

import csv
import importlib.util
import json
import random
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

from PIL import Image

from mmskin.cli import main
from mmskin.evaluate.metrics.rouge import _lcs_words, rouge_pair

KEY = "sk-test-SECRET-0123456789"
ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("nothing_lost", ROOT / "benchmarks/robustness/nothing_lost.py")
nothing_lost = importlib.util.module_from_spec(_spec)  # the benchmark's input generators, reused
_spec.loader.exec_module(nothing_lost)


def test_one_bad_byte_or_row_costs_that_row_only(tmp_path: Path, capsys) -> None:
    preds = tmp_path / "p.csv"
    with open(preds, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["image", "question", "answer", "prediction"])
        w.writerow(["a.png", "q1", "a red papule", "a red papule"])
        w.writerow(["b.png", "q2", "a red papule", "papule " * 40_000])  # a 280,000-character field
    with open(preds, "ab") as f:
        f.write(b"c.png,q3,\xff\xfe answer,pred\n")
        f.write(b'd.png,q4,"an answer\nover two lines",pred\n')
        f.write(b"e.png,q5,a red papule,a red plaque\n")
    out = tmp_path / "r.json"
    rc = main(["eval", "vqa", "--predictions", str(preds), "--metrics", "recall,rouge", "--bootstrap", "0",
               "--out", str(out), "--quiet"])  # fmt: skip
    assert rc == 1
    assert f"error: {preds}:4: not UTF-8 (byte 0xff); row skipped" in capsys.readouterr().err
    res = json.loads(out.read_text())
    assert res["overall"]["n"] == 4 and res["errors"] == [f"{preds}:4: not UTF-8 (byte 0xff); row skipped"]

    jl = tmp_path / "p.jsonl"
    good = json.dumps({"image": "a.png", "question": "q", "answer": "a", "prediction": "a"}).encode()
    jl.write_bytes(good + b"\n" + good.replace(b'"a"}', b'"\x80"}') + b"\n" + good + b"\n")
    rc = main(["eval", "vqa", "--predictions", str(jl), "--metrics", "recall", "--bootstrap", "0",
               "--out", str(out), "--quiet"])  # fmt: skip
    assert rc == 1 and json.loads(out.read_text())["overall"]["n"] == 2
    assert f"{jl}:2: not UTF-8 (byte 0x80)" in capsys.readouterr().err


def _lcs_reference(x: list[str], y: list[str]) -> set[str]:
    """rouge 1.0.1's table and backtracking, written out plainly (quadratic)."""
    n, m = len(x), len(y)
    table = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            table[i][j] = (
                table[i - 1][j - 1] + 1 if x[i - 1] == y[j - 1] else max(table[i - 1][j], table[i][j - 1])
            )
    out: set[str] = set()
    i, j = n, m
    while i > 0 and j > 0:
        if x[i - 1] == y[j - 1]:
            out.add(x[i - 1])
            i, j = i - 1, j - 1
        elif table[i - 1][j] > table[i][j - 1]:
            i -= 1
        else:
            j -= 1
    return out


def test_rouge_lcs_is_the_packages_on_long_and_short_texts() -> None:
    rng = random.Random(7)
    for size in [*range(0, 12), 200, 3000]:
        for _ in range(30 if size < 12 else 3):
            vocab = rng.randint(1, 8)
            x = [str(rng.randint(0, vocab)) for _ in range(rng.randint(0, 14))]
            y = [str(rng.randint(0, vocab)) for _ in range(size)]
            assert _lcs_words(x, y) == _lcs_reference(x, y), (x, y)
    long = " ".join(rng.choice("red scaly plaque on the elbow with scale".split()) for _ in range(200_000))
    assert rouge_pair(long, "a red scaly plaque on the elbow")[2] > 0  # 200k tokens: well under a second


def test_a_failing_server_is_given_up_and_no_secret_is_written(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    (tmp_path / "img").mkdir()
    Image.new("RGB", (32, 32), (200, 60, 60)).save(tmp_path / "img" / "a.png")
    samples = tmp_path / "s.jsonl"
    rows = [{"image": "a.png", "question": f"q{i}?", "answer": "a red papule"} for i in range(12)]
    samples.write_text("".join(json.dumps(r) + "\n" for r in rows))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), nothing_lost.Always500)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://me:URLPASSWORD@127.0.0.1:{httpd.server_address[1]}/v1?api-key=QUERYSECRET"
    out = tmp_path / "out" / "r.json"
    try:
        rc = main(["eval", "vqa", "--data", str(samples), "--images", str(tmp_path / "img"), "--model", "openai:m",
                   "--base-url", url, "--metrics", "recall", "--out", str(out), "--max-retries", "1",
                   "--retry-base", "0.01", "--max-failures", "3", "--concurrency", "2", "--quiet"])  # fmt: skip
    finally:
        httpd.shutdown()
    cap = capsys.readouterr()
    assert rc == 1
    last = cap.err.strip().splitlines()[-1]
    assert last.startswith(
        "error: mmskin eval vqa: no row to score: 12 of 12 samples got no prediction; first: "
    )
    assert "http_500" in last and "errors.jsonl" in last
    assert "not sent: the last" in (out.parent / "r.predictions.jsonl.errors.jsonl").read_text()
    for secret in (KEY, "URLPASSWORD", "QUERYSECRET"):
        assert secret not in cap.err + cap.out
        for f in out.parent.rglob("*"):
            assert secret.encode() not in f.read_bytes(), f
