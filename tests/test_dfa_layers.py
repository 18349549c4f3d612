"""dfa_bridge layers, loss and optimizers: every backward against central finite differences."""

import numpy as np
import pytest
import scipy.sparse as sp

from dfa_bridge.data.graphs import normalized_adjacency
from dfa_bridge.nn.layers import Dropout, GraphConv, Linear, Parameter, ReLU, Tanh
from dfa_bridge.nn.losses import SoftmaxCrossEntropy
from dfa_bridge.nn.models import GCN, MLP
from dfa_bridge.nn.optim import SGD, Adam, make_optimizer

from tests.gradcheck import numerical_gradient, relative_error

TOLERANCE = 1e-6


def check_layer(layer, x, training=False, before_forward=lambda: None):
    """Compare backward's input and parameter gradients of sum(y * R) with finite differences."""
    before_forward()
    y = layer.forward(x, training)
    weights = np.random.default_rng(1).standard_normal(y.shape)

    def objective():
        before_forward()
        return float((layer.forward(x, training) * weights).sum())

    before_forward()
    layer.forward(x, training)
    grad_x = layer.backward(weights)
    analytic = {p.name: p.grad.copy() for p in layer.parameters()}
    assert relative_error(grad_x, numerical_gradient(objective, x)) < TOLERANCE
    for parameter in layer.parameters():
        numeric = numerical_gradient(objective, parameter.value)
        assert relative_error(analytic[parameter.name], numeric) < TOLERANCE, parameter.name


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def small_graph(n=7, seed=0):
    rng = np.random.default_rng(seed)
    dense = np.triu(rng.random((n, n)) < 0.4, 1)
    return normalized_adjacency(sp.csr_matrix(dense + dense.T)).astype(np.float64)


def test_linear_backward_matches_finite_differences(rng):
    layer = Linear(4, 3, rng, dtype=np.float64)
    layer.bias.value[:] = rng.standard_normal(3)
    check_layer(layer, rng.standard_normal((5, 4)))


def test_linear_without_input_gradient_still_sets_the_parameter_gradients(rng):
    layer = Linear(4, 3, rng, dtype=np.float64)
    x, g = rng.standard_normal((5, 4)), rng.standard_normal((5, 3))
    layer.forward(x)
    assert layer.backward(g, input_grad=False) is None
    np.testing.assert_allclose(layer.weight.grad, g.T @ x)
    np.testing.assert_allclose(layer.bias.grad, g.sum(axis=0))


def test_graph_conv_backward_matches_finite_differences(rng):
    layer = GraphConv(small_graph(), 3, 2, rng, dtype=np.float64)
    layer.bias.value[:] = rng.standard_normal(2)
    check_layer(layer, rng.standard_normal((7, 3)))


def test_graph_conv_is_the_normalized_adjacency_times_the_linear_map(rng):
    adjacency = small_graph()
    layer = GraphConv(adjacency, 3, 2, rng, dtype=np.float64)
    x = rng.standard_normal((7, 3))
    expected = adjacency.toarray() @ x @ layer.weight.value.T + layer.bias.value
    np.testing.assert_allclose(layer.forward(x), expected, rtol=1e-12)


@pytest.mark.parametrize("activation", [Tanh, ReLU])
def test_activation_backward_matches_finite_differences(activation, rng):
    u = rng.standard_normal((4, 6))
    x = np.sign(u) * (0.05 + np.abs(u))  # away from ReLU's kink
    check_layer(activation(), x)


def test_dropout_backward_matches_finite_differences_with_its_mask(rng):
    layer = Dropout(0.4, seed=5)
    x = rng.standard_normal((6, 8))
    # Re-seeding before every forward replays the same mask, so the map is differentiable.
    check_layer(layer, x, training=True, before_forward=layer._generators.clear)


def test_dropout_keeps_the_expected_fraction_scales_and_is_identity_in_evaluation():
    layer = Dropout(0.3, seed=2)
    x = np.ones((400, 500))
    y = layer.forward(x, training=True)
    kept = y > 0
    n = x.size
    assert abs(kept.mean() - 0.7) < 4 * np.sqrt(0.7 * 0.3 / n)
    np.testing.assert_allclose(y[kept], 1 / 0.7)
    assert layer.forward(x, training=False) is x
    again = Dropout(0.3, seed=2).forward(x, training=True)
    np.testing.assert_array_equal(again, y)  # same seed, same masks
    assert not np.array_equal(layer.forward(x, training=True), y)  # a fresh mask each step


def test_softmax_cross_entropy_gradient_matches_finite_differences(rng):
    logits = rng.standard_normal((5, 4)) * 3
    labels = rng.integers(0, 4, 5)
    loss = SoftmaxCrossEntropy()
    value = loss.forward(logits, labels)
    error = loss.backward()
    numeric = numerical_gradient(lambda: SoftmaxCrossEntropy().forward(logits, labels), logits)
    assert relative_error(error, numeric) < TOLERANCE
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert value == pytest.approx(-np.log(p[np.arange(5), labels]).mean(), rel=1e-12)
    np.testing.assert_allclose(error.sum(axis=1), 0, atol=1e-15)  # each row sums to zero


def test_softmax_cross_entropy_is_stable_for_huge_logits():
    loss = SoftmaxCrossEntropy()
    value = loss.forward(np.array([[1000.0, 0.0], [0.0, -1000.0]]), np.array([1, 0]))
    assert np.isfinite(value) and value == pytest.approx(500.0)
    assert np.isfinite(loss.backward()).all()


def _network_gradient_check(network, x, labels):
    loss = SoftmaxCrossEntropy()
    loss.forward(network.forward(x), labels)
    network.backward(loss.backward())
    analytic = [p.grad.copy() for p in network.parameters()]
    objective = lambda: SoftmaxCrossEntropy().forward(network.forward(x), labels)  # noqa: E731
    for parameter, grad in zip(network.parameters(), analytic):
        assert relative_error(grad, numerical_gradient(objective, parameter.value)) < TOLERANCE


def test_mlp_backpropagation_matches_finite_differences(rng):
    network = MLP(5, 3, hidden=(4, 6), activation="tanh", seed=1, dtype=np.float64)
    _network_gradient_check(network, rng.standard_normal((8, 5)), rng.integers(0, 3, 8))


def test_gcn_backpropagation_matches_finite_differences(rng):
    network = GCN(small_graph(), 3, 2, hidden=(4,), activation="tanh", dropout=0.0, seed=1,
                  dtype=np.float64)
    _network_gradient_check(network, rng.standard_normal((7, 3)), rng.integers(0, 2, 7))


def test_normalized_adjacency_matches_the_dense_formula():
    dense = np.array([[0, 1, 0, 0], [0, 0, 1, 0], [1, 0, 1, 0], [0, 0, 0, 0]], float)
    a = ((dense + dense.T) > 0).astype(float)
    np.fill_diagonal(a, 0)
    a += np.eye(4)
    d = a.sum(axis=1)
    expected = a / np.sqrt(np.outer(d, d))
    result = normalized_adjacency(sp.csr_matrix(dense))
    np.testing.assert_allclose(result.toarray(), expected, rtol=1e-6)
    eigenvalues = np.linalg.eigvalsh(result.toarray().astype(np.float64))
    assert eigenvalues.max() == pytest.approx(1.0, abs=1e-6) and eigenvalues.min() > -1


def _parameter(values, grad):
    parameter = Parameter(np.array(values, dtype=np.float64), "w")
    parameter.grad[:] = grad
    return parameter


def test_sgd_momentum_matches_a_hand_computation():
    parameter = _parameter([1.0, -2.0], [0.5, 0.25])
    optimizer = SGD([parameter], lr=0.1, momentum=0.9)
    optimizer.step()
    np.testing.assert_allclose(parameter.value, [1.0 - 0.05, -2.0 - 0.025])
    parameter.grad[:] = [1.0, 0.0]
    optimizer.step()  # v = 0.9 * [0.5, 0.25] + [1, 0] = [1.45, 0.225]
    np.testing.assert_allclose(parameter.value, [0.95 - 0.145, -2.025 - 0.0225])


def test_adam_matches_the_reference_formula():
    parameter = _parameter([0.3, -1.0, 2.0], [0.0, 0.0, 0.0])
    optimizer = Adam([parameter], lr=0.01, betas=(0.8, 0.9), eps=1e-3, weight_decay=0.1)
    w = parameter.value.copy()
    m = np.zeros(3)
    v = np.zeros(3)
    for t, grad in enumerate(([1.0, -2.0, 0.5], [0.3, 0.1, -4.0], [-1.0, 1.0, 1.0]), start=1):
        parameter.grad[:] = grad
        optimizer.step()
        g = np.array(grad) + 0.1 * w
        m = 0.8 * m + 0.2 * g
        v = 0.9 * v + 0.1 * g * g
        w = w - 0.01 * (m / (1 - 0.8 ** t)) / (np.sqrt(v / (1 - 0.9 ** t)) + 1e-3)
        np.testing.assert_allclose(parameter.value, w, rtol=1e-12)


@pytest.mark.parametrize("call, message", [
    (lambda p: make_optimizer("rmsprop", p), r"optimizer = 'rmsprop': expected one of 'adam', 'sgd'"),
    (lambda p: Adam(p, lr=-1.0), r"lr = -1.0: expected a finite number > 0"),
    (lambda p: SGD(p, momentum=1.0), r"momentum = 1.0: expected a finite number >= 0 and < 1"),
    (lambda p: SGD([], lr=0.1), r"parameters: an empty list"),
    (lambda p: Dropout(1.0, seed=0), r"rate = 1.0: expected a drop probability in \[0, 1\)"),
    (lambda p: MLP(4, 2, hidden=(3, 0)), r"hidden = \(3, 0\): expected one or more positive"),
    (lambda p: MLP(4, 2, activation="sigmoid"), r"activation = 'sigmoid': expected one of 'tanh', 'relu'"),
])
def test_bad_arguments_are_refused_with_the_value_and_what_was_expected(call, message):
    with pytest.raises(ValueError, match=message):
        call([_parameter([1.0], [0.0])])


def test_a_layer_refuses_inputs_of_the_wrong_width(rng):
    layer = Linear(4, 3, rng)
    with pytest.raises(ValueError, match=r"Linear.forward: x: shape \(2, 5\): expected \(n, 4\)"):
        layer.forward(np.zeros((2, 5), np.float32))
    with pytest.raises(RuntimeError, match="call forward"):
        Tanh().backward(np.zeros((2, 2)))
