"""Near-duplicates: re-encoded, resized and cropped copies of a real image are found, distinct images are not
merged, groups keep the largest copy (ties: the smaller id)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from mmskin.curate.dedupe import (
    DedupeThresholds,
    duplicate_groups,
    hamming,
    image_hashes,
    same_picture,
    thumbnail,
)
from mmskin.curate.features import load_image

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def _img(rel: str) -> np.ndarray:
    p = DATA / "images" / rel
    if not p.is_file():
        pytest.skip(f"../shared/data not present: {p}")
    return load_image(p)


def _jpeg(x: np.ndarray, q: int) -> np.ndarray:
    ok, b = cv2.imencode(".jpg", x[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, q])
    return cv2.imdecode(b, cv2.IMREAD_COLOR)[:, :, ::-1]


def test_copies_found_distinct_not_merged() -> None:
    a = _img("clinical/nci_nevus_recognition/DN10B.jpg")
    b = _img("clinical/nci_nevus_recognition/DN10C.jpg")  # the same mole, another photograph
    h, w = a.shape[:2]
    copies = {
        "jpeg30": _jpeg(a, 30),
        "half": cv2.resize(a, (w // 2, h // 2), interpolation=cv2.INTER_AREA),
        "crop": a[int(h * 0.04) : h - int(h * 0.02), int(w * 0.05) : w - int(w * 0.01)],
    }
    t = DedupeThresholds()
    ha, ta = image_hashes(a), thumbnail(a)
    for name, c in copies.items():
        assert same_picture(ha, image_hashes(c), ta, thumbnail(c), t), name
    assert not same_picture(ha, image_hashes(b), ta, thumbnail(b), t)

    imgs = {"r1": a, "r2": copies["jpeg30"], "r3": copies["half"], "r4": b}
    groups = duplicate_groups(
        {k: image_hashes(v) for k, v in imgs.items()},
        {k: v.shape[0] * v.shape[1] for k, v in imgs.items()},
        {k: thumbnail(v) for k, v in imgs.items()},
        {k: v.shape[1] / v.shape[0] for k, v in imgs.items()},
    )
    # r1 and r2 have the same size: the smaller id is kept; r3 (half size) points to it too
    assert groups == {"r2": "r1", "r3": "r1"}


def test_largest_copy_is_kept() -> None:
    h = {"a": (1, 2), "b": (1, 2), "c": (2**64 - 256, 2**64 - 4096)}
    assert duplicate_groups(h, {"a": 100, "b": 400, "c": 50}) == {"a": "b"}


def test_phash_agrees_with_imagehash() -> None:
    imagehash = pytest.importorskip("imagehash", reason="imagehash is a dev dependency (cross-check only)")
    from PIL import Image

    a = _img("dermoscopy/derm7pt_plus/A1l_Aal018.jpg")
    ours = image_hashes(a)[0]
    ref = int(str(imagehash.phash(Image.fromarray(a))), 16)
    assert hamming(ours, ref) <= 8  # different resampling filters, the same DCT hash


def _chart(kind: str, seed: int) -> np.ndarray:
    """A rendered confusion matrix or loss curve, as a figure of an article would print it."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(seed)
    fig, ax = plt.subplots(figsize=(5, 4), dpi=120)
    if kind == "matrix":
        m = np.diag(rng.integers(400, 900, 4)) + rng.integers(0, 60, (4, 4))
        ax.imshow(m, cmap="Blues")
        for (i, j), v in np.ndenumerate(m):
            ax.text(j, i, str(v), ha="center", va="center", fontsize=9)
        ax.set_xlabel("Actual label")
    else:
        x = np.arange(60)
        ax.plot(x, 2.4 * np.exp(-x / 8) + 0.3 + 0.08 * rng.standard_normal(60), "b", label="Training loss")
        ax.plot(x, 2.4 * np.exp(-x / 9) + 0.4, "r", label="Validation loss")
        ax.legend()
        ax.set_xlabel("Number of examples")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return cv2.imdecode(np.frombuffer(buf.getvalue(), np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1].copy()


@pytest.mark.parametrize("kind", ["matrix", "curve"])
def test_look_alike_charts_are_not_duplicates_but_their_copies_are(kind: str) -> None:
    from mmskin.curate.dedupe import detail_image, same_detail

    a, b = _chart(kind, 1), _chart(kind, 2)  # one template, other numbers / another run
    h, w = a.shape[:2]
    copy = _jpeg(
        cv2.resize(a[8:, : w - 6], (int(w * 0.7), int((h - 8) * 0.7)), interpolation=cv2.INTER_AREA), 50
    )
    t = DedupeThresholds()
    ha, hb = image_hashes(a), image_hashes(b)
    assert same_picture(ha, hb, thumbnail(a), thumbnail(b), t)  # the coarse checks alone would merge them
    same, spots = same_detail(detail_image(a), detail_image(b))
    assert not same and spots > 3
    assert same_detail(detail_image(a), detail_image(copy)) == (True, 0)
    imgs = {"a": a, "b": b, "c": copy}
    groups = duplicate_groups(
        {k: image_hashes(v) for k, v in imgs.items()},
        {k: v.shape[0] * v.shape[1] for k, v in imgs.items()},
        {k: thumbnail(v) for k, v in imgs.items()},
        {k: v.shape[1] / v.shape[0] for k, v in imgs.items()},
        t,
        detail=lambda k: detail_image(imgs[k]),
    )
    assert groups == {"c": "a"}


def test_a_copy_with_panel_letters_added_is_the_same_picture() -> None:
    from mmskin.curate.dedupe import detail_image, same_detail

    plain = _img("clinical/nci_label_vs_nolabel_pairs/DN4B_nolabels.jpg")
    lettered = _img("clinical/nci_label_vs_nolabel_pairs/DN4B_labels.jpg")
    same, spots = same_detail(detail_image(plain), detail_image(lettered))
    assert same and 1 <= spots <= 3
