"""benchmarks/_common.py: the one way every benchmark saves its results (path, provenance, printed reports)."""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("_common", ROOT / "benchmarks" / "_common.py")
common = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(common)


def test_results_path_is_per_stage_and_utc_stamped(tmp_path):
    when = dt.datetime(2026, 12, 6, 15, 30, 5, tzinfo=dt.UTC)
    assert common.results_path("curate", "curate_cleaning", when) == (
        ROOT / "benchmarks" / "results" / "curate" / "curate_cleaning_20261206T153005Z.json"
    )
    assert (
        common.results_path("pdf", "extraction", when, tmp_path)
        == tmp_path / "extraction_20261206T153005Z.json"
    )


def test_save_results_writes_payload_timestamp_and_provenance(tmp_path, monkeypatch, capsys):
    from mmskin import __version__

    monkeypatch.setattr(common, "RESULTS", tmp_path / "results")
    args = argparse.Namespace(data=Path("/data"), seed=3, json=None)
    path = common.save_results("vqa", "vqa_generation", {"samples": 12}, args, packages=["pyyaml"])
    assert path.parent == tmp_path / "results" / "vqa" and path.name.startswith("vqa_generation_2")
    saved = json.loads(path.read_text())
    assert saved["samples"] == 12 and saved["timestamp"].endswith("+00:00")
    prov = saved["provenance"]
    assert (prov["stage"], prov["benchmark"], prov["mmskin"]) == ("vqa", "vqa_generation", __version__)
    assert prov["config"] == {"data": "/data", "seed": 3, "json": None} and "pyyaml" in prov["packages"]
    assert prov["cores"] >= 1 and prov["platform"]
    assert f"results -> {path}" in capsys.readouterr().out
    assert not list(path.parent.glob("*.tmp*"))  # written atomically
    named = common.save_results("vqa", "vqa_generation", {"samples": 1}, out=tmp_path / "x" / "mine.json")
    assert named == tmp_path / "x" / "mine.json" and json.loads(named.read_text())["samples"] == 1


def test_save_printed_keeps_what_was_printed_and_saves_only_on_success(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(common, "RESULTS", tmp_path)

    def bench(rc):
        print("accuracy 0.97")
        print("macro-F1 0.95")
        return rc

    assert common.save_printed("curate", "curate_modality", lambda: bench(None)) == 0
    (path,) = (tmp_path / "curate").glob("curate_modality_*.json")
    assert json.loads(path.read_text())["report"] == ["accuracy 0.97", "macro-F1 0.95"]
    assert "accuracy 0.97" in capsys.readouterr().out  # still printed
    assert common.save_printed("curate", "curate_filters", lambda: bench(1)) == 1
    assert not list((tmp_path / "curate").glob("curate_filters_*.json"))
