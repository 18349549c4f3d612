"""What both ``OPUMap`` classes share: their settings, building their ``OPU``, fitting it."""

from __future__ import annotations

import warnings

from photon.support.arguments import check_bool, check_int

from ..internal.simulated_device import SimulatedOpuDevice
from ..opu import OPU

__all__ = ["MapSettings", "make_opu", "check_ndims", "fit_opu"]


def make_opu(n_components, opu, simulated, max_n_features, verbose_level) -> OPU:
    """The ``OPU`` of an ``OPUMap``: the one given (resized), or a new one (lightonml's rules)."""
    simulated = check_bool("simulated", simulated)
    if opu is None:
        if simulated:
            if max_n_features is None:
                raise ValueError("When using simulated=True, you need to provide max_n_features.")
            return OPU(n_components=n_components, opu_device=SimulatedOpuDevice(),
                       max_n_features=max_n_features, verbose_level=verbose_level)
        return OPU(n_components=n_components, verbose_level=verbose_level)
    if not isinstance(opu, OPU):
        raise TypeError(f"opu = {opu!r}: expected a devices.lightonml_compat.OPU or None")
    opu.n_components = n_components
    is_simulated = isinstance(opu.device, SimulatedOpuDevice)
    if simulated and not is_simulated:
        warnings.warn("You provided a real OPU object but set simulated=True. Will use the "
                      "real OPU.", UserWarning, stacklevel=3)
    if is_simulated and not simulated:
        warnings.warn("You provided a simulated OPU object but set simulated=False. Will use "
                      "simulated OPU.", UserWarning, stacklevel=3)
    return opu


def check_ndims(ndims) -> int:
    """``ndims``: 1 (vectors) or 2 (2-D inputs)."""
    if check_int("ndims", ndims, 1, 2) not in (1, 2):  # pragma: no cover - range checked
        raise ValueError("Number of input dimensions must be 1 or 2")
    return int(ndims)


def fit_opu(opu: OPU, ndims: int, X, n_features, packed: bool, online: bool,
            n_2d_features) -> None:
    """``fit1d`` or ``fit2d`` as ``ndims`` says (``n_2d_features`` for packed 2-D input)."""
    if ndims == 1:
        opu.fit1d(X, n_features=n_features, packed=packed, online=online)
    else:
        if n_features is None and packed:
            n_features = n_2d_features
        opu.fit2d(X, n_features=n_features, packed=packed, online=online)


class MapSettings:
    """The settings and the ``OPU`` of an ``OPUMap`` (scikit-learn's or PyTorch's, a base
    class of both): lightonml's constructor arguments, ``n_components`` read from and
    written to the ``OPU``, the projection ``linear`` selects, and opening and closing."""

    def _set_settings(self, n_components, opu, ndims, n_2d_features, packed, simulated,
                      max_n_features, verbose_level, linear) -> None:
        """Check and keep the constructor's arguments; build (or resize) the ``OPU``."""
        self.opu = make_opu(n_components, opu, simulated, max_n_features, verbose_level)
        self.ndims = check_ndims(ndims)
        self.n_2d_features = n_2d_features
        self.packed = check_bool("packed", packed)
        self.simulated = simulated
        self.linear = check_bool("linear", linear)
        self.max_n_features = max_n_features
        self.verbose_level = verbose_level
        self.fitted = False

    @property
    def n_components(self) -> int:
        """Outputs of the ``OPU``."""
        return self.opu.n_components

    @n_components.setter
    def n_components(self, value) -> None:
        self.opu.n_components = value

    @property
    def projection(self):
        """``OPU.linear_transform`` with ``linear``, else ``OPU.transform``."""
        return self.opu.linear_transform if self.linear else self.opu.transform

    def open(self) -> None:
        """Open the ``OPU``."""
        self.opu.open()

    def close(self) -> None:
        """Close the ``OPU``."""
        self.opu.close()

    def __enter__(self):
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()
