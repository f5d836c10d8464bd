"""compat mmskin equals MM-Skin's own code, run as written from its verbatim scripts (../shared/data/mmskin/reference;
skipped when absent): VQA_test.py's metric functions per modality (modality from a captions CSV), ZS_classification.py's
answer parse, ground-truth pick, question and class lists, and SFT_classification.py's ``fit_model``."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import numpy as np
import pytest

from mmskin.cli import main
from mmskin.evaluate.metrics.reference import perturb_answers
from mmskin.evaluate.reference_scripts import (
    VQA_KEYS,
    ReferenceMissing,
    ReferenceScripts,
    fake_zeroshot_answers,
)
from mmskin.evaluate.zeroshot import build_samples, paper_parse
from mmskin.taxonomy import load_taxonomy

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
MMSKIN_CSV = SHARED / "mmskin" / "Dataframe" / "test" / "vqa" / "MM-Skin_test.csv"
TOL = 1e-9
# nltk's "0 counts of n-gram overlaps"; the script's LogisticRegression(n_jobs=-1) on scikit-learn >= 1.8
pytestmark = [
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]


@pytest.fixture(scope="module")
def ref():
    try:
        return ReferenceScripts(SHARED / "mmskin" / "reference")
    except ReferenceMissing as e:
        pytest.skip(str(e))


@pytest.fixture(scope="module")
def wordnet(tmp_path_factory):
    import os

    if not Path("/usr/share/wordnet/index.noun").is_file():
        pytest.skip("Debian WordNet absent: apt-get install wordnet-base wordnet-sense-index")
    old = os.environ.get("MMSKIN_CACHE")
    os.environ["MMSKIN_CACHE"] = str(tmp_path_factory.mktemp("mmskin_cache"))
    from mmskin.evaluate.wordnet import ensure_nltk_wordnet

    ensure_nltk_wordnet()
    yield
    if old is None:
        os.environ.pop("MMSKIN_CACHE", None)
    else:
        os.environ["MMSKIN_CACHE"] = old


def test_vqa_equals_vqa_test_py_per_modality(ref, wordnet, tmp_path):
    if not MMSKIN_CSV.is_file():
        pytest.skip(f"{MMSKIN_CSV} absent")
    with open(MMSKIN_CSV, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))[::9]  # 606 real pairs
    preds = perturb_answers([r["answer"] for r in rows], seed=3)
    # the rouge package raises on a prediction without text between dots: VQA_test.py has no number there
    preds = [p if p.replace(".", "") else "?" for p in preds]
    rng = random.Random(1)
    images = sorted({r["image"] for r in rows})
    caps = tmp_path / "caption.csv"
    with open(caps, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["image", "caption", "modality"])
        for im in images[: len(images) - 20]:  # the last 20 images are not listed: no modality
            w.writerow([im, "a caption", rng.choice(["clinical", "dermoscopy", "pathology"])])
            w.writerow([im, "a second row", "other"])  # the first row of an image wins
    table = tmp_path / "predictions.csv"  # MM-Skin's own predictions file, modality column left empty
    with open(table, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["image", "question", "predicted_answer", "ground_truth", "modality"])
        for r, p in zip(rows, preds):
            w.writerow([r["image"], r["question"], p, r["answer"], ""])
    out = tmp_path / "vqa.json"
    args = ["eval", "vqa", "--predictions", str(table), "--captions", str(caps), "--out", str(out)]
    assert main([*args, "--metrics", "bleu,meteor,rouge,recall", "--bootstrap", "0", "--quiet"]) == 0
    res = json.loads(out.read_text())

    vqa = ref.vqa()
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        m = vqa["get_modality_from_image"](r["image"], str(caps))
        groups.setdefault("unknown" if m is None else m, []).append(i)
    assert set(groups) == set(res["by_modality"]) and "unknown" in groups
    for name, idx in [("overall", range(len(rows))), *groups.items()]:
        want = ref.vqa_metrics([preds[i] for i in idx], [rows[i]["answer"] for i in idx], vqa)
        got = res["overall"] if name == "overall" else res["by_modality"][name]
        diffs = {k: abs(got[k] - v) for k, v in want.items()}
        assert max(diffs.values()) <= TOL, (name, diffs)


def test_empty_prediction_rouge_is_zero_the_rest_as_the_script(ref, wordnet):
    from mmskin.evaluate.metrics import score_pairs

    vqa = ref.vqa()
    preds, truths = (
        ["", "...", "?", "a red papule"],
        ["a papule", "a plaque.", "Is it? No.", "a red scaly papule"],
    )
    with pytest.raises(ValueError):
        vqa["calculate_rouge"](preds, truths)  # the script stops here
    s = score_pairs(preds, truths, metrics=("bleu", "meteor", "rouge", "recall"))
    assert s.n_empty == 3 and s.rouge_rejected == 2
    assert s.values["rouge1"][:2].tolist() == [0.0, 0.0]
    got = s.summary()
    want = ref.vqa_metrics(preds[2:], truths[2:], vqa)  # where the script's rouge is defined
    assert abs(got["rouge1"] * 4 / 2 - want["rouge1"]) <= TOL
    want_all = {**vqa["calculate_bleu"](preds, truths), "meteor": vqa["calculate_meteor"](preds, truths)}
    want_all["recall"] = vqa["calculate_recall"](preds, truths)
    for k in ("bleu1", "bleu2", "bleu3", "bleu4", "meteor", "recall"):
        assert abs(got[k] - want_all[VQA_KEYS[k]]) <= TOL, k


@pytest.mark.parametrize("script", ["ZS_classification.py", "SFT_classification.py"])
def test_experiment_classes_equal_the_taxonomies_in_order(ref, script):
    for experiment, targets in ref.experiment_targets(script).items():
        assert load_taxonomy(experiment).class_names() == list(targets), experiment
        assert list(targets.values()) == list(range(len(targets)))


def test_zeroshot_question_equals_the_script(ref):
    for experiment in ("HAM10000", "PAD", "Patch16_2class", "Dermnet"):
        tax = load_taxonomy(experiment)
        assert tax.format_prompt() == ref.zeroshot_question(tax.class_names())


def test_paper_parse_equals_the_reference_loop(ref):
    parse = ref.zeroshot_parse()
    n = 0
    for experiment in ref.experiment_targets():
        classes = load_taxonomy(experiment).class_names()
        for answer in fake_zeroshot_answers(classes, 300, seed=len(classes)):
            assert paper_parse(answer, classes) == parse(answer, classes)[0], (experiment, answer)
            n += 1
    assert n == 300 * 13


def test_ground_truth_pick_equals_process_categories(ref, tmp_path):
    rng = random.Random(5)
    names = load_taxonomy("HAM10000").class_names()
    cats = [rng.sample(names, rng.choice([1, 1, 2, 3])) for _ in range(200)]
    data = tmp_path / "multi.csv"
    with open(data, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["image", "atributes", "categories"])
        for i, c in enumerate(cats):
            w.writerow([f"img{i}.jpg", "[]", repr(c)])
    for seed in (0, 7):
        samples, errors = build_samples(load_taxonomy("HAM10000"), data, "q", seed=seed)
        process = ref.process_categories(seed)
        assert not errors and [s["label"] for s in samples] == [process(repr(c)) for c in cats]


@pytest.mark.parametrize("k", [2, 3])
def test_probe_equals_fit_model(ref, k):
    from mmskin.evaluate.probe_compat import fit_mmskin, mmskin_splits

    rng = np.random.default_rng(k)
    centers = rng.normal(size=(k, 6)) * 1.2
    y = np.repeat(np.arange(k), 40)
    X = centers[y] + rng.normal(size=(len(y), 6))
    split = np.array(["train", "train", "test"] * (len(y) // 3) + ["train"] * (len(y) % 3))
    tr, va, te, _ = mmskin_splits(split, seed=0)  # no val rows: a seeded 20 % of train
    model, c = fit_mmskin(X[tr], y[tr], X[va], y[va])
    fit_model = ref.probe_fit()
    # the script pools (n, tokens, dim) features over tokens: one token per image pools to itself
    res = fit_model(X[tr][:, None], y[tr], X[va][:, None], y[va], X[te][:, None], y[te], range(k))
    theirs = res["te"]["preds"]
    ours = model.predict_proba(X[te])
    ours = ours[:, 1] if k == 2 else ours
    assert np.abs(ours - theirs).max() <= 1e-12
    labels = (ours >= 0.5).astype(int) if k == 2 else ours.argmax(1)
    assert (labels == res["te"]["preds_rounded"]).all()
    assert c in set(10 ** np.linspace(-5, 1, 10))
