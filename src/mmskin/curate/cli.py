"""Command-line registration for this stage (imports nothing heavy at import time).

mmskin curate data/derm --workers 2
mmskin review data/derm --out review/
mmskin curate data/derm --corrections review/corrections.csv
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .flags import CURATE_FLAGS

EPILOG_CURATE = f"""example:
  mmskin curate data/derm --workers 2 --seed 0 --split-ratios 0.8,0.1,0.1
  mmskin curate data/derm --corrections review/corrections.csv

fills, in DATASET/records.jsonl (rewritten atomically; no record is ever deleted): the cleaned caption
(caption_uncleaned keeps the text before cleaning), modality + modality_score + modality_evidence, age, age_group,
sex, flags with flag_reasons, duplicate_of and split; writes DATASET/curate_info.json (provenance, config, seed,
weights hash, counts). Human corrections live in DATASET/corrections.jsonl (a build never touches it; `mmskin
review --serve` writes every decision to it at once) and are applied on every run; --corrections CSV adds a file
with header 'id,modality[,exclude,caption]' (modality, exclude yes/no, an edited caption) to it. A rerun gives a
byte-identical records.jsonl. One writer per dataset: a build or curate already writing it is waited for.
curate's flags (recomputed on every run): {", ".join(CURATE_FLAGS)}.
exit status: 0 when nothing failed, 1 when an image, a corrections line or the records file failed, 2 when the
corrections file is missing."""

EPILOG_REVIEW = """example:
  mmskin review data/derm --serve            # web app on http://127.0.0.1:8765/; decisions -> data/derm/corrections.jsonl
  mmskin curate data/derm                    # applies data/derm/corrections.jsonl (on every run)
  mmskin review data/derm --out review/      # static contact sheets + a corrections template instead

web app keys: 1-4 modality (clinical, dermoscopy, pathology, other), x exclude, i include, 0 clear, e edit the
caption (Ctrl+Enter saves, Esc cancels), u undo, j/k or arrows to move. Every decision is saved at once."""


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


def _run(run: Callable[..., Any], config: Any, quiet: bool) -> int:
    """Run a stage with a console reporter; a stage that cannot run at all prints its one line."""
    from ..console import ConsoleReporter, finish, stderr
    from ..stage import StageError

    try:
        return finish(run(config, ConsoleReporter(quiet=quiet)))
    except StageError as e:
        stderr(f"error: {e}")
        return e.exit_code


def _cmd_curate(args: argparse.Namespace) -> int:
    from ..config import from_args
    from ..console import stderr
    from .pipeline import CurateConfig, run

    if args.corrections is not None and not args.corrections.is_file():
        stderr(f"error: {args.corrections}: corrections file not found")
        return 2
    return _run(run, from_args(CurateConfig, args, dataset=Path(args.dataset)), args.quiet)


def _cmd_review(args: argparse.Namespace) -> int:
    from ..config import from_args
    from ..console import stderr
    from .review import ReviewConfig, run

    if not args.serve and args.out is None:
        stderr("error: mmskin review needs --out DIR (contact sheets) or --serve (web app)")
        return 2
    return _run(run, from_args(ReviewConfig, args, dataset=Path(args.dataset)), quiet=True)


def register(sub: argparse._SubParsersAction) -> None:
    """Add this stage's sub-commands to the mmskin parser (the config dataclasses declare their options)."""
    from ..config import add_arguments
    from .pipeline import CurateConfig
    from .review import ReviewConfig

    c = sub.add_parser(
        "curate",
        help="modality, cleaned captions, demographics, filters, near-duplicates and splits",
        epilog=EPILOG_CURATE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    c.add_argument("dataset", metavar="DATASET", help="dataset folder made by mmskin build")
    add_arguments(c, CurateConfig)  # --corrections, --workers, --seed
    c.add_argument(
        "--split-ratios",
        dest="ratios",
        type=_ratios,
        default=(0.8, 0.1, 0.1),
        metavar="T,V,E",
        help="train,val,test (default 0.8,0.1,0.1)",
    )
    c.add_argument("--quiet", action="store_true", help="no progress bar")
    c.set_defaults(func=_cmd_curate)

    r = sub.add_parser(
        "review",
        help="the review web app (--serve), or HTML contact sheets per modality and a corrections template",
        epilog=EPILOG_REVIEW,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    r.add_argument("dataset", metavar="DATASET", help="a curated dataset folder")
    add_arguments(r, ReviewConfig)  # --out, --serve, --host, --port, --corrections
    r.set_defaults(func=_cmd_review)
