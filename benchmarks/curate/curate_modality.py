"""Benchmark the modality classifier with leave-one-source-out validation on the labelled dev images.

A source is the folder an image is in (``images/dermoscopy/ham10000``, ...). For each source, the model is fitted
exactly as ``scripts/train_modality.py`` fits it (same features, augmentation, synthetic charts, the two
linear stages) on every other source, and scored on the held-out one's original images and on its
textbook-style reproductions (augmented copies, never seen in training). Reports accuracy, macro-F1, the
per-class confusion matrix and per-source accuracy. Then image-only vs fused with captions on the NCI photos that
have real expert descriptions (``image_captions.csv``), with the fold model that never saw the NCI source.

    .venv/bin/python benchmarks/curate/curate_modality.py              # targets: accuracy >= 0.97, macro-F1 >= 0.95
    .venv/bin/python benchmarks/curate/curate_modality.py --augment 4  # faster, fewer training copies
    .venv/bin/python benchmarks/curate/curate_modality.py --no-resolution  # skip the thumbnail / 2x resize check
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, for _common
from _common import REPO, WORK, add_data_argument, save_printed  # noqa: E402

sys.path.insert(0, str(REPO / "scripts"))
import train_modality as tm  # noqa: E402

from mmskin.curate.features import FEATURE_NAMES  # noqa: E402
from mmskin.curate.modality import CLASSES, ModalityModel, load_cues  # noqa: E402
from mmskin.resources import load_yaml  # noqa: E402


def macro_f1(y: np.ndarray, p: np.ndarray) -> float:
    f = []
    for c in range(len(CLASSES)):
        tp = ((p == c) & (y == c)).sum()
        fp = ((p == c) & (y != c)).sum()
        fn = ((p != c) & (y == c)).sum()
        f.append(2 * tp / max(1, 2 * tp + fp + fn))
    return float(np.mean(f))


def confusion(y: np.ndarray, p: np.ndarray) -> str:
    w = max(len(c) for c in CLASSES) + 2
    lines = [" " * w + "".join(f"{c[:10]:>12s}" for c in CLASSES) + "   (rows: truth, columns: predicted)"]
    for i, c in enumerate(CLASSES):
        lines.append(
            f"{c:<{w}s}" + "".join(f"{int(((y == i) & (p == j)).sum()):12d}" for j in range(len(CLASSES)))
        )
    return "\n".join(lines)


def loso(args: argparse.Namespace) -> None:
    rows = tm.load_labels(args.data)
    t0 = time.time()
    tab = tm.feature_table(rows, args.augment, args.seed, args.synthetic, args.cache)
    X, y, g, o = tab["X"], tab["y"], tab["group"], tab["orig"]
    print(f"features: {len(rows)} labelled images, {len(y)} rows with copies ({time.time() - t0:.1f} s)")
    pred = np.full(len(y), -1)
    top = np.zeros(len(y))  # the held-out probability of the predicted class
    held_logits: dict[str, np.ndarray] = {}
    fold_models = {}
    for src in sorted(set(g[o])):
        tr = g != src
        m = fold_models[src] = tm.fit(X[tr], y[tr], g[tr], args.C, args.seed, args.C2)
        te = g == src
        z = tm.predict_logits(m, X[te])
        pred[te] = z.argmax(1)
        top[te] = np.exp(z.max(1)) / np.exp(z).sum(1)
        for f, zz, oo in zip(tab["files"][te], z, o[te]):
            if oo:
                held_logits[str(f)] = zz
    aug = (~o) & (g != "synthetic/other")
    print(
        f"leave-one-source-out, {len(set(g[o]))} sources, C={args.C}, C2={args.C2}, {args.augment} copies/image, "
        f"seed {args.seed}"
    )
    for name, sel in (("original images", o), ("textbook-style copies", aug)):
        acc = float((pred[sel] == y[sel]).mean())
        print(
            f"  {name:22s} n={int(sel.sum()):5d}  accuracy {acc:.4f}  macro-F1 {macro_f1(y[sel], pred[sel]):.4f}"
        )
    print(confusion(y[o], pred[o]))
    review_flag(y[o], pred[o], top[o], load_yaml("curate", "config.yaml")["modality"]["review_below"])
    print("  per source (original images):")
    for src in sorted(set(g[o])):
        s = o & (g == src)
        wrong = {CLASSES[k]: int(((pred == k) & s & (pred != y)).sum()) for k in range(len(CLASSES))}
        wrong = {k: v for k, v in wrong.items() if v}
        print(
            f"    {src:58s} {CLASSES[y[s][0]]:10s} {(pred[s] == y[s]).mean():.3f} (n={int(s.sum())}) {wrong or ''}"
        )
    if args.resolution:
        resolution_check(rows, fold_models)
    fusion_heldout(args, tab, held_logits)


def review_flag(y: np.ndarray, pred: np.ndarray, top: np.ndarray, below: float) -> None:
    """The ``review`` flag on held-out images (image only: no caption cue, no figure context): the share of the
    model's errors it catches and the share of records it flags (aim: >= 80% of errors, <= 20% flagged)."""
    wrong, flagged = pred != y, top < below
    caught = (wrong & flagged).sum() / max(1, wrong.sum())
    print(
        f"  review flag (probability < {below}, image only): catches {caught:.3f} of the {int(wrong.sum())} errors, "
        f"flags {flagged.mean():.3f} of {len(y)} images"
    )


def resolution_check(rows: list, fold_models: dict) -> None:
    """The held-out originals again, shrunk to a HAM-like thumbnail (longer side 200) and enlarged 2x: a model
    that keys on a source's resolution changes its answers here."""
    from mmskin.curate.features import image_features, load_image

    print(
        "  resolution robustness (held-out originals, each scored by the fold model that did not see its source):"
    )
    for name, fn in (
        ("as is", lambda im: im),
        ("longer side 200", lambda im: tm_resize(im, 200 / max(im.shape[:2]))),
        ("enlarged 2x", lambda im: tm_resize(im, 2.0)),
    ):
        yy, pp = [], []
        for p, cls, src in rows:
            z = tm.predict_logits(fold_models[src], image_features(fn(load_image(p)))[None, :])[0]
            yy.append(CLASSES.index(cls))
            pp.append(int(np.argmax(z)))
        yy, pp = np.array(yy), np.array(pp)
        print(f"    {name:16s} accuracy {(yy == pp).mean():.4f}  macro-F1 {macro_f1(yy, pp):.4f}")


def tm_resize(img: np.ndarray, s: float) -> np.ndarray:
    import cv2

    h, w = img.shape[:2]
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC
    return cv2.resize(img, (max(8, round(w * s)), max(8, round(h * s))), interpolation=interp)


def fusion_heldout(args: argparse.Namespace, tab: dict, logits: dict[str, np.ndarray]) -> None:
    """Image-only vs fused on the NCI photos with real captions, with the model that did not see that source."""
    cap_csv = args.data / "images" / "clinical" / "nci_nevus_recognition" / "image_captions.csv"
    if not cap_csv.is_file():
        print(f"no captions at {cap_csv}")
        return
    with open(cap_csv, newline="", encoding="utf-8") as f:
        caps = {str(args.data / r["file"]): r["caption"] for r in csv.DictReader(f)}
    m = ModalityModel(
        {
            "mean": np.zeros(len(FEATURE_NAMES)),
            "scale": np.ones(len(FEATURE_NAMES)),
            "coef": np.zeros((4, len(FEATURE_NAMES))),
            "intercept": np.zeros(4),
            "feature_names": np.array(FEATURE_NAMES),
            "classes": np.array(CLASSES),
        },
        load_cues(),
    )
    n = img_ok = fused_ok = with_cues = 0
    for f, z in logits.items():
        if f not in caps:
            continue
        res = m.fuse(z, caps[f])
        n += 1
        img_ok += max(res.image_probs, key=res.image_probs.get) == "clinical"
        fused_ok += res.modality == "clinical"
        with_cues += bool(res.cues)
    if n:
        print(
            f"fusion on {n} NCI photos with their real expert captions (held-out fold, all clinical): image-only "
            f"accuracy {img_ok / n:.4f}, fused {fused_ok / n:.4f} ({with_cues} captions matched a cue)"
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_argument(ap)
    ap.add_argument("--augment", type=int, default=8)
    ap.add_argument("--synthetic", type=int, default=200)
    ap.add_argument("--C", type=float, default=0.03)
    ap.add_argument("--C2", type=float, default=0.001)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-resolution", dest="resolution", action="store_false", help="skip the resize check")
    ap.add_argument("--cache", type=Path, default=WORK)
    a = ap.parse_args(argv)
    if not (a.data / "images" / "labels.csv").is_file():
        print(f"{a.data}/images/labels.csv not found", file=sys.stderr)
        return 1
    return save_printed("curate", "curate_modality", lambda: loso(a), a, packages=["numpy", "pillow"])


if __name__ == "__main__":
    sys.exit(main())
