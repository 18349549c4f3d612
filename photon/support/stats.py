"""Small statistics for study results: intervals over seeds and paired decisions.

A study's answer carries its uncertainty. Every figure measured over several seeds is
reported as the mean, the sample standard deviation and the half-width of the Student-t
confidence interval of the mean, ``t(0.975, n - 1) s / sqrt(n)`` (:func:`describe`).

A comparison of two settings over the same seeds is a *decision* with stated error rates,
made on the paired differences ``d_i`` (the setting minus the reference at seed ``i``,
oriented so that a positive ``d`` is better) and a margin ``delta > 0``:

``equivalent``  two one-sided tests (TOST, Schuirmann 1987): ``H0: mu <= -delta`` and
                ``H0: mu >= delta`` both rejected at level ``alpha``; the chance of
                declaring equivalence when the true mean difference lies at or beyond the
                margin is at most ``alpha`` (:func:`paired_tost`).
``worse``       ``H0: mu >= -delta`` rejected at ``alpha``: the setting loses more than
                the margin (:func:`paired_margin_tests`).
``better``      ``H0: mu <= delta`` rejected at ``alpha``: it gains more than the margin.
``undecided``   none of these: the seeds cannot tell.

The three decisions exclude one another (an equivalence needs the mean within the
margin by more than its interval, a loss beyond it the opposite).

Sequential looks
----------------
Seeds are added to a comparison until it is decided (:func:`sequential_decision`). The
looks are made at fixed seed counts, ``n_1 = first`` and ``n_{k+1} = n_k + ceil(n_k /
2)`` (3, 5, 8, 12, 18, 27, ...: :func:`look_sizes`), and look ``k`` tests at level
``alpha_k = alpha / (k (k + 1))`` (:func:`look_alpha`), so that after any number of
looks ``sum alpha_k = alpha k / (k + 1) < alpha``: by the union bound each wrong
decision (equivalence when the truth is beyond the margin, a loss when it is within)
has probability below ``alpha`` however many looks are taken, with no assumption on the
correlation between looks. Neither the looks nor their levels depend on the seed cap,
so raising the cap never changes a decision already taken: it only lets an undecided
comparison go on.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy import stats

from .arguments import check_int, check_number

__all__ = ["mean_interval", "describe", "paired_tost", "paired_margin_tests", "look_sizes",
           "look_alpha", "alpha_spent", "sequential_decision", "DECISIONS"]

#: The outcomes of a paired comparison against a reference within a margin.
DECISIONS = ("equivalent", "worse", "better", "undecided")


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


def _differences(differences) -> np.ndarray:
    values = np.asarray(differences, dtype=float).ravel()
    if values.size < 2:
        raise ValueError(f"differences: {values.size} value(s): expected at least 2 paired "
                         "differences (one per seed)")
    if not np.isfinite(values).all():
        raise ValueError(f"differences = {values.tolist()!r}: expected finite numbers")
    return values


def _upper_p(statistic: float, df: int) -> float:
    """``P(T >= statistic)`` for Student's t with ``df`` degrees of freedom (inf allowed)."""
    if math.isinf(statistic):
        return 0.0 if statistic > 0 else 1.0
    return float(stats.t.sf(statistic, df))


def paired_margin_tests(differences, margin: float, alpha: float = 0.05) -> dict:
    """One-sided t tests of paired differences against ``-margin`` and ``+margin``.

    Parameters
    ----------
    differences
        ``d_i`` per seed, oriented so that positive is better (at least two, finite).
    margin
        ``delta > 0``, in the units of ``d``.
    alpha
        Level of each one-sided test, in (0, 0.5).

    Returns
    -------
    dict
        ``n``, ``mean``, ``std``, ``se``, ``df``; ``p_above_lower`` (``H0: mu <= -delta``),
        ``p_below_upper`` (``H0: mu >= delta``), ``p_worse`` (``H0: mu >= -delta``),
        ``p_better`` (``H0: mu <= delta``); ``interval``: the ``1 - 2 alpha`` interval of
        the mean (the one TOST reads); ``decision``: one of :data:`DECISIONS`. With no
        spread at all (every difference equal) the mean is known exactly and the tests
        read it directly.
    """
    values = _differences(differences)
    margin = check_number("margin", margin, low=0.0, low_open=True)
    alpha = check_number("alpha", alpha, low=0.0, high=0.5, low_open=True, high_open=True)
    n, mean = values.size, float(values.mean())
    std = float(values.std(ddof=1))
    se, df = std / math.sqrt(n), n - 1
    if se > 0.0:
        lower, upper = (mean + margin) / se, (mean - margin) / se
    else:  # no spread: the sign of mean -+ margin decides
        lower = math.copysign(math.inf, mean + margin) if mean + margin else 0.0
        upper = math.copysign(math.inf, mean - margin) if mean - margin else 0.0
    p_above_lower = _upper_p(lower, df)          # H0: mu <= -delta
    p_below_upper = _upper_p(-upper, df)         # H0: mu >= +delta
    p_worse = _upper_p(-lower, df)               # H0: mu >= -delta
    p_better = _upper_p(upper, df)               # H0: mu <= +delta
    half = float(stats.t.ppf(1.0 - alpha, df)) * se
    if max(p_above_lower, p_below_upper) <= alpha:
        decision = "equivalent"
    elif p_worse <= alpha:
        decision = "worse"
    elif p_better <= alpha:
        decision = "better"
    else:
        decision = "undecided"
    return {"n": n, "mean": mean, "std": std, "se": se, "df": df, "margin": margin,
            "alpha": alpha, "p_above_lower": p_above_lower, "p_below_upper": p_below_upper,
            "p_tost": max(p_above_lower, p_below_upper), "p_worse": p_worse,
            "p_better": p_better, "interval": [mean - half, mean + half],
            "decision": decision}


def paired_tost(differences, margin: float, alpha: float = 0.05) -> dict:
    """Paired two one-sided tests of equivalence within ``+-margin`` at level ``alpha``.

    The same dictionary as :func:`paired_margin_tests`, plus ``equivalent`` (bool):
    both ``H0: mu <= -margin`` and ``H0: mu >= margin`` rejected, i.e. the ``1 - 2
    alpha`` interval of the mean lies inside ``(-margin, margin)``.
    """
    result = paired_margin_tests(differences, margin, alpha)
    result["equivalent"] = result["decision"] == "equivalent"
    return result


def look_sizes(first: int = 3, cap: int | None = None) -> list[int]:
    """Seed counts at which a sequential comparison looks: ``first``, then x1.5 (rounded up).

    ``n_1 = first``, ``n_{k+1} = n_k + ceil(n_k / 2)``; with ``cap`` the sizes up to it
    (the cap itself is a look only when it is one of them), otherwise the first ten.
    """
    first = check_int("first", first, low=2)
    if cap is not None:
        cap = check_int("cap", cap, low=first)
    sizes = [first]
    while len(sizes) < 64:
        following = sizes[-1] + math.ceil(sizes[-1] / 2)
        if cap is None and len(sizes) == 10 or cap is not None and following > cap:
            break
        sizes.append(following)
    return sizes


def look_alpha(look: int, alpha: float = 0.05) -> float:
    """Level of look ``look`` (1, 2, ...): ``alpha / (look (look + 1))``."""
    look = check_int("look", look, low=1)
    alpha = check_number("alpha", alpha, low=0.0, high=0.5, low_open=True, high_open=True)
    return alpha / (look * (look + 1))


def alpha_spent(looks: int, alpha: float = 0.05) -> float:
    """Total level of the first ``looks`` looks: ``alpha looks / (looks + 1)`` (< ``alpha``)."""
    looks = check_int("looks", looks, low=0)
    return alpha * looks / (looks + 1)


def sequential_decision(differences: Sequence[float], margin: float, alpha: float = 0.05, *,
                        first: int = 3, cap: int = 18) -> dict:
    """Decide a paired comparison from seeds in order, looking at :func:`look_sizes`.

    Parameters
    ----------
    differences
        ``d_i`` for seeds ``0, 1, ...`` in order (positive: better); only the first
        ``n_k`` enter look ``k``. Fewer than the next look's size: the comparison is
        waiting for seeds.
    margin, alpha
        As for :func:`paired_margin_tests`; look ``k`` tests at :func:`look_alpha`.
    first, cap
        First look's seed count and the most seeds a comparison may take.

    Returns
    -------
    dict
        ``decision`` (one of :data:`DECISIONS`), ``looks`` (taken), ``n`` (seeds the
        decision used), ``alpha_look`` (the level of the deciding or last look),
        ``alpha_spent``, ``need`` (seed count of the next look when the comparison is
        not finished, else None: ``undecided`` with ``need`` None means the cap was
        reached), ``test`` (the last look's :func:`paired_margin_tests`) and ``sizes``.
    """
    values = np.asarray(differences, dtype=float).ravel()
    sizes = look_sizes(first, cap)
    result = {"decision": "undecided", "looks": 0, "n": 0, "alpha_look": None,
              "alpha_spent": 0.0, "need": sizes[0], "test": None, "sizes": sizes,
              "margin": float(margin), "alpha": float(alpha)}
    for look, size in enumerate(sizes, start=1):
        if values.size < size:
            result["need"] = size
            return result
        level = look_alpha(look, alpha)
        test = paired_margin_tests(values[:size], margin, level)
        result.update(looks=look, n=size, alpha_look=level, alpha_spent=alpha_spent(look, alpha),
                      test=test, decision=test["decision"], need=None)
        if test["decision"] != "undecided":
            return result
    return result
