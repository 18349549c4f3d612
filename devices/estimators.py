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

Pickling keeps the device the estimator was fitted on, as its resolved configuration,
never a path or a name to re-read: a preset, YAML file or :class:`photon.DeviceConfig`
is resolved at :meth:`fit` into the :class:`photon.DeviceConfig` it built
(``device_config_``), and a backend (``"ideal"``) into its name and options. Unpickling
rebuilds the device from that and refits the operator, so the transmission matrix, dark
level and scales are those of the original fit, whatever happened to the YAML file or
the preset since; the pickle also holds a fingerprint of the fitted operator (its
measured arrays and scales), and an unpickled estimator whose refit differs (the
toolkit's physics changed since) is refused, naming what changed. A noisy device's
noise streams restart from their seeds, so the first transform after unpickling equals
the first transform after the original fit (later calls draw the same noise sequence
again). The device's clock (drift) restarts likewise. The arrays themselves are not
pickled (a pickle stays a few kilobytes).

scikit-learn's ``check_estimator`` passes for both estimators on any device, none of its
checks skipped (:data:`EXPECTED_FAILED_CHECKS` is empty; tests/test_sklearn_front.py runs
them on ``"ideal"`` and on ``"lab-bench"``). An estimator on a device that draws fresh
noise on each acquisition (shot, read or dark noise, laser RIN or drift, a drifting
medium: :func:`device_draws_fresh_noise`) reports itself non-deterministic
(``__sklearn_tags__().non_deterministic``), so the checks that compare two transforms
of the same data are not asked of it.
"""

from __future__ import annotations

import copy
import numbers
import os

import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from photon import DeviceConfig, preset_names, resolve_config
from photon.support.arguments import check_choice, check_int

from .encoders import BitPlaneEncoder
from .operator import OPU
from .registry import backend_names, check_device_name

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data as _validate_data
except ImportError:  # pragma: no cover - older scikit-learn
    def _validate_data(estimator, X, reset=True, **kwargs):
        return estimator._validate_data(X, reset=reset, **kwargs)

__all__ = ["OPURandomFeatures", "OPULinearProjection", "EXPECTED_FAILED_CHECKS",
           "device_draws_fresh_noise"]

#: scikit-learn checks expected to fail, by check name, with the reason: none.
#: Pass as ``check_estimator(est, expected_failed_checks=EXPECTED_FAILED_CHECKS)``.
EXPECTED_FAILED_CHECKS: dict[str, str] = {}

_RESERVED_OPTIONS = ("n_in", "n_out")

#: Configuration fields that make two acquisitions of one frame differ when set (fresh
#: noise, or a clock that moves the medium): (section, field, value that means "off").
#: Fixed patterns (PRNU, DSNU) and DMD leakage are the same on every acquisition.
FRESH_NOISE_FIELDS = (("laser", "rin_rms", 0.0), ("laser", "drift_rms", 0.0),
                      ("camera", "shot_noise", False), ("camera", "read_noise_e", 0.0),
                      ("camera", "dark_current_e_per_s", 0.0), ("medium", "drift_time_s", None))
#: Backends whose acquisitions are exact functions of the frame (no noise, no clock).
NOISE_FREE_BACKENDS = ("ideal", "calibrated")
#: Relative tolerance of the fitted operator's fingerprint on unpickling.
FINGERPRINT_RTOL = 1e-4


def device_draws_fresh_noise(device, device_options=None) -> bool:
    """Whether acquisitions of the device ``device`` (as an estimator names it) vary.

    True for a configuration (preset, YAML path, :class:`photon.DeviceConfig`, after
    ``device_options`` overrides) with any of :data:`FRESH_NOISE_FIELDS` on, and for
    any backend other than :data:`NOISE_FREE_BACKENDS` (a hardware driver is noisy);
    False for ``"ideal"`` and for a configuration with every one of them off. A device
    that cannot be resolved counts as noisy (the conservative answer).
    """
    if isinstance(device, os.PathLike):
        device = os.fspath(device)
    if isinstance(device, str) and device in NOISE_FREE_BACKENDS:
        return False
    options = {k: v for k, v in (device_options or {}).items() if k not in _RESERVED_OPTIONS}
    try:
        if device == "virtual":
            device = options.pop("device", "lab-bench")
        config = resolve_config(device, **options)
    except Exception:  # not a configuration (a driver), or one that does not resolve
        return True
    return any(getattr(getattr(config, section), name) != off
               for section, name, off in FRESH_NOISE_FIELDS)


def _fingerprint(opu) -> dict:
    """Summary numbers of every array or number a fitted operator measured.

    ``{attribute: (shape, non-finite count, sum, sum of squares, weighted sum)}`` of the
    finite values, over the operator's numeric attributes (its settings and what
    :meth:`devices.OPU.fit` measured: dark level, row sizes, scales, exposure): equal
    for two fits of one device, and a change in any single measured value shows in the
    weighted sum.
    """
    summary = {}
    for name, value in sorted(vars(opu).items()):
        if isinstance(value, (bool, np.bool_)):
            value = np.asarray(value, np.float64)
        if isinstance(value, (numbers.Real, np.ndarray)) and not isinstance(value, bool):
            array = np.asarray(value)
            if array.dtype.kind not in "biuf":
                continue
            flat = array.astype(np.float64).ravel()
            finite = np.isfinite(flat)
            flat = np.where(finite, flat, 0.0)
            weights = np.random.default_rng(len(name)).uniform(0.5, 1.5, flat.size)
            summary[name] = (tuple(array.shape), float((~finite).sum()), float(flat.sum()),
                             float((flat ** 2).sum()), float(flat @ weights))
    return summary


def _fingerprint_changes(expected: dict, got: dict) -> list[str]:
    """Names (with the size of the change) where two fingerprints differ."""
    changes = []
    for name in sorted(set(expected) | set(got)):
        if name not in expected or name not in got:
            changes.append(f"{name} ({'new' if name in got else 'gone'})")
            continue
        (shape_e, *numbers_e), (shape_g, *numbers_g) = expected[name], got[name]
        if shape_e != shape_g:
            changes.append(f"{name} (shape {shape_e} -> {shape_g})")
            continue
        gap = max(abs(a - b) / max(abs(a), abs(b), 1e-30) for a, b in zip(numbers_e, numbers_g))
        if gap > FINGERPRINT_RTOL:
            changes.append(f"{name} (by {gap:.2g} relative)")
    return changes


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

    def _resolve_device(self) -> tuple:
        """``(device, options)`` for :class:`devices.OPU`: a configuration resolved once.

        A preset, YAML path, :class:`photon.DeviceConfig` or ``"virtual"`` becomes the
        :class:`photon.DeviceConfig` it builds (sizes and seeds applied), kept as
        ``device_config_`` and used again on unpickling; a backend keeps its name and
        options.
        """
        options = self._device_options(self.n_input_frames_width_)
        config = getattr(self, "device_config_", None)
        if config is not None:
            return config, None
        name = os.fspath(self.device) if isinstance(self.device, os.PathLike) else self.device
        if isinstance(name, DeviceConfig) or name == "virtual" or (
                name not in backend_names()
                and (name in preset_names() or str(name).endswith((".yaml", ".yml")))):
            if name == "virtual":
                name = options.pop("device", "lab-bench")
            self.device_config_ = resolve_config(name, **options)
            return self.device_config_, None
        self.device_config_ = None
        return name, options

    def _build_opu(self) -> OPU:
        """The fitted operator of the recipe (device built, opened and measured)."""
        device, options = self._resolve_device()
        opu = OPU(device, device_options=options, **self._opu_settings())
        try:
            return opu.fit(n_features=self.n_input_frames_width_)
        except TypeError as error:  # a backend's unknown keyword
            if options is None or not self.device_options:
                raise
            raise TypeError(f"device_options = {self.device_options!r}: not options of device "
                            f"{self.device!r} ({error})") from error

    def _opu_settings(self) -> dict:
        """:class:`devices.OPU` keyword arguments other than the device."""
        return dict(rescale=self._opu_rescale, batch_size=self.batch_size, progress=False,
                    seed=self.seed_)

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
        self.__dict__.pop("device_config_", None)  # resolve the device afresh
        self.opu_ = self._build_opu()
        self._fit_fingerprint = _fingerprint(self.opu_)
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
            expected = getattr(self, "_fit_fingerprint", None)
            changes = _fingerprint_changes(expected, _fingerprint(self.opu_)) \
                if expected is not None else ["no fingerprint in the pickle"]
            if changes:
                self.opu_.close()
                del self.opu_
                device = self.device_config_.name if self.device_config_ is not None \
                    else self.device
                raise ValueError(
                    f"unpickling {type(self).__name__} fitted on device {device!r}: the operator "
                    "refitted on the pickled device configuration measures differently "
                    f"({', '.join(changes)}): expected the same measurements (the toolkit's "
                    "physics or operator changed since it was pickled); fit it again")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.non_deterministic = device_draws_fresh_noise(self.device, self.device_options)
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
        ``"auto"``: binary data (every value 0 or 1 at :meth:`fit`) are projected as
        they are, as ``"binary"`` (a threshold expansion would only repeat them, so
        ``n_levels`` is not used); any other data as ``"quantile"``. ``"quantile"``:
        thresholds at the ``k / (n_levels + 1)`` quantiles of each feature;
        ``"linspace"``: evenly spaced inside each feature's range; ``"binary"``: X is
        already 0/1 (``n_levels`` must be 1), no expansion.
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
    encoder_ : str
        The encoding used: ``"binary"``, ``"quantile"`` or ``"linspace"`` (``"auto"``
        resolved on the data :meth:`fit` saw).
    thresholds_ : (n_features, n_levels) float64 array or None
        Thresholds per feature (None for ``"binary"``).
    device_config_ : photon.DeviceConfig or None
        The resolved configuration of the device (None for a backend such as
        ``"ideal"``): what unpickling rebuilds.
    seed_ : int
        The seed used.
    n_features_in_ : int
    n_input_frames_width_ : int
        The device's input width, ``n_features * n_levels``.
    """

    def __init__(self, n_components: int = 100, *, device="ideal", device_options=None,
                 encoder: str = "auto", n_levels: int = 1, rescale: str = "standard",
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
        check_choice("encoder", self.encoder, ("auto", "quantile", "linspace", "binary"))
        check_int("n_levels", self.n_levels)
        if self.encoder == "binary" and self.n_levels != 1:
            raise ValueError(f"n_levels = {self.n_levels!r}: expected 1 with encoder='binary'")
        check_choice("rescale", self.rescale, ("standard", "none"))
        check_int("batch_size", self.batch_size)

    @property
    def _opu_rescale(self) -> str:
        return self.rescale

    def _fit_encoding(self, X) -> None:
        d, k = X.shape[1], int(self.n_levels)
        encoder = self.encoder
        if encoder == "auto":
            encoder = "binary" if bool(np.all((X == 0) | (X == 1))) else "quantile"
        self.encoder_ = encoder
        if encoder == "binary":
            self._check_binary(X)
            self.thresholds_ = None
            k = 1
        elif encoder == "quantile":
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
            raise ValueError(f"X: value {X[index]!r} at index {index}: expected 0 or 1, as in the "
                             "binary data this estimator was fitted on (encoder='binary', or "
                             "'auto' on 0/1 data); fit on real data or use encoder='quantile'")

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
    linear mode, normalized by :class:`devices.OPU`). The default anchor identity gives
    an unbiased ``M`` (zero-mean entries, no constraint between them), as a Gaussian
    random projection is; the complement identity measures ``M`` on ``x - mean(x)``
    and completes the component along the mean with a drawn Gaussian column
    (:class:`devices.OPU`'s ``complement_mean="drawn"``: unbiased in distribution, but
    that component is the draw's, not the device's). Each
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
        ``"anchor"`` (unbiased; a third more device inputs hold the anchor) or
        ``"complement"`` (the mean's component drawn, above) (:class:`devices.OPU`).
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
                 n_bits: int = 8, linear_method: str = "anchor", scale: str = "norm",
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
        check_choice("linear_method", self.linear_method, ("complement", "anchor"))
        check_choice("scale", self.scale, ("norm", "variance", "unit"))
        check_int("batch_size", self.batch_size)

    def _device_options(self, n_in: int) -> dict:
        options = super()._device_options(n_in)
        if self.linear_method == "anchor":  # a quarter of the device's inputs hold the anchor
            options["n_in"] = int(n_in) + max(1, int(n_in) // 3)
        return options

    def _opu_settings(self) -> dict:
        n_anchor = (max(1, self.n_input_frames_width_ // 3) if self.linear_method == "anchor"
                    else None)
        return dict(linear_method=self.linear_method, n_anchor=n_anchor,
                    encoder=BitPlaneEncoder(n_bits=int(self.n_bits), scale=1.0, signed=True),
                    batch_size=self.batch_size, progress=False, seed=self.seed_)

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
