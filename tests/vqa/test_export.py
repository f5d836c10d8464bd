"""mmskin export (hf / llava / mmskin-csv for captions, demographics, vqa) and mmskin import, on a real dataset
built from the bundled sample PDF; round trips through datasets.load_dataset and back through import."""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import pytest

from mmskin.cli import demo_pdf, main
from mmskin.records import EXCLUDING_FLAGS, read_records, write_jsonl
from mmskin.vqa.export import COLUMNS

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
MMSKIN_TEST = SHARED / "mmskin" / "Dataframe" / "test" / "vqa" / "MM-Skin_test.csv"


@pytest.fixture(scope="module")
def exp_built(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("exp_built") / "ds"
    assert main(["build", str(demo_pdf()), "--out", str(out), "--workers", "1", "--quiet"]) == 0
    return out


@pytest.fixture()
def exp_ds(exp_built, tmp_path) -> Path:
    """A copy of the built dataset with curate-like fields filled and a few VQA rows written by hand."""
    ds = tmp_path / "ds"
    ds.mkdir()
    shutil.copytree(exp_built / "images", ds / "images")  # a symlinked images/ would (rightly) be refused
    recs = list(read_records(exp_built / "records.jsonl"))
    assert len(recs) >= 6
    for i, r in enumerate(recs):
        r["modality"] = "pathology" if i % 2 else "clinical"
        r["split"] = ("train", "val", "test")[i % 3]
    recs[0].update(age=45.0, sex="male", age_group="adult", demographics_evidence="45-year-old man")
    recs[1].update(age=0.5, sex=None, age_group="infant", demographics_evidence="6-month-old")
    recs[2].update(sex="female", demographics_evidence="a woman")
    recs[3]["flags"] = ["sensitive"]
    recs[3].update(age=30.0, sex="male")  # flagged: never exported unless --include-flagged
    recs[4]["caption"] = ""
    write_jsonl(ds / "records.jsonl", recs)
    vqa = []
    for i, r in enumerate(recs):
        vqa.append(
            {
                "id": f"q{i}",
                "record_id": r["id"],
                "image": r["image"],
                "question": f"What is shown in figure {r['figure_label']}?",
                "answer": f"Answer {i}: {r['caption'][:40].strip() or 'nothing'}",
                "question_type": "describe" if i % 2 else "diagnosis",
                "generator": "template",
            }
        )
    write_jsonl(ds / "vqa.jsonl", vqa)
    return ds


def _recs(ds: Path) -> list[dict]:
    return list(read_records(ds / "records.jsonl"))


def _load_parquet(path: Path, tmp_path: Path):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import datasets

    return datasets.load_dataset(
        "parquet", data_files=str(path), split="train", cache_dir=str(tmp_path / "hfcache")
    )


@pytest.mark.parametrize("subset", ["captions", "demographics", "vqa"])
def test_hf_parquet_round_trips_through_datasets(exp_ds, tmp_path, subset):
    out = tmp_path / f"{subset}.parquet"
    assert (
        main(["export", str(exp_ds), "--format", "hf", "--subset", subset, "--out", str(out), "--quiet"]) == 0
    )
    ds = _load_parquet(out, tmp_path)
    assert list(ds.features) == list(COLUMNS[subset])
    assert type(ds.features["image"]).__name__ == "Image"
    recs = {r["id"]: r for r in _recs(exp_ds)}
    usable = {i for i, r in recs.items() if not set(r["flags"]) & set(EXCLUDING_FLAGS)}
    if subset == "vqa":
        want = [json.loads(x) for x in (exp_ds / "vqa.jsonl").read_text().splitlines()]
        want = [w for w in want if w["record_id"] in usable]
        keys = ("id", "record_id", "question", "answer", "question_type", "generator")
    elif subset == "captions":
        want = [r for i, r in recs.items() if i in usable and r["caption"]]
        keys = ("id", "caption", "modality", "split", "figure_label")
    else:
        want = [
            r for i, r in recs.items() if i in usable and r["caption"] and (r["age"] is not None or r["sex"])
        ]
        keys = ("id", "caption", "age", "sex", "age_group", "demographics_evidence")
    assert len(ds) == len(want) > 0
    for row, w in zip(ds, want):
        for k in keys:
            assert row[k] == w[k], (k, row[k], w[k])
        rec = recs[w.get("record_id") or w["id"]]
        assert row["split"] == rec["split"] and row["modality"] == rec["modality"]
        img = row["image"]  # decoded PIL image, same pixels size as the stored file
        assert img.size == (rec["width"], rec["height"])
    if subset == "captions":
        assert ds[0]["book"] == "sample_textbook.pdf"
    info = json.loads(Path(f"{out}.info.json").read_text())
    assert info["subset"] == subset and info["format"] == "hf" and info["counts"]["rows"] == len(want)
    prov = info["provenance"]
    assert prov["stage"] == "export" and prov["mmskin"] and prov["packages"]["pyarrow"]
    assert prov["config"]["subset"] == subset and info["dataset"] == str(exp_ds.resolve())
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_llava_export_format(exp_ds, tmp_path):
    out = tmp_path / "cap.json"
    assert (
        main(
            ["export", str(exp_ds), "--format", "llava", "--subset", "captions", "--out", str(out), "--quiet"]
        )
        == 0
    )
    items = json.loads(out.read_text())
    recs = {r["id"]: r for r in _recs(exp_ds)}
    assert len(items) == len([r for r in recs.values() if r["caption"] and not r["flags"]])
    for it in items:
        assert set(it) >= {"id", "image", "conversations"}
        human, gpt = it["conversations"]
        assert human["from"] == "human" and human["value"].startswith("<image>\n") and len(human["value"]) > 8
        assert gpt == {"from": "gpt", "value": recs[it["id"]]["caption"]}
        assert not Path(it["image"]).is_absolute() and (exp_ds / it["image"]).is_file()
    # instructions vary, and are the same for the same seed
    assert len({it["conversations"][0]["value"] for it in items}) > 1
    again = tmp_path / "again.json"
    main(["export", str(exp_ds), "--format", "llava", "--subset", "captions", "--out", str(again), "--quiet"])
    assert again.read_bytes() == out.read_bytes()

    demo = tmp_path / "demo.json"
    main(
        [
            "export",
            str(exp_ds),
            "--format",
            "llava",
            "--subset",
            "demographics",
            "--out",
            str(demo),
            "--quiet",
        ]
    )
    answers = {it["id"]: it["conversations"][1]["value"] for it in json.loads(demo.read_text())}
    ids = [r["id"] for r in _recs(exp_ds)]
    assert answers == {
        ids[0]: "The patient is a 45-year-old male.",
        ids[1]: "The patient is 6 months old.",
        ids[2]: "The patient is female.",
    }


def test_include_flagged(exp_ds, tmp_path):
    out = tmp_path / "d.json"
    main(["export", str(exp_ds), "--format", "llava", "--subset", "demographics", "--out", str(out), "--quiet",
          "--include-flagged"])  # fmt: skip
    assert _recs(exp_ds)[3]["id"] in {it["id"] for it in json.loads(out.read_text())}


def test_mmskin_csv_export_and_import_round_trip(exp_ds, tmp_path):
    out = tmp_path / "vqa.csv"
    assert main(["export", str(exp_ds), "--format", "mmskin-csv", "--out", str(out), "--quiet"]) == 0
    with open(out, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["image", "question", "answer"]
    back = tmp_path / "back.jsonl"
    assert main(["import", "mmskin-csv", str(out), "--out", str(back), "--image-root", str(exp_ds)]) == 0
    samples = [json.loads(x) for x in back.read_text().splitlines()]
    assert [(s["image"], s["question"], s["answer"]) for s in samples] == [
        (r["image"], r["question"], r["answer"]) for r in rows
    ]
    assert all(s["generator"] == "import:mmskin-csv" for s in samples)


def test_llava_and_hf_import_round_trips(exp_ds, tmp_path):
    src = [json.loads(x) for x in (exp_ds / "vqa.jsonl").read_text().splitlines()]
    flagged = _recs(exp_ds)[3]["id"]
    src = [s for s in src if s["record_id"] != flagged]
    keys = ("id", "record_id", "image", "question", "answer", "question_type")
    for fmt, name in (("llava", "v.json"), ("hf", "v.parquet")):
        out = tmp_path / name
        assert (
            main(["export", str(exp_ds), "--format", fmt, "--subset", "vqa", "--out", str(out), "--quiet"])
            == 0
        )
        back = tmp_path / f"{name}.jsonl"
        assert main(["import", fmt, str(out), "--out", str(back), "--image-root", str(exp_ds)]) == 0
        got = [json.loads(x) for x in back.read_text().splitlines()]
        assert [{k: s[k] for k in keys} for s in got] == [{k: s[k] for k in keys} for s in src], fmt
    # hf without an image root: the embedded images are written next to the output
    back = tmp_path / "alone" / "v.jsonl"
    assert main(["import", "hf", str(tmp_path / "v.parquet"), "--out", str(back)]) == 0
    got = [json.loads(x) for x in back.read_text().splitlines()]
    assert all((back.parent / s["image"]).is_file() for s in got) and len(got) == len(src)


def test_bad_image_paths_and_lines_in_vqa_jsonl(exp_ds, tmp_path, capsys):
    lines = (exp_ds / "vqa.jsonl").read_text().splitlines()
    bad = [
        {
            "id": "esc",
            "record_id": "x",
            "image": "../../etc/passwd",
            "question": "q?",
            "answer": "a",
            "generator": "t",
        },
        {
            "id": "abs",
            "record_id": "y",
            "image": "/etc/hostname",
            "question": "q?",
            "answer": "a",
            "generator": "t",
        },
        {"id": "gone", "record_id": "z", "image": "images/00/none.png", "question": "q?", "answer": "a"},
    ]
    text = "\n".join(
        [*lines, *(json.dumps(b) for b in bad), "{not json", json.dumps({"id": "noq", "image": "a.png"})]
    )
    (exp_ds / "vqa.jsonl").write_text(text + "\n")
    out = tmp_path / "v.json"
    rc = main(["export", str(exp_ds), "--format", "llava", "--out", str(out), "--quiet"])
    cap = capsys.readouterr()
    assert rc == 1
    err = cap.err.splitlines()
    assert any("passwd" in e and "escapes" in e for e in err)
    assert any("hostname" in e and "absolute" in e for e in err)
    assert any(e.startswith("missing:") and "none.png" in e for e in err)
    n = len(lines)
    assert any(f"vqa.jsonl:{n + 4}: not JSON" in e for e in err)
    assert any(f"vqa.jsonl:{n + 5}: sample lacks question, answer" in e for e in err)
    items = json.loads(out.read_text())
    assert len(items) == len(lines) - 1  # the flagged record's sample is left out, the bad rows too
    assert "4 errors" in cap.out and "1 missing images" in cap.out


def test_export_errors_write_nothing(tmp_path, exp_ds, capsys):
    (exp_ds / "vqa.jsonl").unlink()
    out = tmp_path / "v.json"
    assert main(["export", str(exp_ds), "--format", "llava", "--out", str(out)]) == 2
    assert "run `mmskin vqa" in capsys.readouterr().err and not out.exists()
    assert (
        main(
            ["export", str(tmp_path / "nothing"), "--format", "hf", "--subset", "captions", "--out", str(out)]
        )
        == 2
    )
    assert "not a dataset folder" in capsys.readouterr().err and not out.exists()


def test_import_malformed_inputs(tmp_path, capsys):
    broken = tmp_path / "broken.json"
    broken.write_text('[{"id": "a", "image": "x.png", "conversations": [')
    assert main(["import", "llava", str(broken), "--out", str(tmp_path / "o.jsonl")]) == 2
    err = capsys.readouterr().err.strip()
    assert str(broken) in err and "not JSON" in err and "line 1" in err and len(err.splitlines()) == 1

    mixed = tmp_path / "mixed.json"
    good = {"id": "g", "image": "a/x.png", "conversations": [{"from": "human", "value": "<image>\nQ1?"},
                                                               {"from": "gpt", "value": "A1."},
                                                               {"from": "human", "value": "Q2?"},
                                                               {"from": "gpt", "value": "A2."}]}  # fmt: skip
    items = [good, {"id": "b", "conversations": []}, {"id": "c", "image": "../up.png", "conversations": good["conversations"]},
             {"id": "d", "image": "y.png", "conversations": [{"from": "gpt", "value": "x"}, {"from": "human", "value": "y"}]}]  # fmt: skip
    mixed.write_text(json.dumps(items))
    out = tmp_path / "o.jsonl"
    assert main(["import", "llava", str(mixed), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"{mixed}[1]: no 'image' string" in err
    assert "escapes" in err and f"{mixed}[3]: turn 0 is not a human turn" in err
    got = [json.loads(x) for x in out.read_text().splitlines()]
    assert [(s["question"], s["answer"]) for s in got] == [("Q1?", "A1."), ("Q2?", "A2.")]
    assert {s["record_id"] for s in got} == {"g"} and len({s["id"] for s in got}) == 2

    bad_csv = tmp_path / "b.csv"
    bad_csv.write_text("image,question\nx.png,q\n")
    assert main(["import", "mmskin-csv", str(bad_csv), "--out", str(out)]) == 2
    assert "image,question,answer" in capsys.readouterr().err
    bad_csv.write_text('image,question,answer\nx.png,What?,Yes.\ny.png,,No.\nz.png,Why?,"Because.\n')
    assert main(["import", "mmskin-csv", str(bad_csv), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"{bad_csv}:3: empty question" in err
    assert [json.loads(x)["image"] for x in out.read_text().splitlines()][0] == "x.png"

    notpq = tmp_path / "x.parquet"
    notpq.write_bytes(b"not parquet")
    assert main(["import", "hf", str(notpq), "--out", str(out)]) == 2
    assert "not a Parquet file" in capsys.readouterr().err


def test_import_real_mmskin_test_csv(tmp_path):
    if not MMSKIN_TEST.is_file():
        pytest.skip("../shared/data not present: MM-Skin_test.csv")
    with open(MMSKIN_TEST, newline="", encoding="utf-8") as f:
        rows = [r for _, r in zip(range(300), csv.DictReader(f))]
    sub = tmp_path / "MM-Skin_test_300.csv"
    with open(sub, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    out = tmp_path / "mm.jsonl"
    assert main(["import", "mmskin-csv", str(sub), "--out", str(out)]) == 0
    got = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(got) == 300
    assert got[0]["image"] == rows[0]["image"] and got[0]["answer"] == rows[0]["answer"].strip()
    assert all("<image>" not in s["question"] for s in got)
    assert json.loads(Path(f"{out}.info.json").read_text())["counts"]["rows"] == 300


def test_real_mmskin_vqa_then_export_and_import(exp_built, tmp_path):
    """The real `mmskin vqa` (template generator) output goes through every export format and back."""
    ds = tmp_path / "ds"
    shutil.copytree(exp_built, ds)
    assert main(["vqa", str(ds), "--quiet"]) == 0
    src = [json.loads(x) for x in (ds / "vqa.jsonl").read_text().splitlines()]
    assert len(src) >= 10
    pq_out, llava_out, csv_out = tmp_path / "o.parquet", tmp_path / "o.json", tmp_path / "o.csv"
    for fmt, out in (("hf", pq_out), ("llava", llava_out), ("mmskin-csv", csv_out)):
        assert (
            main(["export", str(ds), "--format", fmt, "--subset", "vqa", "--out", str(out), "--quiet"]) == 0
        )
    hf = _load_parquet(pq_out, tmp_path)
    assert [(r["question"], r["answer"], r["question_type"]) for r in hf] == [
        (s["question"], s["answer"], s["question_type"]) for s in src
    ]
    assert all(r["image"].size[0] > 0 for r in hf)
    back = tmp_path / "back.jsonl"
    assert main(["import", "llava", str(llava_out), "--out", str(back), "--image-root", str(ds)]) == 0
    got = [json.loads(x) for x in back.read_text().splitlines()]
    assert [(g["id"], g["image"], g["question"], g["answer"]) for g in got] == [
        (s["id"], s["image"], s["question"], s["answer"]) for s in src
    ]
