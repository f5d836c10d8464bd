"""Fact extraction from captions (lexicon matching, negation, hedging, cleaning) and the grounding check.

The captions are real ones (the demo atlas's NCI/Kriegsmann captions, NCI nevus captions, ARCH/PathVQA textbook
wording) or textbook-style sentences written to pin one failure each: "no ulceration" must never become a present
ulcer, "suspicious for melanoma" must never become the diagnosis.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mmskin.vqa.facts import (
    build_support,
    check_answer,
    clean_caption,
    content_words,
    extract_facts,
    record_fact_texts,
    split_sentences,
)
from mmskin.vqa.lexicon import LexiconError, load_lexicon


def _present(caption: str, cat: str) -> list[str]:
    return [m.concept for m in extract_facts(caption).present(cat)]


def _negated(caption: str, cat: str) -> list[str]:
    return [m.concept for m in extract_facts(caption).negated(cat)]


@pytest.mark.parametrize(
    "caption, cat, present, negated",
    [
        ("Erythematous plaque with fine scale but no ulceration.", "morphology", ["erythema", "plaque", "scale"], ["ulcer"]),
        ("A nodule without ulceration or crusting.", "morphology", ["nodule"], ["ulcer", "crust"]),
        ("Ulceration is absent; the papules are grouped.", "morphology", ["papule"], ["ulcer"]),
        ("No scale, but a crusted erosion at the centre.", "morphology", ["crust", "erosion"], ["scale"]),
        ("Non-scaly pink macules.", "morphology", ["macule"], ["scale"]),
        ("There is no evidence of spongiosis; marked acanthosis and parakeratosis.", "histology",
         ["acanthosis", "parakeratosis"], ["spongiosis"]),
        ("Ulcerated nodule. No ulceration was seen in the earlier photograph.", "morphology", ["ulcer", "nodule"], []),
    ],
)  # fmt: skip
def test_negation_scope(caption, cat, present, negated) -> None:
    assert _present(caption, cat) == present
    assert _negated(caption, cat) == negated


@pytest.mark.parametrize(
    "caption, diagnoses",
    [
        ("Changing dysplastic naevus highly suspicious for melanoma.", ["dysplastic nevus"]),
        ("Psoriasis-like plaques in a patient with pityriasis rubra pilaris.", ["pityriasis rubra pilaris"]),
        (
            "Lentigo maligna in a patient with a history of melanoma.",
            ["melanoma"],
        ),  # LM is a melanoma synonym
        ("Nodular BCC on the nose.", ["basal cell carcinoma"]),
        ("Bcc is not an abbreviation here.", []),  # abbreviations only in capitals
        ("The differential diagnosis includes lichen planus.", []),
        ("Early melanoma that started in a dysplastic naevus.", ["melanoma", "dysplastic nevus"]),
        ("Tumour cells of a metastatic carcinoma; the tumours are multiple.", ["cutaneous metastasis"]),
    ],
)
def test_diagnosis_hedging_and_abbreviations(caption, diagnoses) -> None:
    assert _present(caption, "diagnosis") == diagnoses


def test_longest_match_wins_across_categories() -> None:
    f = extract_facts("Sheets of tumor cells with spindle cells; a melanocytic naevus.")
    cats = {(m.category, m.concept) for m in f.mentions}
    assert ("cells", "tumor cells") in cats and ("morphology", "tumor") not in cats
    assert ("diagnosis", "melanocytic nevus") in cats and ("cells", "melanocytes") not in cats


def test_normalisation_spelling_and_plurals() -> None:
    lex = load_lexicon()
    assert [
        lex.norm(w) for w in ("Naevi", "tumours", "papules", "bullae", "oedema", "haemangioma", "herpes")
    ] == [
        "nevus",
        "tumor",
        "papule",
        "bulla",
        "edema",
        "hemangioma",
        "herpes",
    ]
    assert _present("Multiple naevi on the back.", "diagnosis") == ["melanocytic nevus"]


def test_ambiguous_sites_need_context() -> None:
    assert _present("On the other hand, the lesions came back.", "site") == []
    assert _present("Plaques on the back and the dorsum of the left hand.", "site") == ["back", "hand"]
    f = extract_facts("Scaly plaques without crust on the left forearm.")
    sites = f.present("site")
    assert [m.text for m in sites] == [
        "left forearm"
    ]  # a negation before it is about the crust, not the site


def test_colours_keep_their_modifiers() -> None:
    f = extract_facts("The color is dark brown in the center and lighter brown around the edges.")
    assert [m.text for m in f.mentions if m.category == "color"] == ["dark brown", "lighter brown"]


def test_size_and_magnification() -> None:
    f = extract_facts("A 2 cm nodule 4 cm below the knee; biopsy, H&E, original magnification x200.")
    assert f.sizes == ["2 cm"]
    assert f.magnifications == ["original magnification x200"]
    assert [m.concept for m in f.present("stain")] == ["hematoxylin and eosin"]
    assert extract_facts("Low-power view of the tumour.").magnifications == ["Low-power view"]


def test_clean_caption_drops_label_and_credits() -> None:
    raw = (
        "Fig. 1.5 Skin tissue classes. Naevus: nests of small, regular melanocytes. H&E stain. "
        "Image crops from Kriegsmann et al., Front. Oncol. 2022 (CC BY 4.0)."
    )
    assert (
        clean_caption(raw) == "Skin tissue classes. Naevus: nests of small, regular melanocytes. H&E stain."
    )
    assert (
        clean_caption("FIGURE 7-26. Psoriasis of the elbow. Courtesy of Dr. A. Smith.")
        == "Psoriasis of the elbow."
    )
    assert clean_caption("Figure 3.2a,b Guttate psoriasis.") == "Guttate psoriasis."
    assert split_sentences("Fig. 2 shows e.g. a mole. Second one.") == [
        "Fig. 2 shows e.g. a mole.",
        "Second one.",
    ]


def _check(caption: str, answer: str, question: str = "", record: dict | None = None):
    facts = extract_facts(caption)
    support = build_support(facts, record_fact_texts(record or {}, {"clinical": "a clinical photograph"}))
    return check_answer(answer, support, question)


@pytest.mark.parametrize(
    "caption, question, answer, reason",
    [
        ("Erythematous scaly plaques on the elbows.", "", "The lesions are red, scaly plaques on the elbows.", None),
        ("Erythematous scaly plaques on the elbows.", "", "The plaques show scaling.", None),  # lexicon synonym
        ("Erythematous scaly plaques on the elbows.", "", "The patient should use topical steroids.", "unsupported_words"),
        ("Erythematous scaly plaques on the elbows.", "", "This is psoriasis.", "unsupported_words"),
        ("A nodule without ulceration.", "", "The nodule is ulcerated.", "contradicts_caption"),
        ("A nodule without ulceration.", "Is there ulceration?", "Yes.", "contradicts_caption"),
        ("A nodule without ulceration.", "Is there ulceration?", "No, there is no ulceration.", None),
        ("An ulcerated nodule.", "Is the nodule ulcerated?", "No.", "contradicts_caption"),
        ("Tumours enlarged on the shin.", "", "The tumors are enlarging on the shins.", None),  # lemma-ish
    ],
)  # fmt: skip
def test_grounding_check(caption, question, answer, reason) -> None:
    ok, why, _ = _check(caption, answer, question)
    assert why == reason
    assert ok is (reason is None)


def test_grounding_uses_record_fields() -> None:
    rec = {"age": 45, "sex": "female", "modality": "clinical"}
    assert _check("Plaque on the shin.", "The patient is a 45-year-old female.", record=rec)[0]
    assert not _check("Plaque on the shin.", "The patient is a 45-year-old female.")[0]
    assert _check("Plaque on the shin.", "This is a clinical photograph.", record=rec)[0]
    ok, why, missing = _check("Plaque on the shin.", "The patient is a 46-year-old male.", record=rec)
    assert not ok and why == "unsupported_words" and missing == ["46", "male"]


def test_content_words_skip_framing() -> None:
    assert content_words("The image shows a lesion located on the thumb.") == ["thumb"]


def test_bad_lexicon_files_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("categories: [unclosed\n")
    with pytest.raises(LexiconError, match="bad.yaml: not valid YAML"):
        load_lexicon(bad)
    boolean = tmp_path / "boolean.yaml"
    boolean.write_text("grounding:\n  stopwords: [a, yes]\ncategories:\n  color:\n    - {name: red}\n")
    with pytest.raises(LexiconError, match="boolean.yaml: grounding.stopwords: True is not a string"):
        load_lexicon(boolean)
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("categories:\n  color:\n    - {name: red, synonym: [reddish]}\n")
    with pytest.raises(LexiconError, match=r"unknown keys \['synonym'\]"):
        load_lexicon(unknown)
