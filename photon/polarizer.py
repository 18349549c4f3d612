"""Linear polarizer in front of the camera.

Behind a scattering layer both polarizations carry independent, fully developed
speckle. A polarizer of extinction ratio ER passes one and leaks ``eps = 1/ER`` of the
other: ``I = |R_par x|^2 + eps |R_perp x|^2``, of speckle contrast
``sqrt(1 + eps^2) / (1 + eps)``. No polarizer is ``eps = 1`` (gamma(k=2) speckle,
contrast ``1/sqrt(2)``); an ideal one is ``eps = 0`` (exponential, contrast 1).
"""

from __future__ import annotations

import math

__all__ = ["Polarizer", "speckle_contrast_for_leak"]


def speckle_contrast_for_leak(eps: float) -> float:
    """Speckle contrast (std / mean) of ``|E1|^2 + eps |E2|^2`` for independent speckles."""
    return math.sqrt(1.0 + eps * eps) / (1.0 + eps)


class Polarizer:
    """Polarization analyser acting on a two-polarization field.

    Parameters
    ----------
    extinction_ratio
        ER; ``None`` for an ideal polarizer, ``"absent"`` (see :meth:`absent`) when no
        polarizer is in the beam.
    """

    def __init__(self, extinction_ratio: float | None = None, *, leak: float | None = None):
        if leak is None:
            leak = 0.0 if extinction_ratio is None else 1.0 / float(extinction_ratio)
        if not 0.0 <= leak <= 1.0:
            raise ValueError(f"extinction_ratio = {extinction_ratio!r}: expected >= 1 "
                             "(leak = 1/ER within [0, 1])")
        self.extinction_ratio = extinction_ratio
        self.leak = float(leak)

    @classmethod
    def absent(cls) -> "Polarizer":
        """No polarizer: both polarizations add (``eps = 1``)."""
        return cls(leak=1.0)

    @property
    def n_polarizations(self) -> int:
        """How many polarizations reach the camera (1 for an ideal polarizer)."""
        return 1 if self.leak == 0.0 else 2

    @property
    def speckle_contrast(self) -> float:
        """Contrast of fully developed speckle seen through this polarizer."""
        return speckle_contrast_for_leak(self.leak)

    def __call__(self, field, overwrite: bool = False):
        """Return the intensity ``|E_par|^2 + eps |E_perp|^2``, shape (batch, n_pixels).

        Parameters
        ----------
        field : (batch, n_polarizations, 2, n_pixels) float32 array
            Real and imaginary parts per polarization (same backend out).
        overwrite
            Square ``field`` in place and return a view into it (saves two passes
            and an allocation on the hot path).
        """
        if overwrite:
            squared = field
            squared *= field
        else:
            squared = field * field
        intensity = squared[:, 0, 0]
        intensity += squared[:, 0, 1]
        if squared.shape[1] == 2:
            perp = squared[:, 1, 0]
            perp += squared[:, 1, 1]
            if self.leak != 1.0:
                perp *= intensity.dtype.type(self.leak)
            intensity += perp
        return intensity
