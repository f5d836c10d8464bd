"""The ``mmskin`` command line.

    mmskin build books/ --out data/derm --workers 2
    mmskin demo

``main(argv)`` returns the exit status, so tests call the CLI in-process.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import sys
from pathlib import Path

from . import __version__
from .config import add_arguments
from .console import stderr
from .resources import data_path, demo_pdf

__all__ = ["demo_pdf", "main", "make_parser"]

EPILOG_BUILD = """example:
  mmskin build books/ atlas.pdf --out data/derm --workers 2 --debug-pages debug/

writes DATASET/records.jsonl (one line per figure or panel), DATASET/images/ (content-addressed),
DATASET/errors.jsonl (files or pages that failed, with the reason). A rerun skips finished files. Adding books
to a curated dataset keeps the curation of its records; the new ones need `mmskin curate` (the summary line
says how many). One writer per dataset: a second build or curate of it waits (--no-wait: stops).
exit status: 0 when every input was read, 1 when any input, file or page failed."""

EPILOG_DEMO = """example:
  mmskin demo --out mmskin-demo

runs the whole path offline on the bundled sample atlas (public-domain NCI photographs, CC BY histology):
build -> curate -> report -> vqa -> export -> train (a tiny random-weight model: a smoke run, not a model)
-> merge -> eval vqa -> report. Each step is printed as the mmskin command that runs it."""


EPILOG_REPORT = """examples:
  mmskin report data/derm --out card/            # dataset card: counts, histograms, gallery per modality
  mmskin report results/*.json --out results/    # eval results: tables per modality and dataset, bar plots"""

# modules with a ``register(subparsers)`` function, one per stage (DESIGN.md: one subpackage per stage)
STAGE_CLIS = ("mmskin.curate.cli", "mmskin.vqa.cli", "mmskin.train.cli", "mmskin.evaluate.cli")


def _cmd_build(args: argparse.Namespace) -> int:
    from .config import from_args
    from .console import finish, run_guarded
    from .pdf.build import BuildConfig, run

    cfg = from_args(BuildConfig, args, inputs=list(args.inputs), out=Path(args.out))
    result = run_guarded("mmskin build", run, cfg, quiet=args.quiet)
    return result if isinstance(result, int) else finish(result)


def _demo_steps(out: Path, pdf: Path, workers: int) -> list[tuple[str, list[str]]]:
    """The whole path on the bundled sample, as the user would type it (each step is one ``mmskin`` command)."""
    smoke = out / "smoke-model"
    return [
        ("build", ["build", str(pdf), "--out", str(out), "--workers", str(workers)]),
        ("curate", ["curate", str(out), "--workers", str(workers)]),
        ("report", ["report", str(out), "--out", str(out / "report")]),
        ("vqa", ["vqa", str(out)]),
        (
            "export",
            [
                "export",
                str(out),
                "--subset",
                "vqa",
                "--format",
                "llava",
                "--out",
                str(out / "exports" / "vqa_llava.json"),
            ],
        ),
        (
            "export",
            [
                "export",
                str(out),
                "--subset",
                "captions",
                "--format",
                "hf",
                "--out",
                str(out / "exports" / "captions.parquet"),
            ],
        ),
        # a smoke run: a tiny random-weight model, a few steps; it proves the path works, it is not a model
        (
            "train",
            [
                "train",
                str(data_path("train", "tiny-cpu.yaml")),
                "--out",
                str(smoke / "adapter"),
                "--set",
                f"data=[{{path: {json.dumps(str(out / 'vqa.jsonl'))}, name: demo VQA}}]",
            ],
        ),
        ("merge", ["merge", str(smoke / "adapter"), "--out", str(smoke / "merged")]),
        (
            "eval",
            [
                "eval",
                "vqa",
                "--data",
                str(out / "vqa.jsonl"),
                "--images",
                str(out),
                "--dataset",
                str(out),
                "--model",
                f"hf:{smoke / 'merged'}",
                "--bertscore-model",
                "minilm",
                "--bootstrap",
                "200",
                "--out",
                str(smoke / "eval_vqa.json"),
            ],
        ),
        ("eval report", ["report", str(smoke / "eval_vqa.json"), "--out", str(smoke / "report")]),
    ]


def _cmd_demo(args: argparse.Namespace) -> int:
    import importlib.util
    import time

    pdf = demo_pdf()
    if not pdf.exists():
        stderr(f"mmskin demo: the bundled sample {pdf} is missing (run scripts/make_demo_pdf.py)")
        return 1
    out = Path(args.out)
    has_torch = importlib.util.find_spec("torch") is not None and importlib.util.find_spec("peft") is not None
    failed: list[str] = []
    t0 = time.perf_counter()
    for name, argv in _demo_steps(out, pdf, workers=1):
        if name in ("train", "merge", "eval", "eval report") and (args.skip_train or not has_torch):
            why = (
                "--skip-train"
                if args.skip_train
                else "torch/peft not installed: pip install 'mmskin[train,eval]'"
            )
            print(f"== demo: {name}: skipped ({why})", flush=True)
            continue
        if name == "train":
            smoke = out / "smoke-model"
            if smoke.exists():  # the demo's own throw-away model: a rerun trains a fresh one
                print(f"== demo: removing the previous smoke run {smoke}", flush=True)
                shutil.rmtree(smoke)
            print(
                "== demo: SMOKE RUN: training a tiny random-weight model for a few steps; its answers and "
                "scores are nonsense by design (they check the pipeline, not a model)",
                flush=True,
            )
        print(f"== demo: mmskin {' '.join(argv)}", flush=True)
        quiet = args.quiet and name not in (
            "report",
            "eval report",
            "merge",
        )  # these draw no progress bar
        rc = main([*argv, "--quiet"] if quiet else argv)
        if rc != 0:
            failed.append(name)
            if name in ("build", "curate", "vqa", "train", "merge"):  # later steps need this one's output
                break
    secs = time.perf_counter() - t0
    status = f"failed at: {', '.join(failed)}" if failed else "all steps passed"
    print(
        f"demo: {status} in {secs:.1f} s -> {out.resolve()}  (dataset card: {out.resolve() / 'report' / 'index.html'})"
    )
    return 1 if failed else 0


def _cmd_report(args: argparse.Namespace) -> int:
    """A dataset folder gives the dataset card, results JSON files the results report."""
    from .console import ConsoleReporter, finish

    first = Path(args.inputs[0])
    if first.is_dir():
        if len(args.inputs) != 1:
            stderr("mmskin report: give one dataset folder, or results JSON files")
            return 2
        if not (first / "records.jsonl").is_file():
            stderr(f"mmskin report: {first}: no records.jsonl (not a dataset folder)")
            return 2
        from .curate.report import CardConfig, run

        result = run(CardConfig(dataset=first, out=args.out), ConsoleReporter())
    else:
        from .evaluate.report import ResultsReportConfig
        from .evaluate.report import run as run_results

        result = run_results(
            ResultsReportConfig(inputs=[Path(x) for x in args.inputs], out=args.out), ConsoleReporter()
        )
    return finish(result)


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mmskin",
        description="Dermatology vision-language data and models: textbook PDFs to image-caption datasets.",
    )
    p.add_argument("--version", action="version", version=f"mmskin {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    from .pdf.build import BuildConfig

    b = sub.add_parser(
        "build",
        help="extract every figure and panel of PDFs with its caption",
        epilog=EPILOG_BUILD,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    b.add_argument(
        "inputs", nargs="+", metavar="PDF_OR_DIR", help="PDF files or folders (searched recursively)"
    )
    b.add_argument("--out", required=True, metavar="DATASET", help="dataset folder to create or extend")
    add_arguments(b, BuildConfig)
    b.add_argument("--quiet", action="store_true", help="no progress bar")
    b.set_defaults(func=_cmd_build)

    d = sub.add_parser(
        "demo",
        help="run the pipeline on the bundled sample, offline",
        epilog=EPILOG_DEMO,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    d.add_argument("--out", default="mmskin-demo", help="output folder (default: ./mmskin-demo)")
    d.add_argument("--quiet", action="store_true", help="no progress bars")
    d.add_argument(
        "--skip-train", action="store_true", help="stop after the data stages (no train/merge/eval)"
    )
    d.set_defaults(func=_cmd_demo)

    r = sub.add_parser(
        "report",
        help="HTML dataset card (DATASET) or results report (results JSON files)",
        epilog=EPILOG_REPORT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    r.add_argument(
        "inputs", nargs="+", metavar="DATASET|RESULTS", help="a dataset folder, or results JSON files"
    )
    r.add_argument("--out", required=True, type=Path, metavar="DIR", help="folder for index.html and plots")
    r.set_defaults(func=_cmd_report)

    # the other stages register their own sub-commands; their modules import nothing heavy at import time
    for module in STAGE_CLIS:
        importlib.import_module(module).register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    from .workers import Terminated, sigterm_as_interrupt

    parser = make_parser()
    args = parser.parse_args(argv)
    try:
        with (
            sigterm_as_interrupt()
        ):  # `kill PID` stops a command as Ctrl-C does: workers ended, nothing half-written
            return int(args.func(args))
    except Terminated:
        stderr("terminated")
        return 143
    except KeyboardInterrupt:
        stderr("interrupted")
        return 130
    except BrokenPipeError:  # the reader of our output went away (| head): nothing left to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit-time flush cannot fail
        return 0


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
