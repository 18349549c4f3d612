"""An exposure at which a calibration sees every row: few rows saturate often.

A saturated count only bounds the truth from below; a row whose counts saturate on a
large share of the frames has too few left to fit (correlated media make a few rows
bright in every frame: their common field adds up over neighbouring mirrors). When the
device's exposure is settable, :func:`settle_exposure` shows ``PILOT_FRAMES`` random
half-on frames (as bright as the anchored probes and the mixed frames of a calibration)
and, while more than ``ROWS_SATURATING`` of the rows saturate on more than
``ROW_SATURATION`` of them, or any row on more than ``ROW_SATURATION_MAX`` (beyond which
its anchors lose too many values to be used), lowers the exposure: a row of exponential
speckle saturating on a share ``f`` of the frames has its mean at ``(S - dark) / ln(1 / f)``,
so the exposure is scaled by ``0.9 ln(1 / f) / ln(1 / target)`` (by a quarter at most),
``f`` the ``1 - ROWS_SATURATING`` quantile over rows against ``ROW_SATURATION`` or the
largest against ``ROW_SATURATION_MAX``, whichever asks more, up to ``PILOT_TRIES`` times.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from photon import to_numpy

from .acquisition import acquire_all
from .metrics import fresh_frames

__all__ = ["ExposureSetting", "settle_exposure", "PILOT_FRAMES", "ROW_SATURATION",
           "ROWS_SATURATING", "ROW_SATURATION_MAX"]

PILOT_FRAMES = 64
PILOT_TRIES = 3
ROW_SATURATION = 0.10     # a row saturating on more of the frames than this ...
ROWS_SATURATING = 0.01    # ... may be at most this share of the rows
ROW_SATURATION_MAX = 0.25  # and no row saturates on more of the frames than this
SMALLEST_STEP = 0.25


@dataclass(frozen=True)
class ExposureSetting:
    """What :func:`settle_exposure` did.

    Attributes
    ----------
    initial_us, final_us : float or None
        The exposure before and after (None: the device has none).
    frames : int
        Pilot frames shown.
    rows_saturating : float
        Share of the rows saturating on more than ``ROW_SATURATION`` of the last pilot.
    """

    initial_us: float | None
    final_us: float | None
    frames: int
    rows_saturating: float

    @property
    def changed(self) -> bool:
        """Whether the exposure was lowered."""
        return self.initial_us != self.final_us


def settle_exposure(device, censor_dn: float | None, seed: int = 0) -> ExposureSetting:
    """Lower ``device``'s exposure until few rows saturate often (see the module).

    Parameters
    ----------
    device
        An open :class:`devices.OPUDevice`; nothing is shown unless its exposure is
        settable and ``censor_dn`` is known.
    censor_dn
        Counts at or above this level are saturated (a camera estimate's ``censor_dn``).
    seed
        Seed of the pilot frames.
    """
    initial = device.exposure_us
    if not device.exposure_settable or initial is None or censor_dn is None \
            or not math.isfinite(censor_dn):
        return ExposureSetting(initial_us=initial, final_us=initial, frames=0,
                               rows_saturating=math.nan)
    frames = fresh_frames(PILOT_FRAMES, device.n_in, seed)
    shown, share = 0, math.nan
    for attempt in range(PILOT_TRIES + 1):
        counts = np.asarray(to_numpy(acquire_all(device, frames, progress=False)))
        shown += PILOT_FRAMES
        fraction = (counts >= censor_dn).mean(axis=0)
        share = float((fraction > ROW_SATURATION).mean())
        quantile = float(np.quantile(fraction, 1.0 - ROWS_SATURATING))
        largest = float(fraction.max())
        if (quantile <= ROW_SATURATION and largest <= ROW_SATURATION_MAX) \
                or attempt == PILOT_TRIES:
            break
        factor = min(_factor(quantile, ROW_SATURATION), _factor(largest, ROW_SATURATION_MAX))
        device.exposure_us = device.exposure_us * 0.9 * max(factor, SMALLEST_STEP)
    return ExposureSetting(initial_us=initial, final_us=device.exposure_us, frames=shown,
                           rows_saturating=share)


def _factor(fraction: float, target: float) -> float:
    """Exposure factor bringing a row that saturates on ``fraction`` of the frames to
    ``target`` (1 when it is there already)."""
    if fraction <= target:
        return 1.0
    if fraction >= 1.0:
        return SMALLEST_STEP
    return math.log(1.0 / fraction) / math.log(1.0 / target)
