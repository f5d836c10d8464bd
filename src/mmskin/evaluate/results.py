"""Results files of ``mmskin eval``: one JSON object per run, written atomically, keys in the documented order.

Unlike info files (sorted keys), a results file keeps its keys in the order the task documents (``task``,
``benchmark`` or ``dataset``, ``model``, the metrics, …, ``provenance`` last): people read these files and the
order is part of the contract that ``mmskin report`` and users' scripts rely on.

    from mmskin.evaluate.results import eval_provenance, write_results
    write_results(Path("zs.json"), {"task": "zeroshot", …, "provenance": eval_provenance("zeroshot", config, […])})
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..provenance import provenance
from ..records import atomic_write_bytes, sha256_file

INTERVAL = "percentile 95%"  # every eval interval: percentile bootstrap


def write_results(path: Path, results: dict[str, Any]) -> Path:
    """``results`` as indented JSON (2 spaces, UTF-8, trailing newline), atomically; returns the path."""
    atomic_write_bytes(Path(path), (json.dumps(results, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    return Path(path)


def input_files(paths: dict[str, Path | None]) -> dict[str, dict[str, str]]:
    """``{name: {"path", "sha256"}}`` of the input files a result was computed from (missing names left out)."""
    return {name: {"path": str(p), "sha256": sha256_file(p)} for name, p in paths.items() if p}


def eval_provenance(task: str, config: Any, packages: Iterable[str], **extra: Any) -> dict[str, Any]:
    """The provenance block of ``mmskin eval TASK``: the task's config and seed, the packages' versions, ``extra``
    (inputs' hashes, the method's fixed settings)."""
    return provenance(f"eval {task}", config=config, packages=packages, seed=config.seed, **extra)
