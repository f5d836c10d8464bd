#!/usr/bin/env python
"""Build the tiny random-weight vision-language models used by the tests, the demo and ``tiny-cpu.yaml``.

    python scripts/make_tiny_vlm.py --out tiny-models                 # tiny-models/llava, tiny-models/qwen2_5_vl
    python scripts/make_tiny_vlm.py --kind llava --out tiny-models --seed 1

Random weights: these models answer nonsense. They exist so training, merging and evaluation run end to end
offline in seconds (the habit of trl's ``scripts/generate_tiny_models``). Reuses a folder already built with the
same kind and seed.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from mmskin.models.tiny import TINY_KINDS, build_tiny_vlm

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kind", choices=(*TINY_KINDS, "all"), default="all", help="which model (default: all)")
    p.add_argument("--out", type=Path, required=True, help="parent folder; each model goes to OUT/KIND")
    p.add_argument("--seed", type=int, default=0, help="weight initialisation seed (default: 0)")
    args = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    kinds = TINY_KINDS if args.kind == "all" else (args.kind,)
    for kind in kinds:
        path = build_tiny_vlm(kind, args.out / kind, seed=args.seed)
        print(f"{kind}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
