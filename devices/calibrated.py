"""The calibrated backend: what a device would measure, predicted from estimates.

Given an estimated transmission matrix ``R`` (and optionally a fixed field ``b``), a
gain and an offset, it predicts ``y = gain |R x + b|^2 + offset`` (float32). The
estimate is only defined up to a phase per output row (and a global conjugation), to
which this prediction is invariant. ``calibration/`` builds one from a real or virtual
device's frames; it can also be made from any known matrix.

Its dark frames (:meth:`~devices.protocol.OPUDevice.acquire_dark`) are the offset, and
the rows a calibration could not fit are its ``untrusted_outputs`` (the OPU operator
leaves them out of linear mode). A model made at an exposure has it settable: the
light's counts scale with the exposure (``gain`` times ``exposure_us`` over the
calibration's), the offset stays, predictions still clip at ``full_scale``; so the OPU
operator can shorten it as it would the device's.
"""

from __future__ import annotations

import numpy as np

from photon import Polarizer, ScatteringMedium, array_module
from photon.support.arrays import PerBackend, asarray_like

from .protocol import OPUDevice

__all__ = ["CalibratedDevice"]


class CalibratedDevice(OPUDevice):
    """A device model from an estimated TM.

    Parameters
    ----------
    transmission_matrix : (n_out, n_in) complex array
        The estimate of ``R``.
    reference_field : (n_out,) complex array, optional
        Estimated fixed field ``b``.
    gain : float or (n_out,) array
        Counts per unit of ``|R x + b|^2``.
    offset : float or (n_out,) array
        Counts of a dark frame.
    frame_time_s, electrical_power_w, exposure_us
        Timing and power of the device that was calibrated. With ``exposure_us`` given,
        the exposure is settable and scales the light's counts.
    full_scale
        Clip predictions at this count (None: no clipping).
    name
        A label, e.g. the calibrated device's name.
    untrusted_outputs
        Output rows whose estimate cannot be trusted (indices), e.g.
        ``TMEstimate.untrusted``; None or empty for none.
    row_quality : (n_out,) array, optional
        Each row's calibration residual in noise units (``TMEstimate.row_quality``),
        kept for reports.
    """

    backend = "calibrated"
    can_block_light = True  # its dark frames are the offset

    def __init__(self, transmission_matrix, *, reference_field=None, gain=1.0, offset=0.0,
                 frame_time_s: float = 500e-6, electrical_power_w: float = 30.0,
                 exposure_us: float | None = None, full_scale: float | None = None,
                 name: str | None = None, untrusted_outputs=None, row_quality=None):
        super().__init__(name)
        self.medium = ScatteringMedium.from_transmission_matrix(transmission_matrix,
                                                                reference_field)
        n_out = self.medium.n_pixels
        self.gain = self._per_output("gain", gain, n_out)
        self.offset = self._per_output("offset", offset, n_out)
        if not frame_time_s > 0:
            raise ValueError(f"frame_time_s = {frame_time_s!r}: expected > 0 seconds")
        self._frame_time_s = float(frame_time_s)
        self._power_w = float(electrical_power_w)
        self._exposure_us = None if exposure_us is None else float(exposure_us)
        self._calibrated_exposure_us = self._exposure_us
        self._full_scale = full_scale
        self._analyser = Polarizer.ideal()
        self._device_params = PerBackend()  # backend module -> (gain, offset)
        self._untrusted = self._check_rows(untrusted_outputs, n_out)
        self.row_quality = (None if row_quality is None
                            else self._per_output("row_quality", row_quality, n_out))

    @staticmethod
    def _check_rows(rows, n_out):
        if rows is None:
            return None
        rows = np.unique(np.asarray(rows).reshape(-1))
        if rows.size == 0:
            return None
        if rows.dtype.kind not in "iu" or rows.min() < 0 or rows.max() >= n_out:
            raise ValueError(f"untrusted_outputs = {rows!r}: expected indices of outputs in "
                             f"[0, {n_out})")
        return rows.astype(np.int64)

    @property
    def untrusted_outputs(self):
        """Rows the calibration could not fit (sorted indices), or None."""
        return None if self._untrusted is None else self._untrusted.copy()

    @staticmethod
    def _per_output(name, value, n_out):
        array = np.asarray(value, np.float32)
        if array.ndim == 0:
            array = np.full(n_out, array, np.float32)
        if array.shape != (n_out,) or not np.all(np.isfinite(array)):
            raise ValueError(f"{name}: shape {array.shape}: expected a finite scalar or ({n_out},)")
        return array

    n_in = property(lambda self: self.medium.n_in, doc="Number of inputs.")
    n_out = property(lambda self: self.medium.n_pixels, doc="Number of outputs.")
    frame_time_s = property(lambda self: self._frame_time_s, doc="Seconds per frame.")
    electrical_power_w = property(lambda self: self._power_w, doc="Wall-plug watts.")
    exposure_us = property(lambda self: self._exposure_us, OPUDevice.exposure_us.fset,
                           doc="Exposure, microseconds (that of the calibration unless set).")

    @property
    def exposure_settable(self) -> bool:
        """Whether the exposure may be set: a model made at a known exposure."""
        return self._calibrated_exposure_us is not None

    def _set_exposure_us(self, value: float) -> None:
        if not self.exposure_settable:
            OPUDevice._set_exposure_us(self, value)
        self._exposure_us = float(value)
        self._device_params.clear()
    full_scale = property(lambda self: self._full_scale, doc="Clip level of predictions.")

    def transmission_matrix(self):
        """The estimated TM, shape ``(n_out, n_in)``, complex64."""
        return self.medium.transmission_matrix()

    def _acquire(self, frames):
        xp = array_module(frames)
        if xp not in self._device_params:
            scale = (1.0 if self._calibrated_exposure_us is None
                     else self._exposure_us / self._calibrated_exposure_us)
            self._device_params[xp] = (asarray_like(self.gain * np.float32(scale), xp),
                                       asarray_like(self.offset, xp))
        gain, offset = self._device_params[xp]
        intensity = self._analyser(self.medium.field(frames.astype(np.float32)), overwrite=True)
        predicted = intensity * gain
        predicted += offset
        if self._full_scale is not None:
            xp.clip(predicted, 0, np.float32(self._full_scale), out=predicted)
        return predicted

    def _acquire_dark(self, n_frames: int):
        """The offset, (n_frames, n_out) float32 (no light, no noise)."""
        dark = np.repeat(self.offset[None, :], n_frames, axis=0)
        if self._full_scale is not None:
            np.clip(dark, 0, np.float32(self._full_scale), out=dark)
        return dark
