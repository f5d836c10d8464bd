"""How a result was produced: one provenance block for every info and result file mmskin writes.

Every ``*_info.json``, ``*.info.json`` sidecar and results file carries the same block, written by
:func:`provenance`: the stage, mmskin's version, Python's, the versions of the packages that shaped the
numbers, the resolved config and the seed. Nothing time-dependent goes in it, so a rerun with the same inputs
writes the same bytes (timings, where a file wants them, sit outside the block). No credential goes in it
either: URLs lose their user, password and query (:func:`scrub`), keys named like secrets are blanked.

    >>> from mmskin.provenance import provenance, write_info
    >>> info = {"provenance": provenance("curate", config={"seed": 0}, packages=["numpy"]), "counts": {}}
    >>> write_info("data/derm/curate_info.json", info)
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import re
import urllib.parse
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def package_versions(packages: Iterable[str], missing: str | None = None) -> dict[str, str]:
    """Installed version of each distribution; one that is not installed is left out, or set to ``missing``."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str] = {}
    for pkg in packages:
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            if missing is not None:
                out[pkg] = missing
    return out


def jsonable(value: Any) -> Any:
    """A config value as plain JSON: dataclasses to dicts, paths to strings, tuples to lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [jsonable(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, set | frozenset) else items
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


_SECRET_NAME = re.compile(r"api_?key|token|secret|password|credential", re.IGNORECASE)


def scrub(value: Any) -> Any:
    """A JSON value without credentials: a URL with a user, password or query keeps only scheme, host, port and
    path; a value under a key named like a secret (``api_key``, ``token``, …) becomes ``"***"``."""
    if isinstance(value, dict):
        return {k: "***" if v and _SECRET_NAME.search(str(k)) else scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    if isinstance(value, str) and "://" in value:
        parts = urllib.parse.urlsplit(value)
        if parts.username or parts.password or parts.query or "@" in parts.netloc:
            from .chat import public_url

            return public_url(value)
    return value


def provenance(
    stage: str,
    config: Any = None,
    packages: Iterable[str] = (),
    seed: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The provenance block: ``{"stage", "mmskin", "python", "packages", "config", "seed", **extra}``."""
    from . import __version__

    block: dict[str, Any] = {
        "stage": stage,
        "mmskin": __version__,
        "python": platform.python_version(),
        "packages": package_versions(sorted(set(packages))),
    }
    if config is not None:
        block["config"] = scrub(jsonable(config))
    if seed is not None:
        block["seed"] = seed
    block.update({k: scrub(jsonable(v)) for k, v in extra.items()})
    return block


def info_bytes(info: dict[str, Any], indent: int = 1) -> bytes:
    return (json.dumps(jsonable(info), sort_keys=True, indent=indent, ensure_ascii=False) + "\n").encode()


def write_info(path: str | os.PathLike[str], info: dict[str, Any], indent: int = 1) -> Path:
    """Write an info/result JSON atomically (sorted keys, trailing newline); returns the path."""
    from .records import atomic_write_bytes

    atomic_write_bytes(path, info_bytes(info, indent))
    return Path(path)
