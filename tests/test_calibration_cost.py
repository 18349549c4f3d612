"""Calibration cost at scale, the exposure a calibration settles, the report's own device."""

import json
import math
import warnings

import numpy as np
import pytest

from calibration import calibrate, min_frames
from calibration.cost import (BUDGET_SHARE, calibration_cost, calibration_frames,
                              config_calibration_cost, largest_inputs)
from devices import OPU, CalibratedDevice, VirtualDevice, open_device
from photon import load_preset
from photon.chain import device_frame_time_s


def test_the_datacenter_opu_cannot_be_calibrated_whole_within_its_drift():
    config = load_preset("datacenter-opu")
    cost = config_calibration_cost(config, job=(10, 512))
    whole = cost.whole
    # 7 probes' frames per input and the overheads, at 376 frames/s for 2e6 outputs.
    frame_time = device_frame_time_s(config, config.n_out)
    assert 1 / frame_time == pytest.approx(376.2, abs=0.1)
    assert whole.frames == calibration_frames(config.n_in) > min_frames(config.n_in, 4.0)
    assert whole.device_s == pytest.approx(whole.frames * frame_time)
    assert 20 * 3600 < whole.device_s < 24 * 3600 and not whole.fits
    assert cost.budget_s == BUDGET_SHARE * 3600.0
    # The largest input count that fits: its calibration fits, one more input's does not.
    n = whole.largest_n_in
    assert calibration_frames(n) * frame_time <= cost.budget_s
    assert calibration_frames(n + 1) * frame_time > cost.budget_s
    plans = {plan.label: plan for plan in cost.plans}
    fewer = plans["fewer probes"]
    assert fewer.frames == calibration_frames(config.n_in, 1.5) < whole.frames / 2.5
    dmd = plans["outputs at the DMD's rate"]
    assert dmd.frame_time_s == pytest.approx(1 / config.dmd.frame_rate_hz)
    assert dmd.largest_n_in > 10 * n
    job = plans["a job's inputs and outputs"]
    assert (job.n_in, job.n_out) == (10, 512) and job.fits


def test_a_static_medium_has_no_budget_and_largest_inputs_inverts_the_frame_count():
    cost = config_calibration_cost(load_preset("lab-bench"))
    assert cost.drift_time_s is None and cost.whole.fits is None
    assert cost.whole.largest_n_in is None and cost.as_dict()["budget_s"] is None
    for budget_s, frame_time in ((10.0, 1e-3), (360.0, 2.6e-3), (1e4, 2.4e-4)):
        n = largest_inputs(budget_s, frame_time, 4.0)
        assert calibration_frames(n) * frame_time <= budget_s
        assert calibration_frames(n + 1) * frame_time > budget_s
    assert largest_inputs(0.01, 1e-3) == 0
    custom = calibration_cost("x", 100, 50, lambda k: 1e-3, 1000.0)
    assert custom.whole.device_s == pytest.approx(calibration_frames(100) * 1e-3)
    assert custom.whole.budget_share == pytest.approx(custom.whole.device_s / 1000.0)


def test_opu_info_prints_the_calibration_cost(capsys):
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).resolve().parent.parent / "scripts" / "opu_info.py"
    spec = importlib.util.spec_from_file_location("opu_info_for_test", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main(["--device", "datacenter-opu", "--n-features", "10",
                        "--job-outputs", "512", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    calib = result["calibration"]
    assert calib["drift_time_s"] == 3600.0 and calib["whole"]["fits"] is False
    assert calib["whole"]["largest_n_in"] > 1000
    labels = [plan["label"] for plan in calib["ways_to_fit"]]
    assert "a job's inputs and outputs" in labels and "fewer probes" in labels
    job = calib["ways_to_fit"][labels.index("a job's inputs and outputs")]
    assert (job["n_in"], job["n_out"], job["fits"]) == (10, 512, True)


def test_calibrate_lowers_a_settable_exposure_until_few_rows_saturate():
    device = VirtualDevice("lab-bench", n_in=64, n_out=128, camera__exposure_us=600.0).open()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = calibrate(device, camera=False, probes_per_input=2.0)
    setting = result.exposure
    assert setting.changed and setting.initial_us == 600.0
    assert device.exposure_us == setting.final_us == result.exposure_us < 600.0
    assert setting.rows_saturating <= 0.01
    assert result.frames == result.tm.frames + setting.frames + result.scoring_frames
    with pytest.raises(ValueError, match=r"exposure = 'sometimes': expected one of 'auto', 'keep'"):
        calibrate(device, exposure="sometimes")


def test_the_calibrated_device_scales_its_light_with_the_exposure():
    tm = np.array([[1.0 + 1.0j, 0.5], [0.2, -1.0j]])
    model = CalibratedDevice(tm, offset=[2.0, 3.0], exposure_us=100.0).open()
    frames = np.array([[1, 1], [1, 0]], np.uint8)
    before = np.asarray(model.acquire(frames), np.float64) - [2.0, 3.0]
    model.exposure_us = 250.0
    after = np.asarray(model.acquire(frames), np.float64) - [2.0, 3.0]
    np.testing.assert_allclose(after, 2.5 * before, rtol=1e-6)
    with pytest.raises(NotImplementedError, match="no settable exposure"):
        CalibratedDevice(tm).open().exposure_us = 10.0


def test_the_reports_device_calibrates_every_row_without_a_warning():
    """The report's feedback device (10 inputs of 64 mirrors onto 512 outputs, at the
    exposure linear mode settles) and the README's example: every row calibrated, no
    warning about the toolkit's own defaults."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        device = VirtualDevice("lab-bench", n_in=10, n_out=512,
                               dmd__macropixel_mirrors=64).open()
        OPU(device).fit(n_features=10)
        result = calibrate(device, progress=False)
        assert result.untrusted.size == 0 and result.intensity_r >= 0.99
        readme = calibrate(open_device("lab-bench", n_in=128, n_out=128), progress=False)
        OPU(readme.device()).fit(n_features=100)
    assert readme.untrusted.size == 0
    assert math.isfinite(readme.intensity_r_trusted)
