"""Time a DFA step through a small simulated device against a step with ideal feedback.

The digits MLP of ``scripts/train.py`` (64 inputs, hidden 256 and 256, tanh, dropout
0.1, 10 classes, batches of 32, Adam) trains by DFA twice side by side: with ideal
(Gaussian, digital) feedback, and with feedback through a virtual device (by default
``lab-bench`` with every noise source of the preset on: laser RIN and drift, shot, dark
and read noise, PRNU and DSNU, 8-bit ADC, DMD leakage, the polarizer's leak, the speckle
grain) opened as :func:`dfa_bridge.training.feedback.make_feedback` opens it: 10 inputs
onto 512 outputs, the error ternarized into 2 planes, about 130 frames a step. The same
is done in the PyTorch front (:class:`dfa_bridge.torch_front.DFA`, when torch imports).

Each repeat times a block of steps of each source, the order alternating between
repeats, on the same batches of digits (the same model state is not needed: a step's
cost does not depend on the weights); the result is the ratio of the two blocks' times,
``device_over_ideal``, per repeat, with its median and range over the repeats (a shared
machine's load hits both sides of a repeat alike).
"""

from __future__ import annotations

import contextlib
import statistics
import sys
import time

import numpy as np

from dfa_bridge.data import load_dataset
from dfa_bridge.nn.models import MLP
from dfa_bridge.training.feedback import make_feedback
from dfa_bridge.training.trainer import Trainer

__all__ = ["time_device_feedback_steps", "DIGITS_MLP"]

#: The digits MLP of ``scripts/train.py --model mlp --data digits``.
DIGITS_MLP = {"hidden": (256, 256), "activation": "tanh", "dropout": 0.1, "batch_size": 32,
              "lr": 1e-3}


def _batches(dataset, batch_size: int, count: int, seed: int):
    rng = np.random.default_rng(seed)
    order = rng.permutation(dataset.x_train.shape[0])
    picks = [order[(i * batch_size) % (order.size - batch_size):][:batch_size]
             for i in range(count)]
    return [(np.ascontiguousarray(dataset.x_train[p], np.float32), dataset.y_train[p])
            for p in picks]


def _numpy_steppers(dataset, device: str, seed: int):
    """``{"ideal": step(x, y), "device": step(x, y)}`` for the NumPy MLP, and the sources."""
    hidden = DIGITS_MLP["hidden"]
    steppers, sources = {}, {}
    for name, feedback in (("ideal", "ideal"), ("device", device)):
        source = make_feedback(feedback, hidden, dataset.n_classes,
                               **({"seed": seed} if feedback == "ideal" else {}))
        model = MLP(dataset.n_features, dataset.n_classes, hidden, DIGITS_MLP["activation"],
                    DIGITS_MLP["dropout"], seed=seed)
        trainer = Trainer(model, "dfa", source, lr=DIGITS_MLP["lr"])
        steppers[name] = trainer.step
        sources[name] = source
    return steppers, sources


def _torch_steppers(dataset, device: str, seed: int):
    """The same two steps in the PyTorch front, or None when torch does not import."""
    try:
        import torch  # noqa: PLC0415  (optional front)
        from torch import nn  # noqa: PLC0415
        from dfa_bridge.torch_front import DFA, FeedbackPoint  # noqa: PLC0415
    except ImportError:
        return None, None
    hidden = DIGITS_MLP["hidden"]
    steppers, sources = {}, {}
    for name, feedback in (("ideal", "ideal"), ("device", device)):
        torch.manual_seed(seed)
        model = nn.Sequential(nn.Linear(dataset.n_features, hidden[0]), nn.Tanh(),
                              nn.Dropout(DIGITS_MLP["dropout"]), FeedbackPoint(),
                              nn.Linear(hidden[0], hidden[1]), nn.Tanh(),
                              nn.Dropout(DIGITS_MLP["dropout"]), FeedbackPoint(),
                              nn.Linear(hidden[1], dataset.n_classes))
        # A device's feedback matrix is its physics: only the ideal source takes a seed.
        options = {"seed": seed} if feedback == "ideal" else {}
        dfa = DFA(model, "dfa", feedback, feedback_options=options)
        optimizer = torch.optim.Adam(model.parameters(), lr=DIGITS_MLP["lr"])
        loss_fn = nn.functional.cross_entropy

        def step(x, y, dfa=dfa, optimizer=optimizer, loss_fn=loss_fn):
            return dfa.step(torch.from_numpy(x), torch.from_numpy(y.astype(np.int64)),
                            loss_fn, optimizer)

        steppers[name] = step
        sources[name] = dfa
    return steppers, sources


def _time_pair(steppers: dict, batches: list, repeats: int, warmup: int) -> dict:
    """Interleaved blocks of ``len(batches)`` steps per source; per-step seconds and ratios."""
    for stepper in steppers.values():
        for x, y in batches[:warmup]:
            stepper(x, y)
    per_step = {name: [] for name in steppers}
    ratios = []
    for repeat in range(repeats):
        order = ("ideal", "device") if repeat % 2 == 0 else ("device", "ideal")
        seconds = {}
        for name in order:
            start = time.perf_counter()
            for x, y in batches:
                steppers[name](x, y)
            seconds[name] = (time.perf_counter() - start) / len(batches)
            per_step[name].append(seconds[name])
        ratios.append(seconds["device"] / seconds["ideal"])
    return {"ideal_step_s": statistics.median(per_step["ideal"]),
            "device_step_s": statistics.median(per_step["device"]),
            "device_over_ideal": statistics.median(ratios),
            "device_over_ideal_min": min(ratios), "device_over_ideal_max": max(ratios),
            "ratios": ratios}


@contextlib.contextmanager
def _threads(count: int | None):
    """BLAS (and torch's intra-op) threads limited to ``count`` for the duration (None: as is)."""
    if count is None:
        yield
        return
    from threadpoolctl import threadpool_limits  # noqa: PLC0415  (scikit-learn's dependency)

    torch = sys.modules.get("torch")
    before = torch.get_num_threads() if torch is not None else None
    try:
        with threadpool_limits(limits=count):
            if torch is not None:
                torch.set_num_threads(count)
            yield
    finally:
        if torch is not None:
            torch.set_num_threads(before)


def time_device_feedback_steps(device: str = "lab-bench", repeats: int = 7,
                               steps_per_repeat: int = 40, warmup: int = 5,
                               seed: int = 0, torch_front: bool = True,
                               threads: int | None = None) -> dict:
    """Seconds per DFA step with ideal and with device feedback, side by side, and their ratio.

    Parameters
    ----------
    device
        The feedback device (a preset, YAML path or ``device:BACKEND``).
    repeats
        Interleaved repeats (each times ``steps_per_repeat`` steps of each source).
    steps_per_repeat
        Steps per block (digits batches of 32, the same batches for both sources).
    warmup
        Untimed steps per source first.
    seed
        Seed of the models, the ideal feedback and the batch order.
    torch_front
        Also time the PyTorch front (skipped, with ``"torch": None``, without torch).
    threads
        Limit BLAS and torch to this many threads on both sides (None: their defaults).
        On a machine whose cores other work keeps busy, multi-threaded BLAS waits for its
        threads and a small step's time says more about the load than about the step.

    Returns
    -------
    dict
        ``"numpy"`` and ``"torch"``: ``ideal_step_s``, ``device_step_s`` (medians),
        ``device_over_ideal`` (median of the repeats' ratios) with its min and max and the
        ratios; and ``frames_per_step`` of the device, ``goal_device_over_ideal_max``
        (2.0) and the set-up.
    """
    dataset = load_dataset("digits", seed=0)
    batches = _batches(dataset, DIGITS_MLP["batch_size"], steps_per_repeat, seed)
    result = {"device": device, "repeats": repeats, "steps_per_repeat": steps_per_repeat,
              "model": f"MLP {dataset.n_features}-256-256-{dataset.n_classes} tanh, dropout "
                       f"0.1, batch {DIGITS_MLP['batch_size']}, Adam (digits)",
              "goal_device_over_ideal_max": 2.0}
    result["threads"] = threads
    steppers, sources = _numpy_steppers(dataset, device, seed)
    device_source = sources["device"]
    before = device_source.device.frames_acquired
    with _threads(threads):
        result["numpy"] = _time_pair(steppers, batches, repeats, warmup)
    steps = repeats * len(batches) + min(warmup, len(batches))
    result["frames_per_step"] = (device_source.device.frames_acquired - before) / steps
    result["device_outputs"] = [device_source.device.n_in, device_source.device.n_out]
    for source in sources.values():
        source.close()
    result["torch"] = None
    if torch_front:
        steppers, sources = _torch_steppers(dataset, device, seed)
        if steppers is not None:
            with _threads(threads):
                result["torch"] = _time_pair(steppers, batches, repeats, warmup)
            for source in sources.values():
                source.close()
    return result
