"""What the step schedules need of the trainer: stale (delayed) feedback and micro DFA."""

import numpy as np
import pytest

from dfa_bridge.nn.models import MLP
from dfa_bridge.nn.transformer import TransformerBlock, TransformerLM
from dfa_bridge.training.feedback import IdealFeedback
from dfa_bridge.training.trainer import Trainer


def _batch(seed=0, n=16, features=6, classes=3):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, features)).astype(np.float32),
            rng.integers(0, classes, n))


def _mlp_trainer(delay, optimizer="sgd"):
    model = MLP(6, 3, (5, 4), seed=3)
    options = {"momentum": 0.0} if optimizer == "sgd" else {}
    return Trainer(model, "dfa", IdealFeedback((5, 4), 3, seed=4), optimizer, lr=0.1,
                   feedback_delay=delay, **options)


def test_one_step_stale_feedback_applies_step_t_update_after_step_t_plus_1():
    # SGD without momentum: the delayed trainer's hidden layers after two steps hold
    # exactly the fresh trainer's after one (the update of batch 1, computed from the
    # weights that saw batch 1), while its last layer moved at once.
    stale, fresh = _mlp_trainer(1), _mlp_trainer(0)
    start = [p.value.copy() for p in stale.model.parameters()]
    (x1, y1), (x2, y2) = _batch(0), _batch(1)
    stale.step(x1, y1)
    hidden = stale.path.feedback_parameters()
    assert len(hidden) == 4  # two hidden blocks: weight and bias each
    for parameter, before in zip(stale.model.parameters(), start):
        moved = not np.array_equal(parameter.value, before)
        assert moved == all(parameter is not h for h in hidden)  # only the last layer moved
    stale.step(x2, y2)
    fresh.step(x1, y1)
    for a, b in zip(hidden, fresh.path.feedback_parameters()):
        np.testing.assert_allclose(a.value, b.value, rtol=1e-6, atol=1e-7)
    last = stale.model.blocks[-1].weight_layer.weight.value
    assert not np.allclose(last, fresh.model.blocks[-1].weight_layer.weight.value)  # 2 steps


def test_feedback_delay_is_checked_and_zero_changes_nothing():
    x, y = _batch()
    a, b = _mlp_trainer(0, "adam"), Trainer(MLP(6, 3, (5, 4), seed=3), "dfa",
                                            IdealFeedback((5, 4), 3, seed=4), lr=0.1)
    a.step(x, y), b.step(x, y)
    for p, q in zip(a.model.parameters(), b.model.parameters()):
        np.testing.assert_array_equal(p.value, q.value)
    with pytest.raises(ValueError, match="feedback_delay = 1 with method 'bp'"):
        Trainer(MLP(6, 3, (5,), seed=0), "bp", feedback_delay=1)
    with pytest.raises(ValueError, match="feedback_delay"):
        Trainer(MLP(6, 3, (5,), seed=0), "dfa", IdealFeedback((5,), 3), feedback_delay=-1)


def test_micro_block_backward_with_the_true_point_signals_is_backprop():
    # Fed at each of its three points the gradient backprop has there, micro DFA's
    # block backward sets backprop's parameter gradients and input gradient.
    rng = np.random.default_rng(0)
    block = TransformerBlock(8, 2, rng, np.float64)
    for norm in (block.norm1, block.norm2):
        norm.gain.value[:] = 1 + 0.3 * rng.standard_normal(8)
    x = rng.standard_normal((2, 5, 8))
    block.forward(x)
    grad = rng.standard_normal((2, 5, 8))
    reference_dx = block.backward(grad, input_grad=True)
    reference = [p.grad.copy() for p in block.parameters()]
    # backprop's signals at the GELU output and after the attention sublayer
    hidden = grad.reshape(-1, 8) @ block.ffn.down.weight.value
    middle = grad + block.norm2.input_gradient(block.ffn.backward(grad))
    for parameter in block.parameters():
        parameter.grad[...] = 0
    dx = block.backward_micro(grad, hidden, middle, input_grad=True)
    np.testing.assert_allclose(dx, reference_dx, rtol=1e-10, atol=1e-12)
    for parameter, expected in zip(block.parameters(), reference):
        np.testing.assert_allclose(parameter.grad, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("mode, widths", [("micro-shared", (8, 32)),
                                          ("micro-sliced", (8, 32, 8) * 2)])
def test_micro_dfa_feeds_every_layer_of_every_block(mode, widths):
    model = TransformerLM(11, context=6, width=8, heads=2, n_blocks=2, seed=0)
    feedback = IdealFeedback(widths, 11, seed=1)
    trainer = Trainer(model, "dfa", feedback, feedback_mode=mode, lr=1e-2)
    assert trainer.path.feedback_widths == widths
    rng = np.random.default_rng(2)
    tokens = rng.integers(0, 11, (3, 7))
    loss, angles = trainer.step(tokens[:, :-1], tokens[:, 1:], measure_alignment=True)
    assert np.isfinite(loss) and len(angles) == 2 and all(0 < a < 180 for a in angles)
    for parameter in model.parameters():  # every parameter got a gradient
        assert np.isfinite(parameter.grad).all() and np.abs(parameter.grad).sum() > 0
    with pytest.raises(ValueError, match="feedback"):
        Trainer(model, "dfa", IdealFeedback((8,), 11), feedback_mode=mode)


def test_paired_decision_says_equivalent_worse_or_undecided():
    from studies.dfa_variants import paired_decision

    rng = np.random.default_rng(0)
    small = paired_decision(0.1 + 0.2 * rng.standard_normal(10), margin=1.0)
    assert small["decision"] == "equivalent" and small["p_equivalence"] < 0.05
    # the 90 % interval is inside +-margin exactly when TOST passes
    assert abs(small["mean"]) + small["ci90"] < 1.0
    worse = paired_decision([-3.1, -2.9, -3.3, -2.7, -3.0], margin=1.0)
    assert worse["decision"] == "worse" and worse["mean"] + worse["ci90"] < -1.0
    # below zero but not beyond the margin: the house's rule does not call it worse
    slight = paired_decision([-0.6, -0.5, -0.55, -0.45, -0.5, -0.6, -0.4, -0.5], margin=1.0)
    assert slight["mean"] + slight["ci95"] < 0 and slight["decision"] == "equivalent"
    noisy = paired_decision([-2.0, 1.5, -0.5, 2.5, -3.0], margin=1.0)
    assert noisy["decision"] == "undecided"
    with pytest.raises(ValueError, match="expected at least 2"):
        paired_decision([0.5], margin=1.0)
    with pytest.raises(ValueError, match="margin"):
        paired_decision([0.5, 0.4], margin=0.0)


def test_accuracy_results_are_reused_only_under_the_same_settings(tmp_path, monkeypatch):
    import json

    import studies.dfa_variants as variants
    from studies.step_cost_page import accuracy_results

    runs = []
    monkeypatch.setattr(variants, "stale_feedback_study",
                        lambda seeds, progress=None: runs.append(("stale", list(seeds))) or {})
    monkeypatch.setattr(variants, "micro_dfa_study",
                        lambda seeds, steps, progress=None: runs.append(("micro", steps)) or {})
    store = tmp_path / "accuracy.json"
    first = accuracy_results(range(2), 10, store, "cmd A")
    assert len(runs) == 2 and "reused_from" not in first
    again = accuracy_results(range(2), 10, store, "cmd B")
    assert len(runs) == 2 and again["reused_from"] == str(store) and again["command"] == "cmd A"
    accuracy_results(range(3), 10, store, "cmd C")  # other seeds: measured again
    assert len(runs) == 4 and json.loads(store.read_text())["key"]["seeds"] == [0, 1, 2]
    # interrupted after the stale study: a rerun keeps it and runs the micro one alone
    kept = json.loads(store.read_text())
    del kept["micro"]
    store.write_text(json.dumps(kept))
    accuracy_results(range(3), 10, store, "cmd D")
    assert runs[-1] == ("micro", 10) and len(runs) == 5
