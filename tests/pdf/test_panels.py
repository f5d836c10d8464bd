"""Cutting one raster into k bands between its pictures when the strict k-way cut fails (IEEE Access Fig. 19 on
a scan: two charts stacked, their tick labels, axis titles and "(a)" outside the plot frames)."""

from __future__ import annotations

import numpy as np

from mmskin.pdf.panels import leaf_bands


def _panel(img: np.ndarray, top: int, rng: np.random.Generator, label_gap: int = 6) -> int:
    """A textured picture 300 x 180 and small labels under it (too small to be pieces of their own); returns the
    bottom of the labels."""
    img[top : top + 180, 60:360] = rng.integers(40, 200, (180, 300, 3))
    y = top + 180 + label_gap
    for x in range(60, 360, 60):
        img[y : y + 6, x : x + 18] = 0  # tick labels
    img[y + 12 : y + 20, 170:210] = 0  # axis title
    img[y + 12 : y + 20, 5:20] = 0  # "(a)"
    return y + 20


def test_two_stacked_pictures_are_cut_in_the_wide_gutter_with_their_labels() -> None:
    rng = np.random.default_rng(0)
    img = np.full((520, 400, 3), 255, np.uint8)
    end = _panel(img, 10, rng)  # labels end at 216
    _panel(img, 260, rng)  # a 44 px gutter, against 6 px between a picture and its labels
    cells = leaf_bands(img, 2)
    assert cells is not None
    (x0, y0, x1, y1), (a0, b0, a1, b1) = cells
    assert (x0, y0, x1, a0, a1, b1) == (0, 0, 400, 0, 400, 520)
    assert end <= y1 == b0 <= 260  # the first band keeps the labels; the cut is in the gutter


def test_no_cut_when_the_gutter_is_no_wider_than_the_gaps_by_the_labels() -> None:
    rng = np.random.default_rng(1)
    img = np.full((470, 400, 3), 255, np.uint8)
    end = _panel(img, 10, rng, label_gap=8)
    _panel(img, end + 9, rng, label_gap=8)  # 9 px between the first labels and the second picture
    assert leaf_bands(img, 2) is None
    assert leaf_bands(np.full((100, 100, 3), 255, np.uint8), 2) is None  # no pieces at all
