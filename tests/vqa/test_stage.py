"""The vqa stage's pure pieces: which records a run uses (table-driven), settings checked before anything runs,
problem lines as the commands print them (error:/missing:, at most N then a count), reader errors as problems."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmskin.config import ConfigError
from mmskin.records import EXCLUDING_FLAGS
from mmskin.stage import Problem, Problems, StageResult
from mmskin.vqa.cli import ProblemLines, run_command
from mmskin.vqa.export import ExportConfig
from mmskin.vqa.generate import VQAConfig, drop_reason, info_config
from mmskin.vqa.imports import ImportConfig
from mmskin.vqa.public import ConvertConfig
from mmskin.vqa.samples import ExportError, MissingImage, add_line_errors, add_missing, split_problems


def _rec(flags=(), caption="Red plaque."):
    return {"flags": list(flags), "caption": caption}


@pytest.mark.parametrize(
    "flags, caption, include_flagged, reason",
    [
        ((), "Red plaque.", False, None),
        (("review",), "Red plaque.", False, None),  # informative flags do not exclude
        (("annotated",), "Red plaque.", False, "flag:annotated"),
        (
            ("review", "duplicate", "low_resolution"),
            "Red plaque.",
            False,
            "flag:duplicate",
        ),  # first excluding
        (("sensitive",), "Red plaque.", True, None),
        ((), "   ", False, "empty_caption"),
        (("annotated",), "", False, "flag:annotated"),  # the flag is the reason given first
        (("annotated",), "", True, "empty_caption"),
    ],
)
def test_drop_reason(flags, caption, include_flagged, reason):
    assert drop_reason(_rec(flags, caption), include_flagged) == reason


def test_every_excluding_flag_drops_a_record():
    for flag in EXCLUDING_FLAGS:
        assert drop_reason(_rec([flag]), False) == f"flag:{flag}"


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"generator": "gpt"}, "unknown generator 'gpt'"),
        ({"per_image": -1}, "--per-image must be 0 or more"),
        ({"concurrency": 0}, "--concurrency must be at least 1"),
        ({"timeout": 0.0}, "--timeout must be positive"),
        ({"retry_base": -1.0}, "--retry-base must be positive"),
        ({"generator": "openai", "model": "m"}, "needs --base-url and --model"),
        ({"generator": "openai", "model": "m", "base_url": "ftp://x/v1"}, "--base-url 'ftp://x/v1' is not an http"),
    ],
)  # fmt: skip
def test_vqa_settings_are_checked(settings, message):
    with pytest.raises(ConfigError, match=message):
        VQAConfig(Path("ds"), **settings)


def test_other_settings_are_checked():
    with pytest.raises(ConfigError, match="--format must be one of"):
        ExportConfig(Path("ds"), format="csv", out=Path("o.csv"))
    with pytest.raises(ConfigError, match="--subset must be one of"):
        ExportConfig(Path("ds"), format="hf", out=Path("o.parquet"), subset="all")
    with pytest.raises(ConfigError, match="format must be one of"):
        ImportConfig("json", Path("x.json"), out=Path("o.jsonl"))
    with pytest.raises(ConfigError, match="--format must be vqa or llava"):
        ConvertConfig("ham10000", Path("m.csv"), images=Path("."), out=Path("o"), format="hf")


def test_the_info_config_holds_no_secret():
    cfg = VQAConfig(
        Path("/home/me/ds"), generator="openai", model="m", base_url="https://u:pw@h/v1?k=1", api_key="sk-1"
    )
    shown = info_config(cfg)
    assert "api_key" not in shown and "dataset" not in shown and shown["base_url"] == "https://h/v1"
    assert "sk-1" not in repr(cfg) and shown["lexicon"] is None


def test_problem_lines(capsys):
    rep = ProblemLines(quiet=True, limits={"missing": 2})
    problems = Problems(rep)
    problems.add("a.csv:3", "no image name")
    for i in range(4):
        add_missing(problems, f"a.csv:{i + 4}", f"image x{i}.jpg not found under imgs")
    rep.close()
    assert capsys.readouterr().err.splitlines() == [
        "error: a.csv:3: no image name",
        "missing: a.csv:4: image x0.jpg not found under imgs",
        "missing: a.csv:5: image x1.jpg not found under imgs",
        "... and 2 more missing images",
    ]
    errors, missing = split_problems(problems)
    assert len(errors) == 1 and len(missing) == 4 and all(isinstance(p, MissingImage) for p in missing)


def test_run_command_maps_failures_to_exit_status(capsys):
    def fails(exc):
        def run(config, reporter):
            raise exc

        return run

    rep = ProblemLines(quiet=True)
    assert run_command("export", dict, fails(ExportError("ds: no records.jsonl")), rep) == 2
    assert run_command("vqa", dict, fails(ConfigError("--concurrency must be at least 1")), rep) == 2
    assert capsys.readouterr().err.splitlines() == [
        "mmskin export: ds: no records.jsonl",
        "mmskin vqa: --concurrency must be at least 1",
    ]
    done = StageResult("vqa", {}, [Problem("x", "y")], "vqa: 1 errors")
    assert run_command("vqa", dict, lambda c, r: done, rep) == 1
    assert capsys.readouterr().out == "vqa: 1 errors\n"


def test_line_errors_become_problems():
    problems = Problems()
    add_line_errors(problems, ["/d/records.jsonl:12: not JSON (Expecting value: line 1 column 1)", "odd"])
    assert problems == [
        Problem("/d/records.jsonl:12", "not JSON (Expecting value: line 1 column 1)"),
        Problem("", "odd"),
    ]
