"""curate's flag decision as a table: evidence in, {flag: reason} out (pure: nothing read, nothing changed);
merging with other stages' flags; curate's flag list comes from the flag table (data/flags.yaml)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from mmskin.curate.flags import CURATE_FLAGS, Evidence, decide_flags, duplicate_flag, merge_flags
from mmskin.curate.pipeline import CurateConfig
from mmskin.records import FLAGS

CFG = CurateConfig()  # min_side 150, review_below 0.75 (data/curate/config.yaml)


def _model(modality: str = "clinical", score: float = 0.9, top: str | None = None) -> dict[str, Any]:
    """A modality-model result; ``top`` is the image's own favourite class (default: the fused one)."""
    image = {c: 0.02 for c in ("clinical", "dermoscopy", "pathology", "other")}
    image[top or modality] = 0.94
    return {"modality": modality, "score": score, "probs": dict(image), "image_probs": image, "cues": []}


def _rec(modality: str = "clinical", source: str = "model", caption: str = "Psoriasis on the elbow.") -> dict:
    return {"id": "r1", "modality": modality, "modality_source": source, "caption": caption}


def _ev(model: dict | None = None, **kw: Any) -> Evidence:
    return Evidence(model or _model(), **{"width": 640, "height": 480, **kw})


CASES = [
    ("clean photo", _rec(), _ev(), {}),
    ("small", _rec(), _ev(width=120, height=90), {"low_resolution": "shorter side 90 px < 150"}),
    ("exactly the minimum", _rec(), _ev(width=150, height=900), {}),
    (
        "a few marks, a ruler and a panel letter only inform",
        _rec(),
        _ev(
            annotation={
                "overlay": "2 printed letter/arrow-like marks",
                "ruler": "9 evenly spaced ruler ticks",
                "panel_letter": "1 printed glyph in a corner",
            }
        ),
        {
            "marked": "2 printed letter/arrow-like marks",
            "scale_bar": "9 evenly spaced ruler ticks",
            "panel_letter": "1 printed glyph in a corner",
        },
    ),
    (
        "ink ring",
        _rec(),
        _ev(annotation={"marker_circle": "ink curve around 80% of an ellipse"}),
        {"marked": "ink curve around 80% of an ellipse"},
    ),
    (
        "many marks: annotated (excluding)",
        _rec(),
        _ev(annotation={"overlay": "6 printed letter/arrow-like marks", "marker_circle": "ink ring"}),
        {"annotated": "6 printed letter/arrow-like marks inside the picture (more than 5)"},
    ),
    ("one face", _rec(), _ev(faces=1), {"sensitive": "1 face detected"}),
    ("two faces", _rec(), _ev(faces=2), {"sensitive": "2 faces detected"}),
    (
        "face and an intimate region",
        _rec(),
        _ev(faces=1, regions=("vulva", "perianal")),
        {"sensitive": "1 face detected; caption names vulva, perianal"},
    ),
    ("intimate region, clinical", _rec(), _ev(regions=("genital",)), {"sensitive": "caption names genital"}),
    ("intimate region, pathology", _rec("pathology"), _ev(_model("pathology"), regions=("genital",)), {}),
    (
        "other",
        _rec("other"),
        _ev(_model("other")),
        {"non_dermatology": "modality other (chart, drawing, radiology, ...)"},
    ),
    ("empty caption", _rec(caption="  "), _ev(), {"no_caption": "empty caption after cleaning"}),
    (
        "unreadable",
        _rec(),
        Evidence(_model(), error="cannot decode image data"),
        {
            "unreadable_image": "cannot decode image data",
            "review": "image unreadable: modality from the caption alone",
        },
    ),
    (
        "unreadable, corrected by a human",
        _rec(source="human"),
        Evidence(_model(), error="file not found"),
        {"unreadable_image": "file not found"},
    ),
    ("unsure", _rec(), _ev(_model(score=0.6)), {"review": "modality clinical at 0.60 < 0.75"}),
    (
        "caption overrode the image",
        _rec(),
        _ev(_model("clinical", 0.8, top="dermoscopy")),
        {"review": "caption cues overrode the image (dermoscopy 0.94)"},
    ),
    ("unsure, corrected by a human", _rec(source="human"), _ev(_model(score=0.3)), {}),
    (
        "everything at once",
        _rec("other", caption=""),
        _ev(_model("other", 0.5), width=20, height=20, faces=3, annotation={"ruler": "8 ruler ticks"}),
        {
            "scale_bar": "8 ruler ticks",
            "low_resolution": "shorter side 20 px < 150",
            "sensitive": "3 faces detected",
            "review": "modality other at 0.50 < 0.75",
            "non_dermatology": "modality other (chart, drawing, radiology, ...)",
            "no_caption": "empty caption after cleaning",
        },
    ),
]


@pytest.mark.parametrize(
    ("record", "evidence", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_decide_flags(record: dict, evidence: Evidence, expected: dict[str, str]) -> None:
    before = (copy.deepcopy(record), copy.deepcopy(evidence))
    got = decide_flags(record, evidence, CFG)
    assert got == expected
    assert set(got) <= set(CURATE_FLAGS)
    assert (record, evidence) == before  # pure: the inputs are untouched


def test_thresholds_come_from_the_config() -> None:
    assert decide_flags(_rec(), _ev(width=120, height=90), CurateConfig(min_side=64)) == {}
    many = _ev(annotation={"overlay": "7 printed letter/arrow-like marks"})
    assert set(decide_flags(_rec(), many, CurateConfig(max_marks=7))) == {"marked"}
    lenient = CurateConfig(review_below=0.5)
    assert decide_flags(_rec(), _ev(_model(score=0.6)), lenient) == {}


def test_evidence_of_an_image_pass_result() -> None:
    m = _model()
    ok = {
        "modality": m,
        "annotation": {"ruler": "9 ruler ticks"},
        "faces": [[1, 2, 3, 4]],
        "width": 9,
        "height": 7,
    }
    assert Evidence.of(ok, ["vulva"]) == Evidence(m, None, {"ruler": "9 ruler ticks"}, 1, 9, 7, ("vulva",))
    assert Evidence.of({"modality": m, "error": "empty file"}) == Evidence(m, error="empty file")


MERGES = [
    ("nothing", {"flags": []}, {}, ([], {})),
    ("record without flags", {}, {"review": "r"}, (["review"], {"review": "r"})),
    # curate's flags of an earlier run are recomputed: a stale one goes
    (
        "stale curate flag",
        {"flags": ["annotated"], "flag_reasons": {"annotated": "old"}},
        {},
        ([], {}),
    ),
    # build's no_caption is curate's too (set_by: build, curate): curate decides it again after cleaning
    ("build's no_caption", {"flags": ["no_caption"]}, {}, ([], {})),
    (
        "another stage's flag is kept, reason and all",
        {"flags": ["custom"], "flag_reasons": {"custom": "why"}},
        {"review": "r", "annotated": "a"},
        (["annotated", "custom", "review"], {"annotated": "a", "custom": "why", "review": "r"}),
    ),
    (
        "a kept flag without a reason",
        {"flags": ["custom"]},
        {"duplicate": "d"},
        (["custom", "duplicate"], {"duplicate": "d"}),
    ),
]


@pytest.mark.parametrize(
    ("record", "decided", "expected"), [m[1:] for m in MERGES], ids=[m[0] for m in MERGES]
)
def test_merge_flags(record: dict, decided: dict, expected: tuple) -> None:
    before = copy.deepcopy(record)
    assert merge_flags(record, decided) == expected
    assert record == before


def test_duplicate_flag() -> None:
    assert duplicate_flag("abc") == {"duplicate": "near-duplicate of abc"}
    assert duplicate_flag(None) == {}


def test_curate_flags_come_from_the_flag_table() -> None:
    table = {f.name for f in FLAGS if "curate" in [s.strip() for s in f.set_by.split(",")]}
    assert set(CURATE_FLAGS) == table
    assert {"annotated", "sensitive", "low_resolution", "non_dermatology", "no_caption"} <= table
    assert {"duplicate", "review", "unreadable_image"} <= table
