"""Near-duplicate images across books: perceptual hashes (pHash + dHash, numpy/OpenCV), union-find groups.

Two images are the same picture when their 64-bit pHash and dHash are both very close, or when they are within
looser candidate distances (a crop of a few percent moves many hash bits) and their band-pass thumbnails
correlate once aligned (one placed inside the other over a range of crop scales). The thresholds
(``DedupeThresholds``, set in ``data/curate/config.yaml``) are measured by ``benchmarks/curate/curate_filters.py``:
every resized, re-encoded, slightly cropped or colour-jittered copy of the dev images found, no false merge
among the distinct ones. Groups are closed by union-find; the copy with the most pixels is kept (ties: the
smaller id), the others get ``duplicate_of`` = its id.

    >>> from mmskin.curate.dedupe import image_hashes, duplicate_groups
    >>> h = image_hashes(rgb)                       # (phash, dhash) as Python ints
    >>> duplicate_groups({"a": h1, "b": h2}, {"a": 640 * 480, "b": 320 * 240}, {"a": t1, "b": t2})  # {"b": "a"}
"""

from __future__ import annotations

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


def aligned_similarity(a: np.ndarray, b: np.ndarray, stop_at: float = 2.0) -> float:
    """Best normalised cross-correlation of one band-pass thumbnail placed inside the other, allowing that either
    is a crop of the other (scale 1.0 down to 0.8). Copies score high; different photographs, even of the same
    lesion, score low (benchmark: curate_filters.py)."""
    cv2 = _cv2()
    best = -1.0
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
            r = cv2.matchTemplate(big32, t, cv2.TM_CCOEFF_NORMED)
            best = max(best, float(r.max()))
            if best >= stop_at:
                return best
    return best


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
) -> dict[str, str]:
    """{id of a duplicate: id of the kept copy} for every group of the same picture (union-find over pairs)."""
    uf = UnionFind()
    thumbs = thumbs or {}
    cand = near_pairs(hashes, t.candidate_phash_max, t.candidate_dhash_max, aspects, t.max_log_aspect)
    for a, b in cand:
        if same_picture(hashes[a], hashes[b], thumbs.get(a), thumbs.get(b), t):
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
