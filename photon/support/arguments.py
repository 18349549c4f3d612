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

import numpy as np

__all__ = ["check_int", "check_number", "check_seed", "check_bool", "check_choice",
           "check_array", "check_widths", "is_integer"]


def is_integer(value) -> bool:
    """Whether ``value`` is a Python or NumPy integer (not a bool)."""
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
    if not is_integer(value) or not low <= value <= high:
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
                 allow_inf: bool = False, optional: bool = False) -> float | None:
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
    optional
        Accept None (returned as None).
    """
    if value is None and optional:
        return None
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
                         + (f" ({unit})" if unit else "") + (" or None" if optional else ""))
    return value


def check_bool(name: str, value, *, optional: bool = False, none_means: str = "") -> bool | None:
    """``value`` as a ``bool``, or a ValueError unless it is True or False (Python or NumPy).

    ``optional``: None is accepted (and returned); ``none_means`` says what None does,
    for the message.
    """
    if value is None and optional:
        return None
    if not isinstance(value, (bool, np.bool_)):
        alternative = ""
        if optional:
            alternative = " or None" + (f" ({none_means})" if none_means else "")
        raise ValueError(f"{name} = {value!r}: expected True or False{alternative}")
    return bool(value)


def check_widths(name: str, value, *, why: str = "") -> tuple[int, ...]:
    """``value`` as a tuple of layer widths, or a ValueError unless it holds one or more
    positive integers; ``why`` completes the message (why none is not enough)."""
    try:
        widths = tuple(value)
    except TypeError:
        widths = ()
    if not widths or not all(is_integer(w) and w >= 1 for w in widths):
        raise ValueError(f"{name} = {value!r}: expected one or more positive layer widths"
                         + (f" ({why})" if why else ""))
    return tuple(int(w) for w in widths)


def check_choice(name: str, value, choices) -> str:
    """``value``, or a ValueError unless it is one of the strings ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} = {value!r}: expected one of "
                         + ", ".join(repr(c) for c in choices))
    return value


_KIND_NAMES = {"b": "booleans", "i": "signed integers", "u": "unsigned integers",
               "f": "floats"}


def check_array(name: str, value, *, ndim: int | None = None, min_ndim: int = 0,
                kinds: str = "biuf", finite: bool = True, min_size: int = 1,
                what: str = "") -> np.ndarray:
    """``value`` as a NumPy array, or a ValueError naming what is wrong, as scikit-learn's
    ``check_array`` would: its type, shape, dtype or first non-finite value.

    Parameters
    ----------
    name
        The argument's name, for the message.
    value
        An array-like (a NumPy array, a list; a CPU torch tensor is read through
        ``numpy()``). Strings, objects and complex numbers are refused.
    ndim, min_ndim
        The exact number of dimensions, or the least.
    kinds
        Accepted dtype kinds (``"b"`` bool, ``"i"`` signed, ``"u"`` unsigned, ``"f"``
        float).
    finite
        Refuse NaN and infinities (floats).
    min_size
        The least length of every axis (1: no empty axis).
    what
        The expected shape in words, for the message (e.g. ``"(n_samples, n_features)"``).
    """
    if type(value).__name__ == "Tensor" and hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as error:  # ragged nested lists
        raise ValueError(f"{name}: expected an array{' ' + what if what else ''} "
                         f"({error})") from error
    shape = f"{name}: shape {array.shape}"
    expected = f"expected {what or (f'{ndim}-D' if ndim is not None else f'>= {min_ndim}-D')}"
    if (ndim is not None and array.ndim != ndim) or array.ndim < min_ndim:
        raise ValueError(f"{shape}: {expected}")
    if min_size and (array.size == 0 or min(array.shape, default=1) < min_size):
        raise ValueError(f"{shape}: {expected} with no empty axis (at least {min_size} along "
                         "each)")
    if array.dtype.kind not in kinds:
        accepted = ", ".join(_KIND_NAMES[k] for k in kinds)
        raise ValueError(f"{name}: dtype {array.dtype}: expected real numbers ({accepted})")
    if finite and array.dtype.kind == "f":
        bad = ~np.isfinite(array)
        if bad.any():
            index = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(f"{name}: value {array[index].item()!r} at index {index}: expected "
                             "finite values")
    return array
