"""The counter-based Gaussian generator: the cipher, the law, and block independence."""

import numpy as np
import pytest
from scipy import stats

from photon.counter_rng import (circular_gaussian_block, circular_gaussian_side_by_side,
                               matrix_key, philox4x32)
from tests.stats import Z


@pytest.mark.parametrize("counter, key, expected", [
    # Known-answer vectors of Random123's kat_vectors for philox4x32_10.
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF, 0xFFFFFFFF), (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
])
def test_philox_matches_the_published_known_answers(counter, key, expected):
    words = philox4x32(*(np.array([c], np.uint64) for c in counter), key)
    assert tuple(int(w[0]) for w in words) == expected


def test_any_block_is_the_same_slice_of_the_matrix():
    key = matrix_key(11, (2, 3))
    real, imag = circular_gaussian_block(key, 0, 300, 0, 257, 1.0)
    for r0, r1, c0, c1 in [(0, 1, 0, 1), (17, 200, 33, 34), (5, 300, 1, 257), (299, 300, 100, 250)]:
        re, im = circular_gaussian_block(key, r0, r1, c0, c1, 1.0)
        np.testing.assert_array_equal(re, real[r0:r1, c0:c1])
        np.testing.assert_array_equal(im, imag[r0:r1, c0:c1])


def test_large_blocks_filled_by_two_threads_equal_row_by_row_blocks():
    key = matrix_key(4)
    real, imag = circular_gaussian_block(key, 10, 1034, 0, 512, 0.5)   # above the thread split
    rows = [circular_gaussian_block(key, r, r + 1, 0, 512, 0.5) for r in (10, 500, 1033)]
    for (re, im), r in zip(rows, (0, 490, 1023)):
        np.testing.assert_array_equal(re[0], real[r])
        np.testing.assert_array_equal(im[0], imag[r])


def test_keys_differ_between_seeds_and_streams():
    keys = {matrix_key(s, t) for s in range(4) for t in [(), (0,), (1,), (0, 1)]}
    assert len(keys) == 16


def test_entries_are_circular_gaussian_with_exponential_intensity():
    std = 0.3
    real, imag = circular_gaussian_block(matrix_key(1), 0, 512, 0, 1024, std)
    n = real.size
    intensity = (real.astype(np.float64) ** 2 + imag ** 2) / (2 * std ** 2)
    # Exponential law of |z|^2 (speckle), uniform phase, independent real and imaginary parts.
    assert stats.kstest(intensity.ravel(), "expon").pvalue > 1e-4
    phase = np.angle(real + 1j * imag.astype(np.float64)).ravel()
    assert stats.kstest(phase, "uniform", args=(-np.pi, 2 * np.pi)).pvalue > 1e-4
    assert abs(intensity.mean() - 1) < Z / np.sqrt(n)           # exponential: sd 1
    assert abs(np.mean(real * imag)) / std ** 2 < Z / np.sqrt(n)
    # Neighbouring entries (same counter, and adjacent counters) are uncorrelated.
    for a, b in [(real[:, 0::2], real[:, 1::2]), (real[:, :-1], real[:, 1:]), (real[:-1], real[1:])]:
        assert abs(np.corrcoef(a.ravel(), b.ravel())[0, 1]) < Z / np.sqrt(a.size)


def test_block_outside_the_counter_range_is_refused():
    with pytest.raises(ValueError, match="expected 0 <= start <= stop <= 2\\^32"):
        circular_gaussian_block(matrix_key(0), 0, 2, 5, 3, 1.0)


@pytest.mark.parametrize("c0, c1", [(0, 64), (6, 40), (7, 40), (6, 41), (3, 4)])
def test_side_by_side_block_is_real_then_imaginary_parts_of_each_row(c0, c1):
    key = matrix_key(3, (1,))
    real, imag = circular_gaussian_block(key, 5, 25, c0, c1, 0.5)
    both = circular_gaussian_side_by_side(key, 5, 25, c0, c1, 0.5)
    assert both.flags.c_contiguous and both.shape == (20, 2 * (c1 - c0))
    np.testing.assert_array_equal(both, np.concatenate([real, imag], axis=1))
