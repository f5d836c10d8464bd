"""How a result was produced: installed package versions for the provenance block of result files.

>>> from mmskin.provenance import package_versions
>>> package_versions(["numpy", "torch"])          # packages that are not installed are left out
{'numpy': '2.3.1', 'torch': '2.13.0+cpu'}
"""

from __future__ import annotations

from collections.abc import Iterable


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
