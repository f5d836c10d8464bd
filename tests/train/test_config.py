"""The training config: shipped recipes, strict keys, overrides, --help."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmskin.cli import main
from mmskin.train.config import ConfigError, config_help, dump_config, load_train_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "train"


@pytest.mark.parametrize("name,sources", [("mm", 1), ("pub", 11), ("pubmm", 12)])
def test_paper_recipes(name, sources):
    cfg = load_train_config(CONFIGS / f"{name}.yaml")
    assert len(cfg.data) == sources
    assert (cfg.lora_r, cfg.lora_alpha, cfg.learning_rate, cfg.projector_learning_rate) == (
        128,
        64,
        5e-5,
        2e-5,
    )
    assert (cfg.lr_scheduler, cfg.warmup_ratio, cfg.weight_decay, cfg.num_epochs) == (
        "cosine",
        0.02,
        0.01,
        1.0,
    )
    assert (cfg.per_device_batch_size, cfg.precision, cfg.max_length) == (16, "bf16", 2048)
    assert cfg.train_projector and not cfg.train_vision_tower
    assert cfg.output_dir == f"runs/skinvl-{name}"


def test_tiny_cpu_config_and_round_trip(tmp_path):
    cfg = load_train_config(
        CONFIGS / "tiny-cpu.yaml", overrides=["max_steps=5", "data=[{path: a.json, weight: 2}]"]
    )
    assert cfg.base_model == "tiny:llava" and cfg.max_steps == 5 and cfg.data[0].weight == 2.0
    (tmp_path / "c.yaml").write_text(dump_config(cfg))
    assert load_train_config(tmp_path / "c.yaml") == cfg


@pytest.mark.parametrize(
    "text,message",
    [
        (
            "base_model: x\ndata: [{path: a.json}]\nlearning_rte: 1\n",
            "unknown key 'learning_rte' (did you mean 'learning_rate'?)",
        ),
        (
            "base_model: x\ndata: [{path: a.json}]\nlora_r: eight\n",
            "lora_r: expected an integer, got 'eight'",
        ),
        (
            "base_model: x\ndata: [{path: a.json}]\nprecision: bf32\n",
            "precision must be one of bf16, fp16, fp32",
        ),
        ("base_model: x\ndata: {path: a.json}\n", "data: expected a list"),
        ("base_model: x\ndata: [{path: a.json, weight: 0}]\n", "data[0]: weight must be > 0"),
        ("data: [{path: a.json}]\n", "base_model is required"),
        ("base_model: x\ndata: []\n", "data needs at least one source"),
        ("- just\n- a list\n", "expected a mapping of settings"),
        ("base_model: [unclosed\n", "not valid YAML"),
        (
            "base_model: x\ndata: [{path: a.json}]\ngradient_checkpointing: yes please\n",
            "expected true or false",
        ),
    ],
)
def test_bad_configs_are_one_line(tmp_path, text, message):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_train_config(path)
    assert str(e.value).startswith(str(path)) and message in str(e.value) and "\n" not in str(e.value)


def test_help_lists_every_key(capsys):
    text = config_help()
    for key in (
        "base_model",
        "lora_target_modules",
        "projector_learning_rate",
        "image_root",
        "weight",
        "on_bad_sample",
    ):
        assert f"  {key}: " in text
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert "mmskin train configs/train/tiny-cpu.yaml" in out and "warmup_ratio: 0.02" in out
