"""The character Transformer's language-specific pieces: defaults and sampling.

The Transformer trains through the one loop of :mod:`dfa_bridge.training.trainer`: a
:class:`~dfa_bridge.training.trainer.Trainer` whose
:class:`~dfa_bridge.training.trainer.TransformerPath` delivers macro DFA (docs/design.md
section 5; Launay et al., NeurIPS 2020) and a
:class:`~dfa_bridge.training.trainer.TextTask` (random windows, warm-up then cosine
learning rate, validation loss and perplexity per character at evaluation checkpoints),
run by :func:`~dfa_bridge.training.trainer.fit`;
:func:`~dfa_bridge.training.experiment.run_experiment` with ``model="transformer"``
builds a whole run from names and numbers.

This module holds :data:`LM_DEFAULTS`, :func:`sample`, and the names of the former
language trainer, kept for existing code: :data:`LanguageTrainer` is
:class:`~dfa_bridge.training.trainer.Trainer`, :data:`LMHistory` is
:class:`~dfa_bridge.training.trainer.History`, and :func:`fit_language_model` calls
:func:`~dfa_bridge.training.trainer.fit` on a corpus.
"""

from __future__ import annotations

import numpy as np

from photon import array_module, to_numpy

from ..data.text import CharCorpus
from ..nn.transformer import TransformerLM
from .trainer import FEEDBACK_MODES, History, TextTask, Trainer, fit, perplexity

__all__ = ["LM_DEFAULTS", "FEEDBACK_MODES", "LanguageTrainer", "LMHistory", "TextTask",
           "perplexity", "fit_language_model", "sample"]

#: Defaults of the character Transformer runs (the issue's acceptance model): blocks,
#: width ``D``, heads, context ``T`` (characters), tied head, optimizer, learning rate,
#: weight decay, windows per step, steps, warm-up steps, feedback mode.
LM_DEFAULTS = {"n_blocks": 4, "width": 128, "heads": 4, "context": 64, "tied": False,
               "optimizer": "adam", "lr": 2e-3, "weight_decay": 0.0, "batch_size": 16,
               "steps": 1500, "warmup": 100, "feedback_mode": "shared"}

#: The former name of the one :class:`~dfa_bridge.training.trainer.Trainer` (which takes a
#: TransformerLM; its ``feedback_mode`` defaults to ``"shared"``).
LanguageTrainer = Trainer

#: The former name of :class:`~dfa_bridge.training.trainer.History`.
LMHistory = History


def fit_language_model(trainer: Trainer, corpus: CharCorpus, steps: int, batch_size: int = 16,
                       seed: int = 0, warmup: int = 100, evaluations: int = 5,
                       align_steps: int = 4, max_eval_chars: int | None = None, xp=None,
                       progress: bool | None = None) -> History:
    """Train a Transformer for ``steps`` steps on random windows of ``corpus``.

    The same as ``fit(trainer, TextTask(corpus, steps, trainer.model.context, ...))``
    (:func:`~dfa_bridge.training.trainer.fit`,
    :class:`~dfa_bridge.training.trainer.TextTask`), kept under its former name.

    Parameters
    ----------
    trainer
        A trainer of a :class:`~dfa_bridge.nn.transformer.TransformerLM`.
    corpus, steps, batch_size, seed, warmup, evaluations, max_eval_chars
        See :class:`~dfa_bridge.training.trainer.TextTask`.
    align_steps, progress
        See :func:`~dfa_bridge.training.trainer.fit`.
    xp
        Array module of the model (None: the one its parameters are on).

    Returns
    -------
    History
        One record per evaluation: ``step``, ``train_loss``, ``val_loss`` (nats per
        character), ``val_perplexity`` and ``update_angle_deg`` (per block, or None).
    """
    if not isinstance(trainer.model, TransformerLM):
        raise ValueError(f"trainer.model = {type(trainer.model).__name__}: expected a "
                         "TransformerLM")
    if xp is None:
        xp = array_module(trainer.model.parameters()[0].value)
    task = TextTask(corpus, steps, trainer.model.context, batch_size, seed, warmup, evaluations,
                    max_eval_chars, xp)
    return fit(trainer, task, align_steps=align_steps, progress=progress)


def sample(model: TransformerLM, corpus: CharCorpus, n_chars: int, seed: int = 0,
           prompt: str = "\n", temperature: float = 1.0, xp=np) -> str:
    """``n_chars`` characters drawn one at a time from the model after ``prompt``.

    Each step feeds the last ``context`` characters and samples the next from
    ``softmax(logits / temperature)`` at the last position (its own seeded stream);
    ``<unk>`` is never drawn.

    Parameters
    ----------
    model
        The Transformer, on ``xp``.
    corpus
        The corpus whose vocabulary encodes the prompt and decodes the draw.
    n_chars
        Characters to draw, >= 0.
    seed
        Seed of the sampling stream.
    prompt
        Text the draw continues (empty: a newline).
    temperature
        Softmax temperature, > 0 (1: the model's distribution).
    xp
        Array module of the model.
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
