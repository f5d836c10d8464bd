"""Bad input to curate: a corrupt weights file, an unreadable and a tiny image, bad corrections lines: one
problem each naming the file and the reason, the rest curated, exit status 1."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from mmskin.cli import demo_pdf, main
from mmskin.curate.pipeline import CurateConfig, run
from mmskin.records import write_jsonl


def test_bad_inputs_are_one_line_each_and_the_rest_is_curated(tmp_path: Path) -> None:
    ds = tmp_path / "ds"
    assert main(["build", str(demo_pdf()), "--out", str(ds), "--workers", "1", "--quiet"]) == 0
    recs = [json.loads(line) for line in (ds / "records.jsonl").read_text().splitlines()]
    (ds / "images" / "junk.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    # PIL, not OpenCV: OpenCV's thread pool in this process would be copied into the forked workers
    Image.fromarray(np.zeros((4, 5, 3), np.uint8)).save(ds / "images" / "tiny.png")
    recs[0]["image"], recs[1]["image"] = "images/junk.jpg", "images/tiny.png"
    write_jsonl(ds / "records.jsonl", recs)
    (ds / "corrections.jsonl").write_text(json.dumps({"id": recs[2]["id"], "modality": "xray"}) + "\n")
    weights = tmp_path / "weights.npz"
    weights.write_bytes(b"PK\x03\x04 truncated")
    result = run(CurateConfig(dataset=ds, workers=2, weights=str(weights)))
    where = {p.where: p.reason for p in result.problems}
    assert result.exit_code == 1 and len(result.problems) == 4
    assert "modality weights unusable" in where[str(weights)]
    assert any("junk.jpg" in w and "cannot decode" in r for w, r in where.items())
    assert any("tiny.png" in w and "too small to judge (5x4 px)" in r for w, r in where.items())
    assert "xray" in where[f"{ds / 'corrections.jsonl'}:1"]
    out = [json.loads(line) for line in (ds / "records.jsonl").read_text().splitlines()]
    assert len(out) == len(recs) and all(r["modality"] for r in out)  # every record curated
    assert {"unreadable_image", "review"} <= set(out[0]["flags"]) and "unreadable_image" in out[1]["flags"]
    uncued = [r for r in out if not r["modality_evidence"]["caption_cues"]]
    assert uncued and all("review" in r["flags"] for r in uncued)  # no image model, no cue: a human looks
    info = json.loads((ds / "curate_info.json").read_text())
    assert info["modality_weights"]["file"] == "weights.npz"
