"""The train stage's pure decisions and its StageResult shape (no model is trained here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmskin.stage import StageError


@pytest.mark.parametrize(
    "last,resume,expect",
    [
        (None, False, None),  # a fresh folder: start
        ("o/checkpoints/checkpoint-6", True, "o/checkpoints/checkpoint-6"),  # resume from the last one
        (None, True, "o/checkpoints: no checkpoint to resume from (run without --resume to start)"),
        ("o/checkpoints/checkpoint-6", False, "o: holds checkpoints of an earlier run; pass --resume"),
    ],
)
def test_resume_decision(last, resume, expect):
    from mmskin.train.sft import resume_decision

    if expect is None or expect == last:
        assert resume_decision(last, resume, Path("o")) == expect
        return
    with pytest.raises(StageError) as e:
        resume_decision(last, resume, Path("o"))
    assert str(e.value).startswith(expect) and e.value.exit_code == 1


@pytest.mark.parametrize(
    "metrics,seed",
    [
        ({"steps": 20, "final_loss": 1.5, "provenance": {"seed": 3}}, 3),  # metrics.json with the block
        ({"steps": 20, "final_loss": 1.5, "seed": 7}, 7),  # an adapter trained before the block
        ({"steps": 20}, None),
    ],
)
def test_merge_reads_the_training_summary(tmp_path, metrics, seed):
    from mmskin.train.merge import training_summary

    path = tmp_path / "metrics.json"
    path.write_text(json.dumps(metrics))
    got = training_summary(path)
    assert (
        got["seed"] == seed
        and got["steps"] == 20
        and set(got)
        == {
            "base_model",
            "steps",
            "final_loss",
            "seed",
            "data",
        }
    )
    path.write_text("{not json")
    assert training_summary(path) is None
    assert training_summary(tmp_path / "absent.json") is None


def test_bad_data_stops_the_library_run_with_one_line(tmp_path):
    from mmskin.train.config import DataSource, TrainConfig, TrainRun
    from mmskin.train.sft import run

    data = tmp_path / "d.jsonl"
    data.write_text('{"id": "a", "image": "x.png", "question": "q?", "answer": "yes"}\n{oops\n')
    cfg = TrainConfig(base_model="tiny:llava", data=[DataSource(path=str(data))])
    with pytest.raises(StageError) as e:
        run(TrainRun(train=cfg, out=str(tmp_path / "o")))
    assert str(e.value).startswith(f"{data}:2: not valid JSON")  # the first bad sample, then the count
    assert "(and 1 more bad samples; on_bad_sample: skip trains on the rest)" in str(e.value)
    assert not (tmp_path / "o").exists()


def test_an_empty_config_is_a_config_error(tmp_path):
    from mmskin.config import ConfigError
    from mmskin.train.config import TrainConfig, TrainRun
    from mmskin.train.sft import run

    with pytest.raises(ConfigError, match="base_model is required"):
        run(TrainRun(train=TrainConfig(), out=str(tmp_path / "o")))
