"""Scanned-page path (mmskin.pdf.ocr): OCR lines and picture regions from image-only PDF pages.

Pins down: a scanned photo comes back as one region box (IoU >= 0.8) and its caption as a line starting with
the printed label; the panels of the scanned demo page come back one region each; blank pages give nothing;
the auto/always/never decision; the clear error when tesseract is missing.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pymupdf
import pytest
from PIL import Image

from mmskin.pdf import ocr, regions
from mmskin.pdf.ocr import OcrWord, needs_ocr, read_scanned_page, tesseract_available, words_to_lines
from mmskin.pdf.page import iou

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
DEMO = Path(__file__).resolve().parents[2] / "src" / "mmskin" / "data" / "demo"
PUBLAYNET = DATA / "pdfs" / "page_images_with_gt" / "publaynet_examples"

needs_tesseract = pytest.mark.skipif(
    not tesseract_available(),
    reason="tesseract not found (apt-get install tesseract-ocr; pip install pytesseract)",
)


def _photo(w: int = 420, h: int = 300, seed: int = 0) -> Image.Image:
    """A smooth, photo-like RGB texture (skin tones with a darker blob), no text in it."""
    rng = np.random.default_rng(seed)
    low = rng.random((8, 11, 3))
    field = (
        np.asarray(Image.fromarray((low * 255).astype(np.uint8)).resize((w, h), Image.BICUBIC), float) / 255
    )
    base = np.array([205.0, 150.0, 125.0])
    img = base * (0.75 + 0.35 * field)
    yy, xx = np.mgrid[:h, :w]
    blob = np.exp(-(((xx - w * 0.55) / (w * 0.12)) ** 2 + ((yy - h * 0.5) / (h * 0.15)) ** 2))
    img *= 1 - 0.6 * blob[..., None]
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def _scan(doc: pymupdf.Document, page: int = 0, dpi: int = 200) -> pymupdf.Page:
    """Render a page and wrap the picture in a new image-only PDF, like a scanner would."""
    pg = doc[page]
    pix = pg.get_pixmap(dpi=dpi)
    img = Image.frombytes("RGB", (pix.width, pix.height), pix.samples)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=85)
    out = pymupdf.open()
    p = out.new_page(width=pg.rect.width, height=pg.rect.height)
    p.insert_image(p.rect, stream=buf.getvalue())
    return pymupdf.open("pdf", out.tobytes())[0]


def _born_digital_page() -> tuple[pymupdf.Document, tuple[float, float, float, float]]:
    doc = pymupdf.open()
    pg = doc.new_page(width=504, height=720)
    body = (
        "Pigmented lesions are among the most frequent reasons for a skin examination. Most of them are "
        "benign naevi, but a small fraction are dysplastic naevi or early melanomas."
    )
    pg.insert_textbox(pymupdf.Rect(54, 60, 450, 130), body, fontsize=10.5, fontname="tiro")
    photo = (112.0, 150.0, 392.0, 350.0)
    pg.insert_image(pymupdf.Rect(*photo), stream=_png(_photo()))
    caption = "Fig. 2.1 Dysplastic naevus on the back of a 45-year-old man. Note the irregular border."
    pg.insert_textbox(pymupdf.Rect(54, 358, 450, 400), caption, fontsize=9, fontname="helv")
    pg.insert_textbox(pymupdf.Rect(54, 420, 450, 520), body + " " + body, fontsize=10.5, fontname="tiro")
    return doc, photo


# ----------------------------------------------------------------------------------------------------------
# deciding which pages need OCR (no tesseract needed)


def _image_page(cover: float, text: str = "") -> pymupdf.Page:
    doc = pymupdf.open()
    pg = doc.new_page(width=500, height=700)
    if cover > 0:
        pg.insert_image(
            pymupdf.Rect(0, 0, 500, 700 * cover), stream=_png(_photo(60, 40)), keep_proportion=False
        )
    if text:
        pg.insert_text((20, 690), text, fontsize=8)
    return pymupdf.open("pdf", doc.tobytes())[0]


@pytest.mark.parametrize(
    ("cover", "text", "mode", "expected"),
    [
        (1.0, "", "auto", True),  # a scan: one full-page picture, no text layer
        (0.6, "p. 12", "auto", True),  # a scan with a few characters of text (a stamped page number)
        (0.0, "", "auto", True),  # nothing extractable at all
        (0.2, "", "auto", True),  # no text at all, small picture: still worth a look
        (0.2, "12", "auto", False),  # a little text, picture too small to be a scan
        (1.0, "This page has a real text layer over the picture, long enough.", "auto", False),
        (0.0, "A born-digital page with ordinary text on it.", "always", True),
        (1.0, "", "never", False),
    ],
)
def test_needs_ocr_truth_table(cover: float, text: str, mode: str, expected: bool) -> None:
    assert needs_ocr(_image_page(cover, text), mode) is expected


def test_needs_ocr_rejects_unknown_mode() -> None:
    with pytest.raises(ValueError, match="auto, always or never"):
        needs_ocr(_image_page(1.0), "sometimes")


def test_missing_tesseract_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ocr, "tesseract_available", lambda: False)
    with pytest.raises(RuntimeError, match="tesseract not found: apt-get install tesseract-ocr"):
        read_scanned_page(_image_page(1.0), 1)


def test_words_to_lines_groups_paragraphs_and_scales_to_points() -> None:
    words = [
        OcrWord("Fig.", 95, (100, 50, 150, 80), (1, 1, 1)),
        OcrWord("2.1", 93, (160, 50, 200, 80), (1, 1, 1)),
        OcrWord("caption", 90, (100, 90, 220, 120), (1, 1, 2)),
        OcrWord("~~", 91, (230, 90, 250, 120), (1, 1, 2)),
        OcrWord("|", 80, (10, 300, 12, 400), (2, 1, 1)),  # a rule read as a letter: dropped
        OcrWord("garbage", 12, (400, 400, 500, 430), (3, 1, 1)),  # low confidence: dropped
        OcrWord("Body", 88, (100, 500, 180, 530), (4, 1, 1)),
    ]
    lines = words_to_lines(words, scale=2.0)
    assert [ln.text for ln in lines] == ["Fig. 2.1", "caption ~~", "Body"]
    assert lines[0].bbox == (50.0, 25.0, 100.0, 40.0)
    assert lines[0].block == lines[1].block != lines[2].block
    assert lines[0].spans[0].font == "ocr" and lines[0].size > 0


# ----------------------------------------------------------------------------------------------------------
# reading scanned pages


@needs_tesseract
def test_scanned_photo_and_caption() -> None:
    doc, photo = _born_digital_page()
    page, image, scale = read_scanned_page(_scan(doc), page_no=3)
    assert page.scanned and page.number == 3 and (page.width, page.height) == (504, 720)
    assert image.width == pytest.approx(504 * scale, abs=1)
    regions = [g for g in page.graphics if g.kind == "region"]
    assert len(regions) == 1, [g.bbox for g in page.graphics]
    assert iou(regions[0].bbox, photo) >= 0.8
    captions = [ln for ln in page.lines if ln.text.startswith("Fig. 2.1")]
    assert captions, [ln.text for ln in page.lines]
    assert captions[0].bbox[1] > photo[3] - 2  # below the photo
    body = [ln for ln in page.lines if "Pigmented lesions" in ln.text]
    assert body and body[0].block != captions[0].block


@needs_tesseract
def test_blank_page_gives_nothing() -> None:
    doc = pymupdf.open()
    doc.new_page(width=400, height=600)
    page, _, _ = read_scanned_page(_scan(doc, dpi=100), page_no=1, dpi=150)
    assert page.lines == () and page.graphics == ()


@needs_tesseract
@pytest.mark.skipif(
    not (DEMO / "sample_textbook.pdf").exists(), reason="demo PDF not built (scripts/make_demo_pdf.py)"
)
def test_scanned_demo_page_gives_one_region_per_panel() -> None:
    """Fig. 1.2 of the demo is a 2 x 2 grid of separate photos with 8 pt gutters: four regions, not one."""
    expected = json.loads((DEMO / "sample_textbook.expected.json").read_text("utf-8"))
    panels = [tuple(it["bbox"]) for it in expected["items"] if it["page"] == 2]
    page, _, _ = read_scanned_page(
        _scan(pymupdf.open(DEMO / "sample_textbook.pdf"), page=1), page_no=2, dpi=200
    )
    boxes = [g.bbox for g in page.graphics]
    assert len(boxes) == len(panels) == 4
    for p in panels:
        assert max(iou(p, b) for b in boxes) >= 0.8
    assert any(ln.text.startswith("Fig. 1.2") for ln in page.lines)


@needs_tesseract
@pytest.mark.skipif(not PUBLAYNET.is_dir(), reason=f"development data not found at {DATA}")
def test_real_journal_page_figure_and_caption() -> None:
    """A real PubLayNet page (72 dpi render, human layout boxes): the figure box and its "Fig. 4" caption."""
    coco = json.loads((PUBLAYNET / "samples.json").read_text("utf-8"))
    info = next(i for i in coco["images"] if i["file_name"] == "PMC3777717_00006.jpg")
    x, y, w, h = next(
        a["bbox"] for a in coco["annotations"] if a["image_id"] == info["id"] and a["category_id"] == 5
    )
    doc = pymupdf.open()
    pg = doc.new_page(width=info["width"], height=info["height"])  # 72 dpi: one pixel per point
    pg.insert_image(pg.rect, filename=str(PUBLAYNET / info["file_name"]))
    page, _, _ = read_scanned_page(pymupdf.open("pdf", doc.tobytes())[0], page_no=1)
    assert max(iou((x, y, x + w, y + h), g.bbox) for g in page.graphics) >= 0.8
    assert any(ln.text.startswith("Fig. 4") for ln in page.lines)


def test_words_to_lines_splits_side_by_side_captions() -> None:
    """Tesseract reads two captions printed side by side as one line; the column gap must split them."""
    h = 30
    words = [
        OcrWord("Fig.", 95, (100, 50, 150, 50 + h), (1, 1, 1)),
        OcrWord("15:", 95, (160, 50, 200, 50 + h), (1, 1, 1)),
        OcrWord("Melanoma.", 95, (210, 50, 400, 50 + h), (1, 1, 1)),
        OcrWord("Fig.", 95, (480, 50, 530, 50 + h), (1, 1, 1)),  # 80 px gutter > 1.2 line heights
        OcrWord("16:", 95, (540, 50, 580, 50 + h), (1, 1, 1)),
        OcrWord("Naevus.", 95, (590, 50, 720, 50 + h), (1, 1, 1)),
        OcrWord("Contact", 95, (100, 90, 250, 90 + h), (1, 1, 2)),
        OcrWord("Dermal", 95, (480, 90, 600, 90 + h), (1, 1, 2)),
    ]
    lines = words_to_lines(words, scale=1.0)
    assert [ln.text for ln in lines] == ["Fig. 15: Melanoma.", "Fig. 16: Naevus.", "Contact", "Dermal"]
    # the left caption's second line continues the left caption's block, not the right one's
    assert lines[0].block == lines[2].block and lines[1].block == lines[3].block != lines[0].block


def _line(
    texts: list[str], y: int, key: tuple[int, int, int], x0: int = 100, gap: int = 12, conf=95
) -> list[OcrWord]:
    """Words of one OCR line, 30 px tall, each 20 px per character, ``gap`` px apart (a list: per-word gaps)."""
    out, x = [], x0
    for i, t in enumerate(texts):
        w = 20 * len(t)
        c = conf[i] if isinstance(conf, list) else conf
        out.append(OcrWord(t, c, (x, y, x + w, y + 30), key))
        x += w + (gap[i] if isinstance(gap, list) and i < len(gap) else gap if isinstance(gap, int) else 12)
    return out


def test_a_lone_label_followed_by_an_em_space_stays_on_its_caption_line() -> None:
    """ "Figure 1" + a wide space + the caption text is one caption line (publishers set an em space after the
    label); a real gutter after a caption's text still splits."""
    words = _line(["Figure", "1"], 50, (1, 1, 1)) + [
        OcrWord("Detail", 95, (320, 50, 440, 80), (1, 1, 1)),  # 68 px after "1": over 2 line heights
        OcrWord("of", 95, (452, 50, 492, 80), (1, 1, 1)),
        OcrWord("the", 95, (504, 50, 564, 80), (1, 1, 1)),
        OcrWord("rash.", 95, (576, 50, 676, 80), (1, 1, 1)),
    ]
    assert [ln.text for ln in words_to_lines(words, scale=1.0)] == ["Figure 1 Detail of the rash."]


def test_a_wide_space_in_a_justified_line_is_not_a_gutter() -> None:
    """A justified body line with one wide space ("of      infection") is one line when the lines above and below
    print across that space; with nothing printed across it, the same gap is a gutter."""
    mid = _line(["episode", "of"], 100, (1, 1, 2)) + [
        OcrWord("infection", 95, (500, 100, 680, 130), (1, 1, 2))
    ]
    above = _line(["years,", "IgG", "titers", "against", "dengue"], 50, (1, 1, 1))
    below = _line(["early", "onset", "of", "IgG,", "and", "it", "is"], 150, (1, 1, 3))
    texts = [ln.text for ln in words_to_lines(above + mid + below, scale=1.0)]
    assert "episode of infection" in texts
    alone = [ln.text for ln in words_to_lines(mid, scale=1.0)]
    assert alone == ["episode of", "infection"]


def test_a_low_confidence_label_number_is_kept() -> None:
    """Tesseract reads the "3" of "Figure 3" right but with confidence 13; a label without its number cannot be
    matched to its figure, so a number right after a confident label word is kept (other weak words are not)."""
    words = _line(["Figure", "3", "Third", "day", "x7q"], 50, (1, 1, 1), conf=[69, 13, 84, 90, 12])
    assert [ln.text for ln in words_to_lines(words, scale=1.0)] == ["Figure 3 Third day"]


def _tl(box: tuple[float, float, float, float], text: str, block: int):
    from mmskin.pdf.page import Span, TextLine

    return TextLine(box, text, (Span(text, "ocr", 8.0, False, box),), block)


def _chart_page(scale: float = 2.0):
    """A two-column page image (points * ``scale`` pixels): a thin-line chart with a few words on it at the top of
    the left column above its caption, running text below it and in the right column."""
    import cv2

    w, h = 612, 792
    img = np.full((round(h * scale), round(w * scale), 3), 255, np.uint8)

    def ink(b, thick=-1):
        p = [round(v * scale) for v in b]
        cv2.rectangle(img, (p[0], p[1]), (p[2], p[3]), (0, 0, 0), thick)

    lines = [_tl((50, 30, 300, 38), "Journal of Examples 12 (2026) 1-9", 0)]
    ink(lines[0].bbox)
    ink((70, 80, 280, 230), thick=1)  # the chart's frame, axes and a few bars outlined
    for x in range(90, 270, 40):
        ink((x, 150 + (x % 60), x + 20, 229), thick=1)
    lines += [_tl((120, 66, 230, 74), "Lesions per year", 1), _tl((72, 232, 120, 238), "0 10 20 30 40", 2)]
    ink(lines[1].bbox)
    ink(lines[2].bbox)
    cap = [_tl((50, 250, 300, 258), "Figure 2. Number of lesions seen per year in the clinic.", 3)]
    body = [
        _tl((50, 280 + 12 * i, 300, 288 + 12 * i), "the running text of the article goes on here", 4)
        for i in range(8)
    ]
    right = [
        _tl((320, 60 + 12 * i, 570, 68 + 12 * i), "more running text in the right hand column", 5)
        for i in range(30)
    ]
    for ln in cap + body + right:
        ink(ln.bbox)
    return img, scale, lines + cap + body + right, w


def test_a_chart_the_texture_search_missed_is_found_from_its_caption() -> None:
    img, scale, lines, width = _chart_page()
    found = regions.caption_anchored_regions(img, scale, [], lines, width)
    assert len(found) == 1
    x0, y0, x1, y1 = found[0]
    # the chart with its title and tick labels; not the running head, not the right column
    assert 60 <= x0 <= 72 and 64 <= y0 <= 68 and 278 <= x1 <= 300 and 236 <= y1 <= 240
    # a caption that already has its picture gets nothing more
    assert regions.caption_anchored_regions(img, scale, [(70.0, 80.0, 280.0, 230.0)], lines, width) == []


def test_running_text_above_a_caption_is_not_taken_for_a_figure() -> None:
    """A caption right under a paragraph (its figure is on another page, or was missed) gets no region."""
    img, scale, lines, width = _chart_page()
    img[round(60 * scale) : round(245 * scale), round(60 * scale) : round(300 * scale)] = 255
    para = [
        _tl((50, 100 + 12 * i, 300, 108 + 12 * i), "a paragraph of running text printed here", 7)
        for i in range(12)
    ]
    for ln in para:
        b = [round(v * scale) for v in ln.bbox]
        img[b[1] : b[3], b[0] : b[2]] = 0
    kept = [ln for ln in lines if ln.block not in (1, 2)] + para
    assert regions.caption_anchored_regions(img, scale, [], kept, width) == []


def test_ink_of_mere_specks_is_no_figure() -> None:
    """A dotted rule (every column one pixel) above a caption: no ink box, and no error (a 300-dpi scan of a real
    page raised IndexError here and lost the page)."""
    img = np.full((200, 300, 3), 255, np.uint8)
    img[10:12, 50:52] = 0  # a speck far above: a thin run of its own, trimmed
    img[100, 10:290:2] = 0
    assert regions._ink_box(img, 1.0, (0, 0, 300, 200)) is None
