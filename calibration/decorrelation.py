"""How fast a device's transmission matrix decorrelates, from its frames alone.

A drifting medium changes the speckle each input frame makes: the same frames shown
twice, ``t`` seconds apart, give intensities that correlate less and less. For fully
developed speckle the intensity correlation is the squared field correlation,
``corr(I_0, I_t) = |rho(t)|^2``, and the medium's model (docs/design.md section 2:
``rho = sqrt(1 - t / tau)`` from a keyframe, a fresh device) makes it ``1 - t / tau``.
Camera noise lowers every correlation by the same factor: the correlation of an
immediate repeat (``t ~ 0``) measures it, and the ratio of the two is ``|rho(t)|^2``.

:func:`estimate_decorrelation_time` shows a set of half-on frames (all with the same
number of inputs on, so that every count has the same mean), repeats them at once,
then again after lags that double until the intensities have lost ``target`` of their
correlation, and fits ``1 - q(t) = t / tau`` through the origin. Between two showings
the device waits (:meth:`devices.VirtualDevice.wait`, a real device's wall clock) or,
where it cannot, keeps showing all-off frames: its clock runs with its frames.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from photon import to_numpy
from photon.support.arguments import check_int, check_number, check_seed

__all__ = ["DecorrelationEstimate", "estimate_decorrelation_time"]

IDLE_CHUNK = 4096   # all-off frames per acquisition while waiting
JACKKNIFE_GROUPS = 8
#: a fitted decay rate within this many jackknife standard errors of zero reads as static
#: (one-sided, about 0.1 % of static media misread as drifting under a normal rate error)
STATIC_Z = 3.0


@dataclass(frozen=True)
class DecorrelationEstimate:
    """The decorrelation time of a device's TM.

    Attributes
    ----------
    tau_s
        ``tau`` of ``|rho(t)|^2 = 1 - t / tau``, seconds (``inf`` when no decorrelation
        was seen within ``lags_s``).
    tau_se_s
        Its standard error (jackknife over groups of outputs), seconds.
    lags_s : tuple of float
        Device seconds between the first showing and each later one.
    correlation_ratios : tuple of float
        ``q(t)``: the intensity correlation at each lag over that of the immediate repeat.
    frames
        Device frames shown (waiting included).
    """

    tau_s: float
    tau_se_s: float
    lags_s: tuple
    correlation_ratios: tuple
    frames: int

    def field_correlation(self, t_s: float) -> float:
        """``rho(t) = sqrt(1 - t / tau)`` (0 from ``tau`` on)."""
        if not math.isfinite(self.tau_s):
            return 1.0
        a = t_s / self.tau_s
        return math.sqrt(1.0 - a) if a < 1.0 else 0.0

    def as_dict(self) -> dict:
        """Plain-data form."""
        return asdict(self)


def _column_moments(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-column sums ``(n, sum a, sum b, sum ab, sum a^2, sum b^2)`` (6, columns)."""
    return np.stack([np.full(a.shape[1], float(a.shape[0])), a.sum(axis=0), b.sum(axis=0),
                     (a * b).sum(axis=0), (a * a).sum(axis=0), (b * b).sum(axis=0)])


def _pooled_correlation(moments: np.ndarray, columns) -> float:
    """Pearson r over every value of the ``columns`` from their :func:`_column_moments`."""
    n, sa, sb, sab, saa, sbb = moments[:, columns].sum(axis=1)
    covariance = sab - sa * sb / n
    denominator = math.sqrt(max(saa - sa * sa / n, 0.0) * max(sbb - sb * sb / n, 0.0))
    return covariance / denominator if denominator > 0 else 0.0


def _ratios(first, repeat, later_sets, columns) -> np.ndarray:
    """``q`` at each lag: the correlation with the later showing over the repeat's."""
    base = _pooled_correlation(_column_moments(first, repeat), columns)
    return np.array([_pooled_correlation(_column_moments(first, later), columns) / base
                     if base > 0 else 1.0 for later in later_sets])


def _slope_tau(lags: np.ndarray, ratios: np.ndarray) -> float:
    """``tau`` of ``1 - q = t / tau`` by least squares through the origin."""
    loss = float(np.sum(lags * (1.0 - ratios)))
    return float(np.sum(lags ** 2)) / loss if loss > 0 else math.inf


def _wait(device, seconds: float, n_in: int) -> float:
    """Let ``seconds`` of device time pass: the device's ``wait`` where it has one (a
    virtual device's clock), else all-off frames (the clock runs with its frames).
    Returns the seconds waited without frames."""
    if seconds <= 0:
        return 0.0
    if callable(getattr(device, "wait", None)):
        device.wait(seconds)
        return float(seconds)
    frames = int(math.ceil(seconds / device.frame_time_s))
    idle = np.zeros((min(frames, IDLE_CHUNK), n_in), np.uint8)
    while frames > 0:
        count = min(frames, IDLE_CHUNK)
        device.acquire(idle[:count])
        frames -= count
    return 0.0


def estimate_decorrelation_time(device, *, n_frames: int = 128, first_lag_s: float | None = None,
                                longest_lag_s: float = 7200.0, target: float = 0.2,
                                seed: int = 0) -> DecorrelationEstimate:
    """Estimate the decorrelation time ``tau`` of ``device``'s medium from repeated frames.

    Parameters
    ----------
    device
        An open device, fresh (the model's law holds from a keyframe: from the device's
        start, docs/design.md section 2).
    n_frames
        Half-on frames in the repeated set (>= 8).
    first_lag_s
        First lag, device seconds (None: eight showings of the set).
    longest_lag_s
        The lags double up to this; a medium that keeps its correlation that long is
        reported static (``tau_s = inf``), as is one whose fitted decay rate ``1/tau`` lies
        within :data:`STATIC_Z` jackknife standard errors of zero (camera noise alone).
    target
        Stop once the intensities have lost this fraction of their correlation.
    seed
        Seed of the frames.

    Raises
    ------
    ValueError
        For bad arguments or a device with fewer than two inputs.
    """
    n_frames = check_int("n_frames", n_frames, low=8)
    longest = check_number("longest_lag_s", longest_lag_s, low=0.0, low_open=True, unit="s")
    target = check_number("target", target, low=0.0, high=1.0, low_open=True, high_open=True)
    seed = check_seed("seed", seed)
    n_in, frame_time = device.n_in, float(device.frame_time_s)
    if n_in < 2:
        raise ValueError(f"device = {device!r}: {n_in} input: expected at least 2 (half-on frames)")
    lag = (8 * n_frames * frame_time if first_lag_s is None
           else check_number("first_lag_s", first_lag_s, low=0.0, low_open=True, unit="s"))
    rng = np.random.default_rng(seed)
    frames = np.zeros((n_frames, n_in), np.uint8)
    for row in frames:
        row[rng.permutation(n_in)[: n_in // 2]] = 1
    start = device.frames_acquired

    def show():
        return np.asarray(to_numpy(device.acquire(frames)), np.float64)

    first, repeat = show(), show()
    lags, later_sets, waited = [], [], 0.0
    while True:
        elapsed = (device.frames_acquired - start) * frame_time + waited
        waited += _wait(device, max(lag - elapsed, 0.0), n_in)
        lags.append((device.frames_acquired - start) * frame_time + waited)
        later_sets.append(show())
        ratio = _ratios(first, repeat, later_sets[-1:], slice(None))[0]
        if 1.0 - ratio >= target or 2 * lag > longest:
            break
        lag *= 2
    lags_s = np.asarray(lags)
    base = _column_moments(first, repeat)
    later = [_column_moments(first, y) for y in later_sets]

    def ratios_of(columns):
        r0 = _pooled_correlation(base, columns)
        return np.array([_pooled_correlation(m, columns) / r0 if r0 > 0 else 1.0
                         for m in later])

    ratios = ratios_of(slice(None))
    tau = _slope_tau(lags_s, ratios)
    groups = np.array_split(np.arange(first.shape[1]), JACKKNIFE_GROUPS)
    if len(groups) > 1 and math.isfinite(tau):
        rates = []
        for group in groups:
            keep = np.setdiff1d(np.arange(first.shape[1]), group)
            rates.append(1.0 / _slope_tau(lags_s, ratios_of(keep)))
        rates = np.asarray(rates)
        k = len(rates)
        rate_se = math.sqrt((k - 1) / k * float(np.sum((rates - rates.mean()) ** 2)))
        tau_se = rate_se * tau ** 2
        if 1.0 / tau <= STATIC_Z * rate_se:  # a decay the noise alone could give: static
            tau, tau_se = math.inf, math.inf
    else:
        tau_se = math.inf
    return DecorrelationEstimate(tau, tau_se, tuple(float(t) for t in lags_s),
                                 tuple(float(q) for q in ratios), device.frames_acquired - start)
