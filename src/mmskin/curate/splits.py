"""Deterministic train/val/test splits grouped by book and duplicate group.

A *unit* is a set of records that must land in the same split: all records of one book (``source.sha256``, or
``source.file`` when the hash is missing), merged (union-find) with every book that shares a near-duplicate group
(``duplicate_of`` links a record to its kept copy, possibly in another book). Units are shuffled with the seed,
then placed greedily in that order, each into the split whose record count is furthest below its target
``ratio × total`` (the first unit therefore goes to the largest split). With few books the ratios are therefore approximate; with a single unit
everything goes to ``train``.

``by="record"`` splits records instead of books (use it for a single-book dataset): the units are then the
duplicate groups alone.

    >>> from mmskin.curate.splits import assign_splits
    >>> split = assign_splits(records, seed=0)          # {record id: "train" | "val" | "test"}
"""

from __future__ import annotations

import hashlib
import random
from collections import defaultdict
from typing import Any

SPLIT_NAMES = ("train", "val", "test")


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        self.parent.setdefault(x, x)
        root = x
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[x] != root:  # path compression
            self.parent[x], x = root, self.parent[x]
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            # deterministic root: the smaller key, so the result does not depend on record order
            lo, hi = sorted((ra, rb))
            self.parent[hi] = lo


def book_key(rec: dict[str, Any]) -> str:
    """The book a record comes from: its source sha256, else its source file name."""
    src = rec.get("source") or {}
    return str(src.get("sha256") or src.get("file") or "")


def split_units(records: list[dict[str, Any]], by: str = "book") -> dict[str, list[str]]:
    """Unit key -> record ids; records of one unit must share a split."""
    if by not in ("book", "record"):
        raise ValueError(f"by must be 'book' or 'record' (got {by!r})")
    uf = _UnionFind()
    ids = {r["id"] for r in records}
    for r in records:
        node = f"r:{r['id']}"
        uf.find(node)
        if by == "book":
            uf.union(node, f"b:{book_key(r)}")
        dup = r.get("duplicate_of")
        if dup and dup in ids and dup != r["id"]:
            uf.union(node, f"r:{dup}")
    units: dict[str, list[str]] = defaultdict(list)
    for r in records:
        units[uf.find(f"r:{r['id']}")].append(r["id"])
    return dict(units)


def assign_splits(
    records: list[dict[str, Any]],
    seed: int = 0,
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1),
    by: str = "book",
) -> dict[str, str]:
    """Record id -> split name; deterministic for the same records (in any order), seed and ratios."""
    if len(ratios) != 3 or any(r < 0 for r in ratios) or sum(ratios) <= 0:
        raise ValueError(f"ratios must be three non-negative numbers with a positive sum (got {ratios!r})")
    total_ratio = float(sum(ratios))
    weights = [r / total_ratio for r in ratios]
    units = split_units(records, by=by)
    # a content-derived key per unit, so the seeded order does not depend on the input order
    keyed = sorted(
        (hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest(), ids) for ids in units.values()
    )
    rng = random.Random(seed)
    rng.shuffle(keyed)
    n = sum(len(ids) for _, ids in keyed)
    counts = [0, 0, 0]
    out: dict[str, str] = {}
    for _, ids in keyed:
        # the split furthest below its target (in records) takes the unit; the first unit goes to the
        # largest split, so a single book lands in train
        k = max(range(3), key=lambda j: weights[j] * n - counts[j] if weights[j] > 0 else float("-inf"))
        counts[k] += len(ids)
        for rid in ids:
            out[rid] = SPLIT_NAMES[k]
    return out
