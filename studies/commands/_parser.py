"""The commands' argument parser: every number range-checked, every refusal one line.

:class:`CommandParser` is :class:`argparse.ArgumentParser` with two rules:

* a refusal is one line, ``PROG: error: argument --batch: 0: expected a positive
  integer``, with exit status 2 (argparse prints its usage first; ``--help`` still shows
  it);
* an argument may not be a bare ``int`` or ``float``: its type must say the range it
  accepts (:func:`int_in`, :func:`number_in` and the shorthands below), so that every
  value is checked before any work starts. A parser declaring a bare ``int`` fails as
  soon as it parses, ``--help`` included, which the tests run for every command.
"""

from __future__ import annotations

import argparse
import math

from photon.support.cli import non_negative_int, positive_float, positive_int

__all__ = ["CommandParser", "int_in", "number_in", "positive_int", "non_negative_int",
           "positive_float", "non_negative_float", "fraction", "seed"]


class CommandParser(argparse.ArgumentParser):
    """An argument parser whose numbers carry their range and whose errors are one line."""

    def error(self, message: str):
        """Print ``PROG: error: MESSAGE`` on one line and exit with status 2."""
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())}\n")

    def parse_known_args(self, args=None, namespace=None):
        bare = [action.option_strings[0] if action.option_strings else action.dest
                for action in self._actions if action.type in (int, float)]
        if bare:
            raise TypeError(f"{self.prog}: arguments {', '.join(bare)} declared with a bare "
                            "int or float: expected a type that states the range "
                            "(studies.commands._parser)")
        return super().parse_known_args(args, namespace)


def int_in(low: int, high: float = math.inf):
    """An :mod:`argparse` type: an integer in ``[low, high]``."""
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


#: A count of non-negative seconds, watts, ... (>= 0).
non_negative_float = number_in(0.0)
#: A fraction in [0, 1).
fraction = number_in(0.0, 1.0, high_open=True)
#: A seed (what numpy.random.default_rng accepts).
seed = non_negative_int

