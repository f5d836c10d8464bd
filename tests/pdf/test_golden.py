"""Golden layout cases: each PDF pins one assignment failure (its docstring is in the expected JSON's "doc")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmskin.pdf.build import BuildConfig, run
from mmskin.pdf.page import iou
from mmskin.records import read_records

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(p.name.removesuffix(".expected.json") for p in GOLDEN.glob("*.expected.json"))


@pytest.mark.parametrize("name", CASES)
def test_golden_case(name: str, tmp_path: Path) -> None:
    truth = json.loads((GOLDEN / f"{name}.expected.json").read_text())
    result = run(BuildConfig(inputs=[str(GOLDEN / f"{name}.pdf")], out=tmp_path, workers=1))
    assert not result.problems
    recs = list(read_records(tmp_path / "records.jsonl"))
    by_key = {(r["figure_label"], r["panel"]): r for r in recs}
    for t in truth["items"]:
        rec = by_key.get((t["figure_label"], t["panel"]))
        if rec is not None and "caption_endswith" in t:
            assert rec["caption_raw"].endswith(t["caption_endswith"]), (
                f"{truth['doc']}\n{rec['caption_raw']!r}"
            )
        if rec is not None and "flags" in t:
            assert rec["flags"] == t["flags"] and rec.get("panel_note"), f"{truth['doc']}\n{rec}"
    got = [(r["source"]["page"], r["source"]["bbox"], r["figure_label"], r["panel"]) for r in recs]
    want = [(t["page"], t["bbox"], t["figure_label"], t["panel"]) for t in truth["items"]]
    unmatched = list(got)
    for page, bbox, label, panel in want:
        hit = next(
            (
                g
                for g in unmatched
                if g[0] == page and g[2] == label and g[3] == panel and iou(g[1], bbox) >= 0.85
            ),
            None,
        )
        assert hit is not None, f"{truth['doc']}\nmissing {label}/{panel} at {bbox}; got {got}"
        unmatched.remove(hit)
    assert not unmatched, f"{truth['doc']}\nextra records: {unmatched}"
