"""Every input of `mmskin build` is accounted for: built, skipped with its reason (a folder without PDFs, a
dangling symlink, a FIFO named *.pdf, a missing path), or merged with its byte-identical twin (both named)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from mmskin.cli import main
from mmskin.pdf.inputs import collect_pdfs

GOLDEN = Path(__file__).parent / "golden"


def test_collect_names_what_gives_no_pdf(tmp_path: Path) -> None:
    books = tmp_path / "books"
    (books / "sub").mkdir(parents=True)
    shutil.copy(GOLDEN / "side_by_side.pdf", books / "a.pdf")
    shutil.copy(GOLDEN / "side_by_side.pdf", books / "sub" / "B.PDF")
    (books / "notes.txt").write_text("not an input")
    os.symlink(tmp_path / "gone.pdf", books / "dangling.pdf")
    os.mkfifo(books / "pipe.pdf")
    linked = tmp_path / "elsewhere"
    linked.mkdir()
    shutil.copy(GOLDEN / "side_caption.pdf", linked / "c.pdf")
    os.symlink(linked, books / "linked")  # a symlinked folder is followed
    os.symlink(books, books / "sub" / "loop")  # ... once: a loop ends
    (tmp_path / "empty").mkdir()
    files, skipped = collect_pdfs([str(books), str(tmp_path / "empty"), str(tmp_path / "nope.pdf")])
    assert [f.relative_to(books).as_posix() for f in files] == ["a.pdf", "linked/c.pdf", "sub/B.PDF"]
    reasons = {Path(w).name: r for w, r in skipped}
    assert reasons["dangling.pdf"].startswith("dangling symlink (to ")
    assert reasons["pipe.pdf"] == "not a regular file (a FIFO)"
    assert reasons["empty"].startswith("no PDF files in this folder")
    assert reasons["nope.pdf"] == "no such file or directory"
    assert len(skipped) == 4


def test_build_accounts_for_every_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    books = tmp_path / "books"
    books.mkdir()
    shutil.copy(GOLDEN / "side_by_side.pdf", books / "a.pdf")
    shutil.copy(GOLDEN / "side_by_side.pdf", books / "a copy.pdf")  # the same bytes under another name
    os.symlink(tmp_path / "gone.pdf", books / "dangling.pdf")
    os.mkfifo(books / "pipe.pdf")
    (tmp_path / "empty").mkdir()
    out = tmp_path / "ds"
    argv = ["build", str(books), str(tmp_path / "empty"), "--out", str(out), "--workers", "1", "--quiet"]
    assert main(argv) == 1
    cap = capsys.readouterr()
    summary = cap.out.strip().splitlines()[-1]
    assert summary.startswith("built 1 files (0 already done, 0 failed, 3 inputs skipped, 1 merged with an")
    assert f"warning: {books / 'a.pdf'}: the same bytes as {books / 'a copy.pdf'}: merged" in cap.err
    errors = {Path(e["where"]).name: e["reason"] for e in map(json.loads, (out / "errors.jsonl").open())}
    assert set(errors) == {"dangling.pdf", "pipe.pdf", "empty"}
    recs = [json.loads(x) for x in (out / "records.jsonl").open()]
    assert recs and {r["source"]["file"] for r in recs} == {"a copy.pdf"}  # built once, under the first name

    # the twin under a third name in a later run: merged with the file already in the dataset
    shutil.copy(GOLDEN / "side_by_side.pdf", tmp_path / "third.pdf")
    assert main(["build", str(tmp_path / "third.pdf"), "--out", str(out), "--workers", "1", "--quiet"]) == 0
    cap = capsys.readouterr()
    assert "merged with it" in cap.err and "a copy.pdf, already in the dataset" in cap.err
    assert [json.loads(x) for x in (out / "records.jsonl").open()] == recs


def test_a_folder_without_pdfs_is_not_a_silent_success(tmp_path: Path, capsys) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "readme.txt").write_text("no books here")
    assert main(["build", str(tmp_path / "in"), "--out", str(tmp_path / "ds"), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert f"error: {tmp_path / 'in'}: no PDF files in this folder" in err
