"""Near-duplicate images across books: perceptual hashes (pHash + dHash, numpy/OpenCV), union-find groups.

Two images are the same picture when their 64-bit pHash and dHash are both very close, or when they are within
looser candidate distances (a crop of a few percent moves many hash bits) and their band-pass thumbnails
correlate once aligned (one placed inside the other over a range of crop scales); and, when the images can be
loaded again, when they also agree in their fine detail once aligned precisely (:func:`same_detail`): two
confusion matrices or two loss curves of one template hash and correlate alike, but differ in dozens of spots. The thresholds
(``DedupeThresholds``, set in ``data/curate/config.yaml``) are measured by ``benchmarks/curate/curate_filters.py``:
every resized, re-encoded, slightly cropped or colour-jittered copy of the dev images found, no false merge
among the distinct ones. Groups are closed by union-find; the copy with the most pixels is kept (ties: the
smaller id), the others get ``duplicate_of`` = its id.

    >>> from mmskin.curate.dedupe import image_hashes, duplicate_groups
    >>> h = image_hashes(rgb)                       # (phash, dhash) as Python ints
    >>> duplicate_groups({"a": h1, "b": h2}, {"a": 640 * 480, "b": 320 * 240}, {"a": t1, "b": t2})  # {"b": "a"}
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .features import _cv2


def _bits_to_int(bits: np.ndarray) -> int:
    out = 0
    for b in bits.ravel():
        out = (out << 1) | int(bool(b))
    return out


def phash(gray: np.ndarray) -> int:
    """64-bit DCT hash (as imagehash.phash: 32x32 resize, top-left 8x8 DCT block above its median)."""
    cv2 = _cv2()
    small = cv2.resize(gray.astype(np.float32), (32, 32), interpolation=cv2.INTER_AREA)
    d = cv2.dct(small)[:8, :8]
    return _bits_to_int(d > np.median(d))


def dhash(gray: np.ndarray) -> int:
    """64-bit horizontal gradient hash (9x8 resize, each pixel brighter than its left neighbour)."""
    cv2 = _cv2()
    small = cv2.resize(gray.astype(np.float32), (9, 8), interpolation=cv2.INTER_AREA)
    return _bits_to_int(small[:, 1:] > small[:, :-1])


def image_hashes(rgb: np.ndarray) -> tuple[int, int]:
    cv2 = _cv2()
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return phash(gray), dhash(gray)


THUMB_SIDE = 96


def thumbnail(rgb: np.ndarray, side: int = THUMB_SIDE) -> np.ndarray:
    """Band-pass grey thumbnail (longer side ``side``, float16) for the verification of candidate pairs: the
    fine structure survives resizing, JPEG and colour shifts, while smooth look-alikes (two dermoscopy blobs)
    stop correlating."""
    from .features import resize_max

    cv2 = _cv2()
    g = cv2.cvtColor(resize_max(rgb, side), cv2.COLOR_RGB2GRAY).astype(np.float32)
    band = cv2.GaussianBlur(g, (0, 0), 0.8) - cv2.GaussianBlur(g, (0, 0), 3.0)
    return np.ascontiguousarray(band.astype(np.float16))


SCALES = tuple(round(1.0 - 0.02 * k, 2) for k in range(10))  # either image a crop of the other, to 0.82
TILES = 4  # the detail check compares a TILES x TILES grid of the aligned thumbnails


def _placements(a: np.ndarray, b: np.ndarray):
    """(big, template, score map) for each way one band-pass thumbnail can sit inside the other: either image a
    crop of the other (scale 1.0 down to 0.82)."""
    cv2 = _cv2()
    for big, small in ((a, b), (b, a)):
        big32 = big.astype(np.float32)
        H, W = big.shape
        h, w = small.shape
        for s in SCALES:
            f = min(s * W / w, s * H / h) if abs(w / h - W / H) > 0.02 else s * W / w
            th, tw = int(round(h * f)), int(round(w * f))
            if th > H or tw > W or th < 8 or tw < 8:
                continue
            t = cv2.resize(small.astype(np.float32), (tw, th), interpolation=cv2.INTER_AREA)
            if t.std() < 1e-3:
                continue
            yield big32, t, cv2.matchTemplate(big32, t, cv2.TM_CCOEFF_NORMED)


def aligned_similarity(a: np.ndarray, b: np.ndarray, stop_at: float = 2.0) -> float:
    """Best normalised cross-correlation of one band-pass thumbnail placed inside the other, allowing that either
    is a crop of the other (scale 1.0 down to 0.8). Copies score high; different photographs, even of the same
    lesion, score low (benchmark: curate_filters.py)."""
    best = -1.0
    for _, _, r in _placements(a, b):
        best = max(best, float(r.max()))
        if best >= stop_at:
            return best
    return best


DETAIL_SIDE = 512  # the detail check compares the pair at the smaller one's resolution, at most this long
DETAIL_SIGMA = 1.0  # blur before comparing (sub-pixel misalignment, JPEG noise)
DETAIL_FLOOR = 25.0  # grey levels: a pixel differs (copies stay under ~20 once aligned and blurred)
DETAIL_MIN_AREA = 6  # px: a spot of differing pixels at least this big is a difference of content
DETAIL_MAX_SPOTS = 3  # spots allowed (panel letters added to one copy); more: different pictures


def detail_image(rgb: np.ndarray) -> np.ndarray:
    """Grey uint8 copy (longer side at most DETAIL_SIDE) for :func:`same_detail`."""
    from .features import resize_max

    cv2 = _cv2()
    img = resize_max(rgb, DETAIL_SIDE) if max(rgb.shape[:2]) > DETAIL_SIDE else rgb
    return cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2GRAY)


def _similarity_transform(a: np.ndarray, b: np.ndarray) -> np.ndarray | None:
    """2x3 scale + rotation + shift mapping b onto a from matched ORB corners, or None (too few matches)."""
    cv2 = _cv2()
    orb = cv2.ORB_create(nfeatures=600, fastThreshold=10)
    ka, da = orb.detectAndCompute(a, None)
    kb, db = orb.detectAndCompute(b, None)
    if da is None or db is None or len(ka) < 12 or len(kb) < 12:
        return None
    matches = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True).match(db, da)
    if len(matches) < 12:
        return None
    pb = np.float32([kb[m.queryIdx].pt for m in matches])
    pa = np.float32([ka[m.trainIdx].pt for m in matches])
    M, inl = cv2.estimateAffinePartial2D(pb, pa, method=cv2.RANSAC, ransacReprojThreshold=2.0)
    if M is None or inl is None or int(inl.sum()) < 12:
        return None
    return M


def same_detail(a: np.ndarray, b: np.ndarray) -> tuple[bool, int]:
    """Whether two grey detail images (:func:`detail_image`) show the same picture down to its fine detail.

    b is aligned onto a at the smaller one's resolution (ORB corners give a similarity transform, ECC refines it
    to a sub-pixel affine one), both are blurred slightly and matched in gain and offset, and the spots where
    they still differ by more than DETAIL_FLOOR grey levels are counted. A resized, re-encoded, slightly cropped
    or colour-shifted copy has none; one with panel letters added has one per letter; two charts of one
    template (confusion matrices with other numbers, loss curves of other runs) have dozens. Returns (same,
    spots); a pair that cannot be aligned (too little structure: a smooth photo) is left to the thumbnail
    check, (True, 0)."""
    cv2 = _cv2()
    if a.size > b.size:  # compare at the smaller image's resolution
        a, b = b, a
    M = _similarity_transform(a, b)
    if M is None:
        return True, 0
    h, w = a.shape
    try:  # sub-pixel refinement: fine detail can only be compared on a precise alignment
        crit = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 50, 1e-5)
        _, M = cv2.findTransformECC(
            a.astype(np.float32),
            b.astype(np.float32),
            cv2.invertAffineTransform(M).astype(np.float32),
            cv2.MOTION_AFFINE,
            crit,
            None,
            3,
        )
        M = cv2.invertAffineTransform(M)
    except cv2.error:
        pass
    wb = cv2.warpAffine(b.astype(np.float32), M, (w, h), flags=cv2.INTER_AREA, borderValue=-1.0)
    valid = cv2.warpAffine(np.ones_like(b, np.uint8), M, (w, h), flags=cv2.INTER_NEAREST) > 0
    fa = cv2.GaussianBlur(a.astype(np.float32), (0, 0), DETAIL_SIGMA)
    fb = cv2.GaussianBlur(wb, (0, 0), DETAIL_SIGMA)
    inner = cv2.erode(valid.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    if inner.mean() < 0.5:
        return True, 0
    # one gain and offset for the whole picture (colour and contrast shifts of a reproduction)
    pa, pb = fa[inner].astype(np.float64), fb[inner].astype(np.float64)
    var = float(pb.var())
    slope = float(((pa - pa.mean()) * (pb - pb.mean())).mean() / var) if var > 1e-6 else 0.0
    res = np.abs(fa - (slope * (fb - pb.mean()) + pa.mean()))
    diff = ((res > DETAIL_FLOOR) & inner).astype(np.uint8)
    diff = cv2.morphologyEx(diff, cv2.MORPH_OPEN, np.ones((2, 2), np.uint8))
    n, _, stats, _ = cv2.connectedComponentsWithStats(diff, connectivity=8)
    spots = int((stats[1:, cv2.CC_STAT_AREA] >= DETAIL_MIN_AREA).sum()) if n > 1 else 0
    return spots <= DETAIL_MAX_SPOTS, spots


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


class UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            # the smaller root wins, so the structure does not depend on the order of unions
            lo, hi = sorted((ra, rb))
            self.parent[hi] = lo


def near_pairs(
    hashes: dict[str, tuple[int, int]],
    phash_max: int,
    dhash_max: int,
    aspects: dict[str, float] | None = None,
    max_log_aspect: float = 0.35,
) -> list[tuple[str, str]]:
    """All id pairs within both thresholds (vectorised over rows; ~1 s for 10k images)."""
    ids = sorted(hashes)
    if len(ids) < 2:
        return []
    ph = np.array([hashes[i][0] for i in ids], dtype=np.uint64)
    dh = np.array([hashes[i][1] for i in ids], dtype=np.uint64)
    asp = np.array([aspects.get(i, 1.0) if aspects else 1.0 for i in ids], dtype=np.float64)
    pairs = []
    for k in range(len(ids) - 1):
        dp = np.bitwise_count(ph[k + 1 :] ^ ph[k])
        dd = np.bitwise_count(dh[k + 1 :] ^ dh[k])
        # a slight crop changes the aspect a little; a different picture that happens to hash alike usually not
        ok = (dp <= phash_max) & (dd <= dhash_max) & (np.abs(np.log(asp[k + 1 :] / asp[k])) < max_log_aspect)
        for j in np.nonzero(ok)[0]:
            pairs.append((ids[k], ids[k + 1 + int(j)]))
    return pairs


@dataclass(frozen=True)
class DedupeThresholds:
    phash_max: int = 6  # at or below both: the same picture, no verification needed
    dhash_max: int = 10
    candidate_phash_max: int = 20  # within both: a candidate (crops move many hash bits), verified by
    candidate_dhash_max: int = 26  # aligned_similarity of the band-pass thumbnails
    min_similarity: float = 0.72
    max_log_aspect: float = 0.35  # a crop changes the aspect a little, a different picture often a lot


def same_picture(
    ha: tuple[int, int],
    hb: tuple[int, int],
    ta: np.ndarray | None,
    tb: np.ndarray | None,
    t: DedupeThresholds,
) -> bool:
    dp, dd = hamming(ha[0], hb[0]), hamming(ha[1], hb[1])
    if dp <= t.phash_max and dd <= t.dhash_max:
        return True
    if dp > t.candidate_phash_max or dd > t.candidate_dhash_max or ta is None or tb is None:
        return False
    return aligned_similarity(ta, tb, stop_at=t.min_similarity) >= t.min_similarity


def duplicate_groups(
    hashes: dict[str, tuple[int, int]],
    pixels: dict[str, int],
    thumbs: dict[str, np.ndarray] | None = None,
    aspects: dict[str, float] | None = None,
    t: DedupeThresholds = DedupeThresholds(),
    detail: Callable[[str], np.ndarray | None] | None = None,
) -> dict[str, str]:
    """{id of a duplicate: id of the kept copy} for every group of the same picture (union-find over pairs).

    ``detail(id)`` gives a record's :func:`detail_image` (None when it cannot): a pair that passes the hash and
    thumbnail checks must then also pass :func:`same_detail`, so that look-alike charts stay apart. Only the
    images of such pairs are loaded."""
    uf = UnionFind()
    thumbs = thumbs or {}
    details: dict[str, np.ndarray | None] = {}

    def fine(i: str) -> np.ndarray | None:
        if i not in details:
            details[i] = detail(i) if detail else None
        return details[i]

    cand = near_pairs(hashes, t.candidate_phash_max, t.candidate_dhash_max, aspects, t.max_log_aspect)
    for a, b in cand:
        if not same_picture(hashes[a], hashes[b], thumbs.get(a), thumbs.get(b), t):
            continue
        da, db = (fine(a), fine(b)) if detail else (None, None)
        if da is not None and db is not None and not same_detail(da, db)[0]:
            continue
        uf.union(a, b)
    groups: dict[str, list[str]] = {}
    for i in sorted(hashes):
        groups.setdefault(uf.find(i), []).append(i)
    out: dict[str, str] = {}
    for members in groups.values():
        if len(members) < 2:
            continue
        keep = min(members, key=lambda i: (-pixels.get(i, 0), i))
        for m in members:
            if m != keep:
                out[m] = keep
    return out


def detail_loader(paths: dict[str, str | None]) -> Callable[[str], np.ndarray | None]:
    """``detail(id)`` for :func:`duplicate_groups`: the record's image file read again (None when unreadable)."""

    def load(rid: str) -> np.ndarray | None:
        from .features import load_image

        p = paths.get(rid)
        try:
            return detail_image(load_image(p)) if p else None
        except Exception:  # noqa: BLE001 - an image that vanished since the image pass: the thumbnails decide
            return None

    return load
