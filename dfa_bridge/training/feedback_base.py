"""The feedback source's contract: one projection of the error, sliced per hidden layer.

Every source (:mod:`dfa_bridge.training.feedback`,
:mod:`dfa_bridge.training.structured_feedback`) derives from :class:`Feedback`; see
docs/design.md section 5 for the model and the scale ``B_i = G_i / sqrt(n_i)``.
"""

from __future__ import annotations

import abc
import math
from typing import Sequence

import numpy as np

from photon.support.arguments import check_widths

__all__ = ["Feedback", "NO_HIDDEN"]

#: Why a network needs a hidden layer to be trained by DFA (for the widths' message).
NO_HIDDEN = "a network with no hidden layer has nothing to feed back to"


class Feedback(abc.ABC):
    """Base class: one projection of the error, sliced and scaled per hidden layer.

    Parameters
    ----------
    widths
        Hidden widths ``n_1 .. n_{N-1}``.
    n_classes
        Width ``C`` of the error.
    """

    def __init__(self, widths: Sequence[int], n_classes: int):
        self.widths = check_widths("widths", widths, why=NO_HIDDEN)
        if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 2:
            raise ValueError(f"n_classes = {n_classes!r}: expected an integer >= 2")
        self.n_classes = int(n_classes)
        self.total_width = sum(self.widths)
        bounds = np.cumsum((0,) + self.widths)
        self.slices = [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]
        #: column scale of the projection: 1 / sqrt(n_i) on layer i's slice, float32
        self.column_scale = np.concatenate(
            [np.full(w, 1.0 / math.sqrt(w)) for w in self.widths]).astype(np.float32)

    def project(self, error) -> list:
        """``[E B_1^T, .., E B_{N-1}^T]`` of ``error`` E (batch, C), from one projection.

        Returns
        -------
        list of (batch, n_i) arrays
            Views into one (batch, S) array, on the backend of ``error``.
        """
        if getattr(error, "ndim", 0) != 2 or error.shape[1] != self.n_classes:
            raise ValueError(f"error: shape {getattr(error, 'shape', None)}: expected "
                             f"(batch, {self.n_classes})")
        projection = self._project(error)
        return [projection[:, s] for s in self.slices]

    @abc.abstractmethod
    def _project(self, error):
        """``E B^T`` (batch, S), scaled; on the backend of ``error``."""

    @abc.abstractmethod
    def matrix(self) -> np.ndarray:
        """The stacked feedback matrix ``B`` (S, C) as applied, float64 NumPy."""

    def matrices(self) -> list[np.ndarray]:
        """``[B_1, .., B_{N-1}]``, each (n_i, C), float64 NumPy."""
        stacked = self.matrix()
        return [stacked[s] for s in self.slices]

    def describe(self) -> dict:
        """Plain-data description for reports."""
        return {"source": self.name, "widths": list(self.widths), "n_classes": self.n_classes}

    def close(self) -> None:
        """Release the device behind the feedback, if any (idempotent)."""

    @property
    def name(self) -> str:
        """``"ideal"`` or the device's name."""
        return "ideal"
