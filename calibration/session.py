"""Calibrate a device end to end and turn the result into a ``calibrated`` device.

:func:`calibrate` estimates the transmission matrix (:mod:`calibration.transmission`)
and, where the device has an exposure, the camera (:mod:`calibration.camera`); it scores
the estimate on fresh frames. :meth:`Calibration.device` gives a
:class:`devices.CalibratedDevice` that predicts what the device would measure, so that
the OPU operator (``linear_transform`` included) can run on the estimate.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from devices import CalibratedDevice, DeviceClosedError, OPUDevice
from photon import to_numpy
from photon.support.arguments import check_choice, check_int, check_number, check_seed

from .acquisition import acquire_all
from .camera import CameraEstimate, NoiseFreeCamera, estimate_camera, has_transfer_points
from .exposure import ExposureSetting, settle_exposure
from .metrics import fresh_frames, intensity_correlation
from .saturation import saturation_levels
from .transmission import TMEstimate, estimate_transmission_matrix

__all__ = ["Calibration", "calibrate", "SATURATION_WARNING_FRACTION", "ROW_SATURATION_WARNING"]

SATURATION_WARNING_FRACTION = 0.01  # pooled fraction of censored calibration counts
ROW_SATURATION_WARNING = 0.10       # fraction of one row's counts censored
POOR_FIT_R = 0.9                    # intensity_r below this is warned about
EXPOSURE_CHOICES = ("auto", "keep")


@dataclass
class Calibration:
    """The outcome of :func:`calibrate`.

    Attributes
    ----------
    tm : TMEstimate
        Transmission matrix, fixed field and dark level per output, each row's quality
        and the rows that could not be calibrated (``tm.untrusted``).
    camera : CameraEstimate or None
        Camera parameters (None for a device without an exposure).
    intensity_r : float
        Pearson r between measured and predicted counts on fresh frames, every row
        (predictions clipped at the measured saturation level).
    device_name, frame_time_s, electrical_power_w, exposure_us, full_scale
        What was calibrated (``full_scale``: the level predictions clip at).
    scoring_frames
        Fresh frames behind ``intensity_r``.
    intensity_r_trusted : float
        The same r on the trusted rows only (``intensity_r`` when every row is).
    exposure : ExposureSetting or None
        The exposure before and after calibration (``exposure="auto"`` may lower it) and
        the pilot frames that decided it.
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
        """Device frames used: camera, exposure pilot, TM and scoring frames."""
        return (self.tm.frames + (self.camera.frames if self.camera else 0)
                + (self.exposure.frames if self.exposure else 0) + self.scoring_frames)

    scoring_frames: int = 0
    intensity_r_trusted: float = math.nan
    exposure: ExposureSetting | None = None

    @property
    def untrusted(self) -> np.ndarray:
        """Rows that could not be calibrated (``tm.untrusted``)."""
        return self.tm.untrusted

    def device(self) -> CalibratedDevice:
        """A :class:`devices.CalibratedDevice` predicting this device's counts (open).

        Its ``untrusted_outputs`` are the rows that could not be calibrated.
        """
        return CalibratedDevice(self.tm.tm, reference_field=self.tm.reference_field,
                                gain=1.0, offset=self.tm.dark, frame_time_s=self.frame_time_s,
                                electrical_power_w=self.electrical_power_w,
                                exposure_us=self.exposure_us, full_scale=self.full_scale,
                                name=f"{self.device_name} (calibrated)",
                                untrusted_outputs=self.tm.untrusted,
                                row_quality=self.tm.row_quality).open()


def calibrate(device, *, probes_per_input: float = 4.0, camera: bool | None = None,
              scoring_frames: int = 64, seed: int = 0, like=None,
              progress: bool | None = None, dark: str = "auto",
              exposure: str = "auto") -> Calibration:
    """Calibrate ``device`` from its frames alone.

    Parameters
    ----------
    device
        An open :class:`devices.OPUDevice`.
    probes_per_input
        See :func:`calibration.estimate_transmission_matrix` (about
        ``7 probes_per_input`` frames per input in all).
    camera
        Also estimate the camera (default: when the device has an exposure, outputs
        enough for the photon transfer (:func:`calibration.camera.has_transfer_points`)
        and counts that show temporal noise; otherwise ``camera = None``). The
        camera's measured saturation level then sets where counts are censored.
    scoring_frames
        Fresh random frames on which ``intensity_r`` is measured.
    seed
        Seed of every frame shown (probes, anchors, scoring frames).
    like
        An array whose backend (NumPy or CuPy) the computation runs on.
    progress
        Progress bars: True, False, or None for long acquisitions.
    dark
        How the camera's dark level is measured (:func:`calibration.estimate_camera`).
    exposure
        ``"auto"``: lower a settable exposure, before the TM is estimated, until at most
        1 % of the rows saturate on more than 10 % of half-on frames
        (:func:`calibration.exposure.settle_exposure`); **the exposure stays lowered**
        and the calibration describes the device there (``Calibration.exposure``).
        ``"keep"``: leave it.

    Raises
    ------
    TypeError
        When ``device`` is not an :class:`devices.OPUDevice`.
    devices.DeviceClosedError
        When it is closed.
    ValueError
        For ``scoring_frames`` below 2, a negative ``seed``, too few probes, or a device
        too small to calibrate.

    Warns
    -----
    RuntimeWarning
        When ``intensity_r`` on fresh frames is below 0.9 (or undefined); when more
        than 1 % of the calibration counts are saturated (censored, but a
        lower exposure calibrates better); and once, naming them, for the rows that
        could not be calibrated (``tm.untrusted``: their dark frame saturated, most of
        their counts were censored, their halves could not be aligned, or their
        residual is well above the camera noise) or that had more than 10 % of their
        counts saturated.
    """
    if not isinstance(device, OPUDevice):
        raise TypeError(f"device = {device!r}: expected an open OPUDevice (see "
                        "devices.open_device)")
    if not device.is_open:
        raise DeviceClosedError(f"device = '{device.name}': closed: expected an open device "
                                "(call open() or use it in a 'with' block)")
    scoring_frames = check_int("scoring_frames", scoring_frames, low=2)
    check_choice("exposure", exposure, EXPOSURE_CHOICES)
    seed = check_seed("seed", seed)
    check_number("probes_per_input", probes_per_input, low=1.0, unit="probes per input")
    camera_estimate = None
    if camera or (camera is None and device.exposure_us is not None
                  and has_transfer_points(device)):
        try:
            camera_estimate = estimate_camera(device, seed=seed, dark=dark)
        except NoiseFreeCamera:
            if camera:  # asked for explicitly: say why there is none
                raise
    if exposure == "auto":
        setting = settle_exposure(device, saturation_levels(device, camera_estimate).censor_dn,
                                  seed + 2)
    else:
        setting = ExposureSetting(initial_us=device.exposure_us, final_us=device.exposure_us,
                                  frames=0, rows_saturating=math.nan)
    estimate = estimate_transmission_matrix(device, probes_per_input=probes_per_input,
                                            seed=seed, like=like, progress=progress,
                                            camera=camera_estimate)
    level = estimate.saturation_dn
    if estimate.saturated_fraction > SATURATION_WARNING_FRACTION:
        warnings.warn(f"{estimate.saturated_fraction:.1%} of the calibration counts of "
                      f"'{device.name}' are saturated at {level}: expected at most "
                      f"{SATURATION_WARNING_FRACTION:.0%}; lower the exposure for a better "
                      "calibration", RuntimeWarning, stacklevel=2)
    _warn_rows(device, estimate)
    frames = fresh_frames(scoring_frames, device.n_in, seed + 1)
    measured = np.asarray(to_numpy(acquire_all(device, frames, progress=False)))
    predicted = estimate.predict(frames)
    r = intensity_correlation(measured, predicted)
    trusted = estimate.trusted
    r_trusted = r if trusted.all() else (
        intensity_correlation(measured[:, trusted], predicted[:, trusted]) if trusted.any()
        else math.nan)
    if not r >= POOR_FIT_R:
        warnings.warn(f"intensity_r = {r:.3g} on {scoring_frames} fresh frames of "
                      f"'{device.name}': expected near 1; its counts barely follow its frames "
                      "(too dark, saturated, or drifting faster than the calibration): check "
                      "the exposure", RuntimeWarning, stacklevel=2)
    return Calibration(tm=estimate, camera=camera_estimate, intensity_r=r,
                       device_name=device.name, frame_time_s=device.frame_time_s,
                       electrical_power_w=device.electrical_power_w,
                       exposure_us=device.exposure_us, full_scale=level,
                       scoring_frames=scoring_frames, intensity_r_trusted=r_trusted,
                       exposure=setting)


def _warn_rows(device, estimate) -> None:
    """One warning naming the rows that could not be calibrated or saturated heavily."""
    heavy = np.flatnonzero(estimate.row_censored > ROW_SATURATION_WARNING) \
        if estimate.row_censored is not None else np.zeros(0, int)
    untrusted = estimate.untrusted
    if untrusted.size == 0 and heavy.size == 0:
        return
    parts = []
    if untrusted.size:
        by_reason = {}
        for row, reason in estimate.untrusted_reasons.items():
            by_reason.setdefault(reason, []).append(row)
        detail = "; ".join(f"{reason}: {_rows_text(rows)}" for reason, rows in by_reason.items())
        parts.append(f"{untrusted.size} of {device.n_out} rows of '{device.name}' could not be "
                     f"calibrated ({detail}); they are marked untrusted and left out of linear "
                     "mode by the calibrated device")
    calibrated_heavy = np.setdiff1d(heavy, untrusted)
    if calibrated_heavy.size:
        parts.append(f"rows {_rows_text(calibrated_heavy)} had more than "
                     f"{ROW_SATURATION_WARNING:.0%} of their counts saturated at "
                     f"{estimate.saturation_dn} (calibrated from the rest)")
    saturation = calibrated_heavy.size or any(
        reason in ("censored", "dark frame saturated")
        for reason in estimate.untrusted_reasons.values())
    advice = ("lower the exposure" if saturation else
              "more probes per input (probes_per_input) average the noise down")
    warnings.warn("; ".join(parts) + f"; expected every row calibrated: {advice}",
                  RuntimeWarning, stacklevel=3)


def _rows_text(rows, limit: int = 20) -> str:
    rows = [int(r) for r in rows]
    text = ", ".join(map(str, rows[:limit]))
    return f"[{text}{', ...' if len(rows) > limit else ''}]"
