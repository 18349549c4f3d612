"""Strict JSON for results: what a strict reader (``json.loads`` of another language,
``jq``) accepts, with no ``NaN`` or ``Infinity`` tokens.

Non-finite floats (an undefined angle, a metric of a run that diverged) become ``null``;
NumPy scalars and arrays become plain numbers and lists; dataclasses become objects; any
other object (a path, a device description) becomes its text.
"""

from __future__ import annotations

import dataclasses
import json
import math
import pathlib

import numpy as np

__all__ = ["strict", "dumps", "write_json"]


def strict(value):
    """``value`` with non-finite floats as None and NumPy values as plain Python ones."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    elif isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(key): strict(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [strict(item) for item in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return strict(dataclasses.asdict(value))
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return str(value)


def dumps(value, indent: int | None = 1) -> str:
    """Strict JSON text of ``value`` (see :func:`strict`)."""
    return json.dumps(strict(value), indent=indent, allow_nan=False)


def write_json(path, value, indent: int | None = 1) -> pathlib.Path:
    """Write ``value`` as strict JSON to ``path``; returns the path."""
    path = pathlib.Path(path)
    path.write_text(dumps(value, indent) + "\n", encoding="utf-8")
    return path
