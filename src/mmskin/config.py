"""Config dataclasses that are at once the stage's settings, its YAML schema, its CLI options and its docs.

Declare each field with :func:`option` (default + help + optional choices); then

- :func:`build_config` turns a mapping (YAML, ``--set KEY=VALUE``) into the dataclass, checking types and
  names ("unknown key 'lr' (did you mean 'learning_rate'?)");
- :func:`add_arguments` adds one ``--flag`` per field to an argparse parser and :func:`from_args` reads them
  back, so a command line maps arguments to a config and nothing else;
- :func:`config_help` prints every field with its default and meaning.

    >>> from dataclasses import dataclass
    >>> from mmskin.config import option, build_config
    >>> @dataclass
    ... class Cfg:
    ...     seed: int = option(0, "random seed")
    ...     ocr: str = option("auto", "OCR mode", choices=("auto", "always", "never"))
    >>> build_config(Cfg, {"seed": 3}, "cfg.yaml")
    Cfg(seed=3, ocr='auto')
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import os
import textwrap
import types
from dataclasses import field
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints


class ConfigError(ValueError):
    """A config a stage cannot use; the message is one line naming the file (or option) and the key."""


def option(default: Any, help: str, **meta: Any) -> Any:
    """A config field: ``default`` (lists and dicts are copied per instance), ``help`` text and metadata.

    Metadata keys: ``choices`` (allowed values), ``cli`` (False: not a command-line option), ``flag`` (the
    option name when it is not ``--field-name``), ``metavar``, ``required`` (the CLI must give it).
    """
    if isinstance(default, list | dict):
        return field(default_factory=lambda d=default: type(d)(d), metadata={"help": help, **meta})
    return field(default=default, metadata={"help": help, **meta})


def _optional_inner(tp: Any) -> Any:
    """X for ``X | None`` / ``Optional[X]``; None when ``tp`` is not optional."""
    if get_origin(tp) in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(get_args(tp)) == 2:
            return args[0]
    return None


def _coerce(value: Any, tp: Any, where: str) -> Any:
    inner = _optional_inner(tp)
    if inner is not None:
        return None if value is None else _coerce(value, inner, where)
    origin = get_origin(tp)
    if origin in (list, tuple):
        if isinstance(value, str | dict) or not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__}")
        args = get_args(tp)
        item_tp = args[0] if args else Any
        items = [_coerce(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping of {tp.__name__} fields")
        return build_config(tp, value, where)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads 5e-5 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return str(value)
    if tp is Path:
        if not isinstance(value, str | os.PathLike):
            raise ConfigError(f"{where}: expected a path, got {value!r}")
        return Path(value)
    return value


def build_config(cls: type, raw: dict[str, Any], where: str) -> Any:
    """``cls(**raw)`` with every value checked against the field's type and choices."""
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in raw.items():
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{where}: unknown key {key!r}{hint}")
        v = _coerce(value, hints[key], f"{where}: {key}")
        choices = fields[key].metadata.get("choices")
        if choices and v not in choices:
            raise ConfigError(f"{where}: {key} must be one of {', '.join(map(str, choices))} (got {v!r})")
        kwargs[key] = v
    return cls(**kwargs)


def parse_override(item: str, where: str) -> tuple[str, Any]:
    """``KEY=VALUE`` (VALUE read as YAML) from ``--set``."""
    import yaml

    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"{where}: expected KEY=VALUE, got {item!r}")
    try:
        return key.strip(), yaml.safe_load(value)
    except yaml.YAMLError as e:
        raise ConfigError(f"{where}: {item!r}: not a YAML value ({str(e).splitlines()[0]})") from None


def read_yaml_file(
    path: str | os.PathLike[str], error: type[ConfigError] = ConfigError, empty_ok: bool = True
) -> tuple[dict[str, Any], str]:
    """(top-level mapping, sha256 of the bytes) of a YAML file read with ``safe_load``; ``error`` (a
    ConfigError) naming the file when it cannot be read, is not YAML or is not a mapping."""
    import hashlib

    import yaml

    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise error(f"{path}: cannot read ({e.strerror or e})") from None
    try:
        loaded = yaml.safe_load(data)
    except yaml.YAMLError as e:
        raise error(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if loaded is None and empty_ok:
        loaded = {}
    if not isinstance(loaded, dict):
        raise error(f"{path}: expected a mapping of settings at the top level")
    return loaded, hashlib.sha256(data).hexdigest()


def read_yaml_mapping(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The top-level mapping of a YAML config file (``safe_load``); ConfigError naming the file otherwise."""
    return read_yaml_file(path)[0]


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def config_help(cls: type, indent: str = "  ", width: int = 100) -> list[str]:
    """One ``name: default`` line per field, its help wrapped below it."""
    out = []
    for f in dataclasses.fields(cls):
        default = f.metadata.get("shown_default", _default(f))
        if default == "" or default is None:
            default = "(required)" if f.metadata.get("required") else "null"
        out.append(f"{indent}{f.name}: {default}")
        out += [f"{indent}    {ln}" for ln in textwrap.wrap(f.metadata.get("help", ""), width - len(indent))]
    return out


def add_arguments(parser: argparse.ArgumentParser | Any, cls: type, skip: tuple[str, ...] = ()) -> None:
    """One command-line option per field of ``cls`` (fields with ``cli=False`` or in ``skip`` are left out).

    Flags are ``--field-name``; booleans get ``--x/--no-x``; lists take several values; the help shows the
    default. Values are converted by the field's type, so ``from_args`` gets typed values.
    """
    hints = get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip or f.metadata.get("cli", True) is False:
            continue
        tp = _optional_inner(hints[f.name]) or hints[f.name]
        flag = f.metadata.get("flag", "--" + f.name.replace("_", "-"))
        kw: dict[str, Any] = {"dest": f.name, "default": _default(f), "help": f.metadata.get("help", "")}
        if f.metadata.get("choices"):
            kw["choices"] = list(f.metadata["choices"])
        if f.metadata.get("metavar"):
            kw["metavar"] = f.metadata["metavar"]
        if f.metadata.get("required"):
            kw["required"] = True
            kw.pop("default")
        if tp is bool:
            kw["action"] = argparse.BooleanOptionalAction
        elif get_origin(tp) in (list, tuple):
            kw["nargs"] = "+"
            args = get_args(tp)
            if args and args[0] in (int, float, str, Path):
                kw["type"] = args[0]
        elif tp in (int, float, str, Path):
            kw["type"] = tp
        if "default" in kw and kw["default"] not in (None, "", [], ()) and tp is not bool:
            kw["help"] += " (default: %(default)s)"
        parser.add_argument(flag, **kw)


def from_args(cls: type, ns: argparse.Namespace, **values: Any) -> Any:
    """The config from parsed arguments (fields the parser did not add keep their defaults), plus ``values``."""
    kwargs = {f.name: getattr(ns, f.name) for f in dataclasses.fields(cls) if hasattr(ns, f.name)}
    kwargs.update(values)
    hints = get_type_hints(cls)
    for name, v in list(kwargs.items()):
        if get_origin(_optional_inner(hints[name]) or hints[name]) is tuple and isinstance(v, list):
            kwargs[name] = tuple(v)
    return cls(**kwargs)
