"""Small statistics for study results: the mean over seeds and its 95 % interval.

A study's answer carries its uncertainty: every figure measured over several seeds is
reported as the mean, the sample standard deviation and the half-width of the Student-t
confidence interval of the mean, ``t(0.975, n - 1) s / sqrt(n)``.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

__all__ = ["mean_interval", "describe"]


def mean_interval(values, confidence: float = 0.95) -> tuple[float, float]:
    """Mean and the half-width of its Student-t ``confidence`` interval (NaN for one value).

    Parameters
    ----------
    values
        One figure per seed (finite numbers).
    confidence
        Coverage of the interval, in (0, 1).
    """
    values = np.asarray(values, dtype=float).ravel()
    if values.size == 0:
        raise ValueError("values = []: expected at least one value")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence = {confidence!r}: expected a number in (0, 1)")
    mean = float(values.mean())
    if values.size < 2:
        return mean, math.nan
    sem = float(values.std(ddof=1)) / math.sqrt(values.size)
    return mean, float(stats.t.ppf(0.5 + confidence / 2, values.size - 1)) * sem


def describe(values, confidence: float = 0.95) -> dict:
    """``{"mean", "std", "ci95", "n", "values"}`` of one figure over seeds.

    ``ci95`` is the half-width of the Student-t interval of the mean (None for one
    value); ``std`` the sample standard deviation (None for one value).
    """
    values = [float(v) for v in np.asarray(values, dtype=float).ravel()]
    mean, half = mean_interval(values, confidence)
    std = float(np.std(values, ddof=1)) if len(values) > 1 else None
    return {"mean": mean, "std": std, "ci95": None if math.isnan(half) else half,
            "n": len(values), "values": values}
