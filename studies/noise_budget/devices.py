"""The devices a noise budget measures, and how it projects errors through them.

The *clean twin* of a device is its configuration with every source of
:data:`SOURCES` switched off (no laser RIN or drift, no shot, read or dark noise, no
PRNU/DSNU, an analog read-out without a full well, a perfect DMD off state, an ideal
polarizer, a static medium), the same seeds (the same transmission matrix) and the
same exposure. Each source is switched on alone over it (:func:`source_overrides`).
Errors are projected as :class:`~dfa_bridge.training.feedback.DeviceFeedback` does
(the operator in complement linear mode, the encoder refitted on every batch), block
by block, recording each block's device time.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from devices import OPU, VirtualDevice
from photon import DeviceConfig, resolve_config

from .errors import ErrorSet

__all__ = ["SOURCES", "budget_config", "clean_config", "source_overrides", "drift_correlation",
           "fit_operator", "Projection", "project"]

#: Source name -> what it is. The order is the table's.
SOURCES = {
    "shot": "photon shot noise",
    "read": "read noise",
    "dark": "dark current (its shot noise)",
    "adc": "ADC quantization and clipping",
    "rin": "laser relative intensity noise",
    "laser_drift": "laser power drift since the fit",
    "fixed_pattern": "PRNU and DSNU (fixed pattern)",
    "dmd_leakage": "DMD leakage (finite contrast)",
    "polarizer": "polarizer leak",
    "tm_drift": "TM drift since the fit",
    "encoding": "error-encoding quantization",
}


def budget_config(device="lab-bench", n_in: int = 10, n_out: int = 512,
                  macropixel_mirrors: int = 64, **overrides) -> DeviceConfig:
    """The configuration of a feedback device: ``n_in`` classes onto ``n_out`` outputs.

    As :func:`~dfa_bridge.training.feedback.make_feedback` opens it (``macropixel_mirrors``
    mirrors per class), with ``overrides`` (``camera__adc_bits=6``, ...) on top, but with
    its outputs adjacent (``camera.output_pitch_bins`` as configured): the budget is per
    output and error vector, and the spacing of the outputs changes which pixels are read,
    not the noise of each.
    """
    return resolve_config(device, n_in=n_in, n_out=n_out,
                          dmd__macropixel_mirrors=macropixel_mirrors, **overrides)


def clean_config(config: DeviceConfig, exposure_us: float | None = None) -> DeviceConfig:
    """``config`` with every source of :data:`SOURCES` off (same seeds: the same TM).

    Parameters
    ----------
    config
        The device.
    exposure_us
        Exposure of the twin (None: the device's), microseconds.
    """
    changes = dict(laser__rin_rms=0.0, laser__drift_rms=0.0, camera__shot_noise=False,
                   camera__read_noise_e=0.0, camera__dark_current_e_per_s=0.0,
                   camera__prnu_rms=0.0, camera__dsnu_e=0.0, camera__adc_bits=None,
                   camera__full_well_e=None, dmd__contrast=None, medium__drift_time_s=None,
                   polarizer={"extinction_ratio": None})
    if exposure_us is not None:
        changes["camera__exposure_us"] = exposure_us
    return config.replace(**changes)


def source_overrides(config: DeviceConfig) -> dict[str, dict | None]:
    """For each source of :data:`SOURCES`: the overrides that switch it on over the clean twin.

    None for a source ``config`` has off (and for ``encoding``, which needs no device
    change). Dark electrons are Poisson whether or not photon shot noise is on, so the
    dark current is switched on alone.
    """
    cam, laser = config.camera, config.laser
    shot = {"camera__shot_noise": True,
            "camera__shot_noise_exact_below_e": cam.shot_noise_exact_below_e}
    adc = {"camera__adc_bits": cam.adc_bits, "camera__full_well_e": cam.full_well_e}
    polarizer = (None if config.polarizer is not None
                 and config.polarizer.extinction_ratio is None
                 else {"polarizer": None if config.polarizer is None
                       else {"extinction_ratio": config.polarizer.extinction_ratio}})
    return {
        "shot": shot if cam.shot_noise else None,
        "read": {"camera__read_noise_e": cam.read_noise_e} if cam.read_noise_e else None,
        "dark": ({"camera__dark_current_e_per_s": cam.dark_current_e_per_s}
                 if cam.dark_current_e_per_s else None),
        "adc": adc if cam.adc_bits is not None else None,
        "rin": {"laser__rin_rms": laser.rin_rms} if laser.rin_rms else None,
        "laser_drift": ({"laser__drift_rms": laser.drift_rms,
                         "laser__drift_time_s": laser.drift_time_s} if laser.drift_rms else None),
        "fixed_pattern": ({"camera__prnu_rms": cam.prnu_rms, "camera__dsnu_e": cam.dsnu_e}
                          if cam.prnu_rms or cam.dsnu_e else None),
        "dmd_leakage": ({"dmd__contrast": config.dmd.contrast}
                        if config.dmd.contrast is not None else None),
        "polarizer": polarizer,
        "tm_drift": ({"medium__drift_time_s": config.medium.drift_time_s}
                     if config.medium.drift_time_s is not None else None),
        "encoding": None,
    }


def drift_correlation(t_s: float, drift_time_s: float) -> float:
    """Correlation of the TM at device time ``t_s`` with the TM at time zero.

    The medium's keyframe model (docs/design.md section 2): ``T(t) = sqrt(1 - a) K_0 +
    sqrt(a) K_1`` for ``a = t / tau < 1``, so the correlation with ``T(0) = K_0`` is
    ``sqrt(1 - t / tau)``, and zero from ``t = tau`` on.
    """
    if not math.isfinite(drift_time_s):
        return 1.0
    a = t_s / drift_time_s
    return math.sqrt(1.0 - a) if a < 1.0 else 0.0


def fit_operator(device, error_set: ErrorSet, auto_exposure: bool = False,
                 exposure_us: float | None = None) -> OPU:
    """The operator :class:`~dfa_bridge.training.feedback.DeviceFeedback` fits: complement
    linear mode with the error set's encoder, on ``device`` (a configuration is opened as
    a virtual device; ``exposure_us`` set before the fit)."""
    if isinstance(device, DeviceConfig):
        device = VirtualDevice(device).open()
    if exposure_us is not None:
        device.exposure_us = exposure_us
    return OPU(device, linear_method="complement", encoder=error_set.make_encoder(),
               progress=False, auto_exposure=auto_exposure).fit(n_features=error_set.n_classes)


@dataclasses.dataclass
class Projection:
    """A device's projection of an error set, block by block.

    Attributes
    ----------
    output : (n, S) float64
        The decoded linear outputs.
    blocks : list of (start_row, rows, device seconds since the fit's end)
        Each block of frames (one pair of reference frames, then its planes) and when it
        was shown, from the device's frame count and frame time plus the time waited.
    """

    output: np.ndarray
    blocks: list

    def row_times(self) -> np.ndarray:
        """Device seconds since the fit of each row's block (n,)."""
        times = np.empty(self.output.shape[0])
        for start, rows, t_s in self.blocks:
            times[start:start + rows] = t_s
        return times


def project(opu: OPU, error_set: ErrorSet, elapsed_s: float = 0.0,
            rows: slice | None = None) -> Projection:
    """Project every batch as DeviceFeedback does: refit the encoder, then linear mode.

    The device waits ``elapsed_s`` after the fit (:meth:`devices.VirtualDevice.wait`).
    Each batch goes through the operator in parts of at most one of its blocks of frames
    (``batch_size`` planes share one pair of reference frames), so that each block's
    device time is known. ``rows`` restricts the projection to some batches' rows.
    """
    device = opu.device_
    frame_time = float(device.frame_time_s)
    fit_end = device.frames_acquired
    waited = 0.0
    if elapsed_s:
        device.wait(elapsed_s)
        waited = float(elapsed_s)
    errors, b = error_set.errors, error_set.batch_size
    selected = range(0, errors.shape[0], b) if rows is None else range(rows.start, rows.stop, b)
    outputs, blocks, done = [], [], 0
    for start in selected:
        batch = errors[start:min(start + b, errors.shape[0])]
        opu.encoder.fit(batch)
        per_block = max(1, opu.batch_size // opu.encoder.n_planes)
        for part_start in range(0, batch.shape[0], per_block):
            part = batch[part_start:part_start + per_block]
            t_s = (device.frames_acquired - fit_end) * frame_time + waited
            blocks.append((done, part.shape[0], t_s))
            outputs.append(np.asarray(opu.linear_transform(part), np.float64))
            done += part.shape[0]
    return Projection(np.concatenate(outputs), blocks)
