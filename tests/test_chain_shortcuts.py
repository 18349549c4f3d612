"""The chain's shortcuts compute what the chain computes without them.

One product for complementary halves (photon.complement_pairs) and the intensity table of
a device with few inputs (OpticalChain._intensity_table) each equal the direct computation
to float32 rounding, on a chain with DMD leakage, a leaky polarizer (two polarizations)
and a speckle grain (carried by the TM's entries, photon.grain).
"""

from __future__ import annotations

import dataclasses

import numpy as np

import photon.complement_pairs as pairs
from devices import open_device
from photon import build_chain
from photon.complement_pairs import complementary_inputs
from photon.dmd import DMD

RTOL = 2e-6  # of the batch's largest intensity: a few float32 roundings of a sum


def _direct(monkeypatch, chain, frames):
    """The chain's intensity with the complementary-halves shortcut switched off."""
    with monkeypatch.context() as patch:
        patch.setattr(pairs, "complementary_inputs", lambda frames: None)
        return chain._computed_intensity(frames)


def _complementary(rng, b, d, n_in):
    x = (rng.random((b, d)) < 0.3).astype(np.uint8)
    frames = np.zeros((2 * b, n_in), np.uint8)
    frames[:b, :d] = x
    frames[b:, :d] = 1 - x
    return frames


def test_complementary_inputs_are_found_only_where_the_halves_pair_up():
    rng = np.random.default_rng(0)
    frames = _complementary(rng, 6, 10, 16)
    np.testing.assert_array_equal(complementary_inputs(frames), [1] * 10 + [0] * 6)
    assert complementary_inputs(frames.astype(bool)) is not None
    assert complementary_inputs(frames[:-1]) is None               # odd
    assert complementary_inputs(frames[:2]) is None                # too small
    broken = frames.copy()
    broken[-1, 3] ^= 1
    assert complementary_inputs(broken) is None
    assert complementary_inputs((rng.random((8, 16)) < 0.5).astype(np.uint8)) is None


def test_one_product_for_complementary_halves_equals_two(monkeypatch):
    chain = build_chain("lab-bench", n_in=64, n_out=256)   # leakage, 2 polarizations, grain
    assert chain.medium.n_polarizations == 2 and chain.medium.speckle_grain_px > 0
    frames = _complementary(np.random.default_rng(1), 20, 48, 64)
    expected = _direct(monkeypatch, chain, frames)
    np.testing.assert_allclose(chain.intensity(frames), expected, rtol=0,
                               atol=RTOL * expected.max())


def test_the_ideal_device_takes_the_same_shortcut():
    device = open_device("ideal", n_in=32, n_out=128, seed=3)
    frames = _complementary(np.random.default_rng(2), 12, 32, 32)
    tm = device.transmission_matrix()
    expected = np.abs(frames.astype(np.complex64) @ tm.T) ** 2
    np.testing.assert_allclose(device.acquire(frames), expected, rtol=0,
                               atol=RTOL * expected.max())


def test_the_intensity_table_returns_each_frames_intensity(monkeypatch):
    chain = build_chain("lab-bench", n_in=10, n_out=128, dmd__macropixel_mirrors=16)
    rng = np.random.default_rng(3)
    for _ in range(3):   # the table fills across calls
        frames = (rng.random((40, 10)) < 0.4).astype(np.uint8)
        expected = _direct(monkeypatch, chain, frames)
        np.testing.assert_allclose(chain.intensity(frames), expected, rtol=0,
                                   atol=RTOL * expected.max())
    assert chain._intensity_tables["numpy"]["filled"].sum() <= 3 * 40
    # New optics (another DMD contrast): a new table, the new intensities.
    chain.dmd = DMD(dataclasses.replace(chain.dmd.config, contrast=50.0), 10)
    frames = (rng.random((40, 10)) < 0.4).astype(np.uint8)
    expected = _direct(monkeypatch, chain, frames)
    np.testing.assert_allclose(chain.intensity(frames), expected, rtol=0,
                               atol=RTOL * expected.max())
