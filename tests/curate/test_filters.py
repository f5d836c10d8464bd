"""Image filters on real images: printed letters on the NCI label/no-label pairs, ruler and ink circle on an
NCI photo, nothing on clean dermoscopy / histology; faces found in a portrait and not in a lesion close-up."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mmskin.curate.features import load_image
from mmskin.curate.filters import annotation_cues, detect_faces

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def _img(rel: str) -> np.ndarray:
    p = DATA / "images" / rel
    if not p.is_file():
        pytest.skip(f"../shared/data not present: {p}")
    return load_image(p)


@pytest.mark.parametrize("pair", ["DN4B", "DN4C"])
def test_printed_letters_on_the_labelled_copy_only(pair: str) -> None:
    labelled = annotation_cues(_img(f"clinical/nci_label_vs_nolabel_pairs/{pair}_labels.jpg"))
    plain = annotation_cues(_img(f"clinical/nci_label_vs_nolabel_pairs/{pair}_nolabels.jpg"))
    assert "overlay" in labelled
    assert "overlay" not in plain


def test_ruler_and_ink_circle() -> None:
    c = annotation_cues(_img("clinical/nci_nevus_recognition/DN4C.jpg"))
    assert "ruler" in c and "marker_circle" in c


@pytest.mark.parametrize(
    "rel",
    [
        "dermoscopy/ham10000/ISIC_0024329.jpg",
        "dermoscopy/derm7pt_plus/A1l_Aal018.jpg",
        "histopathology/cell_seg_matlab_gbm40/GBM40_05.jpg",
        "clinical/openmedlab_dataset_samples/PED-UFES-20_4.jpg",
    ],
)
def test_clean_images_are_not_annotated(rel: str) -> None:
    assert annotation_cues(_img(rel)) == {}


def test_faces() -> None:
    skdata = pytest.importorskip(
        "skimage.data", reason="scikit-image (dev dependency) ships the test portrait"
    )
    portrait = np.array(skdata.astronaut())
    assert len(detect_faces(portrait)) >= 1
    # the same portrait small in a corner of a large page still counts (size is relative to the picture)
    page = np.full((800, 800, 3), 230, np.uint8)
    page[:256, :256] = portrait[::2, ::2]
    assert len(detect_faces(page, min_rel=0.02)) >= 1
    assert detect_faces(_img("clinical/nci_nevus_recognition/DN1C.jpg")) == []
    assert detect_faces(_img("clinical/nci_nevus_recognition/M8E.jpg")) == []  # an inked lesion, not a face
    assert detect_faces(_img("dermoscopy/derm7pt_plus/A1l_Aal018.jpg")) == []
