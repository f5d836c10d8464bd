"""Command-line registration of ``convert-public``, ``export`` and ``import`` (imports nothing heavy at import time).

mmskin convert-public HAM10000 HAM10000_metadata.csv --images ham10000/ --out ham_vqa.jsonl
mmskin export data/derm --subset vqa --format llava --out derm_llava.json
mmskin import llava derm_llava.json --out samples.jsonl --image-root data/derm
"""

from __future__ import annotations

import argparse
import sys

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

EPILOG_EXPORT = """examples:
  mmskin export data/derm --subset vqa --format llava --out derm_llava.json      # MM-Skin-O for LLaVA trainers
  mmskin export data/derm --subset captions --format hf --out derm_c.parquet     # MM-Skin-C, images embedded
  mmskin export data/derm --subset demographics --format mmskin-csv --out derm_d.csv

Records flagged annotated, sensitive, low_resolution, non_dermatology, duplicate, no_caption or
unreadable_image are left out unless --include-flagged. Image paths stay relative to DATASET.
Also writes OUT.info.json. exit status: 0 when every row was exported, 1 otherwise, 2 on bad input."""

EPILOG_IMPORT = """examples:
  mmskin import llava vqa_PubMM.json --out pubmm.jsonl --image-root /data/skin   # MM-Skin's training JSON
  mmskin import mmskin-csv MM-Skin_test.csv --out mmskin_test.jsonl --image-root MM-Skin/images
  mmskin import hf derm_c.parquet --out samples.jsonl --image-root data/derm

Writes VQA samples {id, record_id, image, question, answer, question_type, generator} usable by
mmskin train / mmskin eval, and OUT.info.json. Malformed items give one error line each; the rest are kept.
exit status: 0 when every item was imported, 1 otherwise, 2 when the file cannot be read."""


def _err(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _cmd_convert(args: argparse.Namespace) -> int:
    from ..taxonomy import TaxonomyError
    from .public import ConvertError, convert_public

    try:
        report = convert_public(
            args.name,
            args.metadata,
            args.images,
            args.out,
            fmt=args.format,
            seed=args.seed,
            join=args.join,
            exclude=args.exclude or (),
            max_choices=args.max_choices,
            verify_images=args.verify_images,
            progress=not args.quiet,
            on_message=lambda m: _err(("error: " if "not found under" not in m else "missing: ") + m),
        )
    except (ConvertError, TaxonomyError) as e:
        _err(f"mmskin convert-public: {e}")
        return 2
    print(report.line())
    failed = bool(report.errors) or (bool(report.missing) and not args.allow_missing)
    return 1 if failed else 0


def _cmd_export(args: argparse.Namespace) -> int:
    from .export import ExportError, export_dataset

    try:
        report = export_dataset(
            args.dataset,
            args.format,
            args.subset,
            args.out,
            seed=args.seed,
            include_flagged=args.include_flagged,
            progress=not args.quiet,
        )
    except ExportError as e:
        _err(f"mmskin export: {e}")
        return 2
    _print_problems(report)
    print(report.line())
    return 1 if report.errors or report.missing else 0


def _cmd_import(args: argparse.Namespace) -> int:
    from .export import ExportError, import_samples

    try:
        report = import_samples(args.format, args.path, args.out, image_root=args.image_root)
    except ExportError as e:
        _err(f"mmskin import: {e}")
        return 2
    _print_problems(report)
    print(report.line())
    return 1 if report.errors or report.missing else 0


def _print_problems(report, limit: int = 20) -> None:
    for m in report.errors[:limit]:
        _err(f"error: {m}")
    if len(report.errors) > limit:
        _err(f"... and {len(report.errors) - limit} more errors")
    for m in report.missing[:limit]:
        _err(f"missing: {m}")
    if len(report.missing) > limit:
        _err(f"... and {len(report.missing) - limit} more missing images")


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``convert-public``, ``export`` and ``import`` to the ``mmskin`` parser."""
    c = sub.add_parser(
        "convert-public",
        help="turn a public classification dataset (HAM10000, ISIC, DDI, ...) into VQA samples",
        epilog=EPILOG_CONVERT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    c.add_argument("name", metavar="NAME", help="taxonomy name or YAML file")
    c.add_argument(
        "metadata", metavar="METADATA", help="official metadata CSV, MM-Skin test CSV, or class folders"
    )
    c.add_argument(
        "--images", required=True, metavar="DIR", help="image folder; output paths are relative to it"
    )
    c.add_argument(
        "--out", required=True, metavar="PATH", help="output file (.jsonl for vqa, .json for llava)"
    )
    c.add_argument("--format", default="vqa", choices=("vqa", "llava"), help="output format (default: vqa)")
    c.add_argument("--seed", type=int, default=0, help="seed of the phrasing choices (default: 0)")
    c.add_argument(
        "--join", metavar="CSV", help="second metadata CSV merged on the taxonomy's key (SCIN labels)"
    )
    c.add_argument(
        "--exclude",
        action="append",
        metavar="CSV",
        help="leave out images listed in this CSV (e.g. MM-Skin's test split, to build a training set); repeatable",
    )
    c.add_argument(
        "--max-choices",
        type=int,
        default=0,
        help="cap the class list of choice questions (default: all classes)",
    )
    c.add_argument("--verify-images", action="store_true", help="open every image and refuse unreadable ones")
    c.add_argument(
        "--allow-missing", action="store_true", help="missing images do not make the exit status 1"
    )
    c.add_argument("--quiet", action="store_true", help="no progress bar")
    c.set_defaults(func=_cmd_convert)

    e = sub.add_parser(
        "export",
        help="export captions / demographics / VQA of a dataset as HF parquet, LLaVA JSON or MM-Skin CSV",
        epilog=EPILOG_EXPORT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    e.add_argument("dataset", metavar="DATASET", help="dataset folder (records.jsonl, images/, vqa.jsonl)")
    e.add_argument("--format", required=True, choices=("hf", "llava", "mmskin-csv"), help="output format")
    e.add_argument(
        "--subset",
        default="vqa",
        choices=("captions", "demographics", "vqa"),
        help="MM-Skin-C captions, MM-Skin-D demographics, MM-Skin-O vqa (default: vqa)",
    )
    e.add_argument("--out", required=True, metavar="PATH", help="output file")
    e.add_argument("--seed", type=int, default=0, help="seed of the instruction phrasings (default: 0)")
    e.add_argument("--include-flagged", action="store_true", help="also export records with excluding flags")
    e.add_argument("--quiet", action="store_true", help="no progress display")
    e.set_defaults(func=_cmd_export)

    i = sub.add_parser(
        "import",
        help="read LLaVA JSON, MM-Skin CSV or HF parquet back into VQA samples",
        epilog=EPILOG_IMPORT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    i.add_argument(
        "format", metavar="FORMAT", choices=("llava", "mmskin-csv", "hf"), help="llava, mmskin-csv or hf"
    )
    i.add_argument("path", metavar="PATH", help="file to import")
    i.add_argument("--out", required=True, metavar="VQA.jsonl", help="output VQA samples (JSONL)")
    i.add_argument(
        "--image-root",
        metavar="DIR",
        help="folder the image paths are relative to: checked to exist; hf images without a file are written here",
    )
    i.set_defaults(func=_cmd_import)
