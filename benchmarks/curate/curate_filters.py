"""Benchmark the curate image filters: near-duplicates and the annotated filter (precision / recall).

Duplicates: every dev image under ``../shared/data/images`` is copied 10 ways (resized 0.5x / 0.75x / 1.5x, JPEG
quality 30 / 60 / 95, cropped up to 3% and up to 5% per side, colour-jittered, and all at once) and must be
found by ``mmskin.curate.dedupe.same_picture`` with the thresholds of ``src/mmskin/data/curate/config.yaml``; no
two distinct dev images may be merged. The NCI photos "with" and "without" overlaid letters (``nci_label_vs_nolabel_pairs``, also present as
DN4A-D in ``nci_nevus_recognition``) are the same photograph, so they count as expected duplicates: curate groups
them and keeps one (the largest; ties go to the smaller id).

Annotated: ``mmskin.curate.filters.annotation_cues`` on
- the 4 label/no-label pairs: the "overlay" cue (printed letters) must fire on the labelled copy and not on the
  unlabelled one (both still show the handwritten number, the ink circle and often a ruler);
- the 84 NCI nevus photos, hand-labelled in ``benchmarks/curate/data/nci_annotation_handlabels.csv`` (a HAND LABEL made
  by looking at each photo: ruler / ink circle / arrow / printed text): recall of the flag and of each cue;
- dermoscopy, histopathology (without the Kriegsmann panels, which carry printed panel letters and are reported
  apart) and the clinical openmedlab samples, where no annotation is present: the false-positive rate.

    .venv/bin/python benchmarks/curate/curate_filters.py            # prints every number
    .venv/bin/python benchmarks/curate/curate_filters.py --sweep    # distance distributions to pick the thresholds
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # benchmarks/, for _common
from _common import add_data_argument, save_printed  # noqa: E402

from mmskin.curate.dedupe import aligned_similarity, hamming, image_hashes, same_picture, thumbnail  # noqa: E402
from mmskin.curate.features import load_image  # noqa: E402
from mmskin.curate.filters import annotation_cues  # noqa: E402
from mmskin.curate.pipeline import CurateConfig, dedupe_thresholds  # noqa: E402

EXTS = (".jpg", ".jpeg", ".png", ".JPG")


def dev_images(data: Path) -> list[Path]:
    return sorted(p for p in (data / "images").rglob("*") if p.suffix in EXTS)


def known_group(p: Path) -> str:
    """Label/no-label pairs and their DN4A-D copies are one photograph."""
    stem = p.stem.replace("_labels", "").replace("_nolabels", "")
    return stem if stem in ("DN4A", "DN4B", "DN4C", "DN4D") else str(p)


def copies(img: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    import cv2

    def jpeg(x, q):
        ok, b = cv2.imencode(".jpg", x[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, q])
        return cv2.imdecode(b, cv2.IMREAD_COLOR)[:, :, ::-1]

    def resize(x, s):
        h, w = x.shape[:2]
        return cv2.resize(x, (max(8, int(w * s)), max(8, int(h * s))), interpolation=cv2.INTER_AREA)

    def crop(x, f):
        h, w = x.shape[:2]
        a = rng.uniform(0, f, 4)
        return x[int(h * a[0]) : h - int(h * a[1]), int(w * a[2]) : w - int(w * a[3])]

    def jitter(x):
        f = x.astype(np.float32) * rng.uniform(0.9, 1.1, 3) + rng.uniform(-12, 12)
        g = f.mean(2, keepdims=True)
        return np.clip(g + (f - g) * rng.uniform(0.8, 1.2), 0, 255).astype(np.uint8)

    return {
        "resize0.5": resize(img, 0.5),
        "resize0.75": resize(img, 0.75),
        "resize1.5": resize(img, 1.5),
        "jpeg30": jpeg(img, 30),
        "jpeg60": jpeg(img, 60),
        "jpeg95": jpeg(img, 95),
        "crop3%": crop(img, 0.03),
        "crop5%": crop(img, 0.05),
        "jitter": jitter(img),
        "all": jpeg(jitter(crop(resize(img, 0.6), 0.03)), 40),
    }


def bench_duplicates(data: Path, cfg: CurateConfig, sweep: bool) -> None:
    t = dedupe_thresholds(cfg)
    files = dev_images(data)
    rng = np.random.default_rng(0)
    hashes, aspects, thumbs = {}, {}, {}
    per: dict[str, list[tuple[int, int, bool]]] = {}
    missed = []
    t0 = time.time()
    for p in files:
        img = load_image(p)
        hashes[p], thumbs[p], aspects[p] = image_hashes(img), thumbnail(img), img.shape[1] / img.shape[0]
        for name, c in copies(img, rng).items():
            hc = image_hashes(c)
            asp_ok = abs(np.log(c.shape[1] / c.shape[0] / aspects[p])) < t.max_log_aspect
            ok = asp_ok and same_picture(hashes[p], hc, thumbs[p], thumbnail(c), t)
            per.setdefault(name, []).append((hamming(hashes[p][0], hc[0]), hamming(hashes[p][1], hc[1]), ok))
            if not ok:
                missed.append((p.name, name))
    total = sum(len(v) for v in per.values())
    found = sum(ok for v in per.values() for *_, ok in v)
    print(
        f"duplicates: {len(files)} dev images x 10 copies; pHash<={t.phash_max} & dHash<={t.dhash_max}, or "
        f"pHash<={t.candidate_phash_max} & dHash<={t.candidate_dhash_max} & aligned similarity>={t.min_similarity}"
    )
    print(f"  copies found: {found}/{total} = {found / total:.4f}   ({time.time() - t0:.1f} s)")
    for name, ds in per.items():
        a = np.array([(x, y) for x, y, _ in ds])
        f = sum(ok for *_, ok in ds)
        print(
            f"    {name:11s} found {f}/{len(ds)}   pHash max {a[:, 0].max():2d}, dHash max {a[:, 1].max():2d}"
        )
    for m in missed[:20]:
        print("    MISSED", *m)
    ids = list(hashes)
    merges, expected, n_same, n_pairs, best = [], 0, 0, 0, []
    for i in range(len(ids)):
        for j in range(i + 1, len(ids)):
            a, b = ids[i], ids[j]
            asp_ok = abs(np.log(aspects[a] / aspects[b])) < t.max_log_aspect
            same = asp_ok and same_picture(hashes[a], hashes[b], thumbs[a], thumbs[b], t)
            if known_group(a) == known_group(b):
                n_same += 1
                expected += same
                continue
            n_pairs += 1
            if same:
                merges.append((a.name, b.name))
            if sweep and hamming(hashes[a][0], hashes[b][0]) <= t.candidate_phash_max:
                best.append((aligned_similarity(thumbs[a], thumbs[b]), a.name, b.name))
    print(f"  distinct pairs: {n_pairs}; false merges: {len(merges)}")
    print(f"  label/no-label copies of one photo (expected duplicates) grouped: {expected}/{n_same}")
    for m in merges[:20]:
        print("    FALSE MERGE", *m)
    if sweep:
        best.sort(reverse=True)
        print("    most similar distinct candidate pairs:", [(round(s, 3), a, b) for s, a, b in best[:5]])


def bench_annotated(data: Path) -> None:
    img_dir = data / "images"
    t0 = time.time()
    n_img = 0

    def cues(p: Path) -> dict[str, str]:
        nonlocal n_img
        n_img += 1
        return annotation_cues(load_image(p))

    # 1. pairs: overlay (printed letters) must separate labelled from unlabelled copies
    pairs = sorted((img_dir / "clinical" / "nci_label_vs_nolabel_pairs").glob("*.jpg"))
    tp = fp = fn = tn = 0
    flag_pairs = []
    for p in pairs:
        c = cues(p)
        pos = p.stem.endswith("_labels")
        hit = "overlay" in c
        tp += pos and hit
        fn += pos and not hit
        fp += (not pos) and hit
        tn += (not pos) and not hit
        flag_pairs.append(bool(c))
    prec = tp / max(1, tp + fp)
    rec = tp / max(1, tp + fn)
    print("annotated filter")
    print(
        f"  label/no-label pairs, printed-letter cue: precision {prec:.3f} recall {rec:.3f} (TP {tp} FP {fp} FN {fn} TN {tn})"
    )
    print(
        f"  label/no-label pairs, annotated flag (any cue; both copies carry ink circle/number/ruler): {sum(flag_pairs)}/{len(pairs)}"
    )

    # 2. NCI nevus photos against the hand labels
    hl = HERE / "data" / "nci_annotation_handlabels.csv"
    with open(hl, encoding="utf-8") as f:
        rows = list(csv.DictReader(line for line in f if not line.startswith("#")))
    flagged = 0
    per = {"ruler": [0, 0, 0], "circle": [0, 0, 0], "arrow_or_printed": [0, 0, 0]}  # tp, fn, fp
    for r in rows:
        c = cues(img_dir / "clinical" / "nci_nevus_recognition" / r["file"])
        flagged += bool(c)
        for key, truth, hit in (
            ("ruler", r["ruler"] == "1", "ruler" in c),
            ("circle", r["circle"] == "1", "marker_circle" in c),
            ("arrow_or_printed", r["arrow"] == "1" or r["printed"] == "1", "overlay" in c),
        ):
            per[key][0] += truth and hit
            per[key][1] += truth and not hit
            per[key][2] += hit and not truth
    print(
        f"  NCI nevus photos (all {len(rows)} annotated by hand label): flag recall {flagged / len(rows):.3f} ({flagged}/{len(rows)})"
    )
    for key, (t, n, f_) in per.items():
        print(
            f"    cue {key:17s} recall {t / max(1, t + n):.3f} ({t}/{t + n}), fires without the hand label on {f_}"
        )

    # 3. false positives where no annotation is present
    groups = {
        "dermoscopy": sorted((img_dir / "dermoscopy").rglob("*")),
        "histopathology (no panel letters)": [
            p for p in sorted((img_dir / "histopathology").rglob("*")) if "kriegsmann" not in str(p)
        ],
        "clinical openmedlab samples": sorted(
            (img_dir / "clinical" / "openmedlab_dataset_samples").glob("*")
        ),
    }
    fp_all = n_all = 0
    for name, ps in groups.items():
        ps = [p for p in ps if p.suffix in EXTS]
        hits = [(p.name, c) for p in ps if (c := cues(p))]
        fp_all += len(hits)
        n_all += len(ps)
        print(f"  false positives, {name}: {len(hits)}/{len(ps)} = {len(hits) / max(1, len(ps)):.3f}")
        for h in hits:
            print("     ", *h)
    print(
        f"  false-positive rate over all annotation-free dev images: {fp_all}/{n_all} = {fp_all / n_all:.3f}"
    )
    tp_flag = flagged + sum(flag_pairs)
    n_pos = len(rows) + len(pairs)
    print(
        f"  annotated flag overall (positives: NCI photos + pairs, negatives: the annotation-free images above): "
        f"precision {tp_flag / max(1, tp_flag + fp_all):.3f} recall {tp_flag / n_pos:.3f} "
        f"(TP {tp_flag}, FP {fp_all}, FN {n_pos - tp_flag})"
    )
    kp = sorted((img_dir / "histopathology" / "kriegsmann2022_skin_tissue_panels").glob("*.png"))
    kh = sum(1 for p in kp if "overlay" in cues(p))
    print(f"  Kriegsmann H&E panels with a printed panel letter: overlay cue fires on {kh}/{len(kp)}")
    print(f"  {n_img / (time.time() - t0):.1f} images/s (annotation cues alone, 1 process)")


def bench(a: argparse.Namespace) -> None:
    cfg = CurateConfig.from_defaults()
    if a.only in (None, "duplicates"):
        bench_duplicates(a.data, cfg, a.sweep)
    if a.only in (None, "annotated"):
        bench_annotated(a.data)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_argument(ap)
    ap.add_argument("--sweep", action="store_true")
    ap.add_argument("--only", choices=["duplicates", "annotated"], default=None)
    a = ap.parse_args(argv)
    if not (a.data / "images").is_dir():
        print(f"{a.data}/images not found", file=sys.stderr)
        return 1
    return save_printed("curate", "curate_filters", lambda: bench(a), a, packages=["numpy", "pillow"])


if __name__ == "__main__":
    sys.exit(main())
