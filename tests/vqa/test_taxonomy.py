"""Taxonomies: every bundled YAML loads, MM-Skin's test CSVs' labels are exactly the canonical class names, and
match_class resolves names, synonyms, codes and free text (longest match, ties -> None)."""

from __future__ import annotations

import ast
import csv
from pathlib import Path

import pytest

from mmskin.taxonomy import TaxonomyError, list_taxonomies, load_taxonomy, normalize

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
CLS_DIR = SHARED / "mmskin" / "Dataframe" / "test" / "classification"

EXPECTED_COUNTS = {
    "ham10000": 7,
    "isic2019": 8,
    "bcn20000": 12,
    "ddi": 71,
    "ddi-2class": 2,
    "fitzpatrick17k-3class": 3,
    "pad-ufes-20": 6,
    "dermnet": 23,
    "hiba": 10,
    "hiba-2class": 2,
    "mskcc": 21,
    "patch16": 16,
    "patch16-2class": 2,
    "scin": 39,
}


def test_all_bundled_taxonomies_load_with_expected_class_counts():
    assert sorted(list_taxonomies()) == sorted(EXPECTED_COUNTS)
    for name, n in EXPECTED_COUNTS.items():
        tax = load_taxonomy(name)
        assert tax.name == name
        assert len(tax.classes) == n, name
        assert tax.modality in ("clinical", "dermoscopy", "pathology")
        assert "{classes}" in tax.prompt and tax.source
        # every class name resolves to itself (no synonym of another class shadows it)
        for c in tax.classes:
            assert tax.match_class(c.name) == c.name, (name, c.name)
            for s in c.synonyms:
                assert tax.match_class(s) == c.name, (name, s)


@pytest.mark.parametrize(
    "alias,name",
    [
        ("HAM10000", "ham10000"),
        ("ISIC", "isic2019"),
        ("DDI_2class", "ddi-2class"),
        ("Fitzpatrick", "fitzpatrick17k-3class"),
        ("PAD", "pad-ufes-20"),
        ("patch16_2CLASS", "patch16-2class"),
        ("hiba 2class", "hiba-2class"),
    ],
)
def test_names_and_mmskin_experiment_aliases_are_case_insensitive(alias, name):
    assert load_taxonomy(alias).name == name


def test_mmskin_prompt_is_verbatim():
    tax = load_taxonomy("ddi-2class")
    assert tax.format_prompt() == (
        "This is a skin lesion image. From the following categories: Non-Malignant, Malignant, "
        "which one is the diagnosis?"
    )


def test_mmskin_test_csv_labels_are_exactly_the_canonical_names():
    if not CLS_DIR.is_dir():
        pytest.skip("../shared/data not present: MM-Skin classification CSVs")
    by_csv = {t.mmskin_csv: t for t in map(load_taxonomy, list_taxonomies()) if t.mmskin_csv}
    seen = 0
    for f in sorted(CLS_DIR.glob("*_test.csv")):
        tax = by_csv[f.name]
        labels: set[str] = set()
        with open(f, newline="", encoding="utf-8") as fh:
            for i, row in enumerate(csv.DictReader(fh)):
                labels.update(ast.literal_eval(row["categories"]))
                if i > 3000:
                    break
        assert labels <= set(tax.class_names()), (f.name, labels - set(tax.class_names()))
        seen += 1
    assert seen == 9


@pytest.mark.parametrize(
    "tax,text,expected",
    [
        ("ham10000", "Dermoscopy shows a melanocytic nevus.", "Nevus"),
        ("ham10000", "mel", "Melanoma"),  # code, whole text only
        ("ham10000", "ACTINIC KERATOSIS", "Actinic Keratoses"),  # case + plural
        ("ham10000", "benign keratosis-like lesions", "Benign Keratosis"),
        ("ham10000", "melanoma or nevus", None),  # two classes, same length -> ambiguous
        ("ham10000", "The answer is: malignant melanoma.", "Melanoma"),
        ("ham10000", "no idea", None),
        ("ham10000", "", None),
        (
            "ham10000",
            "a melanocytic lesion",
            None,
        ),  # tokens, not substrings: 'mel' is not matched inside words
        ("ddi", "basal-cell-carcinoma-nodular", "Basal Cell Carcinoma"),
        ("ddi", "blue-nevus", "Blue Nevus"),  # longer 'blue nevus' beats synonym 'nevus'
        ("ddi-2class", "non-malignant", "Non-Malignant"),  # 'non malignant' beats 'malignant'
        ("ddi-2class", "True", "Malignant"),
        ("patch16-2class", "nontumor_skin_dermis_dermis", "nontumor"),
        ("patch16-2class", "tumor_skin_epithelial_bcc", "tumor"),
        ("patch16", "tumor_skin_naevus_naevus", "tumor skin naevus"),
        (
            "dermnet",
            "Hair Loss Photos Alopecia and other Hair Diseases",
            "Hair loss  alopecia and other hair diseases",
        ),
        ("bcn20000", "Melanoma metastases", "melanoma metastasis"),
        ("mskcc", "café-au-lait macule", "cafe-au-lait macule"),
    ],
)
def test_match_class(tax, text, expected):
    assert load_taxonomy(tax).match_class(text) == expected


def test_normalize_folds_case_punctuation_whitespace_and_plurals():
    assert normalize("  Actinic   KERATOSES! ") == "actinic keratosis"
    assert normalize("Nevi") == normalize("nevus")
    assert normalize("psoriasis") == "psoriasis"  # singular words ending in -is/-us/-ss stay
    assert normalize("Vascular lesions") == normalize("vascular lesion")


def test_user_yaml_and_errors(tmp_path):
    good = tmp_path / "mine.yaml"
    good.write_text(
        "name: mine\nmodality: clinical\nprompt: 'Pick one of {classes}.'\n"
        "classes:\n  - {name: Wart, code: w, synonyms: [verruca], malignant: false}\n  - Mole\n",
        encoding="utf-8",
    )
    tax = load_taxonomy(str(good))
    assert tax.class_names() == ["Wart", "Mole"] and tax.match_class("verrucae") == "Wart"
    assert tax.format_prompt() == "Pick one of Wart, Mole."

    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nclasses: [a, b\n", encoding="utf-8")
    with pytest.raises(TaxonomyError) as e:
        load_taxonomy(str(bad))
    assert str(bad) in str(e.value) and "\n" not in str(e.value)

    clash = tmp_path / "clash.yaml"
    clash.write_text(
        "name: c\nmodality: clinical\nprompt: '{classes}'\nclasses:\n"
        "  - {name: A, synonyms: [shared]}\n  - {name: B, synonyms: [Shared]}\n",
        encoding="utf-8",
    )
    with pytest.raises(TaxonomyError, match="several classes"):
        load_taxonomy(str(clash))

    for text, msg in [
        ("- just a list\n", "not a YAML mapping"),
        ("name: x\nmodality: radiology\nprompt: '{classes}'\nclasses: [a]\n", "modality"),
        ("name: x\nmodality: clinical\nprompt: 'no placeholder'\nclasses: [a]\n", "placeholder"),
        (
            "name: x\nmodality: clinical\nprompt: '{classes}'\nclasses: [{name: a, malignant: maybe}]\n",
            "malignant",
        ),
    ]:
        p = tmp_path / "e.yaml"
        p.write_text(text, encoding="utf-8")
        with pytest.raises(TaxonomyError, match=msg):
            load_taxonomy(str(p))
    with pytest.raises(TaxonomyError, match="no such taxonomy file"):
        load_taxonomy(str(tmp_path / "missing.yaml"))
    with pytest.raises(TaxonomyError, match="did you mean"):
        load_taxonomy("ham1000")


@pytest.mark.parametrize(
    "answer, expected",
    [
        ("The diagnosis is a melanocytic nevus.", "Nevus"),  # a synonym; "nevus" inside it counts once
        ("Melanoma or basal cell carcinoma.", None),  # two classes: unparsed, not the longer one
        ("Actinic Keratoses, Basal Cell Carcinoma, Benign Keratosis, Dermatofibroma, Melanoma", None),
        ("melanoma", "Melanoma"),
    ],
)
def test_match_class_several_classes_is_unparsed(answer, expected) -> None:
    assert load_taxonomy("ham10000").match_class(answer) == expected
