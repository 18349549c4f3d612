"""Time behaviour (TM drift, laser RIN) and the DMD's macropixels."""

import numpy as np
import pytest

from photon import DMDConfig, MediumConfig, ScatteringMedium, SimulationConfig, build_chain
from tests.stats import Z


def _correlation(a, b) -> float:
    """Real part of the normalized inner product of two complex matrices (phase-sensitive)."""
    return float(np.real(np.vdot(a, b)) / np.sqrt(np.vdot(a, a).real * np.vdot(b, b).real))


@pytest.mark.parametrize("dt_over_tau", [0.1, 0.3, 0.75])
def test_tm_correlation_after_dt_is_sqrt_one_minus_dt_over_tau(dt_over_tau):
    tau = 3600.0
    medium = ScatteringMedium.from_settings(128, 512, drift_time_s=tau, seed=3, drift_seed=4)
    before = medium.transmission_matrix()
    medium.advance(dt_over_tau * tau)
    after = medium.transmission_matrix()
    n = before.size
    # Sample correlation of N complex pairs: standard error below 1 / sqrt(N).
    assert abs(_correlation(before, after) - np.sqrt(1 - dt_over_tau)) < Z / np.sqrt(n)
    # The drifted TM keeps the i.i.d. law: variance 1 / n_in.
    assert np.mean(np.abs(after) ** 2) == pytest.approx(1 / 128, rel=Z * np.sqrt(1 / n))


def test_drift_is_the_same_for_stored_and_streamed_tms_and_decorrelates_after_tau():
    kw = dict(drift_time_s=100.0, seed=1, drift_seed=2, tile_rows=40, tile_cols=96)
    dense = ScatteringMedium.from_settings(64, 256, tm_storage="dense", **kw)
    streamed = ScatteringMedium.from_settings(64, 256, tm_storage="streamed", **kw)
    t0 = dense.transmission_matrix()
    for medium in (dense, streamed):
        medium.advance(37.0)
        medium.advance(30.0)
    np.testing.assert_array_equal(dense.transmission_matrix(), streamed.transmission_matrix())
    dense.advance(100.0)  # now more than tau after the start
    assert abs(_correlation(t0, dense.transmission_matrix())) < Z / np.sqrt(t0.size)


def test_a_static_medium_does_not_move():
    medium = ScatteringMedium(MediumConfig(drift_time_s=None), 16, 32)
    before = medium.transmission_matrix()
    medium.advance(1e6)
    np.testing.assert_array_equal(before, medium.transmission_matrix())


def test_acquisition_advances_the_device_clock_and_drifts_the_tm():
    chain = build_chain("ideal", n_in=16, n_out=64, medium__drift_time_s=1.0)
    before = chain.medium.transmission_matrix()
    chain.acquire(np.ones((50, 16), np.uint8))
    assert chain.elapsed_s == pytest.approx(50 * chain.frame_time_s)
    assert not np.array_equal(before, chain.medium.transmission_matrix())


def test_rin_scales_a_whole_frame_by_one_common_factor():
    rin = 0.01
    n_frames = 400
    chain = build_chain("ideal", n_in=32, n_out=256, laser__rin_rms=rin)
    frame = (np.arange(32) % 3 == 0).astype(np.uint8)
    frames = np.tile(frame, (n_frames, 1))
    noise_free = chain.intensity(frames[:1])[0] * chain.watts_per_unit_intensity
    counts = chain.acquire(frames)
    ideal_counts = chain.camera(noise_free[None, :].copy(), chain.laser.wavelength_nm)[0]
    ratio = counts / ideal_counts
    # One factor per frame: every pixel of a frame sees the same ratio (to float precision).
    spread = ratio.max(axis=1) - ratio.min(axis=1)
    assert np.all(spread < 1e-5)
    factors = ratio[:, 0]
    assert factors.mean() == pytest.approx(1.0, abs=Z * rin / np.sqrt(n_frames))
    # Sample sd of n Gaussian values: relative standard error 1 / sqrt(2 (n - 1)).
    assert factors.std(ddof=1) == pytest.approx(rin, rel=Z / np.sqrt(2 * (n_frames - 1)))


@pytest.mark.parametrize("mirrors", [2, 5])
def test_a_macropixel_row_is_the_sum_of_its_mirror_rows(mirrors):
    n_in = 24
    medium = ScatteringMedium(MediumConfig(), n_in, 40, dmd=DMDConfig(macropixel_mirrors=mirrors),
                              simulation=SimulationConfig(tile_rows=16, tile_cols=16), seed=9)
    mirror_tm = medium.mirror_transmission_matrix()  # (n_pixels, n_in * mirrors)
    summed = mirror_tm.reshape(40, n_in, mirrors).sum(axis=2)
    np.testing.assert_allclose(medium.transmission_matrix(), summed, rtol=1e-5, atol=1e-6)
    # A macropixel feature has variance 1/n_in (its mirrors have 1/(n_in * mirrors)).
    assert np.mean(np.abs(mirror_tm) ** 2) == pytest.approx(1 / (n_in * mirrors), rel=0.15)


def test_the_chain_sees_macropixels_as_tiled_mirror_frames():
    chain = build_chain("ideal", n_in=12, n_out=64, dmd__macropixel_mirrors=3)
    frames = (np.random.default_rng(0).random((5, 12)) < 0.5).astype(np.uint8)
    mirror_frames = np.repeat(frames, 3, axis=1)
    expected = np.abs(mirror_frames @ chain.medium.mirror_transmission_matrix().T) ** 2
    np.testing.assert_allclose(chain.intensity(frames), expected, rtol=1e-4, atol=1e-6)


def _drifting(storage="dense", **kw):
    return ScatteringMedium.from_settings(96, 200, n_polarizations=2, drift_time_s=100.0, seed=5,
                                          drift_seed=6, held_on_mirrors=40, tm_storage=storage,
                                          speckle_grain_px=0.0, **kw)


def test_drift_by_two_products_equals_drift_by_the_mixed_tm():
    from photon.medium import _PRODUCT_MIX_MAX_BATCH

    medium = _drifting()
    medium.advance(137.0)                       # keyframes 1 and 2, a = 0.37
    frames = (np.random.default_rng(1).random((_PRODUCT_MIX_MAX_BATCH + 8, 96)) < 0.5)
    frames = frames.astype(np.float32)
    small = medium.field(frames[:8], uniform=0.01)        # two products, mixed
    large = medium.field(frames, uniform=0.01)[:8]        # one product with the mixed TM
    weights = medium.stored_weights
    keyframes = medium._keyframes[np]
    assert sorted(keyframes) == [1, 2]
    # The large batch is exactly today's product with the TM now (the keyframes' mix).
    expected = frames @ weights
    expected += medium._operand(np)["reference"] + np.float32(0.01) * weights.sum(axis=0)
    expected = expected[:8]
    np.testing.assert_array_equal(large.reshape(8, -1), expected)
    # Same linear map in another order of float32 operations: each output sums n_in + 2
    # products, so the two differ by at most about (n_in + 4) eps times the sum of the
    # absolute terms (a deterministic bound on float32 summation; Higham, ch. 3).
    keep, fresh = np.sqrt(1 - 0.37), np.sqrt(0.37)
    absolute = np.abs(frames[:8]).astype(np.float64) @ (
        keep * np.abs(keyframes[1]["weights"]) + fresh * np.abs(keyframes[2]["weights"]))
    bound = (96 + 4) * np.finfo(np.float32).eps * (absolute + np.abs(expected) + 0.01 * 96)
    assert np.all(np.abs(small.reshape(8, -1) - large.reshape(8, -1)) <= bound)


def test_drift_is_computed_at_the_next_product_and_handed_out_weights_stay():
    medium = _drifting()
    before = medium.stored_weights.copy()
    held = medium.stored_weights
    medium.advance(30.0)
    medium.advance(30.0)
    assert medium._now[np]["position"] == (0, 0.0)         # advance computes nothing
    now = medium.stored_weights
    assert medium._now[np]["position"] == (0, 0.6)
    np.testing.assert_array_equal(held, before)
    keep, fresh = np.float32(np.sqrt(0.4)), np.float32(np.sqrt(0.6))
    second = medium._keyframes[np][1]["weights"]
    np.testing.assert_array_equal(now, keep * before + fresh * second)
    medium.advance(150.0)                                 # t = 2.1 tau: keyframes 2 and 3
    medium.stored_weights
    assert sorted(medium._keyframes[np]) == [2, 3]


@pytest.mark.parametrize("precision", ["float32", "tf32"])
def test_dense_and_streamed_drifting_fields_agree_for_small_and_large_batches(precision):
    dense = _drifting("dense", tm_precision=precision)
    streamed = _drifting("streamed", tm_precision=precision, tile_rows=40, tile_cols=96)
    frames = (np.random.default_rng(2).random((48, 96)) < 0.5).astype(np.float32)
    for medium in (dense, streamed):
        medium.advance(251.0)
    for batch in (4, 48):
        np.testing.assert_allclose(dense.field(frames[:batch]), streamed.field(frames[:batch]),
                                   rtol=1e-5, atol=1e-5)
