"""The engine choice without Ray: importing mmskin (and ``mmskin --help``) never imports ray, and ``--engine ray``
without Ray installed is a one-line error that says how to install it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mmskin.cli import main
from mmskin.resources import demo_pdf


def test_importing_mmskin_and_its_stages_never_imports_ray() -> None:
    code = (
        "import sys, mmskin, mmskin.cli, mmskin.engine, mmskin.pdf.build, mmskin.curate.pipeline, "
        "mmskin.curate.image_pass, mmskin.evaluate.predict, mmskin.evaluate.features; mmskin.cli.make_parser(); "
        "print([m for m in sys.modules if m == 'ray' or m.startswith('ray.')])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    helptext = subprocess.run(
        [sys.executable, "-m", "mmskin", "build", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "--engine {local,ray}" in helptext and "--ray-address ADDRESS" in helptext


@pytest.mark.parametrize(
    "argv",
    [
        ["build", str(demo_pdf()), "--out", "{tmp}/ds"],
        ["curate", "{tmp}/ds"],
        [
            "eval",
            "vqa",
            "--data",
            "{tmp}/vqa.jsonl",
            "--images",
            "{tmp}",
            "--model",
            "dummy",
            "--out",
            "{tmp}/r.json",
            "--metrics",
            "recall",
        ],
    ],
    ids=["build", "curate", "eval"],
)
def test_engine_ray_without_ray_is_one_line(argv, tmp_path: Path, monkeypatch, capsys) -> None:
    if argv[0] != "build":  # a dataset and a samples file to get as far as the model
        assert (
            main(["build", str(demo_pdf()), "--out", str(tmp_path / "ds"), "--workers", "1", "--quiet"]) == 0
        )
        (tmp_path / "vqa.jsonl").write_text(
            '{"id": "a", "image": "ds/images/x.png", "question": "q", "answer": "a"}\n', encoding="utf-8"
        )
        capsys.readouterr()
    # `import ray` raises ImportError, as when it is not installed
    monkeypatch.setitem(sys.modules, "ray", None)
    args = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main([*args, "--engine", "ray", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'mmskin[ray]'" in err[0], err
