"""Counter-based circular complex Gaussian matrices, generated tile by tile.

A matrix of shape ``(n_rows, n_cols)`` is cut into a fixed grid of tiles of
``tile_rows x tile_cols``. Tile ``(i, j)`` of stream ``stream`` is drawn from its own
Philox generator keyed by ``(seed, stream, i, j)``, so any block of the matrix can be
produced on demand, in any order, without the rest: the same seed gives the same matrix
whether it is stored whole or regenerated block by block for every product.

Entries are i.i.d. circular complex Gaussian with ``E|z|^2 = variance``: real and
imaginary parts are independent N(0, variance / 2). They are returned as two float32
arrays, never as a complex array, because the optical chain multiplies binary frames by
the real and imaginary parts side by side in one real GEMM.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["GaussianTiles"]


class GaussianTiles:
    """An ``n_rows x n_cols`` circular complex Gaussian matrix defined tile by tile.

    Parameters
    ----------
    seed
        Seed of the matrix.
    stream
        Tuple of non-negative integers naming the stream (e.g. polarization, drift
        step); different streams of one seed are independent matrices.
    n_rows, n_cols
        Matrix shape.
    variance
        ``E|z|^2`` of each entry.
    tile_rows, tile_cols
        The fixed tile grid. Changing it changes the matrix.
    """

    def __init__(self, seed: int, stream: tuple, n_rows: int, n_cols: int, variance: float,
                 tile_rows: int = 1024, tile_cols: int = 1024):
        self.seed = int(seed)
        self.stream = tuple(int(s) for s in stream)
        self.n_rows, self.n_cols = int(n_rows), int(n_cols)
        self.std = math.sqrt(variance / 2.0)
        self.tile_rows, self.tile_cols = int(tile_rows), int(tile_cols)

    def tile(self, i: int, j: int, rows: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(real, imag)`` of the first ``rows`` rows of tile ``(i, j)`` (float32).

        Values are drawn row after row, each row the full tile width, so a tile's
        first rows do not depend on how many rows are drawn nor on where the matrix
        ends: a smaller matrix of the same seed is the top-left corner of a larger one
        (for the same tile grid).
        """
        r0, c0 = i * self.tile_rows, j * self.tile_cols
        full_rows = min(self.tile_rows, self.n_rows - r0)
        cols = min(self.tile_cols, self.n_cols - c0)
        if full_rows <= 0 or cols <= 0:
            raise IndexError(f"tile ({i}, {j}) lies outside the {self.n_rows} x {self.n_cols} matrix")
        rows = full_rows if rows is None else min(rows, full_rows)
        key = np.random.SeedSequence(self.seed, spawn_key=(*self.stream, i, j))
        rng = np.random.Generator(np.random.Philox(key))
        parts = rng.standard_normal((rows, 2, self.tile_cols), dtype=np.float32)
        parts *= np.float32(self.std)
        return parts[:, 0, :cols], parts[:, 1, :cols]

    def block(self, r0: int, r1: int, c0: int, c1: int) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(real, imag)`` of rows ``r0:r1`` and columns ``c0:c1`` (float32)."""
        real = np.empty((r1 - r0, c1 - c0), np.float32)
        imag = np.empty_like(real)
        for i in range(r0 // self.tile_rows, (r1 - 1) // self.tile_rows + 1):
            ti0 = i * self.tile_rows
            rs = slice(max(r0, ti0), min(r1, ti0 + self.tile_rows))
            for j in range(c0 // self.tile_cols, (c1 - 1) // self.tile_cols + 1):
                tj0 = j * self.tile_cols
                cs = slice(max(c0, tj0), min(c1, tj0 + self.tile_cols))
                tr, ti = self.tile(i, j, rows=rs.stop - ti0)
                src = (slice(rs.start - ti0, rs.stop - ti0), slice(cs.start - tj0, cs.stop - tj0))
                dst = (slice(rs.start - r0, rs.stop - r0), slice(cs.start - c0, cs.stop - c0))
                real[dst] = tr[src]
                imag[dst] = ti[src]
        return real, imag

    def summed_rows(self, group: int, f0: int, f1: int, c0: int, c1: int):
        """Return ``(real, imag)`` of row groups ``f0:f1``, each the sum of ``group`` rows.

        Row group ``f`` is the sum of rows ``f*group .. (f+1)*group - 1``: the
        transmission-matrix row of a DMD macropixel is the sum of its mirrors' rows.
        """
        real, imag = self.block(f0 * group, f1 * group, c0, c1)
        if group == 1:
            return real, imag
        shape = (f1 - f0, group, c1 - c0)
        return real.reshape(shape).sum(axis=1), imag.reshape(shape).sum(axis=1)
