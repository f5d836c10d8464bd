"""`mmskin curate` / `mmskin review` through the CLI: summary line and exit status, corrections applied, kept on
a later run without --corrections, bad CSV lines reported with file and line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mmskin.cli import demo_pdf, main
from mmskin.records import read_records


@pytest.fixture(scope="module")
def curated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ds = tmp_path_factory.mktemp("cur")
    assert main(["build", str(demo_pdf()), "--out", str(ds), "--workers", "1", "--quiet"]) == 0
    assert (
        main(["curate", str(ds), "--workers", "1", "--quiet", "--seed", "3", "--split-ratios", "0.6,0.2,0.2"])
        == 0
    )
    return ds


def test_summary_line(curated: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ds = tmp_path / "d"
    shutil.copytree(curated, ds)
    assert main(["curate", str(ds), "--workers", "1", "--quiet"]) == 0
    out = capsys.readouterr().out.strip().splitlines()[-1]
    assert out.startswith("curated 10 records (clinical ") and "0 errors" in out and out.endswith(" s")


def test_corrections(curated: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ds = tmp_path / "d"
    shutil.copytree(curated, ds)
    recs = list(read_records(ds / "records.jsonl"))
    a, b = recs[0]["id"], recs[1]["id"]
    csv_path = tmp_path / "fix.csv"
    csv_path.write_text(f"id,modality\n{a},dermoscopy\nnope,clinical\n{b},xray\n{b},Other\n")
    assert main(["curate", str(ds), "--corrections", str(csv_path), "--workers", "1", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert f"{csv_path}:3: unknown record id 'nope'" in err
    assert f"{csv_path}:4: modality 'xray' is not one of" in err
    out = {r["id"]: r for r in read_records(ds / "records.jsonl")}
    for rid, mod in ((a, "dermoscopy"), (b, "other")):
        r = out[rid]
        assert (r["modality"], r["modality_score"], r["modality_source"]) == (mod, 1.0, "human")
        assert "review" not in r["flags"] and r["modality_correction"]["file"] == "fix.csv"
    assert "non_dermatology" in out[b]["flags"]

    # a later run without --corrections keeps the human decision, and is then stable
    assert main(["curate", str(ds), "--workers", "1", "--quiet"]) == 0
    again = {r["id"]: r for r in read_records(ds / "records.jsonl")}
    assert again[a]["modality"] == "dermoscopy" and again[a]["modality_source"] == "human"
    first = (ds / "records.jsonl").read_bytes()
    assert main(["curate", str(ds), "--workers", "2", "--quiet"]) == 0
    assert (ds / "records.jsonl").read_bytes() == first


def test_malformed_corrections(curated: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ds = tmp_path / "d"
    shutil.copytree(curated, ds)
    before = (ds / "records.jsonl").read_bytes()
    bad = tmp_path / "bad.csv"
    bad.write_text("record,label\nx,y\n")
    assert main(["curate", str(ds), "--corrections", str(bad), "--workers", "1", "--quiet"]) == 1
    assert f"{bad}:1: header must be 'id,modality'" in capsys.readouterr().err
    assert (ds / "records.jsonl").read_bytes() == before  # nothing applied, nothing lost
    assert main(["curate", str(ds), "--corrections", str(tmp_path / "missing.csv"), "--quiet"]) == 2


def test_not_a_dataset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["curate", str(tmp_path), "--quiet"]) == 1
    assert "no records.jsonl" in capsys.readouterr().err
    (tmp_path / "records.jsonl").write_text("{not json\n")
    assert main(["curate", str(tmp_path), "--quiet"]) == 1
    assert "records.jsonl:1: not JSON" in capsys.readouterr().err


def test_review_command(curated: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["review", str(curated), "--out", str(tmp_path / "rev")]) == 0
    line = capsys.readouterr().out.strip()
    assert (
        line == f"review: {tmp_path / 'rev' / 'index.html'}" and (tmp_path / "rev" / "index.html").is_file()
    )
    assert main(["review", str(tmp_path / "nothing"), "--out", str(tmp_path / "r2")]) == 2


def test_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    for cmd in ("curate", "review"):
        with pytest.raises(SystemExit):
            main([cmd, "--help"])
        assert "example" in capsys.readouterr().out


def test_corrections_are_kept_in_a_store_that_a_build_never_touches(
    curated: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ds = tmp_path / "d"
    shutil.copytree(curated, ds)
    recs = list(read_records(ds / "records.jsonl"))
    a, b = recs[0]["id"], recs[1]["id"]
    (tmp_path / "fix.csv").write_text(f"id,modality\n{a},dermoscopy\n{b},pathology\n")
    assert (
        main(["curate", str(ds), "--corrections", str(tmp_path / "fix.csv"), "--workers", "1", "--quiet"])
        == 0
    )
    store = [json.loads(x) for x in (ds / "corrections.jsonl").read_text().splitlines()]
    assert store == sorted(
        [
            {"id": a, "modality": "dermoscopy", "file": "fix.csv", "line": 2},
            {"id": b, "modality": "pathology", "file": "fix.csv", "line": 3},
        ],
        key=lambda e: e["id"],
    )
    # a broken line is one problem naming the file and line, and changes nothing until it is fixed
    keep = next(x for x in (ds / "corrections.jsonl").read_text().splitlines() if a in x)
    (ds / "corrections.jsonl").write_text(keep + '\n{"id": "x", "modality": "xray"}\n')
    capsys.readouterr()
    assert main(["curate", str(ds), "--workers", "1", "--quiet"]) == 1
    assert f"{ds / 'corrections.jsonl'}:2: modality 'xray' is not one of" in capsys.readouterr().err
    out = {r["id"]: r for r in read_records(ds / "records.jsonl")}
    assert out[a]["modality_source"] == "human" and out[b]["modality_source"] == "human"
    # a correction is undone by deleting its line from the store
    (ds / "corrections.jsonl").write_text(keep + "\n")
    assert main(["curate", str(ds), "--workers", "1", "--quiet"]) == 0
    out = {r["id"]: r for r in read_records(ds / "records.jsonl")}
    assert out[a]["modality_source"] == "human" and out[b]["modality_source"] == "model"
    assert "modality_correction" not in out[b]
    assert not (curated / "corrections.jsonl").exists()  # a dataset without corrections has no store
