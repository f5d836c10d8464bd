"""The real-document scores, pinned: the four real dermatology PDFs (../shared/data/pdfs/real_dermatology) must
keep every figure with its caption and its lettered panels; plus the scorer of benchmarks/pdf/real_pdfs.py."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from mmskin.pdf.build import BuildConfig, run
from mmskin.records import read_records

ROOT = Path(__file__).resolve().parents[2]
GT = ROOT.parent / "shared" / "data" / "pdfs" / "real_dermatology" / "groundtruth.json"


def _bench():
    spec = importlib.util.spec_from_file_location("real_pdfs", ROOT / "benchmarks" / "pdf" / "real_pdfs.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _rec(page, label, panel, caption, file="a.pdf"):
    return {
        "source": {"file": file, "page": page},
        "figure_label": label,
        "panel": panel,
        "caption_raw": caption,
    }


def test_scorer_counts_recall_panels_and_strays():
    b = _bench()
    gt = {
        "a.pdf": {
            "figures": [
                {
                    "page": 2,
                    "label": "Figure 1",
                    "panels": 2,
                    "caption_start": "Rash on the trunk (a) and bullae (b)",
                },
                {
                    "page": 2,
                    "label": "FIGURE 2",
                    "panels": 0,
                    "caption_start": "Confusion matrix for class n2 as",
                },
                {"page": 3, "label": "Fig. 3", "panels": 0, "caption_start": "Missing figure"},
            ]
        }
    }
    recs = [
        _rec(2, "1", "a", "Figure 1: Rash on the trunk (a) and bullae (b)."),
        _rec(2, "1", "b", "Figure 1: Rash on the trunk (a) and bullae (b)."),
        _rec(
            2, "2", None, "FIGURE 2. Confusion matrix for class n 2 as a result"
        ),  # "n 2": a split subscript
        _rec(1, None, None, ""),  # a logo
    ]
    s = b.score(gt, recs)
    assert s["figure_recall"] == pytest.approx(2 / 3) and s["panel_exactness"] == pytest.approx(2 / 3)
    assert s["unmatched_records"] == 1 and s["misses"] == ["a.pdf p3 Fig. 3"]
    assert b.label_number("Extended Data Fig. 4") == "4" and b.strip_label("Fig. 2 | Rash") == "Rash"
    assert b.words_in_order("Fig. 1 structureofthe skin", "structure of the skin") == (1, 4)


def test_real_dermatology_pdfs(tmp_path: Path):
    if not GT.is_file():
        pytest.skip(f"real PDFs not available ({GT} missing)")
    b = _bench()
    gt = b.load_gt([GT])
    result = run(BuildConfig(inputs=[str(e["_path"]) for e in gt.values()], out=tmp_path, workers=1))
    assert not result.problems
    s = b.score(gt, list(read_records(tmp_path / "records.jsonl")))
    assert s["figure_recall"] == 1.0, s["misses"]
    assert s["panel_exactness"] >= 0.9, s["wrong_panels"]
    assert s["unmatched_share"] <= 0.02, s["unmatched"]
    assert s["caption_words"] >= 0.99
