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
from mmskin.records import MODALITIES, is_usable, read_records, write_jsonl


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
        # "figure": what the other panels of its figure said (only for panels of a figure of several)
        assert (
            {"image", "caption_cues", "fused"}
            <= set(r["modality_evidence"])
            <= {
                "image",
                "caption_cues",
                "fused",
                "figure",
            }
        )
        assert r["caption_uncleaned"] == b["caption"] and not r["caption"].startswith("Fig.")
        assert r["split"] in ("train", "val", "test")
        assert set(r["flags"]) == set(r["flag_reasons"]) | (set(b["flags"]) - set(r["flag_reasons"]))
        assert {"age", "age_group", "sex", "demographics_evidence", "duplicate_of"} <= set(r)
    mods = {r["modality"] for r in after}
    assert {"clinical", "pathology"} <= mods  # the demo holds NCI photographs and H&E panels
    # NCI photos carry rulers, ink circles and case numbers: flagged, and still usable
    marked = [r for r in after if {"marked", "scale_bar", "panel_letter"} & set(r["flags"])]
    assert marked and all(
        is_usable(r) for r in marked if r["modality"] == "clinical" and len(r["flags"]) == 1
    )
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


def test_config_defaults_come_from_the_yaml_and_every_field_is_documented() -> None:
    import dataclasses

    from mmskin.config import config_help
    from mmskin.resources import load_yaml

    d = load_yaml("curate", "config.yaml")
    cfg = CurateConfig()
    assert (cfg.review_below, cfg.cue_cap, cfg.min_side) == (
        d["modality"]["review_below"],
        d["modality"]["cue_cap"],
        d["low_resolution"]["min_side"],
    )
    assert cfg.face_min_px == d["sensitive"]["face_min_px"]
    assert cfg.min_similarity == d["duplicates"]["min_similarity"]
    assert CurateConfig.from_defaults(seed=None, workers=3) == CurateConfig(workers=3)
    assert all(f.metadata.get("help") for f in dataclasses.fields(CurateConfig))
    assert "  min_side: 150" in config_help(CurateConfig)


def test_not_a_dataset_cannot_run(tmp_path: Path) -> None:
    from mmskin.stage import StageError

    with pytest.raises(StageError, match="no records.jsonl"):
        run(CurateConfig(dataset=tmp_path))
    (tmp_path / "records.jsonl").write_text("{not json\n")
    with pytest.raises(StageError, match=r"records.jsonl:1: not JSON"):
        run(CurateConfig(dataset=tmp_path))


def test_image_outside_the_dataset_and_corrections_are_problems(built: Path, tmp_path: Path) -> None:
    ds = _copy(built, tmp_path, "outside")
    recs = list(read_records(ds / "records.jsonl"))
    outside = tmp_path / "elsewhere.png"  # a link inside the dataset to a picture outside it
    outside.write_bytes((ds / recs[0]["image"]).read_bytes())
    (ds / "images" / "link.png").symlink_to(outside)
    recs[0]["image"] = "images/link.png"
    write_jsonl(ds / "records.jsonl", recs)
    fix = tmp_path / "fix.csv"
    fix.write_text(f"id,modality\n{recs[1]['id']},pathology\nnope,clinical\n")
    s = run(CurateConfig(dataset=ds, workers=1, corrections=fix))
    assert [(p.where, p.reason) for p in s.problems] == [
        (f"{fix}:3", "unknown record id 'nope'"),
        (f"{ds / 'records.jsonl'}: record {recs[0]['id']}", s.problems[1].reason),
    ]
    assert "resolves outside the dataset root" in s.problems[1].reason
    assert (
        s.counts["errors"] == 2 and s.counts["corrections"] == 1 and ", 1 corrections; 2 errors;" in s.summary
    )
    out = {r["id"]: r for r in read_records(ds / "records.jsonl")}
    assert (
        len(out) == len(recs) and out[recs[0]["id"]]["flag_reasons"]["unreadable_image"] == "file not found"
    )
    assert out[recs[1]["id"]]["modality"] == "pathology" and out[recs[1]["id"]]["modality_source"] == "human"
    info = json.loads((ds / "curate_info.json").read_text())
    assert info["corrections"]["applied"] == 1 and info["corrections"]["bad_lines"] == 1
