"""The eval tasks as library calls: every command-line flag lands in its config field (defaults included), run()
never prints and returns a StageResult, and settings that cannot go together are one ConfigError line."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from mmskin.cli import make_parser
from mmskin.config import ConfigError
from mmskin.evaluate.cli import config_from_args
from mmskin.evaluate.predict import ModelConfig
from mmskin.evaluate.probe import ProbeConfig
from mmskin.evaluate.probe import run as run_probe
from mmskin.evaluate.vqa import EvalVQAConfig
from mmskin.evaluate.vqa import run as run_vqa
from mmskin.evaluate.zeroshot import ZeroShotConfig

MODEL_FLAGS = [
    ("--model", "dummy:echo", "spec", "dummy:echo"),
    ("--batch-size", "4", "batch_size", 4),
    ("--max-new-tokens", "16", "max_new_tokens", 16),
    ("--base-url", "http://127.0.0.1:8000/v1", "base_url", "http://127.0.0.1:8000/v1"),
    ("--concurrency", "2", "concurrency", 2),
    ("--device", "cpu", "device", "cpu"),
    ("--dtype", "bfloat16", "dtype", "bfloat16"),
    ("--kv-cache", "static", "kv_cache", "static"),
]
VQA_FLAGS = [
    ("--predictions", "p.csv", "predictions", Path("p.csv")),
    ("--data", "d.jsonl", "data", Path("d.jsonl")),
    ("--images", "imgs", "images", Path("imgs")),
    ("--predictions-out", "o.jsonl", "predictions_out", Path("o.jsonl")),
    ("--dataset", "ds", "dataset", Path("ds")),
    ("--limit", "5", "limit", 5),
    ("--compat", "standard", "compat", "standard"),
    ("--metrics", "bleu,recall", "metrics", "bleu,recall"),
    ("--bertscore-model", "minilm", "bertscore_model", "minilm"),
    ("--bertscore-layer", "6", "bertscore_layer", 6),
    ("--bertscore-baseline", "b.tsv", "bertscore_baseline", "b.tsv"),
    ("--bootstrap", "50", "bootstrap", 50),
    ("--seed", "3", "seed", 3),
]
ZEROSHOT_FLAGS = [
    ("--prompt", "p.txt", "prompt", "p.txt"),
    ("--predictions-out", "o.jsonl", "predictions_out", Path("o.jsonl")),
    ("--seed", "2", "seed", 2),
    ("--n-boot", "10", "n_boot", 10),
    ("--limit", "3", "limit", 3),
]
PROBE_FLAGS = [
    ("--data", "test.csv", "data", Path("test.csv")),
    ("--train", "train.csv", "train", Path("train.csv")),
    ("--images", "imgs", "images", Path("imgs")),
    ("--features", "f.npz", "features", Path("f.npz")),
    ("--folds", "3", "folds", 3),
    ("--cache-dir", "cache", "cache_dir", Path("cache")),
    ("--seed", "2", "seed", 2),
    ("--n-boot", "10", "n_boot", 10),
    ("--limit", "3", "limit", 3),
]
BASE = {
    "vqa": (EvalVQAConfig, ["eval", "vqa", "--out", "r.json"]),
    "zeroshot": (
        ZeroShotConfig,
        ["eval", "zeroshot", "HAM10000", "--data", "t.csv", "--images", "i", "--out", "r.json"],
    ),
    "probe": (ProbeConfig, ["eval", "probe", "DDI_2class", "--out", "r.json"]),
}


def parse(task: str, *extra: str):
    cls, argv = BASE[task]
    args = make_parser().parse_args([*argv, *extra])
    return config_from_args(cls, args), args


@pytest.mark.parametrize("task", sorted(BASE))
def test_defaults_are_the_documented_ones(task):
    config, args = parse(task)
    assert config.model == ModelConfig() and args.quiet is False
    assert (
        config.model.batch_size == 8 and config.model.kv_cache == "dynamic" and config.model.device == "auto"
    )
    assert config.out == Path("r.json") and config.seed == 0 and config.limit is None
    if task == "vqa":
        assert (config.compat, config.metrics, config.bootstrap) == (
            "mmskin",
            "bleu,meteor,rouge,recall,bertscore",
            1000,
        )
    else:
        assert config.n_boot == 1000 and config.benchmark in ("HAM10000", "DDI_2class")


@pytest.mark.parametrize(
    "task,flag,value,field,want",
    [("vqa", *f) for f in VQA_FLAGS]
    + [("zeroshot", *f) for f in ZEROSHOT_FLAGS]
    + [("probe", *f) for f in PROBE_FLAGS],
)
def test_each_flag_sets_its_field(task, flag, value, field, want):
    config, _ = parse(task, flag, value)
    assert getattr(config, field) == want


@pytest.mark.parametrize("task", sorted(BASE))
@pytest.mark.parametrize("flag,value,field,want", MODEL_FLAGS)
def test_model_flags_are_shared(task, flag, value, field, want):
    config, _ = parse(task, flag, value)
    assert getattr(config.model, field) == want


def test_paper_decoding_and_quiet():
    config, args = parse("vqa", "--paper-decoding", "--quiet")
    assert config.model.paper_decoding is True and args.quiet is True


@pytest.mark.parametrize(
    "config,message",
    [
        (EvalVQAConfig(out=Path("r.json")), "give --predictions FILE, or --data FILE"),
        (
            EvalVQAConfig(predictions=Path("p.csv"), out=Path("r.json"), model=ModelConfig(spec="dummy")),
            "give --predictions FILE, or --data FILE",
        ),
        (EvalVQAConfig(out=Path("r.json"), model=ModelConfig(spec="dummy")), "--model needs --data FILE"),
        (
            EvalVQAConfig(predictions=Path("p.csv"), out=Path("r.json"), metrics="bleu,cider"),
            "unknown metric",
        ),
        (EvalVQAConfig(predictions=Path("p.csv")), "--out"),
    ],
)
def test_vqa_settings_that_cannot_go_together(config, message):
    with pytest.raises(ConfigError, match=message):
        run_vqa(config)


def test_probe_needs_exactly_one_source(tmp_path):
    with pytest.raises(ConfigError, match="exactly one of --model SPEC and --features"):
        run_probe(ProbeConfig(benchmark="DDI_2class", out=tmp_path / "r.json"))


def test_library_run_is_silent_and_returns_a_stage_result(tmp_path, capsys):
    preds = tmp_path / "p.csv"
    with open(preds, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["image", "question", "answer", "prediction"])
        w.writerow(["a.png", "q", "a red papule", "a red papule"])
        w.writerow(["b.png", "q", "a nevus", "a nevus on the arm"])
        f.write("c.png,only two\n")
    out = tmp_path / "r.json"
    result = run_vqa(EvalVQAConfig(predictions=preds, metrics="recall", bootstrap=0, out=out))
    assert capsys.readouterr() == ("", "")
    assert result.stage == "eval vqa" and result.exit_code == 1  # the malformed row
    assert [str(p) for p in result.problems] == [
        f"{preds}:4: missing answer, prediction (row has fewer fields than the header)"
    ]
    assert result.counts == {"scored": 2, "empty_predictions": 0, "malformed": 1}
    assert result.summary == f"eval vqa (mmskin): n=2 empty_predictions=0 malformed=1 recall=1.0000 -> {out}"
    assert "| recall |" in result.extra["table"] and result.extra["results"]["errors"] == [
        str(result.problems[0])
    ]
    assert out.is_file()
