"""Time a DFA step through a small simulated device against a step with ideal feedback.

The digits MLP of ``scripts/train.py`` (64 inputs, hidden 256 and 256, tanh, dropout
0.1, 10 classes, batches of 32, Adam) trains by DFA twice side by side: with ideal
(Gaussian, digital) feedback, and with feedback through a virtual device (by default
``lab-bench`` with every noise source of the preset on: laser RIN and drift, shot, dark
and read noise, PRNU and DSNU, 8-bit ADC, DMD leakage, the polarizer's leak, the speckle
grain) opened as :func:`dfa_bridge.training.feedback.make_feedback` opens it: 10 inputs
onto 512 outputs. The error is encoded by each of ``encodings`` in turn (by default the
MLP's own, signed bit planes of 4 bits per sign, then ternary): each plane of each error
takes two frames (the complement pair) and each block two reference frames, so a batch
of 32 takes 514 frames with 4-bit planes (8 planes) and 130 ternarized (2 planes). The
same is done in the PyTorch front (:class:`dfa_bridge.torch_front.DFA`, when torch
imports).

Each repeat times a block of steps of each source, the order alternating between
repeats, on the same batches of digits (the same model state is not needed: a step's
cost does not depend on the weights); the result is the ratio of the two blocks' times,
``device_over_ideal``, per repeat, with its median and range over the repeats (a shared
machine's load hits both sides of a repeat alike).

A third block in each repeat, ``read_noise``, draws only the read noise of one step's
camera frames: one N(0, 1) deviate per output and frame from the camera's own sampler
(:class:`photon.noise_samplers.FastNoise`), the least any exact simulation of that
camera draws. ``read_noise_over_ideal`` is its time over the ideal step's: the goal
``device_over_ideal <= 2`` leaves the device path one ideal step in all, so at a
``read_noise_over_ideal`` near or above 1 the goal is out of reach of this sampler
however the rest of the path is written.
"""

from __future__ import annotations

import contextlib
import statistics
import sys
import time

import numpy as np

from dfa_bridge.data import load_dataset
from dfa_bridge.nn.models import MLP
from dfa_bridge.training.families import family
from dfa_bridge.training.feedback import make_feedback
from dfa_bridge.training.trainer import Trainer
from photon.noise_samplers import FastNoise
from photon.support.arguments import check_int
from photon.support.threads import thread_limit
from studies.sweep.spec import encoding_name, parse_encoding

__all__ = ["time_device_feedback_steps", "DIGITS_MLP", "DEFAULT_ENCODINGS"]

#: The digits MLP of ``scripts/train.py --model mlp --data digits``.
DIGITS_MLP = {"hidden": (256, 256), "activation": "tanh", "dropout": 0.1, "batch_size": 32,
              "lr": 1e-3}
#: The encodings timed by default: the MLP's own (first), then ternary (fewest frames).
DEFAULT_ENCODINGS = (encoding_name(*family("mlp").encoder), "ternary")


def _batches(dataset, batch_size: int, count: int, seed: int):
    rng = np.random.default_rng(seed)
    order = rng.permutation(dataset.x_train.shape[0])
    picks = [order[(i * batch_size) % (order.size - batch_size):][:batch_size]
             for i in range(count)]
    return [(np.ascontiguousarray(dataset.x_train[p], np.float32), dataset.y_train[p])
            for p in picks]


def _encoder_options(encoding: str) -> dict:
    """``make_feedback``'s encoder arguments of an encoding name (``"bitplanes-4"``)."""
    encoder, n_bits = parse_encoding(encoding)
    return {"encoder": encoder, "n_bits": n_bits or 4}


def _numpy_steppers(dataset, device: str, seed: int, encoding: str):
    """``{"ideal": step(x, y), "device": step(x, y)}`` for the NumPy MLP, and the sources."""
    hidden = DIGITS_MLP["hidden"]
    steppers, sources = {}, {}
    for name, feedback in (("ideal", "ideal"), ("device", device)):
        options = {"seed": seed} if feedback == "ideal" else _encoder_options(encoding)
        source = make_feedback(feedback, hidden, dataset.n_classes, **options)
        model = MLP(dataset.n_features, dataset.n_classes, hidden, DIGITS_MLP["activation"],
                    DIGITS_MLP["dropout"], seed=seed)
        trainer = Trainer(model, "dfa", source, lr=DIGITS_MLP["lr"])
        steppers[name] = trainer.step
        sources[name] = source
    return steppers, sources


def _torch_steppers(dataset, device: str, seed: int, encoding: str):
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
        options = {"seed": seed} if feedback == "ideal" else _encoder_options(encoding)
        dfa = DFA(model, "dfa", feedback, feedback_options=options)
        optimizer = torch.optim.Adam(model.parameters(), lr=DIGITS_MLP["lr"])
        loss_fn = nn.functional.cross_entropy

        def step(x, y, dfa=dfa, optimizer=optimizer, loss_fn=loss_fn):
            return dfa.step(torch.from_numpy(x), torch.from_numpy(y.astype(np.int64)),
                            loss_fn, optimizer)

        steppers[name] = step
        sources[name] = dfa
    return steppers, sources


def _warm_up(steppers: dict, batches: list, warmup: int) -> None:
    for stepper in steppers.values():
        for x, y in batches[:warmup]:
            stepper(x, y)


def _time_blocks(steppers: dict, batches: list, repeats: int) -> dict:
    """Interleaved blocks of ``len(batches)`` steps per source; per-step seconds and ratios.

    ``steppers`` holds ``"ideal"`` and others; each repeat times one block of each (the
    order rotating between repeats) and takes every other block's time over the ideal's.
    """
    names = list(steppers)
    per_step = {name: [] for name in names}
    ratios = {name: [] for name in names if name != "ideal"}
    for repeat in range(repeats):
        order = names[repeat % len(names):] + names[:repeat % len(names)]
        if repeat % 2:
            order.reverse()
        seconds = {}
        for name in order:
            start = time.perf_counter()
            for x, y in batches:
                steppers[name](x, y)
            seconds[name] = (time.perf_counter() - start) / len(batches)
            per_step[name].append(seconds[name])
        for name in ratios:
            ratios[name].append(seconds[name] / seconds["ideal"])
    result = {f"{name}_step_s": statistics.median(per_step[name]) for name in ("ideal", "device")}
    device = ratios["device"]
    result.update({"device_over_ideal": statistics.median(device),
                   "device_over_ideal_min": min(device), "device_over_ideal_max": max(device),
                   "ratios": device})
    if "read_noise" in steppers:
        result["read_noise_s"] = statistics.median(per_step["read_noise"])
        result["read_noise_over_ideal"] = statistics.median(ratios["read_noise"])
    return result


def _read_noise_stepper(deviates: int, seed: int):
    """A block step that draws ``deviates`` N(0, 1) deviates with the camera's sampler.

    Its stream is its own (a :class:`~photon.noise_samplers.FastNoise` of ``seed``).
    """
    noise = FastNoise(seed)

    def step(x, y):
        return noise.standard_normal(deviates)

    return step


@contextlib.contextmanager
def _threads(count: int | None):
    """BLAS (and torch's intra-op) threads limited to ``count`` for the duration (None: as is)."""
    if count is None:
        yield
        return
    torch = sys.modules.get("torch")
    before = torch.get_num_threads() if torch is not None else None
    try:
        with thread_limit(count):
            if torch is not None:
                torch.set_num_threads(count)
            yield
    finally:
        if torch is not None:
            torch.set_num_threads(before)


def _time_encoding(dataset, batches, device: str, encoding: str, repeats: int, warmup: int,
                   seed: int, torch_front: bool, threads: int | None) -> dict:
    """The NumPy (and torch) timings of one encoding, with its frames and read-noise floor."""
    steppers, sources = _numpy_steppers(dataset, device, seed, encoding)
    device_source = sources["device"]
    opened = device_source.device
    result = {"encoding": encoding, "device_outputs": [opened.n_in, opened.n_out]}
    try:
        with _threads(threads):
            before = opened.frames_acquired
            _warm_up(steppers, batches, warmup)
            frames = (opened.frames_acquired - before) / min(warmup, len(batches))
            result["frames_per_step"] = frames
            pixel_frames = int(round(frames)) * opened.n_out
            result["pixel_frames_per_step"] = pixel_frames
            steppers["read_noise"] = _read_noise_stepper(pixel_frames, seed)
            result["numpy"] = _time_blocks(steppers, batches, repeats)
    finally:
        for source in sources.values():
            source.close()
    numpy_part = result["numpy"]
    result["device_extra_s_per_frame"] = ((numpy_part["device_step_s"]
                                           - numpy_part["ideal_step_s"]) / frames)
    result["torch"] = None
    if torch_front:
        steppers, sources = _torch_steppers(dataset, device, seed, encoding)
        if steppers is not None:
            steppers["read_noise"] = _read_noise_stepper(pixel_frames, seed)
            try:
                with _threads(threads):
                    _warm_up(steppers, batches, warmup)
                    result["torch"] = _time_blocks(steppers, batches, repeats)
            finally:
                for source in sources.values():
                    source.close()
    return result


def time_device_feedback_steps(device: str = "lab-bench", repeats: int = 7,
                               steps_per_repeat: int = 40, warmup: int = 5,
                               seed: int = 0, torch_front: bool = True,
                               threads: int | None = None,
                               encodings=DEFAULT_ENCODINGS) -> dict:
    """Seconds per DFA step with ideal and with device feedback, side by side, and their ratio.

    Parameters
    ----------
    device
        The feedback device (a preset, YAML path or ``device:BACKEND``).
    repeats
        Interleaved repeats (each times ``steps_per_repeat`` steps of each source).
    steps_per_repeat
        Steps per block (digits batches of 32, the same batches for every source).
    warmup
        Untimed steps per source first (>= 1: they also count the frames per step).
    seed
        Seed of the models, the ideal feedback and the batch order.
    torch_front
        Also time the PyTorch front (skipped, with ``"torch": None``, without torch).
    threads
        Limit BLAS and torch to this many threads on both sides (None: their defaults).
        On a machine whose cores other work keeps busy, multi-threaded BLAS waits for its
        threads and a small step's time says more about the load than about the step.
    encodings
        Error encodings of the device (``"ternary"``, ``"bitplanes-N"``), timed in turn;
        the first is reported at the top level.

    Returns
    -------
    dict
        Per encoding (``by_encoding[name]``, the first also at the top level):
        ``"numpy"`` and ``"torch"``, each with ``ideal_step_s``, ``device_step_s``
        (medians), ``device_over_ideal`` (median of the repeats' ratios) with its min and
        max and the ratios, ``read_noise_s`` and ``read_noise_over_ideal`` (the read-noise
        block, see the module notes); ``frames_per_step``, ``pixel_frames_per_step``,
        ``device_extra_s_per_frame`` (NumPy: device step less ideal step, per frame) and
        ``device_outputs``; and the set-up with ``goal_device_over_ideal_max`` (2.0).

    Raises
    ------
    ValueError
        An encoding that is not ``"ternary"`` or ``"bitplanes-N"``, or no encoding.
    """
    repeats = check_int("repeats", repeats, low=1)
    steps_per_repeat = check_int("steps_per_repeat", steps_per_repeat, low=1)
    warmup = check_int("warmup", warmup, low=1)  # the warm-up steps count the frames
    encodings = tuple(encodings)
    if not encodings:
        raise ValueError("encodings = (): expected at least one encoding")
    for encoding in encodings:
        parse_encoding(encoding)  # refuses a bad name before anything is timed
    dataset = load_dataset("digits", seed=0)
    batches = _batches(dataset, DIGITS_MLP["batch_size"], steps_per_repeat, seed)
    result = {"device": device, "repeats": repeats, "steps_per_repeat": steps_per_repeat,
              "model": f"MLP {dataset.n_features}-256-256-{dataset.n_classes} tanh, dropout "
                       f"0.1, batch {DIGITS_MLP['batch_size']}, Adam (digits)",
              "goal_device_over_ideal_max": 2.0, "threads": threads}
    by_encoding = {encoding: _time_encoding(dataset, batches, device, encoding, repeats,
                                            warmup, seed, torch_front, threads)
                   for encoding in encodings}
    result.update(by_encoding[encodings[0]])
    result["by_encoding"] = by_encoding
    return result
