"""Agreement with docling's frozen output on the real PDFs in ../shared/data/pdfs/docling_regression_gt.

docling's ``groundtruth/*.json`` is a model's output (its layout model + caption linking), not human truth: this
script reports how often `mmskin build` and docling agree, and lists every disagreement so a person can judge
who is right (look at ``--debug-pages``). Pictures are compared whole (a panel record is merged back into its
figure) with IoU >= 0.8; the caption must agree too (similarity >= 0.9) when docling linked one.

    python benchmarks/pdf/docling_reference.py
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from difflib import SequenceMatcher
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, for _common
from _common import add_data_argument, save_results  # noqa: E402

from mmskin.pdf.build import BuildConfig, run  # noqa: E402


def docling_pictures(gt: dict) -> list[dict]:
    heights = {int(k): v["size"]["height"] for k, v in gt["pages"].items()}
    texts = {t["self_ref"]: t for t in gt["texts"]}
    out = []
    for p in gt["pictures"]:
        for prov in p["prov"]:
            b = prov["bbox"]
            h = heights[prov["page_no"]]
            box = (
                [b["l"], h - b["t"], b["r"], h - b["b"]]
                if b.get("coord_origin") == "BOTTOMLEFT"
                else [b["l"], b["t"], b["r"], b["b"]]
            )
            cap = " ".join(
                texts[c["$ref"]].get("text", texts[c["$ref"]].get("orig", "")) for c in p["captions"]
            )
            out.append({"page": prov["page_no"], "bbox": box, "caption": cap})
    return out


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    u = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / u if u > 0 else 0.0


def sim(a: str, b: str) -> float:
    return SequenceMatcher(None, " ".join(a.split()), " ".join(b.split()), autojunk=False).ratio()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_argument(ap, "pdfs", "docling_regression_gt", what="PDFs with docling's groundtruth/")
    args = ap.parse_args(argv)
    pdfs = sorted(args.data.glob("*.pdf"))
    if not pdfs:
        print(f"no PDFs in {args.data}", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as out:
        run(BuildConfig(inputs=[str(p) for p in pdfs], out=Path(out), workers=1))
        recs = [json.loads(x) for x in (Path(out) / "records.jsonl").read_text().splitlines()]
    # merge panels back into figures
    figs: dict[tuple, dict] = {}
    for r in recs:
        key = (r["source"]["file"], r["source"]["page"], r["figure_label"], r["caption_raw"])
        b = r["source"]["bbox"]
        f = figs.setdefault(key, {"file": key[0], "page": key[1], "bbox": list(b), "caption": key[3]})
        f["bbox"] = [
            min(f["bbox"][0], b[0]),
            min(f["bbox"][1], b[1]),
            max(f["bbox"][2], b[2]),
            max(f["bbox"][3], b[3]),
        ]
    agree = both_captioned = dl_total = dl_captioned = 0
    print(f"{'file':32} page  docling picture                   caption?  mmskin")
    for pdf in pdfs:
        gt = json.loads((args.data / "groundtruth" / f"{pdf.stem}.json").read_text())
        ours = [f for f in figs.values() if f["file"] == pdf.name]
        for p in docling_pictures(gt):
            dl_total += 1
            dl_captioned += bool(p["caption"])
            best = max(
                ours, key=lambda f: iou(f["bbox"], p["bbox"]) if f["page"] == p["page"] else 0, default=None
            )
            ok_box = best is not None and best["page"] == p["page"] and iou(best["bbox"], p["bbox"]) >= 0.8
            ok_cap = ok_box and (not p["caption"] or sim(p["caption"], best["caption"]) >= 0.9)
            agree += ok_cap
            both_captioned += bool(ok_cap and p["caption"])
            verdict = "agree" if ok_cap else ("box only" if ok_box else "no record")
            box = "[" + ", ".join(f"{v:.0f}" for v in p["bbox"]) + "]"
            print(
                f"{pdf.name[:32]:32} {p['page']:4}  {box:32}  {'yes' if p['caption'] else 'no ':8}  {verdict}"
            )
        for f in ours:
            if not any(
                p["page"] == f["page"] and iou(f["bbox"], p["bbox"]) >= 0.8 for p in docling_pictures(gt)
            ):
                print(
                    f"{pdf.name[:32]:32} {f['page']:4}  (docling: none)  mmskin record: {f['caption'][:60]}"
                )
    print(
        f"docling pictures: {dl_total} ({dl_captioned} with a linked caption); mmskin agrees on {agree} "
        f"({both_captioned} of the captioned ones). mmskin emits only captioned figures by design."
    )
    totals = {"pdfs": len(pdfs), "docling_pictures": dl_total, "docling_captioned": dl_captioned}
    totals.update(agree=agree, agree_captioned=both_captioned)
    save_results("pdf", "docling_reference", totals, args, packages=["pymupdf"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
