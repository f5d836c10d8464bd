"""``mmskin benchmark CONFIG.yaml --out DIR``: MM-Skin's whole benchmark for one or more models, one report.

One YAML names the models and each dataset's CSV and image folder (``configs/benchmark/mmskin.yaml`` is the
example); the benchmark itself (which datasets each task runs on, Patch16's 10 % probe subsample, the report's
layout) is ``data/benchmarks/mmskin.yaml``, from MM-Skin's VQA_test.py, ZS_classify_test.sh and SFT_classify_test.sh.
For every model it runs open VQA on MM-Skin's test set (:mod:`.vqa`), zero-shot classification (:mod:`.zeroshot`)
and the linear probe (:mod:`.probe`), each through its own ``run``, in ``--compat mmskin`` by default:

    OUT/runs/<model>/vqa-mm-skin.json, zeroshot-ham10000.json, probe-ham10000.json …   results (+ predictions JSONL)
    OUT/cache/features/                                                               probe features (npz)
    OUT/benchmark.json, OUT/report.md, OUT/report.html                                 the tables, with intervals
                                                                                       and every number's signature

Resumable: a task whose results exist for the same settings and inputs (``OUT/state.json`` keeps a key per
results file) is not run again; an interrupted task resumes from its predictions file and feature cache. A dataset
whose images are missing is skipped with one line naming how many and the first; the others go on.

    from mmskin.evaluate.benchmark import BenchmarkRun, run
    result = run(BenchmarkRun(config=Path("configs/benchmark/mmskin.yaml"), out=Path("bench")))
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import ConfigError, build_config, option, read_yaml_file
from ..engine import ENGINE_FIELDS
from ..provenance import jsonable, provenance
from ..records import atomic_write_bytes, sha256_file
from ..resources import load_yaml
from ..stage import SILENT, Problem, Problems, Reporter, StageError, StageResult
from .predict import ModelConfig

KINDS = ("vqa", "zeroshot", "probe")
TITLES = {"vqa": "open VQA", "zeroshot": "zero-shot", "probe": "linear probe"}


@dataclass
class BenchModel:
    """One model of the comparison."""

    name: str = option("", "label of the model in the report (and its folder under OUT/runs)", required=True)
    model: ModelConfig = option(
        ModelConfig(),
        "how it runs: the model options of mmskin eval (spec: hf:PATH, batch_size, dtype, device, "
        "paper_decoding, conv_mode, image_aspect_ratio, max_new_tokens, …)",
        shown_default="{spec: …}",
    )


@dataclass
class VQATask:
    """MM-Skin's open-VQA test set."""

    data: Path | None = option(None, "MM-Skin_test.csv (image, question, answer)")
    images: Path | None = option(None, "folder its image paths start from (default: the top-level images)")
    captions: Path | None = option(None, "caption.csv: each image's modality, as VQA_test.py looks it up")
    metrics: str = option("bleu,meteor,rouge,recall,bertscore", "comma list, as mmskin eval vqa --metrics")
    bertscore_model: str | None = option(None, "as mmskin eval vqa --bertscore-model")
    bertscore_layer: int | None = option(None, "as mmskin eval vqa --bertscore-layer")
    limit: int | None = option(None, "only the first N rows (smoke runs)")


@dataclass
class ClassTask:
    """One classification dataset of the zero-shot or probe benchmark."""

    benchmark: str = option("", "dataset / taxonomy name, as MM-Skin's experiments (HAM10000, DDI_2class …)")
    data: Path | None = option(None, "test CSV (MM-Skin's <experiment>_test.csv)")
    images: Path | None = option(
        None, "folder the CSVs' image paths start from (default: the top-level images)"
    )
    train: Path | None = option(None, "probe: training CSV")
    val: Path | None = option(
        None, "probe: validation CSV (<experiment>_val.csv); default a seeded 20 % of train"
    )
    train_fraction: float | None = option(
        None, "probe: fraction of train and val used (default: the benchmark's)"
    )
    limit: int | None = option(None, "only the first N rows of each CSV (smoke runs)")


@dataclass
class BenchmarkConfig:
    """The YAML of ``mmskin benchmark``: models, datasets, and the settings every task shares."""

    models: list[BenchModel] = option([], "the models to compare (one or more), each {name, model: {...}}")
    root: Path | None = option(None, "folder relative paths start from (default: the YAML's folder)")
    images: Path | None = option(None, "default image folder of every dataset")
    vqa: VQATask | None = option(None, "the open-VQA test set {data, images, captions, metrics, …}")
    zeroshot: list[ClassTask] = option([], "zero-shot datasets [{benchmark, data, images}, …]")
    probe: list[ClassTask] = option([], "probe datasets [{benchmark, train, val, data, images}, …]")
    compat: str = option("mmskin", "metric and probe recipe", choices=("mmskin", "standard"))
    seed: int = option(0, "seed of decoding, ground-truth picks, splits and bootstrap")
    bootstrap: int = option(1000, "bootstrap resamples of every 95 percent interval")
    allow_missing_images: bool = option(False, "run a dataset with some images missing (default: skip it)")


@dataclass
class BenchmarkRun:
    """One ``mmskin benchmark`` run."""

    config: Path | None = option(None, "the benchmark YAML", cli=False, required=True)
    out: Path | None = option(None, "output folder (results, report)", metavar="DIR", required=True)
    only: str = option("vqa,zeroshot,probe", "comma list of the tasks to run")
    quiet: bool = option(False, "no progress bars")


@dataclass
class Task:
    """One model on one dataset: the sub-command's config and what the report needs to place it."""

    kind: str
    dataset: str
    model: str
    config: Any
    images: Path | None
    csvs: list[Path] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.model} {TITLES[self.kind]} {self.dataset}"


def definition() -> dict[str, Any]:
    """MM-Skin's benchmark as packaged: datasets per task, table layout, probe subsamples."""
    return load_yaml("benchmarks", "mmskin.yaml")


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "x"


def load_benchmark(path: Path) -> tuple[BenchmarkConfig, str]:
    """The config with every relative path resolved against ``root`` (default: the YAML's folder), and the YAML's
    sha256; ConfigError (one line naming the file and key) otherwise."""
    raw, sha = read_yaml_file(path)
    cfg = build_config(BenchmarkConfig, raw, str(path))
    if not cfg.models:
        raise ConfigError(f"{path}: models: name at least one model ({{name, model: {{spec: hf:PATH}}}})")
    names = [slug(m.name) for m in cfg.models]
    if any(not m.name for m in cfg.models) or len(set(names)) != len(names):
        raise ConfigError(f"{path}: every model needs a name, distinct from the others")
    root = (
        cfg.root if cfg.root is not None and cfg.root.is_absolute() else Path(path).parent / (cfg.root or ".")
    )

    def fix(obj: Any) -> Any:
        changes = {
            f.name: root / getattr(obj, f.name)
            for f in dataclasses.fields(obj)
            if isinstance(getattr(obj, f.name), Path) and not getattr(obj, f.name).is_absolute()
        }
        return dataclasses.replace(obj, **changes)

    cfg = fix(dataclasses.replace(cfg, root=root))
    return (
        dataclasses.replace(
            cfg,
            vqa=fix(cfg.vqa) if cfg.vqa else None,
            zeroshot=[fix(t) for t in cfg.zeroshot],
            probe=[fix(t) for t in cfg.probe],
        ),
        sha,
    )


def _canonical(name: str) -> str:
    from ..taxonomy import TaxonomyError, load_taxonomy

    try:
        return load_taxonomy(name).name
    except TaxonomyError as e:
        raise ConfigError(str(e)) from None


def plan(cfg: BenchmarkConfig, out: Path, only: tuple[str, ...]) -> tuple[list[Task], list[dict[str, Any]]]:
    """Every (model, dataset) task to run, in the report's order, and a record per paper dataset not configured."""
    from .probe import ProbeConfig
    from .vqa import EvalVQAConfig
    from .zeroshot import ZeroShotConfig

    spec = definition()
    tasks: list[Task] = []
    absent: list[dict[str, Any]] = []
    shared = {"seed": cfg.seed}
    for m in cfg.models:
        runs = out / "runs" / slug(m.name)
        if "vqa" in only and cfg.vqa is not None:
            v, name = cfg.vqa, spec["vqa"]["dataset"]
            stem = runs / f"vqa-{slug(name)}"
            vc = EvalVQAConfig(
                data=v.data,
                images=v.images or cfg.images,
                captions=v.captions,
                predictions_out=stem.with_suffix(".predictions.jsonl"),
                limit=v.limit,
                compat=cfg.compat,
                metrics=v.metrics,
                bertscore_model=v.bertscore_model,
                bertscore_layer=v.bertscore_layer,
                bootstrap=cfg.bootstrap,
                out=stem.with_suffix(".json"),
                model=m.model,
                **shared,
            )
            tasks.append(Task("vqa", name, m.name, vc, vc.images, [p for p in (v.data, v.captions) if p]))
        for t in cfg.zeroshot if "zeroshot" in only else []:
            stem = runs / f"zeroshot-{slug(t.benchmark)}"
            zc = ZeroShotConfig(
                benchmark=t.benchmark,
                data=t.data,
                images=t.images or cfg.images,
                predictions_out=stem.with_suffix(".predictions.jsonl"),
                out=stem.with_suffix(".json"),
                n_boot=cfg.bootstrap,
                limit=t.limit,
                model=m.model,
                **shared,
            )
            tasks.append(Task("zeroshot", t.benchmark, m.name, zc, zc.images, [p for p in (t.data,) if p]))
        fractions = {_canonical(k): v for k, v in spec["probe"].get("train_fraction", {}).items()}
        for t in cfg.probe if "probe" in only else []:
            stem = runs / f"probe-{slug(t.benchmark)}"
            pc = ProbeConfig(
                benchmark=t.benchmark,
                data=t.data,
                train=t.train,
                val=t.val,
                images=t.images or cfg.images,
                compat=cfg.compat,
                train_fraction=t.train_fraction or fractions.get(_canonical(t.benchmark), 1.0),
                cache_dir=out / "cache" / "features",
                out=stem.with_suffix(".json"),
                n_boot=cfg.bootstrap,
                limit=t.limit,
                model=m.model,
                **shared,
            )
            csvs = [p for p in (t.train, t.val, t.data) if p]
            tasks.append(Task("probe", t.benchmark, m.name, pc, pc.images, csvs))
    for kind in ("zeroshot", "probe"):
        have = {_canonical(t.benchmark) for t in getattr(cfg, kind)}
        for name in spec[kind]["datasets"] if kind in only else []:
            if _canonical(name) not in have:
                absent.append({"kind": kind, "dataset": name, "status": "not configured"})
    if "vqa" in only and cfg.vqa is None:
        absent.append({"kind": "vqa", "dataset": spec["vqa"]["dataset"], "status": "not configured"})
    return tasks, absent


def _image_paths(task: Task) -> list[str]:
    """The image paths the task's CSVs name (MM-Skin's multi-category rows read with a seeded pick)."""
    import random

    from .classification import read_classification_csv
    from .vqa_inputs import read_table

    if task.kind == "vqa":
        rows, _ = read_table(task.config.data, needed=("image", "question", "answer"))
        return [r["image"] for r in rows]
    paths = []
    for csv_path in task.csvs:
        rows, _ = read_classification_csv(csv_path, pick=random.Random(0))
        paths += [r["image"] for r in rows]
    return paths


def missing_images(task: Task, cache: dict[tuple, str | None]) -> str | None:
    """One line saying why the task's images are not all there (None when they are); checked once per dataset."""
    key = (task.kind, task.images, tuple(task.csvs))
    if key not in cache:
        if task.images is None or not task.images.is_dir():
            cache[key] = f"image folder {task.images} not found"
        else:
            images = sorted(set(_image_paths(task)))
            gone = [p for p in images if not (task.images / p).is_file()]
            cache[key] = (
                f"{len(gone)} of {len(images)} images missing under {task.images} (first: {gone[0]})"
                if gone
                else None
            )
    return cache[key]


def task_key(task: Task) -> str:
    """What a results file was made from: the sub-command's settings (not where the model ran) and the inputs'
    bytes."""
    settings = jsonable(task.config)
    for k in ENGINE_FIELDS:
        settings.get("model", {}).pop(k, None)
    h = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for p in task.csvs:
        h.update(sha256_file(p).encode() if p.is_file() else b"-")
    return h.hexdigest()[:20]


def _check(task: Task, cfg: BenchmarkConfig, images: dict[tuple, str | None]) -> str | None:
    """Why the task cannot run (the one line of a skip), or None."""
    needed = [task.config.data] + (
        [task.config.train] if task.kind == "probe" and cfg.compat == "mmskin" else []
    )
    for what, p in zip(("data", "train"), needed):
        if p is None:
            return f"no {what} CSV in the config"
        if not p.is_file():
            return f"{what} CSV {p} not found"
    try:
        gone = missing_images(task, images)
    except (ValueError, OSError) as e:  # an unreadable CSV: one line, like a missing one
        return str(e)
    if gone and not (cfg.allow_missing_images and "missing under" in gone):
        return gone
    return None


def _run_task(task: Task, reporter: Reporter) -> StageResult:
    from . import probe, vqa, zeroshot

    return {"vqa": vqa.run, "zeroshot": zeroshot.run, "probe": probe.run}[task.kind](task.config, reporter)


def run(config: BenchmarkRun, reporter: Reporter | None = None) -> StageResult:
    """Run every task not already done, write ``benchmark.json`` and the report; ConfigError for a config it cannot
    use. A task that fails is a problem (exit 1) and the others go on; a dataset without its images is skipped."""
    from .benchmark_report import write_report

    reporter = reporter or SILENT
    if config.config is None or config.out is None:
        raise ConfigError("give CONFIG.yaml and --out DIR")
    only = tuple(k.strip() for k in config.only.split(",") if k.strip())
    if not only or set(only) - set(KINDS):
        raise ConfigError(f"--only: choose from {', '.join(KINDS)} (got {config.only!r})")
    cfg, sha = load_benchmark(config.config)
    out = Path(config.out)
    tasks, records = plan(cfg, out, KINDS)  # all of them: the report shows earlier runs' results too
    state_path = out / "state.json"
    state = _read_state(state_path)
    problems = Problems(reporter)
    images: dict[tuple, str | None] = {}
    told: set[tuple[str, str]] = set()  # one line per skipped dataset, whatever the number of models
    for task in tasks:
        rec: dict[str, Any] = {"kind": task.kind, "dataset": task.dataset, "model": task.model}
        result_path = Path(task.config.out)
        rec["results"] = (
            str(result_path.relative_to(out)) if result_path.is_relative_to(out) else str(result_path)
        )
        why = _check(task, cfg, images) if task.kind in only else None
        if why is not None:
            if (task.kind, task.dataset) not in told:
                told.add((task.kind, task.dataset))
                reporter.warning(f"benchmark: skipped {TITLES[task.kind]} {task.dataset}: {why}")
            records.append({**rec, "status": "skipped", "reason": why})
            continue
        key = task_key(task)
        if result_path.is_file() and state.get(rec["results"]) == key:
            records.append({**rec, "status": "cached", "key": key})
            continue
        if task.kind not in only:
            records.append({**rec, "status": "not run", "reason": f"--only {config.only}"})
            continue
        try:
            result = _run_task(task, reporter)
        except (StageError, ConfigError, ValueError, OSError, RuntimeError) as e:
            problems.add(task.label, str(e))
            records.append({**rec, "status": "failed", "reason": str(e)})
            continue
        problems.extend(
            Problem(f"{task.label}: {p.where}" if p.where else task.label, p.reason) for p in result.problems
        )
        state[rec["results"]] = key
        atomic_write_bytes(state_path, (json.dumps(state, indent=1, sort_keys=True) + "\n").encode())
        records.append({**rec, "status": "done", "key": key, "summary": result.summary})
    return _finish(config, cfg, sha, out, records, problems, write_report)


def _read_state(path: Path) -> dict[str, str]:
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def _finish(config, cfg, sha, out, records, problems, write_report) -> StageResult:
    """``benchmark.json`` (every task's status and results file, the provenance block), the report, the summary."""
    info = {
        "benchmark": definition()["name"],
        "models": [{"name": m.name, "model": jsonable(m.model)} for m in cfg.models],
        "tasks": records,
        "provenance": provenance(
            "benchmark", config=cfg, seed=cfg.seed, config_file=str(config.config), config_sha256=sha
        ),
    }
    atomic_write_bytes(
        out / "benchmark.json", (json.dumps(info, indent=2, ensure_ascii=False) + "\n").encode()
    )
    md, html = write_report(out, info)
    counts = {s: sum(r["status"] == s for r in records) for s in ("done", "cached", "skipped", "failed")}
    counts["not configured"] = sum(r["status"] == "not configured" for r in records)
    counts["not run"] = sum(r["status"] == "not run" for r in records)
    summary = "benchmark: " + ", ".join(f"{v} {k}" for k, v in counts.items()) + f" -> {html}"
    return StageResult(
        "benchmark", counts, problems, summary, {"records": records, "report": md, "html": html}
    )
