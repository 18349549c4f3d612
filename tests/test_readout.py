"""The camera's read-out sets the frame rate: rows read, line time, region of interest.

Figures under test, each from the data sheet the preset cites:

* datacenter-opu, CMOSIS CMV2000 (datasheet v3.2): a row reads in 129 clocks of 48 MHz
  over 16 outputs (2.6875 us), the frame overhead is (10 + 2) such rows (32.25 us);
  full frame 338.3 fps, the datasheet's "340 fps";
* lab-bench, Sony ICX445 read by an Allied Vision Guppy PRO F-125 (Technical Manual
  V4.0.0, Formula 14): ``1 / (189.28 us + h x 33.19 us + (978 - h) x 5.03 us)`` for an
  AOI of ``h`` rows, 31.00 fps at full frame; the manual's table of rates by AOI height.
"""

import math

import pytest

from devices import OPU, IdealDevice, VirtualDevice
from photon import ConfigError, build_chain, load_preset
from photon.camera import Camera, frame_time_s, max_rows_for_frame_time, readout
from photon.chain import device_frame_time_s

CMV2000_FULL_FRAME_FPS = 340.0      # CMV2000 datasheet v3.2, 10 bit, 16 outputs
CMV2000_LINE_US = 129 / 48.0        # 129 clocks of the 48 MHz master clock, 16 outputs
CMV2000_FOT_US = (10 + 2) * CMV2000_LINE_US
GUPPY_F125_FPS_BY_AOI_HEIGHT = {    # Guppy PRO Technical Manual V4.0.0, F-125 (ICX445) table
    964: 31.00, 768: 37.40, 600: 45.45, 480: 53.69, 320: 70.82, 240: 84.27, 120: 117.82,
    30: 167.97, 10: 185.52, 2: 193.61}


def _datacenter():
    return load_preset("datacenter-opu")


def test_datacenter_full_frame_rate_is_the_cmv2000_figure():
    config = _datacenter()
    cam = config.camera
    assert cam.line_time_us == pytest.approx(CMV2000_LINE_US)
    assert cam.frame_overhead_us == pytest.approx(CMV2000_FOT_US)
    full = readout(cam, cam.sensor_rows * cam.sensor_cols)
    assert full.rows_read == 1088 and full.rows_skipped == 0
    expected = 1 / ((CMV2000_FOT_US + 1088 * CMV2000_LINE_US) * 1e-6)  # 338.27 fps
    assert full.frames_per_s == pytest.approx(expected, rel=1e-12)
    assert full.frames_per_s == pytest.approx(CMV2000_FULL_FRAME_FPS, rel=0.01)
    assert full.full_frame_rate_hz == full.frames_per_s
    # The camera, not the DMD (4225 Hz), sets the device's pace at full frame.
    assert device_frame_time_s(config, 2048 * 1088) == pytest.approx(full.frame_time_s)


def test_the_preset_reads_the_977_rows_holding_its_two_million_outputs():
    config = _datacenter()
    r = readout(config.camera, config.n_out)
    assert r.rows_read == math.ceil(2_000_000 / 2048) == 977
    assert r.frame_time_s == pytest.approx((CMV2000_FOT_US + 977 * CMV2000_LINE_US) * 1e-6)
    assert device_frame_time_s(config) == pytest.approx(r.frame_time_s)
    assert 1 / r.frame_time_s < 400  # far from the 2 kHz a full read-out was once credited


def test_frame_rate_rises_as_fewer_outputs_are_read_and_stops_at_the_dmd_rate():
    config = _datacenter()
    dmd_period = 1 / config.dmd.frame_rate_hz
    sizes = [2_000_000, 1_048_576, 524_288, 262_144, 200_000, 155_649, 155_648, 65_536, 256, 1]
    times = [device_frame_time_s(config, n) for n in sizes]
    assert all(a >= b for a, b in zip(times, times[1:]))       # never slower with fewer outputs
    assert all(a > b for a, b in zip(times[:6], times[1:6]))   # strictly faster while camera-bound
    # The DMD's 4225 Hz is reached only from 76 rows (76 x 2048 outputs) down.
    assert max_rows_for_frame_time(config.camera, dmd_period) == 76
    assert device_frame_time_s(config, 76 * 2048) == pytest.approx(dmd_period)
    assert device_frame_time_s(config, 76 * 2048 + 1) > dmd_period * (1 + 1e-9)
    assert times[-3:] == [pytest.approx(dmd_period)] * 3


def test_two_kilohertz_needs_a_region_of_at_most_174_rows():
    cam = _datacenter().camera
    rows = max_rows_for_frame_time(cam, 1 / 2000.0)
    assert rows == math.floor((500.0 - CMV2000_FOT_US) / CMV2000_LINE_US) == 174
    assert readout(cam, rows * 2048).frames_per_s >= 2000.0
    assert readout(cam, rows * 2048 + 1).frames_per_s < 2000.0


def test_the_ccd_model_reproduces_the_guppy_pro_f125_rates_by_aoi_height():
    cam = load_preset("lab-bench").camera
    for height, fps in GUPPY_F125_FPS_BY_AOI_HEIGHT.items():
        r = readout(cam, height * cam.sensor_cols)
        assert r.rows_read == height and r.rows_skipped == 964 - height
        assert r.frames_per_s == pytest.approx(fps, abs=0.006), height  # table rounds to 0.01
    # Skipped rows are not free on a CCD: they are fast-dumped, 5.03 us each.
    one_row = readout(cam, 1)
    assert one_row.readout_us == pytest.approx(33.19 + 963 * 5.03)


def test_lab_bench_device_time_is_about_a_thirtieth_of_a_second_per_full_frame():
    device = VirtualDevice("lab-bench", n_out=964 * 1292, n_in=16)
    assert device.frame_time_s == pytest.approx(1 / 31.00, rel=1e-3)  # Guppy PRO F-125
    assert device.frame_time_s == pytest.approx(1 / 30.0, rel=0.05)   # Basler acA1300-30gm
    assert device.metadata()["frames_per_s"] == pytest.approx(31.00, rel=1e-3)
    # Reading the 1024 outputs of the default preset takes one row: about 195 fps.
    small = VirtualDevice("lab-bench", n_in=16)
    assert small.chain.camera.readout.rows_read == 1
    assert 1 / small.frame_time_s == pytest.approx(194.67, rel=1e-3)


def test_the_exposure_counts_when_it_outlasts_the_readout():
    config = _datacenter().replace(camera__exposure_us=5000.0)
    assert readout(config.camera, 2048).frame_time_s == pytest.approx((32.25 + 5000.0) * 1e-6)
    camera = Camera(config.camera, 2048)
    camera.exposure_us = 10.0  # the frame time follows the settable exposure
    assert camera.frame_time_s == pytest.approx((32.25 + max(10.0, 2.6875)) * 1e-6)


def test_an_explicit_region_of_interest_sets_the_rows_read_and_must_fit():
    config = _datacenter().replace(n_out=4096, camera__roi_rows=100)
    assert readout(config.camera, config.n_out).rows_read == 100
    assert build_chain(config.replace(n_in=16)).camera.readout.rows_read == 100
    with pytest.raises(ConfigError, match=r"camera\.roi_rows.* = 1: expected at least the 2 "):
        _datacenter().replace(n_out=4096, camera__roi_rows=1)
    with pytest.raises(ConfigError, match=r"roi_rows' = 2000: expected at most the sensor's 1088"):
        _datacenter().replace(camera__roi_rows=2000)
    with pytest.raises(ConfigError, match="n_out"):
        readout(_datacenter().camera, 0)


def test_binning_reads_binning_rows_per_output_row():
    cam = load_preset("lab-bench").replace(camera__binning=2).camera
    per_row = 1292 // 2
    assert readout(cam, per_row).rows_read == 2
    assert readout(cam, per_row + 1).rows_read == 4


def test_frame_time_s_is_the_pure_function_the_camera_and_chain_use():
    config = _datacenter().replace(n_in=32, n_out=4096)
    chain = build_chain(config)
    assert chain.camera.frame_time_s == frame_time_s(config.camera, 4096)
    assert chain.frame_time_s == device_frame_time_s(config)
    assert chain.frame_time_for(2048 * 1088) == device_frame_time_s(config, 2048 * 1088)
    readout_block = chain.summary()["readout"]
    assert readout_block["rows_read"] == 2 and readout_block["max_rows_at_dmd_rate"] == 76
    assert readout_block["max_outputs_at_dmd_rate"] == 76 * 2048
    assert readout_block["full_frame_rate_hz"] == pytest.approx(338.27, rel=1e-4)


def test_device_frame_time_for_an_output_size_and_the_job_cost():
    device = VirtualDevice("datacenter-opu")
    assert device.frame_time_for(device.n_out) == device.frame_time_s
    assert device.frame_time_for(256) == pytest.approx(1 / 4225.0)
    with pytest.raises(ValueError, match=r"n_out = 0: expected an integer from 1"):
        device.frame_time_for(0)
    # The job cost is frames times the device's frame time, whatever it is.
    cost = OPU(device.open()).cost(1000, "intensity")
    assert cost.frame_time_s == device.frame_time_s
    assert cost.seconds == pytest.approx(1000 * device.frame_time_s)
    small = VirtualDevice("datacenter-opu", n_out=155_648).open()
    assert OPU(small).cost(1000, "intensity").seconds == pytest.approx(1000 / 4225.0)


def test_a_device_without_a_readout_model_keeps_its_frame_time():
    device = IdealDevice(4, 8, frame_time_s=1e-3)
    assert device.frame_time_for(3) == 1e-3
    with pytest.raises(ValueError, match="n_out = 9"):
        device.frame_time_for(9)
