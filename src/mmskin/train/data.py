"""Training data: LLaVA conversation JSON and HF parquet exports -> tokenised, label-masked samples.

    samples, report = load_sources(cfg.data, seed=0)            # checks every image up front
    ds = SFTDataset(samples, processor, max_length=2048)
    batch = Collator(processor)([ds[0], ds[1]])                 # input_ids, attention_mask, labels, pixel_values...

Formats (what ``mmskin export`` / ``convert-public`` / ``vqa`` write):
  * LLaVA JSON: ``[{"id", "image", "conversations": [{"from": "human", "value": "<image>\\n..."},
    {"from": "gpt", "value": "..."}, ...]}]`` (``.json``; ``.jsonl`` with one object per line also works).
  * VQA samples JSONL (``DATASET/vqa.jsonl``, ``convert-public``): ``{"id", "image", "question", "answer", ...}``.
  * HF parquet: columns ``id``, ``image`` (HF Image feature: struct of ``bytes``/``path``), ``question``, ``answer``.
Image paths are relative to the source's ``image_root`` (default: the dataset/image folder named in the file's
``.info.json`` sidecar, else the data file's folder) and may not leave it.

Masking: the text is rendered with the processor's chat template; every user turn (with the expanded image
tokens) is tokenised as prompt and gets label -100, every assistant turn is tokenised as completion and keeps its
labels; padding gets -100. Prompt and completion are tokenised separately, so the boundary is exact.
"""

from __future__ import annotations

import io
import json
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..records import RecordError, resolve_in_root

IGNORE_INDEX = -100
TEXT_KEYS = ("input_ids", "attention_mask", "labels")


class DataError(ValueError):
    """Unusable training data; the message is one line naming the file (and sample)."""


@dataclass
class Sample:
    id: str
    source: str
    turns: list[tuple[str, str]]  # (question, answer); the image belongs to the first question
    image_path: Path | None = None
    image_bytes: bytes | None = None

    def open_image(self):
        from PIL import Image

        try:
            img = Image.open(
                io.BytesIO(self.image_bytes) if self.image_bytes is not None else self.image_path
            )
            return img.convert("RGB")
        except (OSError, ValueError) as e:
            where = self.image_path or f"{self.source} (embedded bytes)"
            raise DataError(f"{where}: sample {self.id}: cannot read the image ({e})") from None


@dataclass
class SourceReport:
    name: str
    path: str
    format: str
    weight: float
    read: int = 0  # samples in the file
    bad: list[str] = field(default_factory=list)  # one line per rejected sample
    used: int = 0  # samples after weighting (repeats counted)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": self.path,
            "format": self.format,
            "weight": self.weight,
            "samples": self.read,
            "bad": len(self.bad),
            "used": self.used,
        }


def _strip_image_tag(text: str) -> tuple[str, bool]:
    had = "<image>" in text
    for tag in ("<image>\n", "\n<image>", "<image>"):
        text = text.replace(tag, "")
    return text.strip(), had


def _check_image(root: Path, rel: Any) -> Path:
    """Absolute path of an existing, readable image under ``root``; RecordError/DataError otherwise."""
    from PIL import Image

    if not isinstance(rel, str) or not rel:
        raise DataError("no image path")
    full = resolve_in_root(root, rel)
    if not full.is_file():
        raise DataError(f"image {rel} not found under {root}")
    try:
        with Image.open(full):  # reads the header only: catches non-images cheaply
            pass
    except (OSError, ValueError) as e:
        raise DataError(f"image {rel} is not a readable image ({e})") from None
    return full


def _llava_turns(conv: Any) -> list[tuple[str, str]]:
    if not isinstance(conv, list) or not conv:
        raise DataError("conversations is missing or empty")
    turns: list[tuple[str, str]] = []
    for i in range(0, len(conv) - 1, 2):
        h, g = conv[i], conv[i + 1]
        if not (isinstance(h, dict) and isinstance(g, dict)):
            raise DataError(f"conversations[{i}]: not an object")
        if h.get("from") not in ("human", "user") or g.get("from") not in ("gpt", "assistant"):
            raise DataError(f"conversations[{i}]: expected a human turn then a gpt turn")
        q, a = h.get("value"), g.get("value")
        if not isinstance(q, str) or not isinstance(a, str) or not a.strip():
            raise DataError(f"conversations[{i}]: empty question or answer")
        turns.append((_strip_image_tag(q)[0], a.strip()))
    if len(conv) % 2:
        raise DataError("conversations has an unanswered last turn")
    return turns


def _row_turns(row: dict[str, Any]) -> list[tuple[str, str]]:
    if "conversations" in row:
        return _llava_turns(row["conversations"])
    q, a = row.get("question"), row.get("answer")
    if not isinstance(q, str) or not isinstance(a, str) or not a.strip():
        raise DataError("needs conversations, or a question and an answer")
    return [(_strip_image_tag(q)[0], a.strip())]


def _read_json(path: Path, root: Path, rep: SourceReport) -> list[Sample]:
    """LLaVA conversation JSON (a list) or JSON Lines of conversation objects or VQA samples."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read ({e})") from None
    rows: list[Any] = []
    try:
        if path.suffix == ".jsonl":
            for n, line in enumerate(text.splitlines(), start=1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as e:
                        rep.read += 1
                        rep.bad.append(f"{path}:{n}: not valid JSON ({e})")
        else:
            rows = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(rows, list):
        raise DataError(f"{path}: expected a list of conversation objects")
    out = []
    for n, row in enumerate(rows):
        sid = str(row.get("id", n)) if isinstance(row, dict) else str(n)
        rep.read += 1
        try:
            if not isinstance(row, dict):
                raise DataError("not an object")
            turns = _row_turns(row)
            out.append(Sample(sid, rep.name, turns, image_path=_check_image(root, row.get("image"))))
        except (DataError, RecordError) as e:
            rep.bad.append(f"{path}: sample {sid}: {e}")
    return out


def _read_parquet(path: Path, root: Path, rep: SourceReport) -> list[Sample]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: cannot read as parquet ({str(e).splitlines()[0]})") from None
    missing = [c for c in ("image", "question", "answer") if c not in table.column_names]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)} (need id, image, question, answer)")
    ids = table.column("id").to_pylist() if "id" in table.column_names else list(range(table.num_rows))
    images = table.column("image").to_pylist()
    qs, ans = table.column("question").to_pylist(), table.column("answer").to_pylist()
    out = []
    for sid, img, q, a in zip(ids, images, qs, ans):
        rep.read += 1
        sid = str(sid)
        try:
            if not isinstance(q, str) or not isinstance(a, str) or not a.strip():
                raise DataError("empty question or answer")
            turns = [(_strip_image_tag(q)[0], a.strip())]
            if isinstance(img, dict) and img.get("bytes"):
                out.append(Sample(sid, rep.name, turns, image_bytes=img["bytes"]))
            else:
                rel = img.get("path") if isinstance(img, dict) else img
                out.append(Sample(sid, rep.name, turns, image_path=_check_image(root, rel)))
        except (DataError, RecordError) as e:
            rep.bad.append(f"{path}: sample {sid}: {e}")
    return out


def _format(path: Path, fmt: str) -> str:
    if fmt != "auto":
        return fmt
    if path.suffix in (".json", ".jsonl"):
        return "llava" if path.suffix == ".json" else "jsonl"  # rows may be conversations or VQA samples
    if path.suffix == ".parquet":
        return "hf"
    raise DataError(f"{path}: cannot tell the format from the extension; set format: llava, vqa or hf")


def default_image_root(path: Path) -> Path:
    """Where a data file's image paths start: its ``.info.json`` sidecar (mmskin export / convert-public /
    import) names the dataset or image folder; otherwise the file's own folder."""
    info = Path(f"{path}.info.json")
    if info.is_file():
        try:
            meta = json.loads(info.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            meta = {}
        for key in ("image_root", "images", "dataset"):
            if isinstance(meta, dict) and isinstance(meta.get(key), str) and meta[key]:
                root = Path(meta[key])
                return root if root.is_absolute() else path.parent / root
    return path.parent


def _weighted(samples: list[Sample], weight: float, rng: random.Random) -> list[Sample]:
    whole, frac = int(weight), weight - int(weight)
    out = samples * whole
    if frac > 0 and samples:
        out += rng.sample(samples, round(frac * len(samples)))
    return out


def load_sources(sources: Iterable[Any], seed: int) -> tuple[list[Sample], list[SourceReport]]:
    """Read every source, check every image, apply the mix weights. Bad samples are listed in the reports."""
    rng = random.Random(seed)
    samples: list[Sample] = []
    reports = []
    for src in sources:
        path = Path(src.path)
        if not path.is_file():
            raise DataError(f"{path}: data file not found")
        fmt = _format(path, src.format)
        root = Path(src.image_root) if src.image_root else default_image_root(path)
        if not root.is_dir():
            raise DataError(f"{path}: image_root {root} is not a folder")
        rep = SourceReport(src.name or path.name, str(path), fmt, src.weight)
        got = (_read_parquet if fmt == "hf" else _read_json)(path, root, rep)
        if rep.read == 0:
            raise DataError(f"{path}: no samples")
        chosen = _weighted(got, src.weight, rng)
        rep.used = len(chosen)
        samples += chosen
        reports.append(rep)
    return samples, reports


# --- tokenisation --------------------------------------------------------------------------------------------


def conversation_segments(
    processor, turns: list[tuple[str, str]], with_image: bool
) -> list[tuple[str, bool]]:
    """Chat-template text cut into (text, is_answer) pieces: prompt, answer, prompt, answer, ..."""
    from ..models.loading import ModelError, render_chat

    messages: list[dict[str, Any]] = []
    segments: list[tuple[str, bool]] = []
    done = ""
    for i, (q, a) in enumerate(turns):
        content: list[dict[str, Any]] = [{"type": "image"}] if (i == 0 and with_image) else []
        messages.append({"role": "user", "content": content + [{"type": "text", "text": q}]})
        prompt = render_chat(processor, messages, add_generation_prompt=True)
        messages.append({"role": "assistant", "content": [{"type": "text", "text": a}]})
        full = render_chat(processor, messages, add_generation_prompt=False)
        if not prompt.startswith(done) or not full.startswith(prompt):
            raise ModelError(
                "the processor's chat template does not render a conversation as a prefix of its continuation; "
                "answers cannot be separated from prompts for label masking"
            )
        segments += [(prompt[len(done) :], False), (full[len(prompt) :], True)]
        done = full
    return segments


def encode_sample(processor, sample: Sample, max_length: int, image=None) -> dict[str, Any]:
    """input_ids / attention_mask / labels (1-D tensors) + the processor's image tensors for one sample."""
    import torch

    tok = processor.tokenizer
    image = sample.open_image() if image is None else image
    segments = conversation_segments(processor, sample.turns, with_image=True)
    first = processor(text=[segments[0][0]], images=[image], return_tensors="pt")
    ids: list[int] = first["input_ids"][0].tolist()
    labels: list[int] = [IGNORE_INDEX] * len(ids)
    prompt_len = len(ids)
    if prompt_len >= max_length:
        raise DataError(
            f"sample {sample.id} ({sample.source}): the prompt with its image tokens is {prompt_len} tokens, "
            f"not shorter than max_length {max_length}; raise max_length"
        )
    for k, (text, is_answer) in enumerate(segments[1:], start=1):
        piece = tok(text, add_special_tokens=False)["input_ids"]
        if is_answer and k == len(segments) - 1 and tok.eos_token_id is not None:
            if (
                tok.eos_token_id not in piece
            ):  # templates without an end-of-turn token: teach the model to stop
                piece = piece + [tok.eos_token_id]
        ids += piece
        labels += piece if is_answer else [IGNORE_INDEX] * len(piece)
    ids, labels = ids[:max_length], labels[:max_length]
    image_token_id = getattr(processor, "image_token_id", None)
    if image_token_id is None and getattr(processor, "image_token", None):
        image_token_id = tok.convert_tokens_to_ids(processor.image_token)
    if image_token_id is not None:  # the prompt already masks them; keep the guarantee explicit
        labels = [IGNORE_INDEX if t == image_token_id else lab for t, lab in zip(ids, labels)]
    out: dict[str, Any] = {
        "input_ids": torch.tensor(ids, dtype=torch.long),
        "attention_mask": torch.ones(len(ids), dtype=torch.long),
        "labels": torch.tensor(labels, dtype=torch.long),
    }
    for key, value in first.items():
        if key in TEXT_KEYS or not torch.is_tensor(value):
            continue
        if value.dim() == 2 and value.shape == first["input_ids"].shape:  # per-token (e.g. mm_token_type_ids)
            row = value[0].tolist() + [0] * (len(ids) - prompt_len)
            out[key] = torch.tensor(row[: len(ids)], dtype=value.dtype)
        else:
            out[key] = value
    return out


class SFTDataset:
    """Map-style dataset of encoded samples (images are read and processed lazily, per item); ``aspect`` ``pad``
    expands each image to a square with the processor's mean colour first (LLaVA's image_aspect_ratio pad)."""

    def __init__(self, samples: list[Sample], processor, max_length: int, aspect: str = "none"):
        self.samples, self.processor, self.max_length, self.aspect = samples, processor, max_length, aspect

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def lengths(self) -> list[int]:
        """Words per sample (questions + answers), LLaVA's length estimate for grouping batches by length."""
        return [sum(len(q.split()) + len(a.split()) for q, a in s.turns) for s in self.samples]

    def __getitem__(self, i: int) -> dict[str, Any]:
        from ..models.llava_compat import prepare_images

        sample = self.samples[i]
        image = prepare_images([sample.open_image()], self.processor, self.aspect)[0]
        return encode_sample(self.processor, sample, self.max_length, image=image)


class Collator:
    """Right-pads the text tensors (pad id / -100 / 0); concatenates the image tensors along dim 0."""

    def __init__(self, processor):
        tok = processor.tokenizer
        self.pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        length = max(len(it["input_ids"]) for it in items)
        pads = {"input_ids": self.pad_id, "labels": IGNORE_INDEX, "attention_mask": 0}
        batch: dict[str, Any] = {}
        token_keys = [k for k, v in items[0].items() if v.dim() == 1]
        for key in token_keys:
            fill = pads.get(key, 0)
            rows = []
            for it in items:
                v = it[key]
                rows.append(torch.cat([v, v.new_full((length - len(v),), fill)]))
            batch[key] = torch.stack(rows)
        for key in items[0]:
            if key not in token_keys:
                batch[key] = torch.cat([it[key] for it in items], dim=0)
        return batch
