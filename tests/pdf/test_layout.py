"""Caption <-> figure matching on hand-made page models: text printed inside or under a figure (tick rows,
category names, the panels' own captions) must not stop a figure from reaching its caption."""

from __future__ import annotations

from mmskin.pdf.layout import _is_blocking, assemble
from mmskin.pdf.page import Graphic, Page, Span, TextLine


def _ln(box, text: str, block: int) -> TextLine:
    return TextLine(box, text, (Span(text, "ocr", 8.0, False, box),), block)


def _region(box) -> Graphic:
    return Graphic(box, "region", pixel_size=(400, 300), parts=(box,))


def _two_stacked_figures() -> Page:
    """One column of a scanned page (as the OCR path models it): figure 17 = two charts, its caption, then
    figure 18 = two charts and its caption; under each chart its tick row, under each figure "(b) ..."."""
    g = [_region((323, 68, 510, 211)), _region((336, 220, 511, 351)), _region((328, 405, 505, 539))]
    g.append(_region((341, 547, 506, 671)))
    lines = [
        _ln((330, 212, 510, 219), "0 100000 200000 300000 400000 500000", 1),
        _ln((323, 353, 454, 361), "(b) Number of examples", 2),
        _ln((297, 365, 534, 373), "FIGURE 17. Graph of training and validation results of the multimodal", 3),
        _ln((297, 374, 460, 382), "network: a) recognition accuracy; b) loss function.", 3),
        _ln((330, 540, 505, 546), "0 100000 200000 300000 400000 500000", 4),
        _ln((328, 673, 452, 680), "(b) Number of examples", 5),
        _ln((297, 684, 534, 692), "FIGURE 18. Graph of training and validation results of the multimodal", 6),
        _ln((297, 693, 460, 701), "network: a) recognition accuracy; b) loss function.", 6),
    ]
    return Page(1, 576, 783, tuple(lines), tuple(g), scanned=True)


def test_each_caption_gets_the_charts_above_it() -> None:
    figures, _ = assemble(_two_stacked_figures())
    got = {f.caption.label: (f.direction, sorted(round(a.bbox[1]) for a in f.atoms)) for f in figures}
    assert got == {"17": ("up", [68, 220]), "18": ("up", [405, 547])}


def test_figure_text_does_not_block_but_running_text_does() -> None:
    def blocks(text: str, width: float = 300) -> bool:
        return _is_blocking(_ln((50, 100, 50 + width, 108), text, 0), 576)

    assert not blocks("0 100000 200000 300000 400000 50000")
    assert not blocks("Benign Malignant Benign Malignant Benign Malignant")
    assert not blocks("(a) Actual label (b) Actual label (c) Actual label")
    assert not blocks("(b) Number of examples", width=130)
    assert blocks("the proposed system is trained using a modified loss")
    assert blocks("(a) we propose a system that learns from both images and the metadata of patients", 500)
