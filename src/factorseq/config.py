"""Typed dataclass configs: building from dicts, YAML files and ``--set key=value`` overrides."""
from __future__ import annotations

import contextlib
import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError, FactorseqError


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
    except UnicodeDecodeError:
        raise FactorseqError(f"config file {p} is not a text (YAML) file") from None
    except yaml.YAMLError as e:
        raise FactorseqError(f"config file {p} is not valid YAML: {str(e).splitlines()[0]}") \
            from None
    if not isinstance(data, dict):
        raise FactorseqError(f"config file {p} must hold a mapping of key: value")
    return data


class _WrongType(ValueError):
    """A value that does not fit a field's type (``build`` names the key)."""


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        names = [_type_name(a) for a in typing.get_args(tp) if a is not type(None)]
        none = " or null" if type(None) in typing.get_args(tp) else ""
        return " or ".join(names) + none
    if origin in (tuple, list):
        return "a list"
    if origin is dict or tp is dict:
        return "a mapping"
    return {int: "an integer", float: "a number", bool: "true/false",
            str: "a string"}.get(tp, getattr(tp, "__name__", str(tp)))


def _scalar(value: Any, tp: type) -> Any:
    """``value`` as the scalar type ``tp`` (int, float, bool, str) or _WrongType."""
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif isinstance(value, bool):
        pass  # true/false is no number and no name
    elif tp is int:
        if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
            return int(value)
    elif tp is float:
        if isinstance(value, (int, float)):
            return float(value)
        with contextlib.suppress(TypeError, ValueError):  # YAML 1.1 reads 1e-3 as a string
            return float(value)
    elif tp is str:
        if isinstance(value, (str, int, float)):  # YAML reads a name like 7 as a number
            return str(value)
    raise _WrongType(tp)


def _items(value: list | tuple, origin: type, args: tuple) -> Any:
    """The elements of a list/tuple coerced to the element types ``args``."""
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return tuple(_coerce(v, args[0]) for v in value)
    if origin is tuple and args:
        if len(args) != len(value):
            raise _WrongType(args)
        return tuple(_coerce(v, a) for v, a in zip(value, args, strict=True))
    if origin is list and args:
        return [_coerce(v, args[0]) for v in value]
    return origin(value)


def _coerce(value: Any, tp: Any) -> Any:
    """Coerce a YAML/JSON value to a dataclass field type (scalars, optionals, tuples, nested
    lists); a value that does not fit raises _WrongType."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            if len(args) < len(typing.get_args(tp)):
                return None
            raise _WrongType(tp)
        for a in args:  # the first member the value fits
            try:
                return _coerce(value, a)
            except _WrongType:
                continue
        raise _WrongType(tp)
    if origin in (tuple, list):
        if isinstance(value, str) and typing.get_args(tp)[:1] == (str,):
            value = [v.strip() for v in value.split(",")]  # "a,b" for a list of names
        if not isinstance(value, (list, tuple)):
            raise _WrongType(tp)
        try:
            return _items(value, origin, typing.get_args(tp))
        except _WrongType:  # the config's own validation judges the inside of a list (some
            return origin(value)  # accept shorthands, e.g. one flat pair for a list of pairs)
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise _WrongType(tp)
        return value
    if tp in (int, float, bool, str):
        return _scalar(value, tp)
    return value


def build(cls: type, values: dict[str, Any], *, what: str = "config") -> Any:
    """Instantiate dataclass ``cls`` from ``values``; unknown keys and values of the wrong type
    are clear user errors naming the key."""
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise FactorseqError(f"unknown {what} key(s) {', '.join(unknown)}; "
                             f"valid keys: {', '.join(sorted(fields))}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for k, v in values.items():
        tp = hints.get(k, Any)
        try:
            kwargs[k] = _coerce(v, tp)
        except _WrongType:
            raise FactorseqError(f"{what} key {k} must be {_type_name(tp)}, got {v!r}") \
                from None
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise FactorseqError(f"invalid {what}: {e}") from None


def to_dict(cfg: Any) -> dict[str, Any]:
    """JSON-ready dict of a dataclass (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def require(cond: bool, message: str) -> None:
    """Validation helper for ``__post_init__``: raise ConfigError(message) (a user error and a
    ValueError) unless cond."""
    if not cond:
        raise ConfigError(message)
