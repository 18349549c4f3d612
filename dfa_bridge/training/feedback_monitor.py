"""How faithful a device's feedback is while it trains: SNR against the exact ``B e``.

A :class:`FeedbackMonitor` wraps a :class:`~dfa_bridge.training.feedback.DeviceFeedback`
and, at every projection of a training run, compares what the device returned, ``B_hat
e``, with the exact ``B e`` of the device's own noise-free twin (the same optics, seeds
and transmission matrix with every noise source and the ADC off, measured once through
an operator made as the monitored one, :meth:`devices.OPU.effective_matrix`;
:meth:`devices.VirtualDevice.noise_free_twin`). Per step it records

``snr_db``           ``10 log10(sum |B e|^2 / sum |B_hat e - B e|^2)`` over the batch
``correlation``      Pearson correlation of ``B_hat e`` with ``B e`` over the batch
``encoding_snr_db``  the same SNR for the error encoding alone: ``e_q = decode(encode(e))``
                     projected exactly, ``B e_q`` against ``B e`` (how much of the loss
                     is the code, not the device)

The twin is a separate device: the monitored device shows exactly the frames it would
show unmonitored, so a monitored run trains to the same numbers. Costs one GEMM and one
encoding per step, and the twin's frames of one ``effective_matrix`` (a few per class). A device with no noise-free twin (a
hardware device) is not monitored (:func:`monitor_feedback` returns the source as is).
"""

from __future__ import annotations

import math

import numpy as np

from devices import OPU
from photon import array_module
from photon.support.arrays import to_numpy

from .feedback import DeviceFeedback
from .feedback_base import Feedback

__all__ = ["FeedbackMonitor", "monitor_feedback", "exact_matrix"]

_CURVE_POINTS = 50  # steps are averaged into at most this many points of the curve


def exact_matrix(source: DeviceFeedback) -> np.ndarray | None:
    """``B`` (S, C) of ``source``'s noise-free twin, on the rows ``source`` uses; None without a twin."""
    twin_of = getattr(source.device, "noise_free_twin", None)
    if twin_of is None:
        return None
    twin = twin_of()
    try:
        operator = OPU(twin, linear_method=source.opu.linear_method,
                       complement_mean=source.opu.complement_mean, seed=source.opu.seed,
                       progress=False)
        operator.fit(n_features=source.n_classes)
        measured = np.asarray(operator.effective_matrix(), np.float64)[source.rows]
    finally:
        twin.close()
    return measured * source.column_scale[:, None].astype(np.float64)


def _snr_db(signal: float, error: float) -> float | None:
    if not (math.isfinite(signal) and math.isfinite(error)) or signal <= 0.0:
        return None
    return math.inf if error == 0.0 else 10.0 * math.log10(signal / error)


class FeedbackMonitor(Feedback):
    """A feedback source that measures its fidelity at every projection (see the module).

    Parameters
    ----------
    source
        The device feedback to watch; projections pass through unchanged.
    reference
        The exact ``B`` (S, C), float64 (:func:`exact_matrix`).
    """

    def __init__(self, source: DeviceFeedback, reference: np.ndarray):
        super().__init__(source.widths, source.n_classes)
        reference = np.asarray(reference, np.float64)
        if reference.shape != (self.total_width, self.n_classes):
            raise ValueError(f"reference: shape {reference.shape}: expected "
                             f"({self.total_width}, {self.n_classes})")
        self.source = source
        self.reference = reference
        self.steps: list[dict] = []

    def project(self, error) -> list:
        parts = self.source.project(error)
        xp = array_module(error)
        projection = to_numpy(xp.concatenate(parts, axis=1)).astype(np.float64)
        self.steps.append(self._measure(error, projection))
        return parts

    def _project(self, error):
        return array_module(error).concatenate(self.source.project(error), axis=1)

    def _measure(self, error, projection: np.ndarray) -> dict:
        errors = to_numpy(error).astype(np.float64)
        exact = errors @ self.reference.T
        signal = float((exact ** 2).sum())
        record = {"rows": int(errors.shape[0]),
                  "snr_db": _snr_db(signal, float(((projection - exact) ** 2).sum())),
                  "correlation": None, "encoding_snr_db": None}
        if projection.std() > 0 and exact.std() > 0 and np.isfinite(projection).all():
            record["correlation"] = float(np.corrcoef(projection.ravel(), exact.ravel())[0, 1])
        encoder = self.source.opu.encoder
        if encoder is not None and encoder.is_fitted and signal > 0:
            planes = encoder.encode(error)
            coded = to_numpy(encoder.decode(planes.astype(np.float32))).astype(np.float64)
            record["encoding_snr_db"] = _snr_db(
                signal, float((((coded - errors) @ self.reference.T) ** 2).sum()))
        return record

    def matrix(self) -> np.ndarray:
        return self.source.matrix()

    @property
    def name(self) -> str:
        return self.source.name

    @property
    def device(self):
        """The watched source's device."""
        return self.source.device

    def close(self) -> None:
        self.source.close()

    def describe(self) -> dict:
        return self.source.describe()

    def summary(self) -> dict | None:
        """Median of each measure over the steps, and their curve (None before any step).

        Also ``snr_db_min`` (the lowest point of the curve), ``steps``, ``rows`` (error
        vectors projected) and ``exposure_us`` (the device's exposure at the end). ``curve`` holds at most 50 points ``[last step, mean snr_db, mean
        encoding_snr_db]``, each the mean over consecutive steps.
        """
        if not self.steps:
            return None

        def median(key, steps=self.steps):
            values = [s[key] for s in steps if s[key] is not None and math.isfinite(s[key])]
            return float(np.median(values)) if values else None

        chunks = np.array_split(np.arange(len(self.steps)), min(_CURVE_POINTS, len(self.steps)))
        curve = []
        for chunk in chunks:
            part = [self.steps[i] for i in chunk]
            curve.append([int(chunk[-1]) + 1, _mean(part, "snr_db"), _mean(part, "encoding_snr_db")])
        exposure = getattr(self.source.device, "exposure_us", None)
        return {"snr_db": median("snr_db"), "correlation": median("correlation"),
                "encoding_snr_db": median("encoding_snr_db"),
                "snr_db_min": _min_curve(curve), "steps": len(self.steps),
                "rows": int(sum(s["rows"] for s in self.steps)),
                "exposure_us": None if exposure is None else float(exposure), "curve": curve}


def _mean(steps, key):
    values = [s[key] for s in steps if s[key] is not None and math.isfinite(s[key])]
    return float(np.mean(values)) if values else None


def _min_curve(curve):
    values = [point[1] for point in curve if point[1] is not None]
    return min(values) if values else None


def monitor_feedback(source: Feedback | None) -> Feedback | None:
    """``source`` wrapped in a :class:`FeedbackMonitor` when it runs through a device with a twin.

    Any other source (None, ideal or structured feedback, a device without a noise-free
    twin) is returned as is.
    """
    if not isinstance(source, DeviceFeedback):
        return source
    reference = exact_matrix(source)
    return source if reference is None else FeedbackMonitor(source, reference)
