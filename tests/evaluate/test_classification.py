"""Classification metrics against scikit-learn, ECE by hand, bootstrap determinism, classification CSV reading."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    precision_recall_fscore_support,
    roc_auc_score,
)

from mmskin.evaluate.classification import (
    UNPARSED,
    binary_auroc,
    binary_average_precision,
    bootstrap_label_ci,
    encode,
    expected_calibration_error,
    label_metrics,
    read_classification_csv,
    score_metrics,
)

LABELS = ["a", "b", "c"]
CASES = [
    # (truth, predictions) — None is an unparsed answer
    (["a", "b", "c", "a"], ["a", "b", "c", "a"]),
    (["a", "b", "c", "a", "b"], ["b", "b", None, "a", "c"]),
    (["a", "a", "a", "b"], [None, None, None, None]),
    (["a", "b", "b", "b"], ["c", "c", "b", "a"]),  # c never in the truth: predicted only
    (["c"], ["c"]),
]


@pytest.mark.parametrize(("y_true", "y_pred"), CASES)
def test_label_metrics_equal_sklearn(y_true, y_pred):
    ours = label_metrics(y_true, y_pred, LABELS)
    sk_pred = [UNPARSED if p is None else p for p in y_pred]
    present = sorted(set(y_true))
    p, r, f, _ = precision_recall_fscore_support(
        y_true, sk_pred, labels=present, average="macro", zero_division=0
    )
    assert ours["accuracy"] == pytest.approx(accuracy_score(y_true, sk_pred), abs=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns about the predicted-only labels it leaves out
        bal = balanced_accuracy_score(y_true, sk_pred)
    assert ours["balanced_accuracy"] == pytest.approx(bal, abs=1e-12)
    assert ours["macro_precision"] == pytest.approx(p, abs=1e-12)
    assert ours["macro_recall"] == pytest.approx(r, abs=1e-12)
    assert ours["macro_f1"] == pytest.approx(f, abs=1e-12)
    cm = np.array(ours["confusion"]["matrix"])
    assert ours["confusion"]["labels"] == [*LABELS, UNPARSED]
    assert cm.sum() == len(y_true)
    assert cm[:, -1].sum() == sum(p is None for p in y_pred)


def test_unknown_label_is_an_error():
    with pytest.raises(ValueError, match="not in the class list"):
        encode(["a", "z"], ["a", "a"], LABELS)


def test_auroc_and_ap_equal_sklearn_with_ties():
    rng = np.random.default_rng(3)
    for _ in range(20):
        y = rng.integers(0, 2, 40)
        s = rng.integers(0, 6, 40) / 5.0  # many ties
        if y.min() == y.max():
            continue
        assert binary_auroc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
        assert binary_average_precision(y, s) == pytest.approx(average_precision_score(y, s), abs=1e-12)


def test_multiclass_macro_ovr_equals_sklearn():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), 10)
    proba = rng.dirichlet(np.ones(4), size=40)
    ours = score_metrics(y, proba, 4)
    assert ours["auroc"] == pytest.approx(
        roc_auc_score(y, proba, multi_class="ovr", average="macro"), abs=1e-12
    )
    onehot = np.eye(4)[y]
    assert ours["auprc"] == pytest.approx(average_precision_score(onehot, proba, average="macro"), abs=1e-12)
    # one class only: undefined, not a made-up number
    assert score_metrics(np.zeros(5, dtype=int), proba[:5], 4) == {"auroc": None, "auprc": None}


def test_ece_by_hand():
    # two bins used (15 bins of width 1/15): conf 0.9 x2 (one right), conf 0.6 x2 (both right)
    y = np.array([0, 1, 0, 1])
    proba = np.array([[0.9, 0.1], [0.9, 0.1], [0.4, 0.6], [0.4, 0.6]])
    # bin of 0.9: acc 0.5, conf 0.9 -> 0.4 * 2/4; bin of 0.6: sample 2 predicts 1 (wrong), sample 3 right
    expected = 0.5 * abs(0.5 - 0.9) + 0.5 * abs(0.5 - 0.6)
    assert expected_calibration_error(y, proba, 15) == pytest.approx(expected, abs=1e-12)
    perfect = np.eye(2)[y]
    assert expected_calibration_error(y, perfect, 15) == 0.0


def test_bootstrap_is_seeded_and_brackets_the_estimate():
    rng = np.random.default_rng(1)
    t = rng.integers(0, 3, 200)
    p = np.where(rng.random(200) < 0.7, t, rng.integers(0, 4, 200))
    a = bootstrap_label_ci(t, p, 4, n_boot=300, seed=7)
    b = bootstrap_label_ci(t, p, 4, n_boot=300, seed=7)
    c = bootstrap_label_ci(t, p, 4, n_boot=300, seed=8)
    assert a == b and a != c
    acc = float((t == p).mean())
    lo, hi = a["accuracy"]
    assert lo < acc < hi and hi - lo < 0.2


def test_read_mmskin_and_plain_csv(tmp_path):
    mm = tmp_path / "mm.csv"
    mm.write_text(
        "image,atributes,categories,set\n"
        "a.jpg,[],['Nevus'],Test\n"
        "b.jpg,[],\"['melanoma metastasis']\",Validation\n"
        "c.jpg,[],__import__('os').system('echo pwned'),Test\n"  # never evaluated
        "d.jpg,[],\"['Nevus', 'Melanoma']\",Test\n"
        "e.jpg,[],['Nevus'],Holdout\n"
        ",[],['Nevus'],Test\n",
        encoding="utf-8",
    )
    rows, errors = read_classification_csv(mm)
    assert rows == [
        {"image": "a.jpg", "label": "Nevus", "split": "test"},
        {"image": "b.jpg", "label": "melanoma metastasis", "split": "val"},
    ]
    assert len(errors) == 4
    assert any("c.jpg" not in str(e) and "not a list literal" in e.reason for e in errors)
    assert all(e.where.startswith(f"{mm}:") for e in errors)
    plain = tmp_path / "plain.csv"
    plain.write_text("image,label\nx.png,nevus\n", encoding="utf-8")
    assert read_classification_csv(plain) == ([{"image": "x.png", "label": "nevus"}], [])
    bad = tmp_path / "bad.csv"
    bad.write_text("file,diagnosis\nx.png,nevus\n", encoding="utf-8")
    with pytest.raises(ValueError, match="bad.csv: needs an 'image' column"):
        read_classification_csv(bad)
