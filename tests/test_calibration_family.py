"""Calibration and linear mode on devices unlike the shipped presets.

A family of devices, each differing from the presets in one way a real device may:
a fixed reference field comparable to the signal, a correlated medium (speckle grain of
2 pixels and neighbouring mirrors blurred together on a 2-D DMD region), 10-, 12- and
16-bit cameras, a full well that fills below the ADC's top, saturation concentrated on
bright pixels, slow drift, 64 inputs onto 512 outputs; and devices written here straight
against the ``OPUDevice`` protocol (their own TM, light and camera, nothing shared with
``photon``; one of them correlated in its own way), so that the estimator is not only
tuned to the project's own simulator.

Targets (each device, at most 40 frames per input): intensity r >= 0.98 on fresh frames,
TM row correlation 5th percentile >= 0.98 (over the rows the calibration trusts; the
others are named), black offset within 0.1 DN, read noise within 5 %, gain within 3 %.
The camera's statistical error at these sizes is below a third of each tolerance (about
0.7 % for the gain with 64 repeats over 256 pixels and four exposures).
"""

import math
import warnings

import numpy as np
import pytest

from calibration import calibrate, estimate_camera, row_correlation
from devices import OPU, OPUDevice, VirtualDevice
from photon import resolve_config
from tests.stats import Z

BASE_EXPOSURE_US = resolve_config("lab-bench").camera.exposure_us
#: Exposure giving about 1.5 % saturated calibration counts on the lab-bench optics.
SATURATING = 1.65 * BASE_EXPOSURE_US

FAMILY = {
    # Mirrors held on outside the used region: |b|^2 = 64/256 of the all-on intensity,
    # half a half-on frame's.
    "reference-field": dict(dmd__held_on_mirrors=64),
    # Grain of 2 pixels; mirrors blurred together (rms 0.9 mirror) on a DMD region 16
    # mirrors wide, so that neighbours are correlated across rows too. The blur passes
    # (1 + sum h^2) / 4 = 0.27 of the light on a half-on frame where independent mirrors
    # pass 0.5: the exposure doubles to keep the preset's counts.
    "correlated-tm": dict(medium__speckle_grain_px=2.0, medium__input_grain_mirrors=0.9,
                          dmd__cols=16, camera__exposure_us=2.0 * BASE_EXPOSURE_US),
    # 10 bits, the ADC's top reached before the well; about 1.5 % of counts saturated.
    "10-bit": dict(camera__adc_bits=10, camera__gain_dn_per_e=0.11,
                   camera__exposure_us=SATURATING),
    # 12 bits, the well fills at 10 ke- x 0.305 + 50 = 3100 DN, below the top (4095).
    "12-bit-well": dict(camera__adc_bits=12, camera__gain_dn_per_e=0.305,
                        camera__black_offset_dn=50.0, camera__read_noise_e=6.0,
                        camera__exposure_us=SATURATING),
    "16-bit": dict(camera__adc_bits=16, camera__gain_dn_per_e=2.0, camera__full_well_e=30000.0,
                   camera__read_noise_e=2.0, camera__black_offset_dn=100.0,
                   camera__exposure_us=2.5 * BASE_EXPOSURE_US),
    # Grain of 2 pixels and 8 bits: saturation gathers on a few bright pixels.
    "bright-pixels": dict(medium__speckle_grain_px=2.0, camera__exposure_us=SATURATING),
    "slow-drift": dict(medium__drift_time_s=600.0),
    "64-onto-512": dict(n_in=64, n_out=512),
}
FAST = ("reference-field", "correlated-tm", "12-bit-well", "slow-drift")


# ---------------------------------------------------------------------- an outside device
class ForeignOPU(OPUDevice):
    """An OPU written straight against the protocol, sharing nothing with ``photon``.

    Field ``E = b + K x`` with ``K`` i.i.d. complex Gaussian (variance ``1 / (2 n_in)``
    per part) and ``b`` a reference field plus a leak of the all-on field; photons
    Poisson with ``photons_per_us * exposure * |E|^2`` times a per-pixel response and a
    per-frame flicker; charge clipped at a full well that fills below the ADC's top;
    Gaussian read noise; gain, per-pixel offsets; rounded and clipped to 12 bits.
    ``shutter``: whether :meth:`acquire_dark` can block the light.
    """

    backend = "foreign"
    exposure_settable = True

    def __init__(self, n_in=128, n_out=192, *, seed=7, shutter=True, exposure_us=100.0,
                 photons_per_us=32.0, well_e=9000.0, gain=0.33, offset_dn=40.0, read_e=4.0,
                 bits=12, flicker=0.002, reference=0.35, leak=0.03):
        super().__init__("foreign")
        rng = np.random.default_rng(seed)
        self._n_in, self._n_out = n_in, n_out
        self.tm = (rng.standard_normal((n_out, n_in))
                   + 1j * rng.standard_normal((n_out, n_in))) / math.sqrt(2 * n_in)
        self.field0 = (reference * (rng.standard_normal(n_out) + 1j * rng.standard_normal(n_out))
                       / math.sqrt(2) + leak * self.tm.sum(axis=1))
        self.response = 1.0 + 0.01 * rng.standard_normal(n_out)
        self.offsets = offset_dn + 0.4 * rng.standard_normal(n_out)
        self.gain, self.read_e, self.well_e, self.bits = gain, read_e, well_e, bits
        self.photons_per_us, self.flicker = photons_per_us, flicker
        self.can_block_light = shutter
        self._exposure = float(exposure_us)
        self._noise = np.random.default_rng(seed + 1)

    n_in = property(lambda self: self._n_in)
    n_out = property(lambda self: self._n_out)
    frame_time_s = property(lambda self: 1e-3)
    electrical_power_w = property(lambda self: 10.0)
    full_scale = property(lambda self: float(2 ** self.bits - 1))
    exposure_us = property(lambda self: self._exposure, OPUDevice.exposure_us.fset)

    def _set_exposure_us(self, value):
        self._exposure = value

    @property
    def saturation_dn(self):
        """Noise-free count of a full well."""
        return self.gain * self.well_e + float(np.mean(self.offsets))

    def _read_out(self, electrons):
        electrons = np.minimum(electrons, self.well_e)
        electrons = electrons + self.read_e * self._noise.standard_normal(electrons.shape)
        counts = np.rint(self.gain * electrons + self.offsets)
        return np.clip(counts, 0, self.full_scale).astype(np.uint16)

    def _acquire(self, frames):
        field = np.asarray(frames, np.float64) @ self.tm.T + self.field0
        flicker = 1.0 + self.flicker * self._noise.standard_normal((field.shape[0], 1))
        mean = (self.photons_per_us * self._exposure * np.abs(field) ** 2 * self.response
                * flicker)
        return self._read_out(self._noise.poisson(mean).astype(np.float64))

    def _acquire_dark(self, n_frames):
        return self._read_out(np.zeros((n_frames, self.n_out)))


def _blur(n: int, width: int, sigma: float) -> np.ndarray:
    """``(n, sources)`` weights of a Gaussian blur (``sum h^2 = 1`` per item) of items laid
    ``width`` per row, over sources padded ``3 sigma`` beyond every edge (no wrap)."""
    pad = int(math.ceil(3 * sigma))
    rows = -(-n // width) + 2 * pad
    cols = width + 2 * pad
    t = np.arange(-pad, pad + 1)
    g = np.exp(-0.5 * (t / sigma) ** 2)
    g /= np.linalg.norm(g)
    weights = np.zeros((n, rows * cols))
    for i in range(n):
        r, c = divmod(i, width)
        patch = np.zeros((rows, cols))
        patch[r:r + 2 * pad + 1, c:c + 2 * pad + 1] = np.outer(g, g)
        weights[i] = patch.ravel()
    return weights


class CorrelatedForeignOPU(ForeignOPU):
    """:class:`ForeignOPU` on a correlated medium, written without ``photon``.

    Its TM is ``H_pixels G H_mirrors^T``: independent sources blurred over a 16-wide
    grid of pixels (rms ``grain_px``) and a 16-wide grid of mirrors (rms
    ``grain_mirrors``), each item keeping its variance; the fixed field is blurred over
    the pixels too. Everything is then scaled so that a half-on frame has the mean
    intensity of the uncorrelated device (the common field of correlated mirrors makes
    it brighter): an experimenter's exposure.
    """

    def __init__(self, n_in=256, n_out=256, *, grain_px=2.0, grain_mirrors=0.7, width=16,
                 seed=7, **options):
        super().__init__(n_in, n_out, seed=seed, **options)
        rng = np.random.default_rng(seed + 100)
        pixels, mirrors = _blur(n_out, width, grain_px), _blur(n_in, width, grain_mirrors)
        sources = (rng.standard_normal((pixels.shape[1], mirrors.shape[1]))
                   + 1j * rng.standard_normal((pixels.shape[1], mirrors.shape[1])))
        self.tm = pixels @ (sources / math.sqrt(2 * n_in)) @ mirrors.T
        reference = options.get("reference", 0.35)
        leak = options.get("leak", 0.03)
        fixed = pixels @ ((rng.standard_normal(pixels.shape[1])
                           + 1j * rng.standard_normal(pixels.shape[1])) / math.sqrt(2))
        self.field0 = reference * fixed + leak * self.tm.sum(axis=1)
        half_on = (np.random.default_rng(0).random((256, n_in)) < 0.5).astype(float)
        mean = np.mean(np.abs(half_on @ self.tm.T + self.field0) ** 2)
        scale = math.sqrt((0.5 + reference ** 2) / mean)
        self.tm *= scale
        self.field0 *= scale


def _lag_correlation(tm, lag: int) -> np.ndarray:
    """Per row: the correlation of TM entries ``lag`` inputs apart, the first half's inputs."""
    half = tm[:, :tm.shape[1] // 2]
    a, b = half[:, :-lag], half[:, lag:]
    return np.real((np.conj(a) * b).sum(1)) / np.sqrt((np.abs(a) ** 2).sum(1)
                                                      * (np.abs(b) ** 2).sum(1))


# ---------------------------------------------------------------------- helpers
def _family_device(name, **extra):
    options = dict(n_in=256, n_out=256)
    options.update(FAMILY[name])
    options.update(extra)
    return VirtualDevice("lab-bench", **options).open()


def _dark_truth(device):
    """The device's mean dark count: offset plus the mean DSNU and dark signal, DN."""
    cam = device.chain.camera
    _, dsnu = cam._fixed_patterns(np)
    electrons = (0.0 if dsnu is None else float(np.mean(dsnu))) + \
        cam.dark_current_e_per_s * cam.exposure_us * 1e-6
    return cam.black_offset_dn + cam.gain_dn_per_e * electrons


def _calibrate(device, **options):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = calibrate(device, progress=False, **options)
    return result, [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]


def _assert_targets(device, result, truth, warned, *, gain, read_noise_e, offset_dn):
    """The issue's targets for one device and its calibration."""
    assert result.frames <= 40 * device.n_in
    corr = row_correlation(result.tm.tm, truth)
    trusted = result.tm.trusted
    assert np.percentile(corr[trusted], 5) >= 0.98
    assert result.intensity_r >= 0.98  # every row, the untrusted ones' predictions too
    # Either every row meets the targets, or the rows the calibration could not fit are
    # few, named in one warning, and the others meet them.
    untrusted = result.tm.untrusted
    if untrusted.size == 0:
        assert result.intensity_r >= 0.98
    else:
        assert result.intensity_r_trusted >= 0.98
        assert untrusted.size <= 0.05 * device.n_out
        (message,) = [w for w in warned if "could not be calibrated" in w]
        assert all(str(int(row)) in message for row in untrusted[:20])
    cam = result.camera
    assert cam.black_offset_dn == pytest.approx(offset_dn, abs=0.1)
    assert cam.read_noise_e == pytest.approx(read_noise_e, rel=0.05)
    assert cam.gain_dn_per_e == pytest.approx(gain, rel=0.03)
    return corr


def _check_family(name, **calibrate_options):
    device = _family_device(name)
    if name == "slow-drift":  # away from the path's keyframe, where it drifts fastest
        device.chain.advance(0.5 * device.chain.medium.drift_time_s)
    start = device.chain.elapsed_s
    result, warned = _calibrate(device, **calibrate_options)
    truth = device.chain.medium.transmission_matrix()
    if name == "slow-drift":  # the TM half way through the calibration
        twin = VirtualDevice(device.chain.config)
        twin.chain.advance(start + 0.5 * (device.chain.elapsed_s - start))
        truth = twin.chain.medium.transmission_matrix()
    cam = device.chain.camera
    corr = _assert_targets(device, result, truth, warned, gain=cam.gain_dn_per_e,
                           read_noise_e=cam.read_noise_e, offset_dn=_dark_truth(device))
    return device, result, corr


# ---------------------------------------------------------------------- the family
@pytest.mark.parametrize("name", FAST)
def test_family_device_meets_the_targets(name):
    _check_family(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in FAMILY if n not in FAST])
def test_family_device_meets_the_targets_slow(name):
    _check_family(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["reference-field", "12-bit-well", "16-bit"])
def test_family_camera_without_a_shutter(name):
    """All-off frames are not dark: offset and read noise extrapolated to zero exposure."""
    device = _family_device(name)
    estimate = estimate_camera(device, dark="extrapolated")
    cam = device.chain.camera
    assert estimate.dark_method == "extrapolated"
    assert estimate.black_offset_dn == pytest.approx(_dark_truth(device), abs=0.1)
    assert estimate.read_noise_e == pytest.approx(cam.read_noise_e, rel=0.05)
    assert estimate.gain_dn_per_e == pytest.approx(cam.gain_dn_per_e, rel=0.03)


def test_all_off_frames_are_not_dark_but_extrapolation_removes_the_fixed_field():
    # A 12-bit camera behind a reference field: at 1/100 of the exposure the all-off
    # frames still carry about 3 DN of fixed field, which the old dark method kept.
    device = _family_device("reference-field", n_in=128, n_out=256, dmd__held_on_mirrors=32,
                            camera__adc_bits=12, camera__gain_dn_per_e=0.3,
                            camera__black_offset_dn=50.0, camera__read_noise_e=6.0)
    off = np.asarray(device.acquire(np.zeros((16, 128), np.uint8)), np.float64)
    dark = np.asarray(device.acquire_dark(16), np.float64)
    truth = _dark_truth(device)
    assert dark.mean() == pytest.approx(truth, abs=0.1)
    assert off.mean() > truth + 20  # the fixed field at the full exposure
    estimate = estimate_camera(device, dark="extrapolated")
    assert estimate.black_offset_dn == pytest.approx(truth, abs=0.1)
    assert estimate.read_noise_e == pytest.approx(6.0, rel=0.05)
    assert estimate.gain_dn_per_e == pytest.approx(0.3, rel=0.03)


def test_the_12_bit_well_is_found_below_the_adc_top():
    device, result, _ = _check_family("12-bit-well", exposure="keep")
    well_dn = 10_000 * 0.305 + 50.0
    assert result.camera.saturation_dn == pytest.approx(well_dn, abs=5.0)
    assert result.camera.saturation_e == pytest.approx(10_000, rel=0.03)
    assert result.tm.censor_dn < well_dn < device.full_scale
    assert result.tm.saturated_fraction > 0.005  # found, not taken as 0 at the ADC top
    # Rows with up to 10 % of their counts saturated still calibrate.
    heavy = (result.tm.row_censored > 0.03) & (result.tm.row_censored <= 0.10)
    assert heavy.any()
    corr = row_correlation(result.tm.tm, device.chain.medium.transmission_matrix())
    assert np.all(corr[heavy & result.tm.trusted] >= 0.95)


def test_no_row_ends_with_one_half_conjugated_under_drift():
    device, result, corr = _check_family("slow-drift")
    truth = device.chain.medium.transmission_matrix()  # now, after the calibration
    half = device.n_in // 2
    halves = [row_correlation(result.tm.tm[:, s], truth[:, s])
              for s in (slice(0, half), slice(half, None))]
    both_good = (halves[0] > 0.95) & (halves[1] > 0.95)
    # A conjugated half gives a whole-row correlation near 0.5 with both halves at 0.99.
    assert np.all(corr[both_good] > 0.9)
    assert result.tm.diagnostics["mixed_frames"] == max(32, math.ceil(4.0 * device.n_in / 8))


@pytest.mark.parametrize("shutter, exposure", [(True, "auto"), (False, "keep")])
def test_a_device_written_against_the_protocol_meets_the_targets(shutter, exposure):
    device = ForeignOPU(shutter=shutter).open()
    result, warned = _calibrate(device, exposure=exposure)
    assert result.camera.dark_method == ("shutter" if shutter else "extrapolated")
    # Its well fills at 0.33 x 9000 + 40 = 3010 DN, below the 4095 of its ADC.
    assert result.camera.saturation_dn == pytest.approx(device.saturation_dn, abs=5.0)
    if exposure == "keep":  # about 1.5 % of the counts saturated, censored
        assert result.tm.saturated_fraction > 0.005
        assert result.exposure.frames == 0 and device.exposure_us == 100.0
    else:  # lowered until at most 1 % of the rows saturate on 10 % of half-on frames
        assert result.exposure.changed and device.exposure_us < 100.0
        assert result.exposure.rows_saturating <= 0.01
        assert result.tm.saturated_fraction < 0.005
    _assert_targets(device, result, device.tm, warned, gain=device.gain,
                    read_noise_e=device.read_e, offset_dn=float(np.mean(device.offsets)))


def test_a_correlated_device_written_against_the_protocol_meets_the_targets():
    """Speckle grain of 2 pixels, neighbouring mirrors correlated (rms 0.7 mirror) on 2-D
    grids: the correlations are estimated from the frames, and the estimate is right."""
    device = CorrelatedForeignOPU().open()
    result, warned = _calibrate(device)
    _assert_targets(device, result, device.tm, warned, gain=device.gain,
                    read_noise_e=device.read_e, offset_dn=float(np.mean(device.offsets)))
    diagnostics = result.tm.diagnostics
    assert min(diagnostics["input_correlation_lags"]) > 0
    assert diagnostics["output_neighbours_per_row"] >= 1 and diagnostics["output_prior_kappa"]
    # The estimated correlation of neighbouring inputs against the device's own, per row
    # averaged; its standard error from the rows' spread over the rows' independent
    # groups (a grain of sigma pixels correlates about 4 pi sigma^2 of them).
    for lag in (1, 16):   # the next mirror, the mirror one row below
        truth = _lag_correlation(device.tm, lag)
        se = truth.std(ddof=1) / math.sqrt(device.n_out / (4 * math.pi * 2.0 ** 2))
        assert result.tm.input_correlation[lag] == pytest.approx(truth.mean(), abs=Z * se)


def test_correlations_are_estimated_not_assumed():
    """The same medium with its inputs shuffled has no correlation between neighbouring
    inputs (index order no longer follows the DMD): none is found, and none is used; a
    device with independent pixels gets no output prior."""
    device = CorrelatedForeignOPU(n_in=128, n_out=128).open()
    shuffled = np.random.default_rng(1).permutation(device.n_in)
    device.tm = device.tm[:, shuffled]
    result, _ = _calibrate(device)
    assert result.tm.diagnostics["input_correlation_lags"] == [0, 0]
    assert abs(result.tm.input_correlation[1]) < 0.1
    plain = ForeignOPU(n_in=128, n_out=128).open()
    result, _ = _calibrate(plain)
    assert result.tm.diagnostics["output_prior_kappa"] is None
    assert result.tm.diagnostics["input_correlation_lags"] == [0, 0]


def test_the_well_is_found_in_the_counts_without_a_camera_estimate():
    device = ForeignOPU(n_in=64, n_out=128).open()
    result, _ = _calibrate(device, camera=False)
    assert result.camera is None
    assert result.tm.saturation_dn == pytest.approx(device.saturation_dn, abs=5.0)
    assert result.intensity_r >= 0.98


# ---------------------------------------------------------------------- linear mode
def _row_correlations(a, b):
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    return (a * b).sum(axis=0) / np.sqrt((a * a).sum(axis=0) * (b * b).sum(axis=0))


@pytest.mark.parametrize("medium", ["independent", "correlated"])
def test_linear_mode_with_a_reference_field_comparable_to_the_signal(medium):
    # The correlated medium at 128 inputs (8 rows of its 16-wide DMD region), 32 held on.
    n = 256 if medium == "independent" else 128
    extra = {} if medium == "independent" else dict(FAMILY["correlated-tm"], n_in=n, n_out=n,
                                                    dmd__held_on_mirrors=32)
    device = _family_device("reference-field", **extra)
    opu = OPU(device).fit(n_features=n)
    twin = device.noise_free_twin()
    twin.exposure_us = device.exposure_us
    truth = OPU(twin).fit(n_features=n)
    x = (np.random.default_rng(3).random((256, n)) < 0.5).astype(np.uint8)
    corr = _row_correlations(np.asarray(opu.linear_transform(x), np.float64),
                             np.asarray(truth.linear_transform(x), np.float64))
    assert np.percentile(corr, 5) >= 0.95
    assert opu.weak_outputs_ <= 0.05 * device.n_out
    # The matrix itself, row by row (effective_matrix: least squares on random frames).
    direct = _row_correlations(np.asarray(opu.effective_matrix(), np.float64).T,
                               np.asarray(truth.effective_matrix(), np.float64).T)
    assert np.percentile(direct, 5) >= 0.95
    if medium == "correlated":
        return
    # Sized by what the field does to each row: the true rows, as normalized, have
    # nearly equal norms (the old f(1) normalization spread them over 30x).
    eye = np.eye(256, dtype=np.uint8)
    rows = np.asarray(truth._linear_frames(eye, normalized=False), np.float64).T
    norms = np.linalg.norm(rows, axis=1) * opu._row_norm
    usable = opu.usable_outputs_
    spread = np.percentile(norms[usable], 95) / np.percentile(norms[usable], 5)
    assert spread < 1.6
    assert not opu._row_sizes.from_reference.any()


@pytest.mark.parametrize("correlated", [False, True])
def test_linear_mode_on_devices_written_against_the_protocol(correlated):
    """Reference field 0.35 of the signal's amplitude, 12 bits; the row of the complement
    identity is ``Re(conj(m_j) K_j)`` with ``m = e0 + K 1 / 2``, less its mean."""
    device = (CorrelatedForeignOPU(n_in=128, n_out=128) if correlated
              else ForeignOPU(n_in=128, n_out=128)).open()
    opu = OPU(device).fit(n_features=128)
    m = device.field0 + device.tm.sum(axis=1) / 2
    rows = np.real(np.conj(m)[:, None] * device.tm)
    direct = _row_correlations(np.asarray(opu.effective_matrix(), np.float64).T, rows.T)
    assert np.percentile(direct, 5) >= 0.95
    assert opu.weak_outputs_ <= 0.05 * device.n_out


# ---------------------------------------------------------------------- downstream
def test_untrusted_rows_stay_out_of_the_dfa_feedback():
    from dfa_bridge.training.feedback import DeviceFeedback
    from devices import CalibratedDevice

    rng = np.random.default_rng(4)
    n_classes, widths = 10, (24, 16)
    tm = (rng.standard_normal((48, n_classes)) + 1j * rng.standard_normal((48, n_classes))) / 4
    untrusted = [0, 5, 17]
    # Spare outputs: the untrusted rows are replaced by trusted ones.
    spare = DeviceFeedback(CalibratedDevice(tm, untrusted_outputs=untrusted).open(), widths,
                           n_classes)
    assert spare.rows.size == 40 and not set(untrusted) & set(spare.rows.tolist())
    assert np.all(np.abs(spare.matrix()).sum(axis=1) > 0)
    assert spare.describe()["untrusted_outputs"] == 3
    # Exactly as many outputs as rows: the untrusted ones feed back nothing.
    exact = DeviceFeedback(CalibratedDevice(tm[:40], untrusted_outputs=untrusted).open(), widths,
                           n_classes)
    assert np.array_equal(exact.rows, np.arange(40))
    assert np.all(exact.matrix()[untrusted] == 0)
    error = rng.standard_normal((6, n_classes)).astype(np.float32)
    error -= error.mean(axis=1, keepdims=True)
    projected = np.concatenate(exact.project(error), axis=1)
    assert np.all(projected[:, untrusted] == 0) and np.all(projected[:, 1] != 0)


def test_a_calibration_with_untrusted_rows_flows_to_the_opu():
    device = ForeignOPU(n_in=64, n_out=96, seed=3).open()
    result, _ = _calibrate(device, exposure="keep")
    assert result.untrusted.size
    model = result.device()
    assert np.array_equal(model.untrusted_outputs, result.untrusted)
    with warnings.catch_warnings():  # its all-on frame saturates; not the point here
        warnings.simplefilter("ignore", RuntimeWarning)
        opu = OPU(model).fit(n_features=60)
    assert np.array_equal(opu.untrusted_outputs_, result.untrusted)
    m = np.asarray(opu.effective_matrix())
    assert np.all(m[result.untrusted] == 0)


def test_a_device_with_outputs_to_spare_feeds_back_through_every_other_usable_one():
    from dfa_bridge.training.feedback import DeviceFeedback
    from devices import CalibratedDevice

    rng = np.random.default_rng(5)
    n_classes, widths = 6, (12, 8)                       # S = 20 rows
    tm = (rng.standard_normal((50, n_classes)) + 1j * rng.standard_normal((50, n_classes))) / 4
    untrusted = [4, 9]
    spaced = DeviceFeedback(CalibratedDevice(tm, untrusted_outputs=untrusted).open(), widths,
                            n_classes)
    usable = [o for o in range(50) if o not in untrusted]
    assert spaced.rows.tolist() == usable[::2][:20]      # every other usable output
    adjacent = DeviceFeedback(CalibratedDevice(tm, untrusted_outputs=untrusted).open(), widths,
                              n_classes, output_spacing=1)
    assert adjacent.rows.tolist() == usable[:20]
    # Too few outputs for the spacing (2 S > 32 usable): the first usable ones, in order.
    short = DeviceFeedback(CalibratedDevice(tm[:34], untrusted_outputs=untrusted).open(), widths,
                           n_classes)
    assert short.rows.tolist() == [o for o in range(34) if o not in untrusted][:20]
