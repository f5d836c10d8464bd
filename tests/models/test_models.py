"""mmskin.models: load_vlm / build_prompt / ModelError and the tiny random-weight models."""

from __future__ import annotations

import json
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mmskin.models import ModelError, build_prompt, build_tiny_vlm, load_vlm, resolve_model_path


def test_importing_models_and_train_cli_stays_light():
    code = (
        "import sys, mmskin.models, mmskin.train.cli, mmskin.train.config, mmskin.cli; mmskin.cli.make_parser(); "
        "heavy = [m for m in ('torch', 'transformers', 'peft') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize(
    "kind,model_cls,image_token",
    [
        ("llava", "LlavaForConditionalGeneration", "<image>"),
        ("qwen2_5_vl", "Qwen2_5_VLForConditionalGeneration", "<|image_pad|>"),
    ],
)
def test_tiny_models_load_prompt_and_generate(kind, model_cls, image_token, tiny, real_image):
    model, proc = load_vlm(str(tiny[kind]))
    assert type(model).__name__ == model_cls
    assert sum(p.numel() for p in model.parameters()) < 300_000
    prompt = build_prompt(proc, "What is the diagnosis?")
    assert prompt.count(image_token) == 1 and "What is the diagnosis?" in prompt
    full = build_prompt(proc, "What is the diagnosis?", "Melanoma.")
    assert full.startswith(prompt) and f"Melanoma.{proc.tokenizer.eos_token}" in full
    enc = proc(images=[real_image], text=[prompt], return_tensors="pt")
    n_image = (enc["input_ids"] == proc.image_token_id).sum().item()
    assert n_image == (16 if kind == "llava" else 2)  # (32/8)^2 patches; Qwen: 56x28 px -> 4x2 -> merged 2x1
    out = model.generate(**enc, max_new_tokens=4, do_sample=False)
    assert out.shape[1] == enc["input_ids"].shape[1] + 4


def test_build_is_idempotent_and_deterministic(tiny, tmp_path):
    weights = tiny["llava"] / "model.safetensors"
    before = weights.stat().st_mtime_ns
    assert build_tiny_vlm("llava", tiny["llava"]) == tiny["llava"]
    assert weights.stat().st_mtime_ns == before  # reused, not rebuilt
    again = build_tiny_vlm("llava", tmp_path / "llava")
    assert (again / "model.safetensors").read_bytes() == weights.read_bytes()  # same seed, same weights
    assert json.loads((again / "mmskin_tiny.json").read_text())["seed"] == 0


def test_build_refuses_a_foreign_folder(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a tiny mmskin model folder"):
        build_tiny_vlm("llava", tmp_path / "x")
    with pytest.raises(ValueError, match="unknown tiny model kind"):
        build_tiny_vlm("gpt2", tmp_path / "y")


def test_tiny_spec_resolves_into_the_cache(tiny, models_cache):
    assert resolve_model_path("tiny:qwen2_5_vl") == str(models_cache / "tiny" / "qwen2_5_vl")
    with pytest.raises(ModelError, match="unknown tiny model"):
        resolve_model_path("tiny:gpt2")


def test_qwen_processor_reloads_without_torchvision(tiny, tmp_path, real_image):
    from mmskin.models import load_processor

    proc = load_processor(str(tiny["qwen2_5_vl"]))
    proc.save_pretrained(tmp_path / "p")
    cfg = json.loads((tmp_path / "p" / "processor_config.json").read_text())
    assert (
        cfg.get("processor_class", "Qwen2_5_VLProcessor") == "Qwen2_5_VLProcessor"
    )  # loads with torchvision too
    again = load_processor(str(tmp_path / "p"), "qwen2_5_vl")
    prompt = build_prompt(again, "Q?")
    a = proc(images=[real_image], text=[prompt], return_tensors="pt")
    b = again(images=[real_image], text=[prompt], return_tensors="pt")
    assert torch.equal(a["input_ids"], b["input_ids"]) and torch.equal(a["pixel_values"], b["pixel_values"])


def test_not_an_image_text_model_and_missing_paths(tmp_path):
    from transformers import BertConfig, BertModel

    BertModel(
        BertConfig(
            vocab_size=32, hidden_size=8, num_hidden_layers=1, num_attention_heads=1, intermediate_size=8
        )
    ).save_pretrained(tmp_path / "bert")
    with pytest.raises(ModelError) as e:
        load_vlm(str(tmp_path / "bert"))
    assert str(e.value).startswith(
        f"{tmp_path / 'bert'}: model type 'bert' is not an image-text-to-text model"
    )
    with pytest.raises(ModelError, match="cannot read a model config") as e:
        load_vlm(str(tmp_path / "nothing-here"))
    assert "\n" not in str(e.value)


def test_original_llava_repo_checkpoint_says_convert(tmp_path):
    (tmp_path / "m").mkdir()
    cfg = {
        "model_type": "llava_mistral",
        "architectures": ["LlavaMistralForCausalLM"],
    }  # microsoft/llava-med-v1.5
    (tmp_path / "m" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelError, match="original LLaVA repository format"):
        load_vlm(str(tmp_path / "m"))


def test_no_chat_template_is_one_line(tiny):
    from mmskin.models import load_processor

    proc = load_processor(str(tiny["llava"]))
    proc.chat_template = None
    with pytest.raises(ModelError, match="no chat template"):
        build_prompt(proc, "Q?")


def test_script_builds_into_its_out_folder(tiny, models_cache, capsys):
    script = Path(__file__).resolve().parents[2] / "scripts" / "make_tiny_vlm.py"
    main = runpy.run_path(str(script), run_name="make_tiny_vlm")["main"]
    assert main(["--out", str(models_cache / "tiny")]) == 0  # the session's models: reused, not rebuilt
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"{k}: {models_cache / 'tiny' / k}" for k in ("llava", "qwen2_5_vl")]
