"""compat standard: sacrebleu, rouge-score, and every number's signature."""

from __future__ import annotations

import pytest

from mmskin.evaluate.metrics import GROUPS, score_pairs, signatures

HYPS = ["The image shows a red papule.", "", "psoriatic plaques on the elbow", "A NEVUS"]
REFS = ["The image shows a small red papule.", "a plaque", "psoriasis plaques on elbows", "a nevus"]


def test_bleu_equals_sacrebleu_corpus_bleu_for_each_order():
    import sacrebleu

    s = score_pairs(HYPS, REFS, compat="standard", metrics=("bleu",)).summary()
    for n, k in enumerate(GROUPS["bleu"], 1):
        want = sacrebleu.metrics.BLEU(max_ngram_order=n).corpus_score(HYPS, [REFS]).score / 100
        assert s[k] == pytest.approx(want, abs=1e-12)


def test_rouge_equals_rouge_score_with_stemmer():
    from rouge_score import rouge_scorer

    sc = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    s = score_pairs(HYPS, REFS, compat="standard", metrics=("rouge",)).summary()
    for k, name in zip(GROUPS["rouge"], ("rouge1", "rouge2", "rougeL")):
        want = sum(sc.score(r, h)[name].fmeasure for h, r in zip(HYPS, REFS)) / len(HYPS)
        assert s[k] == pytest.approx(want, abs=1e-12)
    # stemming makes "psoriatic"/"psoriasis" no closer, but "elbow"/"elbows" match: unlike compat mmskin
    mm = score_pairs(HYPS[2:3], REFS[2:3], compat="mmskin", metrics=("rouge",)).summary()
    st = score_pairs(HYPS[2:3], REFS[2:3], compat="standard", metrics=("rouge",)).summary()
    assert st["rouge1"] > mm["rouge1"]


def test_standard_recall_is_case_insensitive_and_tokenised():
    s = score_pairs(["A NEVUS."], ["a nevus"], compat="standard", metrics=("recall",)).summary()
    assert s["recall"] == 1.0
    m = score_pairs(["A NEVUS."], ["a nevus"], compat="mmskin", metrics=("recall",)).summary()
    assert m["recall"] == 0.0


def test_signatures_name_tokeniser_case_and_versions():
    from importlib.metadata import version

    sig = signatures("standard", ("bleu", "rouge", "recall"))
    assert set(sig) == {*GROUPS["bleu"], *GROUPS["rouge"], "recall"}
    assert (
        "tok:13a" in sig["bleu4"]
        and f"version:{version('sacrebleu')}" in sig["bleu4"]
        and "ngram:4" in sig["bleu4"]
    )
    assert "stemmer:porter" in sig["rougeL"] and version("rouge-score") in sig["rougeL"]
    assert "case:lc" in sig["recall"]
    mm = signatures("mmskin", ("bleu", "rouge"))
    assert "weights:0.33,0.33,0.33,0" in mm["bleu3"] and "tok:whitespace" in mm["bleu3"]
    assert "rouge-1.0.1" in mm["rouge1"]


def test_unknown_metric_and_compat_are_refused():
    from mmskin.evaluate.metrics import parse_metrics

    with pytest.raises(ValueError, match="unknown metric 'cider'"):
        parse_metrics("bleu,cider")
    with pytest.raises(ValueError, match="unknown compat"):
        score_pairs(["a"], ["a"], compat="coco", metrics=("bleu",))
