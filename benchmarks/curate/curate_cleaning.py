"""Benchmark: caption cleaning (mmskin.curate.text.clean_caption) against real captions.

Part A — PathVQA's raw→clean pairs (``../shared/data/captions/pathvqa_textbook_captions``,
``caption_crawled.txt`` ↔ ``caption_crawled_cc3.txt``, 3,329 lines paired by id). Their raw text is PEIR's catalogue
style ("GROSS: ABDOMEN: Peritoneum: Acute Peritonitis: Gross natural color opened peritoneum …") and their clean
text is a template ("This image shows opened peritoneum … Abdomen is present. Acute peritonitis is present."), so
the styles differ: we compare on what both should agree on.
  - token precision/recall/F1 (lower-cased words, multiset overlap) of our output against their clean text with
    their template removed ("This image shows", "X is present."), next to the same numbers for the raw text
    (doing nothing) and for the raw text with PEIR's category header removed;
  - per removable kind (independent keyword detectors): how often the raw has it, how often they removed it, how
    often we removed it, and how often we agree with them.
Part B — real textbook and article captions (ARCH books set, SciInt PubMed figures): label removal rate,
residual credits / cross-references / marker legends after cleaning, stain and magnification kept, empty
outputs, idempotence violations and speed.

    .venv/bin/python benchmarks/curate/curate_cleaning.py [--show 5] [--data DIR]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, for _common
from _common import DEFAULT_DATA, add_data_argument, add_out_argument, save_results  # noqa: E402

from mmskin import __version__  # noqa: E402
from mmskin.curate.text import clean_caption  # noqa: E402

DATA = DEFAULT_DATA  # set from --data by main()
PAIRS = DATA / "captions" / "pathvqa_textbook_captions"

WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
# PEIR's catalogue header: up to five "Word words:" fields before the description
PEIR_HEADER = re.compile(r"^(?:[A-Za-z][^:]{0,60}:\s*){1,5}")

# independent detectors of what cleaning should remove (A: in PEIR text; B: in textbook captions)
KINDS = {
    "figure label": re.compile(r"\b(?:fig(?:ure)?s?\.?|plate)\s*\d+(?:[.\-–]\d+)*", re.I),
    "credit": re.compile(
        r"\bcourtesy\b|©|\bcopyright\b|\b(?:reproduced|reprinted|adapted)\s+(?:with|from|by)\b|\bwith permission\b",
        re.I,
    ),
    "cross-reference": re.compile(
        r"\bsee\s+(?:also\s+)?(?:fig(?:ure)?s?\.?|chapter|table|p\.|page)\s*\d|\((?:see\s+)?figs?\.?\s*\d",
        re.I,
    ),
    "marker legend": re.compile(r"\((?:[^()]*\b)?(?:arrows?|arrowheads?|asterisks?)\b[^()]*\)", re.I),
}
KEEP = {
    "stain": re.compile(r"\bH\s*&\s*E\b|\bhaematoxylin\b|\bhematoxylin\b|\bPAS\b|\bGiemsa\b", re.I),
    "magnification": re.compile(
        r"×\s?\d{2,4}\b|\b[xX]\s?\d{2,4}\b|\bmagnification\b|\b(?:low|med|high)\s+mag\b", re.I
    ),
}
SPLIT_LIGATURE = re.compile(r"(?<=[a-z]) f[il] (?=[a-z])|\bf[il] (?=[a-z]{3})")
LABEL_START = re.compile(r"^\s*(?:fig(?:ure)?s?\.?|plate|FIGURE)\s*\d", re.I)


def tokens(text: str) -> Counter[str]:
    return Counter(WORD.findall(text.lower()))


def their_core(clean: str) -> str:
    t = re.sub(r"^\s*This image shows\s+(?:an?\s+|the\s+)?", "", clean.strip())
    t = re.sub(r"^\s*This\s+", "", t)
    t = re.sub(r"(?:^|(?<=\.))\s*[^.]*?\b(?:is|are) present\.", "", t)
    return t.strip()


def prf(pred: Counter[str], ref: Counter[str]) -> tuple[int, int, int]:
    return sum((pred & ref).values()), sum(pred.values()), sum(ref.values())


def read_pairs() -> list[tuple[str, str, str]]:
    def read(p: Path) -> dict[str, str]:
        out = {}
        for line in p.read_text(encoding="utf-8").splitlines():
            if "\t" in line:
                k, v = line.split("\t", 1)
                out[k.strip()] = v
        return out

    raw, clean = read(PAIRS / "caption_crawled.txt"), read(PAIRS / "caption_crawled_cc3.txt")
    return [(k, raw[k], clean[k]) for k in raw if k in clean]


def part_a(show: int) -> dict:
    pairs = read_pairs()
    sums = {
        k: [0, 0, 0]
        for k in (
            "raw (no cleaning)",
            "raw minus PEIR header",
            "mmskin clean_caption",
            "mmskin clean_caption minus PEIR header",
        )
    }
    kinds: dict[str, Counter[str]] = {k: Counter() for k in (*KINDS, *KEEP)}
    examples = []
    t0 = time.perf_counter()
    for _, raw, clean in pairs:
        ours = clean_caption(raw)
        ref = tokens(their_core(clean))
        variants = {
            "raw (no cleaning)": raw,
            "raw minus PEIR header": PEIR_HEADER.sub("", raw),
            "mmskin clean_caption": ours,
            "mmskin clean_caption minus PEIR header": PEIR_HEADER.sub("", ours),
        }
        for name, text in variants.items():
            a, b, c = prf(tokens(text), ref)
            sums[name][0] += a
            sums[name][1] += b
            sums[name][2] += c
        for name, rx in {**KINDS, **KEEP}.items():
            m = rx.search(raw)
            if not m:
                continue
            kinds[name]["raw"] += 1
            key = re.escape(m.group(0).strip())
            theirs_gone = not re.search(key, clean, re.I)
            ours_gone = not re.search(key, ours, re.I)
            kinds[name]["theirs_removed"] += theirs_gone
            kinds[name]["ours_removed"] += ours_gone
            kinds[name]["agree"] += theirs_gone == ours_gone
            if theirs_gone != ours_gone and len(examples) < show:
                examples.append(
                    f"[{name}] raw={raw[:140]!r}\n      theirs={clean[:120]!r}\n      ours={ours[:120]!r}"
                )
    secs = time.perf_counter() - t0
    print(
        f"\n== A. PathVQA raw->clean pairs: {len(pairs)} pairs ({secs:.2f} s, {len(pairs) / secs:.0f} captions/s)"
    )
    print(
        "token overlap with their clean text (template removed); P = share of our words they kept, "
        "R = share of their words we kept"
    )
    res: dict = {"pairs": len(pairs)}
    for name, (a, b, c) in sums.items():
        p, r = a / b if b else 0.0, a / c if c else 0.0
        f = 2 * p * r / (p + r) if p + r else 0.0
        print(f"  {name:42s} P {p:.4f}  R {r:.4f}  F1 {f:.4f}")
        res[name] = {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f, 4)}
    print("per kind (raw has it -> removed by them / by us / agreement):")
    for name, k in kinds.items():
        n = k["raw"]
        if not n:
            print(f"  {name:16s} raw 0")
            continue
        print(
            f"  {name:16s} raw {n:5d}  theirs removed {k['theirs_removed'] / n:.3f}  ours removed "
            f"{k['ours_removed'] / n:.3f}  agree {k['agree'] / n:.3f}"
        )
        res[name] = {kk: k[kk] for kk in ("raw", "theirs_removed", "ours_removed", "agree")}
    for e in examples:
        print("  " + e)
    return res


def part_b(show: int) -> dict:
    caps: list[str] = []
    books = DATA / "captions" / "arch_histopath_textbook_captions" / "books_set" / "captions.json"
    sciint = DATA / "pdfs" / "sciint_annotations" / "annotation_284_pdfs_captions.json"
    if books.is_file():
        caps += sorted({v["caption"] for v in json.loads(books.read_text(encoding="utf-8")).values()})
    if sciint.is_file():
        for v in json.loads(sciint.read_text(encoding="utf-8")).values():
            caps += [f["caption-txt"] for f in v["pdf-figures"].values() if f.get("caption-txt")]
    c: Counter[str] = Counter()
    examples: list[str] = []
    t0 = time.perf_counter()
    outs = [clean_caption(x) for x in caps]
    secs = time.perf_counter() - t0
    for raw, out in zip(caps, outs):
        c["captions"] += 1
        if LABEL_START.search(raw):
            c["label"] += 1
            c["label_removed"] += not LABEL_START.search(out)
        for name, rx in KINDS.items():
            if name == "figure label":
                continue
            if rx.search(raw):
                c[f"{name}"] += 1
                left = rx.search(out)
                c[f"{name}_left"] += bool(left)
                if left and len(examples) < show:
                    examples.append(f"[{name} left] {out[max(0, left.start() - 80) : left.end() + 60]!r}")
        for name, rx in KEEP.items():
            if rx.search(raw):
                c[name] += 1
                c[f"{name}_kept"] += bool(rx.search(out))
        if SPLIT_LIGATURE.search(raw):
            c["split_ligature"] += 1
            c["split_ligature_left"] += bool(SPLIT_LIGATURE.search(out))
        c["empty"] += bool(raw.strip()) and not out
        c["not_idempotent"] += clean_caption(out) != out
        c["chars_raw"] += len(raw)
        c["chars_out"] += len(out)
    n = c["captions"]
    print(
        f"\n== B. textbook and article captions (ARCH books, SciInt): {n} captions "
        f"({secs:.2f} s, {n / secs:.0f} captions/s)"
    )
    print(
        f"  leading figure label removed: {c['label_removed']}/{c['label']} = "
        f"{c['label_removed'] / max(1, c['label']):.4f}"
    )
    for name in ("credit", "cross-reference", "marker legend"):
        print(
            f"  {name:16s} in raw {c[name]:5d}, still present after cleaning {c[name + '_left']:4d} "
            f"(removal {1 - c[name + '_left'] / max(1, c[name]):.4f})"
        )
    for name in KEEP:
        print(f"  {name:16s} in raw {c[name]:5d}, kept {c[name + '_kept'] / max(1, c[name]):.4f}")
    print(
        f"  broken ligatures ('myo fi broblastic') in raw {c['split_ligature']}, still present after cleaning "
        f"{c['split_ligature_left']}"
    )
    print(
        f"  empty outputs {c['empty']}, idempotence violations {c['not_idempotent']}, "
        f"characters kept {c['chars_out'] / max(1, c['chars_raw']):.4f}"
    )
    for e in examples:
        print("  " + e)
    return dict(c)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--show", type=int, default=4, help="disagreement examples to print")
    add_out_argument(ap, "curate", "curate_cleaning")
    add_data_argument(ap)
    args = ap.parse_args(argv)
    global DATA, PAIRS
    DATA, PAIRS = args.data, args.data / "captions" / "pathvqa_textbook_captions"
    if not (PAIRS / "caption_crawled.txt").is_file():
        print(f"error: {PAIRS}: PathVQA caption pairs not found", file=sys.stderr)
        return 2
    print(f"mmskin {__version__} caption-cleaning benchmark (data: {DATA.resolve()})")
    res = {"A": part_a(args.show), "B": part_b(args.show)}
    save_results("curate", "curate_cleaning", res, args, out=args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
