"""Near-duplicate images across books: perceptual hashes (pHash + dHash, numpy/OpenCV), union-find groups.

Two images are the same picture when their 64-bit pHash differ in at most ``phash_max`` bits AND their dHash in
at most ``dhash_max`` bits (both thresholds measured by ``benchmarks/curate_filters.py``: every resized,
re-encoded, slightly cropped or colour-jittered copy found, no false merge among the distinct dev images). In a
group the copy with the most pixels is kept (ties: the smaller id); the others get ``duplicate_of`` = its id.

    >>> from mmskin.curate.dedupe import image_hashes, duplicate_groups
    >>> h = image_hashes(rgb)                       # (phash, dhash) as Python ints
    >>> duplicate_groups({"a": h1, "b": h2}, {"a": 640 * 480, "b": 320 * 240})   # {"b": "a"}
"""

from __future__ import annotations

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
        ok = (dp <= phash_max) & (dd <= dhash_max) & (np.abs(np.log(asp[k + 1 :] / asp[k])) < 0.35)
        for j in np.nonzero(ok)[0]:
            pairs.append((ids[k], ids[k + 1 + int(j)]))
    return pairs


def duplicate_groups(
    hashes: dict[str, tuple[int, int]],
    pixels: dict[str, int],
    phash_max: int = 10,
    dhash_max: int = 14,
    aspects: dict[str, float] | None = None,
) -> dict[str, str]:
    """{id of a duplicate: id of the kept copy} for every group of near-identical images."""
    uf = UnionFind()
    for a, b in near_pairs(hashes, phash_max, dhash_max, aspects):
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
