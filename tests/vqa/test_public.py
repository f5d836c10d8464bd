"""mmskin convert-public: official metadata layouts, MM-Skin's test CSVs, class-folder datasets; bad rows and paths.

Real material: the 70 HAM10000 images with their real dx/age/sex/site (../shared/data/images/labels.csv, rewritten
in HAM10000_metadata.csv's layout because that file is not in ../shared/data) and MM-Skin's classification CSVs.
"""

from __future__ import annotations

import ast
import csv
import json
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from mmskin.cli import main
from mmskin.stage import StageResult
from mmskin.taxonomy import load_taxonomy
from mmskin.vqa.public import ConvertConfig, ConvertError, run
from mmskin.vqa.samples import split_problems

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
HAM_DIR = SHARED / "images" / "dermoscopy" / "ham10000"
CLS_DIR = SHARED / "mmskin" / "Dataframe" / "test" / "classification"
HAM_CLASS = {
    "akiec": "Actinic Keratoses",
    "bcc": "Basal Cell Carcinoma",
    "bkl": "Benign Keratosis",
    "df": "Dermatofibroma",
    "mel": "Melanoma",
    "nv": "Nevus",
    "vasc": "Vascular lesions",
}


def _need(path: Path) -> None:
    if not path.exists():
        pytest.skip(f"../shared/data not present: {path}")


def _img(path: Path, color=(200, 80, 60)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 6), color).save(path)


def _write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def convert_public(name: str, metadata: Path, images: Path, out: Path, **settings) -> StageResult:
    return run(ConvertConfig(name, metadata, images=images, out=out, **settings))


def _errors(result: StageResult) -> list[str]:
    return [str(p) for p in split_problems(result.problems)[0]]


def _missing(result: StageResult) -> list[str]:
    return [str(p) for p in split_problems(result.problems)[1]]


@pytest.fixture()
def pub_ham_meta(tmp_path) -> tuple[Path, dict[str, str]]:
    """HAM10000_metadata.csv layout with the real labels of the 70 shared images; image_id -> dx."""
    _need(HAM_DIR)
    rows, truth = [], {}
    with open(SHARED / "images" / "labels.csv", newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            if "/ham10000/" in r["file"]:
                image_id = Path(r["file"]).stem
                truth[image_id] = r["label_code"]
                rows.append(
                    [
                        f"HAM_{len(rows):07d}",
                        image_id,
                        r["label_code"],
                        "histo",
                        r["age"],
                        r["sex"],
                        r["site"],
                    ]
                )
    meta = _write_csv(
        tmp_path / "HAM10000_metadata.csv",
        ["lesion_id", "image_id", "dx", "dx_type", "age", "sex", "localization"],
        rows,
    )
    return meta, truth


def test_ham10000_official_metadata_on_real_images(pub_ham_meta, tmp_path, capsys):
    meta, truth = pub_ham_meta
    out = tmp_path / "ham.jsonl"
    rc = main(
        ["convert-public", "HAM10000", str(meta), "--images", str(HAM_DIR), "--out", str(out), "--quiet"]
    )
    assert rc == 0
    assert "70 images, 200 samples" in capsys.readouterr().out
    samples = _jsonl(out)
    types = Counter(s["question_type"] for s in samples)
    # akiec has no benign/malignant answer (premalignant), so 60 of the 70 images get that question
    assert types == {"diagnosis": 70, "diagnosis_choice": 70, "benign_malignant": 60}
    assert len({s["id"] for s in samples}) == len(samples)
    tax = load_taxonomy("ham10000")
    for s in samples:
        assert set(s) >= {"id", "record_id", "image", "question", "answer", "question_type", "generator"}
        assert s["generator"] == "public:ham10000" and s["modality"] == "dermoscopy"
        image_id = Path(s["image"]).stem
        assert (HAM_DIR / s["image"]).is_file() and not Path(s["image"]).is_absolute()
        assert s["label"] == HAM_CLASS[truth[image_id]]
        if s["question_type"] in ("diagnosis", "diagnosis_choice"):
            assert tax.match_class(s["answer"]) == s["label"]
        if s["question_type"] == "diagnosis_choice":
            assert all(name in s["question"] for name in tax.class_names())
        if s["question_type"] == "benign_malignant":
            malignant = truth[image_id] in ("mel", "bcc")
            assert ("malignant" in s["answer"].lower() and "benign" not in s["answer"].lower()) == malignant
    one = next(s for s in samples if s["record_id"] == "ham10000:ISIC_0026319")
    assert one["meta"] == {
        "lesion_id": one["meta"]["lesion_id"],
        "dx_type": "histo",
        "age": 80.0,
        "sex": "male",
        "site": "chest",
    }
    info = json.loads((tmp_path / "ham.jsonl.info.json").read_text())
    assert info["taxonomy"] == "ham10000" and info["seed"] == 0 and info["counts"]["samples"] == 200
    assert info["provenance"]["stage"] == "convert-public" and info["provenance"]["mmskin"]
    assert info["provenance"]["config"]["name"] == "HAM10000" and info["images"] == str(HAM_DIR.resolve())


def test_deterministic_by_seed_and_order_independent(pub_ham_meta, tmp_path):
    meta, _ = pub_ham_meta
    a, b, c = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "c.jsonl"
    convert_public("ham10000", meta, HAM_DIR, a, seed=3)
    # same rows in reverse order: every image gets the same questions (per-image seeding)
    lines = meta.read_text().splitlines()
    rev = tmp_path / "rev.csv"
    rev.write_text("\n".join([lines[0], *reversed(lines[1:])]) + "\n")
    convert_public("ham10000", rev, HAM_DIR, b, seed=3)
    convert_public("ham10000", meta, HAM_DIR, c, seed=4)
    key = lambda s: (s["record_id"], s["question_type"])  # noqa: E731
    sa, sb, sc = sorted(_jsonl(a), key=key), sorted(_jsonl(b), key=key), sorted(_jsonl(c), key=key)
    assert sa == sb
    assert [s["label"] for s in sa] == [s["label"] for s in sc]
    assert [s["question"] for s in sa] != [s["question"] for s in sc]


def test_bad_rows_missing_images_and_escaping_paths(pub_ham_meta, tmp_path, capsys):
    meta, _ = pub_ham_meta
    with open(meta, "a", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["HAM_a", "ISIC_9999999", "nv", "histo", "40", "male", "back"])  # image not there
        w.writerow(["HAM_b", "../../../etc/passwd", "nv", "histo", "40", "male", "back"])  # escapes --images
        w.writerow(["HAM_c", "/etc/hostname", "nv", "histo", "40", "male", "back"])  # absolute
        w.writerow(["HAM_d", "ISIC_0026319", "zzz", "histo", "40", "male", "back"])  # unknown label
        w.writerow(["HAM_e", "ISIC_0024329", "nv", "histo", "40", "male", "back", "extra"])  # too many fields
    out = tmp_path / "o.jsonl"
    rc = main(
        ["convert-public", "ham10000", str(meta), "--images", str(HAM_DIR), "--out", str(out), "--quiet"]
    )
    cap = capsys.readouterr()
    assert rc == 1
    err = cap.err.splitlines()
    assert any("ISIC_9999999" in e and e.startswith("missing:") for e in err)
    assert any("passwd" in e and "escapes" in e for e in err)
    assert any("hostname" in e and "absolute" in e for e in err)
    assert any("more fields than the header" in e and f"{meta}:" in e for e in err)
    assert all("\n" not in e for e in err)
    assert "70 images" in cap.out and "1 missing images, 1 unlabelled" in cap.out and "3 errors" in cap.out
    assert len({s["image"] for s in _jsonl(out)}) == 70
    # only missing images: --allow-missing keeps the exit status 0
    lines = meta.read_text().splitlines()
    meta.write_text("\n".join(lines[:-4]) + "\n")
    rc = main(["convert-public", "ham10000", str(meta), "--images", str(HAM_DIR), "--out", str(out), "--quiet",
               "--allow-missing"])  # fmt: skip
    assert rc == 0


def test_no_image_found_is_fatal_and_writes_nothing(tmp_path, capsys):
    meta = _write_csv(tmp_path / "m.csv", ["image_id", "dx"], [["ISIC_1", "mel"], ["ISIC_2", "nv"]])
    (tmp_path / "imgs").mkdir()
    out = tmp_path / "o.jsonl"
    rc = main(
        ["convert-public", "ham10000", str(meta), "--images", str(tmp_path / "imgs"), "--out", str(out)]
    )
    assert rc == 2 and not out.exists()
    assert "no labelled image found" in capsys.readouterr().err


def test_symlink_out_of_images_root_is_refused(tmp_path):
    outside = tmp_path / "outside"
    _img(outside / "secret.jpg")
    imgs = tmp_path / "imgs"
    _img(imgs / "ok.jpg")
    (imgs / "link.jpg").symlink_to(outside / "secret.jpg")
    meta = _write_csv(tmp_path / "m.csv", ["image_id", "dx"], [["ok", "mel"], ["link", "nv"]])
    rep = convert_public("ham10000", meta, imgs, tmp_path / "o.jsonl")
    assert (
        rep.counts["images"] == 1 and len(_errors(rep)) == 1 and "outside the dataset root" in _errors(rep)[0]
    )


@pytest.mark.parametrize(
    "csv_name,n", [("HAM10000_test.csv", 40), ("DDI_2class_test.csv", 40), ("Dermnet_test.csv", 60)]
)
def test_mmskin_test_csv_format(csv_name, n, tmp_path):
    """MM-Skin's own CSVs (image,atributes,categories): real rows, stand-in image files at their paths."""
    src = CLS_DIR / csv_name
    _need(src)
    with open(src, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))[:: max(1, 1500 // n)][:n]
    sub = tmp_path / csv_name
    _write_csv(
        sub,
        ["image", "atributes", "categories"],
        [[r["image"], r["atributes"], r["categories"]] for r in rows],
    )
    root = tmp_path / "images"
    for r in rows:
        _img(root / r["image"])
    tax = load_taxonomy(csv_name.replace("_test.csv", ""))
    out = tmp_path / "o.jsonl"
    rep = convert_public(tax.name, sub, root, out, seed=1)
    assert rep.counts["images"] == len({r["image"] for r in rows}) and not _errors(rep) and not _missing(rep)
    truth = {r["image"]: ast.literal_eval(r["categories"])[0] for r in rows}
    samples = _jsonl(out)
    assert all(s["label"] == truth[s["image"]] for s in samples)
    assert {s["image"] for s in samples} == set(truth)


def test_mmskin_prompt_is_one_of_the_choice_phrasings(tmp_path):
    """Across images, the choice question is sometimes MM-Skin's zero-shot prompt, verbatim, classes in order."""
    root = tmp_path / "imgs"
    rows = []
    for i in range(60):
        _img(root / f"DDI/{i:06d}.png")
        rows.append([f"DDI/{i:06d}.png", "[]", "['Malignant']" if i % 3 else "['Non-Malignant']"])
    meta = _write_csv(tmp_path / "ddi.csv", ["image", "atributes", "categories"], rows)
    convert_public("DDI_2class", meta, root, tmp_path / "o.jsonl")
    samples = _jsonl(tmp_path / "o.jsonl")
    prompt = load_taxonomy("ddi-2class").format_prompt()
    choice = [s for s in samples if s["question_type"] == "diagnosis_choice"]
    assert len(choice) == 60 and sum(s["question"] == prompt for s in choice) >= 5
    assert {s["question_type"] for s in samples} == {"diagnosis_choice", "benign_malignant"}


def test_categories_cell_is_parsed_never_evaluated(tmp_path):
    root = tmp_path / "imgs"
    _img(root / "a.jpg")
    _img(root / "b.jpg")
    flag = tmp_path / "pwned"
    meta = _write_csv(
        tmp_path / "m.csv",
        ["image", "atributes", "categories"],
        [["a.jpg", "[]", f"__import__('pathlib').Path('{flag}').touch()"], ["b.jpg", "[]", "['Melanoma']"]],
    )
    rep = convert_public("ham10000", meta, root, tmp_path / "o.jsonl")
    assert not flag.exists()
    assert rep.counts["images"] == 1 and len(_errors(rep)) == 1 and "not a list literal" in _errors(rep)[0]


def test_class_folders_patch16_and_dermnet(tmp_path):
    _need(CLS_DIR / "Patch16_2class_test.csv")
    root = tmp_path / "data"
    # the real Patch16 class folder names (from MM-Skin's CSV), two images each
    with open(CLS_DIR / "Patch16_2class_test.csv", newline="", encoding="utf-8") as f:
        folders = sorted({Path(r["image"]).parts[1] for r in csv.DictReader(f) if r["image"]})
    assert len(folders) == 16
    for d in folders:
        for k in range(2):
            _img(root / "Patch16" / d / f"{d}_{k}.jpg")
    rep = convert_public("patch16", root / "Patch16", root, tmp_path / "p16.jsonl")
    assert rep.counts["images"] == 32 and not rep.counts["unlabelled"]
    labels = {Path(s["image"]).parts[1]: s["label"] for s in _jsonl(tmp_path / "p16.jsonl")}
    assert set(labels.values()) == set(load_taxonomy("patch16").class_names())
    assert labels["nontumor_skin_dermis_dermis"] == "nontumor skin dermis"
    rep2 = convert_public("patch16-2class", root / "Patch16", root, tmp_path / "p2.jsonl")
    two = {Path(s["image"]).parts[1]: s["label"] for s in _jsonl(tmp_path / "p2.jsonl")}
    assert rep2.counts["images"] == 32 and all(
        v == ("tumor" if k.startswith("tumor") else "nontumor") for k, v in two.items()
    )

    # Dermnet: Kaggle folder names ("Acne and Rosacea Photos") must give MM-Skin's class names
    with open(CLS_DIR / "Dermnet_test.csv", newline="", encoding="utf-8") as f:
        pairs = {
            Path(r["image"]).parts[2]: ast.literal_eval(r["categories"])[0]
            for r in csv.DictReader(f)
            if r["image"]
        }
    assert len(pairs) == 23
    for d in pairs:
        _img(root / "Dermnet" / "test" / d / "x.jpg")
    convert_public("dermnet", root / "Dermnet" / "test", root, tmp_path / "dn.jsonl")
    got = {Path(s["image"]).parts[2]: s["label"] for s in _jsonl(tmp_path / "dn.jsonl")}
    assert got == pairs


def test_isic2019_onehot_with_joined_metadata(tmp_path):
    root = tmp_path / "ISIC_2019_Training_Input"
    for i in range(4):
        _img(root / f"ISIC_000000{i}.jpg")
    gt = _write_csv(
        tmp_path / "ISIC_2019_Training_GroundTruth.csv",
        ["image", "MEL", "NV", "BCC", "AK", "BKL", "DF", "VASC", "SCC", "UNK"],
        [
            ["ISIC_0000000", 0.0, 1.0, 0, 0, 0, 0, 0, 0, 0],
            ["ISIC_0000001", 1.0, 0.0, 0, 0, 0, 0, 0, 0, 0],
            ["ISIC_0000002", 0, 0, 0, 0, 0, 0, 0, 1.0, 0],
            ["ISIC_0000003", 0, 0, 0, 0, 0, 0, 0, 0, 1.0],  # UNK: not a class
        ],
    )
    md = _write_csv(
        tmp_path / "ISIC_2019_Training_Metadata.csv",
        ["image", "age_approx", "anatom_site_general", "lesion_id", "sex"],
        [["ISIC_0000000", 55, "anterior torso", "", "female"], ["ISIC_0000001", 30, "", "", "male"]],
    )
    rc = main(["convert-public", "ISIC", str(gt), "--join", str(md), "--images", str(root),
               "--out", str(tmp_path / "o.json"), "--format", "llava", "--quiet"])  # fmt: skip
    assert rc == 0
    items = json.loads((tmp_path / "o.json").read_text())
    assert {it["image"] for it in items} == {"ISIC_0000000.jpg", "ISIC_0000001.jpg", "ISIC_0000002.jpg"}
    for it in items:
        conv = it["conversations"]
        assert conv[0]["from"] == "human" and conv[0]["value"].startswith("<image>\n")
        assert conv[1]["from"] == "gpt" and conv[1]["value"]
    answers = {
        it["image"]: it["conversations"][1]["value"]
        for it in items
        if it["question_type"] == "diagnosis_choice"
    }
    assert answers == {
        "ISIC_0000000.jpg": "Nevus",
        "ISIC_0000001.jpg": "Melanoma",
        "ISIC_0000002.jpg": "Squamous Cell Carcinoma",
    }
    info = json.loads((tmp_path / "o.json.info.json").read_text())
    assert info["counts"]["unlabelled"] == {"none of MEL/NV/BCC/AK/BKL/DF/VASC/SCC": 1}


def test_ddi_official_metadata_multiclass_and_two_class(tmp_path):
    root = tmp_path / "ddi"
    rows = [
        [0, "000001.png", 56, "True", "melanoma-in-situ"],
        [1, "000002.png", 12, "True", "basal-cell-carcinoma-nodular"],
        [2, "000003.png", 34, "False", "seborrheic-keratosis-irritated"],
        [3, "000004.png", 56, "False", "blue-nevus"],
    ]
    for r in rows:
        _img(root / r[1])
    meta = _write_csv(
        tmp_path / "ddi_metadata.csv", ["DDI_ID", "DDI_file", "skin_tone", "malignant", "disease"], rows
    )
    convert_public("ddi", meta, root, tmp_path / "m.jsonl")
    convert_public("ddi-2class", meta, root, tmp_path / "b.jsonl")
    multi = {s["image"]: s["label"] for s in _jsonl(tmp_path / "m.jsonl")}
    two = {s["image"]: s["label"] for s in _jsonl(tmp_path / "b.jsonl")}
    assert multi == {
        "000001.png": "Melanoma",
        "000002.png": "Basal Cell Carcinoma",
        "000003.png": "Seborrheic Keratosis",
        "000004.png": "Blue Nevus",
    }
    assert two == {"000001.png": "Malignant", "000002.png": "Malignant", "000003.png": "Non-Malignant",
                   "000004.png": "Non-Malignant"}  # fmt: skip


def test_scin_cases_joined_with_weighted_labels(tmp_path):
    root = tmp_path / "scin"
    for name in ("a1", "a2", "b1", "c1", "d1"):
        _img(root / "dataset" / "images" / f"{name}.png")
    cases = _write_csv(
        tmp_path / "scin_cases.csv",
        [
            "case_id",
            "age_group",
            "sex_at_birth",
            "fitzpatrick_skin_type",
            "image_1_path",
            "image_2_path",
            "image_3_path",
        ],
        [
            ["1", "AGE_18_TO_29", "FEMALE", "FST2", "dataset/images/a1.png", "dataset/images/a2.png", ""],
            ["2", "", "MALE", "", "dataset/images/b1.png", "", ""],
            ["3", "", "", "", "dataset/images/c1.png", "", ""],
            ["4", "", "", "", "dataset/images/d1.png", "", ""],
        ],
    )
    labels = _write_csv(
        tmp_path / "scin_labels.csv",
        ["case_id", "dermatologist_skin_condition_on_label_name", "weighted_skin_condition_label"],
        [
            ["1", "['Eczema']", "{'Eczema': 0.6, 'Allergic Contact Dermatitis': 0.4}"],
            ["2", "['Lichen nitidus']", "{'Lichen nitidus': 1.0}"],  # not in the seed list: kept verbatim
            ["3", "['Psoriasis', 'Tinea']", "{'Psoriasis': 0.5, 'Tinea': 0.5}"],  # tie: unlabelled
            ["4", "['Melanoma']", "{'Melanoma': 0.7, 'Melanocytic Nevus': 0.3}"],
        ],
    )
    rep = convert_public("scin", cases, root, tmp_path / "o.jsonl", join=labels)
    samples = _jsonl(tmp_path / "o.jsonl")
    by_img = {s["image"]: s for s in samples}
    assert rep.counts["images"] == 4 and rep.counts["unlabelled"] == {"tie: Psoriasis / Tinea": 1}
    assert by_img["dataset/images/a2.png"]["label"] == "Eczema"
    assert by_img["dataset/images/a1.png"]["record_id"] == "scin:1/1"
    assert by_img["dataset/images/a2.png"]["meta"]["sex"] == "FEMALE"
    assert by_img["dataset/images/b1.png"]["label"] == "Lichen nitidus"
    choice = [s for s in samples if s["question_type"] == "diagnosis_choice"]
    assert choice and all(s["answer"] in s["question"] for s in choice)
    assert any(s["question_type"] == "benign_malignant" and s["answer"].startswith(("Malignant", "Yes", "A malignant"))
               for s in samples)  # fmt: skip


def test_exclude_mmskin_test_images(pub_ham_meta, tmp_path):
    meta, truth = pub_ham_meta
    some = sorted(truth)[:5]
    test_csv = _write_csv(tmp_path / "t.csv", ["image", "atributes", "categories"],
                          [[f"HAM10000/x/{s}.jpg", "[]", "['Nevus']"] for s in some])  # fmt: skip
    rep = convert_public("ham10000", meta, HAM_DIR, tmp_path / "o.jsonl", exclude=[test_csv])
    assert rep.counts["excluded"] == 5 and rep.counts["images"] == 65
    assert not {Path(s["image"]).stem for s in _jsonl(tmp_path / "o.jsonl")} & set(some)


def test_unknown_layout_and_taxonomy_errors(tmp_path, capsys):
    meta = _write_csv(tmp_path / "m.csv", ["foo", "bar"], [["1", "2"]])
    (tmp_path / "imgs").mkdir()
    with pytest.raises(ConvertError, match="match no layout"):
        convert_public("ham10000", meta, tmp_path / "imgs", tmp_path / "o.jsonl")
    rc = main(
        [
            "convert-public",
            "nosuchset",
            str(meta),
            "--images",
            str(tmp_path / "imgs"),
            "--out",
            str(tmp_path / "o"),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "unknown taxonomy" in err and len(err.strip().splitlines()) == 1


def test_max_choices_caps_the_class_list(tmp_path):
    root = tmp_path / "imgs"
    _img(root / "x.jpg")
    meta = _write_csv(
        tmp_path / "m.csv", ["DDI_file", "disease", "malignant"], [["x.jpg", "lipoma", "False"]]
    )
    convert_public("ddi", meta, root, tmp_path / "o.jsonl", max_choices=5)
    (choice,) = [s for s in _jsonl(tmp_path / "o.jsonl") if s["question_type"] == "diagnosis_choice"]
    tax = load_taxonomy("ddi")
    named = [c for c in tax.class_names() if c in choice["question"]]
    assert "Lipoma" in named and 5 <= len(named) < 8  # 5 options (a name may also occur inside another one)


def test_verify_images_and_empty_categories(tmp_path):
    root = tmp_path / "imgs"
    _img(root / "good.jpg")
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    _img(root / "nolabel.jpg")
    meta = _write_csv(
        tmp_path / "m.csv",
        ["image", "atributes", "categories"],
        [["good.jpg", "[]", "['Nevus']"], ["broken.jpg", "[]", "['Melanoma']"], ["nolabel.jpg", "[]", "[]"]],
    )
    rep = convert_public("ham10000", meta, root, tmp_path / "a.jsonl")
    assert (
        rep.counts["images"] == 2 and rep.counts["unlabelled"] == {"[]": 1} and not _errors(rep)
    )  # MSKCC_test.csv has such rows
    out = tmp_path / "b.jsonl"
    rc = main(["convert-public", "ham10000", str(meta), "--images", str(root), "--out", str(out), "--quiet",
               "--verify-images", "--exclude", str(_write_csv(tmp_path / "none.csv", ["image"], []))])  # fmt: skip
    assert rc == 1
    assert {s["image"] for s in _jsonl(out)} == {"good.jpg"}
