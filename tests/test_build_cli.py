"""`mmskin build` through the CLI: bad input, determinism, resume after kill -9, workers."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pymupdf
import pytest

from mmskin.cli import main

GOLDEN = Path(__file__).parent / "pdf" / "golden"


ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("nothing_lost", ROOT / "benchmarks/robustness/nothing_lost.py")
nothing_lost = importlib.util.module_from_spec(_spec)  # the benchmark's input generators, reused
_spec.loader.exec_module(nothing_lost)
_book = nothing_lost.golden_book  # a multi-page book of the golden pages


def _bad_inputs(d: Path) -> dict[str, str]:
    good = (GOLDEN / "side_by_side.pdf").read_bytes()
    (d / "empty.pdf").write_bytes(b"")
    (d / "random.pdf").write_bytes(os.urandom(4096))
    (d / "notes.pdf").write_text("this is a text file, not a PDF\n")
    (d / "truncated.pdf").write_bytes(good[: len(good) // 2])
    enc = pymupdf.open(GOLDEN / "side_by_side.pdf")
    enc.save(d / "encrypted.pdf", encryption=pymupdf.PDF_ENCRYPT_AES_256, owner_pw="o", user_pw="secret")
    return {
        "empty.pdf": "empty",
        "random.pdf": "not a PDF",
        "notes.pdf": "not a PDF",
        "truncated.pdf": "truncated",
        "encrypted.pdf": "encrypted",
    }


def test_bad_inputs_one_line_each_and_batch_goes_on(tmp_path: Path, capsys) -> None:
    src = tmp_path / "in"
    src.mkdir()
    expected = _bad_inputs(src)
    _book(src / "good.pdf")
    rc = main(["build", str(src), "--out", str(tmp_path / "ds"), "--workers", "1", "--quiet"])
    assert rc == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == len(expected)
    errors = [json.loads(x) for x in (tmp_path / "ds" / "errors.jsonl").read_text().splitlines()]
    assert {Path(e["where"]).name for e in errors} == set(expected)
    for e in errors:
        name = Path(e["where"]).name
        assert expected[name] in e["reason"], e
        assert any(f"error: {e['where']}: {e['reason']}" == line for line in err)
    recs = (tmp_path / "ds" / "records.jsonl").read_text().splitlines()
    assert len(recs) >= 10  # the good book was built despite its neighbours


def test_missing_input_is_an_error(tmp_path: Path, capsys) -> None:
    rc = main(["build", str(tmp_path / "nope.pdf"), "--out", str(tmp_path / "ds"), "--quiet"])
    assert rc == 1
    assert "no such file" in capsys.readouterr().err


def test_two_runs_byte_identical_and_workers_agree(tmp_path: Path) -> None:
    book = _book(tmp_path / "book.pdf", repeat=2)
    assert main(["build", str(book), "--out", str(tmp_path / "a"), "--workers", "1", "--quiet"]) == 0
    assert main(["build", str(book), "--out", str(tmp_path / "b"), "--workers", "2", "--quiet"]) == 0
    a = (tmp_path / "a" / "records.jsonl").read_bytes()
    assert a == (tmp_path / "b" / "records.jsonl").read_bytes()
    assert (tmp_path / "a" / "build_info.json").read_bytes() == (
        tmp_path / "b" / "build_info.json"
    ).read_bytes()
    imgs_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a" / "images").rglob("*.*"))
    imgs_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b" / "images").rglob("*.*"))
    assert imgs_a == imgs_b and imgs_a
    # every record's image exists, lies inside the dataset and has the recorded size
    from PIL import Image

    for line in a.decode().splitlines():
        r = json.loads(line)
        with Image.open(tmp_path / "a" / r["image"]) as im:
            assert im.size == (r["width"], r["height"])


def test_rerun_skips_finished_files(tmp_path: Path, capsys) -> None:
    book = _book(tmp_path / "book.pdf")
    out = tmp_path / "ds"
    assert main(["build", str(book), "--out", str(out), "--workers", "1", "--quiet"]) == 0
    first = (out / "records.jsonl").read_bytes()
    capsys.readouterr()
    assert main(["build", str(book), "--out", str(out), "--workers", "1", "--quiet"]) == 0
    assert "1 already done" in capsys.readouterr().out
    assert (out / "records.jsonl").read_bytes() == first


@pytest.mark.slow
def test_resume_after_kill_9(tmp_path: Path) -> None:
    book = _book(tmp_path / "book.pdf", repeat=12)  # 96 pages, 12 chunks
    ref = tmp_path / "ref"
    assert main(["build", str(book), "--out", str(ref), "--workers", "1", "--quiet"]) == 0
    out = tmp_path / "ds"
    cmd = [sys.executable, "-m", "mmskin", "build", str(book), "--out", str(out), "--workers", "1", "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and not list((out / ".build").glob("*/*.jsonl")):
        time.sleep(0.005)
    time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = list((out / ".build").glob("*/*.jsonl"))
    assert 0 < len(done) < 12, "the kill should land mid-run"
    assert not (out / "records.jsonl").exists()
    # nothing half-written is visible: every chunk file parses, every image it names is complete
    for c in done:
        for line in c.read_text().splitlines()[1:]:
            r = json.loads(line)
            assert (out / r["image"]).stat().st_size > 0
    assert main(["build", str(book), "--out", str(out), "--workers", "1", "--quiet"]) == 0
    assert (out / "records.jsonl").read_bytes() == (ref / "records.jsonl").read_bytes()
    assert not list(out.rglob(".*.tmp"))


def _uncaptioned_pdf(path: Path) -> Path:
    """A page with one captioned figure and one large photo that no caption names."""
    doc = pymupdf.open(GOLDEN / "side_caption.pdf")
    with pymupdf.open(GOLDEN / "tiled_image.pdf") as src:
        xref = src[0].get_images()[0][0]
        img = src.extract_image(xref)["image"]
    doc[0].insert_image(pymupdf.Rect(150, 600, 450, 780), stream=img)
    doc.save(path)
    return path


def test_keep_uncaptioned_is_opt_in_and_flagged(tmp_path: Path) -> None:
    pdf = _uncaptioned_pdf(tmp_path / "plate.pdf")
    assert main(["build", str(pdf), "--out", str(tmp_path / "a"), "--workers", "1", "--quiet"]) == 0
    plain = [json.loads(x) for x in (tmp_path / "a" / "records.jsonl").read_text().splitlines()]
    assert [r["figure_label"] for r in plain] == ["4"]
    out = tmp_path / "b"
    argv = ["build", str(pdf), "--out", str(out), "--workers", "1", "--quiet", "--keep-uncaptioned"]
    assert main(argv) == 0
    recs = [json.loads(x) for x in (out / "records.jsonl").read_text().splitlines()]
    extra = [r for r in recs if r["figure_label"] is None]
    assert len(recs) == 2 and len(extra) == 1
    assert extra[0]["flags"] == ["no_caption"] and extra[0]["caption"] == "" and extra[0]["panel"] is None
    # a rerun of the same dataset without the flag redoes the chunk instead of reusing the flagged one
    assert main(["build", str(pdf), "--out", str(out), "--workers", "1", "--quiet"]) == 0
    assert len((out / "records.jsonl").read_text().splitlines()) == 1


def test_stencil_mask_image_is_stored(tmp_path: Path) -> None:
    """A 1-bit /ImageMask picture (how scanned line art and CCITT fax images are stored) decodes to an
    alpha-only pixmap with no colour space; it once failed with 'not enough image data'."""
    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    w, h = 64, 48
    xref = page.insert_image(
        pymupdf.Rect(100, 100, 400, 325), pixmap=pymupdf.Pixmap(pymupdf.csGRAY, (0, 0, w, h), 0)
    )
    bits = bytes((0xF0 if (y // 8) % 2 else 0x0F) for y in range(h) for _ in range(w // 8))
    doc.update_object(
        xref,
        f"<< /Type /XObject /Subtype /Image /Width {w} /Height {h} /ImageMask true /BitsPerComponent 1 >>",
    )
    doc.update_stream(xref, bits)
    page.insert_text((100, 345), "Fig. 1 A stencil drawing of a dermatome map.", fontsize=9)
    doc.save(tmp_path / "stencil.pdf")
    out = tmp_path / "ds"
    assert main(["build", str(tmp_path / "stencil.pdf"), "--out", str(out), "--workers", "1", "--quiet"]) == 0
    recs = [json.loads(x) for x in (out / "records.jsonl").read_text().splitlines()]
    assert [r["figure_label"] for r in recs] == ["1"]
    from PIL import Image

    with Image.open(out / recs[0]["image"]) as im:
        assert im.size == (recs[0]["width"], recs[0]["height"]) == (w, h)


def test_adding_a_book_keeps_the_curation_and_says_what_to_curate(tmp_path: Path, capsys) -> None:
    """A dataset grows a book at a time: the records curated (and corrected by hand) before keep every field,
    the new ones are named as still to curate and vqa leaves them out until then."""
    from mmskin.cli import demo_pdf

    ds = tmp_path / "ds"
    assert main(["build", str(demo_pdf()), "--out", str(ds), "--workers", "1", "--quiet"]) == 0
    recs = [json.loads(x) for x in (ds / "records.jsonl").open()]
    fix = tmp_path / "fix.csv"
    fix.write_text(f"id,modality\n{recs[0]['id']},dermoscopy\n{recs[1]['id']},other\n")
    assert main(["curate", str(ds), "--corrections", str(fix), "--workers", "1", "--quiet"]) == 0
    curated = {r["id"]: r for r in map(json.loads, (ds / "records.jsonl").open())}
    capsys.readouterr()

    book = _book(tmp_path / "book.pdf")
    assert main(["build", str(demo_pdf()), str(book), "--out", str(ds), "--workers", "2", "--quiet"]) == 0
    cap = capsys.readouterr()
    grown = {r["id"]: r for r in map(json.loads, (ds / "records.jsonl").open())}
    new = len(grown) - len(curated)
    assert new > 0 and all(grown[i] == r for i, r in curated.items())
    assert cap.out.strip().endswith(f"; {len(curated)} records keep their curation, {new} to curate")
    assert f"{new} of {len(grown)} records are new or changed since the last curate" in cap.err
    assert main(["vqa", str(ds), "--quiet"]) == 0
    info = json.loads((ds / "vqa_info.json").read_text())
    assert info["dropped"]["records"]["not_curated"] == new and "are not curated" in capsys.readouterr().err

    assert main(["curate", str(ds), "--workers", "1", "--quiet"]) == 0
    final = {r["id"]: r for r in map(json.loads, (ds / "records.jsonl").open())}
    assert all("caption_uncleaned" in r for r in final.values())
    assert [final[r["id"]]["modality"] for r in recs[:2]] == ["dermoscopy", "other"]

    # a records.jsonl rebuilt from nothing: the next curate restores the corrections from their store
    (ds / "records.jsonl").unlink()
    assert main(["build", str(demo_pdf()), "--out", str(ds), "--workers", "1", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["curate", str(ds), "--workers", "1", "--quiet"]) == 0
    assert "2 earlier corrections restored from corrections.jsonl" in capsys.readouterr().out
    again = {r["id"]: r for r in map(json.loads, (ds / "records.jsonl").open())}
    assert again[recs[0]["id"]]["modality_correction"] == {"file": "fix.csv", "line": 2}


@pytest.mark.slow
def test_two_builds_at_once_end_as_their_union(tmp_path: Path) -> None:
    a, b = (
        _book(tmp_path / "a.pdf", repeat=8),
        _book(tmp_path / "b.pdf", repeat=3),
    )  # a: long enough to wait for
    ref = tmp_path / "ref"
    assert main(["build", str(a), str(b), "--out", str(ref), "--workers", "1", "--quiet"]) == 0
    ds = tmp_path / "ds"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}

    def start(pdf: Path, *extra: str) -> subprocess.Popen:
        args = ["build", pdf, "--out", ds, "--workers", "1", "--quiet", *extra]
        argv = [sys.executable, "-m", "mmskin", *map(str, args)]
        return subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, env=env)

    first = start(a)
    while not (ds / ".build" / "lock").is_file() or not (ds / ".build" / "lock").read_text():
        time.sleep(0.01)
    refused = start(b, "--no-wait")
    assert refused.wait(60) == 1
    err = refused.stderr.read().strip().splitlines()
    assert len(err) == 1 and f"pid {first.pid}, mmskin build" in err[0] and "busy" in err[0]
    second = start(b)
    assert first.wait(120) == 0 and second.wait(120) == 0
    assert "waiting for" in second.stderr.read()
    assert (ds / "records.jsonl").read_bytes() == (ref / "records.jsonl").read_bytes()
