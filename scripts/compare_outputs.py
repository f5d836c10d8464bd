"""Compare two output snapshots of scripts/snapshot_outputs.sh: which files differ, and whether a JSON or HTML
file differs only in its provenance (versions, config, seed: what a refactor of the provenance block changes).

    python scripts/compare_outputs.py /tmp/snap_before /tmp/snap_after

Each snapshot's own folder path and the timings ("seconds") are normalised first. Exit status 1 when a file
differs outside provenance (or exists in one snapshot only).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

TIMING = {
    "seconds",
    "elapsed",
    "elapsed_s",
    "wall_s",
    "time_s",
    "timestamp",
    "created",
    "started",
    "finished",
}
# keys of the provenance block, and the keys older files kept their provenance under
PROVENANCE = {"provenance", "mmskin", "mmskin_version", "versions", "packages", "tool", "python", "pymupdf"}
PROVENANCE |= {"pyarrow", "config", "seed", "compat", "limit", "model"}


def _text(p: Path, root: Path) -> str | None:
    try:
        return p.read_text(encoding="utf-8").replace(str(root), "<OUT>")
    except UnicodeDecodeError:
        return None


def _json(text: str, drop: set[str]):
    def strip(x):
        if isinstance(x, dict):
            return {k: strip(v) for k, v in x.items() if k not in drop}
        return [strip(v) for v in x] if isinstance(x, list) else x

    return strip(json.loads(text))


def same(a: Path, b: Path, ra: Path, rb: Path, drop: set[str]) -> bool:
    if a.read_bytes() == b.read_bytes():
        return True
    ta, tb = _text(a, ra), _text(b, rb)
    if ta is None or tb is None:
        return False
    if a.suffix == ".json":
        return _json(ta, drop) == _json(tb, drop)
    timing = r'(&quot;|")seconds(&quot;|"): [0-9.]+'
    ta, tb = re.sub(timing, "s", ta), re.sub(timing, "s", tb)
    if a.suffix == ".html" and drop is not TIMING:
        ta, tb = ta.split("<h2>Provenance")[0], tb.split("<h2>Provenance")[0]
    return ta == tb


def main(argv: list[str]) -> int:
    ra, rb = Path(argv[0]), Path(argv[1])

    def files(r: Path) -> set[Path]:
        return {
            p.relative_to(r)
            for p in r.rglob("*")
            if p.is_file() and ".build" not in p.parts and p.name != "log.txt"
        }

    fa, fb = files(ra), files(rb)
    bad = [f"only in {ra}: {x}" for x in sorted(fa - fb)] + [f"only in {rb}: {x}" for x in sorted(fb - fa)]
    identical = provenance_only = 0
    for rel in sorted(fa & fb):
        if same(ra / rel, rb / rel, ra, rb, TIMING):
            identical += 1
        elif same(ra / rel, rb / rel, ra, rb, TIMING | PROVENANCE):
            provenance_only += 1
            print(f"provenance only: {rel}")
        else:
            bad.append(f"DIFFERS: {rel}")
    for line in bad:
        print(line)
    print(f"{identical} identical, {provenance_only} differ in provenance only, {len(bad)} differ otherwise")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
