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

This module holds :data:`LM_DEFAULTS` and :func:`sample`.
"""

from __future__ import annotations

import numpy as np

from photon import to_numpy

from ..data.text import CharCorpus
from ..nn.transformer import TransformerLM
from .trainer import FEEDBACK_MODES, TextTask, perplexity

__all__ = ["LM_DEFAULTS", "FEEDBACK_MODES", "TextTask", "perplexity", "sample"]

#: Defaults of the character Transformer runs (the issue's acceptance model): blocks,
#: width ``D``, heads, context ``T`` (characters), tied head, optimizer, learning rate,
#: weight decay, windows per step, steps, warm-up steps, feedback mode.
LM_DEFAULTS = {"n_blocks": 4, "width": 128, "heads": 4, "context": 64, "tied": False,
               "optimizer": "adam", "lr": 2e-3, "weight_decay": 0.0, "batch_size": 16,
               "steps": 1500, "warmup": 100, "feedback_mode": "shared"}

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
