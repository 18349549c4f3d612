"""lightonml's ``projections.torch.OPUMap``: the OPU as a ``torch.nn.Module``.

``forward`` is ``OPU.transform`` (or ``linear_transform``), detached from the graph as in
lightonml (no gradient through an optical projection); the first batch fits the ``OPU``
when ``fit`` was not called. Needs PyTorch.
"""

from __future__ import annotations

import torch
from torch import nn

from photon.support.arguments import check_bool

from ._map import MapSettings, fit_opu

__all__ = ["OPUMap"]


class OPUMap(MapSettings, nn.Module):
    """lightonml's PyTorch ``OPUMap``: ``forward`` is ``OPU.transform``, detached.

    Parameters
    ----------
    n_components, opu, ndims, n_2d_features, packed, simulated, max_n_features,
    verbose_level, linear
        As for :class:`devices.lightonml_compat.projections.sklearn.OPUMap`.
    """

    def __init__(self, n_components, opu=None, ndims=1, n_2d_features=None, packed=False,
                 simulated=False, max_n_features=None, verbose_level=-1, linear=False):
        super().__init__()
        self._set_settings(n_components, opu, ndims, n_2d_features, packed, simulated,
                           max_n_features, verbose_level, linear)
        self.online = False

    def forward(self, input):
        """The projections of a tensor batch (fits on it first if not fitted), detached."""
        if not torch.is_tensor(input):
            raise TypeError(f"input: a {type(input).__name__}: expected a torch.Tensor")
        if not self.fitted:
            print("OPUMap was not fit to data. Performing fit on the first batch with default "
                  "parameters...")
            self.fit(input)
        transform = self.projection
        if self.online:
            return torch.stack([transform(row) for row in input]).detach()
        return transform(input).detach()

    def reset_parameters(self, input, y, n_features, packed, online) -> None:
        """Fit the ``OPU`` (lightonml's name for :meth:`fit`)."""
        self.online = check_bool("online", online) or self.online
        fit_opu(self.opu, self.ndims, input, n_features,
                check_bool("packed", packed) or self.packed, self.online, self.n_2d_features)
        self.fitted = True

    def fit(self, X=None, y=None, n_features=None, packed=False, online=False) -> None:
        """``fit1d``/``fit2d`` the ``OPU`` on ``X`` (or ``n_features``)."""
        return self.reset_parameters(X, y, n_features, packed, online)

    def extra_repr(self) -> str:
        return (f"out_features={self.n_components}, n_dims={self.ndims}, packed={self.packed}, "
                f"simulated={self.simulated}")

