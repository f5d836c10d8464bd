"""``mmskin eval zeroshot`` and ``mmskin eval probe`` registration (imports nothing heavy at import time)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

EPILOG_ZEROSHOT = """examples:
  mmskin eval zeroshot HAM10000 --data Dataframe/test/classification/HAM10000_test.csv --images datasets/ \\
      --model hf:models/skinvl-pubmm --batch-size 32 --out results/zs_ham10000.json
  mmskin eval zeroshot my_labels.yaml --data test.csv --images imgs/ --model openai:skinvl \\
      --base-url http://127.0.0.1:8000/v1 --concurrency 16 --prompt prompts/short.txt --out zs.json

DATA is MM-Skin's classification CSV (image,atributes,categories with categories a list literal such as
['Nevus']) or a plain image,label CSV; image paths are relative to --images. Answers are parsed back to a class
by normalised longest match over class names and synonyms; unparsed answers count as wrong and are listed in
the results. Predictions go to OUT.predictions.jsonl as they come: a rerun resumes where a run stopped.
exit status: 0 when every row was scored, 1 when some rows failed (bad image, unknown label), 2 on bad usage."""

EPILOG_PROBE = """examples:
  mmskin eval probe HAM10000 --data HAM10000_test.csv --train HAM10000_train.csv --images datasets/ \\
      --model hf:models/skinvl-pubmm --out results/probe_ham10000.json
  mmskin eval probe Patch16_2class --data Patch16_2class_test.csv --images datasets/ --model hf:llava-med \\
      --out probe.json                  # one CSV without a split column: nested 5-fold CV
  mmskin eval probe DDI_2class --features clip_ddi.npz --out probe_clip.json   # any encoder's features

Features: the model's vision tower + projector output, mean-pooled over image tokens, cached (npz) under
--cache-dir by model + dataset file + image list. A features file is an npz with 'features' (N x D), 'labels'
(N, class names or indices into the benchmark's classes) and optional 'split' (train/val/test).
Probe: StandardScaler + LogisticRegression, C over 10**linspace(-5, 1, 10) by stratified 5-fold CV on macro
AUROC; train/test from --train, a split/set column, or nested CV when there is neither.
exit status: 0 when every row was used, 1 when some rows failed, 2 on bad usage."""


def _err(msg: str) -> None:
    print(f"error: {msg}", file=sys.stderr, flush=True)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "benchmark", metavar="BENCHMARK", help="taxonomy name (e.g. HAM10000) or taxonomy YAML path"
    )
    p.add_argument("--out", required=True, type=Path, metavar="RESULTS.json", help="results file to write")
    p.add_argument(
        "--seed", type=int, default=0, help="seed of sampling, CV splits and bootstrap (default: 0)"
    )
    p.add_argument(
        "--n-boot", type=int, default=1000, help="bootstrap resamples for the 95%% CI (default: 1000)"
    )
    p.add_argument(
        "--limit", type=int, default=None, metavar="N", help="use only the first N rows (smoke runs)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def register(eval_sub: argparse._SubParsersAction) -> None:
    """Add ``zeroshot`` and ``probe`` to the ``mmskin eval`` sub-parsers."""
    from .predict import add_model_arguments

    z = eval_sub.add_parser(
        "zeroshot",
        help="zero-shot classification: prompt with the class list, parse answers, accuracy/F1/confusion",
        epilog=EPILOG_ZEROSHOT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(z)
    z.add_argument("--data", required=True, type=Path, metavar="CSV", help="classification CSV (see below)")
    z.add_argument("--images", required=True, type=Path, metavar="DIR", help="root of the CSV's image paths")
    z.add_argument(
        "--prompt",
        default="mmskin",
        metavar="mmskin|PATH",
        help="mmskin: the taxonomy's MM-Skin prompt; PATH: a text file with a {classes} placeholder",
    )
    z.add_argument(
        "--predictions-out", type=Path, default=None, metavar="JSONL", help="default: OUT.predictions.jsonl"
    )
    add_model_arguments(z)
    z.set_defaults(func=_cmd_zeroshot)

    p = eval_sub.add_parser(
        "probe",
        help="linear probe on frozen image features (the paper's SFT): AUROC, AUPRC, ECE, accuracy, F1",
        epilog=EPILOG_PROBE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(p)
    p.add_argument(
        "--data", type=Path, metavar="CSV", help="classification CSV: the test set (or all, see below)"
    )
    p.add_argument("--train", type=Path, default=None, metavar="CSV", help="training CSV (same format)")
    p.add_argument("--images", type=Path, metavar="DIR", help="root of the CSVs' image paths")
    p.add_argument(
        "--features", type=Path, default=None, metavar="FILE.npz", help="probe these features instead"
    )
    p.add_argument("--folds", type=int, default=5, help="CV folds (default: 5)")
    p.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="feature cache (default: ~/.cache/mmskin/features)",
    )
    add_model_arguments(p)
    p.set_defaults(func=_cmd_probe)


def _cmd_zeroshot(args: argparse.Namespace) -> int:
    from ..taxonomy import TaxonomyError, load_taxonomy
    from .predict import adapter_from_args
    from .zeroshot import markdown, run_zeroshot

    try:
        taxonomy = load_taxonomy(args.benchmark)
        if not args.images.is_dir():
            raise ValueError(f"{args.images}: no such image folder")
        adapter = adapter_from_args(args, task="zeroshot")
        results, failed = run_zeroshot(
            adapter,
            taxonomy,
            args.data,
            args.images,
            args.out,
            predictions_out=args.predictions_out,
            prompt=args.prompt,
            batch_size=args.batch_size,
            seed=args.seed,
            n_boot=args.n_boot,
            limit=args.limit,
            quiet=args.quiet,
        )
    except (TaxonomyError, ValueError, OSError) as e:
        _err(f"mmskin eval zeroshot: {e}")
        return 2
    except RuntimeError as e:  # ModelError and model failures: one line
        _err(f"mmskin eval zeroshot: {e}")
        return 1
    print(markdown(results))
    if results["n"] == 0:
        _err(f"mmskin eval zeroshot: nothing was scored (no usable rows in {args.data})")
        return 1
    m = results["metrics"]
    print(
        f"zeroshot {results['benchmark']}: n={results['n']} accuracy={m['accuracy']:.4f} "
        f"macro_f1={m['macro_f1']:.4f} unparsed={results['unparsed']} errors={failed} -> {args.out}"
    )
    return 1 if failed else 0


def _probe_inputs(args: argparse.Namespace, taxonomy: Any) -> tuple[Any, list[str], Any, dict[str, Any], int]:
    """(X, labels as class names, split or None, provenance, failed rows) for model or features-file mode."""
    import numpy as np

    from ..records import sha256_file
    from .classification import canonical_label, read_classification_csv

    names = taxonomy.class_names()
    if args.features is not None:
        from .features import load_features_file

        X, raw, split = load_features_file(args.features)
        labels: list[str | None] = []
        for v in raw:
            if raw.dtype.kind in "iu":
                labels.append(names[int(v)] if 0 <= int(v) < len(names) else None)
            else:
                labels.append(canonical_label(taxonomy, str(v)))
        bad = [i for i, lab in enumerate(labels) if lab is None]
        for i in bad[:10]:
            _err(f"{args.features}: row {i}: label {raw[i]!r} is not a class of {taxonomy.name}")
        keep = np.array([lab is not None for lab in labels], dtype=bool)
        prov = {"features": str(args.features), "features_sha256": sha256_file(args.features)}
        return (
            X[keep],
            [lab for lab in labels if lab is not None],
            None if split is None else split[keep],
            prov,
            len(bad),
        )

    if args.data is None or args.images is None:
        raise ValueError("give --data CSV and --images DIR (with --model), or --features FILE.npz")
    from .features import extract_features
    from .predict import adapter_from_args

    rows: list[dict[str, str]] = []
    errors: list[str] = []
    shas = []
    for path, forced in ((args.train, "train"), (args.data, "test" if args.train else None)):
        if path is None:
            continue
        r, e = read_classification_csv(path)
        errors.extend(e)
        shas.append(sha256_file(path))
        if args.limit is not None:
            r = r[: args.limit]
        for row in r:
            lab = canonical_label(taxonomy, row["label"])
            if lab is None:
                errors.append(
                    f"{path}: image {row['image']}: label {row['label']!r} is not a class of {taxonomy.name}"
                )
                continue
            rows.append({**row, "label": lab, **({"split": forced} if forced else {})})
    adapter = adapter_from_args(args)
    images = [r["image"] for r in rows]
    X, ok, ferr, cache = extract_features(
        adapter,
        args.images,
        images,
        "|".join(shas),
        cache_dir=args.cache_dir,
        batch_size=args.batch_size,
        quiet=args.quiet,
    )
    errors.extend(ferr)
    for e in errors:
        _err(e)
    has_split = all("split" in r for r in rows) and rows
    split = np.array([r["split"] for r in rows])[ok] if has_split else None
    from .adapters import adapter_info

    prov = {
        "model": adapter_info(adapter),
        "data": str(args.data),
        "train": str(args.train) if args.train else None,
        "data_sha256": shas,
        "images": str(args.images),
        "feature_cache": str(cache),
        "features": "vision tower + projector output (get_image_features), mean-pooled over image tokens",
    }
    return X[ok], [r["label"] for r, k in zip(rows, ok, strict=True) if k], split, prov, len(errors)


def _cmd_probe(args: argparse.Namespace) -> int:
    import numpy as np

    from ..records import atomic_write_bytes
    from ..taxonomy import TaxonomyError, load_taxonomy
    from .predict import versions
    from .probe import C_GRID, markdown, probe_arrays

    if (args.features is None) == (args.model is None):
        _err("mmskin eval probe: give exactly one of --model SPEC and --features FILE.npz")
        return 2
    try:
        taxonomy = load_taxonomy(args.benchmark)
        X, labels, split, prov, failed = _probe_inputs(args, taxonomy)
        present = set(labels)
        names = [c for c in taxonomy.class_names() if c in present]
        code = {c: i for i, c in enumerate(names)}
        y = np.array([code[lab] for lab in labels], dtype=np.int64)
        res = probe_arrays(X, y, split, names, seed=args.seed, folds=args.folds, n_boot=args.n_boot)
    except (TaxonomyError, ValueError, OSError) as e:
        _err(f"mmskin eval probe: {e}")
        return 2
    except RuntimeError as e:
        _err(f"mmskin eval probe: {e}")
        return 1
    results = {
        "task": "probe",
        "benchmark": taxonomy.name,
        "model": prov.get("model", {}).get("name") if "model" in prov else f"features:{args.features}",
        **res,
        "errors": failed,
        "provenance": {
            "mmskin_version": versions()["mmskin"],
            "versions": versions(),
            **prov,
            "taxonomy": {"name": taxonomy.name, "path": getattr(taxonomy, "path", "")},
            "probe": "StandardScaler + LogisticRegression(lbfgs, L2, max_iter=2000)",
            "C_grid": [float(c) for c in C_GRID],
            "cv_scoring": "macro one-vs-rest AUROC (binary: AUROC)",
            "folds": args.folds,
            "seed": args.seed,
            "bootstrap": {"n_boot": args.n_boot, "interval": "percentile 95%"},
            "ece_bins": 15,
            "feature_dim": int(X.shape[1]),
            "limit": args.limit,
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(args.out, (json.dumps(results, indent=2, ensure_ascii=False) + "\n").encode())
    print(markdown(results))
    m = results["metrics"]
    auroc = "n/a" if m["auroc"] is None else f"{m['auroc']:.4f}"
    print(
        f"probe {results['benchmark']}: n={results['n']} auroc={auroc} accuracy={m['accuracy']:.4f} "
        f"ece={m['ece']:.4f} errors={failed} -> {args.out}"
    )
    return 1 if failed else 0
