"""Paired equivalence and margin tests, and the sequential decision over seeds."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from photon.support.stats import (alpha_spent, look_alpha, look_sizes, paired_margin_tests,
                                  paired_tost, sequential_decision)


def test_tost_p_values_are_scipys_one_sided_t_tests():
    d = np.array([0.31, -0.42, 0.12, 0.55, -0.08, 0.27])
    result = paired_tost(d, margin=1.0, alpha=0.05)
    assert result["p_above_lower"] == pytest.approx(
        stats.ttest_1samp(d, -1.0, alternative="greater").pvalue, rel=1e-10)
    assert result["p_below_upper"] == pytest.approx(
        stats.ttest_1samp(d, 1.0, alternative="less").pvalue, rel=1e-10)
    assert result["p_worse"] == pytest.approx(
        stats.ttest_1samp(d, -1.0, alternative="less").pvalue, rel=1e-10)
    half = stats.t.ppf(0.95, d.size - 1) * d.std(ddof=1) / math.sqrt(d.size)
    assert result["interval"] == pytest.approx([d.mean() - half, d.mean() + half])
    # Equivalent exactly when the 90 % interval lies inside the margin.
    assert result["equivalent"] == (-1.0 < result["interval"][0] and result["interval"][1] < 1.0)
    assert result["equivalent"]


@pytest.mark.parametrize("values, decision", [
    ([-5.2, -4.1, -6.3, -5.0], "worse"),
    ([4.9, 5.3, 6.1, 5.5], "better"),
    ([0.1, -3.0, 2.5, -1.0], "undecided"),
    ([0.2, 0.2, 0.2], "equivalent"),          # no spread: the mean is known exactly
    ([-2.0, -2.0, -2.0], "worse"),
])
def test_margin_decisions(values, decision):
    assert paired_margin_tests(values, 1.0, 0.05)["decision"] == decision


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="differences: 1 value"):
        paired_tost([0.1], 1.0)
    with pytest.raises(ValueError, match="margin = 0.0: expected a finite number > 0"):
        paired_tost([0.1, 0.2], 0.0)
    with pytest.raises(ValueError, match="alpha = 0.7"):
        paired_tost([0.1, 0.2], 1.0, alpha=0.7)
    with pytest.raises(ValueError, match="differences = .*expected finite numbers"):
        paired_tost([0.1, math.nan], 1.0)


def test_looks_and_their_levels_do_not_depend_on_the_cap():
    assert look_sizes(3) == [3, 5, 8, 12, 18, 27, 41, 62, 93, 140]
    assert look_sizes(3, cap=20) == [3, 5, 8, 12, 18] == look_sizes(3, cap=18)
    assert [look_alpha(k) for k in (1, 2, 3)] == pytest.approx([0.025, 0.05 / 6, 0.05 / 12])
    # Alpha is spent across looks and never exceeds the level however many looks.
    assert sum(look_alpha(k) for k in range(1, 200)) == pytest.approx(alpha_spent(199))
    assert alpha_spent(199) < 0.05


def _simulate(mean, sd, n_sims, cap, seed):
    rng = np.random.default_rng(seed)
    data = rng.normal(mean, sd, size=(n_sims, cap))
    return [sequential_decision(row, 1.0, 0.05, first=3, cap=cap) for row in data]


def test_an_injected_loss_is_detected_and_decided_early():
    runs = _simulate(-4.0, 1.0, 300, 18, seed=1)
    rate = np.mean([r["decision"] == "worse" for r in runs])
    assert rate >= 0.97
    assert np.median([r["n"] for r in runs]) == 3  # decided at the first look


def test_at_the_margin_equivalence_is_declared_at_most_at_the_promised_rate():
    """True loss exactly one margin: 'equivalent' is the wrong decision (rate <= alpha)."""
    n_sims = 600
    runs = _simulate(-1.0, 0.8, n_sims, 18, seed=2)
    wrong = np.mean([r["decision"] == "equivalent" for r in runs])
    assert wrong <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / n_sims)
    # ... and so is a loss beyond the margin just within it.
    runs = _simulate(-1.0, 0.8, n_sims, 18, seed=3)
    assert np.mean([r["decision"] == "worse" for r in runs]) <= \
        0.05 + 3 * math.sqrt(0.05 * 0.95 / n_sims)


def test_no_effect_is_declared_equivalent_with_enough_seeds():
    """Null effect, spread 0.5 point: at 18 seeds the last look alone has power > 0.99."""
    runs = _simulate(0.0, 0.5, 300, 18, seed=4)
    rate = np.mean([r["decision"] == "equivalent" for r in runs])
    assert rate >= 0.95
    assert all(r["decision"] != "worse" for r in runs)


@settings(max_examples=60, deadline=None)
@given(mean=st.floats(-3.0, 3.0), sd=st.floats(0.05, 3.0), seed=st.integers(0, 2 ** 31),
       caps=st.tuples(st.integers(3, 30), st.integers(3, 60)))
def test_raising_the_seed_cap_never_flips_a_decision(mean, sd, seed, caps):
    low, high = sorted(caps)
    data = np.random.default_rng(seed).normal(mean, sd, size=high)
    small = sequential_decision(data, 1.0, 0.05, cap=low)
    large = sequential_decision(data, 1.0, 0.05, cap=high)
    if small["decision"] != "undecided":
        assert large["decision"] == small["decision"] and large["n"] == small["n"]
    assert large["n"] >= small["n"]


def test_a_comparison_waits_for_the_seeds_of_its_next_look():
    waiting = sequential_decision([0.1, 0.2], 1.0)
    assert waiting["decision"] == "undecided" and waiting["need"] == 3
    going_on = sequential_decision([0.1, -2.5, 1.9], 1.0)
    assert going_on["decision"] == "undecided" and going_on["need"] == 5
    capped = sequential_decision([0.1, -2.5, 1.9, 0.3, -1.5], 1.0, cap=5)
    assert capped["decision"] == "undecided" and capped["need"] is None and capped["n"] == 5
