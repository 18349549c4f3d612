"""Softmax cross-entropy, the loss every classifier here trains on.

Model
-----
For logits ``a`` (n, C) and integer labels ``y`` (n,),

    ``p = softmax(a)``,  ``L = -(1/n) sum_k log p[k, y_k]``,  ``e = dL/da = (p - onehot(y)) / n``.

``e`` is the error DFA projects (docs/design.md section 5). Each row of ``e`` sums to zero over
the classes, so a projection that acts on deviations from the mean over its inputs (the
OPU's complement identity) loses nothing.
"""

from __future__ import annotations

import math

from photon import array_module

__all__ = ["SoftmaxCrossEntropy", "TrainingDiverged", "check_finite_loss", "DivergenceGuard"]


class TrainingDiverged(FloatingPointError):
    """The training loss stopped being finite, or grew far beyond its start; the run stops."""


def check_finite_loss(loss: float) -> float:
    """Return ``loss``, or raise :class:`TrainingDiverged` when it is NaN or infinite.

    Called before the backward pass, so that a diverged batch updates nothing and its
    non-finite error never reaches a device's encoder.
    """
    if not math.isfinite(loss):
        raise TrainingDiverged(f"loss = {loss!r}: expected a finite training loss; the run "
                               "diverged (lower the learning rate or the feedback scale)")
    return loss


class DivergenceGuard:
    """Stops a run whose loss is not finite or has grown far beyond where it started.

    The reference is the first finite loss the guard sees (at initialization the
    cross-entropy of ``C`` classes sits near ``ln C``); a later loss above
    ``growth_factor`` times it raises :class:`TrainingDiverged`. Training that works
    lowers its loss: a tenfold rise means the updates push the wrong way (a learning
    rate far too large, say), long before the loss overflows to infinity.

    Parameters
    ----------
    growth_factor
        The multiple of the first loss that counts as diverged (> 1; ``math.inf``:
        only non-finite losses count).
    """

    def __init__(self, growth_factor: float = 10.0):
        if isinstance(growth_factor, bool) or not growth_factor > 1:
            raise ValueError(f"growth_factor = {growth_factor!r}: expected a number > 1 "
                             "(math.inf to stop on non-finite losses only)")
        self.growth_factor = float(growth_factor)
        self.reference: float | None = None

    def __call__(self, loss: float) -> float:
        """Return ``loss``, or raise :class:`TrainingDiverged`."""
        check_finite_loss(loss)
        if self.reference is None:
            self.reference = float(loss)
        elif loss > self.growth_factor * self.reference and loss > 0:
            raise TrainingDiverged(f"loss = {loss:.4g}: expected at most {self.growth_factor:g} "
                                   f"times the first loss ({self.reference:.4g}); the run "
                                   "diverged (lower the learning rate or the feedback scale)")
        return loss


class SoftmaxCrossEntropy:
    """Mean softmax cross-entropy and its gradient with respect to the logits."""

    def __init__(self):
        self._probabilities = None
        self._labels = None

    def forward(self, logits, labels) -> float:
        """Mean loss of ``logits`` (n, C) against integer ``labels`` (n,) in ``[0, C)``.

        Returns
        -------
        float
            ``-(1/n) sum_k log softmax(a_k)[y_k]``.
        """
        if getattr(logits, "ndim", 0) != 2:
            raise ValueError(f"logits: shape {getattr(logits, 'shape', None)}: expected (n, n_classes)")
        if getattr(labels, "shape", None) != logits.shape[:1]:
            raise ValueError(f"labels: shape {getattr(labels, 'shape', None)}: expected "
                             f"({logits.shape[0]},), one label per row of logits")
        xp = array_module(logits)
        rows = xp.arange(logits.shape[0])
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_normalizer = xp.log(xp.exp(shifted).sum(axis=1))
        self._probabilities = xp.exp(shifted - log_normalizer[:, None])
        self._labels = labels
        return float((log_normalizer - shifted[rows, labels]).mean())

    def backward(self):
        """``e = (softmax(a) - onehot(y)) / n`` (n, C) of the last :meth:`forward`."""
        if self._probabilities is None:
            raise RuntimeError("SoftmaxCrossEntropy: call forward(logits, labels) before backward()")
        xp = array_module(self._probabilities)
        n = self._probabilities.shape[0]
        error = self._probabilities.copy()
        error[xp.arange(n), self._labels] -= 1
        error *= error.dtype.type(1.0 / n)
        return error
