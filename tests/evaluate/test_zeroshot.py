"""``mmskin eval zeroshot`` end to end on real HAM10000 images (../shared/data): exact metrics with the dummy model,
unparsed answers counted and listed, MM-Skin's CSV format, a resumed run, a custom prompt, and a tiny random-weight
Hugging Face model through the whole path."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest

from mmskin.cli import main
from mmskin.taxonomy import load_taxonomy

os.environ.setdefault("HF_HUB_OFFLINE", "1")
DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
CONTRACT = {"task", "benchmark", "model", "n", "unparsed", "metrics", "ci95", "confusion", "provenance"}


@pytest.fixture(scope="module")
def ham_rows():
    labels = DATA / "images" / "labels.csv"
    if not labels.is_file():
        pytest.skip(f"../shared/data not present: {labels}")
    with open(labels, encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if "/ham10000/" in r["file"]]
    tax = load_taxonomy("HAM10000")
    by_code = {c.code: c.name for c in tax.classes}
    # two images of each of the 7 classes except one: 12 images, all classes but vascular lesions twice
    picked, seen = [], {}
    for r in rows:
        if seen.get(r["label_code"], 0) < 2 and len(picked) < 12:
            seen[r["label_code"]] = seen.get(r["label_code"], 0) + 1
            picked.append({"image": r["file"], "code": r["label_code"], "name": by_code[r["label_code"]]})
    assert len(picked) == 12
    return picked


def _mmskin_csv(path: Path, rows) -> Path:
    # MM-Skin's format: categories is a Python list literal
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["image", "atributes", "categories"])
        for r in rows:
            w.writerow([r["image"], "[]", repr([r["name"]])])
    return path


def test_dummy_exact_metrics_and_contract(ham_rows, tmp_path, capsys):
    data = _mmskin_csv(tmp_path / "ham.csv", ham_rows)
    out = tmp_path / "zs.json"
    rc = main(
        [
            "eval",
            "zeroshot",
            "HAM10000",
            "--data",
            str(data),
            "--images",
            str(DATA),
            "--model",
            "dummy:It looks like a melanoma.",
            "--out",
            str(out),
            "--quiet",
            "--n-boot",
            "200",
        ]
    )
    assert rc == 0
    res = json.loads(out.read_text())
    assert CONTRACT <= set(res) and res["task"] == "zeroshot" and res["benchmark"] == "ham10000"
    n_mel = sum(r["name"] == "Melanoma" for r in ham_rows)
    n_classes = len({r["name"] for r in ham_rows})
    m = res["metrics"]
    assert res["n"] == 12 and res["unparsed"] == 0
    assert m["accuracy"] == pytest.approx(n_mel / 12)
    assert m["balanced_accuracy"] == pytest.approx(1 / n_classes)  # recall 1 for melanoma, 0 elsewhere
    assert m["macro_precision"] == pytest.approx((n_mel / 12) / n_classes)
    labels = res["confusion"]["labels"]
    mel = labels.index("Melanoma")
    assert [row[mel] for row in res["confusion"]["matrix"]][: len(labels) - 1] == [
        sum(r["name"] == lab for r in ham_rows) for lab in labels[:-1]
    ]
    lo, hi = res["ci95"]["accuracy"]
    assert lo <= m["accuracy"] <= hi
    prov = res["provenance"]
    assert prov["prompt"].startswith(
        "This is a skin lesion image. From the following categories: Actinic Keratoses"
    )
    assert prov["data_sha256"] and prov["mmskin"] and prov["model"]["name"].startswith("dummy")
    assert (
        prov["stage"] == "eval zeroshot"
        and prov["config"]["model"]["spec"] == "dummy:It looks like a melanoma."
    )
    stdout = capsys.readouterr().out
    assert "| accuracy |" in stdout and "zeroshot ham10000: n=12" in stdout


def test_unparsed_are_counted_listed_and_wrong(ham_rows, tmp_path):
    data = tmp_path / "plain.csv"
    with open(data, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["image", "label"])
        for r in ham_rows:
            w.writerow([r["image"], r["code"]])  # plain format, codes as labels
        w.writerow([ham_rows[0]["image"].replace(".jpg", "_missing.jpg"), "mel"])  # a file that is not there
        w.writerow([ham_rows[0]["image"], "psoriasis"])  # not a HAM10000 class
    out = tmp_path / "zs.json"
    rc = main(
        [
            "eval",
            "zeroshot",
            "ham10000",
            "--data",
            str(data),
            "--images",
            str(DATA),
            "--model",
            "dummy",
            "--out",
            str(out),
            "--quiet",
            "--n-boot",
            "50",
        ]
    )
    assert rc == 1  # two rows failed, the rest was scored
    res = json.loads(out.read_text())
    assert res["n"] == 12 and res["unparsed"] == 12 and res["errors"] == 2
    assert res["metrics"]["accuracy"] == 0.0
    assert len(res["unparsed_answers"]) == 12 and res["unparsed_answers"][0]["prediction"] == "I don't know"
    assert [row[-1] for row in res["confusion"]["matrix"]][:-1] == [
        sum(r["name"] == lab for r in ham_rows) for lab in res["confusion"]["labels"][:-1]
    ]


def test_resume_and_custom_prompt(ham_rows, tmp_path):
    data = _mmskin_csv(tmp_path / "ham.csv", ham_rows)
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("Pick one of: {classes}.")
    out = tmp_path / "zs.json"
    args = [
        "eval",
        "zeroshot",
        "HAM10000",
        "--data",
        str(data),
        "--images",
        str(DATA),
        "--model",
        "dummy:echo",
        "--prompt",
        str(prompt),
        "--out",
        str(out),
        "--quiet",
        "--n-boot",
        "0",
    ]
    assert main([*args, "--limit", "5"]) == 0
    preds = out.with_suffix(".predictions.jsonl")
    assert len(preds.read_text().splitlines()) == 5
    assert main(args) == 0
    lines = preds.read_text().splitlines()
    assert len(lines) == 12 and len({json.loads(x)["id"] for x in lines}) == 12
    res = json.loads(out.read_text())
    assert res["provenance"]["prompt"].startswith("Pick one of: Actinic Keratoses, ")
    # an answer that repeats the whole class list names every class: unparsed (counted wrong), never a guess
    assert res["unparsed"] == 12 and res["metrics"]["accuracy"] == 0.0
    bad = tmp_path / "noplaceholder.txt"
    bad.write_text("What is it?")
    args[args.index("--prompt") + 1] = str(bad)
    assert main(args) == 2


def test_tiny_hf_model_end_to_end(ham_rows, tmp_path, tiny_vlms):
    model = tiny_vlms["llava"]
    data = _mmskin_csv(tmp_path / "ham.csv", ham_rows[:6])
    out = tmp_path / "zs.json"
    rc = main(
        [
            "eval",
            "zeroshot",
            "HAM10000",
            "--data",
            str(data),
            "--images",
            str(DATA),
            "--model",
            f"hf:{model}",
            "--device",
            "cpu",
            "--max-new-tokens",
            "6",
            "--batch-size",
            "4",
            "--out",
            str(out),
            "--quiet",
            "--n-boot",
            "50",
        ]
    )
    assert rc == 0
    res = json.loads(out.read_text())
    assert res["n"] == 6 and CONTRACT <= set(res)
    assert res["provenance"]["model"]["decoding"] == "greedy" and res["provenance"]["model"]["kind"] == "hf"
    assert sum(map(sum, res["confusion"]["matrix"])) == 6


def test_unknown_benchmark_is_one_line(tmp_path, capsys):
    rc = main(
        [
            "eval",
            "zeroshot",
            "HAM1000",
            "--data",
            str(tmp_path / "x.csv"),
            "--images",
            str(tmp_path),
            "--model",
            "dummy",
            "--out",
            str(tmp_path / "o.json"),
        ]
    )
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "HAM1000" in err


def test_scores_mmskin_predictions_csv_without_a_model(tmp_path, capsys):
    """ZS_classification.py's own file: a six-name header over seven-field rows (its raw answer, ``output``, after
    ``question``); scored with both parses, no model and no images."""
    path = tmp_path / "HAM10000_predictions.csv"
    q = "<image>\nThis is a skin lesion image. From the following categories: …, which one is the diagnosis?"
    rows = [
        ("ISIC_1.jpg", "The diagnosis is melanoma.", "Melanoma", "Melanoma"),
        ("ISIC_2.jpg", "It is actinic keratoses or nevus", "Actinic Keratoses", "Actinic Keratoses"),
        ("ISIC_3.jpg", "melanocytic nevus, not melanoma", "Melanoma", "Melanoma"),
        ("ISIC_4.jpg", "I cannot tell.", "", "Nevus"),
    ]
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(
            ["image", "question", "predicted_answer", "ground_truth", "predicted_label", "ground_truth_label"]
        )
        for image, output, parsed, truth in rows:
            w.writerow([image, q, output, parsed, truth, 0, 0])
    out = tmp_path / "zs.json"
    assert (
        main(["eval", "zeroshot", "HAM10000", "--predictions", str(path), "--out", str(out), "--n-boot", "0"])
        == 0
    )
    res = json.loads(out.read_text())
    assert res["n"] == 4 and res["model"] == "predictions:HAM10000_predictions.csv"
    # MM-Skin's parse: first class in the list that is a substring -> 3 right (its own predicted_answer column)
    assert res["mmskin_parse"]["metrics"]["accuracy"] == 0.75 and res["mmskin_parse"]["unparsed"] == 1
    # longest match: two classes named = unparsed, never a guess
    assert res["metrics"]["accuracy"] == 0.25 and res["unparsed"] == 3
    assert "MM-Skin's parse: accuracy=0.7500" in capsys.readouterr().out
    # mmskin's own predictions file is read back the same way
    jsonl = tmp_path / "ours.jsonl"
    jsonl.write_text(
        "".join(
            json.dumps({"id": r[0], "image": r[0], "label": r[3], "prediction": r[1], "model": "m"}) + "\n"
            for r in rows
        )
    )
    assert (
        main(
            ["eval", "zeroshot", "HAM10000", "--predictions", str(jsonl), "--out", str(out), "--n-boot", "0"]
        )
        == 0
    )
    again = json.loads(out.read_text())
    assert again["model"] == "m" and again["mmskin_parse"]["metrics"] == res["mmskin_parse"]["metrics"]
