"""Composite splitting on synthetic grids of real photos: how often ``split_composite`` finds exactly the panels.

Each composite is built from real clinical, histology and dermoscopy images of ``../shared/data/images``: grids
2x2, 3x4, 1x3 and 2x3 (and uneven: the last row one panel short), gutters of 4, 8 and 13 px in white, black, grey
and blue, panels plain or with a 2 px frame, and (the hard case) every other panel a lesion on a white
background. A composite counts as split exactly when there are k cells and each overlaps a true panel with IoU
> 0.9. Seeded, so two runs give the same numbers.

    .venv/bin/python benchmarks/pdf/composites.py
"""

from __future__ import annotations

import argparse
import itertools
import random
import sys
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, for _common
from _common import add_data_argument, add_out_argument, save_results  # noqa: E402

from mmskin.pdf.panels import split_composite  # noqa: E402


def iou(a, b) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    u = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - ix * iy
    return ix * iy / u if u else 0.0


def make(rng, pool, rows, cols, cw, ch, gut, colour, frame, white_bg, uneven):
    """The composite (array) and its true panel boxes."""
    W, H = cols * cw + (cols - 1) * gut, rows * ch + (rows - 1) * gut
    im = Image.new("RGB", (W, H), colour)
    d = ImageDraw.Draw(im)
    truth = []
    for r in range(rows):
        ncol = cols - 1 if uneven and r == rows - 1 else cols
        w = (W - (ncol - 1) * gut) // ncol if ncol != cols else cw
        for c in range(ncol):
            x0, y0 = c * (w + gut), r * (ch + gut)
            p = Image.open(rng.choice(pool)).convert("RGB").resize((w, ch))
            if white_bg and (r + c) % 2 == 0:
                p = Image.new("RGB", (w, ch), (255, 255, 255))
                ImageDraw.Draw(p).ellipse([w * 0.2, ch * 0.25, w * 0.7, ch * 0.8], fill=(230, 170, 200))
            im.paste(p, (x0, y0))
            if frame:
                d.rectangle([x0, y0, x0 + w - 1, y0 + ch - 1], outline=(0, 0, 0), width=frame)
            truth.append((x0, y0, x0 + w, y0 + ch))
    return np.asarray(im), truth


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_argument(ap)
    ap.add_argument("--seed", type=int, default=0)
    add_out_argument(ap, "pdf", "composites")
    args = ap.parse_args(argv)
    img = args.data / "images"
    pool = sorted((img / "clinical" / "nci_nevus_recognition").glob("*.jpg"))[:30]
    pool += (
        sorted(img.glob("histopathology/**/*.jp*g"))[:20]
        + sorted((img / "dermoscopy" / "ham10000").glob("*.jpg"))[:20]
    )
    if not pool:
        print(f"no images under {img}")
        return 1
    rng = random.Random(args.seed)
    grids, gutters = [(2, 2), (3, 4), (1, 3), (2, 3)], [4, 8, 13]
    colours = {"white": (255, 255, 255), "black": (0, 0, 0), "grey": (200, 200, 200), "blue": (40, 90, 160)}
    exact: Counter = Counter()
    total: Counter = Counter()
    for (rows, cols), gut, cname, frame, white_bg, uneven in itertools.product(
        grids, gutters, colours, (0, 2), (False, True), (False, True)
    ):
        if uneven and rows == 1:
            continue
        arr, truth = make(
            rng, pool, rows, cols, 300 if cols < 4 else 220, 240, gut, colours[cname], frame, white_bg, uneven
        )
        cells = split_composite(arr, len(truth))
        ok = cells is not None and len(cells) == len(truth)
        ok = ok and all(max(iou(c, t) for t in truth) > 0.9 for c in cells)
        for key in (
            "all",
            f"gutter {cname}",
            f"gutter {gut}px",
            "framed" if frame else "plain",
            "white-background panels" if white_bg else "photo panels",
            "uneven" if uneven else "regular",
        ):
            total[key] += 1
            exact[key] += ok
    for key in total:
        print(f"{key:26} {exact[key]:4d} / {total[key]:4d}  ({exact[key] / total[key]:.3f})")
    save_results("pdf", "composites", {"exact": dict(exact), "total": dict(total)}, args, out=args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
