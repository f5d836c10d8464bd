"""The README's ``mmskin train configs/train/tiny-cpu.yaml`` works as written right after ``mmskin demo``: the
config names the file the demo writes (``mmskin-demo/exports/vqa_llava.json``), relative to the folder both run in."""

from __future__ import annotations

import json
from pathlib import Path

from mmskin.cli import main

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "train" / "tiny-cpu.yaml"


def test_tiny_cpu_config_trains_on_the_demo_output(tmp_path, monkeypatch, tiny_models, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--quiet", "--skip-train"]) == 0  # default --out mmskin-demo, as `make demo`
    assert (tmp_path / "mmskin-demo" / "exports" / "vqa_llava.json").is_file()
    # as written, only shortened to 2 steps (the config's own output_dir, runs/tiny-cpu)
    assert main(["train", str(CONFIG), "--set", "max_steps=2", "--quiet"]) == 0
    metrics = json.loads((tmp_path / "runs" / "tiny-cpu" / "metrics.json").read_text())
    assert metrics["steps"] == 2 and metrics["data"][0]["samples"] > 0
    assert "trained 2 steps" in capsys.readouterr().out
