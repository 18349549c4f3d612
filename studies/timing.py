"""Timing on a shared machine: interleaved repeats, medians with their spread, one BLAS thread.

Every measured rate of the cost studies (:mod:`studies.throughput`,
:mod:`studies.step_validation`) comes from :func:`interleaved_times`: the functions
compared are timed in turn, in a rotating order every repeat, so that a drifting load
(other processes on the same cores) hits them alike; each gets the median of its
repeats and the spread of its samples (the quartiles), and a figure is measured once
per run and reused by every page that run writes.

Clocks: ``"wall"`` (elapsed time) or ``"cpu"`` (the process's CPU time, which other
processes sharing the cores do not inflate; with one BLAS thread it is the operation's
own compute time). On a small shared machine a multi-threaded BLAS product stalls
whenever one of its threads is descheduled (the others wait for it at a barrier for a
whole time slice): the same ``(256 x 1024) @ (1024 x 1024)`` float32 product measured
2 ms and 25-68 ms (median of 15) here within a minute, two BLAS threads, two cores shared
with other jobs. :func:`blas_limit` pins the thread count for a measurement.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from typing import Callable

import numpy as np

from photon.support.arguments import check_choice, check_int
from photon.support.threads import thread_limit

__all__ = ["CLOCKS", "interleaved_times", "blas_limit", "summary", "spread_text"]

CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def blas_limit(threads: int | None):
    """A context limiting the BLAS to ``threads`` (threadpoolctl), or a no-op for None."""
    if threads is None:
        return contextlib.nullcontext()
    return thread_limit(check_int("blas threads", threads), user_api="blas")


def interleaved_times(functions: dict, repeats: int = 5, warmup: int = 1, clock: str = "wall",
                      synchronize: Callable[[], None] | None = None,
                      splits: dict | None = None, min_sample_s: float = 0.0) -> dict:
    """Time each function ``repeats`` times, interleaved, the order rotating every repeat.

    Parameters
    ----------
    functions
        ``name -> callable()``.
    repeats
        Timed calls of each, >= 1 (a reported rate uses >= 5).
    warmup
        Untimed calls of each first, >= 0.
    clock
        ``"wall"`` or ``"cpu"`` (:data:`CLOCKS`).
    synchronize
        Called before and after each timed call (a GPU's stream), or None.
    splits
        ``name -> callable() -> dict``: after each timed call of ``name``, the parts it
        measured itself (seconds by part), collected like the totals.
    min_sample_s
        A function faster than this (timed once after the warm-up) is called that many
        times in a row per sample, the sample being their mean: a clock's resolution
        and its own overhead stay small against what is timed (not for names with
        ``splits``).

    Returns
    -------
    dict
        ``name -> {"median_s", "q25_s", "q75_s", "samples_s", "repeats"}`` and, for a
        name with splits, ``"parts": {part: {"median_s", "q25_s", "q75_s"}}``.
    """
    repeats = check_int("repeats", repeats)
    warmup = check_int("warmup", warmup, low=0)
    check_choice("clock", clock, CLOCKS)
    now, sync = CLOCKS[clock], synchronize or (lambda: None)
    splits = splits or {}
    for function in functions.values():
        for _ in range(warmup):
            function()
    if splits:
        for name in splits:
            splits[name]()  # discard what the warm-up left
    calls = dict.fromkeys(functions, 1)
    if min_sample_s > 0:
        for name, function in functions.items():
            if name in splits:
                continue
            sync()
            start = now()
            function()
            sync()
            once = max(now() - start, 1e-9)
            calls[name] = max(1, min(10_000, int(min_sample_s / once) + 1))
    samples = {name: [] for name in functions}
    parts = {name: {} for name in splits}
    order = list(functions)
    for repeat in range(repeats):
        shift = repeat % len(order)
        for name in order[shift:] + order[:shift]:
            function, count = functions[name], calls[name]
            sync()
            start = now()
            for _ in range(count):
                function()
            sync()
            samples[name].append((now() - start) / count)
            if name in splits:
                for part, seconds in splits[name]().items():
                    parts[name].setdefault(part, []).append(seconds)
    result = {name: {**summary(values), "calls_per_sample": calls[name]}
              for name, values in samples.items()}
    for name, measured in parts.items():
        result[name]["parts"] = {part: summary(values) for part, values in measured.items()}
    return result


def summary(values) -> dict:
    """Median, quartiles, the samples and their count (seconds)."""
    values = [float(v) for v in values]
    q25, q75 = (float(q) for q in np.percentile(values, [25, 75]))
    return {"median_s": statistics.median(values), "q25_s": q25, "q75_s": q75,
            "samples_s": values, "repeats": len(values)}


def spread_text(entry: dict) -> str:
    """``"+-x %"``: half the interquartile range over the median."""
    median = entry["median_s"]
    if not median:
        return "-"
    return f"±{50.0 * (entry['q75_s'] - entry['q25_s']) / median:.0f} %"
