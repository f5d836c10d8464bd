"""`curate` (pipeline.run) end to end on the bundled demo book: fields filled, nothing deleted, rerun
byte-identical, workers 1 and 2 identical, a broken image reported and kept, duplicates grouped across records,
idempotent captions."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mmskin.cli import demo_pdf, main
from mmskin.curate.pipeline import CurateConfig, run
from mmskin.records import MODALITIES, read_records, write_jsonl


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ds = tmp_path_factory.mktemp("built")
    assert main(["build", str(demo_pdf()), "--out", str(ds), "--workers", "1", "--quiet"]) == 0
    return ds


def _copy(src: Path, tmp: Path, name: str) -> Path:
    dst = tmp / name
    shutil.copytree(src, dst)
    return dst


def test_fields_filled_and_rerun_identical(built: Path, tmp_path: Path) -> None:
    ds = _copy(built, tmp_path, "a")
    before = list(read_records(ds / "records.jsonl"))
    s = run(CurateConfig(dataset=ds, workers=1))
    assert s.problems == [] and s.counts["records"] == len(before) and s.exit_code == 0
    assert s.summary.startswith(f"curated {len(before)} records (clinical ")
    after = list(read_records(ds / "records.jsonl"))
    assert [r["id"] for r in after] == [r["id"] for r in before]  # nothing deleted or reordered
    for r, b in zip(after, before):
        assert r["modality"] in MODALITIES and 0 <= r["modality_score"] <= 1
        assert r["modality_source"] == "model"
        assert set(r["modality_evidence"]) == {"image", "caption_cues", "fused"}
        assert r["caption_uncleaned"] == b["caption"] and not r["caption"].startswith("Fig.")
        assert r["split"] in ("train", "val", "test")
        assert set(r["flags"]) == set(r["flag_reasons"]) | (set(b["flags"]) - set(r["flag_reasons"]))
        assert {"age", "age_group", "sex", "demographics_evidence", "duplicate_of"} <= set(r)
    mods = {r["modality"] for r in after}
    assert {"clinical", "pathology"} <= mods  # the demo holds NCI photographs and H&E panels
    assert any("annotated" in r["flags"] for r in after)  # NCI photos carry rulers and ink circles
    info = json.loads((ds / "curate_info.json").read_text())
    assert info["counts"]["records"] == len(after) and len(info["modality_weights"]["sha256"]) == 64
    prov = info["provenance"]
    assert (
        info["seed"] == 0 and prov["stage"] == "curate" and prov["seed"] == 0 and "numpy" in prov["packages"]
    )
    assert {"opencv-python", "opencv-python-headless"} & set(prov["packages"])
    assert (
        prov["config"] == info["config"]
        and info["config"]["min_side"] == 150
        and "dataset" not in info["config"]
    )

    first = (ds / "records.jsonl").read_bytes()
    assert run(CurateConfig(dataset=ds, workers=1)).ok
    assert (ds / "records.jsonl").read_bytes() == first


def test_workers_do_not_change_the_output(built: Path, tmp_path: Path) -> None:
    a, b = _copy(built, tmp_path, "w1"), _copy(built, tmp_path, "w2")
    run(CurateConfig(dataset=a, workers=1))
    run(CurateConfig(dataset=b, workers=2))
    assert (a / "records.jsonl").read_bytes() == (b / "records.jsonl").read_bytes()


def test_broken_image_and_duplicate(built: Path, tmp_path: Path) -> None:
    ds = _copy(built, tmp_path, "broken")
    recs = list(read_records(ds / "records.jsonl"))
    victim = recs[0]
    (ds / victim["image"]).write_bytes(b"not an image at all")
    # a second record showing a smaller copy of another record's image (as if a second book reprinted it)
    import cv2

    from mmskin.curate.features import load_image

    orig = recs[1]
    img = load_image(ds / orig["image"])
    small = cv2.resize(img, (img.shape[1] * 3 // 4, img.shape[0] * 3 // 4), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(ds / "images" / "copy.jpg"), small[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 60])
    dup = dict(
        orig, id="zz_copy_of_1", image="images/copy.jpg", source=dict(orig["source"], file="other_book.pdf")
    )
    write_jsonl(ds / "records.jsonl", [*recs, dup])

    s = run(CurateConfig(dataset=ds, workers=1))
    assert s.counts["errors"] == 1 and s.exit_code == 1 and len(s.problems) == 1
    (p,) = s.problems
    assert victim["id"] in p.where and victim["image"] in p.where and "cannot decode" in p.reason
    out = {r["id"]: r for r in read_records(ds / "records.jsonl")}
    assert len(out) == len(recs) + 1  # the broken record is kept
    assert "unreadable_image" in out[victim["id"]]["flags"]
    assert out["zz_copy_of_1"]["duplicate_of"] == orig["id"] and "duplicate" in out["zz_copy_of_1"]["flags"]
    assert out[orig["id"]]["duplicate_of"] is None
    assert (
        out["zz_copy_of_1"]["split"] == out[orig["id"]]["split"]
    )  # a duplicate group never straddles splits


def test_low_resolution_and_no_caption(built: Path, tmp_path: Path) -> None:
    ds = _copy(built, tmp_path, "lowres")
    recs = list(read_records(ds / "records.jsonl"))
    recs[0]["caption"] = "Fig. 9.9"  # only a label: empty after cleaning
    write_jsonl(ds / "records.jsonl", recs)
    run(CurateConfig.from_defaults(dataset=ds, workers=1, min_side=10_000))
    out = list(read_records(ds / "records.jsonl"))
    assert all("low_resolution" in r["flags"] for r in out)
    assert "no_caption" in out[0]["flags"] and out[0]["caption"] == ""
