"""``--engine ray`` against the local engine, byte for byte, on a local Ray of 2 CPUs (no dashboard) started once
for this module: the build of the golden PDFs, the demo and (when ../shared/data is present) the real
dermatology PDFs (dataset folder identical, also when a worker is killed mid-build), curate's image pass
(records.jsonl identical), eval predictions and probe features of a tiny random-weight model on 2 CPU replicas
(identical, and resumed like the local path). Also: an exception in a task is reported once and never retried, a
dead worker is retried a bounded number of times, and Ctrl-C stops a build that started its own Ray, leaving no Ray
process behind and a dataset that a rerun finishes."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'mmskin[ray]'); CI installs it")

from mmskin.cli import main  # noqa: E402
from mmskin.curate.pipeline import CurateConfig  # noqa: E402
from mmskin.curate.pipeline import run as curate  # noqa: E402
from mmskin.engine import KILL_ONCE_ENV, RETRIES, RayEngine  # noqa: E402
from mmskin.pdf.build import BuildConfig  # noqa: E402
from mmskin.pdf.build import run as build  # noqa: E402
from mmskin.resources import demo_pdf  # noqa: E402

HERE = Path(__file__).resolve().parent
GOLDEN = HERE.parent / "pdf" / "golden"
REAL = HERE.parents[1].parent / "shared" / "data" / "pdfs" / "real_dermatology"  # real books, when present


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, mmskin_cache, local, local_curated):
    """A local Ray (2 CPUs, no dashboard) for the module; its workers can import ray_helpers and are armed to
    die once when the test writes the returned file (mmskin.engine's test hook). The local references are made
    before it starts (a command never runs both engines)."""
    armed = tmp_path_factory.mktemp("kill") / "armed"
    env = {
        KILL_ONCE_ENV: str(armed),
        "PYTHONPATH": os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH")) if p),
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    with pytest.MonkeyPatch.context() as mp:  # Ray's workers inherit the environment of ray.init
        for k, v in env.items():
            mp.setenv(k, v)
        ray.init(
            address="local",
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.ERROR,
        )
        yield armed
        ray.shutdown()


@pytest.fixture(scope="module")
def books(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("books")
    for p in sorted(GOLDEN.glob("*.pdf")):
        shutil.copy(p, d / p.name)
    shutil.copy(demo_pdf(), d / "sample_textbook.pdf")
    for p in sorted(
        REAL.glob("dengue_*.pdf")
    ):  # the three short case reports (8 pages); the benchmark builds all
        shutil.copy(p, d / f"real_{p.name}")
    return d


def _build(books: Path, out: Path, engine: str):
    # two pages per chunk: many chunks, which the cluster's 2 CPUs interleave. The local references run in this
    # process (workers=1; the local output does not depend on the workers): a pool forked from a test process
    # that already ran pages or models here can hang on a lock its threads held (OpenMP, gRPC)
    workers = 1 if engine == "local" else 2
    return build(BuildConfig(inputs=[str(books)], out=out, workers=workers, chunk_pages=2, engine=engine))


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def local(books, tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "ds"
    return out, _build(books, out, "local")


@pytest.fixture(scope="module")
def local_curated(local, tmp_path_factory):
    out = tmp_path_factory.mktemp("curated") / "ds"
    shutil.copytree(local[0], out)
    return out, curate(CurateConfig(dataset=out, workers=1))


def _no_time(summary: str) -> str:
    return summary.rsplit(" in ", 1)[0]


def test_build_on_ray_is_byte_identical(cluster, books, local, tmp_path):
    ref, ref_result = local
    res = _build(books, tmp_path / "ds", "ray")
    assert res.counts == ref_result.counts and res.problems == ref_result.problems
    assert _no_time(res.summary) == _no_time(ref_result.summary)
    assert ref_result.counts["records"] > 10
    tree = _tree(tmp_path / "ds")
    assert tree == _tree(ref)  # records.jsonl, images, .build chunk records, errors, build_info


def test_a_worker_killed_mid_build_is_retried_and_the_output_is_identical(cluster, books, local, tmp_path):
    cluster.write_text("armed")  # the first chunk to finish kills its worker after writing its images
    res = _build(books, tmp_path / "ds", "ray")
    assert not cluster.exists() and cluster.with_name("armed.fired").exists()
    assert res.problems == [] and _tree(tmp_path / "ds") == _tree(local[0])
    cluster.with_name("armed.fired").unlink()


def test_an_error_is_reported_once_and_a_dead_worker_retried_a_bounded_number_of_times(cluster, tmp_path):
    import ray_helpers

    logs = {k: tmp_path / k for k in ("fails", "dies", "square")}
    with RayEngine() as eng:
        out = {fn: list(eng.tasks(getattr(ray_helpers, fn), [(3,)], str(logs[fn]))) for fn in logs}
    (item, result, error), *_ = out["fails"]
    assert isinstance(error, ValueError) and str(error) == "item 3 is bad"  # the task's own exception
    assert logs["fails"].read_text().count("call") == 1  # never retried
    (_, _, died), *_ = out["dies"]
    assert isinstance(died, ray.exceptions.RayError)
    assert logs["dies"].read_text().count("call") == RETRIES + 1
    assert out["square"] == [((3,), 9, None)]


def test_a_swallowed_ctrl_c_still_stops_the_work(cluster, tmp_path):
    """Ray's driver code can swallow the KeyboardInterrupt of a Ctrl-C (a CI run built to the end after one);
    the engine remembers the signal and stops at its next poll, cancelling what is queued."""
    import ray_helpers

    with RayEngine() as eng:
        results = eng.tasks(ray_helpers.square, [(i,) for i in range(20)], str(tmp_path / "log"))
        first = next(results)
        eng.interrupted = True  # what its SIGINT handler records
        with pytest.raises(KeyboardInterrupt):
            list(results)
        assert first[2] is None and not eng._pending  # the rest was taken off the books


def test_curate_image_pass_on_ray_is_identical(cluster, local, local_curated, tmp_path):
    b = tmp_path / "b"
    shutil.copytree(local[0], b)
    a, ra = local_curated
    rb = curate(CurateConfig(dataset=b, workers=2, engine="ray"))
    assert (a / "records.jsonl").read_bytes() == (b / "records.jsonl").read_bytes()
    assert ra.counts == rb.counts and ra.problems == rb.problems
    assert rb.counts["modality"]["pathology"] > 0  # the image model really ran


@pytest.fixture
def vqa_samples(tmp_path):
    from PIL import Image

    root = tmp_path / "images"
    root.mkdir()
    rows = []
    for i in range(7):
        Image.new("RGB", (40 + 8 * i, 32), (30 * i, 200 - 20 * i, 90)).save(root / f"{i}.png")
        q = "What is shown?" if i % 2 else "Which body site and which lesion does this picture show?"
        rows.append({"id": f"s{i}", "image": f"{i}.png", "question": q, "answer": f"lesion {i}"})
    # one failure, both ways
    rows.append({"id": "bad", "image": "missing.png", "question": "q", "answer": "a"})
    data = tmp_path / "vqa.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return data, root


def _eval_vqa(data: Path, images: Path, model: Path, out: Path, *engine: str) -> int:
    args = ["eval", "vqa", "--data", str(data), "--images", str(images), "--model", f"hf:{model}"]
    args += ["--device", "cpu", "--max-new-tokens", "5", "--batch-size", "2", "--metrics", "recall"]
    return main([*args, "--bootstrap", "10", "--out", str(out), "--quiet", *engine])


def test_eval_predictions_on_two_replicas_equal_local_and_resume(
    cluster, vqa_samples, tiny_vlms, one_torch_thread, tmp_path
):
    data, images = vqa_samples
    model = tiny_vlms["llava"]
    assert _eval_vqa(data, images, model, tmp_path / "local.json") == 1  # the missing image
    ray_args = ("--engine", "ray", "--ray-replicas", "2")
    assert _eval_vqa(data, images, model, tmp_path / "ray.json", *ray_args) == 1
    local_preds = (tmp_path / "local.predictions.jsonl").read_bytes()
    ray_preds = tmp_path / "ray.predictions.jsonl"
    assert ray_preds.read_bytes() == local_preds and len(local_preds.splitlines()) == 7
    assert (tmp_path / "ray.predictions.jsonl.errors.jsonl").read_bytes() == (
        tmp_path / "local.predictions.jsonl.errors.jsonl"
    ).read_bytes()
    # a run killed after three rows (and a torn fourth) resumes on the replicas and ends with the same file
    lines = local_preds.splitlines(keepends=True)
    ray_preds.write_bytes(b"".join(lines[:3]) + lines[3][:20])
    assert _eval_vqa(data, images, model, tmp_path / "ray.json", *ray_args) == 1
    assert ray_preds.read_bytes() == local_preds
    scores = [json.loads((tmp_path / f"{k}.json").read_text())["overall"] for k in ("local", "ray")]
    assert scores[0] == scores[1]


def test_probe_features_on_replicas_equal_local(cluster, vqa_samples, tiny_vlms, one_torch_thread, tmp_path):
    import numpy as np

    from mmskin.evaluate.features import extract_features
    from mmskin.evaluate.predict import ModelConfig, ReplicaSpec, adapter_for

    _, images = vqa_samples
    names = [f"{i}.png" for i in range(7)] + ["missing.png"]
    out = {}
    for engine in ("local", "ray"):
        model = ModelConfig(spec=f"hf:{tiny_vlms['qwen2_5_vl']}", device="cpu", engine=engine, ray_replicas=2)
        out[engine] = extract_features(
            adapter_for(model),
            images,
            names,
            "data-sha",
            cache_dir=tmp_path / engine,
            batch_size=3,
            replicas=ReplicaSpec.of(model),
        )
    (xl, okl, pl, _), (xr, okr, pr, _) = out["local"], out["ray"]
    assert okl.tolist() == okr.tolist() == [True] * 7 + [False]
    assert np.array_equal(xl[okl], xr[okr]) and [str(p) for p in pl] == [str(p) for p in pr]


def _ray_pids() -> set[int]:
    pids = set()
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                cmd = (p / "cmdline").read_bytes()
            except OSError:
                continue
            if b"raylet" in cmd or b"gcs_server" in cmd:
                pids.add(int(p.name))
    return pids


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_ctrl_c_stops_a_build_and_its_own_ray(cluster, tmp_path):
    import pymupdf

    before = _ray_pids()
    out = tmp_path / "ds"
    # a 200-page book (the demo 40 times, 25 chunks): still building when the first chunk is done, however busy
    # the machine is (with the test books alone a loaded machine had finished before Ctrl-C arrived)
    big = tmp_path / "in" / "long_book.pdf"
    big.parent.mkdir()
    with pymupdf.open(demo_pdf()) as demo, pymupdf.open() as doc:
        for _ in range(40):
            doc.insert_pdf(demo)
        doc.save(big)
    cmd = [sys.executable, "-m", "mmskin", "build", str(big), "--out", str(out), "--engine", "ray"]
    proc = subprocess.Popen([*cmd, "--workers", "1", "--quiet"], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(out.glob(".build/*/*.jsonl")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)  # the command's own Ray is up and a chunk is done: the build is under way
    assert proc.poll() is None, proc.communicate()[1]
    proc.send_signal(signal.SIGINT)
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode == 130 and err.strip().endswith("interrupted"), err
    for _ in range(50):  # the Ray it started is gone (the module's own stays)
        if _ray_pids() <= before:
            break
        time.sleep(0.2)
    assert _ray_pids() <= before
    # nothing half-done: the chunks it finished are kept, a rerun finishes the dataset as a single run does
    assert main(["build", str(big), "--out", str(out), "--workers", "1", "--quiet"]) == 0  # no fork here
    ref = tmp_path / "ref"
    assert main(["build", str(big), "--out", str(ref), "--workers", "1", "--quiet"]) == 0
    assert (out / "records.jsonl").read_bytes() == (ref / "records.jsonl").read_bytes()
