"""The OPU operator: linearity, Gaussian statistics, encodings and frame cost."""

import math

import numpy as np
import pytest
from scipy import stats as sps

from devices import (OPU, BitPlaneEncoder, IdealDevice, NotFittedError, TernaryEncoder,
                     VirtualDevice, open_device)
from devices import registry
from tests.stats import Z

METHODS = [("complement", 0), ("anchor", 64)]


def _opu(method, n_in=256, n_out=1024, device="ideal", **kw):
    if device == "ideal":
        dev = open_device("ideal", n_in=n_in, n_out=n_out, seed=kw.pop("seed", 0))
    else:
        dev = open_device(device, n_in=n_in, n_out=n_out)
    n_anchor = dict(METHODS)[method] or None
    return OPU(dev, linear_method=method, n_anchor=n_anchor, **kw)


def _disjoint_pair(d, rng):
    x1 = np.zeros(d, np.uint8)
    x2 = np.zeros(d, np.uint8)
    x1[: d // 2] = rng.random(d // 2) < 0.5
    x2[d // 2:] = rng.random(d - d // 2) < 0.5
    return x1, x2


def _noise_free_device(kind):
    if kind == "ideal-backend":
        return open_device("ideal", n_in=256, n_out=1024)
    # The photon chain, noise off but imperfect optics: DMD leakage and a leaky polarizer
    # make the field affine rather than linear in the frame; the identities stay exact.
    return VirtualDevice("ideal", n_in=256, n_out=1024, dmd__contrast=100.0,
                         polarizer__extinction_ratio=20.0)


@pytest.mark.parametrize("method", ["complement", "anchor"])
@pytest.mark.parametrize("kind", ["ideal-backend", "virtual-noise-free"])
def test_linear_transform_is_linear_on_a_noise_free_device(method, kind):
    """f(x1) + f(x2) = f(x1 + x2) for disjoint supports, to float precision."""
    opu = OPU(_noise_free_device(kind), linear_method=method,
              n_anchor=dict(METHODS)[method] or None).fit(n_features=180)
    rng = np.random.default_rng(0)
    pairs = [_disjoint_pair(180, rng) for _ in range(6)]
    x1 = np.stack([p[0] for p in pairs])
    x2 = np.stack([p[1] for p in pairs])
    f = opu.linear_transform(np.concatenate([x1, x2, x1 + x2]))
    f1, f2, f12 = f[:6], f[6:12], f[12:]
    np.testing.assert_allclose(f1 + f2, f12, atol=2e-5 * np.abs(f12).max())


@pytest.mark.parametrize("method", ["complement", "anchor"])
def test_effective_matrix_entries_are_iid_standard_gaussian(method):
    n_out, d, probes = 2048, 160, 32
    opu = _opu(method, n_out=n_out, probe_frames=probes).fit(n_features=d)
    m = opu.effective_matrix().astype(np.float64)
    entries = m.ravel()
    # The output scale is fitted on probes/2 pair differences over n_out rows.
    scale_se = math.sqrt(2 / (probes // 2 * n_out) + 2 / entries.size)
    assert abs(entries.var() - 1.0) < Z * scale_se
    assert abs(entries.mean()) < Z / math.sqrt(entries.size)
    assert abs(sps.kurtosis(entries)) < Z * math.sqrt(24 / entries.size)  # Laplace would be 3
    # Rows are independent: sample correlation of two rows ~ N(0, 1/d).
    corr = np.corrcoef(m[:200])[np.triu_indices(200, 1)]
    assert np.abs(corr).max() < 5.5 / math.sqrt(d)
    # No row-sum constraint (the complement's mean component is drawn): a row's sum is
    # N(0, d), so the mean of sum^2 / d over the rows is 1 within its sampling error.
    sums2 = m.sum(axis=1) ** 2 / d
    assert abs(sums2.mean() - 1.0) < Z * math.sqrt(2 / n_out) + Z * scale_se
    assert opu.linear_identity_ == method


def test_complement_mean_zero_keeps_the_rows_summing_to_zero():
    """complement_mean="zero": M acts on deviations from the mean (the device's own M_c)."""
    d = 160
    opu = _opu("complement", n_out=512, complement_mean="zero").fit(n_features=d)
    m = opu.effective_matrix().astype(np.float64)
    assert np.abs(m.sum(axis=1)).max() < 1e-3 * math.sqrt(d)
    assert opu.linear_identity_ == "complement, rows summing to zero"
    drawn = _opu("complement", n_out=512).fit(n_features=d).effective_matrix()
    # Same device part: the two differ by a rank-one column along 1 / sqrt(d) only.
    difference = drawn.astype(np.float64) - m
    np.testing.assert_allclose(difference, difference[:, :1] * np.ones((1, d)),
                               atol=1e-4 * np.abs(m).max())


def test_pairwise_distances_are_preserved_within_johnson_lindenstrauss_bounds():
    n_out, d = 2048, 160
    opu = _opu("anchor", n_out=n_out).fit(n_features=d)
    rng = np.random.default_rng(5)
    x = (rng.random((24, d)) < 0.5).astype(np.uint8)
    y = opu.linear_transform(x).astype(np.float64)
    i, j = np.triu_indices(len(x), 1)
    ratio = ((y[i] - y[j]) ** 2).sum(axis=1) / (n_out * ((x[i].astype(float) - x[j]) ** 2).sum(axis=1))
    # |M z|^2 / (n_out |z|^2) is chi-square(n_out)/n_out: sd sqrt(2 / n_out), scale fitted to ~1 %.
    assert np.abs(ratio - 1).max() < Z * math.sqrt(2 / n_out) + 0.03


@pytest.mark.parametrize("method", ["complement", "anchor"])
def test_bit_plane_real_inputs_match_x_times_m_within_quantization(method):
    d = 100
    opu = _opu(method, n_out=256, encoder=BitPlaneEncoder(n_bits=6))
    rng = np.random.default_rng(7)
    x = rng.standard_normal((20, d))
    opu.fit(x)
    m = opu.effective_matrix().astype(np.float64)
    y = opu.linear_transform(x).astype(np.float64)
    # Decoding is exact for the quantized data (the projection is linear).
    np.testing.assert_allclose(y, opu.encoder.quantize(x) @ m.T, atol=1e-3 * np.abs(y).max())
    # Against the unquantized data, the error is bounded by the quantization step.
    bound = opu.encoder.quantization_step * np.abs(m).sum(axis=1)
    assert np.all(np.abs(y - x @ m.T) <= bound[None, :] + 1e-3 * np.abs(y).max())


@pytest.mark.parametrize("method", ["complement", "anchor"])
def test_linear_mode_costs_two_frames_per_input_plus_references_per_block(method):
    opu = _opu(method, n_out=128, batch_size=64).fit(n_features=100)
    device = opu.device
    before = device.frames_acquired
    n = 300
    opu.linear_transform((np.random.default_rng(0).random((n, 100)) < 0.5).astype(np.uint8))
    taken = device.frames_acquired - before
    blocks = math.ceil(n / 64)
    assert taken == 2 * n + 2 * blocks
    cost = opu.cost(n, "linear")
    assert cost.frames == taken and cost.reference_frames == 2 * blocks
    assert cost.seconds == pytest.approx(taken * device.frame_time_s)
    assert cost.joules == pytest.approx(cost.seconds * device.electrical_power_w)
    assert opu.cost(n, "intensity").frames == n


def test_ternary_errors_cost_two_planes():
    opu = _opu("complement", n_out=64, encoder=TernaryEncoder()).fit(
        np.random.default_rng(0).standard_normal((10, 30)))
    assert opu.cost(100, "linear").frames == 2 * 2 * 100 + 2 * math.ceil(200 / opu.batch_size)


def test_intensity_transform_is_rescaled_to_abs_r_x_squared():
    opu = _opu("complement", n_out=4096).fit(n_features=64)
    x = np.zeros((1, 64), np.uint8)
    x[0, :16] = 1
    y = opu.transform(x)
    # E[y] = (on inputs) / n_features with the standard rescaling; exponential speckle.
    assert y.mean() == pytest.approx(16 / 64, rel=Z / math.sqrt(4096))


def test_bad_input_is_refused_with_names_and_values():
    opu = _opu("complement", n_out=32)
    with pytest.raises(NotFittedError, match=r"OPU.transform: this OPU is not fitted yet"):
        opu.transform(np.zeros((1, 8), np.uint8))
    with pytest.raises(ValueError, match=r"n_features = 300: expected at most 256 inputs"):
        opu.fit(n_features=300)
    with pytest.raises(ValueError, match=r"n_features = 200: expected at most 192 inputs .*anchor"):
        _opu("anchor", n_out=32).fit(n_features=200)
    opu.fit(n_features=8)
    with pytest.raises(ValueError, match=r"X: shape \(1, 9\): expected \(n_samples, 8\)"):
        opu.transform(np.zeros((1, 9), np.uint8))
    with pytest.raises(ValueError, match=r"X: value 2 at index \(0, 1\): expected binary"):
        opu.transform(np.array([[0, 2, 0, 0, 0, 0, 0, 0]], np.uint8))
    with pytest.raises(ValueError, match=r"X: non-binary values \(e.g. 0.3\).*encoder"):
        opu.linear_transform(np.full((1, 8), 0.3))
    with pytest.raises(ValueError, match="linear_method = 'hologram'"):
        OPU(opu.device, linear_method="hologram")


def test_encoder_range_warning_keeps_the_result():
    opu = _opu("complement", n_out=32, encoder=BitPlaneEncoder(n_bits=4))
    opu.fit(np.random.default_rng(0).uniform(-1, 1, (10, 8)))
    with pytest.warns(RuntimeWarning, match="outside"):
        y = opu.linear_transform(np.full((2, 8), 3.0))
    assert np.all(np.isfinite(y))


def test_fit_shortens_the_exposure_until_the_all_on_frame_stays_linear():
    device = open_device("lab-bench", n_in=16, n_out=4096)  # exposure set for half-on frames
    before = device.exposure_us
    opu = OPU(device).fit(n_features=10)
    assert opu.exposure_us_ < before and device.exposure_us == opu.exposure_us_
    all_on = np.zeros((8, 16), np.uint8)
    all_on[:, :10] = 1
    saturated = (device.acquire(all_on) >= 255).mean()
    # The 8 repeats share one speckle: 4096 independent pixels, binomial error at p = 1e-3.
    assert saturated < 1e-3 + Z * math.sqrt(1e-3 / 4096)
    fixed = open_device("lab-bench", n_in=16, n_out=4096)
    with pytest.warns(RuntimeWarning, match=r"saturate at 255.0 when every used input is on"):
        OPU(fixed, auto_exposure=False).fit(n_features=10)
    assert fixed.exposure_us == before


def _reference_field_device(rows_to_cancel=(), rows_unbalanced=(), seed=5, n_in=10, n_out=200,
                            untrusted=None):
    from devices.calibrated import CalibratedDevice

    rng = np.random.default_rng(seed)
    tm = (rng.standard_normal((n_out, n_in))
          + 1j * rng.standard_normal((n_out, n_in))) / np.sqrt(2 * n_in)
    reference = 0.5 * (rng.standard_normal(n_out) + 1j * rng.standard_normal(n_out))
    for row in rows_unbalanced:
        # b = (3i - 1) R1 / 2: the complement's row map 2 Re(m* R), m = b + R 1 / 2 = 3i R 1 / 2,
        # is strong, but the reference response |R 1 + b|^2 - |b|^2 = 2 Re(m* R 1) is zero.
        reference[row] = (3j - 1) * tm[row].sum() / 2
    for row in rows_to_cancel:
        reference[row] = -tm[row].sum() / 2  # m = 0: the row's map is zero
    return CalibratedDevice(tm, reference_field=reference, gain=100.0, offset=2.0,
                            untrusted_outputs=untrusted)


def test_a_strong_row_with_no_reference_response_is_sized_by_what_it_does():
    # The old normalization divided by sqrt(f(1)): this row, strong but with f(1) = 0,
    # was clamped as weak and left about 10x too large.
    device = _reference_field_device(rows_unbalanced=[0])
    opu = OPU(device).fit(n_features=10)
    norms = np.linalg.norm(np.asarray(opu.effective_matrix(), np.float64), axis=1)
    assert opu.usable_outputs_[0]
    # Sized from 128 probes: a variance of 128 values is within ~13 % (2 sigma 25 %).
    assert 0.6 < norms[0] / np.median(norms) < 1.6
    # A reference field this strong breaks the f(1) model: every row sized by its probes.
    assert not opu._row_sizes.from_reference.any()
    assert opu.fit_frames_ == 12 + 2 * 128 + 2 * 2  # 32 probes, then 96 more (2 blocks)


def test_a_row_whose_map_is_zero_is_weak_and_not_amplified_on_a_noise_free_device():
    device = _reference_field_device(rows_to_cancel=[3])
    opu = OPU(device).fit(n_features=10)
    norms = np.linalg.norm(np.asarray(opu.effective_matrix(), np.float64), axis=1)
    assert not opu.usable_outputs_[3] and opu.weak_outputs_ >= 1
    # Scaled at most as a row a tenth the typical size would be: no amplified noise.
    assert norms[3] < 0.2 * np.median(norms)


def test_leakage_only_devices_keep_the_reference_normalization():
    # DMD leakage only: f(1) is proportional to each row's size; it is used (more
    # precise than the probes), as before, and no extra probe is shown.
    device = VirtualDevice("lab-bench", n_in=64, n_out=512)
    opu = OPU(device).fit(n_features=64)
    assert opu._row_sizes.from_reference.mean() > 0.95
    assert opu.fit_frames_ <= 12 + 2 * 32 + 2 + 8  # references, probes, exposure tries
    assert opu.weak_outputs_ <= 0.02 * 512


def test_untrusted_outputs_of_the_device_are_left_out_of_linear_mode():
    device = _reference_field_device(untrusted=[5, 7])
    opu = OPU(device).fit(n_features=10)
    assert list(opu.untrusted_outputs_) == [5, 7]
    assert not opu.usable_outputs_[[5, 7]].any()
    m = np.asarray(opu.effective_matrix())
    assert np.all(m[[5, 7]] == 0) and np.all(np.abs(m[[4, 6]]).sum(axis=1) > 0)
    assert opu.weak_outputs_ == int((~opu.usable_outputs_).sum()) - 2


def test_row_norms_use_the_reference_where_it_agrees_and_the_probes_elsewhere():
    from devices.linear import row_norms

    rng = np.random.default_rng(0)
    n_out, p, d = 400, 64, 100
    size2 = rng.exponential(1.0, n_out)                     # |m_j|^2, as with leakage only
    rows = rng.standard_normal((n_out, d)) * np.sqrt(size2)[:, None]
    probes = rng.random((p, d)) < 0.5
    outputs = (probes - 0.5) @ rows.T
    reference = 7.0 * size2                                 # f(1), in its own units
    sizes = row_norms(outputs, reference, np.zeros(n_out), n_inputs=d)
    assert sizes.from_reference.mean() > 0.95
    np.testing.assert_allclose(sizes.norm2[sizes.from_reference],
                               reference[sizes.from_reference])
    # A reference unrelated to the rows (a reference field): sized by the probes.
    scrambled = row_norms(outputs, rng.permutation(reference) - 2.0, np.zeros(n_out), n_inputs=d)
    assert not scrambled.from_reference.any()
    measured = scrambled.norm2 / np.median(scrambled.norm2)
    truth = (rows ** 2).sum(axis=1) / np.median((rows ** 2).sum(axis=1))
    # A variance of 64 values: relative error sqrt(2/63) = 18 %, 5 sigma.
    assert np.all(np.abs(np.log(measured / truth)) < Z * math.sqrt(2 / 63))
    # Noise: a row within it is weak; the noise's share is taken out of the others.
    noisy = row_norms(outputs + rng.standard_normal(outputs.shape), reference,
                      np.ones(n_out), n_inputs=d)
    assert np.array_equal(noisy.weak, noisy.norm2 < noisy.floor)
    assert noisy.weak.sum() <= 0.05 * n_out
    with pytest.raises(ValueError, match="probe_outputs: 1 frames: expected at least 2"):
        row_norms(outputs[:1], reference, np.zeros(n_out))


def test_row_sizes_are_continuous_across_the_agreement_tolerance():
    # A row whose probe variance drifts across the tolerance must not jump in size: the
    # old rule switched from the reference to the probes there, a gain step of
    # exp(3 relative / 2) (a 2.2x power step at n_inputs = 10, P = 32), which turned a
    # tiny leak or rounding into a large error on one row.
    from devices.linear import MODEL_SWITCH_Z, MODEL_TOLERANCE_Z, probe_weight, row_norms

    assert probe_weight(MODEL_TOLERANCE_Z) == 0.0 and probe_weight(MODEL_SWITCH_Z) == 1.0
    rng = np.random.default_rng(1)
    n_out, p, d = 300, 32, 10
    rows = rng.standard_normal((n_out, d))
    probes = rng.random((p, d)) < 0.5
    outputs = (probes - 0.5) @ rows.T
    signal = outputs.var(axis=0, ddof=1)
    relative = math.sqrt(2.0 / (p - 1) + 2.0 / (d - 1))
    sizes = []
    for z in np.linspace(2.0, 6.0, 81):         # row 0's disagreement, standard errors
        reference = signal.copy()
        reference[0] = signal[0] * math.exp(z * relative)
        norms = row_norms(outputs, reference, np.zeros(n_out), n_inputs=d)
        sizes.append(math.log(norms.norm2[0] / reference[0]))
        # Away from the edges the rule is what it was: the reference, or the probes alone.
        if z <= MODEL_TOLERANCE_Z:
            assert norms.from_reference[0] and norms.norm2[0] == reference[0]
        if z >= MODEL_SWITCH_Z:
            alpha = np.median(signal[1:] / reference[1:])
            assert norms.probe_weight[0] == 1.0
            assert norms.norm2[0] == pytest.approx(signal[0] / alpha, rel=1e-9)
    steps = np.abs(np.diff(sizes))
    # A step of 0.05 standard errors moves the log size by at most the smooth step's
    # largest slope over two standard errors (1.5 z / 2 + 1 <= 4.75 per standard error
    # at z <= 5): 0.24 relative. A switch would move it by 3 relative (1.6) at once.
    assert steps.max() <= 0.25 * relative
    assert sizes[-1] == pytest.approx(-6.0 * relative, abs=1e-9)


# ---------------------------------------------------------------------- estimator contract
def test_construction_stores_settings_and_opens_nothing(monkeypatch):
    device = IdealDevice(16, 32)  # closed
    opu = OPU(device, batch_size=8, seed=3)
    assert not device.is_open and device.frames_acquired == 0
    assert opu.device is device and opu.batch_size == 8 and opu.seed == 3
    assert not hasattr(opu, "device_") and not hasattr(opu, "n_features_in_")
    # A device given by name is built at fit, not at construction.
    built = []

    def factory(**options):
        built.append(options)
        return IdealDevice(**options)

    monkeypatch.setitem(registry._BACKENDS, "counting-ideal", factory)
    named = OPU("counting-ideal", device_options=dict(n_in=16, n_out=32))
    assert built == [] and "counting-ideal" in repr(named)
    with pytest.raises(NotFittedError, match=r"OPU.n_components: the device 'counting-ideal' is "
                                             r"built at fit"):
        named.n_components
    assert named.fit(n_features=10) is named
    assert built == [dict(n_in=16, n_out=32)] and named.device_.is_open
    assert named.device == "counting-ideal"  # the setting stays as given
    named.fit(n_features=12)  # a refit reuses the device it built
    assert len(built) == 1
    named.close()
    assert not named.device_.is_open
    named.fit(n_features=12)  # ... and reopens it
    assert named.device_.is_open and len(built) == 1
    # An unknown name is refused at construction (a cheap check: no device, no file).
    with pytest.raises(ValueError, match=r"device = 'no-such-opu': expected a backend .*ideal.*"
                                         r"a preset .*lab-bench.* or a YAML path"):
        OPU("no-such-opu")


def test_a_device_by_name_or_config_gives_the_same_operator_as_an_instance():
    from photon import load_preset

    x = (np.random.default_rng(1).random((5, 40)) < 0.5).astype(np.uint8)
    instance = OPU(open_device("ideal", n_in=64, n_out=96, seed=2)).fit(n_features=40)
    with OPU("ideal", device_options=dict(n_in=64, n_out=96, seed=2)).fit(n_features=40) as named:
        np.testing.assert_array_equal(named.linear_transform(x), instance.linear_transform(x))
    assert not named.device_.is_open  # the context manager closed it
    config = load_preset("lab-bench").replace(n_in=32, n_out=64)
    by_config = OPU(config).fit(n_features=20)
    by_name = OPU("lab-bench", device_options=dict(n_in=32, n_out=64)).fit(n_features=20)
    assert isinstance(by_config.device_, VirtualDevice)
    np.testing.assert_array_equal(by_config.effective_matrix(), by_name.effective_matrix())


def test_methods_before_fit_raise_not_fitted_naming_the_method():
    opu = OPU(IdealDevice(16, 32))
    x = np.zeros((2, 8), np.uint8)
    for call, name in ((lambda: opu.transform(x), "transform"),
                       (lambda: opu.linear_transform(x), "linear_transform"),
                       (opu.effective_matrix, "effective_matrix"),
                       (lambda: opu.device_, "device_")):
        with pytest.raises(NotFittedError, match=rf"OPU.{name}: this OPU is not fitted yet: call "
                                                 r"fit\(X\) or fit\(n_features=...\) first"):
            call()
    assert issubclass(NotFittedError, ValueError) and issubclass(NotFittedError, AttributeError)
    # Cost needs only the device's frame time and power: no fit for an instance.
    assert opu.cost(10, "intensity").frames == 10 and opu.n_components == 32
    # An encoder left unfitted by fit(n_features=...) is named at linear_transform.
    with_encoder = OPU(IdealDevice(16, 32), encoder=TernaryEncoder()).fit(n_features=8)
    with pytest.raises(NotFittedError, match=r"OPU.linear_transform: encoder = TernaryEncoder"
                                             r".* is not fitted"):
        with_encoder.linear_transform(np.full((1, 8), 0.3))


@pytest.mark.parametrize("encoder", [None, BitPlaneEncoder(n_bits=4, scale=1.0, signed=True)])
def test_fit_on_data_gives_the_same_operator_as_fit_on_the_feature_count(encoder):
    rng = np.random.default_rng(2)
    x = rng.uniform(-1, 1, (12, 40)) if encoder else (rng.random((12, 40)) < 0.5).astype(np.uint8)
    on_data = OPU(open_device("ideal", n_in=64, n_out=96), encoder=encoder).fit(x)
    on_count = OPU(open_device("ideal", n_in=64, n_out=96), encoder=encoder).fit(n_features=40)
    assert on_data.n_features_in_ == on_count.n_features_in_ == 40
    assert not hasattr(on_data, "n_features_")          # no former name
    np.testing.assert_array_equal(on_data.effective_matrix(), on_count.effective_matrix())
    np.testing.assert_array_equal(on_data.linear_transform(x), on_count.linear_transform(x))
    assert on_data.fit(x, n_features=40) is on_data  # both, when they agree


def test_fit_refuses_bad_arguments_by_name():
    opu = OPU(IdealDevice(16, 32))
    cases = [
        ((True,), {}, TypeError, r"X = True: expected an array \(n_samples, n_features\); to fit "
                                 r"without data, pass the feature count by keyword: "
                                 r"fit\(n_features=<positive integer>\)"),
        ((3,), {}, TypeError, r"X = 3: expected an array .*fit\(n_features=3\)"),
        ((np.int64(3),), {}, TypeError, r"fit\(n_features=3\)"),
        ((), {}, ValueError, r"fit: X = None and n_features = None: expected data X"),
        ((), {"n_features": 0}, ValueError, r"n_features = 0: expected a positive integer"),
        ((), {"n_features": 2.5}, ValueError, r"n_features = 2.5: expected a positive integer"),
        ((), {"n_features": True}, ValueError, r"n_features = True: expected a positive integer"),
        ((np.zeros(8),), {}, ValueError, r"X: shape \(8,\): expected a 2-D array"),
        ((np.zeros((0, 8)),), {}, ValueError, r"X: shape \(0, 8\): expected at least one sample"),
        ((np.array([[0.0, np.nan]]),), {}, ValueError,
         r"X: value nan at index \(0, 1\): expected finite values"),
        ((np.array([["a", "b"]]),), {}, ValueError, r"X: dtype <U1: expected real numbers"),
        ((np.zeros((2, 8)),), {"n_features": 9}, ValueError,
         r"n_features = 9: expected None or X's width, 8"),
        ((np.zeros((2, 17)),), {}, ValueError, r"X: shape \(2, 17\): expected at most 16 inputs"),
    ]
    for args, kwargs, error, message in cases:
        with pytest.raises(error, match=message):
            opu.fit(*args, **kwargs)
        assert not hasattr(opu, "n_features_in_")  # nothing was learned


def test_construction_refuses_bad_settings_by_name():
    device = IdealDevice(16, 32)
    cases = [
        (dict(device=3), TypeError, r"device = 3: expected an OPUDevice, a device name"),
        (dict(device_options=dict(n_in=4)), ValueError,
         r"device_options = \{'n_in': 4\}: expected None when device is an OPUDevice instance"),
        (dict(device="ideal", device_options=[1]), TypeError, r"device_options = \[1\]: expected"),
        (dict(linear_method="hologram"), ValueError,
         r"linear_method = 'hologram': expected one of 'complement', 'anchor'"),
        (dict(n_anchor=4), ValueError,
         r"n_anchor = 4: expected None with linear_method = 'complement'"),
        (dict(linear_method="anchor", n_anchor=0), ValueError,
         r"n_anchor = 0: expected a positive integer"),
        (dict(encoder="ternary"), TypeError, r"encoder = 'ternary': expected None or a "
                                             r"devices.Encoder"),
        (dict(batch_size=0), ValueError, r"batch_size = 0: expected a positive integer"),
        (dict(batch_size=True), ValueError, r"batch_size = True: expected a positive integer"),
        (dict(batch_size=2.5), ValueError, r"batch_size = 2.5: expected a positive integer"),
        (dict(rescale="log"), ValueError, r"rescale = 'log': expected one of 'standard', 'none'"),
        (dict(progress="yes"), ValueError, r"progress = 'yes': expected True or False or None"),
        (dict(auto_exposure=None), ValueError, r"auto_exposure = None: expected True or False"),
        (dict(probe_frames=1), ValueError, r"probe_frames = 1: expected an integer >= 2"),
        (dict(seed=-1), ValueError, r"seed = -1: expected a non-negative integer"),
        (dict(seed=None), ValueError, r"seed = None: expected a non-negative integer"),
    ]
    for settings, error, message in cases:
        settings = {"device": device, **settings}
        with pytest.raises(error, match=message):
            OPU(settings.pop("device"), **settings)
    assert not device.is_open
    with pytest.raises(ValueError, match=r"n_anchor = 16: expected 1 .. 15 inputs of the "
                                         r"16-input device"):
        OPU(device, linear_method="anchor", n_anchor=16).fit(n_features=4)  # known at fit


def test_refitting_on_the_same_data_is_idempotent():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((10, 30))
    opu = OPU(open_device("ideal", n_in=48, n_out=64), linear_method="anchor",
              encoder=TernaryEncoder()).fit(x)
    first, device = opu.linear_transform(x), opu.device_
    frames = opu.fit_frames_
    opu.fit(x)
    assert opu.device_ is device and opu.fit_frames_ == frames and opu.n_anchor_ == 12
    np.testing.assert_array_equal(opu.linear_transform(x), first)


def test_fit_frames_and_the_exposure_change_are_recorded():
    probes, batch = 6, 4
    device = open_device("ideal", n_in=16, n_out=32)
    opu = OPU(device, probe_frames=probes, batch_size=batch).fit(n_features=10)
    # No full scale: no saturation check; 12 reference frames and the probes in linear mode.
    expected = 12 + 2 * probes + 2 * math.ceil(probes / batch)
    assert opu.fit_frames_ == device.frames_acquired == expected
    assert opu.exposure_us_ is None and opu.initial_exposure_us_ is None
    assert "exposure_us_" in OPU.fit.__doc__ and "stays changed" in OPU.fit.__doc__
    # A saturating camera: construction leaves the exposure alone, fit shortens it and says so.
    lab = open_device("lab-bench", n_in=16, n_out=4096)
    before = lab.exposure_us
    opu = OPU(lab)
    assert lab.exposure_us == before and lab.frames_acquired == 0
    opu.fit(n_features=10)
    assert opu.initial_exposure_us_ == before and lab.exposure_us == opu.exposure_us_ < before
    tries, odd = divmod(opu.fit_frames_ - (12 + 2 * 32 + 2), 2)  # 2 frames per try
    assert odd == 0 and 1 <= tries <= 4


def test_fit_probes_the_device_on_the_data_backend():
    seen = []

    class Recording(IdealDevice):
        def _acquire(self, frames):
            seen.append(type(frames))
            return super()._acquire(frames)

    OPU(Recording(16, 32)).fit(np.zeros((3, 10)))
    assert seen and set(seen) == {np.ndarray}


def test_linear_transform_of_a_row_does_not_depend_on_the_other_rows():
    """Through a noise-free device each output row is computed alike in any batch."""
    from devices import BitPlaneEncoder

    rng = np.random.default_rng(12)
    x = rng.standard_normal((24, 20))
    opu = OPU(open_device("ideal", n_in=32, n_out=48, seed=2),
              encoder=BitPlaneEncoder(n_bits=4)).fit(x)
    full = opu.linear_transform(x)
    for rows in (slice(0, 1), slice(5, 6), slice(3, 11)):
        np.testing.assert_array_equal(opu.linear_transform(x[rows]), full[rows])
