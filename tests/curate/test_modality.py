"""Modality: the shipped model on real labelled images of each class, caption cues (word boundaries, sizes are
not magnifications), fusion (an empty caption leaves the image decision, a strong cue moves it), the two-stage
weights, scale-free features (the same photo at thumbnail and at page size gives close values)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mmskin.curate.features import FEATURE_NAMES, image_features, load_image
from mmskin.curate.modality import CLASSES, ModalityModel, caption_cues, default_model, load_cues

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"

# (file under shared/data/images, class): from different sources where there are several. derm7pt is checked in
# bulk below: the clinical/dermoscopy stage is a small model of scale-free cues that trades fit for transfer to
# unseen sources, and gets about 1 in 5 of derm7pt's own images wrong (NBL_Nbl044 among them)
LABELLED = [
    ("clinical/nci_nevus_recognition/DN11B.jpg", "clinical"),
    ("clinical/nci_nevus_recognition/N2C.jpg", "clinical"),
    ("dermoscopy/ham10000/ISIC_0026319.jpg", "dermoscopy"),
    ("histopathology/cell_seg_matlab_gbm40/GBM40_01.jpg", "pathology"),
    ("histopathology/kriegsmann2022_skin_tissue_panels/panel_A_SCC_squamous_cell_carcinoma.png", "pathology"),
    ("other/openmedlab_dataset_figures/MURA_1.jpg", "other"),
    ("negatives_non_derm/medpix_ct_mr/MPX1938_synpic22899.png", "other"),
]


def _img(rel: str) -> np.ndarray:
    p = DATA / "images" / rel
    if not p.is_file():
        pytest.skip(f"../shared/data not present: {p}")
    return load_image(p)


@pytest.mark.parametrize("rel,cls", LABELLED)
def test_labelled_images(rel: str, cls: str) -> None:
    r = default_model().predict(_img(rel), caption="")
    assert r.modality == cls, (rel, r.image_probs)
    assert 0.0 <= r.score <= 1.0 and abs(sum(r.probs.values()) - 1.0) < 1e-3
    assert r.cues == [] and r.probs == r.image_probs  # no caption: the image alone decides


def test_features_are_finite_and_fixed_length() -> None:
    rng = np.random.default_rng(0)
    for shape in [(40, 30, 3), (300, 500, 3), (1, 1, 3)]:
        x = image_features(rng.integers(0, 256, shape, dtype=np.uint8))
        assert x.shape == (len(FEATURE_NAMES),) and np.isfinite(x).all()
    flat = image_features(np.full((64, 64, 3), 255, np.uint8))  # a blank panel must not crash or give NaN
    assert np.isfinite(flat).all()


@pytest.mark.parametrize(
    "text,expected",
    [
        ("Dermoscopy shows an atypical pigment network.", {"dermoscopy", "dermoscopic structure"}),
        ("Dermatoscopic image of a Spitz naevus.", {"dermoscopy"}),
        ("Superficial spreading melanoma (H&E, ×200).", {"H&E", "magnification"}),
        ("Punch biopsy: section shows acanthosis and parakeratosis. Haematoxylin and eosin.", None),
        ("Axial CT of the chest.", {"CT/MRI", "body site"}),  # the site cue is weak, CT strong
        ("Schematic of the skin layers.", {"chart or drawing"}),
        ("Stable then regressing common mole.", set()),  # 'table' inside 'Stable' is no cue
        ("A plaque measuring 12 x 15 mm on the back.", {"body site"}),  # a size is no magnification
        ("CTCL plaques", {"clinical morphology"}),  # 'CT' inside 'CTCL' is no cue
        ("", set()),
    ],
)
def test_caption_cues(text: str, expected: set[str] | None) -> None:
    got = {c["cue"] for c in caption_cues(text, load_cues())}
    if expected is None:
        assert {"H&E", "histology term", "histological finding", "biopsy"} <= got
    else:
        assert got == expected


def test_fusion_moves_an_uncertain_image_but_not_a_confident_one() -> None:
    m = default_model()
    # logits that make the image model unsure between clinical and dermoscopy
    unsure = np.log(np.array([0.45, 0.40, 0.10, 0.05]))
    r = m.fuse(unsure, "Dermoscopy of the lesion shows a pigment network.")
    assert r.modality == "dermoscopy" and r.image_probs["clinical"] > r.image_probs["dermoscopy"]
    sure = np.log(np.array([0.001, 0.001, 0.997, 0.001]))
    r2 = m.fuse(sure, "Clinical photograph of plaques on the back.")  # the caption cannot outvote the image
    assert r2.modality == "pathology"
    r3 = m.fuse(unsure, "")
    assert r3.modality == "clinical" and r3.probs == r3.image_probs


def test_weights_are_plain_arrays_and_checked(tmp_path: Path) -> None:
    from mmskin.curate.modality import weights_path

    with np.load(weights_path(), allow_pickle=False) as z:  # no pickle anywhere in the file
        w = {k: z[k] for k in z.files}
    assert tuple(w["classes"]) == CLASSES and w["coef"].shape == (3, len(FEATURE_NAMES))
    assert w["s2_coef"].shape == (len(FEATURE_NAMES),)
    # stage 2 uses only its named features
    used = {FEATURE_NAMES[j] for j in np.flatnonzero(w["s2_coef"])}
    assert used and used <= set(str(x) for x in w["s2_features"])
    bad = dict(w, feature_names=np.array(["x"] * len(FEATURE_NAMES)))
    with pytest.raises(ValueError, match="other features"):
        ModalityModel(bad, [])
    with pytest.raises(ValueError, match="coef"):
        ModalityModel(dict(w, coef=w["coef"][:2]), [])


def test_two_stage_probabilities_and_single_stage_weights() -> None:
    """Two-stage logits are log-probabilities that split p(skin photo) between clinical and dermoscopy; a
    single-stage (4-class) weight file is still read."""
    from mmskin.curate.modality import weights_path

    with np.load(weights_path(), allow_pickle=False) as z:
        w = {k: z[k] for k in z.files}
    m = ModalityModel(w, [])
    x = image_features(_img("dermoscopy/derm7pt_plus/NBL_Nbl044.jpg"))
    z = m.image_logits(x)
    p = np.exp(z)
    assert abs(p.sum() - 1.0) < 1e-9
    z1 = w["coef"] @ ((x - w["mean"]) / w["scale"]) + w["intercept"]
    p1 = np.exp(z1 - z1.max()) / np.exp(z1 - z1.max()).sum()
    assert abs(p[0] + p[1] - p1[0]) < 1e-9 and abs(p[2] - p1[1]) < 1e-9 and abs(p[3] - p1[2]) < 1e-9
    # making stage 2 certain of dermoscopy moves all of p(skin photo) there
    sure = dict(w, s2_intercept=np.array([50.0]))
    p2 = np.exp(ModalityModel(sure, []).image_logits(x))
    assert p2[0] < 1e-9 and abs(p2[1] - p1[0]) < 1e-9
    single = {k: v for k, v in w.items() if not k.startswith("s2_")}
    single["coef"] = np.vstack([w["coef"][:1], w["coef"]])
    single["intercept"] = np.concatenate([w["intercept"][:1], w["intercept"]])
    ms = ModalityModel(single, [])
    assert not ms.two_stage and ms.image_logits(x).shape == (4,)


def test_bad_cue_lexicon_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "cues.yaml"
    p.write_text("cues:\n  - {pattern: 'foo', class: xray, weight: 1}\n")
    with pytest.raises(ValueError, match="cues.yaml: cue 0 has class 'xray'"):
        load_cues(p)


def test_scale_free_features_barely_move_with_resolution() -> None:
    """The stage-2 cues are measured at a fixed shorter side: a derm7pt image (384 px) resized to a 200x150-style
    thumbnail or doubled keeps them close, so resolution is not what tells a source apart."""
    import cv2

    from mmskin.curate.features import SCALE_FREE_NAMES

    img = _img("dermoscopy/derm7pt_plus/NBL_Nbl044.jpg")
    base = image_features(img)
    idx = [FEATURE_NAMES.index(n) for n in ("sf_band1", "sf_centre_dark", "sf_skin_frac")]
    assert set(SCALE_FREE_NAMES) <= set(FEATURE_NAMES)
    for size in ((200, 200), (768, 768)):
        other = image_features(cv2.resize(img, size, interpolation=cv2.INTER_AREA))
        assert np.all(np.abs(other[idx] - base[idx]) < 0.03), (size, other[idx], base[idx])


def test_shipped_model_per_class_on_labelled_images() -> None:
    """Every third labelled image (all sources): the shipped model's accuracy per class stays at its measured
    level (full set: clinical 0.94, dermoscopy 0.835, pathology 1.0, other 1.0; this third: 0.88, 0.81, 1, 1)."""
    import csv

    labels = DATA / "images" / "labels.csv"
    if not labels.is_file():
        pytest.skip(f"../shared/data not present: {labels}")
    to_cls = {"histopathology": "pathology", "other (radiology CT/MR)": "other"}
    with open(labels, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))[::3]
    m = default_model()
    ok: dict[str, list[bool]] = {c: [] for c in CLASSES}
    for r in rows:
        cls = to_cls.get(r["modality"], r["modality"])
        z = m.image_logits(image_features(load_image(DATA / r["file"])))
        ok[cls].append(CLASSES[int(np.argmax(z))] == cls)
    acc = {c: float(np.mean(v)) for c, v in ok.items()}
    floors = {"clinical": 0.8, "dermoscopy": 0.75, "pathology": 0.95, "other": 0.95}
    assert all(acc[c] >= floors[c] for c in CLASSES), acc
