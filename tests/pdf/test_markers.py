"""Caption panel markers beyond the classic "(a) … (b)": close-paren, numbered rows, grid names, inline lists;
each panel's caption must read as a sentence of its own, and nothing outside the caption may appear in it."""

from __future__ import annotations

import pytest

from mmskin.pdf.markers import split_panels


@pytest.mark.parametrize(
    ("caption", "letters", "rows", "name", "expected"),
    [
        (
            "FIGURE 11. Confusion matrices: a) original network; b) network with a modified loss.",
            "ab",
            "",
            "b",
            "FIGURE 11. Confusion matrices: network with a modified loss.",
        ),
        ("Wheals on the (A) face, (B) legs and (C) chest.", "abc", "", "b", "Wheals on the legs"),
        ("Wheals on the (A) face, (B) legs and (C) chest.", "abc", "", "c", "Wheals on the chest."),
        (
            "Figure 2: (a): Biopsy of abdomen (H&E × 20). (b): Spongiosis.",
            "ab",
            "",
            "a",
            "Figure 2: Biopsy of abdomen (H&E × 20).",
        ),
        (
            "Fig. 10. Maps for: 1) DenseNet; 2) Inception; 3) ResNeXt. Original image (a). Significance map (b).",
            "ab",
            "123",
            "2b",
            "Fig. 10. Maps for: Inception Significance map",
        ),
        (
            "Fig. 10. Maps for: 1) DenseNet; 2) Inception; 3) ResNeXt. Original image (a). Significance map (b).",
            "ab",
            "123",
            "3a-2",
            "Fig. 10. Maps for: ResNeXt. Original image",
        ),
        (
            "Fig. 4 Grid. (a1) top left (a2) top right (b1) bottom left (b2) bottom right",
            "a1 a2 b1 b2",
            "",
            "b1",
            "Fig. 4 Grid. bottom left",
        ),
        ("Fig. 5 Two patients: (1) a plaque; (2) a nodule.", "12", "", "2", "Fig. 5 Two patients: a nodule."),
        (
            "Figure 3: Lesions had nearly cleared (a and b)",
            "ab",
            "",
            "b",
            "Figure 3: Lesions had nearly cleared",
        ),
    ],
)
def test_panel_captions_read_on_their_own(caption, letters, rows, name, expected) -> None:
    sp = split_panels(caption)
    got = [p.letter for p in sp.panels]
    assert got == (letters.split() if " " in letters else list(letters))
    assert [p.letter for p in sp.rows] == list(rows)
    assert sp.caption_for(name) == expected
    # nothing invented: every word of a panel caption is in the caption
    assert all(w in caption for w in sp.caption_for(name).split())


@pytest.mark.parametrize(
    "caption",
    [
        "Fig. 8 Patients 1 and 2 had plaques.",
        "Fig. 9 Dose (mg) over time (h).",
        "Figure 6 Step 1) only.",
        "Fig. 12 Type b) lesions are rare.",
    ],
)
def test_no_panels_from_stray_markers(caption: str) -> None:
    sp = split_panels(caption)
    assert sp.panels == () and sp.caption_for("a") == caption
