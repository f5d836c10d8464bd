"""``mmskin vqa``: MM-Skin-O question-answer generation (:func:`mmskin.vqa.generate.run`).

mmskin vqa data/derm                                  # offline template generator
mmskin vqa data/derm --generator openai --base-url http://localhost:11434/v1 --model llama3.1
"""

from __future__ import annotations

import argparse

from ..config import add_arguments, from_args
from .cli import EXCLUDING_WORDS, ProblemLines, positional, run_command

EPILOG = f"""examples:
  mmskin vqa data/derm --per-image 4 --seed 1
  OPENAI_API_KEY=sk-... mmskin vqa data/derm --generator openai \\
      --base-url https://api.openai.com/v1 --model gpt-4o-mini --concurrency 4

writes DATASET/vqa.jsonl (one {{id, record_id, image, question, answer, question_type, generator}} per line) and
DATASET/vqa_info.json (provenance, seed, lexicon/prompt hashes, model, counts per question type, dropped counts
with reasons). Records flagged
{EXCLUDING_WORDS} are skipped unless --include-flagged; a 'review' flag does not exclude a record.
template: offline and deterministic for a seed; answers only use caption facts (dermatology lexicon) and the
record's age/sex/modality. openai: any OpenAI-compatible chat endpoint; key from OPENAI_API_KEY (never logged);
replies cached under DATASET/.cache/vqa-llm/ so a rerun makes no request; ungrounded answers are dropped.
exit status: 0 when every record was read and every request succeeded, 1 otherwise, 2 for bad arguments."""

OPENAI_OPTIONS = ("base_url", "model", "concurrency", "timeout", "max_retries", "retry_base", "prompt")


def _cmd_vqa(args: argparse.Namespace) -> int:
    from .generate import VQAConfig, run

    return run_command("vqa", lambda: from_args(VQAConfig, args), run, ProblemLines(args.quiet))


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``vqa`` to the ``mmskin`` parser."""
    from dataclasses import fields

    from .generate import VQAConfig

    p = sub.add_parser(
        "vqa",
        help="generate open VQA samples (MM-Skin-O) from the captions: offline templates or an OpenAI-compatible LLM",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    positional(p, VQAConfig, "dataset", "DATASET")
    add_arguments(p, VQAConfig, skip=OPENAI_OPTIONS)
    others = tuple(f.name for f in fields(VQAConfig) if f.name not in OPENAI_OPTIONS)
    add_arguments(p.add_argument_group("openai generator"), VQAConfig, skip=others)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_vqa)
