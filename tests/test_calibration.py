"""Calibration from frames alone: TM recovery, intensity prediction, camera, drift."""

import math

import numpy as np
import pytest

from calibration import (DriftMonitor, calibrate, estimate_camera, estimate_transmission_matrix,
                         fit_rounded_gaussian, projection_error, row_correlation)
from devices import OPU, VirtualDevice, open_device
from tests.stats import Z


@pytest.fixture(scope="module")
def lab_bench_calibration():
    device = VirtualDevice("lab-bench", n_in=256, n_out=256).open()
    return device, calibrate(device, progress=False)


def test_noise_free_256_device_recovers_the_tm():
    device = VirtualDevice("ideal", n_in=256, n_out=256).open()
    estimate = estimate_transmission_matrix(device, probes_per_input=1.5)
    corr = row_correlation(estimate.tm, device.chain.medium.transmission_matrix())
    assert np.median(corr) >= 0.999 and corr.min() > 0.99
    # The prediction of fresh frames is exact up to float rounding.
    frames = (np.random.default_rng(5).random((16, 256)) < 0.5).astype(np.uint8)
    np.testing.assert_allclose(estimate.predict(frames), device.acquire(frames), rtol=1e-3)


def test_lab_bench_256_predicts_fresh_frames_with_r_above_0_98(lab_bench_calibration):
    device, result = lab_bench_calibration
    assert result.intensity_r >= 0.98
    assert result.tm.frames <= 40 * device.n_in
    corr = row_correlation(result.tm.tm, device.chain.medium.transmission_matrix())
    assert np.median(corr) >= 0.995


def test_camera_estimates_match_the_virtual_camera(lab_bench_calibration):
    device, result = lab_bench_calibration
    truth = device.chain.camera
    assert result.camera.gain_dn_per_e == pytest.approx(truth.gain_dn_per_e, rel=0.05)
    assert result.camera.read_noise_e == pytest.approx(truth.read_noise_e, rel=0.10)
    assert result.camera.black_offset_dn == pytest.approx(truth.black_offset_dn, abs=0.05)
    assert result.camera.saturation_e == pytest.approx(truth.saturation_electrons(), rel=0.05)


def test_camera_estimates_for_a_full_well_limited_12_bit_camera():
    device = VirtualDevice("lab-bench", n_in=128, n_out=4096, camera__adc_bits=12,
                           camera__gain_dn_per_e=0.3, camera__black_offset_dn=50.0,
                           camera__full_well_e=12_000.0, camera__read_noise_e=6.0).open()
    estimate = estimate_camera(device)
    assert estimate.gain_dn_per_e == pytest.approx(0.3, rel=0.05)
    assert estimate.read_noise_e == pytest.approx(6.0, rel=0.10)
    assert estimate.saturation_e == pytest.approx(12_000.0, rel=0.05)
    assert device.exposure_us == pytest.approx(device.chain.config.camera.exposure_us)


def test_rounded_gaussian_fit_recovers_sub_dn_noise():
    rng = np.random.default_rng(0)
    n = 200_000
    for sd in (0.25, 0.6, 2.0):
        mean, fitted = fit_rounded_gaussian(np.rint(2.3 + sd * rng.standard_normal(n)))
        # Fisher bound of the rounded model is above the unrounded sd / sqrt(2n); 4x covers it.
        assert fitted == pytest.approx(sd, abs=Z * 4 * sd / math.sqrt(2 * n))
        assert mean == pytest.approx(2.3, abs=Z * 4 * sd / math.sqrt(n))


def test_metrics_ignore_row_phases_and_conjugation():
    rng = np.random.default_rng(1)
    tm = rng.standard_normal((30, 20)) + 1j * rng.standard_normal((30, 20))
    phases = np.exp(2j * np.pi * rng.random(30))[:, None]
    mixed = np.where(rng.random(30)[:, None] < 0.5, np.conj(tm), tm) * phases * 3.0
    np.testing.assert_allclose(row_correlation(mixed, tm), 1.0, atol=1e-12)
    other = rng.standard_normal((30, 20)) + 1j * rng.standard_normal((30, 20))
    assert np.median(row_correlation(other, tm)) < 0.6


def test_the_calibrated_device_gives_the_same_linear_projection():
    device = VirtualDevice("ideal", n_in=128, n_out=192).open()
    result = calibrate(device, probes_per_input=1.5)
    model = result.device()
    assert model.backend == "calibrated" and model.n_in == 128
    measured = OPU(model).fit(n_features=120).effective_matrix()
    reference = OPU(device).fit(n_features=120).effective_matrix()
    assert projection_error(measured, reference) < 1e-3


def test_too_few_probes_and_tiny_devices_are_refused():
    device = open_device("ideal", n_in=16, n_out=8)
    with pytest.raises(ValueError, match=r"probes_per_input = 0.5: expected >= 1"):
        estimate_transmission_matrix(device, probes_per_input=0.5)
    with pytest.raises(ValueError, match=r"device.n_in = 3: expected at least 4"):
        estimate_transmission_matrix(open_device("ideal", n_in=3, n_out=8))
    with pytest.raises(ValueError, match="expected a device with a camera exposure"):
        estimate_camera(device)


def test_a_saturating_device_is_warned_about():
    device = VirtualDevice("lab-bench", n_in=64, n_out=64, camera__exposure_us=600.0).open()
    with pytest.warns(RuntimeWarning, match=r"saturated at 255.0: expected at most 1%"):
        result = calibrate(device, camera=False, probes_per_input=2.0)
    assert result.tm.saturated_fraction > 0.01


def test_drift_monitor_notices_a_drifting_medium():
    device = VirtualDevice("lab-bench", n_in=64, n_out=128, medium__drift_time_s=60.0).open()
    result = calibrate(device, camera=False, probes_per_input=2.0)
    monitor = DriftMonitor(device, result, tolerance=0.05)
    # Calibration took ~ a few seconds of device time: still close to the TM it measured.
    assert not monitor.check().drifted
    device.chain.advance(45.0)  # sqrt(1 - 45/60) = 0.5 field correlation to the calibration
    check = monitor.check()
    assert check.drifted and monitor.drifted
    assert check.intensity_r < result.intensity_r - 0.05


def test_the_quality_summary_gives_the_student_t_interval_over_seeds():
    from calibration.quality import summarize_quality
    from photon.support.stats import mean_interval

    values = [0.9, 0.95, 1.0]
    mean, half = mean_interval(values)
    # t(0.975, 2 dof) = 4.3027; standard error 0.05 / sqrt(3)
    assert mean == pytest.approx(0.95) and half == pytest.approx(4.302653 * 0.05 / 3 ** 0.5, rel=1e-5)
    assert np.isnan(mean_interval([0.5])[1])
    rows = [{"preset": "p", "probes_per_input": 2.0, "frames_per_input": 15.0, "seed": s,
             "intensity_r": v, "tm_corr": v, "tm_corr_p05": v} for s, v in enumerate(values)]
    (summary,) = summarize_quality(rows)
    assert summary["seeds"] == 3 and summary["intensity_r_ci95"] == pytest.approx(half)
