"""The record contract: ids, validation, atomic sorted-key JSONL, paths that stay inside the dataset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmskin.records import (
    RecordError,
    check_relpath,
    empty_record_fields,
    read_records,
    record_id,
    resolve_in_root,
    validate_record,
    write_jsonl,
)


def _rec(**kw):
    r = {
        "id": "x",
        "image": "images/ab/abcd.png",
        "width": 10,
        "height": 20,
        "source": {"file": "a.pdf", "sha256": "00", "page": 1, "bbox": [0, 0, 1, 1]},
        "figure_label": "3.2",
        "panel": None,
        "caption_raw": "Fig. 3.2 x",
        "caption": "Fig. 3.2 x",
        **empty_record_fields(),
    }
    r.update(kw)
    return r


def test_record_id_is_stable_and_sensitive() -> None:
    a = record_id("ab" * 32, 3, (1.0, 2.0, 3.0, 4.0), "a")
    assert a == record_id("ab" * 32, 3, (1.04, 2.0, 3.0, 4.0), "a")  # sub-0.1 pt jitter does not change it
    assert a != record_id("ab" * 32, 3, (1.0, 2.0, 3.0, 4.0), "b")
    assert a != record_id("ab" * 32, 4, (1.0, 2.0, 3.0, 4.0), "a")


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"image": "/etc/passwd"}, "escapes"),
        ({"image": "../x.png"}, "escapes"),
        ({"width": 0}, "positive"),
        ({"modality": "xray"}, "modality"),
        ({"sex": "m"}, "sex"),
        ({"panel": 3}, "panel"),
        ({"flags": [1]}, "flags"),
        ({"width": True}, "width"),
    ],
)
def test_validation_names_the_problem(change, problem) -> None:
    errs = validate_record(_rec(**change))
    assert errs and any(problem in e for e in errs)


def test_valid_record_has_no_errors() -> None:
    assert validate_record(_rec()) == []


def test_write_is_sorted_and_roundtrips(tmp_path: Path) -> None:
    p = tmp_path / "r.jsonl"
    write_jsonl(p, [_rec(id="b"), _rec(id="a")])
    lines = p.read_text().splitlines()
    assert list(json.loads(lines[0])) == sorted(json.loads(lines[0]))
    assert [r["id"] for r in read_records(p)] == ["b", "a"]
    assert not list(tmp_path.glob(".*.tmp"))


def test_malformed_line_names_file_and_line(tmp_path: Path) -> None:
    p = tmp_path / "r.jsonl"
    p.write_text(json.dumps(_rec()) + "\n{not json\n")
    with pytest.raises(RecordError, match=r"r.jsonl:2"):
        list(read_records(p))


def test_paths_cannot_escape_root(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "link.png").symlink_to("/etc/hostname")
    assert check_relpath("images/a.png") == "images/a.png"
    with pytest.raises(RecordError):
        resolve_in_root(tmp_path, "images/link.png")
    with pytest.raises(RecordError):
        resolve_in_root(tmp_path, "images/../../x")
