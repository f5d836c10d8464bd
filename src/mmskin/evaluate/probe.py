"""Linear probe on frozen image features (the MM-Skin paper's "SFT" classification).

Protocol (fixed, seeded, recorded in the results):

- Probe: StandardScaler + LogisticRegression (L2, lbfgs), C chosen from 10**linspace(-5, 1, 10) by stratified
  k-fold CV (k = 5, fewer when a class has fewer training samples) on macro one-vs-rest AUROC (binary: AUROC),
  then refit on all training samples.
- Train/test: ``--train CSV`` + ``--data CSV`` (train on one, test on the other); or a ``split``/``set`` column
  (features files: a ``split`` array) with train and test rows (``val`` rows join the training set: CV already
  selects C); otherwise nested CV: each sample is scored by a probe fit (with its own inner CV) on the other
  outer folds, and the metrics are computed on these out-of-fold predictions.
- Test metrics: accuracy, balanced accuracy, macro precision/recall/F1, macro AUROC and AUPRC (one-vs-rest),
  top-label ECE with 15 bins; percentile bootstrap 95% intervals over test samples.

    results = probe_arrays(X, y, split, ["benign", "malignant"], seed=0)
"""

from __future__ import annotations

import sys
import warnings
from typing import Any

import numpy as np

from .classification import (
    LABEL_METRICS,
    binary_auroc,
    bootstrap_ci,
    confusion,
    expected_calibration_error,
    markdown_table,
    metrics_from_confusion,
    score_metrics,
)

C_GRID = 10.0 ** np.linspace(-5, 1, 10)
PROBE_METRICS = (*LABEL_METRICS, "auroc", "auprc", "ece")


class ProbeError(ValueError):
    """Data the probe cannot be fit on (too few samples of a class, one class only); one line for the user."""


def _n_splits(y: np.ndarray, folds: int, names: list[str], what: str) -> int:
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        raise ProbeError(f"{what}: only one class ({names[int(classes[0])] if len(classes) else 'none'})")
    k = min(folds, int(counts.min()))
    if k < 2:
        small = names[int(classes[counts.argmin()])]
        raise ProbeError(
            f"{what}: class {small!r} has {int(counts.min())} sample(s); cross-validation needs 2"
        )
    return k


def fit_probe(
    X: np.ndarray, y: np.ndarray, names: list[str], seed: int = 0, folds: int = 5, what: str = "training set"
) -> tuple[Any, dict[str, Any]]:
    """Fitted pipeline and the CV record ``{C, cv_auroc, folds}``. Per fold the C path is walked upwards with
    warm starts (the previous C's solution starts the next), which gives the same optimum as fitting each C from
    scratch, several times faster; ties go to the smaller C (stronger regularisation)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    k = _n_splits(y, folds, names, what)
    classes = np.unique(y)
    scores = np.zeros((k, len(C_GRID)))
    cv = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for f, (tr, va) in enumerate(cv.split(X, y)):
            scaler = StandardScaler().fit(X[tr])
            xtr, xva = scaler.transform(X[tr]), scaler.transform(X[va])
            lr = LogisticRegression(max_iter=2000, warm_start=True)
            for j, c in enumerate(C_GRID):
                lr.set_params(C=float(c)).fit(xtr, y[tr])
                p = np.zeros((len(va), int(classes.max()) + 1))
                p[:, lr.classes_] = lr.predict_proba(xva)
                yv = y[va]
                if len(classes) == 2:
                    scores[f, j] = binary_auroc(yv == classes[1], p[:, classes[1]])
                else:
                    scores[f, j] = np.mean([binary_auroc(yv == c_, p[:, c_]) for c_ in classes])
        mean = scores.mean(axis=0)
        best = int(np.argmax(mean))  # first maximum: the smallest C among ties
        model = make_pipeline(StandardScaler(), LogisticRegression(C=float(C_GRID[best]), max_iter=2000))
        model.fit(X, y)
    return model, {"C": float(C_GRID[best]), "cv_auroc": float(mean[best]), "folds": k}


def _proba(model: Any, X: np.ndarray, k: int) -> np.ndarray:
    """Probabilities over all k classes (a class absent from training gets 0)."""
    with np.errstate(all="ignore"):
        p = model.predict_proba(X)
    full = np.zeros((len(X), k), dtype=np.float64)
    full[:, model.classes_.astype(int)] = p
    return full


def evaluate(y: np.ndarray, proba: np.ndarray, names: list[str], seed: int = 0, n_boot: int = 1000) -> dict:
    """Metrics, bootstrap intervals and confusion matrix of probabilities ``proba`` against codes ``y``."""
    k = len(names)
    pred = proba.argmax(axis=1)

    def stat(idx: np.ndarray) -> dict[str, float | None]:
        yt, pp = y[idx], proba[idx]
        out: dict[str, float | None] = dict(metrics_from_confusion(confusion(yt, pp.argmax(1), k)))
        out.update(score_metrics(yt, pp, k))
        out["ece"] = expected_calibration_error(yt, pp, 15)
        return out

    metrics = stat(np.arange(len(y)))
    ci = bootstrap_ci(stat, len(y), n_boot=n_boot, seed=seed) if n_boot > 0 and len(y) else {}
    return {
        "metrics": {m: metrics[m] for m in PROBE_METRICS},
        "ci95": ci,
        "confusion": {"labels": names, "matrix": confusion(y, pred, k).tolist()},
    }


def probe_arrays(
    X: np.ndarray,
    y: np.ndarray,
    split: np.ndarray | None,
    names: list[str],
    *,
    seed: int = 0,
    folds: int = 5,
    n_boot: int = 1000,
) -> dict[str, Any]:
    """Fit and score the probe on features ``X`` with integer labels ``y`` (codes into ``names``); ``split``
    (train/val/test per row) chooses the split protocol, None the nested-CV protocol."""
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    k = len(names)
    if split is not None and {"train", "test"} <= set(np.unique(split)):
        tr = np.isin(split, ("train", "val"))
        te = split == "test"
        model, cv = fit_probe(X[tr], y[tr], names, seed, folds)
        unseen = sorted({names[c] for c in np.unique(y[te])} - {names[c] for c in np.unique(y[tr])})
        if unseen:
            print(f"warning: test classes never seen in training (always wrong): {unseen}", file=sys.stderr)
        res = evaluate(y[te], _proba(model, X[te], k), names, seed, n_boot)
        res.update(protocol="train/test split", n=int(te.sum()), n_train=int(tr.sum()), cv=[cv])
        return res
    if split is not None:
        print(
            "note: the split does not hold both train and test rows: using nested cross-validation",
            file=sys.stderr,
        )
    from sklearn.model_selection import StratifiedKFold

    k_outer = _n_splits(y, folds, names, "dataset")
    proba = np.zeros((len(y), k), dtype=np.float64)
    cvs = []
    outer = StratifiedKFold(n_splits=k_outer, shuffle=True, random_state=seed)
    for i, (tr, te) in enumerate(outer.split(X, y)):
        model, cv = fit_probe(X[tr], y[tr], names, seed, folds, what=f"outer fold {i + 1}")
        proba[te] = _proba(model, X[te], k)
        cvs.append(cv)
    res = evaluate(y, proba, names, seed, n_boot)
    res.update(
        protocol=f"nested CV ({k_outer} outer folds, out-of-fold predictions)", n=len(y), n_train=None, cv=cvs
    )
    return res


def markdown(results: dict[str, Any]) -> str:
    ci = results.get("ci95", {})
    rows = [(m, results["metrics"][m], ci.get(m)) for m in PROBE_METRICS]
    cs = ", ".join(f"{c['C']:.0e}" for c in results["cv"])
    head = f"linear probe {results['benchmark']} · {results['model']} · n={results['n']} · {results['protocol']} · C={cs}"
    return head + "\n\n" + markdown_table(rows)
