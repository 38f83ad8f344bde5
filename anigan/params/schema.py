"""Declaring and checking params: each section is a frozen dataclass whose fields carry their rules.

A field is declared with `param(default, help=..., min=..., choices=...)`; `build_section` turns a
mapping from params.yaml into the dataclass, stopping at the first bad key with one line that names
the key, the value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping
from typing import Any

from anigan.errors import UserError


class ParamsError(UserError):
    """A bad key or value in params.yaml or a command-line override."""


def param(
    default: Any,
    *,
    help: str,
    min: float | None = None,
    max: float | None = None,
    gt: float | None = None,
    lt: float | None = None,
    choices: tuple | None = None,
) -> Any:
    """Declare a params field: its default, what it means, and the values allowed."""
    rules = {"help": help, "min": min, "max": max, "gt": gt, "lt": lt, "choices": choices}
    if isinstance(default, (list, dict, set)):
        raise TypeError("use a tuple for a list default: params are frozen")
    return dataclasses.field(default=default, metadata=rules)


def _type_name(tp: Any) -> str:
    if tp is type(None):
        return "null"
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is tuple:
        return f"a list of {_type_name(typing.get_args(tp)[0])}"
    return {int: "an integer", float: "a number", str: "a string", bool: "true/false"}.get(tp, str(tp))


def _coerce(value: Any, tp: Any) -> Any:
    """Return `value` as type `tp`, or raise ValueError. Only lossless conversions are made."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(tp):
            try:
                return _coerce(value, option)
            except ValueError:
                continue
        raise ValueError
    if tp is type(None):
        if value is None:
            return None
        raise ValueError
    if origin is tuple:
        item_type = typing.get_args(tp)[0]
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()] if value.strip() else []
        if not isinstance(value, (list, tuple)):
            raise ValueError
        return tuple(_coerce(v, item_type) for v in value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ValueError
    if tp is int:
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ValueError
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError
        return float(value)
    if tp is str:
        if isinstance(value, str):
            return value
        raise ValueError
    raise TypeError(f"unsupported params type {tp!r}")


def _allowed(field: dataclasses.Field, tp: Any) -> str:
    m = field.metadata
    if m.get("choices"):
        return "one of " + ", ".join(str(c) for c in m["choices"])
    bounds = []
    if m.get("min") is not None:
        bounds.append(f">= {m['min']}")
    if m.get("gt") is not None:
        bounds.append(f"> {m['gt']}")
    if m.get("max") is not None:
        bounds.append(f"<= {m['max']}")
    if m.get("lt") is not None:
        bounds.append(f"< {m['lt']}")
    return _type_name(tp) + (" " + " and ".join(bounds) if bounds else "")


def _in_range(value: Any, field: dataclasses.Field) -> bool:
    m = field.metadata
    items = value if isinstance(value, tuple) else (value,)
    for v in items:
        if v is None:
            continue
        if m.get("choices") and v not in m["choices"]:
            return False
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            if m.get("min") is not None and v < m["min"]:
                return False
            if m.get("max") is not None and v > m["max"]:
                return False
            if m.get("gt") is not None and v <= m["gt"]:
                return False
            if m.get("lt") is not None and v >= m["lt"]:
                return False
    return True


def check_value(section: str, field: dataclasses.Field, tp: Any, value: Any) -> Any:
    """Coerce and range-check one value; raise ParamsError naming `section.field`."""
    key = f"{section}.{field.name}" if section else field.name
    try:
        coerced = _coerce(value, tp)
    except ValueError:
        raise ParamsError(f"{key} = {value!r}: must be {_allowed(field, tp)}") from None
    if not _in_range(coerced, field):
        raise ParamsError(f"{key} = {value!r}: must be {_allowed(field, tp)}")
    return coerced


def unknown_key_error(key: str, known: list[str]) -> ParamsError:
    close = difflib.get_close_matches(key.split(".")[-1], known, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return ParamsError(f"{key}: unknown key{hint}; known keys: {', '.join(sorted(known))}")


def build_section(cls: type, section: str, values: Mapping[str, Any] | None) -> Any:
    """Turn one params.yaml section (a mapping, possibly empty) into its frozen dataclass."""
    if values is None:
        values = {}
    if not isinstance(values, Mapping):
        raise ParamsError(f"{section}: must be a mapping of keys to values, got {values!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in values:
        if key not in fields:
            raise unknown_key_error(f"{section}.{key}", list(fields))
    kwargs = {name: check_value(section, fields[name], hints[name], v) for name, v in values.items()}
    return cls(**kwargs)


def describe(cls: type) -> list[tuple[str, Any, str, str]]:
    """(name, default, allowed, help) for each field: used by `anigan params` style help texts."""
    hints = typing.get_type_hints(cls)
    return [(f.name, f.default, _allowed(f, hints[f.name]), f.metadata.get("help", "")) for f in dataclasses.fields(cls)]
