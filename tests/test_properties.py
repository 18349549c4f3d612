"""Property-based checks of the public entry points: any input either works or is refused
with one of the documented errors (ValueError, including ConfigError, or TypeError) whose
message names the argument. Nothing else may escape: no NumPy error, no silent NaN."""

import math

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from devices import OPU, job_cost, open_device  # noqa: E402
from photon.support.arguments import check_int, check_number  # noqa: E402

#: Values a hostile but realistic user passes where a number is expected.
ANYTHING = st.one_of(
    st.integers(-10, 10), st.integers(-2 ** 40, 2 ** 40), st.booleans(), st.none(),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=4),
    st.sampled_from([np.int64(3), np.float32(2.5), np.bool_(True), [1], (2,)]))

QUICK = settings(max_examples=60, deadline=None, database=None,
                 suppress_health_check=[HealthCheck.too_slow])


def _refused_naming(error: Exception, *names: str) -> None:
    assert isinstance(error, (ValueError, TypeError)), repr(error)
    assert any(name in str(error) for name in names), str(error)


@QUICK
@given(value=ANYTHING, low=st.integers(-3, 3))
def test_check_int_returns_an_int_in_range_or_names_the_argument(value, low):
    try:
        result = check_int("n_probe", value, low=low)
    except ValueError as error:
        assert str(error).startswith("n_probe = ")
    else:
        assert type(result) is int and result >= low and result == value


@QUICK
@given(value=ANYTHING)
def test_check_number_returns_a_finite_float_or_names_the_argument(value):
    try:
        result = check_number("power_w", value, low=0.0, low_open=True, unit="W")
    except ValueError as error:
        assert str(error).startswith("power_w = ") and "(W)" in str(error)
    else:
        assert type(result) is float and math.isfinite(result) and result > 0


@QUICK
@given(n_vectors=ANYTHING, frame_time_s=ANYTHING, power_w=ANYTHING, planes=ANYTHING,
       mode=st.sampled_from(["intensity", "linear", "LINEAR", ""]))
def test_job_cost_is_finite_or_refused(n_vectors, frame_time_s, power_w, planes, mode):
    try:
        cost = job_cost(n_vectors, mode=mode, frame_time_s=frame_time_s,
                        electrical_power_w=power_w, planes_per_vector=planes)
    except Exception as error:  # noqa: BLE001  (the property: only documented errors)
        _refused_naming(error, "n_vectors", "mode", "frame_time_s", "electrical_power_w",
                        "planes_per_vector")
    else:
        assert cost.frames >= 0 and math.isfinite(cost.seconds) and math.isfinite(cost.joules)


@QUICK
@given(n_in=ANYTHING, n_out=ANYTHING, name=st.sampled_from(["ideal", "lab-bench"]))
def test_open_device_opens_or_names_the_size(n_in, n_out, name):
    try:
        device = open_device(name, n_in=n_in, n_out=n_out)
    except Exception as error:  # noqa: BLE001
        _refused_naming(error, "n_in", "n_out")
    else:
        with device:
            assert device.n_in == n_in and device.n_out == n_out


@QUICK
@given(batch_size=ANYTHING, probe_frames=ANYTHING, seed=ANYTHING, n_features=ANYTHING)
def test_the_operator_fits_or_names_its_argument(batch_size, probe_frames, seed, n_features):
    device = open_device("ideal", n_in=12, n_out=8)
    try:
        opu = OPU(device, batch_size=batch_size, probe_frames=probe_frames, seed=seed)
        opu.fit(n_features=n_features)
    except Exception as error:  # noqa: BLE001
        _refused_naming(error, "batch_size", "probe_frames", "seed", "n_features")
    else:
        y = opu.linear_transform(np.ones((2, opu.n_features_in_)))
        assert np.isfinite(y).all()


@settings(max_examples=25, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(lr=ANYTHING, dropout=ANYTHING, epochs=ANYTHING, seed=ANYTHING)
def test_a_training_run_trains_or_names_its_argument(lr, dropout, epochs, seed):
    from dfa_bridge import run_experiment

    if isinstance(epochs, (int, np.integer)) and not isinstance(epochs, bool) and epochs > 2:
        epochs = 2  # keep each example short; the property is about the refusal
    try:
        result, _ = run_experiment("mlp", "digits", "dfa", epochs=epochs, seed=seed, lr=lr,
                                   dropout=dropout, max_train=40, hidden=(8,), progress=False)
    except Exception as error:  # noqa: BLE001
        _refused_naming(error, "lr", "dropout", "epochs", "seed")
    else:
        assert 0.0 <= result["test_accuracy"] <= 1.0
