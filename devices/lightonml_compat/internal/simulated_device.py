"""lightonml's device objects, as ``OPU.device`` shows them, over this toolkit's devices.

* :class:`SimulatedOpuDevice`: lightonml's simulator, ``|x R|^2`` of a seeded complex
  Gaussian ``R`` (``max_n_features x n_components``, real and imaginary parts of variance
  ``1 / max_n_features`` each). Here ``R`` is the toolkit's ideal device's transmission
  matrix (:class:`devices.IdealDevice`, the same seed): defined entry by entry by a
  counter-based generator, so a device fitted on ``n <= max_n_features`` features uses
  its first ``n`` rows, as lightonml's simulator does, and the matrix is generated only
  for the rows used (:attr:`SimulatedOpuDevice.random_matrix` builds it whole on demand).
  Its entries are not lightonml's numbers (another generator): they have the same
  distribution.
* :class:`OpuDeviceView`: any other toolkit device (the ideal one standing in for a
  LightOn OPU, a preset such as ``"lab-bench"``, an :class:`devices.OPUDevice` instance)
  with lightonml's device attributes.

Both are opened and closed by the ``OPU`` that owns them (``active``); the toolkit
device itself is built at ``fit1d``/``fit2d`` (``toolkit_device``).
"""

from __future__ import annotations

import math

import numpy as np

from photon.support.arguments import check_int, check_seed

from ...ideal import IdealDevice

__all__ = ["SimulatedOpuDevice", "OpuDeviceView", "INPUT_SHAPE"]

#: lightonml's input device shape (a DMD of 1140 x 912 elements).
INPUT_SHAPE = (1140, 912)


class _LightonDevice:
    """Attributes lightonml's device classes share; ``toolkit_device`` does the work."""

    output_shape_max = (1920, 1080)
    output_dtype = np.float32
    output_roi_strategy = None
    output_roi_increment = 1
    acq_state = None

    def __init__(self, frametime_us=500, exposure_us=400):
        self.active = False
        self.frametime_us = frametime_us
        self.exposure_us = exposure_us
        self.output_roi = ((0, 0), (2040, 1088))
        self.toolkit_device = None

    @property
    def input_shape(self) -> tuple[int, int]:
        """Shape of the input device, elements (lightonml's 1140 x 912)."""
        return INPUT_SHAPE

    @property
    def output_shape(self) -> tuple[int, int]:
        """Shape of the output region read."""
        return self.output_roi[1]

    @property
    def gain_dB(self) -> float:
        """Output gain (dB): none here."""
        return 0.0

    def open(self) -> None:
        """Mark active; open the toolkit device if it is built."""
        if self.toolkit_device is not None:
            self.toolkit_device.open()
        self.active = True

    def close(self) -> None:
        """Mark inactive; close the toolkit device if it is built."""
        if self.toolkit_device is not None:
            self.toolkit_device.close()
        self.active = False

    def __enter__(self):
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _refresh(self) -> None:
        """Read the toolkit device's timing (a view); the simulator keeps lightonml's."""

    def reserve(self, _n_images) -> None:
        """lightonml's buffer reservation: nothing to reserve here."""

    def versions(self) -> str:
        """The device's description."""
        device = self.toolkit_device
        return f"{type(self).__name__} over {device!r}" if device is not None \
            else f"{type(self).__name__} (device built at fit)"


class SimulatedOpuDevice(_LightonDevice):
    """lightonml's ``SimulatedOpuDevice``: exact ``|x R|^2`` on the toolkit's ideal device.

    Parameters
    ----------
    frametime_us, exposure_us
        Reported in the outputs' context (lightonml's defaults, 500 and 400 us).
    verbose, linear
        lightonml's; not used (the ``OPU`` chooses the transform).
    seed
        Seed of ``R`` (this toolkit's keyword; lightonml's is 0).
    """

    def __init__(self, frametime_us=500, exposure_us=400, verbose=False, linear=False, *,
                 seed: int = 0):
        super().__init__(int(frametime_us), int(exposure_us))
        self._seed = check_seed("seed", seed)
        self._shape: tuple[int, int] | None = None

    def build_random_matrix(self, n_features, n_components, seed=None) -> None:
        """Set the matrix's shape (and seed): its entries are generated where used."""
        self._shape = (check_int("n_features", n_features), check_int("n_components",
                                                                       n_components))
        if seed is not None:
            self._seed = check_seed("seed", seed)

    @property
    def random_matrix(self) -> np.ndarray | None:
        """``R`` (max_n_features, n_components), complex64, ``E|R_ij|^2 = 2 / max_n_features``.

        ``transform(x) = |x R|^2`` (the ideal device's intensities, exactly). Generated
        whole at each access (``8 * max_n_features * n_components`` bytes).
        """
        if self._shape is None:
            return None
        n_features, n_components = self._shape
        tm = IdealDevice(n_features, n_components, seed=self._seed).transmission_matrix()
        return tm.T * np.float32(math.sqrt(2.0))

    @property
    def nb_features(self) -> int | None:
        """Rows of ``R`` (``max_n_features``), None before the OPU sizes it."""
        return None if self._shape is None else self._shape[0]

    @property
    def input_size(self) -> int | None:
        """Bytes of one packed input."""
        return None if self._shape is None else self.nb_features // 8

    @property
    def seed(self) -> int:
        """Seed of ``R``."""
        return self._seed


class OpuDeviceView(_LightonDevice):
    """A toolkit device shown with lightonml's device attributes.

    Parameters
    ----------
    toolkit_device
        An open :class:`devices.OPUDevice`, or None until the ``OPU`` builds one at fit.
    """

    def __init__(self, toolkit_device=None):
        super().__init__(None, None)
        self.toolkit_device = toolkit_device
        self._refresh()

    def _refresh(self) -> None:
        device = self.toolkit_device
        if device is not None:
            self.frametime_us = device.frame_time_s * 1e6
            self.exposure_us = device.exposure_us
            self.output_roi = ((0, 0), (1, device.n_out))

    def open(self) -> None:
        super().open()
        self._refresh()
