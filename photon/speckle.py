"""Speckle statistics of a simulated device, measured from its own frames.

:func:`speckle_report` acquires frames with disjoint supports (their speckles are
independent), and compares what it measures with the theory of docs/design.md section 2:
contrast behind the polarizer, mean count against the exposure target, saturated
fraction against the exponential tail, and the photon-transfer gain from repeated
frames. :func:`precision_effect` measures what a TF32 or bf16 TM changes. Figures and
pages of these numbers are drawn on the studies floor (:mod:`studies.physics_pages`).
"""

from __future__ import annotations

import math

import numpy as np

from .budget import UNSATURATED_MEAN_FRACTION, mean_counts_dn
from .chain import OpticalChain
from .precision import TM_PRECISIONS, relative_rounding_rms

__all__ = ["speckle_report", "disjoint_frames", "precision_effect", "contrast_and_se"]


def disjoint_frames(n_in: int, n_frames: int) -> np.ndarray:
    """``n_frames`` binary frames whose supports do not overlap (equal widths)."""
    width = n_in // n_frames
    if width < 1:
        raise ValueError(f"n_frames = {n_frames}: expected at most n_in = {n_in} frames")
    frames = np.zeros((n_frames, n_in), np.uint8)
    for k in range(n_frames):
        frames[k, k * width:(k + 1) * width] = 1
    return frames


def speckle_report(chain: OpticalChain, n_frames: int = 8, repeats: int = 64) -> dict:
    """Measure the device's speckle and camera statistics.

    Parameters
    ----------
    chain
        The device.
    n_frames
        Disjoint-support frames for the speckle statistics.
    repeats
        Repetitions of one half-on frame for the photon-transfer estimate of the gain.

    Returns
    -------
    dict
        Measured values next to the theory they test.
    """
    intensity = chain.intensity(disjoint_frames(chain.n_in, n_frames)).astype(np.float64)
    contrast = float(intensity.std() / intensity.mean())
    half = np.zeros((1, chain.n_in), np.uint8)
    half[0, ::2] = 1
    counts = chain.acquire(np.repeat(half, repeats, axis=0)).astype(np.float64)
    cam = chain.camera
    report = {
        "speckle_contrast": contrast,
        "speckle_contrast_theory": chain.polarizer.speckle_contrast,
        "speckle_samples": int(intensity.size),
        "mean_counts_dn": float(counts.mean()),
        "mean_counts_theory_dn": mean_counts_dn(chain.config) if chain.config else None,
    }
    if cam.full_scale_dn is not None:
        report["mean_counts_target_dn"] = (cam.black_offset_dn + UNSATURATED_MEAN_FRACTION
                                           * (cam.full_scale_dn - cam.black_offset_dn))
        report["saturated_fraction"] = float((counts == cam.full_scale_dn).mean())
        report["saturated_fraction_target"] = math.exp(-1.0 / UNSATURATED_MEAN_FRACTION)
    # Photon transfer: temporal variance against temporal mean over unsaturated pixels,
    # var = a + K (mu - offset) + r^2 (mu - offset)^2: the quadratic term is the laser's
    # RIN, common to a whole frame, which would otherwise bias the gain upwards.
    mean, var = counts.mean(axis=0), counts.var(axis=0, ddof=1)
    usable = mean < (cam.full_scale_dn or np.inf) * 0.7
    usable &= mean > cam.black_offset_dn + 3.0
    if usable.sum() > 10 and cam.shot_noise:
        quadratic, slope, _ = np.polyfit(mean[usable] - cam.black_offset_dn, var[usable], 2)
        report["ptc_gain_dn_per_e"] = float(slope)
        report["gain_dn_per_e"] = cam.gain_dn_per_e
        report["ptc_rin_rms"] = float(np.sqrt(max(quadratic, 0.0)))
        report["rin_rms"] = chain.laser.rin_rms
    return report


def precision_effect(config, precisions=TM_PRECISIONS, n_frames: int = 64,
                     random_frames: int = 64, seed: int = 0) -> list[dict]:
    """Measure what each TM precision changes, against the float32 chain of ``config``.

    Every chain has the same seeds (same TM before rounding, same noise), so differences
    are the rounding's alone. Intensities are taken on ``n_frames`` disjoint frames
    (independent speckles: the speckle law) and on ``random_frames`` random half-on
    frames (the projections a user computes). The change is also compared with the shot
    noise it would hide in: the rms of the intensity change over the rms photon shot
    noise of the same pixels at the device's exposure, on the half-on frames
    (``error_over_shot_noise``, about ``eps sqrt(2 N_e)`` for ``N_e`` mean
    photo-electrons per pixel, ``mean_signal_electrons``).

    Parameters
    ----------
    config : DeviceConfig
        The device (its ``simulation.tm_precision`` is replaced).
    precisions
        The precisions to compare; ``float32`` is always the reference.

    Returns
    -------
    list of dict, one per precision: ``intensity_rel_rms_error`` (rms of the intensity
    change over the rms intensity) next to ``intensity_rel_rms_theory``
    (:func:`~photon.precision.relative_rounding_rms`), ``speckle_contrast`` with its
    standard error, ``ks_exponential`` (Kolmogorov-Smirnov distance of the normalized
    disjoint-frame intensity to the exponential law), ``error_over_shot_noise`` and
    ``mean_signal_electrons``.
    """
    from scipy import stats  # noqa: PLC0415

    rng = np.random.default_rng(seed)
    disjoint = disjoint_frames(config.n_in, n_frames)
    projections = (rng.random((random_frames, config.n_in)) < 0.5).astype(np.uint8)
    frames = np.concatenate([disjoint, projections])

    def measure(precision):
        chain = OpticalChain.from_config(config.replace(simulation__tm_precision=precision))
        return chain, chain.intensity(frames).astype(np.float64)

    chain, reference = measure("float32")
    electrons_per_unit = (chain.watts_per_unit_intensity
                          * chain.camera.electrons_per_watt(chain.laser.wavelength_nm))
    half_on = slice(n_frames, None)            # the frames the presets' exposure is set for
    shot_rms = math.sqrt(electrons_per_unit * reference[half_on].mean()) / electrons_per_unit
    rows = []
    for precision in precisions:
        chain, intensity = measure(precision)
        speckle = intensity[:n_frames]
        normalized = (speckle / speckle.mean(axis=1, keepdims=True)).ravel()
        contrast, contrast_se = contrast_and_se(speckle.ravel())
        change = intensity - reference
        error_rms = float(np.sqrt(np.mean(change ** 2)))
        rows.append({
            "precision": precision,
            "intensity_rel_rms_error": error_rms / float(np.sqrt(np.mean(reference ** 2))),
            "intensity_rel_rms_theory": 0.0 if precision == "float32"
            else relative_rounding_rms(precision),
            "speckle_contrast": contrast,
            "speckle_contrast_se": contrast_se,
            "speckle_contrast_theory": chain.polarizer.speckle_contrast,
            "ks_exponential": float(stats.kstest(normalized, "expon").statistic),
            "ks_samples": int(normalized.size),
            "error_over_shot_noise": float(np.sqrt(np.mean(change[half_on] ** 2))) / shot_rms,
            "mean_signal_electrons": electrons_per_unit * float(reference[half_on].mean()),
        })
    return rows


def contrast_and_se(samples) -> tuple[float, float]:
    """Speckle contrast std/mean and its delta-method standard error (i.i.d. samples).

    With central moments ``sigma^2, mu3, mu4`` and ``C = sqrt(v) / m``:
    ``N Var(C) = (C/m)^2 sigma^2 + (C/2v)^2 (mu4 - sigma^4) - (C^2/(m v)) mu3``.
    """
    x = np.asarray(samples, np.float64).ravel()
    n, m = x.size, x.mean()
    d = x - m
    v, mu3, mu4 = (d ** 2).mean(), (d ** 3).mean(), (d ** 4).mean()
    c = math.sqrt(v) / m
    var_c = ((c / m) ** 2 * v + (c / (2 * v)) ** 2 * (mu4 - v * v) - c * c / (m * v) * mu3) / n
    return float(c), float(math.sqrt(max(var_c, 0.0)))
