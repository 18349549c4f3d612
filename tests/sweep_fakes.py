"""A stand-in for studies.sweep.run.run_job: accuracy from the settings alone, instantly.

Module level (importable by local worker processes and Dask workers). Seed index ``i``
shares a seed effect at every point (pairing); a point's effect is injected by label:
``adc_bits=1`` loses 40 points, ``encoding=ternary`` 4 points, everything else nothing.
"""

import json
import os
import pathlib
import time

import numpy as np

from studies.sweep.store import STORE_NAME

EFFECTS = {("adc_bits", 1): -0.40, ("encoding", "ternary"): -0.04, ("adc_bits", 2): -0.003}


def accuracy(settings: dict, label: dict) -> float:
    seed = settings["seed"]
    point = label["point"]
    common = 0.01 * np.random.default_rng([seed, 7]).standard_normal()
    own = 0.003 * np.random.default_rng([seed, len(json.dumps(point, sort_keys=True))]
                                        ).standard_normal()
    value = 0.80 + common
    if point.get("reference") == "shallow":
        return 0.48 + common
    if point.get("reference") == "bp":
        return 0.815 + common
    if "reference" in point:
        return value
    for name, setting in point.items():
        value += EFFECTS.get((name, setting), 0.0)
    return value + own


def fake_job(payload: dict) -> dict:
    settings, label = payload["settings"], payload["label"]
    calls = os.environ.get("SWEEP_FAKE_CALLS")
    if calls:  # one line per call: who ran what
        with open(calls, "a", encoding="utf-8") as handle:
            handle.write(payload["key"] + "\n")
    delay = float(os.environ.get("SWEEP_FAKE_DELAY", "0"))
    if delay:
        time.sleep(delay)
    device = settings["device"] is not None
    snr = 4.0 if label["point"].get("encoding") == "ternary" else 18.0
    return {"store": STORE_NAME, "format": settings["format"], "key": payload["key"],
            "settings": settings, "label": label,
            "result": {"test_accuracy": accuracy(settings, label),
                       "alignment_deg": {"update_vs_gradient": [60.0] if device else None},
                       "seconds": 0.0, "diverged_at_step": None,
                       "frames": 100 if device else None,
                       "device_seconds": 0.5 if device else None,
                       "feedback": {"snr_db": snr, "encoding_snr_db": snr + 0.5,
                                    "correlation": 0.9, "snr_db_min": snr - 1.0,
                                    "exposure_us": None, "rows": 10,
                                    "curve": [[1, snr + 8, snr + 9], [2, snr, snr + 0.5]]}
                       if device else None,
                       "fidelity": None, "curve": [0.5, 0.7, accuracy(settings, label)]}}


def read_calls(path) -> list[str]:
    path = pathlib.Path(path)
    return path.read_text().split() if path.exists() else []
