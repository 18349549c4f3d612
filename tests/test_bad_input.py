"""Bad input is refused with an error naming the argument, the value and what was expected."""

import numpy as np
import pytest

from photon import Camera, ConfigError, build_chain, load_config


@pytest.fixture(scope="module")
def chain():
    return build_chain("lab-bench", n_in=16, n_out=32)


@pytest.mark.parametrize("bad, value", [
    (np.full((2, 16), 0.5), "0.5"),
    (np.full((2, 16), 2, np.uint8), "2"),
    (np.full((2, 16), -1, np.int64), "-1"),
    (np.full((2, 16), np.nan), "nan"),
    (np.full((2, 16), np.inf), "inf"),
])
def test_non_binary_frames_are_refused(chain, bad, value):
    bad = bad.copy()
    bad[0, :3] = 0  # the first offending entry is at (0, 3)
    with pytest.raises(ValueError, match=rf"frames: value {value}.* at index \(0, 3\): expected binary"):
        chain.acquire(bad)


def test_wrong_width_is_refused(chain):
    with pytest.raises(ValueError, match=r"frames: shape \(4, 17\): expected \(batch, 16\)"):
        chain.acquire(np.zeros((4, 17), np.uint8))


def test_a_refused_frame_leaves_the_device_untouched(chain):
    elapsed = chain.elapsed_s
    with pytest.raises(ValueError):
        chain.acquire(np.full((2, 16), 3, np.uint8))
    assert chain.elapsed_s == elapsed


@pytest.mark.parametrize("exposure", [-1.0, 0.0, float("nan"), float("inf")])
def test_bad_exposure_is_refused_by_the_camera(exposure):
    with pytest.raises(ConfigError, match=r"'exposure_us' = .*: expected a finite number > 0 \(us\)"):
        Camera.from_settings(8, exposure_us=exposure)


@pytest.mark.parametrize("text, key, value", [
    ("exposure_us: -5.0", "camera.exposure_us", "-5.0"),
    ("exposure_us: .nan", "camera.exposure_us", "nan"),
    ("exposure_us: fast", "camera.exposure_us", "'fast'"),
    ("quantum_efficiency: 1.5", "camera.quantum_efficiency", "1.5"),
    ("adc_bits: 8.5", "camera.adc_bits", "8.5"),
    ("shot_noise: 1", "camera.shot_noise", "1"),
    ("shutter: global", "camera.shutter", "'global'"),
])
def test_bad_yaml_names_the_file_the_key_and_the_value(tmp_path, text, key, value):
    path = tmp_path / "device.yaml"
    path.write_text(f"name: broken\ncamera:\n  {text}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message and f"'{key}'" in message and value in message
    assert "expected" in message


def test_sizes_beyond_the_hardware_are_refused():
    with pytest.raises(ConfigError, match=r"'n_in' = 786433: expected .* <= 786432 mirrors"):
        build_chain("lab-bench", n_in=768 * 1024 + 1, n_out=8)
    with pytest.raises(ConfigError, match=r"'n_out' = .*: expected .* sensor"):
        build_chain("lab-bench", n_in=8, n_out=964 * 1292 + 1)


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"preset = 'lab-bnech': expected one of .*lab-bench"):
        build_chain("lab-bnech")


def test_the_chain_refuses_a_batch_whose_counts_cannot_fit_and_chunks_a_large_one(
        chain, monkeypatch):
    from photon.support import memory

    huge = np.lib.stride_tricks.as_strided(np.zeros(16, np.uint8), (10 ** 12, 16), (0, 1))
    before = chain.frames_acquired
    with pytest.raises(memory.InsufficientMemory, match=r"its result needs .* GiB .*available"):
        chain.acquire(huge)
    assert chain.frames_acquired == before
    monkeypatch.setattr(memory, "WORK_BUDGET_BYTES", 30 * (4 * 16 + 40 * 32))
    frames = np.random.default_rng(1).random((100, 16)) < 0.5
    counts = chain.acquire(frames)
    assert counts.shape == (100, 32) and chain.frames_acquired == before + 100


def test_a_medium_too_large_for_memory_is_refused_before_allocating(monkeypatch):
    """Index arrays of 2^24 pixels (1 GiB) against 1 GiB available: refused, naming the
    sizes; the same medium with 4 GiB available is built (the check can pass)."""
    import photon.medium as medium_module
    from photon import ScatteringMedium
    from photon.support.memory import InsufficientMemory

    monkeypatch.setattr(medium_module, "available_bytes", lambda xp=np: 2 ** 30)
    with pytest.raises(InsufficientMemory, match=r"n_in = 3 .*n_pixels = 16777216.*GiB"):
        ScatteringMedium.from_settings(3, 2 ** 24, tm_storage="streamed")
    with pytest.raises(InsufficientMemory, match=r"dense TM .*tm_storage = 'streamed'"):
        ScatteringMedium.from_settings(2 ** 12, 2 ** 16, tm_storage="dense")
    monkeypatch.setattr(medium_module, "available_bytes", lambda xp=np: 2 ** 32)
    assert ScatteringMedium.from_settings(3, 2 ** 22, tm_storage="streamed").n_pixels == 2 ** 22


def test_host_memory_is_the_control_groups_headroom_where_that_is_smaller(tmp_path,
                                                                          monkeypatch):
    from photon.support import memory

    limit, usage = tmp_path / "memory.max", tmp_path / "memory.current"
    limit.write_text(f"{3 * 2 ** 30}\n")
    usage.write_text(f"{2 ** 30}\n")
    monkeypatch.setattr(memory, "_CGROUP_MEMORY_FILES", ((str(limit), str(usage)),))
    monkeypatch.setattr(memory, "_host_available_bytes", lambda: 20 * 2 ** 30)
    assert memory.available_bytes() == 2 * 2 ** 30
    limit.write_text("max\n")  # no limit: the host's figure
    assert memory.available_bytes() == 20 * 2 ** 30


def test_an_operator_refuses_probe_frames_that_cannot_fit_before_drawing_them(monkeypatch):
    from devices import OPU, open_device
    from photon.support import memory

    monkeypatch.setattr(memory, "available_bytes", lambda xp=np: 2 ** 30)
    with open_device("ideal", n_in=12, n_out=8) as device:
        with pytest.raises(memory.InsufficientMemory, match=r"probe_frames = 4194304"):
            OPU(device, probe_frames=2 ** 22).fit(n_features=12)
        assert device.frames_acquired == 0  # refused before the first frame
        assert OPU(device, probe_frames=64).fit(n_features=12).n_features_in_ == 12
