"""Load any Hugging Face image-text-to-text model with its processor, offline and without torchvision.

    from mmskin.models import load_vlm, build_prompt
    model, processor = load_vlm("llava-hf/llava-1.5-7b-hf", dtype="bf16", device="cuda")
    text = build_prompt(processor, "What is the most likely diagnosis?")

``name_or_path`` is a local folder, a hub id (only when the hub is reachable or cached) or ``tiny:llava`` /
``tiny:qwen2_5_vl`` (a tiny random-weight model built on first use, see :mod:`mmskin.models.tiny`).
torch and transformers are imported inside the functions: importing this module stays light.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..resources import load_yaml
from ..stage import reason_of

DTYPES = {
    "auto": "auto",
    "bf16": "bfloat16",
    "bfloat16": "bfloat16",
    "fp16": "float16",
    "float16": "float16",
    "fp32": "float32",
    "float32": "float32",
}


class ModelError(RuntimeError):
    """A model or processor that cannot be used; the message is one line for the user."""


def architectures() -> dict[str, dict[str, Any]]:
    """The per-architecture module map (``data/models/architectures.yaml``)."""
    return load_yaml("models", "architectures.yaml")


def architecture(model_type: str) -> dict[str, Any]:
    """Where the language model, projector and vision tower of ``model_type`` live."""
    table = architectures()
    return table.get(model_type, table["default"])


def cache_dir() -> Path:
    """Folder for built tiny models: ``$MMSKIN_CACHE`` or ``~/.cache/mmskin``."""
    return Path(os.environ.get("MMSKIN_CACHE") or Path.home() / ".cache" / "mmskin")


def resolve_model_path(name_or_path: str) -> str:
    """``tiny:KIND`` -> the built tiny model's folder (built when missing); anything else unchanged."""
    if name_or_path.startswith("tiny:"):
        from .tiny import TINY_KINDS, build_tiny_vlm

        kind = name_or_path.split(":", 1)[1]
        if kind not in TINY_KINDS:
            raise ModelError(f"{name_or_path}: unknown tiny model (choose from {', '.join(TINY_KINDS)})")
        return str(build_tiny_vlm(kind, cache_dir() / "tiny" / kind))
    return name_or_path


def torch_dtype(dtype: str):
    import torch

    key = DTYPES.get(str(dtype).lower())
    if key is None:
        raise ModelError(f"dtype {dtype!r}: choose from {', '.join(DTYPES)}")
    return "auto" if key == "auto" else getattr(torch, key)


def load_config(name_or_path: str):
    """The model's config; ModelError when there is none or it is not an image-text-to-text model."""
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    raw = Path(name_or_path) / "config.json"
    if raw.is_file():
        try:
            archs = json.loads(raw.read_text(encoding="utf-8")).get("architectures") or []
        except (OSError, ValueError, AttributeError):
            archs = []
        original = set(architectures()["_original_llava_architectures"]) & set(archs)
        if original:
            raise ModelError(
                f"{name_or_path}: {original.pop()} is the original LLaVA repository format, which transformers "
                "cannot load; convert it to Hugging Face LLaVA format first (transformers' "
                "models/llava/convert_llava_weights_to_hf.py)"
            )
    try:
        config = AutoConfig.from_pretrained(name_or_path)
    except (OSError, ValueError, KeyError) as e:
        raise ModelError(f"{name_or_path}: cannot read a model config ({reason_of(e)})") from None
    if config.model_type not in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES:
        raise ModelError(
            f"{name_or_path}: model type {config.model_type!r} is not an image-text-to-text model "
            "(AutoModelForImageTextToText cannot load it; use a vision-language model such as LLaVA or Qwen2.5-VL)"
        )
    return config


def _image_only_qwen_processor(model_type: str):
    """Qwen2-VL/2.5-VL processors without a video processor: the stock ones need torchvision to build."""
    from transformers.processing_utils import ProcessorMixin

    if model_type == "qwen2_vl":
        from transformers import Qwen2VLProcessor as Base
    else:
        from transformers import Qwen2_5_VLProcessor as Base

    class ImageOnlyProcessor(Base):
        # ProcessorMixin reads the sub-processor list from this signature: image processor + tokenizer only
        def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
            self.image_token = getattr(tokenizer, "image_token", None) or "<|image_pad|>"
            self.video_token = getattr(tokenizer, "video_token", None) or "<|video_pad|>"
            self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
            self.video_token_id = tokenizer.convert_tokens_to_ids(self.video_token)
            ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template)

    ImageOnlyProcessor.__name__ = ImageOnlyProcessor.__qualname__ = Base.__name__
    return ImageOnlyProcessor


def image_only_processor_class(model_type: str):
    """The image-only processor class for ``qwen2_vl``/``qwen2_5_vl`` (used when torchvision is absent)."""
    return _image_only_qwen_processor(model_type)


def _torchvision_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("torchvision") is not None


def load_processor(name_or_path: str, model_type: str | None = None):
    """AutoProcessor, or the image-only Qwen2-VL/2.5-VL processor when torchvision is missing."""
    from transformers import AutoProcessor

    if model_type is None:
        model_type = load_config(name_or_path).model_type
    if model_type in ("qwen2_vl", "qwen2_5_vl") and not _torchvision_available():
        loader = _image_only_qwen_processor(model_type).from_pretrained
    else:
        loader = AutoProcessor.from_pretrained
    try:
        processor = loader(name_or_path)
    except (OSError, ValueError, KeyError, AttributeError, ImportError) as e:
        raise ModelError(f"{name_or_path}: cannot load its processor ({reason_of(e)})") from None
    if getattr(processor, "tokenizer", None) is None or getattr(processor, "image_processor", None) is None:
        raise ModelError(f"{name_or_path}: its processor has no tokenizer or no image processor")
    return processor


def load_vlm(name_or_path: str, dtype: str = "auto", device: str = "cpu") -> tuple[Any, Any]:
    """(model, processor) of an image-text-to-text model; ModelError (one line) when it is not one."""
    import torch
    from transformers import AutoModelForImageTextToText

    path = resolve_model_path(name_or_path)
    config = load_config(path)
    try:
        model = AutoModelForImageTextToText.from_pretrained(path, dtype=torch_dtype(dtype))
    except (OSError, ValueError, KeyError) as e:
        raise ModelError(f"{name_or_path}: cannot load the model ({reason_of(e)})") from None
    processor = load_processor(path, config.model_type)
    try:
        model.to(torch.device(device))
    except (RuntimeError, AssertionError) as e:
        raise ModelError(f"{name_or_path}: cannot move the model to {device} ({reason_of(e)})") from None
    return model, processor


def build_messages(question: str, answer: str | None = None) -> list[dict[str, Any]]:
    """One user turn (an image, then the question) and, for training, the assistant's answer."""
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}
    ]
    if answer is not None:
        messages.append({"role": "assistant", "content": [{"type": "text", "text": answer}]})
    return messages


def render_chat(processor, messages: list[dict[str, Any]], add_generation_prompt: bool) -> str:
    """The processor's chat template applied to ``messages`` (text only; the processor expands image tokens)."""
    if not getattr(processor, "chat_template", None):
        name = getattr(processor, "name_or_path", None) or type(processor).__name__
        raise ModelError(f"{name}: the processor has no chat template (set one in chat_template.jinja)")
    return processor.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=add_generation_prompt
    )


def build_prompt(processor, question: str, answer: str | None = None) -> str:
    """The chat-template text for one image + ``question``; with ``answer`` the whole training text."""
    return render_chat(processor, build_messages(question, answer), add_generation_prompt=answer is None)
