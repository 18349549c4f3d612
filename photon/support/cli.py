"""One way for every command-line front to end on a user's error.

A script's ``main(argv)`` parses its arguments with :mod:`argparse` (which answers a bad
option with its usage and exit status 2); :func:`run_main` gives the errors raised later,
once the arguments reach the toolkit, the same treatment: one line that names the
argument, the value and what was expected (the toolkit's error messages are written that
way), exit status 2, no traceback. A bug (any other exception) still shows its traceback,
and ``PHOTON_DFA_TRACEBACK=1`` shows it for user errors too.

The :mod:`argparse` types here (:func:`int_in`, :func:`number_in` and their shorthands)
state the range they accept, so that every number is checked before any work starts.
"""

from __future__ import annotations

import argparse
import math
import os
import pathlib
import sys
from typing import Callable

__all__ = ["USER_ERRORS", "run_main", "int_in", "number_in", "positive_int",
           "non_negative_int", "positive_float", "widths"]

#: What a user's input can raise: a bad value (ConfigError is a ValueError), a missing or
#: unusable path.
USER_ERRORS = (ValueError, FileNotFoundError, NotADirectoryError, IsADirectoryError,
               PermissionError)


def run_main(main: Callable[[list | None], int], argv: list | None = None,
             prog: str | None = None) -> int:
    """Run ``main(argv)``; a user's error becomes one line on stderr and exit status 2.

    ``prog`` names the program in the message (default: the script's file name).
    """
    prog = prog or pathlib.Path(sys.argv[0]).name or "photon-dfa"
    try:
        return main(argv)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as error:
        if os.environ.get("PHOTON_DFA_TRACEBACK"):
            raise
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2


def int_in(low: int, high: float = math.inf):
    """An :mod:`argparse` type: an integer in ``[low, high]``, refused with its text."""
    what = (f"an integer in [{low}, {high}]" if high < math.inf
            else "a positive integer" if low == 1 else "a non-negative integer" if low == 0
            else f"an integer >= {low}")

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}: expected {what}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value}: expected {what}")
        return value

    parse.__name__ = f"int_in_{low}_{high}"
    return parse


def number_in(low: float = -math.inf, high: float = math.inf, *, low_open: bool = False,
              high_open: bool = False, unit: str = ""):
    """An :mod:`argparse` type: a finite number within the bounds (inclusive unless open)."""
    parts = []
    if low > -math.inf:
        parts.append(f"{'>' if low_open else '>='} {low:g}")
    if high < math.inf:
        parts.append(f"{'<' if high_open else '<='} {high:g}")
    what = "a finite number" + (" " + " and ".join(parts) if parts else "") \
        + (f" ({unit})" if unit else "")

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}: expected {what}") from None
        ok = math.isfinite(value) and (value > low if low_open else value >= low) \
            and (value < high if high_open else value <= high)
        if not ok:
            raise argparse.ArgumentTypeError(f"{text!r}: expected {what}")
        return value

    parse.__name__ = "number_in"
    return parse


#: An integer >= 1 (a count, a size).
positive_int = int_in(1)
#: An integer >= 0 (a seed, a count that may be zero).
non_negative_int = int_in(0)
#: A finite number > 0.
positive_float = number_in(0.0, low_open=True)


def widths(text: str) -> tuple[int, ...]:
    """An :mod:`argparse` type: comma-separated positive layer widths (``256,256``)."""
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected comma-separated widths, e.g. 256,256") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected positive widths, e.g. 256,256")
    return values
