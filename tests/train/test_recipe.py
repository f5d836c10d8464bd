"""The paper's recipe details of finetune_lora.sh: image_aspect_ratio pad and vision feature layer -2 (recorded and
carried into the merged model, so eval feeds images the same way), batches grouped by length from word counts,
tf32 only where a GPU supports it."""

from __future__ import annotations

import json

import pytest
from train_support import SHARED, write_config

from mmskin.cli import main


def _cfg(tmp_path, vqa_json, kind="llava", **over):
    from mmskin.train.config import load_train_config

    src = {"path": str(vqa_json), "image_root": str(SHARED)}
    return load_train_config(write_config(tmp_path / "cfg.yaml", f"tiny:{kind}", [src], **over))


def test_pad_and_layer_reach_the_merged_model_and_eval(tmp_path, vqa_json, tiny_models, capsys):
    from mmskin.evaluate.adapters import get_adapter
    from mmskin.models import load_vlm
    from mmskin.train.config import TrainRun
    from mmskin.train.sft import run

    cfg = _cfg(tmp_path, vqa_json, max_steps=2, image_aspect_ratio="pad", vision_feature_layer=-2)
    out = tmp_path / "adapter"
    metrics = run(TrainRun(train=cfg, out=str(out), quiet=True)).extra["metrics"]
    assert metrics["model_settings"] == {"image_aspect_ratio": "pad", "vision_feature_layer": -2}
    assert metrics["tf32"] is False  # no Ampere GPU here: not switched on (would raise)
    assert main(["merge", str(out), "--out", str(tmp_path / "merged")]) == 0
    merged_cfg = json.loads((tmp_path / "merged" / "config.json").read_text())
    assert merged_cfg["image_aspect_ratio"] == "pad" and merged_cfg["vision_feature_layer"] == -2
    # the layer is the one the projector reads: the same image gives other features at -1
    from PIL import Image

    image = Image.new("RGB", (40, 20), (180, 90, 60))
    merged = get_adapter(f"hf:{tmp_path / 'merged'}", device="cpu")
    assert merged.prompt_settings()[1] == "pad"
    model, processor = load_vlm(str(tmp_path / "merged"))
    model.config.vision_feature_layer = -1
    other = get_adapter("hf:x", model=model, processor=processor, device="cpu")
    assert abs(merged.image_features([image]) - other.image_features([image])).max() > 1e-4


def test_layer_on_a_model_without_the_setting_is_one_line(tmp_path, vqa_json, tiny_models, capsys):
    cfg = tmp_path / "qwen.yaml"
    write_config(
        cfg,
        "tiny:qwen2_5_vl",
        [{"path": str(vqa_json), "image_root": str(SHARED)}],
        max_steps=1,
        vision_feature_layer=-2,
    )
    assert main(["train", str(cfg), "--out", str(tmp_path / "o"), "--quiet"]) == 1
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("mmskin train:")]
    assert len(lines) == 1 and "vision_feature_layer" in lines[0] and "qwen2_5_vl" in lines[0]


@pytest.mark.parametrize("group", [True, False])
def test_batches_grouped_by_length(tmp_path, vqa_json, tiny_models, group):
    from transformers.trainer_pt_utils import LengthGroupedSampler

    from mmskin.train.sft import CHECKPOINTS, build_trainer, load_data, load_model

    cfg = _cfg(tmp_path, vqa_json, group_by_length=group)
    data = load_data(cfg)
    trainer = build_trainer(cfg, load_model(cfg), data, tmp_path / CHECKPOINTS, quiet=True)
    sampler = trainer._get_train_sampler()
    assert isinstance(sampler, LengthGroupedSampler) == group
    if group:
        words = [sum(len(q.split()) + len(a.split()) for q, a in s.turns) for s in data.samples]
        assert sampler.lengths == words
        order = list(sampler)
        assert sorted(order) == list(range(len(words)))
        # within each megabatch of 50 batches HF sorts by length: the first batch holds the longest sample
        assert words[order[0]] == max(words[i] for i in order[: 50 * cfg.per_device_batch_size])
