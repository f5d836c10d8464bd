"""Command-line registration of ``convert-public``, ``export`` and ``import`` (:mod:`mmskin.vqa.public`,
:mod:`mmskin.vqa.export`, :mod:`mmskin.vqa.imports`); imports nothing heavy at import time.

mmskin convert-public HAM10000 HAM10000_metadata.csv --images ham10000/ --out ham_vqa.jsonl
mmskin export data/derm --subset vqa --format llava --out derm_llava.json
mmskin import llava derm_llava.json --out samples.jsonl --image-root data/derm
"""

from __future__ import annotations

import argparse

from ..config import add_arguments, from_args
from .cli import EXCLUDING_WORDS, ProblemLines, positional, run_command

SHOWN = 20  # error and missing-image lines printed before "... and N more"

EPILOG_CONVERT = """examples:
  mmskin convert-public HAM10000 HAM10000_metadata.csv --images ham10000/ --out ham_vqa.jsonl
  mmskin convert-public ISIC ISIC_2019_Training_GroundTruth.csv --join ISIC_2019_Training_Metadata.csv \\
      --images ISIC_2019_Training_Input/ --out isic_llava.json --format llava
  mmskin convert-public Dermnet Dermnet/train --images Dermnet/train --out dermnet.jsonl   # class folders
  mmskin convert-public HAM10000 Dataframe/test/classification/HAM10000_test.csv --images data/ --out test.jsonl
  mmskin convert-public SCIN scin_cases.csv --join scin_labels.csv --images scin/ --out scin.jsonl

NAME: ham10000, isic2019, bcn20000, ddi, ddi-2class, fitzpatrick17k-3class, pad-ufes-20, dermnet, hiba,
hiba-2class, mskcc, patch16, patch16-2class, scin (case-insensitive; MM-Skin's experiment names such as ISIC,
PAD, Fitzpatrick, DDI_2class work too), or a taxonomy YAML file.
METADATA: the dataset's official metadata CSV, MM-Skin's test CSV (image,atributes,categories), or a folder
with one sub-folder per class. Writes OUT (VQA samples JSONL, or LLaVA JSON) and OUT.info.json.
exit status: 0 when every row became samples; 1 when rows failed or images were missing (unless
--allow-missing); 2 when nothing could be converted."""

EPILOG_EXPORT = f"""examples:
  mmskin export data/derm --subset vqa --format llava --out derm_llava.json      # MM-Skin-O for LLaVA trainers
  mmskin export data/derm --subset captions --format hf --out derm_c.parquet     # MM-Skin-C, images embedded
  mmskin export data/derm --subset demographics --format mmskin-csv --out derm_d.csv

Records flagged
{EXCLUDING_WORDS} are left out unless --include-flagged. Image paths stay relative to DATASET.
Also writes OUT.info.json. exit status: 0 when every row was exported, 1 otherwise, 2 on bad input."""

EPILOG_IMPORT = """examples:
  mmskin import llava vqa_PubMM.json --out pubmm.jsonl --image-root /data/skin   # MM-Skin's training JSON
  mmskin import mmskin-csv MM-Skin_test.csv --out mmskin_test.jsonl --image-root MM-Skin/images
  mmskin import hf derm_c.parquet --out samples.jsonl --image-root data/derm

Writes VQA samples {id, record_id, image, question, answer, question_type, generator} usable by
mmskin train / mmskin eval, and OUT.info.json. Malformed items give one error line each; the rest are kept.
exit status: 0 when every item was imported, 1 otherwise, 2 when the file cannot be read."""


def _cmd_convert(args: argparse.Namespace) -> int:
    from .public import ConvertConfig, run

    def config() -> ConvertConfig:
        return from_args(ConvertConfig, args, exclude=args.exclude or [])

    return run_command("convert-public", config, run, ProblemLines(args.quiet, {"missing": SHOWN}))


def _cmd_export(args: argparse.Namespace) -> int:
    from .export import ExportConfig, run

    limits = {"error": SHOWN, "missing": SHOWN}
    return run_command("export", lambda: from_args(ExportConfig, args), run, ProblemLines(args.quiet, limits))


def _cmd_import(args: argparse.Namespace) -> int:
    from .imports import ImportConfig, run

    limits = {"error": SHOWN, "missing": SHOWN}
    return run_command("import", lambda: from_args(ImportConfig, args), run, ProblemLines(True, limits))


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``convert-public``, ``export`` and ``import`` to the ``mmskin`` parser."""
    from .export import ExportConfig
    from .imports import ImportConfig
    from .public import ConvertConfig

    c = sub.add_parser(
        "convert-public",
        help="turn a public classification dataset (HAM10000, ISIC, DDI, ...) into VQA samples",
        epilog=EPILOG_CONVERT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    positional(c, ConvertConfig, "name", "NAME")
    positional(c, ConvertConfig, "metadata", "METADATA")
    add_arguments(c, ConvertConfig, skip=("exclude",))
    c.add_argument("--exclude", action="append", metavar="CSV", help=_help(ConvertConfig, "exclude"))
    c.add_argument("--quiet", action="store_true", help="no progress bar")
    c.set_defaults(func=_cmd_convert)

    e = sub.add_parser(
        "export",
        help="export captions / demographics / VQA of a dataset as HF parquet, LLaVA JSON or MM-Skin CSV",
        epilog=EPILOG_EXPORT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    positional(e, ExportConfig, "dataset", "DATASET")
    add_arguments(e, ExportConfig)
    e.add_argument("--quiet", action="store_true", help="no progress display")
    e.set_defaults(func=_cmd_export)

    i = sub.add_parser(
        "import",
        help="read LLaVA JSON, MM-Skin CSV or HF parquet back into VQA samples",
        epilog=EPILOG_IMPORT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    positional(i, ImportConfig, "format", "FORMAT")
    positional(i, ImportConfig, "path", "PATH")
    add_arguments(i, ImportConfig)
    i.set_defaults(func=_cmd_import)


def _help(cls: type, name: str) -> str:
    from dataclasses import fields

    return next(f.metadata["help"] for f in fields(cls) if f.name == name)
