"""The PyTorch front: DFA on a user's torch modules, compared with the NumPy path.

Skipped without torch (``pip install -e '.[torch]'``; CI installs the extra).
"""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

from dfa_bridge.data import load_dataset  # noqa: E402
from dfa_bridge.nn.models import MLP  # noqa: E402
from dfa_bridge.torch_front import DFA, FeedbackPoint  # noqa: E402
from dfa_bridge.training.experiment import run_experiment  # noqa: E402
from dfa_bridge.training.feedback import IdealFeedback  # noqa: E402
from dfa_bridge.training.trainer import Trainer  # noqa: E402

torch.set_num_threads(1)


def torch_mlp(d, C, hidden=(256, 256), dropout=0.1):
    layers, n_in = [], d
    for width in hidden:
        layers += [nn.Linear(n_in, width), nn.Tanh()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        layers.append(FeedbackPoint())
        n_in = width
    return nn.Sequential(*layers, nn.Linear(n_in, C))


def test_dfa_gradients_equal_the_numpy_trainers_on_the_same_weights():
    rng = np.random.default_rng(0)
    x, labels = rng.normal(size=(5, 8)), rng.integers(0, 3, 5)
    reference = MLP(8, 3, hidden=(6, 4), seed=0, dtype=np.float64)
    feedback = IdealFeedback((6, 4), 3, seed=2)
    trainer = Trainer(reference, "dfa", feedback)
    trainer.backward(trainer.error(x, labels))
    expected = [p.grad for p in reference.parameters()]

    model = torch_mlp(8, 3, hidden=(6, 4), dropout=0).double()
    linears = [m for m in model if isinstance(m, nn.Linear)]
    with torch.no_grad():
        for layer, block in zip(linears, reference.blocks):
            weight, bias = block.parameters()
            layer.weight.copy_(torch.from_numpy(weight.value))
            layer.bias.copy_(torch.from_numpy(bias.value))
    dfa = DFA(model, "dfa", feedback)
    out = model(torch.from_numpy(x))
    angles = dfa.backward(F.cross_entropy(out, torch.from_numpy(labels)), out,
                          measure_alignment=True)
    got = [p.grad.numpy() for layer in linears for p in (layer.weight, layer.bias)]
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-12)
    assert len(angles) == 2 and all(0 <= a <= 180 for a in angles)
    assert [len(b) for b in dfa.blocks] == [2, 2] and len(dfa.head) == 2


def test_bp_is_autograd_and_shallow_trains_the_head_only():
    torch.manual_seed(0)
    x, y = torch.randn(6, 5), torch.tensor([0, 1, 2, 0, 1, 2])
    model = torch_mlp(5, 3, hidden=(4,), dropout=0)
    bp = DFA(model, "bp")
    out = model(x)
    bp.backward(F.cross_entropy(out, y), out)
    expected = [p.grad.clone() for p in model.parameters()]
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    for p, e in zip(model.parameters(), expected):
        torch.testing.assert_close(p.grad, e)
    bp.remove()
    model.zero_grad(set_to_none=True)
    shallow = DFA(model, "shallow")
    out = model(x)
    shallow.backward(F.cross_entropy(out, y), out)
    first, last = model[0], model[-1]
    assert first.weight.grad is None and last.weight.grad is not None
    torch.testing.assert_close(last.weight.grad, expected[-2])


def test_bad_arguments_are_refused():
    model = torch_mlp(4, 3, hidden=(5,), dropout=0)
    with pytest.raises(ValueError, match="method = 'hebbian'"):
        DFA(model, "hebbian")
    with pytest.raises(ValueError, match="feedback_mode = 'stacked'"):
        DFA(model, feedback_mode="stacked")
    with pytest.raises(ValueError, match="feedback points"):
        DFA(nn.Linear(3, 2), "dfa")
    dfa = DFA(model, "dfa", IdealFeedback((7,), 3))
    out = model(torch.randn(2, 4))
    with pytest.raises(ValueError, match="expected \\(5,\\) and 3"):
        dfa.backward(F.cross_entropy(out, torch.tensor([0, 1])), out)


def train_digits(method, feedback, seed, epochs):
    """The NumPy path's digits MLP (256-256 tanh, dropout 0.1, Adam 1e-3, batch 32) in torch."""
    data = load_dataset("digits")
    torch.manual_seed(seed)
    model = torch_mlp(data.x_train.shape[1], data.n_classes)
    dfa = DFA(model, method, feedback, feedback_options={"seed": seed})
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.from_numpy(np.asarray(data.x_train, np.float32))
    y = torch.from_numpy(np.asarray(data.y_train)).long()
    rng, angles = np.random.default_rng(seed), None
    for _ in range(epochs):
        order = rng.permutation(len(y))
        for i, start in enumerate(range(0, len(y), 32)):
            index = order[start:start + 32]
            _, measured = dfa.step(x[index], y[index], F.cross_entropy, optimizer,
                                   measure_alignment=i == 0)
            angles = measured or angles
    model.eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(np.asarray(data.x_test, np.float32)))
    dfa.close()
    return float((logits.argmax(1).numpy() == data.y_test).mean()), angles


# NumPy path, digits MLP DFA with ideal feedback, 5 epochs, seeds 0 and 1 (measured with
# run_experiment("mlp", "digits", "dfa", epochs=5, seed=s)): 0.953, 0.956.
NUMPY_IDEAL_5_EPOCHS = (0.9533, 0.9556)


def test_torch_mlp_on_digits_with_dfa_lands_with_the_numpy_path():
    accuracy, angles = train_digits("dfa", "ideal", seed=0, epochs=5)
    spread = max(0.02, np.ptp(NUMPY_IDEAL_5_EPOCHS))
    assert accuracy >= min(NUMPY_IDEAL_5_EPOCHS) - spread
    assert all(a < 90 for a in angles)  # the updates align with backprop's


@pytest.mark.slow
@pytest.mark.parametrize("feedback, epochs", [("ideal", 5), ("lab-bench", 4)])
def test_torch_and_numpy_digits_agree_within_the_seed_spread(feedback, epochs):
    seeds = (0, 1, 2)
    ours = [train_digits("dfa", feedback, s, epochs)[0] for s in seeds]
    theirs = [run_experiment("mlp", "digits", "dfa", feedback, epochs=epochs, seed=s,
                             progress=False)[0]["test_accuracy"] for s in seeds]
    spread = max(np.ptp(ours), np.ptp(theirs), 0.01)
    print(feedback, ours, theirs)
    assert abs(np.mean(ours) - np.mean(theirs)) <= 2 * spread


class TinyLM(nn.Module):
    """A small pre-LN Transformer LM, a FeedbackPoint after each block (the NumPy one's form)."""

    def __init__(self, vocab, context=32, width=32, heads=2, n_blocks=2):
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        self.position = nn.Parameter(torch.zeros(context, width))
        nn.init.normal_(self.position, std=0.02)
        self.final_norm = nn.LayerNorm(width)
        self.blocks = nn.ModuleList()
        self.points = nn.ModuleList()
        for _ in range(n_blocks):
            self.blocks.append(nn.TransformerEncoderLayer(width, heads, 4 * width, dropout=0.0,
                                                          activation="gelu", batch_first=True,
                                                          norm_first=True))
            self.points.append(FeedbackPoint(through=self.final_norm))
        self.head = nn.Linear(width, vocab)
        mask = torch.triu(torch.full((context, context), float("-inf")), diagonal=1)
        self.register_buffer("mask", mask)

    def forward(self, tokens):
        T = tokens.shape[1]
        h = self.embed(tokens) + self.position[:T]
        for block, point in zip(self.blocks, self.points):
            h = point(block(h, src_mask=self.mask[:T, :T], is_causal=True))
        return self.head(self.final_norm(h))


def train_tiny_lm(method, feedback, seed, steps=120, context=32, batch=16, lr=3e-3):
    from dfa_bridge.data.text import load_pydoc, random_windows, validation_windows
    from dfa_bridge.training.trainer import warmup_cosine
    corpus = load_pydoc()
    torch.manual_seed(seed)
    model = TinyLM(corpus.n_tokens, context=context)
    dfa = DFA(model, method, feedback, feedback_mode="shared",
              feedback_options={"seed": seed})
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    rng = np.random.default_rng(seed)

    def loss_fn(out, y):
        return F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))

    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = warmup_cosine(step, steps, lr, 10)
        x, y = random_windows(corpus.train_ids, batch, context, rng)
        dfa.step(torch.from_numpy(np.asarray(x)).long(), torch.from_numpy(np.asarray(y)).long(),
                 loss_fn, optimizer)
    x, y = validation_windows(corpus.val_ids, context, max_chars=4096)
    with torch.no_grad():
        loss = float(loss_fn(model(torch.from_numpy(np.asarray(x)).long()),
                             torch.from_numpy(np.asarray(y)).long()))
    dfa.close()
    return loss


@pytest.mark.slow
def test_torch_transformer_with_dfa_through_lab_bench_lands_with_the_numpy_path():
    tiny = {"n_blocks": 2, "width": 32, "heads": 2, "context": 32, "batch_size": 16,
            "steps": 120, "warmup": 10, "lr": 3e-3}
    seeds = (0, 1)
    ours = [train_tiny_lm("dfa", "lab-bench", s) for s in seeds]
    theirs = [run_experiment("transformer", "pydoc", "dfa", "lab-bench", seed=s,
                             max_eval_chars=4096, evaluations=1, progress=False,
                             **tiny)[0]["val_loss"] for s in seeds]
    print("val loss torch", ours, "numpy", theirs)
    spread = max(np.ptp(ours), np.ptp(theirs), 0.05)
    assert all(math.isfinite(v) for v in ours)
    assert abs(np.mean(ours) - np.mean(theirs)) <= 3 * spread
