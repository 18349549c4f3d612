"""Camera calibration from frames: the EMVA 1288 photon-transfer method.

Only the device protocol is used: binary frames in, counts out, the exposure, and (where
the device has one) :meth:`devices.OPUDevice.acquire_dark`, frames with the light blocked.

* **Dark level and dark noise.** With a way to block the light (a shutter, the laser
  off), from dark frames at the device's exposure (``dark_method = "shutter"``). Without
  one, all-off DMD frames are *not* dark: the fixed field (DMD leakage, mirrors held on
  outside the used region) still reaches the camera. Its signal grows with the exposure
  and the offset does not, so all-off frames at 1/100 and 1/10 of the exposure give each
  pixel's fixed-field signal ``d_j`` at the short one; the offset is extrapolated to zero
  exposure and the dark noise is what remains once the fixed field's shot noise
  ``K d_j`` is taken out (``dark_method = "extrapolated"``). Below about half a DN of
  noise the counts are fitted by maximum likelihood as a Gaussian *rounded to integers*
  (exact where the ``1/12`` quantization rule of thumb fails); above, by moments with
  that rule; analog cameras by moments.
* **Photon transfer**: one fixed half-on frame repeated at several exposures. Speckle
  gives every pixel a different mean, so one exposure already spans the range. Each
  frame is first divided by its common-mode factor (laser RIN scales whole frames);
  then, per pixel, the temporal variance (about the pixel's linear trend over the
  repeats, blind to a slow drift of its mean) against the temporal mean follows
  ``sigma_y^2 = sigma_dark^2 + K (mu_y - mu_dark)`` below saturation: its slope is the
  gain ``K`` (DN per electron).
* **Saturation**: where the response stops growing. Pixels that are bright and have
  lost their shot noise (a full well, or the ADC's top) sit on a plateau; its level
  ``saturation_dn`` is measured, not assumed to be the ADC's full scale (a well may fill
  below it). Only pixels below 80 % of the way from the dark level to that plateau enter
  the photon-transfer fit. **Read noise** ``sigma_dark / K`` (electrons); **saturation
  capacity** ``(mu_sat - mu_dark) / K``.
* **Dark current** (:func:`estimate_dark_current`): dark frames (light blocked) at
  exposures ten times apart, from the device's own up to where the dark signal has risen
  by several DN; the level of each (a rounded-Gaussian fit below half a DN of noise)
  grows as ``K i_d t``: the weighted slope over ``K`` is ``i_d`` (electrons per second).
* **Flat field** (:func:`estimate_flat_field`): the camera alone in front of a uniform
  source (EMVA 1288's flat field; on an OPU the speckle hides it, each row's mean being
  its own transmission), frames at half its saturation and dark frames: each pixel's
  mean over the average is its relative response ``1 + p_j`` (photo-response
  non-uniformity), the frames' noise taken out of its rms.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import optimize, special

from photon import to_numpy
from photon.support.arguments import check_choice, check_int, check_number

from .acquisition import acquire_all
from .saturation import ADC_CENSOR_MARGIN_DN, adc_censor_dn

__all__ = ["CameraEstimate", "NoiseFreeCamera", "estimate_camera", "fit_rounded_gaussian",
           "DARK_METHODS", "DarkCurrentEstimate", "estimate_dark_current", "FlatFieldEstimate",
           "estimate_flat_field", "has_transfer_points", "MIN_TRANSFER_POINTS",
           "TRANSFER_EXPOSURES"]

DARK_METHODS = ("auto", "shutter", "extrapolated")
SHORT_EXPOSURE = 0.01        # all-off frames at these fractions of the exposure (no shutter)
MID_EXPOSURE = 0.1
ROUNDING_MODEL_BELOW_DN = 0.6  # dark noise below which the rounded-Gaussian fit is used
MIN_TRANSFER_POINTS = 10      # pixel readings (pixels x exposures) the photon transfer fits
TRANSFER_EXPOSURES = (0.5, 1.0, 2.0, 4.0)  # default exposures of the photon transfer, x the set one


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
    saturation_dn
        The count a saturated pixel reads: the measured plateau (a full well) or the
        ADC's full scale; ``inf`` when nothing saturated (and no ADC).
    saturation_spread_dn
        Rms of saturated counts about ``saturation_dn`` (read noise, pixel to pixel
        offsets); 0 at the ADC's top.
    dark_method
        ``"shutter"`` (frames with the light blocked) or ``"extrapolated"`` (all-off
        frames extrapolated to zero exposure).
    """

    gain_dn_per_e: float
    read_noise_e: float
    black_offset_dn: float
    dark_noise_dn: float
    saturation_e: float
    frames: int
    pixels_used: int
    saturation_dn: float = math.inf
    saturation_spread_dn: float = 0.0
    dark_method: str = "shutter"

    @property
    def censor_dn(self) -> float:
        """Counts at or above this level are treated as saturated (censored).

        Half a DN below an ADC top; four spreads (at least half a DN) below a well's
        plateau, where saturated counts scatter with the read noise.
        """
        if not math.isfinite(self.saturation_dn):
            return math.inf
        return self.saturation_dn - max(4.0 * self.saturation_spread_dn, ADC_CENSOR_MARGIN_DN)

    def as_dict(self) -> dict:
        """Plain-data form."""
        return asdict(self)


class NoiseFreeCamera(ValueError):
    """The camera shows no temporal noise at all (a noise-free model): the photon-transfer
    method has nothing to measure."""


def _rounded_nll(values, counts, mean, sd, floor=None):
    upper = special.ndtr((values + 0.5 - mean) / sd)
    lower = special.ndtr((values - 0.5 - mean) / sd)
    if floor is not None:  # a count at the ADC's bottom stands for everything below
        lower = np.where(values <= floor, 0.0, lower)
    return -float(np.sum(counts * np.log(np.maximum(upper - lower, 1e-300))))


def fit_rounded_gaussian(samples, shift=None, extra_variance=None,
                         floor=None) -> tuple[float, float]:
    """Maximum-likelihood ``(mean, sd)`` of a Gaussian observed after rounding to integers.

    ``P(k) = Phi((k + 1/2 - mu_j) / s_j) - Phi((k - 1/2 - mu_j) / s_j)`` with
    ``mu_j = mean + shift_j`` and ``s_j^2 = sd^2 + extra_variance_j``, fitted on the
    histogram of ``samples`` (integers). A sample at or below ``floor_j`` (the ADC's
    bottom, which clips) has ``P = Phi((k + 1/2 - mu_j) / s_j)``.

    Parameters
    ----------
    samples : array of integers
        ``(n, p)`` when ``shift``, ``extra_variance`` or ``floor`` is given (one column
        per pixel), any shape otherwise.
    shift, extra_variance, floor : (p,) arrays, optional
        A known per-column shift of the mean (DN), increase of the variance (DN^2), and
        the count at which the column clips from below.
    """
    samples = np.asarray(samples)
    if shift is None and extra_variance is None and floor is None:
        values, counts = np.unique(samples.ravel(), return_counts=True)
        offsets = np.zeros_like(values, np.float64)
        extra = np.zeros_like(values, np.float64)
        floors = None
    else:
        p = samples.shape[1]
        shift = np.zeros(p) if shift is None else np.asarray(shift, np.float64)
        extra_variance = np.zeros(p) if extra_variance is None else np.asarray(extra_variance,
                                                                               np.float64)
        samples = np.rint(samples).astype(np.int64)
        low = samples.min()
        span = int(samples.max() - low) + 1
        keys = (np.arange(p)[None, :] * span + (samples - low)).ravel()
        unique, counts = np.unique(keys, return_counts=True)
        column, values = np.divmod(unique, span)
        values = values + low
        offsets, extra = shift[column], np.maximum(extra_variance[column], 0.0)
        floors = None if floor is None else np.asarray(floor, np.float64)[column]
    values = values.astype(np.float64)
    residual = values - offsets
    mean0 = float(np.average(residual, weights=counts))
    sd0 = max(float(np.sqrt(max(np.average((residual - mean0) ** 2, weights=counts)
                                - float(np.average(extra, weights=counts)), 0.0))), 0.1)

    def negative_log_likelihood(params):
        mu, log_sd = params
        return _rounded_nll(values, counts, mu + offsets,
                            np.sqrt(math.exp(2 * log_sd) + extra), floors)

    result = optimize.minimize(negative_log_likelihood, [mean0, math.log(sd0)],
                               method="Nelder-Mead", options={"xatol": 1e-6, "fatol": 1e-6})
    return float(result.x[0]), float(math.exp(result.x[1]))


def _dark_statistics(counts, digital: bool, shift=None, extra_variance=None):
    """Black offset and dark noise (DN, before rounding) of dark frames ``counts`` (n, p).

    ``shift`` (p,) is a known signal in each pixel's mean (the fixed field of all-off
    frames), ``extra_variance`` (p,) its shot noise; both are taken out. Digital counts
    are fitted as a rounded Gaussian (per-pixel offsets removed to the nearest integer,
    counts at 0 taken as clipped there) unless the noise is well above a DN and nothing
    clips, where moments with the rounding's 1/12 are exact.
    """
    p = counts.shape[1]
    shifted = shift is not None or extra_variance is not None
    shift = np.zeros(p) if shift is None else shift
    extra_variance = np.zeros(p) if extra_variance is None else extra_variance
    pixel_means = counts.mean(axis=0)
    pixel_vars = counts.var(axis=0, ddof=1)
    offset = float(np.mean(pixel_means - shift))
    variance = float(np.mean(pixel_vars - extra_variance))
    if not digital:
        return offset, math.sqrt(max(variance, 0.0))
    moment_sd = math.sqrt(max(variance - 1.0 / 12.0, 0.0))
    clipped = bool((counts <= 0).any())
    if moment_sd > ROUNDING_MODEL_BELOW_DN and not clipped:
        # Well above a DN of noise, rounding adds 1/12 DN^2 and leaves the mean alone.
        return offset, moment_sd
    # Per-pixel offsets (DSNU) are fixed: remove each pixel's mean rounded to an integer,
    # which keeps the samples integer and the rounding model exact.
    centre = np.rint(pixel_means - shift - offset) if shifted else np.rint(pixel_means)
    floor = -centre if clipped else None
    if not shifted and not clipped:
        mean, sd = fit_rounded_gaussian(counts - centre)
    else:
        mean, sd = fit_rounded_gaussian(counts - centre, shift=shift,
                                        extra_variance=extra_variance, floor=floor)
    return float(np.mean(centre)) + mean, sd


def _all_off(device, repeats, exposure_us):
    device.exposure_us = exposure_us
    frames = np.zeros((repeats, device.n_in), np.uint8)
    return to_numpy(acquire_all(device, frames, progress=False)).astype(np.float64)


def _resolve_dark_method(device, dark: str) -> str:
    check_choice("dark", dark, DARK_METHODS)
    can_block = bool(getattr(device, "can_block_light", False))
    if dark == "shutter" and not can_block:
        raise ValueError(f"dark = 'shutter': device {device.name!r} cannot block its light "
                         "(can_block_light is False); expected dark='auto' or 'extrapolated'")
    if dark == "auto":
        return "shutter" if can_block else "extrapolated"
    return dark


def has_transfer_points(device, exposure_factors=TRANSFER_EXPOSURES) -> bool:
    """Whether ``device`` gives the photon transfer points enough: one per output and
    exposure, at least :data:`MIN_TRANSFER_POINTS`."""
    return device.n_out * len(exposure_factors) >= MIN_TRANSFER_POINTS


def estimate_camera(device, *, exposure_factors=TRANSFER_EXPOSURES, repeats: int = 64,
                    seed: int = 0, dark: str = "auto") -> CameraEstimate:
    """Estimate gain, read noise, black offset and saturation of ``device``.

    Parameters
    ----------
    device
        An open device with a settable exposure (a virtual or hardware OPU).
    exposure_factors
        Exposures to use, relative to the device's current one (restored afterwards).
        The longest should saturate some pixels (for the saturation level).
    repeats
        Frames per exposure (and per set of dark frames).
    seed
        Seed of the fixed half-on frame.
    dark
        ``"auto"`` (frames with the light blocked when the device can take them,
        :meth:`devices.OPUDevice.acquire_dark`, else extrapolation), ``"shutter"`` or
        ``"extrapolated"`` (all-off frames at two short exposures, see the module notes).

    Raises
    ------
    NoiseFreeCamera
        For a camera whose counts show no temporal noise (nothing to measure).
    ValueError
        For a device without an exposure, too few repeats for a variance, an unknown
        ``dark`` or a shutter the device does not have.
    """
    exposure = device.exposure_us
    if exposure is None:
        raise ValueError(f"device = {device!r}: expected a device with a camera exposure "
                         "(the photon-transfer method varies it)")
    if repeats < 8:
        raise ValueError(f"repeats = {repeats}: expected at least 8 frames per exposure")
    if not has_transfer_points(device, exposure_factors):
        raise ValueError(f"device '{device.name}': n_out = {device.n_out} outputs at "
                         f"{len(exposure_factors)} exposures give at most "
                         f"{device.n_out * len(exposure_factors)} photon-transfer points: "
                         f"expected at least {MIN_TRANSFER_POINTS} (a device with more outputs, "
                         "more exposure_factors, or calibrate(..., camera=False))")
    method = _resolve_dark_method(device, dark)
    digital = device.full_scale is not None
    full = device.full_scale
    frame = np.zeros((1, device.n_in), np.uint8)
    frame[0, np.random.default_rng(seed).permutation(device.n_in)[: device.n_in // 2]] = 1
    frames_used = 0
    series = []
    try:
        if method == "shutter":
            dark_counts = np.asarray(to_numpy(device.acquire_dark(repeats)), np.float64)
            frames_used += repeats
            mu_dark, sd_dark = _dark_statistics(dark_counts, digital)
        else:
            short = _all_off(device, repeats, exposure * SHORT_EXPOSURE)
            mid = _all_off(device, repeats, exposure * MID_EXPOSURE)
            frames_used += 2 * repeats
            mu_dark, sd_dark = _dark_statistics(short, digital)  # provisional (biased)
        for factor in exposure_factors:
            device.exposure_us = exposure * factor
            counts = to_numpy(acquire_all(device, np.repeat(frame, repeats, axis=0),
                                          progress=False)).astype(np.float64)
            frames_used += repeats
            series.append(counts)
    finally:
        device.exposure_us = exposure
    if sd_dark == 0.0 and not any(np.any(c.var(axis=0) > 0) for c in series):
        raise NoiseFreeCamera(f"device = {device.name!r}: its counts show no temporal noise, "
                              "expected a camera with shot and read noise to measure")
    quiet = max(4.0 * sd_dark ** 2, 1.0 / 3.0)  # variance of a pixel with no shot noise left
    plateau, plateau_var, clipped_any = [], [], []
    for counts in series:
        raw_mean, raw_var = counts.mean(axis=0), counts.var(axis=0, ddof=1)
        top = full if full is not None else raw_mean.max()
        # Saturated pixels: bright and without shot noise (at the well or the ADC top).
        saturated = (raw_mean > mu_dark + 0.3 * (top - mu_dark)) & (raw_var <= quiet)
        plateau.append(raw_mean[saturated])
        plateau_var.append(raw_var[saturated])
        clipped_any.append(saturated | ((counts >= full).any(axis=0) if full is not None
                                        else False))
    saturation_dn, spread = _saturation_level(plateau, plateau_var, full)
    ceiling = saturation_dn if math.isfinite(saturation_dn) else None
    means, variances = [], []
    for counts, clipped in zip(series, clipped_any):
        signal = counts - mu_dark
        # Remove the common-mode factor of each frame (laser RIN, slow drift).
        common = signal.sum(axis=1) / signal.mean(axis=0).sum()
        normalized = mu_dark + signal / common[:, None]
        # Temporal variance about each pixel's linear trend over the repeats: blind to a
        # slow change of its mean (a drifting medium).
        mean, var = _detrended_moments(normalized)
        usable = ~clipped & (mean > mu_dark + 3 * sd_dark)
        if ceiling is not None:  # well below the response's end: no partial saturation
            usable &= mean < mu_dark + 0.8 * (ceiling - mu_dark)
            usable &= counts.max(axis=0) < ceiling - max(4.0 * spread, 0.5)
        means.append(mean[usable])
        variances.append(var[usable])
    mean = np.concatenate(means)
    var = np.concatenate(variances)
    if mean.size < MIN_TRANSFER_POINTS:
        raise ValueError(f"device '{device.name}' at exposure_us = {exposure:g} times "
                         f"exposure_factors = {exposure_factors!r}: only {mean.size} pixels show "
                         "signal above the dark noise and below saturation: expected a device "
                         "whose light reaches the camera (raise the exposure if it is dark, "
                         "lower it if it saturates)")
    if sd_dark == 0.0 and not np.any(var > 0):
        raise NoiseFreeCamera(f"device = {device.name!r}: its counts show no temporal noise, "
                              "expected a camera with shot and read noise to measure")
    gain = _photon_transfer_slope(mean - mu_dark, var)
    if not gain > 0:
        raise ValueError(f"photon-transfer slope = {gain!r}: expected a positive gain; is the "
                         "device's signal shot-noise limited?")
    if method == "extrapolated":
        mu_dark, sd_dark = _extrapolated_dark(short, mid, gain, digital)
    # The intercept is the dark noise (with the rounding's 1/12 where the noise is well
    # above a DN, so that rule holds): fixing it halves the slope's variance.
    intercept = sd_dark ** 2 + (1.0 / 12.0 if digital else 0.0)
    keep = (intercept + gain * (mean - mu_dark) >= ROUNDING_MODEL_BELOW_DN ** 2) | (not digital)
    if np.count_nonzero(keep) >= 10:
        refined = _photon_transfer_slope(mean[keep] - mu_dark, var[keep], intercept=intercept)
        if refined > 0:
            gain = refined
    if not math.isfinite(saturation_dn):
        saturation_e = math.inf
    elif full is not None and saturation_dn >= full:
        saturation_e = (adc_censor_dn(full) - mu_dark) / gain  # where it rounds to the top
    else:
        saturation_e = (saturation_dn - mu_dark) / gain
    return CameraEstimate(gain_dn_per_e=gain, read_noise_e=sd_dark / gain,
                          black_offset_dn=mu_dark, dark_noise_dn=sd_dark,
                          saturation_e=float(saturation_e), frames=frames_used,
                          pixels_used=int(mean.size), saturation_dn=float(saturation_dn),
                          saturation_spread_dn=float(spread), dark_method=method)


def _extrapolated_dark(short, mid, gain, digital):
    """Offset and dark noise from all-off frames at two exposures (see the module notes).

    ``short`` and ``mid`` (repeats, n_out) at ``SHORT_EXPOSURE`` and ``MID_EXPOSURE``
    times the exposure. Each pixel's fixed-field signal at the short exposure is
    ``d_j = (mean_mid - mean_short) t_s / (t_m - t_s)``; it is removed from the mean and
    its shot noise ``K d_j`` from the variance.
    """
    ratio = SHORT_EXPOSURE / (MID_EXPOSURE - SHORT_EXPOSURE)
    shift = np.maximum(mid.mean(axis=0) - short.mean(axis=0), 0.0) * ratio
    return _dark_statistics(short, digital, shift=shift, extra_variance=gain * shift)


def _detrended_moments(counts):
    """Per-column mean and variance about a straight line in the frame index (ddof 2)."""
    r = counts.shape[0]
    t = np.arange(r, dtype=np.float64) - (r - 1) / 2.0
    mean = counts.mean(axis=0)
    slope = (t @ (counts - mean)) / (t @ t)
    resid = counts - mean - np.outer(t, slope)
    return mean, (resid ** 2).sum(axis=0) / (r - 2)


def _photon_transfer_slope(signal, variance, passes: int = 3, intercept=None) -> float:
    """Slope of ``variance = a + K signal`` by weighted least squares.

    A sample variance of ``r`` frames scatters by ``sigma^2 sqrt(2 / (r - 1))``: the
    weights come from the *fitted* line (weighting by the noisy sample variances
    themselves would bias the slope low), refined over ``passes`` passes. ``intercept``
    fixes ``a`` (the dark variance) instead of fitting it.
    """
    if intercept is not None:
        slope = float(np.sum(signal * (variance - intercept)) / np.sum(signal ** 2))
        low = 0.5 * float(np.min(variance[variance > 0])) if np.any(variance > 0) else 1e-12
        for _ in range(passes):
            weight = 1.0 / np.maximum(intercept + slope * signal, low) ** 2
            slope = float(np.sum(weight * signal * (variance - intercept))
                          / np.sum(weight * signal ** 2))
        return slope
    design = np.stack([np.ones_like(signal), signal], axis=1)
    coef, *_ = np.linalg.lstsq(design, variance, rcond=None)
    # The fitted line may dip below zero at the dimmest points on a first pass: floor the
    # weights' variance at half the smallest one observed, or they swamp the fit.
    low = 0.5 * float(np.min(variance[variance > 0])) if np.any(variance > 0) else 1e-12
    for _ in range(passes):
        predicted = np.maximum(design @ coef, low)
        coef, *_ = np.linalg.lstsq(design / predicted[:, None], variance / predicted, rcond=None)
    return float(coef[1])


def _saturation_level(plateau, plateau_var, full) -> tuple[float, float]:
    """``(level, spread)``: the count saturated pixels sit at and their rms scatter.

    The ADC top (spread 0) when they reach it, otherwise their plateau (a full well
    below the ADC top); the full scale, or ``inf`` for an analog camera, when no pixel
    saturated.
    """
    values = np.concatenate(plateau) if plateau else np.array([])
    if values.size == 0:
        return (math.inf if full is None else float(full)), 0.0
    level = float(np.median(values))
    if full is not None and level >= full - 0.5:
        return float(full), 0.0
    temporal = np.concatenate(plateau_var)
    spread = math.sqrt(float(np.median(temporal)) + float(np.var(values)))
    return level, spread


# ---------------------------------------------------------------------------- dark current
@dataclass(frozen=True)
class DarkCurrentEstimate:
    """Dark current measured on dark frames at several exposures.

    Attributes
    ----------
    e_per_s
        Dark current ``i_d``, electrons per second and pixel.
    e_per_s_se
        Its standard error.
    exposures_us : tuple of float
        Exposures of the dark frames.
    levels_dn : tuple of float
        Mean dark level at each exposure, DN.
    frames
        Dark frames used.
    gain_dn_per_e
        The gain ``K`` the slope was divided by.
    """

    e_per_s: float
    e_per_s_se: float
    exposures_us: tuple
    levels_dn: tuple
    frames: int
    gain_dn_per_e: float

    def electrons(self, exposure_us: float) -> float:
        """Mean dark electrons of one frame at ``exposure_us``."""
        return self.e_per_s * exposure_us * 1e-6

    def as_dict(self) -> dict:
        """Plain-data form."""
        return asdict(self)


def _dark_level(counts: np.ndarray, digital: bool) -> tuple[float, float]:
    """Mean dark level (DN, before rounding) of dark frames (n, p) and its standard error."""
    level, sd = _dark_statistics(counts, digital)
    # Per-pixel offsets (DSNU) are fixed: the level's error is the temporal noise over
    # every sample, plus the spread of the pixels' offsets over the pixels.
    pixel_means = counts.mean(axis=0)
    spatial = float(pixel_means.var(ddof=1)) if counts.shape[1] > 1 else 0.0
    temporal = (sd ** 2 + (1.0 / 12.0 if digital else 0.0)) / counts.size
    return level, math.sqrt(temporal + spatial / counts.shape[1] / max(counts.shape[0], 1))


def estimate_dark_current(device, gain_dn_per_e: float, *, frames: int = 8,
                          longest_exposure_s: float = 1000.0, rise_dn: float = 4.0,
                          step: float = 10.0) -> DarkCurrentEstimate:
    """Estimate the dark current of ``device`` from dark frames at growing exposures.

    The dark level grows as ``offset + K i_d t``. Dark frames (the light blocked,
    :meth:`devices.OPUDevice.acquire_dark`) are taken at the device's exposure, then at
    ``step`` times longer exposures until the level has risen by ``rise_dn`` DN (or
    reaches a quarter of the full scale), or ``longest_exposure_s`` is passed: the
    longest exposures carry the slope. Each level is the rounded-Gaussian maximum
    likelihood mean where the noise is below half a DN. The slope (weighted least
    squares) over ``K`` is ``i_d``. The exposure is restored afterwards. The device
    clock runs on through every exposure, as a real camera's would.

    Parameters
    ----------
    device
        An open device with a settable exposure that can block its light.
    gain_dn_per_e
        The camera's gain ``K`` (:func:`estimate_camera`), DN per electron.
    frames
        Dark frames per exposure (>= 2).
    longest_exposure_s
        Longest exposure tried, seconds.
    rise_dn
        Rise of the dark level at which the series stops, DN.
    step
        Ratio of successive exposures (> 1).

    Raises
    ------
    ValueError
        For a device without a settable exposure or a way to block its light, or bad
        arguments.
    """
    gain = check_number("gain_dn_per_e", gain_dn_per_e, low=0.0, low_open=True, unit="DN/e-")
    frames = check_int("frames", frames, low=2)
    longest_s = check_number("longest_exposure_s", longest_exposure_s, low=0.0, low_open=True,
                             unit="s")
    rise = check_number("rise_dn", rise_dn, low=0.0, low_open=True, unit="DN")
    step = check_number("step", step, low=1.0, low_open=True)
    exposure = device.exposure_us
    if exposure is None or not getattr(device, "exposure_settable", False):
        raise ValueError(f"device = {device!r}: expected a device with a settable exposure "
                         "(the dark current is the growth of the dark level with it)")
    if not getattr(device, "can_block_light", False):
        raise ValueError(f"device = {device!r}: expected a device that can block its light "
                         "(acquire_dark): all-off frames still carry the fixed field, which "
                         "grows with the exposure as the dark current does")
    digital = device.full_scale is not None
    ceiling = math.inf if device.full_scale is None else 0.25 * float(device.full_scale)
    exposures, levels, errors = [], [], []
    t_us = float(exposure)
    try:
        while True:
            device.exposure_us = t_us
            counts = np.asarray(to_numpy(device.acquire_dark(frames)), np.float64)
            level, se = _dark_level(counts, digital)
            exposures.append(t_us)
            levels.append(level)
            errors.append(se)
            risen = level - levels[0]
            if (len(levels) >= 2 and risen >= rise) or level >= ceiling \
                    or t_us * step > longest_s * 1e6:
                break
            t_us *= step
    finally:
        device.exposure_us = exposure
    if len(levels) < 2:
        raise ValueError(f"longest_exposure_s = {longest_s:g}: expected room for two exposures "
                         f"from the device's {exposure:g} us at step {step:g}")
    t_s = np.asarray(exposures) * 1e-6
    y, w = np.asarray(levels), 1.0 / np.maximum(np.asarray(errors), 1e-12) ** 2
    t_mean = float(np.sum(w * t_s) / np.sum(w))
    sxx = float(np.sum(w * (t_s - t_mean) ** 2))
    slope = float(np.sum(w * (t_s - t_mean) * y) / sxx)
    slope_se = math.sqrt(1.0 / sxx)
    return DarkCurrentEstimate(e_per_s=max(slope, 0.0) / gain, e_per_s_se=slope_se / gain,
                               exposures_us=tuple(exposures), levels_dn=tuple(levels),
                               frames=frames * len(levels), gain_dn_per_e=gain)


# ---------------------------------------------------------------------------- flat field
@dataclass(frozen=True)
class FlatFieldEstimate:
    """Each output pixel's relative response to a uniform light (photo-response non-uniformity).

    Attributes
    ----------
    gain : (n_out,) float64 array
        ``1 + p_j``: each pixel's signal over the mean pixel's.
    prnu_rms
        Rms of ``p_j`` with the frames' noise taken out (EMVA 1288 ``PRNU``, relative).
    noise_rms
        Rms error of one ``gain_j`` from the frames' temporal noise.
    mean_electrons
        Mean signal of the flat frames, electrons (as the camera's gain converts them).
    frames
        Flat and dark frames used.
    """

    gain: np.ndarray
    prnu_rms: float
    noise_rms: float
    mean_electrons: float
    frames: int


def estimate_flat_field(camera, wavelength_nm: float, *, frames: int = 32,
                        fill: float = 0.5) -> FlatFieldEstimate:
    """Measure a camera's flat field: its pixels under a uniform light.

    The camera sits in front of a uniform source (EMVA 1288's flat-field set-up) at
    ``fill`` of its saturation charge; ``frames`` flat frames and as many dark frames
    (no light) give each pixel's signal ``mean_flat_j - mean_dark_j`` (DSNU and offset
    cancel); over the pixels' mean it is ``1 + p_j``. The temporal noise of the means
    (shot and read noise over ``frames``) is taken out of the rms.

    Parameters
    ----------
    camera
        A :class:`photon.Camera` (called as ``camera(power_w, wavelength_nm)`` on
        ``(frames, n_sensor_pixels)`` powers; ``electrons_per_watt``,
        ``saturation_electrons``), not the device it serves: on an OPU the speckle
        gives each output its own mean, indistinguishable from its response.
    wavelength_nm
        Wavelength of the uniform light.
    frames
        Flat frames (and dark frames), >= 2.
    fill
        Mean signal as a fraction of the saturation charge (in (0, 1)).
    """
    frames = check_int("frames", frames, low=2)
    fill = check_number("fill", fill, low=0.0, high=1.0, low_open=True, high_open=True)
    wavelength = check_number("wavelength_nm", wavelength_nm, low=0.0, low_open=True, unit="nm")
    saturation = float(camera.saturation_electrons())
    target = fill * (saturation if math.isfinite(saturation) else 1e4)
    power = np.full((frames, camera.n_sensor_pixels),
                    target / camera.electrons_per_watt(wavelength), np.float32)
    flat = np.asarray(to_numpy(camera(power, wavelength)), np.float64)
    dark = np.asarray(to_numpy(camera(np.zeros_like(power), wavelength)), np.float64)
    signal = flat.mean(axis=0) - dark.mean(axis=0)
    mean = float(signal.mean())
    if not mean > 0:
        raise ValueError(f"camera = {camera!r}: its flat frames show no signal above the dark "
                         "ones: expected a camera that responds to light")
    gain = signal / mean
    noise = math.sqrt(float((flat.var(axis=0, ddof=1) + dark.var(axis=0, ddof=1)).mean())
                      / frames) / mean
    prnu = math.sqrt(max(float(gain.var(ddof=1)) - noise ** 2, 0.0))
    return FlatFieldEstimate(gain=gain, prnu_rms=prnu, noise_rms=noise,
                             mean_electrons=mean / float(camera.gain_dn_per_e),
                             frames=2 * frames)
