"""The linear probe exactly as MM-Skin's SFT_classification.py runs it (``mmskin eval probe --compat mmskin``).

Its ``fit_model``, step by step, on mean-pooled features of ``encode_images`` (vision tower + projector):

1. train rows in a random order (its training DataLoader shuffles); validation rows from ``<experiment>_val.csv``
   when there is one, else a random 20 % of train (``random_split``, ``int(0.2 * n)`` rows); Patch16_2class keeps a
   random 10 % of both (``train_fraction``);
2. C from ``10 ** linspace(-5, 1, 10)`` by ``GridSearchCV(refit=False, cv=StratifiedKFold(5), scoring='roc_auc_ovr')``
   on train + validation concatenated in that order (the folds are not shuffled);
3. ``StandardScaler + LogisticRegression(random_state=42, max_iter=1000)`` with that C refit on **train only**;
4. test probabilities; a binary label is ``p(class 1) >= 0.5``, otherwise the argmax.

The script's ``random_split`` and shuffling are unseeded; here one ``numpy`` generator seeded with ``seed`` draws
them. It pools fp16 features with numpy (the mean rounded back to fp16); mmskin pools in fp32 (``--dtype float16``
gives the same fp16 features before pooling). Its ``binary_metrics``/``prob_metrics`` are not published: the metrics are mmskin's (accuracy, balanced
accuracy, macro F1, AUROC, AUPRC, ECE) on these predictions. ``tests/evaluate/test_mmskin_reference.py`` runs the
script's own ``fit_model`` and checks the chosen C and the test probabilities against :func:`probe_mmskin`.

    res = probe_mmskin(X, y, split, ["benign", "malignant"], seed=0)   # split: train / val / test per row
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ..stage import SILENT, Reporter

VAL_FRACTION = 0.2  # SFT_classification.get_dataloaders(val_split=0.2)
FOLDS = 5
PROTOCOL = (
    "SFT_classification.py: C by GridSearchCV(StratifiedKFold(5), roc_auc_ovr) on train+val, refit on train only; "
    "LogisticRegression(max_iter=1000) after StandardScaler; binary label p>=0.5"
)


def mmskin_splits(
    split: np.ndarray, seed: int, train_fraction: float = 1.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """(train, val, test) row indices in the order the script feeds them, and where the validation rows came from."""
    from .probe import ProbeError

    rng = np.random.default_rng(seed)
    tr, va, te = (np.flatnonzero(split == s) for s in ("train", "val", "test"))
    if not len(tr) or not len(te):
        raise ProbeError("compat mmskin needs training and test rows (--train CSV and --data CSV)")
    tr = tr[rng.permutation(len(tr))]
    source = "validation CSV"
    if not len(va):
        n_val = int(len(tr) * VAL_FRACTION)
        tr, va = tr[: len(tr) - n_val], tr[len(tr) - n_val :]
        source = f"random {VAL_FRACTION:.0%} of train (seeded)"
    if train_fraction < 1.0:
        tr = tr[: int(len(tr) * train_fraction)]
        va = va[rng.permutation(len(va))[: int(len(va) * train_fraction)]]
        source += f"; train and val subsampled to {train_fraction:g}"
    return tr, va, te, source


def fit_mmskin(X_tr: np.ndarray, y_tr: np.ndarray, X_va: np.ndarray, y_va: np.ndarray) -> tuple[Any, float]:
    """(pipeline refit on train, chosen C): the script's grid search and refit."""
    from sklearn.base import clone
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from .probe import C_GRID

    pipe = Pipeline(
        steps=[("scaler", StandardScaler()), ("model", LogisticRegression(random_state=42, max_iter=1000))]
    )
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter(
            "ignore", UserWarning
        )  # a class with fewer members than folds: sklearn warns, goes on
        search = GridSearchCV(
            pipe, {"model__C": C_GRID}, refit=False, cv=StratifiedKFold(n_splits=FOLDS), scoring="roc_auc_ovr"
        )
        search.fit(np.concatenate((X_tr, X_va)), np.concatenate((y_tr, y_va)))
        model = clone(clone(pipe).set_params(**search.best_params_)).fit(X_tr, y_tr)
    return model, float(search.best_params_["model__C"])


def probe_mmskin(
    X: np.ndarray,
    y: np.ndarray,
    split: np.ndarray,
    names: list[str],
    *,
    seed: int = 0,
    n_boot: int = 1000,
    train_fraction: float = 1.0,
    reporter: Reporter = SILENT,
) -> dict[str, Any]:
    """Fit and score the probe by SFT_classification.py's protocol on pooled features ``X``, codes ``y``."""
    from .probe import _proba, evaluate

    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    tr, va, te, source = mmskin_splits(np.asarray(split), seed, train_fraction)
    model, c = fit_mmskin(X[tr], y[tr], X[va], y[va])
    unseen = sorted({names[k] for k in np.unique(y[te])} - {names[k] for k in np.unique(y[tr])})
    if unseen:
        reporter.warning(f"test classes never seen in training (always wrong): {unseen}")
    res = evaluate(y[te], _proba(model, X[te], len(names)), names, seed, n_boot, binary_threshold=True)
    res.update(
        protocol=f"mmskin ({PROTOCOL}; validation: {source})",
        n=len(te),
        n_train=len(tr),
        n_val=len(va),
        cv=[{"C": c, "folds": FOLDS}],
    )
    return res
