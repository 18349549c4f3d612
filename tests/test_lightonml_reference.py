"""This toolkit's lightonml against lightonml 1.4.3 itself, side by side.

Skipped unless lightonml 1.4.3 is installed (``pip install lightonml==1.4.3``; it is not
a dependency). The encoders must give lightonml's bits exactly; the simulated OPU's
numbers, which come from another random matrix of the same law, must agree with
lightonml's simulator within sampling error; lightonml's own example scripts, run
unchanged there and with their import lines changed here, must land together.
"""

import numpy as np
import pytest

from tests.lightonml_scripts import (KERNELS, PIPELINE, RANDOMIZED_LINEAR_ALGEBRA,
                                     import_lightonml, random_bits, run_here, run_on_lightonml)

import devices.lightonml_compat as ours
import devices.lightonml_compat.encoding.base as our_base


@pytest.fixture
def lightonml(monkeypatch):
    monkeypatch.setattr(np, "float", float, raising=False)  # lightonml 1.4.3 uses np.float
    module = import_lightonml()
    if module is None:
        pytest.skip("lightonml 1.4.3 is not installed")
    return module


def their_simulated_opu(lightonml, n_components, max_n_features, **kwargs):
    from lightonml import OPU
    return OPU(n_components=n_components, max_n_features=max_n_features, simulated=True,
               **kwargs)


def test_the_encoders_write_lightonmls_bits(lightonml):
    import lightonml.encoding.base as their_base
    rng = np.random.default_rng(0)
    data = [rng.normal(size=(5, 7)).astype(np.float32), rng.normal(size=(4, 3)),
            rng.integers(-127, 127, (5, 7)).astype(np.int8),
            rng.integers(0, 255, (4, 6)).astype(np.uint8),
            rng.integers(-500, 500, (4, 6)).astype(np.int16), np.abs(rng.normal(size=(3, 4)))]
    for X in data:
        for precision in (1, 4, 6, 8):
            theirs = their_base.SeparatedBitPlanEncoder(precision)
            mine = our_base.SeparatedBitPlanEncoder(precision)
            planes = theirs.transform(X)
            np.testing.assert_array_equal(mine.transform(X), planes)
            np.testing.assert_allclose(
                our_base.SeparatedBitPlanDecoder(**mine.get_params()).transform(planes),
                their_base.SeparatedBitPlanDecoder(**theirs.get_params()).transform(planes),
                rtol=1e-6)
    words = rng.integers(0, 2 ** 16, (4, 5)).astype(np.uint16)
    np.testing.assert_array_equal(our_base.ConcatenatedBitPlanEncoder(12, 2).transform(words),
                                  their_base.ConcatenatedBitPlanEncoder(12, 2).transform(words))
    floats = rng.normal(size=(3, 5)).astype(np.float32)
    for name in ("Float32Encoder", "ConcatenatedFloat32Encoder"):
        for kwargs in ({}, dict(sign_bit=False, exp_bits=2, mantissa_bits=0)):
            np.testing.assert_array_equal(getattr(our_base, name)(**kwargs).transform(floats),
                                          getattr(their_base, name)(**kwargs).transform(floats))
    planes = random_bits(rng, (12, 9)).astype(np.float32)
    np.testing.assert_array_equal(our_base.ConcatenatingBitPlanDecoder(4).transform(planes),
                                  their_base.ConcatenatingBitPlanDecoder(4).transform(planes))
    Y = rng.normal(size=(20, 4))
    for thresholds in ([0.0, 0.5], [[0.0, 0.5]] * 4):
        np.testing.assert_array_equal(
            our_base.MultiThresholdEncoder(thresholds).transform(Y),
            their_base.MultiThresholdEncoder(thresholds).transform(Y))
    np.testing.assert_array_equal(
        our_base.MultiThresholdEncoder("linspace", n_bins=4).fit(Y).transform(Y),
        their_base.MultiThresholdEncoder("linspace", n_bins=4).fit(Y).transform(Y))
    np.testing.assert_array_equal(our_base.BinaryThresholdEncoder().fit(Y).transform(Y),
                                  their_base.BinaryThresholdEncoder().fit(Y).transform(Y))
    for levels in (2, 16, 64):  # (lightonml 1.4.3 breaks from 128 levels on)
        np.testing.assert_array_equal(
            our_base.SequentialBaseTwoEncoder(levels).fit(Y).transform(Y),
            their_base.SequentialBaseTwoEncoder(levels).fit(Y).transform(Y))


def test_intensities_match_lightonmls_simulator_within_sampling_error(lightonml):
    n_components, max_n = 4000, 200
    x = random_bits(np.random.default_rng(1), (12, 150))
    mine = ours.OPU(n_components, max_n_features=max_n, simulated=True)
    theirs = their_simulated_opu(lightonml, n_components, max_n)
    mine.fit1d(x)
    theirs.fit1d(x)
    a, b = np.asarray(mine.transform(x), np.float64), np.asarray(theirs.transform(x), np.float64)
    assert a.shape == b.shape == (12, n_components)
    # Each output is exponential of mean 2 k / max_n: a mean over n_components outputs has a
    # standard error of mean / sqrt(n_components); two of them differ by sqrt(2) of it.
    expected = 2 * x.sum(axis=1) / max_n
    z = (a.mean(axis=1) - b.mean(axis=1)) / (np.sqrt(2) * expected / np.sqrt(n_components))
    assert np.abs(z).max() < 4
    # second moments: E y^2 = 2 (E y)^2 for both
    ratio = (a ** 2).mean() / (b ** 2).mean()
    assert abs(ratio - 1) < 6 * np.sqrt(20 / (n_components * 12))
    # the kernel the features estimate: E[y_i y_j] / (E y_i E y_j) = 1 + |<x_i,x_j>|^2/(k_i k_j)
    gram_a = a @ a.T / n_components
    gram_b = b @ b.T / n_components
    assert np.abs(gram_a / gram_b - 1).max() < 0.12


def test_linear_outputs_match_lightonmls_simulator_within_sampling_error(lightonml):
    n_components, max_n = 4000, 200
    x = random_bits(np.random.default_rng(2), (10, 150))
    mine = ours.OPU(n_components, max_n_features=max_n, simulated=True)
    theirs = their_simulated_opu(lightonml, n_components, max_n)
    mine.fit1d(x)
    theirs.fit1d(x)
    a = np.asarray(mine.linear_transform(x), np.float64)
    b = np.asarray(theirs.linear_transform(x), np.float64)
    # both: entries of variance 1/max_n, then / sqrt(n): E[y_i y_j] = <x_i, x_j> / (max_n n)
    expected = x @ x.T / (max_n * 150.0)
    for y in (a, b):
        gram = y @ y.T / n_components
        scale = np.sqrt((np.diag(expected)[:, None] * np.diag(expected)[None, :]
                         + expected ** 2) / n_components)
        assert np.abs((gram - expected) / scale).max() < 5
    assert a.std() / b.std() == pytest.approx(1, abs=5 / np.sqrt(2 * a.size / 10))


def test_the_kernel_and_pipeline_notebooks_land_with_lightonmls(lightonml):
    mine = run_here(KERNELS, n_components=1000)
    theirs = run_on_lightonml(KERNELS, n_components=1000)
    assert abs(mine["test_accuracy"] - theirs["test_accuracy"]) < 0.03
    mine, theirs = run_here(PIPELINE), run_on_lightonml(PIPELINE)
    assert abs(mine["test_accuracy"] - theirs["test_accuracy"]) < 0.04


def test_randomized_linear_algebra_lands_with_lightonmls(lightonml):
    mine, theirs = run_here(RANDOMIZED_LINEAR_ALGEBRA), run_on_lightonml(RANDOMIZED_LINEAR_ALGEBRA)
    rng = np.random.default_rng(3)
    n, m, seeds = 128, 64, range(8)
    A = rng.uniform(0, 1, (n, n))
    upper = np.triu(rng.random((n, n)) < 0.15, 1)
    graph = (upper | upper.T).astype(np.int64)
    for name, matrix in (("trace_estimation", A), ("triangle_estimation", graph)):
        np.random.seed(0)
        a = np.array([mine[name](mine["make_opu"](m, n, s), matrix, m) for s in seeds])
        b = np.array([theirs[name](theirs["make_opu"](m, n, s), matrix, m) for s in seeds])
        error = np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
        assert abs(a.mean() - b.mean()) <= 3 * error, name
