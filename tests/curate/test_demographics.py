"""Age, age group and sex from captions: a hand-written table of textbook-style dermatology captions, the false
positives the extractor must not fall for, and a small check on real MedPix histories."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmskin.curate.demographics import Demographics, age_group_of, extract_demographics

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"

# (caption, age, age_group, sex)
CASES = [
    ("A 45-year-old woman with plaque psoriasis on the elbows.", 45.0, "adult", "female"),
    ("Bullous pemphigoid in an 82-year-old man.", 82.0, "elderly", "male"),
    ("Tinea capitis in a 6-year-old boy.", 6.0, "child", "male"),
    ("Acne conglobata in a 16-year-old girl.", 16.0, "adolescent", "female"),
    ("Infantile haemangioma in a 3-month-old infant.", 0.25, "infant", None),
    ("Neonatal lupus: annular plaques on the face of a 6-week-old girl.", 6 / 52, "infant", "female"),
    ("Psoriasis, patient aged 45.", 45.0, "adult", None),
    ("Lichen planus; 22yo M, biopsy of the wrist.", 22.0, "adult", "male"),
    ("Erythema nodosum, 31 y/o F.", 31.0, "adult", "female"),
    ("Pyoderma gangrenosum in a man aged 60 years.", 60.0, "adult", "male"),
    ("Morphoea in a woman of 52 (British style).", 52.0, "adult", "female"),
    ("Dermatomyositis: heliotrope rash in a 7 year old female with muscle weakness.", 7.0, "child", "female"),
    ("A 70-year-old African American female with a nodule on her cheek.", 70.0, "elderly", "female"),
    ("Molluscum contagiosum in a two-year-old child.", 2.0, "child", None),
    ("Kaposi sarcoma in a forty-five-year-old man.", 45.0, "adult", "male"),
    ("A 3 1/2 year old girl with urticaria pigmentosa.", 3.5, "child", "female"),
    # words only: group and sex without an age
    ("Senile purpura on the forearm of an elderly woman.", None, "elderly", "female"),
    ("Scabies in a newborn.", None, "infant", None),
    ("Herpes zoster in a middle-aged man.", None, "adult", "male"),
    ("Impetigo on the face of a boy.", None, "child", "male"),
    ("Melasma in her 40s.", None, "adult", "female"),
    ("Actinic keratoses on the scalp of a man in his seventies.", None, "elderly", "male"),
    ("Plaques on her elbows and knees.", None, None, "female"),
    ("He presented with a painful ulcer on the shin.", None, None, "male"),
    # nothing stated: nothing returned
    ("Psoriasis vulgaris: well-demarcated erythematous plaques with silvery scale.", None, None, None),
    ("Male pattern baldness (androgenetic alopecia).", None, None, None),
    ("The female-to-male ratio of lichen sclerosus is 10:1.", None, None, None),
    ("Lesions occur in 45% of patients; most patients are men.", None, None, None),
    ("A 3-year history of itchy papules on the shins.", None, None, None),
    ("Lesion present for 10 years; a 10-year-old scar on the arm.", None, None, None),
    ("Mannose-binding lectin deficiency; Hermansky-Pudlak syndrome in humans.", None, None, None),
    ("Her dermatologist noted a changing naevus.", None, None, None),
    ("HE staining of the lesion shows spongiosis.", None, None, None),
    ("Childhood eczema usually clears by adolescence.", None, None, None),
    ("Infantile haemangioma: the proliferative phase.", None, None, None),
    ("Onset since the age of 5; lesions on the hands.", None, None, None),
    ("Eight-week-old wild-type mice were injected with the antigen.", None, None, None),
    ("Common in adults over 50 years old.", None, None, None),
    ("Adult-onset Still disease: evanescent salmon-pink rash.", None, None, None),
    ("", None, None, None),
]


@pytest.mark.parametrize(("text", "age", "group", "sex"), CASES)
def test_extract_demographics(text: str, age: float | None, group: str | None, sex: str | None) -> None:
    d = extract_demographics(text)
    assert d.age == (pytest.approx(age, abs=1e-3) if age is not None else None)
    assert d.age_group == group
    assert d.sex == sex
    if (d.age, d.age_group, d.sex) == (None, None, None):
        assert d.evidence is None
    else:
        # the evidence is made of exact spans of the text
        assert d.evidence
        for part in d.evidence.split(" … "):
            assert part in text, (part, text)


def test_evidence_is_the_span() -> None:
    d = extract_demographics("Bullous pemphigoid in an 82-year-old man with tense blisters.")
    assert d == Demographics(82.0, "elderly", "male", "82-year-old man")


def test_conflicting_sexes_give_none() -> None:
    d = extract_demographics("A woman and a boy, both with scabies.")
    assert d.sex is None


@pytest.mark.parametrize(
    ("age", "group"),
    [
        (0.0, "infant"),
        (0.99, "infant"),
        (1.0, "child"),
        (11.9, "child"),
        (12, "adolescent"),
        (17.5, "adolescent"),
        (18, "adult"),
        (64.9, "adult"),
        (65, "elderly"),
        (101, "elderly"),
    ],
)
def test_age_group_thresholds(age: float, group: str) -> None:
    assert age_group_of(age) == group


def test_medpix_histories_sample() -> None:
    """Real histories with structured Age/Sex: on the first 120 cases whose text states them, extraction agrees
    with the structured fields (the benchmark script gives the full numbers)."""
    base = DATA / "captions" / "medpix2_age_sex_gt"
    if not (base / "Case_topic.json").is_file():
        pytest.skip(f"../shared/data not present: {base}")
    cases = json.loads((base / "Case_topic.json").read_text(encoding="utf-8"))[:120]
    gt = {
        d["U_id"]: d["Description"]
        for d in json.loads((base / "Descriptions.json").read_text(encoding="utf-8"))
    }
    sex_ok = sex_n = age_ok = age_n = 0
    for c in cases:
        text = (c.get("Case") or {}).get("History") or ""
        g = gt.get(c["U_id"])
        if not g:
            continue
        d = extract_demographics(text)
        if g["Sex"] in ("male", "female") and d.sex is not None:
            sex_n += 1
            sex_ok += d.sex == g["Sex"]
        if g["Age"].isdigit() and f"{g['Age']} y" in text.replace("-", " ") and d.age is not None:
            age_n += 1
            age_ok += d.age == float(g["Age"])
    assert sex_n >= 80 and age_n >= 50
    assert sex_ok / sex_n >= 0.97
    assert age_ok / age_n >= 0.97
