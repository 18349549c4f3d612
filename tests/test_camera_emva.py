"""The camera against the EMVA 1288 model: photon transfer, saturation, quantization."""

import numpy as np
import pytest

from photon import Camera, build_chain
from photon.budget import UNSATURATED_MEAN_FRACTION, mean_counts_dn, saturated_fraction_exponential
from photon.camera import rounded_gaussian_variance
from photon.constants import photons_per_joule
from photon.speckle import disjoint_frames
from tests.stats import Z, binomial_se, contrast_and_se

WAVELENGTH_NM = 532.0


def _camera(**kw):
    settings = dict(quantum_efficiency=0.6, exposure_us=100.0, read_noise_e=6.0,
                    full_well_e=12_000.0, gain_dn_per_e=0.25, black_offset_dn=40.0,
                    adc_bits=12, dark_current_e_per_s=0.0, noise_seed=5)
    settings.update(kw)
    return Camera.from_settings(20_000, **settings)


def _power_for_electrons(camera, electrons):
    """Uniform pixel power (W) giving ``electrons`` mean photo-electrons."""
    return electrons / camera.electrons_per_watt(WAVELENGTH_NM)


def test_photons_per_joule_at_532_nm():
    # lambda / (h c) = 532e-9 / (6.62607015e-34 * 299792458) = 2.678e18 photons per joule
    assert photons_per_joule(532.0) == pytest.approx(2.6782e18, rel=1e-4)


def test_photon_transfer_line():
    """sigma_y^2 = K^2 sigma_r^2 + 1/12 + K (mu_y - mu_dark) at every level below saturation.

    Here the dark noise is K sigma_r = 1.5 DN: above the ~0.5 DN from which the rounding's
    share is Sheppard's 1/12 DN^2 (below, see the dark-variance tests).
    """
    camera = _camera()
    k, read = camera.gain_dn_per_e, camera.read_noise_e
    levels_e = np.array([0.0, 20.0, 45.0, 100.0, 400.0, 1500.0, 4000.0, 8000.0])
    means, variances = [], []
    for level in levels_e:
        power = np.full((1, camera.n_out), _power_for_electrons(camera, level), np.float32)
        counts = camera(power, WAVELENGTH_NM).astype(np.float64).ravel()
        means.append(counts.mean())
        variances.append(counts.var(ddof=1))
    means, variances = np.array(means), np.array(variances)
    dark = camera.black_offset_dn
    predicted = k * k * read * read + 1 / 12 + k * (means - dark)
    # Var(s^2) = 2 sigma^4 / (n - 1) for a near-Gaussian variable.
    se = predicted * np.sqrt(2 / (camera.n_out - 1))
    assert np.all(np.abs(variances - predicted) < Z * se), (variances, predicted)
    # The mean is linear in the signal (electrons -> DN with slope K onto the offset).
    mean_se = np.sqrt(predicted / camera.n_out)
    assert np.all(np.abs(means - (dark + k * levels_e)) < Z * mean_se + 1e-9)
    # The slope of the line is the gain.
    slope, _ = np.polyfit(means - dark, variances, 1, w=1 / se)
    assert slope == pytest.approx(k, rel=0.03)


def test_saturation_clips_at_full_well_and_full_scale():
    camera = _camera(full_well_e=10_000.0, gain_dn_per_e=0.25, adc_bits=12)
    power = np.full((1, camera.n_out), _power_for_electrons(camera, 30_000.0), np.float32)
    counts = camera(power, WAVELENGTH_NM).astype(np.float64)
    # Saturated charge plus read noise: mean K * FW + offset, variance (K sigma_r)^2 + 1/12.
    expected = camera.gain_dn_per_e * 10_000.0 + camera.black_offset_dn
    sd = np.sqrt((camera.gain_dn_per_e * camera.read_noise_e) ** 2 + 1 / 12)
    assert counts.mean() == pytest.approx(expected, abs=Z * sd / np.sqrt(camera.n_out))
    assert counts.var() < (camera.gain_dn_per_e * camera.read_noise_e) ** 2 + 0.2
    adc_limited = _camera(gain_dn_per_e=1.0, adc_bits=8, black_offset_dn=2.0)
    power = np.full((1, adc_limited.n_out), _power_for_electrons(adc_limited, 5_000.0), np.float32)
    counts = adc_limited(power, WAVELENGTH_NM)
    assert counts.dtype == np.uint8 and np.all(counts == 255)


def test_saturated_fraction_matches_the_exponential_tail():
    """Polarized speckle of mean mu saturates on exp(-e_sat / mu) of the pixels."""
    n_in, n_out, n_frames = 64, 32_768, 8
    # Grain off: the binomial standard error below counts independent pixels, and the
    # preset's speckle grain correlates neighbours (about 5 pixels per grain).
    chain = build_chain("lab-bench", n_in=n_in, n_out=n_out, polarizer__extinction_ratio=None,
                        dmd__contrast=None, laser__rin_rms=0.0, laser__drift_rms=0.0,
                        camera__prnu_rms=0.0, camera__exposure_us=600.0,
                        medium__speckle_grain_px=0.0)
    frames = disjoint_frames(n_in, n_frames)
    counts = chain.acquire(frames)
    intensity_mean = frames.sum(axis=1)[0] / n_in
    camera = chain.camera
    mean_e = intensity_mean * chain.watts_per_unit_intensity * camera.electrons_per_watt(
        chain.laser.wavelength_nm) + camera.dark_current_e_per_s * camera.exposure_us * 1e-6
    expected = saturated_fraction_exponential(camera.saturation_electrons(), mean_e)
    assert 0.01 < expected < 0.2  # the test is meant to probe a visible tail
    measured = float((counts == 255).mean())
    assert abs(measured - expected) < Z * binomial_se(expected, counts.size)


def test_lab_bench_preset_sits_near_full_scale_over_6_9():
    """The preset's exposure puts the mean at (full scale - offset) / 6.9: 99.9 % unsaturated."""
    n_in, n_out = 256, 16_384
    # Grain off: the standard errors below count independent pixels; the grain leaves the
    # per-pixel law, and so the mean and the saturated fraction, unchanged.
    chain = build_chain("lab-bench", n_in=n_in, n_out=n_out, medium__speckle_grain_px=0.0)
    rng = np.random.default_rng(3)
    frames = np.zeros((16, n_in), np.uint8)
    for row in frames:  # exactly half of the features on, as the preset assumes
        row[rng.permutation(n_in)[: n_in // 2]] = 1
    counts = chain.acquire(frames).astype(np.float64)
    cam = chain.camera
    target = cam.black_offset_dn + UNSATURATED_MEAN_FRACTION * (cam.full_scale_dn - cam.black_offset_dn)
    # Pixels of one frame are independent; frames share a TM, so use per-frame means.
    per_frame = counts.mean(axis=1)
    se = per_frame.std(ddof=1) / np.sqrt(per_frame.size) + counts.std() / np.sqrt(counts.size)
    assert abs(per_frame.mean() - mean_counts_dn(chain.config)) < Z * se
    assert per_frame.mean() == pytest.approx(target, rel=0.03)
    saturated = float((counts == cam.full_scale_dn).mean())
    assert saturated < 0.001 + Z * binomial_se(0.001, counts.size)
    assert saturated > 0.001 - Z * binomial_se(0.001, counts.size)


def test_counts_are_uint8_and_follow_the_backend():
    chain = build_chain("lab-bench", n_in=32, n_out=64)
    counts = chain.acquire(np.ones((3, 32), bool))
    assert isinstance(counts, np.ndarray) and counts.dtype == np.uint8 and counts.shape == (3, 64)


def test_binning_sums_charge_of_independent_pixels():
    """2 x 2 binning sums 4 independent speckle pixels: gamma(k=4), contrast 1/2."""
    chain = build_chain("ideal", n_in=32, n_out=16_384, camera__binning=2)
    counts = chain.acquire(disjoint_frames(32, 4)).astype(np.float64)
    contrast, se = contrast_and_se(counts)
    assert abs(contrast - 0.5) < Z * se


def _temporal_variance_and_se(counts):
    """Pooled temporal variance of (frames, pixels) counts about each pixel's mean, and its se."""
    frames = counts.shape[0]
    squares = (counts - counts.mean(axis=0)) ** 2 * (frames / (frames - 1))
    return float(squares.mean()), float(squares.std() / np.sqrt(squares.size))


def test_rounded_gaussian_variance_is_sheppard_above_half_a_dn_and_periodic_below():
    offsets = np.linspace(2.0, 3.0, 9)
    for sigma, rtol in ((0.5, 0.025), (0.6, 0.003), (1.0, 1e-6), (3.0, 1e-6)):
        np.testing.assert_allclose(rounded_gaussian_variance(offsets, sigma), sigma ** 2 + 1 / 12,
                                   rtol=rtol)
    low = rounded_gaussian_variance(offsets, 0.255)
    assert low[0] == pytest.approx(0.0499, abs=1e-4) and low[4] == pytest.approx(0.2502, abs=1e-4)
    np.testing.assert_allclose(low, rounded_gaussian_variance(offsets + 7.0, 0.255), rtol=1e-9)
    assert np.all(low < 0.255 ** 2 + 1 / 12 + 0.2)  # and far from the line at the integers
    assert rounded_gaussian_variance(0.0, 0.255, lo=0) < rounded_gaussian_variance(2.0, 0.255)


@pytest.mark.parametrize("offset_dn", [2.0, 2.25, 2.5])
def test_dark_variance_is_the_rounded_gaussian_variance_not_the_line(offset_dn):
    """Below about one DN of noise the dark variance depends on where the offset falls."""
    frames, pixels = 16, 16_384
    camera = Camera.from_settings(pixels, read_noise_e=10.0, gain_dn_per_e=0.0255,
                                  black_offset_dn=offset_dn, adc_bits=8, dark_current_e_per_s=0.0,
                                  noise_seed=7)
    counts = camera(np.zeros((frames, pixels), np.float32), WAVELENGTH_NM).astype(np.float64)
    variance, se = _temporal_variance_and_se(counts)
    expected = rounded_gaussian_variance(offset_dn, 0.0255 * 10.0)
    assert abs(variance - expected) < Z * se
    line = (0.0255 * 10.0) ** 2 + 1 / 12  # 0.148 DN^2
    if offset_dn == 2.0:
        assert variance < line / 2


def test_lab_bench_dark_variance_is_0_051_not_the_lines_0_148():
    """The preset (K sigma_r = 0.255 DN, offset 2 DN, DSNU 1 e-): exact over its DSNU pattern."""
    frames, n_out = 16, 16_384
    camera = build_chain("lab-bench", n_in=16, n_out=n_out).camera
    counts = camera(np.zeros((frames, n_out), np.float32), WAVELENGTH_NM).astype(np.float64)
    variance, se = _temporal_variance_and_se(counts)
    k = camera.gain_dn_per_e
    dark_e = camera.dark_current_e_per_s * camera.exposure_us * 1e-6
    sigma = k * np.sqrt(camera.read_noise_e ** 2 + dark_e)  # Poisson dark electrons: var = mean
    _, dsnu = camera._fixed_patterns(np)
    expected = float(np.mean(rounded_gaussian_variance(
        camera.black_offset_dn + k * dsnu.astype(np.float64), sigma)))
    assert expected == pytest.approx(0.051, abs=0.001)
    assert abs(variance - expected) < Z * se
    assert k * k * camera.read_noise_e ** 2 + 1 / 12 == pytest.approx(0.148, abs=0.001)


@pytest.mark.parametrize("shot_noise", [True, False])
def test_dark_electrons_are_poisson_with_or_without_photon_shot_noise(shot_noise):
    """Dark current is thermal generation, a Poisson process of its own: its electrons keep
    their Poisson noise (variance = mean) when photon shot noise is switched off."""
    camera = _camera(read_noise_e=0.0, adc_bits=None, black_offset_dn=0.0, gain_dn_per_e=1.0,
                     full_well_e=None, dark_current_e_per_s=30_000.0, shot_noise=shot_noise)
    mean_e = camera.dark_current_e_per_s * camera.exposure_us * 1e-6          # 3 electrons
    counts = np.asarray(camera(np.zeros((20, camera.n_sensor_pixels), np.float32),
                               WAVELENGTH_NM), np.float64)
    n = counts.size
    assert abs(counts.mean() - mean_e) < Z * np.sqrt(mean_e / n)
    # var of a Poisson sample variance: (mu + 2 mu^2 (n / (n - 1))) / n ~ (mu + 2 mu^2) / n
    assert abs(counts.var(ddof=1) - mean_e) < Z * np.sqrt((mean_e + 2 * mean_e ** 2) / n)
    np.testing.assert_allclose(counts, np.rint(counts), atol=1e-4)   # whole electrons
