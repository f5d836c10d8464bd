"""Figure and panel extraction on REAL publisher PDFs, scored against hand-made figure lists.

A figure list (``groundtruth.json``, as in ``../shared/data/pdfs/real_dermatology/``) names, per PDF, every figure
as printed: page, label, the number of lettered panels (0 = one image) and the first words of the caption. It has
no boxes, so the scores are about what a dataset user sees:

- **figure recall**: a GT figure is found when some record on its page has its label and a caption that starts
  with the GT caption start (compared without whitespace, NFKC-normalised, case-folded; difflib ratio ≥ 0.9 on
  the prefix, so a sub-/superscript split like "n 2" vs "n2" does not count as a miss);
- **panel exactness**: among GT figures, the share whose records are exactly right: k lettered panels → exactly
  k records with k distinct non-null panel names; no panels → exactly one record with panel null;
- **unmatched records**: records of a listed PDF that belong to no GT figure (logos, author photos, tables,
  wrong labels), as a share of all records;
- **caption words**: share of the GT caption-start words found, in order, as words of the record caption
  (glued words like "structureofthe" or broken ligatures fail it).

The nearest-caption baseline (``baseline_nearest.py``) is scored the same way in the same run.

``--scan DPI`` measures the scanned-page path on the same figure lists: every page is first rendered at DPI and
stored as a JPEG (quality 85) in an image-only PDF, so the build has to OCR it (the baseline, which needs a text
layer, then finds nothing).

    .venv/bin/python benchmarks/pdf/real_pdfs.py                       # ../shared/data/pdfs/real_dermatology
    .venv/bin/python benchmarks/pdf/real_pdfs.py --more                # + 16 more articles (data/real_more_…)
    .venv/bin/python benchmarks/pdf/real_pdfs.py --gt other/groundtruth.json --show-misses
    .venv/bin/python benchmarks/pdf/real_pdfs.py --more --scan 200    # the same pages as 200-dpi scans (~4 min)
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
import time
import unicodedata
from collections import defaultdict
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # benchmarks/, for _common
sys.path.insert(0, str(HERE))  # baseline_nearest
from _common import DEFAULT_DATA, add_out_argument, save_results  # noqa: E402

DEFAULT_GT = DEFAULT_DATA / "pdfs" / "real_dermatology" / "groundtruth.json"
# our own hand-made list of 16 more real articles (other publishers and layouts) in ../shared/data/pdfs
MORE_GT = HERE / "data" / "real_more_groundtruth.json"


def norm(text: str) -> str:
    return unicodedata.normalize("NFKC", text or "").casefold()


def squash(text: str) -> str:
    return re.sub(r"\s+", "", norm(text))


def label_number(label: str | None) -> str:
    """'FIGURE 12' -> '12', 'Fig. 3.2' -> '3.2', 'Extended Data Fig. 1' -> 'ED1'-free number '1'."""
    t = norm(label or "").strip()
    t = re.sub(r"^(extended data|supplementary|suppl\.?)\s+", "", t)
    t = re.sub(r"^(fig(ure)?s?\.?|plate|pl\.)\s*", "", t)
    return t.rstrip(".:")


def strip_label(caption: str) -> str:
    """The caption after its printed label ("Figure 2: (a) ..." -> "(a) ...")."""
    m = re.match(
        r"^\s*(?:(?:extended data|supplementary)\s+)?(?:fig(?:ure)?s?\.?|plate)\s*[a-z]?\d+(?:[.\-–]\d+)*[a-z]?"
        r"\s*[.:|]?\s*:?\s*",
        caption,
        re.I,
    )
    return caption[m.end() :] if m else caption


def caption_starts(record_caption: str, gt_start: str) -> bool:
    rec, gt = squash(strip_label(record_caption)), squash(gt_start)
    if not gt:
        return True
    if rec.startswith(gt):
        return True
    return SequenceMatcher(None, rec[: len(gt) + 4], gt, autojunk=False).ratio() >= 0.9


def words_in_order(record_caption: str, gt_start: str) -> tuple[int, int]:
    """(GT words found in order among the record's words, GT words)."""
    rec = re.findall(r"\w+", norm(strip_label(record_caption)))
    gt = re.findall(r"\w+", norm(gt_start))
    i = found = 0
    for w in gt:
        j = i
        while j < len(rec) and rec[j] != w:
            j += 1
        if j < len(rec):
            found += 1
            i = j + 1
    return found, len(gt)


def load_gt(paths: list[Path], data_dir: Path = DEFAULT_DATA) -> dict[str, dict[str, Any]]:
    """file name -> GT entry (with ``_path``: the PDF to build). An entry's ``path`` is relative to the shared
    data folder; without one the PDF lies beside the list."""
    out: dict[str, dict[str, Any]] = {}
    for p in paths:
        data = json.loads(Path(p).read_text(encoding="utf-8"))
        for name, entry in data.items():
            pdf = data_dir / entry["path"] if entry.get("path") else Path(p).parent / name
            out[name] = {**entry, "_path": pdf}
    return out


def score(gt: dict[str, dict[str, Any]], records: list[dict[str, Any]]) -> dict[str, Any]:
    by_page: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        by_page[(r["source"]["file"], int(r["source"]["page"]))].append(r)
    used: set[int] = set()
    found = exact = total = words_found = words_total = 0
    misses, wrong_panels = [], []
    per_file: dict[str, dict[str, int]] = {}
    for name, entry in sorted(gt.items()):
        f_tot = f_found = f_exact = 0
        for fig in entry["figures"]:
            total += 1
            f_tot += 1
            cands = [
                r
                for r in by_page.get((name, int(fig["page"])), [])
                if label_number(r.get("figure_label")) == label_number(fig["label"])
                and caption_starts(r.get("caption_raw") or r.get("caption") or "", fig["caption_start"])
            ]
            used.update(id(r) for r in cands)
            if not cands:
                misses.append(f"{name} p{fig['page']} {fig['label']}")
                continue
            found += 1
            f_found += 1
            w, n = words_in_order(cands[0].get("caption_raw") or "", fig["caption_start"])
            words_found, words_total = words_found + w, words_total + n
            k = int(fig.get("panels") or 0)
            panels = [r.get("panel") for r in cands]
            ok = (
                (len(cands) == 1 and panels == [None])
                if k == 0
                else (len(cands) == k and None not in panels and len(set(panels)) == k)
            )
            exact += ok
            f_exact += ok
            if not ok:
                wrong_panels.append(f"{name} p{fig['page']} {fig['label']}: GT {k} panels, got {panels}")
        n_recs = sum(len(v) for (f, _), v in by_page.items() if f == name)
        per_file[name] = {"figures": f_tot, "found": f_found, "exact": f_exact, "records": n_recs}
    listed = [r for r in records if r["source"]["file"] in gt]
    unmatched = [r for r in listed if id(r) not in used]
    return {
        "figures": total,
        "figure_recall": found / total if total else 1.0,
        "panel_exactness": exact / total if total else 1.0,
        "records": len(listed),
        "unmatched_records": len(unmatched),
        "unmatched_share": len(unmatched) / len(listed) if listed else 0.0,
        "caption_words": words_found / words_total if words_total else 1.0,
        "per_file": per_file,
        "misses": misses,
        "wrong_panels": wrong_panels,
        "unmatched": [
            f"{r['source']['file']} p{r['source']['page']} label={r.get('figure_label')} panel={r.get('panel')} "
            f"{(r.get('caption_raw') or '')[:60]!r}"
            for r in unmatched
        ],
    }


def run_mmskin(pdfs: list[Path], out: Path, workers: int) -> tuple[list[dict[str, Any]], float]:
    from mmskin.pdf.build import BuildConfig, run

    t = time.perf_counter()
    result = run(BuildConfig(inputs=[str(p) for p in pdfs], out=out, workers=workers))
    secs = time.perf_counter() - t
    for p in result.problems:
        print(f"  build problem: {p}")
    recs = [json.loads(x) for x in (out / "records.jsonl").read_text(encoding="utf-8").splitlines() if x]
    return recs, secs


def scan_copies(pdfs: list[Path], dpi: int, folder: Path) -> list[Path]:
    """Image-only copies of ``pdfs`` (same file names, so the figure lists still apply): each page rendered at
    ``dpi`` and stored as a JPEG, like a scanner would."""
    import pymupdf

    out = []
    for src in pdfs:
        with pymupdf.open(src) as doc, pymupdf.open() as scan:
            for pg in doc:
                pix = pg.get_pixmap(dpi=dpi)
                page = scan.new_page(width=pg.rect.width, height=pg.rect.height)
                page.insert_image(page.rect, stream=pix.tobytes("jpg", jpg_quality=85))
            dst = folder / src.name
            scan.save(dst)
        out.append(dst)
    return out


def run_baseline(pdfs: list[Path]) -> list[dict[str, Any]]:
    import baseline_nearest

    return [r for p in pdfs for r in baseline_nearest.extract_pdf(p)]


def report(name: str, s: dict[str, Any]) -> str:
    return (
        f"{name:10s} figures {s['figures']:3d}  recall {s['figure_recall']:.3f}  panel-exact "
        f"{s['panel_exactness']:.3f}  unmatched {s['unmatched_records']}/{s['records']} "
        f"({s['unmatched_share']:.3f})  caption-words {s['caption_words']:.3f}"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gt", type=Path, action="append", help=f"figure list(s) (default: {DEFAULT_GT})")
    ap.add_argument("--more", action="store_true", help=f"also score {MORE_GT.name} (16 more real articles)")
    ap.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help="the shared data folder (default: %(default)s)"
    )
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument(
        "--out", type=Path, default=None, help="dataset folder to build into (default: a temp dir)"
    )
    ap.add_argument(
        "--scan", type=int, metavar="DPI", help="build 'scanned' copies: every page an image at DPI"
    )
    ap.add_argument("--show-misses", action="store_true", help="list misses, wrong panels, unmatched records")
    add_out_argument(ap, "pdf", "real_pdfs")
    args = ap.parse_args(argv)
    gt = load_gt((args.gt or [DEFAULT_GT]) + ([MORE_GT] if args.more else []), args.data)
    pdfs = [e["_path"] for e in gt.values()]
    missing = [p for p in pdfs if not p.is_file()]
    if missing:
        print(f"missing PDFs: {', '.join(map(str, missing))}")
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "ds"
        if out.exists():  # a finished build would be resumed, not measured
            shutil.rmtree(out)
        if args.scan:
            (Path(tmp) / "scans").mkdir()
            pdfs = scan_copies(pdfs, args.scan, Path(tmp) / "scans")
        recs, secs = run_mmskin(pdfs, out, args.workers)
        baseline = run_baseline(pdfs)
    results = {"mmskin": score(gt, recs), "baseline": score(gt, baseline)}
    print(f"{len(pdfs)} PDFs, {sum(e.get('pages', 0) for e in gt.values())} pages; mmskin build {secs:.1f} s")
    for name, s in results.items():
        print(report(name, s))
    if args.show_misses:
        s = results["mmskin"]
        for key in ("misses", "wrong_panels", "unmatched"):
            for line in s[key]:
                print(f"  {key}: {line}")
        for f, c in s["per_file"].items():
            print(f"  {f}: {c}")
    config = {
        "gt": sorted({e["_path"].parent.name for e in gt.values()}),
        "files": len(gt),
        "workers": args.workers,
        "scan_dpi": args.scan,
    }
    results["build_seconds"] = secs
    save_results("pdf", "real_pdfs", results, config, out=args.json, packages=["pymupdf", "pytesseract"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
