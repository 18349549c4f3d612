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

from .config import LaserConfig
from .support.schema import from_mapping, settings_as_properties

__all__ = ["Laser", "attenuated_power_w"]


def attenuated_power_w(power_mw: float, nd_filter_od: float) -> float:
    """Power after a neutral-density filter of optical density ``nd_filter_od``, watts."""
    return power_mw * 1e-3 * 10.0 ** (-nd_filter_od)


@settings_as_properties(LaserConfig)
class Laser:
    """A laser source of given wavelength and power.

    Parameters
    ----------
    config
        The laser's settings (wavelength, power, RIN, drift, attenuator), validated by
        :class:`~photon.config.LaserConfig`; each is also readable as an attribute
        (``laser.power_mw``) that reads ``laser.config``.
    rin_seed, drift_seed
        Seeds of the two random streams.

    See Also
    --------
    from_settings : build the configuration from keyword settings.
    """

    def __init__(self, config: LaserConfig, *, rin_seed: int = 0, drift_seed: int = 1):
        if not isinstance(config, LaserConfig):
            raise TypeError(f"config = {config!r}: expected a LaserConfig "
                            "(or use Laser.from_settings(**settings))")
        self.config = config
        self._rin_rng = np.random.Generator(np.random.PCG64(rin_seed))
        self._drift_rng = np.random.Generator(np.random.PCG64(drift_seed))
        self.drift_state = 0.0

    @classmethod
    def from_settings(cls, *, rin_seed: int = 0, drift_seed: int = 1, **settings) -> "Laser":
        """A laser whose :class:`~photon.config.LaserConfig` is built from ``settings``.

        Examples
        --------
        >>> Laser.from_settings(power_mw=50.0, rin_rms=0.003)  # doctest: +SKIP
        """
        config = from_mapping(LaserConfig, settings, "Laser.from_settings")
        return cls(config, rin_seed=rin_seed, drift_seed=drift_seed)

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
