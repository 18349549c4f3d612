"""Feedback fidelity without training: the noise budget, source by source, against the physics."""

import json
import subprocess
import sys

import numpy as np
import pytest

from studies.noise_budget import (BUDGET_CHECK, SOURCES, budget_check,
                                             budget_markdown, classification_errors,
                                             clean_config, drift_correlation,
                                             feedback_fidelity, language_errors, noise_budget,
                                             source_overrides)
from photon import load_preset


@pytest.fixture(scope="module")
def mlp_errors():
    return classification_errors("digits", 512)


@pytest.fixture(scope="module")
def lab_bench_budget(mlp_errors):
    return noise_budget("lab-bench", mlp_errors, n_out=256)


def test_error_sets_are_softmax_minus_onehot(mlp_errors):
    errors = mlp_errors.errors
    assert errors.shape == (512, 10) and mlp_errors.encoder == "ternary"
    np.testing.assert_allclose(errors.sum(axis=1), 0.0, atol=1e-6)   # rows sum to zero
    assert np.all((errors >= -1) & (errors <= 1))
    assert np.all((errors < 0).sum(axis=1) <= 1)                      # only the true class
    lm = language_errors(256)
    assert 90 <= lm.n_classes <= 110 and lm.encoder == "bitplanes" and lm.n_bits == 4
    np.testing.assert_allclose(lm.errors.sum(axis=1), 0.0, atol=1e-5)
    assert np.all((lm.errors < 0).sum(axis=1) == 1)   # add-one smoothing: every p > 0


def test_clean_twin_switches_every_source_off_and_keeps_the_tm():
    config = load_preset("lab-bench")
    clean = clean_config(config, exposure_us=40.0)
    assert clean.laser.rin_rms == 0 and not clean.camera.shot_noise
    assert clean.camera.adc_bits is None and clean.dmd.contrast is None
    assert clean.polarizer.extinction_ratio is None and clean.medium.drift_time_s is None
    assert clean.seeds == config.seeds and clean.camera.exposure_us == 40.0
    switches = source_overrides(config)
    assert set(switches) == set(SOURCES)
    assert switches["tm_drift"] is None            # lab-bench's medium is static
    assert switches["read"] == {"camera__read_noise_e": config.camera.read_noise_e}
    ideal = source_overrides(load_preset("ideal"))
    assert all(v is None for v in ideal.values())


def test_lab_bench_budget_matches_the_physics_source_by_source(lab_bench_budget):
    """The issue's acceptance: measured / predicted in 0.8 .. 1.25, the sum within 20 %."""
    budget = lab_bench_budget
    verdict = budget_check(budget)
    for name, entry in budget["sources"].items():
        assert verdict["sources"][name], (name, entry)
        if entry["ratio"] is not None:
            assert BUDGET_CHECK["ratio_low"] <= entry["ratio"] <= BUDGET_CHECK["ratio_high"]
    on = {n for n, e in budget["sources"].items() if e["on"]}
    assert on == set(SOURCES) - {"tm_drift"}
    assert abs(budget["total"]["sum_over_total"] - 1.0) <= BUDGET_CHECK["sum_tolerance"]
    assert verdict["all"]
    # The frame-noise sources are predicted from the camera model alone: tighter than
    # the band (their measured variances have a few % statistical error at this size).
    for name in ("shot", "read", "adc", "rin", "dark"):
        assert abs(budget["sources"][name]["ratio"] - 1.0) < 0.1, name
    assert -10.0 < budget["snr_db"] < 30.0 and 0.0 < budget["correlation"] < 1.0
    signal = budget["signal_variance"]
    assert budget["snr_db"] == pytest.approx(10 * np.log10(signal / budget["total"]["measured"]))


def test_a_wrong_prediction_would_fail_the_check(lab_bench_budget):
    """The check can fail: a prediction off by a factor 1.5 falls outside the band."""
    broken = json.loads(json.dumps(lab_bench_budget))
    entry = broken["sources"]["read"]
    entry["predicted"] *= 1.5
    entry["ratio"] = entry["measured"] / entry["predicted"]
    assert not budget_check(broken)["sources"]["read"]
    broken["total"]["sum_over_total"] = 1.3
    assert not budget_check(broken)["sum"]


def test_sources_a_preset_switches_off_are_zero(mlp_errors):
    budget = noise_budget("ideal", mlp_errors, n_out=128)
    for name, entry in budget["sources"].items():
        if name == "encoding":
            assert entry["on"] and entry["measured"] > 0
        else:
            assert not entry["on"] and entry["measured"] == entry["predicted"] == 0.0
    # Only the encoding is left: it is the whole error.
    assert budget["total"]["measured"] == pytest.approx(
        budget["sources"]["encoding"]["measured"], rel=1e-4)


def test_tm_drift_since_the_fit_matches_the_decorrelation_model(mlp_errors):
    assert drift_correlation(0.0, 100.0) == 1.0
    assert drift_correlation(75.0, 100.0) == pytest.approx(0.5)
    assert drift_correlation(150.0, 100.0) == 0.0
    budget = noise_budget("lab-bench", mlp_errors, n_out=256, elapsed_s=60.0,
                          device_options={"medium__drift_time_s": 300.0},
                          sources=["tm_drift", "encoding"])
    drift = budget["sources"]["tm_drift"]
    assert drift["on"] and 0.8 <= drift["ratio"] <= 1.25
    slower = noise_budget("lab-bench", mlp_errors, n_out=256, elapsed_s=60.0,
                          device_options={"medium__drift_time_s": 3000.0},
                          sources=["tm_drift"])["sources"]["tm_drift"]
    # 1 - rho^2 = t / tau: ten times the decorrelation time, about a tenth of the error.
    assert 0.05 < slower["measured"] / drift["measured"] < 0.2


@pytest.mark.filterwarnings("ignore:weak_outputs_")  # a 1-bit camera: every output is weak
def test_fidelity_falls_as_the_device_gets_worse(mlp_errors):
    from studies.sweep import AXES

    one_bit, _ = AXES["adc_bits"].options(1, load_preset("lab-bench"))
    good = feedback_fidelity("lab-bench", mlp_errors.with_encoder("bitplanes", 4), n_out=128)
    bad = feedback_fidelity("lab-bench", mlp_errors.with_encoder("bitplanes", 4), n_out=128,
                            device_options=one_bit)
    assert good["snr_db"] > bad["snr_db"] + 3.0
    assert good["correlation"] > 0.8 > bad["correlation"]


def test_markdown_table_lists_every_source(lab_bench_budget):
    table = budget_markdown(lab_bench_budget)
    for label in SOURCES.values():
        assert label in table
    assert "sum of the sources" in table and "total (everything on)" in table


def test_script_prints_the_promised_json():
    done = subprocess.run([sys.executable, "scripts/noise_budget.py", "--device", "lab-bench",
                           "--n-errors", "256", "--n-out", "128", "--json"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert set(result) >= {"snr_db", "correlation", "sources", "total", "check"}
    for name, entry in result["sources"].items():
        assert set(entry) >= {"measured", "predicted"}, name
    assert result["sources"]["shot"]["measured"] > 0


@pytest.mark.slow
def test_script_default_run_passes_the_acceptance_check(tmp_path):
    """`scripts/noise_budget.py --device lab-bench --json`, the issue's command, in full."""
    done = subprocess.run([sys.executable, "scripts/noise_budget.py", "--device", "lab-bench",
                           "--json", "--out", str(tmp_path)], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["check"]["all"], result["check"]
    assert "# Noise budget" in (tmp_path / "budget_mlp.md").read_text()
    assert json.loads((tmp_path / "budget_mlp.json").read_text())["check"]["all"]


@pytest.mark.slow
def test_language_model_errors_budget_matches_the_physics():
    budget = noise_budget("lab-bench", language_errors(1024), n_out=512)
    assert budget_check(budget)["all"], {n: e["ratio"] for n, e in budget["sources"].items()}
