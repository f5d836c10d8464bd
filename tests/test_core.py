"""The shared stage machinery: Problem/StageResult, config dataclasses as CLI, packaged data, provenance,
the Record schema and the flag table."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from mmskin.config import ConfigError, add_arguments, build_config, config_help, from_args, option
from mmskin.console import ConsoleReporter, finish
from mmskin.provenance import provenance, write_info
from mmskin.records import EXCLUDING_FLAGS, FLAGS, REQUIRED, schema_markdown, validate_record
from mmskin.resources import data_path, demo_pdf, load_yaml
from mmskin.stage import Problem, Problems, Reporter, StageResult, reason_of


@dataclass
class _Cfg:
    inputs: list[str] = option([], "files", cli=False)
    workers: int = option(0, "worker processes")
    ocr: str = option("auto", "OCR mode", choices=("auto", "always", "never"))
    debug: Path | None = option(None, "debug folder")
    keep: bool = option(False, "keep uncaptioned")
    ratios: tuple[float, float, float] = option((0.8, 0.1, 0.1), "split ratios")


def test_problems_report_as_they_happen_and_set_the_exit_code():
    seen: list[Problem] = []

    class Rec(Reporter):
        def problem(self, p):
            seen.append(p)

    probs = Problems(Rec())
    p = probs.add(Path("a.pdf"), "not a PDF\n (no header)")
    assert p == Problem("a.pdf", "not a PDF (no header)") and str(p) == "a.pdf: not a PDF (no header)"
    probs.take([Problem("b.pdf page 2", "render failed")])
    assert seen == list(probs) and len(probs) == 2
    assert StageResult("build", problems=probs).exit_code == 1
    assert StageResult("build").exit_code == 0
    assert reason_of(ValueError("first line\nsecond")) == "first line" and reason_of(KeyError()) == "KeyError"


def test_console_reporter_prints_problems_on_stderr_and_summary_on_stdout(capsys):
    rep = ConsoleReporter(quiet=True)
    Problems(rep).add("x.csv:3", "bad line")
    with rep.progress(10, "rows") as advance:
        advance(3)
    assert finish(StageResult("s", summary="done: 1 row")) == 0
    out, err = capsys.readouterr()
    assert out == "done: 1 row\n" and err == "error: x.csv:3: bad line\n"


def test_build_config_checks_types_choices_and_names():
    assert build_config(_Cfg, {"workers": 2, "ratios": [0.5, 0.25, 0.25]}, "c.yaml").ratios == (
        0.5,
        0.25,
        0.25,
    )
    with pytest.raises(ConfigError, match="did you mean 'workers'"):
        build_config(_Cfg, {"worker": 2}, "c.yaml")
    with pytest.raises(ConfigError, match="ocr must be one of auto, always, never"):
        build_config(_Cfg, {"ocr": "sometimes"}, "c.yaml")
    with pytest.raises(ConfigError, match="expected an integer"):
        build_config(_Cfg, {"workers": "two"}, "c.yaml")


def test_config_fields_are_the_command_line():
    p = argparse.ArgumentParser()
    add_arguments(p, _Cfg)
    ns = p.parse_args(
        ["--workers", "3", "--ocr", "never", "--debug", "d", "--keep", "--ratios", "1", "0", "0"]
    )
    cfg = from_args(_Cfg, ns, inputs=["a.pdf"])
    assert cfg == _Cfg(["a.pdf"], 3, "never", Path("d"), True, (1.0, 0.0, 0.0))
    assert from_args(_Cfg, p.parse_args([])) == _Cfg()
    with pytest.raises(SystemExit):
        p.parse_args(["--ocr", "sometimes"])
    assert "--inputs" not in p.format_help() and "(default: auto)" in p.format_help()
    assert config_help(_Cfg)[0:2] == ["  inputs: []", "      files"]


def test_packaged_data_and_provenance(tmp_path):
    assert demo_pdf().is_file() and data_path("flags.yaml").is_file()
    a = load_yaml("flags.yaml")
    a[0]["name"] = "changed"  # callers get their own copy
    assert load_yaml("flags.yaml")[0]["name"] == "annotated"
    block = provenance("curate", config=_Cfg(debug=Path("x")), packages=["numpy", "no-such-pkg"], seed=3)
    assert (
        block["stage"] == "curate" and "numpy" in block["packages"] and "no-such-pkg" not in block["packages"]
    )
    assert (
        block["config"]["debug"] == "x"
        and block["config"]["ratios"] == [0.8, 0.1, 0.1]
        and block["seed"] == 3
    )
    path = write_info(tmp_path / "info.json", {"provenance": block, "counts": {"b": 1, "a": 2}})
    text = path.read_text()
    assert text.endswith("\n") and json.loads(text)["counts"] == {"a": 2, "b": 1}
    assert text.index('"a"') < text.index('"b"')  # sorted keys: reruns write the same bytes


def _record(**kw):
    rec = {
        "id": "x",
        "image": "images/ab/x.png",
        "width": 10,
        "height": 10,
        "source": {"file": "a.pdf", "sha256": "0", "page": 1, "bbox": [0, 0, 1, 1]},
        "figure_label": None,
        "panel": None,
        "caption_raw": "",
        "caption": "",
        "flags": [],
    }
    rec.update(kw)
    return rec


def test_record_schema_is_one_type():
    assert validate_record(_record()) == []
    assert validate_record(_record(modality=None)) == []  # DESIGN.md: null before curate
    assert validate_record(_record(modality="xray")) != []
    assert validate_record(_record(flag_reasons={"annotated": "ruler"}, modality_score=0.5)) == []
    assert validate_record(_record(flag_reasons="ruler")) == ["field 'flag_reasons' has type str"]
    assert validate_record(_record(width=True)) == ["field 'width' has type bool"]
    assert "flags" in REQUIRED and "modality" not in REQUIRED
    assert EXCLUDING_FLAGS == tuple(f.name for f in FLAGS if f.excluding) and "review" not in EXCLUDING_FLAGS


def test_readme_schema_tables_are_generated_from_the_record_type():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    begin, end = "<!-- schema:begin (generated by scripts/readme_schema.py) -->\n", "<!-- schema:end -->"
    assert begin in readme and end in readme, "README lacks the generated schema section"
    shown = readme.split(begin, 1)[1].split(end, 1)[0]
    assert shown == schema_markdown(), "README schema is stale: run scripts/readme_schema.py"
