"""A small validating schema for frozen dataclass configurations.

Each configuration field declares, through :func:`setting`, its type, its allowed range
and its unit. :func:`from_mapping` builds a (nested) dataclass from a plain mapping
such as the one ``yaml.safe_load`` returns, and refuses an unknown key, a wrong type or
an out-of-range value with a :class:`ConfigError` that names the key, the value, what
was expected and the source file. :func:`to_mapping` is its inverse, so that a
configuration written out and read back is equal to the original.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from typing import Any, Mapping

__all__ = ["ConfigError", "setting", "from_mapping", "to_mapping", "validate"]


class ConfigError(ValueError):
    """A configuration value that is unknown, of the wrong type or out of range."""


def setting(
    default: Any,
    *,
    kind: type | tuple = float,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    hi_open: bool = False,
    optional: bool = False,
    choices: tuple | None = None,
    unit: str = "",
):
    """Declare a validated dataclass field.

    Parameters
    ----------
    default
        The default value (immutable).
    kind
        ``float``, ``int``, ``bool`` or ``str``. A ``float`` setting accepts integers.
    lo, hi
        Inclusive bounds (exclusive with ``lo_open`` / ``hi_open``); ``None`` for none.
    optional
        ``None`` is a legal value (its meaning is stated in the field's docstring).
    choices
        The legal values of a string setting.
    unit
        The unit, quoted in error messages.
    """
    meta = dict(kind=kind, lo=lo, hi=hi, lo_open=lo_open, hi_open=hi_open,
                optional=optional, choices=choices, unit=unit)
    return dataclasses.field(default=default, metadata={"setting": meta})


def _expected(meta: dict) -> str:
    kind = meta["kind"]
    text = {float: "a number", int: "an integer", bool: "true or false", str: "a string"}[kind]
    if meta["choices"]:
        text = "one of " + ", ".join(repr(c) for c in meta["choices"])
    bounds = []
    if meta["lo"] is not None:
        bounds.append(("> " if meta["lo_open"] else ">= ") + f"{meta['lo']:g}")
    if meta["hi"] is not None:
        bounds.append(("< " if meta["hi_open"] else "<= ") + f"{meta['hi']:g}")
    if bounds:
        text += " " + " and ".join(bounds)
    if meta["unit"]:
        text += f" ({meta['unit']})"
    if meta["optional"]:
        text += ", or null"
    return text


def _fail(key: str, value: Any, expected: str, source: str) -> ConfigError:
    return ConfigError(f"{source}: key '{key}' = {value!r}: expected {expected}")


def _check_value(key: str, value: Any, meta: dict, source: str) -> Any:
    """Return ``value`` converted to the setting's type, or raise :class:`ConfigError`."""
    if value is None:
        if meta["optional"]:
            return None
        raise _fail(key, value, _expected(meta), source)
    kind = meta["kind"]
    if kind is bool:
        if not isinstance(value, bool):
            raise _fail(key, value, _expected(meta), source)
        return value
    if kind is str:
        if not isinstance(value, str) or (meta["choices"] and value not in meta["choices"]):
            raise _fail(key, value, _expected(meta), source)
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(key, value, _expected(meta), source)
    if kind is int:
        if isinstance(value, float) and not value.is_integer():
            raise _fail(key, value, _expected(meta), source)
        value = int(value)
    else:
        value = float(value)
        if math.isnan(value):
            raise _fail(key, value, _expected(meta), source)
    lo, hi = meta["lo"], meta["hi"]
    if lo is not None and (value < lo or (meta["lo_open"] and value == lo)):
        raise _fail(key, value, _expected(meta), source)
    if hi is not None and (value > hi or (meta["hi_open"] and value == hi)):
        raise _fail(key, value, _expected(meta), source)
    return value


def _nested_type(cls, field: dataclasses.Field):
    """Return ``(section dataclass or None for a leaf, whether null is allowed)``."""
    hint = typing.get_type_hints(cls)[field.name]
    args = typing.get_args(hint)
    nullable = type(None) in args
    for candidate in (hint, *args):
        if dataclasses.is_dataclass(candidate):
            return candidate, nullable
    return None, nullable


def from_mapping(cls, mapping: Mapping | None, source: str = "<config>", prefix: str = ""):
    """Build dataclass ``cls`` from ``mapping``, validating every key.

    Missing keys take their defaults. A nested section may be ``null`` where the field
    is declared ``Optional`` (e.g. no polarizer).

    Raises
    ------
    ConfigError
        On an unknown key, a wrong type or an out-of-range value; the message names
        the dotted key, the value, what was expected and ``source``.
    """
    if mapping is None:
        mapping = {}
    if not isinstance(mapping, Mapping):
        raise ConfigError(f"{source}: section '{prefix or '<top>'}' = {mapping!r}: "
                          "expected a mapping of keys to values")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(mapping) - set(fields))
    if unknown:
        key = f"{prefix}{unknown[0]}"
        raise ConfigError(f"{source}: unknown key '{key}' = {mapping[unknown[0]]!r}: "
                          f"expected one of {', '.join(sorted(fields))}")
    values = {}
    for name, value in mapping.items():
        field = fields[name]
        key = f"{prefix}{name}"
        nested, nullable = _nested_type(cls, field)
        if nested is not None:
            if value is None and nullable:
                values[name] = None
            else:
                values[name] = from_mapping(nested, value, source, key + ".")
        elif "setting" in field.metadata:
            values[name] = _check_value(key, value, field.metadata["setting"], source)
        else:  # free-text fields such as a description
            if not isinstance(value, str):
                raise _fail(key, value, "a string", source)
            values[name] = value
    obj = cls(**values)
    check = getattr(obj, "check", None)
    if check is not None:
        check(source)
    return obj


def validate(obj, source: str = "<config>") -> None:
    """Re-validate a dataclass instance built in code (not from a file)."""
    from_mapping(type(obj), to_mapping(obj), source)


def to_mapping(obj) -> dict:
    """Return a plain nested ``dict`` of a configuration dataclass (YAML-ready)."""
    out = {}
    for field in dataclasses.fields(obj):
        value = getattr(obj, field.name)
        out[field.name] = to_mapping(value) if dataclasses.is_dataclass(value) else value
    return out
