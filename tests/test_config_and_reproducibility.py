"""Presets, YAML round trips, seeds, and stored versus streamed transmission matrices."""

import numpy as np
import pytest
import yaml

from photon import (DeviceConfig, build_chain, dump_config, load_config, load_preset,
                    preset_names)
from photon.gaussian_matrix import GaussianMatrix


def test_the_three_presets_ship_and_load():
    assert {"ideal", "lab-bench", "datacenter-opu"} <= set(preset_names())
    datacenter = load_preset("datacenter-opu")
    assert (datacenter.dmd.rows, datacenter.dmd.cols) == (912, 1140)
    assert datacenter.n_in == 912 * 1140 and datacenter.n_out == 2_000_000
    assert datacenter.medium.drift_time_s == 3600.0
    assert datacenter.electrical_power_w == 30.0
    for name in ("lab-bench", "datacenter-opu"):  # realistic noise, per the issue
        cam = load_preset(name).camera
        assert cam.adc_bits == 8 and cam.read_noise_e == 10.0 and cam.full_well_e == 10_000.0
        assert cam.quantum_efficiency == 0.6 and load_preset(name).laser.rin_rms == 0.003
        assert load_preset(name).polarizer.extinction_ratio == 100.0
        assert load_preset(name).dmd.contrast == 1000.0


@pytest.mark.parametrize("name", ["ideal", "lab-bench", "datacenter-opu"])
def test_a_config_written_out_and_read_back_is_equal(tmp_path, name):
    config = load_preset(name).replace(camera__read_noise_e=7.25, polarizer=None)
    path = tmp_path / "out.yaml"
    dump_config(config, path)
    assert load_config(path) == config


def test_replace_validates_and_keeps_other_fields():
    config = load_preset("lab-bench")
    changed = config.replace(n_in=64, laser__power_mw=50.0)
    assert changed.n_in == 64 and changed.laser.power_mw == 50.0
    assert changed.camera == config.camera
    assert yaml.safe_load(dump_config(changed))["laser"]["power_mw"] == 50.0
    assert DeviceConfig() == DeviceConfig()


def test_the_datacenter_preset_streams_its_tm_and_reports_its_timing():
    chain = build_chain("datacenter-opu")
    assert chain.medium.storage == "streamed"  # 1e6 x 2e6 complex entries do not fit
    # The CMV2000-class read-out of the 977 sensor rows holding 2e6 outputs (2048 per row):
    # frame overhead 32.25 us + 977 rows x 2.6875 us (tests/test_readout.py has the model).
    assert chain.frame_time_s == pytest.approx((32.25 + 977 * 2.6875) * 1e-6)
    small = build_chain("datacenter-opu", n_in=32, n_out=64)
    assert small.medium.storage == "dense"
    assert small.acquire(np.ones((2, 32), np.uint8)).shape == (2, 64)


def test_same_seeds_give_bit_identical_counts():
    frames = (np.random.default_rng(1).random((8, 64)) < 0.5).astype(np.uint8)
    a = build_chain("lab-bench", n_in=64, n_out=256).acquire(frames)
    b = build_chain("lab-bench", n_in=64, n_out=256).acquire(frames)
    np.testing.assert_array_equal(a, b)
    c = build_chain("lab-bench", n_in=64, n_out=256, seeds__camera=99).acquire(frames)
    assert not np.array_equal(a, c)


def test_each_random_stream_has_its_own_seed():
    base = build_chain("lab-bench", n_in=32, n_out=64)
    other_noise = build_chain("lab-bench", n_in=32, n_out=64, seeds__camera=7, seeds__laser=8)
    np.testing.assert_array_equal(base.medium.transmission_matrix(),
                                  other_noise.medium.transmission_matrix())
    other_tm = build_chain("lab-bench", n_in=32, n_out=64, seeds__tm=7)
    assert not np.allclose(base.medium.transmission_matrix(), other_tm.medium.transmission_matrix())


def test_stored_and_streamed_tms_are_the_same_matrix():
    kw = dict(n_in=300, n_out=500, simulation__tile_rows=128, simulation__tile_cols=192)
    dense = build_chain("lab-bench", simulation__tm_storage="dense", **kw)
    streamed = build_chain("lab-bench", simulation__tm_storage="streamed", **kw)
    np.testing.assert_array_equal(dense.medium.transmission_matrix(),
                                  streamed.medium.transmission_matrix())
    frames = (np.random.default_rng(2).random((16, 300)) < 0.5).astype(np.uint8)
    np.testing.assert_allclose(dense.intensity(frames), streamed.intensity(frames), rtol=1e-4,
                               atol=1e-7)
    # Counts agree except where float summation order tips a rounding (at most 1 DN, rarely).
    diff = np.abs(dense.acquire(frames).astype(int) - streamed.acquire(frames).astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3


def test_a_smaller_matrix_is_the_corner_of_a_larger_one():
    small = GaussianMatrix(5, (0,), 70, 90, 1.0).block(0, 70, 0, 90)
    large = GaussianMatrix(5, (0,), 200, 300, 1.0).block(0, 70, 0, 90)
    np.testing.assert_array_equal(small[0], large[0])
    np.testing.assert_array_equal(small[1], large[1])


def test_the_block_size_changes_memory_not_the_matrix():
    a = build_chain("lab-bench", n_in=200, n_out=300, simulation__tile_rows=1024)
    b = build_chain("lab-bench", n_in=200, n_out=300, simulation__tile_rows=7,
                    simulation__tile_cols=33, simulation__tm_storage="streamed")
    np.testing.assert_array_equal(a.medium.transmission_matrix(), b.medium.transmission_matrix())


def test_tm_entries_are_circular_gaussian_with_variance_one_over_n_in():
    tm = build_chain("ideal", n_in=256, n_out=1024).medium.transmission_matrix()
    n = tm.size
    assert np.mean(np.abs(tm) ** 2) == pytest.approx(1 / 256, rel=5 / np.sqrt(n))
    # Circular: real and imaginary parts equal in variance and uncorrelated, zero mean.
    re, im = tm.real.ravel() * 16, tm.imag.ravel() * 16  # scaled to unit-ish variance
    assert abs(re.var() - im.var()) < 5 * np.sqrt(2 / n)
    assert abs(np.mean(re * im)) < 5 * 0.5 / np.sqrt(n)
    assert abs(re.mean()) < 5 * np.sqrt(0.5 / n)


def test_one_blas_thread_limits_every_blas_pool_inside_the_block_only():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from photon.support.threads import one_blas_thread

    def blas_threads():
        return [pool["num_threads"] for pool in threadpoolctl.threadpool_info()
                if pool["user_api"] == "blas"]

    before = blas_threads()
    with one_blas_thread():
        assert blas_threads() and all(n == 1 for n in blas_threads())
    assert blas_threads() == before
