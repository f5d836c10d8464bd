"""The offline template generator: grounded answers, determinism by seed, modality gating, demographics from the
record, negated findings as "No" answers, the per-image cap, and question typing of MM-Skin's own questions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmskin.vqa.facts import build_support, check_answer, extract_facts, record_fact_texts
from mmskin.vqa.lexicon import LexiconError
from mmskin.vqa.template import load_templates, template_samples

T = load_templates()


def _demo_records(ds: Path) -> list[dict]:
    return [json.loads(line) for line in (ds / "records.jsonl").read_text().splitlines()]


def _by_type(rec: dict, **kw) -> dict[str, tuple[str, str]]:
    return {qa.question_type: (qa.question, qa.answer) for qa in template_samples(rec, T, **kw)}


def test_demo_answers_are_grounded_and_hedges_respected(vqa_gen_dataset: Path) -> None:
    recs = _demo_records(vqa_gen_dataset)
    n = 0
    for rec in recs:
        facts = extract_facts(rec["caption"])
        support = build_support(facts, record_fact_texts(rec, T.modality_phrases))
        qas = template_samples(rec, T, seed=3, facts=facts)
        assert qas, rec["caption"]
        for qa in qas:
            ok, why, missing = check_answer(qa.answer, support, qa.question)
            assert ok, (qa, why, missing)
            assert "Fig." not in qa.answer  # the figure label is not a fact about the image
            n += 1
    assert n >= 3 * len(recs)  # MM-Skin has about 2.7 QA per image
    suspicious = next(r for r in recs if "suspicious for melanoma" in r["caption"])
    dx = _by_type(suspicious)["diagnosis"][1]
    assert "dysplastic naevus" in dx and "melanoma" not in dx
    early = next(r for r in recs if r["caption"].startswith("Fig. 1.4"))
    assert _by_type(early)["diagnosis"][1].endswith(
        "melanoma; the caption also mentions dysplastic naevus."
    ) or ("dysplastic naevus" in _by_type(early)["diagnosis"][1])


def test_deterministic_by_seed_and_independent_of_other_records(vqa_gen_dataset: Path) -> None:
    recs = _demo_records(vqa_gen_dataset)
    a = [template_samples(r, T, seed=0) for r in recs]
    b = [template_samples(r, T, seed=0) for r in reversed(recs)][::-1]
    assert a == b
    c = [template_samples(r, T, seed=1) for r in recs]
    assert a != c  # phrasings change with the seed ...
    assert [[q.question_type for q in x] for x in a] == [
        [q.question_type for q in x] for x in c
    ]  # ... types do not


def test_per_image_cap_is_a_seeded_subset() -> None:
    rec = {
        "id": "r1",
        "caption": "Scaly erythematous plaques on both elbows, 2 cm in diameter, without ulceration.",
        "modality": "clinical",
        "age": 34,
        "sex": "female",
    }
    full = template_samples(rec, T, seed=0)
    assert len(full) >= 7
    for k in (0, 1, 3):
        capped = template_samples(rec, T, seed=0, per_image=k)
        assert len(capped) == k
        assert {q.question_type for q in capped} <= {q.question_type for q in full}
    assert template_samples(rec, T, seed=0, per_image=3) == template_samples(rec, T, seed=0, per_image=3)


def test_clinical_record_question_set() -> None:
    rec = {
        "id": "r2",
        "caption": "Scaly erythematous plaques on both elbows, 2 cm in diameter, without ulceration.",
        "modality": "clinical",
        "age": 34,
        "sex": "female",
    }
    got = _by_type(rec)
    assert set(got) == {
        "modality",
        "morphology",
        "color",
        "location",
        "size",
        "demographics",
        "presence",
        "describe",
    }
    assert got["modality"][1] in ("This is a clinical photograph.", "The image is a clinical photograph.")
    assert "both elbows" in got["location"][1]
    assert "2 cm" in got["size"][1]
    assert got["presence"][1].startswith("No") and "ulceration" in got["presence"][1]
    assert "34" in got["demographics"][1] and "female" in got["demographics"][1]
    assert "scaling" in got["morphology"][1] and "plaques" in got["morphology"][1]


def test_pathology_record_asks_histology_not_morphology() -> None:
    rec = {
        "id": "r3",
        "caption": "Basal cell carcinoma. Nodular BCC with peripheral palisading, retraction artefact and "
        "basaloid cells. H&E, x100.",
        "modality": "pathology",
    }
    got = _by_type(rec)
    assert {"diagnosis", "modality", "histology", "cells", "stain"} <= set(got)
    assert not {"morphology", "color", "location"} & set(got)
    assert "peripheral palisading" in got["histology"][1] and "retraction artifact" in got["histology"][1]
    assert "hematoxylin and eosin (H&E)" in got["stain"][1] and "x100" in got["stain"][1]
    assert "basaloid cells" in got["cells"][1]


@pytest.mark.parametrize(
    "fields, expect",
    [
        ({"age": 45, "sex": "male"}, ["45", "male"]),
        ({"age": 45.0, "sex": None}, ["45 years old"]),
        ({"age": None, "sex": "female"}, ["female"]),
        ({"age": 0.5, "age_group": "infant"}, ["infant"]),  # under a year: the group, not "0.5-year-old"
        ({"age": None, "sex": None, "age_group": None}, None),
    ],
)
def test_demographics_from_record_fields(fields, expect) -> None:
    rec = {"id": "r4", "caption": "Plaque on the shin.", "modality": "clinical", **fields}
    got = _by_type(rec).get("demographics")
    if expect is None:
        assert got is None
    else:
        assert all(e in got[1] for e in expect), got


def test_unknown_modality_skips_modality_questions() -> None:
    rec = {"id": "r5", "caption": "Psoriasis: erythematous plaques on the knees."}  # uncurated: no modality
    got = _by_type(rec)
    assert "modality" not in got and "diagnosis" in got and "location" in got
    assert "modality" not in _by_type({**rec, "modality": "other"})


def test_caption_without_facts_gives_only_a_description_or_nothing() -> None:
    assert template_samples({"id": "r6", "caption": "See text."}, T) == []
    got = _by_type({"id": "r7", "caption": "Four years after image 1, it became larger."})
    assert set(got) == {"describe"}


@pytest.mark.parametrize(
    "question, qtype",
    [  # real MM-Skin test questions
        ("What type of skin condition does this image depict?", "diagnosis"),
        ("What is the main focus of this image?", "diagnosis"),
        ("What does the image show?", "diagnosis"),
        ("Is there any treatment available for this condition?", "other"),
        ("Is this condition contagious?", "other"),
        ("What type of cells are present in this image?", "cells"),
        ("What type of tissue is shown in this image?", "histology"),
        ("What color is the lesion?", "color"),
        ("Where is the lesion located on the body?", "location"),
        ("How large is the lesion?", "size"),
        ("What is the age of the patient?", "demographics"),
        ("Can you describe the shape of the lesion?", "morphology"),
        ("Is there any evidence of inflammation in the image?", "presence"),
        ("Are there any other notable features in the image?", "describe"),
        ("What does the dermoscopy show?", "modality"),
    ],
)
def test_classify_mmskin_questions(question, qtype) -> None:
    assert T.classify(question) == qtype


def test_every_generated_question_classifies_as_its_type(vqa_gen_dataset: Path) -> None:
    """The rules and the templates agree, so the question-type mix we report for MM-Skin means the same thing."""
    rec = {
        "id": "r8",
        "caption": "Dysplastic naevus: a 6 mm papule on the left shoulder, grouped, dark brown, without scale. "
        "Biopsy: nests of atypical melanocytes, H&E, x40.",
        "age": 50,
        "sex": "male",
    }
    for seed in range(6):
        for qa in template_samples(rec, T, seed=seed):
            if qa.question_type in ("presence", "describe"):
                continue
            assert T.classify(qa.question) == qa.question_type, qa


def test_template_file_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "t.yaml"
    bad.write_text(
        "question_types:\n  color:\n    variants:\n      - requires: [color]\n"
        "        questions: ['What colour?']\n        answers: ['It is {colour}.']\n"
    )
    with pytest.raises(LexiconError, match=r"t.yaml: color.variants\[0\]: .* uses slots \['colour'\]"):
        load_templates(bad)


def test_per_image_choice_follows_the_type_weights() -> None:
    """With --per-image 1 the kept type follows templates.yaml's weights (MM-Skin's mix): diagnosis (30) far more
    often than modality (2), over many records with the same facts."""
    caption = "Psoriasis: scaly erythematous plaques on both elbows, without ulceration."
    kept = [
        template_samples({"id": f"r{i}", "caption": caption, "modality": "clinical"}, T, per_image=1)[
            0
        ].question_type
        for i in range(300)
    ]
    assert kept.count("diagnosis") > 4 * max(1, kept.count("modality"))
    assert kept.count("describe") > kept.count("color")
    assert len(set(kept)) >= 5  # no type is starved


@pytest.mark.parametrize(
    "caption, diagnosis",
    [
        (
            "Skin tissue classes. Melanoma: sheets of atypical melanocytes.",
            "melanoma",
        ),  # a panel's subcaption
        (
            "Papillary intralymphatic angioendothelioma. Some have adjacent lymphangiomas.",
            None,
        ),  # only context
        ("Psoriasis of the elbow. Koebner phenomenon in a scar.", "psoriasis"),
    ],
)
def test_diagnosis_comes_from_the_title_or_a_sentence_head(caption, diagnosis) -> None:
    got = _by_type({"id": "d", "caption": caption, "modality": "pathology"}).get("diagnosis")
    if diagnosis is None:
        assert got is None
    else:
        assert diagnosis in got[1].lower()
