"""Typed dataclass configs: building from dicts, YAML files and ``--set key=value`` overrides."""
from __future__ import annotations

import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from .errors import FactorseqError


def parse_value(text: str) -> Any:
    """``--set`` values are YAML scalars/lists: ``3`` -> 3, ``1e-3`` -> 0.001, ``[7,4]``."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str):  # YAML does not read 1e-3 as a float; Python does
        try:
            return float(value)
        except ValueError:
            return value
    return value


def parse_sets(items: list[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise FactorseqError(f"--set expects key=value, got {item!r}")
        key, _, value = item.partition("=")
        out[key.strip()] = parse_value(value.strip())
    return out


def load_yaml(path: str | Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    p = Path(path)
    if not p.is_file():
        raise FactorseqError(f"config file not found: {p}")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise FactorseqError(f"config file {p} is not valid YAML: {str(e).splitlines()[0]}") \
            from None
    if not isinstance(data, dict):
        raise FactorseqError(f"config file {p} must hold a mapping of key: value")
    return data


def _coerce(value: Any, tp: Any) -> Any:
    """Coerce a YAML/JSON value to a dataclass field type (tuples, nested lists, optionals)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _coerce(value, args[0]) if len(args) == 1 else value
    if origin in (tuple, list) and isinstance(value, (list, tuple)):
        args = typing.get_args(tp)
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0]) for v in value)
        if origin is list and args:
            return [_coerce(v, args[0]) for v in value]
        return origin(value)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is int and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def build(cls: type, values: dict[str, Any], *, what: str = "config") -> Any:
    """Instantiate dataclass ``cls`` from ``values``; unknown keys are a clear user error."""
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise FactorseqError(f"unknown {what} key(s) {', '.join(unknown)}; "
                             f"valid keys: {', '.join(sorted(fields))}")
    hints = typing.get_type_hints(cls)
    kwargs = {k: _coerce(v, hints.get(k, Any)) for k, v in values.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise FactorseqError(f"invalid {what}: {e}") from None


def to_dict(cfg: Any) -> dict[str, Any]:
    """JSON-ready dict of a dataclass (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def require(cond: bool, message: str) -> None:
    """Validation helper for ``__post_init__``: raise ValueError(message) unless cond."""
    if not cond:
        raise ValueError(message)
