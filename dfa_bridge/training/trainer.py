"""Training by backpropagation, DFA or the shallow baseline, with alignment logging.

Methods (docs/design.md section 5), on the same :class:`~dfa_bridge.nn.models.Network`:

``bp``       backpropagation: ``delta_i = (W_{i+1}^T delta_{i+1}) * f_i'(a_i)``.
``dfa``      direct feedback alignment: ``delta_i = (B_i e) * f_i'(a_i)``, all ``B_i e``
             from one projection of the error by a :class:`~dfa_bridge.training.feedback.Feedback`;
             the last layer uses ``e`` itself.
``shallow``  only the last layer trains (the hidden layers stay at their random
             initialization): the baseline that shows whether the hidden layers learn.

A step computes the error ``e = dL/da_N`` of the batch, the gradients of its method,
and one optimizer update. On request it also computes the other method's gradients
from the same forward pass and logs, per hidden layer, the angle between the DFA update
and the backprop gradient (:mod:`dfa_bridge.training.alignment`).

Graphs train full batch: the forward runs on every node, the loss on the training
nodes (``rows``); the error, hence the feedback, is zero elsewhere, so only the
training nodes' errors are projected.
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings

import numpy as np

from photon import array_module
from photon.support.progress import Progress

from .alignment import backward_with_alignment, feedback_angles
from ..data.tabular import Dataset
from .feedback import Feedback
from ..data.graphs import GraphData
from ..nn.losses import SoftmaxCrossEntropy, TrainingDiverged, check_finite_loss
from ..nn.models import Network
from ..nn.optim import make_optimizer

__all__ = ["METHODS", "BatchError", "Trainer", "History", "fit"]

METHODS = ("bp", "dfa", "shallow")


@dataclasses.dataclass
class BatchError:
    """The loss and error of one batch's training-mode forward pass.

    Attributes
    ----------
    loss
        Mean loss over the seen rows.
    error : (n, C) array
        ``e = dL/da_N`` for every output row (zero on rows the loss does not see).
    error_rows : (n_rows, C) array
        ``e`` of the seen rows only (what DFA projects).
    rows : int array or None
        The seen rows (None: all).
    """

    loss: float
    error: object
    error_rows: object
    rows: object


class Trainer:
    """One model, one training method, one optimizer.

    Parameters
    ----------
    model
        The network.
    method
        ``"bp"``, ``"dfa"`` or ``"shallow"``.
    feedback
        Feedback source with the model's hidden widths and classes; required for
        ``dfa``; for ``bp`` and ``shallow`` it only serves the alignment log (the angles
        DFA would have), and may be None.
    optimizer
        ``"adam"`` or ``"sgd"``, over the parameters the method trains.
    **optimizer_options
        ``lr``, ``weight_decay``, ``momentum`` ... (see :mod:`dfa_bridge.nn.optim`).
    """

    def __init__(self, model: Network, method: str, feedback: Feedback | None = None,
                 optimizer: str = "adam", **optimizer_options):
        if method not in METHODS:
            raise ValueError(f"method = {method!r}: expected one of {', '.join(METHODS)}")
        if method == "dfa" and feedback is None:
            raise ValueError("feedback = None: expected a Feedback source for method 'dfa'")
        if feedback is not None and (feedback.widths != model.hidden_widths
                                     or feedback.n_classes != model.n_outputs):
            raise ValueError(f"feedback: widths {feedback.widths} and {feedback.n_classes} classes: "
                             f"expected the model's hidden widths {model.hidden_widths} and "
                             f"{model.n_outputs} outputs")
        if not model.hidden_widths and method != "bp":
            raise ValueError(f"method = {method!r}: expected a model with hidden layers")
        self.model = model
        self.method = method
        self.feedback = feedback
        last = len(model.blocks) - 1
        trained = model.parameters([last]) if method == "shallow" else model.parameters()
        self.optimizer = make_optimizer(optimizer, trained, **optimizer_options)
        self.loss = SoftmaxCrossEntropy()

    # ------------------------------------------------------------------ gradients
    def error(self, x, labels, rows=None) -> BatchError:
        """Training-mode forward pass, loss and error ``e = dL/da_N`` of a batch.

        Parameters
        ----------
        x : (n, n_features) array
            Inputs (every node of a graph).
        labels : (n_rows,) int array
            Labels of the rows the loss sees.
        rows : int array, optional
            Rows of the output the loss sees (a graph's training nodes); all by default.
        """
        logits = self.model.forward(x, training=True)
        loss = self.loss.forward(logits if rows is None else logits[rows], labels)
        error_rows = self.loss.backward()
        if rows is None:
            error = error_rows
        else:
            error = array_module(logits).zeros_like(logits)
            error[rows] = error_rows
        return BatchError(loss, error, error_rows, rows)

    def backward(self, batch: BatchError, method: str | None = None) -> None:
        """Set the gradients of ``method`` (default: the trainer's) for the batch's forward.

        ``bp`` backpropagates; ``dfa`` projects the seen rows' errors once and feeds each
        hidden block its slice (carried over any fixed map above it, see
        :meth:`~dfa_bridge.nn.models.Network.carry_feedback`); ``shallow`` sets the last
        block's gradients only. The last block always receives ``e`` itself.
        """
        method = self.method if method is None else method
        model = self.model
        if method == "bp":
            model.backward(batch.error)
            return
        if method == "dfa":
            xp = array_module(batch.error)
            for index, signal in enumerate(self.feedback.project(batch.error_rows)):
                if batch.rows is not None:  # the seen nodes' feedback, zero on the others
                    full = xp.zeros((batch.error.shape[0], signal.shape[1]), signal.dtype)
                    full[batch.rows] = signal
                    signal = full
                model.backward_block(index, model.carry_feedback(index, signal))
        model.backward_block(len(model.blocks) - 1, batch.error)

    def _hidden_gradients(self) -> list[list]:
        """Copies of every hidden layer's parameter gradients."""
        return [[p.grad.copy() for p in block.parameters()] for block in self.model.blocks[:-1]]

    def step(self, x, labels, rows=None, measure_alignment: bool = False):
        """One training step on a batch; returns ``(loss, update angles or None)``.

        Parameters
        ----------
        x, labels, rows
            As for :meth:`error`.
        measure_alignment
            Also compute the backprop gradient and the DFA update of this batch, from
            the same forward pass, and return their angle per hidden layer (needs a
            feedback source).

        Returns
        -------
        (float, list of float or None)
            The batch's mean loss before the update, and the per-layer angles in degrees.
        """
        batch = self.error(x, labels, rows)
        check_finite_loss(batch.loss)
        angles = None
        if measure_alignment and self.feedback is not None and self.model.hidden_widths:
            angles = backward_with_alignment(lambda method: self.backward(batch, method),
                                             self._hidden_gradients, self.method)
        else:
            self.backward(batch)
        self.optimizer.step()
        return batch.loss, angles

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, x, labels, rows=None) -> tuple[float, float]:
        """Mean loss and accuracy in evaluation mode (no dropout, no update).

        Parameters
        ----------
        x, labels, rows
            As for :meth:`step`.
        """
        logits = self.model.forward(x, training=False)
        if rows is not None:
            logits = logits[rows]
        loss = SoftmaxCrossEntropy().forward(logits, labels)
        accuracy = float((logits.argmax(axis=1) == labels).sum()) / labels.shape[0]
        return loss, accuracy

    def feedback_angles(self) -> list[float] | None:
        """Angle between ``W_{i+1}^T ... W_N^T`` and ``B_i`` per hidden layer (None without feedback)."""
        if self.feedback is None or not self.model.hidden_widths:
            return None
        return feedback_angles(self.model.weights, self.feedback.matrices())


@dataclasses.dataclass
class History:
    """Per-epoch records of a training run.

    Attributes
    ----------
    method
        The training method.
    records
        One dict per epoch: ``epoch``, ``train_loss`` (mean over the epoch's steps),
        ``train_accuracy``, ``test_accuracy`` (and ``val_accuracy`` on a graph),
        ``update_angle_deg`` and ``feedback_angle_deg`` (per hidden layer, or None).
    seconds
        Wall time of the whole run, evaluations included.
    diverged_at_step
        The step (counted from 1) whose loss was not finite, where the run stopped
        (its epoch's record is kept, marked ``diverged``), or None.
    """

    method: str
    records: list[dict] = dataclasses.field(default_factory=list)
    seconds: float = 0.0
    diverged_at_step: int | None = None

    @property
    def final(self) -> dict:
        """The last epoch's record."""
        return self.records[-1]


def _mean_angles(measured: list[list[float]]) -> list[float] | None:
    """Per-layer mean of the angles measured over an epoch (None when none was)."""
    return [float(np.mean(column)) for column in zip(*measured)] if measured else None


def fit(trainer: Trainer, data: Dataset | GraphData, epochs: int, batch_size: int = 32,
        seed: int = 0, align_steps: int = 4, progress: bool | None = None) -> History:
    """Train for ``epochs`` epochs and record the learning and alignment curves.

    Parameters
    ----------
    trainer
        Model, method and optimizer; the model must be on the data's backend.
    data
        A :class:`Dataset` (mini-batches of ``batch_size``, reshuffled every epoch) or a
        :class:`GraphData` (one full-batch step per epoch on the training nodes).
    epochs
        Number of epochs, >= 1.
    batch_size
        Mini-batch size (tabular data).
    seed
        Seed of the shuffling stream.
    align_steps
        The update angle of an epoch is the mean over its first ``align_steps`` steps.
    progress
        Progress bar on stderr: True, False, or None for runs of four steps or more.

    Returns
    -------
    History
    """
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 1:
        raise ValueError(f"epochs = {epochs!r}: expected a positive integer")
    if isinstance(data, GraphData):
        n_steps, batches, evaluations = _graph_schedule(data)
    elif isinstance(data, Dataset):
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size = {batch_size!r}: expected a positive integer")
        n_steps, batches, evaluations = _tabular_schedule(data, int(batch_size),
                                                          np.random.default_rng(seed))
    else:
        raise TypeError(f"data = {type(data).__name__}: expected a Dataset or a GraphData")
    history = History(trainer.method)
    start = time.perf_counter()
    with Progress(epochs * n_steps, f"{trainer.method} training", enabled=progress,
                  unit="step") as bar:
        for epoch in range(1, epochs + 1):
            losses, measured = [], []
            for step, (x, labels, rows) in enumerate(batches()):
                try:
                    loss, angles = trainer.step(x, labels, rows,
                                                measure_alignment=step < align_steps)
                except TrainingDiverged as error:
                    history.diverged_at_step = (epoch - 1) * n_steps + step + 1
                    warnings.warn(f"{error} (epoch {epoch}, step {history.diverged_at_step}); "
                                  "the records so far are kept", RuntimeWarning, stacklevel=2)
                    break
                losses.append(loss)
                if angles is not None:
                    measured.append(angles)
                bar.update()
            record = {"epoch": epoch,
                      "train_loss": float(np.mean(losses)) if losses else float("nan")}
            if history.diverged_at_step is not None:
                record["diverged"] = True
            for part, (x, labels, rows) in evaluations.items():
                record[f"{part}_accuracy"] = trainer.evaluate(x, labels, rows)[1]
            record["update_angle_deg"] = _mean_angles(measured)
            record["feedback_angle_deg"] = trainer.feedback_angles()
            history.records.append(record)
            if history.diverged_at_step is not None:
                break
    history.seconds = time.perf_counter() - start
    return history


def _tabular_schedule(data: Dataset, batch_size: int, rng: np.random.Generator):
    """Steps per epoch, the epoch's mini-batches (reshuffled per call), the evaluation sets."""
    xp = array_module(data.x_train)
    n = data.x_train.shape[0]

    def epoch_batches():
        order = xp.asarray(rng.permutation(n))
        for start in range(0, n, batch_size):
            index = order[start:start + batch_size]
            yield data.x_train[index], data.y_train[index], None

    evaluations = {"train": (data.x_train, data.y_train, None),
                   "test": (data.x_test, data.y_test, None)}
    return math.ceil(n / batch_size), epoch_batches, evaluations


def _graph_schedule(data: GraphData):
    """One full-batch step per epoch on the training nodes, and the evaluation node sets."""
    train = (data.features, data.labels[data.train_index], data.train_index)
    evaluations = {"train": train}
    for part, index in (("val", data.val_index), ("test", data.test_index)):
        if index.shape[0]:
            evaluations[part] = (data.features, data.labels[index], index)
    return 1, lambda: iter([train]), evaluations
