"""Encoders of real-valued data into binary DMD frames, and their decoders.

Model
-----
A DMD shows binary frames only. An encoder turns real data ``X`` of shape
``(n_samples, n_features)`` into ``n_planes`` binary planes per sample and a vector of
plane weights, such that the value the planes represent is

    ``X_q = sum_p weights[p] * planes[:, p, :]``        (float64, no constant term)

``X_q`` is the quantized ``X``, in the units of ``X``. Because there is no offset term,
any map ``f`` that is linear in the frame (the operator's linear mode, ``f(x) = M x``)
decodes exactly: ``sum_p weights[p] * f(planes[:, p, :]) = X_q @ M.T``. Signed data are
split as ``x = x+ - x-`` with ``x+, x- >= 0``; each part has its own planes, and the
planes of ``x-`` carry negative weights.

Every scale is ONE global scale for all features (a per-feature scale would not be a
linear combination of planes with shared weights). Fitted scalars are Python floats.

The array backend follows the data: NumPy in, NumPy out; CuPy in, CuPy out. The
rounding decisions are taken in float64 so that the documented error bounds hold exactly;
the planes are uint8, and ``decode`` keeps float32 projections in float32.

Encoders
--------
``ThresholdEncoder``   one plane, ``x > threshold`` (a binarizer).
``ThermometerEncoder`` unary code of ``|x|`` on ``n_levels`` levels, per sign.
``BitPlaneEncoder``    binary digits of ``round(|x| / step)`` on ``n_bits`` bits, per sign.
``TernaryEncoder``     ``scale * sign(x) * (|x| > threshold)``: two planes.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from photon.support.arguments import check_bool, check_int, check_number
from photon.support.arrays import array_module

__all__ = [
    "Encoder",
    "ThresholdEncoder",
    "ThermometerEncoder",
    "BitPlaneEncoder",
    "TernaryEncoder",
]


def _index_of_first(mask, xp) -> tuple[int, ...]:
    """Index (a tuple of ints) of the first True entry of ``mask``."""
    flat = int(xp.argmax(mask.ravel()))
    return tuple(int(i) for i in np.unravel_index(flat, mask.shape))


class Encoder:
    """Base class: real data -> weighted binary planes, and back.

    Subclasses set the learned parameters in ``_fit`` and produce the planes in
    ``_encode``; this class validates the input, clips out-of-range data with a warning,
    combines planes and decodes projections. See the module docstring for the model.
    """

    def __init__(self):
        self._weights_ = None  # float64 ndarray, set when every parameter is known

    # ----------------------------------------------------------------- public API
    def fit(self, X):
        """Learn the encoder's parameters from ``X`` (n_samples, n_features); return self."""
        X, xp = self._check_X(X, "fit")
        if X.size == 0:
            raise ValueError(f"{self._name}.fit: X: shape {tuple(X.shape)}: expected at least "
                             "one value to fit")
        self._fit(X, xp)
        return self

    def encode(self, X):
        """Binary planes of ``X``: uint8 array (n_samples, n_planes, n_features) of 0/1.

        Data outside the fitted range are clipped to it, with a RuntimeWarning.
        """
        self._require_fitted("encode")
        X, xp = self._check_X(X, "encode")
        X = self._clip(X, xp)
        return self._encode(X, xp)

    def fit_encode(self, X):
        """``fit(X)`` then ``encode(X)``."""
        return self.fit(X).encode(X)

    def quantize(self, X):
        """The value the planes represent: ``einsum('p,spf->sf', weights, encode(X))``, float64."""
        planes = self.encode(X)
        xp = array_module(planes)
        return xp.einsum("p,spf->sf", xp.asarray(self.weights), planes.astype(xp.float64))

    def decode(self, Yp):
        """Recombine projected planes: ``sum_p weights[p] * Yp[:, p, :]``.

        Parameters
        ----------
        Yp
            Array (n_samples, n_planes, n_out): the projection of each plane (for a
            linear map ``M``, ``Yp[:, p, :] = planes[:, p, :] @ M.T``). float32 and
            complex64 stay in single precision; other dtypes are computed in float64
            (complex128 for complex).

        Returns
        -------
        Array (n_samples, n_out) on the backend of ``Yp``.
        """
        self._require_fitted("decode")
        xp = array_module(Yp)
        Yp = xp.asarray(Yp)
        expected = f"(n_samples, {self.n_planes}, n_out)"
        if Yp.ndim != 3 or Yp.shape[1] != self.n_planes:
            raise ValueError(f"{self._name}.decode: Yp: shape {tuple(Yp.shape)}: expected "
                             f"{expected}, one projection per plane")
        if Yp.dtype.kind not in "biufc":
            raise ValueError(f"{self._name}.decode: Yp: dtype {Yp.dtype}: expected numbers")
        if Yp.dtype in (np.float32, np.complex64, np.float64, np.complex128):
            dtype = Yp.dtype
        else:
            dtype = np.dtype(np.float64)
        weights = xp.asarray(self.weights, dtype=dtype.type(0).real.dtype)
        return xp.einsum("p,spo->so", weights, Yp.astype(dtype, copy=False))

    @property
    def weights(self) -> np.ndarray:
        """Plane weights (n_planes,), float64, in the units of ``X``."""
        self._require_fitted("weights")
        return self._weights_.copy()

    @property
    def n_planes(self) -> int:
        """Number of binary planes per sample."""
        self._require_fitted("n_planes")
        return int(self._weights_.size)

    @property
    def is_fitted(self) -> bool:
        """True when every parameter is known (learned in fit or given)."""
        return self._weights_ is not None

    @property
    def quantization_step(self) -> float:
        """Worst-case ``|X - X_q|`` for in-range data (see each encoder)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{self._name}({params})"

    # ------------------------------------------------------------------ internals
    @property
    def _name(self) -> str:
        return type(self).__name__

    def _params(self) -> dict:
        return {}

    def _require_fitted(self, what: str):
        if not self.is_fitted:
            raise RuntimeError(f"{self._name}: call fit(X) before {what}")

    def _check_X(self, X, method: str):
        """Return ``(X as float64, xp)`` after checking it is 2-D, real and finite."""
        xp = array_module(X)
        X = xp.asarray(X)
        where = f"{self._name}.{method}: X"
        if X.ndim != 2:
            raise ValueError(f"{where}: shape {tuple(X.shape)}: expected a 2-D array "
                             "(n_samples, n_features)")
        if X.dtype.kind not in "biuf":
            raise ValueError(f"{where}: dtype {X.dtype}: expected real numbers")
        X = X.astype(xp.float64, copy=False)
        if not bool(xp.isfinite(X).all()):
            bad = ~xp.isfinite(X)
            index = _index_of_first(bad, xp)
            raise ValueError(f"{where}: value {X[index].item()!r} at index {index}: expected "
                             "finite real values")
        return X, xp

    def _range(self):
        """The fitted range ``(low, high)`` of the data, or None when unbounded."""
        return None

    def _clip(self, X, xp):
        bounds = self._range()
        if bounds is None:
            return X
        low, high = bounds
        if X.size and (float(X.max()) > high or float(X.min()) < low):
            excess = xp.maximum(X - high, low - X)
            index = tuple(int(i) for i in np.unravel_index(int(xp.argmax(excess)), X.shape))
            warnings.warn(
                f"{self._name}.encode: X: value {X[index].item()!r} at index {index} is "
                f"outside the fitted range [{low!r}, {high!r}]: expected data within it; "
                "clipped to the range (refit, or pass a larger scale, to encode it)",
                RuntimeWarning, stacklevel=3)
            X = xp.clip(X, low, high)
        return X

    def _fit(self, X, xp):
        raise NotImplementedError

    def _encode(self, X, xp):
        raise NotImplementedError


class ThresholdEncoder(Encoder):
    """One binary plane: ``plane = (x > threshold)``; weight 1.0.

    A binarizer, not a quantizer: ``X_q`` is the 0/1 frame itself (dimensionless), so
    ``quantization_step`` is ``inf`` (no bound on ``|X - X_q|``). Any finite value is
    encoded; nothing is clipped.

    Parameters
    ----------
    threshold
        The cut, in the units of ``X``. None: ``fit`` sets it to the median of the
        fitted data. A negative threshold is allowed (the median of centred data may be
        negative); NaN and inf are refused.
    """

    def __init__(self, threshold: float | None = None):
        super().__init__()
        self.threshold = check_number("threshold", threshold, optional=True)
        self.threshold_ = self.threshold
        if self.threshold is not None:
            self._weights_ = np.ones(1)

    def _params(self):
        return {"threshold": self.threshold}

    def _fit(self, X, xp):
        if self.threshold is None:
            self.threshold_ = float(xp.median(X))
        self._weights_ = np.ones(1)

    def _encode(self, X, xp):
        return (X > self.threshold_).astype(xp.uint8)[:, None, :]

    @property
    def quantization_step(self) -> float:
        """``inf``: a binarizer does not bound ``|X - X_q|``."""
        return math.inf


class _ScaledEncoder(Encoder):
    """Shared by the thermometer and bit-plane encoders: global scale and sign handling.

    Planes are ``[positive planes..., negative planes...]``; the negative block exists
    when ``signed_`` is True and its weights are the positive weights negated.
    """

    def __init__(self, scale: float | None, signed: bool | None):
        super().__init__()
        self.scale = check_number("scale", scale, low=0.0, low_open=True, optional=True)
        self.signed = check_bool("signed", signed, optional=True, none_means="detected in fit")
        self.scale_ = self.scale
        self.signed_ = self.signed
        if self.scale_ is not None and self.signed_ is not None:
            self._set_weights()

    def _params(self):
        return {**self._own_params(), "scale": self.scale, "signed": self.signed}

    def _fit(self, X, xp):
        if self.scale is None:
            scale = float(xp.abs(X).max())
            if scale == 0.0:
                raise ValueError(f"{self._name}.fit: X: max |x| = 0.0: expected some non-zero "
                                 "value to learn the scale from (or pass scale=)")
            self.scale_ = scale
        if self.signed is None:
            self.signed_ = bool((X < 0).any())
        self._set_weights()

    def _set_weights(self):
        positive = self._unsigned_weights()
        self._weights_ = np.concatenate([positive, -positive]) if self.signed_ else positive

    def _range(self):
        return (-self.scale_ if self.signed_ else 0.0, self.scale_)

    def _encode(self, X, xp):
        parts = [xp.maximum(X, 0.0)]
        if self.signed_:
            parts.append(xp.maximum(-X, 0.0))
        n = self._n_unsigned
        planes = xp.empty((X.shape[0], n * len(parts), X.shape[1]), dtype=xp.uint8)
        for i, part in enumerate(parts):
            self._fill(part, planes[:, i * n:(i + 1) * n, :], xp)
        return planes


class ThermometerEncoder(_ScaledEncoder):
    """Unary (thermometer) code of ``|x|`` on ``n_levels`` levels, per sign.

    With ``step = scale / n_levels`` (``scale`` = max ``|x|`` of the fitted data), plane
    ``k`` (``k = 1..n_levels``) of the positive part is ``x+ >= (k - 1/2) * step`` with
    weight ``+step``; the negative part likewise on its own planes, weight ``-step``. The
    number of lit planes is ``|x| / step`` rounded to the nearest level (halves up), so

        ``X_q = sign(x) * step * round(|x| / step)``,  ``|X - X_q| <= step / 2``

    for in-range data (``|x| <= scale``); ``quantization_step = step / 2``.

    Parameters
    ----------
    n_levels
        Levels per sign (>= 1).
    scale
        Full scale in the units of ``X`` (> 0). None: learned in fit as max ``|x|``.
    signed
        Whether negative planes exist. None: auto-detected in fit (True when the fitted
        data hold a negative value); then ``n_planes = 2 * n_levels`` if signed, else
        ``n_levels``. Data outside ``[-scale, scale]`` (``[0, scale]`` unsigned) are
        clipped with a RuntimeWarning.
    """

    def __init__(self, n_levels: int = 8, scale: float | None = None,
                 signed: bool | None = None):
        self.n_levels = check_int("n_levels", n_levels, 1)
        super().__init__(scale, signed)

    def _own_params(self):
        return {"n_levels": self.n_levels}

    @property
    def _n_unsigned(self):
        return self.n_levels

    @property
    def step(self) -> float:
        """Level spacing ``scale / n_levels``, in the units of ``X``."""
        self._require_fitted("step")
        return self.scale_ / self.n_levels

    def _unsigned_weights(self):
        return np.full(self.n_levels, self.scale_ / self.n_levels)

    def _fill(self, part, out, xp):
        step = self.scale_ / self.n_levels
        for k in range(1, self.n_levels + 1):
            out[:, k - 1, :] = part >= (k - 0.5) * step

    @property
    def quantization_step(self) -> float:
        """``step / 2 = scale / (2 n_levels)``."""
        return self.step / 2


class BitPlaneEncoder(_ScaledEncoder):
    """Binary digits of the rounded magnitude, per sign ("bit planes").

    With ``step = scale / (2**n_bits - 1)`` (``scale`` = max ``|x|`` of the fitted data),
    ``q = round(|x| / step)`` (halves up) is an integer in ``[0, 2**n_bits - 1]``; plane
    ``k`` (``k = 0..n_bits-1``, least significant first) is bit ``k`` of ``q`` with weight
    ``2**k * step``. The positive and negative parts have their own planes (negative
    weights for the latter), so

        ``X_q = sign(x) * step * q``,  ``|X - X_q| <= step / 2``

    for in-range data; ``quantization_step = step / 2``, halved by each extra bit.

    Parameters
    ----------
    n_bits
        Bits per sign, ``1 <= n_bits <= 16``.
    scale, signed
        As for ``ThermometerEncoder``.
    """

    def __init__(self, n_bits: int = 8, scale: float | None = None,
                 signed: bool | None = None):
        self.n_bits = check_int("n_bits", n_bits, 1, 16)
        super().__init__(scale, signed)

    def _own_params(self):
        return {"n_bits": self.n_bits}

    @property
    def _n_unsigned(self):
        return self.n_bits

    @property
    def step(self) -> float:
        """Value of the least significant bit, ``scale / (2**n_bits - 1)``."""
        self._require_fitted("step")
        return self.scale_ / (2 ** self.n_bits - 1)

    def _unsigned_weights(self):
        return 2.0 ** np.arange(self.n_bits) * (self.scale_ / (2 ** self.n_bits - 1))

    def _fill(self, part, out, xp):
        top = 2 ** self.n_bits - 1
        q = part / self.step
        q += 0.5
        xp.floor(q, out=q)
        xp.clip(q, 0, top, out=q)
        if self.n_bits <= 8 and xp is np:  # all the bits of a byte in one pass
            bits = np.unpackbits(q.astype(np.uint8)[:, None, :], axis=1, bitorder="little")
            out[...] = bits[:, :self.n_bits, :]
            return
        q = q.astype(xp.int32)
        for k in range(self.n_bits):
            out[:, k, :] = (q >> k) & 1

    @property
    def quantization_step(self) -> float:
        """``step / 2 = scale / (2 (2**n_bits - 1))``."""
        return self.step / 2


class TernaryEncoder(Encoder):
    """Ternary code ``X_q = scale * (+1 if x > t, -1 if x < -t, else 0)``: two planes.

    Planes: ``[x > t, x < -t]`` with weights ``(+scale, -scale)``.

    Defaults (learned in fit, the closed form of Ternary Weight Networks, Li & Liu 2016):
    ``t = 0.7 * mean |x|`` (``threshold_factor``), the usual approximation of the
    least-squares optimal threshold (``t ~ 0.56 rms`` for Gaussian data, e.g. a DFA error
    vector), and ``scale = mean |x|`` over the entries with ``|x| > t``, the least-squares
    optimal scale for that support. With no entry beyond ``t``, ``scale = t``.

    Any finite value is encoded (the code saturates by construction; nothing is clipped
    and nothing warns). For ``|x| <= r`` with ``r`` = max ``|x|`` of the fitted data,
    ``|X - X_q| <= max(t, scale - t, r - scale) = quantization_step``; ``inf`` when the
    encoder was never fitted (``threshold`` and ``scale`` both given).

    Parameters
    ----------
    threshold
        ``t >= 0`` in the units of ``X``, or None (fit).
    scale
        ``> 0`` in the units of ``X``, or None (fit).
    """

    threshold_factor = 0.7

    def __init__(self, threshold: float | None = None, scale: float | None = None):
        super().__init__()
        self.threshold = check_number("threshold", threshold, low=0.0, optional=True)
        self.scale = check_number("scale", scale, low=0.0, low_open=True, optional=True)
        self.threshold_, self.scale_, self.range_ = self.threshold, self.scale, math.inf
        if self.threshold is not None and self.scale is not None:
            self._weights_ = np.array([self.scale, -self.scale])

    def _params(self):
        return {"threshold": self.threshold, "scale": self.scale}

    def _fit(self, X, xp):
        magnitude = xp.abs(X)
        self.range_ = float(magnitude.max())
        if self.threshold is None:
            self.threshold_ = self.threshold_factor * float(magnitude.mean())
        if self.scale is None:
            beyond = magnitude[magnitude > self.threshold_]
            self.scale_ = float(beyond.mean()) if beyond.size else self.threshold_
        self._weights_ = np.array([self.scale_, -self.scale_])

    def _encode(self, X, xp):
        t = self.threshold_
        planes = xp.empty((X.shape[0], 2, X.shape[1]), xp.uint8)
        xp.greater(X, t, out=planes[:, 0].view(bool))
        xp.less(X, -t, out=planes[:, 1].view(bool))
        return planes

    @property
    def quantization_step(self) -> float:
        """``max(t, scale - t, r - scale)`` with ``r`` the fitted max ``|x|``."""
        self._require_fitted("quantization_step")
        t, s = self.threshold_, self.scale_
        return max(t, s - t, self.range_ - s)
