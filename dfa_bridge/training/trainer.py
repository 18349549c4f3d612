"""The one training loop: backpropagation, DFA or the shallow baseline, for every model family.

Methods (docs/design.md section 5)
----------------------------------
``bp``       backpropagation: ``delta_i = (W_{i+1}^T delta_{i+1}) * f_i'(a_i)``.
``dfa``      direct feedback alignment: ``delta_i = (B_i e) * f_i'(a_i)``, all ``B_i e``
             from ONE projection of the error ``e = dL/da_N`` by a
             :class:`~dfa_bridge.training.feedback.Feedback`; the last layer (the
             Transformer's head) uses ``e`` itself.
``shallow``  only the last layer (the Transformer's head) trains; the layers below stay
             at their random initialization: the baseline that shows whether they learn.

A ``dfa`` trainer may apply its feedback-driven updates ``feedback_delay`` steps late
(:class:`Trainer`): stale feedback, as an OPU projecting one step's error while the
machine runs the next one delivers it.

Pieces
------
:class:`Trainer`        one model, one method, one optimizer. A step is the training
                        forward, the loss and error ``e``, the method's gradients and one
                        optimizer update. How ``e`` and the projected feedback reach the
                        layers depends on the model family and lives in a *feedback path*:
                        :class:`NetworkPath` (MLP, GCN) or :class:`TransformerPath`.
:class:`Task`           what a run trains on and how it is scored: :class:`TabularTask`
                        (mini-batches reshuffled every epoch; accuracy), :class:`GraphTask`
                        (one full-batch step per epoch on the training nodes; accuracy on
                        the training, validation and test nodes), :class:`TextTask`
                        (random windows, linear warm-up then cosine learning rate,
                        evaluation checkpoints; validation loss in nats per character and
                        perplexity).
:func:`fit`             the loop over a task's steps: learning rate, step, divergence,
                        alignment, evaluation records.
:class:`History`        the records of a run.

Alignment (:mod:`dfa_bridge.training.alignment`): a ``dfa`` run measures, on the first
``align_steps`` steps after each evaluation, the angle per hidden layer (per block)
between its DFA update and the backprop gradient of the same forward pass. ``bp`` and
``shallow`` runs apply no DFA update, so they measure none (their
``update_angle_deg`` is None) and do no extra backward pass. The weights-vs-feedback
angle of an MLP or a GCN is recorded at every evaluation whenever the trainer has a
feedback source (a ``bp`` run given one explicitly: how far from ``B_i`` its weights go).

Graphs train full batch: the forward runs on every node, the loss on the training
nodes (``rows``); the error, hence the feedback, is zero elsewhere, so only the training
nodes' errors are projected.
"""

from __future__ import annotations

import abc
import collections
import dataclasses
import math
import time
import warnings
from typing import Iterator

import numpy as np

from photon import array_module
from photon.support.arguments import check_choice, check_int
from photon.support.progress import Progress

from ..data.graphs import GraphData
from ..data.tabular import Dataset
from ..data.text import CharCorpus, random_windows, validation_windows
from ..nn.losses import DivergenceGuard, SoftmaxCrossEntropy, TrainingDiverged
from ..nn.models import Network
from ..nn.optim import make_optimizer
from ..nn.transformer import TransformerLM
from .alignment import backward_with_alignment, feedback_angles
from .feedback import Feedback

__all__ = ["METHODS", "FEEDBACK_MODES", "BatchError", "FeedbackPath", "NetworkPath",
           "TransformerPath", "feedback_path", "Trainer", "Task", "TabularTask", "GraphTask",
           "TextTask", "warmup_cosine", "perplexity", "History", "fit"]

METHODS = ("bp", "dfa", "shallow")

#: How the projected error reaches the Transformer's blocks: ``sliced`` projects onto
#: ``L D`` and gives block ``k`` its own slice (the MLP form of docs/design.md section 5);
#: ``shared`` projects onto ``D`` and gives every block the same signal (TinyDFA, Launay
#: et al.'s code). ``shared`` is the default (see :class:`TransformerPath`). Both are
#: "macro" DFA (one point per block); ``micro-sliced`` and ``micro-shared`` feed every
#: layer inside a block too (three points per block: after the attention sublayer, the
#: feed-forward hidden layer, the block output; Launay et al.'s "full" DFA).
FEEDBACK_MODES = ("sliced", "shared", "micro-sliced", "micro-shared")

#: Each feedback mode's points: ``"macro"`` (the block outputs) or ``"micro"`` (three per
#: block), and whether every block gets the same signals (``shared``) or its own slice.
_MODE_LAYOUT = {"sliced": ("macro", False), "shared": ("macro", True),
                "micro-sliced": ("micro", False), "micro-shared": ("micro", True)}


@dataclasses.dataclass
class BatchError:
    """The loss and error of one batch's training-mode forward pass.

    Attributes
    ----------
    loss
        Mean cross-entropy over the seen rows (nats).
    error : (n, C) array
        ``e = dL/da_N`` for every output row (zero on rows the loss does not see); for
        the Transformer one row per token, (B T, V).
    error_rows : (n_rows, C) array
        ``e`` of the seen rows only (what DFA projects).
    rows : int array or None
        The seen rows (None: all).
    """

    loss: float
    error: object
    error_rows: object
    rows: object


# ---------------------------------------------------------------------- feedback paths
class FeedbackPath(abc.ABC):
    """How the error and the projected feedback reach one model family's layers.

    Parameters
    ----------
    model
        The model whose gradients the path sets.
    """

    def __init__(self, model):
        self.model = model

    @property
    @abc.abstractmethod
    def feedback_widths(self) -> tuple[int, ...]:
        """Widths of the feedback a ``dfa`` run needs (its source's ``widths``)."""

    @abc.abstractmethod
    def expected_feedback(self) -> str:
        """The feedback shape expected, in words (for error messages)."""

    @abc.abstractmethod
    def check_method(self, method: str) -> None:
        """Raise ValueError if ``method`` cannot train this model."""

    @abc.abstractmethod
    def trained_parameters(self, method: str) -> list:
        """The parameters ``method`` updates."""

    @abc.abstractmethod
    def feedback_parameters(self) -> list:
        """The parameters whose ``dfa`` gradient comes from the projected feedback ``B e``.

        The others (the last layer, the Transformer's head) learn from ``e`` itself.
        """

    @abc.abstractmethod
    def backward(self, batch: BatchError, method: str, feedback: Feedback | None) -> None:
        """Set the gradients of ``method`` for the batch's forward pass."""

    @abc.abstractmethod
    def compared_gradients(self) -> list[list]:
        """Copies of the gradients the update angle compares, one list per layer or block."""

    def alignment_record(self, feedback: Feedback | None) -> dict:
        """Alignment entries of an evaluation record beyond the update angle (none here)."""
        return {}


class NetworkPath(FeedbackPath):
    """A :class:`~dfa_bridge.nn.models.Network` (MLP, GCN): DFA's ``B_i e`` per hidden block.

    ``dfa`` projects the seen rows' errors once and feeds each hidden block its slice,
    carried over any fixed map above it (:meth:`~dfa_bridge.nn.models.Network.carry_feedback`:
    the GCN's graph propagation); ``shallow`` sets the last block's gradients only; the
    last block always receives ``e`` itself. The update angle compares the hidden blocks'
    parameters; the weights-vs-feedback angle ``W_{i+1}^T ... W_N^T`` against ``B_i``
    is recorded at each evaluation when a feedback source is given.
    """

    @property
    def feedback_widths(self) -> tuple[int, ...]:
        return self.model.hidden_widths

    def expected_feedback(self) -> str:
        return (f"the model's hidden widths {self.model.hidden_widths} and "
                f"{self.model.n_outputs} outputs")

    def check_method(self, method: str) -> None:
        if not self.model.hidden_widths and method != "bp":
            raise ValueError(f"method = {method!r}: expected a model with hidden layers")

    def trained_parameters(self, method: str) -> list:
        if method == "shallow":
            return self.model.parameters([len(self.model.blocks) - 1])
        return self.model.parameters()

    def feedback_parameters(self) -> list:
        return self.model.parameters(range(len(self.model.blocks) - 1))

    def backward(self, batch: BatchError, method: str, feedback: Feedback | None) -> None:
        model = self.model
        if method == "bp":
            model.backward(batch.error)
            return
        if method == "dfa":
            xp = array_module(batch.error)
            for index, signal in enumerate(feedback.project(batch.error_rows)):
                if batch.rows is not None:  # the seen nodes' feedback, zero on the others
                    full = xp.zeros((batch.error.shape[0], signal.shape[1]), signal.dtype)
                    full[batch.rows] = signal
                    signal = full
                model.backward_block(index, model.carry_feedback(index, signal))
        model.backward_block(len(model.blocks) - 1, batch.error)

    def compared_gradients(self) -> list[list]:
        return [[p.grad.copy() for p in block.parameters()] for block in self.model.blocks[:-1]]

    def weight_angles(self, feedback: Feedback | None) -> list[float] | None:
        """Angle between ``W_{i+1}^T ... W_N^T`` and ``B_i`` per hidden layer (None without feedback)."""
        if feedback is None or not self.model.hidden_widths:
            return None
        return feedback_angles(self.model.weights, feedback.matrices())

    def alignment_record(self, feedback: Feedback | None) -> dict:
        return {"feedback_angle_deg": self.weight_angles(feedback)}


class TransformerPath(FeedbackPath):
    """The character :class:`~dfa_bridge.nn.transformer.TransformerLM`: macro DFA per block.

    The error is per token, ``e = (softmax(logits) - onehot(next char)) / (B T)``, shape
    (B T, V) (Launay, Poli, Boniface, Krzakala, "Direct Feedback Alignment Scales to
    Modern Deep Learning Tasks and Architectures", NeurIPS 2020).

    ``dfa`` projects ``e`` ONCE (one row per token) and the projection ``B e`` is the
    gradient signal at each block's output ``h_k`` (the residual stream, every token). It
    enters where backprop's ``W_out^T e`` would, before the final layer norm, whose known
    local backward carries it into the stream: the update then stays out of the
    directions the normalization hides from the loss (the mean and the scale of ``h_L``),
    along which it would grow unchecked. Inside a block, local backprop gives the
    parameters' updates (attention mixes positions; its local backward handles that). No
    gradient flows from one block to the one below. The embeddings get the input gradient
    of the first block's local backward, as in Launay et al. The head (final layer norm,
    output projection) gets the true gradient of ``e``, as DFA's last layer does.
    ``shallow`` trains the head alone (an untied model only: a tied head is the embedding).

    ``feedback_mode="shared"`` (default) projects onto ``D`` and gives every block the same
    ``B e``; ``"sliced"`` projects onto ``L D`` and gives block ``k`` its own slice (the MLP
    form of docs/design.md section 5). In a residual stack the true gradients at the block
    outputs nearly coincide (the stream is carried by identities), so one shared ``B`` can
    be aligned with by the head; ``L`` independent ``B_k`` cannot all be. Measured here:
    shared closes most of the shallow-to-bp gap, sliced does worse than shallow.

    Micro DFA (``"micro-shared"``, ``"micro-sliced"``) feeds three points per block:
    ``h'_k`` after the attention sublayer and the block output ``h_k`` (both in the
    stream, entering through the final layer norm's local backward as above), and the
    feed-forward hidden layer after the GELU (raw); each point's signal trains only the
    weights between it and the point below
    (:meth:`~dfa_bridge.nn.transformer.TransformerLM.backward_block_micro`). Shared: one
    projection onto ``D + 4 D`` (the stream signal for both stream points of every block,
    the hidden signal for every block); sliced: onto ``6 L D``, each point its own.

    The update angle compares each block's parameters, flattened; the weights-vs-feedback
    angle is not defined for a residual stack and is not recorded.

    Parameters
    ----------
    model
        The Transformer.
    feedback_mode
        ``"shared"``, ``"sliced"``, ``"micro-shared"`` or ``"micro-sliced"``
        (:data:`FEEDBACK_MODES`).
    """

    def __init__(self, model: TransformerLM, feedback_mode: str = "shared"):
        check_choice("feedback_mode", feedback_mode, FEEDBACK_MODES)
        super().__init__(model)
        self.feedback_mode = feedback_mode

    @property
    def feedback_widths(self) -> tuple[int, ...]:
        points, shared = _MODE_LAYOUT[self.feedback_mode]
        if points == "micro":
            return (self.model.width, self.model.ffn_width) if shared else \
                self.model.micro_feedback_widths
        return (self.model.width,) if shared else self.model.feedback_widths

    def expected_feedback(self) -> str:
        return (f"{self.feedback_widths} ({self.feedback_mode} feedback) and "
                f"{self.model.n_outputs} tokens")

    def check_method(self, method: str) -> None:
        if method == "shallow" and self.model.tied:
            raise ValueError("method = 'shallow' with a tied output projection: expected an untied "
                             "model (the shared matrix is the embedding, which shallow freezes)")

    def trained_parameters(self, method: str) -> list:
        return self.model.head_parameters() if method == "shallow" else self.model.parameters()

    def feedback_parameters(self) -> list:
        head = {id(p) for p in self.model.head_parameters()}
        return [p for p in self.model.parameters() if id(p) not in head]

    def backward(self, batch: BatchError, method: str, feedback: Feedback | None) -> None:
        model = self.model
        if method == "bp":
            model.backward(batch.error)
            return
        top = model.backward_head(batch.error)
        if method == "dfa":
            signals = feedback.project(batch.error)
            points, shared = _MODE_LAYOUT[self.feedback_mode]

            def stream(signal):
                # B e stands where W_out^T e would: the final layer norm's own local
                # backward brings it into the residual stream (see the class docstring).
                return model.final_norm.input_gradient(signal.reshape(top.shape))

            common = stream(signals[0]) if shared else None
            grad = None
            for index in range(len(model.blocks) - 1, -1, -1):
                if points == "macro":
                    signal = common if shared else stream(signals[index])
                    grad = model.backward_block(index, signal, input_grad=index == 0)
                    continue
                if shared:
                    middle, hidden, output = common, signals[1], common
                else:
                    middle, hidden, output = signals[3 * index:3 * index + 3]
                    middle, output = stream(middle), stream(output)
                grad = model.backward_block_micro(index, output, hidden, middle,
                                                  input_grad=index == 0)
            model.backward_embedding(grad)

    def compared_gradients(self) -> list[list]:
        return [[p.grad.copy() for p in block.parameters()] for block in self.model.blocks]


def feedback_path(model, feedback_mode: str | None = None) -> FeedbackPath:
    """The feedback path of ``model``'s family.

    Parameters
    ----------
    model
        A :class:`~dfa_bridge.nn.models.Network` (MLP, GCN) or a
        :class:`~dfa_bridge.nn.transformer.TransformerLM`.
    feedback_mode
        The Transformer's ``"shared"`` (None: the default) or ``"sliced"``; None for a
        Network.
    """
    if isinstance(model, TransformerLM):
        return TransformerPath(model, "shared" if feedback_mode is None else feedback_mode)
    if isinstance(model, Network):
        if feedback_mode is not None:
            raise ValueError(f"feedback_mode = {feedback_mode!r}: expected None for a "
                             f"{type(model).__name__} (it applies to a TransformerLM)")
        return NetworkPath(model)
    raise TypeError(f"model = {type(model).__name__}: expected a Network (MLP, GCN) or a "
                    "TransformerLM")


# ---------------------------------------------------------------------- the trainer
class Trainer:
    """One model, one training method, one optimizer (docs/design.md section 5).

    Parameters
    ----------
    model
        An :class:`~dfa_bridge.nn.models.MLP`, a :class:`~dfa_bridge.nn.models.GCN` (any
        :class:`~dfa_bridge.nn.models.Network`) or a
        :class:`~dfa_bridge.nn.transformer.TransformerLM`.
    method
        ``"bp"``, ``"dfa"`` or ``"shallow"``.
    feedback
        Feedback source whose widths are :attr:`FeedbackPath.feedback_widths` (a
        network's hidden widths; the Transformer's ``(D,)`` shared or ``(D,) * L``
        sliced) and whose classes are the model's outputs. Required for ``dfa``; optional
        for ``bp`` and ``shallow``, which never project through it: on a network it only
        serves the weights-vs-feedback angle of the records.
    optimizer
        ``"adam"`` or ``"sgd"``, over the parameters the method trains.
    feedback_mode
        The Transformer's ``"shared"`` (None: the default) or ``"sliced"`` feedback
        (:class:`TransformerPath`); None for a network.
    divergence_factor
        A training loss above this multiple of the first one stops the run as diverged
        (:class:`~dfa_bridge.nn.losses.DivergenceGuard`; ``math.inf``: only a
        non-finite loss does).
    feedback_delay
        Steps by which a ``dfa`` update of the feedback-driven parameters
        (:meth:`FeedbackPath.feedback_parameters`) lags the forward pass it comes from
        (0: fresh feedback). With ``k``, the update computed from step ``t``'s forward
        pass, error and projection ``B e_t`` is applied at step ``t + k``, after that
        step's forward pass; those parameters do not move in the first ``k`` steps. With
        1 this is the overlapped schedule of an OPU (``studies.step_cost``): the OPU
        projects step ``t``'s error while the machine runs step ``t + 1``. The parameters
        trained from ``e`` itself (the last layer, the head) update at once. Any feedback
        source, any model family.
    **optimizer_options
        ``lr``, ``weight_decay``, ``momentum`` ... (see :mod:`dfa_bridge.nn.optim`).

    Attributes
    ----------
    model, method, feedback, optimizer
        As given (the optimizer built).
    path : FeedbackPath
        How the error and the feedback reach the model's layers.
    feedback_delay : int
        As given.
    """

    def __init__(self, model, method: str, feedback: Feedback | None = None,
                 optimizer: str = "adam", *, feedback_mode: str | None = None,
                 divergence_factor: float = 10.0, feedback_delay: int = 0,
                 **optimizer_options):
        check_choice("method", method, METHODS)
        path = feedback_path(model, feedback_mode)
        if method == "dfa" and feedback is None:
            raise ValueError("feedback = None: expected a Feedback source for method 'dfa'")
        if feedback is not None and (feedback.widths != path.feedback_widths
                                     or feedback.n_classes != model.n_outputs):
            raise ValueError(f"feedback: widths {feedback.widths} and {feedback.n_classes} classes: "
                             f"expected {path.expected_feedback()}")
        path.check_method(method)
        self.feedback_delay = check_int("feedback_delay", feedback_delay, low=0)
        if self.feedback_delay and method != "dfa":
            raise ValueError(f"feedback_delay = {feedback_delay!r} with method {method!r}: "
                             "expected 0 (only DFA's projected feedback can be stale)")
        self._pending = collections.deque()  # gradients waiting for their delayed update
        self.model = model
        self.method = method
        self.feedback = feedback
        self.path = path
        self.optimizer = make_optimizer(optimizer, path.trained_parameters(method),
                                        **optimizer_options)
        self.loss = SoftmaxCrossEntropy()
        self.divergence = DivergenceGuard(divergence_factor)

    @property
    def feedback_mode(self) -> str | None:
        """The Transformer's feedback mode (None for a network)."""
        return getattr(self.path, "feedback_mode", None)

    # ------------------------------------------------------------------ gradients
    def error(self, x, labels, rows=None) -> BatchError:
        """Training-mode forward pass, loss and error ``e = dL/da_N`` of a batch.

        Parameters
        ----------
        x : array
            Inputs: (n, n_features) (every node of a graph), or the Transformer's tokens
            (B, T).
        labels : int array
            Labels of the rows the loss sees: (n_rows,), or the next tokens (B, T)
            (flattened to one label per token).
        rows : int array, optional
            Rows of the output the loss sees (a graph's training nodes); all by default.
        """
        logits = self.model.forward(x, training=True)
        labels = labels.reshape(-1)
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

        See :class:`NetworkPath` and :class:`TransformerPath` for where each method's
        signal enters.
        """
        method = self.method if method is None else method
        check_choice("method", method, METHODS)
        if method == "dfa" and self.feedback is None:
            raise ValueError("method = 'dfa': expected a trainer with a Feedback source")
        self.path.backward(batch, method, self.feedback)

    def step(self, x, labels, rows=None, measure_alignment: bool = False):
        """One training step on a batch; returns ``(loss, update angles or None)``.

        Parameters
        ----------
        x, labels, rows
            As for :meth:`error`.
        measure_alignment
            On a ``dfa`` trainer, also compute the backprop gradient of this batch, from
            the same forward pass, and return the angle between it and the DFA update per
            hidden layer (per block). Ignored by ``bp`` and ``shallow``, which apply no
            DFA update to compare.

        Returns
        -------
        (float, list of float or None)
            The batch's mean loss (nats) before the update, and the angles in degrees.

        Raises
        ------
        TrainingDiverged
            The loss is not finite, or above ``divergence_factor`` times the trainer's
            first loss (:class:`~dfa_bridge.nn.losses.DivergenceGuard`); nothing was
            updated.
        """
        batch = self.error(x, labels, rows)
        self.divergence(batch.loss)
        angles = None
        if measure_alignment and self.method == "dfa":
            angles = backward_with_alignment(lambda method: self.backward(batch, method),
                                             self.path.compared_gradients)
        else:
            self.backward(batch)
        if self.feedback_delay:
            self._delay_feedback_updates()
        self.optimizer.step()
        return batch.loss, angles

    def _delay_feedback_updates(self) -> None:
        """Hold this step's feedback-driven gradients; put the ones ``feedback_delay`` old in place.

        Until that many steps have passed the feedback-driven parameters get a zero
        gradient (no Adam or SGD motion but their weight decay).
        """
        parameters = self.path.feedback_parameters()
        self._pending.append([p.grad.copy() for p in parameters])
        due = self._pending.popleft() if len(self._pending) > self.feedback_delay else None
        for index, parameter in enumerate(parameters):
            if due is None:
                parameter.grad[...] = 0
            else:
                parameter.grad[...] = due[index]

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, x, labels, rows=None) -> tuple[float, float]:
        """Mean loss (nats) and accuracy in evaluation mode (no dropout, no update).

        Parameters
        ----------
        x, labels, rows
            As for :meth:`error`; for the Transformer the accuracy is that of the next
            character.
        """
        logits = self.model.forward(x, training=False)
        return _loss_and_accuracy(logits if rows is None else logits[rows], labels)

    def evaluate_splits(self, x, splits: dict) -> dict:
        """:meth:`evaluate` of several row sets of one input, from one forward.

        Parameters
        ----------
        x
            The input (a graph's node features: the forward runs on every node).
        splits
            ``name -> (labels, rows)``.

        Returns
        -------
        dict
            ``name -> (loss, accuracy)``, as :meth:`evaluate` gives each.
        """
        logits = self.model.forward(x, training=False)
        return {name: _loss_and_accuracy(logits[rows], labels)
                for name, (labels, rows) in splits.items()}

    def feedback_angles(self) -> list[float] | None:
        """Angle between ``W_{i+1}^T ... W_N^T`` and ``B_i`` per hidden layer, in degrees.

        None without a feedback source, and for the Transformer.
        """
        if isinstance(self.path, NetworkPath):
            return self.path.weight_angles(self.feedback)
        return None


def _loss_and_accuracy(logits, labels) -> tuple[float, float]:
    """Mean softmax cross-entropy (nats) and accuracy of ``logits`` against ``labels``."""
    labels = labels.reshape(-1)
    loss = SoftmaxCrossEntropy().forward(logits, labels)
    accuracy = float((logits.argmax(axis=1) == labels).sum()) / labels.shape[0]
    return loss, accuracy


# ---------------------------------------------------------------------- tasks
class Task(abc.ABC):
    """What a run trains on, in which steps, and how it is scored.

    Attributes
    ----------
    n_steps : int
        Training steps of the run.
    """

    n_steps: int

    @abc.abstractmethod
    def batches(self) -> Iterator[tuple]:
        """The run's ``n_steps`` batches ``(x, labels, rows)``, in order (a fresh stream per call)."""

    @abc.abstractmethod
    def evaluates_after(self, step: int) -> bool:
        """Whether the model is evaluated after ``step`` (counted from 1)."""

    @abc.abstractmethod
    def position(self, step: int) -> dict:
        """Where ``step`` (counted from 1) lies: the record's ``step`` (and ``epoch``)."""

    @abc.abstractmethod
    def evaluate(self, trainer: Trainer) -> dict:
        """The scores of the model as it stands (no update)."""

    def learning_rate(self, step: int, lr: float) -> float:
        """The learning rate of ``step`` (counted from 0) for a base rate ``lr``: constant."""
        return lr


class _EpochTask(Task):
    """A task of ``epochs`` epochs of ``steps_per_epoch`` steps, evaluated after each."""

    def __init__(self, epochs: int, steps_per_epoch: int):
        self.epochs = check_int("epochs", epochs)
        self.steps_per_epoch = steps_per_epoch
        self.n_steps = self.epochs * steps_per_epoch

    def evaluates_after(self, step: int) -> bool:
        return step % self.steps_per_epoch == 0

    def position(self, step: int) -> dict:
        return {"epoch": math.ceil(step / self.steps_per_epoch), "step": step}


class TabularTask(_EpochTask):
    """Mini-batches of a :class:`~dfa_bridge.data.tabular.Dataset`, reshuffled every epoch.

    Evaluated after every epoch: ``train_accuracy`` and ``test_accuracy`` (fractions).

    Parameters
    ----------
    data
        The dataset, on the model's backend.
    epochs
        Number of epochs, >= 1.
    batch_size
        Samples per step (the last batch of an epoch may be smaller).
    seed
        Seed of the shuffling stream (restarted by each :meth:`batches` call).
    """

    def __init__(self, data: Dataset, epochs: int, batch_size: int = 32, seed: int = 0):
        if not isinstance(data, Dataset):
            raise TypeError(f"data = {type(data).__name__}: expected a Dataset")
        self.data = data
        self.batch_size = check_int("batch_size", batch_size)
        self.seed = seed
        super().__init__(epochs, math.ceil(data.x_train.shape[0] / self.batch_size))

    def batches(self):
        data, size = self.data, self.batch_size
        xp = array_module(data.x_train)
        rng = np.random.default_rng(self.seed)
        n = data.x_train.shape[0]
        for _ in range(self.epochs):
            order = xp.asarray(rng.permutation(n))
            for start in range(0, n, size):
                index = order[start:start + size]
                yield data.x_train[index], data.y_train[index], None

    def evaluate(self, trainer: Trainer) -> dict:
        data = self.data
        return {"train_accuracy": trainer.evaluate(data.x_train, data.y_train)[1],
                "test_accuracy": trainer.evaluate(data.x_test, data.y_test)[1]}


class GraphTask(_EpochTask):
    """One full-batch step per epoch on a :class:`~dfa_bridge.data.graphs.GraphData`.

    The forward runs on every node, the loss on the training nodes. Evaluated after every
    epoch: ``train_accuracy``, ``val_accuracy`` and ``test_accuracy`` (fractions of the
    nodes of each split; a split with no node is left out).

    Parameters
    ----------
    data
        The graph, on the model's backend.
    epochs
        Number of epochs (= steps), >= 1.
    """

    def __init__(self, data: GraphData, epochs: int):
        if not isinstance(data, GraphData):
            raise TypeError(f"data = {type(data).__name__}: expected a GraphData")
        self.data = data
        super().__init__(epochs, 1)
        self._train = (data.features, data.labels[data.train_index], data.train_index)

    def batches(self):
        for _ in range(self.epochs):
            yield self._train

    def evaluate(self, trainer: Trainer) -> dict:
        data = self.data
        splits = {"train": self._train[1:]}
        for part, index in (("val", data.val_index), ("test", data.test_index)):
            if index.shape[0]:
                splits[part] = (data.labels[index], index)
        # One forward serves every split: it runs on every node either way.
        scores = trainer.evaluate_splits(data.features, splits)
        return {f"{part}_accuracy": accuracy for part, (_, accuracy) in scores.items()}


def warmup_cosine(step: int, steps: int, lr: float, warmup: int) -> float:
    """Learning rate of ``step`` (from 0) of ``steps``: linear warm-up, then cosine to ``lr / 10``.

    ``lr (step + 1) / warmup`` over the first ``warmup`` steps, then
    ``lr (0.1 + 0.45 (1 + cos(pi p)))`` with ``p`` going from 0 to 1 over the rest.
    """
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def perplexity(loss: float) -> float:
    """``exp(loss)``: per-character perplexity of a mean loss in nats (capped at ``exp(700)``)."""
    return math.exp(min(loss, 700.0))


class TextTask(Task):
    """Random windows of a :class:`~dfa_bridge.data.text.CharCorpus` for the Transformer.

    Each step takes ``batch_size`` windows of ``context`` characters at uniform random
    offsets of the training text; the learning rate warms up linearly over ``warmup``
    steps, then decays by a cosine to a tenth (:func:`warmup_cosine`). The model is
    evaluated at ``evaluations`` checkpoints evenly spaced, the last after the final step:
    ``val_loss`` (mean next-character loss in nats over non-overlapping validation
    windows) and ``val_perplexity`` (per character).

    Parameters
    ----------
    corpus
        Training and validation ids.
    steps
        Number of updates, >= 1.
    context
        Characters per window (the model's context).
    batch_size
        Windows per step.
    seed
        Seed of the window-offset stream (restarted by each :meth:`batches` call).
    warmup
        Warm-up steps of the learning rate, >= 0.
    evaluations
        Number of evaluation checkpoints, >= 1.
    max_eval_chars
        Cap on the validation characters scored (None: all of them).
    xp
        Array module of the model (NumPy or CuPy).
    """

    eval_batch_size = 64

    def __init__(self, corpus: CharCorpus, steps: int, context: int, batch_size: int = 16,
                 seed: int = 0, warmup: int = 100, evaluations: int = 5,
                 max_eval_chars: int | None = None, xp=np):
        if not isinstance(corpus, CharCorpus):
            raise TypeError(f"corpus = {type(corpus).__name__}: expected a CharCorpus")
        self.n_steps = check_int("steps", steps)
        self.batch_size = check_int("batch_size", batch_size)
        self.evaluations = check_int("evaluations", evaluations)
        self.warmup = check_int("warmup", warmup, low=0)
        self.context = check_int("context", context)
        self.seed = seed
        self.corpus = corpus
        self.train_ids = xp.asarray(corpus.train_ids.astype(np.int64))
        self.val_inputs, self.val_targets = validation_windows(
            xp.asarray(corpus.val_ids.astype(np.int64)), self.context, max_eval_chars)
        self.checkpoints = sorted({max(1, round(self.n_steps * (i + 1) / self.evaluations))
                                   for i in range(self.evaluations)})

    def batches(self):
        rng = np.random.default_rng(self.seed)
        for _ in range(self.n_steps):
            inputs, targets = random_windows(self.train_ids, self.batch_size, self.context, rng)
            yield inputs, targets, None

    def evaluates_after(self, step: int) -> bool:
        return step in self.checkpoints

    def position(self, step: int) -> dict:
        return {"step": step}

    def evaluate(self, trainer: Trainer) -> dict:
        total, count = 0.0, 0
        size = self.eval_batch_size
        for start in range(0, self.val_inputs.shape[0], size):
            x, y = self.val_inputs[start:start + size], self.val_targets[start:start + size]
            total += trainer.evaluate(x, y)[0] * y.size
            count += y.size
        loss = total / count
        return {"val_loss": loss, "val_perplexity": perplexity(loss)}

    def learning_rate(self, step: int, lr: float) -> float:
        return warmup_cosine(step, self.n_steps, lr, self.warmup)


# ---------------------------------------------------------------------- the loop
@dataclasses.dataclass
class History:
    """Records of a training run, one per evaluation.

    Attributes
    ----------
    method
        The training method.
    records
        One dict per evaluation: ``step`` (steps done, counted from 1; ``epoch`` too for
        an MLP or a GCN), ``train_loss`` (mean loss in nats over the steps since the
        previous evaluation), the task's scores (``train_accuracy``, ``test_accuracy``
        and on a graph ``val_accuracy``; or ``val_loss`` and ``val_perplexity``),
        ``update_angle_deg`` (per hidden layer or block, degrees, mean over the measured
        steps; None for ``bp`` and ``shallow``) and, for an MLP or a GCN,
        ``feedback_angle_deg`` (per hidden layer, None without feedback). A run that
        diverged ends with a record of the model as it stood, marked ``diverged``: its
        ``step`` is the step that diverged, its ``train_loss`` the mean over the finite
        steps since the previous record (NaN if none).
    seconds
        Wall time of the whole run, evaluations included.
    diverged_at_step
        The step (counted from 1) whose loss was not finite, where the run stopped, or
        None.
    """

    method: str
    records: list[dict] = dataclasses.field(default_factory=list)
    seconds: float = 0.0
    diverged_at_step: int | None = None

    @property
    def final(self) -> dict:
        """The last record."""
        return self.records[-1]

    def curve(self, key: str) -> list:
        """The values of ``key`` over the records, in order."""
        return [record[key] for record in self.records]


def _mean_angles(measured: list[list[float]]) -> list[float] | None:
    """Per-layer mean of the angles measured since the last evaluation (None when none was).

    An angle is undefined (NaN) where the DFA update or the backprop gradient of a layer
    is zero; such steps are left out of the layer's mean, and a layer with no defined
    angle gets None (said once in a warning) rather than NaN.
    """
    if not measured:
        return None
    means = []
    for layer, column in enumerate(zip(*measured)):
        defined = [angle for angle in column if math.isfinite(angle)]
        if not defined:
            warnings.warn(f"update angle of layer {layer}: undefined on every measured step (its "
                          "DFA update or backprop gradient is zero): recorded as None",
                          RuntimeWarning, stacklevel=3)
        means.append(float(np.mean(defined)) if defined else None)
    return means


def _record(task: Task, trainer: Trainer, step: int, losses: list, measured: list,
            diverged: bool = False) -> dict:
    record = {**task.position(step),
              "train_loss": float(np.mean(losses)) if losses else float("nan")}
    if diverged:
        record["diverged"] = True
    record.update(task.evaluate(trainer))
    record["update_angle_deg"] = _mean_angles(measured)
    record.update(trainer.path.alignment_record(trainer.feedback))
    return record


def _model_backend(model):
    """The array module the model's parameters live on."""
    return array_module(model.parameters()[0].value)


def _make_task(trainer: Trainer, data, epochs, batch_size, seed, steps, options: dict) -> Task:
    """The task of ``data`` (a Dataset, a GraphData or a CharCorpus) with fit's options."""
    def refuse(name, value, why):
        if value is not None:
            raise ValueError(f"{name} = {value!r}: expected None for a {type(data).__name__}: "
                             f"{why}")

    given = {name: value for name, value in options.items() if value is not None}
    if isinstance(data, (Dataset, GraphData)):
        refuse("steps", steps, "it trains in epochs (give epochs)")
        for name, value in given.items():
            refuse(name, value, "it applies to a CharCorpus")
        if epochs is None:
            raise ValueError(f"epochs = None: expected a positive integer for a "
                             f"{type(data).__name__}")
        if isinstance(data, GraphData):
            refuse("batch_size", batch_size, "it trains on one full batch per epoch")
            return GraphTask(data, epochs)
        return TabularTask(data, epochs, 32 if batch_size is None else batch_size, seed)
    if isinstance(data, CharCorpus):
        refuse("epochs", epochs, "it trains in steps (give steps)")
        if steps is None:
            raise ValueError("steps = None: expected a positive integer for a CharCorpus")
        if not isinstance(trainer.model, TransformerLM):
            raise ValueError(f"data = CharCorpus: expected a trainer of a TransformerLM, not of "
                             f"a {type(trainer.model).__name__}")
        return TextTask(data, steps, trainer.model.context,
                        16 if batch_size is None else batch_size, seed,
                        xp=_model_backend(trainer.model), **given)
    raise TypeError(f"data = {type(data).__name__}: expected a Dataset, a GraphData, a "
                    "CharCorpus or a Task")


def fit(trainer: Trainer, data, epochs: int | None = None, batch_size: int | None = None,
        seed: int = 0, align_steps: int = 4, progress: bool | None = None, *,
        steps: int | None = None, warmup: int | None = None, evaluations: int | None = None,
        max_eval_chars: int | None = None) -> History:
    """Train a model of any family and record its learning and alignment curves.

    The loop: for each of the task's steps, set the learning rate
    (:meth:`Task.learning_rate`), take one :meth:`Trainer.step` (measuring the DFA
    update's angle to backprop on the first ``align_steps`` steps after each evaluation,
    for a ``dfa`` run), and after the task's evaluation steps append a record of the mean
    loss, the task's scores and the alignment. A non-finite loss stops the run with a
    RuntimeWarning: the records so far are kept, the model as it stands is evaluated once
    more into a last record marked ``diverged``, and ``diverged_at_step`` is set.

    Parameters
    ----------
    trainer
        Model, method and optimizer; the model on the data's backend.
    data
        A :class:`Task`, or the data it is built from: a
        :class:`~dfa_bridge.data.tabular.Dataset` (:class:`TabularTask`: mini-batches of
        ``batch_size``, default 32, reshuffled every epoch), a
        :class:`~dfa_bridge.data.graphs.GraphData` (:class:`GraphTask`: one full-batch step
        per epoch) or a :class:`~dfa_bridge.data.text.CharCorpus` (:class:`TextTask` of the
        trainer's Transformer: ``steps`` steps of ``batch_size`` windows, default 16).
    epochs
        Number of epochs, >= 1, of a Dataset or a GraphData (None for a corpus or a task).
    batch_size
        Samples or windows per step (None: the default; None for a graph or a task).
    seed
        Seed of the shuffling or window-offset stream (unused with a task, which holds
        its own).
    align_steps
        Steps measured after each evaluation (and at the start), >= 0.
    progress
        Progress bar on stderr: True, False, or None for runs of four steps or more.
    steps, warmup, evaluations, max_eval_chars
        A corpus's number of steps (>= 1), warm-up steps (default 100), evaluation
        checkpoints (default 5) and cap on the validation characters (default: all);
        see :class:`TextTask`. None for the other data.

    Returns
    -------
    History
    """
    options = {"warmup": warmup, "evaluations": evaluations, "max_eval_chars": max_eval_chars}
    if isinstance(data, Task):
        for name, value in (("epochs", epochs), ("batch_size", batch_size), ("steps", steps),
                            *options.items()):
            if value is not None:
                raise ValueError(f"{name} = {value!r}: expected None with a Task, which holds "
                                 "its own schedule")
        task = data
    else:
        task = _make_task(trainer, data, epochs, batch_size, seed, steps, options)
    align_steps = check_int("align_steps", align_steps, low=0)
    history = History(trainer.method)
    base_lr = trainer.optimizer.lr
    losses, measured, since = [], [], 0
    start = time.perf_counter()
    try:
        with Progress(task.n_steps, f"{trainer.method} training", enabled=progress,
                      unit="step") as bar:
            for step, (x, labels, rows) in enumerate(task.batches(), start=1):
                trainer.optimizer.lr = task.learning_rate(step - 1, base_lr)
                try:
                    loss, angles = trainer.step(x, labels, rows,
                                                measure_alignment=since < align_steps)
                except TrainingDiverged as error:
                    history.diverged_at_step = step
                    where = ", ".join(f"{k} {v}" for k, v in task.position(step).items())
                    warnings.warn(f"{error} ({where}); the records so far are kept and the model "
                                  "as it stands is evaluated once more", RuntimeWarning,
                                  stacklevel=2)
                    history.records.append(_record(task, trainer, step, losses, measured,
                                                   diverged=True))
                    break
                since += 1
                losses.append(loss)
                if angles is not None:
                    measured.append(angles)
                bar.update()
                if task.evaluates_after(step):
                    history.records.append(_record(task, trainer, step, losses, measured))
                    losses, measured, since = [], [], 0
    finally:
        trainer.optimizer.lr = base_lr
    history.seconds = time.perf_counter() - start
    return history
