"""Batches of complementary frames: one product gives the field of both halves.

Model
-----
The field on the sensor is affine in the binary frame: ``F(x) = x W + c`` (the TM's
product, DMD leakage and any reference field in ``c``; a speckle grain and a reduced TM
precision keep it affine). For a batch whose second half complements its first within a
fixed set of inputs ``u`` (``x_(h+i) = u - x_i``, the frames of the complement identity
of linear mode, :mod:`devices.linear`),

    ``F(u - x) = F(u) + F(0) - F(x)``

exactly, so the product of the ``h + 2`` frames ``[x; u; 0]`` gives the field of all
``2 h`` frames: half the GEMM, equal to the direct product to float32 rounding. Any
other batch is computed as it is.
"""

from __future__ import annotations

import numpy as np

from .support.arrays import array_module

__all__ = ["complementary_inputs", "intensity_of_batch"]

#: Smallest batch worth the check (two pairs).
MIN_BATCH = 4
#: The second half's field is formed in blocks of about this size (cache-resident).
_SECOND_HALF_BLOCK_BYTES = 1 << 20


def complementary_inputs(frames):
    """The inputs ``u`` that the two halves of ``frames`` complement each other on, or None.

    Parameters
    ----------
    frames : (batch, n_in) array of zeros and ones (bool, integer or float)

    Returns
    -------
    (n_in,) array, or None
        ``u`` with ``frames[h + i] = u - frames[i]`` for every ``i < h = batch / 2``;
        None for an odd or small batch, or one whose halves do not pair up so.
    """
    n = frames.shape[0]
    if n < MIN_BATCH or n % 2:
        return None
    h = n // 2
    if frames.dtype == bool:
        frames = frames.view(np.uint8)
    used = frames[0] + frames[h]
    if bool((used > 1).any()):           # a random batch stops here
        return None
    if not bool((frames[:h] + frames[h:] == used).all()):
        return None
    return used


def intensity_of_batch(field, analyse, frames):
    """Intensity of a batch of frames, one product for complementary halves.

    Parameters
    ----------
    field
        ``field(frames) -> (batch, ...)`` float32 field of binary frames (a subset of
        ``frames``' rows, or rows built from them, of ``frames``' dtype), affine in them.
    analyse
        ``analyse(field, out) -> (batch, n_pixels)`` intensity, written into ``out``
        (float32 rows) when given; may overwrite ``field``.
    frames : (batch, n_in) binary array

    Returns
    -------
    (batch, n_pixels) float32 array
        As ``analyse(field(frames), None)``; when the halves complement each other
        (:func:`complementary_inputs`), from the field of ``[x; u; 0]`` only.
    """
    used = complementary_inputs(frames)
    if used is None:
        return analyse(field(frames), None)
    xp = array_module(frames)
    n, h = frames.shape[0], frames.shape[0] // 2
    head = xp.empty((h + 2,) + frames.shape[1:], frames.dtype)
    head[:h] = frames[:h]
    head[h] = used
    head[h + 1] = 0
    first = field(head)
    fixed = first[h] + first[h + 1]          # F(u) + F(0)
    out = xp.empty((n, first.shape[-1]), np.float32)  # fields end with the pixel axis
    # The second half's field row by row block, each block small enough to stay in cache.
    rows = max(1, _SECOND_HALF_BLOCK_BYTES // max(1, first[0].nbytes))
    second = xp.empty((min(rows, h),) + first.shape[1:], np.float32)
    for r0 in range(0, h, rows):
        r1 = min(h, r0 + rows)
        block = second[:r1 - r0]
        xp.subtract(fixed[None], first[r0:r1], out=block)
        analyse(block, out[h + r0:h + r1])
    analyse(first[:h], out[:h])
    return out
