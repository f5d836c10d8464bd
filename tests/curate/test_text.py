"""Caption cleaning and intimate-region detection: table-driven cases in real caption styles (textbook figure
captions, PubMed multi-panel captions, ARCH textbook extractions with broken ligatures)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmskin.curate.text import clean_caption, intimate_regions

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"

CLEAN_CASES = [
    # (raw, expected) — figure labels in the styles the build's caption detector knows
    ("Fig. 1.1 Changing dysplastic naevus (DN).", "Changing dysplastic naevus (DN)."),
    ("Figure 12-4. Erythematous plaques on the elbows.", "Erythematous plaques on the elbows."),
    ("FIGURE 7.1 Lichen planus of the wrist.", "Lichen planus of the wrist."),
    ("Plate 4 Scabies burrows on the finger webs.", "Scabies burrows on the finger webs."),
    ("Fig. 5.3a–c Pemphigus vulgaris: flaccid bullae.", "Pemphigus vulgaris: flaccid bullae."),
    ("Figure 1 - Effect of CA-074Me on cathepsin B activity.", "Effect of CA-074Me on cathepsin B activity."),
    ("FIG. 1. Zyflamend enhances TRAIL-induced cell death.", "Zyflamend enhances TRAIL-induced cell death."),
    (
        "10-33 Immunohistochemistry of perineurioma: (A) Glut-1, (B) EMA.",
        "Immunohistochemistry of perineurioma: (A) Glut-1, (B) EMA.",
    ),
    (
        ". Acute myeloid leukemia inv (16). Sheets of blasts.",
        "Acute myeloid leukemia inv (16). Sheets of blasts.",
    ),
    # the demo book's real panel caption: shared part + subcaption + CC BY credit
    (
        "Fig. 1.5 Skin tissue classes. Naevus: nests of small, regular melanocytes. H&E stain. Image crops from "
        "Kriegsmann et al., Front. Oncol. 2022 (CC BY 4.0).",
        "Skin tissue classes. Naevus: nests of small, regular melanocytes. H&E stain.",
    ),
    # courtesy and permission credits, in and out of parentheses
    ("Fig. 3.2 Psoriasis (Courtesy of Dr. A. Smith, Boston).", "Psoriasis."),
    ("Erythema multiforme. Courtesy of Dr. J. Bolognia.", "Erythema multiforme."),
    (
        "Tinea corporis. Reproduced with permission from Smith J, et al. J Am Acad Dermatol 2005;52:1-10.",
        "Tinea corporis.",
    ),
    (
        "Lupus pernio. (Reprinted from Callen JP. Dermatol Clin 2002, with permission from Elsevier.)",
        "Lupus pernio.",
    ),
    (
        "Keloid on the earlobe. From: Bolognia JL, Dermatology, 4th ed. Elsevier; 2018.",
        "Keloid on the earlobe.",
    ),
    ("Keloid. From Marks R, et al. Lookingbill and Marks' Principles of Dermatology. 2006.", "Keloid."),
    ("Naevus. © 2010 Elsevier Inc. All rights reserved.", "Naevus."),
    ("Naevus. Copyright 2012 Springer-Verlag.", "Naevus."),
    # a sentence that starts with "From" but is not a credit stays
    (
        "From the age of five, the boy had blisters on the feet.",
        "From the age of five, the boy had blisters on the feet.",
    ),
    # cross-references
    ("Psoriasis (see Fig. 3.2).", "Psoriasis."),
    ("Psoriasis of the scalp (Fig. 4).", "Psoriasis of the scalp."),
    (
        "Guttate psoriasis (see also Figs. 3.1 and 3.4) after streptococcal pharyngitis.",
        "Guttate psoriasis after streptococcal pharyngitis.",
    ),
    ("Morphoea; for the histology see Chapter 5.", "Morphoea; for the histology."),
    ("Lichen planus (compare with Fig. 7.2), with Wickham striae.", "Lichen planus, with Wickham striae."),
    # marker legends
    ("Civatte bodies (arrowheads) at the junction.", "Civatte bodies at the junction."),
    ("Munro microabscess (arrow). H&E, ×200.", "Munro microabscess. H&E, ×200."),
    ("Nests in the dermis (black arrows in B).", "Nests in the dermis."),
    ("Scabies mite (circle) and eggs (*).", "Scabies mite and eggs."),
    (
        "Glands (poorly formed fused glands, arrows) in the stroma.",
        "Glands (poorly formed fused glands) in the stroma.",
    ),
    ("Burrows, as indicated by the arrows, on the wrist.", "Burrows, on the wrist."),
    ("Spiradenoma (arrow head).", "Spiradenoma."),
    # stain and magnification are kept; "x200" becomes "×200", a size "2 x 3 cm" is untouched
    (
        "Basal cell carcinoma (H&E, original magnification ×400).",
        "Basal cell carcinoma (H&E, original magnification ×400).",
    ),
    ("Basal cell carcinoma. H&E x200.", "Basal cell carcinoma. H&E ×200."),
    ("A nodule of 2 x 3 cm on the back.", "A nodule of 2 x 3 cm on the back."),
    # hyphenated line breaks, ligatures (code points and split by the extractor), unicode, whitespace
    ("Erythe-\nmatous papules on the ﬂexural skin.", "Erythematous papules on the flexural skin."),
    ("Well- differentiated squamous cell carcinoma.", "Well-differentiated squamous cell carcinoma."),
    ("T- and B-cells in the infiltrate.", "T- and B-cells in the infiltrate."),
    (
        "Low-grade myo fi brosarcoma. Stromal fi brosis may resemble fi bromatosis.",
        "Low-grade myofibrosarcoma. Stromal fibrosis may resemble fibromatosis.",
    ),
    ("Lesions may be super fi cial or deep.", "Lesions may be superficial or deep."),
    (
        "Spongiosis\u00a0with\u200b exocytosis,  10\u00a0µm  scale bar; 37 °C.",
        "Spongiosis with exocytosis, 10 µm scale bar; 37 °C.",
    ),
    ("", ""),
    ("Fig. 2.1", ""),
]


@pytest.mark.parametrize(("raw", "expected"), CLEAN_CASES)
def test_clean_caption(raw: str, expected: str) -> None:
    out = clean_caption(raw)
    assert out == expected
    assert clean_caption(out) == out  # idempotent


def test_clean_keeps_micro_sign_and_times() -> None:
    # NFKC would turn µ (U+00B5) into μ (U+03BC) and keep ×; both must come out as printed
    assert clean_caption("Scale bar 50 µm, ×100") == "Scale bar 50 µm, ×100"
    assert clean_caption("Fig. 1 Colonies ﬁxed at 4 °C") == "Colonies fixed at 4 °C"


def test_clean_is_idempotent_on_real_captions() -> None:
    path = DATA / "pdfs" / "sciint_annotations" / "annotation_284_pdfs_captions.json"
    if not path.is_file():
        pytest.skip(f"../shared/data not present: {path}")
    data = json.loads(path.read_text(encoding="utf-8"))
    caps = [
        f["caption-txt"] for v in data.values() for f in v["pdf-figures"].values() if f.get("caption-txt")
    ][:300]
    assert len(caps) == 300
    for raw in caps:
        out = clean_caption(raw)
        assert out, raw
        assert clean_caption(out) == out, raw
        assert not out.lower().startswith(("figure", "fig.")), out


REGION_CASES = [
    ("Lichen sclerosus of the vulva and perianal skin.", ["vulva", "perianal"]),
    ("Condylomata acuminata on the penile shaft.", ["penile"]),
    ("Extramammary Paget disease of the scrotum.", ["scrotum"]),
    ("Pressure ulcer over the buttock.", ["buttock"]),
    ("Eczema of the nipple and areola.", ["nipple", "areola"]),
    ("Tinea cruris in the groin.", ["groin"]),
    ("Hidradenitis of the inguinal folds and axillae.", ["inguinal folds"]),
    ("Anal canal squamous cell carcinoma.", ["anal"]),
    # not intimate, or not the region
    ("Melanoma metastatic to an inguinal lymph node.", []),
    ("Canal-like spaces in the dermis; analysis of 12 cases.", []),
    ("Labial mucosa with aphthae; axillary freckling.", []),
    ("Psoriasis on the elbows and knees.", []),
    ("Atopic dermatitis in a breastfed infant.", []),
    ("", []),
]


@pytest.mark.parametrize(("text", "expected"), REGION_CASES)
def test_intimate_regions(text: str, expected: list[str]) -> None:
    assert intimate_regions(text) == expected
