"""Continuous-wave laser: optical power per frame.

The power reaching the DMD in frame ``t`` is ``P (1 + eps_t)(1 + d_t) 10^-OD``: ``eps_t``
is the relative intensity noise (RIN), one common factor per frame, i.i.d.
N(0, rin_rms^2); ``d_t`` a slow Ornstein-Uhlenbeck drift of rms ``drift_rms`` and
correlation time ``drift_time_s``, held constant over one batch; ``OD`` the optical
density of an attenuator.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["Laser", "attenuated_power_w"]


def attenuated_power_w(power_mw: float, nd_filter_od: float) -> float:
    """Power after a neutral-density filter of optical density ``nd_filter_od``, watts."""
    return power_mw * 1e-3 * 10.0 ** (-nd_filter_od)


class Laser:
    """A laser source of given wavelength and power.

    Parameters
    ----------
    wavelength_nm
        Vacuum wavelength.
    power_mw
        Output power.
    rin_rms
        Relative intensity noise per frame (fraction rms).
    drift_rms, drift_time_s
        Slow power drift: relative rms and correlation time.
    nd_filter_od
        Optical density of a neutral-density filter after the laser.
    rin_seed, drift_seed
        Seeds of the two random streams.
    """

    def __init__(self, *, wavelength_nm: float = 532.0, power_mw: float = 25.0,
                 rin_rms: float = 0.0, drift_rms: float = 0.0, drift_time_s: float = 600.0,
                 nd_filter_od: float = 0.0, rin_seed: int = 0, drift_seed: int = 1):
        self.wavelength_nm = float(wavelength_nm)
        self.power_mw = float(power_mw)
        self.rin_rms = float(rin_rms)
        self.drift_rms = float(drift_rms)
        self.drift_time_s = float(drift_time_s)
        self.nd_filter_od = float(nd_filter_od)
        self._rin_rng = np.random.Generator(np.random.PCG64(rin_seed))
        self._drift_rng = np.random.Generator(np.random.PCG64(drift_seed))
        self.drift_state = 0.0

    @property
    def power_w(self) -> float:
        """Mean power after the attenuator, in watts."""
        return attenuated_power_w(self.power_mw, self.nd_filter_od)

    def frame_factors(self, n_frames: int, dt_s: float = 0.0) -> np.ndarray:
        """Relative power of each of ``n_frames`` frames (float64, mean about 1).

        ``dt_s`` is the time elapsed since the previous batch; the drift state advances
        by it (exact Ornstein-Uhlenbeck update) before this batch.
        """
        if self.drift_rms and dt_s > 0:
            rho = math.exp(-dt_s / self.drift_time_s)
            self.drift_state = (rho * self.drift_state
                                + math.sqrt(1.0 - rho * rho) * self.drift_rms
                                * self._drift_rng.standard_normal())
        factors = np.full(n_frames, 1.0 + self.drift_state)
        if self.rin_rms:
            factors *= 1.0 + self.rin_rms * self._rin_rng.standard_normal(n_frames)
        return np.maximum(factors, 0.0)
