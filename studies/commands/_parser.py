"""The commands' argument parser: every number range-checked, every refusal one line.

:class:`CommandParser` is :class:`argparse.ArgumentParser` with two rules:

* a refusal is one line, ``PROG: error: argument --batch: 0: expected a positive
  integer``, with exit status 2 (argparse prints its usage first; ``--help`` still shows
  it);
* an argument may not be a bare ``int`` or ``float``: its type must say the range it
  accepts (:func:`photon.support.cli.int_in`, :func:`~photon.support.cli.number_in` and
  the shorthands, re-exported here), so that every
  value is checked before any work starts. A parser declaring a bare ``int`` fails as
  soon as it parses, ``--help`` included, which the tests run for every command.
"""

from __future__ import annotations

import argparse

from photon.support.cli import int_in, non_negative_int, number_in, positive_float, positive_int

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


#: A count of non-negative seconds, watts, ... (>= 0).
non_negative_float = number_in(0.0)
#: A fraction in [0, 1).
fraction = number_in(0.0, 1.0, high_open=True)
#: A seed (what numpy.random.default_rng accepts).
seed = non_negative_int

