"""The structured projection (SRHT) and the DFA feedback built on it.

Statistical checks compare estimates with their expectation within ``Z`` standard
errors computed from the sample (tests/stats.py).
"""

import math

import numpy as np
import pytest
from scipy.linalg import hadamard

from devices.structured import SRHT
from dfa_bridge.data import load_dataset
from dfa_bridge.nn.models import MLP
from dfa_bridge.training.experiment import derive_seeds
from dfa_bridge.training.feedback import IdealFeedback
from dfa_bridge.training.structured_feedback import StructuredFeedback
from dfa_bridge.training.trainer import Trainer, fit
from tests.stats import Z, mean_and_se


def _dense_reference(projection: SRHT) -> np.ndarray:
    """The effective matrix built from its definition: rows of T D_b, block after block."""
    size = projection.size
    if projection.transform == "hadamard":
        transform = hadamard(size).astype(np.float64)
    else:
        angle = 2 * np.pi * np.outer(np.arange(size), np.arange(size)) / size
        transform = np.cos(angle) + np.sin(angle)
    blocks = [(transform * projection.signs[b])[rows]
              for b, rows in enumerate(projection.rows)]
    return np.concatenate(blocks)[:projection.n_out, :projection.n_in] * projection.factor


@pytest.mark.parametrize("transform", ["fft", "hadamard"])
@pytest.mark.parametrize("n_in, n_out", [(100, 64), (16, 40), (10, 512), (3, 1), (256, 256)])
def test_the_fast_transform_is_its_defining_matrix(transform, n_in, n_out):
    projection = SRHT(n_in, n_out, seed=3, transform=transform, scale="unit")
    matrix = projection.matrix()
    assert matrix.shape == (n_out, n_in)
    np.testing.assert_allclose(matrix, _dense_reference(projection), atol=1e-10)
    x = np.random.default_rng(0).standard_normal((7, n_in))
    np.testing.assert_allclose(projection(x), x @ matrix.T, atol=1e-10)


@pytest.mark.parametrize("transform", ["fft", "hadamard"])
def test_unit_scale_entries_have_variance_one(transform):
    # Every block keeps all N rows of T (entries of mean square 1 per column) but the
    # last, a uniform subset: the mean square of the entries is 1 up to that subset.
    projection = SRHT(1000, 3000, seed=1, transform=transform, scale="unit")
    squares = projection.matrix() ** 2
    mean, se = mean_and_se(squares)
    assert abs(mean - 1.0) < Z * se + 1e-12
    if transform == "hadamard":
        assert np.all(squares == 1.0)
    assert abs(np.mean(projection.matrix())) < Z * math.sqrt(1.0 / squares.size)


def test_jl_scale_gives_entries_of_variance_one_over_n_out():
    projection = SRHT(300, 128, seed=2, transform="hadamard")
    np.testing.assert_allclose(projection.matrix() ** 2, 1.0 / 128)


def test_the_projection_is_linear_and_keeps_float32():
    projection = SRHT(50, 70, seed=4)
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((2, 5, 50))
    np.testing.assert_allclose(projection(2.0 * x - 3.0 * y),
                               2.0 * projection(x) - 3.0 * projection(y), atol=1e-10)
    single = projection(x[0].astype(np.float32))
    assert single.dtype == np.float32 and single.shape == (70,)
    np.testing.assert_allclose(single, projection(x[:1])[0], rtol=1e-5, atol=1e-5)


def test_numpy_path_is_deterministic_per_seed_and_seeds_differ():
    x = np.random.default_rng(2).standard_normal((4, 37))
    a, b = SRHT(37, 90, seed=11), SRHT(37, 90, seed=11)
    np.testing.assert_array_equal(a(x), b(x))
    assert not np.allclose(a(x), SRHT(37, 90, seed=12)(x))


def test_non_power_of_two_inputs_are_padded():
    projection = SRHT(1000, 64, seed=0)
    assert projection.size == 1024 and projection.n_blocks == 1
    described = projection.describe()
    assert described["padded"] == 1024 and described["stored_numbers"] == 1024 + 64


def test_rows_are_chunked_without_changing_the_result(monkeypatch):
    import devices.structured as structured

    x = np.random.default_rng(3).standard_normal((9, 40)).astype(np.float32)
    whole = SRHT(40, 100, seed=5)(x)
    monkeypatch.setattr(structured, "_CHUNK_ELEMENTS", 64)  # 1 row per chunk
    np.testing.assert_array_equal(SRHT(40, 100, seed=5)(x), whole)


@pytest.mark.parametrize("transform", ["fft", "hadamard"])
def test_squared_norm_ratio_has_mean_one_and_the_jl_variance(transform):
    # Over random signs and rows, ||Px||^2 / ||x||^2 has mean 1 and the variance of a
    # Gaussian JL map, 2 / m, reduced by the finite-population factor (N - m) / (N - 1)
    # of sampling m of N rows and by (1 - sum x^4 / ||x||^4) (a vector on one axis keeps
    # its norm exactly: that is what the random signs buy).
    n, m, seeds = 1000, 64, 500
    rng = np.random.default_rng(5)
    dense = rng.standard_normal(n)
    spiky = np.concatenate([np.full(3, 10.0), 0.1 * rng.standard_normal(n - 3)])
    for x in (dense, spiky):
        ratios = np.array([np.sum(SRHT(n, m, seed=s, transform=transform)(x) ** 2)
                           for s in range(seeds)]) / np.sum(x ** 2)
        mean, se = mean_and_se(ratios)
        assert abs(mean - 1.0) < Z * se
        size = 1024
        expected = (2.0 / m) * (1 - np.sum(x ** 4) / np.sum(x ** 2) ** 2) * (size - m) / (size - 1)
        # relative standard error of a sample variance: sqrt((kurtosis - 1) / samples)
        centred = ratios - ratios.mean()
        kurtosis = np.mean(centred ** 4) / np.mean(centred ** 2) ** 2
        tolerance = Z * math.sqrt((kurtosis - 1) / seeds) + 0.1  # + the Hartley rows' spread
        assert abs(ratios.var(ddof=1) / expected - 1.0) < tolerance
    axis = np.eye(n)[7]
    np.testing.assert_allclose(np.sum(SRHT(n, m, seed=0, transform="hadamard")(axis) ** 2), 1.0)


def test_pairwise_distances_of_digits_are_preserved_on_average():
    data = load_dataset("digits")
    x = np.asarray(data.x_test[:120], np.float64)
    projection = SRHT(x.shape[1], 48, seed=9)
    y = projection(x)
    i, j = np.triu_indices(len(x), 1)
    before = np.sum((x[i] - x[j]) ** 2, axis=1)
    ratios = np.sum((y[i] - y[j]) ** 2, axis=1)[before > 0] / before[before > 0]
    # one projection, many pairs: the ratios are correlated, so only the bulk is checked
    assert abs(np.median(ratios) - 1.0) < 0.15
    assert np.quantile(ratios, 0.05) > 0.4 and np.quantile(ratios, 0.95) < 1.7


@pytest.mark.parametrize("kwargs, message", [
    ({"n_in": 0, "n_out": 3}, "n_in = 0"), ({"n_in": 3, "n_out": 1.5}, "n_out = 1.5"),
    ({"n_in": 3, "n_out": 3, "transform": "dct"}, "transform = 'dct'"),
    ({"n_in": 3, "n_out": 3, "scale": "ortho"}, "scale = 'ortho'")])
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SRHT(**kwargs)


def test_wrong_input_width_is_named():
    with pytest.raises(ValueError, match=r"expected \(5,\) or \(batch, 5\)"):
        SRHT(5, 3)(np.ones((2, 4)))


# ---------------------------------------------------------------------------- feedback
def test_structured_feedback_is_a_feedback_with_its_matrix():
    feedback = StructuredFeedback((32, 16), 10, seed=1)
    error = np.random.default_rng(0).standard_normal((6, 10)).astype(np.float32)
    parts = feedback.project(error)
    assert [p.shape for p in parts] == [(6, 32), (6, 16)] and parts[0].dtype == np.float32
    stacked = feedback.matrix()
    assert stacked.shape == (48, 10)
    np.testing.assert_allclose(np.concatenate(parts, axis=1), error @ stacked.T, rtol=1e-4,
                               atol=1e-5)
    # B_i = G_i / sqrt(n_i) with G of unit variance: E|B_i e|^2 = |e|^2
    for block, width in zip(feedback.matrices(), (32, 16)):
        np.testing.assert_allclose(np.mean(block ** 2) * width, 1.0, rtol=0.02)
    described = feedback.describe()
    assert described["source"] == "structured" and described["transform"]["blocks"] == 3
    feedback.close()


def test_structured_feedback_rejects_the_wrong_error_width():
    with pytest.raises(ValueError, match=r"expected \(batch, 10\)"):
        StructuredFeedback((8,), 10).project(np.ones((2, 9), np.float32))


def _train_digits(data, accuracies, seeds=4, epochs=2):
    """Test accuracy of DFA with each feedback kind, ``seeds`` runs of ``epochs`` each."""
    for seed in range(seeds):
        streams = derive_seeds(seed)
        for kind in accuracies:
            source = (IdealFeedback if kind == "ideal" else StructuredFeedback)(
                (256, 256), data.n_classes, seed=streams["feedback"])
            model = MLP(data.n_features, data.n_classes, (256, 256), "tanh",
                        seed=streams["model"])
            history = fit(Trainer(model, "dfa", source, lr=1e-3), data, epochs, batch_size=32,
                          seed=streams["order"], progress=False)
            accuracies[kind].append(history.final["test_accuracy"])


def test_dfa_with_structured_feedback_learns_digits_like_gaussian_feedback():
    # A few seeds of each, two epochs: the structured mean accuracy lies within the
    # seed-to-seed spread of the Gaussian one (tolerance from the pooled spread, never
    # below the binomial error of the test set).
    from threadpoolctl import threadpool_limits  # scikit-learn's dependency

    data = load_dataset("digits")
    accuracies = {"ideal": [], "structured": []}
    with threadpool_limits(limits=1, user_api="blas"):  # small products: no thread stalls
        _train_digits(data, accuracies)
    ideal, structured = (np.array(accuracies[k]) for k in ("ideal", "structured"))
    assert ideal.mean() > 0.85 and structured.mean() > 0.85  # both learn
    pooled = math.sqrt((ideal.var(ddof=1) + structured.var(ddof=1)) / 2)
    p = ideal.mean()
    floor = math.sqrt(p * (1 - p) / data.y_test.shape[0])
    tolerance = 4 * max(pooled, floor) * math.sqrt(2 / len(ideal))
    assert abs(structured.mean() - ideal.mean()) < tolerance, (accuracies, tolerance)


# ---------------------------------------------------------------------------- GPU
@pytest.mark.gpu
@pytest.mark.parametrize("transform", ["fft", "hadamard"])
def test_cupy_in_cupy_out_with_the_numpy_values(transform):
    import cupy

    projection = SRHT(300, 700, seed=6, transform=transform)
    x = np.random.default_rng(4).standard_normal((16, 300)).astype(np.float32)
    on_gpu = projection(cupy.asarray(x))
    assert isinstance(on_gpu, cupy.ndarray) and on_gpu.dtype == cupy.float32
    np.testing.assert_allclose(cupy.asnumpy(on_gpu), projection(x), rtol=1e-4, atol=1e-4)


@pytest.mark.gpu
def test_structured_feedback_follows_cupy_errors():
    import cupy

    feedback = StructuredFeedback((64, 32), 10, seed=2)
    error = np.random.default_rng(1).standard_normal((8, 10)).astype(np.float32)
    parts = feedback.project(cupy.asarray(error))
    assert all(isinstance(p, cupy.ndarray) for p in parts)
    np.testing.assert_allclose(cupy.asnumpy(cupy.concatenate(parts, axis=1)),
                               np.concatenate(feedback.project(error), axis=1),
                               rtol=1e-4, atol=1e-5)
