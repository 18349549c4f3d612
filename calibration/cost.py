"""What a calibration costs in device time, next to how long the medium holds still.

A calibration shows ``calibration_frames(n_in)`` frames (:func:`min_frames` for the TM,
plus the camera estimate, the exposure pilot and the scoring frames), each lasting the
device's frame time at the outputs it reads. The medium's TM decorrelates over
``drift_time_s`` (docs/design.md section 2); a calibration is usable when it takes at most
``BUDGET_SHARE`` of that time (the TM then moves by ``1 - sqrt(1 - 0.1) = 5 %`` of its
size from start to end, less about its middle). :func:`calibration_cost` sets the
device time of calibrating a device whole next to that budget, finds the largest input
count that fits, and prices the ways to fit it:

* ``fewer probes``: ``probes_per_input = FEWER_PROBES = 1.5`` (about 11 frames per
  input), the fewest at which every preset keeps a 5th-percentile row correlation near
  0.99 (at 1, the least the estimator accepts, a few rows of each device fail; the
  calibration page measures both);
* ``outputs at the DMD's rate``: reading only the region of interest that keeps up with
  the DMD (the tallest one whose camera period is the DMD's), which shortens every frame;
* ``a job's inputs and outputs``: calibrating only the ``n_features`` inputs and the
  outputs a job uses (a sub-device: any block of the TM is calibrated the same way).

Numbers only; the page that shows them is written by :mod:`studies.calibration_quality`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from .exposure import PILOT_FRAMES, PILOT_TRIES
from .transmission import min_frames

__all__ = ["BUDGET_SHARE", "CalibrationPlan", "CalibrationCost", "calibration_frames",
           "largest_inputs", "calibration_cost", "config_calibration_cost",
           "device_calibration_cost"]

BUDGET_SHARE = 0.1             # a calibration may take this share of the drift time
CAMERA_FRAMES = 6 * 64         # the camera estimate: 64 repeats, at most six sets
SCORING_FRAMES = 64
DEFAULT_PROBES = 4.0
FEWER_PROBES = 1.5


def calibration_frames(n_in: int, probes_per_input: float = DEFAULT_PROBES) -> int:
    """Frames :func:`calibration.calibrate` shows for ``n_in`` inputs, at most: the TM's,
    the camera estimate's, the exposure pilot's and the scoring frames."""
    return (min_frames(n_in, probes_per_input) + CAMERA_FRAMES
            + PILOT_FRAMES * (PILOT_TRIES + 1) + SCORING_FRAMES)


def largest_inputs(budget_s: float, frame_time_s: float,
                   probes_per_input: float = DEFAULT_PROBES) -> int:
    """The largest ``n_in`` whose calibration fits in ``budget_s`` at ``frame_time_s``
    (0 when not even 4 inputs fit)."""
    if not budget_s > 0 or not frame_time_s > 0:
        return 0
    frames = budget_s / frame_time_s
    if calibration_frames(4, probes_per_input) > frames:
        return 0
    low, high = 4, 8
    while calibration_frames(high, probes_per_input) <= frames:
        low, high = high, high * 2
    while high - low > 1:
        mid = (low + high) // 2
        if calibration_frames(mid, probes_per_input) <= frames:
            low = mid
        else:
            high = mid
    return low


@dataclass(frozen=True)
class CalibrationPlan:
    """One way to calibrate: what is calibrated, with how many probes, and its cost.

    Attributes
    ----------
    label
        What the plan is (``"whole device"``, ``"fewer probes"``, ...).
    n_in, n_out
        Inputs calibrated and outputs read.
    probes_per_input
        The estimator's probe budget.
    frames
        Frames shown (:func:`calibration_frames`).
    frame_time_s
        Seconds per frame reading ``n_out`` outputs.
    device_s
        ``frames * frame_time_s``.
    budget_share
        ``device_s`` over the drift time (None for a static medium).
    largest_n_in
        The most inputs calibratable within the budget at this plan's outputs and probes
        (None for a static medium).
    """

    label: str
    n_in: int
    n_out: int
    probes_per_input: float
    frames: int
    frame_time_s: float
    device_s: float
    budget_share: float | None
    largest_n_in: int | None

    @property
    def fits(self) -> bool | None:
        """Whether the plan takes at most ``BUDGET_SHARE`` of the drift time (None: static)."""
        return None if self.budget_share is None else self.budget_share <= BUDGET_SHARE

    def as_dict(self) -> dict:
        """Plain data, ``fits`` included."""
        return {**asdict(self), "fits": self.fits}


@dataclass(frozen=True)
class CalibrationCost:
    """A device's calibration cost at its size, next to its drift (see the module).

    Attributes
    ----------
    name
        The device.
    drift_time_s
        The medium's decorrelation time (None: static).
    budget_s
        ``BUDGET_SHARE * drift_time_s`` (None: static).
    plans
        The whole device first, then the ways to fit the budget.
    """

    name: str
    drift_time_s: float | None
    budget_s: float | None
    plans: list = field(default_factory=list)

    @property
    def whole(self) -> CalibrationPlan:
        """The plan that calibrates every input and output."""
        return self.plans[0]

    def as_dict(self) -> dict:
        """Plain data."""
        return {"name": self.name, "drift_time_s": self.drift_time_s,
                "budget_share": BUDGET_SHARE, "budget_s": self.budget_s,
                "whole": self.whole.as_dict(),
                "ways_to_fit": [p.as_dict() for p in self.plans[1:]]}


def calibration_cost(name: str, n_in: int, n_out: int, frame_time_for, drift_time_s,
                     *, dmd_rate_outputs: int | None = None, job: tuple | None = None,
                     probes_per_input: float = DEFAULT_PROBES) -> CalibrationCost:
    """Price calibrating ``n_in x n_out`` against ``drift_time_s`` (see the module).

    Parameters
    ----------
    frame_time_for
        ``n_out -> seconds per frame`` (:meth:`devices.OPUDevice.frame_time_for`).
    dmd_rate_outputs
        The most outputs read at the DMD's pattern rate (None: no such plan).
    job
        ``(n_features, n_outputs)`` of a job: the plan calibrating only those.
    """
    budget_s = None if drift_time_s is None else BUDGET_SHARE * float(drift_time_s)

    def plan(label, inputs, outputs, probes):
        frames = calibration_frames(inputs, probes)
        frame_time = float(frame_time_for(outputs))
        device_s = frames * frame_time
        share = None if drift_time_s is None else device_s / float(drift_time_s)
        largest = None if budget_s is None else largest_inputs(budget_s, frame_time, probes)
        return CalibrationPlan(label, int(inputs), int(outputs), float(probes), frames,
                               frame_time, device_s, share, largest)

    plans = [plan("whole device", n_in, n_out, probes_per_input),
             plan("fewer probes", n_in, n_out, FEWER_PROBES)]
    if dmd_rate_outputs:
        outputs = min(n_out, int(dmd_rate_outputs))
        plans.append(plan("outputs at the DMD's rate", n_in, outputs, probes_per_input))
        plans.append(plan("outputs at the DMD's rate, fewer probes", n_in, outputs,
                          FEWER_PROBES))
    if job is not None:
        inputs, outputs = (int(v) for v in job)
        plans.append(plan("a job's inputs and outputs", inputs, min(outputs, n_out),
                          probes_per_input))
    return CalibrationCost(name, None if drift_time_s is None else float(drift_time_s),
                           budget_s, plans)


def config_calibration_cost(config, *, n_in: int | None = None, n_out: int | None = None,
                            job: tuple | None = None,
                            probes_per_input: float = DEFAULT_PROBES) -> CalibrationCost:
    """:func:`calibration_cost` of the device a :class:`photon.DeviceConfig` describes,
    at its own size or at ``n_in x n_out``, without building it."""
    from photon.camera import max_rows_for_frame_time  # noqa: PLC0415
    from photon.chain import device_frame_time_s  # noqa: PLC0415

    n_in = config.n_in if n_in is None else int(n_in)
    n_out = config.n_out if n_out is None else int(n_out)
    cam = config.camera
    rows = max_rows_for_frame_time(cam, 1.0 / config.dmd.frame_rate_hz)
    dmd_outputs = (rows // cam.binning) * (cam.sensor_cols // cam.binning)
    return calibration_cost(config.name, n_in, n_out,
                            lambda k: device_frame_time_s(config, k),
                            config.medium.drift_time_s, dmd_rate_outputs=dmd_outputs or None,
                            job=job, probes_per_input=probes_per_input)


def device_calibration_cost(device, *, job: tuple | None = None,
                            probes_per_input: float = DEFAULT_PROBES) -> CalibrationCost:
    """:func:`calibration_cost` of an open device, from its protocol (and, for a virtual
    device, its metadata's drift time and read-out)."""
    physics = device.metadata().get("physics", {}) if hasattr(device, "metadata") else {}
    drift = physics.get("tm_drift_time_s")
    readout = physics.get("readout") or {}
    dmd_outputs = readout.get("max_outputs_at_dmd_rate") or None
    drift = None if drift is None or not math.isfinite(float(drift)) else float(drift)
    return calibration_cost(device.name, device.n_in, device.n_out, device.frame_time_for,
                            drift, dmd_rate_outputs=dmd_outputs, job=job,
                            probes_per_input=probes_per_input)
