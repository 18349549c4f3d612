"""Where counts saturate: the level predictions clip at and the level counts are censored from.

One place for both (docs/design.md section 4, "The censoring level"):

* :func:`adc_censor_dn`: half a DN below an ADC's full scale (``device.full_scale``), where
  a count rounds to the top;
* :func:`saturation_levels`: a device's levels from its full scale, a camera estimate
  (:attr:`calibration.camera.CameraEstimate.censor_dn`) or an explicit override;
* :func:`detect_saturation`: a well that fills below the ADC's top, found in the counts.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from photon import to_numpy

__all__ = ["SaturationLevels", "adc_censor_dn", "saturation_levels", "detect_saturation",
           "ADC_CENSOR_MARGIN_DN"]

ADC_CENSOR_MARGIN_DN = 0.5   # a count this close to the ADC's top rounds to it


class SaturationLevels(NamedTuple):
    """Where a device's counts saturate (a tuple ``(saturation_dn, censor_dn)``).

    Attributes
    ----------
    saturation_dn : float or None
        The count a saturated output reads (a camera's plateau or the ADC's top), DN:
        predictions clip there. None: no saturation known.
    censor_dn : float or None
        Counts at or above this level only bound the truth from below (censored), DN.
        None: no count is censored.
    """

    saturation_dn: float | None
    censor_dn: float | None


def adc_censor_dn(full_scale) -> float | None:
    """Censoring level of an ADC of top count ``full_scale`` (DN; None: analog, none)."""
    return None if full_scale is None else float(full_scale) - ADC_CENSOR_MARGIN_DN


def detect_saturation(counts, full_scale=None, dark_variance: float = 0.0,
                      dark_level: float | None = None) -> SaturationLevels | None:
    """The :class:`SaturationLevels` where counts pile up below the full scale, or None.

    A well that fills below the ADC's top leaves its mark in any set of counts: a spike
    of values, spread by the read noise, at the top of a tail that otherwise thins out.
    With ``w = 4 sqrt(dark_variance) + 1`` DN (four read-noise deviations), the counts
    within ``2 w`` of the largest one (the whole spike) are compared with the band ``4 w``
    below: a density ten times higher there (and at least 20 counts) is a plateau at the
    median of the top band, censored from ``w`` below it. Counts that reach the full
    scale are left to it (the caller's default). An analog read-out (no full scale) is
    not checked: the band is measured in DN, the steps of an ADC.

    Parameters
    ----------
    counts : array
        Any counts of the device (NumPy or CuPy).
    full_scale
        The device's largest count (None: an analog read-out, not checked).
    dark_variance
        Temporal variance of a dark or dim count, DN^2 (sets the band width).
    dark_level
        The counts of an all-off frame, DN: a pile-up within ``2 w`` of it is a device
        that sees (almost) no light, not a full well.
    """
    values = np.asarray(to_numpy(counts), np.float64).ravel()
    if values.size == 0 or full_scale is None:
        return None
    top = float(values.max())
    if full_scale is not None and top >= adc_censor_dn(full_scale):
        return None
    width = 4.0 * math.sqrt(max(dark_variance, 0.0)) + 1.0
    near = values[values >= top - 2 * width]
    below = np.count_nonzero((values >= top - 6 * width) & (values < top - 2 * width))
    if near.size < 20 or near.size < 10.0 * below / 2.0:
        return None
    level = float(np.median(near))
    if dark_level is not None and level <= dark_level + 2 * width:
        return None
    return SaturationLevels(saturation_dn=level, censor_dn=level - width)


def saturation_levels(device, camera=None, saturation_dn: float | None = None) -> SaturationLevels:
    """Where ``device``'s counts saturate and are censored.

    Parameters
    ----------
    device
        An :class:`devices.OPUDevice`: its ``full_scale`` (DN; None for an analog
        read-out) gives the levels by default, the top and :func:`adc_censor_dn`.
    camera
        A :class:`calibration.camera.CameraEstimate` (or None): where it measured a
        saturation level, its ``saturation_dn`` and ``censor_dn`` replace the ADC's.
    saturation_dn
        Override of the censoring level, DN (also the clip where nothing else gives one).

    Raises
    ------
    ValueError
        For a ``saturation_dn`` that is not finite.
    """
    full = device.full_scale
    clip = None if full is None else float(full)
    censor = adc_censor_dn(full)
    if camera is not None and math.isfinite(camera.saturation_dn):
        clip = float(camera.saturation_dn)
        censor = float(camera.censor_dn)
    if saturation_dn is not None:
        saturation_dn = float(saturation_dn)
        if not math.isfinite(saturation_dn):
            raise ValueError(f"saturation_dn = {saturation_dn!r}: expected a finite count "
                             "(DN) or None")
        censor = saturation_dn
        if clip is None:
            clip = saturation_dn
    return SaturationLevels(saturation_dn=clip, censor_dn=censor)
