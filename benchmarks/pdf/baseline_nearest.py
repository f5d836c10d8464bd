"""Naive nearest-caption baseline: every embedded image placement gets the nearest caption-like text block.

This is what the only public textbook figure pipeline (MONET) does: no layout analysis, no panel splitting, no
vector figures, no OCR. For each image placement on a page (``page.get_image_info(xrefs=True)``) it takes the
nearest text block (distance between box centres) whose text starts like a figure label ("Fig. 3.2",
"Figure 12-4", "FIGURE 7", "Plate 4") and writes one record in the mmskin record schema (DESIGN.md). Images on
pages without such a block are skipped. ``image`` is a placeholder: nothing is rendered.

Example::

    .venv/bin/python benchmarks/pdf/baseline_nearest.py benchmarks/_work/bookset --out benchmarks/_work/runs/baseline
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
import sys
from pathlib import Path
from typing import Any

import pymupdf

CAPTION_START = re.compile(r"^\s*(?:fig(?:ure)?s?\.?|plate)\s*(\d+(?:[.\-\u2013]\d+)*)", re.I)
MIN_SIDE = 8.0  # points: smaller placements (rules, bullets, logos) are not figures


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def record_id(file_sha256: str, page: int, bbox: list[float], panel: str | None) -> str:
    """Same recipe as ``mmskin.records.record_id`` (DESIGN.md): sha256 of file hash, page, bbox (0.1 pt), panel."""
    box = ",".join(f"{round(float(v), 1):.1f}" for v in bbox)
    return hashlib.sha256(f"{file_sha256}|{page}|{box}|{panel or ''}".encode()).hexdigest()[:20]


def _center(b: tuple[float, float, float, float] | list[float]) -> tuple[float, float]:
    return (b[0] + b[2]) / 2, (b[1] + b[3]) / 2


def extract_pdf(path: Path) -> list[dict[str, Any]]:
    """Records for one PDF."""
    sha = sha256_file(path)
    out: list[dict[str, Any]] = []
    with pymupdf.open(path) as doc:
        for page in doc:
            blocks = [b for b in page.get_text("blocks") if b[6] == 0]
            caps = [(b[:4], " ".join(b[4].split())) for b in blocks if CAPTION_START.match(b[4])]
            if not caps:
                continue
            for info in page.get_image_info(xrefs=True):
                box = [round(float(v), 2) for v in info["bbox"]]
                if box[2] - box[0] < MIN_SIDE or box[3] - box[1] < MIN_SIDE:
                    continue
                cx, cy = _center(box)
                cbox, text = min(caps, key=lambda c: math.dist((cx, cy), _center(c[0])))
                m = CAPTION_START.match(text)
                label = m.group(1).replace("\u2013", "-") if m else None
                out.append(
                    {
                        "id": record_id(sha, page.number + 1, box, None),
                        "image": "images/none.png",
                        "width": max(1, round(box[2] - box[0])),
                        "height": max(1, round(box[3] - box[1])),
                        "source": {"file": path.name, "sha256": sha, "page": page.number + 1, "bbox": box},
                        "figure_label": label,
                        "panel": None,
                        "caption_raw": text,
                        "caption": text,
                        "flags": [],
                        "extractor": "baseline_nearest",
                    }
                )
    return out


def collect_pdfs(inputs: list[str]) -> list[Path]:
    pdfs: list[Path] = []
    for s in inputs:
        p = Path(s)
        pdfs += sorted(p.glob("*.pdf")) if p.is_dir() else [p]
    return pdfs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example: baseline_nearest.py benchmarks/_work/bookset --out /tmp/baseline",
    )
    ap.add_argument("inputs", nargs="+", help="PDF files or folders of PDFs")
    ap.add_argument("--out", type=Path, required=True, help="output folder; records.jsonl is written there")
    args = ap.parse_args(argv)
    pdfs = collect_pdfs(args.inputs)
    records: list[dict[str, Any]] = []
    failed = 0
    for pdf in pdfs:
        try:
            records += extract_pdf(pdf)
        except Exception as e:  # one bad file must not stop the batch
            print(f"error: {pdf}: {e}", file=sys.stderr)
            failed += 1
    args.out.mkdir(parents=True, exist_ok=True)
    tmp = args.out / "records.jsonl.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for rec in records:
            f.write(json.dumps(rec, sort_keys=True, ensure_ascii=False) + "\n")
    tmp.replace(args.out / "records.jsonl")
    print(
        f"baseline_nearest: {len(pdfs)} PDFs, {len(records)} records, {failed} failed -> {args.out}/records.jsonl"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
