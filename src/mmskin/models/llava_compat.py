"""What LLaVA's own code does that Hugging Face processors do not: the steps MM-Skin's scripts rely on.

- **Conversation templates** (``llava/conversation.py``): MM-Skin prompts LLaVA-Med with ``mistral_instruct``
  (``"[INST] <image>\\nQUESTION [/INST]"``) and trains with ``v1``. :func:`render_conversation` renders the templates
  of ``data/models/conversations.yaml`` exactly as ``Conversation.get_prompt`` does (the tests compare the strings
  with MM-Skin's verbatim copy of that file).
- **tokenizer_image_token** (``llava/mm_utils.py``): the text between image placeholders is tokenised piece by piece,
  each piece with the tokenizer's special tokens, the first piece's BOS kept once and each later piece's first token
  dropped. :func:`llava_token_ids` does the same and puts the processor's expanded image tokens where LLaVA puts its
  single image index (the Hugging Face model then sees the same embeddings in the same places).
- **image_aspect_ratio pad** (``process_images``): the image is expanded to a square with the image processor's
  mean colour, ``tuple(int(x * 255) for x in image_mean)``, before the processor's resize and centre crop, so the
  crop never cuts a lesion off. :func:`prepare_images` applies it where :func:`aspect_mode` says so (the model's
  config ``image_aspect_ratio``, else ``data/models/architectures.yaml``).

    >>> render_conversation("mistral_instruct", [("<image>\\nWhat is shown?", None)])
    '[INST] <image>\\nWhat is shown? [/INST]'

Nothing heavy is imported here (PIL only inside the image functions).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..resources import load_yaml
from .loading import ModelError, architecture

ASPECT_MODES = ("auto", "pad", "none")
CHAT = "chat"  # conv_mode: the processor's own chat template


@dataclass(frozen=True)
class Conversation:
    """One LLaVA conversation template (the fields of ``llava.conversation.Conversation`` that shape a prompt)."""

    name: str
    style: str  # llama_2 | two
    system: str
    roles: tuple[str, str]
    sep: str
    sep2: str


@functools.lru_cache(maxsize=1)
def conversation_templates() -> dict[str, Conversation]:
    """The templates of ``data/models/conversations.yaml`` by name."""
    out = {}
    for name, t in load_yaml("models", "conversations.yaml").items():
        out[name] = Conversation(name, t["style"], t["system"], tuple(t["roles"]), t["sep"], t["sep2"])
    return out


def conv_modes() -> tuple[str, ...]:
    """Prompt formats an adapter accepts: ``auto``, ``chat`` and every LLaVA template."""
    return ("auto", CHAT, *conversation_templates())


def render_conversation(name: str, turns: Sequence[tuple[str, str | None]]) -> str:
    """``Conversation.get_prompt()`` after appending each (user, assistant) turn; a None answer ends the prompt
    where the model should continue (as the scripts append ``(roles[1], None)``)."""
    templates = conversation_templates()
    if name not in templates:
        raise ModelError(f"unknown conversation template {name!r} (known: {', '.join(templates)})")
    t = templates[name]
    messages = [(role, msg) for q, a in turns for role, msg in ((t.roles[0], q), (t.roles[1], a))]
    if t.style == "two":
        seps = (t.sep, t.sep2)
        ret = t.system + t.sep
        for i, (role, msg) in enumerate(messages):
            ret += f"{role}: {msg}{seps[i % 2]}" if msg else f"{role}:"
        return ret
    if t.style == "llama_2":
        ret = ""
        for i, (_, msg) in enumerate(messages):
            if not msg:
                continue
            if i == 0 and t.system:
                msg = f"<<SYS>>\n{t.system}\n<</SYS>>\n\n" + msg
            ret += t.sep + f"[INST] {msg} [/INST]" if i % 2 == 0 else f" {msg} {t.sep2}"
        return ret.lstrip(t.sep)
    raise ModelError(f"conversation template {name!r}: unknown style {t.style!r}")


def paper_conv_mode(model_type: str) -> str:
    """The template MM-Skin's scripts prompt ``model_type`` with (``chat`` when the table names none)."""
    return architecture(model_type).get("paper_conv_mode") or CHAT


def resolve_conv_mode(conv_mode: str, model_type: str, paper_decoding: bool) -> str:
    """``auto`` -> the paper's template under paper decoding, else the processor's chat template."""
    if conv_mode not in conv_modes():
        raise ModelError(f"conv mode {conv_mode!r}: choose from {', '.join(conv_modes())}")
    if conv_mode != "auto":
        return conv_mode
    return paper_conv_mode(model_type) if paper_decoding else CHAT


def llava_token_ids(tokenizer: Any, prompt: str, placeholder: str, image_ids: Sequence[int]) -> list[int]:
    """Token ids of ``prompt`` as LLaVA's ``tokenizer_image_token`` makes them, each ``placeholder`` replaced by
    ``image_ids`` (the image tokens the processor expands one image to)."""
    pieces = [tokenizer(p).input_ids for p in prompt.split(placeholder)]
    bos = getattr(tokenizer, "bos_token_id", None)
    drop = 1 if pieces and pieces[0] and bos is not None and pieces[0][0] == bos else 0
    ids: list[int] = [bos] if drop else []
    for k, piece in enumerate(pieces):
        if k:
            ids += list(image_ids)
        ids += piece[drop:]
    return ids


def aspect_mode(setting: str, config: Any) -> str:
    """``pad`` or ``none``: the setting, or for ``auto`` the model config's ``image_aspect_ratio`` (written by
    ``mmskin train``, as LLaVA stores it), else the architecture table's."""
    if setting not in ASPECT_MODES:
        raise ModelError(f"image_aspect_ratio {setting!r}: choose from {', '.join(ASPECT_MODES)}")
    if setting != "auto":
        return setting
    own = getattr(config, "image_aspect_ratio", None)
    if own in ("pad", "none"):
        return own
    return architecture(getattr(config, "model_type", "")).get("image_aspect_ratio") or "none"


def pad_color(image_processor: Any) -> tuple[int, ...]:
    """LLaVA's background: the processor's mean colour, ``int(x * 255)`` per channel."""
    mean = getattr(image_processor, "image_mean", None) or (0.0, 0.0, 0.0)
    return tuple(int(x * 255) for x in mean)


def expand_to_square(image: Any, color: tuple[int, ...]) -> Any:
    """The image centred on a square of ``color`` (its longer side), as LLaVA's ``expand2square``."""
    from PIL import Image

    w, h = image.size
    if w == h:
        return image
    side = max(w, h)
    out = Image.new(image.mode, (side, side), color)
    out.paste(image, (0, (w - h) // 2) if w > h else ((h - w) // 2, 0))
    return out


def prepare_images(images: Sequence[Any], processor: Any, mode: str) -> list[Any]:
    """RGB images, expanded to squares when ``mode`` is ``pad``."""
    rgb = [im.convert("RGB") for im in images]
    if mode != "pad":
        return rgb
    color = pad_color(getattr(processor, "image_processor", processor))
    return [expand_to_square(im, color) for im in rgb]
