"""Model adapters: one interface (a batch of images + prompts -> answers) for every model ``mmskin eval`` runs.

Specs name a registered kind and its argument:

- ``hf:PATH_OR_ID`` — a Hugging Face image-text-to-text model (``AutoModelForImageTextToText`` + ``AutoProcessor``
  through ``mmskin.models.load_vlm``), batched with left padding, greedy by default; ``paper_decoding=True``
  reproduces MM-Skin's sampling (temperature 0.2, 5 beams, seeded) and, for LLaVA, its prompt: the
  ``mistral_instruct`` conversation tokenised as LLaVA's ``tokenizer_image_token`` (``conv_mode``). LLaVA-family
  images are expanded to squares with the processor's mean colour first (``image_aspect_ratio`` pad, as LLaVA-Med).
  Also gives image features (vision tower + projector, as LLaVA's ``encode_images``) for the probe.
- ``openai:MODEL`` — any OpenAI-compatible chat-completions server (vLLM, llama.cpp, the OpenAI API), images sent
  as base64 data URLs, bounded concurrency, retries with backoff on 429/5xx/timeouts; key from ``OPENAI_API_KEY``.
- ``dummy`` / ``dummy:echo`` / ``dummy:TEXT`` — a fake model registered like the real ones, for pipeline tests:
  answers "I don't know", echoes the prompt, or answers TEXT; its image features are colour statistics.

    >>> from mmskin.evaluate.adapters import get_adapter
    >>> get_adapter("dummy:echo").generate([img], ["What is shown?"])
    ['What is shown?']
"""

from __future__ import annotations

import base64
import difflib
import hashlib
import io
import json
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ..chat import ChatClient, ChatConfig, ChatError, public_url
from ..models.loading import ModelError

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

# MM-Skin's evaluation decoding, per task, as in their VQA_test.py and zero_class.py (read from public verbatim copies;
# upstream ships only .pyc): LLaVA-Med generate() with sampling AND 5 beams, fp16. Ours is greedy by default.
PAPER_DECODING = {
    "vqa": {
        "do_sample": True,
        "temperature": 0.2,
        "top_p": 0.9,
        "num_beams": 5,
        "min_new_tokens": 20,
        "max_new_tokens": 256,
    },
    "zeroshot": {
        "do_sample": True,
        "temperature": 0.5,
        "top_p": 0.9,
        "num_beams": 5,
        "min_new_tokens": 1,
        "max_new_tokens": 256,
    },
}
DEFAULT_MAX_NEW_TOKENS = 128
GREEDY_DECODING = {"do_sample": False, "num_beams": 1}


@runtime_checkable
class Adapter(Protocol):
    """A model that answers a batch of (image, prompt) pairs. ``info()`` describes it for provenance."""

    name: str

    def generate(self, images: list[Image.Image], prompts: list[str]) -> list[str]: ...


_REGISTRY: dict[str, Callable[..., Adapter]] = {}


def register_adapter(kind: str) -> Callable[[Callable[..., Adapter]], Callable[..., Adapter]]:
    """Class decorator: ``get_adapter("KIND:ARG", **options)`` calls ``cls(ARG, **options)``."""

    def deco(cls: Callable[..., Adapter]) -> Callable[..., Adapter]:
        if kind in _REGISTRY:
            raise ValueError(f"adapter kind {kind!r} is registered twice")
        _REGISTRY[kind] = cls
        return cls

    return deco


def adapter_kinds() -> list[str]:
    return sorted(_REGISTRY)


def get_adapter(spec: str, **options: Any) -> Adapter:
    """The adapter for ``spec`` (``kind`` or ``kind:argument``); options the adapter does not use are ignored."""
    kind, _, arg = spec.partition(":")
    if kind not in _REGISTRY:
        near = difflib.get_close_matches(kind, _REGISTRY, n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise ValueError(
            f"unknown model kind {kind!r} in {spec!r}{hint}; known: {', '.join(adapter_kinds())}"
        )
    return _REGISTRY[kind](arg, **options)


def adapter_info(adapter: Adapter) -> dict[str, Any]:
    """Provenance of an adapter: its ``info()`` when it has one, else its name."""
    info = getattr(adapter, "info", None)
    return info() if callable(info) else {"name": adapter.name}


# --------------------------------------------------------------------------------------------------------- dummy


@register_adapter("dummy")
class DummyAdapter:
    """Answers without a model: ``dummy`` says "I don't know", ``dummy:echo`` repeats the prompt, ``dummy:TEXT``
    answers TEXT. ``image_features`` gives per-channel colour statistics, so the probe runs end to end too."""

    def __init__(self, arg: str = "", **_: Any) -> None:
        self.mode = arg or "I don't know"
        self.name = f"dummy:{arg}" if arg else "dummy"

    def generate(self, images: list[Image.Image], prompts: list[str]) -> list[str]:
        if len(images) != len(prompts):
            raise ValueError(f"{len(images)} images but {len(prompts)} prompts")
        return list(prompts) if self.mode == "echo" else [self.mode] * len(prompts)

    def image_features(self, images: list[Image.Image]) -> np.ndarray:
        import numpy as np

        rows = []
        for im in images:
            a = np.asarray(im.convert("RGB").resize((64, 64)), dtype=np.float32) / 255.0
            rows.append(
                np.concatenate(
                    [a.mean((0, 1)), a.std((0, 1)), np.percentile(a, [10, 50, 90], (0, 1)).ravel()]
                )
            )
        return np.stack(rows).astype(np.float32)

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "kind": "dummy"}

    def fingerprint(self) -> str:
        return self.name


# ---------------------------------------------------------------------------------------------------- hugging face


def generation_kwargs(
    max_new_tokens: int | None = None, paper_decoding: bool = False, task: str = "vqa"
) -> dict[str, Any]:
    """``generate`` settings: greedy (deterministic), or MM-Skin's sampling with 5 beams for ``task`` (vqa or
    zeroshot). ``max_new_tokens`` None means the default (128 greedy, MM-Skin's 256 with paper decoding)."""
    if paper_decoding:
        if task not in PAPER_DECODING:
            raise ValueError(f"no MM-Skin decoding for task {task!r} (known: {', '.join(PAPER_DECODING)})")
        kw = dict(PAPER_DECODING[task])
    else:
        kw = {**GREEDY_DECODING, "max_new_tokens": DEFAULT_MAX_NEW_TOKENS}
    if max_new_tokens is not None:
        kw["max_new_tokens"] = int(max_new_tokens)
        kw["min_new_tokens"] = min(kw.get("min_new_tokens", 0), int(max_new_tokens))
        if not kw["min_new_tokens"]:
            del kw["min_new_tokens"]
    return kw


def _resolve_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@register_adapter("hf")
class HFAdapter:
    """A Hugging Face image-text-to-text model. Prompts are wrapped in the processor's chat template with one image
    (``mmskin.models.build_prompt``); only the new tokens are decoded.

    ``cache="static"`` uses a static KV cache (on CUDA transformers then compiles the decoding step);
    ``model``/``processor`` may be passed already loaded (tests, benchmarks). Otherwise the model loads on first
    use, so a run that finds everything cached (features, predictions) never loads it."""

    def __init__(
        self,
        path: str,
        *,
        device: str = "auto",
        dtype: str = "auto",
        max_new_tokens: int | None = None,
        paper_decoding: bool = False,
        task: str = "vqa",
        seed: int = 0,
        cache: str = "dynamic",
        conv_mode: str = "auto",
        image_aspect_ratio: str = "auto",
        model: Any = None,
        processor: Any = None,
        **_: Any,
    ) -> None:
        from ..models.llava_compat import ASPECT_MODES, conv_modes

        if not path and model is None:
            raise ValueError("hf adapter needs a path or hub id: --model hf:PATH")
        self.path = path
        self.name = f"hf:{path}"
        self.device = device
        self.dtype = dtype
        self.max_new_tokens = max_new_tokens
        self.paper_decoding = bool(paper_decoding)
        self.task = task
        generation_kwargs(max_new_tokens, paper_decoding, task)  # fail early on an unknown task
        self.seed = int(seed)
        if cache not in ("dynamic", "static"):
            raise ValueError(f"cache must be dynamic or static (got {cache!r})")
        if conv_mode not in conv_modes() or image_aspect_ratio not in ASPECT_MODES:
            raise ValueError(
                f"conv_mode {conv_mode!r} / image_aspect_ratio {image_aspect_ratio!r}: choose from "
                f"{', '.join(conv_modes())} / {', '.join(ASPECT_MODES)}"
            )
        self.cache = cache
        self.conv_mode, self.image_aspect_ratio = conv_mode, image_aspect_ratio
        self._model = self._processor = None
        self._config: Any = None  # the model's config (from config.json until the model loads)
        if model is not None and processor is not None:
            self._attach(model, processor)

    def _attach(self, model: Any, processor: Any) -> None:
        self._model = model.eval()
        self._processor = processor
        self._config = model.config
        tok = getattr(processor, "tokenizer", processor)
        # decoder-only batching: pad on the left so every row's last token is its prompt's last token
        tok.padding_side = "left"
        self.pad_token_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        self.eos_token_id = getattr(tok, "eos_token_id", None)

    def _model_config(self) -> Any:
        """The model's config without loading its weights (config.json), for the prompt and image settings."""
        if self._config is None:
            from types import SimpleNamespace

            from ..models.loading import resolve_model_path

            raw: Any = {}
            path = resolve_model_path(self.path) if self.path.startswith("tiny:") else self.path
            cfg = Path(path) / "config.json"
            try:
                if cfg.is_file():
                    raw = json.loads(cfg.read_text(encoding="utf-8"))
                else:  # a hub id: the config from the local cache (offline), as the model will load it
                    from transformers import AutoConfig

                    raw = AutoConfig.from_pretrained(path).to_dict()
            except (OSError, ValueError, KeyError, ModelError):
                raw = {}
            self._config = SimpleNamespace(**(raw if isinstance(raw, dict) else {}))
        return self._config

    def prompt_settings(self) -> tuple[str, str]:
        """(conversation template or ``chat``, ``pad`` or ``none``) this model is prompted and fed with."""
        from ..models.llava_compat import aspect_mode, resolve_conv_mode

        config = self._model_config()
        model_type = getattr(config, "model_type", "")
        return (
            resolve_conv_mode(self.conv_mode, model_type, self.paper_decoding),
            aspect_mode(self.image_aspect_ratio, config),
        )

    def _load(self) -> None:
        if self._model is None:
            from mmskin.models import load_vlm

            self.device = _resolve_device(self.device)
            self._attach(*load_vlm(self.path, dtype=self.dtype, device=self.device))

    @property
    def model(self) -> Any:
        self._load()
        return self._model

    @property
    def processor(self) -> Any:
        self._load()
        return self._processor

    def gen_kwargs(self) -> dict[str, Any]:
        kw = generation_kwargs(self.max_new_tokens, self.paper_decoding, self.task)
        if self._model is not None:
            # the scripts pass pad_token_id=tokenizer.eos_token_id (what finished beams are filled with)
            paper_pad = self.eos_token_id if self.paper_decoding else None
            kw["pad_token_id"] = self.pad_token_id if paper_pad is None else paper_pad
        if self.cache == "static":
            kw["cache_implementation"] = "static"
        return kw

    def _inputs(self, images: list[Image.Image], texts: list[str]) -> dict[str, Any]:
        import torch

        from ..models.llava_compat import CHAT, prepare_images

        conv, aspect = self.prompt_settings()
        enc = self.processor(
            images=prepare_images(images, self.processor, aspect),
            text=texts,
            return_tensors="pt",
            padding=True,
        )
        if conv != CHAT:
            enc = self._llava_tokens(enc, texts)
        dtype = next(self.model.parameters()).dtype
        return {
            k: (v.to(self.model.device, dtype) if torch.is_floating_point(v) else v.to(self.model.device))
            for k, v in enc.items()
        }

    def _llava_tokens(self, enc: Any, texts: list[str]) -> dict[str, Any]:
        """``input_ids``/``attention_mask`` rebuilt as LLaVA tokenises a conversation prompt (left padded), each image
        placeholder expanded to as many image tokens as the processor gave it."""
        import torch

        from ..models.llava_compat import llava_token_ids

        proc = self.processor
        placeholder, image_id = getattr(proc, "image_token", None), getattr(proc, "image_token_id", None)
        extra = set(enc) - {"input_ids", "attention_mask", "pixel_values", "image_sizes"}
        if placeholder is None or image_id is None or extra:
            raise ModelError(
                f"{self.name}: conversation prompts need a LLaVA-style processor (use --conv-mode chat)"
            )
        rows = []
        for ids, text in zip(enc["input_ids"].tolist(), texts, strict=True):
            n = ids.count(image_id) // max(1, text.count(placeholder))
            rows.append(llava_token_ids(proc.tokenizer, text, placeholder, [image_id] * n))
        width = max(len(r) for r in rows)
        out = dict(enc)
        out["input_ids"] = torch.tensor([[self.pad_token_id] * (width - len(r)) + r for r in rows])
        out["attention_mask"] = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
        return out

    def generate_tokens(self, enc: dict[str, Any], **overrides: Any) -> Any:
        """The new token ids (batch x new) for processor outputs ``enc`` already on the model's device; the
        decoding settings are ``gen_kwargs()`` updated with ``overrides`` (the GPU benchmark times this call)."""
        import torch

        if self.paper_decoding:
            # sampling: the same seed per call gives the same answers for the same batch
            torch.manual_seed(self.seed)
        with torch.inference_mode():
            out = self.model.generate(**enc, **{**self.gen_kwargs(), **overrides})
        return out[:, enc["input_ids"].shape[1] :]

    def prompt_text(self, question: str) -> str:
        """The text the model is given for one image + ``question``: the processor's chat template, or LLaVA's
        conversation template around ``<image>\n`` + the question (as MM-Skin's scripts build it)."""
        from mmskin.models import build_prompt

        from ..models.llava_compat import CHAT, render_conversation

        conv, _ = self.prompt_settings()
        if conv == CHAT:
            return build_prompt(self.processor, question)
        placeholder = getattr(self.processor, "image_token", None) or "<image>"
        return render_conversation(conv, [(f"{placeholder}\n{question}", None)])

    def generate(self, images: list[Image.Image], prompts: list[str]) -> list[str]:
        if len(images) != len(prompts):
            raise ValueError(f"{len(images)} images but {len(prompts)} prompts")
        texts = [self.prompt_text(p) for p in prompts]
        new = self.generate_tokens(self._inputs(images, texts))
        return [t.strip() for t in self.processor.batch_decode(new, skip_special_tokens=True)]

    def image_features(self, images: list[Image.Image]) -> np.ndarray:
        """Vision tower + projector output, mean-pooled over each image's tokens: (N, D) float32."""
        import inspect

        import torch

        from ..models.llava_compat import prepare_images

        improc = self.processor.image_processor
        enc = improc(prepare_images(images, improc, self.prompt_settings()[1]), return_tensors="pt")
        accepted = inspect.signature(self.model.get_image_features).parameters
        dtype = next(self.model.parameters()).dtype
        kwargs = {}
        for k, v in enc.items():
            if k == "pixel_values" or k in accepted:
                kwargs[k] = (
                    v.to(self.model.device, dtype) if torch.is_floating_point(v) else v.to(self.model.device)
                )
        with torch.inference_mode():
            out = self.model.get_image_features(**kwargs)
        feats = getattr(out, "pooler_output", out)
        if isinstance(feats, torch.Tensor) and feats.dim() == 3:
            feats = list(feats)
        pooled = [f.reshape(-1, f.shape[-1]).float().mean(0) for f in feats]
        if len(pooled) != len(images):
            raise RuntimeError(
                f"{type(self.model).__name__}: {len(pooled)} feature sets for {len(images)} images"
            )
        return torch.stack(pooled).cpu().numpy().astype("float32")

    def info(self) -> dict[str, Any]:
        """Provenance without loading the model: the requested settings, the architecture from config.json."""
        from ..provenance import package_versions

        archs = getattr(self._model_config(), "architectures", None)
        conv, aspect = self.prompt_settings()
        return {
            "name": self.name,
            "kind": "hf",
            "architecture": archs[0] if isinstance(archs, list) and archs else None,
            "device": self.device,
            "dtype": self.dtype,
            "decoding": "mmskin-paper" if self.paper_decoding else "greedy",
            "generate_kwargs": generation_kwargs(self.max_new_tokens, self.paper_decoding, self.task),
            "prompt": conv if conv == "chat" else f"llava conversation {conv} (tokenizer_image_token)",
            "image_aspect_ratio": aspect,
            "kv_cache": self.cache,
            "seed": self.seed,
            **package_versions(["torch", "transformers"]),
        }

    def fingerprint(self) -> str:
        """Identifies the weights for the feature cache: the path plus the size and mtime of its files (cheap, and
        changes when the model is retrained or re-merged in place)."""
        h = hashlib.sha256(self.name.encode())
        p = Path(self.path)
        if p.is_dir():
            for f in sorted(p.iterdir()):
                if f.suffix in (".json", ".safetensors", ".bin"):
                    st = f.stat()
                    h.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns}".encode())
        h.update(str(self.dtype).encode())
        return h.hexdigest()[:16]


# ---------------------------------------------------------------------------------------------- OpenAI-compatible


class RequestError(RuntimeError):
    """A chat-completions request that failed for good (after retries, or with a non-retryable status)."""


def _image_data_url(im: Image.Image) -> str:
    buf = io.BytesIO()
    im.convert("RGB").save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


@register_adapter("openai")
class OpenAIAdapter:
    """Chat completions on an OpenAI-compatible server (``base_url``, default ``$OPENAI_BASE_URL`` or
    ``https://api.openai.com/v1``) through :class:`mmskin.chat.ChatClient`. Requests run ``concurrency`` at a
    time; 408, 409, 429, 5xx, connection errors and timeouts are retried ``retries`` times with exponential
    backoff from ``backoff`` seconds (honouring ``Retry-After``), for at most ``retry_time`` seconds a request;
    after ``max_failures`` requests in a row failed for good no more are sent, and a request that failed is not
    sent again (a batch retried sample by sample costs no new requests). The key comes from
    ``OPENAI_API_KEY``; it and any credentials in the URL are never printed or stored."""

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        concurrency: int = 8,
        max_new_tokens: int | None = None,
        paper_decoding: bool = False,
        task: str = "vqa",
        seed: int = 0,
        timeout: float = 120.0,
        retries: int = 4,
        backoff: float = 1.0,
        retry_time: float = 300.0,
        max_failures: int = 10,
        **_: Any,
    ) -> None:
        if not model:
            raise ValueError("openai adapter needs a model name: --model openai:MODEL")
        self.model = model
        self.name = f"openai:{model}"
        base = (base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1").rstrip("/")
        self.base_url = public_url(base)  # what info() shows: never credentials
        self.concurrency = max(1, int(concurrency))
        self.decoding = generation_kwargs(max_new_tokens, paper_decoding, task)
        self.max_new_tokens = self.decoding["max_new_tokens"]
        self.paper_decoding = bool(paper_decoding)
        self.seed = int(seed)
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.backoff = float(backoff)
        params: dict[str, Any] = {"max_tokens": self.max_new_tokens, "seed": self.seed}
        if self.paper_decoding:
            # chat completions has no beam search: MM-Skin's temperature and top_p only
            params.update(temperature=self.decoding["temperature"], top_p=self.decoding["top_p"])
        else:
            params["temperature"] = 0.0
        cfg = ChatConfig(
            base_url=base,
            model=model,
            timeout=self.timeout,
            max_retries=self.retries,
            retry_base=self.backoff,
            retry_time=float(retry_time),
            max_failures=int(max_failures),
            params=params,
        )
        self._failed: dict[str, RequestError] = {}  # request key -> its failure: never sent twice
        try:
            self._client = ChatClient(cfg)
        except ValueError as e:
            raise ValueError(f"openai adapter: base_url {e}") from None

    @staticmethod
    def _messages(image: Image.Image, prompt: str) -> list[dict[str, Any]]:
        content = [
            {"type": "image_url", "image_url": {"url": _image_data_url(image)}},
            {"type": "text", "text": prompt},
        ]
        return [{"role": "user", "content": content}]

    def _post(self, messages: list[dict[str, Any]]) -> str:
        key = hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()
        if key in self._failed:
            raise self._failed[key]
        try:
            return (self._client.complete(messages) or "").strip()
        except ChatError as e:
            err = RequestError(f"{self._client.public_url}: {e.reason}: {e.detail or e.reason}")
            self._failed[key] = err
            raise err from None

    def generate(self, images: list[Image.Image], prompts: list[str]) -> list[str]:
        if len(images) != len(prompts):
            raise ValueError(f"{len(images)} images but {len(prompts)} prompts")
        messages = [self._messages(im, p) for im, p in zip(images, prompts, strict=True)]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(messages) or 1)) as pool:
            return list(pool.map(self._post, messages))

    def info(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": "openai",
            "base_url": self.base_url,
            "decoding": "temperature 0.2 (mmskin-paper, no beams over the API)"
            if self.paper_decoding
            else "greedy",
            "max_new_tokens": self.max_new_tokens,
            "seed": self.seed,
            "concurrency": self.concurrency,
        }
