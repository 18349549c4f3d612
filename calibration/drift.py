"""Watching a device drift away from its calibration.

The medium's TM decorrelates over time (docs/design.md section 2): predictions made from a
calibration lose accuracy. :class:`DriftMonitor` shows a few fresh frames now and then,
compares the counts with the calibration's predictions, and says when the Pearson r has
fallen below a tolerance relative to the r measured right after calibration.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from photon import to_numpy

from .metrics import fresh_frames, intensity_correlation
from .session import Calibration

__all__ = ["DriftMonitor", "DriftCheck"]


@dataclass(frozen=True)
class DriftCheck:
    """One check: when (device frames shown so far), the r measured, and the verdict."""

    frames_acquired: int
    intensity_r: float
    drifted: bool


@dataclass
class DriftMonitor:
    """Compare a device's counts with its calibration's predictions.

    Parameters
    ----------
    device
        The open device that was calibrated.
    calibration
        Its :class:`~calibration.session.Calibration`.
    n_frames
        Fresh frames per check.
    tolerance
        Drift is declared when ``r < calibration.intensity_r - tolerance``.
    seed
        Seed of the check frames (a new set per check).
    """

    device: object
    calibration: Calibration
    n_frames: int = 16
    tolerance: float = 0.02
    seed: int = 1000
    history: list = field(default_factory=list)

    def check(self) -> DriftCheck:
        """Measure now; append to :attr:`history` and return the result."""
        frames = fresh_frames(self.n_frames, self.device.n_in, self.seed + len(self.history))
        measured = to_numpy(self.device.acquire(frames))
        r = intensity_correlation(measured, self.calibration.tm.predict(frames))
        result = DriftCheck(frames_acquired=self.device.frames_acquired, intensity_r=r,
                            drifted=r < self.calibration.intensity_r - self.tolerance)
        self.history.append(result)
        return result

    @property
    def drifted(self) -> bool:
        """Whether the latest check found the device drifted (False before any check)."""
        return bool(self.history) and self.history[-1].drifted

    def correlations(self) -> np.ndarray:
        """The r of every check so far."""
        return np.array([c.intensity_r for c in self.history])
