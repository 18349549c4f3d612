"""The scikit-learn front: check_estimator, pickling by recipe, Pipeline and GridSearchCV."""

import pickle
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.linear_model import RidgeClassifier
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import check_estimator

from devices import OPU
from devices.estimators import (EXPECTED_FAILED_CHECKS, OPULinearProjection, OPURandomFeatures,
                                device_draws_fresh_noise)
from photon import dump_config, resolve_config

ESTIMATORS = [OPURandomFeatures(n_components=16, n_levels=2),
              OPULinearProjection(n_components=16, n_bits=4),
              OPURandomFeatures(n_components=16, n_levels=2, device="lab-bench"),
              OPULinearProjection(n_components=16, n_bits=4, device="lab-bench")]
# scikit-learn does not ask a non-deterministic estimator to give equal transforms of
# equal data: it skips these checks itself for the noisy device.
SKIPPED_WHEN_NON_DETERMINISTIC = {"check_pipeline_consistency", "check_transformer_general",
                                  "check_transformer_data_not_an_array"}


@pytest.mark.parametrize("estimator", ESTIMATORS,
                         ids=lambda e: f"{type(e).__name__}-{e.device}")
def test_check_estimator_passes(estimator):
    # check_array_api_input is skipped by scikit-learn itself unless SCIPY_ARRAY_API=1
    # (the estimators take NumPy only); every other check runs and passes.
    noisy = estimator.device == "lab-bench"
    assert estimator.__sklearn_tags__().non_deterministic is noisy
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # lab-bench's saturation notes
        results = check_estimator(estimator, expected_failed_checks=EXPECTED_FAILED_CHECKS,
                                  on_fail=None, on_skip=None)
    failed = {r["check_name"]: str(r["exception"]) for r in results if r["status"] == "failed"}
    skipped = {r["check_name"] for r in results if r["status"] == "skipped"}
    assert not failed
    assert skipped <= {"check_array_api_input"} | (SKIPPED_WHEN_NON_DETERMINISTIC if noisy
                                                   else set())


def test_which_devices_draw_fresh_noise():
    assert not device_draws_fresh_noise("ideal")
    assert device_draws_fresh_noise("lab-bench")
    assert device_draws_fresh_noise("datacenter-opu")
    quiet = resolve_config("lab-bench").replace(
        laser__rin_rms=0.0, laser__drift_rms=0.0, camera__shot_noise=False,
        camera__read_noise_e=0.0, camera__dark_current_e_per_s=0.0, medium__drift_time_s=None)
    assert not device_draws_fresh_noise(quiet)
    assert device_draws_fresh_noise(quiet, {"camera__read_noise_e": 2.0})
    assert device_draws_fresh_noise("no-such.yaml")  # unresolvable: the conservative answer
    quiet_est = OPURandomFeatures(8, device=quiet).fit(np.eye(4))
    np.testing.assert_array_equal(quiet_est.transform(np.eye(4)), quiet_est.transform(np.eye(4)))


def test_binary_input_stays_binary_by_default():
    rng = np.random.default_rng(0)
    X = (rng.random((200, 30)) < 0.5).astype(np.float64)
    est = OPURandomFeatures(32).fit(X)
    assert est.encoder_ == "binary" and est.thresholds_ is None
    np.testing.assert_array_equal(est.encode(X), X)  # half the bits on stay half on
    real = OPURandomFeatures(32).fit(X + 0.1 * rng.random(X.shape))
    assert real.encoder_ == "quantile"
    with pytest.raises(ValueError, match="expected 0 or 1, as in the binary data"):
        est.transform(X + 0.5)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X, y


@pytest.mark.parametrize("make", [lambda: OPURandomFeatures(64, n_levels=2, random_state=3),
                                  lambda: OPULinearProjection(64, n_bits=6, random_state=3),
                                  lambda: OPURandomFeatures(64, device="lab-bench")],
                         ids=["random-features", "linear", "noisy-lab-bench"])
def test_pickle_gives_the_first_transform_after_fit(make, digits):
    X = digits[0][:40]
    fitted = make().fit(X)
    first = fitted.transform(X)
    blob = pickle.dumps(fitted)
    assert len(blob) < 4096  # the recipe, not the device's arrays
    restored = pickle.loads(blob)
    np.testing.assert_array_equal(restored.transform(X), first)
    assert restored.get_params() == fitted.get_params()
    unfitted = pickle.loads(pickle.dumps(make()))
    assert not hasattr(unfitted, "opu_")


def test_a_pickle_carries_the_resolved_device_not_the_yaml_path(tmp_path, digits):
    X = digits[0][:30]
    path = tmp_path / "bench.yaml"
    dump_config(resolve_config("ideal"), path)
    fitted = OPULinearProjection(32, n_bits=6, device=path).fit(X)
    first = fitted.transform(X)
    blob = pickle.dumps(fitted)
    # The file changes after pickling: more DMD leakage, a reference field.
    dump_config(resolve_config("ideal").replace(dmd__contrast=20.0, dmd__held_on_mirrors=64),
                path)
    edited = OPULinearProjection(32, n_bits=6, device=path).fit(X).transform(X)
    assert np.abs(edited - first).max() > 0.05 * np.abs(first).max()  # the edit matters
    restored = pickle.loads(blob)
    np.testing.assert_array_equal(restored.transform(X), first)
    assert restored.device_config_.dmd.contrast is None


def test_a_pickled_operator_carries_its_device_not_the_yaml_path(tmp_path):
    path = tmp_path / "bench.yaml"
    dump_config(resolve_config("ideal").replace(n_in=16, n_out=24), path)
    x = (np.random.default_rng(1).random((6, 12)) < 0.5).astype(np.uint8)
    operator = OPU(path).fit(x)
    first, linear = operator.transform(x), operator.linear_transform(x)
    blob = pickle.dumps(operator)
    dump_config(resolve_config("ideal").replace(n_in=16, n_out=24, dmd__contrast=20.0,
                                                dmd__held_on_mirrors=64), path)
    restored = pickle.loads(blob)
    np.testing.assert_array_equal(restored.transform(x), first)
    np.testing.assert_array_equal(restored.linear_transform(x), linear)
    np.testing.assert_array_equal(restored.fit(x).transform(x), first)  # no file re-read
    assert not np.allclose(OPU(path).fit(x).transform(x), first)  # the edit matters


def test_an_unpickled_estimator_that_would_measure_differently_is_refused(monkeypatch, digits):
    X = digits[0][:20]
    blob = pickle.dumps(OPURandomFeatures(16, device="ideal").fit(X))
    from devices.ideal import IdealDevice
    acquire = IdealDevice._acquire
    # An injected fault: the simulator's physics changed since the pickle was written.
    monkeypatch.setattr(IdealDevice, "_acquire", lambda self, f: 1.5 * acquire(self, f))
    with pytest.raises(ValueError, match="_intensity_unit .*fit it again"):
        pickle.loads(blob)
    monkeypatch.undo()
    assert pickle.loads(blob).transform(X).shape == (20, 16)


def test_a_noisy_device_draws_new_noise_on_each_transform(digits):
    X = digits[0][:10]
    fitted = OPURandomFeatures(32, device="lab-bench").fit(X)
    assert not np.array_equal(fitted.transform(X), fitted.transform(X))


def test_linear_projection_is_the_effective_matrix_scaled(digits):
    X = digits[0][:20]
    for scale, factor in (("unit", 1.0), ("norm", 1 / 8.0), ("variance", 1 / 8.0)):
        est = OPULinearProjection(64, scale=scale, n_bits=8).fit(X)
        M = np.asarray(est.opu_.effective_matrix(), np.float64)
        expected = X @ M.T * factor
        err = np.abs(est.transform(X) - expected).max()
        assert err <= 2e-3 * np.abs(expected).max(), scale
    assert est.transform(np.zeros((2, 64))).tolist() == np.zeros((2, 64)).tolist()


def test_random_features_are_intensities_of_the_threshold_expansion(digits):
    X = digits[0][:30]
    est = OPURandomFeatures(24, n_levels=3, encoder="linspace").fit(X)
    frames = est.encode(X)
    assert frames.shape == (30, 64 * 3) and set(np.unique(frames)) <= {0, 1}
    R = est.opu_.device_.transmission_matrix()
    expected = np.abs(frames @ R.T) ** 2
    out = est.transform(X)
    # rescale="standard" divides by the measured all-on level: one global factor
    factor = (out * expected).sum() / (expected ** 2).sum()
    assert 0.5 < factor < 2
    np.testing.assert_allclose(out, factor * expected, rtol=1e-3, atol=1e-4)


def test_pipeline_and_grid_search(digits):
    X, y = digits
    pipe = make_pipeline(OPURandomFeatures(200), RidgeClassifier())
    search = GridSearchCV(pipe, {"opurandomfeatures__n_levels": [1, 2]}, cv=2)
    search.fit(X[:300], y[:300])
    assert search.best_params_["opurandomfeatures__n_levels"] in (1, 2)
    assert search.score(X[1000:1300], y[1000:1300]) > 0.7
    lin = make_pipeline(OPULinearProjection(32, n_bits=4), RidgeClassifier()).fit(X[:300], y[:300])
    assert lin.score(X[1000:1300], y[1000:1300]) > 0.7
    assert clone(pipe).get_params()["opurandomfeatures__n_components"] == 200


@pytest.mark.parametrize("params, message", [
    (dict(n_components=0), "n_components = 0"),
    (dict(device="nowhere"), "device = 'nowhere'"),
    (dict(device_options={"n_in": 3}), "device_options['n_in']"),
    (dict(encoder="median"), "encoder = 'median'"),
    (dict(encoder="binary", n_levels=2), "n_levels = 2"),
    (dict(random_state=-1), "random_state = -1"),
])
def test_bad_parameters_are_refused_at_fit(params, message):
    est = OPURandomFeatures(**params)  # construction stores, as scikit-learn requires
    with pytest.raises((ValueError, TypeError), match=message.replace("[", r"\[")):
        est.fit(np.ones((3, 4)))


def test_binary_encoder_refuses_real_values():
    with pytest.raises(ValueError, match="expected 0 or 1"):
        OPURandomFeatures(encoder="binary").fit(np.array([[0.0, 0.5]]))


def test_the_operator_itself_is_unchanged():
    # The front wraps devices.OPU; the operator is still usable on its own.
    x = (np.random.default_rng(0).random((3, 8)) < 0.5).astype(np.uint8)
    assert OPU("ideal", device_options=dict(n_in=8, n_out=4)).fit(x).transform(x).shape == (3, 4)
