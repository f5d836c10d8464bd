"""``mmskin vqa``: MM-Skin-O question-answer generation (imports nothing heavy at import time).

mmskin vqa data/derm                                  # offline template generator
mmskin vqa data/derm --generator openai --base-url http://localhost:11434/v1 --model llama3.1
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EPILOG = """examples:
  mmskin vqa data/derm --per-image 4 --seed 1
  OPENAI_API_KEY=sk-... mmskin vqa data/derm --generator openai \\
      --base-url https://api.openai.com/v1 --model gpt-4o-mini --concurrency 4

writes DATASET/vqa.jsonl (one {id, record_id, image, question, answer, question_type, generator} per line) and
DATASET/vqa_info.json (versions, seed, lexicon/prompt hashes, model, counts per question type, dropped counts
with reasons). Records flagged annotated, sensitive, low_resolution, non_dermatology, duplicate, no_caption or
unreadable_image are skipped unless --include-flagged; a 'review' flag does not exclude a record.
template: offline and deterministic for a seed; answers only use caption facts (dermatology lexicon) and the
record's age/sex/modality. openai: any OpenAI-compatible chat endpoint; key from OPENAI_API_KEY (never logged);
replies cached under DATASET/.cache/vqa-llm/ so a rerun makes no request; ungrounded answers are dropped.
exit status: 0 when every record was read and every request succeeded, 1 otherwise, 2 for bad arguments."""


def _positive_int(s: str) -> int:
    v = int(s)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 (got {s})")
    return v


def _non_negative_int(s: str) -> int:
    v = int(s)
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more (got {s})")
    return v


def _positive_float(s: str) -> float:
    v = float(s)
    if not v > 0:
        raise argparse.ArgumentTypeError(f"must be positive (got {s})")
    return v


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _cmd_vqa(args: argparse.Namespace) -> int:
    from .generate import GenerateConfig, generate
    from .lexicon import LexiconError

    root = Path(args.dataset)
    if not (root / "records.jsonl").is_file():
        _stderr(f"mmskin vqa: {root}: no records.jsonl (not a dataset folder; run `mmskin build` first)")
        return 2
    if args.generator == "openai" and (not args.base_url or not args.model):
        _stderr("mmskin vqa: --generator openai needs --base-url and --model")
        return 2
    cfg = GenerateConfig(
        dataset=root,
        generator=args.generator,
        per_image=args.per_image,
        seed=args.seed,
        include_flagged=args.include_flagged,
        progress=not args.quiet,
        base_url=args.base_url,
        model=args.model,
        concurrency=args.concurrency,
        timeout=args.timeout,
        max_retries=args.max_retries,
        retry_base=args.retry_base,
        lexicon_path=args.lexicon,
        templates_path=args.templates,
        prompt_path=args.prompt,
    )
    try:
        result = generate(
            cfg, on_error=lambda m: _stderr(f"error: {m}"), on_warning=lambda m: _stderr(f"warning: {m}")
        )
    except (LexiconError, ValueError) as e:
        _stderr(f"mmskin vqa: {e}")
        return 2
    print(result.summary_line(root / "vqa.jsonl"), flush=True)
    return 0 if result.ok else 1


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``vqa`` to the ``mmskin`` parser."""
    p = sub.add_parser(
        "vqa",
        help="generate open VQA samples (MM-Skin-O) from the captions: offline templates or an OpenAI-compatible LLM",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "dataset", metavar="DATASET", help="dataset folder with records.jsonl (from mmskin build/curate)"
    )
    p.add_argument(
        "--generator", choices=("template", "openai"), default="template", help="default: template (offline)"
    )
    p.add_argument(
        "--per-image",
        type=_non_negative_int,
        default=None,
        metavar="K",
        help="at most K samples per image (seeded choice among question types; default: all available)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed for phrasings and the per-image choice")
    p.add_argument("--include-flagged", action="store_true", help="also use records with excluding flags")
    llm = p.add_argument_group("openai generator")
    llm.add_argument(
        "--base-url", metavar="URL", help="OpenAI-compatible API base, e.g. http://localhost:8000/v1"
    )
    llm.add_argument("--model", metavar="NAME", help="model name the server knows")
    llm.add_argument("--concurrency", type=_positive_int, default=4, help="parallel requests (default 4)")
    llm.add_argument("--timeout", type=_positive_float, default=60.0, help="seconds per request (default 60)")
    llm.add_argument(
        "--max-retries", type=_non_negative_int, default=4, help="retries on 429/5xx/timeouts (default 4)"
    )
    llm.add_argument(
        "--retry-base",
        type=_positive_float,
        default=1.0,
        metavar="S",
        help="seconds before the first retry, doubled each time, with jitter (default 1)",
    )
    llm.add_argument("--prompt", type=Path, default=None, help="prompt YAML (default: the bundled openai-v1)")
    p.add_argument("--lexicon", type=Path, default=None, help="lexicon YAML (default: the bundled one)")
    p.add_argument("--templates", type=Path, default=None, help="templates YAML (default: the bundled one)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_vqa)
