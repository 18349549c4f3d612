"""A dependency-free progress bar for long work, written to stderr.

It redraws at most a few times a second, shows the rate and the time left, and stays
silent when disabled or for work too short to be worth a bar.
"""

from __future__ import annotations

import sys
import time

__all__ = ["Progress"]


class Progress:
    """Report progress of ``total`` steps on stderr.

    Parameters
    ----------
    total
        Number of steps.
    description
        What is running (shown in front of the bar).
    enabled
        ``True``, ``False``, or ``None`` to show the bar only when ``total >= min_steps``.
    unit
        Name of a step.
    min_steps
        With ``enabled=None``, the least number of steps worth a bar.
    stream
        Where to write (stderr by default).

    Examples
    --------
    >>> with Progress(40, "projecting", unit="batch") as bar:  # doctest: +SKIP
    ...     for _ in range(40):
    ...         bar.update()
    """

    def __init__(self, total: int, description: str = "", *, enabled: bool | None = None,
                 unit: str = "step", min_steps: int = 4, stream=None):
        self.total = max(int(total), 0)
        self.description = description
        self.unit = unit
        self.enabled = self.total >= min_steps if enabled is None else bool(enabled)
        self.stream = sys.stderr if stream is None else stream
        self.done = 0
        self._start = time.perf_counter()
        self._last_draw = 0.0
        self._drawn = -1

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def update(self, steps: int = 1) -> None:
        """Record ``steps`` more finished steps."""
        self.done += steps
        now = time.perf_counter()
        if self.enabled and (now - self._last_draw > 0.25 or self.done >= self.total):
            self._last_draw = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        self._drawn = self.done
        elapsed = now - self._start
        fraction = self.done / self.total if self.total else 1.0
        bar = "#" * int(24 * fraction)
        left = elapsed / fraction - elapsed if fraction > 0 else float("nan")
        self.stream.write(f"\r{self.description} [{bar:<24}] {self.done}/{self.total} "
                          f"{self.unit}s {elapsed:6.1f} s, {left:6.1f} s left")
        self.stream.flush()

    def close(self) -> None:
        """End the bar's line."""
        if self.enabled:
            if self._drawn != self.done:
                self._draw(time.perf_counter())
            self.stream.write("\n")
            self.stream.flush()
            self.enabled = False
