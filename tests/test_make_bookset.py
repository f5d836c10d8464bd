"""The book-set generator (benchmarks/make_bookset.py): its text layers must read in PyMuPDF the way its GT says.

The glued-word and word-per-line books only test what they claim while PyMuPDF keeps reading them the same way
(no synthesised space below a 0.15 em gap; a new line when the pen moves backwards). A PyMuPDF upgrade that
changed either would silently turn those books into ordinary ones; these tests catch that.
"""

from __future__ import annotations

import importlib.util
import os
import random
import sys
from pathlib import Path

import pymupdf
import pytest

ROOT = Path(__file__).resolve().parents[1]
_path = next((ROOT / "benchmarks").rglob("make_bookset.py"))
_spec = importlib.util.spec_from_file_location("make_bookset", _path)
mb = importlib.util.module_from_spec(_spec)
sys.modules["make_bookset"] = mb  # dataclasses look their module up while the class is made
_spec.loader.exec_module(mb)

TEXT = (
    "Fig. 3.1 Structure of the Rgt2 glucose sensor in yeast cells, drawn at the resolution of the crystal and "
    "shown beside its homologue"
)


def _page_with(block: mb.TextBlock) -> pymupdf.Page:
    doc = pymupdf.open()
    page = doc.new_page(width=400, height=300)
    block.draw(page, 40, 40)
    return page


def _block(mode: str, fnt: str = "helv") -> mb.TextBlock:
    blk = mb.make_block([(TEXT, fnt)], 220, 9.0, 10.8)
    blk.mode = mode
    return blk


@pytest.mark.parametrize("fnt", ["helv", "tiro", "cour"])
def test_glued_text_reads_without_spaces(fnt):
    page = _page_with(_block("glued", fnt))
    lines = [ln for ln in page.get_text().splitlines() if ln]
    assert len(lines) >= 2
    assert all(" " not in ln for ln in lines)
    assert "".join(lines) == TEXT.replace(" ", "")


def test_word_per_line_gives_one_line_per_word_and_a_block_per_printed_line():
    blk = _block("word_per_line")
    d = _page_with(blk).get_text("dict")
    lines = [ln for b in d["blocks"] for ln in b["lines"]]
    assert len(lines) == len(TEXT.split())
    assert len(d["blocks"]) == len(blk.lines) >= 2
    # the self-check reads them back in order by position
    words = mb.reading_order(_page_with(blk).get_text("words", sort=False))
    assert " ".join(w[4] for w in words) == TEXT


def test_small_caps_label_is_two_spans_read_as_one_word():
    cap = mb.Caption("FIG. 3.1", "3.1", " ", "Naevus on the back.", [], small_caps=True)
    style = mb.Style("x", "x", cap_font="helv", cap_label_font="hebo", cap_size=9.0)
    blk = mb.make_block(cap.runs(style), 300, 9.0, 10.8)
    d = _page_with(blk).get_text("dict")
    spans = [s for b in d["blocks"] for ln in b["lines"] for s in ln["spans"]]
    assert [(s["text"], round(s["size"], 2)) for s in spans[:2]] == [("F", 9.0), ("IG. 3.1", 7.02)]
    assert cap.text == "FIG. 3.1 Naevus on the back."


def test_grid_spec_names_and_column_major_cells():
    spec = mb.GridSpec(order="col", letter_fmt="({l})")
    # 2 rows x 3 columns lettered down the columns: a c e / b d f
    assert [spec.cell(k, 2, 3) for k in range(6)] == [0, 3, 1, 4, 2, 5]
    assert [spec.label(k) for k in range(3)] == ["(a)", "(b)", "(c)"]
    assert mb.GridSpec(letter_fmt="{L}").label(1) == "B"


@pytest.mark.slow
def test_new_books_pass_their_self_check(tmp_path):
    data = Path(os.environ.get("MMSKIN_BOOKSET_DATA", mb.DEFAULT_DATA))  # the shared data folder
    if not (data / "images" / "labels.csv").is_file():
        pytest.skip(f"no shared data at {data}")
    corpus = mb.Corpus(data.resolve())
    for bd in mb.book_defs():
        if bd.name not in ("b12_grids", "b13_typesetting"):
            continue
        writer = bd.builder(corpus, bd.style, random.Random(f"0:{bd.name}"))
        pdf = tmp_path / f"{bd.name}.pdf"
        writer.save(pdf)
        assert writer.items
        assert mb.self_check(pdf, writer.items) == []
