"""A way over from lightonml: its ``OPU`` and encoders, same names, same meanings, any device.

A lightonml script runs with its import lines changed (docs/lightonml.md)::

    from lightonml import OPU                                    # before
    from lightonml.encoding.base import SeparatedBitPlanEncoder, SeparatedBitPlanDecoder
    from devices.lightonml_compat import OPU, SeparatedBitPlanEncoder, SeparatedBitPlanDecoder

:class:`OPU` keeps lightonml's constructor arguments, ``fit1d``/``fit2d`` (optionally
with bit-packed inputs), ``transform`` and ``linear_transform`` (with ``encoder_cls`` and
``decoder_cls``), ``fit_transform1d``/``fit_transform2d``, ``open``/``close`` and the
context manager, ``n_components``, ``max_n_features`` and ``rescale``. Inputs may be one
vector or a batch of any leading shape (``output.shape[:-1] == X.shape[:-1]`` for 1-D
features), NumPy arrays or CPU torch tensors (torch in, torch out). The projection runs
through any device of this toolkit (``device=``: ``"ideal"``, a preset such as
``"lab-bench"``, a :class:`photon.DeviceConfig`, or ``opu_device=`` an
:class:`devices.OPUDevice` instance) via :class:`devices.OPU`.

Differences, all deliberate:

* Inputs must be binary (0/1) after encoding: a real value raises ValueError, where
  lightonml's simulator casts it to uint8 silently.
* ``linear_transform`` accepts packed inputs (lightonml raises RuntimeError).
* Intensity scale (``transform``): ``intensity_scale="toolkit"`` (default) gives ``|R x|^2``
  with ``E|R_ij|^2 = 1 / n_features`` (the fitted input dimension), as :class:`devices.OPU`;
  ``"lightonml"`` gives lightonml's simulator's scale, ``E|R_ij|^2 = 2 / max_n_features``
  (its ``SimulatedOpuDevice`` draws real and imaginary parts of standard deviation
  ``1 / sqrt(max_n_features)`` each). Both are dimensionless.
* Linear scale (``linear_transform``): ``M`` has unit-variance entries before ``rescale``;
  ``"variance"`` (lightonml's default) divides by ``sqrt(n_features)``, ``"norm"`` by
  ``sqrt(n_components)``, ``"none"`` leaves it. lightonml's hardware path means the same
  (its ``stdev`` is measured); its simulator keeps ``stdev = 1`` on a matrix of variance
  ``1 / max_n_features`` and so returns ``sqrt(max_n_features)`` times less.
* No configuration files, ROI strategies or verbosity levels: those arguments are
  accepted and ignored (``config_file`` is refused: name a device instead).
* ``online=True`` is accepted; every call may be one vector or a batch.
"""

from __future__ import annotations

import inspect
import math
import os

import numpy as np

from photon import DeviceConfig, preset_names

from .operator import OPU as _ToolkitOPU
from .protocol import OPUDevice
from .registry import check_device_name, open_device

__all__ = ["OPU", "OutputRescaling", "NoEncoding", "NoDecoding", "SeparatedBitPlanEncoder",
           "SeparatedBitPlanDecoder", "MultiThresholdEncoder", "BinaryThresholdEncoder",
           "INTENSITY_SCALES"]

INTENSITY_SCALES = ("toolkit", "lightonml")
_RESCALES = ("variance", "norm", "none")


class OutputRescaling:
    """lightonml's ``types.OutputRescaling`` names, as strings (``OPU(rescale=...)``)."""

    variance = "variance"
    norm = "norm"
    none = "none"


# ---------------------------------------------------------------------- array helpers
def _to_numpy(X):
    """``(array, was_tensor)``: a torch tensor becomes a NumPy array (CPU), else as is."""
    if type(X).__name__ == "Tensor" and hasattr(X, "detach"):
        return X.detach().cpu().numpy(), True
    return np.asarray(X), False


def _like_input(Y, was_tensor: bool):
    if was_tensor:
        import torch  # noqa: PLC0415  (only when the input was a tensor)

        return torch.from_numpy(np.ascontiguousarray(Y))
    return Y


def _preserve_type(method):
    def wrapper(self, X, *args, **kwargs):
        X, was_tensor = _to_numpy(X)
        return _like_input(method(self, X, *args, **kwargs), was_tensor)
    wrapper.__name__, wrapper.__doc__ = method.__name__, method.__doc__
    return wrapper


# ---------------------------------------------------------------------- encoders
class _BaseTransformer:
    """lightonml's ``BaseTransformer``: ``fit`` is a no-op, ``fit_transform`` chains."""

    def fit(self, X, y=None):
        """No-op (scikit-learn API); returns self."""
        return self

    def transform(self, X):  # pragma: no cover - abstract
        raise NotImplementedError

    def fit_transform(self, X, y=None):
        """``fit(X, y).transform(X)``."""
        return self.fit(X, y).transform(X)


class NoEncoding(_BaseTransformer):
    """Identity encoder (lightonml's default ``encoder_cls``)."""

    def transform(self, X):
        """Return ``X`` unchanged."""
        return X


class NoDecoding(_BaseTransformer):
    """Identity decoder (lightonml's default ``decoder_cls``)."""

    def transform(self, X):
        """Return ``X`` unchanged."""
        return X


class SeparatedBitPlanEncoder(_BaseTransformer):
    """lightonml's bit-plane encoder of real data: ``precision`` planes per sign, stacked.

    Model: with ``m+ = max(x)`` and ``m- = max(-x)`` over the whole batch (set at each
    :meth:`transform`, as lightonml does), ``q = round(x / m+ * (2**precision - 1))`` of the
    positive part (clipped to [0, 1] first) is written in ``precision`` bits, most
    significant first; the negative part likewise. The output stacks the rows
    ``[positive: sample 0 bit 0..p-1, sample 1 ..., negative: ...]``: shape
    ``(sides * n_samples * precision, n_features)``, uint8, ``sides`` = 2 for signed data.
    Integer data use lightonml's power-of-two magnitude (a plain shift). ``get_params``
    gives :class:`SeparatedBitPlanDecoder` what it needs.

    Parameters
    ----------
    precision
        Bits per sign, 1..8.
    """

    def __init__(self, precision: int = 6, **kwargs):
        if "n_bits" in kwargs or "starting_bit" in kwargs:
            raise RuntimeError("Encoder interface has changed from n_bit to precision")
        if isinstance(precision, bool) or not isinstance(precision, (int, np.integer)) \
                or not 1 <= precision <= 8:
            raise ValueError(f"precision = {precision!r}: expected an integer in 1..8")
        self.precision = int(precision)
        self.magnitude = None, None

    def _int_magnitude(self, X):
        top = X.max()
        if top < 0:
            return 0
        shift = self.precision - np.ceil(np.log2(float(top) + 1))
        return (2 ** self.precision - 1) * 0.5 ** shift

    @_preserve_type
    def transform(self, X):
        """Bit planes of ``X`` (n_samples, n_features): uint8 (sides * n * precision, n_features)."""
        if X.ndim != 2:
            raise ValueError(f"X: shape {X.shape}: expected (n_samples, n_features)")
        if np.issubdtype(X.dtype, np.signedinteger):
            magnitude_p, magnitude_n = self._int_magnitude(+X), self._int_magnitude(-X)
        elif np.issubdtype(X.dtype, np.integer):
            magnitude_p, magnitude_n = self._int_magnitude(X), 0
        else:
            magnitude_p, magnitude_n = float(X.max()), float(-X.min())
        X = X.astype(np.float64)
        dequantization = (1 - 0.5 ** self.precision) * 2
        self.magnitude = magnitude_p / dequantization, magnitude_n / dequantization

        def bits(unit):  # values in [0, 1] -> (n * precision, n_features), MSB first
            q = (unit * (2 ** self.precision - 1) + 0.5).astype(np.uint8)
            planes = np.unpackbits(q[:, None], axis=1, bitorder="big")[:, -self.precision:]
            return planes.reshape(-1, *planes.shape[2:])

        safe_p = magnitude_p if magnitude_p != 0 else 1
        safe_n = magnitude_n if magnitude_n != 0 else 1
        if magnitude_n <= 0:
            return bits(np.clip(X / safe_p, 0, 1))
        if magnitude_p <= 0:
            return bits(np.clip(-X / safe_n, 0, 1))
        return np.concatenate([bits(np.clip(X / safe_p, 0, 1)),
                               bits(np.clip(-X / safe_n, 0, 1))], 0)

    def get_params(self) -> dict:
        """``precision``, ``magnitude_p``, ``magnitude_n``: the decoder's arguments."""
        return {"precision": self.precision, "magnitude_p": self.magnitude[0],
                "magnitude_n": self.magnitude[1]}


class SeparatedBitPlanDecoder(_BaseTransformer):
    """Recombine projected bit planes: ``sum_k decay**k * plane_k``, times the magnitudes.

    Parameters
    ----------
    precision, magnitude_p, magnitude_n
        From :meth:`SeparatedBitPlanEncoder.get_params`.
    decoding_decay
        Weight ratio of successive planes (0.5: binary).
    """

    def __init__(self, precision, magnitude_p=1, magnitude_n=0, decoding_decay=0.5):
        self.precision = int(precision)
        self.magnitude_p = magnitude_p
        self.magnitude_n = magnitude_n
        self.decoding_decay = decoding_decay

    @_preserve_type
    def transform(self, X):
        """Decode (sides * n * precision, n_out) projections into (n, n_out), float32."""
        n_rows, n_out = X.shape
        sides = 2 if (self.magnitude_n > 0 and self.magnitude_p > 0) else 1
        n = n_rows // (self.precision * sides)
        if n * self.precision * sides != n_rows:
            raise ValueError(f"X: shape {X.shape}: expected a multiple of precision * sides = "
                             f"{self.precision * sides} rows")
        X = X.reshape(sides, n, self.precision, n_out).astype(np.float64)
        decay = self.decoding_decay ** np.arange(self.precision)
        parts = np.einsum("snpo,p->sno", X, decay)
        if self.magnitude_n <= 0:
            out = parts[0] * self.magnitude_p
        elif self.magnitude_p <= 0:
            out = -parts[0] * self.magnitude_n
        else:
            out = parts[0] * self.magnitude_p - parts[1] * self.magnitude_n
        return out.astype(np.float32)


class MultiThresholdEncoder(_BaseTransformer):
    """lightonml's multi-threshold encoder: ``n_bins - 1`` thresholds, concatenated planes.

    Model: ``X_enc = [X > t_1 | X > t_2 | ... | X > t_{n_bins-1}]`` (blocks of
    ``n_features`` columns, one block per threshold), uint8 of shape
    ``(n_samples, n_features * (n_bins - 1))``: a thermometer code per feature, expanded
    along the features (what the intensity ``transform`` needs; not a linear code).

    Parameters
    ----------
    thresholds
        A list or array (1-D shared, or 2-D (n_features, n_bins - 1) with ``columnwise``),
        used as is; ``"linspace"``: evenly spaced inside the fitted range;
        ``"quantiles"`` (or ``"quantile"``): the ``k / n_bins`` quantiles (midpoint).
    n_bins
        Values a feature can take (``n_bins - 1`` thresholds), for the fitted modes.
    columnwise
        One set of thresholds per feature (True) or one for all (False).
    """

    def __init__(self, thresholds="linspace", n_bins=8, columnwise=False):
        if isinstance(thresholds, (list, tuple, np.ndarray)):
            thresholds = np.array(thresholds, dtype=np.float64)
            if columnwise and thresholds.ndim != 2:
                raise ValueError(f"thresholds: shape {thresholds.shape}: expected 2-D "
                                 "(n_features, n_bins - 1) with columnwise=True")
            self.n_bins = thresholds.shape[-1] + 1
        elif thresholds in ("linspace", "quantiles", "quantile"):
            if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 2:
                raise ValueError(f"n_bins = {n_bins!r}: expected an integer >= 2")
            self.n_bins = int(n_bins)
        else:
            raise ValueError(f"thresholds = {thresholds!r}: expected a list, an array, "
                             "'linspace' or 'quantiles'")
        self.thresholds = thresholds
        self.columnwise = bool(columnwise)

    def _fitted_mode(self) -> bool:
        return isinstance(self.thresholds, str)

    def fit(self, X, y=None):
        """Set the thresholds from ``X`` (n_samples, n_features) in the fitted modes."""
        X, _ = _to_numpy(X)
        if not self._fitted_mode():
            return self
        mode = self.thresholds

        def fitted(values):
            if mode == "linspace":
                return np.linspace(values.min(), values.max(), self.n_bins + 1)[1:-1]
            k = 1 / self.n_bins
            return np.array([np.quantile(values, i * k, method="midpoint")
                             for i in range(1, self.n_bins)])

        if self.columnwise:
            self.thresholds = np.stack([fitted(X[:, f]) for f in range(X.shape[1])]).astype(
                np.float32)
        else:
            self.thresholds = fitted(X)
        return self

    @_preserve_type
    def transform(self, X):
        """Concatenated planes of ``X`` (n_samples, n_features): uint8 (n, n_features * (n_bins - 1))."""
        if self._fitted_mode():
            raise RuntimeError(f"thresholds = {self.thresholds!r}: call fit before transform")
        if self.thresholds.ndim == 1:
            thresholds = self.thresholds[:, None, None]
        else:
            thresholds = self.thresholds.T[:, None, :]
        planes = X[None, ...] > thresholds
        return np.concatenate(list(planes), axis=-1).astype(np.uint8)


class BinaryThresholdEncoder(_BaseTransformer):
    """lightonml's binarizer: ``X > threshold_enc`` (``"auto"``: the per-feature median).

    Parameters
    ----------
    threshold_enc
        A number, or ``"auto"`` (set by :meth:`fit`).
    greater_is_one
        True: above the threshold is 1; False: below is 1.
    """

    def __init__(self, threshold_enc="auto", greater_is_one=True):
        if not (isinstance(threshold_enc, (int, float)) or threshold_enc == "auto"):
            raise ValueError(f"threshold_enc = {threshold_enc!r}: expected a number or 'auto'")
        self.threshold_enc = threshold_enc
        self.greater_is_one = greater_is_one

    def fit(self, X, y=None):
        """Set ``threshold_enc`` to the per-feature median when it is ``"auto"``."""
        X, _ = _to_numpy(X)
        if isinstance(self.threshold_enc, str):
            self.threshold_enc = np.median(X, axis=0)
        return self

    @_preserve_type
    def transform(self, X):
        """``uint8(X > threshold_enc)`` (or ``<`` when ``greater_is_one`` is False)."""
        if isinstance(self.threshold_enc, str):
            raise RuntimeError("If threshold_enc is 'auto', fit must be called before transform.")
        out = X > self.threshold_enc if self.greater_is_one else X < self.threshold_enc
        return out.astype(np.uint8)


# ---------------------------------------------------------------------- the OPU
class OPU:
    """lightonml's ``OPU`` over any device of this toolkit.

    Parameters
    ----------
    n_components
        Outputs (the device's ``n_out``). lightonml's default, 200000, is kept: a dense
        simulated matrix of that width is large (``max_n_features * n_components``
        complex64): pass the width you need.
    opu_device
        An :class:`devices.OPUDevice` instance to use (its ``n_out`` must equal
        ``n_components`` and its ``n_in`` be at least ``max_n_features``). lightonml's
        device classes are not accepted.
    max_n_features
        Largest input dimension (the device's ``n_in``).
    config_file, config_override, verbose_level, input_roi_strategy, disable_pbar
        lightonml's; ignored (``config_file`` must be empty: choose ``device``).
    open_at_init
        Build and open the device at construction (None: True, as lightonml).
    simulated
        Accepted for lightonml scripts: with no ``device`` the device is ``"ideal"``
        (exact ``|R x|^2``, as lightonml's simulator) when True, and ``"lab-bench"`` (this
        toolkit's physical model of a lab OPU, with noise) when False.
    rescale
        ``"variance"`` (default), ``"norm"`` or ``"none"`` (or an :class:`OutputRescaling`
        value): ``linear_transform``'s output scale (module docstring).
    device
        A device name or :class:`photon.DeviceConfig` (this toolkit's; keyword only).
    device_options
        Further :func:`devices.open_device` arguments (not ``n_in``/``n_out``).
    seed
        Seed of the device's transmission matrix (``"ideal"``'s ``seed``, a virtual
        device's ``seeds__tm``) and of the operator's probe frames.
    intensity_scale
        ``"toolkit"`` or ``"lightonml"`` (module docstring): ``transform``'s scale.

    Attributes
    ----------
    operator : devices.OPU or None
        The fitted toolkit operator after ``fit1d``/``fit2d``.
    """

    def __init__(self, n_components: int = 200000, opu_device=None, max_n_features: int = 1000,
                 config_file: str = "", config_override=None, verbose_level: int = -1,
                 input_roi_strategy=None, open_at_init=None, disable_pbar=False,
                 simulated=False, rescale="variance", *, device=None, device_options=None,
                 seed: int = 0, intensity_scale: str = "toolkit"):
        if config_file:
            raise ValueError(f"config_file = {config_file!r}: expected '' (no LightOn "
                             "configuration here: pass device= a device name or config)")
        if opu_device is not None and not isinstance(opu_device, OPUDevice):
            raise TypeError(f"opu_device = {opu_device!r}: expected a devices.OPUDevice "
                            "(lightonml's OpuDevice/SimulatedOpuDevice are not used here)")
        if opu_device is not None and (device is not None or device_options):
            raise ValueError("opu_device and device/device_options are conflicting: expected one")
        if device is None:
            device = "ideal" if simulated else "lab-bench"
        if not isinstance(device, DeviceConfig):
            check_device_name(device)
        if device_options is not None and not isinstance(device_options, dict):
            raise TypeError(f"device_options = {device_options!r}: expected a dict or None")
        for key in ("n_in", "n_out"):
            if device_options and key in device_options:
                raise ValueError(f"device_options[{key!r}]: expected it absent (set by "
                                 "max_n_features and n_components)")
        if intensity_scale not in INTENSITY_SCALES:
            raise ValueError(f"intensity_scale = {intensity_scale!r}: expected "
                             + " or ".join(map(repr, INTENSITY_SCALES)))
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed = {seed!r}: expected an integer >= 0")
        self._device_spec = device
        self._device_options = dict(device_options or {})
        self._given_device = opu_device
        self._device: OPUDevice | None = opu_device
        self.seed = int(seed)
        self.intensity_scale = intensity_scale
        self.disable_pbar = disable_pbar
        self.rescale = rescale
        self._n_components = self._check_size("n_components", n_components)
        self._max_n_features = self._check_size("max_n_features", max_n_features)
        if opu_device is not None:
            if opu_device.n_out != self._n_components:
                raise ValueError(f"n_components = {n_components!r}: expected opu_device's "
                                 f"n_out = {opu_device.n_out}")
            if opu_device.n_in < self._max_n_features:
                raise ValueError(f"max_n_features = {max_n_features!r}: expected at most "
                                 f"opu_device's n_in = {opu_device.n_in}")
        self.operator: _ToolkitOPU | None = None
        self._traits = None  # (feature shape, packed, n_features)
        if open_at_init is None or open_at_init:
            self.open()

    @staticmethod
    def _check_size(name, value) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} = {value!r}: expected a positive integer")
        return int(value)

    # ------------------------------------------------------------------ properties
    @property
    def rescale(self) -> str:
        """``linear_transform``'s scaling: ``"variance"``, ``"norm"`` or ``"none"``."""
        return self._rescale

    @rescale.setter
    def rescale(self, value) -> None:
        name = getattr(value, "name", value)  # lightonml's enum, or a string
        if not isinstance(name, str) or name.lower() not in _RESCALES:
            raise ValueError(f"rescale = {value!r}: expected " + " or ".join(map(repr, _RESCALES)))
        self._rescale = name.lower()

    @property
    def n_components(self) -> int:
        """Outputs of the projection (the device's ``n_out``); settable (rebuilds the device)."""
        return self._n_components

    @n_components.setter
    def n_components(self, value) -> None:
        self._resize(n_components=self._check_size("n_components", value))

    @property
    def max_n_features(self) -> int:
        """Largest input dimension (the device's ``n_in``); settable (rebuilds the device)."""
        return self._max_n_features

    @max_n_features.setter
    def max_n_features(self, value) -> None:
        self._resize(max_n_features=self._check_size("max_n_features", value))

    def _resize(self, **sizes) -> None:
        if self._given_device is not None:
            raise AttributeError("the size of an opu_device instance can't be changed")
        was_open = self._device is not None
        self.close()
        self._device = None
        self._n_components = sizes.get("n_components", self._n_components)
        self._max_n_features = sizes.get("max_n_features", self._max_n_features)
        self.operator, self._traits = None, None
        if was_open:
            self.open()

    @property
    def device(self) -> OPUDevice:
        """The toolkit device the projections run on (built at :meth:`open`)."""
        if self._device is None:
            raise RuntimeError("OPU device isn't built yet: use opu.open() or \"with opu:\"")
        return self._device

    # ------------------------------------------------------------------ life cycle
    def open(self) -> None:
        """Build (once) and open the device."""
        if self._device is None:
            options = {"n_in": self._max_n_features, "n_out": self._n_components}
            spec = self._device_spec
            if isinstance(spec, os.PathLike):
                spec = os.fspath(spec)
            if spec == "ideal":
                options["seed"] = self.seed
            elif isinstance(spec, DeviceConfig) or spec == "virtual" or spec in preset_names() \
                    or str(spec).endswith((".yaml", ".yml")):
                options["seeds__tm"] = self.seed
            options.update(self._device_options)
            self._device = open_device(spec, **options)
        else:
            self._device.open()

    def close(self) -> None:
        """Close the device (idempotent); :meth:`open` reopens it."""
        if self._device is not None:
            self._device.close()

    def __enter__(self) -> "OPU":
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ fitting
    def fit1d(self, X=None, n_features: int | None = None, packed: bool = False,
              online: bool = False, **override) -> None:
        """Set the input dimension from 1-D vectors ``X`` (or ``n_features``) and fit.

        Parameters
        ----------
        X
            A vector (n_features,) or a batch (..., n_features), binary; bit-packed
            (uint8, ``8 * X.shape[-1]`` features) with ``packed=True``. Only its shape is
            used.
        n_features
            The input dimension, when ``X`` is None; with packed ``X``, the number of
            meaningful bits (default ``8 * X.shape[-1]``).
        packed
            Inputs are bit-packed along the last axis (``np.packbits``, big bit order).
        online
            Accepted (lightonml's single-vector acquisition mode); no effect here.
        """
        if X is not None:
            X, _ = _to_numpy(X)
            if X.ndim < 1:
                raise ValueError(f"X: shape {X.shape}: expected a vector or a batch of vectors")
            width = 8 * X.shape[-1] if packed else X.shape[-1]
            if n_features is None:
                n_features = width
            elif not packed and n_features != width:
                raise ValueError(f"n_features = {n_features!r}: expected None or X's last "
                                 f"dimension, {width}")
        if n_features is None:
            raise ValueError("fit1d: X = None and n_features = None: expected one of them")
        n = self._check_size("n_features", n_features)
        if packed and X is not None and n > 8 * X.shape[-1]:
            raise ValueError(f"n_features = {n}: expected at most 8 * {X.shape[-1]} packed bits")
        self._fit((n,), packed, n)

    def fit2d(self, X=None, n_features=None, packed: bool = False, online: bool = False,
              **override) -> None:
        """Set the input dimension from 2-D inputs ``X`` (or ``n_features=(h, w)``) and fit.

        Parameters
        ----------
        X
            An input (h, w) or a batch (..., h, w), binary; with ``packed=True`` each input
            is one bit-packed vector (..., ceil(h w / 8)) and ``n_features`` is required.
        n_features
            ``(h, w)``: required when ``X`` is None or packed.
        packed, online
            As for :meth:`fit1d`.
        """
        if X is not None and not packed:
            X, _ = _to_numpy(X)
            if X.ndim < 2:
                raise ValueError(f"X: shape {X.shape}: expected an input (h, w) or a batch "
                                 "(..., h, w)")
            shape = tuple(int(s) for s in X.shape[-2:])
            if n_features is not None and tuple(n_features) != shape:
                raise ValueError(f"n_features = {n_features!r}: expected None or X's last two "
                                 f"dimensions, {shape}")
        else:
            if n_features is None or len(tuple(n_features)) != 2:
                raise ValueError(f"n_features = {n_features!r}: expected (h, w) when X is None "
                                 "or packed")
            shape = tuple(self._check_size("n_features", int(s)) for s in n_features)
        self._fit(shape, packed, int(np.prod(shape)))

    def _fit(self, shape: tuple, packed: bool, n: int) -> None:
        if n > self._max_n_features:
            raise ValueError(f"n_features = {n}: expected at most max_n_features = "
                             f"{self._max_n_features}")
        if self._device is None:
            self.open()
        self.operator = _ToolkitOPU(self._device, linear_method="complement",
                                    progress=None if not self.disable_pbar else False,
                                    seed=self.seed).fit(n_features=n)
        self._traits = (shape, bool(packed), n)

    # ------------------------------------------------------------------ transforms
    def _frames(self, X):
        """``(frames (m, n) uint8-compatible, batch shape)`` of encoded input ``X``."""
        if self._traits is None:
            raise RuntimeError("Call fit1d or fit2d before transform")
        shape, packed, n = self._traits
        X = np.asarray(X)
        if packed:
            if X.dtype != np.uint8:
                raise ValueError(f"X: dtype {X.dtype}: expected uint8 bit-packed input")
            X = np.unpackbits(X, axis=-1)
            if X.shape[-1] < n:
                raise ValueError(f"X: {X.shape[-1]} unpacked bits: expected at least {n}")
            X = X[..., :n]
            features_ndim = 1
        else:
            features_ndim = len(shape)
            if X.ndim < features_ndim or tuple(X.shape[X.ndim - features_ndim:]) != shape:
                raise ValueError(f"X: shape {X.shape}: expected (..., "
                                 f"{', '.join(map(str, shape))}) as fitted")
        batch = X.shape[:X.ndim - features_ndim]
        return X.reshape(int(np.prod(batch)), n), batch

    def _run(self, X, encoder_cls, decoder_cls, linear: bool):
        X, was_tensor = _to_numpy(X)
        encoder = encoder_cls() if inspect.isclass(encoder_cls) else encoder_cls
        encoded = encoder.transform(X)
        frames, batch = self._frames(encoded)
        if frames.shape[0] == 0:
            raise ValueError("X: no input vector: expected at least one")
        if linear:
            out = self.operator.linear_transform(frames)
        else:
            out = self.operator.transform(frames)
            if self.intensity_scale == "lightonml":
                out = out * np.float32(2.0 * self._traits[2] / self._max_n_features)
        out = np.asarray(out).reshape(*batch, self._n_components)
        if inspect.isclass(decoder_cls):
            decoder = (decoder_cls(**encoder.get_params()) if hasattr(encoder, "get_params")
                       else decoder_cls())
        else:
            decoder = decoder_cls
        out = decoder.transform(out)
        if linear:  # after the decoding, as lightonml
            if self._rescale == "variance":
                out = out / np.float32(math.sqrt(self._traits[2]))
            elif self._rescale == "norm":
                out = out / np.float32(math.sqrt(self._n_components))
        return _like_input(out, was_tensor)

    def transform(self, X, encoder_cls=NoEncoding, decoder_cls=NoDecoding):
        """Intensities ``|R x|^2`` of one input or a batch, float32 (``n_components`` last).

        Parameters
        ----------
        X
            Binary input(s) as fitted (after ``encoder_cls``), NumPy or torch.
        encoder_cls, decoder_cls
            A class (instantiated; the decoder with the encoder's ``get_params()``) or an
            instance; identity by default.
        """
        self._require_active()
        return self._run(X, encoder_cls, decoder_cls, linear=False)

    def linear_transform(self, X, encoder_cls=NoEncoding, decoder_cls=NoDecoding):
        """Linear projection ``M x`` of one input or a batch, scaled by ``rescale``.

        Binary input(s) as fitted after ``encoder_cls`` (real data: pass
        ``encoder_cls=SeparatedBitPlanEncoder, decoder_cls=SeparatedBitPlanDecoder``).
        Two device frames per binary frame (complement identity).
        """
        self._require_active()
        return self._run(X, encoder_cls, decoder_cls, linear=True)

    def _require_active(self) -> None:
        if self._traits is None:
            raise RuntimeError("Call fit1d or fit2d before transform")
        if self._device is None or not self._device.is_open:
            raise RuntimeError("OPU device isn't active, use opu.open() or \"with opu:\"")

    def fit_transform1d(self, X, packed: bool = False, **override):
        """``fit1d(X, packed=packed)`` then ``transform(X)``."""
        self.fit1d(X, None, packed, False, **override)
        return self.transform(X)

    def fit_transform2d(self, X, packed: bool = False, n_2d_features=None, **override):
        """``fit2d(X, n_2d_features, packed)`` then ``transform(X)``."""
        self.fit2d(X, n_2d_features, packed, False, **override)
        return self.transform(X)

    def transform1d(self, *args, **kwargs):
        raise RuntimeError("transform1d is deprecated, you must now use fit1d and transform")

    def transform2d(self, *args, **kwargs):
        raise RuntimeError("transform2d is deprecated, you must now use fit2d and transform")

    def __repr__(self) -> str:
        return (f"OPU(n_components={self._n_components}, max_n_features={self._max_n_features}, "
                f"device={self._device_spec if self._given_device is None else self._given_device!r}, "
                f"rescale={self._rescale!r}, intensity_scale={self.intensity_scale!r})")
