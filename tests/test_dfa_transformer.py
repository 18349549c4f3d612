"""Character Transformer: every backward against finite differences, causality, the corpus,
macro-DFA wiring, a tiny training run, sampling and the command line."""

import json
import subprocess
import sys

import numpy as np
import pytest

from dfa_bridge.training.feedback import Feedback, IdealFeedback
from dfa_bridge.training.experiment import run_experiment
from dfa_bridge.training.language import sample
from dfa_bridge.training.trainer import Trainer
from dfa_bridge.data.text import (UNK, build_corpus, load_pydoc, load_text_file, random_windows,
                             validation_windows)
from dfa_bridge.nn.transformer import (GELU, CausalSelfAttention, FeedForward, LayerNorm,
                                    OutputProjection, PositionalEmbedding, TokenEmbedding,
                                    TransformerBlock, TransformerLM)
from tests.gradcheck import numerical_gradient, relative_error


def check_layer(layer, x, check_input=True, tolerance=1e-6):
    """backward of sum(y * R) against central differences, input and every parameter."""
    y = layer.forward(x)
    weights = np.random.default_rng(1).standard_normal(y.shape)

    def objective():
        return float((layer.forward(x) * weights).sum())

    layer.forward(x)
    grad_x = layer.backward(weights)
    analytic = [p.grad.copy() for p in layer.parameters()]
    if check_input:
        assert relative_error(grad_x, numerical_gradient(objective, x)) < tolerance
    for parameter, grad in zip(layer.parameters(), analytic):
        assert relative_error(grad, numerical_gradient(objective, parameter.value)) < tolerance, \
            parameter.name
    return grad_x


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def randomize_norms(layers, rng):
    for layer in layers:
        if isinstance(layer, LayerNorm):
            layer.gain.value[:] = 1 + 0.3 * rng.standard_normal(layer.width)
            layer.bias.value[:] = 0.3 * rng.standard_normal(layer.width)


# ---------------------------------------------------------------- layers
def test_token_embedding_gradient_matches_finite_differences(rng):
    layer = TokenEmbedding(7, 5, rng, dtype=np.float64)
    tokens = np.array([[0, 3, 3, 6], [2, 3, 0, 1]])
    y = layer.forward(tokens)
    np.testing.assert_array_equal(y, layer.weight.value[tokens])
    weights = rng.standard_normal(y.shape)
    assert layer.backward(weights) is None
    numeric = numerical_gradient(lambda: float((layer.forward(tokens) * weights).sum()),
                                 layer.weight.value)
    assert relative_error(layer.weight.grad, numeric) < 1e-8
    assert not layer.weight.grad[[4, 5]].any()  # unseen tokens get nothing


def test_positional_embedding_backward_matches_finite_differences(rng):
    layer = PositionalEmbedding(6, 3, rng, dtype=np.float64)
    check_layer(layer, rng.standard_normal((2, 4, 3)))
    assert not layer.weight.grad[4:].any()  # positions beyond the input get nothing


def test_layer_norm_backward_matches_finite_differences(rng):
    layer = LayerNorm(6, dtype=np.float64)
    randomize_norms([layer], rng)
    check_layer(layer, rng.standard_normal((2, 3, 6)))


def test_gelu_backward_matches_finite_differences(rng):
    check_layer(GELU(), 2 * rng.standard_normal((3, 4, 5)))


def test_feed_forward_backward_matches_finite_differences(rng):
    check_layer(FeedForward(4, 8, rng, dtype=np.float64), rng.standard_normal((2, 3, 4)))


def test_causal_attention_backward_matches_finite_differences(rng):
    layer = CausalSelfAttention(6, 2, rng, dtype=np.float64)
    for p in layer.parameters():
        p.value[...] = rng.standard_normal(p.value.shape)
    check_layer(layer, rng.standard_normal((2, 5, 6)))


def test_attention_output_at_t_ignores_later_inputs_and_their_gradient_is_zero(rng):
    layer = CausalSelfAttention(8, 2, rng, dtype=np.float64)
    x = rng.standard_normal((2, 6, 8))
    y = layer.forward(x)
    changed = x.copy()
    changed[:, 4:] = rng.standard_normal((2, 2, 8))
    np.testing.assert_array_equal(layer.forward(changed)[:, :4], y[:, :4])
    # dL/dx of a loss on position 2 only: exactly zero at positions 3, 4, 5.
    grad = np.zeros_like(y)
    grad[:, 2] = rng.standard_normal((2, 8))
    layer.forward(x)
    grad_x = layer.backward(grad)
    assert not grad_x[:, 3:].any() and np.abs(grad_x[:, :3]).sum() > 0


def test_whole_model_is_causal(rng):
    model = TransformerLM(11, context=8, width=8, heads=2, n_blocks=2, dtype=np.float64)
    tokens = rng.integers(0, 11, (2, 8))
    logits = model.forward(tokens).reshape(2, 8, 11)
    other = tokens.copy()
    other[:, 5:] = (other[:, 5:] + 1) % 11
    np.testing.assert_allclose(model.forward(other).reshape(2, 8, 11)[:, :5], logits[:, :5],
                               rtol=0, atol=1e-14)


def test_transformer_block_backward_matches_finite_differences(rng):
    block = TransformerBlock(6, 3, rng, dtype=np.float64, ffn_factor=2)
    randomize_norms(block.layers(), rng)
    check_layer(block, rng.standard_normal((2, 4, 6)))


@pytest.mark.parametrize("tied", [False, True])
def test_output_projection_backward_matches_finite_differences(tied, rng):
    embedding = TokenEmbedding(5, 4, rng, dtype=np.float64) if tied else None
    layer = OutputProjection(4, 5, rng, np.float64, tied_to=embedding)
    layer.linear.bias.value[:] = rng.standard_normal(5)
    x = rng.standard_normal((2, 3, 4))
    weights = rng.standard_normal((6, 5))

    def objective():
        return float((layer.forward(x) * weights).sum())

    layer.forward(x)
    grad_x = layer.backward(weights).reshape(x.shape)
    assert relative_error(grad_x, numerical_gradient(objective, x)) < 1e-6
    weight_grad = layer.tied_grad if tied else layer.linear.weight.grad
    assert relative_error(weight_grad, numerical_gradient(objective, layer.linear.weight.value)) < 1e-6
    assert len(layer.parameters()) == (1 if tied else 2)


@pytest.mark.parametrize("tied", [False, True])
def test_whole_model_backprop_matches_finite_differences(tied, rng):
    from dfa_bridge.nn.losses import SoftmaxCrossEntropy

    model = TransformerLM(9, context=5, width=6, heads=2, n_blocks=2, tied=tied, seed=3,
                          dtype=np.float64)
    randomize_norms([model.final_norm] + [l for b in model.blocks for l in b.layers()], rng)
    tokens, targets = rng.integers(0, 9, (2, 5)), rng.integers(0, 9, 10)
    loss = SoftmaxCrossEntropy()
    loss.forward(model.forward(tokens), targets)
    model.backward(loss.backward())
    for parameter in model.parameters():
        numeric = numerical_gradient(
            lambda: SoftmaxCrossEntropy().forward(model.forward(tokens), targets), parameter.value)
        assert relative_error(parameter.grad, numeric) < 1e-6, parameter.name


# ---------------------------------------------------------------- corpus
def test_pydoc_corpus_is_deterministic_and_split_at_the_end():
    a, b = load_pydoc(), load_pydoc()
    assert a.vocabulary == b.vocabulary and np.array_equal(a.val_ids, b.val_ids)
    assert a.vocabulary[0] == UNK and 60 < a.n_tokens < 110
    total = a.train_ids.size + a.val_ids.size
    assert total > 400_000 and a.val_ids.size == round(0.1 * total)
    assert a.unigram_perplexity() > 10


def test_text_file_corpus_maps_rare_and_unseen_characters_to_unk(tmp_path):
    path = tmp_path / "tiny.txt"
    path.write_text("abababababcabababab\u00e9ab" + "ba" * 5 + "zz", encoding="utf-8")
    corpus = load_text_file(path, val_fraction=0.2, min_count=2)
    assert corpus.vocabulary == (UNK, "a", "b")  # c, e-acute once; z only in validation
    assert corpus.decode(corpus.encode("abcz")) == "ab\ufffd\ufffd"
    assert corpus.val_ids[-2:].tolist() == [0, 0]
    assert corpus.train_ids.size + corpus.val_ids.size == 34 and corpus.val_ids.size == 7
    assert load_text_file(path, val_fraction=0.2, min_count=2).val_ids.tolist() == \
        corpus.val_ids.tolist()


def test_bad_corpus_input_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="path = '/no/such.txt': expected a UTF-8 text file"):
        load_text_file("/no/such.txt")
    bad = tmp_path / "latin1.txt"
    bad.write_bytes(b"caf\xe9 " * 20)
    with pytest.raises(ValueError, match="not UTF-8"):
        load_text_file(bad)
    with pytest.raises(ValueError, match=r"val_fraction = 1.5: expected a finite number > 0 and < 1"):
        build_corpus("abcdef" * 5, val_fraction=1.5)


def test_windows_are_next_character_pairs():
    ids = np.arange(100)
    x, y = random_windows(ids, 4, 8, np.random.default_rng(0))
    assert x.shape == y.shape == (4, 8) and np.array_equal(y, x + 1)
    vx, vy = validation_windows(ids, 8)
    assert vx.shape == (12, 8) and np.array_equal(vy.ravel(), np.arange(1, 97))


# ---------------------------------------------------------------- macro DFA
class TrueSignalFeedback(Feedback):
    """Returns given per-block signals (B T, L D), ignoring the error."""

    def __init__(self, signals, widths, n_classes):
        super().__init__(widths, n_classes)
        self.signals = signals

    def _project(self, error):
        return self.signals

    def matrix(self):
        raise NotImplementedError


def _signal_before_the_final_norm(model, error):
    """``W_out^T e`` (B T, D): backprop's gradient at the final layer norm's output."""
    return model.head.backward(error).reshape(-1, model.width).copy()


@pytest.mark.parametrize("tied", [False, True])
def test_dfa_fed_the_true_head_signal_gives_the_backprop_gradient(tied, rng):
    """One block: the DFA update from ``W_out^T e`` through the final norm IS backprop."""
    model = TransformerLM(9, context=6, width=8, heads=2, n_blocks=1, tied=tied, seed=1,
                          dtype=np.float64)
    tokens, targets = rng.integers(0, 9, (3, 6)), rng.integers(0, 9, (3, 6))
    error = Trainer(model, "bp").error(tokens, targets).error
    model.backward(error)
    bp = [p.grad.copy() for p in model.parameters()]
    signal = _signal_before_the_final_norm(model, error)
    trainer = Trainer(model, "dfa", TrueSignalFeedback(signal, model.feedback_widths, 9),
                      feedback_mode="sliced")
    trainer.backward(trainer.error(tokens, targets))
    for parameter, expected in zip(model.parameters(), bp):
        np.testing.assert_allclose(parameter.grad, expected, rtol=1e-10, atol=1e-14,
                                   err_msg=parameter.name)


def test_dfa_with_the_true_head_signal_matches_backprop_on_the_last_block(rng):
    model = TransformerLM(9, context=6, width=8, heads=2, n_blocks=3, seed=1, dtype=np.float64)
    tokens, targets = rng.integers(0, 9, (3, 6)), rng.integers(0, 9, (3, 6))
    error = Trainer(model, "bp").error(tokens, targets).error
    model.backward(error)
    bp_last = [p.grad.copy() for p in model.blocks[-1].parameters()]
    signal = _signal_before_the_final_norm(model, error)
    trainer = Trainer(model, "dfa", TrueSignalFeedback(signal, (8,), 9))  # shared: the default
    assert trainer.feedback_mode == "shared"
    trainer.backward(trainer.error(tokens, targets))
    for parameter, expected in zip(model.blocks[-1].parameters(), bp_last):
        np.testing.assert_allclose(parameter.grad, expected, rtol=1e-10, atol=1e-14)


def test_dfa_projects_the_error_once_and_feeds_slice_k_to_block_k(rng):
    model = TransformerLM(9, context=4, width=8, heads=2, n_blocks=3, seed=1, dtype=np.float64)
    feedback = IdealFeedback(model.feedback_widths, 9, seed=2)
    calls = []
    original = feedback._project
    feedback._project = lambda e: calls.append(e.shape) or original(e)
    trainer = Trainer(model, "dfa", feedback, feedback_mode="sliced")
    tokens, targets = rng.integers(0, 9, (2, 4)), rng.integers(0, 9, (2, 4))
    batch = trainer.error(tokens, targets)
    error = batch.error
    trainer.backward(batch)
    assert calls == [(8, 9)]  # one row per token, one projection per step
    dfa = [[p.grad.copy() for p in block.parameters()] for block in model.blocks]
    big_b = feedback.matrices()
    model.backward_head(error)
    for index, block in enumerate(model.blocks):
        # block k's update: B_k e, through the final norm's local backward, at its output
        signal = model.final_norm.input_gradient((error @ big_b[index].T).reshape(2, 4, 8))
        model.backward_block(index, signal)
        for parameter, got in zip(block.parameters(), dfa[index]):
            np.testing.assert_allclose(got, parameter.grad, rtol=1e-12)


def test_the_final_norm_input_gradient_removes_what_the_norm_cannot_see(rng):
    model = TransformerLM(9, context=4, width=8, heads=2, n_blocks=1, seed=1, dtype=np.float64)
    model.forward(rng.integers(0, 9, (2, 4)))
    norm = model.final_norm
    normalized, _ = norm._cache
    # A push along the mean or along the normalized activity changes nothing downstream
    # (up to the eps in the variance, which makes x_hat's norm a hair below sqrt(D)).
    generic = np.linalg.norm(norm.input_gradient(rng.standard_normal((2, 4, 8))))
    for direction in (np.ones((2, 4, 8)), normalized / norm.gain.value):
        assert np.linalg.norm(norm.input_gradient(direction)) < 1e-3 * generic


def test_shallow_trains_the_head_only_and_refuses_a_tied_model(rng):
    model = TransformerLM(9, context=4, width=8, heads=2, n_blocks=2, seed=1)
    before = [p.value.copy() for p in model.parameters()]
    trainer = Trainer(model, "shallow", lr=1e-2)
    trainer.step(rng.integers(0, 9, (2, 4)), rng.integers(0, 9, (2, 4)))
    head = {id(p) for p in model.head_parameters()}
    for parameter, old in zip(model.parameters(), before):
        assert (id(parameter) in head) == (not np.array_equal(parameter.value, old)), parameter.name
    with pytest.raises(ValueError, match="method = 'shallow' with a tied output projection"):
        Trainer(TransformerLM(9, 4, 8, 2, 2, tied=True), "shallow")
    with pytest.raises(ValueError, match=r"feedback: widths \(8,\).*expected \(8, 8\) \(sliced"):
        Trainer(model, "dfa", IdealFeedback((8,), 9), feedback_mode="sliced")
    with pytest.raises(ValueError, match=r"feedback: widths \(8, 8\).*expected \(8,\) \(shared"):
        Trainer(model, "dfa", IdealFeedback((8, 8), 9))
    with pytest.raises(ValueError, match="feedback_mode = 'stacked': expected one of 'sliced', 'shared'"):
        Trainer(model, "dfa", IdealFeedback((8,), 9), feedback_mode="stacked")


# ---------------------------------------------------------------- training
TINY = {"n_blocks": 2, "width": 32, "heads": 2, "context": 32, "batch_size": 16, "steps": 120,
        "warmup": 10, "lr": 3e-3}


@pytest.fixture(scope="module")
def tiny_runs():
    return {method: run_experiment("transformer", "pydoc", method, max_eval_chars=4096,
                                   evaluations=1, progress=False,
                                   n_sample=40 if method == "bp" else 0, **TINY)[0]
            for method in ("bp", "dfa")}


def test_bp_and_dfa_beat_the_unigram_baseline(tiny_runs):
    bp, dfa = tiny_runs["bp"], tiny_runs["dfa"]
    assert bp["val_perplexity"] < 0.8 * bp["unigram_perplexity"]
    assert dfa["val_perplexity"] < dfa["unigram_perplexity"]
    angles = tiny_runs["dfa"]["alignment_deg"]["update_vs_gradient"]
    assert len(angles) == 2 and all(0 < a < 180 for a in angles)
    # bp applies no DFA update: no feedback, no angle of an update it never made.
    assert bp["feedback"] is None and bp["alignment_deg"] == {"update_vs_gradient": None}


def test_sample_has_the_requested_length_and_is_reproducible(tiny_runs):
    assert len(tiny_runs["bp"]["sample"]) == 40
    model = TransformerLM(load_pydoc().n_tokens, context=8, width=8, heads=2, n_blocks=1)
    corpus = load_pydoc()
    assert sample(model, corpus, 25, seed=4) == sample(model, corpus, 25, seed=4)
    assert len(sample(model, corpus, 25, seed=4)) == 25


def test_dfa_through_the_lab_bench_opu_runs_with_bit_planes_by_default():
    # Through run_experiment, as the studies do: the Transformer's default encoder applies.
    result, _ = run_experiment("transformer", "pydoc", "dfa", "lab-bench", max_eval_chars=2048,
                               evaluations=1, progress=False, **{**TINY, "steps": 5})
    assert result["feedback"]["source"] == "lab-bench" and result["feedback"]["frames_acquired"] > 0
    assert "BitPlane" in result["feedback"]["encoder"]
    assert np.isfinite(result["val_perplexity"])


def test_train_script_prints_perplexity_alignment_and_a_sample():
    done = subprocess.run(
        [sys.executable, "scripts/train.py", "--model", "transformer", "--data", "pydoc",
         "--method", "dfa", "--steps", "20", "--blocks", "2", "--width", "32", "--heads", "2",
         "--context", "16", "--sample", "30", "--json"],
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["val_perplexity"] > 1 and result["seconds"] > 0 and result["steps"] == 20
    assert len(result["alignment_deg"]["update_vs_gradient"]) == 2
    assert len(result["sample"]) == 30


def test_train_script_refuses_bad_transformer_arguments():
    done = subprocess.run(
        [sys.executable, "scripts/train.py", "--model", "transformer", "--data", "text"],
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert "path = None: expected the path of a UTF-8 text file" in done.stderr


@pytest.mark.slow
def test_acceptance_transformer_study():
    from studies.acceptance import run_study

    summary, _ = run_study("transformer")
    assert all(goal["met"] for goal in summary["goals"].values()), summary["goals"]


@pytest.mark.gpu
def test_cupy_model_matches_numpy_and_trains_by_dfa():
    import cupy

    model = TransformerLM(9, context=8, width=16, heads=2, n_blocks=2, seed=1, dtype=np.float64)
    tokens = np.random.default_rng(0).integers(0, 9, (3, 8))
    targets = np.random.default_rng(1).integers(0, 9, (3, 8))
    trainer = Trainer(model, "bp")
    trainer.backward(trainer.error(tokens, targets))
    expected = [p.grad.copy() for p in model.parameters()]
    model.to(cupy)
    trainer.backward(trainer.error(cupy.asarray(tokens), cupy.asarray(targets)))
    for parameter, grad in zip(model.parameters(), expected):
        assert isinstance(parameter.grad, cupy.ndarray)
        np.testing.assert_allclose(parameter.grad.get(), grad, rtol=1e-9, atol=1e-12)
    result, _ = run_experiment("transformer", "pydoc", "dfa", backend="cupy", max_eval_chars=2048,
                               evaluations=1, progress=False, **{**TINY, "steps": 20})
    assert np.isfinite(result["val_perplexity"]) and result["backend"] == "cupy"


def test_a_diverging_language_run_stops_and_keeps_its_evaluations():
    with pytest.warns(RuntimeWarning, match=r"expected a finite training loss.*\(step \d+\); "
                      "the records so far are kept"):
        result, history = run_experiment(
            "transformer", "pydoc", "dfa", "lab-bench", max_eval_chars=2048, evaluations=2,
            progress=False, **{**TINY, "steps": 12, "optimizer": "sgd", "lr": 1e38, "warmup": 1})
    at = result["diverged_at_step"]
    assert at is not None and history.final["diverged"] is True
    assert history.final["step"] == at <= 12 and result["curves"]["step"][-1] == at
    # The steps before the divergence had finite losses: their mean is the record's.
    assert 1 < at and np.isfinite(history.final["train_loss"])

def test_bit_planes_keep_the_token_error_that_a_ternary_code_drops():
    from dfa_bridge.training.feedback import make_feedback

    n_tokens, width = 91, 64
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((512, n_tokens))
    targets = rng.integers(0, n_tokens, 512)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(512), targets] -= 1.0                     # softmax - onehot, as in training
    error = (p / 512).astype(np.float32)

    def correlation(encoder):
        # The noise-free |R x|^2 backend: only the encoding stands between e and M e.
        feedback = make_feedback("device:ideal", (width,), n_tokens, encoder=encoder)
        got = np.asarray(feedback.project(error)[0])
        exact = error @ np.asarray(feedback.matrix()).T
        return np.corrcoef(got.ravel(), exact.ravel())[0, 1]

    # Thinly spread positive mass over 91 tokens: a ternary code keeps little of it.
    assert correlation("ternary") < 0.6 < 0.9 < correlation("bitplanes")
