"""Encoders of real data into binary planes: exact plane sums, error bounds, linear decoding."""

import numpy as np
import pytest

from devices.encoders import (BitPlaneEncoder, Encoder, TernaryEncoder, ThermometerEncoder,
                              ThresholdEncoder)

ENCODERS = {
    "threshold": lambda: ThresholdEncoder(),
    "thermometer": lambda: ThermometerEncoder(n_levels=6),
    "bitplane": lambda: BitPlaneEncoder(n_bits=5),
    "ternary": lambda: TernaryEncoder(),
}
N_PLANES_SIGNED = {"threshold": 1, "thermometer": 12, "bitplane": 10, "ternary": 2}


def _data(seed=0, shape=(40, 30)):
    return np.random.default_rng(seed).normal(0.3, 1.5, shape)


def _reference_quantize(name, enc, X):
    """X_q from each encoder's documented closed form, computed independently of its planes."""
    if name == "threshold":
        return (X > enc.threshold_).astype(float)
    if name == "thermometer":
        return np.sign(X) * enc.step * np.floor(np.abs(X) / enc.step + 0.5)
    if name == "bitplane":
        return np.sign(X) * enc.step * np.floor(np.abs(X) / enc.step + 0.5)
    t = enc.threshold_
    return enc.scale_ * ((X > t).astype(float) - (X < -t))


@pytest.mark.parametrize("name", ENCODERS)
def test_planes_weights_quantize_and_decode(name):
    X = _data()
    enc = ENCODERS[name]().fit(X)
    planes = enc.encode(X)
    assert isinstance(planes, np.ndarray) and planes.dtype == np.uint8
    assert planes.shape == (40, N_PLANES_SIGNED[name], 30) == (40, enc.n_planes, 30)
    assert set(np.unique(planes)) <= {0, 1} and planes.any()
    assert enc.weights.dtype == np.float64 and enc.weights.shape == (enc.n_planes,)

    Xq = enc.quantize(X)
    assert Xq.dtype == np.float64 and Xq.shape == X.shape
    np.testing.assert_array_equal(Xq, np.einsum("p,spf->sf", enc.weights, planes))
    np.testing.assert_allclose(Xq, _reference_quantize(name, enc, X), rtol=0, atol=1e-12)
    assert np.abs(X - Xq).max() <= enc.quantization_step + 1e-12

    # Linearity of decoding: project every plane with M, recombine, compare with X_q M^T.
    M = np.random.default_rng(1).normal(size=(17, 30))
    Yp = planes @ M.T                                   # (n_samples, n_planes, 17)
    np.testing.assert_allclose(enc.decode(Yp), Xq @ M.T, rtol=0, atol=1e-9)
    np.testing.assert_allclose(enc.decode(planes), Xq, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(enc.fit_encode(X), planes)


@pytest.mark.parametrize("cls, step", [
    (lambda: ThermometerEncoder(n_levels=4), 3.0 / 4),
    (lambda: BitPlaneEncoder(n_bits=3), 3.0 / 7),
])
def test_error_bound_is_half_a_step_and_attained(cls, step):
    X = np.linspace(-3.0, 3.0, 2001)[None, :]  # max |x| = 3: every level and midpoint crossed
    enc = cls().fit(X)
    assert enc.step == pytest.approx(step, rel=1e-15)
    assert enc.quantization_step == pytest.approx(step / 2, rel=1e-15)
    error = np.abs(X - enc.quantize(X)).max()
    assert step / 2 * 0.99 < error <= step / 2 + 1e-12
    # The extremes are represented exactly and the grid is symmetric.
    np.testing.assert_allclose(enc.quantize(np.array([[-3.0, 0.0, 3.0]])), [[-3.0, 0.0, 3.0]],
                               rtol=0, atol=1e-12)


def test_thermometer_plane_k_is_the_kth_level():
    enc = ThermometerEncoder(n_levels=4, scale=4.0, signed=True)  # step 1: levels at k - 1/2
    planes = enc.encode(np.array([[0.49, 0.5, 2.6, -1.5, -4.0]]))
    expected = np.array([
        [[0, 1, 1, 0, 0], [0, 0, 1, 0, 0], [0, 0, 1, 0, 0], [0, 0, 0, 0, 0],    # x+ planes
         [0, 0, 0, 1, 1], [0, 0, 0, 1, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1]]])  # x- planes
    np.testing.assert_array_equal(planes, expected)
    np.testing.assert_array_equal(enc.weights, [1, 1, 1, 1, -1, -1, -1, -1])


def test_bit_planes_are_the_binary_digits_least_significant_first():
    enc = BitPlaneEncoder(n_bits=4, scale=15.0, signed=True)  # step 1: q = |x|
    planes = enc.encode(np.array([[5.0, -6.0, 15.0]]))
    np.testing.assert_array_equal(planes[0, :4].T, [[1, 0, 1, 0], [0, 0, 0, 0], [1, 1, 1, 1]])
    np.testing.assert_array_equal(planes[0, 4:].T, [[0, 0, 0, 0], [0, 1, 1, 0], [0, 0, 0, 0]])
    np.testing.assert_array_equal(enc.weights, [1, 2, 4, 8, -1, -2, -4, -8])


def test_bit_plane_error_halves_per_extra_bit():
    X = _data(seed=3, shape=(200, 50))
    errors = {}
    for n_bits in (4, 8):
        enc = BitPlaneEncoder(n_bits=n_bits).fit(X)
        errors[n_bits] = np.abs(X - enc.quantize(X)).max()
        assert errors[n_bits] <= enc.quantization_step + 1e-12
        assert enc.quantization_step == pytest.approx(np.abs(X).max() / (2 * (2**n_bits - 1)))
    # Four more bits: the error falls by about 2**4 (the bound's ratio is 255 / 15 = 17).
    assert 8 < errors[4] / errors[8] < 34


def test_signed_is_detected_in_fit_and_can_be_forced():
    X = np.abs(_data())
    enc = BitPlaneEncoder(n_bits=6).fit(X)
    assert enc.signed_ is False and enc.n_planes == 6 and (enc.weights > 0).all()
    assert BitPlaneEncoder(n_bits=6, signed=True).fit(X).n_planes == 12
    assert ThermometerEncoder(n_levels=3).fit(-X).n_planes == 6
    with pytest.warns(RuntimeWarning, match=r"value -0\.5 at index \(0, 1\).*range \[0\.0, "):
        Xq = enc.quantize(np.array([[0.1, -0.5]]))
    assert Xq[0, 1] == 0.0  # clipped to the unsigned range


def test_threshold_encoder_median_and_explicit_threshold():
    X = np.arange(12.0).reshape(3, 4)
    enc = ThresholdEncoder().fit(X)
    assert enc.threshold_ == 5.5 and isinstance(enc.threshold_, float)
    assert enc.quantize(X).sum() == 6 and np.isinf(enc.quantization_step)
    fixed = ThresholdEncoder(threshold=-1.0)  # usable without fit; negative cut allowed
    np.testing.assert_array_equal(fixed.encode(np.array([[-2.0, -1.0, 0.0]]))[:, 0], [[0, 0, 1]])


def test_ternary_default_threshold_and_least_squares_scale():
    X = _data(seed=4, shape=(64, 100))
    enc = TernaryEncoder().fit(X)
    magnitude = np.abs(X)
    assert enc.threshold_ == pytest.approx(0.7 * magnitude.mean(), rel=1e-12)
    support = magnitude > enc.threshold_
    assert enc.scale_ == pytest.approx(magnitude[support].mean(), rel=1e-12)

    # The scale minimizes ||X - a T||^2 over a for the ternary support T: closed form and grid.
    T = enc.quantize(X) / enc.scale_
    assert enc.scale_ == pytest.approx((X * T).sum() / (T * T).sum(), rel=1e-12)
    grid = enc.scale_ * np.linspace(0.8, 1.2, 4001)
    losses = [((X - a * T) ** 2).sum() for a in grid]
    assert abs(grid[int(np.argmin(losses))] - enc.scale_) <= grid[1] - grid[0]

    # The documented bound: max(t, scale - t, r - scale), attained by the worst entry.
    bound = max(enc.threshold_, enc.scale_ - enc.threshold_, magnitude.max() - enc.scale_)
    assert enc.quantization_step == pytest.approx(bound)
    assert 0.99 * bound < np.abs(X - enc.quantize(X)).max() <= bound + 1e-12


def test_ternary_explicit_parameters_need_no_fit_and_never_clip():
    enc = TernaryEncoder(threshold=0.5, scale=2.0)
    assert enc.is_fitted and np.isinf(enc.quantization_step)
    np.testing.assert_array_equal(enc.quantize(np.array([[0.4, 0.5, 0.6, -9.0, -0.5]])),
                                  [[0.0, 0.0, 2.0, -2.0, 0.0]])  # strict: |x| = t gives 0
    # Fitting records the range only: bound max(t, scale - t, r - scale) = scale - t here.
    X = np.array([[0.5 + 1e-9, -2.5, 0.0]])
    enc.fit(X)
    assert (enc.threshold_, enc.scale_, enc.quantization_step) == (0.5, 2.0, 1.5)
    assert np.abs(X - enc.quantize(X)).max() == pytest.approx(1.5, abs=1e-8)
    zero = TernaryEncoder().fit(np.zeros((2, 3)))  # an all-zero error: no crash, no plane lit
    assert zero.threshold_ == 0.0 and not zero.encode(np.zeros((2, 3))).any()


@pytest.mark.parametrize("cls", [ThermometerEncoder, BitPlaneEncoder])
def test_out_of_range_data_warn_and_clip(cls):
    enc = cls().fit(np.array([[-2.0, 1.0], [0.5, 2.0]]))
    X = np.array([[1.0, 2.5], [-7.0, 0.0]])
    with pytest.warns(RuntimeWarning, match=r"value -7\.0 at index \(1, 0\) is outside the "
                                            r"fitted range \[-2\.0, 2\.0\]"):
        Xq = enc.quantize(X)
    np.testing.assert_allclose([Xq[0, 1], Xq[1, 0]], [2.0, -2.0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(Xq, enc.quantize(np.clip(X, -2, 2)), atol=0)


@pytest.mark.parametrize("name", ENCODERS)
@pytest.mark.parametrize("bad, value", [(np.nan, "nan"), (np.inf, "inf"), (-np.inf, "-inf")])
def test_non_finite_data_are_refused_with_the_index(name, bad, value):
    X = _data()
    X[2, 5] = bad
    with pytest.raises(ValueError, match=rf"{type(ENCODERS[name]()).__name__}\.fit: X: value "
                                         rf"{value} at index \(2, 5\): expected finite"):
        ENCODERS[name]().fit(X)
    enc = ENCODERS[name]().fit(_data())
    with pytest.raises(ValueError, match=rf"encode: X: value {value} at index \(2, 5\)"):
        enc.encode(X)


@pytest.mark.parametrize("name", ENCODERS)
def test_wrong_shapes_are_refused(name):
    enc = ENCODERS[name]()
    with pytest.raises(ValueError, match=r"fit: X: shape \(30,\): expected a 2-D array"):
        enc.fit(np.ones(30))
    enc.fit(_data())
    with pytest.raises(ValueError, match=r"X: dtype complex128: expected real"):
        enc.encode(np.ones((2, 3), complex))
    n = enc.n_planes
    with pytest.raises(ValueError, match=rf"decode: Yp: shape \(4, {n + 1}, 7\): "
                                         rf"expected \(n_samples, {n}, n_out\)"):
        enc.decode(np.zeros((4, n + 1, 7)))
    with pytest.raises(ValueError, match=r"Yp: shape \(4, 7\)"):
        enc.decode(np.zeros((4, 7)))


@pytest.mark.parametrize("name", ENCODERS)
def test_unfitted_encoder_refuses_to_work(name):
    enc = ENCODERS[name]()
    for call in (lambda: enc.encode(_data()), lambda: enc.quantize(_data()),
                 lambda: enc.weights, lambda: enc.decode(np.zeros((1, 2, 3)))):
        with pytest.raises(RuntimeError, match=rf"{type(enc).__name__}: call fit\(X\) before"):
            call()


@pytest.mark.parametrize("make, argument, value", [
    (lambda: BitPlaneEncoder(n_bits=0), "n_bits", "0"),
    (lambda: BitPlaneEncoder(n_bits=17), "n_bits", "17"),
    (lambda: BitPlaneEncoder(n_bits=4.0), "n_bits", "4.0"),
    (lambda: ThermometerEncoder(n_levels=0), "n_levels", "0"),
    (lambda: ThermometerEncoder(scale=-1.0), "scale", "-1.0"),
    (lambda: ThermometerEncoder(signed="yes"), "signed", "'yes'"),
    (lambda: TernaryEncoder(threshold=-0.1), "threshold", "-0.1"),
    (lambda: TernaryEncoder(scale=0.0), "scale", "0.0"),
    (lambda: ThresholdEncoder(threshold=float("nan")), "threshold", "nan"),
])
def test_bad_constructor_arguments_name_the_argument(make, argument, value):
    with pytest.raises(ValueError, match=rf"^{argument} = {value}: expected"):
        make()


def test_all_zero_data_cannot_set_a_scale():
    with pytest.raises(ValueError, match=r"BitPlaneEncoder\.fit: X: max \|x\| = 0\.0"):
        BitPlaneEncoder().fit(np.zeros((3, 4)))


def test_float32_projections_decode_in_float32():
    X = _data()
    enc = BitPlaneEncoder(n_bits=8).fit(X)
    M = np.random.default_rng(2).normal(size=(9, 30)).astype(np.float32)
    Y = enc.decode(enc.encode(X) @ M.T)
    assert Y.dtype == np.float32
    np.testing.assert_allclose(Y, enc.quantize(X) @ M.T, rtol=1e-4, atol=1e-4)
    assert isinstance(enc.scale_, float) and issubclass(BitPlaneEncoder, Encoder)


@pytest.mark.gpu
@pytest.mark.parametrize("name", ENCODERS)
def test_cupy_in_cupy_out_with_the_same_planes(name):
    import cupy

    X = _data()
    host = ENCODERS[name]().fit(X)
    enc = ENCODERS[name]().fit(cupy.asarray(X))
    planes = enc.encode(cupy.asarray(X))
    assert isinstance(planes, cupy.ndarray) and planes.dtype == cupy.uint8
    np.testing.assert_array_equal(cupy.asnumpy(planes), host.encode(X))
    Xq = enc.quantize(cupy.asarray(X))
    assert isinstance(Xq, cupy.ndarray)
    np.testing.assert_allclose(cupy.asnumpy(Xq), host.quantize(X), rtol=0, atol=1e-12)
    Y = enc.decode(cupy.asarray(planes, dtype=cupy.float32))
    assert isinstance(Y, cupy.ndarray) and Y.dtype == cupy.float32
