"""Camera calibration from frames: the EMVA 1288 photon-transfer method.

Only the device protocol is used: binary frames in, counts out, and the exposure.

* **Dark**: all-off DMD frames at a hundredth of the exposure (no signal, same read-out).
  The black offset and the dark noise come from a maximum-likelihood fit of a
  Gaussian *rounded to integers* (exact even when the noise is below one DN, where the
  ``1/12`` quantization rule of thumb fails); analog cameras use plain moments.
* **Photon transfer**: one fixed half-on frame repeated at several exposures. Speckle
  gives every pixel a different mean, so one exposure already spans the range. Each
  frame is first divided by its common-mode factor (laser RIN scales whole frames);
  then, per pixel, the temporal variance against the temporal mean follows
  ``sigma_y^2 = sigma_dark^2 + K (mu_y - mu_dark)`` below saturation: its slope is the
  gain ``K`` (DN per electron).
* **Read noise** ``sigma_dark / K`` (electrons); **saturation capacity** (the full well,
  or the ADC's top if that comes first) from the plateau the brightest pixels reach at
  the longest exposure, ``(mu_sat - mu_dark) / K``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import optimize, special

from photon import to_numpy

from .acquisition import acquire_all

__all__ = ["CameraEstimate", "NoiseFreeCamera", "estimate_camera", "fit_rounded_gaussian"]


@dataclass(frozen=True)
class CameraEstimate:
    """Camera parameters estimated from frames (EMVA 1288 names).

    Attributes
    ----------
    gain_dn_per_e
        System gain ``K``.
    read_noise_e
        Temporal dark noise in electrons, ``sigma_dark / K``.
    black_offset_dn
        Mean dark count.
    dark_noise_dn
        Temporal dark noise in DN (before rounding).
    saturation_e
        Saturation capacity in electrons.
    frames
        Frames used.
    pixels_used
        Pixel means that entered the photon-transfer fit.
    """

    gain_dn_per_e: float
    read_noise_e: float
    black_offset_dn: float
    dark_noise_dn: float
    saturation_e: float
    frames: int
    pixels_used: int

    def as_dict(self) -> dict:
        """Plain-data form."""
        return asdict(self)


class NoiseFreeCamera(ValueError):
    """The camera shows no temporal noise at all (a noise-free model): the photon-transfer
    method has nothing to measure."""


def fit_rounded_gaussian(samples) -> tuple[float, float]:
    """Maximum-likelihood ``(mean, sd)`` of a Gaussian observed after rounding to integers.

    ``P(k) = Phi((k + 1/2 - mu) / sd) - Phi((k - 1/2 - mu) / sd)``, fitted on the
    histogram of ``samples`` (integers).
    """
    values, counts = np.unique(np.asarray(samples).ravel(), return_counts=True)
    mean0 = float(np.average(values, weights=counts))
    sd0 = max(float(np.sqrt(np.average((values - mean0) ** 2, weights=counts))), 0.1)

    def negative_log_likelihood(params):
        mu, log_sd = params
        sd = math.exp(log_sd)
        upper = special.ndtr((values + 0.5 - mu) / sd)
        lower = special.ndtr((values - 0.5 - mu) / sd)
        return -float(np.sum(counts * np.log(np.maximum(upper - lower, 1e-300))))

    result = optimize.minimize(negative_log_likelihood, [mean0, math.log(sd0)],
                               method="Nelder-Mead", options={"xatol": 1e-6, "fatol": 1e-6})
    return float(result.x[0]), float(math.exp(result.x[1]))


def _dark(device, repeats: int, exposure_us: float):
    frames = np.zeros((repeats, device.n_in), np.uint8)
    device.exposure_us = exposure_us / 100.0
    try:
        counts = to_numpy(acquire_all(device, frames, progress=False))
    finally:
        device.exposure_us = exposure_us
    if device.full_scale is None:  # analog read-out: no rounding
        return float(counts.mean()), float(counts.std(axis=0, ddof=1).mean())
    # Per-pixel offsets (DSNU) are fixed: remove each pixel's mean rounded to an integer,
    # which keeps the samples integer and the rounding model exact.
    centred = counts - np.rint(counts.mean(axis=0))
    mean, sd = fit_rounded_gaussian(centred)
    return float(np.mean(np.rint(counts.mean(axis=0)))) + mean, sd


def estimate_camera(device, *, exposure_factors=(0.5, 1.0, 2.0, 4.0), repeats: int = 32,
                    seed: int = 0) -> CameraEstimate:
    """Estimate gain, read noise, black offset and saturation capacity of ``device``.

    Parameters
    ----------
    device
        An open device with a settable exposure (a virtual or hardware OPU).
    exposure_factors
        Exposures to use, relative to the device's current one (restored afterwards).
        The longest should saturate some pixels (for the saturation capacity).
    repeats
        Frames per exposure (and of the dark frames).
    seed
        Seed of the fixed half-on frame.

    Raises
    ------
    NoiseFreeCamera
        For a camera whose counts show no temporal noise (nothing to measure).
    ValueError
        For a device without an exposure, or too few repeats for a variance.
    """
    exposure = device.exposure_us
    if exposure is None:
        raise ValueError(f"device = {device!r}: expected a device with a camera exposure "
                         "(the photon-transfer method varies it)")
    if repeats < 8:
        raise ValueError(f"repeats = {repeats}: expected at least 8 frames per exposure")
    mu_dark, sd_dark = _dark(device, repeats, exposure)
    frame = np.zeros((1, device.n_in), np.uint8)
    frame[0, np.random.default_rng(seed).permutation(device.n_in)[: device.n_in // 2]] = 1
    full = device.full_scale
    means, variances = [], []
    plateau = []
    frames_used = repeats
    quiet = max(4.0 * sd_dark ** 2, 1.0 / 3.0)  # variance of a pixel with no shot noise left
    try:
        for factor in exposure_factors:
            device.exposure_us = exposure * factor
            counts = to_numpy(acquire_all(device, np.repeat(frame, repeats, axis=0),
                                          progress=False))
            frames_used += repeats
            signal = counts - mu_dark
            # Remove the common-mode factor of each frame (laser RIN, slow drift).
            common = signal.sum(axis=1) / signal.mean(axis=0).sum()
            normalized = mu_dark + signal / common[:, None]
            mean, var = normalized.mean(axis=0), normalized.var(axis=0, ddof=1)
            # Saturated pixels: bright and without shot noise (at the well or the ADC top).
            raw_mean, raw_var = counts.mean(axis=0), counts.var(axis=0, ddof=1)
            top = full if full is not None else raw_mean.max()
            saturated = (raw_mean > mu_dark + 0.3 * (top - mu_dark)) & (raw_var <= quiet)
            plateau.append(raw_mean[saturated])
            clipped = saturated | ((counts >= full).any(axis=0) if full is not None else False)
            usable = ~clipped & (mean > mu_dark + 3 * sd_dark)
            usable &= mean < mu_dark + 0.8 * (top - mu_dark)
            means.append(mean[usable])
            variances.append(var[usable])
    finally:
        device.exposure_us = exposure
    mean = np.concatenate(means)
    var = np.concatenate(variances)
    if mean.size < 10:
        raise ValueError(f"exposure_factors = {exposure_factors!r}: expected exposures giving "
                         f"unsaturated signal above the dark noise; only {mean.size} pixels usable")
    if sd_dark == 0.0 and not np.any(var > 0):
        raise NoiseFreeCamera(f"device = {device.name!r}: its counts show no temporal noise, "
                              "expected a camera with shot and read noise to measure")
    gain = _photon_transfer_slope(mean - mu_dark, var)
    if not gain > 0:
        raise ValueError(f"photon-transfer slope = {gain!r}: expected a positive gain; is the "
                         "device's signal shot-noise limited?")
    saturation_dn = _saturation_level(plateau, full)
    saturation_e = (saturation_dn - mu_dark) / gain if saturation_dn is not None else math.inf
    return CameraEstimate(gain, sd_dark / gain, mu_dark, sd_dark, float(saturation_e),
                          frames_used, int(mean.size))


def _photon_transfer_slope(signal, variance, passes: int = 3) -> float:
    """Slope of ``variance = a + K signal`` by weighted least squares.

    A sample variance of ``r`` frames scatters by ``sigma^2 sqrt(2 / (r - 1))``: the
    weights come from the *fitted* line (weighting by the noisy sample variances
    themselves would bias the slope low), refined over ``passes`` passes.
    """
    design = np.stack([np.ones_like(signal), signal], axis=1)
    coef, *_ = np.linalg.lstsq(design, variance, rcond=None)
    for _ in range(passes):
        predicted = np.maximum(design @ coef, 1e-12)
        coef, *_ = np.linalg.lstsq(design / predicted[:, None], variance / predicted, rcond=None)
    return float(coef[1])


def _saturation_level(plateau, full) -> float | None:
    """The count at which saturated pixels sit: the ADC top (less the rounding half step)
    when they reach it, otherwise their plateau (a full well below the ADC top)."""
    values = np.concatenate(plateau) if plateau else np.array([])
    if values.size == 0:
        return None if full is None else float(full) - 0.5
    level = float(np.median(values))
    if full is not None and level >= full - 0.5:
        return float(full) - 0.5
    return level
