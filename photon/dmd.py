"""Digital micromirror device: binary amplitude modulation of the laser field.

Each input feature drives a macropixel of mirrors, on (amplitude 1) or off. An off
mirror still sends a small amplitude ``leakage = 1/sqrt(contrast)`` towards the medium
(the on/off contrast is an intensity ratio), so a frame ``x`` in {0, 1}^n_in leaves the
DMD as ``a = (1 - leakage) x + leakage``: a modulated part and a uniform part.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .support.arrays import array_module

__all__ = ["DMD", "MirrorAmplitudes", "check_binary_frames"]


def check_binary_frames(frames, n_in: int, name: str = "frames"):
    """Return ``frames`` as a 2-D array after checking it is binary and ``n_in`` wide.

    Accepts bool, integer or floating arrays of shape ``(n_in,)`` or ``(batch, n_in)``
    whose values are all 0 or 1.

    Raises
    ------
    ValueError
        Naming ``name``, the offending shape or value (with its index) and what was
        expected. NaN and inf are non-binary values.
    """
    xp = array_module(frames)
    frames = xp.asarray(frames)
    if frames.ndim == 1:
        frames = frames[None, :]
    if frames.ndim != 2 or frames.shape[1] != n_in:
        raise ValueError(f"{name}: shape {tuple(frames.shape)}: expected (batch, {n_in}) "
                         f"binary frames for a DMD with {n_in} inputs")
    if frames.dtype == bool:
        return frames
    kind = frames.dtype.kind
    if kind not in "uif":
        raise ValueError(f"{name}: dtype {frames.dtype}: expected bool, integer or float "
                         "frames holding 0 and 1")
    if kind == "u":
        bad = frames > 1
    else:
        bad = (frames != 0) & (frames != 1)  # NaN compares unequal to both: caught here
    if bool(bad.any()):
        index = tuple(int(i) for i in np.argwhere(np.asarray(bad.get() if xp is not np else bad))[0])
        raise ValueError(f"{name}: value {frames[index].item()!r} at index {index}: expected "
                         "binary DMD frames with every value 0 or 1")
    return frames


@dataclass
class MirrorAmplitudes:
    """Field amplitude leaving each macropixel: ``on_amplitude * binary + uniform``.

    ``binary`` is the frame as float32 zeros and ones, exact in every GEMM precision;
    the leakage scalars are applied to the product, not to the frame.
    """

    binary: object
    on_amplitude: float
    uniform: float


class DMD:
    """Binary amplitude modulator.

    Parameters
    ----------
    n_in
        Number of input features (macropixels) in use.
    rows, cols
        Mirror array size.
    contrast
        On/off intensity contrast; ``None`` for a perfect off state.
    fill_factor
        Fraction of the incident power sent into the on direction by an on mirror.
    frame_rate_hz
        Maximum binary pattern rate.
    macropixel_mirrors
        Mirrors per feature.
    held_on_mirrors
        Mirrors held on outside the used region.
    """

    def __init__(self, n_in: int, *, rows: int = 768, cols: int = 1024,
                 contrast: float | None = 1000.0, fill_factor: float = 0.92,
                 frame_rate_hz: float = 22_727.0, macropixel_mirrors: int = 1,
                 held_on_mirrors: int = 0):
        self.n_in = int(n_in)
        self.rows, self.cols = int(rows), int(cols)
        self.contrast = contrast
        self.fill_factor = float(fill_factor)
        self.frame_rate_hz = float(frame_rate_hz)
        self.macropixel_mirrors = int(macropixel_mirrors)
        self.held_on_mirrors = int(held_on_mirrors)
        used = self.n_in * self.macropixel_mirrors + self.held_on_mirrors
        if used > self.rows * self.cols:
            raise ValueError(f"n_in = {n_in}: uses {used} mirrors, expected at most the "
                             f"{self.rows * self.cols} of a {self.rows} x {self.cols} DMD")

    @property
    def leakage_amplitude(self) -> float:
        """Field amplitude of an off mirror relative to an on mirror."""
        return 0.0 if self.contrast is None else 1.0 / math.sqrt(self.contrast)

    @property
    def illuminated_mirrors(self) -> int:
        """Mirrors inside the beam: the used region plus the held-on mirrors."""
        return self.n_in * self.macropixel_mirrors + self.held_on_mirrors

    def __call__(self, frames) -> MirrorAmplitudes:
        """Return the mirror amplitudes of a batch of binary ``frames`` (batch, n_in)."""
        frames = check_binary_frames(frames, self.n_in)
        leak = self.leakage_amplitude
        return MirrorAmplitudes(frames.astype(np.float32), 1.0 - leak, leak)
