"""The pixel cap (`mmskin build --max-pixels`): a picture over it is rendered down to it with a warning instead
of being decoded whole (a decompression bomb), and the rest of the file is built."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pymupdf
import pytest
from PIL import Image

from mmskin.cli import main
from mmskin.pdf.page import read_images

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("nothing_lost", ROOT / "benchmarks/robustness/nothing_lost.py")
nothing_lost = importlib.util.module_from_spec(_spec)  # the benchmark's input generators, reused
_spec.loader.exec_module(nothing_lost)


def test_a_picture_over_the_cap_is_rendered_smaller(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pdf = nothing_lost.bomb_pdf(tmp_path / "bomb.pdf", side=3000)  # 27 MB decoded from ~30 kB
    out = tmp_path / "ds"
    argv = ["build", str(pdf), "--out", str(out), "--workers", "1", "--quiet", "--max-pixels", "1000000"]
    assert main(argv) == 0
    cap = capsys.readouterr()
    assert (
        "warning: bomb.pdf page 1: a 3000x3000 picture (9 MP) is over the 1 MP cap (--max-pixels)" in cap.err
    )
    assert "(1 picture over the pixel cap rendered smaller)" in cap.out
    recs = [json.loads(x) for x in (out / "records.jsonl").open()]
    assert [r["figure_label"] for r in recs] == ["1", "2"]  # the rest of the file is built
    big = recs[0]
    assert big["extraction"] == "render" and big["width"] * big["height"] <= 1_000_000
    with Image.open(out / big["image"]) as im:
        assert im.size == (big["width"], big["height"])
    # under the default cap the same picture is stored as it is
    assert main(["build", str(pdf), "--out", str(tmp_path / "d2"), "--workers", "1", "--quiet"]) == 0
    native = json.loads((tmp_path / "d2" / "records.jsonl").open().readline())
    assert (native["width"], native["height"], native["extraction"]) == (3000, 3000, "native")


class _Page:
    """A PyMuPDF page that records whether every image was decoded to hash it."""

    def __init__(self, pg) -> None:
        self._pg, self.hashed = pg, False

    def get_image_info(self, xrefs: bool = False):
        self.hashed |= xrefs
        return self._pg.get_image_info(xrefs=xrefs)

    def __getattr__(self, name):
        return getattr(self._pg, name)


def test_a_page_with_a_huge_picture_is_never_decoded_to_tell_images_apart() -> None:
    doc = pymupdf.open()
    pg = doc.new_page(width=400, height=400)
    for shade in (60, 200):  # two pictures of one size drawn at one place: only hashing tells them apart
        pix = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 40, 40), False)
        pix.clear_with(shade)
        pg.insert_image(pymupdf.Rect(50, 50, 250, 250), pixmap=pix)
    page = _Page(pg)
    big = read_images(page, (0, 0, 400, 400), max_pixels=10_000)
    assert page.hashed and any(g.native for g in big)
    page = _Page(pg)
    capped = read_images(page, (0, 0, 400, 400), max_pixels=100)
    assert not page.hashed and not any(g.native for g in capped)
