"""dfa_bridge on CuPy: same maths, same accuracy within noise (skipped without a GPU)."""

import numpy as np
import pytest
import scipy.sparse as sp

from dfa_bridge.training.experiment import run_experiment
from dfa_bridge.training.feedback import IdealFeedback, make_feedback
from dfa_bridge.data.graphs import normalized_adjacency
from dfa_bridge.nn.models import GCN, MLP
from dfa_bridge.training.trainer import Trainer

pytestmark = pytest.mark.gpu


def _gradients_on(xp, model_factory, x, labels, method, rows=None):
    model = model_factory().to(xp)
    feedback = IdealFeedback(model.hidden_widths, model.n_outputs, seed=4)
    trainer = Trainer(model, method, feedback)
    rows_on = None if rows is None else xp.asarray(rows)
    trainer.backward(trainer.error(xp.asarray(x), xp.asarray(labels), rows_on))
    return [np.asarray(p.grad.get() if xp is not np else p.grad) for p in model.parameters()]


@pytest.mark.parametrize("method", ["bp", "dfa"])
def test_mlp_gradients_are_the_same_on_cupy_and_numpy(method):
    import cupy

    rng = np.random.default_rng(0)
    x, labels = rng.standard_normal((16, 12)), rng.integers(0, 4, 16)
    factory = lambda: MLP(12, 4, hidden=(9, 7), seed=1, dtype=np.float64)  # noqa: E731
    host = _gradients_on(np, factory, x, labels, method)
    device = _gradients_on(cupy, factory, x, labels, method)
    for a, b in zip(host, device):
        np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("method", ["bp", "dfa"])
def test_gcn_gradients_are_the_same_on_cupy_sparse_and_scipy_sparse(method):
    import cupy

    rng = np.random.default_rng(1)
    dense = np.triu(rng.random((30, 30)) < 0.2, 1)
    adjacency = normalized_adjacency(sp.csr_matrix(dense + dense.T)).astype(np.float64)
    x, rows = rng.standard_normal((30, 6)), np.array([1, 5, 8, 20])
    labels = rng.integers(0, 3, rows.size)
    factory = lambda: GCN(adjacency, 6, 3, hidden=(5,), dropout=0.0, seed=2,  # noqa: E731
                          dtype=np.float64)
    host = _gradients_on(np, factory, x, labels, method, rows)
    device = _gradients_on(cupy, factory, x, labels, method, rows)
    for a, b in zip(host, device):
        np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-14)


def test_device_feedback_follows_cupy_errors():
    import cupy

    feedback = make_feedback("lab-bench", (64, 32), 10)
    rng = np.random.default_rng(2)
    error = rng.standard_normal((16, 10)).astype(np.float32)
    error -= error.mean(axis=1, keepdims=True)
    projected = feedback.project(cupy.asarray(error))
    assert all(isinstance(p, cupy.ndarray) for p in projected)
    host = np.concatenate(feedback.project(error), axis=1)
    device = cupy.asnumpy(cupy.concatenate(projected, axis=1))
    assert np.corrcoef(host.ravel(), device.ravel())[0, 1] > 0.95  # same matrix, other noise


@pytest.mark.parametrize("model, data, method, epochs", [
    ("mlp", "digits", "bp", 10), ("mlp", "digits", "dfa", 10), ("gcn", "csbm", "dfa", 100),
])
def test_training_on_cupy_reaches_the_numpy_accuracy_within_noise(model, data, method, epochs):
    host, _ = run_experiment(model, data, method, epochs=epochs, seed=0, progress=False)
    device, _ = run_experiment(model, data, method, epochs=epochs, seed=0, backend="cupy",
                               progress=False)
    # Same seeds; float32 sums in another order and other dropout masks: noise of
    # about sqrt(p (1 - p) / n_test), one to two points.
    assert abs(device["test_accuracy"] - host["test_accuracy"]) <= 0.025
    assert device["backend"] == "cupy"


def test_dfa_through_a_virtual_opu_trains_on_cupy():
    result, _ = run_experiment("mlp", "digits", "dfa", "lab-bench", epochs=4, seed=0,
                               backend="cupy", progress=False)
    assert result["test_accuracy"] >= 0.92


def test_benchmark_runs_on_cupy():
    from studies.benchmark import time_training_steps

    result = time_training_steps(256, (512, 512), 10, 128, repeats=3, backend="cupy")
    assert result["bp_s"] > 0 and result["dfa_s"] > 0


@pytest.mark.parametrize("method", ["bp", "dfa"])
def test_the_transformer_trains_on_cupy_through_the_same_loop(method):
    tiny = {"n_blocks": 2, "width": 32, "heads": 2, "context": 16, "batch_size": 8,
            "warmup": 4, "lr": 3e-3}
    options = {"steps": 20, "seed": 0, "evaluations": 2, "max_eval_chars": 2048,
               "progress": False, **tiny}
    host, _ = run_experiment("transformer", "pydoc", method, **options)
    device, history = run_experiment("transformer", "pydoc", method, backend="cupy", **options)
    assert device["backend"] == "cupy" and device["curves"]["step"] == [10, 20]
    # Same seeds and batches; float32 sums in another order: the losses agree closely.
    assert device["val_loss"] == pytest.approx(host["val_loss"], rel=0.05)
    angles = device["alignment_deg"]["update_vs_gradient"]
    assert (angles is None) == (method == "bp") and history.final["step"] == 20
