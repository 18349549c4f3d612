"""lightonml's ``encoding.base``: binary encoders of real data, and their decoders.

Same names, arguments, output layouts and meanings as lightonml 1.4.3 (plus its earlier
``MixingBitPlanDecoder``), NumPy or torch in, the same kind out. Unlike lightonml, every
input is validated as scikit-learn's ``check_array`` would (one error naming the
argument and what was expected): real numbers only, no NaN or infinity, no empty axis,
the number of dimensions each encoder works on, and settings checked at construction
(thresholds: non-empty, finite, 1-D or per column). Arithmetic on the data is done in
64-bit, so the extremes of every dtype encode right (int8 -128 is 128 below zero, not
an overflow).

Round trips (tests/test_lightonml_encoders.py checks them as Hypothesis properties):

* :class:`SeparatedBitPlanEncoder` then :class:`SeparatedBitPlanDecoder` on the planes
  themselves gives the data back exactly for integers whose magnitude on each side
  fits ``precision`` bits (every bool, int8 and uint8 value at ``precision=8``), and
  within half a quantization step, ``m / (2 (2**precision - 1))`` with ``m`` the largest
  magnitude of that sign, otherwise;
* :class:`ConcatenatedBitPlanEncoder` (all ``8 * itemsize`` bits), :class:`Float32Encoder`
  and :class:`ConcatenatedFloat32Encoder` (all 32 bits) write every bit of every value:
  packing them back gives the array bit for bit;
* :class:`SequentialBaseTwoEncoder`: each feature's block sums to its level,
  ``round((n_gray_levels - 1) (x - offset) / scale)``.
"""

from __future__ import annotations

import math
import numbers
import warnings

import numpy as np

from photon.support.arguments import check_array, check_bool, check_int

from .._common import NotReadyError, preserve_type, to_numpy

__all__ = ["BaseTransformer", "NoEncoding", "NoDecoding", "SeparatedBitPlanEncoder",
           "SeparatedBitPlanDecoder", "ConcatenatedBitPlanEncoder",
           "ConcatenatingBitPlanDecoder", "Float32Encoder", "ConcatenatedFloat32Encoder",
           "MixingBitPlanDecoder", "BinaryThresholdEncoder", "MultiThresholdEncoder",
           "SequentialBaseTwoEncoder"]

_SAMPLES = "(n_samples, n_features)"
_BATCH = "(n_samples, ...features) with at least one feature axis"


def _real(name: str, value, *, low: float = -math.inf, allow_inf: bool = False) -> float:
    """A real number argument (not a bool, not NaN), as a float."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
    if ok:
        value = float(value)
        ok = not math.isnan(value) and (allow_inf or math.isfinite(value)) and value >= low
    if not ok:
        bound = f" >= {low:g}" if low > -math.inf else ""
        raise ValueError(f"{name} = {value!r}: expected a finite number{bound}")
    return value


class BaseTransformer:
    """lightonml's base: ``fit`` is a no-op returning self, ``fit_transform`` chains."""

    def fit(self, X, y=None):
        """No-op (the scikit-learn API); returns self."""
        return self

    def transform(self, X):  # pragma: no cover - abstract
        raise NotImplementedError

    def fit_transform(self, X, y=None):
        """``fit(X, y).transform(X)``."""
        return self.fit(X, y).transform(X)

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({fields})"


class NoEncoding(BaseTransformer):
    """Identity encoder (lightonml's default ``encoder_cls``)."""

    def transform(self, X):
        """Return ``X`` unchanged."""
        return X


class NoDecoding(BaseTransformer):
    """Identity decoder (lightonml's default ``decoder_cls``)."""

    def transform(self, X):
        """Return ``X`` unchanged."""
        return X


# ---------------------------------------------------------------------- bit planes
class SeparatedBitPlanEncoder(BaseTransformer):
    """Bit planes of real data, positive and negative parts apart (lightonml's layout).

    Model: with ``m+`` and ``m-`` the largest positive and negative magnitudes of the
    batch (set at each :meth:`transform`, as lightonml does; for integers rounded up to
    ``(2**p - 1) 2**-s``, ``s = p - ceil(log2(max + 1))``, so that the levels are the
    integers themselves), ``q = round(x / m+ (2**p - 1))`` of the positive part is written
    in ``p = precision`` bits, most significant first; the negative part likewise. Rows:
    ``[positive: sample 0 bits 0..p-1, sample 1 ..., negative: ...]``, shape
    ``(sides * n_samples * precision, ...features)``, uint8, ``sides`` 2 when both parts
    have a magnitude (lightonml counts a signed integer side whose largest value is 0 as
    one). :meth:`get_params` gives :class:`SeparatedBitPlanDecoder` what it needs.

    Parameters
    ----------
    precision
        Bits per sign, 1..8.
    """

    def __init__(self, precision: int = 6, **kwargs):
        if "n_bits" in kwargs or "starting_bit" in kwargs:
            raise RuntimeError("Encoder interface has changed from n_bit to precision")
        if kwargs:
            raise TypeError(f"SeparatedBitPlanEncoder: unexpected argument(s) "
                            f"{', '.join(sorted(kwargs))}: expected precision")
        self.precision = check_int("precision", precision, 1, 8)
        self.magnitude = None, None

    def _int_magnitude(self, top: float) -> float:
        if top < 0:
            return 0.0
        shift = self.precision - math.ceil(math.log2(top + 1))
        return (2 ** self.precision - 1) * 0.5 ** shift

    @preserve_type
    def transform(self, X):
        """Bit planes of ``X`` (n_samples, ...features): uint8 (sides * n * precision, ...)."""
        X = check_array("X", X, min_ndim=2, what=_BATCH)
        kind = X.dtype.kind
        values = X.astype(np.float64)  # 64-bit: -(-128) is 128, not an int8 overflow
        if kind == "i":
            magnitude_p = self._int_magnitude(float(values.max()))
            magnitude_n = self._int_magnitude(float(-values.min()))
        elif kind in "ub":
            magnitude_p, magnitude_n = self._int_magnitude(float(values.max())), 0.0
        else:
            magnitude_p, magnitude_n = max(float(values.max()), 0.0), max(float(-values.min()),
                                                                          0.0)
        dequantization = (1 - 0.5 ** self.precision) * 2
        self.magnitude = magnitude_p / dequantization, magnitude_n / dequantization
        levels = 2 ** self.precision - 1

        def planes(unit):  # values in [0, 1] -> (n * precision, ...), MSB first
            q = np.floor(unit * levels + 0.5).astype(np.uint8)
            bits = np.unpackbits(q[:, None], axis=1, bitorder="big")[:, 8 - self.precision:]
            return bits.reshape(-1, *bits.shape[2:])

        positive = planes(np.clip(values / (magnitude_p or 1.0), 0, 1)) if magnitude_p > 0 \
            else None
        negative = planes(np.clip(-values / (magnitude_n or 1.0), 0, 1)) if magnitude_n > 0 \
            else None
        if positive is None and negative is None:  # all zeros: one side of empty planes
            return planes(np.zeros_like(values))
        if positive is None or negative is None:
            return positive if negative is None else negative
        return np.concatenate([positive, negative], 0)

    def get_params(self) -> dict:
        """``precision``, ``magnitude_p``, ``magnitude_n``: the decoder's arguments."""
        if self.magnitude[0] is None:
            raise NotReadyError("SeparatedBitPlanEncoder.get_params: no transform yet: the "
                                "magnitudes are set by transform(X)")
        return {"precision": self.precision, "magnitude_p": self.magnitude[0],
                "magnitude_n": self.magnitude[1]}


class SeparatedBitPlanDecoder(BaseTransformer):
    """Recombine projected bit planes: ``sum_k decay**k plane_k`` times the magnitudes.

    Parameters
    ----------
    precision, magnitude_p, magnitude_n
        From :meth:`SeparatedBitPlanEncoder.get_params` (magnitudes >= 0).
    decoding_decay
        Weight ratio of successive planes (0.5: binary).
    """

    def __init__(self, precision, magnitude_p=1, magnitude_n=0, decoding_decay=0.5):
        self.precision = check_int("precision", precision, 1, 64)
        self.magnitude_p = _real("magnitude_p", magnitude_p, low=0.0)
        self.magnitude_n = _real("magnitude_n", magnitude_n, low=0.0)
        self.decoding_decay = _real("decoding_decay", decoding_decay)

    @preserve_type
    def transform(self, X):
        """Decode (sides * n * precision, ...) planes or projections into (n, ...), float64."""
        X = check_array("X", X, min_ndim=2, what="(sides * n_samples * precision, ...)")
        sides = 2 if (self.magnitude_n > 0 and self.magnitude_p > 0) else 1
        rows = X.shape[0]
        if rows % (self.precision * sides):
            raise ValueError(f"X: shape {X.shape}: expected a multiple of precision * sides = "
                             f"{self.precision} * {sides} rows (the encoder's planes)")
        n = rows // (self.precision * sides)
        planes = X.reshape(sides, n, self.precision, *X.shape[1:]).astype(np.float64)
        decay = self.decoding_decay ** np.arange(self.precision, dtype=np.float64)
        parts = np.tensordot(decay, planes, axes=([0], [2]))  # (sides, n, ...)
        if self.magnitude_n <= 0:
            return parts[0] * self.magnitude_p
        if self.magnitude_p <= 0:
            return -parts[0] * self.magnitude_n
        return parts[0] * self.magnitude_p - parts[1] * self.magnitude_n


class ConcatenatedBitPlanEncoder(BaseTransformer):
    """The bits of integer data, concatenated along the features (lightonml's layout).

    Each value's bytes are read in memory order (little-endian) and each byte most
    significant bit first; ``n_bits`` bits from ``starting_bit`` are kept. Output
    ``(n_samples, n_features * n_bits)``, uint8, a feature's bits side by side.

    Parameters
    ----------
    n_bits
        Bits kept per value (>= 1); ``n_bits + starting_bit`` at most the dtype's width.
    starting_bit
        Bits skipped first (>= 0).
    """

    def __init__(self, n_bits=8, starting_bit=0):
        self.n_bits = check_int("n_bits", n_bits, 1)
        self.starting_bit = check_int("starting_bit", starting_bit, 0)

    @preserve_type
    def transform(self, X):
        """Concatenated bits of integer ``X`` (n_samples, n_features)."""
        X = check_array("X", X, ndim=2, kinds="biu", what=_SAMPLES)
        bitwidth = X.dtype.itemsize * 8
        if self.n_bits + self.starting_bit > bitwidth:
            raise ValueError(f"n_bits + starting_bit = {self.n_bits} + {self.starting_bit}: "
                             f"expected at most the {bitwidth} bits of X's dtype {X.dtype}")
        n, f = X.shape
        native = np.ascontiguousarray(X.astype(X.dtype.newbyteorder("="), copy=False))
        bits = np.unpackbits(native[:, :, None].view(np.uint8), axis=2)
        return bits[:, :, self.starting_bit:self.starting_bit + self.n_bits].reshape(
            n, f * self.n_bits)


class _PlaneDecoder(BaseTransformer):
    """Decoders of ``n_bits`` projected planes per sample, weighted ``decoding_decay**k``."""

    def __init__(self, n_bits=8, decoding_decay=0.5):
        self.n_bits = check_int("n_bits", n_bits, 1)
        self.decoding_decay = _real("decoding_decay", decoding_decay)

    def _planes(self, X) -> np.ndarray:
        """``X`` (n_samples * n_bits, n_out) checked, as (n_samples, n_bits, n_out)."""
        X = check_array("X", X, ndim=2, what="(n_samples * n_bits, n_out)")
        rows, n_out = X.shape
        if rows % self.n_bits:
            raise ValueError(f"X: shape {X.shape}: expected a multiple of n_bits = "
                             f"{self.n_bits} rows")
        return X.reshape(rows // self.n_bits, self.n_bits, n_out)


class ConcatenatingBitPlanDecoder(_PlaneDecoder):
    """Weight projected bit planes and concatenate them along the outputs (lightonml's).

    ``X`` (n_samples * n_bits, n_out), plane ``k`` of a sample weighted by
    ``decoding_decay**k``, becomes (n_samples, n_bits * n_out), float32.

    Parameters
    ----------
    n_bits
        Planes per sample (>= 1).
    decoding_decay
        Weight ratio of successive planes.
    """

    @preserve_type
    def transform(self, X):
        """(n_samples * n_bits, n_out) -> (n_samples, n_bits * n_out), float32."""
        planes = self._planes(X)
        decay = (self.decoding_decay ** np.arange(self.n_bits)).reshape(1, self.n_bits, 1)
        weighted = planes * decay
        return weighted.reshape(planes.shape[0], self.n_bits * planes.shape[2]).astype(np.float32)


class MixingBitPlanDecoder(_PlaneDecoder):
    """Recombine projected bit planes: ``sum_k decoding_decay**k plane_k`` (lightonml < 1.4).

    ``X`` (n_samples * n_bits, n_out) becomes (n_samples, n_out), float32.

    Parameters
    ----------
    n_bits
        Planes per sample (>= 1).
    decoding_decay
        Weight ratio of successive planes (0.5 for OPU outputs).
    """

    @preserve_type
    def transform(self, X):
        """(n_samples * n_bits, n_out) -> (n_samples, n_out), float32."""
        planes = self._planes(X).astype(np.float64)
        decay = self.decoding_decay ** np.arange(self.n_bits, dtype=np.float64)
        return np.einsum("npo,p->no", planes, decay).astype(np.float32)


class _Float32Bits(BaseTransformer):
    """The IEEE-754 bits of float32 data kept by sign, exponent and mantissa counts."""

    def __init__(self, sign_bit=True, exp_bits=8, mantissa_bits=23):
        self.sign_bit = check_bool("sign_bit", sign_bit)
        self.exp_bits = check_int("exp_bits", exp_bits, 0, 8)
        self.mantissa_bits = check_int("mantissa_bits", mantissa_bits, 0, 23)
        self.n_bits = int(self.sign_bit) + self.exp_bits + self.mantissa_bits
        if self.n_bits == 0:
            raise ValueError("sign_bit, exp_bits, mantissa_bits = False, 0, 0: expected at "
                             "least one bit kept")
        indices = list(range(1, self.exp_bits + 1)) + list(range(9, self.mantissa_bits + 9))
        self.indices = sorted(indices + ([0] if self.sign_bit else []))

    def _bits(self, X) -> np.ndarray:
        """(n_samples, n_features, 32) bits of each value, sign first (big-endian order)."""
        X = check_array("X", X, ndim=2, kinds="f", what=_SAMPLES)
        if X.dtype != np.float32:
            raise ValueError(f"X: dtype {X.dtype}: expected float32 ({type(self).__name__} "
                             "writes the float32 bits; cast with X.astype(np.float32))")
        big_endian = np.ascontiguousarray(X.astype(">f4"))
        return np.unpackbits(big_endian[:, :, None].view(np.uint8), axis=2)


class Float32Encoder(_Float32Bits):
    """Bit planes of float32 data: ``n_bits`` planes per sample (lightonml's layout).

    Output ``(n_samples * n_bits, n_features)``, uint8: for each sample the kept bits of
    its values, sign first, then exponent, then mantissa, one plane per bit.

    Parameters
    ----------
    sign_bit
        Keep the sign bit.
    exp_bits, mantissa_bits
        Exponent bits kept (0..8, most significant first) and mantissa bits (0..23).
    """

    @preserve_type
    def transform(self, X):
        """Planes of float32 ``X`` (n_samples, n_features): (n_samples * n_bits, n_features)."""
        bits = self._bits(X)
        n, f, _ = bits.shape
        return np.transpose(bits, (0, 2, 1))[:, self.indices, :].reshape(n * self.n_bits, f)


class ConcatenatedFloat32Encoder(_Float32Bits):
    """The kept float32 bits concatenated along the features: (n_samples, n_features * n_bits).

    Parameters
    ----------
    sign_bit, exp_bits, mantissa_bits
        As for :class:`Float32Encoder`.
    """

    @preserve_type
    def transform(self, X):
        """Bits of float32 ``X`` (n_samples, n_features), a feature's bits side by side."""
        bits = self._bits(X)
        n, f, _ = bits.shape
        return bits[:, :, self.indices].reshape(n, f * self.n_bits)


# ---------------------------------------------------------------------- thresholds
class BinaryThresholdEncoder(BaseTransformer):
    """``uint8(X > threshold_enc)`` (``<`` with ``greater_is_one=False``).

    Parameters
    ----------
    threshold_enc
        A finite number, or ``"auto"``: :meth:`fit` sets it to the median of each
        feature over the samples (an array, as lightonml does).
    greater_is_one
        True: above the threshold is 1; False: below is 1.
    """

    def __init__(self, threshold_enc="auto", greater_is_one=True):
        if not (isinstance(threshold_enc, str) and threshold_enc == "auto"):
            threshold_enc = _real("threshold_enc", threshold_enc) if not isinstance(
                threshold_enc, str) else None
            if threshold_enc is None:
                raise ValueError("threshold_enc: expected a finite number or 'auto'")
        self.threshold_enc = threshold_enc
        self.greater_is_one = check_bool("greater_is_one", greater_is_one)

    def fit(self, X, y=None):
        """Set an ``"auto"`` threshold to each feature's median over the samples of ``X``."""
        X = check_array("X", to_numpy(X)[0], min_ndim=1, what="(n_samples, ...)")
        if isinstance(self.threshold_enc, str):
            self.threshold_enc = np.median(X, axis=0)
        elif np.ndim(self.threshold_enc) == 0 and not X.min() <= self.threshold_enc <= X.max():
            warnings.warn(f"threshold_enc = {self.threshold_enc!r} is outside the data's range "
                          f"[{X.min()!r}, {X.max()!r}]: every bit will be the same",
                          UserWarning, stacklevel=2)
        return self

    @preserve_type
    def transform(self, X):
        """uint8 0/1 array of ``X``'s shape."""
        if isinstance(self.threshold_enc, str):
            raise NotReadyError("If threshold_enc is 'auto', fit must be called before "
                                "transform.")
        X = check_array("X", X, min_ndim=1, what="(n_samples, ...)")
        threshold = np.asarray(self.threshold_enc)
        if threshold.ndim and X.shape[1:] != threshold.shape:
            raise ValueError(f"X: shape {X.shape}: expected (n_samples, "
                             f"{', '.join(map(str, threshold.shape))}) as the data the "
                             "thresholds were fitted on")
        out = X > threshold if self.greater_is_one else X < threshold
        return out.astype(np.uint8)


class MultiThresholdEncoder(BaseTransformer):
    """``n_bins - 1`` thresholds per feature, their planes concatenated (lightonml's layout).

    Model: ``X_enc = [X > t_1 | X > t_2 | ... | X > t_{n_bins-1}]`` (blocks of
    ``n_features`` columns, one block per threshold), uint8 of shape
    ``(n_samples, n_features * (n_bins - 1))``.

    Parameters
    ----------
    thresholds
        A non-empty finite list or array, used as is: 1-D (shared by every feature) or
        2-D (n_features, n_bins - 1), one row per feature; or ``"linspace"`` (evenly
        spaced inside the data's range) or ``"quantiles"`` (the ``k / n_bins``
        quantiles, midpoint), set by :meth:`fit` (then an array, as lightonml does).
    n_bins
        Values a feature can take (``n_bins - 1`` thresholds, >= 2), for the fitted modes.
    columnwise
        One set of thresholds per feature (True) or one for all (False).
    """

    MODES = ("linspace", "quantiles")

    def __init__(self, thresholds="linspace", n_bins=8, columnwise=False):
        self.columnwise = check_bool("columnwise", columnwise)
        if isinstance(thresholds, str):
            if thresholds not in self.MODES:
                raise ValueError(f"thresholds = {thresholds!r}: expected a list, an array, "
                                 "'linspace' or 'quantiles'")
            self.n_bins = check_int("n_bins", n_bins, 2)
        else:
            thresholds = check_array("thresholds", thresholds, min_ndim=1,
                                     what="a non-empty 1-D list, or 2-D (n_features, "
                                          "n_bins - 1)").astype(np.float64)
            if thresholds.ndim > 2 or (self.columnwise and thresholds.ndim != 2):
                raise ValueError(f"thresholds: shape {thresholds.shape}: expected "
                                 + ("2-D (n_features, n_bins - 1) with columnwise=True"
                                    if self.columnwise else "1-D, or 2-D (n_features, "
                                    "n_bins - 1)"))
            self.n_bins = thresholds.shape[-1] + 1
        self.thresholds = thresholds

    def fit(self, X, y=None):
        """Set ``"linspace"`` or ``"quantiles"`` thresholds from ``X`` (n_samples, n_features)."""
        X = check_array("X", to_numpy(X)[0], ndim=2, what=_SAMPLES)
        if not isinstance(self.thresholds, str):
            return self
        mode, k = self.thresholds, self.n_bins

        def fitted(values):
            if mode == "linspace":
                return np.linspace(values.min(), values.max(), k + 1)[1:-1]
            return np.array([np.quantile(values, i / k, method="midpoint")
                             for i in range(1, k)])

        if self.columnwise:
            self.thresholds = np.stack([fitted(X[:, f]) for f in range(X.shape[1])]).astype(
                np.float32)
        else:
            self.thresholds = fitted(X)
        return self

    @preserve_type
    def transform(self, X):
        """uint8 (n_samples, n_features * (n_bins - 1)) of ``X`` (n_samples, n_features)."""
        if isinstance(self.thresholds, str):
            raise NotReadyError(f"thresholds = {self.thresholds!r}: call fit before transform")
        X = check_array("X", X, ndim=2, what=_SAMPLES)
        if self.thresholds.ndim == 2:
            if self.thresholds.shape[0] != X.shape[1]:
                raise ValueError(f"X: shape {X.shape}: expected {self.thresholds.shape[0]} "
                                 "features, one per row of the per-feature thresholds")
            thresholds = self.thresholds.T[:, None, :]
        else:
            thresholds = self.thresholds[:, None, None]
        planes = X[None, ...] > thresholds
        return np.concatenate(list(planes), axis=-1).astype(np.uint8)


class SequentialBaseTwoEncoder(BaseTransformer):
    """Levels in base two, each bit repeated by its weight (lightonml's layout).

    Model: :meth:`fit` sets ``offset = min(X)`` and ``scale = max(X) - offset``; a value
    becomes the level ``round((n_gray_levels - 1) (x - offset) / scale)`` (clipped to
    ``0 .. n_gray_levels - 1``; 0 for constant data), whose bit ``k`` (of ``log2
    n_gray_levels``, most significant first) is written ``2**(n-1-k)`` times: each
    feature's block of ``n_gray_levels - 1`` bits sums to its level. Output
    ``(n_samples, n_features * (n_gray_levels - 1))``, uint8.

    Parameters
    ----------
    n_gray_levels
        Levels, a power of two from 2 to 256.
    """

    def __init__(self, n_gray_levels=16):
        levels = check_int("n_gray_levels", n_gray_levels, 2, 256)
        if levels & (levels - 1):
            raise ValueError(f"n_gray_levels = {n_gray_levels!r}: expected a power of 2 "
                             "(2 .. 256)")
        self.n_gray_levels = levels
        self.n_bits = np.uint8(int(math.log2(levels)))
        self.n_bits_type = 8
        self.indices_axis_2 = np.arange(self.n_bits_type - self.n_bits, self.n_bits_type)
        self.offset = None
        self.scale = None

    def fit(self, X, y=None):
        """Set ``offset`` and ``scale`` from ``X`` (n_samples, n_features)."""
        X = check_array("X", to_numpy(X)[0], ndim=2, what=_SAMPLES).astype(np.float64)
        self.offset = float(X.min())
        self.scale = float(X.max() - self.offset)
        return self

    def normalize(self, X):
        """The levels of ``X``, uint8 in ``0 .. n_gray_levels - 1``."""
        if self.offset is None or self.scale is None:
            raise NotReadyError("You have to call fit on the training data before calling "
                                "transform.")
        values = (np.asarray(X, np.float64) - self.offset) * (self.n_gray_levels - 1)
        levels = np.round(values / self.scale) if self.scale > 0 else np.zeros_like(values)
        return np.clip(levels, 0, self.n_gray_levels - 1).astype(np.uint8)

    @preserve_type
    def transform(self, X):
        """uint8 (n_samples, n_features * (n_gray_levels - 1)) of ``X``."""
        X = check_array("X", X, ndim=2, what=_SAMPLES)
        n, f = X.shape
        levels = self.normalize(X)
        bits = np.unpackbits(levels[:, :, None], axis=2)[:, :, self.indices_axis_2]
        repeats = 2 ** np.arange(int(self.n_bits))[::-1]
        return np.repeat(bits, repeats, axis=2).reshape(n, f * (self.n_gray_levels - 1))
