"""``mmskin eval probe``: a separable synthetic set must score high (and a label-shuffled one must not), the split
and nested-CV protocols, npz features files (pickles refused), and real features from a tiny random-weight model on
real images with the on-disk cache."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest

from mmskin.cli import main
from mmskin.evaluate.probe import ProbeError, fit_probe, probe_arrays

os.environ.setdefault("HF_HUB_OFFLINE", "1")
DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
METRICS = {"accuracy", "balanced_accuracy", "macro_f1", "auroc", "auprc", "ece"}


def _blobs(n_per: int, k: int, d: int = 8, sep: float = 3.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(k, d)) * sep
    y = np.repeat(np.arange(k), n_per)
    X = centers[y] + rng.normal(size=(len(y), d))
    return X, y


def test_separable_features_file_scores_high(tmp_path, capsys):
    X, y = _blobs(30, 3)
    names = np.array(["Melanoma", "Nevus", "Basal Cell Carcinoma"])[y]
    split = np.where(np.arange(len(y)) % 3 == 0, "test", "train")
    f = tmp_path / "feats.npz"
    np.savez(f, features=X.astype(np.float32), labels=names, split=split)
    out = tmp_path / "probe.json"
    rc = main(["eval", "probe", "HAM10000", "--features", str(f), "--out", str(out), "--n-boot", "100"])
    assert rc == 0
    res = json.loads(out.read_text())
    assert res["task"] == "probe" and res["protocol"] == "train/test split"
    assert res["n"] == 30 and res["n_train"] == 60
    assert METRICS <= set(res["metrics"]) and METRICS <= set(res["ci95"])
    assert res["metrics"]["auroc"] > 0.97 and res["metrics"]["accuracy"] > 0.9
    assert res["confusion"]["labels"] == ["Basal Cell Carcinoma", "Melanoma", "Nevus"]  # taxonomy order
    assert res["provenance"]["C_grid"][0] == pytest.approx(1e-5) and len(res["provenance"]["C_grid"]) == 10
    assert "auroc" in capsys.readouterr().out


def test_shuffled_labels_score_near_chance():
    X, y = _blobs(20, 2, seed=1)
    y = np.random.default_rng(5).permutation(y)
    res = probe_arrays(X, y, None, ["benign", "malignant"], folds=3, n_boot=0)
    assert res["protocol"].startswith("nested CV") and res["n"] == 40
    assert 0.2 < res["metrics"]["auroc"] < 0.8  # the probe does not invent signal


def test_nested_cv_on_separable_binary_and_int_labels(tmp_path):
    X, y = _blobs(12, 2, seed=2)
    f = tmp_path / "f.npz"
    np.savez(f, features=X, labels=y.astype(np.int64))  # ints index the taxonomy's classes
    out = tmp_path / "p.json"
    assert (
        main(
            [
                "eval",
                "probe",
                "DDI_2class",
                "--features",
                str(f),
                "--out",
                str(out),
                "--folds",
                "3",
                "--n-boot",
                "0",
                "--quiet",
            ]
        )
        == 0
    )
    res = json.loads(out.read_text())
    assert res["protocol"].startswith("nested CV (3 outer folds")
    assert len(res["cv"]) == 3 and res["metrics"]["auroc"] > 0.95 and res["n"] == 24


def test_cv_chooses_c_and_refuses_tiny_classes():
    X, y = _blobs(10, 2, seed=3)
    model, cv = fit_probe(X, y, ["a", "b"], seed=0, folds=5)
    assert cv["folds"] == 5 and 0.99e-5 <= cv["C"] <= 10 and cv["cv_auroc"] > 0.9
    assert fit_probe(X, y, ["a", "b"], seed=0, folds=5)[1] == cv  # seeded
    with pytest.raises(ProbeError, match="class 'b' has 1 sample"):
        fit_probe(X[:11], y[:11], ["a", "b"])


def test_bad_features_files(tmp_path, capsys):
    obj = tmp_path / "obj.npz"
    np.savez(obj, features=np.zeros((4, 2)), labels=np.array([{"a": 1}] * 4, dtype=object))
    out = tmp_path / "o.json"
    assert main(["eval", "probe", "HAM10000", "--features", str(obj), "--out", str(out)]) == 2
    assert "pickled" in capsys.readouterr().err
    nan = tmp_path / "nan.npz"
    np.savez(nan, features=np.full((4, 2), np.nan), labels=np.array(["Nevus"] * 4))
    assert main(["eval", "probe", "HAM10000", "--features", str(nan), "--out", str(out)]) == 2
    assert "NaN" in capsys.readouterr().err
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"PK\x03\x04 not really a zip")
    assert main(["eval", "probe", "HAM10000", "--features", str(junk), "--out", str(out)]) == 2
    assert "junk.npz" in capsys.readouterr().err
    assert not out.exists()
    assert main(["eval", "probe", "HAM10000", "--out", str(out)]) == 2  # neither --model nor --features


def test_tiny_model_features_on_real_images_with_cache(tmp_path, tiny_vlms):
    labels = DATA / "images" / "labels.csv"
    if not labels.is_file():
        pytest.skip(f"../shared/data not present: {labels}")
    with open(labels, encoding="utf-8") as f:
        rows = [
            r for r in csv.DictReader(f) if "/ham10000/" in r["file"] and r["label_code"] in ("mel", "nv")
        ]
    data = tmp_path / "ham.csv"
    with open(data, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["image", "label", "split"])
        for i, r in enumerate(rows):
            w.writerow([r["file"], r["label_code"], "test" if i % 10 < 3 else "train"])
    model = tiny_vlms["qwen2_5_vl"]
    cache = tmp_path / "cache"
    out = tmp_path / "probe.json"
    args = [
        "eval",
        "probe",
        "HAM10000",
        "--data",
        str(data),
        "--images",
        str(DATA),
        "--model",
        f"hf:{model}",
        "--device",
        "cpu",
        "--cache-dir",
        str(cache),
        "--out",
        str(out),
        "--n-boot",
        "50",
        "--quiet",
    ]
    assert main(args) == 0
    res = json.loads(out.read_text())
    assert res["protocol"] == "train/test split" and res["n"] == 6 and res["n_train"] == 14
    assert res["confusion"]["labels"] == ["Melanoma", "Nevus"]
    assert res["provenance"]["feature_dim"] == 64 and res["provenance"]["model"]["kind"] == "hf"
    (npz,) = cache.glob("*.npz")
    with np.load(npz, allow_pickle=False) as z:
        assert z["features"].shape == (20, 64) and z["ok"].all()
    mtime = npz.stat().st_mtime_ns
    assert main(args) == 0  # second run reads the cache
    assert npz.stat().st_mtime_ns == mtime and json.loads(out.read_text())["metrics"] == res["metrics"]
