"""A digitised book page: one full-page raster under an invisible OCR text layer (render mode 3).

Pins the failure where the page raster was dropped as a background and the page gave no figures.
"""

from __future__ import annotations

import json
from pathlib import Path

import pymupdf

from mmskin.pdf.build import BuildConfig, run
from mmskin.pdf.page import iou
from mmskin.records import read_records

GOLDEN = Path(__file__).parent / "golden"


def _text_layer_scan(src: Path, dst: Path) -> None:
    out = pymupdf.open()
    with pymupdf.open(src) as doc:
        for pg in doc:
            page = out.new_page(width=pg.rect.width, height=pg.rect.height)
            page.insert_image(page.rect, pixmap=pg.get_pixmap(dpi=150))
            for block in pg.get_text("dict")["blocks"]:
                for line in block.get("lines", []):
                    for span in line["spans"]:
                        page.insert_text(span["origin"], span["text"], fontsize=span["size"], render_mode=3)
    out.save(dst)


def test_scan_with_text_layer_finds_its_figures(tmp_path: Path) -> None:
    pdf = tmp_path / "scan.pdf"
    _text_layer_scan(GOLDEN / "side_by_side.pdf", pdf)
    result = run(BuildConfig(inputs=[str(pdf)], out=tmp_path / "ds", workers=1, ocr="auto"))
    assert result.counts["ocr_pages"] == 0 and not result.problems  # the text layer is used, no OCR needed
    recs = list(read_records(tmp_path / "ds" / "records.jsonl"))
    truth = json.loads((GOLDEN / "side_by_side.expected.json").read_text())["items"]
    for t in truth:
        hits = [
            r
            for r in recs
            if r["figure_label"] == t["figure_label"] and iou(r["source"]["bbox"], t["bbox"]) >= 0.8
        ]
        assert len(hits) == 1, (t, [(r["figure_label"], r["source"]["bbox"]) for r in recs])
        assert hits[0]["extraction"] == "scan"
    assert len(recs) == len(truth)
