"""Checks of plain arguments (counts, seeds, physical numbers) at the public boundaries.

Configuration fields are checked by :mod:`photon.support.schema`; these helpers give the
function arguments that are not configuration (a batch size, a number of probes, a
frame time) the same rules and the same messages: ``"<name> = <value>: expected <what>"``.
A boolean is never taken for a number (``True`` is not one feature), strings are not
parsed, and floats must be finite unless said otherwise.
"""

from __future__ import annotations

import math
import numbers

__all__ = ["check_int", "check_number", "check_seed"]


def _is_integer(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) \
        and type(value).__name__ != "bool_"


def check_int(name: str, value, low: int = 1, high: float = math.inf) -> int:
    """``value`` as an ``int``, or a ValueError unless it is an integer in ``[low, high]``.

    Parameters
    ----------
    name
        The argument's name, for the message.
    value
        The argument (a Python or NumPy integer; not a bool, a float or a string).
    low, high
        The inclusive bounds.
    """
    if not _is_integer(value) or not low <= value <= high:
        if high < math.inf:
            what = f"an integer in [{low}, {high}]"
        elif low == 1:
            what = "a positive integer"
        elif low == 0:
            what = "a non-negative integer"
        else:
            what = f"an integer >= {low}"
        raise ValueError(f"{name} = {value!r}: expected {what}")
    return int(value)


def check_seed(name: str, value) -> int:
    """A seed: a non-negative integer (what :func:`numpy.random.default_rng` accepts)."""
    return check_int(name, value, low=0)


def check_number(name: str, value, *, low: float = -math.inf, high: float = math.inf,
                 low_open: bool = False, high_open: bool = False, unit: str = "",
                 allow_inf: bool = False) -> float:
    """``value`` as a ``float``, or a ValueError unless it is a real number in range.

    Parameters
    ----------
    name
        The argument's name, for the message.
    value
        The argument (an int or float, Python or NumPy; not a bool or a string).
    low, high
        Bounds, inclusive unless ``low_open`` / ``high_open``.
    unit
        The unit, for the message (``"s"``, ``"W"``).
    allow_inf
        Accept an infinite value (within the bounds).
    """
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) \
        and type(value).__name__ != "bool_"
    if ok:
        value = float(value)
        ok = not math.isnan(value) and (allow_inf or math.isfinite(value))
        ok = ok and (value > low if low_open else value >= low)
        ok = ok and (value < high if high_open else value <= high)
    if not ok:
        parts = []
        if low > -math.inf:
            parts.append(f"{'>' if low_open else '>='} {low:g}")
        if high < math.inf:
            parts.append(f"{'<' if high_open else '<='} {high:g}")
        kind = "a number" if allow_inf else "a finite number"
        bounds = f" {' and '.join(parts)}" if parts else ""
        raise ValueError(f"{name} = {value!r}: expected {kind}{bounds}"
                         + (f" ({unit})" if unit else ""))
    return value
