"""``mmskin benchmark`` end to end on two tiny random-weight models and small image folders made here: open VQA per
modality (modality from a captions CSV), zero-shot and the MM-Skin probe; a dataset without its images is skipped
with one line; the report holds both models side by side with intervals and signatures; a rerun is all cached and a
removed results file is made again."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest
import yaml
from PIL import Image

from mmskin.cli import main

os.environ.setdefault("HF_HUB_OFFLINE", "1")
COLOURS = {"Malignant": (170, 60, 60), "Non-Malignant": (90, 150, 200)}


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread):
    yield


def _image(path: Path, colour: tuple[int, int, int], k: int) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.new("RGB", (48, 32 + (k % 3) * 8), colour)  # not square: padded to squares for LLaVA
    im.putpixel((k % 48, 3), (255, 255, 255))
    im.save(path)
    return path.name


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


@pytest.fixture(scope="module")
def bench(tmp_path_factory, tiny_vlms):
    root = tmp_path_factory.mktemp("bench")
    images = root / "Dataset"
    vqa = []
    for i in range(10):
        name = f"MM-Skin/dataset/bk{i % 3}_{i}.png"
        _image(images / name, (40 * i % 255, 120, 90), i)
        vqa.append(
            [f"dataset/bk{i % 3}_{i}.png", "What does the image show?", f"The image shows lesion {i}."]
        )
    _write_csv(root / "MM-Skin_test.csv", ["image", "question", "answer"], vqa)
    mods = ["clinical", "dermoscopy", "pathology"]
    _write_csv(
        root / "caption.csv", ["image", "modality"], [[r[0], mods[i % 3]] for i, r in enumerate(vqa[:9])]
    )
    ham = []
    for i, cls in enumerate(["Melanoma", "Nevus", "Basal Cell Carcinoma", "Nevus", "Melanoma", "Nevus"]):
        _image(images / f"HAM10000/ISIC_{i}.jpg", (30 * i, 80, 40), i)
        ham.append([f"HAM10000/ISIC_{i}.jpg", "[]", repr([cls])])
    _write_csv(root / "HAM10000_test.csv", ["image", "atributes", "categories"], ham)
    _write_csv(
        root / "PAD_test.csv", ["image", "atributes", "categories"], [["PAD/x.png", "[]", "['Nevus']"]]
    )
    ddi = {"train": [], "test": []}
    for split, n in (("train", 24), ("test", 10)):
        for i in range(n):
            cls = "Malignant" if i % 2 else "Non-Malignant"
            rel = f"DDI/{split}_{i}.png"
            _image(images / rel, tuple(min(255, c + 3 * i) for c in COLOURS[cls]), i)
            ddi[split].append([rel, "[]", repr([cls])])
    for split, rows in ddi.items():
        _write_csv(root / f"DDI_2class_{split}.csv", ["image", "atributes", "categories"], rows)
    cfg = {
        "images": "Dataset",
        "bootstrap": 50,
        "models": [
            {
                "name": "tiny LLaVA (paper decoding)",
                "model": {"spec": f"hf:{tiny_vlms['llava']}", "paper_decoding": True, "max_new_tokens": 4},
            },
            {
                "name": "tiny Qwen2.5-VL",
                "model": {"spec": f"hf:{tiny_vlms['qwen2_5_vl']}", "max_new_tokens": 4},
            },
        ],
        "vqa": {
            "data": "MM-Skin_test.csv",
            "images": "Dataset/MM-Skin",
            "captions": "caption.csv",
            "metrics": "bleu,rouge,recall",
        },
        "zeroshot": [
            {"benchmark": "HAM10000", "data": "HAM10000_test.csv"},
            {"benchmark": "PAD", "data": "PAD_test.csv"},  # its image is not there: skipped
        ],
        "probe": [
            {"benchmark": "DDI_2class", "train": "DDI_2class_train.csv", "data": "DDI_2class_test.csv"}
        ],
    }
    path = root / "bench.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return path


def test_benchmark_end_to_end_resumable(bench, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["benchmark", str(bench), "--out", str(out), "--quiet"]) == 0
    captured = capsys.readouterr()
    skips = [ln for ln in captured.err.splitlines() if "skipped" in ln]
    assert len(skips) == 1 and "zero-shot PAD" in skips[0] and "1 of 1 images missing" in skips[0]
    info = json.loads((out / "benchmark.json").read_text())
    status = {(r["kind"], r["dataset"], r.get("model")): r["status"] for r in info["tasks"]}
    for model in ("tiny LLaVA (paper decoding)", "tiny Qwen2.5-VL"):
        assert status[("vqa", "MM-Skin", model)] == "done"
        assert status[("zeroshot", "HAM10000", model)] == "done"
        assert status[("zeroshot", "PAD", model)] == "skipped"
        assert status[("probe", "DDI_2class", model)] == "done"
    assert status[("probe", "Dermnet", None)] == "not configured"

    vqa = json.loads((out / "runs" / "tiny-llava-paper-decoding" / "vqa-mm-skin.json").read_text())
    assert set(vqa["by_modality"]) == {
        "clinical",
        "dermoscopy",
        "pathology",
        "unknown",
    }  # the 10th: not in captions
    assert vqa["provenance"]["model"]["prompt"].startswith("llava conversation mistral_instruct")
    assert vqa["provenance"]["model"]["image_aspect_ratio"] == "pad"
    assert vqa["provenance"]["model"]["generate_kwargs"]["num_beams"] == 5
    assert "weights:0.33,0.33,0.33,0" in vqa["signature"]["bleu3"]
    zs = json.loads((out / "runs" / "tiny-qwen2-5-vl" / "zeroshot-ham10000.json").read_text())
    assert zs["n"] == 6 and "mmskin_parse" in zs
    probe = json.loads((out / "runs" / "tiny-qwen2-5-vl" / "probe-ddi-2class.json").read_text())
    assert (
        probe["protocol"].startswith("mmskin")
        and probe["n"] == 10
        and probe["n_train"] + probe["n_val"] == 24
    )

    md = (out / "report.md").read_text()
    for text in (
        "### Open VQA, overall",
        "### Open VQA, dermoscopy",
        "### Zero-shot: accuracy",
        "Linear probe: AUROC",
    ):
        assert text in md
    header = next(ln for ln in md.splitlines() if ln.startswith("| model | n | BLEU-1"))
    assert "ROUGE-L" in header and "Recall" in header and "METEOR" not in header  # metrics not run: no column
    rows = [ln for ln in md.splitlines() if ln.startswith("| tiny ")]
    assert any(ln.startswith("| tiny LLaVA (paper decoding) |") for ln in rows)
    assert any(ln.startswith("| tiny Qwen2.5-VL (longest match) |") for ln in rows)
    assert "(" in rows[0] and "–" in rows[0]  # intervals
    assert "nltk-corpus_bleu" in md and "probe|compat:mmskin" in md and "ZS_classification.py" in md
    assert "- skipped: zeroshot PAD (all models): 1 of 1 images missing" in md
    assert "- not configured: probe Dermnet" in md
    page = (out / "report.html").read_text()
    assert "<table>" in page and "title='nltk-corpus_bleu" in page

    # a rerun does nothing new; a removed results file is made again from its predictions
    preds = out / "runs" / "tiny-qwen2-5-vl" / "zeroshot-ham10000.predictions.jsonl"
    before = preds.read_text()
    assert main(["benchmark", str(bench), "--out", str(out), "--quiet"]) == 0
    info = json.loads((out / "benchmark.json").read_text())
    assert {r["status"] for r in info["tasks"] if r.get("model") and r["dataset"] != "PAD"} == {"cached"}
    (out / "runs" / "tiny-qwen2-5-vl" / "zeroshot-ham10000.json").unlink()
    assert main(["benchmark", str(bench), "--out", str(out), "--quiet", "--only", "zeroshot"]) == 0
    info = json.loads((out / "benchmark.json").read_text())
    ham = [r["status"] for r in info["tasks"] if r["dataset"] == "HAM10000" and r["kind"] == "zeroshot"]
    assert ham == ["cached", "done"]
    assert "### Open VQA, overall" in (out / "report.md").read_text()  # --only: the other results stay
    assert preds.read_text() == before  # resumed from the predictions: no new answer


def test_bad_config_is_one_line(tmp_path, capsys):
    cfg = tmp_path / "b.yaml"
    cfg.write_text(
        "models: [{name: a, model: {spec: dummy}}]\nzeroshot: [{benchmark: HAM1000, data: x.csv}]\n"
    )
    assert main(["benchmark", str(cfg), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "HAM1000" in err
    cfg.write_text("models: [{name: a, model: {spec: dummy}}]\nvqa: {data: x.csv, image: y}\n")
    assert main(["benchmark", str(cfg), "--out", str(tmp_path / "o")]) == 2
    assert "unknown key 'image'" in capsys.readouterr().err


def test_example_config_plans_the_papers_benchmark(tmp_path, capsys):
    """configs/benchmark/mmskin.yaml names every dataset of MM-Skin's scripts; without its data every dataset is
    skipped with one line each and the command still succeeds."""
    from mmskin.evaluate.benchmark import KINDS, load_benchmark, plan

    example = Path(__file__).resolve().parents[2] / "configs" / "benchmark" / "mmskin.yaml"
    cfg, _ = load_benchmark(example)
    tasks, absent = plan(cfg, tmp_path, KINDS)
    assert absent == [] and len(tasks) == 2 * (1 + 3 + 8)
    patch16 = [t.config for t in tasks if t.kind == "probe" and t.dataset == "Patch16_2class"][0]
    assert patch16.train_fraction == 0.1 and patch16.val.name == "Patch16_2class_val.csv"
    assert patch16.compat == "mmskin" and patch16.model.paper_decoding
    if Path("/data/mmskin").exists():
        pytest.skip("the example's data is here: running it is not a unit test")
    assert main(["benchmark", str(example), "--out", str(tmp_path / "o"), "--quiet"]) == 0
    skips = [ln for ln in capsys.readouterr().err.splitlines() if "skipped" in ln]
    assert len(skips) == 12 and all("not found" in ln for ln in skips)
