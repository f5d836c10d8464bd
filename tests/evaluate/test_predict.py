"""Predictions: written as they come, resumed by id after a kill (torn last line included), never duplicated;
bad images reported and retried; a resume with another model refused; ``predict_vqa`` with the model options
parsed from a command line."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from PIL import Image

from mmskin.config import add_arguments, from_args
from mmskin.evaluate.adapters import DummyAdapter
from mmskin.evaluate.predict import (
    ModelConfig,
    errors_path,
    meta_path,
    predict_vqa,
    read_predictions,
    run_predictions,
)
from mmskin.stage import Problems, Reporter


class CountingAdapter(DummyAdapter):
    """Answers ``ans:<prompt>``; remembers every prompt it was asked; can be told to die after some calls."""

    def __init__(self, die_after: int | None = None):
        super().__init__("echo")
        self.name = "counting"
        self.asked: list[str] = []
        self.calls = 0
        self.die_after = die_after

    def generate(self, images, prompts):
        if self.die_after is not None and self.calls >= self.die_after:
            raise KeyboardInterrupt  # like Ctrl-C or a kill between batches
        self.calls += 1
        self.asked.extend(prompts)
        return [f"ans:{p}" for p in prompts]

    def info(self):
        return {"name": self.name, "kind": "test"}


@pytest.fixture
def dataset(tmp_path):
    root = tmp_path / "data"
    (root / "images").mkdir(parents=True)
    samples = []
    for i in range(10):
        Image.new("RGB", (8, 8), (i * 20, 0, 0)).save(root / "images" / f"{i}.png")
        samples.append({"id": f"s{i}", "image": f"images/{i}.png", "question": f"q{i}", "answer": f"a{i}"})
    return root, samples


def _ids(path: Path) -> list[str]:
    return [json.loads(line)["id"] for line in path.read_text(encoding="utf-8").splitlines()]


def test_resume_after_kill_never_duplicates(dataset, tmp_path):
    root, samples = dataset
    out = tmp_path / "preds.jsonl"
    first = CountingAdapter(die_after=2)
    with pytest.raises(KeyboardInterrupt):
        run_predictions(first, samples, root, out, batch_size=3)
    assert len(_ids(out)) == 6  # two batches were written (and flushed) before the kill
    # a kill in the middle of a write leaves a torn line
    with open(out, "a", encoding="utf-8") as f:
        f.write('{"id": "s9", "prediction": "half')
    second = CountingAdapter()
    res = run_predictions(second, samples, root, out, batch_size=3)
    assert len(second.asked) == 4  # only the rest were asked
    ids = _ids(out)
    assert sorted(ids) == sorted(s["id"] for s in samples) and len(ids) == len(set(ids))
    assert [r["id"] for r in res.rows] == [s["id"] for s in samples]  # in the order of the samples
    assert all(r["prediction"] == f"ans:{r['question']}" for r in res.rows)
    assert res.resumed == 6 and res.new == 4
    # a third run has nothing to do
    third = CountingAdapter()
    res3 = run_predictions(third, samples, root, out, batch_size=3)
    assert third.asked == [] and len(res3.rows) == 10 and len(_ids(out)) == 10
    meta = json.loads(meta_path(out).read_text())
    assert meta["model"]["name"] == "counting" and meta["batch_size"] == 3


def test_bad_images_are_reported_and_retried(dataset, tmp_path):
    root, samples = dataset
    (root / "images" / "3.png").write_bytes(b"not an image")
    samples = [*samples, {"id": "evil", "image": "../../etc/passwd", "question": "q", "answer": "a"}]
    out = tmp_path / "p.jsonl"
    seen = []

    class Collect(Reporter):
        def problem(self, p):
            seen.append(p)

    problems = Problems(Collect())
    res = run_predictions(CountingAdapter(), samples, root, out, batch_size=4, problems=problems)
    assert len(res.rows) == 9 and {e["id"] for e in res.errors} == {"s3", "evil"}
    assert seen == problems and {p.where for p in problems} == {"images/3.png", "../../etc/passwd"}
    assert any("escapes the dataset root" in p.reason for p in problems)
    assert {e["reason"] for e in res.errors} == {str(p) for p in problems}
    assert {json.loads(x)["id"] for x in errors_path(out).read_text().splitlines()} == {"s3", "evil"}
    # fixed image: the rerun answers only it, and the errors file goes away
    Image.new("RGB", (8, 8)).save(root / "images" / "3.png")
    again = CountingAdapter()
    res2 = run_predictions(again, samples[:-1], root, out, batch_size=4)
    assert again.asked == ["q3"] and len(res2.rows) == 10 and not errors_path(out).exists()


def test_one_failing_sample_costs_only_itself(dataset, tmp_path):
    root, samples = dataset

    class Flaky(CountingAdapter):
        def generate(self, images, prompts):
            if "q5" in prompts:
                raise RuntimeError("server said no")
            return super().generate(images, prompts)

    res = run_predictions(Flaky(), samples, root, tmp_path / "p.jsonl", batch_size=4)
    assert len(res.rows) == 9 and [e["id"] for e in res.errors] == ["s5"]
    assert "server said no" in res.errors[0]["reason"]


def test_resume_with_another_model_or_dataset_is_refused(dataset, tmp_path):
    root, samples = dataset
    out = tmp_path / "p.jsonl"
    run_predictions(CountingAdapter(), samples[:3], root, out)
    with pytest.raises(ValueError, match="made with another model"):
        run_predictions(DummyAdapter("echo"), samples, root, out)
    changed = [{**samples[0], "question": "another question"}]
    with pytest.raises(ValueError, match="answered for another question"):
        run_predictions(CountingAdapter(), changed, root, out)
    with pytest.raises(ValueError, match="unique"):
        run_predictions(CountingAdapter(), [samples[0], samples[0]], root, tmp_path / "q.jsonl")


def test_malformed_predictions_file(tmp_path):
    p = tmp_path / "p.jsonl"
    p.write_text('{"id": "a", "prediction": "x"}\nnot json\n{"id": "b", "prediction": "y"}\n')
    with pytest.raises(ValueError, match=r"p.jsonl:2: not JSON"):
        read_predictions(p)


def test_predict_vqa_with_model_options_from_a_command_line(dataset, tmp_path):
    root, samples = dataset
    parser = argparse.ArgumentParser()
    add_arguments(parser, ModelConfig)
    parser.add_argument("--seed", type=int, default=0)  # the caller's own options live beside ours
    args = parser.parse_args(["--model", "dummy:echo", "--batch-size", "4"])
    model = from_args(ModelConfig, args)
    assert model == ModelConfig(spec="dummy:echo", batch_size=4)
    assert model.max_new_tokens is None and model.paper_decoding is False and model.kv_cache == "dynamic"
    rows = predict_vqa(model, samples, root, tmp_path / "vqa.jsonl", seed=args.seed)
    assert [r["prediction"] for r in rows] == [s["question"] for s in samples]
    assert all(
        r["answer"] == s["answer"] and r["model"] == "dummy:echo" for r, s in zip(rows, samples, strict=True)
    )
    meta = json.loads(meta_path(tmp_path / "vqa.jsonl").read_text())
    assert meta["task"] == "vqa" and meta["batch_size"] == 4 and meta["model"]["name"] == "dummy:echo"
    prov = meta["provenance"]
    assert prov["stage"] == "eval vqa" and prov["mmskin"] and prov["config"]["spec"] == "dummy:echo"
