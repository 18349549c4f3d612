"""The device protocol, its backends and the factory."""

import numpy as np
import pytest

from devices import (CalibratedDevice, DeviceClosedError, HardwareDevice, IdealDevice, OPUDevice,
                     VirtualDevice, backend_names, open_device, register_backend)


def _frames(n_in, batch=8, seed=0):
    return (np.random.default_rng(seed).random((batch, n_in)) < 0.5).astype(np.uint8)


def test_ideal_device_computes_abs_r_x_squared_exactly():
    with open_device("ideal", n_in=64, n_out=128, seed=4) as device:
        frames = _frames(64)
        expected = np.abs(frames @ device.transmission_matrix().T.astype(np.complex128)) ** 2
        np.testing.assert_allclose(device.acquire(frames), expected, rtol=2e-5, atol=1e-7)
        assert device.frames_acquired == 8


def test_ideal_device_is_the_same_stored_or_streamed():
    frames = _frames(300)
    dense = open_device("ideal", n_in=300, n_out=200, storage="dense").acquire(frames)
    streamed = open_device("ideal", n_in=300, n_out=200, storage="streamed").acquire(frames)
    np.testing.assert_allclose(dense, streamed, rtol=1e-4, atol=1e-7)


def test_a_preset_name_opens_a_virtual_device_with_its_physics():
    device = open_device("lab-bench", n_in=32, n_out=64)
    assert isinstance(device, VirtualDevice) and device.is_open
    counts = device.acquire(_frames(32))
    assert counts.dtype == np.uint8 and counts.shape == (8, 64)
    meta = device.metadata()
    assert meta["backend"] == "virtual" and meta["name"] == "lab-bench"
    assert meta["physics"]["adc_bits"] == 8 and meta["full_scale"] == 255


def test_exposure_is_settable_and_checked_on_a_virtual_device():
    device = open_device("lab-bench", n_in=16, n_out=256)
    frames = np.ones((4, 16), np.uint8)
    low = device.acquire(frames).astype(float).mean()
    device.exposure_us = device.exposure_us / 2
    assert device.acquire(frames).astype(float).mean() < 0.7 * low
    for bad in (-1.0, float("nan")):
        with pytest.raises(ValueError, match="exposure_us = .*expected a finite number > 0 \\(us\\)"):
            device.exposure_us = bad
    with pytest.raises(NotImplementedError, match="no settable exposure"):
        open_device("ideal", n_in=4, n_out=4).exposure_us = 10.0


def test_context_manager_opens_and_closes():
    device = IdealDevice(8, 8)
    assert not device.is_open
    with pytest.raises(DeviceClosedError, match="closed: call open"):
        device.acquire(np.zeros((1, 8), np.uint8))
    with device as opened:
        assert opened is device and device.is_open
        device.acquire(np.zeros((1, 8), np.uint8))
    assert not device.is_open


def test_calibrated_device_predicts_and_ignores_row_phases():
    ideal = open_device("ideal", n_in=48, n_out=96)
    tm = ideal.transmission_matrix()
    phases = np.exp(1j * np.random.default_rng(1).uniform(0, 2 * np.pi, 96))
    frames = _frames(48)
    truth = ideal.acquire(frames)
    for estimate in (tm, phases[:, None] * tm, np.conj(tm)):
        with CalibratedDevice(estimate, gain=2.0, offset=3.0) as model:
            np.testing.assert_allclose(model.acquire(frames), 2.0 * truth + 3.0, rtol=1e-4)
    clipped = CalibratedDevice(tm, gain=1e6, full_scale=255.0).open().acquire(frames)
    assert clipped.max() == 255.0


def test_calibrated_device_adds_its_reference_field():
    rng = np.random.default_rng(2)
    tm = (rng.standard_normal((20, 10)) + 1j * rng.standard_normal((20, 10))) / np.sqrt(20)
    b = rng.standard_normal(20) + 1j * rng.standard_normal(20)
    frames = _frames(10)
    with CalibratedDevice(tm, reference_field=b) as model:
        np.testing.assert_allclose(model.acquire(frames), np.abs(frames @ tm.T + b) ** 2, rtol=1e-4)


def test_a_hardware_driver_plugs_in_by_name_without_touching_the_rest():
    class FakeBench(HardwareDevice):
        connected = False

        def _connect(self):
            FakeBench.connected = True

        def _disconnect(self):
            FakeBench.connected = False

        def _display_and_capture(self, frames):
            return frames.sum(axis=1, keepdims=True).repeat(3, axis=1).astype(np.uint8)

        def _describe(self):
            return dict(n_in=5, n_out=3, frame_time_s=1e-3, electrical_power_w=50.0)

    register_backend("fake-bench", FakeBench, replace=True)
    assert "fake-bench" in backend_names()
    with open_device("fake-bench") as device:
        assert FakeBench.connected and isinstance(device, OPUDevice)
        assert device.acquire(np.ones((2, 5), np.uint8)).tolist() == [[5, 5, 5], [5, 5, 5]]
        assert device.metadata()["electrical_power_w"] == 50.0
    assert not FakeBench.connected
    with pytest.raises(ValueError, match="name = 'ideal': expected a name not yet taken"):
        register_backend("ideal", FakeBench)


def test_register_backend_refuses_what_would_fail_later():
    with pytest.raises(TypeError, match="factory = 42: expected a callable"):
        register_backend("bench-42", 42)
    with pytest.raises(TypeError, match="name = 7: expected a string"):
        register_backend(7, IdealDevice)
    for name in ("", "  ", "drivers/bench", "bench.yaml"):
        with pytest.raises(ValueError, match="expected a non-empty name that is not a path"):
            register_backend(name, IdealDevice)
    register_backend("not-a-device", lambda: "a string", replace=True)
    with pytest.raises(TypeError, match="factory returned str: expected an OPUDevice"):
        open_device("not-a-device")


def test_unknown_device_name_lists_the_choices():
    with pytest.raises(ValueError, match=r"device = 'nope': expected a backend .*ideal.*lab-bench"):
        open_device("nope")


def test_backends_refuse_bad_frames_before_the_device_sees_them():
    device = open_device("ideal", n_in=8, n_out=8)
    with pytest.raises(ValueError, match=r"frames: value 0.5 at index \(0, 0\): expected binary"):
        device.acquire(np.full((1, 8), 0.5))
    with pytest.raises(ValueError, match=r"frames: shape \(1, 9\): expected \(batch, 8\)"):
        device.acquire(np.zeros((1, 9), np.uint8))
    assert device.frames_acquired == 0


def test_device_names_are_checked_without_building_and_configs_open_directly():
    from devices.registry import check_device_name
    from photon import load_preset

    assert check_device_name("ideal") == "ideal" and check_device_name("lab-bench") == "lab-bench"
    assert check_device_name("never-read.yaml") == "never-read.yaml"  # the file is read at open
    with pytest.raises(ValueError, match=r"device = 'nope': expected a backend"):
        check_device_name("nope")
    with pytest.raises(TypeError, match=r"device = 3: expected a device name"):
        check_device_name(3)
    config = load_preset("lab-bench").replace(n_in=8, n_out=16)
    with open_device(config, camera__read_noise_e=2.0) as device:
        assert isinstance(device, VirtualDevice) and device.n_in == 8 and device.is_open
        assert device.chain.config.camera.read_noise_e == 2.0


def test_a_batch_too_large_is_refused_before_anything_happens_and_a_large_one_is_chunked(
        monkeypatch):
    from photon.support import memory

    device = open_device("lab-bench", n_in=16, n_out=64)
    huge = np.lib.stride_tricks.as_strided(np.zeros(16, np.uint8), (10 ** 12, 16), (0, 1))
    with pytest.raises(memory.InsufficientMemory, match=r"acquire of 1000000000000 frames on "
                                                        r"'lab-bench': its result needs .* GiB"):
        device.acquire(huge)
    assert device.frames_acquired == 0
    # A batch larger than the working budget runs in chunks, in order, into one array.
    monkeypatch.setattr(memory, "WORK_BUDGET_BYTES", 64 * (4 * 16 + 40 * 64))
    calls = []
    original = device._acquire
    monkeypatch.setattr(device, "_acquire", lambda part: calls.append(len(part)) or original(part))
    frames = np.random.default_rng(0).random((200, 16)) < 0.5
    counts = device.acquire(frames)
    assert counts.shape == (200, 64) and counts.dtype == np.uint8
    assert calls == [64, 64, 64, 8] and device.frames_acquired == 200
