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

from .config import DMDConfig
from .support.arrays import array_module
from .support.schema import ConfigError, check_setting, from_mapping, settings_as_properties

__all__ = ["DMD", "MirrorAmplitudes", "check_binary_frames"]


#: Entries checked at a time by :func:`check_binary_frames` (its masks stay ~16 MiB).
_CHECK_BLOCK_ELEMENTS = 1 << 24


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
    # Checked in blocks of rows, so that the check's masks stay small for any batch.
    rows = max(1, _CHECK_BLOCK_ELEMENTS // max(n_in, 1))
    for start in range(0, frames.shape[0], rows):
        block = frames[start:start + rows]
        if kind == "u":
            bad = block > 1
        else:
            bad = (block != 0) & (block != 1)  # NaN compares unequal to both: caught here
        if bool(bad.any()):
            found = np.argwhere(np.asarray(bad.get() if xp is not np else bad))[0]
            index = (int(found[0]) + start, int(found[1]))
            raise ValueError(f"{name}: value {frames[index].item()!r} at index {index}: "
                             "expected binary DMD frames with every value 0 or 1")
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


@settings_as_properties(DMDConfig)
class DMD:
    """Binary amplitude modulator.

    Parameters
    ----------
    config
        The mirror array's settings (size, fill factor, contrast, frame rate,
        macropixels, held-on mirrors), validated by :class:`~photon.config.DMDConfig`;
        each is also readable as an attribute (``dmd.contrast``) that reads
        ``dmd.config``.
    n_in
        Number of input features (macropixels) in use; ``n_in * macropixel_mirrors +
        held_on_mirrors`` must fit on the ``rows x cols`` mirrors.

    See Also
    --------
    from_settings : build the configuration from keyword settings.
    """

    def __init__(self, config: DMDConfig, n_in: int):
        if not isinstance(config, DMDConfig):
            raise TypeError(f"config = {config!r}: expected a DMDConfig "
                            "(or use DMD.from_settings(n_in, **settings))")
        self.config = config
        self.n_in = check_setting("n_in", n_in, "DMD", kind=int, lo=1, unit="features")
        if self.illuminated_mirrors > config.rows * config.cols:
            raise ConfigError.invalid(
                "n_in", n_in, f"n_in * macropixel_mirrors + held_on_mirrors <= "
                f"{config.rows * config.cols} mirrors of a {config.rows} x {config.cols} DMD "
                f"(got {self.illuminated_mirrors})", "DMD")

    @classmethod
    def from_settings(cls, n_in: int, **settings) -> "DMD":
        """A DMD whose :class:`~photon.config.DMDConfig` is built from ``settings``.

        Examples
        --------
        >>> DMD.from_settings(256, contrast=None, macropixel_mirrors=4)  # doctest: +SKIP
        """
        return cls(from_mapping(DMDConfig, settings, "DMD.from_settings"), n_in)

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
