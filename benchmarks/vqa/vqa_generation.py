"""Benchmark of ``mmskin vqa`` (MM-Skin-O generation) on real captions; prints numbers, asserts nothing.

    .venv/bin/python benchmarks/vqa/vqa_generation.py [--seed 0] [--show 2] [--data DIR]

Corpora (../shared/data, see its README): the demo atlas (built from the bundled PDF, through the CLI), NCI nevus
captions (84 clinical descriptions), ARCH textbook + PubMed captions that mention skin (histopathology), and the
*Basic Pathology* captions that PathVQA generated its questions from. For each corpus: QA per captioned image,
question-type mix (ours vs MM-Skin's test set, whose questions are typed by the same rules in templates.yaml),
share of answer content words supported by the caption (strict: the word itself after lemma-ish normalisation;
lexicon: also a lexicon synonym of a concept the caption names; the grounding check uses the latter), share of
fully grounded answers, duplicate questions per image, samples/s. Then PathVQA as an outside reference (how many
of their answers our answers also state), and the openai generator's cache hit rate on a rerun against a local
stub server (the mechanism only: no real model is involved).
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, for _common
from _common import DEFAULT_DATA, add_data_argument, save_printed  # noqa: E402

from mmskin import __version__  # noqa: E402
from mmskin.cli import demo_pdf, main  # noqa: E402
from mmskin.vqa.facts import (  # noqa: E402
    build_support,
    check_answer,
    content_words,
    extract_facts,
    record_fact_texts,
)
from mmskin.vqa.lexicon import load_lexicon  # noqa: E402
from mmskin.vqa.template import load_templates, template_samples  # noqa: E402

SHARED = DEFAULT_DATA  # set from --data by main_bench()
SKIN = re.compile(
    r"\b(skin|cutaneous|derm\w*|epiderm\w*|subcutaneous|melanocyt\w*|nevus|naevus|melanoma)", re.I
)


def mmskin_test_questions() -> tuple[list[str], int]:
    path = SHARED / "mmskin" / "Dataframe" / "test" / "vqa" / "MM-Skin_test.csv"
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [r["question"] for r in rows], len({r["image"] for r in rows})


def nci_records() -> list[dict]:
    path = SHARED / "images" / "clinical" / "nci_nevus_recognition" / "image_captions.csv"
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    # the case title is the figure title a textbook would print above the description
    return [
        {
            "id": r["file"],
            "caption": f"{r['case_title'].split(': ', 1)[-1]}. {r['caption']}",
            "modality": "clinical",
        }
        for r in rows
    ]


def arch_skin_records() -> list[dict]:
    out, seen = [], set()
    for sub in ("books_set", "pubmed_set"):
        data = json.loads(
            (SHARED / "captions" / "arch_histopath_textbook_captions" / sub / "captions.json").read_text()
        )
        for k, v in data.items():
            cap = " ".join(v["caption"].split())
            if cap in seen or not SKIN.search(cap):
                continue
            seen.add(cap)
            out.append({"id": f"{sub}:{k}", "caption": cap, "modality": "pathology"})
    return out


def pathvqa() -> tuple[list[dict], dict[str, list[dict]]]:
    caps = {}
    for line in (
        (SHARED / "captions" / "pathvqa_textbook_captions" / "Basic_Pathology_i2.txt")
        .read_text()
        .splitlines()
    ):
        if "\t" in line:
            n, cap = line.split("\t", 1)
            caps[f"Fig.{n.strip()}"] = " ".join(cap.split())
    qa: dict[str, list[dict]] = {}
    for row in json.loads((SHARED / "vqa" / "pathvqa" / "QA_pairs_vb.json").read_text()):
        if row["Image_ID"] in caps:
            qa.setdefault(row["Image_ID"], []).append(row)
    recs = [{"id": k, "caption": caps[k], "modality": "pathology"} for k in qa]
    return recs, qa


def dist(counter: Counter, total: int) -> dict[str, float]:
    return {k: round(v / total, 3) for k, v in counter.most_common()} if total else {}


def capped_types(recs: list[dict], seed: int, k: int) -> Counter:
    tpl = load_templates()
    return Counter(qa.question_type for r in recs for qa in template_samples(r, tpl, seed=seed, per_image=k))


def evaluate_corpus(name: str, recs: list[dict], seed: int) -> tuple[list[tuple[dict, list]], Counter]:
    lex, tpl = load_lexicon(), load_templates()
    t0 = time.perf_counter()
    out = [(r, template_samples(r, tpl, seed=seed, lexicon=lex)) for r in recs]
    dt = time.perf_counter() - t0
    n = sum(len(q) for _, q in out)
    types: Counter = Counter(qa.question_type for _, qs in out for qa in qs)
    words = strict = lexical = grounded = 0
    dup_q = near = 0
    for r, qs in out:
        facts = extract_facts(r["caption"], lex)
        sup = build_support(facts, record_fact_texts(r, tpl.modality_phrases))
        for qa in qs:
            ok, _, _ = check_answer(qa.answer, sup, qa.question, lex)
            grounded += ok
            for w in content_words(qa.answer, lex):
                words += 1
                strict += w in sup.words
                lexical += w in sup.words or w in sup.concept_words
        qtexts = [qa.question for qa in qs]
        dup_q += len(qtexts) - len(set(qtexts))
        from mmskin.vqa.generate import _question_tokens, is_near_duplicate

        toks = [_question_tokens(q, lex) for q in qtexts]
        near += sum(is_near_duplicate(a, b) for i, a in enumerate(toks) for b in toks[i + 1 :])
    with_q = sum(1 for _, q in out if q)
    print(f"\n== {name}: {len(recs)} captions, {with_q} with >=1 QA, {n} QA")
    print(
        f"  QA per captioned image: {n / max(1, len(recs)):.2f}   (per image with >=1 QA: {n / max(1, with_q):.2f})"
    )
    print(f"  answer content words supported: strict {strict / max(1, words):.4f}, lexicon {lexical / max(1, words):.4f}"
          f"  ({words} words); answers passing the grounding check: {grounded}/{n} = {grounded / max(1, n):.4f}")  # fmt: skip
    print(f"  duplicate questions per image: exact {dup_q}, near-duplicate pairs {near}")
    print(
        f"  throughput: {n / dt:.0f} samples/s, {len(recs) / dt:.0f} captions/s (template, 1 thread, {dt:.2f} s)"
    )
    print(f"  question types: {dist(types, n)}")
    return out, types


class _Stub(BaseHTTPRequestHandler):
    calls = 0

    def log_message(self, *a) -> None:
        pass

    def do_POST(self) -> None:
        req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).calls += 1
        cap = re.search(r'Caption: """(.*?)"""', req["messages"][-1]["content"], re.S).group(1)
        items = [{"question": "Can you describe the image?", "answer": cap, "question_type": "describe"}]
        body = json.dumps({"choices": [{"message": {"content": json.dumps({"questions": items})}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def openai_cache_rerun(ds: Path) -> None:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    args = ["vqa", str(ds), "--generator", "openai", "--base-url", url, "--model", "stub", "--quiet"]
    try:
        for run in ("first run", "rerun"):
            before = _Stub.calls
            t0 = time.perf_counter()
            main(args)
            info = json.loads((ds / "vqa_info.json").read_text())["llm"]
            hits, total = info["cache_hits"], info["cache_hits"] + info["cache_misses"]
            print(f"  openai {run}: {_Stub.calls - before} HTTP requests, cache hit rate {hits / total:.2f} "
                  f"({hits}/{total}), {time.perf_counter() - t0:.2f} s")  # fmt: skip
    finally:
        httpd.shutdown()
        httpd.server_close()


def main_bench(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--show", type=int, default=2, help="print the QA of this many captions per corpus")
    add_data_argument(ap)
    args = ap.parse_args(argv)
    global SHARED
    SHARED = args.data
    return save_printed("vqa", "vqa_generation", lambda: bench(args), args, packages=["pyyaml"])


def bench(args: argparse.Namespace) -> int:
    if not SHARED.exists():
        print(f"../shared/data not present ({SHARED}): nothing to measure")
        return 1
    lex, tpl = load_lexicon(), load_templates()
    print(f"mmskin {__version__} | lexicon {lex.version} sha256 {lex.sha256[:12]} | templates {tpl.version} "
          f"sha256 {tpl.sha256[:12]} | seed {args.seed} | python {sys.version.split()[0]}")  # fmt: skip

    questions, n_images = mmskin_test_questions()
    mm_types = Counter(tpl.classify(q) for q in questions)
    print(f"\n== MM-Skin test set: {len(questions)} QA over {n_images} images ({len(questions) / n_images:.2f} per "
          f"image; the paper reports about 2.7 over MM-Skin-O)")  # fmt: skip
    print(f"  question types (our rules): {dist(mm_types, len(questions))}")
    answerable = sum(v for k, v in mm_types.items() if k != "other")
    print(f"  share answerable from a caption (not 'other'): {answerable / len(questions):.3f}")

    # demo atlas through the CLI (uncurated, then with modality set as curate would)
    tmp = Path(tempfile.mkdtemp(prefix="mmskin-vqa-bench-"))
    try:
        ds = tmp / "demo"
        main(["build", str(demo_pdf()), "--out", str(ds), "--workers", "1", "--quiet"])
        t0 = time.perf_counter()
        main(["vqa", str(ds), "--quiet", "--seed", str(args.seed)])
        dt = time.perf_counter() - t0
        info = json.loads((ds / "vqa_info.json").read_text())
        print(f"\n== demo atlas via `mmskin vqa` (uncurated): {info['samples']} QA over {info['records']['usable']} "
              f"records ({info['samples'] / info['records']['usable']:.2f} per image), dropped {info['dropped']}, "
              f"{dt:.2f} s incl. file I/O")  # fmt: skip
        print(f"  question types: {info['question_types']}")
        recs = [json.loads(x) for x in (ds / "records.jsonl").read_text().splitlines()]
        for r in recs:
            r["modality"] = "pathology" if "H&E" in r["caption"] or "tissue" in r["caption"] else "clinical"
        evaluate_corpus("demo atlas (modality set as curate would)", recs, args.seed)
        openai_cache_rerun(ds)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    corpora = [
        ("NCI nevus captions (clinical)", nci_records()),
        ("ARCH skin captions (pathology)", arch_skin_records()),
    ]
    all_types: Counter = Counter()
    cap3: Counter = Counter()
    for name, recs in corpora:
        out, types = evaluate_corpus(name, recs, args.seed)
        all_types.update(types)
        cap3.update(capped_types(recs, args.seed, 3))
        for r, qs in [x for x in out if len(x[1]) >= 4][: args.show]:
            print(f"  -- example: {r['caption'][:300]}")
            for qa in qs:
                print(f"     [{qa.question_type}] Q: {qa.question}  A: {qa.answer[:160]}")

    n_all, n3 = sum(all_types.values()), sum(cap3.values())
    mm_n = sum(v for k, v in mm_types.items() if k != "other")
    print(
        "\n== question-type mix: ours (NCI + ARCH; all types / --per-image 3) vs MM-Skin test (caption-answerable)"
    )
    for t in sorted(
        set(all_types) | {k for k in mm_types if k != "other"}, key=lambda k: -mm_types.get(k, 0)
    ):
        print(f"  {t:13s} ours {all_types.get(t, 0) / n_all:6.3f} / {cap3.get(t, 0) / n3:6.3f}   "
              f"MM-Skin {mm_types.get(t, 0) / mm_n:6.3f}")  # fmt: skip
    print(f"  --per-image 3: {n3} QA over {sum(len(r) for _, r in corpora)} captions")

    recs, qa = pathvqa()
    out, _ = evaluate_corpus("PathVQA Basic Pathology captions (pathology)", recs, args.seed)
    lex = load_lexicon()
    total = cov = cov_nd = part_nd = 0
    for r, qs in out:
        ours_all = {w for q in qs for w in content_words(q.answer, lex)}
        ours_nd = {w for q in qs if q.question_type != "describe" for w in content_words(q.answer, lex)}
        for row in qa[r["id"]]:
            ans = str(row["Answers"]).strip().lower()
            if ans in ("yes", "no"):
                continue
            words = set(content_words(ans, lex))
            if not words:
                continue
            total += 1
            cov += words <= ours_all
            cov_nd += words <= ours_nd
            part_nd += len(words & ours_nd) / len(words) >= 0.5
    print(f"  PathVQA open answers on these captions: {total}; all their content words in our answers: "
          f"{cov / total:.3f} (incl. the describe answer, which repeats the caption), {cov_nd / total:.3f} "
          f"(without describe); at least half the words (without describe): {part_nd / total:.3f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main_bench())
