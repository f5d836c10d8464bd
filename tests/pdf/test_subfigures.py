"""The panel planner on synthetic layouts: which pieces are panels and what each is called.

Each case pins a failure seen on real pages: column-major lettering (reading order would swap b and c), a 3x4
grid named by row numbers and column letters (IEEE Access, Fig. 10), more pieces than the caption names with no
markers (kept whole, with the reason), a marker misread by OCR (falls back to reading order)."""

from __future__ import annotations

from mmskin.pdf.captions import Caption
from mmskin.pdf.layout import Atom, Figure
from mmskin.pdf.markers import split_panels
from mmskin.pdf.page import Graphic, Page, Span, TextLine
from mmskin.pdf.subfigures import Mark, Piece, name_pieces, plan_panels, text_marks


def _pieces(rows: int, cols: int, w: float = 100, h: float = 80, g: float = 6) -> list[Piece]:
    out = []
    for r in range(rows):
        for c in range(cols):
            b = (50 + c * (w + g), 100 + r * (h + g), 50 + c * (w + g) + w, 100 + r * (h + g) + h)
            out.append(Piece(b, (Atom(b, (Graphic(b, "image", (1,), (200, 160)),)),)))
    return out


def _mark(name: str, x: float, y: float, number: bool = False) -> Mark:
    return Mark(name, (x, y, x + 6, y + 8), number)


def test_column_major_letters_printed_in_the_corners_win_over_reading_order():
    ps = _pieces(2, 2)
    # a, b down the first column; c, d down the second
    marks = [_mark(n, p.bbox[0] + 3, p.bbox[1] + 3) for n, p in zip("acbd", ps)]
    sp = split_panels("Fig. 1 Four views. (a) A. (b) B. (c) C. (d) D.")
    assert name_pieces(ps, marks, sp) == ["a", "c", "b", "d"]


def test_letters_under_each_picture_name_it():
    ps = _pieces(1, 3)
    marks = [_mark(n, (p.bbox[0] + p.bbox[2]) / 2 - 3, p.bbox[3] + 3) for n, p in zip("abc", ps)]
    assert name_pieces(ps, marks, split_panels("Fig. 2 (a) x (b) y (c) z")) == ["a", "b", "c"]


def test_grid_named_by_row_numbers_and_column_letters():
    ps = _pieces(3, 4)
    left = ps[0].bbox[0]
    bottom = max(p.bbox[3] for p in ps)
    marks = [_mark(str(r + 1), left - 12, ps[r * 4].bbox[3] - 8, number=True) for r in range(3)]
    marks += [_mark(n, (ps[c].bbox[0] + ps[c].bbox[2]) / 2, bottom + 3) for c, n in enumerate("abab")]
    sp = split_panels("Fig. 10. Maps: 1) A; 2) B; 3) C. Image (a). Map (b).")
    names = name_pieces(ps, marks, sp)
    assert names[:4] == ["1a", "1b", "1a-2", "1b-2"] and names[-1] == "3b-2" and len(set(names)) == 12


def test_reading_order_when_no_markers_and_the_count_matches():
    ps = _pieces(2, 2)
    assert name_pieces(ps, [], split_panels("Fig. 3 (a) w (b) x (c) y (d) z")) == ["a", "b", "c", "d"]


def test_a_misread_marker_falls_back_to_reading_order():
    ps = _pieces(1, 2)
    marks = [
        _mark("a", ps[0].bbox[0] + 2, ps[0].bbox[1] + 2),
        _mark("g", ps[1].bbox[0] + 2, ps[1].bbox[1] + 2),
    ]
    assert name_pieces(ps, marks, split_panels("Fig. 4 (a) left (b) right")) == ["a", "b"]


def test_more_pieces_than_panels_and_no_markers_is_not_named():
    assert name_pieces(_pieces(1, 5), [], split_panels("Fig. 5 (a) x (b) y")) is None


class _NoPixels:
    def composite_cells(self, atom, k):
        return None

    def ocr_marks(self, region, holes, allowed):
        return []

    def glyph_marks(self, region, allowed, zones=None):
        return []

    def composite_bands(self, atom, k):
        return None

    def composite_leaves(self, atom):
        return []


def _figure(pieces: list[Piece], caption: str) -> tuple[Figure, Page]:
    cap_box = (50, 400, 400, 410)
    line = TextLine(cap_box, caption, (Span(caption, "Times", 9, False, cap_box),), 0)
    cap = Caption("1", caption, cap_box, (line,))
    atoms = tuple(a for p in pieces for a in p.atoms)
    fig = Figure(cap, atoms, (min(a.bbox[0] for a in atoms), min(a.bbox[1] for a in atoms), 400, 380), "up")
    return fig, Page(1, 600, 800, (line,), tuple(g for a in atoms for g in a.graphics))


def test_plan_keeps_the_figure_whole_and_says_why():
    fig, page = _figure(_pieces(1, 5), "Fig. 1 (a) x (b) y")
    plan = plan_panels(fig, split_panels(fig.caption.text), page, _NoPixels())
    assert (
        plan.panels == () and "caption names 2 panels (a, b) but the figure has 5 picture pieces" in plan.note
    )
    fig, page = _figure(_pieces(1, 1), "Fig. 1 (a) x (b) y")
    plan = plan_panels(fig, split_panels(fig.caption.text), page, _NoPixels())
    assert plan.panels == () and "no clean 2-way split" in plan.note


def test_plan_without_panel_markers_is_one_figure_and_no_note():
    fig, page = _figure(_pieces(1, 3), "Fig. 1 Three lesions of one patient.")
    assert plan_panels(fig, split_panels(fig.caption.text), page, _NoPixels()).note is None


def test_text_layer_markers_inside_the_figure():
    ps = _pieces(1, 2)
    fig, page = _figure(ps, "Fig. 1 (a) x (b) y")
    labels = [
        TextLine(
            (p.bbox[0] + 2, p.bbox[1] + 2, p.bbox[0] + 8, p.bbox[1] + 10),
            t,
            (Span(t, "H", 8, True, (p.bbox[0] + 2, p.bbox[1] + 2, p.bbox[0] + 8, p.bbox[1] + 10)),),
            5,
        )
        for p, t in zip(ps, ("B", "A"))
    ]
    page = Page(1, 600, 800, page.lines + tuple(labels), page.graphics)
    assert [m.name for m in text_marks(page, fig)] == ["b", "a"]
    plan = plan_panels(fig, split_panels(fig.caption.text), page, _NoPixels())
    assert [(p.name, p.bbox) for p in plan.panels] == [("b", ps[0].bbox), ("a", ps[1].bbox)]


def test_a_failing_panel_split_keeps_the_figure_with_the_reason(tmp_path, monkeypatch):
    """An exception inside the panel planner (a bad image, an OCR crash) costs the split, never the figure."""
    from pathlib import Path

    from mmskin.pdf import writer
    from mmskin.pdf.build import BuildConfig, run
    from mmskin.records import read_records

    def boom(*a, **k):
        raise RuntimeError("tesseract crashed")

    monkeypatch.setattr(writer, "plan_panels", boom)
    pdf = Path(__file__).parent / "golden" / "composite_panels.pdf"
    result = run(BuildConfig(inputs=[str(pdf)], out=tmp_path, workers=1))
    (rec,) = list(read_records(tmp_path / "records.jsonl"))
    assert not result.problems and rec["panel"] is None and rec["flags"] == ["unsplit_panels"]
    assert rec["panel_note"] == "panel split failed (RuntimeError: tesseract crashed)"


class _HalvesPixels(_NoPixels):
    """A raster that holds two panels side by side: cut into k = 2 at its middle gutter."""

    def composite_cells(self, atom, k):
        if k != 2:
            return None
        x0, y0, x1, y1 = atom.bbox
        mid = (x0 + x1) / 2
        return [((x0, y0, mid - 3, y1), (0, 0, 97, 160)), ((mid + 3, y0, x1, y1), (103, 0, 200, 160))]


def test_fewer_pictures_than_panels_cuts_the_one_that_holds_two():
    """mBio Fig. 3 on a scan: panels A and B were found as one region, C as another; the caption names three."""
    wide = (50.0, 100.0, 256.0, 180.0)
    narrow = (262.0, 100.0, 362.0, 180.0)
    ps = [Piece(b, (Atom(b, (Graphic(b, "region", (), (400, 160)),)),)) for b in (wide, narrow)]
    fig, page = _figure(ps, "Fig. 3 (A) x (B) y (C) z")
    plan = plan_panels(fig, split_panels(fig.caption.text), page, _HalvesPixels())
    assert [p.name for p in plan.panels] == ["a", "b", "c"]
    assert [round(p.piece.bbox[0]) for p in plan.panels] == [50, 156, 262]
    assert plan.panels[0].piece.cell == (0, 0, 97, 160)
    # nothing to cut: kept whole, with the reason
    plan = plan_panels(fig, split_panels(fig.caption.text), page, _NoPixels())
    assert plan.panels == () and "2 picture pieces" in plan.note
