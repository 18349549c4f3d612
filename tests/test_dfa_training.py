"""DFA training: the update formula, feedback through devices, alignment and accuracy."""

import math

import numpy as np
import pytest
import scipy.sparse as sp

from dfa_bridge.training.alignment import angle_deg, feedback_angles, update_angles
from dfa_bridge.training.experiment import run_experiment
from dfa_bridge.training.feedback import DeviceFeedback, Feedback, IdealFeedback, make_feedback
from dfa_bridge.data.graphs import normalized_adjacency
from dfa_bridge.nn.models import GCN, MLP
from dfa_bridge.studies.acceptance import run_study
from dfa_bridge.training.trainer import Trainer
from devices import open_device


class FixedFeedback(Feedback):
    """A feedback source with a given matrix B (S, C); counts its projections."""

    def __init__(self, matrix, widths):
        super().__init__(widths, matrix.shape[1])
        self._matrix = np.asarray(matrix, np.float64)
        self.calls = []

    def _project(self, error):
        self.calls.append(error.shape)
        return error @ self._matrix.T

    def matrix(self):
        return self._matrix.copy()


def softmax_error(logits, labels):
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(labels)), labels] -= 1
    return p / len(labels)


def test_dfa_update_matches_a_hand_computation():
    rng = np.random.default_rng(0)
    model = MLP(6, 4, hidden=(5, 3), activation="tanh", seed=2, dtype=np.float64)
    feedback = IdealFeedback((5, 3), 4, seed=3)
    trainer = Trainer(model, "dfa", feedback)
    x, labels = rng.standard_normal((7, 6)), rng.integers(0, 4, 7)
    trainer.backward(trainer.error(x, labels))

    (w1, b1), (w2, b2), (w3, b3) = [(b.weight_layer.weight.value, b.weight_layer.bias.value)
                                    for b in model.blocks]
    h1 = np.tanh(x @ w1.T + b1)
    h2 = np.tanh(h1 @ w2.T + b2)
    e = softmax_error(h2 @ w3.T + b3, labels)
    big_b1, big_b2 = feedback.matrices()
    delta1 = (e @ big_b1.T) * (1 - h1 ** 2)  # delta_i = (B_i e) * f'(a_i)
    delta2 = (e @ big_b2.T) * (1 - h2 ** 2)
    expected = [delta1.T @ x, delta1.sum(0), delta2.T @ h1, delta2.sum(0), e.T @ h2, e.sum(0)]
    for parameter, value in zip(model.parameters(), expected):
        np.testing.assert_allclose(parameter.grad, value, rtol=1e-10, atol=1e-15)


def test_dfa_on_a_graph_projects_the_labelled_nodes_and_keeps_the_graph_propagation():
    rng = np.random.default_rng(1)
    dense = np.triu(rng.random((9, 9)) < 0.4, 1)
    adjacency = normalized_adjacency(sp.csr_matrix(dense + dense.T)).astype(np.float64)
    model = GCN(adjacency, 4, 3, hidden=(5,), activation="tanh", dropout=0.0, seed=0,
                dtype=np.float64)
    matrix = rng.standard_normal((5, 3))
    feedback = FixedFeedback(matrix, (5,))
    trainer = Trainer(model, "dfa", feedback)
    x, rows = rng.standard_normal((9, 4)), np.array([0, 4, 7])
    labels = rng.integers(0, 3, rows.size)
    trainer.backward(trainer.error(x, labels, rows))

    a_hat = adjacency.toarray()
    (w1, b1), (w2, b2) = [(b.weight_layer.weight.value, b.weight_layer.bias.value)
                          for b in model.blocks]
    h1 = np.tanh(a_hat @ x @ w1.T + b1)
    e = np.zeros((9, 3))
    e[rows] = softmax_error((a_hat @ h1 @ w2.T + b2)[rows], labels)
    delta1 = (a_hat.T @ (e @ matrix.T)) * (1 - h1 ** 2)
    np.testing.assert_allclose(model.blocks[0].weight_layer.weight.grad,
                               delta1.T @ a_hat @ x, rtol=1e-10)
    assert feedback.calls == [(3, 3)]  # only the labelled nodes' errors are projected


def test_each_step_projects_the_error_once_and_slices_it_per_layer():
    rng = np.random.default_rng(2)
    widths = (6, 4, 5)
    feedback = FixedFeedback(rng.standard_normal((15, 3)), widths)
    trainer = Trainer(MLP(8, 3, hidden=widths, seed=0), "dfa", feedback)
    x, labels = rng.standard_normal((10, 8)).astype(np.float32), rng.integers(0, 3, 10)
    for _ in range(3):
        trainer.step(x, labels)
    assert feedback.calls == [(10, 3)] * 3
    slices = feedback.project(rng.standard_normal((10, 3)))
    assert [s.shape for s in slices] == [(10, 6), (10, 4), (10, 5)]
    base = slices[0].base
    assert base is not None and base.shape == (10, 15)
    assert all(s.base is base for s in slices)  # views of one projection


def test_ideal_feedback_keeps_the_norm_of_the_error():
    feedback = IdealFeedback((2000, 500), 10, seed=0)
    errors = np.random.default_rng(1).standard_normal((200, 10))
    for projected in feedback.project(errors):
        ratio = (projected ** 2).sum(axis=1) / (errors ** 2).sum(axis=1)
        assert ratio.mean() == pytest.approx(1.0, abs=0.05)  # E|B_i e|^2 = |e|^2
    again = IdealFeedback((2000, 500), 10, seed=0).matrix()
    np.testing.assert_array_equal(again, feedback.matrix())  # seeded, fixed


def test_device_feedback_is_the_encoded_error_through_the_measured_matrix():
    rng = np.random.default_rng(3)
    error = softmax_error(rng.standard_normal((16, 10)) * 2, rng.integers(0, 10, 16))
    for encoder, tolerance in (("ternary", 1e-4), ("bitplanes", 1e-4)):
        feedback = make_feedback("device:ideal", (40, 24), 10, encoder=encoder, n_bits=6)
        b = feedback.matrix()
        projected = np.concatenate(feedback.project(error), axis=1)
        quantized = feedback.opu.encoder.quantize(error)
        np.testing.assert_allclose(projected, quantized @ b.T, rtol=0,
                                   atol=tolerance * np.abs(projected).max())
    # Six bits per sign: the projection is close to that of the unquantized error.
    assert np.corrcoef(projected.ravel(), (error @ b.T).ravel())[0, 1] > 0.999


def test_a_noisy_device_realizes_a_fixed_matrix_at_two_frames_per_plane():
    feedback = make_feedback("lab-bench", (96, 32), 10)
    device = feedback.device
    rng = np.random.default_rng(4)
    error = softmax_error(rng.standard_normal((24, 10)) * 2, rng.integers(0, 10, 24))
    before = device.frames_acquired
    first = np.concatenate(feedback.project(error), axis=1)
    assert device.frames_acquired - before == 2 * 2 * 24 + 2  # 2 ternary planes, 2 references
    second = np.concatenate(feedback.project(error), axis=1)
    quantized = feedback.opu.encoder.quantize(error)
    ideal = quantized @ feedback.matrix().T
    assert np.corrcoef(first.ravel(), second.ravel())[0, 1] > 0.95  # noise only
    assert np.corrcoef(first.ravel(), ideal.ravel())[0, 1] > 0.9
    assert np.abs(first - second).mean() > 0  # the noise is there


@pytest.mark.parametrize("call, error, message", [
    (lambda: DeviceFeedback(open_device("ideal", n_in=10, n_out=50), (40, 24), 10),
     ValueError, r"device: 50 outputs: expected at least the sum of the hidden widths \(40, 24\) = 64"),
    (lambda: DeviceFeedback(open_device("ideal", n_in=4, n_out=80), (40,), 10),
     ValueError, r"device: 4 inputs: expected at least n_classes = 10"),
    (lambda: make_feedback("no-such-opu", (8,), 3),
     ValueError, r"feedback = 'no-such-opu': expected 'ideal' or a device"),
    (lambda: make_feedback("device:ideal", (8,), 3, encoder="unary"),
     ValueError, r"encoder = 'unary': expected one of ternary, bitplanes"),
    (lambda: Trainer(MLP(4, 3, hidden=(5,)), "hebbian"),
     ValueError, r"method = 'hebbian': expected one of bp, dfa, shallow"),
    (lambda: Trainer(MLP(4, 3, hidden=(5,)), "dfa"),
     ValueError, r"feedback = None: expected a Feedback source for method 'dfa'"),
    (lambda: Trainer(MLP(4, 3, hidden=(5,)), "dfa", IdealFeedback((6,), 3)),
     ValueError, r"feedback: widths \(6,\) and 3 classes: expected the model's hidden widths \(5,\)"),
    (lambda: IdealFeedback((5,), 3).project(np.zeros((2, 4))),
     ValueError, r"error: shape \(2, 4\): expected \(batch, 3\)"),
])
def test_bad_feedback_and_training_arguments_are_refused(call, error, message):
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize("method, trained_blocks", [("bp", 3), ("dfa", 3), ("shallow", 1)])
def test_each_method_updates_the_layers_it_trains(method, trained_blocks):
    rng = np.random.default_rng(5)
    model = MLP(8, 3, hidden=(6, 4), seed=0)
    before = [p.value.copy() for p in model.parameters()]
    trainer = Trainer(model, method, IdealFeedback((6, 4), 3))
    trainer.step(rng.standard_normal((10, 8)).astype(np.float32), rng.integers(0, 3, 10))
    changed = [not np.array_equal(b, p.value) for b, p in zip(before, model.parameters())]
    assert changed == [False] * 2 * (3 - trained_blocks) + [True] * 2 * trained_blocks


def test_angles_are_zero_parallel_ninety_orthogonal_and_one_eighty_opposite():
    a = np.array([[1.0, 2.0], [0.0, -1.0]])
    assert angle_deg(a, 3 * a) == pytest.approx(0.0, abs=1e-6)
    assert angle_deg(a, -a) == pytest.approx(180.0)
    assert angle_deg(np.array([1.0, 0.0]), np.array([0.0, 2.0])) == pytest.approx(90.0)
    assert angle_deg(np.array([1.0, 0.0]), np.array([1.0, 1.0])) == pytest.approx(45.0)
    assert math.isnan(angle_deg(a, np.zeros_like(a)))
    assert update_angles([[a, a[0]]], [[2 * a, 2 * a[0]]]) == [pytest.approx(0.0, abs=1e-6)]


def test_feedback_angle_is_zero_for_the_product_of_the_weights_above():
    rng = np.random.default_rng(6)
    weights = [rng.standard_normal(shape) for shape in ((7, 5), (6, 7), (4, 6), (3, 4))]
    products = [weights[1].T @ weights[2].T @ weights[3].T, weights[2].T @ weights[3].T,
                weights[3].T]
    np.testing.assert_allclose(feedback_angles(weights, products), 0.0, atol=1e-5)
    scaled = [2.5 * products[0], products[1], -products[2]]
    np.testing.assert_allclose(feedback_angles(weights, scaled), [0.0, 0.0, 180.0], atol=1e-5)
    wide = [rng.standard_normal(shape) for shape in ((300, 20), (400, 300), (10, 400))]
    random_b = [rng.standard_normal((300, 10)), rng.standard_normal((400, 10))]
    for angle in feedback_angles(wide, random_b):
        assert abs(angle - 90.0) < 10.0  # random directions in 3000+ dimensions


def test_update_angle_is_zero_when_the_feedback_is_the_transposed_last_weight():
    rng = np.random.default_rng(7)
    model = MLP(8, 3, hidden=(6, 5), seed=1, dtype=np.float64)
    w_last = model.weights[-1]  # (3, 5)
    matrix = np.concatenate([rng.standard_normal((6, 3)), w_last.T])  # B_2 = W_3^T
    trainer = Trainer(model, "dfa", FixedFeedback(matrix, (6, 5)), lr=1e-9)
    _, angles = trainer.step(rng.standard_normal((12, 8)), rng.integers(0, 3, 12),
                             measure_alignment=True)
    assert angles[1] == pytest.approx(0.0, abs=1e-5)  # DFA = BP at the last hidden layer
    assert 20.0 < angles[0] < 160.0  # a random B_1 is not aligned


def test_training_is_reproducible_and_methods_start_from_the_same_weights():
    first, _ = run_experiment(method="dfa", epochs=2, seed=3, max_train=300, progress=False)
    second, _ = run_experiment(method="dfa", epochs=2, seed=3, max_train=300, progress=False)
    assert first["curves"] == second["curves"]
    other_seed, _ = run_experiment(method="dfa", epochs=2, seed=4, max_train=300, progress=False)
    assert other_seed["curves"] != first["curves"]
    bp, _ = run_experiment(method="bp", epochs=1, seed=3, max_train=300, progress=False,
                           lr=1e-12)
    dfa, _ = run_experiment(method="dfa", epochs=1, seed=3, max_train=300, progress=False,
                            lr=1e-12)
    assert bp["test_accuracy"] == dfa["test_accuracy"]  # same initial weights


@pytest.fixture(scope="module")
def digits_runs():
    """Five epochs of each method on digits, same seeds (about a second each)."""
    runs = {}
    for method in ("bp", "dfa", "shallow"):
        runs[method] = run_experiment("mlp", "digits", method, epochs=5, seed=0, progress=False)
    return runs


def test_digits_short_training_reaches_the_expected_accuracies(digits_runs):
    accuracy = {m: result["test_accuracy"] for m, (result, _) in digits_runs.items()}
    assert accuracy["bp"] >= 0.95
    assert accuracy["dfa"] >= 0.935
    assert 0.8 <= accuracy["shallow"] <= accuracy["dfa"] - 0.02  # hidden layers learn under DFA


def test_dfa_aligns_and_backprop_does_not(digits_runs):
    dfa, dfa_history = digits_runs["dfa"]
    for kind in ("update_vs_gradient", "weights_vs_feedback"):
        assert max(dfa["alignment_deg"][kind]) < 80.0
    first_epoch = dfa_history.records[0]["feedback_angle_deg"]
    assert all(last < first for last, first in
               zip(dfa["alignment_deg"]["weights_vs_feedback"], first_epoch))
    bp, _ = digits_runs["bp"]
    for angle in bp["alignment_deg"]["weights_vs_feedback"]:
        assert abs(angle - 90.0) < 10.0  # BP's weights ignore the random feedback


def test_dfa_through_the_lab_bench_opu_learns_digits():
    result, _ = run_experiment("mlp", "digits", "dfa", "lab-bench", epochs=4, seed=0,
                               progress=False)
    assert result["test_accuracy"] >= 0.92
    assert result["feedback"]["source"] == "lab-bench"
    assert result["feedback"]["frames_acquired"] > 4 * 1348 * 2 * 2
    assert max(result["alignment_deg"]["weights_vs_feedback"]) < 80.0
    assert max(result["alignment_deg"]["update_vs_gradient"]) < 87.0  # noisy: 4 steps, 8 bits


def test_gcn_on_the_block_model_trains_by_dfa_close_to_backprop():
    accuracy = {}
    for method in ("bp", "dfa", "shallow"):
        result, _ = run_experiment("gcn", "csbm", method, epochs=50, seed=0, progress=False)
        accuracy[method] = result["test_accuracy"]
    features, _ = run_experiment("mlp", "csbm", "bp", epochs=30, seed=0, progress=False)
    assert accuracy["bp"] >= 0.78
    assert accuracy["dfa"] >= accuracy["bp"] - 0.03
    assert accuracy["dfa"] >= accuracy["shallow"] + 0.15
    assert features["test_accuracy"] <= accuracy["bp"] - 0.1  # the graph carries the signal


@pytest.mark.slow
def test_acceptance_digits_study_meets_every_goal():
    summary, _ = run_study("digits", seed=0, progress=False)
    print({k: round(v, 2) for k, v in summary["accuracy_pct"].items()}, summary["gaps_pt"])
    failed = {claim: goal["value"] for claim, goal in summary["goals"].items() if not goal["met"]}
    assert not failed


@pytest.mark.slow
def test_acceptance_block_model_study_meets_every_goal():
    summary, _ = run_study("csbm", seed=0, progress=False)
    print({k: round(v, 2) for k, v in summary["accuracy_pct"].items()}, summary["gaps_pt"])
    failed = {claim: goal["value"] for claim, goal in summary["goals"].items() if not goal["met"]}
    assert not failed


def test_a_diverging_run_stops_keeps_its_records_and_never_feeds_nan_to_a_device():
    from dfa_bridge.data import load_dataset
    from dfa_bridge.training.trainer import fit

    data = load_dataset("digits")
    model = MLP(data.n_features, data.n_classes, hidden=(32,), activation="tanh", seed=0)
    feedback = make_feedback("lab-bench", (32,), data.n_classes, seed=0)
    trainer = Trainer(model, "dfa", feedback, optimizer="sgd", lr=1e38)   # weights overflow
    with pytest.warns(RuntimeWarning, match="expected a finite training loss"):
        history = fit(trainer, data, epochs=3, progress=False)
    assert history.diverged_at_step is not None
    assert history.final.get("diverged") is True and len(history.records) >= 1
    steps_per_epoch = math.ceil(data.x_train.shape[0] / 32)
    assert len(history.records) == math.ceil(history.diverged_at_step / steps_per_epoch)
    assert all(math.isfinite(r["train_loss"]) for r in history.records)
