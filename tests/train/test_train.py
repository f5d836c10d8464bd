"""mmskin train / merge end to end on tiny random-weight models and real images (CPU, seconds)."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest
import torch
from train_support import KINDS, SHARED, batch, write_config

from mmskin.cli import main


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("kind", KINDS)
def test_loss_goes_down(kind, trained):
    _, m, _, _ = trained[kind]
    losses = [h["loss"] for h in m["loss_history"]]
    assert m["steps"] == 20 and len(losses) == 20
    assert m["initial_loss"] == losses[0] and m["final_loss"] == losses[-1]
    first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    assert last < first - 0.3, losses


@pytest.mark.parametrize("kind", KINDS)
def test_outputs_and_provenance(kind, trained):
    from mmskin import __version__
    from mmskin.train.config import load_train_config

    out, m, _, _ = trained[kind]
    for name in (
        "adapter_model.safetensors",
        "adapter_config.json",
        "README.md",
        "metrics.json",
        "config.yaml",
    ):
        assert (out / name).is_file(), name
    assert (out / "tokenizer.json").is_file() and (out / "chat_template.jinja").is_file()
    assert not list(out.glob("*.bin"))
    saved = json.loads((out / "metrics.json").read_text())
    for key in ("initial_loss", "final_loss", "steps", "train_seconds", "loss_history", "provenance"):
        assert key in saved
    prov = saved["provenance"]
    assert prov["stage"] == "train" and prov["mmskin"] == __version__ and prov["seed"] == 0
    assert set(prov["packages"]) >= {"torch", "transformers", "peft"} and saved["data"][0]["samples"] == 24
    card = (out / "README.md").read_text()
    assert f"tiny:{kind}" in card and "Smoke run" in card and "| 24 | 0 | 24 |" in card
    assert f"mmskin {__version__}, Python " in card and f"peft {prov['packages']['peft']}" in card
    again = load_train_config(out / "config.yaml")
    assert again.to_dict() == prov["config"] == m["provenance"]["config"]


@pytest.mark.parametrize("kind", KINDS)
def test_lora_and_projector_changed_base_and_vision_did_not(kind, trained, tiny_models):
    from safetensors.torch import load_file

    from mmskin.models import architecture, load_vlm

    out, _, model, _ = trained[kind]
    adapter = load_file(out / "adapter_model.safetensors")
    lora = {k: v for k, v in adapter.items() if "lora_" in k}
    assert lora and all("language_model" in k for k in lora)  # never the vision tower
    assert all(v.abs().max() > 0 for k, v in lora.items() if "lora_B" in k)  # lora_B starts at zero
    base, _ = load_vlm(str(tiny_models[kind]))
    base_sd = base.state_dict()
    proj = architecture(base.config.model_type)["projector"][0]
    proj_keys = [k for k in adapter if proj in k and "lora_" not in k]
    assert proj_keys
    changed = 0
    for k in proj_keys:
        base_key = k.replace("base_model.model.", "")
        changed += not torch.equal(adapter[k], base_sd[base_key])
    assert changed == len(proj_keys)
    # the frozen weights inside the trained model are the base's, bit for bit
    trained_sd = {
        k.replace("base_model.model.", "").replace(".base_layer", ""): v
        for k, v in model.state_dict().items()
    }
    frozen = [k for k in base_sd if k in trained_sd and proj not in k]
    assert len(frozen) > 20
    assert all(torch.equal(base_sd[k], trained_sd[k]) for k in frozen)


@pytest.mark.parametrize("kind", KINDS)
def test_reload_and_merge_give_the_same_logits(kind, trained, tmp_path, tiny_models, capsys):
    from peft import PeftModel

    from mmskin.models import load_vlm

    out, _, model, processor = trained[kind]
    base_hash = _sha(tiny_models[kind] / "model.safetensors")
    inputs = batch(processor)
    with torch.no_grad():
        ref = model(**inputs).logits
        base, _ = load_vlm(str(tiny_models[kind]))
        reloaded = PeftModel.from_pretrained(base, str(out)).eval()
        assert torch.equal(reloaded(**inputs).logits, ref)

        assert main(["merge", str(out), "--out", str(tmp_path / "merged")]) == 0
        assert "merged" in capsys.readouterr().out
        assert (tmp_path / "merged" / "model.safetensors").is_file()
        merged, merged_proc = load_vlm(str(tmp_path / "merged"))
        diff = (merged.eval()(**inputs).logits - ref).abs().max().item()
    assert diff < 1e-5, diff
    assert merged_proc.chat_template == processor.chat_template
    assert _sha(tiny_models[kind] / "model.safetensors") == base_hash  # training never wrote into the base
    info = json.loads((tmp_path / "merged" / "mmskin_merge.json").read_text())
    assert info["training"]["steps"] == 20 and info["training"]["seed"] == 0
    assert info["provenance"]["stage"] == "merge" and info["provenance"]["config"]["adapter"] == str(out)


def _one_line_err(capsys) -> str:
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("mmskin ")]
    assert len(err) == 1, err
    return err[0]


def test_unknown_config_key_is_one_line(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("base_model: tiny:llava\ndata: [{path: x.json}]\nlora_rank: 8\n")
    assert main(["train", str(cfg)]) == 2
    assert _one_line_err(capsys) == f"mmskin train: {cfg}: unknown key 'lora_rank' (did you mean 'lora_r'?)"
    cfg.write_text("base_model: tiny:llava\ndata: [{path: x.json, wieght: 2}]\n")
    assert main(["train", str(cfg)]) == 2
    assert "data[0]: unknown key 'wieght' (did you mean 'weight'?)" in _one_line_err(capsys)


def test_missing_image_is_one_line(tmp_path, capsys, vqa_json):
    items = json.loads(vqa_json.read_text())
    items[3]["image"] = "images/clinical/does_not_exist.jpg"
    data = tmp_path / "d.json"
    data.write_text(json.dumps(items))
    cfg = write_config(tmp_path / "c.yaml", "tiny:llava", [{"path": str(data), "image_root": str(SHARED)}])
    assert main(["train", str(cfg), "--out", str(tmp_path / "o")]) == 1
    line = _one_line_err(capsys)
    assert line.startswith(
        f"mmskin train: {data}: sample s3: image images/clinical/does_not_exist.jpg not found"
    )
    assert not (tmp_path / "o").exists()  # refused before any model was loaded or folder written


def test_lora_target_matching_nothing_is_one_line(tmp_path, capsys, vqa_json, tiny_models):
    src = [{"path": str(vqa_json), "image_root": str(SHARED)}]
    cfg = write_config(tmp_path / "c.yaml", "tiny:llava", src, lora_target_modules=["q_proj", "c_attn"])
    assert main(["train", str(cfg), "--out", str(tmp_path / "o")]) == 1
    line = _one_line_err(capsys)
    assert "LoRA target(s) c_attn match no linear layer of the language model" in line
    assert "down_proj" in line  # lists what exists


def test_base_model_that_is_not_image_text_to_text(tmp_path, capsys, vqa_json, mmskin_cache):
    from transformers import LlamaConfig, LlamaForCausalLM

    text_only = tmp_path / "llama"
    LlamaForCausalLM(
        LlamaConfig(
            vocab_size=64,
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=1,
        )
    ).save_pretrained(text_only)
    src = [{"path": str(vqa_json), "image_root": str(SHARED)}]
    cfg = write_config(tmp_path / "c.yaml", str(text_only), src)
    assert main(["train", str(cfg), "--out", str(tmp_path / "o")]) == 1
    assert _one_line_err(capsys) == (
        f"mmskin train: {text_only}: model type 'llama' is not an image-text-to-text model "
        "(AutoModelForImageTextToText cannot load it; use a vision-language model such as LLaVA or Qwen2.5-VL)"
    )


def test_out_of_memory_names_the_settings_to_lower(tmp_path, capsys, vqa_json, tiny_models, monkeypatch):
    from transformers import Trainer

    def oom(*a, **k):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(Trainer, "training_step", oom)
    src = [{"path": str(vqa_json), "image_root": str(SHARED)}]
    cfg = write_config(tmp_path / "c.yaml", "tiny:llava", src)
    assert main(["train", str(cfg), "--out", str(tmp_path / "o"), "--quiet"]) == 1
    line = _one_line_err(capsys)
    assert "out of memory at per_device_batch_size=4, max_length=512" in line
    assert "lower per_device_batch_size" in line and "lower max_length" in line
    assert "gradient_checkpointing: true" in line


def test_resume_continues_from_the_checkpoint(tmp_path, capsys, vqa_json, tiny_models):
    src = [{"path": str(vqa_json), "image_root": str(SHARED)}]
    cfg = write_config(tmp_path / "c.yaml", "tiny:llava", src, max_steps=6, save_steps=3)
    out = tmp_path / "o"
    assert main(["train", str(cfg), "--out", str(out), "--quiet"]) == 0
    first = json.loads((out / "metrics.json").read_text())
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["checkpoint-3", "checkpoint-6"]
    # an interrupted run: the last checkpoint and the final files are gone
    shutil.rmtree(out / "checkpoints" / "checkpoint-6")
    (out / "metrics.json").unlink()
    assert main(["train", str(cfg), "--out", str(out), "--quiet"]) == 1
    assert "pass --resume" in _one_line_err(capsys)
    assert main(["train", str(cfg), "--out", str(out), "--resume", "--quiet"]) == 0
    second = json.loads((out / "metrics.json").read_text())
    assert second["resumed_from"] == "checkpoint-3" and second["steps"] == 6
    # the resumed steps 4-6 repeat the uninterrupted run: same data order, weights, optimizer and schedule
    a = {h["step"]: h["loss"] for h in first["loss_history"]}
    b = {h["step"]: h["loss"] for h in second["loss_history"]}
    assert sorted(b) == [1, 2, 3, 4, 5, 6]
    for step in (4, 5, 6):
        assert b[step] == pytest.approx(a[step], abs=1e-4)
    assert "trained 6 steps" in capsys.readouterr().out


def test_eval_vqa_runs_on_the_merged_model(trained, tmp_path, vqa_json, capsys):
    """H5's ``mmskin eval vqa --model hf:PATH`` scores the merged SkinVL (a smoke run: tiny random model)."""
    out, _, _, _ = trained["llava"]
    merged = tmp_path / "merged"
    assert main(["merge", str(out), "--out", str(merged)]) == 0
    items = json.loads(vqa_json.read_text())[::6]
    data = tmp_path / "test.jsonl"
    data.write_text(
        "".join(
            json.dumps(
                {
                    "id": it["id"],
                    "image": it["image"],
                    "question": it["conversations"][0]["value"].replace("<image>\n", ""),
                    "answer": it["conversations"][1]["value"],
                }
            )
            + "\n"
            for it in items
        )
    )
    res = tmp_path / "res.json"
    argv = ["eval", "vqa", "--data", str(data), "--images", str(SHARED), "--model", f"hf:{merged}"]
    argv += [
        "--metrics",
        "bleu,rouge,recall",
        "--bootstrap",
        "10",
        "--device",
        "cpu",
        "--out",
        str(res),
        "--quiet",
    ]
    assert main(argv) == 0, capsys.readouterr().err
    results = json.loads(res.read_text())
    assert results["overall"]["n"] == len(items) and results["model"] == f"hf:{merged}"
    assert 0 <= results["overall"]["rougeL"] <= 1


def test_projector_gets_its_own_learning_rate(tiny_models, tmp_path):
    from transformers import TrainingArguments

    from mmskin.models import load_vlm
    from mmskin.train.config import TrainConfig
    from mmskin.train.sft import _make_trainer_class, apply_lora

    model, _ = load_vlm(str(tiny_models["qwen2_5_vl"]))
    cfg = TrainConfig(base_model="x", lora_r=4, learning_rate=5e-5, projector_learning_rate=2e-5)
    model = apply_lora(model, cfg, "x")
    cls = _make_trainer_class()
    cls.projector_lr = cfg.projector_learning_rate
    args = TrainingArguments(
        output_dir=str(tmp_path), learning_rate=cfg.learning_rate, weight_decay=0.01, report_to=[]
    )
    opt = cls(model=model, args=args).create_optimizer()
    names = {id(p): n for n, p in model.named_parameters()}
    seen = 0
    for group in opt.param_groups:
        group_names = [names[id(p)] for p in group["params"]]
        is_proj = {("merger" in n and "modules_to_save" in n) for n in group_names}
        assert len(is_proj) == 1  # a group is all projector or all LoRA
        assert group["lr"] == (2e-5 if is_proj.pop() else 5e-5)
        seen += len(group_names)
    assert seen == sum(p.requires_grad for p in model.parameters())
    assert all(
        "visual.blocks" not in n for n, p in model.named_parameters() if p.requires_grad
    )  # vision frozen


def test_on_bad_sample_skip_trains_on_the_rest(tmp_path, capsys, vqa_json, tiny_models):
    items = json.loads(vqa_json.read_text())
    items[0]["image"] = "images/missing.jpg"
    data = tmp_path / "d.json"
    data.write_text(json.dumps(items))
    src = [{"path": str(data), "image_root": str(SHARED)}]
    cfg = write_config(tmp_path / "c.yaml", "tiny:llava", src, max_steps=2, on_bad_sample="skip")
    assert main(["train", str(cfg), "--out", str(tmp_path / "o"), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert "1 bad samples skipped" in captured.out
    assert "skipped: " in captured.err and "sample s0: image images/missing.jpg not found" in captured.err
    m = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert m["data"][0]["bad"] == 1 and m["data"][0]["used"] == 23 and len(m["rejected_samples"]) == 1
