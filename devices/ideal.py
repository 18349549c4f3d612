"""The ideal backend: exact ``|R x|^2``, no noise, no camera.

``R`` is the i.i.d. circular complex Gaussian transmission matrix of variance
``1 / n_in`` that :class:`photon.ScatteringMedium` generates (stored, or streamed tile by
tile for sizes beyond memory). Outputs are float32 intensities in those units: for a
frame with ``k`` inputs on, ``E[y] = k / n_in``. NumPy frames run on the CPU, CuPy
frames on the GPU, with the same TM for the same seed.
"""

from __future__ import annotations

import numpy as np

from photon import Polarizer, ScatteringMedium
from photon.complement_pairs import intensity_of_batch
from photon.support.arguments import check_int, check_number, check_seed

from .protocol import OPUDevice

__all__ = ["IdealDevice"]


class IdealDevice(OPUDevice):
    """Noise-free OPU computing ``|R x|^2`` exactly.

    Parameters
    ----------
    n_in, n_out
        Inputs and outputs.
    seed
        Seed of the TM.
    storage
        ``"dense"``, ``"streamed"`` or ``"auto"`` (see :class:`photon.ScatteringMedium`).
    frame_time_s
        Time per frame assumed by cost estimates (default: a data-centre OPU's 500 us).
    electrical_power_w
        Wall-plug power assumed by cost estimates (default 30 W).
    name
        A label.
    """

    backend = "ideal"
    can_block_light = True  # no light: exactly zero (no camera, no offset)

    def __init__(self, n_in: int, n_out: int, *, seed: int = 0, storage: str = "auto",
                 frame_time_s: float = 500e-6, electrical_power_w: float = 30.0,
                 max_dense_mb: float = 2048.0, name: str | None = None):
        super().__init__(name)
        n_in, n_out = check_int("n_in", n_in), check_int("n_out", n_out)
        seed = check_seed("seed", seed)
        frame_time_s = check_number("frame_time_s", frame_time_s, low=0.0, low_open=True,
                                    unit="s")
        electrical_power_w = check_number("electrical_power_w", electrical_power_w, low=0.0,
                                          low_open=True, unit="W")
        self.medium = ScatteringMedium.from_settings(n_in, n_out, seed=seed,
                                                     tm_storage=storage,
                                                     max_dense_tm_mb=max_dense_mb)
        self._frame_time_s = float(frame_time_s)
        self._power_w = float(electrical_power_w)
        self._analyser = Polarizer.ideal()  # |E|^2 of the one polarization

    n_in = property(lambda self: self.medium.n_in, doc="Number of inputs.")
    n_out = property(lambda self: self.medium.n_pixels, doc="Number of outputs.")
    frame_time_s = property(lambda self: self._frame_time_s, doc="Seconds per frame.")
    electrical_power_w = property(lambda self: self._power_w, doc="Wall-plug watts.")

    def transmission_matrix(self):
        """The TM ``R``, shape ``(n_out, n_in)``, complex64 (for tests and studies)."""
        return self.medium.transmission_matrix()

    def _acquire(self, frames):
        # Complementary halves (linear mode's frames) take one product for both.
        return intensity_of_batch(lambda binary: self.medium.field(binary.astype(np.float32)),
                                  lambda field, out: self._analyser(field, True, out), frames)

    def _acquire_dark(self, n_frames: int):
        """No light, no camera: zeros (n_frames, n_out), float32."""
        return np.zeros((n_frames, self.n_out), np.float32)
