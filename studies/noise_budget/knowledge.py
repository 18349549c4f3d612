"""What the user of a real device can know about it: the noise budget's inputs.

A prediction of the noise budget may use the device's configuration (its design values:
the laser's RIN and drift, the DMD's contrast, the polarizer's extinction ratio, the
ADC's bits, the exposure it is run at, the encoders' rules) and, for what hardware does
not state (the camera's gain, read noise and dark current, its flat field, the TM and
its drift rate), the calibration package's estimates from frames of their own:

* the exposure the device settles on (an OPU fit with auto exposure);
* :func:`calibration.calibrate`: the camera (photon transfer, dark frames) and the TM
  model (transmission matrix, fixed field and dark level per row);
* each output's reference response ``y(1) - y(0)``, from repeated frames;
* :func:`calibration.camera.estimate_dark_current`: dark frames at growing exposures;
* :func:`calibration.camera.estimate_flat_field`: the camera alone under a uniform light;
* :func:`calibration.decorrelation.estimate_decorrelation_time`: frames repeated at
  growing lags, on a fresh device.

Each estimate runs on a device of its own: the same configuration and physical seeds
(transmission matrix, its drift, the fixed pattern), other noise seeds. Nothing here
reads the tested device, its fit or the simulator's hidden state.
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np

from calibration import CameraEstimate, Calibration, calibrate
from calibration.camera import (DarkCurrentEstimate, FlatFieldEstimate, estimate_dark_current,
                                estimate_flat_field)
from calibration.decorrelation import DecorrelationEstimate, estimate_decorrelation_time
from devices import CalibratedDevice, VirtualDevice
from photon import Camera, DeviceConfig

from .devices import fit_operator
from .errors import ErrorSet

__all__ = ["DeviceKnowledge", "device_knowledge", "SEPARATE_SEED_OFFSET"]

SEPARATE_SEED_OFFSET = 1000   # noise seeds of the devices the estimates run on
CALIBRATION_PROBES_PER_INPUT = 16.0
REFERENCE_REPEATS = 64        # repeats of the all-on and all-off frames


@dataclasses.dataclass
class DeviceKnowledge:
    """The budget's inputs: a device's configuration and estimates from separate frames.

    Attributes
    ----------
    config
        The configuration the user knows (the design values).
    exposure_us
        The exposure the device settles on (an OPU fit with auto exposure).
    calibration
        :func:`calibration.calibrate` of a separate device at that exposure: the camera
        estimate and the TM model.
    dark_current
        Dark current from dark frames at growing exposures (None: the device cannot
        block its light).
    flat_field
        The camera's flat field under a uniform light.
    decorrelation
        The medium's decorrelation time (``tau_s = inf``: static).
    frame_time_s
        Seconds per device frame.
    reference_dn, reference_se_dn : (n_out,) float64 arrays
        Each output's reference response ``y(1) - y(0)`` (all used inputs on, then off)
        and its standard error, from :data:`REFERENCE_REPEATS` repeats of each frame.
    """

    config: DeviceConfig
    exposure_us: float
    calibration: Calibration
    dark_current: DarkCurrentEstimate | None
    flat_field: FlatFieldEstimate
    decorrelation: DecorrelationEstimate
    frame_time_s: float
    reference_dn: np.ndarray
    reference_se_dn: np.ndarray

    @property
    def camera(self) -> CameraEstimate:
        """The camera estimate (:class:`calibration.CameraEstimate`); for a camera without
        temporal noise (nothing for photon transfer to measure) the configuration's gain
        and black offset, and no noise."""
        if self.calibration.camera is not None:
            return self.calibration.camera
        cam = self.config.camera
        return CameraEstimate(cam.gain_dn_per_e, 0.0, cam.black_offset_dn, 0.0, math.inf, 0, 0)

    def model_device(self) -> CalibratedDevice:
        """The TM model as a device (every row used, analog, no noise), open.

        Its counts are the calibration's predictions ``|K x + e0|^2 + dark``: the mean
        counts a user expects of each frame.
        """
        tm = self.calibration.tm
        return CalibratedDevice(tm.tm, reference_field=tm.reference_field, gain=1.0,
                                offset=tm.dark, frame_time_s=self.frame_time_s,
                                exposure_us=self.exposure_us, full_scale=None,
                                name=f"{self.config.name} (TM model)").open()

    def reference_amplitude(self) -> np.ndarray:
        """``m_j = e0_j + K_j 1 / 2`` of the complement identity (n_out,) complex, in
        square-root-of-count units (docs/design.md section 3)."""
        tm = self.calibration.tm
        return tm.reference_field + tm.tm.sum(axis=1) / 2.0

    def summary(self) -> dict:
        """Plain-data figures of every estimate."""
        cam = self.camera
        dark = self.dark_current
        return {
            "exposure_us": self.exposure_us,
            "camera": {"gain_dn_per_e": cam.gain_dn_per_e, "read_noise_e": cam.read_noise_e,
                       "dark_noise_dn": cam.dark_noise_dn, "black_offset_dn": cam.black_offset_dn,
                       "frames": cam.frames},
            "tm_model": {"intensity_r": self.calibration.intensity_r,
                         "frames": self.calibration.tm.frames,
                         "untrusted_rows": int(self.calibration.tm.untrusted.size)},
            "dark_current": None if dark is None else {
                "e_per_s": dark.e_per_s, "e_per_s_se": dark.e_per_s_se,
                "exposures_us": list(dark.exposures_us), "frames": dark.frames},
            "flat_field": {"prnu_rms": self.flat_field.prnu_rms,
                           "noise_rms": self.flat_field.noise_rms,
                           "frames": self.flat_field.frames},
            "decorrelation": {"tau_s": self.decorrelation.tau_s,
                              "tau_se_s": self.decorrelation.tau_se_s,
                              "lags_s": list(self.decorrelation.lags_s),
                              "frames": self.decorrelation.frames},
        }


def _separate(config: DeviceConfig, offset: int) -> DeviceConfig:
    """The same physical device with other noise streams (camera, laser)."""
    seeds = config.seeds
    return config.replace(seeds__camera=seeds.camera + offset, seeds__laser=seeds.laser + offset)


def device_knowledge(config: DeviceConfig, error_set: ErrorSet, *,
                     probes_per_input: float = CALIBRATION_PROBES_PER_INPUT,
                     seed: int = 0) -> DeviceKnowledge:
    """Estimate what a user knows of the device ``config``, each from separate frames.

    Parameters
    ----------
    config
        The device (a :class:`photon.DeviceConfig`, as :func:`budget_config` builds).
    error_set
        The errors its operator will project (their width and encoder).
    probes_per_input
        Probes of the TM calibration per input.
    seed
        Seed of every frame shown.
    """
    device = VirtualDevice(_separate(config, SEPARATE_SEED_OFFSET)).open()
    # The exposure the device settles on, as the feedback's operator fits it.
    exposure = float(fit_operator(device, error_set, auto_exposure=True).device_.exposure_us)
    with warnings.catch_warnings():
        # Rows a calibration names untrusted, or an r below 0.9 on a noisy device, are
        # part of what the user knows; the model keeps every row.
        warnings.simplefilter("ignore", RuntimeWarning)
        session = calibrate(device, probes_per_input=probes_per_input, seed=seed,
                            progress=False)
    reference, reference_se = _reference_response(device, error_set.n_classes)
    gain = (session.camera.gain_dn_per_e if session.camera is not None
            else config.camera.gain_dn_per_e)
    dark = estimate_dark_current(device, gain) if device.can_block_light else None
    camera = Camera(config.camera, config.n_out,
                    noise_seed=config.seeds.camera + 2 * SEPARATE_SEED_OFFSET,
                    fixed_pattern_seed=config.seeds.fixed_pattern)
    flat = estimate_flat_field(camera, config.laser.wavelength_nm)
    fresh = VirtualDevice(_separate(config, 3 * SEPARATE_SEED_OFFSET)).open()
    fresh.exposure_us = exposure
    decorrelation = estimate_decorrelation_time(fresh, seed=seed + 1)
    return DeviceKnowledge(config, exposure, session, dark, flat, decorrelation,
                           float(device.frame_time_s), reference, reference_se)


def _reference_response(device, n_features: int) -> tuple[np.ndarray, np.ndarray]:
    """``y(1) - y(0)`` of each output (the used inputs all on, then all off), averaged
    over :data:`REFERENCE_REPEATS` repeats of each frame, and its standard error (DN)."""
    frames = np.zeros((2 * REFERENCE_REPEATS, device.n_in), np.uint8)
    frames[:REFERENCE_REPEATS, :n_features] = 1
    counts = np.asarray(device.acquire(frames), np.float64)
    on, off = counts[:REFERENCE_REPEATS], counts[REFERENCE_REPEATS:]
    se = np.sqrt((on.var(axis=0, ddof=1) + off.var(axis=0, ddof=1)) / REFERENCE_REPEATS)
    return on.mean(axis=0) - off.mean(axis=0), se
