"""Speckle grain: how a transmission matrix correlates neighbouring pixels and mirrors.

A pixel's speckle is a property of the medium and of where the pixel sits on the sensor,
not of how many pixels are read (docs/design.md section 2). The TM entry of mirror ``i``
and pixel ``j`` is a weighted sum of independent circular Gaussian *sources* on a grid
that covers each plane (the camera sensor, the DMD) and extends ``radius`` sites beyond
it on every side:

    ``T[i, j] = sum_(a, b) h_mirror(p_i - a) h_pixel(q_j - b) S[a, b]``

``p_i`` the mirror's position on the DMD (row, column), ``q_j`` the pixel's on the sensor,
``S[a, b]`` the source at DMD site ``a`` and sensor site ``b``: an entry of
:class:`photon.gaussian_matrix.GaussianMatrix` whose row and column are the sites'
indices in the padded grids (:meth:`GrainAxis.source_index`). Every entry is thus a
function of the seed and of the two positions alone: reading a larger region of the
sensor adds pixels and changes none already read, a streamed TM equals a stored one, and
nothing wraps around an edge. The kernels are separable Gaussians of rms width
``sigma``, ``g(t) = exp(-t^2 / (2 sigma^2))``, cut at ``radius = ceil(3 sigma)`` (the
weight beyond holds under 1e-4 of the variance):

* pixels (``speckle_grain_px``): ``sum h^2 = 1``, each pixel keeps the source's law (a
  grain of speckle, not a blur of the intensity); pixels ``d`` apart have the field
  correlation ``exp(-d^2 / (4 sigma^2))``, the intensity correlation ``exp(-d^2 / (2 sigma^2))``;
* mirrors (``input_grain_mirrors``): ``sum h = 1``, the image of the DMD on the medium
  blurred by the optics: a uniform frame passes unchanged (all mirrors on keeps its
  power) while a single mirror's light spreads over neighbouring sites; columns ``d``
  apart have the field correlation ``exp(-d^2 / (4 sigma^2))``.

A grain of 0 is no sum at all: the source of an item is the item itself.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["GrainAxis", "sensor_pixel_positions", "plane_positions", "GRAIN_RADIUS_SIGMAS"]

GRAIN_RADIUS_SIGMAS = 3.0


def plane_positions(n: int, width: int) -> np.ndarray:
    """``(n, 2)`` positions (row, column) of items laid row by row on a plane ``width`` wide."""
    index = np.arange(int(n), dtype=np.int64)
    return np.stack([index // int(width), index % int(width)], axis=1)


def sensor_pixel_positions(n_out: int, sensor_cols: int, binning: int,
                           out_grid: tuple[int, int], pitch_bins: int = 1) -> np.ndarray:
    """Sensor positions of the ``n_out * binning^2`` pixels a camera bins, in its order.

    The camera's outputs fill full-width sensor rows from the top, ``w = sensor_cols //
    (binning pitch_bins)`` per row (the region of interest,
    :meth:`photon.config.CameraConfig.rows_read`): output ``o`` covers the ``binning x
    binning`` sensor pixels from row ``(o // w) b p``, column ``(o % w) b p`` (``p =
    pitch_bins``: a sub-sampled read-out leaves ``p - 1`` bins between outputs). The
    medium's pixels are ordered as the camera bins them: on the ``(rows b, cols b)`` grid
    of ``out_grid = (rows, cols)``.
    """
    b, p = int(binning), int(pitch_bins)
    rows, cols = out_grid
    per_row = int(sensor_cols) // (b * p)
    grid_r, grid_c = np.divmod(np.arange(rows * b * cols * b, dtype=np.int64), cols * b)
    output = (grid_r // b) * cols + grid_c // b
    return np.stack([(output // per_row) * b * p + grid_r % b,
                     (output % per_row) * b * p + grid_c % b], axis=1)


def _filter(array, taps, axis: int):
    """Valid correlation of ``array`` with ``taps`` along ``axis`` (shorter by len - 1)."""
    length = array.shape[axis] - taps.size + 1
    index = [slice(None)] * array.ndim
    out = None
    for k, tap in enumerate(taps):
        index[axis] = slice(k, k + length)
        term = array[tuple(index)] * np.float32(tap)
        if out is None:
            out = term
        else:
            out += term
    return out


class GrainAxis:
    """One side of the TM (pixels or mirrors): positions, grain and the sources behind it.

    Parameters
    ----------
    positions : (n, 2) int array
        Row and column of each item on its plane.
    width
        The plane's width (sensor columns, DMD columns): with the radius, it fixes the
        source indices, which no count of items changes.
    sigma
        Rms radius of the grain, in items (pixels or mirrors); 0 for none.
    keep
        ``"variance"`` (``sum h^2 = 1``) or ``"uniform"`` (``sum h = 1``).
    """

    def __init__(self, positions, width: int, sigma: float, keep: str):
        self.keep = keep
        self.positions = np.asarray(positions, np.int64)
        self.n = self.positions.shape[0]
        self.width = int(width)
        self.sigma = float(sigma)
        if keep not in ("variance", "uniform"):
            raise ValueError(f"keep = {keep!r}: expected 'variance' or 'uniform'")
        self.radius = int(math.ceil(GRAIN_RADIUS_SIGMAS * self.sigma)) if self.sigma > 0 else 0
        self.stride = self.width + 2 * self.radius
        r = self.radius
        self.sources = (self.positions[:, 0] + r) * self.stride + self.positions[:, 1] + r
        top = int(self.positions[:, 0].max()) if self.n else 0
        self.n_sources = (top + 1 + 2 * r) * self.stride
        self.identity = r == 0 and np.array_equal(self.sources, np.arange(self.n))
        if self.radius:
            t = np.arange(-r, r + 1, dtype=np.float64)
            g = np.exp(-0.5 * (t / self.sigma) ** 2)
            self.taps = g / (np.sqrt((g ** 2).sum()) if keep == "variance" else g.sum())
        else:
            self.taps = np.ones(1)

    def __reduce__(self):
        """Pickle the arguments, not the derived indices; items laid row by row on the
        plane (the default layout) travel as their count alone."""
        laid_out = np.array_equal(self.positions, plane_positions(self.n, self.width))
        positions = self.n if laid_out else self.positions
        return (_grain_axis, (positions, self.width, self.sigma, self.keep))

    def source_index(self, row, col):
        """Index of the source at plane site ``(row, col)`` (may lie beyond the plane by
        up to ``radius``)."""
        return (np.asarray(row) + self.radius) * self.stride + np.asarray(col) + self.radius

    def box(self, i0: int, i1: int):
        """Sources behind items ``i0:i1``: contiguous runs of source indices, the box shape
        ``(rows, cols)`` the runs fill row by row, and each item's flat index in the box
        once filtered (``(rows - 2 radius, cols - 2 radius)``)."""
        if self.identity:
            return [(i0, i1)], (1, i1 - i0), np.arange(i1 - i0)
        pos = self.positions[i0:i1]
        r = self.radius
        r_lo, r_hi = int(pos[:, 0].min()), int(pos[:, 0].max())
        c_lo, c_hi = int(pos[:, 1].min()), int(pos[:, 1].max())
        rows, cols = r_hi - r_lo + 1 + 2 * r, c_hi - c_lo + 1 + 2 * r
        runs = []
        for rr in range(r_lo - r, r_hi + r + 1):
            start = int(self.source_index(rr, c_lo - r))
            runs.append((start, start + cols))
        gather = (pos[:, 0] - r_lo) * (cols - 2 * r) + (pos[:, 1] - c_lo)
        return runs, (rows, cols), gather

    def apply(self, array, shape, gather, axis: int, xp):
        """Filter ``array``, whose ``axis`` holds a box of sources of ``shape`` flattened,
        and gather the items onto that axis."""
        axis = axis % array.ndim
        lead, tail = array.shape[:axis], array.shape[axis + 1:]
        grid = array.reshape(lead + tuple(shape) + tail)
        if self.radius:
            taps = np.asarray(self.taps, np.float32)
            grid = _filter(grid, taps, axis)
            grid = _filter(grid, taps, axis + 1)
        flat = grid.reshape(lead + (-1,) + tail)
        return xp.take(flat, xp.asarray(gather), axis=axis)


def _grain_axis(positions, width: int, sigma: float, keep: str) -> GrainAxis:
    """Rebuild a pickled :class:`GrainAxis` (``positions`` an item count: row by row)."""
    if isinstance(positions, int):
        positions = plane_positions(positions, width)
    return GrainAxis(positions, width, sigma, keep)
