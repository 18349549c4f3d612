"""One sweep run, from its resolved settings alone: the only sweep code a run's numbers depend on.

:func:`run_job` rebuilds the device from the stored configuration (never from a preset
or a file that may have changed), checks the data set against the fingerprint in the
key, trains with one BLAS thread, and measures the feedback in training and on a fixed
error set. The code version in every key (:func:`~studies.sweep.spec.code_version`)
hashes this module with the library packages it calls.
"""

from __future__ import annotations

import functools
import json
import warnings

import numpy as np

from photon.config import config_from_dict
from photon.support import jsonio
from photon.support.threads import one_blas_thread

from devices import VirtualDevice
from dfa_bridge.data import data_fingerprint
from dfa_bridge.training.experiment import run_experiment
from dfa_bridge.training.families import family

from ..noise_budget import classification_errors, feedback_fidelity, language_errors
from .spec import StudyTask, settings_key
from .store import STORE_NAME

__all__ = ["run_job"]

_CURVE_DIGITS = 4


@functools.lru_cache(maxsize=8)
def _fidelity_errors(kind: str, data: str, n_errors: int, seed: int, rows_per_fit: int):
    """The error set of a fidelity measurement (a pure function: cached per process)."""
    if kind == "language":
        return language_errors(n_errors, seed=seed)
    return classification_errors(data, n_errors, seed=seed, batch_size=rows_per_fit)


def _check_data(arguments: dict, settings: dict):
    """The data the run trains on, refused if its content is not the one keyed."""
    task = settings["task"]
    study = StudyTask(task["model"], arguments["data"], arguments.get("data_path"),
                      data_seed=task["data_seed"])
    data = study.load()
    if data_fingerprint(data) != task["data"]["fingerprint"]:
        raise ValueError(f"data = {task['data']['name']!r}: its content changed since the "
                         "run was keyed (fingerprint differs): expected the same data set; "
                         "start the sweep again")
    return data


def run_job(payload: dict) -> dict:
    """Train one run and measure its feedback; returns the run's record (no ``written``).

    A pure function of ``payload["settings"]`` (the arguments only say where the data
    are). The record holds ``store``, ``format``, ``key``, ``settings``, ``label`` and
    ``result``: the metric, ``alignment_deg``, ``seconds``, ``diverged_at_step``,
    ``frames`` and ``device_seconds``, ``feedback`` (the fidelity in training,
    :mod:`dfa_bridge.training.feedback_monitor`), ``fidelity`` (SNR on a fixed error
    set, :func:`studies.noise_budget.feedback_fidelity`; None for a user's data) and
    ``curve`` (the metric at every evaluation).
    """
    settings, arguments = payload["settings"], dict(payload["arguments"])
    if settings_key(settings) != payload["key"]:
        raise ValueError(f"key = {payload['key'][:12]}...: expected the key of its settings")
    task = settings["task"]
    metric = family(task["model"]).metric
    with one_blas_thread(), np.errstate(all="ignore"), warnings.catch_warnings():
        # Settings at the end of an axis are meant to break the device (every output
        # weak, updates undefined): their warnings are the expected outcome, not news.
        warnings.simplefilter("ignore", RuntimeWarning)
        data = _check_data(arguments, settings)
        hyper = {k: tuple(v) if isinstance(v, list) else v for k, v in task["hyper"].items()}
        options = {"encoder": None, "n_bits": None}
        device = None
        if settings["device"] is not None:
            device = VirtualDevice(config_from_dict(settings["device"])).open()
            options = {"encoder": settings["encoder"]["name"],
                       "n_bits": settings["encoder"]["n_bits"]}
        if task["max_train"] is not None:
            options["max_train"] = task["max_train"]
        result, _ = run_experiment(task["model"], data, settings["method"],
                                   device if device is not None else settings["feedback"],
                                   seed=settings["seed"], data_seed=task["data_seed"],
                                   progress=False, monitor=True, **options,
                                   **task["options"], **hyper)
        source = result["feedback"] or {}
        fidelity = None
        if settings["fidelity"] is not None:
            spec = settings["fidelity"]
            errors = _fidelity_errors(spec["errors"], task["data"]["name"], spec["n_errors"],
                                      settings["seed"] if spec["errors"] == "language"
                                      else task["data_seed"], spec["rows_per_fit"])
            errors = errors.with_encoder(settings["encoder"]["name"],
                                         settings["encoder"]["n_bits"] or 4)
            config = config_from_dict(settings["device"])
            fidelity = feedback_fidelity(config, errors, n_out=config.n_out,
                                         macropixel_mirrors=config.dmd.macropixel_mirrors,
                                         elapsed_s=(source.get("device_seconds") or 0.0) / 2.0)
    curve = result["curves"].get(metric) or []
    record = {"store": STORE_NAME, "format": settings["format"], "key": payload["key"],
              "settings": settings, "label": payload["label"],
              "result": {metric: result[metric],
                         "alignment_deg": {"update_vs_gradient":
                                           result["alignment_deg"]["update_vs_gradient"]},
                         "seconds": result["seconds"],
                         "diverged_at_step": result["diverged_at_step"],
                         "frames": source.get("frames_acquired"),
                         "device_seconds": source.get("device_seconds"),
                         "feedback": result.get("feedback_fidelity"), "fidelity": fidelity,
                         "curve": [None if v is None else round(float(v), _CURVE_DIGITS)
                                   for v in curve]}}
    return json.loads(jsonio.dumps(record, indent=None))


