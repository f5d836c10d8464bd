"""Score extracted figure/panel records against the gold book set (``make_bookset.py``) or any GT in its format.

A GT item and a record match when they come from the same PDF (``source.file``, basename) and page, their boxes
overlap with IoU >= 0.8, and the captions agree: ``difflib.SequenceMatcher`` ratio >= 0.9 between the GT caption
and the record's ``caption_raw`` (or ``caption``, whichever is closer), both whitespace-normalised. Matching is
one-to-one, greedy by IoU. Reported: precision / recall / F1 overall, per style tag, per PDF and for scanned vs
born-digital PDFs; false positives on figure-less PDFs; box-only recall (IoU alone); panel-letter and
figure-label accuracy among matched items; recall per item tag. Records of PDFs that are not in the GT are ignored.

Example::

    .venv/bin/python benchmarks/pdf/score_extraction.py --gt benchmarks/_work/bookset \\
        --records benchmarks/_work/runs/baseline/records.jsonl --json benchmarks/_work/score.json
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from collections.abc import Iterable
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, for _common
from _common import add_out_argument, save_results  # noqa: E402

IOU_THRESHOLD = 0.8
SIM_THRESHOLD = 0.9


def norm_ws(text: str | None) -> str:
    return " ".join((text or "").split())


def caption_similarity(a: str, b: str) -> float:
    """SequenceMatcher ratio of whitespace-normalised strings (autojunk off: long captions would be skewed)."""
    a, b = norm_ws(a), norm_ws(b)
    if not a and not b:
        return 1.0
    return SequenceMatcher(None, a, b, autojunk=False).ratio()


def iou(a: list[float], b: list[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / area if area > 0 else 0.0


def load_gt(gt: str | Path | Iterable[str | Path]) -> dict[str, dict[str, Any]]:
    """GT files (``*.gt.json``) from a folder, one file, or a list of files; keyed by PDF basename."""
    paths: list[Path] = []
    for p in [gt] if isinstance(gt, (str, Path)) else gt:
        p = Path(p)
        paths += sorted(p.glob("*.gt.json")) if p.is_dir() else [p]
    out: dict[str, dict[str, Any]] = {}
    for p in paths:
        g = json.loads(p.read_text(encoding="utf-8"))
        out[Path(g["file"]).name] = g
    if not out:
        raise FileNotFoundError(f"no *.gt.json found in {gt}")
    return out


def load_records(path: str | Path) -> list[dict[str, Any]]:
    recs = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    recs.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path}:{n}: not JSON ({e})") from e
    return recs


def _rec_key(rec: dict[str, Any]) -> tuple[str, int] | None:
    src = rec.get("source") or {}
    try:
        return Path(str(src["file"])).name, int(src["page"])
    except (KeyError, TypeError, ValueError):
        return None


def _rec_box(rec: dict[str, Any]) -> list[float] | None:
    box = (rec.get("source") or {}).get("bbox")
    if not isinstance(box, (list, tuple)) or len(box) != 4:
        return None
    return [float(v) for v in box]


def _rec_sim(item: dict[str, Any], rec: dict[str, Any]) -> float:
    return max(
        caption_similarity(item["caption"], rec.get("caption_raw") or ""),
        caption_similarity(item["caption"], rec.get("caption") or ""),
    )


def _norm_panel(p: Any) -> str | None:
    if p is None:
        return None
    s = str(p).strip().strip("().,:").lower()
    return s or None


def _norm_label(label: Any) -> str | None:
    if label is None:
        return None
    return str(label).strip().rstrip(".:").replace("\u2013", "-") or None


def _greedy(cands: list[tuple[float, float, int, int]]) -> list[tuple[int, int, float, float]]:
    cands.sort(key=lambda c: (-c[0], -c[1]))
    used_g: set[int] = set()
    used_r: set[int] = set()
    pairs = []
    for i, s, g, r in cands:
        if g not in used_g and r not in used_r:
            used_g.add(g)
            used_r.add(r)
            pairs.append((g, r, i, s))
    return pairs


def _prf(gt: int, rec: int, matched: int) -> dict[str, float]:
    p = matched / rec if rec else 1.0
    r = matched / gt if gt else 1.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f, 4)}


def score(
    gt_dir_or_files: str | Path | Iterable[str | Path],
    records_jsonl: str | Path | list[dict[str, Any]],
    iou_threshold: float = IOU_THRESHOLD,
    sim_threshold: float = SIM_THRESHOLD,
) -> dict[str, Any]:
    """Score a records file (or a list of records) against GT; returns the nested metrics dict."""
    gts = load_gt(gt_dir_or_files)
    recs = records_jsonl if isinstance(records_jsonl, list) else load_records(records_jsonl)
    by_page: dict[tuple[str, int], list[int]] = defaultdict(list)
    ignored = 0
    bad = 0
    kept: list[dict[str, Any]] = []
    for rec in recs:
        key = _rec_key(rec)
        if key is None:
            bad += 1
            continue
        if key[0] not in gts:
            ignored += 1
            continue
        by_page[key].append(len(kept))
        kept.append(rec)
    items: list[tuple[str, dict[str, Any]]] = [(f, it) for f, g in gts.items() for it in g["items"]]
    gt_by_page: dict[tuple[str, int], list[int]] = defaultdict(list)
    for gi, (f, it) in enumerate(items):
        gt_by_page[(f, int(it["page"]))].append(gi)

    match: dict[int, tuple[int, float, float]] = {}  # gt index -> (record index, iou, sim)
    box_match: set[int] = set()
    best: dict[int, float] = {}  # diagnosis for misses: the best IoU of any record on the page
    matched_recs: set[int] = set()
    for key in set(gt_by_page) | set(by_page):
        gis, ris = gt_by_page.get(key, []), by_page.get(key, [])
        if not gis or not ris:
            continue
        full: list[tuple[float, float, int, int]] = []
        boxonly: list[tuple[float, float, int, int]] = []
        for g in gis:
            gb = items[g][1]["bbox"]
            for r in ris:
                rb = _rec_box(kept[r])
                if rb is None:
                    continue
                v = iou(gb, rb)
                best[g] = max(best.get(g, 0.0), v)
                if v >= iou_threshold:
                    boxonly.append((v, 0.0, g, r))
                    s = _rec_sim(items[g][1], kept[r])
                    if s >= sim_threshold:
                        full.append((v, s, g, r))
        for g, r, v, s in _greedy(full):
            match[g] = (r, v, s)
            matched_recs.add(r)
        box_match.update(g for g, _, _, _ in _greedy(boxonly))

    # group accounting
    groups: dict[str, dict[str, Any]] = defaultdict(
        lambda: {
            "gt": 0,
            "records": 0,
            "matched": 0,
            "bbox_matched": 0,
            "panel_n": 0,
            "panel_ok": 0,
            "label_n": 0,
            "label_ok": 0,
        }
    )

    def groups_of(file: str) -> list[str]:
        g = gts[file]
        return [
            "overall",
            f"style:{g.get('style', '?')}",
            f"file:{file}",
            "scan:scanned" if g.get("scanned") else "scan:born_digital",
        ]

    tag_counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for gi, (f, it) in enumerate(items):
        for name in groups_of(f):
            acc = groups[name]
            acc["gt"] += 1
            acc["bbox_matched"] += gi in box_match
            if gi in match:
                rec = kept[match[gi][0]]
                acc["matched"] += 1
                if it.get("panel") is not None:
                    acc["panel_n"] += 1
                    acc["panel_ok"] += _norm_panel(rec.get("panel")) == _norm_panel(it["panel"])
                acc["label_n"] += 1
                acc["label_ok"] += _norm_label(rec.get("figure_label")) == _norm_label(it.get("figure_label"))
        for tag in it.get("tags", []):
            tag_counts[tag][0] += 1
            tag_counts[tag][1] += gi in match
    for f in gts:
        for name in groups_of(f):
            groups[name]  # create empty groups for files without items
    for rec in kept:
        key = _rec_key(rec)
        assert key is not None
        for name in groups_of(key[0]):
            groups[name]["records"] += 1

    def finish(acc: dict[str, Any]) -> dict[str, Any]:
        out = {
            "gt": acc["gt"],
            "records": acc["records"],
            "matched": acc["matched"],
            **_prf(acc["gt"], acc["records"], acc["matched"]),
            "bbox_recall": round(acc["bbox_matched"] / acc["gt"], 4) if acc["gt"] else None,
            "panel_accuracy": round(acc["panel_ok"] / acc["panel_n"], 4) if acc["panel_n"] else None,
            "panel_n": acc["panel_n"],
            "label_accuracy": round(acc["label_ok"] / acc["label_n"], 4) if acc["label_n"] else None,
        }
        return out

    result: dict[str, Any] = {
        "thresholds": {"iou": iou_threshold, "caption_similarity": sim_threshold},
        "overall": finish(groups["overall"]),
        "by_style": {k[6:]: finish(v) for k, v in sorted(groups.items()) if k.startswith("style:")},
        "by_file": {k[5:]: finish(v) for k, v in sorted(groups.items()) if k.startswith("file:")},
        "by_scan": {k[5:]: finish(v) for k, v in sorted(groups.items()) if k.startswith("scan:")},
        "by_tag": {
            t: {"gt": n, "matched": m, "recall": round(m / n, 4)} for t, (n, m) in sorted(tag_counts.items())
        },
    }
    empty = [f for f, g in gts.items() if not g["items"]]
    result["figureless"] = {
        "files": empty,
        "false_positives": sum(groups[f"file:{f}"]["records"] for f in empty),
    }
    result["records"] = {
        "total": len(recs),
        "scored": len(kept),
        "ignored_other_files": ignored,
        "unreadable": bad,
    }
    result["misses"] = [
        {
            "file": f,
            "page": it["page"],
            "figure_label": it.get("figure_label"),
            "panel": it.get("panel"),
            "bbox": it["bbox"],
            "best_iou": round(best.get(gi, 0.0), 3),
            "tags": it.get("tags", []),
        }
        for gi, (f, it) in enumerate(items)
        if gi not in match
    ]
    result["false_positives"] = [
        {
            "file": _rec_key(rec)[0],
            "page": _rec_key(rec)[1],
            "bbox": _rec_box(rec),  # type: ignore[index]
            "figure_label": rec.get("figure_label"),
            "panel": rec.get("panel"),
            "caption_raw": norm_ws(rec.get("caption_raw"))[:120],
        }
        for r, rec in enumerate(kept)
        if r not in matched_recs
    ]
    return result


def _fmt(v: float | None) -> str:
    return "  -  " if v is None else f"{v:5.3f}"


def format_table(res: dict[str, Any], files: bool = True) -> str:
    head = f"{'group':38} {'GT':>4} {'rec':>4} {'hit':>4}   {'P':>5} {'R':>5} {'F1':>5}  {'boxR':>5} {'panel':>5} {'label':>5}"
    lines = [head, "-" * len(head)]

    def row(name: str, m: dict[str, Any]) -> None:
        lines.append(
            f"{name[:38]:38} {m['gt']:4d} {m['records']:4d} {m['matched']:4d}   {_fmt(m['precision'])} "
            f"{_fmt(m['recall'])} {_fmt(m['f1'])}  {_fmt(m['bbox_recall'])} {_fmt(m['panel_accuracy'])} "
            f"{_fmt(m['label_accuracy'])}"
        )

    row("overall", res["overall"])
    for k, m in res["by_scan"].items():
        row(k, m)
    for k, m in res["by_style"].items():
        row(f"style {k}", m)
    if files:
        for k, m in res["by_file"].items():
            row(f"  {k}", m)
    fl = res["figureless"]
    lines.append(
        f"false positives on figure-less PDFs ({', '.join(fl['files']) or 'none'}): {fl['false_positives']}"
    )
    tags = res["by_tag"]
    if tags:
        lines.append(
            "recall by item tag: " + ", ".join(f"{t} {v['matched']}/{v['gt']}" for t, v in tags.items())
        )
    rc = res["records"]
    lines.append(
        f"records: {rc['total']} read, {rc['scored']} scored, {rc['ignored_other_files']} of other files "
        f"ignored, {rc['unreadable']} without source file/page"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example: score_extraction.py --gt benchmarks/_work/bookset "
        "--records out/records.jsonl --json score.json",
    )
    ap.add_argument("--gt", nargs="+", required=True, help="GT folder or *.gt.json files")
    ap.add_argument("--records", required=True, type=Path, help="records.jsonl to score")
    add_out_argument(ap, "pdf", "score_extraction")  # the full result, incl. misses and false positives
    ap.add_argument("--iou", type=float, default=IOU_THRESHOLD)
    ap.add_argument("--sim", type=float, default=SIM_THRESHOLD)
    ap.add_argument("--no-files", action="store_true", help="leave the per-PDF rows out of the table")
    args = ap.parse_args(argv)
    try:
        res = score(args.gt if len(args.gt) > 1 else args.gt[0], args.records, args.iou, args.sim)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(format_table(res, files=not args.no_files))
    save_results("pdf", "score_extraction", res, args, out=args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
