"""Models shared by train and evaluate: loading image-text-to-text models and processors, tiny test models.

    from mmskin.models import load_vlm, build_prompt, ModelError
    model, processor = load_vlm("tiny:llava")            # or a local folder / hub id
    prompt = build_prompt(processor, "What is the most likely diagnosis?")

Nothing heavy is imported here: torch and transformers load inside the functions.
"""

from .loading import (
    ModelError,
    architecture,
    build_messages,
    build_prompt,
    load_processor,
    load_vlm,
    render_chat,
    resolve_model_path,
)
from .tiny import TINY_KINDS, build_tiny_vlm

__all__ = [
    "TINY_KINDS",
    "ModelError",
    "architecture",
    "build_messages",
    "build_prompt",
    "build_tiny_vlm",
    "load_processor",
    "load_vlm",
    "render_chat",
    "resolve_model_path",
]
