"""Curate on real articles: modality per figure against the figure list, usable records, flags, duplicates.

The real PDFs (``../shared/data/pdfs/real_dermatology``) are built with ``mmskin build`` (cached in
``benchmarks/_work/curate_real/built``), a fresh copy is curated with the mmskin next to this script (or
``--curated DIR`` scores a dataset curated elsewhere: an older mmskin, for the before/after numbers), and the
records are matched to ``groundtruth.json`` by file, page and figure number. A figure's modality in the list
("clinical photo", "histopathology (H&E)", "dermoscopy", "other (bar chart)", "mixed: dermoscopy (a) + ...")
is the truth for every record of the figure ("mixed": any of the classes it names).

Reports: record and figure accuracy of ``modality`` (a figure is right when all its records are), the share of
records usable for VQA and exports (no excluding flag, ``records.is_usable``) overall and among the pictures of
skin and tissue (truth clinical, dermoscopy or pathology), the flags, and the duplicate groups found.

    .venv/bin/python benchmarks/curate/curate_real.py
    .venv/bin/python benchmarks/curate/curate_real.py --curated /tmp/curated_by_old_mmskin
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, for _common
from _common import WORK, add_data_argument, save_printed  # noqa: E402

from mmskin.cli import main as mmskin_main  # noqa: E402
from mmskin.records import MODALITIES, is_usable  # noqa: E402

TRUTH_WORDS = {
    "clinical": "clinical",
    "dermoscopy": "dermoscopy",
    "histopathology": "pathology",
    "other": "other",
}


def truth_classes(text: str) -> set[str]:
    """The classes a figure-list modality names: its first word, or every class named after "mixed:"."""
    t = text.lower()
    if t.startswith("mixed"):
        return {c for w, c in TRUTH_WORDS.items() if w in t}
    first = re.split(r"[\s(:]", t, maxsplit=1)[0]
    return {TRUTH_WORDS[first]} if first in TRUTH_WORDS else set()


def figure_number(label: str | None) -> str:
    m = re.search(r"(\d+(?:[.\-]\d+)?)", label or "")
    return m.group(1) if m else ""


def score(ds: Path, gt: dict) -> None:
    recs = [json.loads(line) for line in (ds / "records.jsonl").read_text(encoding="utf-8").splitlines()]
    truth: dict[tuple, set[str]] = {}
    for pdf, entry in gt.items():
        for fig in entry["figures"]:
            truth[(pdf, fig["page"], figure_number(fig["label"]))] = truth_classes(fig["modality"])
    by_fig: dict[tuple, list[dict]] = {}
    unmatched = 0
    for r in recs:
        key = (r["source"]["file"], r["source"]["page"], figure_number(r.get("figure_label")))
        if key in truth:
            by_fig.setdefault(key, []).append(r)
        else:
            unmatched += 1
    ok_rec = sum(r["modality"] in truth[k] for k, rs in by_fig.items() for r in rs)
    n_rec = sum(len(rs) for rs in by_fig.values())
    ok_fig = sum(all(r["modality"] in truth[k] for r in rs) for k, rs in by_fig.items())
    print(
        f"dataset {ds}: {len(recs)} records, {len(by_fig)} of {len(truth)} listed figures matched, {unmatched} unmatched"
    )
    print(f"  modality, records: {ok_rec}/{n_rec} = {ok_rec / max(1, n_rec):.3f}")
    print(
        f"  modality, figures (all records right): {ok_fig}/{len(by_fig)} = {ok_fig / max(1, len(by_fig)):.3f}"
    )
    for k, rs in sorted(by_fig.items()):
        wrong = [f"{r.get('panel') or '-'}:{r['modality']}" for r in rs if r["modality"] not in truth[k]]
        if wrong:
            print(f"    wrong: {k[0][:28]} p{k[1]} fig {k[2]} truth {sorted(truth[k])}: {', '.join(wrong)}")
    wrong_recs = [r for k, rs in by_fig.items() for r in rs if r["modality"] not in truth[k]]
    caught = sum("review" in r["flags"] for r in wrong_recs)
    flagged = sum("review" in r["flags"] for r in recs)
    print(
        f"  review flag: catches {caught}/{len(wrong_recs)} wrong records, flags {flagged}/{len(recs)} = "
        f"{flagged / max(1, len(recs)):.3f} of all records"
    )
    usable = sum(is_usable(r) for r in recs)
    skin = [r for k, rs in by_fig.items() for r in rs if truth[k] & set(MODALITIES[:3])]
    skin_usable = sum(is_usable(r) for r in skin)
    print(f"  usable for VQA/exports: {usable}/{len(recs)} = {usable / max(1, len(recs)):.3f} of all records")
    print(
        f"  usable among skin and tissue pictures (truth clinical/dermoscopy/pathology): {skin_usable}/{len(skin)}"
        f" = {skin_usable / max(1, len(skin)):.3f}"
    )
    why = Counter(f for r in skin if not is_usable(r) for f in r["flags"])
    print(f"    what keeps them out: {dict(sorted(why.items()))}")
    print(f"  flags (all records): {dict(sorted(Counter(f for r in recs for f in r['flags']).items()))}")
    dups = [r for r in recs if r.get("duplicate_of")]
    print(f"  duplicates: {len(dups)}")
    ids = {r["id"]: r for r in recs}
    for r in dups:
        k = ids.get(r["duplicate_of"], {})
        print(
            f"    {r['source']['file'][:20]} fig {r.get('figure_label')}{r.get('panel') or ''} = fig "
            f"{k.get('figure_label')}{k.get('panel') or ''}"
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_argument(ap, "pdfs", "real_dermatology", what="folder of real PDFs with groundtruth.json")
    ap.add_argument("--curated", type=Path, default=None, help="score this curated dataset instead")
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args(argv)
    gt_path = a.data / "groundtruth.json"
    if not gt_path.is_file():
        print(f"{gt_path} not found", file=sys.stderr)
        return 1
    gt = json.loads(gt_path.read_text(encoding="utf-8"))
    ds = a.curated
    if ds is None:
        work = WORK / "curate_real"
        built = work / "built"
        if not (built / "records.jsonl").is_file():
            pdfs = [str(a.data / name) for name in gt]
            mmskin_main(["build", *pdfs, "--out", str(built), "--workers", str(a.workers), "--quiet"])
        ds = work / "curated"
        shutil.rmtree(ds, ignore_errors=True)
        shutil.copytree(built, ds)
        mmskin_main(["curate", str(ds), "--workers", str(a.workers), "--quiet"])
    return save_printed("curate", "curate_real", lambda: score(ds, gt), a, packages=["numpy"])


if __name__ == "__main__":
    sys.exit(main())
