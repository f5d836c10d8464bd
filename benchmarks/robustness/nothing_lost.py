"""Nothing lost: the ways of working and the hostile inputs of issue 14, run end to end on this machine.

Each case runs the real ``mmskin`` commands in subprocesses (PYTHONPATH = ``--src``, this checkout's ``src/`` by
default, so the same script measures an older checkout too) and prints one line of numbers:

- growth: build a book, curate it, correct two modalities by hand, add a second book to the same dataset: how
  many records keep their curation byte for byte, and the corrections after the next curate;
- concurrent: two builds of different books into one dataset started together (the second waits, or with
  ``--no-wait`` stops with one line): the records at the end against a sequential build of both;
- kill -9: ``build`` and ``curate`` with 2 workers killed with SIGKILL; worker processes alive 10 s later;
- umask: modes of every file build, curate, vqa, export and report write under umask 022;
- bomb: peak memory of a build of a ~0.6 MB PDF holding one 14,000 x 14,000 picture, with the pixel cap and
  without it (``--max-pixels`` = 10^12);
- eval: ``eval vqa --model openai:`` against a server that always answers 500 and echoes what it gets, with a
  key in the environment and credentials in the URL: seconds until it stops, the final line, secrets found in
  the files and on stderr;
- long inputs: ROUGE (compat mmskin) on one 1M-token prediction, and ``eval vqa`` on a predictions CSV with a
  1M-token prediction, a 200,000-character field and a non-UTF-8 byte (rows scored, problems named).

    python benchmarks/robustness/nothing_lost.py
    python benchmarks/robustness/nothing_lost.py --only bomb,rouge
    python benchmarks/robustness/nothing_lost.py --src /path/to/old/checkout/src --only kill9
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pymupdf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, for _common
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pdf"))  # the process-tree helpers of memory.py
from _common import REPO, add_out_argument, save_results  # noqa: E402
from memory import _children  # noqa: E402

GOLDEN = REPO / "tests" / "pdf" / "golden"
CASES = ("growth", "concurrent", "kill9", "umask", "bomb", "eval", "rouge")
KEY = "sk-bench-SECRET-KEY-0123456789"


# --------------------------------------------------------------------------------------------- inputs


def golden_book(path: Path, repeat: int = 1) -> Path:
    """A book made of the golden test pages, ``repeat`` times (8 pages each time)."""
    out = pymupdf.open()
    for _ in range(repeat):
        for p in sorted(GOLDEN.glob("*.pdf")):
            with pymupdf.open(p) as src:
                out.insert_pdf(src)
    out.save(path)
    return path


def bomb_pdf(path: Path, side: int = 14000) -> Path:
    """A PDF whose first page shows one ``side`` x ``side`` RGB picture of one colour (Flate: ~0.6 MB for 14,000,
    588 MB decoded) above a caption, and a second page with an ordinary figure."""
    doc = pymupdf.open()
    pg = doc.new_page(width=595, height=842)
    small = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 4, 4), False)
    small.clear_with(200)
    xref = pg.insert_image(pymupdf.Rect(72, 72, 523, 523), pixmap=small)
    pg.insert_text((72, 550), "Fig. 1 A very large picture of a red plaque.", fontsize=10)
    p2 = doc.new_page(width=595, height=842)
    ok = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 300, 200), False)
    ok.clear_with(120)
    p2.insert_image(pymupdf.Rect(72, 72, 372, 272), pixmap=ok)
    p2.insert_text((72, 290), "Fig. 2 An ordinary picture of a papule.", fontsize=10)
    z = zlib.compressobj(9)
    row = bytes([180, 60, 60]) * side
    data = b"".join(z.compress(row) for _ in range(side)) + z.flush()
    doc.update_object(
        xref,
        f"<< /Type /XObject /Subtype /Image /Width {side} /Height {side} /ColorSpace /DeviceRGB "
        f"/BitsPerComponent 8 /Length {len(data)} >>",
    )
    doc.update_stream(xref, data, compress=0)
    doc.xref_set_key(xref, "Filter", "/FlateDecode")
    doc.save(path)
    return path


# --------------------------------------------------------------------------------------------- helpers


class Runner:
    """``mmskin`` commands in subprocesses, with PYTHONPATH = the sources under test."""

    def __init__(self, src: Path) -> None:
        self.env = {**os.environ, "PYTHONPATH": str(src)}

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "mmskin", *map(str, args)]

    def run(
        self, *args: str, umask: int | None = None, env: dict | None = None
    ) -> subprocess.CompletedProcess:
        pre = (lambda: os.umask(umask)) if umask is not None else None
        return subprocess.run(
            self.argv(*args), capture_output=True, text=True, env={**self.env, **(env or {})}, preexec_fn=pre
        )

    def start(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen(
            self.argv(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.env
        )


def records(ds: Path) -> dict[str, dict]:
    p = ds / "records.jsonl"
    if not p.is_file():
        return {}
    return {r["id"]: r for r in map(json.loads, p.read_text().splitlines())}


def alive(pid: int) -> bool:
    """True for a running process (a zombie waiting to be reaped has ended)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def last_line(text: str) -> str:
    lines = [x for x in text.strip().splitlines() if x.strip()]
    return lines[-1] if lines else ""


# --------------------------------------------------------------------------------------------- cases


def case_growth(r: Runner, tmp: Path) -> dict:
    from mmskin.resources import demo_pdf

    ds = tmp / "grow"
    book2 = golden_book(tmp / "second_book.pdf")
    r.run("build", demo_pdf(), "--out", ds, "--workers", "1", "--quiet")
    r.run("curate", ds, "--workers", "1", "--quiet")
    before = records(ds)
    fix = tmp / "fix.csv"
    ids = sorted(before)[:2]
    fix.write_text(f"id,modality\n{ids[0]},dermoscopy\n{ids[1]},other\n")
    r.run("curate", ds, "--corrections", fix, "--workers", "1", "--quiet")
    curated = records(ds)
    grow = r.run("build", demo_pdf(), book2, "--out", ds, "--workers", "1", "--quiet")
    after = records(ds)
    kept = sum(after.get(i) == rec for i, rec in curated.items())
    new = [i for i in after if i not in curated]
    human = sum(after.get(i, {}).get("modality_source") == "human" for i in ids)
    vqa = r.run("vqa", ds, "--quiet")
    r.run("curate", ds, "--workers", "1", "--quiet")
    final = records(ds)
    res = {
        "curated_records": len(curated),
        "kept_byte_identical_after_adding_a_book": kept,
        "new_records": len(new),
        "human_corrections_kept": human,
        "human_corrections_after_next_curate": sum(final[i].get("modality_source") == "human" for i in ids),
        "build_summary": last_line(grow.stdout),
        "build_warnings": [x for x in grow.stderr.splitlines() if x.startswith("warning")],
        "vqa_left_out_uncurated": "left out" in vqa.stderr,
        "new_records_curated_after_next_curate": sum("caption_uncleaned" in final[i] for i in new),
    }
    print(
        f"growth: {kept} of {len(curated)} curated records kept byte for byte after adding a book "
        f"({len(new)} new, told to curate: {bool(res['build_warnings'])}); human corrections {human}/2 kept, "
        f"{res['human_corrections_after_next_curate']}/2 after the next curate"
    )
    return res


def case_concurrent(r: Runner, tmp: Path) -> dict:
    a, b = golden_book(tmp / "book_a.pdf", 6), golden_book(tmp / "book_b.pdf", 5)
    ref = tmp / "conc_ref"
    r.run("build", a, b, "--out", ref, "--workers", "1", "--quiet")
    out = {}
    for mode in ("wait", "no-wait"):
        ds = tmp / f"conc_{mode}"
        extra = ["--no-wait"] if mode == "no-wait" else []
        p1 = r.start("build", a, "--out", ds, "--workers", "1", "--quiet")
        time.sleep(0.3)
        p2 = r.start("build", b, "--out", ds, "--workers", "1", "--quiet", *extra)
        p1.communicate()
        _, e2 = p2.communicate()
        got = records(ds)
        out[mode] = {
            "exit_codes": [p1.returncode, p2.returncode],
            "second_stderr": e2.strip().splitlines()[:2],
            "records": len(got),
            "union_records": len(records(ref)),
            "identical_to_sequential_union": (ds / "records.jsonl").read_bytes()
            == (ref / "records.jsonl").read_bytes(),
        }
        if mode == "no-wait":  # the refused build, rerun: the union after all
            r.run("build", b, "--out", ds, "--workers", "1", "--quiet")
            out[mode]["records_after_rerun"] = len(records(ds))
        print(f"concurrent ({mode}): exit {out[mode]['exit_codes']}, {out[mode]['records']} records of the "
              f"{out[mode]['union_records']}-record union; second run said: {out[mode]['second_stderr'][:1]}")  # fmt: skip
    return out


def _kill_with_workers(r: Runner, args: list, want: int = 2, timeout: float = 120.0) -> dict:
    proc = r.start(*args)
    deadline = time.time() + timeout
    workers: list[int] = []
    while time.time() < deadline and proc.poll() is None:
        workers = _children(proc.pid)
        if len(workers) >= want:
            time.sleep(0.5)  # let them start their tasks
            workers = _children(proc.pid)
            break
        time.sleep(0.05)
    if proc.poll() is not None or not workers:
        return {"error": f"no workers seen (exit {proc.returncode})"}
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(10)
    left = [p for p in workers if alive(p)]
    for p in left:  # do not leave them running after the measurement
        os.kill(p, signal.SIGKILL)
    return {"workers_seen": len(workers), "alive_10s_after_kill9": len(left)}


def case_kill9(r: Runner, tmp: Path) -> dict:
    book = golden_book(tmp / "long.pdf", 24)
    res = {"build": _kill_with_workers(r, ["build", book, "--out", tmp / "k9b", "--workers", "2", "--quiet"])}
    ds = tmp / "k9c"
    r.run("build", book, "--out", ds, "--workers", "1", "--quiet")
    res["curate"] = _kill_with_workers(r, ["curate", ds, "--workers", "2", "--quiet"])
    errf = tmp / "sigterm.err"
    with open(errf, "w") as err:  # not a pipe: orphaned workers of an older mmskin would hold it open
        term = subprocess.Popen(
            r.argv("build", book, "--out", tmp / "k9t", "--workers", "2", "--quiet"),
            stdout=subprocess.DEVNULL, stderr=err, env=r.env,
        )  # fmt: skip
        time.sleep(3)
        workers = _children(term.pid)
        t = time.perf_counter()
        term.send_signal(signal.SIGTERM)
        term.wait(timeout=120)
    secs = time.perf_counter() - t
    time.sleep(1)
    left = [p for p in workers if alive(p)]
    for p in left:
        os.kill(p, signal.SIGKILL)
    res["sigterm"] = {
        "exit": term.returncode,
        "seconds_to_exit": round(secs, 2),
        "workers_alive_1s_after": len(left),
        "stderr": errf.read_text().strip().splitlines()[-1:],
    }
    print(f"kill -9: workers alive 10 s later: build {res['build'].get('alive_10s_after_kill9')} of "
          f"{res['build'].get('workers_seen')}, curate {res['curate'].get('alive_10s_after_kill9')} of "
          f"{res['curate'].get('workers_seen')}; SIGTERM: exit {res['sigterm']['exit']} in "
          f"{res['sigterm']['seconds_to_exit']} s, {res['sigterm']['workers_alive_1s_after']} workers left")  # fmt: skip
    return res


def case_umask(r: Runner, tmp: Path) -> dict:
    from mmskin.resources import demo_pdf

    ds = tmp / "modes"
    steps = [
        ["build", demo_pdf(), "--out", ds, "--workers", "2", "--quiet"],
        ["curate", ds, "--workers", "2", "--quiet"],
        ["vqa", ds, "--quiet"],
        ["export", ds, "--subset", "vqa", "--format", "llava", "--out", ds / "exports" / "vqa.json", "--quiet"],
        ["export", ds, "--subset", "captions", "--format", "hf", "--out", ds / "exports" / "c.parquet", "--quiet"],
        ["report", ds, "--out", ds / "card"],
        ["review", ds, "--out", ds / "review"],
    ]  # fmt: skip
    rcs = [r.run(*s, umask=0o022).returncode for s in steps]
    files: dict[str, int] = {}
    dirs: dict[str, int] = {}
    for p in ds.rglob("*"):
        mode = oct(p.stat().st_mode & 0o777)
        (dirs if p.is_dir() else files)[mode] = (dirs if p.is_dir() else files).get(mode, 0) + 1
    print(f"umask 022: file modes {files}, folder modes {dirs} (exit codes {rcs})")
    return {"exit_codes": rcs, "file_modes": files, "dir_modes": dirs}


def case_bomb(r: Runner, tmp: Path) -> dict:
    pdf = bomb_pdf(tmp / "bomb.pdf")
    res: dict = {"pdf_bytes": pdf.stat().st_size, "picture": "14000x14000 RGB"}
    for name, cap in (("capped (default 40 MP)", None), ("uncapped (--max-pixels 10^12)", "1000000000000")):
        args = ["build", pdf, "--out", tmp / f"bomb_{cap}", "--workers", "1", "--quiet"]
        args += ["--max-pixels", cap] if cap else []
        proc = subprocess.Popen(
            r.argv(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=r.env
        )
        t = time.perf_counter()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out, err = proc.stdout.read(), proc.stderr.read()
        res[name] = {
            "exit": proc.returncode,
            "seconds": round(time.perf_counter() - t, 2),
            "peak_rss_mb": round(usage.ru_maxrss / 1024),
            "records": len(records(tmp / f"bomb_{cap}")),
            "summary": last_line(out),
            "warning": [x for x in err.splitlines() if x.startswith("warning")][:1],
        }  # fmt: skip
        print(f"bomb, {name}: peak RSS {res[name]['peak_rss_mb']} MB, {res[name]['records']} records, exit "
              f"{res[name]['exit']}, {res[name]['seconds']} s")  # fmt: skip
    return res


class Always500(BaseHTTPRequestHandler):
    """Answers every request with HTTP 500 and echoes back what it got: headers (the key), path and query."""

    def log_message(self, *a) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = json.dumps({"error": "boom", "echo": dict(self.headers), "path": self.path}).encode()
        self.send_response(500)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def case_eval(r: Runner, tmp: Path) -> dict:
    from PIL import Image

    d = tmp / "evalsrv"
    (d / "images").mkdir(parents=True)
    Image.new("RGB", (64, 64), (200, 80, 80)).save(d / "images" / "a.png")
    rows = [
        {"image": "images/a.png", "question": f"What is shown {i}?", "answer": "a red papule"}
        for i in range(40)
    ]
    (d / "samples.jsonl").write_text("".join(json.dumps(x) + "\n" for x in rows))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Always500)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://user:URLSECRETPW@127.0.0.1:{httpd.server_address[1]}/v1?api-key=QUERYSECRET123"
    t = time.perf_counter()
    p = r.run(
        "eval", "vqa", "--data", d / "samples.jsonl", "--images", d, "--model", "openai:m", "--base-url", url,
        "--metrics", "recall", "--out", d / "res.json", "--quiet",  # default retries: 4, from 1 s, 10 in a row
        env={"OPENAI_API_KEY": KEY},
    )  # fmt: skip
    secs = time.perf_counter() - t
    httpd.shutdown()
    secrets = (KEY, "URLSECRETPW", "QUERYSECRET123")
    leaks = [
        str(f.relative_to(d))
        for f in d.rglob("*")
        if f.is_file() and any(s.encode() in f.read_bytes() for s in secrets)
    ]
    leaks += ["stderr"] * any(s in p.stderr + p.stdout for s in secrets)
    res = {"exit": p.returncode, "seconds": round(secs, 1), "final_line": last_line(p.stderr), "leaks": leaks}
    print(f"eval against an always-500 server: exit {p.returncode} after {secs:.1f} s; secrets leaked to: "
          f"{leaks or 'nothing'}; final line: {res['final_line'][:160]}")  # fmt: skip
    return res


def case_rouge(r: Runner, tmp: Path) -> dict:
    from mmskin.evaluate.metrics.rouge import rouge_mmskin

    rng = random.Random(0)
    words = "red scaly plaque on the extensor surface with silvery scale and nail pitting".split()
    ref = "a red scaly plaque with silvery scale on the elbow"
    res: dict = {}
    for n in (1_000_000, 3_000_000):
        hyp = " ".join(rng.choice(words) for _ in range(n))
        t = time.perf_counter()
        rouge_mmskin([hyp], [ref])
        res[f"rouge_{n}_tokens_s"] = round(time.perf_counter() - t, 2)
    hyp = " ".join(rng.choice(words) for _ in range(1_000_000))
    preds = tmp / "long_preds.csv"
    with open(preds, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["image", "question", "answer", "prediction"])
        w.writerow(["a.png", "q1", ref, hyp])
        w.writerow(["b.png", "q2", ref, "x" * 200_000])
        for i in range(3, 10):
            w.writerow([f"{i}.png", f"q{i}", ref, "a red plaque"])
    with open(preds, "ab") as f:
        f.write(b"z.png,bad,\xff answer,pred\nlast.png,q,a red plaque,a red plaque\n")
    t = time.perf_counter()
    p = r.run("eval", "vqa", "--predictions", preds, "--metrics", "bleu,meteor,rouge,recall", "--out",
              tmp / "long.json", "--bootstrap", "50")  # fmt: skip
    res["eval_seconds"] = round(time.perf_counter() - t, 1)
    out = json.loads((tmp / "long.json").read_text()) if (tmp / "long.json").is_file() else {}
    res["eval_exit"] = p.returncode
    res["eval_rows_scored"] = out.get("overall", {}).get("n")
    res["eval_errors"] = out.get("errors")
    print(f"rouge (mmskin) on one prediction: 1M tokens {res['rouge_1000000_tokens_s']} s, 3M tokens "
          f"{res['rouge_3000000_tokens_s']} s; eval vqa with a 1M-token prediction, a 200,000-character field and "
          f"a bad byte: {res['eval_rows_scored']} of 11 rows scored in {res['eval_seconds']} s, errors "
          f"{res['eval_errors']}")  # fmt: skip
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default=",".join(CASES), help=f"comma list of {', '.join(CASES)}")
    ap.add_argument(
        "--src", type=Path, default=REPO / "src", help="the mmskin sources to run (default: this checkout)"
    )
    add_out_argument(ap, "robustness", "nothing_lost")
    args = ap.parse_args(argv)
    r = Runner(args.src.resolve())
    cases = {name: globals()[f"case_{name}"] for name in args.only.split(",")}
    res = {}
    with tempfile.TemporaryDirectory(prefix="mmskin-nothing-lost-") as tmp:
        for name, fn in cases.items():
            res[name] = fn(r, Path(tmp))
    save_results("robustness", "nothing_lost", res, args, out=args.json, packages=["pymupdf"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
