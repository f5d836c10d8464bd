"""Command-line registration for this stage (imports nothing heavy at import time).

mmskin curate data/derm --workers 2
mmskin review data/derm --out review/
mmskin curate data/derm --corrections review/corrections.csv
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EPILOG_CURATE = """example:
  mmskin curate data/derm --workers 2 --seed 0 --split-ratios 0.8,0.1,0.1
  mmskin curate data/derm --corrections review/corrections.csv

fills, in DATASET/records.jsonl (rewritten atomically; no record is ever deleted): the cleaned caption
(caption_uncleaned keeps the text before cleaning), modality + modality_score + modality_evidence, age, age_group,
sex, flags with flag_reasons (annotated, sensitive, low_resolution, non_dermatology, no_caption, duplicate,
review, unreadable_image), duplicate_of and split; writes DATASET/curate_info.json (versions, config, seed,
weights hash, counts). --corrections takes a CSV with header 'id,modality'; a corrected record keeps its
modality on later runs. A rerun gives a byte-identical records.jsonl.
exit status: 0 when nothing failed, 1 when an image, a corrections line or the records file failed."""

EPILOG_REVIEW = """example:
  mmskin review data/derm --out review/
  # look at review/index.html, edit review/corrections.csv, then:
  mmskin curate data/derm --corrections review/corrections.csv"""


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _ratios(text: str) -> tuple[float, float, float]:
    try:
        parts = tuple(float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--split-ratios must be three numbers like 0.8,0.1,0.1 (got {text!r})"
        ) from None
    if len(parts) != 3 or any(p < 0 for p in parts) or sum(parts) <= 0:
        raise argparse.ArgumentTypeError(f"--split-ratios must be three non-negative numbers (got {text!r})")
    return parts  # type: ignore[return-value]


def _cmd_curate(args: argparse.Namespace) -> int:
    from .pipeline import CurateConfig, curate

    if args.corrections is not None and not args.corrections.is_file():
        _stderr(f"error: {args.corrections}: corrections file not found")
        return 2
    cfg = CurateConfig.from_defaults(workers=args.workers, seed=args.seed, ratios=args.split_ratios)
    summary = curate(Path(args.dataset), cfg, corrections=args.corrections, progress=not args.quiet)
    print(summary.line(), flush=True)
    return 1 if summary.errors else 0


def _cmd_review(args: argparse.Namespace) -> int:
    from .review import write_review

    ds = Path(args.dataset)
    if not (ds / "records.jsonl").is_file():
        _stderr(f"error: {ds}: no records.jsonl (not a dataset folder)")
        return 2
    index = write_review(ds, Path(args.out))
    print(f"review: {index}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add this stage's sub-commands to the mmskin parser."""
    c = sub.add_parser(
        "curate",
        help="modality, cleaned captions, demographics, filters, near-duplicates and splits",
        epilog=EPILOG_CURATE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    c.add_argument("dataset", metavar="DATASET", help="dataset folder made by mmskin build")
    c.add_argument(
        "--corrections",
        type=Path,
        default=None,
        metavar="CSV",
        help="human modality corrections (id,modality)",
    )
    c.add_argument(
        "--workers", type=int, default=0, help="worker processes for image work (default: all cores)"
    )
    c.add_argument("--seed", type=int, default=0, help="seed of the train/val/test split (default: 0)")
    c.add_argument(
        "--split-ratios",
        type=_ratios,
        default=(0.8, 0.1, 0.1),
        metavar="T,V,E",
        help="train,val,test (default 0.8,0.1,0.1)",
    )
    c.add_argument("--quiet", action="store_true", help="no progress bar")
    c.set_defaults(func=_cmd_curate)

    r = sub.add_parser(
        "review",
        help="HTML contact sheets per modality for the manual check, and a corrections template",
        epilog=EPILOG_REVIEW,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    r.add_argument("dataset", metavar="DATASET", help="a curated dataset folder")
    r.add_argument(
        "--out", required=True, type=Path, metavar="DIR", help="folder for index.html and the sheets"
    )
    r.set_defaults(func=_cmd_review)
