"""Hand-made image features for the modality classifier (numpy + OpenCV only, no scikit-image at runtime).

Colour (Lab/HSV moments and histograms, the H&E stain signature by colour deconvolution), texture (uniform LBP at
two scales, GLCM statistics), edges and straight lines, flat-background and palette size (charts, drawings,
tables), dermoscopy's dark circular vignette, centred lesion and hair (black-hat), greyscale (radiology).
The vector is ``FEATURE_GROUPS`` in order: each group names its entries beside the function that measures them,
and all groups read one shared ``WorkImage`` (the resized image and its colour views). The order and the values
are the contract of the shipped modality weights: change them only together with ``scripts/train_modality.py``.

    >>> from mmskin.curate.features import load_image, image_features
    >>> x = image_features(load_image("images/ab/abcd.png"))   # float32 vector, names in FEATURE_NAMES
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

WORK_SIDE = 128  # features are computed on the image resized so its longer side is this many pixels
TINY_SIDE = 8  # px: an image whose shorter side is under this is too small to judge (an error, not a record)


class UnreadableImage(Exception):
    """An image file that cannot be decoded; the message is the reason."""


def _cv2():
    import cv2

    cv2.setNumThreads(1)  # the pipeline parallelises over processes; threads would oversubscribe 2 cores
    return cv2


def load_image(path: str | os.PathLike[str]) -> np.ndarray:
    """RGB uint8 array (H, W, 3) of an image file; alpha is composited on white, 16-bit and grey are converted.

    Raises UnreadableImage with a short reason for missing, empty, undecodable or tiny (shorter side under
    TINY_SIDE px) files."""
    cv2 = _cv2()
    p = Path(path)
    if not p.is_file():
        raise UnreadableImage("file not found")
    data = np.fromfile(p, dtype=np.uint8)
    if data.size == 0:
        raise UnreadableImage("empty file")
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if img is None:
        img = _load_with_pil(p)
        if img is None:
            raise UnreadableImage("cannot decode image data")
        return _not_tiny(img)
    if img.dtype == np.uint16:
        img = (img / 257.0).round().astype(np.uint8)
    elif img.dtype != np.uint8:
        img = cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    if img.ndim == 2:
        return _not_tiny(np.ascontiguousarray(np.repeat(img[:, :, None], 3, axis=2)))
    if img.shape[2] == 4:
        bgr = img[:, :, :3].astype(np.float32)
        a = img[:, :, 3:4].astype(np.float32) / 255.0
        img = (bgr * a + 255.0 * (1 - a)).round().astype(np.uint8)
    return _not_tiny(np.ascontiguousarray(img[:, :, ::-1]))


def _not_tiny(img: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    if min(h, w) < TINY_SIDE:
        raise UnreadableImage(f"image too small to judge ({w}x{h} px)")
    return img


def _load_with_pil(p: Path) -> np.ndarray | None:
    # OpenCV lacks some codecs PDFs use (JPEG 2000 variants, CMYK TIFF); Pillow is a dependency anyway
    try:
        from PIL import Image

        with Image.open(p) as im:
            im.load()
            if im.mode in ("RGBA", "LA", "P"):
                im = im.convert("RGBA")
                bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
                im = Image.alpha_composite(bg, im)
            return np.array(im.convert("RGB"))
    except Exception:
        return None


def resize_max(img: np.ndarray, side: int) -> np.ndarray:
    """Resize so the longer side is ``side`` (area interpolation when shrinking; never enlarges twice)."""
    cv2 = _cv2()
    h, w = img.shape[:2]
    s = side / max(h, w)
    if abs(s - 1.0) < 1e-6:
        return img
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    return cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=interp)


# ---------------------------------------------------------------- texture primitives (numpy versions of skimage's)


def lbp_uniform_hist(gray: np.ndarray) -> np.ndarray:
    """Rotation-invariant uniform LBP (P=8, R=1, square neighbourhood): 10-bin normalised histogram."""
    g = gray.astype(np.int16)
    c = g[1:-1, 1:-1]
    h, w = g.shape
    # neighbours in circular order, so transitions count the uniformity
    offs = [(-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1)]
    bits = np.stack([(g[1 + dy : h - 1 + dy, 1 + dx : w - 1 + dx] >= c) for dy, dx in offs]).astype(np.uint8)
    ones = bits.sum(0)
    trans = (bits != np.roll(bits, 1, axis=0)).sum(0)
    code = np.where(trans <= 2, ones, 9)
    hist = np.bincount(code.ravel(), minlength=10).astype(np.float64)
    return hist / max(1.0, hist.sum())


def glcm_stats(gray: np.ndarray, distance: int, levels: int = 16) -> np.ndarray:
    """Symmetric, normalised grey-level co-occurrence over 4 angles at one distance: contrast, dissimilarity,
    homogeneity, energy, correlation, entropy (averaged over the angles)."""
    q = (gray.astype(np.int32) * levels // 256).clip(0, levels - 1)
    h, w = q.shape
    d = distance
    m = np.zeros((levels, levels), np.float64)
    for dy, dx in ((0, d), (d, 0), (d, d), (d, -d)):
        y0, y1 = max(0, -dy), h - max(0, dy)
        x0, x1 = max(0, -dx), w - max(0, dx)
        a = q[y0:y1, x0:x1]
        b = q[y0 + dy : y1 + dy, x0 + dx : x1 + dx]
        m += np.bincount((a * levels + b).ravel(), minlength=levels * levels).reshape(levels, levels)
    m = m + m.T
    m /= max(1.0, m.sum())
    i, j = np.indices((levels, levels))
    contrast = (m * (i - j) ** 2).sum()
    dissim = (m * np.abs(i - j)).sum()
    homog = (m / (1.0 + (i - j) ** 2)).sum()
    energy = np.sqrt((m**2).sum())
    mu = (m * i).sum()
    var = (m * (i - mu) ** 2).sum()
    corr = ((m * (i - mu) * (j - mu)).sum() / var) if var > 1e-9 else 1.0
    nz = m[m > 0]
    entropy = -(nz * np.log2(nz)).sum()
    return np.array([contrast / levels**2, dissim / levels, homog, energy, corr, entropy / 8.0])


# ---------------------------------------------------------------- the feature vector: named groups, in order

# Ruifrok & Johnston's H&E(+DAB) optical-density vectors, rows normalised
_HED = np.array([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]])
_HED = _HED / np.linalg.norm(_HED, axis=1, keepdims=True)
_HED_INV = np.linalg.inv(_HED)


@dataclass(frozen=True)
class WorkImage:
    """An image resized to ``WORK_SIDE`` and the colour views several feature groups read (each made once)."""

    rgb: np.ndarray  # the image as given (the scale-free group resizes it its own way)
    img: np.ndarray  # RGB, longer side WORK_SIDE
    L: np.ndarray  # CIE Lab channels of img
    A: np.ndarray
    B: np.ndarray
    chroma: np.ndarray
    hsv: np.ndarray
    gray: np.ndarray
    edges: np.ndarray  # Canny edges of gray

    @classmethod
    def of(cls, rgb: np.ndarray) -> WorkImage:
        cv2 = _cv2()
        img = resize_max(rgb, WORK_SIDE)
        lab = cv2.cvtColor(img.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
        L, A, B = lab[..., 0], lab[..., 1], lab[..., 2]
        gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
        hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)
        return cls(rgb, img, L, A, B, np.hypot(A, B), hsv, gray, cv2.Canny(gray, 60, 150))

    @property
    def h(self) -> int:
        return self.img.shape[0]

    @property
    def w(self) -> int:
        return self.img.shape[1]


def lightness_chroma(v: WorkImage) -> list[float]:
    """Greyness (radiology, drawings), white and black shares, Lab moments and the lightness distribution."""
    L, A, B, chroma = v.L, v.A, v.B, v.chroma
    f = [
        (chroma < 4).mean(),
        (chroma < 12).mean(),
        ((L > 92) & (chroma < 8)).mean(),
        (L < 8).mean(),
        chroma.mean() / 50,
        chroma.std() / 50,
    ]
    for ch in (L, A, B):
        f += [ch.mean() / 100, ch.std() / 50]
    lstd = L.std()
    f += [float(((L - L.mean()) ** 3).mean() / (lstd**3 + 1e-6)) / 5, np.percentile(L, 5) / 100]
    f += [np.percentile(L, 95) / 100]
    return f


def hue_histogram(v: WorkImage) -> list[float]:
    """Hue of chromatic pixels (Lab hue angle, 12 bins of 30°), weighted by chroma."""
    ang = (np.degrees(np.arctan2(v.B, v.A)) + 360) % 360
    wgt = np.where(v.chroma > 8, v.chroma, 0).ravel()
    hh = np.bincount((ang.ravel() // 30).astype(int).clip(0, 11), weights=wgt, minlength=12)
    return list(hh / max(1e-6, wgt.sum()))


def saturation_value_histograms(v: WorkImage) -> list[float]:
    """HSV saturation (6 bins) and value (8 bins) shares."""
    n = v.h * v.w
    s_hist = np.bincount((v.hsv[..., 1].ravel().astype(int) * 6 // 256), minlength=6) / n
    v_hist = np.bincount((v.hsv[..., 2].ravel().astype(int) * 8 // 256), minlength=8) / n
    return list(s_hist) + list(v_hist)


def stain_features(v: WorkImage) -> list[float]:
    """H&E: optical density projected on the stain vectors (colour deconvolution), purple and pink shares."""
    od = -np.log((v.img.reshape(-1, 3).astype(np.float32) + 1.0) / 256.0)
    conc = od @ _HED_INV.astype(np.float32)
    tissue = od.sum(1) > 0.3
    Hc = conc[:, 0][tissue] if tissue.any() else np.zeros(1, np.float32)
    Ec = conc[:, 1][tissue] if tissue.any() else np.zeros(1, np.float32)
    f = [Hc.mean(), Hc.std(), np.percentile(Hc, 90), Ec.mean(), Ec.std()]
    f += [float(np.log((max(Hc.mean(), 0.0) + 0.05) / (max(Ec.mean(), 0.0) + 0.05)))]
    A, B = v.A, v.B
    return f + [((A > 12) & (B < -8)).mean(), ((A > 15) & (B > -8) & (B < 8)).mean()]


def palette_features(v: WorkImage) -> list[float]:
    """Palette size: few distinct colours is a drawing, chart or table."""
    qc = (v.img >> 4).astype(np.int32)
    key = (qc[..., 0] << 8) | (qc[..., 1] << 4) | qc[..., 2]
    cnt = np.sort(np.bincount(key.ravel(), minlength=4096))[::-1]
    n = v.h * v.w
    return [np.log1p((cnt > 0).sum()) / np.log(4096), cnt[0] / n, cnt[:8].sum() / n]


def texture_features(v: WorkImage) -> list[float]:
    """Uniform LBP at two scales and GLCM statistics at distances 1 and 4."""
    cv2 = _cv2()
    small = resize_max(v.img, WORK_SIDE // 2)
    f = list(lbp_uniform_hist(v.gray)) + list(lbp_uniform_hist(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)))
    return f + list(glcm_stats(v.gray, 1)) + list(glcm_stats(v.gray, 4))


def edge_features(v: WorkImage) -> list[float]:
    """Gradient strength, sharpness (Laplacian), edge density and high-frequency share."""
    cv2 = _cv2()
    gray = v.gray
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
    mag = np.hypot(gx, gy)
    lap = cv2.Laplacian(gray, cv2.CV_32F)
    blur = cv2.GaussianBlur(gray.astype(np.float32), (0, 0), 2.0)
    hf = np.abs(gray.astype(np.float32) - blur).mean() / (gray.std() + 1.0)
    f = [mag.mean() / 100, mag.std() / 100, (mag > 100).mean(), np.log1p(lap.var()) / 10]
    return f + [(v.edges > 0).mean(), hf]


def layout_features(v: WorkImage) -> list[float]:
    """Flat 8x8 blocks (backgrounds of charts, tables, drawings, radiology), axis-aligned and straight lines,
    pure saturated colour."""
    cv2 = _cv2()
    gray, edges, h, w = v.gray, v.edges, v.h, v.w
    bh, bw = h // 8 * 8, w // 8 * 8
    if bh >= 8 and bw >= 8:
        blk = gray[:bh, :bw].reshape(bh // 8, 8, bw // 8, 8).astype(np.float32)
        bstd = blk.std(axis=(1, 3))
        bmean = blk.mean(axis=(1, 3))
        flat = bstd < 1.5
        f = [flat.mean(), (flat & (bmean > 225)).mean(), (flat & (bmean < 30)).mean()]
    else:
        f = [0.0, 0.0, 0.0]
    horiz = cv2.morphologyEx(
        edges, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (max(8, w // 8), 1))
    )
    vert = cv2.morphologyEx(
        edges, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (1, max(8, h // 8)))
    )
    ne = max(1, int((edges > 0).sum()))
    f += [float(((horiz > 0) | (vert > 0)).sum()) / ne]
    lines = cv2.HoughLinesP(edges, 1, np.pi / 180, threshold=40, minLineLength=max(h, w) // 5, maxLineGap=2)
    f += [np.log1p(0 if lines is None else len(lines)) / 4]
    return f + [((v.hsv[..., 1] > 200) & (v.hsv[..., 2] > 150)).mean()]


def vignette_features(v: WorkImage) -> list[float]:
    """Dermoscopy's field of view: dark corners, a dark circle around a lit disc, lightness by ring, centre
    against border."""
    L, A, B, h, w = v.L, v.A, v.B, v.h, v.w
    cs = max(2, min(h, w) // 10)
    corners = [L[:cs, :cs], L[:cs, -cs:], L[-cs:, :cs], L[-cs:, -cs:]]
    cm = np.array([c.mean() for c in corners])
    f = [cm.mean() / 100, cm.min() / 100, float((cm < 15).sum()) / 4]
    yy, xx = np.mgrid[0:h, 0:w]
    r = np.hypot((yy - (h - 1) / 2) / (h / 2), (xx - (w - 1) / 2) / (w / 2))
    centre = r < 0.35
    border = (r > 0.7) & (r < 1.0)
    f += [(L[centre].mean() - L[border].mean()) / 50]
    dc = np.array([L[centre].mean() - L[border].mean(), A[centre].mean() - A[border].mean()])
    f += [float(np.hypot(dc[1], B[centre].mean() - B[border].mean()) / 30)]
    lm = L.mean() + 1e-3
    for lo, hi in ((0, 0.2), (0.2, 0.4), (0.4, 0.6), (0.6, 0.8), (0.8, 1.0), (1.0, 9)):
        ring = (r >= lo) & (r < hi)
        f += [float(L[ring].mean() / lm) if ring.any() else 1.0]
    dark = L < 15
    outside, inside = r > 1.0, r < 0.9
    return f + [dark[outside].mean() if outside.any() else 0.0, dark[inside].mean()]


def hair_features(v: WorkImage) -> list[float]:
    """Hair (thin dark lines by black-hat): its share of the picture and the number of long strands."""
    cv2 = _cv2()
    h, w = v.h, v.w
    bhat = cv2.morphologyEx(v.gray, cv2.MORPH_BLACKHAT, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5)))
    hair = (bhat > 18).astype(np.uint8)
    n, _, stats, _ = cv2.connectedComponentsWithStats(hair, connectivity=8)
    long_ = 0
    if n > 1:
        ext = np.maximum(stats[1:, cv2.CC_STAT_WIDTH], stats[1:, cv2.CC_STAT_HEIGHT])
        long_ = int(((ext > max(h, w) / 6) & (stats[1:, cv2.CC_STAT_AREA] < ext * 4)).sum())
    return [hair.mean(), np.log1p(long_) / 3]


def lesion_features(L: np.ndarray, A: np.ndarray, B: np.ndarray, gray: np.ndarray) -> list[float]:
    """The darkest blob (Otsu on blurred L*): how much of the frame it fills, whether it is central and compact,
    its contrast and inner structure, and how textured the surrounding "skin" is. Dermoscopy fills the frame
    with one structured lesion; a clinical close-up shows a small lesion in textured skin."""
    cv2 = _cv2()
    h, w = L.shape
    Lb = cv2.GaussianBlur(L, (0, 0), 2.0)
    l8 = np.clip(Lb * 2.55, 0, 255).astype(np.uint8)
    thr, _ = cv2.threshold(l8, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    mask = (l8 < thr).astype(np.uint8)
    n, lab_, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n <= 1 or mask.sum() == 0 or mask.sum() == mask.size:
        return [float(mask.mean()), 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, float(L.std() / 50), 0.0]
    k = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    big = (lab_ == k).astype(np.uint8)
    x, y, bw, bh = (int(v) for v in stats[k, :4])
    touch = float((x == 0) + (y == 0) + (x + bw == w) + (y + bh == h)) / 4
    cy, cx = np.argwhere(big).mean(0)
    centre = 1.0 - float(np.hypot((cy - h / 2) / h, (cx - w / 2) / w)) * 2
    cnts, _ = cv2.findContours(big, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    hull = cv2.convexHull(max(cnts, key=cv2.contourArea))
    solidity = float(big.sum()) / max(1.0, cv2.contourArea(hull))
    inside, outside = big > 0, mask == 0
    dL = float(L[outside].mean() - L[inside].mean()) / 50 if outside.any() else 0.0
    dE = (
        float(np.hypot(A[outside].mean() - A[inside].mean(), B[outside].mean() - B[inside].mean())) / 30
        if outside.any()
        else 0.0
    )
    inner = float(L[inside].std() / (L.std() + 1e-3))
    g = gray.astype(np.float32)
    hfm = np.abs(g - cv2.GaussianBlur(g, (0, 0), 1.5))
    skin_std = float(L[outside].std() / 50) if outside.any() else 0.0
    skin_hf = float(hfm[outside].mean() / 10) if outside.any() else 0.0
    return [
        float(mask.mean()),
        float(big.mean()),
        touch,
        centre,
        min(1.0, solidity),
        dL,
        dE,
        inner,
        skin_std,
        skin_hf,
    ]


# features computed at a fixed shorter side, so a 200x150 thumbnail and a 1024 px photo are measured alike
SCALE_FREE_NAMES = [
    "sf_band1",
    "sf_band2",
    "sf_band3",
    "sf_fine_coarse",
    "sf_skin_band1",
    "sf_spec_frac",
    "sf_spec_blobs",
    "sf_illum_slope",
    "sf_illum_resid",
    "sf_nonskin_hue",
    "sf_ink_dark",
    "sf_white_border",
    "sf_textured_blocks",
    "sf_he_textured",
    "sf_centre_dark",
    "sf_skin_frac",
]
SHORT_SIDE = 128


def resize_short(img: np.ndarray, side: int, max_long: int) -> np.ndarray:
    """Resize so the shorter side is ``side`` (the longer one at most ``max_long``)."""
    h, w = img.shape[:2]
    s = min(side / max(1, min(h, w)), max_long / max(h, w))
    return resize_max(img, max(1, round(max(h, w) * s)))


def scale_free_features(rgb: np.ndarray) -> list[float]:
    """Cues for clinical photo vs dermoscopy vs figure, measured at a fixed shorter side (SHORT_SIDE):
    band-pass energy at three scales (skin surface texture of an unmagnified photo vs the smooth, magnified
    dermoscopic field), flash glare (small bright achromatic spots on skin), illumination gradient across the
    frame, non-skin hues (ink, cloth), thick dark strokes (ink marks, ruler ticks), white regions touching the
    border (rulers, paper), textured tissue cover (H&E fills the frame with texture, charts do not), how much
    of the darkest tone sits in the centre, and the fraction of skin-toned pixels."""
    cv2 = _cv2()
    img = resize_short(rgb, SHORT_SIDE, 3 * SHORT_SIDE)
    h, w = img.shape[:2]
    lab = cv2.cvtColor(img.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    L, A, B = lab[..., 0], lab[..., 1], lab[..., 2]
    chroma = np.hypot(A, B)
    # Weber contrast (band energy over mean lightness): dividing by the global spread instead would let shadows
    # and dark backgrounds of a wide clinical shot hide its skin texture
    den = float(L.mean()) / 10 + 1.0
    g = [L] + [cv2.GaussianBlur(L, (0, 0), s) for s in (0.8, 1.6, 3.2, 6.4)]
    bands = [np.abs(g[i] - g[i + 1]) for i in range(1, 4)]
    b = [float(x.mean()) / den for x in bands]
    f = b + [float(np.log((b[0] + 1e-3) / (b[2] + 1e-3)))]
    # texture of the surrounding skin only (pixels lighter than the median: not the lesion)
    skin = L > np.median(L)
    f += [float(bands[0][skin].mean()) / den if skin.any() else 0.0]
    # flash glare: small bright, nearly white spots that stand out of their neighbourhood
    spec = ((L - g[4]) > 10) & (L > 70) & (chroma < 18)
    f += [float(spec.mean())]
    n, _, stats, _ = cv2.connectedComponentsWithStats(spec.astype(np.uint8), connectivity=8)
    small = int((stats[1:, cv2.CC_STAT_AREA] <= 12).sum()) if n > 1 else 0
    f += [float(np.log1p(small * 1e4 / (h * w))) / 5]
    # illumination: a plane fitted to the heavily blurred lightness
    big = cv2.GaussianBlur(L, (0, 0), max(h, w) / 10)
    yy, xx = np.mgrid[0:h, 0:w]
    M = np.stack([np.ones(h * w), (xx.ravel() / w - 0.5), (yy.ravel() / h - 0.5)], 1)
    coef, *_ = np.linalg.lstsq(M, big.ravel().astype(np.float64), rcond=None)
    f += [float(np.hypot(coef[1], coef[2])) / 50, float((big.ravel() - M @ coef).std()) / 25]
    ang = (np.degrees(np.arctan2(B, A)) + 360) % 360
    chromatic = chroma > 15
    nonskin = chromatic & (ang > 110) & (ang < 340)
    f += [float(nonskin.mean())]
    gray8 = np.clip(L * 2.55, 0, 255).astype(np.uint8)
    bh = cv2.morphologyEx(gray8, cv2.MORPH_BLACKHAT, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (11, 11)))
    f += [float(((bh > 60) & (L < 40)).mean())]
    white = ((L > 85) & (chroma < 8)).astype(np.uint8)
    n, lab_, stats, _ = cv2.connectedComponentsWithStats(white, connectivity=4)
    wb = 0.0
    if n > 1:
        edge = set(np.unique(np.concatenate([lab_[0], lab_[-1], lab_[:, 0], lab_[:, -1]]))) - {0}
        wb = float(sum(stats[k, cv2.CC_STAT_AREA] for k in edge)) / (h * w)
    f += [wb]
    bh8, bw8 = h // 8 * 8, w // 8 * 8
    if bh8 >= 8 and bw8 >= 8:
        blk = L[:bh8, :bw8].reshape(bh8 // 8, 8, bw8 // 8, 8)
        tex = blk.std(axis=(1, 3)) > 2.0
        cb = chroma[:bh8, :bw8].reshape(bh8 // 8, 8, bw8 // 8, 8).mean(axis=(1, 3))
        hb = ang[:bh8, :bw8].reshape(bh8 // 8, 8, bw8 // 8, 8).mean(axis=(1, 3))
        he = tex & (cb > 10) & ((hb > 290) | (hb < 20))
        f += [float(tex.mean()), float(he.mean())]
    else:
        f += [0.0, 0.0]
    dark = L < np.percentile(L, 20)
    r = np.hypot((yy - (h - 1) / 2) / (h / 2), (xx - (w - 1) / 2) / (w / 2))
    f += [float(dark[r < 0.5].mean() - dark[r >= 0.5].mean())]
    # skin tones (orange-yellow Lab hue, moderate chroma): most of a clinical photo, little of a chart or an H&E
    # section (pink to purple hues)
    f += [float(((L > 20) & (L < 95) & (chroma > 6) & (chroma < 50) & (ang > 25) & (ang < 85)).mean())]
    return f


# ---------------------------------------------------------------- the vector: groups in order, names beside them


@dataclass(frozen=True)
class FeatureGroup:
    """Consecutive entries of the feature vector: their names and the function that measures them."""

    names: tuple[str, ...]
    measure: Callable[[WorkImage], list[float]]


def _lesion(v: WorkImage) -> list[float]:
    return lesion_features(v.L, v.A, v.B, v.gray)


def _scale_free(v: WorkImage) -> list[float]:
    return scale_free_features(v.rgb)


# The order is the contract of the shipped weights (data/curate/modality_weights.npz stores these names)
FEATURE_GROUPS: tuple[FeatureGroup, ...] = (
    FeatureGroup(
        ("grey_frac", "lowchroma_frac", "white_frac", "black_frac", "chroma_mean", "chroma_std")
        + tuple(f"lab_{c}_{s}" for c in "Lab" for s in ("mean", "std"))
        + ("L_skew", "L_p5", "L_p95"),
        lightness_chroma,
    ),
    FeatureGroup(tuple(f"hue{k}" for k in range(12)), hue_histogram),
    FeatureGroup(
        tuple(f"sat{k}" for k in range(6)) + tuple(f"val{k}" for k in range(8)), saturation_value_histograms
    ),
    FeatureGroup(
        (
            "he_H_mean",
            "he_H_std",
            "he_H_p90",
            "he_E_mean",
            "he_E_std",
            "he_HE_ratio",
            "purple_frac",
            "pink_frac",
        ),
        stain_features,
    ),
    FeatureGroup(("palette_log", "palette_top1", "palette_top8"), palette_features),
    FeatureGroup(
        tuple(f"lbp1_{k}" for k in range(10))
        + tuple(f"lbp2_{k}" for k in range(10))
        + tuple(
            f"glcm{d}_{s}"
            for d in (1, 4)
            for s in ("contrast", "dissim", "homog", "energy", "corr", "entropy")
        ),
        texture_features,
    ),
    FeatureGroup(
        ("grad_mean", "grad_std", "grad_strong", "lap_logvar", "canny_frac", "hf_ratio"), edge_features
    ),
    FeatureGroup(
        ("flat_frac", "flat_white", "flat_dark", "axis_line_frac", "hough_lines", "sat_pure_frac"),
        layout_features,
    ),
    FeatureGroup(
        ("corner_L_mean", "corner_L_min", "corner_dark_n", "centre_minus_border_L", "centre_border_dE")
        + tuple(f"ring{k}" for k in range(6))
        + ("outside_circle_dark", "inside_circle_dark"),
        vignette_features,
    ),
    FeatureGroup(("hair_frac", "hair_long"), hair_features),
    FeatureGroup(
        ("lesion_frac", "lesion_big_frac", "lesion_border_touch", "lesion_centre", "lesion_solidity")
        + ("lesion_dL", "lesion_dE", "lesion_inner_std", "skin_std", "skin_hf"),
        _lesion,
    ),
    FeatureGroup(tuple(SCALE_FREE_NAMES), _scale_free),
)

FEATURE_NAMES: tuple[str, ...] = tuple(n for g in FEATURE_GROUPS for n in g.names)


def image_features(rgb: np.ndarray) -> np.ndarray:
    """Feature vector (float32, len(FEATURE_NAMES)) of an RGB uint8 image of any size: each group of
    FEATURE_GROUPS measured on one shared WorkImage, in order."""
    v = WorkImage.of(rgb)
    f: list[float] = []
    for group in FEATURE_GROUPS:
        values = group.measure(v)
        assert len(values) == len(group.names), (group.measure.__name__, len(values), len(group.names))
        f += values
    out = np.asarray(f, dtype=np.float32)
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)
