"""The record contract: ids, validation, atomic sorted-key JSONL whose mode follows the umask, paths that stay
inside the dataset, the curation a rebuild keeps."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mmskin.records import (
    RecordError,
    atomic_write_bytes,
    carry_curation,
    check_relpath,
    empty_record_fields,
    is_curated,
    read_records,
    record_id,
    resolve_in_root,
    store_content,
    umask,
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


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_follow_the_umask(tmp_path: Path, mask: int, mode: int) -> None:
    """A temp file + rename used to give 0600 whatever the umask: other users could not read a dataset."""
    old = os.umask(mask)
    try:
        assert umask() == mask
        atomic_write_bytes(tmp_path / "a.bin", b"x")
        write_jsonl(tmp_path / "r.jsonl", [{"id": "1"}])
        rel = store_content(tmp_path, b"png bytes", "png")
    finally:
        os.umask(old)
    for p in (tmp_path / "a.bin", tmp_path / "r.jsonl", tmp_path / rel):
        assert p.stat().st_mode & 0o777 == mode, p
    assert not list(tmp_path.rglob(".*.tmp"))


def _curated(rec: dict, **kw) -> dict:
    out = {**rec, "caption_uncleaned": rec["caption"], "caption": "cleaned x", "modality": "clinical"}
    out.update(
        modality_score=0.9, modality_source="human", split="test", flags=["annotated", "unsplit_panels"]
    )
    out.update(flag_reasons={"annotated": "ink circle"}, age=45.0, note_by_a_user="keep me", **kw)
    return out


def test_a_rebuild_keeps_the_curation_of_a_record() -> None:
    built = _rec(flags=[])  # the build now keeps the figure whole no more: no unsplit_panels
    before = _curated(_rec(width=11, extraction="native"))
    out, same = carry_curation(built, before)
    assert same and is_curated(out)
    assert out["caption"] == "cleaned x" and out["caption_uncleaned"] == built["caption"]
    assert (out["modality"], out["modality_source"], out["split"], out["age"]) == (
        "clinical",
        "human",
        "test",
        45.0,
    )
    assert out["flags"] == ["annotated"] and out["flag_reasons"] == {"annotated": "ink circle"}
    assert out["note_by_a_user"] == "keep me"
    assert out["width"] == 10 and "extraction" not in out  # build fields come from the build
    assert carry_curation(built, out)[0] == out  # a rebuild of the same book changes nothing


def test_a_rebuild_with_another_caption_leaves_the_record_to_curate() -> None:
    built = _rec(caption="Fig. 3.2 new text")
    out, same = carry_curation(built, _curated(_rec()))
    assert not same and not is_curated(out)
    assert out["caption"] == "Fig. 3.2 new text" and out["modality_source"] == "human"
