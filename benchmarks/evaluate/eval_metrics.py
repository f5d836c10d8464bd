"""Open-VQA metrics: native compat-mmskin metrics vs the reference packages run as MM-Skin's VQA_test.py does.

On the 5,452 pairs of MM-Skin_test.csv with seeded perturbed predictions (words dropped, swapped, replaced and
repeated; some empty or punctuation-only), in one run on the same input:
(a) equality: max |native - reference| for every metric (corpus values; METEOR also per pair);
(b) wall time of the reference path (nltk corpus_bleu x4, rouge 1.0.1 get_scores(avg=True), nltk meteor_score
per pair incl. nltk's WordNet load, recall) vs the native path (score_pairs), best of --repeat runs each, and
the speed ratio. BERTScore (both sides with the packaged all-MiniLM-L6-v2) on the first --bertscore N pairs,
reported separately (the model forward dominates both sides).

    .venv/bin/python benchmarks/evaluate/eval_metrics.py                  # BLEU/ROUGE/METEOR/recall, 3 repeats
    .venv/bin/python benchmarks/evaluate/eval_metrics.py --bertscore 500  # + BERTScore on 500 pairs
"""

from __future__ import annotations

import argparse
import csv
import gc
import os
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, for _common
from _common import add_data_argument, save_results  # noqa: E402

CSV = Path("mmskin") / "Dataframe" / "test" / "vqa" / "MM-Skin_test.csv"  # under --data
METRICS = ("bleu", "rouge", "meteor", "recall")


def fresh_wordnet_state() -> None:
    """Forget loaded WordNet readers so each timed run pays its own load (as a VQA_test.py run does)."""
    import nltk.corpus

    from mmskin.evaluate.wordnet import WordNetLite

    WordNetLite._instances.clear()
    wn = nltk.corpus.wordnet
    if hasattr(wn, "_unload"):
        wn._unload()
    gc.collect()


def timed(fn, repeat: int):
    best, out = float("inf"), None
    for _ in range(repeat):
        fresh_wordnet_state()
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_argument(ap)
    ap.add_argument("--csv", type=Path, default=None, help=f"test pairs (default: DATA/{CSV})")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument(
        "--bertscore", type=int, default=0, metavar="N", help="also BERTScore on the first N pairs"
    )
    args = ap.parse_args(argv)
    args.csv = args.csv or args.data / CSV
    if not args.csv.is_file():
        print(f"missing {args.csv} (../shared/data)", file=sys.stderr)
        return 1
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    warnings.filterwarnings("ignore")

    import numpy as np

    from mmskin.evaluate.metrics import GROUPS, is_empty, score_pairs
    from mmskin.evaluate.metrics.reference import perturb_answers, reference_scores
    from mmskin.evaluate.wordnet import ensure_nltk_wordnet

    ensure_nltk_wordnet()
    with open(args.csv, encoding="utf-8") as f:
        answers = [r["answer"] for r in csv.DictReader(f)]
    preds = perturb_answers(answers, seed=args.seed)
    n_empty = sum(is_empty(p) for p in preds)
    print(f"pairs: {len(answers)}  (empty or punctuation-only predictions: {n_empty}); seed {args.seed}")

    rows = []
    tot_ref = tot_nat = 0.0
    for m in METRICS:
        t_ref, ref = timed(lambda m=m: reference_scores(preds, answers, metrics=(m,)), args.repeat)
        t_nat, nat = timed(lambda m=m: score_pairs(preds, answers, metrics=(m,)).summary(), args.repeat)
        diff = max(abs(nat[k] - ref[k]) for k in GROUPS[m])
        rows.append((m, diff, t_ref, t_nat))
        tot_ref += t_ref
        tot_nat += t_nat
    t_all, _ = timed(lambda: score_pairs(preds, answers, metrics=METRICS), args.repeat)
    t_one, _ = timed(lambda: score_pairs(preds, answers, metrics=METRICS, parallel=False), args.repeat)

    # METEOR per pair, not only its mean
    from nltk.translate.meteor_score import meteor_score

    fresh_wordnet_state()
    per_ref = np.array(
        [meteor_score([a.split()], p.split()) for p, a in zip(preds, answers)]  # compat mmskin: as written
    )
    per_nat = score_pairs(preds, answers, metrics=("meteor",)).values["meteor"]
    meteor_pair_diff = float(np.abs(per_ref - per_nat).max())

    print()
    print("| metric | max abs diff (native vs reference) | reference s | native s | speed-up |")
    print("|---|---|---|---|---|")
    for m, d, tr, tn in rows:
        print(f"| {m} | {d:.3e} | {tr:.3f} | {tn:.3f} | {tr / tn:.1f}x |")
    print(f"| all four, separately | | {tot_ref:.3f} | {tot_nat:.3f} | {tot_ref / tot_nat:.1f}x |")
    print(
        f"| all four, one score_pairs call, 1 process | | {tot_ref:.3f} | {t_one:.3f} | {tot_ref / t_one:.1f}x |"
    )
    print(
        f"| all four, one score_pairs call (ROUGE forked) | | {tot_ref:.3f} | {t_all:.3f} | {tot_ref / t_all:.1f}x |"
    )
    print(f"METEOR per pair: max abs diff {meteor_pair_diff:.3e}")
    print(f"(best of {args.repeat} runs each; each run loads its own WordNet: nltk's reader / WordNetLite)")
    results = {
        "pairs": len(answers),
        "empty_predictions": n_empty,
        "metrics": [
            {"metric": m, "max_abs_diff": d, "reference_s": tr, "native_s": tn} for m, d, tr, tn in rows
        ],
        "all_four": {
            "reference_s": tot_ref,
            "native_separately_s": tot_nat,
            "native_one_call_one_process_s": t_one,
            "native_one_call_rouge_forked_s": t_all,
        },
        "meteor_per_pair_max_abs_diff": meteor_pair_diff,
    }

    if args.bertscore:
        from mmskin.evaluate.metrics.bertscore import BertScorer, packaged_minilm

        k = args.bertscore
        p_sub, a_sub = preds[:k], answers[:k]
        t = time.perf_counter()
        ref = reference_scores(
            p_sub, a_sub, metrics=("bertscore",), bertscore_model=str(packaged_minilm()), bertscore_layer=6
        )
        t_ref = time.perf_counter() - t
        t = time.perf_counter()
        nat = score_pairs(
            p_sub, a_sub, metrics=("bertscore",), bertscorer=BertScorer.from_spec("minilm", None)
        ).summary()
        t_nat = time.perf_counter() - t
        diff = max(abs(nat[key] - ref[key]) for key in GROUPS["bertscore"])
        print()
        print(
            f"BERTScore (all-MiniLM-L6-v2, layer 6) on {k} pairs: max abs diff {diff:.3e}; "
            f"bert_score {t_ref:.2f} s, native {t_nat:.2f} s ({t_ref / t_nat:.1f}x); "
            f"F1 {nat['bertscore_f1']:.4f}"
        )
        results["bertscore"] = {"pairs": k, "max_abs_diff": diff, "reference_s": t_ref, "native_s": t_nat}
    save_results("evaluate", "eval_metrics", results, args, packages=["nltk", "rouge", "bert-score", "numpy"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
