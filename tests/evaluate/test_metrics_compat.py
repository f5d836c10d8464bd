"""compat mmskin: the native BLEU, ROUGE, METEOR and recall equal the reference packages (nltk, rouge 1.0.1).

Table-driven hand cases (empty, punctuation-only, repeated words, single word, unicode, dots inside text) and
real MM-Skin test answers with seeded perturbed predictions (skipped when ../shared/data is absent).
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

import numpy as np
import pytest

from mmskin.evaluate.metrics import score_pairs
from mmskin.evaluate.metrics.bleu import WEIGHTS, nltk_bleu_stats, nltk_corpus_bleu
from mmskin.evaluate.metrics.meteor import Meteor
from mmskin.evaluate.metrics.reference import perturb_answers, reference_scores
from mmskin.evaluate.metrics.rouge import _lcs_words, rouge_pair

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
MMSKIN_CSV = SHARED / "mmskin" / "Dataframe" / "test" / "vqa" / "MM-Skin_test.csv"
TOL = 1e-9
# nltk warns on every corpus without 3-/4-gram matches; the value (not the warning) is what is checked
pytestmark = pytest.mark.filterwarnings("ignore:\\nThe hypothesis contains 0 counts:UserWarning")

CASES = [
    ("", "the lesion is a papule"),
    ("...", "the lesion is a papule."),
    ("?", "Is it raised? No."),
    ("papule", "papule"),
    ("papule", "a papule"),
    ("the the the the", "the cat sat on the mat"),
    ("Naïve café résumé", "naïve Café résumé"),
    ("红斑 丘疹", "丘疹 红斑"),
    ("a. . b", "a b"),
    ("a  b.c", "a b c"),
    ("The lesions were biopsied", "The lesion was biopsied."),
    ("dogs running quickly", "a dog runs quick"),
    ("x . . ", "x"),
    ("It shows psoriasis, with plaques.", "The image shows psoriasis, with well-defined plaques and scales."),
]


@pytest.fixture(scope="module", autouse=True)
def wordnet_cache(tmp_path_factory):
    """Build the nltk WordNet corpus from Debian's files in a temp cache (skip when they are absent)."""
    import os

    if not Path("/usr/share/wordnet/index.noun").is_file():
        pytest.skip("Debian WordNet absent: apt-get install wordnet-base wordnet-sense-index")
    old = os.environ.get("MMSKIN_CACHE")
    os.environ["MMSKIN_CACHE"] = str(tmp_path_factory.mktemp("mmskin_cache"))
    yield
    if old is None:
        os.environ.pop("MMSKIN_CACHE", None)
    else:
        os.environ["MMSKIN_CACHE"] = old


def _native(preds, answers):
    s = score_pairs(preds, answers, metrics=("bleu", "meteor", "rouge", "recall"))
    return s.summary()


def _assert_equal(preds, answers):
    ref = reference_scores(preds, answers)
    nat = _native(preds, answers)
    diffs = {k: abs(nat[k] - v) for k, v in ref.items()}
    assert max(diffs.values()) <= TOL, diffs
    return diffs


@pytest.mark.parametrize("hyp,ref", CASES)
def test_hand_case_equals_reference(hyp, ref):
    _assert_equal([hyp], [ref])


def test_hand_cases_as_one_corpus():
    _assert_equal([h for h, _ in CASES], [r for _, r in CASES])


@pytest.mark.parametrize("hyp,ref", [c for c in CASES if any(len(s) > 0 for s in c[0].split("."))])
def test_rouge_pair_equals_package(hyp, ref):
    from rouge import Rouge

    got = Rouge().get_scores(hyp, ref)[0]
    assert rouge_pair(hyp, ref) == pytest.approx(
        [got["rouge-1"]["f"], got["rouge-2"]["f"], got["rouge-l"]["f"]], abs=TOL
    )


def test_empty_predictions_score_zero_and_count():
    s = score_pairs(
        ["", "...", "a papule"], ["a papule", "a papule", "a papule"], metrics=("rouge", "meteor", "recall")
    )
    assert s.n_empty == 2 and s.rouge_rejected == 2
    for k in ("rouge1", "rouge2", "rougeL", "meteor", "recall"):
        assert s.values[k][:2].tolist() == [0.0, 0.0]
    assert s.summary()["n"] == 3


def test_lcs_backtracking_matches_package_on_random_sequences():
    from rouge.rouge_score import _recon_lcs

    rng = random.Random(3)
    for _ in range(2000):
        vocab = rng.choice([2, 3, 6, 30])
        x = [str(rng.randrange(vocab)) for _ in range(rng.randrange(1, 25))]
        y = [str(rng.randrange(vocab)) for _ in range(rng.randrange(1, 25))]
        assert _lcs_words(x, y) == set(_recon_lcs(x, y)._ngrams), (x, y)


def test_bleu_all_weights_single_pass_equals_nltk_calls():
    from nltk.translate.bleu_score import corpus_bleu

    hyps = [c[0].split() for c in CASES]
    refs = [c[1].split() for c in CASES]
    got = nltk_corpus_bleu(nltk_bleu_stats(hyps, refs).sum(axis=0))
    want = [corpus_bleu([[r] for r in refs], hyps, weights=w) for w in WEIGHTS]
    assert got == pytest.approx(want, abs=0, rel=1e-15)


def test_meteor_pairs_equal_nltk():
    from nltk.translate.meteor_score import meteor_score

    m = Meteor()
    for hyp, ref in CASES:
        assert m.score(hyp.split(), ref.split()) == pytest.approx(
            meteor_score([ref.split()], hyp.split()), abs=TOL
        )


def test_real_mmskin_pairs_equal_reference():
    if not MMSKIN_CSV.is_file():
        pytest.skip(f"../shared/data not present: {MMSKIN_CSV}")
    with open(MMSKIN_CSV, encoding="utf-8") as f:
        answers = [r["answer"] for r in csv.DictReader(f)][:800]
    preds = perturb_answers(answers, seed=1)
    diffs = _assert_equal(preds, answers)
    assert set(diffs) == {
        "bleu1",
        "bleu2",
        "bleu3",
        "bleu4",
        "rouge1",
        "rouge2",
        "rougeL",
        "meteor",
        "recall",
    }
    # per pair too, for the mean metrics (a corpus mean could hide compensating errors)
    from nltk.translate.meteor_score import meteor_score

    s = score_pairs(preds, answers, metrics=("meteor",))
    ref = np.array(
        [meteor_score([a.split()], p.split()) for p, a in zip(preds, answers)]  # as written (compat mmskin)
    )
    assert np.abs(s.values["meteor"] - ref).max() <= TOL


def test_forked_rouge_equals_in_process():
    answers = [f"The lesion {i % 7} is a red papule. It is {i % 5} mm wide" for i in range(1200)]
    preds = perturb_answers(answers, seed=4)
    a = score_pairs(preds, answers, metrics=("rouge", "recall"), parallel=True)
    b = score_pairs(preds, answers, metrics=("rouge", "recall"), parallel=False)
    for k in ("rouge1", "rouge2", "rougeL", "recall"):
        assert np.array_equal(a.values[k], b.values[k])
    assert a.rouge_rejected == b.rouge_rejected > 0
