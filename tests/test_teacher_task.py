"""The generated `teacher` task: seeded, balanced, and a task where hidden layers must learn."""

import numpy as np
import pytest

from dfa_bridge.data import DATASET_NAMES, load_dataset
from dfa_bridge.data.generated import TEACHER_DEFAULTS, teacher_task


def test_teacher_is_a_registered_seeded_dataset():
    assert "teacher" in DATASET_NAMES
    data = load_dataset("teacher", seed=3)
    again = load_dataset("teacher", seed=3)
    np.testing.assert_array_equal(data.x_train, again.x_train)
    np.testing.assert_array_equal(data.y_test, again.y_test)
    other = load_dataset("teacher", seed=4)
    assert not np.array_equal(data.y_train, other.y_train)
    assert data.x_train.shape == (TEACHER_DEFAULTS["n_train"], TEACHER_DEFAULTS["n_features"])
    assert data.x_test.shape[0] == TEACHER_DEFAULTS["n_test"] and data.n_classes == 4
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int64


def test_teacher_classes_are_balanced_within_binomial_error():
    data = load_dataset("teacher", seed=0)
    n, c = data.y_train.size, data.n_classes
    share = np.bincount(data.y_train, minlength=c) / n
    # Offsets balance the classes to within 1 % on 20,000 draws; the sample adds its
    # binomial error: 5 standard errors of each share, plus that 1 %.
    tolerance = 5 * np.sqrt((1 / c) * (1 - 1 / c) / n) + 0.01
    assert np.all(np.abs(share - 1 / c) < tolerance), share


def test_teacher_refuses_bad_sizes_naming_the_argument():
    with pytest.raises(ValueError, match="n_hidden = 40: expected at most n_features = 32"):
        teacher_task(n_features=32, n_hidden=40)
    with pytest.raises(ValueError, match="n_classes = 1: expected an integer >= 2"):
        teacher_task(n_classes=1)


def test_a_linear_model_cannot_solve_it():
    """The label is a non-linear function of hidden directions: logistic regression on
    the raw input stays far below what the MLP reaches (about 90 %)."""
    from sklearn.linear_model import LogisticRegression

    data = load_dataset("teacher", seed=0)
    model = LogisticRegression(max_iter=500).fit(data.x_train, data.y_train)
    assert model.score(data.x_test, data.y_test) < 0.75


@pytest.mark.slow
def test_backprop_beats_the_shallow_baseline_by_ten_points_over_seeds():
    from dfa_bridge import run_experiment
    from photon.support.stats import describe

    gaps = []
    for seed in range(3):
        runs = {m: run_experiment("mlp", "teacher", m, epochs=10, seed=seed, progress=False,
                                  hidden=(256, 256, 256))[0]["test_accuracy"]
                for m in ("bp", "shallow")}
        gaps.append(100 * (runs["bp"] - runs["shallow"]))
    stats = describe(gaps)
    assert stats["mean"] - stats["ci95"] > 10.0, stats
