"""Linear polarizer in front of the camera.

Behind a scattering layer both polarizations carry independent, fully developed
speckle. A polarizer of extinction ratio ER passes one and leaks ``eps = 1/ER`` of the
other: ``I = |R_par x|^2 + eps |R_perp x|^2``, of speckle contrast
``sqrt(1 + eps^2) / (1 + eps)``. No polarizer is ``eps = 1`` (gamma(k=2) speckle,
contrast ``1/sqrt(2)``); an ideal one is ``eps = 0`` (exponential, contrast 1).
"""

from __future__ import annotations

import math

import numpy as np

from .config import PolarizerConfig
from .support.arrays import array_module
from .support.schema import from_mapping, settings_as_properties

__all__ = ["Polarizer", "speckle_contrast_for_leak"]


def speckle_contrast_for_leak(eps: float) -> float:
    """Speckle contrast (std / mean) of ``|E1|^2 + eps |E2|^2`` for independent speckles."""
    return math.sqrt(1.0 + eps * eps) / (1.0 + eps)


@settings_as_properties(PolarizerConfig)
class Polarizer:
    """Polarization analyser acting on a two-polarization field.

    Parameters
    ----------
    config
        The polarizer's extinction ratio ER, validated by
        :class:`~photon.config.PolarizerConfig` (``None``: an ideal polarizer, leak 0);
        readable as ``polarizer.extinction_ratio``. The leak is ``eps = 1/ER``.

    See Also
    --------
    ideal : an ideal polarizer (``eps = 0``).
    absent : no polarizer in the beam (``eps = 1``, i.e. ``ER = 1``).
    from_settings : build the configuration from keyword settings.
    """

    def __init__(self, config: PolarizerConfig):
        if not isinstance(config, PolarizerConfig):
            raise TypeError(f"config = {config!r}: expected a PolarizerConfig (or use "
                            "Polarizer.ideal(), Polarizer.absent() or Polarizer.from_settings())")
        self.config = config

    @classmethod
    def from_settings(cls, **settings) -> "Polarizer":
        """A polarizer whose :class:`~photon.config.PolarizerConfig` is built from ``settings``."""
        return cls(from_mapping(PolarizerConfig, settings, "Polarizer.from_settings"))

    @classmethod
    def ideal(cls) -> "Polarizer":
        """An ideal polarizer: only the passed polarization reaches the camera (``eps = 0``)."""
        return cls(PolarizerConfig(extinction_ratio=None))

    @classmethod
    def absent(cls) -> "Polarizer":
        """No polarizer: both polarizations add (``eps = 1``, an extinction ratio of 1)."""
        return cls(PolarizerConfig(extinction_ratio=1.0))

    @property
    def leak(self) -> float:
        """Intensity fraction ``eps = 1/ER`` of the blocked polarization that leaks through."""
        er = self.config.extinction_ratio
        return 0.0 if er is None else 1.0 / er

    @property
    def n_polarizations(self) -> int:
        """How many polarizations reach the camera (1 for an ideal polarizer)."""
        return 1 if self.leak == 0.0 else 2

    @property
    def speckle_contrast(self) -> float:
        """Contrast of fully developed speckle seen through this polarizer."""
        return speckle_contrast_for_leak(self.leak)

    def __call__(self, field, overwrite: bool = False, out=None):
        """Return the intensity ``|E_par|^2 + eps |E_perp|^2``, shape (batch, n_pixels).

        Parameters
        ----------
        field : (batch, n_polarizations, 2, n_pixels) float32 array
            Real and imaginary parts per polarization (same backend out).
        overwrite
            Whether ``field`` may be overwritten (kept for callers that offer it; the sums
            of squares are formed without writing into it).
        out : (batch, n_pixels) float32 array, optional
            Where to write the intensity (returned); a new array without it.
        """
        xp = array_module(field)
        if out is None:
            out = xp.empty((field.shape[0], field.shape[-1]), field.dtype)
        _sum_of_squares(field[:, 0], out, xp)
        if field.shape[1] == 2:
            perp = _sum_of_squares(field[:, 1], None, xp)
            if self.leak != 1.0:
                perp *= field.dtype.type(self.leak)
            out += perp
        return out


def _sum_of_squares(parts, out, xp):
    """``parts[:, 0]^2 + parts[:, 1]^2`` of ``(batch, 2, n)`` in one pass (into ``out``)."""
    if xp is np:
        return np.einsum("bcn,bcn->bn", parts, parts, out=out)
    result = xp.einsum("bcn,bcn->bn", parts, parts)
    if out is None:
        return result
    out[...] = result
    return out
