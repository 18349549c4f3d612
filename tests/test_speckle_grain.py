"""The speckle grain: a property of the medium and of each pixel's and mirror's position.

Each TM entry is a sum of sources keyed by the pixel's position on the sensor and the
mirror's on the DMD (photon/grain.py, docs/design.md section 2): a larger region of
interest adds pixels and changes none, a streamed TM is the stored one, nothing wraps
around an edge, and neighbouring mirrors blurred together have the stated correlation.
Statistical tolerances come from the number of independent samples (tests/stats.py).
"""

import math

import numpy as np
import pytest

from photon import ScatteringMedium, build_chain
from photon.grain import GrainAxis, plane_positions, sensor_pixel_positions
from tests.stats import Z

GRAINS = dict(medium__speckle_grain_px=0.9, medium__input_grain_mirrors=0.9)


def _field_correlation(a, b):
    """|<a, b>| / (|a| |b|) over the inputs (rows of a TM as complex vectors)."""
    return abs(np.vdot(a, b)) / (np.linalg.norm(a) * np.linalg.norm(b))


@pytest.mark.parametrize("storage", ["dense", "streamed"])
def test_a_larger_region_of_interest_adds_pixels_and_changes_none(storage):
    settings = dict(GRAINS, n_in=48, dmd__held_on_mirrors=16, simulation__tm_storage=storage,
                    simulation__tile_rows=20, simulation__tile_cols=200)
    small = build_chain("lab-bench", n_out=300, **settings).medium          # part of row 0
    large = build_chain("lab-bench", n_out=1500, **settings).medium         # two sensor rows
    np.testing.assert_array_equal(large.transmission_matrix()[:300], small.transmission_matrix())
    np.testing.assert_array_equal(large.reference_field()[:300], small.reference_field())


def test_streamed_equals_stored_with_a_grain_binning_and_drift():
    settings = dict(GRAINS, n_in=40, n_out=96, camera__binning=2, dmd__held_on_mirrors=8,
                    medium__drift_time_s=50.0, simulation__tile_rows=24,
                    simulation__tile_cols=150)
    dense = build_chain("lab-bench", simulation__tm_storage="dense", **settings)
    streamed = build_chain("lab-bench", simulation__tm_storage="streamed", **settings)
    for chain in (dense, streamed):
        chain.advance(70.0)        # between two keyframes
    np.testing.assert_allclose(streamed.medium.transmission_matrix(),
                               dense.medium.transmission_matrix(), rtol=1e-5, atol=1e-6)
    frames = (np.random.default_rng(0).random((5, 40)) < 0.5).astype(np.uint8)
    np.testing.assert_allclose(streamed.intensity(frames), dense.intensity(frames), rtol=1e-4,
                               atol=1e-7)


def test_binned_outputs_keep_their_sensor_pixels_as_the_region_grows():
    out_small, out_large = (4, 8), (8, 8)   # the camera's binning grids of 32 and 64 outputs
    small = sensor_pixel_positions(32, 20, 2, out_small)
    large = sensor_pixel_positions(64, 20, 2, out_large)
    # Output o covers sensor rows 2 (o // 10) + {0, 1}, columns 2 (o % 10) + {0, 1}.
    by_output = {}
    for positions, grid in ((small, out_small), (large, out_large)):
        rows, cols = grid
        flat_r, flat_c = np.divmod(np.arange(len(positions)), cols * 2)
        output = (flat_r // 2) * cols + flat_c // 2
        for o, (r, c) in zip(output, positions):
            by_output.setdefault((len(positions), int(o)), set()).add((int(r), int(c)))
    for o in range(32):
        assert by_output[(128, o)] == by_output[(256, o)]
        assert (2 * (o // 10), 2 * (o % 10)) in by_output[(128, o)]


def test_nothing_wraps_around_the_sensor_edges():
    # A sensor 32 pixels wide, 4096 inputs: pixel rows of the TM are 4096-long samples.
    n_in, width, sigma = 4096, 32, 0.9
    chain = build_chain("ideal", n_in=n_in, n_out=2 * width, camera__sensor_cols=width,
                        medium__speckle_grain_px=sigma)
    tm = chain.medium.transmission_matrix().astype(np.complex128)
    se = 1.0 / math.sqrt(n_in)  # of the correlation of two independent rows
    expected = math.exp(-1.0 / (4 * sigma ** 2))  # field correlation of neighbours
    for row in (0, width):
        left, right = tm[row], tm[row + width - 1]
        assert _field_correlation(left, right) < Z * se     # opposite edges: independent
        assert _field_correlation(tm[row], tm[row + 1]) == pytest.approx(expected, abs=0.03)
    # Last pixel of a sensor row and first of the next are far apart on the sensor.
    assert _field_correlation(tm[width - 1], tm[width]) < Z * se
    # Vertical neighbours (one sensor row apart) are neighbours.
    assert _field_correlation(tm[3], tm[3 + width]) == pytest.approx(expected, abs=0.03)


def test_neighbouring_mirrors_are_correlated_and_the_all_on_frame_keeps_its_light():
    """Blur of the DMD image (sum h = 1): columns correlated as the discrete kernel says,
    a single mirror's light spread (mean |T|^2 = sum h^2 / n), the all-on field the
    blurred indicator of the used mirrors."""
    sigma, cols, n_pixels = 0.9, 16, 4096
    n_in = 16 * 16
    medium = ScatteringMedium.from_settings(n_in, n_pixels, input_grain_mirrors=sigma,
                                            cols=cols)
    tm = medium.transmission_matrix().astype(np.complex128)         # (pixels, mirrors)
    axis = GrainAxis(plane_positions(n_in, cols), cols, sigma, keep="uniform")
    taps = axis.taps
    kernel_1d = np.correlate(taps, taps, mode="full")                 # lag -2r .. 2r
    r = axis.radius
    rho = {d: kernel_1d[2 * r + d] / kernel_1d[2 * r] for d in (1, 2)}
    se = 1.0 / math.sqrt(n_pixels)
    for d, expected in rho.items():   # horizontal neighbours, interior of the region
        values = [_field_correlation(tm[:, i], tm[:, i + d]) for i in (5 * 16 + 5, 9 * 16 + 6)]
        assert np.mean(values) == pytest.approx(expected, abs=Z * se)
    vertical = _field_correlation(tm[:, 6 * 16 + 7], tm[:, 7 * 16 + 7])
    assert vertical == pytest.approx(rho[1], abs=Z * se)
    # A single mirror's power: sum h^2 (2-D) over n.
    power = np.mean(np.abs(tm) ** 2, axis=0)
    expected_power = (taps ** 2).sum() ** 2 / n_in
    # |T|^2 exponential per entry; neighbours correlated, so about 4 entries per sample.
    se = math.sqrt(4.0 / (n_pixels * n_in))
    assert np.mean(power) == pytest.approx(expected_power, rel=Z * se)
    # The all-on field: each source weighted by the blurred indicator of the used mirrors.
    indicator = np.zeros((16 + 2 * r, 16 + 2 * r))
    indicator[r:r + 16, r:r + 16] = 1.0
    blurred = np.apply_along_axis(lambda v: np.convolve(v, taps, mode="same"), 0, indicator)
    blurred = np.apply_along_axis(lambda v: np.convolve(v, taps, mode="same"), 1, blurred)
    all_on = np.abs(tm.sum(axis=1)) ** 2
    expected_on = (blurred ** 2).sum() / n_in
    # |sum|^2 of a circular Gaussian is exponential: relative se 1 / sqrt(n_pixels).
    assert all_on.mean() == pytest.approx(expected_on, rel=Z / math.sqrt(n_pixels))
    assert 0.85 < expected_on < 1.0   # the region's edges lose a little light to the blur


def test_no_grain_keeps_each_entry_its_own_source():
    """Without a grain an entry is the generator's entry at (mirror, pixel): as before."""
    medium = ScatteringMedium.from_settings(8, 20)
    axis = medium._pixel_grain
    assert axis.identity and not medium.grained
    from photon.gaussian_matrix import GaussianMatrix
    real, imag = GaussianMatrix(0, (0, 0, 0), 8, 20, 1 / 8).block(0, 8, 0, 20)
    np.testing.assert_array_equal(medium.transmission_matrix(), (real + 1j * imag).T)


@pytest.mark.parametrize("pitch", [1, 2])
def test_a_sub_sampled_read_out_spaces_the_outputs_and_their_correlation_falls_as_stated(pitch):
    """Outputs ``pitch`` pixels apart along a sensor row: the field correlation of two
    neighbouring outputs' TM rows is ``exp(-d^2 / 4 sigma^2)`` at ``d = pitch`` (the
    intensity correlation ``exp(-d^2 / 2 sigma^2)`` of a grain of rms radius sigma)."""
    sigma, n_in = 0.9, 1024
    chain = build_chain("lab-bench", n_in=n_in, n_out=160, medium__speckle_grain_px=sigma,
                        medium__input_grain_mirrors=0.0, dmd__macropixel_mirrors=1,
                        camera__output_pitch_bins=pitch, simulation__tm_storage="dense")
    positions = chain.medium._pixel_grain.positions
    np.testing.assert_array_equal(positions[:3], [[0, 0], [0, pitch], [0, 2 * pitch]])
    tm = chain.medium.transmission_matrix()
    rho = np.array([_field_correlation(tm[o], tm[o + 1]) for o in range(tm.shape[0] - 1)])
    expected = math.exp(-pitch ** 2 / (4 * sigma ** 2))
    # Each estimate over n_in inputs has an error of about (1 - rho^2) / sqrt(n_in) (plus
    # the |.|'s floor sqrt(pi / 4 n_in) near zero); neighbouring pairs share rows, so count
    # a quarter of them as independent.
    se = ((1 - expected ** 2) / math.sqrt(n_in) + math.sqrt(math.pi / (4 * n_in))) \
        / math.sqrt(rho.size / 4)
    assert abs(rho.mean() - expected) < Z * se, (rho.mean(), expected, se)


def test_the_output_pitch_is_checked_against_the_sensor():
    from photon import ConfigError

    with pytest.raises(ConfigError, match="output_pitch_bins"):
        build_chain("lab-bench", n_in=8, n_out=8, camera__output_pitch_bins=17)
    with pytest.raises(ConfigError, match="n_out"):   # 1292 / 16 = 80 outputs a row, 964 rows
        build_chain("lab-bench", n_in=8, n_out=81 * 61, camera__output_pitch_bins=16)
    assert build_chain("lab-bench", n_in=8, n_out=80 * 61,
                       camera__output_pitch_bins=16).camera.config.rows_read(80 * 61) == 961
