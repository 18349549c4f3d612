"""The PyTorch front: DFA through loss.backward() in ordinary training loops.

Compared with the NumPy path on the same weights, trained as users train (DataLoader,
optimizer.zero_grad / loss.backward / optimizer.step), under torch.compile and
autocast, pickled, and misused. Skipped without torch (``pip install -e '.[torch]'``;
CI installs the extra).
"""

import copy
import math
import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from dfa_bridge.data import load_dataset  # noqa: E402
from dfa_bridge.nn.models import MLP  # noqa: E402
from dfa_bridge.torch_front import DFA, DFAUsageError, FeedbackPoint  # noqa: E402
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


def grads(model):
    return [None if p.grad is None else p.grad.clone() for p in model.parameters()]


def test_loss_backward_gives_the_numpy_trainers_dfa_gradients():
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
    F.cross_entropy(model(torch.from_numpy(x)), torch.from_numpy(labels)).backward()
    got = [p.grad.numpy() for layer in linears for p in (layer.weight, layer.bias)]
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-12)
    angles = dfa.alignment(torch.from_numpy(x), torch.from_numpy(labels), F.cross_entropy)
    assert len(angles) == 2 and all(0 <= a <= 180 for a in angles)
    np.testing.assert_allclose(linears[0].weight.grad.numpy(), expected[0],
                               rtol=1e-10)  # alignment leaves .grad as it was


def test_bp_is_autograd_and_shallow_trains_the_head_only():
    torch.manual_seed(0)
    x, y = torch.randn(6, 5), torch.tensor([0, 1, 2, 0, 1, 2])
    model = torch_mlp(5, 3, hidden=(4,), dropout=0)
    F.cross_entropy(model(x), y).backward()
    expected = grads(model)
    model.zero_grad(set_to_none=True)
    bp = DFA(model, "bp")
    F.cross_entropy(bp(x), y).backward()
    for got, e in zip(grads(model), expected):
        torch.testing.assert_close(got, e)
    bp.close()
    model.zero_grad(set_to_none=True)
    shallow = DFA(model, "shallow")
    F.cross_entropy(model(x), y).backward()
    first, last = model[0], model[-1]
    assert first.weight.grad is None and last.weight.grad is not None
    torch.testing.assert_close(last.weight.grad, expected[-2])


def test_a_backward_uses_its_own_forward():
    torch.manual_seed(1)
    model = torch_mlp(6, 3, hidden=(5, 4), dropout=0)
    DFA(model, "dfa", "ideal", feedback_options={"seed": 4})
    xa, xb = torch.randn(7, 6), torch.randn(7, 6)  # the same batch size
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0])
    F.cross_entropy(model(xa), y).backward()
    alone = grads(model)
    model.zero_grad()
    loss_a = F.cross_entropy(model(xa), y)
    loss_b = F.cross_entropy(model(xb), y)            # a second forward in between
    with torch.no_grad():
        model(torch.randn(3, 6))                       # and a validation forward
    loss_a.backward()
    for got, e in zip(grads(model), alone):
        torch.testing.assert_close(got, e)
    model.zero_grad()
    loss_b.backward()
    assert not torch.allclose(model[0].weight.grad, alone[0])  # b's own error and activations


def test_bp_and_dfa_differ_below_the_head_only():
    torch.manual_seed(2)
    model = torch_mlp(6, 3, hidden=(5, 4), dropout=0)
    x, y = torch.randn(9, 6), torch.randint(0, 3, (9,))
    F.cross_entropy(model(x), y).backward()
    bp = grads(model)
    model.zero_grad()
    DFA(model, "dfa", "ideal")
    F.cross_entropy(model(x), y).backward()
    dfa = grads(model)
    assert all(not torch.allclose(a, b) for a, b in zip(dfa[:4], bp[:4]))
    for a, b in zip(dfa[4:], bp[4:]):
        torch.testing.assert_close(a, b)


def digits_tensors(image: bool):
    data = load_dataset("digits")
    shape = (-1, 1, 8, 8) if image else (-1, 64)
    x = torch.from_numpy(np.asarray(data.x_train, np.float32)).reshape(shape)
    xt = torch.from_numpy(np.asarray(data.x_test, np.float32)).reshape(shape)
    return x, torch.from_numpy(np.asarray(data.y_train)).long(), xt, data.y_test


def digits_cnn():
    """Feedback points after each convolution block: (batch, 16, 8, 8) and (batch, 32, 4, 4)."""
    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.Tanh(), FeedbackPoint(),
                         nn.Conv2d(16, 32, 3, padding=1), nn.Tanh(), nn.MaxPool2d(2),
                         FeedbackPoint(), nn.Flatten(), nn.Linear(32 * 16, 10))


def train_digits(make_model, method, seed, epochs, feedback="ideal", image=False,
                 compile_backend=None):
    """An ordinary training loop: DataLoader, Adam, zero_grad / backward / step."""
    x, y, x_test, y_test = digits_tensors(image)
    torch.manual_seed(seed)
    model = make_model()
    options = {"seed": seed} if feedback == "ideal" else None
    dfa = DFA(model, method, feedback, feedback_options=options)
    forward = torch.compile(model, backend=compile_backend) if compile_backend else model
    loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True,
                        generator=torch.Generator().manual_seed(seed))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(epochs):
        model.train()
        for xb, yb in loader:
            optimizer.zero_grad()
            loss = F.cross_entropy(forward(xb), yb)
            loss.backward()
            optimizer.step()
    angles = dfa.alignment(x[:64], y[:64], F.cross_entropy) if method == "dfa" else None
    model.eval()
    with torch.no_grad():
        accuracy = float((forward(x_test).argmax(1).numpy() == y_test).mean())
    dfa.close()
    return accuracy, angles


# Measured with train_digits(digits_cnn, method, seed, 5, image=True) for seeds 0 and 1:
# bp 0.962, 0.958; dfa 0.953, 0.940; shallow 0.924, 0.911.
def test_a_cnn_trains_through_dfa_within_a_few_points_of_backprop():
    seeds = (0, 1)
    runs = {m: [train_digits(digits_cnn, m, s, 5, image=True) for s in seeds]
            for m in ("bp", "dfa", "shallow")}
    accuracy = {m: np.mean([a for a, _ in r]) for m, r in runs.items()}
    assert accuracy["bp"] > 0.93
    assert accuracy["dfa"] >= accuracy["bp"] - 0.04          # within a few points
    assert accuracy["dfa"] > accuracy["shallow"]              # the convolutions learned


def test_a_point_after_a_convolution_gets_its_flattened_slice():
    torch.manual_seed(3)
    model = digits_cnn()
    feedback = IdealFeedback((16 * 64, 32 * 16), 10, seed=1)
    dfa = DFA(model, "dfa", feedback)
    x, y = torch.randn(4, 1, 8, 8), torch.tensor([1, 2, 3, 4])
    model(x).sum().backward()
    assert dfa.widths == (1024, 512)
    # With loss = sum(output) the error is all ones: the first point's signal is B_1 1.
    expected = torch.from_numpy(feedback.matrices()[0].sum(axis=1)).float()
    h = model[1](model[0](x))
    (grad_w,) = torch.autograd.grad(h, model[0].weight,
                                    expected.reshape(1, 16, 8, 8).expand(4, -1, -1, -1))
    torch.testing.assert_close(model[0].weight.grad, grad_w, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("backend", ["aot_eager", pytest.param("inductor",
                                                               marks=pytest.mark.slow)])
def test_torch_compile_trains_as_eager(backend):
    x, y = torch.randn(6, 8), torch.tensor([0, 1, 2, 0, 1, 2])
    results = []
    for compiled in (False, True):
        torch.manual_seed(0)
        model = torch_mlp(8, 3, hidden=(6, 5), dropout=0)
        DFA(model, "dfa", "ideal", feedback_options={"seed": 5})
        forward = torch.compile(model, backend=backend) if compiled else model
        for _ in range(2):
            model.zero_grad()
            F.cross_entropy(forward(x), y).backward()
        results.append(grads(model))
    for a, b in zip(*results):
        torch.testing.assert_close(a, b)


@pytest.mark.slow
def test_a_compiled_cnn_trains_like_the_eager_one():
    eager, _ = train_digits(digits_cnn, "dfa", 0, 3, image=True)
    compiled, _ = train_digits(digits_cnn, "dfa", 0, 3, image=True, compile_backend="inductor")
    assert abs(eager - compiled) < 0.02


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_autocast_projects_in_float32_and_casts_the_signal(dtype):
    torch.manual_seed(4)
    model = torch_mlp(8, 3, hidden=(16, 16), dropout=0)
    DFA(model, "dfa", "ideal")
    x, y = torch.randn(32, 8), torch.randint(0, 3, (32,))
    F.cross_entropy(model(x), y).backward()
    full = grads(model)
    model.zero_grad()
    with torch.autocast("cpu", dtype=dtype):
        out = model(x)
        loss = F.cross_entropy(out, y)
    assert out.dtype == dtype
    loss.backward()
    for got, e in zip(grads(model), full):
        assert got.dtype == torch.float32 and torch.isfinite(got).all()
        # half-precision activations and error: a few percent of the update's size
        assert float((got - e).norm() / e.norm()) < 0.05


def test_the_dfa_is_a_module_with_a_state_dict_and_pickles(tmp_path):
    torch.manual_seed(5)
    model = torch_mlp(6, 3, hidden=(5, 4), dropout=0)
    dfa = DFA(model, "dfa", "ideal", feedback_options={"seed": 7})
    assert isinstance(dfa, nn.Module) and dfa.model is model
    x, y = torch.randn(8, 6), torch.randint(0, 3, (8,))
    F.cross_entropy(dfa(x), y).backward()
    expected = grads(model)
    state = dfa.state_dict()
    assert state["_extra_state"]["method"] == "dfa" and "model.0.weight" in state
    torch.save(state, tmp_path / "dfa.pt")
    other = DFA(torch_mlp(6, 3, hidden=(5, 4), dropout=0), "dfa", "ideal",
                feedback_options={"seed": 7})
    other.load_state_dict(torch.load(tmp_path / "dfa.pt"))  # weights_only loading
    for restored in (other, pickle.loads(pickle.dumps(dfa)), copy.deepcopy(dfa)):
        restored.model.zero_grad(set_to_none=True)
        F.cross_entropy(restored(x), y).backward()
        for got, e in zip(grads(restored.model), expected):
            torch.testing.assert_close(got, e)
    with pytest.raises(ValueError, match="method = 'dfa' in the state dict: expected"):
        DFA(torch_mlp(6, 3, hidden=(5, 4), dropout=0), "shallow").load_state_dict(state)


class FirstPoint(nn.Module):
    def __init__(self):
        super().__init__()
        self.point, self.fc1, self.point1, self.fc2 = (FeedbackPoint(), nn.Linear(4, 5),
                                                       FeedbackPoint(), nn.Linear(5, 3))

    def forward(self, x):
        return self.fc2(self.point1(torch.tanh(self.fc1(self.point(x)))))


class Recurrent(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm, self.head = nn.LSTM(4, 6, batch_first=True), nn.Linear(6, 3)

    def forward(self, x):
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


class Twice(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc, self.point, self.head = nn.Linear(4, 4), FeedbackPoint(), nn.Linear(4, 3)

    def forward(self, x):
        return self.head(self.point(self.fc(self.point(torch.tanh(self.fc(x))))))


def frozen_first():
    model = torch_mlp(4, 3, hidden=(5, 5), dropout=0)
    model[0].requires_grad_(False)
    return model


@pytest.mark.parametrize("make, x, message", [
    (FirstPoint, torch.randn(2, 4), r"point 0 \(point\): its input depends on no trainable"),
    (frozen_first, torch.randn(2, 4), r"point 0 \(2\): its input depends on no trainable"),
    (Twice, torch.randn(2, 4), "reached twice in one forward"),
], ids=["point-first", "frozen-first-layer", "point-twice"])
def test_misuse_at_the_forward_is_named(make, x, message):
    model = make()
    DFA(model, "dfa")
    with pytest.raises(DFAUsageError, match=message):
        model(x)
    with torch.no_grad():
        assert model(x).shape == (2, 3)  # inference is the plain model


class Summed(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), FeedbackPoint(), nn.Linear(5, 3))

    def forward(self, x):
        return self.net(x).sum()


def test_a_model_returning_its_loss_is_named():
    model = Summed()
    DFA(model)
    with pytest.raises(DFAUsageError, match="the model returned a scalar"):
        model(torch.randn(2, 4))


def test_an_lstm_as_a_point_and_a_tuple_output_are_named():
    model = Recurrent()
    DFA(model, "dfa", points=[model.lstm])
    with pytest.raises(DFAUsageError, match=r"point 0 \(lstm\) returned a tuple.*LSTM"):
        model(torch.randn(2, 5, 4))
    pair = nn.Sequential(nn.Linear(4, 4), FeedbackPoint(), nn.Linear(4, 3))
    pair.forward = lambda x: (nn.Sequential.forward(pair, x), None)
    DFA(pair, "dfa")
    with pytest.raises(DFAUsageError, match="the model returned a tuple: expected one tensor"):
        pair(torch.randn(2, 4))


def test_every_use_after_close_is_named():
    model = torch_mlp(4, 3, hidden=(5,), dropout=0)
    dfa = DFA(model, "dfa")
    x, y = torch.randn(3, 4), torch.tensor([0, 1, 2])
    loss = F.cross_entropy(model(x), y)
    dfa.close()
    with pytest.raises(DFAUsageError, match=r"DFA.backward after close\(\)"):
        loss.backward()
    for call in (lambda: dfa(x), lambda: dfa.step(x, y, F.cross_entropy, None),
                 lambda: dfa.alignment(x, y, F.cross_entropy)):
        with pytest.raises(DFAUsageError, match=r"after close\(\)"):
            call()
    F.cross_entropy(model(x), y).backward()  # the model itself is plain again
    DFA(model, "dfa")  # and may be trained by a new DFA


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(method="hebbian"), ValueError, "method = 'hebbian'"),
    (dict(feedback_mode="stacked"), ValueError, "feedback_mode = 'stacked'"),
    (dict(feedback_options={"sed": 1}), ValueError, r"feedback_options\['sed'\]"),
    (dict(feedback="lab-bench", feedback_options={"seed": 1}), ValueError,
     r"feedback_options\['seed'\].*physics"),
    (dict(feedback="lab-bench", feedback_options={"camera__read_nois_e": 1.0}), ValueError,
     "unknown key 'camera.read_nois_e'"),
    (dict(feedback_options=[("seed", 1)]), TypeError, "feedback_options = "),
    (dict(feedback=IdealFeedback((5,), 3), feedback_options={"seed": 1}), ValueError,
     "expected none with a Feedback instance"),
    (dict(points=[nn.Linear(2, 2)]), ValueError, "expected a submodule of the model"),
    (dict(points=nn.Linear(2, 2)), TypeError, "expected a list of submodules"),
    (dict(feedback="nowhere"), ValueError, "feedback = 'nowhere': expected 'ideal', 'structured'"),
    (dict(feedback_options={"seed": -1}), ValueError, r"feedback_options\['seed'\] = -1"),
    (dict(feedback="lab-bench", feedback_options={"encoder": "binary"}), ValueError,
     r"feedback_options\['encoder'\] = 'binary'"),
])
def test_bad_arguments_are_refused(kwargs, error, message):
    with pytest.raises(error, match=message):
        DFA(torch_mlp(4, 3, hidden=(5,), dropout=0), **kwargs)


def test_unknown_device_backend_options_are_refused_at_the_first_forward():
    model = torch_mlp(4, 3, hidden=(5,), dropout=0)
    DFA(model, "dfa", "device:ideal", feedback_options={"colour": 1})
    with pytest.raises(ValueError, match="feedback_options = .*colour"):
        model(torch.randn(2, 4))


class PerToken(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc, self.point, self.head = nn.Linear(4, 5), FeedbackPoint(), nn.Linear(5, 6)

    def forward(self, x):  # one vector per sample, output (batch, 2, 3): no common batch
        return self.head(self.point(self.fc(x))).reshape(-1, 2, 3)


def test_a_point_without_the_outputs_batch_dimensions_first_is_named():
    model = PerToken()
    DFA(model, "dfa")
    with pytest.raises(DFAUsageError, match=r"output shape \(2, 5\): expected the model "
                                            r"output's leading \(batch\) dimensions \(2, 2\)"):
        model(torch.randn(2, 4))


def test_a_mismatched_feedback_is_named():
    model = nn.Sequential(nn.Linear(4, 5), FeedbackPoint(), nn.Linear(5, 3))
    DFA(model, "dfa", IdealFeedback((7,), 3))
    with pytest.raises(DFAUsageError, match=r"expected \(5,\) and 3"):
        model(torch.randn(2, 4))


# NumPy path, digits MLP DFA with ideal feedback, 5 epochs, seeds 0 and 1 (measured with
# run_experiment("mlp", "digits", "dfa", epochs=5, seed=s)): 0.953, 0.956.
NUMPY_IDEAL_5_EPOCHS = (0.9533, 0.9556)


def test_torch_mlp_on_digits_with_dfa_lands_with_the_numpy_path():
    x_dim, classes = 64, 10
    accuracy, angles = train_digits(lambda: torch_mlp(x_dim, classes), "dfa", seed=0, epochs=5)
    spread = max(0.02, np.ptp(NUMPY_IDEAL_5_EPOCHS))
    assert accuracy >= min(NUMPY_IDEAL_5_EPOCHS) - spread
    assert all(a < 90 for a in angles)  # the updates align with backprop's


@pytest.mark.slow
@pytest.mark.parametrize("feedback, epochs", [("ideal", 5), ("lab-bench", 4)])
def test_torch_and_numpy_digits_agree_within_the_seed_spread(feedback, epochs):
    seeds = (0, 1, 2)
    ours = [train_digits(lambda: torch_mlp(64, 10), "dfa", s, epochs, feedback)[0]
            for s in seeds]
    theirs = [run_experiment("mlp", "digits", "dfa", feedback, epochs=epochs, seed=s,
                             progress=False)[0]["test_accuracy"] for s in seeds]
    spread = max(np.ptp(ours), np.ptp(theirs), 0.01)
    print(feedback, ours, theirs)
    assert abs(np.mean(ours) - np.mean(theirs)) <= 2 * spread


@pytest.mark.slow
def test_a_cnn_through_lab_bench_feedback_trains():
    bp = np.mean([train_digits(digits_cnn, "bp", s, 5, image=True)[0] for s in (0, 1)])
    dfa = np.mean([train_digits(digits_cnn, "dfa", s, 5, "lab-bench", image=True)[0]
                   for s in (0, 1)])
    print("cnn bp", bp, "dfa lab-bench", dfa)
    assert dfa >= bp - 0.06


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
    options = {"seed": seed} if feedback == "ideal" else None
    dfa = DFA(model, method, feedback, feedback_mode="shared", feedback_options=options)
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
