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

``mmskin eval probe`` is :func:`run` with a :class:`ProbeConfig`: features from the model (``model.spec``,
cached by :mod:`.features`) on the images of classification CSVs, or from a features file.

    run(ProbeConfig(benchmark="DDI_2class", features=Path("clip_ddi.npz"), out=Path("probe.json"))).summary
    # 'probe ddi_2class: n=… auroc=… accuracy=… ece=… errors=0 -> probe.json'
"""

from __future__ import annotations

import random
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import ConfigError, option
from ..records import sha256_file
from ..stage import SILENT, Problem, Problems, Reporter, StageError, StageResult
from .classification import (
    LABEL_METRICS,
    binary_auroc,
    bootstrap_ci,
    canonical_label,
    confusion,
    expected_calibration_error,
    markdown_table,
    metrics_from_confusion,
    not_a_class,
    read_classification_csv,
    score_metrics,
)
from .predict import MODEL_PACKAGES, ModelConfig
from .results import INTERVAL, eval_provenance, write_results

C_GRID = 10.0 ** np.linspace(-5, 1, 10)
PROBE_METRICS = (*LABEL_METRICS, "auroc", "auprc", "ece")
ECE_BINS = 15
FEATURES = "vision tower + projector output (get_image_features), mean-pooled over image tokens"
MAX_LISTED = 10  # bad labels of a features file listed one by one; the rest are counted


@dataclass
class ProbeConfig:
    """Settings of ``mmskin eval probe`` (each field is the command-line option of the same name)."""

    benchmark: str = option(
        "", "taxonomy name (e.g. HAM10000) or taxonomy YAML path", cli=False, required=True
    )
    data: Path | None = option(None, "classification CSV: the test set (or all, see below)", metavar="CSV")
    train: Path | None = option(None, "training CSV (same format)", metavar="CSV")
    val: Path | None = option(
        None,
        "validation CSV (MM-Skin's <experiment>_val.csv); compat mmskin: C is chosen on train + val, without one on "
        "train + a seeded 20 percent of it; standard: val rows join the training set",
        metavar="CSV",
    )
    compat: str = option(
        "standard",
        "mmskin: SFT_classification.py's protocol (C by unshuffled 5-fold CV on train+val, refit on train only, "
        "max_iter 1000); standard: C by shuffled CV on train+val, refit on both",
        choices=("mmskin", "standard"),
    )
    train_fraction: float = option(
        1.0, "compat mmskin: probe a seeded fraction of train and val (MM-Skin: 0.1 for Patch16_2class)"
    )
    images: Path | None = option(None, "root of the CSVs' image paths", metavar="DIR")
    features: Path | None = option(None, "probe these features instead", metavar="FILE.npz")
    folds: int = option(5, "CV folds")
    cache_dir: Path | None = option(None, "feature cache (default: ~/.cache/mmskin/features)", metavar="DIR")
    out: Path | None = option(None, "results file to write", metavar="RESULTS.json", required=True)
    seed: int = option(0, "seed of sampling, CV splits and bootstrap")
    n_boot: int = option(1000, "bootstrap resamples for the 95 percent confidence interval")
    limit: int | None = option(None, "use only the first N rows (smoke runs)", metavar="N")
    model: ModelConfig = option(ModelConfig(), "the model whose image features are probed", cli=False)


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


def evaluate(
    y: np.ndarray,
    proba: np.ndarray,
    names: list[str],
    seed: int = 0,
    n_boot: int = 1000,
    binary_threshold: bool = False,
) -> dict:
    """Metrics, bootstrap intervals and confusion matrix of probabilities ``proba`` against codes ``y``. Labels are
    the argmax, or with ``binary_threshold`` and two classes ``p(class 1) >= 0.5`` (MM-Skin's rule: a tie is 1)."""
    k = len(names)

    def labels(pp: np.ndarray) -> np.ndarray:
        return (pp[:, 1] >= 0.5).astype(np.int64) if binary_threshold and k == 2 else pp.argmax(1)

    pred = labels(proba)

    def stat(idx: np.ndarray) -> dict[str, float | None]:
        yt, pp = y[idx], proba[idx]
        out: dict[str, float | None] = dict(metrics_from_confusion(confusion(yt, labels(pp), k)))
        out.update(score_metrics(yt, pp, k))
        out["ece"] = expected_calibration_error(yt, pp, ECE_BINS)
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
    reporter: Reporter = SILENT,
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
            reporter.warning(f"test classes never seen in training (always wrong): {unseen}")
        res = evaluate(y[te], _proba(model, X[te], k), names, seed, n_boot)
        res.update(protocol="train/test split", n=int(te.sum()), n_train=int(tr.sum()), cv=[cv])
        return res
    if split is not None:
        reporter.warning("the split does not hold both train and test rows: using nested cross-validation")
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


@dataclass
class _Features:
    """Features to probe, their labels (class names) and split, where they came from, rows that failed."""

    X: np.ndarray
    labels: list[str]
    split: np.ndarray | None
    prov: dict[str, Any]
    failed: int


def run(config: ProbeConfig, reporter: Reporter | None = None) -> StageResult:
    """Features (from the model or a file), the probe, ``config.out``. ConfigError or StageError (exit 2) when the
    benchmark, inputs or data cannot be used (too few samples of a class included); StageError (1) when the
    model fails as a whole."""
    from ..taxonomy import TaxonomyError, load_taxonomy

    reporter = reporter or SILENT
    if config.out is None:
        raise ConfigError("--out RESULTS.json is required")
    if (config.features is None) == (config.model.spec is None):
        raise ConfigError("give exactly one of --model SPEC and --features FILE.npz")
    problems = Problems(reporter)
    try:
        taxonomy = load_taxonomy(config.benchmark)
        if config.features is not None:
            feats = _file_features(config.features, taxonomy, problems)
        else:
            feats = _model_features(config, taxonomy, problems, reporter)
        present = set(feats.labels)
        names = [c for c in taxonomy.class_names() if c in present]
        code = {c: i for i, c in enumerate(names)}
        y = np.array([code[lab] for lab in feats.labels], dtype=np.int64)
        res = _fit(config, feats, y, names, reporter)
    except (TaxonomyError, ValueError, OSError) as e:
        raise StageError("", str(e), exit_code=2) from None
    except RuntimeError as e:
        raise StageError("", str(e)) from None
    cs = ",".join(f"{c['C']:.3g}" for c in res["cv"])
    signature = (
        f"probe|compat:{config.compat}|features:{feats.prov.get('features', 'file')}|{res['protocol']}|"
        f"C:{cs}|seed:{config.seed}"
    )
    results = {
        "task": "probe",
        "benchmark": taxonomy.name,
        "model": feats.prov["model"].get("name") if "model" in feats.prov else f"features:{config.features}",
        **res,
        "signature": {"metrics": signature},
        "errors": feats.failed,
        "provenance": _provenance(config, taxonomy, feats),
    }
    write_results(config.out, results)
    m = results["metrics"]
    auroc = "n/a" if m["auroc"] is None else f"{m['auroc']:.4f}"
    summary = (
        f"probe {results['benchmark']}: n={results['n']} auroc={auroc} accuracy={m['accuracy']:.4f} "
        f"ece={m['ece']:.4f} errors={feats.failed} -> {config.out}"
    )
    counts = {"scored": results["n"], "errors": feats.failed}
    return StageResult(
        "eval probe", counts, problems, summary, {"table": markdown(results), "results": results}
    )


def _fit(config: ProbeConfig, feats: _Features, y: np.ndarray, names: list[str], reporter: Reporter) -> dict:
    """The probe under the configured protocol."""
    common = {"seed": config.seed, "n_boot": config.n_boot, "reporter": reporter}
    if config.compat == "mmskin":
        from .probe_compat import probe_mmskin

        if feats.split is None:
            raise ProbeError(
                "compat mmskin needs a train/test split (--train CSV and --data CSV, or 'split')"
            )
        if not 0 < config.train_fraction <= 1:
            raise ProbeError(f"train_fraction must be in (0, 1] (got {config.train_fraction})")
        return probe_mmskin(feats.X, y, feats.split, names, train_fraction=config.train_fraction, **common)
    return probe_arrays(feats.X, y, feats.split, names, folds=config.folds, **common)


def _provenance(config: ProbeConfig, taxonomy: Any, feats: _Features) -> dict[str, Any]:
    return eval_provenance(
        "probe",
        config,
        (*MODEL_PACKAGES, "scikit-learn"),
        **feats.prov,
        taxonomy={"name": taxonomy.name, "path": getattr(taxonomy, "path", "")},
        probe="StandardScaler + LogisticRegression(lbfgs, L2, max_iter="
        + ("1000, random_state=42)" if config.compat == "mmskin" else "2000)"),
        C_grid=[float(c) for c in C_GRID],
        cv_scoring="macro one-vs-rest AUROC (binary: AUROC)",
        bootstrap={"n_boot": config.n_boot, "interval": INTERVAL},
        ece_bins=ECE_BINS,
        feature_dim=int(feats.X.shape[1]),
    )


def _file_features(path: Path, taxonomy: Any, problems: Problems) -> _Features:
    """A features file's rows whose label is a class of the benchmark (int labels index its classes)."""
    from .features import load_features_file

    names = taxonomy.class_names()
    X, raw, split = load_features_file(path)
    labels: list[str | None] = []
    for v in raw:
        if raw.dtype.kind in "iu":
            labels.append(names[int(v)] if 0 <= int(v) < len(names) else None)
        else:
            labels.append(canonical_label(taxonomy, str(v)))
    bad = [i for i, lab in enumerate(labels) if lab is None]
    for i in bad[:MAX_LISTED]:
        problems.add(path, f"row {i}: label {raw[i]!r} is not a class of {taxonomy.name}")
    if len(bad) > MAX_LISTED:
        problems.add(path, f"{len(bad) - MAX_LISTED} more rows with a label that is not a class")
    keep = np.array([lab is not None for lab in labels], dtype=bool)
    return _Features(
        X[keep],
        [lab for lab in labels if lab is not None],
        None if split is None else split[keep],
        {"features_sha256": sha256_file(path)},
        len(bad),
    )


def _model_features(config: ProbeConfig, taxonomy: Any, problems: Problems, reporter: Reporter) -> _Features:
    """The model's image features of the CSVs' rows (``--train`` rows split train, ``--data`` rows test)."""
    from .adapters import adapter_info
    from .features import extract_features
    from .predict import ReplicaSpec, adapter_for

    if config.data is None or config.images is None:
        raise ValueError("give --data CSV and --images DIR (with --model), or --features FILE.npz")
    rows: list[dict[str, str]] = []
    errors: list[Problem] = []
    shas = []
    pick = random.Random(config.seed)  # the ground truth of a row listing several categories, as the script
    test = "test" if config.train else None
    for path, forced in ((config.train, "train"), (config.val, "val"), (config.data, test)):
        if path is None:
            continue
        r, e = read_classification_csv(path, pick=pick)
        errors.extend(e)
        shas.append(sha256_file(path))
        for row in r[: config.limit] if config.limit is not None else r:
            lab = canonical_label(taxonomy, row["label"])
            if lab is None:
                errors.append(not_a_class(path, row["image"], row["label"], taxonomy))
                continue
            rows.append({**row, "label": lab, **({"split": forced} if forced else {})})
    adapter = adapter_for(config.model, seed=config.seed)
    X, ok, failed, cache = extract_features(
        adapter,
        config.images,
        [r["image"] for r in rows],
        "|".join(shas),
        cache_dir=config.cache_dir,
        batch_size=config.model.batch_size,
        reporter=reporter,
        replicas=ReplicaSpec.of(config.model, seed=config.seed),
    )
    problems.take(errors + failed)
    has_split = all("split" in r for r in rows) and rows
    split = np.array([r["split"] for r in rows])[ok] if has_split else None
    prov = {
        "model": adapter_info(adapter),
        "data_sha256": shas,
        "feature_cache": str(cache),
        "features": FEATURES,
    }
    labels = [r["label"] for r, k in zip(rows, ok, strict=True) if k]
    return _Features(X[ok], labels, split, prov, len(errors) + len(failed))


def markdown(results: dict[str, Any]) -> str:
    ci = results.get("ci95", {})
    rows = [(m, results["metrics"][m], ci.get(m)) for m in PROBE_METRICS]
    cs = ", ".join(f"{c['C']:.0e}" for c in results["cv"])
    head = f"linear probe {results['benchmark']} · {results['model']} · n={results['n']} · {results['protocol']} · C={cs}"
    return head + "\n\n" + markdown_table(rows)
