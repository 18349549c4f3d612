"""Finite-difference gradient checks shared by the layer tests."""

import numpy as np

EPS = 1e-6


def relative_error(a, b) -> float:
    """``|a - b| / max(|a|, |b|)`` (Frobenius norms)."""
    return np.linalg.norm(a - b) / max(np.linalg.norm(a), np.linalg.norm(b), 1e-300)


def numerical_gradient(objective, array):
    """Central differences of the scalar ``objective()`` with respect to ``array`` (in place)."""
    grad = np.zeros_like(array)
    for index in np.ndindex(array.shape):
        saved = array[index]
        array[index] = saved + EPS
        plus = objective()
        array[index] = saved - EPS
        minus = objective()
        array[index] = saved
        grad[index] = (plus - minus) / (2 * EPS)
    return grad
