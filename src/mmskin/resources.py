"""Files shipped inside the package (``src/mmskin/data/``): label maps, lexicons, templates, weights, the demo.

Every stage reaches packaged data through these three functions, so an installed wheel and a source checkout
behave the same.

    >>> from mmskin.resources import data_path, load_yaml
    >>> load_yaml("curate", "config.yaml")["modality"]["review_below"]
    0.75
    >>> data_path("demo", "sample_textbook.pdf").name
    'sample_textbook.pdf'
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any


def data_path(*parts: str) -> Path:
    """Path of a packaged data file or folder, e.g. ``data_path("vqa", "lexicon.yaml")``."""
    from importlib.resources import files

    return Path(str(files("mmskin").joinpath("data", *parts)))


def read_text(*parts: str) -> str:
    return data_path(*parts).read_text(encoding="utf-8")


@functools.cache
def _yaml_cached(path: str) -> Any:
    import yaml

    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def load_yaml(*parts: str) -> Any:
    """A packaged YAML file, parsed with ``yaml.safe_load`` once per process (each call gets its own copy)."""
    import copy

    return copy.deepcopy(_yaml_cached(str(data_path(*parts))))


def demo_pdf() -> Path:
    """The bundled sample atlas that ``mmskin demo`` builds."""
    return data_path("demo", "sample_textbook.pdf")
