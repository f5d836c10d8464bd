"""Run a model over samples and keep its answers: predictions JSONL written as they come, resumable, never duplicated.

Each batch's rows are appended and flushed (and fsynced) as soon as the model answers, so a killed run loses at most
the batch in flight. A rerun reads the file, skips the ids already there and appends only the rest; a torn last
line left by a kill is cut off first. A sidecar ``PREDICTIONS.meta.json`` records how the answers were made
(model, decoding, seed, versions); resuming with a different model or decoding is refused rather than mixed.
Samples whose image cannot be read are reported on stderr, listed in ``PREDICTIONS.errors.jsonl`` and retried on
the next run.

    parser = argparse.ArgumentParser(); add_model_arguments(parser)
    args = parser.parse_args(["--model", "hf:models/skinvl", "--batch-size", "16"])
    rows = predict_vqa(args, samples, Path("data/derm"), Path("preds.jsonl"))
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..provenance import package_versions
from ..records import RecordError, atomic_write_bytes, resolve_in_root, write_jsonl
from .adapters import Adapter, adapter_info, get_adapter

if TYPE_CHECKING:
    from PIL import Image

# adapter info keys that may change between a run and its resumption without changing the answers
_VOLATILE = {"device", "concurrency", "base_url", "torch", "transformers", "kv_cache"}


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that choose and drive a model (shared by ``eval vqa``, ``zeroshot`` and ``probe``)."""
    g = parser.add_argument_group("model")
    g.add_argument(
        "--model",
        metavar="SPEC",
        default=None,
        help="hf:PATH_OR_ID (Hugging Face image-text-to-text), openai:MODEL (OpenAI-compatible server), "
        "dummy[:echo|:TEXT] (fake model for pipeline checks)",
    )
    g.add_argument("--batch-size", type=int, default=8, help="samples per model call (default: 8)")
    g.add_argument(
        "--max-new-tokens",
        type=int,
        default=None,
        help="answer length cap in tokens (default: 128; 256 with --paper-decoding, as MM-Skin)",
    )
    g.add_argument(
        "--paper-decoding",
        action="store_true",
        help="MM-Skin's sampling instead of greedy decoding (5 beams, top_p 0.9, temperature 0.2 for VQA and "
        "0.5 for zero-shot; seeded)",
    )
    g.add_argument(
        "--base-url", default=None, metavar="URL", help="openai: server URL, e.g. http://127.0.0.1:8000/v1"
    )
    g.add_argument("--concurrency", type=int, default=8, help="openai: requests in flight (default: 8)")
    g.add_argument("--device", default="auto", help="hf: cpu, cuda, cuda:1 … (default: auto)")
    g.add_argument("--dtype", default="auto", help="hf: auto, bfloat16, float16, float32 (default: auto)")
    g.add_argument(
        "--kv-cache",
        default="dynamic",
        choices=("dynamic", "static"),
        help="hf: static KV cache (compiled decoding on CUDA; fastest for long runs) (default: dynamic)",
    )


def adapter_from_args(args: argparse.Namespace, task: str = "vqa") -> Adapter:
    if not getattr(args, "model", None):
        raise ValueError("no model: give --model SPEC (hf:PATH, openai:MODEL or dummy)")
    return get_adapter(
        args.model,
        device=getattr(args, "device", "auto"),
        dtype=getattr(args, "dtype", "auto"),
        max_new_tokens=getattr(args, "max_new_tokens", None),
        paper_decoding=getattr(args, "paper_decoding", False),
        task=task,
        seed=getattr(args, "seed", 0),
        base_url=getattr(args, "base_url", None),
        concurrency=getattr(args, "concurrency", 8),
        cache=getattr(args, "kv_cache", "dynamic"),
    )


def versions() -> dict[str, str]:
    """mmskin and the installed versions of the packages that change numbers."""
    pkgs = ("numpy", "torch", "transformers", "scikit-learn", "pillow")
    return {"mmskin": __version__, "python": sys.version.split()[0], **package_versions(pkgs)}


@dataclass
class PredictResult:
    rows: list[dict[str, Any]]
    errors: list[dict[str, str]] = field(default_factory=list)
    new: int = 0
    resumed: int = 0


def meta_path(out_path: Path) -> Path:
    return out_path.with_name(out_path.name + ".meta.json")


def errors_path(out_path: Path) -> Path:
    return out_path.with_name(out_path.name + ".errors.jsonl")


def read_predictions(path: Path, repair: bool = False) -> dict[str, dict[str, Any]]:
    """Rows of a predictions file by id. A last line without its newline (a kill mid-write) is ignored, and with
    ``repair`` cut off so that appends start on a clean line; a malformed line elsewhere raises ValueError."""
    if not path.exists():
        return {}
    data = path.read_bytes()
    cut = data.rfind(b"\n") + 1
    if cut < len(data):
        print(f"{path}: ignoring a torn last line ({len(data) - cut} bytes)", file=sys.stderr)
        if repair:
            with open(path, "r+b") as f:
                f.truncate(cut)
        data = data[:cut]
    rows: dict[str, dict[str, Any]] = {}
    for n, line in enumerate(data.decode("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{n}: not JSON ({e.msg})") from None
        if not isinstance(row, dict) or "id" not in row or "prediction" not in row:
            raise ValueError(f"{path}:{n}: a prediction row needs 'id' and 'prediction'")
        rows[str(row["id"])] = row
    return rows


def _load_image(root: Path, rel: str) -> Image.Image:
    from PIL import Image

    path = resolve_in_root(root, rel)
    with Image.open(path) as im:
        im.load()
        return im.convert("RGB")


def load_images(root: Path, samples: list[dict[str, Any]]) -> list[Image.Image | str]:
    """The images of ``samples``, or for each one that fails a one-line reason naming the file."""
    out: list[Image.Image | str] = []
    for s in samples:
        try:
            out.append(_load_image(root, str(s["image"])))
        except (RecordError, OSError, ValueError) as e:
            out.append(f"{s['image']}: {type(e).__name__}: {e}".replace("\n", " "))
    return out


def _check_meta(out_path: Path, info: dict[str, Any], have_rows: bool) -> None:
    mp = meta_path(out_path)
    if not (have_rows and mp.exists()):
        return
    try:
        old = json.loads(mp.read_text(encoding="utf-8")).get("model", {})
    except (OSError, json.JSONDecodeError, AttributeError):
        return
    a = {k: v for k, v in old.items() if k not in _VOLATILE}
    b = {k: v for k, v in info.items() if k not in _VOLATILE}
    if a != b:
        diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
        raise ValueError(
            f"{out_path}: made with another model or decoding (differs in {', '.join(diff)}); "
            "resuming would mix them: use another predictions file or delete it"
        )


def _batches(items: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def run_predictions(
    adapter: Adapter,
    samples: list[dict[str, Any]],
    image_root: Path,
    out_path: Path,
    *,
    batch_size: int = 8,
    prompt_key: str = "question",
    quiet: bool = False,
    extra_meta: dict[str, Any] | None = None,
    on_error: Callable[[str], None] | None = None,
) -> PredictResult:
    """Answer every sample not yet in ``out_path`` and return all rows (sample fields + ``prediction``) in the
    order of ``samples``; samples that failed are in ``errors`` and absent from ``rows``."""
    out_path = Path(out_path)
    ids = [str(s["id"]) for s in samples]
    dups = [i for i, c in Counter(ids).items() if c > 1]
    if dups:
        raise ValueError(f"sample ids must be unique to resume safely (duplicates: {dups[:3]})")
    info = adapter_info(adapter)
    done = read_predictions(out_path, repair=True)
    for s in samples:
        old = done.get(str(s["id"]))
        if old is not None and old.get(prompt_key) != s.get(prompt_key):
            raise ValueError(
                f"{out_path}: id {s['id']!r} was answered for another {prompt_key}; "
                "use another predictions file for another dataset or prompt"
            )
    _check_meta(out_path, info, bool(done))
    meta = {"model": info, "versions": versions(), "batch_size": batch_size, **(extra_meta or {})}
    out_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(meta_path(out_path), (json.dumps(meta, indent=2, sort_keys=True) + "\n").encode())

    pending = [s for s in samples if str(s["id"]) not in done]
    # length bucketing: similar prompt lengths share a batch, so left padding wastes little
    pending.sort(key=lambda s: -len(str(s.get(prompt_key, ""))))
    report = on_error or (lambda msg: print(f"error: {msg}", file=sys.stderr, flush=True))
    errors: list[dict[str, str]] = []
    new = 0

    progress = None
    task = None
    if not quiet and pending:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        progress = Progress(
            TextColumn(f"predict {adapter.name}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()
        )
        progress.start()
        task = progress.add_task("predict", total=len(samples), completed=len(samples) - len(pending))

    def fail(sample: dict[str, Any], reason: str) -> None:
        errors.append({"id": str(sample["id"]), "image": str(sample.get("image", "")), "reason": reason})
        report(reason)

    batches = list(_batches(pending, max(1, batch_size)))
    try:
        with open(out_path, "a", encoding="utf-8") as f, ThreadPoolExecutor(1) as loader:
            # images of the next batch load while the model answers this one
            nxt = loader.submit(load_images, image_root, batches[0]) if batches else None
            for bi, batch in enumerate(batches):
                loaded = nxt.result() if nxt else []
                nxt = (
                    loader.submit(load_images, image_root, batches[bi + 1]) if bi + 1 < len(batches) else None
                )
                ok = [(s, im) for s, im in zip(batch, loaded, strict=True) if not isinstance(im, str)]
                for s, im in zip(batch, loaded, strict=True):
                    if isinstance(im, str):
                        fail(s, im)
                answers = _answer(adapter, ok, prompt_key, fail)
                lines = []
                for (s, _), ans in zip(ok, answers, strict=True):
                    if ans is None:
                        continue
                    row = {**s, "prediction": ans, "model": adapter.name}
                    done[str(s["id"])] = row
                    lines.append(json.dumps(row, sort_keys=True, ensure_ascii=False) + "\n")
                if lines:
                    f.write("".join(lines))
                    f.flush()
                    os.fsync(f.fileno())
                    new += len(lines)
                if progress is not None and task is not None:
                    progress.advance(task, len(batch))
    finally:
        if progress is not None:
            progress.stop()

    ep = errors_path(out_path)
    if errors:
        write_jsonl(ep, errors)
    elif ep.exists():
        ep.unlink()
    rows = [done[i] for i in ids if i in done]
    return PredictResult(rows=rows, errors=errors, new=new, resumed=len(samples) - len(pending))


def _answer(
    adapter: Adapter,
    ok: list[tuple[dict[str, Any], Image.Image]],
    prompt_key: str,
    fail: Callable[[dict[str, Any], str], None],
) -> list[str | None]:
    """Answers for a batch; when the batch call fails, each sample is tried alone so one bad sample (or one failed
    request) costs only itself."""
    if not ok:
        return []
    try:
        out = adapter.generate([im for _, im in ok], [str(s[prompt_key]) for s, _ in ok])
        if len(out) != len(ok):
            raise RuntimeError(f"{adapter.name} returned {len(out)} answers for {len(ok)} prompts")
        return list(out)
    except Exception as batch_error:  # noqa: BLE001 - any model failure: isolate it per sample
        if len(ok) == 1:
            fail(ok[0][0], f"{ok[0][0].get('image')}: {type(batch_error).__name__}: {batch_error}")
            return [None]
        res: list[str | None] = []
        for s, im in ok:
            try:
                res.append(adapter.generate([im], [str(s[prompt_key])])[0])
            except Exception as e:  # noqa: BLE001
                fail(s, f"{s.get('image')}: {type(e).__name__}: {e}")
                res.append(None)
        return res


def predict_vqa(
    args: argparse.Namespace, samples: list[dict[str, Any]], image_root: Path, out_path: Path
) -> list[dict[str, Any]]:
    """Answer VQA samples (``{id, image, question, answer, [modality]}``) with the model of ``args``; returns every
    answered row with ``prediction`` (fewer rows than samples means some failed: see PREDICTIONS.errors.jsonl)."""
    adapter = adapter_from_args(args)
    res = run_predictions(
        adapter,
        samples,
        Path(image_root),
        Path(out_path),
        batch_size=getattr(args, "batch_size", 8),
        quiet=getattr(args, "quiet", False),
        extra_meta={"task": "vqa", "seed": getattr(args, "seed", 0)},
    )
    return res.rows
