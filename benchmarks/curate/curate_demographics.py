"""Benchmark: age and sex extraction (mmskin.curate.demographics) against MedPix 2.0's structured Age and Sex.

Data: ``../shared/data/captions/medpix2_age_sex_gt`` — 350 case histories (``Case_topic.json``, field
``Case.History``) and 1,047 image captions (``Descriptions.json``), each with the patient's structured ``Age``
(integer years, "0" for infants) and ``Sex`` ("male", "female", "N/A"). Radiology wording, not dermatology.

What is measured, per text set (histories; image captions):

- **sex**: precision = correct / predicted; recall over the texts that *state* the sex (an independent, deliberately
  loose check: a sex word — man, woman, male, female, boy, girl, he, she, his, her … or M/F right after an age —
  occurs in the text) and over all texts with a known sex; F1 from the stated recall (the target: ≥ 0.97).
- **age**: exact match over the texts that *state* the ground-truth age (the number, as digits, with a year unit
  or "aged" next to it); ages under one year are compared in years (MedPix stores a 6-month-old as "1" or "0",
  so sub-year ages are reported apart: consistent when GT is 0 or 1).
- **invented values**: a value where the ground truth has none (Sex "N/A"), or where the text does not state
  it (a predicted sex in a text with no sex word at all; a predicted age that differs from the ground truth
  when the text does not state the ground-truth age). Target: zero.

    .venv/bin/python benchmarks/curate/curate_demographics.py [--data DIR] [--show 10]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, for _common
from _common import add_data_argument, add_out_argument, save_results  # noqa: E402

from mmskin import __version__  # noqa: E402
from mmskin.curate.demographics import extract_demographics  # noqa: E402

SEX_WORDS = re.compile(
    r"\b(?:man|woman|male|female|boy|girl|gentleman|lady|he|she|his|her|him|hers|himself|herself|"
    r"son|daughter)\b|\d\s*(?i:y/?o|y\.o\.|yrs?|years?[- ]old)\s*(?:AA|W|B|H)?[MF]\b",
    re.I,
)


def age_stated(text: str, age: int) -> bool:
    n = rf"(?<![\d.]){age}(?![\d.])"
    return bool(
        re.search(rf"{n}\s*-?\s*(?:years?|yrs?|y\.?\s*/?\s*o\b|y\b|yo\b)", text, re.I)
        or re.search(rf"\bage[d]?\s*:?\s*{n}", text, re.I)
    )


def load(
    data: Path,
) -> tuple[list[tuple[str, str, int | None, str | None]], list[tuple[str, str, int | None, str | None]]]:
    cases = json.loads((data / "Case_topic.json").read_text(encoding="utf-8"))
    descs = json.loads((data / "Descriptions.json").read_text(encoding="utf-8"))

    def gt(d: dict) -> tuple[int | None, str | None]:
        a, s = d.get("Age"), d.get("Sex")
        age = int(a) if isinstance(a, str) and a.strip().isdigit() else None
        sex = s if s in ("male", "female") else None
        return age, sex

    by_case = {d["U_id"]: gt(d["Description"]) for d in descs}
    histories = [
        (c["U_id"], (c.get("Case") or {}).get("History") or "", *by_case.get(c["U_id"], (None, None)))
        for c in cases
    ]
    captions = [(d["image"], d["Description"].get("Caption") or "", *gt(d["Description"])) for d in descs]
    return histories, captions


def score(rows: list[tuple[str, str, int | None, str | None]], show: int, name: str) -> dict:
    keys = (
        "texts",
        "sex_known",
        "sex_stated",
        "sex_pred",
        "sex_correct",
        "sex_wrong",
        "sex_invented_gt_none",
        "sex_invented_not_in_text",
        "age_known",
        "age_stated",
        "age_pred",
        "age_exact",
        "age_wrong_stated",
        "age_rounding",
        "age_text_differs_from_gt",
        "age_invented_gt_none",
        "age_invented_not_in_text",
    )
    s: dict = {k: 0 for k in keys}
    ex: dict[str, list[str]] = {
        k: []
        for k in (
            "sex_wrong",
            "sex_missed",
            "sex_invented_gt_none",
            "sex_invented_not_in_text",
            "age_wrong",
            "age_missed",
            "age_rounding",
            "age_text_differs_from_gt",
            "age_invented_gt_none",
            "age_invented_not_in_text",
        )
    }
    t0 = time.perf_counter()
    for uid, text, gt_age, gt_sex in rows:
        d = extract_demographics(text)
        line = f"{uid} gt=({gt_age}, {gt_sex}) pred=({d.age}, {d.sex}) ev={d.evidence!r}: {text[:150]!r}"
        s["texts"] += 1
        words = bool(SEX_WORDS.search(text))
        if gt_sex:
            s["sex_known"] += 1
            s["sex_stated"] += words
        if d.sex is not None:
            s["sex_pred"] += 1
            if gt_sex is None:
                kind = "sex_invented_gt_none"
            elif not words:
                kind = "sex_invented_not_in_text"
            elif d.sex == gt_sex:
                kind = "sex_correct"
            else:
                kind = "sex_wrong"
            s[kind] += 1
            if kind in ex:
                ex[kind].append(line)
        elif gt_sex and words:
            ex["sex_missed"].append(line)

        stated = gt_age is not None and age_stated(text, gt_age)
        if gt_age is not None:
            s["age_known"] += 1
            s["age_stated"] += stated
        if d.age is not None:
            s["age_pred"] += 1
            in_text = (
                d.evidence is not None
                and d.evidence in text
                and (d.age != int(d.age) or age_stated(text, int(d.age)))
            )
            if gt_age is None:
                kind = "age_invented_gt_none"
            elif d.age == float(gt_age):
                kind = "age_exact" if stated else "age_exact_unstated"
            elif stated:
                kind = "age_wrong_stated"
            elif int(d.age) == gt_age or (d.age < 1 and gt_age <= 1):
                kind = "age_rounding"  # "3 1/2 year old" -> 3.5 where MedPix stores 3; months in MedPix years
            elif in_text:
                kind = "age_text_differs_from_gt"
            else:
                kind = "age_invented_not_in_text"
            if kind in s:
                s[kind] += 1
            if kind == "age_wrong_stated":
                ex["age_wrong"].append(line)
            elif kind in ex:
                ex[kind].append(line)
        elif stated:
            ex["age_missed"].append(line)
    s["seconds"] = round(time.perf_counter() - t0, 3)
    p = s["sex_correct"] / s["sex_pred"] if s["sex_pred"] else 0.0
    p_known = (
        s["sex_correct"] / (s["sex_correct"] + s["sex_wrong"]) if s["sex_correct"] + s["sex_wrong"] else 0.0
    )
    r = s["sex_correct"] / s["sex_stated"] if s["sex_stated"] else 0.0
    r_all = s["sex_correct"] / s["sex_known"] if s["sex_known"] else 0.0

    def f(a: float, b: float) -> float:
        return 2 * a * b / (a + b) if a + b else 0.0

    inv_gt = s["sex_invented_gt_none"] + s["age_invented_gt_none"]
    inv_text = s["sex_invented_not_in_text"] + s["age_invented_not_in_text"]
    s.update(
        sex_precision=round(p, 4),
        sex_precision_gt_known=round(p_known, 4),
        sex_recall_stated=round(r, 4),
        sex_f1=round(f(p, r), 4),
        sex_f1_gt_known=round(f(p_known, r), 4),
        sex_recall_all=round(r_all, 4),
        age_exact_match_stated=round(s["age_exact"] / s["age_stated"], 4) if s["age_stated"] else None,
        invented_gt_none=inv_gt,
        invented_not_in_text=inv_text,
    )
    print(f"\n== {name}: {s['texts']} texts ({s['seconds']} s)")
    print(
        f"sex: P {p:.4f}  R(stated) {r:.4f}  F1 {f(p, r):.4f}   [where GT has a sex: P {p_known:.4f}, "
        f"F1 {f(p_known, r):.4f}]  R(all GT-known) {r_all:.4f}"
    )
    print(
        f"     predicted {s['sex_pred']}: correct {s['sex_correct']}, wrong {s['sex_wrong']}, GT none "
        f"{s['sex_invented_gt_none']}, no sex word in text {s['sex_invented_not_in_text']}; GT known "
        f"{s['sex_known']}, stated {s['sex_stated']}"
    )
    em = s["age_exact_match_stated"]
    print(
        f"age: exact match where stated {em if em is None else f'{em:.4f}'} ({s['age_exact']}/{s['age_stated']}; "
        f"wrong {s['age_wrong_stated']}); predicted {s['age_pred']}; rounding/units vs GT {s['age_rounding']}; "
        f"text states another age than GT {s['age_text_differs_from_gt']}"
    )
    print(
        f"invented values: {inv_text} not stated in the text (sex {s['sex_invented_not_in_text']}, age "
        f"{s['age_invented_not_in_text']}); {inv_gt} where the GT has no value (sex "
        f"{s['sex_invented_gt_none']}, age {s['age_invented_gt_none']}; see the examples: the text states them)"
    )
    for k, v in ex.items():
        for line in v[:show]:
            print(f"  [{k}] {line}")
    return s


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_argument(ap, "captions", "medpix2_age_sex_gt", what="MedPix 2.0 case histories and captions")
    ap.add_argument("--show", type=int, default=5, help="examples of each error kind to print")
    add_out_argument(ap, "curate", "curate_demographics")
    args = ap.parse_args(argv)
    if not (args.data / "Case_topic.json").is_file():
        print(f"error: {args.data}: MedPix data not found", file=sys.stderr)
        return 2
    histories, captions = load(args.data)
    print(f"mmskin {__version__} demographics benchmark on {args.data.resolve()}")
    res = {
        "histories": score(histories, args.show, "case histories"),
        "captions": score(captions, args.show, "image captions"),
    }
    save_results("curate", "curate_demographics", res, args, out=args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
