"""Caption labels and panel markers, table-driven, plus corpus checks on real captions from ../shared/data."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from mmskin.pdf.captions import parse_label
from mmskin.pdf.markers import split_panels

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("Fig. 3.2 Psoriasis of the elbow.", "3.2"),
        ("Fig 3.2 Psoriasis", "3.2"),
        ("Figure 12-4. Lichen planus on the wrist.", "12-4"),
        ("FIGURE 7.1 Tinea corporis", "7.1"),
        ("Fig. 10.1.1 Congenital naevus", "10.1.1"),
        ("Plate 4 Nodular melanoma", "4"),
        ("Plate IV. Acral lentiginous melanoma", "IV"),
        ("Figure 1 - Effect of CA-074Me on cathepsin B activity", "1"),
        ("Figure 7-26. Self-locking nuts.", "7-26"),
        ("Fig. 5: Acne vulgaris", "5"),
        ("FIG. 2 Basal cell carcinoma", "2"),
        ("Figure 3 – Kaposi sarcoma", "3"),
        ("Fig. 4 (a) Plaque (b) Nail", "4"),
        ("Figure 2.", "2"),
        ("Fig. 4.1.2 In situ hybridization of HPV", "4.1.2"),
        ("Fig. 3A Psoriasis of the scalp", "3A"),
        ("Fig. 5.3 a–c Lichen planus. a Papules. b Striae. c Nails.", "5.3"),
        ("Fig. 5.3a–c Lichen planus. a Papules. b Striae. c Nails.", "5.3"),
        ("Fig. 2.1a,b Acne. a Face. b Back.", "2.1"),
        ("Figure S2. Supplementary view", "S2"),
        ("Fig. 3 a Psoriasis on the elbow. b Nail pitting.", "3"),
        ("Extended Data Fig. 1 | Dermoscopy of the lesions.", "1"),
        ("Supplementary Figure S3. Histology of the margin.", "S3"),
        ("Fig. 2 | Clinical course", "2"),
        ("Figure 3    Third day of clinical evolution", "3"),
        ("FIGURE 4.3 Distribution of the lesions in the cohort", "4.3"),
        ("Figure 4.3. Thesis-style caption", "4.3"),
    ],
)
def test_caption_labels(text: str, label: str) -> None:
    lab = parse_label(text)
    assert lab is not None and lab.label == label


@pytest.mark.parametrize(
    "text",
    [
        "(Fig. 3.2)",
        "as shown in Figure 4, the border is irregular",
        "Figure 4 shows the distribution of lesions",
        "Fig. 3.2 illustrates the typical plaque",
        "Figures 3 and 4 compare the two",
        "Figure 5 and Table 2 list the criteria",
        "figure 3 is a photograph",
        "Figure3D",
        "Fig. 2 in the appendix",
        "Figure 4.3 presents the distribution of the lesions",
        "supplementary figure 2 shows the rest",
        "Extended Data Fig. 3 shows the staining",
    ],
)
def test_in_text_citations_are_not_captions(text: str) -> None:
    assert parse_label(text) is None


@pytest.mark.parametrize(
    ("caption", "letters", "shared", "sub_b"),
    [
        (
            "Fig. 3.2 Psoriasis. (a) Elbow plaques. (b) Nail pitting.",
            "ab",
            "Fig. 3.2 Psoriasis.",
            "Nail pitting.",
        ),
        ("Fig. 1 Psoriatic plaques on the elbow (a) and knee (b).", "ab", "Fig. 1", "knee"),
        (
            "Figure 2. Melanoma. A, Clinical photo. B, Dermoscopy showing network.",
            "ab",
            "Figure 2. Melanoma.",
            "Dermoscopy showing network.",
        ),
        ("Fig. 3.1 a Psoriasis on the elbow. b Nail pitting. c Scalp.", "abc", "Fig. 3.1", "Nail pitting."),
        (
            "Fig. 4 Tinea corporis. Left: before treatment. Right: after treatment.",
            "ab",
            "Fig. 4 Tinea corporis.",
            "after treatment.",
        ),
        ("Fig. 5 (a, b) Two views of a plaque. (c) Histology.", "abc", "Fig. 5", "Two views of a plaque."),
        (
            "Fig. 6 Melanoma (A–C) Clinical views. (D) Dermoscopy.",
            "abcd",
            "Fig. 6 Melanoma",
            "Clinical views.",
        ),
        ("Fig. 7 Top: plaque on the shin. Bottom: after treatment.", "ab", "Fig. 7", "after treatment."),
        (
            "Fig. 5.3 a–c Lichen planus. a Papules. b Wickham striae. c Nails.",
            "abc",
            "Fig. 5.3 a–c Lichen planus.",
            "Wickham striae.",
        ),
    ],
)
def test_panel_markers(caption: str, letters: str, shared: str, sub_b: str) -> None:
    sp = split_panels(caption)
    assert "".join(p.letter for p in sp.panels) == letters
    assert sp.shared == shared
    assert dict((p.letter, p.text) for p in sp.panels)["b"] == sub_b
    assert sp.caption_for("b") == f"{shared} {sub_b}"


@pytest.mark.parametrize(
    "caption",
    [
        "Fig. 8 Psoriasis of the elbow (see Fig. 2).",
        "Fig. 9 A plaque of psoriasis on the knee.",  # "A" is an article, not a panel
        "Fig. 10 Vitamin A deficiency (phrynoderma).",
        "Fig. 11 Type (b) lesions are rare.",  # one marker is not a panel set
    ],
)
def test_no_panels(caption: str) -> None:
    assert split_panels(caption).panels == ()


def _sciint_captions() -> list[str]:
    p = DATA / "pdfs" / "sciint_annotations" / "annotation_284_pdfs_captions.json"
    if not p.exists():
        pytest.skip(f"real captions not available ({p} missing)")
    d = json.loads(p.read_text())
    return [f["caption-txt"] for v in d.values() for f in v["pdf-figures"].values() if f.get("caption-txt")]


def test_real_labelled_captions_parse() -> None:
    caps = [c for c in _sciint_captions() if re.match(r"(Fig\.?|Figure|FIGURE) \d+[ .:-]", c)]
    assert len(caps) > 100
    ok = sum(parse_label(c) is not None for c in caps)
    assert ok / len(caps) >= 0.99, [c[:60] for c in caps if parse_label(c) is None][:10]


def test_real_multipanel_captions_split() -> None:
    caps = [c for c in _sciint_captions() if "(A)" in c and "(B)" in c]
    assert len(caps) > 100
    split = [split_panels(c) for c in caps]
    ok = sum(len(s.panels) >= 2 and s.panels[0].letter == "a" for s in split)
    assert ok / len(caps) >= 0.97
    # subcaption text is always a substring of the caption: nothing invented
    for c, s in zip(caps, split):
        for p in s.panels:
            for piece in p.text.split(" "):
                assert piece in c


def test_label_split_from_its_number_on_one_printed_line() -> None:
    """A justified label line comes out of PyMuPDF (and OCR gap splitting) as two lines: "FIGURE" and "12-1"."""
    from mmskin.pdf.captions import find_captions
    from mmskin.pdf.page import Span, TextLine

    def line(text: str, box: tuple[float, float, float, float], block: int = 3) -> TextLine:
        return TextLine(box, text, (Span(text, "Times-Bold", 8.0, True, box),), block)

    lines = [
        line("FIGURE", (54, 555, 89, 567)),
        line("12-1", (281, 555, 297, 567)),
        line("Dermatofibrosarcoma protuberans. Infiltration of fat", (54, 566, 297, 578)),
    ]
    caps = find_captions(lines)
    assert [(c.label, c.text) for c in caps] == [
        ("12-1", "FIGURE 12-1 Dermatofibrosarcoma protuberans. Infiltration of fat")
    ]
    assert len(caps[0].lines) == 3


def _ocr_line(box, text: str, block: int):
    from mmskin.pdf.page import Span, TextLine

    size = round((box[3] - box[1]) / 0.93, 1)  # as words_to_lines guesses it from the ink height
    return TextLine(box, text, (Span(text, "ocr", size, False, box),), block)


# OCR'd captions on real pages scanned at 200/300 dpi, each a case that lost caption text:
_OCR_CAPTIONS = {
    # cermine_test5 p4, a side caption: "(g/l) concentrations." has ink 13 pt tall against 9 pt for the other lines
    # and Tesseract put it in another block; the line pitch, not the guessed size, says it is the same caption
    "taller line": (
        [
            ((42, 56, 179, 65), "Figure 3 Forest plot of age subgroup.", 1),
            ((42, 66, 173, 75), "(a) Weighted mean difference (WMD)", 1),
            ((42, 76, 177, 85), "forest plots of changes in haemoglobin", 1),
            ((42, 85, 169, 98), "(g/l) concentrations. (b) WMD forest", 3),
            ((42, 96, 174, 104), "plots of studies estimating changes in", 4),
            ((42, 106, 164, 113), "serum ferritin concentrations.", 4),
        ],
        "Figure 3 Forest plot of age subgroup. (a) Weighted mean difference (WMD) forest plots of changes in "
        "haemoglobin (g/l) concentrations. (b) WMD forest plots of studies estimating changes in serum ferritin "
        "concentrations.",
    ),
    # IEEE Access Fig. 14 at 300 dpi: the first printed line came as two lines of two blocks, the second printed
    # line listed between them
    "line cut in two": (
        [
            ((50, 186, 226, 193), "FIGURE 14. Confusion matrices in two categories as a", 11),
            ((50, 194, 203, 202), "DenseNet_161; b) Inception_v4; c) ResNeXt_50.", 12),
            ((228, 186, 522, 193), "result of testing the original network based on architectures: a)", 13),
        ],
        "FIGURE 14. Confusion matrices in two categories as a result of testing the original network based on "
        "architectures: a) DenseNet_161; b) Inception_v4; c) ResNeXt_50.",
    ),
    # a hanging caption: "Figure 6" alone in the margin, its text indented 11 pt to the right in another block
    "label in the margin": (
        [
            ((58, 677, 87, 684), "Figure 6", 54),
            ((98, 677, 256, 684), "Binding of compound 33RE to N-domain ACE", 55),
            ((98, 685, 492, 692), "(A) Residues of N-domain ACE (cyan) interacting with 33RE (purple).", 55),
        ],
        "Figure 6 Binding of compound 33RE to N-domain ACE (A) Residues of N-domain ACE (cyan) interacting with "
        "33RE (purple).",
    ),
}


@pytest.mark.parametrize("case", sorted(_OCR_CAPTIONS))
def test_ocr_captions_keep_all_their_text(case: str) -> None:
    from mmskin.pdf.captions import find_captions

    lines, expected = _OCR_CAPTIONS[case]
    (cap,) = find_captions([_ocr_line(*ln) for ln in lines])
    assert cap.text == expected
