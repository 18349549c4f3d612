"""Linear projections from intensity-only measurements (docs/design.md section 3).

Every OPU's field is affine in the binary frame, ``E(x) = e0 + K x`` (``e0`` gathers
DMD leakage and any fixed reference), and the camera reads ``y = g |E|^2 + c``. Two
identities turn such intensities into a linear function of ``x``, exactly:

Complement, with ``1`` the all-on frame of the used inputs::

    f(x) = (y(x) - y(1 - x) + y(1) - y(0)) / 2 = 2 g Re(conj(m) K x),  m = e0 + K 1 / 2

Anchor, with ``a`` a fixed frame on inputs that ``x`` never uses::

    f(x) = (y(x + a) - y(x) - y(a) + y(0)) / 2 = g Re(conj(K a) K x)

Both cost two device frames per input frame, plus two reference frames (``1`` and
``0``, or ``a`` and ``0``) shared by a block of inputs taken right after them, so that
slow drift cancels. The black offset ``c`` cancels in every difference.
"""

from __future__ import annotations

import numpy as np

from photon import array_module

__all__ = ["REFERENCE_FRAMES", "complement_frames", "complement_references", "anchor_frames",
           "anchor_references", "reference_response", "complement_projection",
           "anchor_projection"]

REFERENCE_FRAMES = 2  # per block of inputs, for either identity


def complement_frames(frames, n_in: int):
    """Device frames ``[x; 1 - x]`` for inputs ``frames`` (b, d) on the first ``d`` inputs.

    The complement is taken within the ``d`` used inputs; inputs beyond stay off.
    """
    xp = array_module(frames)
    b, d = frames.shape
    out = xp.zeros((2 * b, n_in), np.uint8)
    out[:b, :d] = frames
    out[b:, :d] = 1 - frames.astype(np.uint8)
    return out


def complement_references(d: int, n_in: int, xp=np):
    """Reference frames ``[1; 0]`` of the complement identity (``1`` on the ``d`` used inputs)."""
    out = xp.zeros((2, n_in), np.uint8)
    out[0, :d] = 1
    return out


def anchor_frames(frames, anchor_start: int, n_in: int):
    """Device frames ``[x + a; x]``; the anchor ``a`` lights inputs ``anchor_start ..``."""
    xp = array_module(frames)
    b, d = frames.shape
    out = xp.zeros((2 * b, n_in), np.uint8)
    out[:b, :d] = frames
    out[:b, anchor_start:] = 1
    out[b:, :d] = frames
    return out


def anchor_references(anchor_start: int, n_in: int, xp=np):
    """Reference frames ``[a; 0]`` of the anchor identity."""
    out = xp.zeros((2, n_in), np.uint8)
    out[0, anchor_start:] = 1
    return out


def reference_response(counts):
    """``y(ref) - y(0)`` (float32) from the counts of the two reference frames."""
    y = counts.astype(np.float32)
    return y[0] - y[1]


def complement_projection(counts, reference):
    """``f(x) = (y(x) - y(1 - x) + y(1) - y(0)) / 2`` from :func:`complement_frames` counts."""
    y = counts.astype(np.float32)
    b = y.shape[0] // 2
    f = y[:b] - y[b:]
    f += reference
    f *= np.float32(0.5)
    return f


def anchor_projection(counts, reference):
    """``f(x) = (y(x + a) - y(x) - y(a) + y(0)) / 2`` from :func:`anchor_frames` counts."""
    y = counts.astype(np.float32)
    b = y.shape[0] // 2
    f = y[:b] - y[b:]
    f -= reference
    f *= np.float32(0.5)
    return f
