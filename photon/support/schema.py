"""A small validating schema for frozen dataclass configurations.

Each configuration field is declared once, through :func:`setting`: its type, its
allowed range, its unit and its default. A configuration class derives from
:class:`Settings`, whose ``__post_init__`` calls :func:`validate`, so an instance exists
only with valid values, however it was built (in code, by :func:`dataclasses.replace`,
or from a file). :func:`from_mapping` builds a (nested) dataclass from a plain mapping
such as the one a YAML loader returns, refusing an unknown or non-string key and
reporting the dotted key and the source file of any bad value; :func:`to_mapping` is its
inverse, so that a configuration written out and read back is equal to the original.
:func:`settings_as_properties` lets an object built from a configuration (an optical
element) read each setting as an attribute without holding a second copy of it.

Rules for values:

* a ``float`` setting takes any real number (``int``, ``float``, NumPy scalars) except
  ``bool``, stored as a Python ``float``; it must be finite (NaN is always refused, an
  infinity unless the declaration has ``allow_inf=True``);
* an ``int`` setting takes an integer, or a float with an integral value, stored as
  ``int``; never a ``bool``;
* a ``bool`` setting takes ``True`` or ``False`` only (not 0 or 1);
* a ``str`` setting takes a string, one of ``choices`` when given;
* ``None`` only where the declaration is ``optional`` (its meaning is documented by
  ``null_means`` or by the configuration's docstring).

Every error is a :class:`ConfigError` of the form ``"<source>: key '<key>' = <value>:
expected <what>"``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
import typing
from typing import Any, Mapping

import numpy as np

__all__ = ["ConfigError", "Settings", "setting", "check_setting", "validate", "from_mapping",
           "to_mapping", "settings_as_properties"]

_REPR_LIMIT = 80


def _short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _REPR_LIMIT else text[:_REPR_LIMIT - 3] + "..."


class ConfigError(ValueError):
    """A configuration value that is unknown, of the wrong type or out of range.

    Attributes
    ----------
    key, value, expected, source
        The dotted key at fault, its value, what was expected and where the value came
        from (a file name, or the configuration class for one built in code). ``None``
        for an error about a whole file (empty, not UTF-8, not YAML).
    """

    def __init__(self, message: str, *, key: str | None = None, value: Any = None,
                 expected: str | None = None, source: str | None = None):
        super().__init__(message)
        self.key, self.value, self.expected, self.source = key, value, expected, source

    @classmethod
    def invalid(cls, key: str, value: Any, expected: str, source: str) -> "ConfigError":
        """``"<source>: key '<key>' = <value>: expected <expected>"``."""
        return cls(f"{source}: key '{key}' = {_short_repr(value)}: expected {expected}",
                   key=key, value=value, expected=expected, source=source)

    def at(self, source: str, prefix: str = "") -> "ConfigError":
        """The same error for the key ``prefix + key`` of ``source`` (e.g. a YAML file)."""
        if self.key is None:
            return self
        return ConfigError.invalid(prefix + self.key, self.value, self.expected, source)


def setting(
    default: Any,
    *,
    kind: type = float,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    hi_open: bool = False,
    optional: bool = False,
    null_means: str = "",
    allow_inf: bool = False,
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
        ``None`` is a legal value.
    null_means
        What ``None`` means (``"a static medium"``), quoted in error messages; implies
        ``optional``.
    allow_inf
        A ``float`` setting may be infinite (within its bounds). Off by default: a
        setting is finite unless its declaration says otherwise.
    choices
        The legal values of a string setting.
    unit
        The unit, quoted in error messages.
    """
    if kind not in (float, int, bool, str):
        raise TypeError(f"kind = {kind!r}: expected float, int, bool or str")
    meta = dict(kind=kind, lo=lo, hi=hi, lo_open=lo_open, hi_open=hi_open,
                optional=optional or bool(null_means), null_means=null_means,
                allow_inf=allow_inf, choices=choices, unit=unit)
    return dataclasses.field(default=default, metadata={"setting": meta})


def _expected(meta: dict) -> str:
    kind = meta["kind"]
    text = {float: "a finite number", int: "an integer", bool: "true or false",
            str: "a string"}[kind]
    if kind is float and meta["allow_inf"]:
        text = "a number"
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
        text += ", or null" + (f" for {meta['null_means']}" if meta["null_means"] else "")
    return text


def _looks_numeric(text: str) -> bool:
    if not any(c.isdigit() for c in text):  # 'nan', 'inf': words, not a mistyped number
        return False
    try:
        float(text)
    except ValueError:
        return False
    return True


def _check_value(key: str, value: Any, meta: dict, source: str) -> Any:
    """Return ``value`` converted to the setting's type, or raise :class:`ConfigError`."""
    raw = value

    def fail(hint: str = "") -> ConfigError:
        return ConfigError.invalid(key, raw, _expected(meta) + hint, source)

    if value is None:
        if meta["optional"]:
            return None
        raise fail()
    kind = meta["kind"]
    if kind is bool:
        if isinstance(value, (bool, np.bool_)):
            return bool(value)
        raise fail()
    if kind is str:
        if not isinstance(value, str) or (meta["choices"] and value not in meta["choices"]):
            raise fail()
        return value
    # Numbers: never a bool (True is an int in Python, and 'yes' a bool in YAML).
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        hint = ""
        if isinstance(value, str) and _looks_numeric(value):
            hint = ("; got text (YAML reads 1e3 and 1.0e3 as strings: write 1000.0 or "
                    "1.0e+3)")
        raise fail(hint)
    if kind is int:
        if not isinstance(value, numbers.Integral):
            value_f = float(value)
            if not value_f.is_integer():  # also refuses NaN and infinities
                raise fail()
        value = int(value)
    else:
        value = float(value)
        if math.isnan(value) or (math.isinf(value) and not meta["allow_inf"]):
            raise fail()
    lo, hi = meta["lo"], meta["hi"]
    if lo is not None and (value < lo or (meta["lo_open"] and value == lo)):
        raise fail()
    if hi is not None and (value > hi or (meta["hi_open"] and value == hi)):
        raise fail()
    return value


def check_setting(key: str, value: Any, source: str, **declaration) -> Any:
    """Check one value against a declaration given as :func:`setting`'s keywords.

    For arguments that are not configuration fields (an element's ``n_in``, say), so
    that they follow the same rules and give the same messages.

    Returns
    -------
    The value converted to the declared kind.

    Examples
    --------
    >>> check_setting("n_in", 256, "DMD", kind=int, lo=1, unit="features")
    256
    """
    meta = setting(None, **declaration).metadata["setting"]
    return _check_value(key, value, meta, source)


@functools.lru_cache(maxsize=None)
def _field_kinds(cls) -> dict:
    """``{name: (field, section dataclass or None, whether null is allowed)}`` of ``cls``."""
    hints = typing.get_type_hints(cls)
    out = {}
    for field in dataclasses.fields(cls):
        hint = hints[field.name]
        args = typing.get_args(hint)
        nested = next((c for c in (hint, *args) if dataclasses.is_dataclass(c)), None)
        out[field.name] = (field, nested, type(None) in args)
    return out


def validate(obj, source: str | None = None) -> None:
    """Validate a configuration dataclass instance and normalize its values in place.

    Every :func:`setting` field is checked and converted (an integer given for a
    ``float`` setting becomes a ``float``, ...); a section field must hold an instance of
    its section class (itself validated when it was built), or ``None`` where declared
    ``Optional``; a field without a declaration must be a string (a free-text name or
    description). Then ``obj.check(source)`` runs, if the class defines it, for the
    constraints that tie several fields together. :class:`Settings` calls this on
    construction.

    Parameters
    ----------
    obj
        The configuration (a dataclass instance, frozen or not).
    source
        Where the values come from, quoted in errors (default: the class name).

    Raises
    ------
    ConfigError
        Naming the key, the value, what was expected and ``source``.
    """
    source = source or type(obj).__name__
    for name, (field, nested, nullable) in _field_kinds(type(obj)).items():
        value = getattr(obj, name)
        if nested is not None:
            if value is None and nullable:
                continue
            if not isinstance(value, nested):
                expected = f"a {nested.__name__}" + (", or null" if nullable else "")
                raise ConfigError.invalid(name, value, expected, source)
            continue
        if "setting" in field.metadata:
            converted = _check_value(name, value, field.metadata["setting"], source)
            if converted is not value:
                object.__setattr__(obj, name, converted)  # frozen dataclasses too
        elif not isinstance(value, str):  # free-text fields such as a description
            raise ConfigError.invalid(name, value, "a string", source)
    check = getattr(obj, "check", None)
    if check is not None:
        check(source)


class Settings:
    """Base of the configuration dataclasses: an instance validates itself when built."""

    def __post_init__(self) -> None:
        validate(self)


def _key_hint(key: Any) -> str:
    if isinstance(key, bool):
        return " (YAML reads yes/no/on/off/true/false as booleans: quote the key)"
    if key is None:
        return " (YAML reads null and ~ as null: quote the key)"
    return ""


def from_mapping(cls, mapping: Mapping | None, source: str = "<config>", prefix: str = ""):
    """Build dataclass ``cls`` from ``mapping``, validating every key.

    Missing keys take their defaults. A nested section may be ``null`` where the field
    is declared ``Optional`` (e.g. no polarizer); a section left empty (``None`` where
    the section is not optional) takes its defaults.

    Raises
    ------
    ConfigError
        On a non-string or unknown key, a wrong type or an out-of-range value; the
        message names the dotted key, the value, what was expected and ``source``.
    """
    if mapping is None:
        mapping = {}
    if not isinstance(mapping, Mapping):
        raise ConfigError.invalid(prefix.rstrip(".") or "<top level>", mapping,
                                  "a mapping of keys to values", source)
    kinds = _field_kinds(cls)
    for key, value in mapping.items():
        if not isinstance(key, str):
            raise ConfigError(
                f"{source}: key {prefix}{key!r} = {_short_repr(value)}: expected a string key, "
                f"one of {', '.join(kinds)}{_key_hint(key)}",
                key=f"{prefix}{key!r}", value=value, expected="a string key", source=source)
        if key not in kinds:
            raise ConfigError(
                f"{source}: unknown key '{prefix}{key}' = {_short_repr(value)}: expected one of "
                f"{', '.join(sorted(kinds))}",
                key=prefix + key, value=value, expected="a known key", source=source)
    values = {}
    for name, value in mapping.items():
        _, nested, nullable = kinds[name]
        if nested is not None and not (value is None and nullable):
            value = from_mapping(nested, value, source, f"{prefix}{name}.")
        values[name] = value
    try:
        return cls(**values)
    except ConfigError as err:  # the instance's own validation: locate it in the source
        raise err.at(source, prefix) from None


def to_mapping(obj) -> dict:
    """Return a plain nested ``dict`` of a configuration dataclass (YAML-ready)."""
    out = {}
    for field in dataclasses.fields(obj):
        value = getattr(obj, field.name)
        out[field.name] = to_mapping(value) if dataclasses.is_dataclass(value) else value
    return out


def settings_as_properties(config_cls, attribute: str = "config", names=None):
    """Class decorator: read-only attributes that read a configuration's settings.

    For each field of ``config_cls`` (or only ``names``) not already defined by the
    decorated class, adds a property returning ``getattr(self.<attribute>, name)``. An
    element built from a configuration thus exposes ``camera.read_noise_e`` while the
    configuration stays the one place the value is held.

    Parameters
    ----------
    config_cls
        The configuration dataclass.
    attribute
        The instance attribute holding the configuration.
    names
        The fields to expose (default: all of them).
    """
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    names = tuple(fields) if names is None else tuple(names)
    unknown = [n for n in names if n not in fields]
    if unknown:
        raise TypeError(f"names = {unknown!r}: expected fields of {config_cls.__name__}")

    def make(name: str) -> property:
        unit = fields[name].metadata.get("setting", {}).get("unit", "")
        doc = (f"``{name}``{f' ({unit})' if unit else ''}, read from ``self.{attribute}`` "
               f"(:class:`{config_cls.__name__}`).")
        return property(lambda self: getattr(getattr(self, attribute), name), doc=doc)

    def decorate(cls):
        for name in names:
            if name not in cls.__dict__:
                setattr(cls, name, make(name))
        return cls

    return decorate
