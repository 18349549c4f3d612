"""Time one training step of backpropagation and of DFA, side by side.

Both methods run the same step (forward, backward of the method, Adam update) on twin
models with the same weights and the same batch. BP's backward chains the transposed
products ``W_{i+1}^T delta_{i+1}`` down the network; DFA projects the error once,
``E B^T`` onto the sum of the hidden widths, and every layer computes its weight
gradient from its own slice: it skips one (batch x n_i x n_{i+1}) product per hidden
layer. The two are timed interleaved (the order alternating every repeat) and the
medians are compared, so that drifting machine load hits both alike.
"""

from __future__ import annotations

import statistics
import time
from typing import Sequence

import numpy as np

from photon.support.arrays import backend_module

from dfa_bridge.training.feedback import IdealFeedback
from dfa_bridge.nn.models import MLP
from dfa_bridge.training.trainer import Trainer

__all__ = ["time_training_steps"]


def _synchronize(xp) -> None:
    if xp is not np:
        xp.cuda.get_current_stream().synchronize()


def time_training_steps(n_features: int = 784, hidden: Sequence[int] = (1024,) * 4,
                        n_classes: int = 10, batch_size: int = 256, repeats: int = 20,
                        warmup: int = 3, backend: str = "numpy", seed: int = 0) -> dict:
    """Median seconds of one BP step and one DFA step (ideal feedback), and their ratio.

    A step is the forward pass with the loss and error, the method's backward and the
    Adam update; the backward alone is timed too.

    Parameters
    ----------
    n_features, hidden, n_classes
        The MLP (tanh).
    batch_size
        Rows of the batch.
    repeats
        Timed steps per method (interleaved).
    warmup
        Untimed steps per method first (allocations, BLAS and GPU warm-up).
    backend
        ``"numpy"`` or ``"cupy"``.
    seed
        Seed of the weights, feedback and batch.

    Returns
    -------
    dict
        ``bp_s``, ``dfa_s`` (medians of whole steps), ``dfa_over_bp``, the same for the
        backward alone (``bp_backward_s``, ``dfa_backward_s``, ``backward_dfa_over_bp``),
        and the set-up.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats = {repeats!r}, warmup = {warmup!r}: expected repeats >= 1 "
                         "and warmup >= 0")
    xp = backend_module(backend)
    rng = np.random.default_rng(seed)
    x = xp.asarray(rng.standard_normal((batch_size, n_features), dtype=np.float32))
    labels = xp.asarray(rng.integers(0, n_classes, batch_size))
    feedback = IdealFeedback(hidden, n_classes, seed=seed + 1)
    trainers = {method: Trainer(MLP(n_features, n_classes, hidden, seed=seed).to(xp), method,
                                feedback if method == "dfa" else None)
                for method in ("bp", "dfa")}
    for trainer in trainers.values():
        for _ in range(warmup):
            trainer.step(x, labels)
    _synchronize(xp)
    times = {(method, phase): [] for method in trainers for phase in ("step", "backward")}
    for repeat in range(repeats):
        order = ("bp", "dfa") if repeat % 2 == 0 else ("dfa", "bp")
        for method in order:
            trainer = trainers[method]
            start = time.perf_counter()
            batch = trainer.error(x, labels)
            _synchronize(xp)
            backward_start = time.perf_counter()
            trainer.backward(batch)
            _synchronize(xp)
            backward_end = time.perf_counter()
            trainer.optimizer.step()
            _synchronize(xp)
            times[method, "step"].append(time.perf_counter() - start)
            times[method, "backward"].append(backward_end - backward_start)
    median = {key: statistics.median(values) for key, values in times.items()}
    return {"bp_s": median["bp", "step"], "dfa_s": median["dfa", "step"],
            "dfa_over_bp": median["dfa", "step"] / median["bp", "step"],
            "bp_backward_s": median["bp", "backward"], "dfa_backward_s": median["dfa", "backward"],
            "backward_dfa_over_bp": median["dfa", "backward"] / median["bp", "backward"],
            "n_features": n_features, "hidden": list(hidden), "n_classes": n_classes,
            "batch_size": batch_size, "repeats": repeats, "backend": backend,
            "step": "forward + loss + backward + Adam update, float32"}
