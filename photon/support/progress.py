"""Progress bars for long work, on stderr, drawn by tqdm.

:class:`Progress` fixes the project's one policy on top of tqdm: a bar is shown when
asked for, or (``enabled=None``) only for work of at least ``min_steps`` steps, so that
quick calls stay silent; the bar shows the rate and the time left and redraws at most
four times a second.
"""

from __future__ import annotations

import sys

from tqdm import tqdm

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
        self.enabled = self.total >= min_steps if enabled is None else bool(enabled)
        self._bar = tqdm(total=self.total, desc=description, unit=unit, mininterval=0.25,
                         file=sys.stderr if stream is None else stream,
                         disable=not self.enabled, dynamic_ncols=True, leave=True)

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def update(self, steps: int = 1) -> None:
        """Record ``steps`` more finished steps."""
        self._bar.update(steps)

    def close(self) -> None:
        """Draw the final state and end the bar's line."""
        self._bar.close()
