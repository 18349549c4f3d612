"""lightonml's ``projections.sklearn.OPUMap``: the OPU as a scikit-learn transformer.

For new code, :class:`devices.OPURandomFeatures` and :class:`devices.OPULinearProjection`
are the toolkit's own scikit-learn estimators (real data in, encoding inside,
``check_estimator`` passes); this class keeps lightonml's: binary input, an ``OPU`` built
at construction, a ``fitted`` flag, a fit on the first data transformed.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from photon.support.arguments import check_bool

from ._map import MapSettings, fit_opu

__all__ = ["OPUMap"]


class OPUMap(MapSettings, BaseEstimator, TransformerMixin):
    """lightonml's scikit-learn ``OPUMap``: ``transform`` is ``OPU.transform``.

    Parameters
    ----------
    n_components
        Outputs.
    opu
        An :class:`~devices.lightonml_compat.opu.OPU` to use (resized to
        ``n_components``), or None to build one.
    ndims
        1: inputs are vectors (or batches of them); 2: 2-D inputs.
    n_2d_features
        ``(h, w)`` of packed 2-D inputs.
    packed
        Inputs are bit-packed (uint8, ``np.packbits`` along the last axis).
    simulated
        lightonml's simulator (``max_n_features`` required).
    max_n_features
        Largest input dimension of the simulator.
    verbose_level
        lightonml's verbosity (-1: leave it).
    linear
        ``OPU.linear_transform`` instead of ``OPU.transform``.
    """

    def __init__(self, n_components, opu=None, ndims=1, n_2d_features=None, packed=False,
                 simulated=False, max_n_features=None, verbose_level=-1, linear=False):
        self._set_settings(n_components, opu, ndims, n_2d_features, packed, simulated,
                           max_n_features, verbose_level, linear)

    def fit(self, X=None, y=None, n_features=None, packed=False, online=False):
        """``fit1d``/``fit2d`` the ``OPU`` on ``X`` (or ``n_features``); returns self."""
        fit_opu(self.opu, self.ndims, X, n_features, check_bool("packed", packed) or self.packed,
                online, self.n_2d_features)
        self.fitted = True
        return self

    def transform(self, X, y=None):
        """The projections of ``X`` as a NumPy array (fits on ``X`` first if not fitted)."""
        if not self.fitted:
            print("OPUMap was not fit to data. Performing fit on the input with default "
                  "parameters...")
            self.fit(X)
        return np.array(self.projection(X))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False  # transform fits on its input, as lightonml's does
        tags.non_deterministic = self.opu.draws_fresh_noise
        return tags
