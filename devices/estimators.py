"""scikit-learn front: the OPU as a transformer in ``Pipeline`` and ``GridSearchCV``.

Two estimators over any device :func:`devices.open_device` builds (a backend, a preset,
a YAML path or a :class:`photon.DeviceConfig`):

* :class:`OPURandomFeatures`: optical random features ``|R b(x)|^2`` of real data, with
  ``b`` a per-feature threshold expansion (lightonml's ``MultiThresholdEncoder`` with
  per-column thresholds; one threshold per feature is a median binarizer);
* :class:`OPULinearProjection`: a linear random projection ``x -> M x`` of real data
  (``M`` with i.i.d. N(0, 1)-like entries, recovered from intensities by the complement
  or anchor identity, docs/design.md section 3), through bit planes, scaled like
  scikit-learn's ``GaussianRandomProjection`` by default.

Estimator contract
------------------
The constructor stores plain parameters only (names, numbers, dicts), as scikit-learn
requires (``get_params``/``set_params``/``clone``). :meth:`fit` builds the device with
``n_in`` = the encoded width and ``n_out = n_components`` and fits a
:class:`devices.OPU` on it (``opu_``); what is learned ends in ``_``.

Pickling keeps the recipe, not the device: the parameters, the resolved seed ``seed_``
and the fitted encoding (thresholds), never the device's arrays or modules. Unpickling
rebuilds the device from the same recipe and refits the operator, so the transmission
matrix, dark level and scales are those of the original fit. A noisy device's noise
streams restart from their seeds, so the first transform after unpickling equals the
first transform after the original fit (later calls draw the same noise sequence
again). The device's clock (drift) restarts likewise.

scikit-learn's ``check_estimator`` passes for both estimators with the default device
(``"ideal"``, deterministic) and none of its checks skipped
(:data:`EXPECTED_FAILED_CHECKS` is empty; see tests/test_sklearn_front.py). A noisy
device (a preset) gives a different noise draw on each transform, which the checks that
compare two transforms of the same data would flag.
"""

from __future__ import annotations

import numbers
import os

import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from photon import DeviceConfig, preset_names
from photon.support.arguments import check_int

from .encoders import BitPlaneEncoder
from .operator import OPU
from .registry import check_device_name

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data as _validate_data
except ImportError:  # pragma: no cover - older scikit-learn
    def _validate_data(estimator, X, reset=True, **kwargs):
        return estimator._validate_data(X, reset=reset, **kwargs)

__all__ = ["OPURandomFeatures", "OPULinearProjection", "EXPECTED_FAILED_CHECKS"]

#: scikit-learn checks expected to fail, by check name, with the reason: none.
#: Pass as ``check_estimator(est, expected_failed_checks=EXPECTED_FAILED_CHECKS)``.
EXPECTED_FAILED_CHECKS: dict[str, str] = {}

_RESERVED_OPTIONS = ("n_in", "n_out")


def _check_choice(name: str, value, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} = {value!r}: expected " + " or ".join(map(repr, choices)))
    return value


class _OPUEstimator(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Shared machinery: device recipe, seeding, fit, pickling."""

    # ------------------------------------------------------------------ recipe
    def _check_common(self) -> None:
        check_int("n_components", self.n_components)
        device = self.device
        if not isinstance(device, DeviceConfig):
            if not isinstance(device, (str, os.PathLike)):
                raise TypeError(f"device = {device!r}: expected a device name (a backend, a "
                                "preset or a YAML path) or a photon.DeviceConfig; an OPUDevice "
                                "instance cannot be cloned or pickled by recipe")
            check_device_name(device)
        options = self.device_options
        if options is not None and not isinstance(options, dict):
            raise TypeError(f"device_options = {options!r}: expected a dict of open_device "
                            "keyword arguments, or None")
        for key in _RESERVED_OPTIONS:
            if options and key in options:
                raise ValueError(f"device_options[{key!r}] = {options[key]!r}: expected it "
                                 "absent (the estimator sets n_in from the encoded width and "
                                 "n_out = n_components)")
        rs = self.random_state
        if rs is not None and not (isinstance(rs, numbers.Integral) and not isinstance(rs, bool)
                                   and 0 <= rs < 2 ** 32) \
                and not isinstance(rs, np.random.RandomState):
            raise ValueError(f"random_state = {rs!r}: expected None, an integer in [0, 2**32) "
                             "or a numpy RandomState")

    def _resolve_seed(self) -> int:
        if isinstance(self.random_state, numbers.Integral):
            return int(self.random_state)
        return int(check_random_state(self.random_state).randint(0, 2 ** 31 - 1))

    def _device_options(self, n_in: int) -> dict:
        """open_device keyword arguments: the sizes, the seed, then the user's options."""
        options = {"n_in": int(n_in), "n_out": int(self.n_components)}
        name = self.device
        if isinstance(name, os.PathLike):
            name = os.fspath(name)
        if name == "ideal":
            options["seed"] = self.seed_
        elif isinstance(name, DeviceConfig) or name == "virtual" or name in preset_names() \
                or str(name).endswith((".yaml", ".yml")):
            options["seeds__tm"] = self.seed_
        options.update(self.device_options or {})
        return options

    def _build_opu(self) -> OPU:
        """The fitted operator of the recipe (device built, opened and measured)."""
        opu = OPU(self.device, device_options=self._device_options(self.n_input_frames_width_),
                  linear_method=getattr(self, "linear_method", "complement"),
                  rescale=self._opu_rescale, batch_size=self.batch_size, progress=False,
                  seed=self.seed_)
        return opu.fit(n_features=self.n_input_frames_width_)

    @property
    def _opu_rescale(self) -> str:
        return "standard"

    @property
    def _n_features_out(self) -> int:
        return int(self.n_components)

    def _validate(self, X, reset: bool):
        return _validate_data(self, X, reset=reset, dtype=[np.float64, np.float32],
                              ensure_min_samples=1)

    def fit(self, X, y=None):
        """Fit the encoding on ``X``, build the device and fit the OPU on it.

        Parameters
        ----------
        X : (n_samples, n_features) array-like of real numbers
        y : ignored

        Returns
        -------
        self
        """
        self._check_common()
        self._check_own()
        X = self._validate(X, reset=True)
        self.seed_ = self._resolve_seed()
        self._fit_encoding(X)
        old = self.__dict__.pop("opu_", None)
        if old is not None:
            old.close()
        self.opu_ = self._build_opu()
        return self

    def transform(self, X):
        """The projection of ``X`` (n_samples, n_features) -> (n_samples, n_components).

        The result has ``X``'s float dtype (float32 stays float32, anything else float64).
        """
        check_is_fitted(self, "opu_")
        X = self._validate(X, reset=False)
        return self._transform(X).astype(X.dtype, copy=False)

    def close(self) -> None:
        """Close the fitted device (idempotent); a later transform needs a refit."""
        opu = self.__dict__.pop("opu_", None)
        if opu is not None:
            opu.close()

    # ------------------------------------------------------------------ pickling
    def __getstate__(self):
        state = super().__getstate__()
        state = dict(state)
        state["_opu_fitted"] = state.pop("opu_", None) is not None
        return state

    def __setstate__(self, state):
        state = dict(state)
        refit = state.pop("_opu_fitted", False)
        super().__setstate__(state)
        if refit:
            self.opu_ = self._build_opu()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.non_deterministic = False
        return tags


class OPURandomFeatures(_OPUEstimator):
    """Optical random features ``y = |R b(x)|^2`` of real data, as a scikit-learn transformer.

    Model: each feature ``x_f`` is expanded into ``n_levels`` binary inputs
    ``[x_f > t_{f,1}], .., [x_f > t_{f,n_levels}]`` (a per-feature thermometer, as
    lightonml's ``MultiThresholdEncoder(columnwise=True)``), so the device has
    ``n_in = n_features * n_levels`` inputs (block ``k`` holds threshold ``k`` of every
    feature); the device's intensities ``|R b|^2`` are the features, with ``R`` of entry
    variance ``1 / n_in`` (``rescale="standard"``: dimensionless, ``E[y] = |b|_0 / n_in``)
    or raw counts less the dark level (``"none"``).

    Parameters
    ----------
    n_components
        Output features (the device's outputs).
    device
        A device name (``"ideal"``: exact, noise-free; a preset such as ``"lab-bench"``;
        ``"virtual"``; a YAML path) or a :class:`photon.DeviceConfig`.
    device_options
        Further :func:`devices.open_device` keyword arguments (not ``n_in``/``n_out``).
    encoder
        ``"quantile"``: thresholds at the ``k / (n_levels + 1)`` quantiles of each
        feature; ``"linspace"``: evenly spaced inside each feature's range;
        ``"binary"``: X is already 0/1 (``n_levels`` must be 1), no expansion.
    n_levels
        Thresholds per feature (1: a median binarizer with ``"quantile"``).
    rescale
        ``"standard"`` or ``"none"`` (see above).
    batch_size
        Frames per device acquisition block.
    random_state
        Seed of the device's transmission matrix (``seed`` of ``"ideal"``,
        ``seeds__tm`` of a virtual device) and of the operator's probe frames; None:
        drawn at fit and kept as ``seed_``.

    Attributes
    ----------
    opu_ : devices.OPU
        The fitted operator (its ``device_`` the open device).
    thresholds_ : (n_features, n_levels) float64 array or None
        Thresholds per feature (None for ``"binary"``).
    seed_ : int
        The seed used.
    n_features_in_ : int
    n_input_frames_width_ : int
        The device's input width, ``n_features * n_levels``.
    """

    def __init__(self, n_components: int = 100, *, device="ideal", device_options=None,
                 encoder: str = "quantile", n_levels: int = 1, rescale: str = "standard",
                 batch_size: int = 1024, random_state=0):
        self.n_components = n_components
        self.device = device
        self.device_options = device_options
        self.encoder = encoder
        self.n_levels = n_levels
        self.rescale = rescale
        self.batch_size = batch_size
        self.random_state = random_state

    def _check_own(self) -> None:
        _check_choice("encoder", self.encoder, ("quantile", "linspace", "binary"))
        check_int("n_levels", self.n_levels)
        if self.encoder == "binary" and self.n_levels != 1:
            raise ValueError(f"n_levels = {self.n_levels!r}: expected 1 with encoder='binary'")
        _check_choice("rescale", self.rescale, ("standard", "none"))
        check_int("batch_size", self.batch_size)

    @property
    def _opu_rescale(self) -> str:
        return self.rescale

    def _fit_encoding(self, X) -> None:
        d, k = X.shape[1], int(self.n_levels)
        if self.encoder == "binary":
            self._check_binary(X)
            self.thresholds_ = None
        elif self.encoder == "quantile":
            q = np.arange(1, k + 1) / (k + 1)
            self.thresholds_ = np.quantile(X.astype(np.float64), q, axis=0).T.reshape(d, k)
        else:
            low, high = X.min(axis=0).astype(np.float64), X.max(axis=0).astype(np.float64)
            frac = np.arange(1, k + 1) / (k + 1)
            self.thresholds_ = low[:, None] + (high - low)[:, None] * frac[None, :]
        self.n_input_frames_width_ = d * k

    @staticmethod
    def _check_binary(X) -> None:
        bad = (X != 0) & (X != 1)
        if bad.any():
            index = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(f"X: value {X[index]!r} at index {index}: expected 0 or 1 with "
                             "encoder='binary' (or use encoder='quantile')")

    def encode(self, X):
        """The binary device frames of ``X``: uint8 (n_samples, n_features * n_levels)."""
        check_is_fitted(self, "seed_")
        X = self._validate(X, reset=False)
        return self._encode(X)

    def _encode(self, X):
        if self.thresholds_ is None:
            self._check_binary(X)
            return X.astype(np.uint8)
        planes = X[:, None, :] > self.thresholds_.T[None, :, :]  # (n, k, d)
        return planes.reshape(X.shape[0], -1).astype(np.uint8)

    def _transform(self, X):
        return self.opu_.transform(self._encode(X))


class OPULinearProjection(_OPUEstimator):
    """Linear random projection ``x -> s M x`` through an OPU, as a scikit-learn transformer.

    Model: ``M`` (n_components, n_features) has i.i.d. N(0, 1)-like entries (the device's
    linear mode, complement or anchor identity, normalized by :class:`devices.OPU`; with
    the complement identity its rows sum to zero, so ``M`` sees ``x - mean(x)``). Each
    sample is divided by its own largest ``|x|`` (exact: the map is linear), written as
    ``n_bits`` signed bit planes, projected plane by plane and recombined; the result is
    exact up to the bit planes' rounding, ``|x - x_q| <= max|x| / (2 (2**n_bits - 1))`` per
    entry. Scale ``s``: ``"norm"`` ``1 / sqrt(n_components)`` (entries N(0, 1/n_components),
    as scikit-learn's ``GaussianRandomProjection`` and lightonml's ``rescale="norm"``:
    norms kept on average); ``"variance"`` ``1 / sqrt(n_features)`` (lightonml's default);
    ``"unit"`` 1.

    Parameters
    ----------
    n_components
        Output dimension (the device's outputs).
    device, device_options, batch_size, random_state
        As for :class:`OPURandomFeatures`.
    n_bits
        Bit planes per sign (1..16): ``2 n_bits`` planes per sample, two frames each.
    linear_method
        ``"complement"`` or ``"anchor"`` (:class:`devices.OPU`).
    scale
        ``"norm"``, ``"variance"`` or ``"unit"`` (above).

    Attributes
    ----------
    opu_, seed_, n_features_in_
        As for :class:`OPURandomFeatures`.
    n_input_frames_width_ : int
        Input features (the operator's ``n_features_in_``; the anchor takes more device
        inputs).
    """

    def __init__(self, n_components: int = 100, *, device="ideal", device_options=None,
                 n_bits: int = 8, linear_method: str = "complement", scale: str = "norm",
                 batch_size: int = 1024, random_state=0):
        self.n_components = n_components
        self.device = device
        self.device_options = device_options
        self.n_bits = n_bits
        self.linear_method = linear_method
        self.scale = scale
        self.batch_size = batch_size
        self.random_state = random_state

    def _check_own(self) -> None:
        n_bits = self.n_bits
        if isinstance(n_bits, bool) or not isinstance(n_bits, numbers.Integral) \
                or not 1 <= n_bits <= 16:
            raise ValueError(f"n_bits = {n_bits!r}: expected an integer in 1..16")
        _check_choice("linear_method", self.linear_method, ("complement", "anchor"))
        _check_choice("scale", self.scale, ("norm", "variance", "unit"))
        check_int("batch_size", self.batch_size)

    def _device_options(self, n_in: int) -> dict:
        options = super()._device_options(n_in)
        if self.linear_method == "anchor":  # a quarter of the device's inputs hold the anchor
            options["n_in"] = int(n_in) + max(1, int(n_in) // 3)
        return options

    def _build_opu(self) -> OPU:
        opu = OPU(self.device, device_options=self._device_options(self.n_input_frames_width_),
                  linear_method=self.linear_method,
                  n_anchor=(max(1, self.n_input_frames_width_ // 3)
                            if self.linear_method == "anchor" else None),
                  encoder=BitPlaneEncoder(n_bits=int(self.n_bits), scale=1.0, signed=True),
                  batch_size=self.batch_size, progress=False, seed=self.seed_)
        return opu.fit(n_features=self.n_input_frames_width_)

    def _fit_encoding(self, X) -> None:
        self.n_input_frames_width_ = X.shape[1]

    def _transform(self, X):
        X = X.astype(np.float64)
        peak = np.abs(X).max(axis=1)
        safe = np.where(peak > 0, peak, 1.0)
        out = np.asarray(self.opu_.linear_transform(X / safe[:, None]), np.float64)
        out *= peak[:, None]  # back to X's units (a zero row stays zero)
        if self.scale == "norm":
            out /= np.sqrt(self.n_components)
        elif self.scale == "variance":
            out /= np.sqrt(X.shape[1])
        return out
