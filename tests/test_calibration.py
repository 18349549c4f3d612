"""Calibration from frames alone: TM recovery, intensity prediction, camera, drift,
saturation, dark frames, row quality."""

import math
import re

import numpy as np
import pytest

from calibration import (DriftMonitor, calibrate, detect_saturation, estimate_camera,
                         estimate_transmission_matrix, fit_rounded_gaussian, min_frames,
                         mixed_frames, projection_error, row_correlation)
from devices import (OPU, CalibratedDevice, DeviceClosedError, IdealDevice, VirtualDevice,
                     open_device)
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
    assert result.camera.gain_dn_per_e == pytest.approx(truth.gain_dn_per_e, rel=0.03)
    assert result.camera.read_noise_e == pytest.approx(truth.read_noise_e, rel=0.05)
    assert result.camera.black_offset_dn == pytest.approx(truth.black_offset_dn, abs=0.05)
    assert result.camera.saturation_e == pytest.approx(truth.saturation_electrons(), rel=0.05)
    assert result.camera.saturation_dn == truth.full_scale_dn  # the ADC's top comes first
    assert result.camera.dark_method == "shutter"


def test_camera_estimates_for_a_full_well_limited_12_bit_camera():
    device = VirtualDevice("lab-bench", n_in=128, n_out=4096, camera__adc_bits=12,
                           camera__gain_dn_per_e=0.3, camera__black_offset_dn=50.0,
                           camera__full_well_e=12_000.0, camera__read_noise_e=6.0).open()
    estimate = estimate_camera(device)
    assert estimate.gain_dn_per_e == pytest.approx(0.3, rel=0.03)
    assert estimate.read_noise_e == pytest.approx(6.0, rel=0.05)
    assert estimate.saturation_e == pytest.approx(12_000.0, rel=0.05)
    # The well fills at 0.3 x 12000 + 50 = 3650 DN, below the ADC's 4095: measured there.
    assert estimate.saturation_dn == pytest.approx(3650.0, abs=5.0)
    assert estimate.censor_dn < 3650.0
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
    with pytest.raises(ValueError, match=r"probes_per_input = 0.5: expected a finite number >= 1"):
        estimate_transmission_matrix(device, probes_per_input=0.5)
    with pytest.raises(ValueError, match=r"device.n_in = 3: expected at least 4"):
        estimate_transmission_matrix(open_device("ideal", n_in=3, n_out=8))
    with pytest.raises(ValueError, match="expected a device with a camera exposure"):
        estimate_camera(device)


def test_a_saturating_device_is_warned_about():
    device = VirtualDevice("lab-bench", n_in=64, n_out=64, camera__exposure_us=600.0).open()
    with pytest.warns(RuntimeWarning) as caught:
        result = calibrate(device, camera=False, probes_per_input=2.0, exposure="keep")
    messages = [str(w.message) for w in caught]
    assert any(re.search(r"saturated at 255.0: expected at most 1%", m) for m in messages)
    assert result.tm.saturated_fraction > 0.01
    # One warning names the rows that could not be calibrated; they are untrusted.
    (rows,) = [m for m in messages if "could not be calibrated" in m]
    assert result.untrusted.size and all(str(int(r)) in rows for r in result.untrusted[:20])
    assert set(result.tm.untrusted_reasons) == set(result.untrusted.tolist())
    assert np.array_equal(result.device().untrusted_outputs, result.untrusted)


def test_every_row_gets_a_quality_figure_near_the_camera_noise(lab_bench_calibration):
    device, result = lab_bench_calibration
    quality = result.tm.row_quality
    assert quality.shape == (device.n_out,) and np.all(np.isfinite(quality))
    # Residual rms in units of the predicted noise: about 1 (the model's small misses,
    # the polarizer's leak, add a little); no row of this device is far off.
    assert 0.8 < np.median(quality) < 2.5
    assert result.untrusted.size <= 0.02 * device.n_out
    a, b, _ = result.tm.noise_model
    assert b == pytest.approx(result.camera.gain_dn_per_e)


def test_dark_frames_block_the_light_and_devices_say_whether_they_can():
    device = VirtualDevice("lab-bench", n_in=64, n_out=256, dmd__held_on_mirrors=64).open()
    before = device.frames_acquired
    dark = device.acquire_dark(8)
    assert dark.shape == (8, 256) and device.frames_acquired == before + 8
    off = np.asarray(device.acquire(np.zeros((8, 64), np.uint8)), np.float64)
    assert dark.mean() < off.mean() - 1.0  # the held-on mirrors' field is gone
    assert dark.mean() == pytest.approx(2.0, abs=0.1)  # the black offset
    ideal = open_device("ideal", n_in=8, n_out=4)
    np.testing.assert_array_equal(ideal.acquire_dark(3), np.zeros((3, 4)))
    model = CalibratedDevice(np.ones((3, 5)), offset=[1.0, 2.0, 3.0]).open()
    np.testing.assert_array_equal(model.acquire_dark(2), [[1, 2, 3], [1, 2, 3]])

    class NoShutter(IdealDevice):
        can_block_light = False

    assert NoShutter(8, 4).open().acquire_dark(3) is None
    with pytest.raises(ValueError, match=r"n_frames = 0: expected a positive integer"):
        ideal.acquire_dark(0)
    with pytest.raises(DeviceClosedError):
        IdealDevice(8, 4).acquire_dark(1)
    class Unshuttered(VirtualDevice):
        can_block_light = False

    unshuttered = Unshuttered("lab-bench", n_in=16, n_out=64).open()
    assert unshuttered.acquire_dark(2) is None
    with pytest.raises(ValueError, match=r"dark = 'shutter': device .* cannot block its light"):
        estimate_camera(unshuttered, dark="shutter")
    assert estimate_camera(unshuttered).dark_method == "extrapolated"
    with pytest.raises(ValueError, match=r"dark = 'sometimes': expected one of"):
        estimate_camera(device, dark="sometimes")


def test_the_camera_offset_is_extrapolated_to_zero_exposure_without_a_shutter():
    device = VirtualDevice("lab-bench", n_in=128, n_out=256, dmd__held_on_mirrors=64).open()
    shutter = estimate_camera(device)
    extrapolated = estimate_camera(device, dark="extrapolated")
    assert shutter.dark_method == "shutter" and extrapolated.dark_method == "extrapolated"
    for estimate in (shutter, extrapolated):
        assert estimate.black_offset_dn == pytest.approx(2.0, abs=0.05)
        assert estimate.read_noise_e == pytest.approx(10.0, rel=0.05)
    assert device.exposure_us == pytest.approx(device.chain.config.camera.exposure_us)


def test_rounded_gaussian_fit_takes_counts_clipped_at_zero_as_censored():
    rng = np.random.default_rng(1)
    n, p = 4000, 8
    true = 0.8 + 1.2 * rng.standard_normal((n, p))
    counts = np.maximum(np.rint(true), 0)  # an ADC clips below at 0
    mean, sd = fit_rounded_gaussian(counts, floor=np.zeros(p))
    assert mean == pytest.approx(0.8, abs=Z * 1.2 / math.sqrt(n * p) * 2)
    assert sd == pytest.approx(1.2, abs=Z * 1.2 / math.sqrt(2 * n * p) * 2)


def test_a_pile_up_below_the_full_scale_is_found_in_the_counts():
    rng = np.random.default_rng(2)
    signal = rng.exponential(400.0, 200_000) + 50.0
    well = 2500.0
    counts = np.rint(np.minimum(signal, well) + 1.5 * rng.standard_normal(signal.size))
    level, censor = detect_saturation(counts, full_scale=4095.0, dark_variance=1.5 ** 2)
    assert level == pytest.approx(well, abs=1.0) and censor < well - 3 * 1.5
    # A tail that thins out to its end has no plateau; nor do counts at the ADC's top.
    assert detect_saturation(np.rint(signal), 4095.0, 1.5 ** 2) is None
    assert detect_saturation(np.minimum(np.rint(signal), 255), 255.0, 0.1) is None


def test_the_frame_count_and_the_mixed_frames_follow_the_probe_budget():
    device = open_device("ideal", n_in=64, n_out=16)
    for probes in (1.5, 4.0, 8.0):
        estimate = estimate_transmission_matrix(device, probes_per_input=probes)
        assert estimate.frames == min_frames(64, probes)
        assert estimate.diagnostics["mixed_frames"] == mixed_frames(64, probes)
    assert mixed_frames(1024, 8.0) == 1024 and mixed_frames(64, 1.0) == 32


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
    from studies.calibration_quality import summarize_quality
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


def test_calibrate_refuses_what_it_cannot_calibrate_and_warns_about_a_dark_device():
    from devices import DeviceClosedError

    with pytest.raises(TypeError, match="device = None: expected an open OPUDevice"):
        calibrate(None)
    with pytest.raises(DeviceClosedError, match="expected an open device"):
        calibrate(VirtualDevice("lab-bench", n_in=8, n_out=8))
    device = open_device("ideal", n_in=16, n_out=8)
    with pytest.raises(ValueError, match="scoring_frames = 0: expected an integer >= 2"):
        calibrate(device, scoring_frames=0)
    with pytest.raises(ValueError, match="seed = -1: expected a non-negative integer"):
        calibrate(device, seed=-1)
    dark = VirtualDevice("lab-bench", n_in=32, n_out=32, camera__exposure_us=0.001).open()
    with pytest.raises(ValueError, match=r"exposure_us = 0.001 .*expected a device whose light "
                                         "reaches the camera"):
        calibrate(dark)
    with pytest.warns(RuntimeWarning, match=r"intensity_r = .*: expected near 1"):
        result = calibrate(dark, camera=False)
    assert result.intensity_r < 0.5
    # The counts pile up at the black offset, which is no full well: no saturation claimed.
    assert result.tm.saturated_fraction < 0.01
    # One output is a device too: it calibrates.
    single = calibrate(open_device("ideal", n_in=8, n_out=1))
    assert single.intensity_r > 0.999 and single.untrusted.size == 0


def test_a_string_exposure_infinite_probes_and_a_one_output_device_are_named():
    device = VirtualDevice("lab-bench", n_in=8, n_out=16).open()
    with pytest.raises(ValueError, match=r"exposure_us = 'fast': expected a finite number > 0"):
        device.exposure_us = "fast"
    with pytest.raises(ValueError, match=r"probes_per_input = inf: expected a finite number >= 1"):
        calibrate(device, probes_per_input=float("inf"))
    single = VirtualDevice("lab-bench", n_in=8, n_out=1).open()
    with pytest.raises(ValueError, match=r"n_out = 1 outputs at 4 exposures give at most 4 "
                                         r"photon-transfer points: expected at least 10"):
        estimate_camera(single)
    calibration = calibrate(single)     # auto: no camera estimate where it cannot be made
    assert calibration.camera is None and calibration.intensity_r > 0.99
