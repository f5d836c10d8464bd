"""Figure context: panels of one figure inform each other's modality; clear evidence of a panel's own wins;
records without a figure, single-panel figures and unreadable images are left alone."""

from __future__ import annotations

import numpy as np

from mmskin.curate.modality import CLASSES, ModalityModel, apply_figure_context, default_model


def _image(probs: dict[str, float], model: ModalityModel) -> dict:
    p = np.array([probs[c] for c in CLASSES])
    return {"modality": model.fuse(np.log(p), "").__dict__}


def _rec(label: str | None, page: int = 1, caption: str = "") -> dict:
    return {
        "figure_label": label,
        "source": {"sha256": "x", "file": "a.pdf", "page": page},
        "caption": caption,
    }


def test_an_unsure_panel_follows_its_figure_a_clear_one_keeps_its_class() -> None:
    m = default_model()
    sure_clin = {"clinical": 0.9, "dermoscopy": 0.06, "pathology": 0.02, "other": 0.02}
    unsure = {"clinical": 0.3, "dermoscopy": 0.1, "pathology": 0.05, "other": 0.55}
    sure_derm = {"clinical": 0.03, "dermoscopy": 0.95, "pathology": 0.01, "other": 0.01}
    recs = [_rec("3"), _rec("3"), _rec("3"), _rec("3"), _rec(None), _rec("4", page=2)]
    images = [_image(p, m) for p in (sure_clin, sure_clin, unsure, sure_derm, unsure, unsure)]
    images.append({"error": "cannot decode", "modality": _image(unsure, m)["modality"]})
    recs.append(_rec("3"))
    before = [dict(i["modality"]) for i in images]
    apply_figure_context(m, recs, images, weight=0.5)
    assert before[2]["modality"] == "other" and images[2]["modality"]["modality"] == "clinical"
    assert images[3]["modality"]["modality"] == "dermoscopy"  # a dermoscopy panel beside clinical photos
    assert images[2]["modality"]["image_probs"] == before[2]["image_probs"]  # the image's own view is kept
    assert images[2]["modality"]["figure"]["clinical"] > 0.5
    for i in (4, 5, 6):  # no figure, a figure of one record, an unreadable image
        assert images[i]["modality"] == before[i]
    images2 = [_image(p, m) for p in (sure_clin, unsure)]
    apply_figure_context(m, recs[:2], images2, weight=0.0)
    assert "figure" not in images2[1]["modality"]
