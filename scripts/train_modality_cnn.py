"""EXPERIMENT (not wired in): a small CNN for modality, trained from scratch on CPU, exported to ONNX for cv2.dnn.

Issue 15, part 1 asked whether a small convolutional network trained from scratch with textbook-style
augmentation beats the shipped two-stage linear model over hand-made features (``scripts/train_modality.py``).
This script answers it with grouped leave-sources-out folds and, with ``--out``, writes an ONNX model that
``cv2.dnn`` runs without torch. The outcome (README, "Modality numbers (issue 15)") was that it did not beat the
linear model clearly enough to ship, so ``mmskin.curate.modality`` does not read its output; the script stays as
the record of what was tried and how to rerun it.

Data: the 675 labelled images of ``labels.csv`` + ``labels_more.csv`` (``train_modality.load_labels``), each
with ``--augment`` copies from ``train_modality.augment`` (crops, page/thumbnail resampling, JPEG 30-95, colour
casts, paper tint, blur, greyscale for some classes, rulers / rings / panel letters drawn on photos), plus
``--synthetic`` matplotlib charts (``train_modality.synthetic_other``). Every image is squashed to ``--size``
pixels square (cv2 INTER_AREA), RGB scaled to [-1, 1]. Training adds random flips and 90-degree turns. Loss is
cross-entropy weighted by ``train_modality.source_weights`` (every class the same total, split equally among its
sources).

Evaluation: the 26 sources are dealt into ``--folds`` groups (sorted by name, round robin; fixed before any
result was seen); each group is held out in turn, a model is trained on the rest, and its predictions on the
held-out originals and their textbook-style copies are scored. No setting was chosen by looking at these scores
(one run, settings fixed in advance).

    PYTHONPATH=/tmp/onnxpkgs .venv/bin/python scripts/train_modality_cnn.py --folds 6 --epochs 12 --threads 1
    PYTHONPATH=/tmp/onnxpkgs .venv/bin/python scripts/train_modality_cnn.py --folds 0 --out /tmp/modality_cnn.onnx

torch (training) and the ``onnx`` package (export only; not in the venv: ``pip install --target /tmp/onnxpkgs
onnx ml_dtypes typing_extensions``) are needed here, neither at runtime.

Result (settings above, seed 0): 6 grouped folds, accuracy 0.760, macro-F1 0.776, copies 0.743, against 0.840 /
0.848 / 0.770 for the linear recipe's leave-one-source-out; chest X-rays 0.05, NCI photos 0.38.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "scripts"))

import train_modality as tm  # noqa: E402

sys.path.insert(0, str(REPO / "benchmarks" / "curate"))
from curate_modality import macro_f1  # noqa: E402

from mmskin.curate.features import load_image  # noqa: E402
from mmskin.curate.modality import CLASSES  # noqa: E402


def squash(img: np.ndarray, size: int) -> np.ndarray:
    """The network input: RGB uint8 resized to size x size (aspect ignored: a chart's shape is kept whole)."""
    import cv2

    h, w = img.shape[:2]
    interp = cv2.INTER_AREA if min(h, w) >= size else cv2.INTER_LINEAR
    return cv2.resize(np.ascontiguousarray(img), (size, size), interpolation=interp)


def image_pool(
    rows: list, n_aug: int, seed: int, n_synth: int, size: int, cache: Path
) -> dict[str, np.ndarray]:
    """Every labelled image and its textbook-style copies at the input size (cached in ``cache``)."""
    key = hashlib.sha256(
        repr([[str(p), c, s] for p, c, s in rows] + [n_aug, seed, n_synth, size]).encode()
        + (REPO / "scripts" / "train_modality.py").read_bytes()
    ).hexdigest()[:16]
    cf = cache / f"modality_cnn_pool_{key}.npz"
    if cf.is_file():
        z = np.load(cf, allow_pickle=False)
        return {k: z[k] for k in z.files}
    X, y, grp, orig = [], [], [], []
    for i, (p, cls, src) in enumerate(rows):
        rng = np.random.default_rng([seed, i])
        img = load_image(p)
        for a in range(n_aug + 1):
            im = img if a == 0 else tm.augment(img, rng, tm.grey_p_for(cls), cls)
            X.append(squash(im, size))
            y.append(CLASSES.index(cls))
            grp.append(src)
            orig.append(a == 0)
    rng = np.random.default_rng([seed, 99991])
    for _ in range(n_synth):
        im = tm.synthetic_other(rng)
        if rng.random() < 0.7:
            im = tm.augment(im, rng, 0.3, "other")
        X.append(squash(im, size))
        y.append(CLASSES.index("other"))
        grp.append("synthetic/other")
        orig.append(False)
    out = {"X": np.stack(X), "y": np.array(y), "group": np.array(grp), "orig": np.array(orig)}
    cache.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(cf, **out)
    return out


def make_net(width: int = 16):
    import torch.nn as nn

    def block(i, o):
        return [nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(), nn.MaxPool2d(2)]

    w = width
    layers = block(3, w) + block(w, 2 * w) + block(2 * w, 4 * w) + block(4 * w, 8 * w)
    layers += [nn.Conv2d(8 * w, 8 * w, 3, padding=1, bias=False), nn.BatchNorm2d(8 * w), nn.ReLU()]
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(8 * w, len(CLASSES))]
    return nn.Sequential(*layers)


def to_tensor(X: np.ndarray):
    import torch

    return torch.from_numpy(X).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def train(X: np.ndarray, y: np.ndarray, w: np.ndarray, args: argparse.Namespace):
    import torch

    torch.manual_seed(args.seed)
    net = make_net(args.width)
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-3)
    n, bs = len(y), 64
    steps = args.epochs * ((n + bs - 1) // bs)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=steps)
    Xt, yt, wt = to_tensor(X), torch.from_numpy(y).long(), torch.from_numpy(w).float()
    g = torch.Generator().manual_seed(args.seed)
    net.train()
    for _ in range(args.epochs):
        perm = torch.randperm(n, generator=g)
        for s in range(0, n, bs):
            idx = perm[s : s + bs]
            xb = Xt[idx]
            if torch.rand(1, generator=g).item() < 0.5:
                xb = xb.flip(3)
            k = int(torch.randint(0, 4, (1,), generator=g).item())
            xb = torch.rot90(xb, k, (2, 3))
            loss = (torch.nn.functional.cross_entropy(net(xb), yt[idx], reduction="none") * wt[idx]).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return net.eval()


def logits(net, X: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return np.concatenate([net(to_tensor(X[i : i + 256])).numpy() for i in range(0, len(X), 256)])


def grouped_folds(args: argparse.Namespace, pool: dict[str, np.ndarray]) -> None:
    X, y, g, o = pool["X"], pool["y"], pool["group"], pool["orig"]
    sources = sorted(set(g[o]))
    fold_of = {s: i % args.folds for i, s in enumerate(sources)}
    pred = np.full(len(y), -1)
    for k in range(args.folds):
        held = np.array([fold_of.get(s, -1) == k for s in g])
        t0 = time.time()
        net = train(X[~held], y[~held], tm.source_weights(y[~held], g[~held]), args)
        pred[held] = logits(net, X[held]).argmax(1)
        acc = (pred[held & o] == y[held & o]).mean()
        print(
            f"  fold {k}: {int((held & o).sum())} held-out images, accuracy {acc:.3f} ({time.time() - t0:.0f} s)"
        )
    aug = (~o) & (g != "synthetic/other")
    print(
        f"grouped folds: {len(sources)} sources in {args.folds} groups, {args.epochs} epochs, size {args.size}"
    )
    for name, sel in (("original images", o), ("textbook-style copies", aug)):
        acc = float((pred[sel] == y[sel]).mean())
        print(
            f"  {name:22s} n={int(sel.sum()):5d}  accuracy {acc:.4f}  macro-F1 {macro_f1(y[sel], pred[sel]):.4f}"
        )
    for s in sources:
        m = o & (g == s)
        print(f"    {s:58s} {CLASSES[y[m][0]]:10s} {(pred[m] == y[m]).mean():.3f} (n={int(m.sum())})")


def export(net, size: int, out: Path, X_check: np.ndarray) -> None:
    """ONNX for cv2.dnn; prints the largest torch vs cv2.dnn logit difference and cv2.dnn images/s."""
    import cv2
    import torch

    buf = io.BytesIO()
    torch.onnx.export(net, torch.zeros(1, 3, size, size), buf, dynamo=False, opset_version=13)
    out.write_bytes(buf.getvalue())
    dnn = cv2.dnn.readNetFromONNX(str(out))
    ref = logits(net, X_check)
    got = []
    t0 = time.time()
    for im in X_check:
        dnn.setInput(cv2.dnn.blobFromImage(im, 1 / 127.5, (size, size), (127.5, 127.5, 127.5), swapRB=False))
        got.append(dnn.forward()[0])
    dt = time.time() - t0
    print(
        f"onnx {out} ({out.stat().st_size} bytes): max |torch - cv2.dnn| {np.abs(np.array(got) - ref).max():.2e}"
    )
    print(f"  cv2.dnn: {len(X_check) / dt:.0f} images/s (network only, {cv2.getNumThreads()} threads)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=tm.DEFAULT_DATA)
    ap.add_argument("--augment", type=int, default=6)
    ap.add_argument("--synthetic", type=int, default=200)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--width", type=int, default=16, help="channels of the first conv (x2, x4, x8 after)")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--folds", type=int, default=6, help="grouped source folds (0: skip the evaluation)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, help="train on everything and write ONNX here")
    ap.add_argument("--cache", type=Path, default=REPO / "benchmarks" / "_work")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    t0 = time.time()
    pool = image_pool(
        tm.load_labels(args.data), args.augment, args.seed, args.synthetic, args.size, args.cache
    )
    print(f"pool: {len(pool['y'])} images at {args.size} px ({time.time() - t0:.0f} s)")
    if args.folds:
        grouped_folds(args, pool)
    if args.out:
        net = train(pool["X"], pool["y"], tm.source_weights(pool["y"], pool["group"]), args)
        export(net, args.size, args.out, pool["X"][:300])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
