"""Tiny random-weight vision-language models for tests, demos and smoke runs (not for real answers).

    from mmskin.models.tiny import build_tiny_vlm
    path = build_tiny_vlm("llava", Path("tiny/llava"))        # or "qwen2_5_vl"
    model, processor = load_vlm(str(path))

Each is a full ``save_pretrained`` folder: config + safetensors weights, a byte-level BPE tokenizer trained locally on
``data/models/tiny_corpus.txt``, a PIL image processor (no torchvision) and a chat template. Building is
deterministic for a seed and idempotent: a folder built with the same kind, seed and builder version is reused.
``python scripts/make_tiny_vlm.py`` is the command-line wrapper.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from ..resources import read_text

TINY_KINDS = ("llava", "qwen2_5_vl")
BUILDER_VERSION = 1  # bump when the architecture or tokenizer changes so cached folders are rebuilt
MARKER = "mmskin_tiny.json"


def _corpus() -> list[str]:
    return [
        ln
        for ln in read_text("models", "tiny_corpus.txt").splitlines()
        if ln.strip() and not ln.startswith("#")
    ]


def _tokenizer(
    special: list[str], extra: dict[str, str], bos: str | None, eos: str, pad: str, vocab: int = 512
):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tk = Tokenizer(models.BPE(unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab,
        special_tokens=special,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tk.train_from_iterator(_corpus(), trainer)
    if bos:
        tk.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", special_tokens=[(bos, tk.token_to_id(bos))]
        )
    return PreTrainedTokenizerFast(
        tokenizer_object=tk,
        bos_token=bos,
        eos_token=eos,
        unk_token="<unk>",
        pad_token=pad,
        extra_special_tokens=extra,
    )


def _build_llava(out: Path) -> None:
    from transformers import (
        CLIPImageProcessorPil,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    tok = _tokenizer(
        ["<unk>", "<s>", "</s>", "<pad>", "<image>"], {"image_token": "<image>"}, "<s>", "</s>", "<pad>"
    )
    improc = CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    proc = LlavaProcessor(
        image_processor=improc,
        tokenizer=tok,
        patch_size=8,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        image_token="<image>",
        chat_template=read_text("models", "llava_chat_template.jinja"),
    )  # (32 / 8)^2 = 16 image tokens per image
    cfg = LlavaConfig(
        vision_config=CLIPVisionConfig(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            image_size=32,
            patch_size=8,
        ),
        text_config=LlamaConfig(
            vocab_size=len(tok),
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=1024,
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
        ),
        image_token_id=tok.convert_tokens_to_ids("<image>"),
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
    )
    model = LlavaForConditionalGeneration(cfg)
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    model.save_pretrained(out)
    proc.save_pretrained(out)


def _build_qwen2_5_vl(out: Path) -> None:
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2VLImageProcessorPil

    from .loading import image_only_processor_class

    special = [
        "<unk>",
        "<|endoftext|>",
        "<|im_start|>",
        "<|im_end|>",
        "<|vision_start|>",
        "<|vision_end|>",
        "<|image_pad|>",
        "<|video_pad|>",
    ]
    extra = {"image_token": "<|image_pad|>", "video_token": "<|video_pad|>"}
    tok = _tokenizer(special, extra, None, "<|im_end|>", "<|endoftext|>")
    improc = Qwen2VLImageProcessorPil(
        size={"shortest_edge": 56 * 56, "longest_edge": 56 * 56},
        patch_size=14,
        merge_size=2,
        temporal_patch_size=2,
    )  # 56 x 56 px -> 4 x 4 patches -> 2 x 2 = 4 image tokens after the merger
    proc = image_only_processor_class("qwen2_5_vl")(
        image_processor=improc,
        tokenizer=tok,
        chat_template=read_text("models", "qwen2_vl_chat_template.jinja"),
    )
    ids = tok.convert_tokens_to_ids
    cfg = Qwen2_5_VLConfig(
        vision_config=dict(
            depth=2,
            hidden_size=32,
            intermediate_size=64,
            num_heads=2,
            out_hidden_size=64,
            window_size=56,
            fullatt_block_indexes=[1],
        ),
        text_config=dict(
            vocab_size=len(tok),
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=1024,
            bos_token_id=None,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
            rope_parameters={"rope_type": "default", "mrope_section": [2, 3, 3]},
        ),
        image_token_id=ids("<|image_pad|>"),
        video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"),
        vision_end_token_id=ids("<|vision_end|>"),
    )
    model = Qwen2_5_VLForConditionalGeneration(cfg)
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.bos_token_id = None
    model.save_pretrained(out)
    proc.save_pretrained(out)


_BUILDERS = {"llava": _build_llava, "qwen2_5_vl": _build_qwen2_5_vl}


def _is_built(out: Path, kind: str, seed: int) -> bool:
    try:
        marker = json.loads((out / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        marker == {"kind": kind, "seed": seed, "builder_version": BUILDER_VERSION}
        and (out / "config.json").is_file()
    )


def build_tiny_vlm(kind: str, out_dir: Path, seed: int = 0) -> Path:
    """Build (or reuse) a tiny random-weight ``kind`` model + processor in ``out_dir``; return the folder."""
    if kind not in _BUILDERS:
        raise ValueError(f"unknown tiny model kind {kind!r} (choose from {', '.join(TINY_KINDS)})")
    out = Path(out_dir)
    if _is_built(out, kind, seed):
        return out
    if out.exists() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise FileExistsError(f"{out}: exists and is not a tiny mmskin model folder; choose another folder")
    import torch

    out.parent.mkdir(parents=True, exist_ok=True)
    # build next to the target and rename, so an interrupted build never leaves a half folder that looks done
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            _BUILDERS[kind](tmp)
        marker = {"kind": kind, "seed": seed, "builder_version": BUILDER_VERSION}
        (tmp / MARKER).write_text(json.dumps(marker, sort_keys=True) + "\n", encoding="utf-8")
        if out.exists():
            shutil.rmtree(out)
        try:
            tmp.rename(out)
        except OSError:
            if not _is_built(out, kind, seed):  # another process finished the same build first: reuse it
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out
