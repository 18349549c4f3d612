"""Speckle statistics of the noise-free chain against the theory of docs/design.md section 2."""

import numpy as np
import pytest
from scipy import stats as sps

from photon import build_chain, load_preset, speckle_contrast_for_leak
from photon.speckle import disjoint_frames
from tests.stats import Z, contrast_and_se, mean_and_se

N_IN, N_OUT, N_FRAMES = 64, 32768, 8  # 8 disjoint frames x 32768 pixels = 262144 samples


def _intensity(**changes):
    chain = build_chain("ideal", n_in=N_IN, n_out=N_OUT, **changes)
    frames = disjoint_frames(N_IN, N_FRAMES)
    return chain, frames, chain.intensity(frames)


def test_polarized_speckle_is_exponential_with_unit_contrast():
    _, frames, intensity = _intensity()
    on = frames.sum(axis=1)[0]
    contrast, se = contrast_and_se(intensity)
    assert abs(contrast - 1.0) < Z * se
    # No parameter is fitted: the mean |x|^2 / n_in is known, so the KS law is exact.
    ks = sps.kstest(intensity.ravel(), sps.expon(scale=on / N_IN).cdf)
    assert ks.pvalue > 1e-4


def test_unpolarized_speckle_is_gamma_two_with_contrast_one_over_sqrt2():
    _, frames, intensity = _intensity(polarizer=None)
    on = frames.sum(axis=1)[0]
    contrast, se = contrast_and_se(intensity)
    assert abs(contrast - 1 / np.sqrt(2)) < Z * se
    ks = sps.kstest(intensity.ravel(), sps.gamma(a=2, scale=on / N_IN).cdf)
    assert ks.pvalue > 1e-4


@pytest.mark.parametrize("extinction_ratio", [2.0, 10.0, 100.0])
def test_contrast_through_a_leaky_polarizer(extinction_ratio):
    _, _, intensity = _intensity(polarizer__extinction_ratio=extinction_ratio)
    eps = 1 / extinction_ratio
    expected = np.sqrt(1 + eps ** 2) / (1 + eps)
    assert expected == pytest.approx(speckle_contrast_for_leak(eps))
    contrast, se = contrast_and_se(intensity)
    assert abs(contrast - expected) < Z * se


def test_intensity_is_exactly_abs_r_x_squared():
    chain, frames, intensity = _intensity()
    r = chain.medium.transmission_matrix()  # (n_out, n_in)
    expected = np.abs(frames.astype(np.complex128) @ r.T.astype(np.complex128)) ** 2
    np.testing.assert_allclose(intensity, expected, rtol=2e-5, atol=1e-7)


@pytest.mark.parametrize("pair", ["same", "overlapping", "disjoint"])
def test_second_moment_matches_the_opu_kernel(pair):
    """Mean over TMs (= over independent pixels) of y(x) y(x') = s^4 (|x|^2|x'|^2 + (x.x')^2)."""
    n_in, n_out = 48, 200_000
    chain = build_chain("ideal", n_in=n_in, n_out=n_out)
    rng = np.random.default_rng(11)
    x = (rng.random(n_in) < 0.5).astype(np.uint8)
    if pair == "same":
        x2 = x.copy()
    elif pair == "overlapping":
        x2 = x.copy()
        x2[: n_in // 2] = rng.random(n_in // 2) < 0.5
    else:
        x2 = 1 - x
    y = chain.intensity(np.stack([x, x2]))
    s2 = 1.0 / n_in
    dot = float(x @ x2.astype(float))
    kernel = s2 ** 2 * (x.sum() * x2.sum() + dot ** 2)
    mean, se = mean_and_se(y[0].astype(np.float64) * y[1])
    assert abs(mean - kernel) < Z * se
    mean1, se1 = mean_and_se(y[0])
    assert abs(mean1 - s2 * x.sum()) < Z * se1


def test_dmd_leakage_and_held_on_mirrors_add_the_expected_mean_field():
    """All-off frames see the leaked field (mean 1/contrast) plus the reference (held/n_in)."""
    n_in, n_out, held, contrast = 32, 50_000, 16, 100.0
    chain = build_chain("ideal", n_in=n_in, n_out=n_out, dmd__contrast=contrast,
                        dmd__held_on_mirrors=held)
    y = chain.intensity(np.zeros((1, n_in), np.uint8))
    mean, se = mean_and_se(y)
    assert abs(mean - (1 / contrast + held / n_in)) < Z * se
    b = chain.medium.reference_field()
    ref_mean, ref_se = mean_and_se(np.abs(b) ** 2)
    assert abs(ref_mean - held / n_in) < Z * ref_se


def test_the_presets_speckle_grain_correlates_neighbours_as_stated():
    """Grain sigma: intensity correlation exp(-d^2 / 2 sigma^2) at lag d, per-pixel law unchanged.

    The tests above use the ideal preset, whose pixels are independent (grain 0): their
    standard errors count independent samples. Here the lab-bench grain (0.9 px, a speckle
    size of 2 pixels) is checked on its own; standard errors come from 16 independent
    blocks (4 disjoint frames x 4 quadrants) rather than from the correlated pixels.
    """
    sigma = load_preset("lab-bench").medium.speckle_grain_px
    assert sigma == load_preset("datacenter-opu").medium.speckle_grain_px == 0.9
    side, n_in, n_frames = 256, 64, 4
    # A sensor 256 pixels wide: the outputs fill 256 of its rows.
    chain = build_chain("ideal", n_in=n_in, n_out=side * side, medium__speckle_grain_px=sigma,
                        camera__sensor_cols=side)
    frames = disjoint_frames(n_in, n_frames)
    intensity = chain.intensity(frames).astype(np.float64)
    # The grained TM is the one the camera sees.
    r = chain.medium.transmission_matrix()
    np.testing.assert_allclose(intensity, np.abs(frames @ r.T.astype(np.complex128)) ** 2,
                               rtol=2e-4, atol=1e-6)
    on = frames.sum(axis=1)[0]
    grids = intensity.reshape(n_frames, side, side) / (on / n_in) - 1.0  # unit mean, centred
    half = side // 2
    for lag in (1, 2):
        expected = np.exp(-lag ** 2 / (2 * sigma ** 2))
        blocks = []
        for grid in grids:
            # Pairs within the sensor (nothing wraps around its edges).
            across = grid[:, :-lag] * grid[:, lag:]
            down = grid[:-lag, :] * grid[lag:, :]
            for i in (0, half):
                for j in (0, half):
                    block = (slice(i, i + half - lag), slice(j, j + half - lag))
                    blocks.append((across[block].mean() + down[block].mean())
                                  / (2 * (grid[block] ** 2).mean()))
        mean, se = mean_and_se(blocks)
        assert abs(mean - expected) < Z * se, (lag, mean, expected, se)
    # Each pixel is still polarized speckle: exponential, contrast 1 (pixels 5 apart are
    # independent to exp(-25 / 1.62) = 2e-7).
    sparse = (grids[:, ::5, ::5] + 1.0).ravel()
    ks = sps.kstest(sparse, sps.expon().cdf)
    assert ks.pvalue > 1e-4
