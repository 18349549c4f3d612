"""Calibration quality metrics, all invariant to what intensities cannot identify.

A TM estimate is defined up to a phase and a conjugation per output row: every metric
here is invariant to both.
"""

from __future__ import annotations

import numpy as np

__all__ = ["row_correlation", "intensity_correlation", "projection_error",
           "row_projection_errors", "fresh_frames"]


def row_correlation(estimate, truth) -> np.ndarray:
    """Per-row ``|<k_est, k_true>| / (|k_est| |k_true|)``, maximized over conjugating the row.

    Parameters
    ----------
    estimate, truth : (n_out, n_in) complex arrays

    Returns
    -------
    (n_out,) array in [0, 1]; 1 means equal up to a phase (and conjugation) and a scale.
    """
    estimate, truth = np.asarray(estimate), np.asarray(truth)
    if estimate.shape != truth.shape:
        raise ValueError(f"estimate: shape {estimate.shape}: expected the truth's {truth.shape}")
    direct = np.abs(np.sum(np.conj(estimate) * truth, axis=1))
    conjugate = np.abs(np.sum(estimate * truth, axis=1))
    norms = np.linalg.norm(estimate, axis=1) * np.linalg.norm(truth, axis=1)
    return np.maximum(direct, conjugate) / np.maximum(norms, 1e-300)


def intensity_correlation(measured, predicted) -> float:
    """Pearson r between measured and predicted counts, pooled over frames and outputs."""
    measured = np.asarray(measured, np.float64).ravel()
    predicted = np.asarray(predicted, np.float64).ravel()
    if measured.shape != predicted.shape:
        raise ValueError(f"predicted: {predicted.size} values: expected {measured.size} as measured")
    return float(np.corrcoef(measured, predicted)[0, 1])


def projection_error(measured, reference) -> float:
    """Relative Frobenius error ``||A - B|| / ||B||`` of a recovered linear projection."""
    measured, reference = np.asarray(measured, np.float64), np.asarray(reference, np.float64)
    return float(np.linalg.norm(measured - reference) / np.linalg.norm(reference))


def row_projection_errors(measured, reference) -> np.ndarray:
    """Per-row relative errors ``||a_j - b_j|| / ||b_j||`` of a recovered linear projection."""
    measured, reference = np.asarray(measured, np.float64), np.asarray(reference, np.float64)
    return np.linalg.norm(measured - reference, axis=1) / np.linalg.norm(reference, axis=1)


def fresh_frames(n_frames: int, n_in: int, seed: int) -> np.ndarray:
    """Half-on random binary frames, independent of any used for calibration."""
    return (np.random.default_rng(seed).random((n_frames, n_in)) < 0.5).astype(np.uint8)
