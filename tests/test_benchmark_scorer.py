"""The extraction scorer (benchmarks/pdf/score_extraction.py): the numbers in the closing note come from it."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location(
    "score_extraction", ROOT / "benchmarks" / "pdf" / "score_extraction.py"
)
scorer = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(scorer)


def _gt(tmp: Path) -> Path:
    g = {
        "file": "book.pdf",
        "style": "one_column",
        "pages": 2,
        "scanned": False,
        "items": [
            {
                "page": 1,
                "bbox": [50, 50, 250, 200],
                "figure_label": "1",
                "panel": None,
                "caption": "Fig. 1 Psoriasis.",
            },
            {
                "page": 2,
                "bbox": [50, 50, 150, 150],
                "figure_label": "2",
                "panel": "a",
                "caption": "Fig. 2 Acne. (a) Face. (b) Back.",
            },
            {
                "page": 2,
                "bbox": [160, 50, 260, 150],
                "figure_label": "2",
                "panel": "b",
                "caption": "Fig. 2 Acne. (a) Face. (b) Back.",
            },
        ],
    }
    (tmp / "book.gt.json").write_text(json.dumps(g))
    return tmp


def _rec(page, bbox, caption, panel=None):
    return {
        "source": {"file": "book.pdf", "page": page, "bbox": bbox},
        "caption_raw": caption,
        "caption": caption,
        "panel": panel,
        "figure_label": None,
    }


def _score(tmp: Path, recs: list[dict]) -> dict:
    p = tmp / "records.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in recs))
    return scorer.score(_gt(tmp), p)


def test_perfect_records_score_one(tmp_path: Path) -> None:
    recs = [
        _rec(1, [50, 50, 250, 200], "Fig. 1 Psoriasis."),
        _rec(2, [50, 50, 150, 150], "Fig. 2 Acne. (a) Face. (b) Back.", "a"),
        _rec(2, [160, 50, 260, 150], "Fig. 2 Acne. (a) Face. (b) Back.", "b"),
    ]
    o = _score(tmp_path, recs)["overall"]
    assert (o["precision"], o["recall"], o["f1"]) == (1.0, 1.0, 1.0)


def test_whole_figure_instead_of_panels_and_wrong_caption_miss(tmp_path: Path) -> None:
    recs = [
        _rec(1, [50, 50, 250, 200], "Fig. 7 Something else entirely."),  # right box, wrong caption
        _rec(2, [50, 50, 260, 150], "Fig. 2 Acne. (a) Face. (b) Back."),  # both panels as one record
    ]
    o = _score(tmp_path, recs)["overall"]
    assert o["recall"] == 0.0 and o["precision"] == 0.0


def test_one_to_one_matching(tmp_path: Path) -> None:
    recs = [_rec(1, [50, 50, 250, 200], "Fig. 1 Psoriasis.")] * 2  # a duplicate is a false positive
    o = _score(tmp_path, recs)["overall"]
    assert o["precision"] == 0.5 and abs(o["recall"] - 1 / 3) < 1e-3  # reported to 4 decimals
