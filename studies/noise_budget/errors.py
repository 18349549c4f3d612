"""The errors a DFA co-processor projects, and how a training run encodes them.

An :class:`ErrorSet` holds error vectors ``softmax - onehot`` of a real task part-way
through training (an MLP, a GCN on Cora, a character language model) and the encoder a
training run would use on them, refitted on every batch. :func:`documented_quantization`
quantizes them by the encoders' documented rules (docs/design.md section 3), without
running the encoder: the noise budget predicts the encoding's error from it.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from devices import BitPlaneEncoder, TernaryEncoder
from photon.support.arguments import check_choice, check_int

__all__ = ["ErrorSet", "ENCODINGS", "classification_errors", "graph_errors", "language_errors",
           "task_errors", "ERROR_KINDS", "documented_encoding",
           "documented_quantization"]

#: Encodings an error set may use: the default ternary code and signed bit planes.
ENCODINGS = ("ternary", "bitplanes")
#: Task families :func:`task_errors` knows, and what they are.
ERROR_KINDS = {
    "mlp": "the digits MLP after 2 epochs of backpropagation, ternary encoded",
    "gcn": "the two-layer GCN on Cora after 20 epochs of backpropagation, ternary encoded",
    "lm": "a character bigram model of the pydoc corpus (~100 characters), 4-bit planes",
}
TERNARY_THRESHOLD_FACTOR = 0.7   # t = 0.7 mean |x| (docs/design.md section 3)


@dataclasses.dataclass
class ErrorSet:
    """Errors to project, and how a training run would encode them.

    Attributes
    ----------
    name
        What they are (reports).
    errors : (n, C) float32 array
        One error vector per row (``softmax - onehot``, unscaled by the batch).
    batch_size
        Rows per encoder fit: the encoder's threshold and scale follow each batch, as
        they follow each training step.
    encoder, n_bits
        ``"ternary"`` or ``"bitplanes"`` (``n_bits`` per sign).
    """

    name: str
    errors: np.ndarray
    batch_size: int
    encoder: str = "ternary"
    n_bits: int = 4

    @property
    def n_classes(self) -> int:
        """Width ``C`` of an error vector."""
        return int(self.errors.shape[1])

    def make_encoder(self):
        """A fresh encoder of this set's kind."""
        if self.encoder == "ternary":
            return TernaryEncoder()
        if self.encoder == "bitplanes":
            return BitPlaneEncoder(n_bits=self.n_bits, signed=True)
        raise ValueError(f"encoder = {self.encoder!r}: expected 'ternary' or 'bitplanes'")

    def with_encoder(self, encoder: str, n_bits: int = 4) -> "ErrorSet":
        """The same errors encoded another way."""
        return dataclasses.replace(self, encoder=encoder, n_bits=n_bits)

    def batches(self):
        """``(start, rows)`` of every encoder batch."""
        for start in range(0, self.errors.shape[0], self.batch_size):
            yield start, self.errors[start:start + self.batch_size]

    def describe(self) -> dict:
        """Plain-data description."""
        norms = np.linalg.norm(self.errors, axis=1)
        return {"name": self.name, "n_errors": int(self.errors.shape[0]),
                "n_classes": self.n_classes, "batch_size": self.batch_size,
                "encoder": self.encoder, "n_bits": self.n_bits if self.encoder == "bitplanes"
                else None, "mean_error_norm": float(norms.mean())}


def documented_encoding(error_set: ErrorSet):
    """Per batch ``(start, planes, weights)`` by the encoders' documented rules.

    docs/design.md section 3: ternary ``t = 0.7 mean |x|``, ``scale`` the mean of
    ``|x|`` over ``|x| > t`` (``t`` when none), planes ``[x > t, x < -t]`` of weights
    ``(scale, -scale)``; signed bit planes ``step = max |x| / (2^n_bits - 1)``,
    ``q = min(floor(|x| / step + 1/2), 2^n_bits - 1)``, plane ``k`` bit ``k`` of ``q``
    (positive then negative part) of weight ``+-2^k step``. Computed here, not by the
    encoder classes, so that a prediction from it checks them. ``planes`` is
    ``(rows, p, C)`` uint8, ``weights`` ``(p,)`` float64.
    """
    for start, batch in error_set.batches():
        x = np.asarray(batch, np.float64)
        magnitude = np.abs(x)
        if error_set.encoder == "ternary":
            threshold = TERNARY_THRESHOLD_FACTOR * float(magnitude.mean())
            support = magnitude > threshold
            scale = float(magnitude[support].mean()) if support.any() else threshold
            planes = np.stack([x > threshold, x < -threshold], axis=1)
            weights = np.array([scale, -scale])
        elif error_set.encoder == "bitplanes":
            top = 2 ** error_set.n_bits - 1
            step = float(magnitude.max()) / top
            q = (np.clip(np.floor(magnitude / step + 0.5), 0, top).astype(np.int64)
                 if step > 0 else np.zeros(x.shape, np.int64))
            bits = [(q >> k) & 1 for k in range(error_set.n_bits)]
            planes = np.stack([b * (x > 0) for b in bits] + [b * (x < 0) for b in bits], axis=1)
            positive = 2.0 ** np.arange(error_set.n_bits) * step
            weights = np.concatenate([positive, -positive])
        else:
            raise ValueError(f"encoder = {error_set.encoder!r}: expected one of "
                             f"{', '.join(map(repr, ENCODINGS))}")
        yield start, planes.astype(np.uint8), weights


def documented_quantization(error_set: ErrorSet) -> np.ndarray:
    """The encoded errors ``e_q`` (n, C) float64 by the documented rules
    (:func:`documented_encoding`): ``sum_p w_p planes_p``."""
    out = np.empty(error_set.errors.shape, np.float64)
    for start, planes, weights in documented_encoding(error_set):
        out[start:start + planes.shape[0]] = np.einsum("npc,p->nc", planes, weights)
    return out


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=1, keepdims=True)


def classification_errors(data: str = "digits", n_errors: int = 1024, *, epochs: int = 2,
                          hidden: Sequence[int] = (256, 256), seed: int = 0,
                          batch_size: int = 32) -> ErrorSet:
    """Errors ``softmax - onehot`` of an MLP part-way through training on ``data``.

    The MLP of the digits study (tanh, Adam 1e-3) is trained with backpropagation for
    ``epochs`` epochs, then its errors on ``n_errors`` training samples are taken (with
    repetition when there are fewer): the distribution DFA projects mid-training, most
    rows small, a few large. Graph datasets use their node features.

    Parameters
    ----------
    data
        A tabular or graph dataset name of :func:`dfa_bridge.data.load_dataset`.
    n_errors
        Rows returned.
    epochs, hidden, seed
        Training of the MLP (seed of its weights, data order and the rows chosen).
    batch_size
        Rows per encoder fit (the MLP's batch).
    """
    from dfa_bridge.data import load_dataset  # noqa: PLC0415
    from dfa_bridge.data.graphs import GraphData  # noqa: PLC0415
    from dfa_bridge.nn.models import MLP  # noqa: PLC0415
    from dfa_bridge.training.trainer import TabularTask, Trainer, fit  # noqa: PLC0415

    n_errors = check_int("n_errors", n_errors)
    dataset = load_dataset(data, seed=seed)
    if isinstance(dataset, GraphData):
        dataset = dataset.feature_dataset()
    network = MLP(dataset.n_features, dataset.n_classes, tuple(hidden), "tanh", 0.0, seed=seed)
    trainer = Trainer(network, "bp", None, "adam", lr=1e-3, weight_decay=0.0)
    fit(trainer, TabularTask(dataset, epochs, batch_size, seed=seed), progress=False)
    rng = np.random.default_rng(seed)
    rows = rng.choice(dataset.x_train.shape[0], n_errors,
                      replace=n_errors > dataset.x_train.shape[0])
    logits = np.asarray(network.forward(dataset.x_train[rows]), np.float64)
    onehot = np.eye(dataset.n_classes)[np.asarray(dataset.y_train)[rows]]
    errors = (_softmax(logits) - onehot).astype(np.float32)
    return ErrorSet(f"{data} MLP ({epochs} epochs of bp)", errors, batch_size, "ternary")


def graph_errors(data: str = "cora", n_errors: int = 1024, *, epochs: int = 20,
                 hidden: Sequence[int] = (64,), seed: int = 0) -> ErrorSet:
    """Errors ``softmax - onehot`` of the two-layer GCN part-way through training on a graph.

    The GCN of the graph studies (Kipf & Welling: ReLU, dropout 0.5, Adam 0.01, weight
    decay 5e-4) is trained with backpropagation for ``epochs`` full-batch epochs (of the
    200 that reach about 81 % on Cora); its errors are taken at ``n_errors`` nodes drawn
    from every node (with repetition when there are fewer), each with its own label. One
    encoder fit per batch of as many rows as the training nodes (one full-batch step).

    Parameters
    ----------
    data
        A graph dataset of :func:`dfa_bridge.data.load_dataset` (``cora`` ships with
        the package).
    n_errors
        Rows returned.
    epochs, hidden, seed
        Training of the GCN (seed of its weights, dropout and the nodes chosen).
    """
    from dfa_bridge.data import load_dataset  # noqa: PLC0415
    from dfa_bridge.data.graphs import GraphData  # noqa: PLC0415
    from dfa_bridge.nn.models import GCN  # noqa: PLC0415
    from dfa_bridge.training.trainer import GraphTask, Trainer, fit  # noqa: PLC0415

    n_errors = check_int("n_errors", n_errors)
    epochs = check_int("epochs", epochs, low=1)
    graph = load_dataset(data, seed=seed)
    if not isinstance(graph, GraphData):
        raise ValueError(f"data = {data!r}: expected a graph dataset (e.g. 'cora')")
    network = GCN(graph.adjacency, graph.n_features, graph.n_classes, tuple(hidden), "relu",
                  0.5, seed=seed)
    trainer = Trainer(network, "bp", None, "adam", lr=0.01, weight_decay=5e-4)
    fit(trainer, GraphTask(graph, epochs), progress=False)
    n_nodes = graph.features.shape[0]
    rows = np.random.default_rng(seed).choice(n_nodes, n_errors, replace=n_errors > n_nodes)
    logits = np.asarray(network.forward(graph.features), np.float64)[rows]
    onehot = np.eye(graph.n_classes)[np.asarray(graph.labels)[rows]]
    errors = (_softmax(logits) - onehot).astype(np.float32)
    return ErrorSet(f"{data} GCN ({epochs} epochs of bp)", errors,
                    int(np.asarray(graph.train_index).size), "ternary")


def language_errors(n_errors: int = 1024, *, corpus: str = "pydoc", seed: int = 0,
                    batch_size: int = 1024, n_bits: int = 4) -> ErrorSet:
    """Errors ``softmax - onehot`` of a character language model (about 100 characters).

    The model is the add-one smoothed bigram model of the corpus's training text (what
    a small character model reaches early in training); the errors are taken at
    ``n_errors`` consecutive validation characters from a seeded offset. Encoded in
    signed bit planes, as the Transformer's DFA does.

    Parameters
    ----------
    n_errors
        Rows (characters).
    corpus
        A text dataset of :func:`dfa_bridge.data.text.load_text_dataset` that needs no path.
    seed
        Seed of the offset.
    batch_size
        Rows per encoder fit (16 windows of 64 characters: 1024).
    n_bits
        Bits per sign of the bit-plane encoder.
    """
    from dfa_bridge.data.text import load_text_dataset  # noqa: PLC0415

    n_errors = check_int("n_errors", n_errors)
    text = load_text_dataset(corpus)
    v = text.n_tokens
    counts = np.ones((v, v))
    np.add.at(counts, (text.train_ids[:-1], text.train_ids[1:]), 1.0)
    probabilities = counts / counts.sum(axis=1, keepdims=True)
    start = int(np.random.default_rng(seed).integers(0, max(1, text.val_ids.size - n_errors - 1)))
    ids = text.val_ids[start:start + n_errors + 1]
    if ids.size < n_errors + 1:
        raise ValueError(f"n_errors = {n_errors}: expected at most {text.val_ids.size - 1} "
                         f"(validation characters of {corpus})")
    errors = probabilities[ids[:-1]] - np.eye(v)[ids[1:]]
    return ErrorSet(f"{corpus} character bigram model ({v} characters)",
                    errors.astype(np.float32), batch_size, "bitplanes", n_bits)


def task_errors(kind: str, n_errors: int = 1024, seed: int = 0) -> ErrorSet:
    """The error set of a task family of :data:`ERROR_KINDS`: ``"mlp"`` (digits MLP),
    ``"gcn"`` (Cora GCN) or ``"lm"`` (characters)."""
    return _ERROR_MAKERS[check_choice("errors", kind, ERROR_KINDS)](n_errors, seed)


#: How each kind of :data:`ERROR_KINDS` draws its error set: ``(n_errors, seed) -> ErrorSet``.
_ERROR_MAKERS = {
    "mlp": lambda n_errors, seed: classification_errors("digits", n_errors, seed=seed),
    "gcn": lambda n_errors, seed: graph_errors("cora", n_errors, seed=seed),
    "lm": lambda n_errors, seed: language_errors(n_errors, seed=seed),
}
