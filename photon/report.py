"""Speckle statistics of a simulated device, measured from its own frames.

:func:`speckle_report` acquires frames with disjoint supports (their speckles are
independent), and compares what it measures with the theory of DESIGN.md section 2:
contrast behind the polarizer, mean count against the exposure target, saturated
fraction against the exponential tail, and the photon-transfer gain from repeated
frames. :func:`plot_speckle_histogram` draws the intensity histogram against the
exponential law.
"""

from __future__ import annotations

import math

import numpy as np

from .budget import UNSATURATED_MEAN_FRACTION, mean_counts_dn
from .chain import OpticalChain

__all__ = ["speckle_report", "plot_speckle_histogram", "disjoint_frames"]


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


def plot_speckle_histogram(chain: OpticalChain, path, n_frames: int = 8) -> None:
    """Save a PNG histogram of normalized speckle intensity against the theory."""
    from matplotlib.figure import Figure  # noqa: PLC0415  (Agg canvas, no pyplot state)

    intensity = chain.intensity(disjoint_frames(chain.n_in, n_frames)).astype(np.float64)
    normalized = (intensity / intensity.mean(axis=1, keepdims=True)).ravel()
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    ax.hist(normalized, bins=120, range=(0, 8), density=True, alpha=0.6, label="simulated")
    grid = np.linspace(0, 8, 400)
    ax.plot(grid, np.exp(-grid), "k--", label="exponential (polarized)")
    ax.plot(grid, 4 * grid * np.exp(-2 * grid), "k:", label="gamma k=2 (unpolarized)")
    ax.set_yscale("log")
    ax.set_ylim(1e-4, 2)
    ax.set_xlabel("intensity / mean")
    ax.set_ylabel("probability density")
    ax.set_title(f"{chain.summary()['name']}: speckle contrast "
                 f"{normalized.std():.3f} (theory {chain.polarizer.speckle_contrast:.3f})")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
