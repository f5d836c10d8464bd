"""The metric objects: one class per (metric, compat) in the registry, each with its own keys, signature,
tokeniser and packages; the registry refuses unknown names with the choices."""

from __future__ import annotations

import pytest

from mmskin.evaluate.metrics import (
    GROUPS,
    KEYS,
    metric_packages,
    progress_total,
    score_pairs,
    signatures,
)
from mmskin.evaluate.metrics.base import (
    COMPATS,
    LOWER_13A,
    METRIC_NAMES,
    REGISTRY,
    WHITESPACE,
    CorpusMetric,
    Pairs,
    get_metric,
    metric_class,
)

# (metric, compat) -> (class name, corpus metric?, runs in a forked child on large inputs?)
EXPECTED = {
    ("bleu", "mmskin"): ("NltkCorpusBleu", True, False),
    ("bleu", "standard"): ("SacreBleu", True, False),
    ("rouge", "mmskin"): ("Rouge101", False, True),
    ("rouge", "standard"): ("RougeScore", False, True),
    ("meteor", "mmskin"): ("MeteorWhitespace", False, False),
    ("meteor", "standard"): ("Meteor13a", False, False),
    ("recall", "mmskin"): ("RecallWhitespace", False, False),
    ("recall", "standard"): ("Recall13a", False, False),
    ("bertscore", "mmskin"): ("BertScore", False, False),
    ("bertscore", "standard"): ("BertScore", False, False),
}


def test_registry_covers_every_metric_and_compat():
    assert set(REGISTRY) == {(m, c) for m in METRIC_NAMES for c in COMPATS} == set(EXPECTED)
    assert KEYS == tuple(k for m in METRIC_NAMES for k in GROUPS[m])


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_each_entry_is_its_own_small_class(key):
    name, compat = key
    cls = metric_class(name, compat)
    want, corpus, fork = EXPECTED[key]
    assert cls.__name__ == want and cls.name == name
    assert compat in cls.compat.split("|")
    assert issubclass(cls, CorpusMetric) == corpus and cls.fork == fork


@pytest.mark.parametrize("key", [k for k in sorted(EXPECTED) if k[0] != "bertscore"])
def test_signature_has_one_entry_per_key_and_names_the_tokeniser(key):
    metric = get_metric(*key)
    sig = metric.signature()
    assert tuple(sig) == GROUPS[key[0]] and all(isinstance(s, str) and s for s in sig.values())
    tokenizer = getattr(metric, "tokenizer", None)
    if tokenizer is not None:
        assert all(tokenizer.label in s for s in sig.values())


@pytest.mark.parametrize(
    "compat,metrics,packages",
    [
        ("mmskin", ("recall",), ["numpy"]),
        ("mmskin", ("bleu", "meteor", "rouge"), ["nltk", "numpy"]),
        ("standard", ("bleu", "rouge"), ["numpy", "rouge-score", "sacrebleu"]),
        ("standard", ("recall",), ["numpy", "sacrebleu"]),
    ],
)
def test_packages_are_those_of_the_selected_metrics(compat, metrics, packages):
    assert metric_packages(compat, metrics) == packages


def test_tokenisers_and_pairs_compute_tokens_once():
    assert WHITESPACE(["A NEVUS."]) == [["A", "NEVUS."]]
    assert LOWER_13A(["A NEVUS."]) == [["a", "nevus", "."]]
    pairs = Pairs(["A b"], ["a B"])
    first = pairs.tokens(WHITESPACE)
    assert pairs.tokens(WHITESPACE) is first and first == ([["A", "b"]], [["a", "B"]])


def test_signatures_keep_their_order_and_skip_bertscore_without_a_scorer():
    sig = signatures("mmskin", ("bleu", "meteor", "rouge", "recall", "bertscore"))
    assert list(sig) == [*GROUPS["bleu"], *GROUPS["rouge"], "meteor", "recall"]
    assert "case:mixed->lower" in sig["meteor"]
    assert "case:lc|stem" in signatures("standard", ("meteor",))["meteor"]


def test_progress_total_counts_one_step_per_metric():
    preds, answers = ["a", "", "..."], ["a", "b", "c"]
    assert progress_total(preds, answers, "mmskin", ("bleu", "rouge", "recall")) == 3
    steps = []
    score_pairs(preds, answers, metrics=("bleu", "rouge", "recall"), progress=steps.append)
    assert steps == [1, 1, 1]


def test_unknown_names_are_refused_with_the_choices():
    with pytest.raises(ValueError, match="unknown compat 'coco' \\(choose from mmskin, standard\\)"):
        metric_class("bleu", "coco")
    with pytest.raises(ValueError, match="unknown metric 'cider'"):
        metric_class("cider", "mmskin")
    with pytest.raises(ValueError, match="no BertScorer given"):
        get_metric("bertscore", "mmskin")
