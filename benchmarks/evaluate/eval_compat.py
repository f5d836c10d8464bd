"""compat mmskin against MM-Skin's own code, run as written: equality and speed, whole processes.

(a) Open VQA. The 5,452 pairs of MM-Skin_test.csv with seeded perturbed predictions, a captions CSV that gives each
image a seeded modality (2 % of the images unlisted: VQA_test.py's ``None`` group, mmskin's ``unknown``), and the
predictions in MM-Skin's own predictions.csv layout. Two processes:
  reference: VQA_test.py's evaluation as written (its ``get_modality_from_image`` per row, reading the captions CSV
             each time, then ``calculate_bleu/rouge/meteor/recall`` per modality, plus the same functions on all
             pairs for an overall line), the functions executed from the verbatim script
             (``mmskin.evaluate.reference_scripts``);
  native:    ``mmskin eval vqa --predictions predictions.csv --captions caption.csv --metrics bleu,meteor,rouge,recall``
             (``--bootstrap 0``, and once more with the default 1,000 resamples).
Both print every number; the max |native - reference| over all metrics and groups is reported, and the wall time of
each process (best of --repeat). The reference raises on a prediction with no text between dots (the rouge
package: "Hypothesis is empty"), so those predictions are replaced by "?" for the equality run; a second run keeps
them and compares BLEU/METEOR/recall on all pairs and ROUGE on the pairs where the script has a number.
(b) Zero-shot parse: ZS_classification.py's loop (executed from the script) against ``paper_parse`` on 300 seeded
real-looking answers per experiment (13 experiments).
(c) Linear probe: SFT_classification.py's ``fit_model`` against ``probe_compat.fit_mmskin`` on seeded synthetic
features (binary and 8-class): max |probability difference|, same labels.

    .venv/bin/python benchmarks/evaluate/eval_compat.py               # all three, reference timed once
    .venv/bin/python benchmarks/evaluate/eval_compat.py --repeat 3
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, for _common
from _common import REPO, add_data_argument, save_results  # noqa: E402

from mmskin.evaluate.reference_scripts import VQA_KEYS  # noqa: E402

CSV = Path("mmskin") / "Dataframe" / "test" / "vqa" / "MM-Skin_test.csv"  # under --data
REFERENCE = Path("mmskin") / "reference"


def reference_process(args: argparse.Namespace) -> int:
    """VQA_test.py's evaluation of ``--predictions-json`` (a JSON list) on the test CSV, printed as JSON."""
    import pandas as pd

    from mmskin.evaluate.reference_scripts import ReferenceScripts
    from mmskin.evaluate.wordnet import ensure_nltk_wordnet

    warnings.filterwarnings("ignore")
    ensure_nltk_wordnet()
    ref = ReferenceScripts(args.data / REFERENCE)
    vqa = ref.vqa()
    df = pd.read_csv(os.path.expanduser(args.csv))
    df["modality"] = df["image"].apply(lambda im: vqa["get_modality_from_image"](im, args.captions))
    preds = json.loads(Path(args.predictions_json).read_text(encoding="utf-8"))
    groups: dict[object, dict[str, list[str]]] = {}
    for (_, row), output in zip(df.iterrows(), preds, strict=True):
        groups.setdefault(row["modality"], {"predictions": [], "ground_truths": []})
        groups[row["modality"]]["predictions"].append(output)
        groups[row["modality"]]["ground_truths"].append(row["answer"])
    groups["overall"] = {"predictions": preds, "ground_truths": list(df["answer"])}
    out = {}
    for modality, r in groups.items():
        scores = ref.vqa_metrics(r["predictions"], r["ground_truths"], vqa)
        # an image the captions CSV does not list: None, which pandas stores as NaN (VQA_test.py's "nan_" columns)
        out[modality if isinstance(modality, str) else "unknown"] = {**scores, "n": len(r["predictions"])}
    print(json.dumps(out))
    return 0


def make_inputs(args: argparse.Namespace, work: Path, keep_empty: bool) -> tuple[list[dict], list[str], dict]:
    """Rows, predictions, and the files both processes read (captions CSV, predictions CSV and JSON)."""
    from mmskin.evaluate.metrics.reference import perturb_answers

    with open(args.csv, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    preds = perturb_answers([r["answer"] for r in rows], seed=args.seed)
    if not keep_empty:
        preds = [p if p.replace(".", "") else "?" for p in preds]
    rng = random.Random(args.seed)
    images = sorted({r["image"] for r in rows})
    folder = work / ("with_empty" if keep_empty else "defined")
    folder.mkdir(exist_ok=True)
    files = {k: folder / k for k in ("caption.csv", "predictions.csv", "p.json")}
    with open(files["caption.csv"], "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["image", "caption", "modality"])
        for im in images:
            if rng.random() >= 0.02:
                w.writerow([im, "caption", rng.choice(["clinical", "dermoscopy", "pathology"])])
    with open(files["predictions.csv"], "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["image", "question", "predicted_answer", "ground_truth", "modality"])
        w.writerows([r["image"], r["question"], p, r["answer"], ""] for r, p in zip(rows, preds))
    files["p.json"].write_text(json.dumps(preds), encoding="utf-8")
    return rows, preds, files


def timed_process(cmd: list[str], repeat: int, env: dict[str, str]) -> tuple[float, str]:
    best, out = float("inf"), ""
    for _ in range(repeat):
        t = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        best = min(best, time.perf_counter() - t)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(cmd[:4])} … failed:\n{done.stderr[-2000:]}")
        out = done.stdout
    return best, out


def vqa_run(args: argparse.Namespace, work: Path, env: dict[str, str], keep_empty: bool) -> dict:
    """Both processes on the same input; differences and times."""
    _, preds, files = make_inputs(args, work, keep_empty)
    ref_cmd = [
        sys.executable,
        __file__,
        "--reference-process",
        "--data",
        str(args.data),
        "--csv",
        str(args.csv),
    ]
    ref_cmd += ["--captions", str(files["caption.csv"]), "--predictions-json", str(files["p.json"])]
    out_json = work / f"native{'_empty' if keep_empty else ''}.json"
    nat_cmd = [sys.executable, "-m", "mmskin", "eval", "vqa", "--predictions", str(files["predictions.csv"])]
    nat_cmd += ["--captions", str(files["caption.csv"]), "--metrics", "bleu,meteor,rouge,recall", "--quiet"]
    nat_cmd += ["--out", str(out_json)]
    t_nat, _ = timed_process([*nat_cmd, "--bootstrap", "0"], args.repeat, env)
    native = json.loads(out_json.read_text())
    groups = {"overall": native["overall"], **native["by_modality"]}
    res: dict = {"pairs": len(preds), "native_s": t_nat, "groups": {g: v["n"] for g, v in groups.items()}}
    if keep_empty:
        res["empty_or_dots"] = sum(not p.replace(".", "") for p in preds)
        return res | _defined_diffs(args, work, files, preds, groups)
    t_boot, _ = timed_process([*nat_cmd, "--bootstrap", "1000"], args.repeat, env)
    t_ref, printed = timed_process(ref_cmd, args.reference_repeat, env)
    ref = json.loads(printed.splitlines()[-1])
    diffs = {g: max(abs(groups[g][k] - ref[g][k]) for k in VQA_KEYS) for g in ref}
    assert set(ref) == set(groups), (sorted(ref), sorted(groups))
    return res | {"reference_s": t_ref, "native_bootstrap1000_s": t_boot, "max_abs_diff": diffs}


def _defined_diffs(args, work, files, preds, groups) -> dict:
    """With empty predictions: the script's functions in this process, ROUGE on the pairs where it has a number."""
    from mmskin.evaluate.reference_scripts import ReferenceScripts
    from mmskin.evaluate.wordnet import ensure_nltk_wordnet

    ensure_nltk_wordnet()
    ref = ReferenceScripts(args.data / REFERENCE)
    vqa = ref.vqa()
    with open(args.csv, encoding="utf-8") as f:
        truths = [r["answer"] for r in csv.DictReader(f)]
    ok = [i for i, p in enumerate(preds) if p.replace(".", "")]
    try:
        vqa["calculate_rouge"](preds, truths)
        raises = "no"
    except ValueError as e:
        raises = f"ValueError: {e}"
    bleu = vqa["calculate_bleu"](preds, truths)
    raw = {
        **bleu,
        "meteor": vqa["calculate_meteor"](preds, truths),
        "recall": vqa["calculate_recall"](preds, truths),
    }
    want = {k: raw[v] for k, v in VQA_KEYS.items() if v in raw}
    defined = ref.vqa_metrics([preds[i] for i in ok], [truths[i] for i in ok], vqa)
    scale = len(ok) / len(preds)  # mmskin scores the other pairs' ROUGE 0
    want.update({k: defined[k] * scale for k in ("rouge1", "rouge2", "rougeL")})
    diff = max(abs(groups["overall"][k] - want[k]) for k in VQA_KEYS)
    return {"reference_raises": raises, "overall_max_abs_diff_where_defined": diff}


def zeroshot_parse(args: argparse.Namespace) -> dict:
    from mmskin.evaluate.reference_scripts import ReferenceScripts, fake_zeroshot_answers
    from mmskin.evaluate.zeroshot import paper_parse
    from mmskin.taxonomy import load_taxonomy

    ref = ReferenceScripts(args.data / REFERENCE)
    parse = ref.zeroshot_parse()
    n = mismatches = unmatched = 0
    for experiment in ref.experiment_targets():
        classes = load_taxonomy(experiment).class_names()
        for answer in fake_zeroshot_answers(classes, 300, seed=args.seed + len(classes)):
            theirs = parse(answer, classes)[0]
            mismatches += paper_parse(answer, classes) != theirs
            unmatched += theirs is None
            n += 1
    return {"answers": n, "experiments": 13, "mismatches": mismatches, "unmatched_by_both": unmatched}


def probe(args: argparse.Namespace) -> dict:
    import numpy as np

    from mmskin.evaluate.probe_compat import fit_mmskin, mmskin_splits
    from mmskin.evaluate.reference_scripts import ReferenceScripts

    warnings.filterwarnings("ignore")
    fit_model = ReferenceScripts(args.data / REFERENCE).probe_fit()
    out = {}
    for k in (2, 8):
        rng = np.random.default_rng(args.seed + k)
        y = np.repeat(np.arange(k), 60)
        X = rng.normal(size=(k, 32))[y] * 0.8 + rng.normal(size=(len(y), 32))
        split = np.where(rng.random(len(y)) < 0.3, "test", np.where(rng.random(len(y)) < 0.2, "val", "train"))
        tr, va, te, _ = mmskin_splits(split, seed=args.seed)
        model, c = fit_mmskin(X[tr], y[tr], X[va], y[va])
        res = fit_model(X[tr][:, None], y[tr], X[va][:, None], y[va], X[te][:, None], y[te], range(k))["te"]
        ours = model.predict_proba(X[te])
        ours = ours[:, 1] if k == 2 else ours
        labels = (ours >= 0.5).astype(int) if k == 2 else ours.argmax(1)
        out[f"{k}_classes"] = {
            "C": c,
            "max_abs_proba_diff": float(np.abs(ours - res["preds"]).max()),
            "labels_equal": bool((labels == res["preds_rounded"]).all()),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_argument(ap)
    ap.add_argument("--csv", type=Path, default=None, help=f"test pairs (default: DATA/{CSV})")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=1, help="runs of each native process (best kept)")
    ap.add_argument("--reference-repeat", type=int, default=1, help="runs of the reference process")
    ap.add_argument("--reference-process", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--captions", help=argparse.SUPPRESS)
    ap.add_argument("--predictions-json", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.csv = args.csv or args.data / CSV
    if args.reference_process:
        return reference_process(args)
    if not args.csv.is_file() or not (args.data / REFERENCE / "VQA_test.py").is_file():
        print(f"missing {args.csv} or {args.data / REFERENCE} (../shared/data)", file=sys.stderr)
        return 1
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    env.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory(prefix="eval_compat_") as tmp:
        vqa = vqa_run(args, Path(tmp), env, keep_empty=False)
        empty = vqa_run(args, Path(tmp), env, keep_empty=True)
    print(f"VQA, {vqa['pairs']} pairs, groups {vqa['groups']}")
    worst = max(vqa["max_abs_diff"].values())
    print(f"  max |native - VQA_test.py| over 9 metrics x {len(vqa['max_abs_diff'])} groups: {worst:.3e}")
    for g, d in vqa["max_abs_diff"].items():
        print(f"    {g}: {d:.3e}")
    print(
        f"  whole processes: reference {vqa['reference_s']:.2f} s, native {vqa['native_s']:.2f} s "
        f"({vqa['reference_s'] / vqa['native_s']:.1f}x); native with 1,000 bootstrap resamples "
        f"{vqa['native_bootstrap1000_s']:.2f} s ({vqa['reference_s'] / vqa['native_bootstrap1000_s']:.1f}x)"
    )
    print(
        f"  with {empty['empty_or_dots']} empty/dots-only predictions: the reference raises ({empty['reference_raises']}); "
        f"mmskin where it has a number: max diff {empty['overall_max_abs_diff_where_defined']:.3e}"
    )
    zs = zeroshot_parse(args)
    print(
        f"zero-shot parse: {zs['mismatches']} mismatches in {zs['answers']} answers ({zs['unmatched_by_both']} unmatched)"
    )
    pr = probe(args)
    for k, v in pr.items():
        print(
            f"probe {k}: C {v['C']:.3g}, max |p diff| {v['max_abs_proba_diff']:.2e}, labels equal {v['labels_equal']}"
        )
    results = {"vqa": vqa, "vqa_with_empty": empty, "zeroshot_parse": zs, "probe": pr}
    save_results(
        "evaluate", "eval_compat", results, args, packages=["nltk", "rouge", "pandas", "scikit-learn"]
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
