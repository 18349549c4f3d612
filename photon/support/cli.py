"""One way for every command-line front to end on a user's error.

A script's ``main(argv)`` parses its arguments with :mod:`argparse` (which answers a bad
option with its usage and exit status 2); :func:`run_main` gives the errors raised later,
once the arguments reach the toolkit, the same treatment: one line that names the
argument, the value and what was expected (the toolkit's error messages are written that
way), exit status 2, no traceback. A bug (any other exception) still shows its traceback,
and ``PHOTON_DFA_TRACEBACK=1`` shows it for user errors too.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
from typing import Callable

__all__ = ["USER_ERRORS", "run_main", "positive_int", "non_negative_int", "positive_float",
           "widths"]

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


def positive_int(text: str) -> int:
    """An :mod:`argparse` type: a positive integer, refused with its text otherwise."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a positive integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: expected a positive integer")
    return value


def non_negative_int(text: str) -> int:
    """An :mod:`argparse` type: an integer >= 0 (a seed, a count that may be zero)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a non-negative integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value}: expected a non-negative integer")
    return value


def positive_float(text: str) -> float:
    """An :mod:`argparse` type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a positive number") from None
    if not 0.0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: expected a finite number > 0")
    return value


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
