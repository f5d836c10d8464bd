"""Classification metrics for ``mmskin eval zeroshot`` and ``mmskin eval probe``, with seeded bootstrap intervals.

Label metrics (accuracy, balanced accuracy, macro precision/recall/F1, confusion matrix) are computed natively with
numpy from a confusion matrix, so zero-shot scoring needs no scikit-learn; the tests check them against sklearn.
Macro averages run over the classes present in the ground truth: a prediction outside them (an unparsed answer,
``UNPARSED``) is simply wrong. AUROC, AUPRC and ECE are native too (bootstrap runs them a thousand times); the
tests check AUROC and AUPRC against sklearn.

    >>> from mmskin.evaluate.classification import label_metrics
    >>> label_metrics(["a", "b", "b"], ["a", "b", None], labels=["a", "b"])["accuracy"]
    0.6666666666666666
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..records import csv_header, open_csv
from ..stage import Problem

UNPARSED = "(unparsed)"
LABEL_METRICS = ("accuracy", "balanced_accuracy", "macro_precision", "macro_recall", "macro_f1")


def confusion(y_true: Sequence[int], y_pred: Sequence[int], k: int) -> np.ndarray:
    """k x k counts, rows = truth, columns = prediction (integer labels in [0, k))."""
    t = np.asarray(y_true, dtype=np.int64)
    p = np.asarray(y_pred, dtype=np.int64)
    return np.bincount(t * k + p, minlength=k * k).reshape(k, k)


def metrics_from_confusion(cm: np.ndarray, classes: np.ndarray | None = None) -> dict[str, float]:
    """Accuracy and macro metrics from a confusion matrix; macro averages over ``classes`` (row indices), by
    default the rows with support. A class never predicted has precision 0 (sklearn's ``zero_division=0``)."""
    cm = np.asarray(cm, dtype=np.float64)
    support = cm.sum(axis=1)
    if classes is None:
        classes = np.flatnonzero(support > 0)
    n = cm.sum()
    tp = np.diag(cm)[classes]
    predicted = cm.sum(axis=0)[classes]
    sup = support[classes]
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(sup > 0, tp / sup, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    present = sup > 0
    return {
        "accuracy": float(np.trace(cm) / n) if n else 0.0,
        "balanced_accuracy": float(recall[present].mean()) if present.any() else 0.0,
        "macro_precision": float(precision.mean()) if len(classes) else 0.0,
        "macro_recall": float(recall.mean()) if len(classes) else 0.0,
        "macro_f1": float(f1.mean()) if len(classes) else 0.0,
    }


def encode(
    y_true: Sequence[str], y_pred: Sequence[str | None], labels: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Integer codes for string labels; ``None`` predictions become ``UNPARSED`` (the last code)."""
    names = list(labels) + [UNPARSED]
    index = {name: i for i, name in enumerate(names)}
    unknown = sorted(
        {y for y in y_true if y not in index} | {y for y in y_pred if y is not None and y not in index}
    )
    if unknown:
        raise ValueError(f"labels not in the class list: {unknown[:5]}")
    t = np.array([index[y] for y in y_true], dtype=np.int64)
    p = np.array([index[UNPARSED] if y is None else index[y] for y in y_pred], dtype=np.int64)
    return t, p, names


def label_metrics(
    y_true: Sequence[str], y_pred: Sequence[str | None], labels: Sequence[str]
) -> dict[str, Any]:
    """Label metrics and the confusion matrix (labels + ``UNPARSED`` as the last row/column)."""
    t, p, names = encode(y_true, y_pred, labels)
    cm = confusion(t, p, len(names))
    out: dict[str, Any] = metrics_from_confusion(cm)
    out["confusion"] = {"labels": names, "matrix": cm.tolist()}
    return out


def bootstrap_label_ci(
    t: np.ndarray, p: np.ndarray, k: int, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05
) -> dict[str, list[float]]:
    """Percentile bootstrap intervals of the label metrics (resampling samples; the macro classes are the ones
    present in the full ground truth, so every resample averages over the same classes)."""
    t = np.asarray(t, dtype=np.int64)
    p = np.asarray(p, dtype=np.int64)
    n = len(t)
    if n == 0:
        return {}
    classes = np.flatnonzero(np.bincount(t, minlength=k) > 0)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))
    codes = t[idx] * k + p[idx]
    # one bincount for all resamples: offset each resample's codes into its own block
    flat = (codes + (np.arange(n_boot)[:, None] * k * k)).ravel()
    cms = np.bincount(flat, minlength=n_boot * k * k).reshape(n_boot, k, k)
    values: dict[str, list[float]] = {m: [] for m in LABEL_METRICS}
    for cm in cms:
        res = metrics_from_confusion(cm, classes)
        # a class absent from a resample has no recall there: balanced accuracy averages the present ones
        for m in LABEL_METRICS:
            values[m].append(res[m])
    return {m: _percentiles(v, alpha) for m, v in values.items()}


def bootstrap_ci(
    stat: Callable[[np.ndarray], dict[str, float | None]],
    n: int,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict[str, list[float]]:
    """Percentile intervals of ``stat(indices)`` over ``n_boot`` resamples of ``range(n)``; a metric undefined
    on a resample (None, e.g. AUROC with one class) is left out of that metric's interval."""
    rng = np.random.default_rng(seed)
    values: dict[str, list[float]] = {}
    for _ in range(n_boot):
        for m, v in stat(rng.integers(0, n, size=n)).items():
            if v is not None and np.isfinite(v):
                values.setdefault(m, []).append(float(v))
    return {m: _percentiles(v, alpha) for m, v in values.items() if v}


def _percentiles(v: Sequence[float], alpha: float) -> list[float]:
    lo, hi = np.percentile(np.asarray(v, dtype=np.float64), [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return [float(lo), float(hi)]


def expected_calibration_error(y_true: np.ndarray, proba: np.ndarray, n_bins: int = 15) -> float:
    """Top-label ECE with ``n_bins`` equal-width confidence bins (Guo et al. 2017): sum over bins of
    |accuracy - mean confidence| weighted by the bin's share of samples. Bins are (lo, hi], the first [0, hi]."""
    y_true = np.asarray(y_true)
    proba = np.asarray(proba, dtype=np.float64)
    conf = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == y_true).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        m = bins == b
        if m.any():
            ece += m.mean() * abs(correct[m].mean() - conf[m].mean())
    return float(ece)


def binary_auroc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve of scores for a 0/1 target (Mann-Whitney U with average ranks for ties; equal to
    sklearn's ``roc_auc_score``); NaN when one class is missing."""
    from scipy.stats import rankdata

    y = np.asarray(y).astype(bool)
    npos = int(y.sum())
    nneg = len(y) - npos
    if npos == 0 or nneg == 0:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[y].sum() - npos * (npos + 1) / 2) / (npos * nneg))


def binary_average_precision(y: np.ndarray, score: np.ndarray) -> float:
    """Average precision (sum over distinct thresholds of recall gain x precision; equal to sklearn's
    ``average_precision_score``); NaN when there is no positive."""
    y = np.asarray(y).astype(np.float64)
    if y.sum() == 0:
        return float("nan")
    order = np.argsort(-np.asarray(score, dtype=np.float64), kind="mergesort")
    s = np.asarray(score, dtype=np.float64)[order]
    ys = y[order]
    last = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]  # last index of each distinct score
    tps = np.cumsum(ys)[last]
    precision = tps / (last + 1)
    recall = tps / tps[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def score_metrics(y_true: np.ndarray, proba: np.ndarray, n_classes: int) -> dict[str, float | None]:
    """Macro one-vs-rest AUROC and AUPRC (binary: of the positive class, column 1), None when undefined
    (a single class in ``y_true``). ``y_true`` holds integer codes in [0, n_classes); classes absent from
    ``y_true`` have no curve and are left out of the macro average."""
    y_true = np.asarray(y_true)
    present = np.unique(y_true)
    if len(present) < 2:
        return {"auroc": None, "auprc": None}
    if n_classes == 2:
        return {
            "auroc": binary_auroc(y_true == 1, proba[:, 1]),
            "auprc": binary_average_precision(y_true == 1, proba[:, 1]),
        }
    aurocs = [binary_auroc(y_true == c, proba[:, c]) for c in present]
    auprcs = [binary_average_precision(y_true == c, proba[:, c]) for c in present]
    return {"auroc": float(np.mean(aurocs)), "auprc": float(np.mean(auprcs))}


def markdown_table(rows: list[tuple[str, float | None, list[float] | None]]) -> str:
    """``| metric | value | 95% CI |`` rows, values as percentages with one decimal."""
    out = ["| metric | value | 95% CI |", "|---|---:|---:|"]
    for name, value, ci in rows:
        v = "n/a" if value is None else f"{100 * value:.1f}"
        c = "" if not ci else f"{100 * ci[0]:.1f}–{100 * ci[1]:.1f}"
        out.append(f"| {name} | {v} | {c} |")
    return "\n".join(out)


# ------------------------------------------------------------------------------------------- classification CSVs

_SPLITS = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
}


def read_classification_csv(
    path: Path, pick: random.Random | None = None
) -> tuple[list[dict[str, str]], list[Problem]]:
    """Rows ``{image, label[, split]}`` of a classification CSV, and a problem ``FILE:LINE`` per row skipped.

    Two formats: MM-Skin's test CSVs (``image,atributes,categories[,set]`` where ``categories`` is a Python list
    literal such as ``['Nevus']``, read with ``ast.literal_eval``, never ``eval``) and a plain ``image,label[,split]``.
    A ``split`` (or MM-Skin's ``set``) column is normalised to train/val/test. A row that lists several categories
    is skipped, or with ``pick`` given gets ``pick.choice(categories)`` as its label, row by row in file order:
    MM-Skin's scripts' ``random.choice`` seeded (they call it only for such rows)."""
    import ast
    import csv

    path = Path(path)
    rows: list[dict[str, str]] = []
    errors: list[Problem] = []
    f, reader = open_csv(path)
    with f:
        cols = csv_header(reader)
        if "image" not in cols or not ({"categories", "label"} & set(cols)):
            raise ValueError(
                f"{path}: needs an 'image' column and a 'categories' or 'label' column (has {cols})"
            )
        split_col = "split" if "split" in cols else "set" if "set" in cols else None
        try:
            for n, rec in enumerate(reader, 2):
                image = (rec.get("image") or "").strip()
                if not image:
                    errors.append(Problem(f"{path}:{n}", "empty image path"))
                    continue
                if "label" in cols:
                    label = (rec.get("label") or "").strip()
                else:
                    raw = (rec.get("categories") or "").strip()
                    try:
                        val = ast.literal_eval(raw)
                    except (ValueError, SyntaxError, MemoryError, RecursionError):
                        errors.append(
                            Problem(f"{path}:{n}", f"categories {raw[:40]!r} is not a list literal")
                        )
                        continue
                    if isinstance(val, str):
                        val = [val]
                    several = pick is not None and isinstance(val, (list, tuple)) and len(val) > 1
                    if not (isinstance(val, (list, tuple)) and (len(val) == 1 or several)) or not all(
                        isinstance(v, str) for v in val
                    ):
                        errors.append(
                            Problem(f"{path}:{n}", f"categories {raw[:40]!r} is not one class name")
                        )
                        continue
                    label = (pick.choice(list(val)) if several else val[0]).strip()
                if not label:
                    errors.append(Problem(f"{path}:{n}", "empty label"))
                    continue
                row = {"image": image, "label": label}
                if split_col:
                    s = (rec.get(split_col) or "").strip().lower()
                    if s not in _SPLITS:
                        errors.append(Problem(f"{path}:{n}", f"{split_col} {s!r} is not train/val/test"))
                        continue
                    row["split"] = _SPLITS[s]
                rows.append(row)
        except csv.Error as e:
            errors.append(Problem(f"{path}:{reader.line_num}", f"malformed CSV ({e}); rows after it skipped"))
    return rows, errors


def not_a_class(path: Path, image: str, label: Any, taxonomy: Any) -> Problem:
    """The problem of a row whose label is not a class of the benchmark."""
    return Problem(str(path), f"image {image}: label {label!r} is not a class of {taxonomy.name}")


def canonical_label(taxonomy: Any, label: str) -> str | None:
    """The taxonomy's class for a dataset label: the exact name, else ``match_class`` (synonyms, codes)."""
    if label in taxonomy.class_names():
        return label
    return taxonomy.match_class(label)
