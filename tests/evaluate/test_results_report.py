"""``mmskin report RESULTS… --out DIR``: VQA and zero-shot/probe results as HTML tables and PNG bar plots;
a malformed file is named on stderr and listed, the others rendered."""

from __future__ import annotations

import json
from pathlib import Path

from mmskin.cli import main
from mmskin.evaluate.metrics import score_pairs

PNG = b"\x89PNG\r\n\x1a\n"


def vqa_results(path: Path, model: str, shift: float) -> Path:
    s = score_pairs(
        ["a red papule", "a benign nevus", "h and e stain"],
        ["a red scaly papule", "a nevus", "h and e"],
        metrics=("bleu", "rouge", "recall"),
    )
    by = {"clinical": s.summary([0]), "dermoscopy": s.summary([1]), "pathology": s.summary([2])}
    res = {
        "task": "vqa",
        "model": model,
        "dataset": "MM-Skin test",
        "overall": {k: (v * shift if isinstance(v, float) else v) for k, v in s.summary().items()},
        "by_modality": by,
        "ci95": {
            "overall": s.ci95(50, 0),
            "by_modality": {m: s.ci95(50, 0, m, [i]) for i, m in enumerate(by)},
        },
        "signature": {"bleu4": "nltk|tok:whitespace"},
        "provenance": {"compat": "mmskin", "seed": 0, "mmskin_version": "0.1.0"},
    }
    path.write_text(json.dumps(res))
    return path


def cls_results(path: Path, task: str, benchmark: str, model: str, acc: float) -> Path:
    path.write_text(
        json.dumps(
            {
                "task": task,
                "benchmark": benchmark,
                "model": model,
                "n": 40,
                "metrics": {
                    "accuracy": acc,
                    "balanced_accuracy": acc - 0.05,
                    "macro_f1": acc - 0.1,
                    "auroc": None,
                },
                "ci95": {"accuracy": [acc - 0.1, acc + 0.1]},
                "confusion": {
                    "labels": ["nevus", "melanoma", "UNPARSED"],
                    "matrix": [[10, 5, 1], [4, 18, 2], [0, 0, 0]],
                },
                "provenance": {"seed": 0},
            }
        )
    )
    return path


def test_report_renders_tables_plots_and_names_bad_files(tmp_path, capsys):
    files = [
        vqa_results(tmp_path / "vqa_a.json", "skinvl-mm", 1.0),
        vqa_results(tmp_path / "vqa_b.json", "llava-med", 0.8),
        cls_results(tmp_path / "zs.json", "zeroshot", "HAM10000", "skinvl-mm", 0.61),
        cls_results(tmp_path / "probe.json", "probe", "DDI_2class", "skinvl-mm", 0.74),
    ]
    bad = tmp_path / "broken.json"
    bad.write_text('{"overall": ')
    unknown = tmp_path / "other.json"
    unknown.write_text('{"hello": 1}')
    out = tmp_path / "report"
    assert (
        main(["report", *map(str, files), str(bad), str(unknown), "--out", str(out)]) == 1
    )  # bad files are named and make the exit status 1; the rest is rendered
    err = capsys.readouterr().err.strip().splitlines()
    assert any(line.startswith(f"error: {bad}: not JSON") for line in err), err
    assert any(line.startswith(f"error: {unknown}: unknown results format") for line in err), err
    html = (out / "index.html").read_text()
    for text in (
        "Open VQA",
        "MM-Skin test",
        "clinical",
        "dermoscopy",
        "pathology",
        "skinvl-mm",
        "llava-med",
        "Zero-shot classification",
        "HAM10000",
        "Linear probe",
        "DDI_2class",
        "broken.json",
        "other.json",
    ):
        assert text in html, text
    assert "[0." in html  # intervals shown
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert (
        "vqa_MM_Skin_test_bleu4.png" in pngs
        and "zeroshot_accuracy.png" in pngs
        and "probe_accuracy.png" in pngs
    )
    for p in pngs:
        assert (out / p).read_bytes()[:8] == PNG
        assert f'src="{p}"' in html
    assert not list(out.glob(".*.tmp"))


def test_report_with_only_bad_files_still_writes_index(tmp_path, capsys):
    bad = tmp_path / "x.json"
    bad.write_bytes(b"\xff\xfe")
    assert main(["report", str(bad), "--out", str(tmp_path / "r")]) == 1
    assert "not UTF-8" in capsys.readouterr().err
    assert "x.json" in (tmp_path / "r" / "index.html").read_text()


def test_provenance_of_new_and_old_results_files_is_shown_alike(tmp_path):
    from mmskin.evaluate.report import ResultsReportConfig, run

    old = vqa_results(tmp_path / "old.json", "old-model", 1.0)  # mmskin_version / compat of older files
    new = vqa_results(tmp_path / "new.json", "new-model", 0.9)
    data = json.loads(new.read_text())
    data["provenance"] = {"stage": "eval vqa", "mmskin": "0.2.0", "config": {"compat": "standard"}, "seed": 4}
    new.write_text(json.dumps(data))
    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    result = run(ResultsReportConfig([old, new, bad], tmp_path / "r"))
    assert result.exit_code == 1 and result.counts == {"files": 3, "rendered": 2}
    assert [str(p) for p in result.problems] == [f"{bad}: not a JSON object"]
    html = result.extra["index"].read_text()
    assert "compat=mmskin, seed=0, mmskin=0.1.0" in html and "compat=standard, seed=4, mmskin=0.2.0" in html
