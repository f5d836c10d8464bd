"""The reference path: the metric packages called the way MM-Skin's VQA_test.py calls them, for equality checks.

Used by the tests and ``benchmarks/evaluate/eval_metrics.py`` to check the native metrics (equal to 1e-9) and to time
them against the packages. Needs the packages themselves: nltk (BLEU, METEOR), ``rouge`` 1.0.1 (a dev extra)
and, for BERTScore, ``bert_score``. Predictions are scored as written (compat mmskin's rule); a pair the package
cannot score (``rouge`` raises on a side with no text between dots, ``bert_score`` fails on an empty sentence under
transformers 5) counts as 0, as mmskin counts it. ``mmskin.evaluate.reference_scripts`` runs VQA_test.py's own
functions instead (what the benchmark of the compat mode compares with).

    >>> from mmskin.evaluate.metrics.reference import perturb_answers, reference_scores
    >>> preds = perturb_answers(["a red scaly papule on the arm"] * 4, seed=0)
    >>> ref = reference_scores(preds, ["a red scaly papule on the arm"] * 4, metrics=("bleu", "recall"))
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from . import GROUPS
from .bleu import WEIGHTS


def perturb_answers(answers: Sequence[str], seed: int = 0) -> list[str]:
    """Seeded fake predictions: words dropped, swapped and replaced, some empty or punctuation-only."""
    rng = random.Random(seed)
    vocab = sorted({w for a in answers for w in a.split()}) or ["x"]
    out = []
    for a in answers:
        x = rng.random()
        if x < 0.04:
            out.append("")
            continue
        if x < 0.06:
            out.append(rng.choice(["...", "?", " . ", "--"]))
            continue
        words = []
        for w in a.split():
            y = rng.random()
            if y < 0.12:
                continue  # dropped
            if y < 0.27:
                words.append(rng.choice(vocab))  # replaced
                continue
            words.append(w)
        if len(words) > 2 and rng.random() < 0.4:  # swapped neighbours
            i = rng.randrange(len(words) - 1)
            words[i], words[i + 1] = words[i + 1], words[i]
        if rng.random() < 0.1:
            words = words + words[: rng.randrange(1, 4)]  # repeated words
        out.append(" ".join(words))
    return out


def reference_scores(
    predictions: Sequence[str],
    answers: Sequence[str],
    metrics: Sequence[str] = ("bleu", "meteor", "rouge", "recall"),
    bertscore_model: str | None = None,
    bertscore_layer: int | None = None,
) -> dict[str, float]:
    """Corpus scores from the reference packages, called as VQA_test.py does (whitespace tokens)."""
    hyps = list(predictions)
    refs = list(answers)
    n = len(hyps)
    out: dict[str, float] = {}
    if "bleu" in metrics:
        from nltk.translate.bleu_score import corpus_bleu

        h_tok = [h.split() for h in hyps]
        r_tok = [[r.split()] for r in refs]
        for k, w in zip(GROUPS["bleu"], WEIGHTS):
            out[k] = float(corpus_bleu(r_tok, h_tok, weights=w))
    if "rouge" in metrics:
        from rouge import Rouge

        ok = [i for i, h in enumerate(hyps) if any(len(s) > 0 for s in h.split("."))]
        ok = [i for i in ok if any(len(s) > 0 for s in refs[i].split("."))]
        avg = Rouge().get_scores([hyps[i] for i in ok], [refs[i] for i in ok], avg=True) if ok else None
        for k, name in zip(GROUPS["rouge"], ("rouge-1", "rouge-2", "rouge-l")):
            out[k] = avg[name]["f"] * len(ok) / n if avg else 0.0
    if "meteor" in metrics:
        from nltk.translate.meteor_score import meteor_score

        from ..wordnet import ensure_nltk_wordnet

        ensure_nltk_wordnet()
        out["meteor"] = sum(meteor_score([r.split()], h.split()) for h, r in zip(hyps, refs)) / n
    if "recall" in metrics:
        total = 0.0
        for h, r in zip(hyps, refs):
            rs = set(r.split())
            total += len(set(h.split()) & rs) / len(rs) if rs else 0.0
        out["recall"] = total / n
    if "bertscore" in metrics:
        from bert_score import BERTScorer

        ok = [i for i, h in enumerate(hyps) if h.strip() and refs[i].strip()]
        scorer = BERTScorer(model_type=bertscore_model, num_layers=bertscore_layer)
        p, r, f = scorer.score([hyps[i] for i in ok], [refs[i] for i in ok])
        for k, v in zip(GROUPS["bertscore"], (p, r, f)):
            out[k] = float(v.double().sum()) / n
    return out
