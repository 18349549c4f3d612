"""Training a character-level Transformer by backpropagation, macro DFA or the shallow baseline.

Methods (docs/design.md section 5; Launay, Poli, Boniface, Krzakala, "Direct Feedback
Alignment Scales to Modern Deep Learning Tasks and Architectures", NeurIPS 2020)
---------------------------------------------------------------------------------
The error is per token: ``e = (softmax(logits) - onehot(next char)) / (B T)``, shape
(B T, V).

``bp``       backpropagation through the whole model.
``dfa``      "macro" DFA: the feedback projects ``e`` ONCE (one row per token) and the
             projection ``B e`` is the gradient signal at each block's output ``h_k``
             (the residual stream, every token). It enters where backprop's
             ``W_out^T e`` would, before the final layer norm, whose known local
             backward carries it into the stream: the update then stays out of the
             directions the normalization hides from the loss (the mean and the scale
             of ``h_L``), along which it would grow unchecked. Inside a block, local
             backprop gives the parameters' updates (attention mixes positions; its
             local backward handles that). No gradient flows from one block to the one
             below. The embeddings get the input gradient of the first block's local
             backward, as in Launay et al., where the layers below the first feedback
             point learn from it by local backprop. The head (final layer norm, output
             projection) gets the true gradient of ``e``, as DFA's last layer does.

             ``feedback_mode="shared"`` (default) projects onto ``D`` and gives every
             block the same ``B e``; ``"sliced"`` projects onto ``L D`` and gives block
             ``k`` its own slice (the MLP form of docs/design.md section 5). In a residual stack
             the true gradients at the block outputs nearly coincide (the stream is
             carried by identities), so one shared ``B`` can be aligned with by the head;
             ``L`` independent ``B_k`` cannot all be. Measured here: shared closes most of
             the shallow-to-bp gap, sliced does worse than shallow.
``shallow``  embeddings and blocks stay at their initialization; only the head trains.

Feedback scale: ``B_k = G_k / sqrt(D)`` (see :mod:`dfa_bridge.training.feedback`); with Adam the
update's direction, not its scale, matters. Alignment per block: the angle between the
DFA update and the backprop gradient of the same batch, the block's parameters
flattened (:func:`dfa_bridge.training.alignment.update_angles`).
"""

from __future__ import annotations

import math
import time
import warnings

import numpy as np

from photon import to_numpy
from photon.support.arrays import backend_module
from photon.support.progress import Progress

from .alignment import backward_with_alignment
from .feedback import Feedback, make_feedback
from ..nn.losses import SoftmaxCrossEntropy, TrainingDiverged, check_finite_loss
from ..nn.optim import make_optimizer
from ..data.text import CharCorpus, load_text_dataset, random_windows, validation_windows
from .trainer import History
from ..nn.transformer import TransformerLM

__all__ = ["LM_DEFAULTS", "FEEDBACK_MODES", "LanguageTrainer", "LMHistory", "fit_language_model", "sample",
           "run_language_experiment"]

METHODS = ("bp", "dfa", "shallow")

#: Defaults of the character Transformer runs (the issue's acceptance model).
LM_DEFAULTS = {"n_blocks": 4, "width": 128, "heads": 4, "context": 64, "tied": False,
               "optimizer": "adam", "lr": 2e-3, "weight_decay": 0.0, "batch_size": 16,
               "steps": 1500, "warmup": 100, "feedback_mode": "shared"}

#: How the projected error reaches the blocks: ``sliced`` projects onto ``L D`` and gives
#: block ``k`` its own slice (docs/design.md section 5); ``shared`` projects onto ``D`` and gives
#: every block the same signal (TinyDFA, Launay et al.'s code: one projection onto the
#: largest feedback width, each layer reading its prefix).
FEEDBACK_MODES = ("sliced", "shared")


class LanguageTrainer:
    """One Transformer LM, one training method, one optimizer.

    Parameters
    ----------
    model
        The :class:`~dfa_bridge.nn.transformer.TransformerLM`.
    method
        ``"bp"``, ``"dfa"`` or ``"shallow"``.
    feedback
        A :class:`~dfa_bridge.training.feedback.Feedback` with widths ``(D,) * L`` and ``V``
        classes; required for ``dfa``, optional otherwise (alignment logging only).
    optimizer
        ``"adam"`` or ``"sgd"``, over the parameters the method trains.
    **optimizer_options
        ``lr``, ``weight_decay`` ...
    """

    def __init__(self, model: TransformerLM, method: str, feedback: Feedback | None = None,
                 optimizer: str = "adam", feedback_mode: str = "sliced", **optimizer_options):
        if feedback_mode not in FEEDBACK_MODES:
            raise ValueError(f"feedback_mode = {feedback_mode!r}: expected one of "
                             f"{', '.join(FEEDBACK_MODES)}")
        self.feedback_mode = feedback_mode
        widths = model.feedback_widths if feedback_mode == "sliced" else (model.width,)
        if method not in METHODS:
            raise ValueError(f"method = {method!r}: expected one of {', '.join(METHODS)}")
        if method == "dfa" and feedback is None:
            raise ValueError("feedback = None: expected a Feedback source for method 'dfa'")
        if feedback is not None and (feedback.widths != widths
                                     or feedback.n_classes != model.n_outputs):
            raise ValueError(f"feedback: widths {feedback.widths} and {feedback.n_classes} classes: "
                             f"expected {widths} ({feedback_mode} feedback) and "
                             f"{model.n_outputs} tokens")
        if method == "shallow" and model.tied:
            raise ValueError("method = 'shallow' with a tied output projection: expected an untied "
                             "model (the shared matrix is the embedding, which shallow freezes)")
        self.model = model
        self.method = method
        self.feedback = feedback
        trained = model.head_parameters() if method == "shallow" else model.parameters()
        self.optimizer = make_optimizer(optimizer, trained, **optimizer_options)
        self.loss = SoftmaxCrossEntropy()

    def error(self, inputs, targets):
        """Training forward; returns ``(mean loss, e)`` with ``e`` (B T, V)."""
        logits = self.model.forward(inputs, training=True)
        loss = self.loss.forward(logits, targets.reshape(-1))
        return loss, self.loss.backward()

    def backward(self, error, method: str | None = None) -> None:
        """Set the gradients of ``method`` (default: the trainer's) for the last forward.

        ``dfa`` projects ``e`` once (:meth:`Feedback.project`) and feeds block ``k`` the
        slice ``k`` at its output, reshaped to (B, T, D).
        """
        method = self.method if method is None else method
        model = self.model
        if method == "bp":
            model.backward(error)
            return
        top = model.backward_head(error)
        if method == "dfa":
            signals = self.feedback.project(error)
            grad = None
            for index in range(len(model.blocks) - 1, -1, -1):
                signal = signals[index if self.feedback_mode == "sliced" else 0].reshape(top.shape)
                # B e stands where W_out^T e would: the final layer norm's own local
                # backward brings it into the residual stream, keeping the update out of
                # the directions the normalization hides from the loss (mean and scale
                # of h_L), along which it would otherwise grow without bound.
                signal = model.final_norm.input_gradient(signal)
                grad = model.backward_block(index, signal, input_grad=index == 0)
            model.backward_embedding(grad)

    def _block_gradients(self) -> list[list]:
        return [[p.grad.copy() for p in block.parameters()] for block in self.model.blocks]

    def step(self, inputs, targets, measure_alignment: bool = False):
        """One update; returns ``(loss, per-block update angles or None)``.

        With ``measure_alignment`` (and a feedback source) the DFA update and the
        backprop gradient of the same forward pass are both computed and compared.
        """
        loss, error = self.error(inputs, targets)
        check_finite_loss(loss)
        angles = None
        if measure_alignment and self.feedback is not None:
            angles = backward_with_alignment(lambda method: self.backward(error, method),
                                             self._block_gradients, self.method)
        else:
            self.backward(error)
        self.optimizer.step()
        return loss, angles

    def evaluate(self, inputs, targets, batch_size: int = 64) -> float:
        """Mean next-character loss (nats) over windows ``inputs`` (n, T), no update."""
        total, count = 0.0, 0
        for start in range(0, inputs.shape[0], batch_size):
            x, y = inputs[start:start + batch_size], targets[start:start + batch_size]
            logits = self.model.forward(x, training=False)
            total += SoftmaxCrossEntropy().forward(logits, y.reshape(-1)) * y.size
            count += y.size
        return total / count


class LMHistory(History):
    """Records of a language-model run (see :class:`~dfa_bridge.training.trainer.History`).

    One record per evaluation: ``step``, ``train_loss``, ``val_loss``,
    ``val_perplexity`` and ``update_angle_deg`` (per block, or None).
    """


def _learning_rate(step: int, steps: int, lr: float, warmup: int) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay to ``lr / 10``."""
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def fit_language_model(trainer: LanguageTrainer, corpus: CharCorpus, steps: int,
                       batch_size: int = 16, seed: int = 0, warmup: int = 100,
                       evaluations: int = 5, align_steps: int = 4,
                       max_eval_chars: int | None = None, xp=np,
                       progress: bool | None = None) -> LMHistory:
    """Train for ``steps`` steps on random windows; evaluate the validation perplexity.

    Parameters
    ----------
    trainer
        Model (on ``xp``), method and optimizer.
    corpus
        Training and validation ids.
    steps
        Number of updates, >= 1.
    batch_size
        Windows per step (each of the model's context).
    seed
        Seed of the window-offset stream.
    warmup
        Warm-up steps of the learning rate (then cosine decay to a tenth).
    evaluations
        Number of evaluations, evenly spaced, the last after the final step.
    align_steps
        Steps after each evaluation whose update angles are measured and averaged.
    max_eval_chars
        Cap on the validation characters (None: all of them).
    xp
        Array module of the data (NumPy or CuPy).
    progress
        Progress bar on stderr (None: for runs of four steps or more).
    """
    for name, value in (("steps", steps), ("batch_size", batch_size), ("evaluations", evaluations)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} = {value!r}: expected a positive integer")
    context = trainer.model.context
    train_ids = xp.asarray(corpus.train_ids.astype(np.int64))
    val_inputs, val_targets = validation_windows(xp.asarray(corpus.val_ids.astype(np.int64)),
                                                 context, max_eval_chars)
    rng = np.random.default_rng(seed)
    checkpoints = sorted({max(1, round(steps * (i + 1) / evaluations)) for i in range(evaluations)})
    history = LMHistory(trainer.method)
    base_lr = trainer.optimizer.lr
    start = time.perf_counter()
    losses, measured, since = [], [], 0
    with Progress(steps, f"{trainer.method} training", enabled=progress, unit="step") as bar:
        for step in range(steps):
            trainer.optimizer.lr = _learning_rate(step, steps, base_lr, warmup)
            inputs, targets = random_windows(train_ids, batch_size, context, rng)
            try:
                loss, angles = trainer.step(inputs, targets, measure_alignment=since < align_steps)
            except TrainingDiverged as error:
                history.diverged_at_step = step + 1
                warnings.warn(f"{error} (step {step + 1}); the evaluations so far are kept and "
                              "the model as it stands is evaluated once more", RuntimeWarning,
                              stacklevel=2)
                val_loss = trainer.evaluate(val_inputs, val_targets)
                history.records.append({
                    "step": step + 1, "train_loss": float("nan"), "val_loss": val_loss,
                    "val_perplexity": math.exp(min(val_loss, 700.0)), "update_angle_deg": None,
                    "diverged": True})
                break
            since += 1
            losses.append(loss)
            if angles is not None:
                measured.append(angles)
            bar.update()
            if step + 1 in checkpoints:
                val_loss = trainer.evaluate(val_inputs, val_targets)
                history.records.append({
                    "step": step + 1, "train_loss": float(np.mean(losses)),
                    "val_loss": val_loss, "val_perplexity": math.exp(val_loss),
                    "update_angle_deg": ([float(np.mean(c)) for c in zip(*measured)]
                                         if measured else None)})
                losses, measured, since = [], [], 0
    trainer.optimizer.lr = base_lr
    history.seconds = time.perf_counter() - start
    return history


def sample(model: TransformerLM, corpus: CharCorpus, n_chars: int, seed: int = 0,
           prompt: str = "\n", temperature: float = 1.0, xp=np) -> str:
    """``n_chars`` characters drawn one at a time from the model after ``prompt``.

    Each step feeds the last ``context`` characters and samples the next from
    ``softmax(logits / temperature)`` at the last position (its own seeded stream).
    """
    if isinstance(n_chars, bool) or not isinstance(n_chars, (int, np.integer)) or n_chars < 0:
        raise ValueError(f"n_chars = {n_chars!r}: expected a non-negative integer")
    if not temperature > 0:
        raise ValueError(f"temperature = {temperature!r}: expected a number > 0")
    rng = np.random.default_rng(seed)
    ids = list(corpus.encode(prompt or "\n"))
    drawn = []
    for _ in range(int(n_chars)):
        window = xp.asarray(np.asarray(ids[-model.context:], np.int64)[None, :])
        logits = to_numpy(model.forward(window)[-1]).astype(np.float64) / temperature
        p = np.exp(logits - logits.max())
        p[0] = 0.0  # never emit <unk>
        token = int(rng.choice(p.size, p=p / p.sum()))
        ids.append(token)
        drawn.append(token)
    return corpus.decode(drawn)


def _derive_seeds(seed: int) -> dict[str, int]:
    children = np.random.SeedSequence(seed).spawn(4)
    return {name: int(child.generate_state(1)[0])
            for name, child in zip(("model", "feedback", "order", "sample"), children)}


def run_language_experiment(data: str = "pydoc", method: str = "dfa", feedback: str = "ideal", *,
                            data_path=None, seed: int = 0, backend: str = "numpy",
                            encoder: str = "bitplanes", n_bits: int = 4, n_sample: int = 0,
                            evaluations: int = 5, max_eval_chars: int | None = None,
                            progress: bool | None = None, **overrides) -> tuple[dict, LMHistory]:
    """Train the character Transformer on a text corpus with one method and feedback source.

    Parameters
    ----------
    data
        ``"pydoc"`` (embedded) or ``"text"`` (``data_path``: a UTF-8 file).
    method
        ``"bp"``, ``"dfa"`` or ``"shallow"``.
    feedback
        ``"ideal"`` or a device (see :func:`dfa_bridge.training.feedback.make_feedback`): its
        ``n_in`` is the vocabulary, its ``n_out`` ``n_blocks * width``.
    seed
        Seed of the model, feedback, window-order and sampling streams (each its own).
    backend
        ``"numpy"`` or ``"cupy"``.
    encoder, n_bits
        Error encoder of a device feedback. Signed 4-bit planes by default: the per-token
        error ``softmax - onehot`` spreads its positive mass thinly over ~90 characters,
        which a ternary code drops (through ``lab-bench`` its projection correlates 0.37
        with the exact ``M e``, against 0.93 for 4-bit planes, and training stalled at
        the unigram perplexity with 90 deg updates).
    n_sample
        Characters to sample from the trained model (0: none).
    evaluations, max_eval_chars
        See :func:`fit_language_model`.
    **overrides
        Hyper-parameters replacing :data:`LM_DEFAULTS`; None values are ignored.

    Returns
    -------
    (dict, LMHistory)
        ``val_perplexity`` (per character), ``val_loss``, ``train_loss``,
        ``unigram_perplexity``, ``steps``, ``seconds``, ``alignment_deg`` (per block),
        ``curves``, ``sample`` (when asked) and the run's description.
    """
    overrides = {k: v for k, v in overrides.items() if v is not None}
    unknown = sorted(set(overrides) - set(LM_DEFAULTS))
    if unknown:
        raise ValueError(f"{unknown[0]} = {overrides[unknown[0]]!r}: expected one of the "
                         f"hyper-parameters of model 'transformer': {', '.join(LM_DEFAULTS)}")
    settings = {**LM_DEFAULTS, **overrides}
    xp = backend_module(backend)
    seeds = _derive_seeds(seed)
    corpus = load_text_dataset(data, data_path)
    model = TransformerLM(corpus.n_tokens, settings["context"], settings["width"],
                          settings["heads"], settings["n_blocks"], settings["tied"],
                          seed=seeds["model"])
    if settings["feedback_mode"] not in FEEDBACK_MODES:
        raise ValueError(f"feedback_mode = {settings['feedback_mode']!r}: expected one of "
                         f"{', '.join(FEEDBACK_MODES)}")
    widths = model.feedback_widths if settings["feedback_mode"] == "sliced" else (model.width,)
    source = make_feedback(feedback, widths, corpus.n_tokens,
                           seed=seeds["feedback"], encoder=encoder, n_bits=n_bits)
    try:
        trainer = LanguageTrainer(model.to(xp), method, source, settings["optimizer"],
                                  feedback_mode=settings["feedback_mode"], lr=settings["lr"],
                                  weight_decay=settings["weight_decay"])
        history = fit_language_model(trainer, corpus, settings["steps"], settings["batch_size"],
                                     seed=seeds["order"], warmup=settings["warmup"],
                                     evaluations=evaluations, max_eval_chars=max_eval_chars,
                                     xp=xp, progress=progress)
    finally:
        source.close()
    final = history.final
    result = {
        "model": "transformer", "data": corpus.describe(), "method": method,
        "feedback": source.describe(), "backend": backend, "seed": seed, "settings": settings,
        "steps": settings["steps"], "val_perplexity": final["val_perplexity"],
        "val_loss": final["val_loss"], "train_loss": final["train_loss"],
        "unigram_perplexity": corpus.unigram_perplexity(), "seconds": history.seconds,
        "diverged_at_step": history.diverged_at_step,
        "alignment_deg": {"update_vs_gradient": final["update_angle_deg"]},
        "curves": {key: [record[key] for record in history.records]
                   for key in ("step", "train_loss", "val_perplexity")},
    }
    if n_sample:
        result["sample"] = sample(model, corpus, n_sample, seed=seeds["sample"], xp=xp)
    return result, history
