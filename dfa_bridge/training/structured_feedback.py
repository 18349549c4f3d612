"""Structured feedback: ``B e`` by a subsampled randomized Hartley transform, no stored ``B``.

Model
-----
As for every :class:`~dfa_bridge.training.feedback.Feedback`, ``B = diag(1/sqrt(n_i)) G``
(S, C), one projection of the error ``E`` (batch, C) onto the sum ``S`` of the hidden
widths, sliced per layer. Here ``G`` is the effective matrix of a
:class:`devices.structured.SRHT` from ``C`` to ``S`` with ``scale="unit"``: the error is
padded to ``N = 2^ceil(log2 C)``, sign-flipped and transformed (a real FFT computing the
Hartley transform, or a Walsh-Hadamard transform) once per block of ``N`` rows, each
block with its own signs and rows. Its entries have variance 1 (exactly +-1 for
Hadamard), as the Gaussian ``G`` of :class:`~dfa_bridge.training.feedback.IdealFeedback`,
so ``E[|B_i e|^2] = |e|^2`` and a learning rate tuned for Gaussian feedback suits it.

It costs ``O(S log N)`` per error instead of ``O(S C)`` and stores ``O(S)`` numbers:
what a GPU would run in place of a dense feedback GEMM, and in place of an OPU.
The backend follows the error (NumPy in, NumPy out; CuPy in, CuPy out).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from devices.structured import SRHT
from photon.support.arrays import array_module, asarray_like

from .feedback_base import Feedback

__all__ = ["StructuredFeedback"]


class StructuredFeedback(Feedback):
    """Feedback ``B = diag(1/sqrt(n_i)) G`` with ``G`` a unit-variance SRHT (module notes).

    Parameters
    ----------
    widths, n_classes
        As for :class:`~dfa_bridge.training.feedback.Feedback`.
    seed
        Seed of the signs and rows.
    transform
        ``"fft"`` (Hartley via a real FFT) or ``"hadamard"``.
    """

    def __init__(self, widths: Sequence[int], n_classes: int, seed: int = 0,
                 transform: str = "fft"):
        super().__init__(widths, n_classes)
        self.seed = int(seed)
        self.transform = SRHT(self.n_classes, self.total_width, self.seed, transform=transform,
                              scale="unit")
        self._scale_by_backend: dict[tuple[str, str], object] = {}

    @property
    def name(self) -> str:
        """``"structured"``."""
        return "structured"

    def _project(self, error):
        xp = array_module(error)
        projection = self.transform(error)
        key = (xp.__name__, str(projection.dtype))
        scale = self._scale_by_backend.get(key)
        if scale is None:
            scale = self._scale_by_backend[key] = asarray_like(
                self.column_scale.astype(projection.dtype), xp)
        projection *= scale
        return projection.astype(error.dtype, copy=False)

    def matrix(self) -> np.ndarray:
        """``B`` (S, C), float64: the transform's effective matrix, scaled per layer."""
        return self.transform.matrix() * self.column_scale[:, None].astype(np.float64)

    def describe(self) -> dict:
        """Plain-data description for reports."""
        return {**super().describe(), "seed": self.seed, "transform": self.transform.describe()}
