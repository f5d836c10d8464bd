"""Run a model over samples and keep its answers: predictions JSONL written as they come, resumable, never duplicated.

Each batch's rows are appended and flushed (and fsynced) as soon as the model answers, so a killed run loses at most
the batch in flight. A rerun reads the file, skips the ids already there and appends only the rest; a torn last
line left by a kill is cut off first. A sidecar ``PREDICTIONS.meta.json`` records how the answers were made
(model, decoding, the provenance block); resuming with a different model or decoding is refused rather than mixed.
Samples whose image cannot be read are reported as problems, listed in ``PREDICTIONS.errors.jsonl`` and retried on
the next run.

    model = ModelConfig(spec="hf:models/skinvl", batch_size=16)      # the --model ... options of mmskin eval
    rows = predict_vqa(model, samples, Path("data/derm"), Path("preds.jsonl"))
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..chat import retry_option
from ..config import option
from ..engine import check_engine, engine_option, ray_address_option
from ..provenance import provenance, write_info
from ..records import RecordError, resolve_in_root, write_jsonl
from ..stage import SILENT, Problem, Problems, Reporter
from .adapters import Adapter, adapter_info, get_adapter

if TYPE_CHECKING:
    from PIL import Image

    from ..engine import Replicas

# adapter info keys that may change between a run and its resumption without changing the answers
_VOLATILE = {"device", "concurrency", "base_url", "torch", "transformers", "kv_cache"}
# the distributions whose versions shape a model's answers (the provenance block of predictions and results)
MODEL_PACKAGES = ("numpy", "pillow", "torch", "transformers")


@dataclass(frozen=True)
class ModelConfig:
    """The model that answers and how it runs (the model options shared by ``eval vqa``, ``zeroshot`` and
    ``probe``)."""

    spec: str | None = option(
        None,
        "hf:PATH_OR_ID (Hugging Face image-text-to-text), openai:MODEL (OpenAI-compatible server), "
        "dummy[:echo|:TEXT] (fake model for pipeline checks)",
        flag="--model",
        metavar="SPEC",
    )
    batch_size: int = option(8, "samples per model call")
    max_new_tokens: int | None = option(
        None, "answer length cap in tokens (default: 128; 256 with --paper-decoding, as MM-Skin)"
    )
    paper_decoding: bool = option(
        False,
        "MM-Skin's sampling instead of greedy decoding (5 beams, top_p 0.9, temperature 0.2 and min_new_tokens 20 "
        "for VQA, 0.5 and 1 for zero-shot; seeded), and for LLaVA its mistral_instruct prompt (see --conv-mode)",
    )
    conv_mode: str = option(
        "auto",
        "hf: prompt format: chat (the processor's chat template), or a LLaVA conversation template built and "
        "tokenised as LLaVA does (mistral_instruct, v1, llava_v1); auto: mistral_instruct for LLaVA with "
        "--paper-decoding (MM-Skin's scripts), else chat",
        choices=("auto", "chat", "mistral_instruct", "v1", "llava_v1"),
    )
    image_aspect_ratio: str = option(
        "auto",
        "hf: pad (expand images to squares with the processor's mean colour, as LLaVA-Med; no centre crop cuts a "
        "lesion off) or none; auto: the model config's setting, else pad for LLaVA-family models",
        choices=("auto", "pad", "none"),
    )
    base_url: str | None = option(None, "openai: server URL, e.g. http://127.0.0.1:8000/v1", metavar="URL")
    concurrency: int = option(8, "openai: requests in flight")
    timeout: float = retry_option("timeout", "openai: ", default=120.0)
    max_retries: int = retry_option("max_retries", "openai: ")
    retry_base: float = retry_option("retry_base", "openai: ")
    retry_time: float = retry_option("retry_time", "openai: ")
    max_failures: int = retry_option("max_failures", "openai: ")
    device: str = option("auto", "hf: cpu, cuda, cuda:1 …")
    dtype: str = option("auto", "hf: auto, bfloat16, float16, float32")
    kv_cache: str = option(
        "dynamic",
        "hf: static KV cache (compiled decoding on CUDA; fastest for long runs)",
        choices=("dynamic", "static"),
    )
    engine: str = engine_option("the model")
    ray_address: str | None = ray_address_option()
    ray_replicas: int = option(
        0,
        "with --engine ray: model replicas, each on its own GPU (hf: models on a cluster with GPUs) or CPU; "
        "0: one per GPU of the cluster (1 when it has none)",
        metavar="N",
    )


@dataclass(frozen=True)
class ReplicaSpec:
    """How Ray replicas rebuild the adapter (``--engine ray``): its model options, task and seed."""

    model: ModelConfig
    task: str = "vqa"
    seed: int = 0

    @classmethod
    def of(cls, model: ModelConfig, task: str = "vqa", seed: int = 0) -> ReplicaSpec | None:
        """The spec when ``model`` runs on Ray, else None (the local engine)."""
        return cls(model, task, seed) if model.engine == "ray" else None

    @contextmanager
    def replicas(self) -> Iterator[Replicas]:
        """Actors holding the model for as long as the block runs (one per GPU, or ``ray_replicas``). A local
        model folder is named by its absolute path: the replicas' working folder is not ours."""
        from ..engine import RayEngine

        model = self.model
        kind, _, arg = (model.spec or "").partition(":")
        if kind == "hf" and Path(arg).exists():
            model = dataclasses.replace(model, spec=f"hf:{os.path.abspath(arg)}")
        with RayEngine(model.ray_address) as eng:
            gpus = eng.cluster("GPU") if kind == "hf" else 0
            yield eng.replicas(
                adapter_for, (model, self.task, self.seed), model.ray_replicas or gpus or 1, gpus > 0
            )


def predictions_meta(task: str, config: Any, seed: int, **extra: Any) -> dict[str, Any]:
    """What a predictions sidecar records beside the model: the task, the seed, ``extra`` (benchmark, prompt) and
    the provenance block of the run that made the answers."""
    block = provenance(f"eval {task}", config=config, packages=MODEL_PACKAGES, seed=seed)
    return {"task": task, "seed": seed, **extra, "provenance": block}


def adapter_for(model: ModelConfig, task: str = "vqa", seed: int = 0) -> Adapter:
    """The registered adapter for ``model.spec`` (``hf:``, ``openai:``, ``dummy``), set up for ``task``."""
    if not model.spec:
        raise ValueError("no model: give --model SPEC (hf:PATH, openai:MODEL or dummy)")
    check_engine(model.engine)
    return get_adapter(
        model.spec,
        device=model.device,
        dtype=model.dtype,
        max_new_tokens=model.max_new_tokens,
        paper_decoding=model.paper_decoding,
        task=task,
        seed=seed,
        base_url=model.base_url,
        concurrency=model.concurrency,
        cache=model.kv_cache,
        conv_mode=model.conv_mode,
        image_aspect_ratio=model.image_aspect_ratio,
        timeout=model.timeout,
        retries=model.max_retries,
        backoff=model.retry_base,
        retry_time=model.retry_time,
        max_failures=model.max_failures,
    )


@dataclass
class PredictResult:
    rows: list[dict[str, Any]]
    errors: list[dict[str, str]] = field(default_factory=list)  # the rows of PREDICTIONS.errors.jsonl
    new: int = 0
    resumed: int = 0


def meta_path(out_path: Path) -> Path:
    return out_path.with_name(out_path.name + ".meta.json")


def errors_path(out_path: Path) -> Path:
    return out_path.with_name(out_path.name + ".errors.jsonl")


def read_predictions(
    path: Path, repair: bool = False, reporter: Reporter = SILENT
) -> dict[str, dict[str, Any]]:
    """Rows of a predictions file by id. A last line without its newline (a kill mid-write) is ignored, and with
    ``repair`` cut off so that appends start on a clean line; a malformed line elsewhere raises ValueError."""
    if not path.exists():
        return {}
    data = path.read_bytes()
    cut = data.rfind(b"\n") + 1
    if cut < len(data):
        reporter.warning(f"{path}: ignoring a torn last line ({len(data) - cut} bytes)")
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


def load_images(root: Path, samples: list[dict[str, Any]]) -> list[Image.Image | Problem]:
    """The images of ``samples``, or for each one that fails a :class:`Problem` naming the file."""
    out: list[Image.Image | Problem] = []
    for s in samples:
        try:
            out.append(_load_image(root, str(s["image"])))
        except (RecordError, OSError, ValueError) as e:
            out.append(Problem(str(s["image"]), f"{type(e).__name__}: {e}".replace("\n", " ")))
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
    meta: dict[str, Any] | None = None,
    problems: Problems | None = None,
    reporter: Reporter = SILENT,
    replicas: ReplicaSpec | None = None,
) -> PredictResult:
    """Answer every sample not yet in ``out_path`` and return all rows (sample fields + ``prediction``) in the
    order of ``samples``; samples that failed are in ``errors`` (and ``problems``) and absent from ``rows``.
    ``meta`` joins the sidecar file (task, seed, the provenance block). With ``replicas`` the batches are
    answered by Ray replicas of the model, the file written in the same order as by ``adapter`` here."""
    out_path = Path(out_path)
    problems = Problems(reporter) if problems is None else problems
    ids = [str(s["id"]) for s in samples]
    dups = [i for i, c in Counter(ids).items() if c > 1]
    if dups:
        raise ValueError(f"sample ids must be unique to resume safely (duplicates: {dups[:3]})")
    info = adapter_info(adapter)
    done = read_predictions(out_path, repair=True, reporter=reporter)
    for s in samples:
        old = done.get(str(s["id"]))
        if old is not None and old.get(prompt_key) != s.get(prompt_key):
            raise ValueError(
                f"{out_path}: id {s['id']!r} was answered for another {prompt_key}; "
                "use another predictions file for another dataset or prompt"
            )
    _check_meta(out_path, info, bool(done))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    write_info(meta_path(out_path), {"model": info, "batch_size": batch_size, **(meta or {})}, indent=2)

    pending = [s for s in samples if str(s["id"]) not in done]
    # length bucketing: similar prompt lengths share a batch, so left padding wastes little
    pending.sort(key=lambda s: -len(str(s.get(prompt_key, ""))))
    errors: list[dict[str, str]] = []

    def fail(sample: dict[str, Any], problem: Problem) -> None:
        errors.append(
            {"id": str(sample["id"]), "image": str(sample.get("image", "")), "reason": str(problem)}
        )
        problems.take([problem])

    batches = list(_batches(pending, max(1, batch_size)))
    with reporter.progress(len(pending), f"predict {adapter.name}") as advance:
        if replicas is not None and batches:
            with replicas.replicas() as pool:
                answers = pool.map(answer_images, batches, os.path.abspath(image_root), prompt_key)
                new = _write_answers(adapter.name, batches, answers, out_path, done, fail, advance)
        else:
            answers = _local_answers(adapter, batches, image_root, prompt_key)
            new = _write_answers(adapter.name, batches, answers, out_path, done, fail, advance)
    ep = errors_path(out_path)
    if errors:
        write_jsonl(ep, errors)
    elif ep.exists():
        ep.unlink()
    rows = [done[i] for i in ids if i in done]
    return PredictResult(rows=rows, errors=errors, new=new, resumed=len(samples) - len(pending))


def _write_answers(
    name: str,
    batches: list[list[dict[str, Any]]],
    answers: Iterator[list[str | Problem]],
    out_path: Path,
    done: dict[str, dict[str, Any]],
    fail: Callable[[dict[str, Any], Problem], None],
    advance: Callable[[int], None],
) -> int:
    """Append each batch's rows to ``out_path`` (flushed and fsynced) and to ``done`` as its answers come, in
    batch order; returns how many rows were written."""
    new = 0
    with open(out_path, "a", encoding="utf-8") as f:
        for batch, outs in zip(batches, answers, strict=False):
            lines = []
            for s, ans in zip(batch, outs, strict=True):
                if isinstance(ans, Problem):
                    fail(s, ans)
                    continue
                row = {**s, "prediction": ans, "model": name}
                done[str(s["id"])] = row
                lines.append(json.dumps(row, sort_keys=True, ensure_ascii=False) + "\n")
            if lines:
                f.write("".join(lines))
                f.flush()
                os.fsync(f.fileno())
                new += len(lines)
            advance(len(batch))
    return new


def _local_answers(
    adapter: Adapter, batches: list[list[dict[str, Any]]], image_root: Path, prompt_key: str
) -> Iterator[list[str | Problem]]:
    """Each batch's answers from ``adapter`` here; the images of the next batch load while the model answers."""
    with ThreadPoolExecutor(1) as loader:
        nxt = loader.submit(load_images, image_root, batches[0]) if batches else None
        for bi, batch in enumerate(batches):
            loaded = nxt.result() if nxt else []
            nxt = loader.submit(load_images, image_root, batches[bi + 1]) if bi + 1 < len(batches) else None
            yield answer_batch(adapter, batch, loaded, prompt_key)


def answer_images(
    adapter: Adapter, batch: list[dict[str, Any]], image_root: str, prompt_key: str
) -> list[str | Problem]:
    """Load a batch's images and answer it (what a Ray replica runs)."""
    return answer_batch(adapter, batch, load_images(Path(image_root), batch), prompt_key)


def answer_batch(
    adapter: Adapter, batch: list[dict[str, Any]], loaded: list[Image.Image | Problem], prompt_key: str
) -> list[str | Problem]:
    """One answer or Problem per sample of ``batch``: an image that did not load, or a failed model call;
    when the batch call fails, each sample is tried alone so one bad sample (or one failed request) costs
    only itself."""
    ok = [(s, im) for s, im in zip(batch, loaded, strict=True) if not isinstance(im, Problem)]
    answers = iter(_answer(adapter, ok, prompt_key))
    return [im if isinstance(im, Problem) else next(answers) for im in loaded]


def _answer(
    adapter: Adapter, ok: list[tuple[dict[str, Any], Image.Image]], prompt_key: str
) -> list[str | Problem]:
    if not ok:
        return []
    try:
        out = adapter.generate([im for _, im in ok], [str(s[prompt_key]) for s, _ in ok])
        if len(out) != len(ok):
            raise RuntimeError(f"{adapter.name} returned {len(out)} answers for {len(ok)} prompts")
        return list(out)
    except Exception as batch_error:  # noqa: BLE001 - any model failure: isolate it per sample
        if len(ok) == 1:
            return [_failure(ok[0][0], batch_error)]
        res: list[str | Problem] = []
        for s, im in ok:
            try:
                res.append(adapter.generate([im], [str(s[prompt_key])])[0])
            except Exception as e:  # noqa: BLE001
                res.append(_failure(s, e))
        return res


def _failure(sample: dict[str, Any], exc: BaseException) -> Problem:
    return Problem(str(sample.get("image")), f"{type(exc).__name__}: {exc}")


def predict_vqa(
    model: ModelConfig,
    samples: list[dict[str, Any]],
    image_root: Path,
    out_path: Path,
    *,
    seed: int = 0,
    meta: dict[str, Any] | None = None,
    problems: Problems | None = None,
    reporter: Reporter = SILENT,
) -> list[dict[str, Any]]:
    """Answer VQA samples (``{id, image, question, answer, [modality]}``) with ``model``; returns every answered
    row with ``prediction`` (fewer rows than samples means some failed: see PREDICTIONS.errors.jsonl). ``meta``
    is the sidecar's record of the run (default: :func:`predictions_meta` of ``model``)."""
    res = run_predictions(
        adapter_for(model, "vqa", seed),
        samples,
        Path(image_root),
        Path(out_path),
        batch_size=model.batch_size,
        meta=meta if meta is not None else predictions_meta("vqa", model, seed),
        problems=problems,
        reporter=reporter,
        replicas=ReplicaSpec.of(model, "vqa", seed),
    )
    return res.rows
