"""The feedback monitor: fidelity in training without changing the run, and data set objects."""

import math

import numpy as np
import pytest

from dfa_bridge.data import load_dataset
from dfa_bridge.training.experiment import resolve_settings, run_experiment
from dfa_bridge.training.families import family
from dfa_bridge.training.feedback import make_feedback
from dfa_bridge.training.feedback_monitor import FeedbackMonitor, exact_matrix, monitor_feedback

QUICK = dict(epochs=1, max_train=160, seed=3, progress=False, hidden=(32, 16))


def test_a_monitored_run_trains_to_the_same_numbers_and_reports_its_fidelity():
    watched, _ = run_experiment("mlp", "digits", "dfa", "lab-bench", monitor=True, **QUICK)
    plain, _ = run_experiment("mlp", "digits", "dfa", "lab-bench", monitor=False, **QUICK)
    assert watched["test_accuracy"] == plain["test_accuracy"]
    assert watched["train_loss"] == plain["train_loss"]
    assert watched["feedback"]["frames_acquired"] == plain["feedback"]["frames_acquired"]
    fidelity = watched["feedback_fidelity"]
    assert plain["feedback_fidelity"] is None
    assert fidelity["steps"] == 5 and fidelity["rows"] == 160
    assert 5.0 < fidelity["snr_db"] < 60.0 and 0.5 < fidelity["correlation"] <= 1.0
    assert fidelity["encoding_snr_db"] >= fidelity["snr_db"] - 0.5  # the device only adds error
    ideal, _ = run_experiment("mlp", "digits", "dfa", "ideal", **QUICK)
    assert ideal["feedback_fidelity"] is None


@pytest.mark.filterwarnings("ignore:weak_outputs_")
def test_the_monitor_sees_a_coarse_code_and_a_broken_device():
    """Injected faults: a 1-bit code, then a device whose read noise drowns the signal."""
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((64, 10))
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    error = (probabilities - np.eye(10)[rng.integers(0, 10, 64)]).astype(np.float32) / 64

    def snr(**options):
        source = monitor_feedback(make_feedback("lab-bench", (48,), 10, **options))
        assert isinstance(source, FeedbackMonitor)
        source.project(error)
        source.close()
        return source.steps[-1]

    fine = snr(encoder="bitplanes", n_bits=6)
    coarse = snr(encoder="bitplanes", n_bits=1)
    noisy = snr(encoder="bitplanes", n_bits=6, camera__read_noise_e=3000.0)
    assert fine["snr_db"] > coarse["snr_db"] + 6.0
    assert coarse["encoding_snr_db"] < fine["encoding_snr_db"] - 6.0
    assert noisy["snr_db"] < fine["snr_db"] - 10.0
    assert abs(noisy["encoding_snr_db"] - fine["encoding_snr_db"]) < 1.0  # same code


def test_the_exact_matrix_is_the_noise_free_twins():
    source = make_feedback("lab-bench", (40,), 7)
    exact = exact_matrix(source)
    measured = source.matrix()
    source.close()
    assert exact.shape == (40, 7)
    assert np.corrcoef(exact.ravel(), measured.ravel())[0, 1] > 0.99
    # The same scale as the device's: the SNR is not biased by a gain.
    assert np.linalg.norm(measured) / np.linalg.norm(exact) == pytest.approx(1.0, abs=0.05)


def test_run_experiment_trains_on_a_data_set_object():
    digits = load_dataset("digits")
    by_name, _ = run_experiment("mlp", "digits", "bp", **QUICK)
    by_object, _ = run_experiment("mlp", digits, "bp", **QUICK)
    assert by_name["test_accuracy"] == by_object["test_accuracy"]
    with pytest.raises(ValueError, match="data_path = 'x': expected None with a data set object"):
        run_experiment("mlp", digits, "bp", data_path="x", **QUICK)
    with pytest.raises(TypeError, match="data = list: expected a data set name"):
        run_experiment("mlp", [1, 2], "bp", **QUICK)
    with pytest.raises(ValueError, match="expected a graph dataset for model 'gcn'"):
        run_experiment("gcn", digits, "bp", **QUICK)


def test_defaults_and_resolved_settings():
    assert family("gcn").encoder == ("bitplanes", 4)
    settings = resolve_settings("gcn", epochs=50, lr=0.02)
    assert settings["epochs"] == 50 and settings["lr"] == 0.02 and settings["hidden"] == [64]
    with pytest.raises(ValueError, match="steps = 3: expected None for model 'gcn'"):
        resolve_settings("gcn", steps=3)
    assert math.isfinite(settings["weight_decay"])
