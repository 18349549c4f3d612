"""Alignment of DFA with backpropagation, per hidden layer (docs/design.md section 5).

Two angles, in degrees (0: aligned, 90: orthogonal, as two random directions in high
dimension are):

* update angle of layer ``i``: between the DFA update ``dW_i^DFA`` and the backprop
  gradient ``dW_i^BP`` of the same batch, each layer's parameters (weight and bias)
  flattened into one vector (for the Transformer: per block, all its parameters). Only
  a ``dfa`` run has a DFA update to measure (:func:`backward_with_alignment`); ``bp`` and
  ``shallow`` runs have none;
* feedback angle of layer ``i``: between ``B_i`` (n_i, C) and the product of the forward
  weights above it, ``P_i = W_{i+1}^T W_{i+2}^T ... W_N^T`` (n_i, C), compared as vectors
  (Frobenius inner product). ``P_i`` is the map backpropagation would apply to the error
  at layer ``i`` with the nonlinearities' derivatives set to one, so it is the matrix DFA's
  ``B_i`` stands for (Refinetti et al., ICML 2021); for the last hidden layer it is
  ``W_N^T`` itself. On a GCN the graph propagation is left out of ``P_i`` likewise.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

from photon import array_module, to_numpy

__all__ = ["angle_deg", "update_angles", "feedback_angles", "backward_with_alignment"]


def angle_deg(a, b) -> float:
    """Angle in degrees between ``a`` and ``b`` taken as flat vectors (float64 sums).

    Returns NaN when either is zero.
    """
    if a.shape != b.shape:
        raise ValueError(f"b: shape {b.shape}: expected the shape of a {a.shape}")
    xp = array_module(a, b)
    a = xp.asarray(a, dtype=np.float64).ravel()
    b = xp.asarray(b, dtype=np.float64).ravel()
    norms = float(xp.linalg.norm(a)) * float(xp.linalg.norm(b))
    if norms == 0.0:
        return math.nan
    cosine = float(a @ b) / norms
    return math.degrees(math.acos(min(1.0, max(-1.0, cosine))))


def _flat(parameters: Sequence) -> object:
    xp = array_module(*parameters)
    return xp.concatenate([xp.asarray(p, dtype=np.float64).ravel() for p in parameters])


def update_angles(dfa_updates: Sequence[Sequence], bp_gradients: Sequence[Sequence]) -> list[float]:
    """Per-layer angle between DFA updates and backprop gradients of one batch.

    Parameters
    ----------
    dfa_updates, bp_gradients
        One entry per hidden layer, each a sequence of that layer's parameter
        gradients (e.g. ``[dW_i, db_i]``), in the same order.

    Returns
    -------
    list of float
        Angles in degrees.
    """
    if len(dfa_updates) != len(bp_gradients):
        raise ValueError(f"bp_gradients: {len(bp_gradients)} layers: expected one per layer of "
                         f"dfa_updates ({len(dfa_updates)})")
    return [angle_deg(_flat(dfa), _flat(bp)) for dfa, bp in zip(dfa_updates, bp_gradients)]


def feedback_angles(weights: Sequence, feedback_matrices: Sequence) -> list[float]:
    """Per-layer angle between ``W_{i+1}^T ... W_N^T`` and ``B_i``.

    Parameters
    ----------
    weights
        ``W_1 .. W_N``, each (n_out, n_in), NumPy or CuPy.
    feedback_matrices
        ``B_1 .. B_{N-1}``, each (n_i, C), NumPy.

    Returns
    -------
    list of float
        Angles in degrees, one per hidden layer.
    """
    if len(feedback_matrices) != len(weights) - 1:
        raise ValueError(f"feedback_matrices: {len(feedback_matrices)} matrices: expected one per "
                         f"hidden layer ({len(weights) - 1})")
    angles = []
    product = None
    for index in range(len(weights) - 1, 0, -1):  # P_i from the top down: P_i = W_{i+1}^T P_{i+1}
        transposed = to_numpy(weights[index]).astype(np.float64).T
        product = transposed if product is None else transposed @ product
        feedback = np.asarray(feedback_matrices[index - 1], np.float64)
        if feedback.shape != product.shape:
            raise ValueError(f"feedback_matrices[{index - 1}]: shape {feedback.shape}: expected "
                             f"{product.shape}, the shape of W_{index + 1}^T ... W_N^T")
        angles.append(angle_deg(product, feedback))
    return angles[::-1]


def backward_with_alignment(backward: Callable[[str], None],
                            gradients: Callable[[], list]) -> list[float]:
    """Set the DFA gradients of the current forward pass, measuring their angle to backprop.

    Only a ``dfa`` run measures this angle: ``bp`` and ``shallow`` apply no DFA update, so
    they have none to compare (docs/design.md section 5).

    Parameters
    ----------
    backward
        ``backward(m)`` sets the gradients of method ``m`` (``"bp"`` or ``"dfa"``) for
        the current forward pass. ``bp`` runs first; ``dfa`` runs last, so its gradients
        are the ones left in place for the update.
    gradients
        ``gradients()`` copies the gradients compared, one list per layer (or block).

    Returns
    -------
    list of float
        The angle in degrees per layer (:func:`update_angles`).
    """
    backward("bp")
    bp_gradients = gradients()
    backward("dfa")
    return update_angles(gradients(), bp_gradients)
