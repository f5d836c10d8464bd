"""`mmskin demo` builds the bundled sample atlas offline and finds every figure and panel of its truth file."""

from __future__ import annotations

import json
from pathlib import Path

from mmskin.cli import demo_pdf, main
from mmskin.pdf.page import iou
from mmskin.records import read_records


def test_demo_finds_every_item(tmp_path: Path, capsys) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--quiet"]) == 0
    assert str(out.resolve()) in capsys.readouterr().out
    truth = json.loads(demo_pdf().with_name("sample_textbook.expected.json").read_text())["items"]
    recs = list(read_records(out / "records.jsonl"))
    assert len(recs) == len(truth)
    for t in truth:
        hit = [
            r
            for r in recs
            if r["source"]["page"] == t["page"]
            and r["panel"] == t["panel"]
            and r["figure_label"] == t["figure_label"]
            and iou(r["source"]["bbox"], t["bbox"]) >= 0.8
            and r["caption_raw"] == " ".join(t["caption"].split())
        ]
        assert len(hit) == 1, t
    assert all((out / r["image"]).is_file() for r in recs)
