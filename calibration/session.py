"""Calibrate a device end to end and turn the result into a ``calibrated`` device.

:func:`calibrate` estimates the transmission matrix (:mod:`calibration.transmission`)
and, where the device has an exposure, the camera (:mod:`calibration.camera`); it scores
the estimate on fresh frames. :meth:`Calibration.device` gives a
:class:`devices.CalibratedDevice` that predicts what the device would measure, so that
the OPU operator (``linear_transform`` included) can run on the estimate.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from devices import CalibratedDevice

from .acquisition import acquire_all
from .camera import CameraEstimate, NoiseFreeCamera, estimate_camera
from .metrics import fresh_frames, intensity_correlation
from .transmission import TMEstimate, estimate_transmission_matrix

__all__ = ["Calibration", "calibrate", "SATURATION_WARNING_FRACTION"]

SATURATION_WARNING_FRACTION = 0.01


@dataclass
class Calibration:
    """The outcome of :func:`calibrate`.

    Attributes
    ----------
    tm : TMEstimate
        Transmission matrix, fixed field and dark level per output.
    camera : CameraEstimate or None
        Camera parameters (None for a device without an exposure).
    intensity_r : float
        Pearson r between measured and predicted counts on fresh frames.
    device_name, frame_time_s, electrical_power_w, exposure_us, full_scale
        What was calibrated.
    """

    tm: TMEstimate
    camera: CameraEstimate | None
    intensity_r: float
    device_name: str
    frame_time_s: float
    electrical_power_w: float
    exposure_us: float | None
    full_scale: float | None

    @property
    def frames(self) -> int:
        """Device frames used, scoring frames included."""
        return self.tm.frames + (self.camera.frames if self.camera else 0) + self.scoring_frames

    scoring_frames: int = 0

    def device(self) -> CalibratedDevice:
        """A :class:`devices.CalibratedDevice` predicting this device's counts (open)."""
        return CalibratedDevice(self.tm.tm, reference_field=self.tm.reference_field,
                                gain=1.0, offset=self.tm.dark, frame_time_s=self.frame_time_s,
                                electrical_power_w=self.electrical_power_w,
                                exposure_us=self.exposure_us, full_scale=self.full_scale,
                                name=f"{self.device_name} (calibrated)").open()


def calibrate(device, *, probes_per_input: float = 4.0, camera: bool | None = None,
              scoring_frames: int = 64, seed: int = 0, like=None,
              progress: bool | None = None) -> Calibration:
    """Calibrate ``device`` from its frames alone.

    Parameters
    ----------
    device
        An open :class:`devices.OPUDevice`.
    probes_per_input
        See :func:`calibration.estimate_transmission_matrix` (about
        ``7 probes_per_input`` frames per input in all).
    camera
        Also estimate the camera (default: when the device has an exposure and its
        counts show temporal noise; a noise-free camera gives ``camera = None``).
    scoring_frames
        Fresh random frames on which ``intensity_r`` is measured.
    seed
        Seed of every frame shown (probes, anchors, scoring frames).
    like
        An array whose backend (NumPy or CuPy) the computation runs on.
    progress
        Progress bars: True, False, or None for long acquisitions.

    Warns
    -----
    RuntimeWarning
        When more than 1 % of the calibration counts sit at the device's full scale
        (saturated counts are treated as censored, but a lower exposure calibrates better).
    """
    camera_estimate = None
    if camera or (camera is None and device.exposure_us is not None):
        try:
            camera_estimate = estimate_camera(device, seed=seed)
        except NoiseFreeCamera:
            if camera:  # asked for explicitly: say why there is none
                raise
    estimate = estimate_transmission_matrix(device, probes_per_input=probes_per_input,
                                            seed=seed, like=like, progress=progress)
    if estimate.saturated_fraction > SATURATION_WARNING_FRACTION:
        warnings.warn(f"{estimate.saturated_fraction:.1%} of the calibration counts of "
                      f"'{device.name}' are saturated at {device.full_scale}: expected at most "
                      f"{SATURATION_WARNING_FRACTION:.0%}; lower the exposure for a better "
                      "calibration", RuntimeWarning, stacklevel=2)
    frames = fresh_frames(scoring_frames, device.n_in, seed + 1)
    measured = acquire_all(device, frames, progress=False)
    r = intensity_correlation(np.asarray(measured), estimate.predict(frames))
    return Calibration(estimate, camera_estimate, r, device.name, device.frame_time_s,
                       device.electrical_power_w, device.exposure_us, device.full_scale,
                       scoring_frames)
