"""lightonml's encoders and decoders here: round trips (Hypothesis) and check_array-style
validation of every input."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from devices.lightonml_compat.encoding.base import (
    BinaryThresholdEncoder, ConcatenatedBitPlanEncoder, ConcatenatedFloat32Encoder,
    ConcatenatingBitPlanDecoder, Float32Encoder, MixingBitPlanDecoder, MultiThresholdEncoder,
    NoDecoding, NoEncoding, SeparatedBitPlanDecoder, SeparatedBitPlanEncoder,
    SequentialBaseTwoEncoder)
from devices.lightonml_compat import NotReadyError

FAST = settings(max_examples=60, deadline=None)
SHAPES = hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=5)


def round_trip(X, precision):
    encoder = SeparatedBitPlanEncoder(precision)
    planes = encoder.transform(X)
    assert planes.dtype == np.uint8 and set(np.unique(planes)) <= {0, 1}
    return SeparatedBitPlanDecoder(**encoder.get_params()).transform(planes)


@FAST
@given(hnp.arrays(st.sampled_from([np.int8, np.uint8, np.bool_]), SHAPES))
def test_every_8_bit_and_boolean_value_round_trips_exactly(X):
    np.testing.assert_array_equal(round_trip(X, 8), X.astype(np.float64))


@FAST
@given(st.integers(1, 8).flatmap(lambda p: st.tuples(st.just(p), hnp.arrays(
    st.sampled_from([np.int16, np.int32, np.int64]), SHAPES,
    elements=st.integers(-(2 ** p - 1), 2 ** p - 1)))))
def test_integers_that_fit_the_precision_round_trip_exactly(case):
    precision, X = case
    np.testing.assert_array_equal(round_trip(X, precision), X.astype(np.float64))


def test_the_signed_extremes():
    X = np.array([[-128, 127, 0, -1, 1]], np.int8)
    np.testing.assert_array_equal(round_trip(X, 8), X)
    X = np.array([[np.iinfo(np.int64).min, np.iinfo(np.int64).max]], np.int64)
    decoded = round_trip(X, 8)  # quantized to 8 bits a side, but the right magnitudes
    np.testing.assert_allclose(decoded, X.astype(np.float64), rtol=1 / 255)


@FAST
@given(st.integers(1, 8), hnp.arrays(st.sampled_from([np.float32, np.float64]), SHAPES,
                                     elements=st.floats(-1e6, 1e6, width=32)))
def test_real_values_round_trip_within_half_a_step(precision, X):
    decoded = round_trip(X, precision)
    x = X.astype(np.float64)
    step = np.where(x >= 0, max(x.max(), 0), max(-x.min(), 0)) / (2 ** precision - 1)
    assert np.all(np.abs(decoded - x) <= step / 2 * (1 + 1e-9) + 1e-9 * np.abs(x).max())


@FAST
@given(hnp.arrays(st.sampled_from([np.uint8, np.int8, np.uint16, np.int16, np.uint32,
                                   np.int32, np.uint64, np.int64]), SHAPES))
def test_concatenated_bit_planes_hold_every_bit(X):
    width = 8 * X.dtype.itemsize
    bits = ConcatenatedBitPlanEncoder(n_bits=width).transform(X)
    assert bits.shape == (X.shape[0], X.shape[1] * width)
    packed = np.packbits(bits.reshape(X.shape[0], X.shape[1], width), axis=-1)
    np.testing.assert_array_equal(packed.view(X.dtype.newbyteorder("<")).reshape(X.shape), X)


@FAST
@given(hnp.arrays(np.float32, SHAPES, elements=st.floats(width=32, allow_nan=False,
                                                         allow_infinity=False)))
def test_float32_planes_hold_every_bit(X):
    n, f = X.shape
    planes = Float32Encoder().transform(X)  # (n * 32, f): sign, exponent, mantissa
    assert planes.shape == (n * 32, f)
    bits = planes.reshape(n, 32, f).transpose(0, 2, 1)
    packed = np.ascontiguousarray(np.packbits(bits, axis=-1))
    np.testing.assert_array_equal(packed.view(">f4").reshape(n, f), X)
    side_by_side = ConcatenatedFloat32Encoder().transform(X).reshape(n, f, 32)
    np.testing.assert_array_equal(side_by_side, bits)


@FAST
@given(st.sampled_from([2, 4, 16, 256]), hnp.arrays(np.float64, SHAPES,
                                                    elements=st.floats(-1e3, 1e3)))
def test_sequential_base_two_blocks_sum_to_the_level(levels, X):
    encoder = SequentialBaseTwoEncoder(levels).fit(X)
    code = encoder.transform(X).reshape(X.shape[0], X.shape[1], levels - 1)
    level = code.sum(axis=-1)
    scale = encoder.scale / (levels - 1)
    decoded = encoder.offset + level * scale
    assert np.all(np.abs(decoded - X) <= scale / 2 + 1e-9 * (1 + np.abs(X).max()))


@FAST
@given(hnp.arrays(np.float64, SHAPES, elements=st.floats(-10, 10)),
       st.lists(st.floats(-10, 10), min_size=1, max_size=4))
def test_threshold_codes_count_the_thresholds_below(X, thresholds):
    code = MultiThresholdEncoder(thresholds).transform(X)
    n, f = X.shape
    counts = code.reshape(n, len(thresholds), f).sum(axis=1)
    np.testing.assert_array_equal(counts, (X[..., None] > np.array(thresholds)).sum(-1))
    np.testing.assert_array_equal(BinaryThresholdEncoder(thresholds[0]).transform(X),
                                  X > thresholds[0])


@pytest.mark.parametrize("encoder", [
    SeparatedBitPlanEncoder(), ConcatenatedBitPlanEncoder(), Float32Encoder(),
    ConcatenatedFloat32Encoder(), BinaryThresholdEncoder(0.5), MultiThresholdEncoder([0.5]),
    SequentialBaseTwoEncoder().fit(np.eye(2))], ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("X, message", [
    (np.array([[1.0, np.nan]], np.float32), r"value nan at index \(0, 1\): expected finite"),
    (np.array([[np.inf, 1.0]], np.float32), r"value inf at index \(0, 0\): expected finite"),
    (np.zeros((0, 3), np.uint8), "no empty axis"),
    (np.array([["a", "b"]]), "expected real numbers"),
    (np.array([[1 + 2j]]), "expected real numbers"),
    ([[1, 2], [3]], "expected an array"),
], ids=["nan", "inf", "empty", "strings", "complex", "ragged"])
def test_bad_data_are_refused_by_name(encoder, X, message):
    if isinstance(encoder, ConcatenatedBitPlanEncoder) and isinstance(X, np.ndarray) \
            and X.dtype.kind == "f":
        message = "dtype float32: expected real numbers \\(booleans, signed integers"
    with pytest.raises(ValueError, match=message):
        encoder.transform(X)


@pytest.mark.parametrize("make, X, message", [
    (SeparatedBitPlanEncoder, np.ones(3), r"shape \(3,\): expected \(n_samples"),
    (ConcatenatedBitPlanEncoder, np.ones((2, 2)), "dtype float64: expected real numbers"),
    (lambda: ConcatenatedBitPlanEncoder(8, 4), np.ones((2, 2), np.uint8),
     "n_bits \\+ starting_bit = 8 \\+ 4: expected at most the 8 bits"),
    (Float32Encoder, np.ones((2, 2)), "dtype float64: expected float32"),
    (lambda: MultiThresholdEncoder([[0.1], [0.2]], columnwise=True), np.ones((2, 3)),
     "expected 2 features, one per row"),
    (lambda: BinaryThresholdEncoder().fit(np.ones((4, 3))), np.ones((2, 5)),
     r"expected \(n_samples, 3\) as the data the thresholds were fitted on"),
    (lambda: SeparatedBitPlanDecoder(4), np.ones((6, 2)), "multiple of precision \\* sides"),
    (lambda: MixingBitPlanDecoder(4), np.ones((6, 2)), "multiple of n_bits = 4"),
    (lambda: ConcatenatingBitPlanDecoder(4), np.ones((6, 2)), "multiple of n_bits = 4"),
])
def test_wrong_shapes_and_dtypes_are_refused_by_name(make, X, message):
    with pytest.raises(ValueError, match=message):
        make().transform(X)


@pytest.mark.parametrize("make, message", [
    (lambda: MultiThresholdEncoder([]), "thresholds: shape \\(0,\\)"),
    (lambda: MultiThresholdEncoder([0.1, np.nan]), "thresholds: value nan"),
    (lambda: MultiThresholdEncoder([[0.1, 0.2]] * 2 + [[0.3]]), "thresholds: expected an array"),
    (lambda: MultiThresholdEncoder(np.zeros((2, 2, 2))), "thresholds: shape \\(2, 2, 2\\)"),
    (lambda: MultiThresholdEncoder([0.1, 0.2], columnwise=True), "2-D .* columnwise=True"),
    (lambda: MultiThresholdEncoder("quantile"), "thresholds = 'quantile'"),
    (lambda: MultiThresholdEncoder(n_bins=1), "n_bins = 1"),
    (lambda: BinaryThresholdEncoder(float("nan")), "threshold_enc = nan"),
    (lambda: BinaryThresholdEncoder(True), "threshold_enc = True"),
    (lambda: BinaryThresholdEncoder("median"), "threshold_enc"),
    (lambda: SeparatedBitPlanEncoder(9), "precision = 9"),
    (lambda: SeparatedBitPlanEncoder(6, bits=3), "unexpected argument"),
    (lambda: SequentialBaseTwoEncoder(12), "power of 2"),
    (lambda: SequentialBaseTwoEncoder(512), "n_gray_levels = 512"),
    (lambda: Float32Encoder(exp_bits=9), "exp_bits = 9"),
    (lambda: Float32Encoder(False, 0, 0), "at least one bit"),
    (lambda: SeparatedBitPlanDecoder(4, magnitude_p=-1), "magnitude_p = -1"),
    (lambda: ConcatenatedBitPlanEncoder(0), "n_bits = 0"),
])
def test_bad_settings_are_refused_by_name(make, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make()


def test_lightonml_interface_change_and_not_ready_errors():
    with pytest.raises(RuntimeError, match="changed from n_bit to precision"):
        SeparatedBitPlanEncoder(n_bits=8)
    with pytest.raises(NotReadyError, match="fit must be called"):
        BinaryThresholdEncoder().transform(np.ones((2, 2)))
    with pytest.raises(AssertionError, match="call fit"):
        SequentialBaseTwoEncoder().transform(np.ones((2, 2)))
    with pytest.raises(NotReadyError, match="call fit before transform"):
        MultiThresholdEncoder("linspace").transform(np.ones((2, 2)))
    with pytest.raises(NotReadyError, match="no transform yet"):
        SeparatedBitPlanEncoder().get_params()


def test_fitted_thresholds_follow_lightonml():
    X = np.array([[0.0, 10.0], [1.0, 20.0], [2.0, 30.0], [3.0, 40.0]])
    shared = MultiThresholdEncoder("linspace", n_bins=4).fit(X)
    np.testing.assert_allclose(shared.thresholds, [10, 20, 30])
    assert shared.transform(X).shape == (4, 6)
    per_column = MultiThresholdEncoder("quantiles", n_bins=2, columnwise=True).fit(X)
    np.testing.assert_allclose(per_column.thresholds[:, 0], [1.5, 25.0])
    binar = BinaryThresholdEncoder().fit(X)
    np.testing.assert_array_equal(binar.transform(X), X > np.median(X, axis=0))
    with pytest.warns(UserWarning, match="outside the data's range"):
        BinaryThresholdEncoder(100).fit(X)
    constant = SequentialBaseTwoEncoder(4).fit(np.full((3, 2), 7.0))
    assert not constant.transform(np.full((3, 2), 7.0)).any()  # no division by zero
    images = np.random.default_rng(0).integers(0, 17, (5, 8, 8))  # any batch shape
    assert BinaryThresholdEncoder(6).transform(images).shape == (5, 8, 8)
    planes = SeparatedBitPlanEncoder(4).transform(images)  # a batch of 2-D inputs
    assert planes.shape == (5 * 4 * 2, 8, 8)


def test_tensors_in_tensors_out():
    torch = pytest.importorskip("torch")
    X = torch.tensor([[1.0, -2.0], [0.5, 3.0]])
    encoder = SeparatedBitPlanEncoder(8)
    planes = encoder.transform(X)
    assert isinstance(planes, torch.Tensor)
    decoded = SeparatedBitPlanDecoder(**encoder.get_params()).transform(planes)
    assert isinstance(decoded, torch.Tensor)
    torch.testing.assert_close(decoded.float(), X, atol=3 / 255, rtol=0)
    assert NoEncoding().transform(X) is X and NoDecoding().transform(X) is X
