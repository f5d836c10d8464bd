"""`mmskin demo` runs the whole path offline on the bundled sample atlas; the build finds every figure and panel
of its truth file."""

from __future__ import annotations

import json
from pathlib import Path

from mmskin.cli import demo_pdf, main
from mmskin.pdf.page import iou
from mmskin.records import is_usable, read_records


def test_demo_finds_every_item(tmp_path: Path, capsys) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--quiet", "--skip-train"]) == 0
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


def test_demo_runs_every_stage(tmp_path: Path, capsys) -> None:
    """The demo's later stages leave their real outputs: curated records, card, VQA, exports, smoke model, eval."""
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "SMOKE RUN" in printed and "all steps passed" in printed
    recs = list(read_records(out / "records.jsonl"))
    assert all(r["modality"] in ("clinical", "pathology") for r in recs)
    # the Kriegsmann H&E panels are pathology; the NCI photographs clinical
    assert {r["panel"] for r in recs if r["modality"] == "pathology"} == {"a", "b"}
    assert all(not r["caption"].startswith("Fig.") for r in recs)  # cleaned: label stripped
    assert (out / "report" / "index.html").is_file() and (out / "curate_info.json").is_file()
    vqa = [json.loads(x) for x in (out / "vqa.jsonl").read_text().splitlines()]
    usable = {r["id"] for r in recs if is_usable(r)}
    assert vqa and {q["record_id"] for q in vqa} <= usable
    llava = json.loads((out / "exports" / "vqa_llava.json").read_text())
    assert len(llava) == len(vqa) and llava[0]["conversations"][0]["value"].startswith("<image>\n")
    assert (out / "exports" / "captions.parquet").stat().st_size > 0
    metrics = json.loads((out / "smoke-model" / "adapter" / "metrics.json").read_text())
    assert metrics["steps"] > 0 and metrics["final_loss"] < metrics["initial_loss"]
    res = json.loads((out / "smoke-model" / "eval_vqa.json").read_text())
    assert res["overall"]["n"] == len(vqa) and 0.0 <= res["overall"]["bertscore_f1"] <= 1.0
    assert (out / "smoke-model" / "report" / "index.html").is_file()
    # a rerun on the same folder works: the build resumes, the smoke model is trained afresh
    assert main(["demo", "--out", str(out), "--quiet"]) == 0
    assert list(read_records(out / "records.jsonl")) == recs
