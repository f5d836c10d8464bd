"""Generation speed for evaluation on a GPU: MM-Skin's decoding loop vs greedy one at a time vs mmskin's batched path.

The model is a random-weight LLaVA-Med-7B-shaped ``LlavaForConditionalGeneration`` built from configs directly on
the GPU in bf16 (no download): Mistral-7B text model (hidden 4096, 32 layers, 32 heads, 8 KV heads, intermediate
14336, vocab 32064) + CLIP ViT-L/14-336 vision tower (hidden 1024, 24 layers, 16 heads, intermediate 4096, 336 px,
patch 14 -> 576 image tokens) + 2-layer GELU projector. Every prompt is 616 tokens (BOS + 19 text + 576 image + 20
text) and every answer exactly 64 new tokens (``min_new_tokens = max_new_tokens = 64``, EOS disabled), so all modes
do the same work per sample. Modes (samples/s, higher is better):

- ``mmskin``: MM-Skin's VQA_test.py decoding, one sample at a time (do_sample, temperature 0.2, top_p 0.9,
  5 beams), the settings of ``mmskin.evaluate.adapters.PAPER_DECODING["vqa"]``;
- ``greedy-1``: greedy, one sample at a time;
- ``batched``: mmskin's path, ``HFAdapter.generate_tokens`` (greedy, left-padded batch of 64, dynamic KV cache);
- ``batched-static``: the same with ``--kv-cache static`` (transformers then compiles the decoding step with
  torch.compile on CUDA; the first batch pays the compilation and is not timed).

Prompts in a batch have one length here; real runs sort prompts by length first (length bucketing in
``run_predictions``), so padding stays small. The CPU-side processor cost per image is printed too.

On an H100 or H200 (about 4-6 minutes, most of it the model build and torch.compile):

    .venv/bin/python benchmarks/evaluate/eval_generate_gpu.py   # -> benchmarks/results/evaluate/eval_generate_gpu_*.json

Check the code paths on CPU with a tiny shape (about a minute on 2 cores):

    .venv/bin/python benchmarks/evaluate/eval_generate_gpu.py --tiny

Target (issue 6): >= 30 samples/s batched on an H100/H200 (plain transformers generate at batch 64 on an H200 was
measured at 15 samples/s; the memory-bandwidth bound for this shape is roughly 60 samples/s).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/, for _common
from _common import add_out_argument, save_results  # noqa: E402

from mmskin.evaluate.adapters import HFAdapter  # noqa: E402

IMAGE_TOKEN_ID = 32000  # LLaVA-Med's <image> in the HF vocabulary (32000 base + added tokens = 32064)

SHAPES = {
    "llava-med-7b": {
        "text": dict(
            hidden_size=4096,
            num_hidden_layers=32,
            num_attention_heads=32,
            num_key_value_heads=8,
            intermediate_size=14336,
            vocab_size=32064,
            max_position_embeddings=32768,
            sliding_window=None,
            rope_theta=1e6,
        ),
        "vision": dict(
            hidden_size=1024,
            num_hidden_layers=24,
            num_attention_heads=16,
            intermediate_size=4096,
            image_size=336,
            patch_size=14,
            projection_dim=768,
        ),
        "image_token_id": IMAGE_TOKEN_ID,
        "new_tokens": 64,
        "batch": 64,
        "samples": {"mmskin": 3, "greedy-1": 6, "batched": 128, "batched-static": 128},
    },
    "tiny": {
        "text": dict(
            hidden_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            intermediate_size=128,
            vocab_size=512,
            max_position_embeddings=1024,
            sliding_window=None,
        ),
        "vision": dict(
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            image_size=56,
            patch_size=14,
            projection_dim=32,
        ),
        "image_token_id": 500,
        "new_tokens": 8,
        "batch": 8,
        "samples": {"mmskin": 2, "greedy-1": 4, "batched": 16, "batched-static": 16},
    },
}
TEXT_BEFORE, TEXT_AFTER = 19, 20  # + BOS + image tokens = 616 for the 7B shape


def build_model(shape: dict, device: str, dtype):
    import torch
    from transformers import CLIPVisionConfig, LlavaConfig, LlavaForConditionalGeneration, MistralConfig

    n_img = (shape["vision"]["image_size"] // shape["vision"]["patch_size"]) ** 2
    cfg = LlavaConfig(
        vision_config=CLIPVisionConfig(**shape["vision"]),
        text_config=MistralConfig(**shape["text"], bos_token_id=1, eos_token_id=2, pad_token_id=0),
        image_token_id=shape["image_token_id"],
        image_seq_length=n_img,
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
        projector_hidden_act="gelu",
    )
    torch.manual_seed(0)
    with torch.device(device):
        model = LlavaForConditionalGeneration._from_config(cfg, dtype=dtype)
    model.eval()
    # exactly N new tokens: nothing may stop a sequence early
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = 0
    return model, n_img


def make_inputs(shape: dict, n_img: int, batch: int, device: str, dtype, seed: int = 0) -> dict:
    import torch

    g = torch.Generator().manual_seed(seed)
    vocab = shape["text"]["vocab_size"]
    hi = min(shape["image_token_id"], vocab) - 1
    before = torch.randint(3, hi, (batch, TEXT_BEFORE), generator=g)
    after = torch.randint(3, hi, (batch, TEXT_AFTER), generator=g)
    bos = torch.ones(batch, 1, dtype=torch.long)
    img = torch.full((batch, n_img), shape["image_token_id"], dtype=torch.long)
    ids = torch.cat([bos, before, img, after], dim=1)
    size = shape["vision"]["image_size"]
    pixels = torch.randn(batch, 3, size, size, generator=g)
    return {
        "input_ids": ids.to(device),
        "attention_mask": torch.ones_like(ids).to(device),
        "pixel_values": pixels.to(device, dtype),
    }


def adapter_for(model, paper: bool, kv_cache: str, new_tokens: int) -> HFAdapter:
    # the benchmark feeds token ids directly: the processor stand-in only carries the tokenizer's pad settings
    tok = SimpleNamespace(pad_token_id=0, eos_token_id=None, padding_side="right")
    return HFAdapter(
        "llava-med-7b-shape (random weights)",
        model=model,
        processor=SimpleNamespace(tokenizer=tok),
        max_new_tokens=new_tokens,
        paper_decoding=paper,
        task="vqa",
        cache=kv_cache,
        seed=0,
    )


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_mode(name: str, model, shape: dict, n_img: int, device: str, dtype, n_samples: int) -> dict:
    new = shape["new_tokens"]
    one_at_a_time = name in ("mmskin", "greedy-1")
    batch = 1 if one_at_a_time else shape["batch"]
    ad = adapter_for(
        model,
        paper=name == "mmskin",
        kv_cache="static" if name == "batched-static" else "dynamic",
        new_tokens=new,
    )
    enc = make_inputs(shape, n_img, batch, device, dtype, seed=1)
    # warm-up (CUDA kernels, cuBLAS plans, torch.compile for the static cache): one call, not timed
    t0 = time.perf_counter()
    out = ad.generate_tokens(enc)
    sync(device)
    warm = time.perf_counter() - t0
    assert out.shape == (batch, new), f"{name}: got {tuple(out.shape)} new tokens, wanted {(batch, new)}"
    calls = max(1, n_samples // batch)
    t0 = time.perf_counter()
    for i in range(calls):
        out = ad.generate_tokens(make_inputs(shape, n_img, batch, device, dtype, seed=2 + i))
        assert out.shape == (batch, new)
    sync(device)
    dt = time.perf_counter() - t0
    n = calls * batch
    kw = {k: v for k, v in ad.gen_kwargs().items() if k != "pad_token_id"}
    return {
        "mode": name,
        "batch": batch,
        "samples": n,
        "seconds": dt,
        "samples_per_s": n / dt,
        "warmup_s": warm,
        "generate_kwargs": kw,
    }


def processor_ms_per_image(size: int, n: int = 32) -> float:
    """CPU cost of the CLIP image processor (PIL backend) on camera-sized images, per image."""
    import numpy as np
    from PIL import Image
    from transformers import CLIPImageProcessorPil

    proc = CLIPImageProcessorPil(size={"shortest_edge": size}, crop_size={"height": size, "width": size})
    rng = np.random.default_rng(0)
    ims = [Image.fromarray(rng.integers(0, 255, (600, 800, 3), dtype=np.uint8)) for _ in range(n)]
    t0 = time.perf_counter()
    proc(ims, return_tensors="pt")
    return 1000 * (time.perf_counter() - t0) / n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiny", action="store_true", help="small shape on CPU (checks the code paths)")
    ap.add_argument("--modes", default="mmskin,greedy-1,batched,batched-static", help="comma-separated modes")
    ap.add_argument("--batch", type=int, default=None, help="batch size of the batched modes (default: 64)")
    ap.add_argument("--samples", type=int, default=None, help="samples per batched mode (default: 128)")
    ap.add_argument("--device", default=None, help="default: cuda (cpu with --tiny)")
    add_out_argument(ap, "evaluate", "eval_generate_gpu", "--out")
    args = ap.parse_args(argv)

    import torch

    shape = dict(SHAPES["tiny" if args.tiny else "llava-med-7b"])
    shape["samples"] = dict(shape["samples"])
    if args.batch:
        shape["batch"] = args.batch
    if args.samples:
        shape["samples"].update({"batched": args.samples, "batched-static": args.samples})
    device = args.device or ("cpu" if args.tiny else "cuda")
    if device.startswith("cuda") and not torch.cuda.is_available():
        print("no CUDA device: run with --tiny to check the code paths on CPU", file=sys.stderr)
        return 2
    dtype = torch.float32 if device == "cpu" else torch.bfloat16
    if device == "cpu":
        torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    gpu = (
        torch.cuda.get_device_name(0)
        if device.startswith("cuda")
        else f"CPU ({platform.processor() or 'cpu'})"
    )

    t0 = time.perf_counter()
    model, n_img = build_model(shape, device, dtype)
    sync(device)
    build_s = time.perf_counter() - t0
    n_params = sum(p.numel() for p in model.parameters())
    prompt_len = 1 + TEXT_BEFORE + n_img + TEXT_AFTER
    print(
        f"device: {gpu} · model: {n_params / 1e9:.2f} B params ({'tiny' if args.tiny else 'LLaVA-Med-7B shape'}), "
        f"{str(dtype).replace('torch.', '')}, built in {build_s:.1f} s · prompt {prompt_len} tokens "
        f"({n_img} image) · {shape['new_tokens']} new tokens/sample",
        flush=True,
    )

    rows = []
    for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
        if mode not in shape["samples"]:
            print(f"unknown mode {mode!r}", file=sys.stderr)
            return 2
        try:
            res = time_mode(mode, model, shape, n_img, device, dtype, shape["samples"][mode])
        except Exception as e:  # noqa: BLE001 - one mode failing (e.g. torch.compile) must not cost the others
            print(
                f"  {mode:15s} FAILED: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}",
                flush=True,
            )
            continue
        rows.append(res)
        print(
            f"  {mode:15s} {res['samples_per_s']:8.2f} samples/s  ({res['samples']} samples in "
            f"{res['seconds']:.1f} s; warm-up {res['warmup_s']:.1f} s)",
            flush=True,
        )
        if device.startswith("cuda"):
            torch.cuda.empty_cache()

    base = {r["mode"]: r["samples_per_s"] for r in rows}
    print(f"\n| mode | batch | samples/s | x MM-Skin loop | x greedy one at a time |  ({gpu})")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        vs_m = f"{r['samples_per_s'] / base['mmskin']:.1f}" if "mmskin" in base else "–"
        vs_g = f"{r['samples_per_s'] / base['greedy-1']:.1f}" if "greedy-1" in base else "–"
        print(f"| {r['mode']} | {r['batch']} | {r['samples_per_s']:.2f} | {vs_m} | {vs_g} |")
    proc_ms = processor_ms_per_image(shape["vision"]["image_size"])
    print(
        f"\nCPU image processor (CLIP, PIL backend, 800x600 -> {shape['vision']['image_size']}): "
        f"{proc_ms:.1f} ms/image on one process"
    )
    if device.startswith("cuda"):
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")
    results = {
        "device": gpu,
        "shape": "tiny" if args.tiny else "llava-med-7b",
        "params": n_params,
        "prompt_tokens": prompt_len,
        "new_tokens": shape["new_tokens"],
        "results": rows,
        "processor_ms_per_image": proc_ms,
        "build_s": build_s,
    }
    save_results(
        "evaluate", "eval_generate_gpu", results, args, out=args.out, packages=["torch", "transformers"]
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
