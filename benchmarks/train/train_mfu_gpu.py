#!/usr/bin/env python
"""Training throughput and model FLOPs utilisation (MFU) of the SkinVL recipe at LLaVA-Med-7B shape, on one GPU.

    # one H100/H200 (about 4-6 min incl. building the random 7.6B model; prints one JSON line per setting):
    python benchmarks/train/train_mfu_gpu.py --sweep       # -> benchmarks/results/train/train_mfu_gpu_<time>.json
    python benchmarks/train/train_mfu_gpu.py --micro-batch 4 --grad-accum 4      # one setting
    python benchmarks/train/train_mfu_gpu.py --count-only  # FLOPs per sample and the tokens/s 35% MFU needs
    # CPU check of the script itself (seconds, tiny shape; the MFU printed is against a nominal 0.1 TFLOPS):
    python benchmarks/train/train_mfu_gpu.py --tiny

Needs a CUDA build of torch, transformers >= 5 and peft (``pip install -e .[train]``); about 45 GB of GPU memory for
the weights, LoRA optimizer state and micro-batch 2 (larger micro-batches need gradient checkpointing, see --sweep).

The model is LLaVA-Med v1.5's shape with random weights, built from configs directly on the GPU in bf16: Mistral-7B
text model (hidden 4096, 32 layers, 32 heads, 8 KV heads, MLP 14336, vocab 32064) + CLIP ViT-L/14-336 (hidden 1024,
24 layers, 16 heads, MLP 4096, 336 px, patch 14 -> 576 image tokens, features of layer -2) + the 2-layer MLP
projector. It is wrapped by mmskin's own ``apply_lora`` (r=128, alpha=64 on the language model's q/k/v/o/gate/up/
down projections, projector trained in full, vision tower frozen; trainable weights in fp32, base in bf16, bf16
autocast) and trained with AdamW (two parameter groups: LoRA LR 5e-5, projector LR 2e-5) and gradient clipping 1.0,
as ``mmskin train configs/train/mm.yaml`` does. Each sample is one 336x336 image + text filling ``--seq-len``
tokens (the recipe's max length 2048: the worst case; real MM-Skin samples are ~576 image + ~100 text tokens).
The recipe's batch is 16 per device; ``--micro-batch`` x ``--grad-accum`` = 16 keeps it when 16 do not fit.

Model FLOPs per optimizer step (MFU counts these only; gradient-checkpointing recompute is not counted, so with
``--grad-ckpt`` the hardware does ~1.5x the counted FLOPs on the language model):
  language model, per token:  2*N_frozen (forward)  + 2*N_frozen (backward: activation gradients only, the frozen
                              weights need no weight gradients) + 6*N_lora (forward, activation and weight grads)
                              with N_* = weights of the linear layers incl. lm_head (embedding lookups are free)
  LM attention, per sequence: 12 * L * d * s(s+1)/2  (QK^T and AV over the causal pairs: 4*P*d forward, 2x that
                              backward; P = s(s+1)/2 causal pairs, d = heads*head_dim, L = 32 layers)
  vision tower, per image:    forward only (nothing trainable in or below it): 2*N_vit_used*577 + 4*577^2*d_v per
                              layer used (23 layers up to the feature layer -2, non-causal)
  projector, per image:       6*N_proj*576 (trained in full)
  MFU = model FLOPs per step / step time / peak dense bf16 FLOP/s. Peaks assumed (dense, no sparsity): H100 SXM
  989.4 TFLOPS, H100 NVL 835.5, H100 PCIe 756.5, H200 989.4, A100 312; override with --peak-tflops.
Target: MFU >= 35% on one H100. At seq 2048 a sample is 66.1 model TFLOP (LM linear 62.4, LM attention 3.3, vision
0.37, projector 0.07), so 35% on an H100 SXM means 5.24 samples/s = 10.7k tokens/s (--count-only prints this).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, for _common
from _common import add_out_argument, save_results  # noqa: E402

PEAK_TFLOPS = (  # (substring of torch.cuda.get_device_name, dense bf16 TFLOPS); first match wins
    ("H100 PCIe", 756.5),
    ("H100 NVL", 835.5),
    ("H100", 989.4),
    ("H200", 989.4),
    ("GH200", 989.4),
    ("A100", 312.0),
)

PACKAGES = ("torch", "transformers", "peft", "accelerate")  # versions in the results' provenance

# (micro-batch, grad-accum, grad-ckpt) tried by --sweep, every one a batch of 16 per device
SWEEP = ((16, 1, True), (8, 2, True), (4, 4, False), (2, 8, False))


def build_model(tiny: bool, device, attn: str):
    import torch
    from transformers import CLIPVisionConfig, LlavaConfig, LlavaForConditionalGeneration, MistralConfig

    if tiny:
        vision = CLIPVisionConfig(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=3,
            num_attention_heads=4,
            image_size=56,
            patch_size=14,
            projection_dim=64,
        )
        text = MistralConfig(
            vocab_size=512,
            hidden_size=64,
            intermediate_size=224,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=4096,
            sliding_window=None,
        )
    else:
        vision = CLIPVisionConfig(
            hidden_size=1024,
            intermediate_size=4096,
            num_hidden_layers=24,
            num_attention_heads=16,
            image_size=336,
            patch_size=14,
            projection_dim=768,
        )
        text = MistralConfig(
            vocab_size=32064,
            hidden_size=4096,
            intermediate_size=14336,
            num_hidden_layers=32,
            num_attention_heads=32,
            num_key_value_heads=8,
            max_position_embeddings=32768,
            rope_theta=1e6,
            sliding_window=None,
        )
    image_token = text.vocab_size - 1
    cfg = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_id=image_token,
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
        projector_hidden_act="gelu",
    )
    cfg._attn_implementation = attn
    dtype = torch.float32 if device.type == "cpu" else torch.bfloat16
    with torch.device(device):
        model = LlavaForConditionalGeneration._from_config(cfg, dtype=dtype, attn_implementation=attn)
    return model, cfg


def linear_params(model, cfg) -> dict[str, int]:
    """Weights of the linear layers by role (what the FLOPs formula multiplies)."""
    import torch

    n_vision_layers = (
        cfg.vision_config.num_hidden_layers + 1 + cfg.vision_feature_layer
    )  # layers up to the feature
    out = {"lm_frozen": 0, "lm_lora": 0, "projector": 0, "vision_used": 0}
    for name, mod in model.named_modules():
        if not isinstance(mod, torch.nn.Linear):
            continue
        n = mod.weight.numel()
        if "lora_" in name:
            out["lm_lora"] += n
        elif "multi_modal_projector" in name:
            if "modules_to_save" in name:
                out["projector"] += n
        elif "vision_tower" in name:
            layer = [p for p in name.split(".") if p.isdigit()]
            if layer and int(layer[0]) < n_vision_layers:
                out["vision_used"] += n
        elif "language_model" in name or name.endswith("lm_head") or "lm_head." in name:
            out["lm_frozen"] += n
    return out


def model_flops_per_sample(params: dict[str, int], cfg, seq_len: int) -> dict[str, float]:
    text, vision = cfg.text_config, cfg.vision_config
    d = text.num_attention_heads * (
        getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
    )
    pairs = seq_len * (seq_len + 1) / 2
    n_patches = (vision.image_size // vision.patch_size) ** 2
    s_v = n_patches + 1  # + CLS
    v_layers = vision.num_hidden_layers + 1 + cfg.vision_feature_layer
    return {
        "lm_linear": seq_len * (4 * params["lm_frozen"] + 6 * params["lm_lora"]),
        "lm_attention": 12 * text.num_hidden_layers * d * pairs,
        "vision": 2 * params["vision_used"] * s_v + 4 * s_v * s_v * vision.hidden_size * v_layers,
        "projector": 6 * params["projector"] * n_patches,
    }


def make_batch(cfg, micro: int, seq_len: int, device, gen):
    import torch

    n_img = (cfg.vision_config.image_size // cfg.vision_config.patch_size) ** 2
    if seq_len <= n_img + 8:
        raise SystemExit(f"--seq-len {seq_len} must exceed the {n_img} image tokens by a few text tokens")
    vocab = cfg.text_config.vocab_size
    ids = torch.randint(3, vocab - 1, (micro, seq_len), generator=gen)
    ids[:, 1 : 1 + n_img] = cfg.image_token_id
    ids[:, 0] = 1  # BOS
    labels = ids.clone()
    labels[:, : 1 + n_img + 16] = -100  # prompt (BOS, image tokens, question) masked as in training
    size = cfg.vision_config.image_size
    pixels = torch.randn(micro, 3, size, size, generator=gen)
    dtype = torch.float32 if device.type == "cpu" else torch.bfloat16
    return {
        "input_ids": ids.to(device),
        "attention_mask": torch.ones_like(ids).to(device),
        "labels": labels.to(device),
        "pixel_values": pixels.to(device=device, dtype=dtype),
    }


def run_setting(model, cfg, args, micro: int, accum: int, ckpt: bool, device) -> dict:
    import torch

    from mmskin.train.sft import _is_oom

    if ckpt:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    else:
        model.gradient_checkpointing_disable()
    model.train()
    groups = {True: [], False: []}
    for n, p in model.named_parameters():
        if p.requires_grad:
            groups["modules_to_save" in n].append(p)
    opt = torch.optim.AdamW(
        [{"params": groups[False], "lr": 5e-5}, {"params": groups[True], "lr": 2e-5}],
        weight_decay=0.01,
        fused=device.type == "cuda",
    )
    gen = torch.Generator().manual_seed(0)
    batches = [make_batch(cfg, micro, args.seq_len, device, gen) for _ in range(min(accum, 2))]
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    times, losses = [], []
    try:
        for step in range(args.warmup + args.steps):
            sync()
            t0 = time.perf_counter()
            for k in range(accum):
                with autocast:
                    loss = model(**batches[k % len(batches)]).loss / accum
                loss.backward()
            torch.nn.utils.clip_grad_norm_(groups[False] + groups[True], 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            sync()
            if step >= args.warmup:
                times.append(time.perf_counter() - t0)
            losses.append(float(loss.detach()) * accum)
    except Exception as e:  # noqa: BLE001 - OOM arrives as several types
        if not _is_oom(e):
            raise
        del opt
        if device.type == "cuda":
            torch.cuda.empty_cache()
        return {"micro_batch": micro, "grad_accum": accum, "grad_ckpt": ckpt, "oom": True}
    params = linear_params(model, cfg)
    per_sample = model_flops_per_sample(params, cfg, args.seq_len)
    batch = micro * accum
    step_s = sorted(times)[len(times) // 2]  # median
    flops_step = batch * sum(per_sample.values())
    peak = args.peak_tflops * 1e12 if args.peak_tflops else None
    del opt
    return {
        "micro_batch": micro,
        "grad_accum": accum,
        "grad_ckpt": ckpt,
        "oom": False,
        "batch": batch,
        "seq_len": args.seq_len,
        "step_seconds_median": round(step_s, 4),
        "step_seconds": [round(t, 4) for t in times],
        "tokens_per_second": round(batch * args.seq_len / step_s, 1),
        "samples_per_second": round(batch / step_s, 3),
        "model_tflops_per_step": float(f"{flops_step / 1e12:.4g}"),
        "achieved_tflops": float(f"{flops_step / step_s / 1e12:.4g}"),
        "mfu": round(flops_step / step_s / peak, 4) if peak else None,
        "flops_per_sample_by_part_tflop": {k: float(f"{v / 1e12:.4g}") for k, v in per_sample.items()},
        "linear_params": params,
        "peak_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2)
        if device.type == "cuda"
        else None,
        "loss_first_last": [round(losses[0], 4), round(losses[-1], 4)],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tiny", action="store_true", help="tiny shape on CPU: checks the script, not the GPU")
    p.add_argument("--micro-batch", type=int, default=4, help="samples per forward pass (default 4)")
    p.add_argument("--grad-accum", type=int, default=4, help="forward passes per step (default 4: batch 16)")
    p.add_argument("--grad-ckpt", action="store_true", help="gradient checkpointing on the language model")
    p.add_argument(
        "--sweep", action="store_true", help="try every (micro, accum, ckpt) of SWEEP, batch 16 each"
    )
    p.add_argument(
        "--seq-len", type=int, default=2048, help="tokens per sample incl. 576 image tokens (2048)"
    )
    p.add_argument("--warmup", type=int, default=2, help="untimed steps (default 2)")
    p.add_argument("--steps", type=int, default=4, help="timed steps (default 4; the median is reported)")
    p.add_argument("--attn", default="sdpa", help="attention implementation (sdpa, flash_attention_2, eager)")
    p.add_argument(
        "--peak-tflops", type=float, default=None, help="peak dense bf16 TFLOPS (default: by GPU name)"
    )
    p.add_argument(
        "--count-only", action="store_true", help="build on the meta device, print the FLOPs per sample, exit"
    )
    add_out_argument(p, "train", "train_mfu_gpu", "--out")
    args = p.parse_args(argv)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from mmskin.train.config import TrainConfig
    from mmskin.train.sft import apply_lora

    if args.count_only:
        model, cfg = build_model(args.tiny, torch.device("meta"), "eager")
        r, a = (8, 16) if args.tiny else (128, 64)
        model = apply_lora(
            model, TrainConfig(base_model="random", lora_r=r, lora_alpha=a), "random", upcast=False
        )
        params = linear_params(model, cfg)
        per = model_flops_per_sample(params, cfg, args.seq_len)
        total = sum(per.values())
        print(
            json.dumps(
                {
                    "seq_len": args.seq_len,
                    "linear_params": params,
                    "tflop_per_sample": total / 1e12,
                    "by_part_tflop": {k: v / 1e12 for k, v in per.items()},
                }
            )
        )
        for peak_name, peak in (("H100 SXM", 989.4), ("H100 PCIe", 756.5)):
            print(
                f"{peak_name}: 35% MFU = {0.35 * peak * 1e12 / total:.2f} samples/s = "
                f"{0.35 * peak * 1e12 / total * args.seq_len:,.0f} tokens/s"
            )
        return 0
    if args.tiny:
        device = torch.device("cpu")
        torch.set_num_threads(1)
        if args.seq_len == 2048:
            args.seq_len = 64
        args.warmup, args.steps = min(args.warmup, 1), min(args.steps, 2)
        name = "cpu (tiny shape)"
        args.peak_tflops = args.peak_tflops or 0.1  # nominal: the MFU of --tiny only checks the arithmetic
    else:
        if not torch.cuda.is_available():
            print(
                "no CUDA GPU: run on a GPU machine, or pass --tiny to check the script on CPU",
                file=sys.stderr,
            )
            return 2
        device = torch.device("cuda")
        name = torch.cuda.get_device_name(0)
        if args.peak_tflops is None:
            args.peak_tflops = next((v for k, v in PEAK_TFLOPS if k in name), None)
            if args.peak_tflops is None:
                print(f"unknown peak for {name!r}: MFU not computed (pass --peak-tflops)", file=sys.stderr)
        torch.backends.cuda.matmul.allow_tf32 = True

    t0 = time.perf_counter()
    torch.manual_seed(0)
    model, cfg = build_model(args.tiny, device, args.attn)
    lora_cfg = TrainConfig(
        base_model="random", lora_r=128 if not args.tiny else 8, lora_alpha=64 if not args.tiny else 16
    )
    model = apply_lora(model, lora_cfg, "random LLaVA-Med-7B shape")
    build_s = time.perf_counter() - t0
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    settings = SWEEP if args.sweep else ((args.micro_batch, args.grad_accum, args.grad_ckpt),)
    header = {
        "device": name,
        "peak_tflops": args.peak_tflops,
        "params_total": total,
        "params_trainable": trainable,
        "build_seconds": round(build_s, 1),
        "attn": args.attn,
        "tiny": args.tiny,
    }
    print(json.dumps(header), flush=True)
    results = []
    for micro, accum, ckpt in settings:
        r = run_setting(model, cfg, args, micro, accum, ckpt, device)
        results.append(r)
        print(json.dumps(r), flush=True)
    ok = [r for r in results if not r["oom"]]
    for r in ok:
        mfu = f"MFU {100 * r['mfu']:.1f}%" if r["mfu"] is not None else "MFU n/a"
        print(
            f"{name}: micro {r['micro_batch']} x accum {r['grad_accum']}, ckpt {r['grad_ckpt']}: "
            f"{r['tokens_per_second']:,.0f} tokens/s, {r['achieved_tflops']} TFLOP/s model, {mfu}, "
            f"peak mem {r['peak_memory_gib']} GiB"
        )
    save_results(
        "train", "train_mfu_gpu", {**header, "results": results}, args, out=args.out, packages=PACKAGES
    )
    if not ok:
        print("every setting ran out of memory", file=sys.stderr)
        return 1
    best = max(ok, key=lambda r: r["tokens_per_second"])
    if best["mfu"] is not None and not math.isnan(best["mfu"]) and not args.tiny:
        verdict = "meets" if best["mfu"] >= 0.35 else "misses"
        print(f"best: {100 * best['mfu']:.1f}% MFU ({verdict} the 35% target)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
