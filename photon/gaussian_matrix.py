"""Circular complex Gaussian matrices defined entry by entry from a seed.

A matrix of shape ``(n_rows, n_cols)`` named by ``(seed, stream)`` is never drawn from a
generator's sequence: each entry is a function of the matrix's key and of its own row
and column (:mod:`photon.counter_rng`, Philox4x32-10 and Box-Muller). Any block can
therefore be produced on demand, in any order, at any block size, on the CPU or on the
GPU, and it is always the same block: a TM stored whole and one regenerated block by
block for every product are the same matrix, and a smaller matrix of a seed is the
top-left corner of a larger one.

Entries are i.i.d. circular complex Gaussian with ``E|z|^2 = variance``: real and
imaginary parts are independent N(0, variance / 2). They are returned as two float32
arrays, never as a complex array, because the optical chain multiplies binary frames by
the real and imaginary parts side by side in one real GEMM.
"""

from __future__ import annotations

import math

import numpy as np

from .counter_rng import circular_gaussian_block, circular_gaussian_side_by_side, matrix_key

__all__ = ["GaussianMatrix"]


class GaussianMatrix:
    """An ``n_rows x n_cols`` circular complex Gaussian matrix, computable block by block.

    Parameters
    ----------
    seed
        Seed of the matrix.
    stream
        Tuple of non-negative integers naming the stream (e.g. polarization, drift
        keyframe); different streams of one seed are independent matrices.
    n_rows, n_cols
        Matrix shape (each below ``2^32``).
    variance
        ``E|z|^2`` of each entry.
    """

    def __init__(self, seed: int, stream: tuple, n_rows: int, n_cols: int, variance: float):
        self.seed = int(seed)
        self.stream = tuple(int(s) for s in stream)
        self.n_rows, self.n_cols = int(n_rows), int(n_cols)
        if not (0 < self.n_rows < 2**32 and 0 < self.n_cols < 2**32):
            raise ValueError(f"shape ({n_rows}, {n_cols}): expected 1 .. 2^32 - 1 rows and columns")
        self.std = math.sqrt(variance / 2.0)
        self.key = matrix_key(self.seed, self.stream)

    def _check_block(self, r0: int, r1: int, c0: int, c1: int) -> None:
        if not (0 <= r0 <= r1 <= self.n_rows and 0 <= c0 <= c1 <= self.n_cols):
            raise IndexError(f"block rows {r0}:{r1}, columns {c0}:{c1} lies outside the "
                             f"{self.n_rows} x {self.n_cols} matrix")

    def block(self, r0: int, r1: int, c0: int, c1: int, xp=np):
        """Return ``(real, imag)`` of rows ``r0:r1`` and columns ``c0:c1`` (float32, on ``xp``)."""
        self._check_block(r0, r1, c0, c1)
        return circular_gaussian_block(self.key, r0, r1, c0, c1, self.std, xp)

    def side_by_side(self, r0: int, r1: int, c0: int, c1: int, xp=np):
        """Rows ``r0:r1``, columns ``c0:c1`` as one ``(r1 - r0, 2 (c1 - c0))`` float32 array.

        Each row holds the real parts, then the imaginary parts: the operand of one real
        GEMM giving both quadratures (no copy for even ``c0`` and ``c1``).
        """
        self._check_block(r0, r1, c0, c1)
        return circular_gaussian_side_by_side(self.key, r0, r1, c0, c1, self.std, xp)

    def summed_rows(self, group: int, f0: int, f1: int, c0: int, c1: int, xp=np):
        """Row groups ``f0:f1``, each the sum of ``group`` rows, side by side (see above).

        Row group ``f`` is the sum of rows ``f*group .. (f+1)*group - 1``: the
        transmission-matrix row of a DMD macropixel is the sum of its mirrors' rows.
        """
        block = self.side_by_side(f0 * group, f1 * group, c0, c1, xp)
        if group == 1:
            return block
        return block.reshape(f1 - f0, group, block.shape[1]).sum(axis=1)
