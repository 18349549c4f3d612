"""Black-box transmission-matrix estimation from intensities (numerical interferometry).

The device is seen only through its protocol: binary frames in, counts out. Its field
is affine in the frame, ``E(x) = e0 + K x``, and the camera reads ``y = g |E|^2 + c``.
Absorbing ``sqrt(g)`` into ``K`` and ``e0``, the estimator recovers ``K`` (the TM, in
square-root-of-count units), the fixed field ``e0`` and the dark count ``c`` of every
output row, up to what intensities cannot tell apart: a phase and a conjugation per row.

Method (after Gupta et al., ICASSP 2020, "numerical interferometry")
------------------------------------------------------------------
The inputs are split in two halves. To calibrate the columns of half S, ``N_ANCHORS``
(six) anchor frames ``a_i`` on the other half and random probes ``x`` on S are shown as ``x``,
``x + a_i``, and the references ``0``, ``a_i``. The anchor identity (docs/design.md section 3)

    ``s_i(x) = (y(x + a_i) - y(x) - y(a_i) + y(0)) / 2 = Re(conj(K a_i) K x)``

phases each intensity against six reference directions. For each output row the
six linear functions ``s_i`` span a plane (the complex plane of ``K x`` seen through
an unknown real-linear map): one least-squares solve, shared by all rows, gives
``s = W x``; the top-2 principal directions of ``W`` per row give ``w = V x`` in R^2.
Then ``y(x) - y(0) = w^T Q w + q^T w`` (five unknowns per row, linear least squares)
fixes the metric: with ``P = Q^(1/2)`` the row is ``k = (P V)_0 + i (P V)_1`` and
``e0 = P^-1 q / 2``. Each half comes out in its own frame (a rotation or reflection per
row); mixed frames on both halves give the cross term ``2 Re(conj(K_A x_A) K_B x_B)``,
from which a least-squares 2 x 2 map, projected onto the orthogonal group (Procrustes),
brings the second half into the frame of the first.

All of it is a handful of GEMMs and batched 2 x 2 to 5 x 5 solves, on NumPy or CuPy
(the backend of ``like``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from photon import array_module, to_numpy

from .acquisition import acquire_all

__all__ = ["TMEstimate", "estimate_transmission_matrix", "min_frames"]

N_ANCHORS = 6
REFERENCE_REPEATS = 4
MAX_METRIC_CONDITION = 1e4


@dataclass
class TMEstimate:
    """An estimated transmission matrix and the fixed field and dark level per row.

    Predicted counts: ``y(x) = |e0 + K x|^2 + dark`` (NumPy arrays).

    Attributes
    ----------
    tm : (n_out, n_in) complex128
        ``K`` in square-root-of-count units; defined up to a phase and a conjugation
        per row.
    reference_field : (n_out,) complex128
        ``e0`` in the same units and row frames.
    dark : (n_out,) float64
        ``y(0) - |e0|^2``: the count of no light at all.
    frames : int
        Device frames used.
    acquisition_s : float
        The device's own time for those frames (frames x frame time).
    compute_s : float
        Wall-clock seconds of computation (acquisition excluded).
    saturated_fraction : float
        Fraction of the calibration counts at the device's full scale.
    """

    tm: np.ndarray
    reference_field: np.ndarray
    dark: np.ndarray
    frames: int
    acquisition_s: float
    compute_s: float
    saturated_fraction: float = 0.0
    diagnostics: dict = field(default_factory=dict)

    def predict(self, frames) -> np.ndarray:
        """Predicted counts of binary ``frames`` (batch, n_in), float64."""
        field_ = np.asarray(frames, np.float64) @ self.tm.T + self.reference_field
        return np.abs(field_) ** 2 + self.dark


def min_frames(n_in: int, probes_per_input: float = 1.0) -> int:
    """Frames :func:`estimate_transmission_matrix` takes for ``n_in`` inputs."""
    per_half = [n_in // 2, n_in - n_in // 2]
    total = 0
    for n_half in per_half:
        m = max(int(np.ceil(probes_per_input * n_half)), n_half + 8)
        total += (1 + N_ANCHORS) * m + (1 + N_ANCHORS) * REFERENCE_REPEATS
    return total + _mixed_frames(n_in)


def _mixed_frames(n_in: int) -> int:
    return max(32, n_in // 8)


# ---------------------------------------------------------------------- one half
def _apply_rows(rows, probes):
    """``(m, n_out, c)`` values of per-row linear maps ``rows`` (n_out, c, n) on ``probes``
    (m, n): one GEMM."""
    n_out, c, n = rows.shape
    return (probes @ rows.reshape(n_out * c, n).T).reshape(probes.shape[0], n_out, c)


def _row_dot(design, target):
    """``sum_m design[r, m, k] target[r, m]`` for every row: batched ``D^T t``."""
    return (design.transpose(0, 2, 1) @ target[..., None])[..., 0]


def _fit_half(xp, counts_x, counts_anchor, reference, probes, full_scale=None, passes=3):
    """Row frames of one half from its probe and anchor counts.

    Parameters
    ----------
    counts_x : (m, n_out)          counts of the probes x
    counts_anchor : (N_ANCHORS, m, n_out)  counts of x + a_i
    reference : (1 + N_ANCHORS, n_out)     mean counts of 0, a_1, ..., a_N
    probes : (m, n_half) float64   the probes
    full_scale
        The device's largest count: counts there are censored (the truth is at least
        that). They are left out of the per-row fits and, in the shared least-squares
        solve, replaced by the current prediction (never below full scale), over
        ``passes`` passes.

    Returns
    -------
    rows : (n_out, 2, n_half)  real and imaginary parts of K on this half (own frame)
    e0 : (n_out, 2)            the fixed field in the same frame
    """
    y0 = reference[0]
    anchor_gain = (reference[1:] - y0)[:, None, :]                  # y(a_i) - y(0)
    censored_x = censored_a = None
    if full_scale is not None:
        censored_x = counts_x >= full_scale
        censored_a = counts_anchor >= full_scale
        if not (bool(censored_x.any()) or bool(censored_a.any())):
            censored_x = censored_a = None
    counts_x, counts_anchor = counts_x.copy(), counts_anchor.copy()
    m, n_out = counts_x.shape
    pinv = xp.linalg.pinv(probes)                                   # (n_half, m)
    for _ in range(passes if censored_x is not None else 1):
        # Anchor identity: s_i(x) = (y(x + a_i) - y(x) - y(a_i) + y(0)) / 2.
        s = (counts_anchor - counts_x[None] - anchor_gain) / 2.0
        w3 = pinv @ s.transpose(1, 0, 2).reshape(m, N_ANCHORS * n_out)
        w3 = w3.reshape(-1, N_ANCHORS, n_out).transpose(2, 1, 0)    # (n_out, anchors, n_half)
        rows, e0, dark = _metric(xp, w3, probes, counts_x, y0, censored_x)
        if censored_x is None:
            break
        # Impute the censored counts from the current fit, never below full scale.
        v = _apply_rows(rows, probes)                               # (m, n_out, 2)
        predicted_x = ((v + e0[None]) ** 2).sum(-1) + dark[None]
        linear = _apply_rows(w3, probes).transpose(2, 0, 1)         # (anchors, m, n_out)
        predicted_a = predicted_x[None] + anchor_gain + 2.0 * linear
        counts_x[censored_x] = xp.maximum(predicted_x, full_scale)[censored_x]
        counts_anchor[censored_a] = xp.maximum(predicted_a, full_scale)[censored_a]
    return rows, e0


def _metric(xp, w3, probes, counts_x, y0, censored_x):
    """Per-row plane and metric: ``y(x) - y(0) = w^T Q w + q^T w`` with ``w`` in the plane."""
    # Each row's anchor functions span a plane: keep its top-2 principal directions.
    gram = w3 @ w3.transpose(0, 2, 1)                               # (n_out, anchors, anchors)
    _, vectors = xp.linalg.eigh(gram)
    plane = vectors[:, :, -2:]                                      # (n_out, anchors, 2)
    w2 = plane.transpose(0, 2, 1) @ w3                              # (n_out, 2, n_half)
    w = _apply_rows(w2, probes).transpose(1, 0, 2)                  # (n_out, m, 2)
    design = xp.stack([w[..., 0] ** 2, 2 * w[..., 0] * w[..., 1], w[..., 1] ** 2,
                       w[..., 0], w[..., 1]], axis=-1)              # (n_out, m, 5)
    target = (counts_x - y0[None, :]).T                             # (n_out, m)
    if censored_x is not None:                                      # censored rows: weight 0
        keep = (~censored_x).T.astype(design.dtype)
        design = design * keep[..., None]
        target = target * keep
    normal = design.transpose(0, 2, 1) @ design
    rhs = _row_dot(design, target)
    theta = xp.linalg.solve(normal, rhs[..., None])[..., 0]         # (n_out, 5)
    q_matrix = xp.stack([xp.stack([theta[:, 0], theta[:, 1]], -1),
                         xp.stack([theta[:, 1], theta[:, 2]], -1)], -2)
    values, axes = xp.linalg.eigh(q_matrix)
    # A plane direction that carries no intensity is noise: bound the metric's condition.
    values = xp.maximum(values, MAX_METRIC_CONDITION ** -1 * xp.maximum(
        values.max(axis=1, keepdims=True), 1e-300))
    sqrt_q = axes @ (xp.sqrt(values)[..., None] * axes.transpose(0, 2, 1))
    inv_sqrt_q = axes @ ((1.0 / xp.sqrt(values))[..., None] * axes.transpose(0, 2, 1))
    rows = sqrt_q @ w2                                              # (n_out, 2, n_half)
    e0 = 0.5 * (inv_sqrt_q @ theta[:, 3:5, None])[..., 0]           # (n_out, 2)
    dark = y0 - (e0 ** 2).sum(-1)
    return rows, e0, dark


def _half_frames(rng, n_in, signal, anchor_region, m):
    """Probe and anchor frames for calibrating the columns ``signal``."""
    probes = (rng.random((m, signal.size)) < 0.5).astype(np.uint8)
    anchors = np.zeros((N_ANCHORS, n_in), np.uint8)
    for i in range(N_ANCHORS):
        anchors[i, anchor_region[rng.random(anchor_region.size) < 0.5]] = 1
    frames = np.zeros(((1 + N_ANCHORS) * m, n_in), np.uint8)
    frames[:m, signal] = probes
    for i in range(N_ANCHORS):
        block = frames[(1 + i) * m:(2 + i) * m]
        block[:, signal] = probes
        block |= anchors[i]
    references = np.zeros((1 + N_ANCHORS, n_in), np.uint8)
    references[1:] = anchors
    references = np.repeat(references, REFERENCE_REPEATS, axis=0)
    return probes, np.concatenate([references, frames])


def _align(xp, rows_a, e0_a, rows_b, e0_b, probes_a, probes_b, counts_mix, y0, full_scale):
    """The 2 x 2 orthogonal map taking half B's row frames into half A's."""
    va = _apply_rows(rows_a, probes_a).transpose(1, 0, 2)           # (n_out, k, 2)
    vb = _apply_rows(rows_b, probes_b).transpose(1, 0, 2)
    own = ((va ** 2).sum(-1) + 2 * (va * e0_a[:, None, :]).sum(-1)
           + (vb ** 2).sum(-1) + 2 * (vb * e0_b[:, None, :]).sum(-1))
    cross = (counts_mix - y0[None, :]).T - own                      # = 2 va^T C vb
    design = 2 * (va[..., :, None] * vb[..., None, :]).reshape(va.shape[0], va.shape[1], 4)
    if full_scale is not None:  # censored counts carry no cross term
        keep = (counts_mix < full_scale).T.astype(design.dtype)
        design = design * keep[..., None]
        cross = cross * keep
    normal = design.transpose(0, 2, 1) @ design
    rhs = _row_dot(design, cross)
    # A row whose mixed frames are (nearly) all censored has no information on C: a tiny
    # ridge keeps the solve regular, and such a row keeps the identity map.
    scale = xp.trace(normal, axis1=1, axis2=2)
    informed = scale > 0
    normal = normal + (1e-9 * scale + (~informed))[:, None, None] * xp.eye(4, dtype=normal.dtype)
    c = xp.linalg.solve(normal, rhs[..., None])[..., 0].reshape(-1, 2, 2)
    c[~informed] = xp.eye(2, dtype=c.dtype)
    u, _, vt = xp.linalg.svd(c)
    return u @ vt                                                   # nearest orthogonal


# ---------------------------------------------------------------------- the estimator
def estimate_transmission_matrix(device, *, probes_per_input: float = 4.0, seed: int = 0,
                                 like=None, progress: bool | None = None) -> TMEstimate:
    """Estimate the TM of ``device`` from its frames alone.

    Parameters
    ----------
    device
        An open :class:`devices.OPUDevice` with at least 4 inputs.
    probes_per_input
        Random probes per input column (>= 1; more averages the noise down). The
        device shows about ``7 probes_per_input n_in + 56 + max(32, n_in / 8)`` frames
        (:func:`min_frames`).
    seed
        Seed of the probe and anchor frames.
    like
        An array whose backend (NumPy or CuPy) the computation runs on.
    progress
        Progress bar: True, False, or None for long acquisitions.

    Raises
    ------
    ValueError
        For a device too small, or too few probes to determine every column.
    """
    n_in, n_out = device.n_in, device.n_out
    if n_in < 4:
        raise ValueError(f"device.n_in = {n_in}: expected at least 4 inputs to calibrate")
    if not probes_per_input >= 1:
        raise ValueError(f"probes_per_input = {probes_per_input!r}: expected >= 1 (each column "
                         "needs a probe; fewer leave the least-squares problem underdetermined)")
    xp = array_module(like)
    rng = np.random.default_rng(seed)
    halves = (np.arange(n_in // 2), np.arange(n_in // 2, n_in))
    acquired = 0
    acquisition_s = 0.0
    saturated = 0
    compute_s = 0.0
    fits = []
    probe_sets = []
    for index, signal in enumerate(halves):
        anchor_region = halves[1 - index]
        m = max(int(np.ceil(probes_per_input * signal.size)), signal.size + 8)
        probes, frames = _half_frames(rng, n_in, signal, anchor_region, m)
        counts = acquire_all(device, xp.asarray(frames), progress=progress,
                             description=f"calibrating half {index + 1}/2")
        acquired += frames.shape[0]
        saturated += _saturated(device, counts)
        start = time.perf_counter()
        refs = counts[:(1 + N_ANCHORS) * REFERENCE_REPEATS].reshape(
            1 + N_ANCHORS, REFERENCE_REPEATS, n_out).mean(axis=1)
        body = counts[(1 + N_ANCHORS) * REFERENCE_REPEATS:].reshape(1 + N_ANCHORS, m, n_out)
        probes_x = xp.asarray(probes, dtype=np.float64)
        fits.append(_fit_half(xp, body[0], body[1:], refs, probes_x, device.full_scale)
                    + (refs[0],))
        probe_sets.append(probes_x)
        compute_s += time.perf_counter() - start
    # Mixed frames on both halves align half B's row frames with half A's.
    k = _mixed_frames(n_in)
    mixed = (rng.random((k, n_in)) < 0.5).astype(np.uint8)
    counts_mix = acquire_all(device, xp.asarray(mixed), progress=False)
    acquired += k
    saturated += _saturated(device, counts_mix)
    start = time.perf_counter()
    (rows_a, e0_a, y0_a), (rows_b, e0_b, y0_b) = fits
    mixed_x = xp.asarray(mixed, dtype=np.float64)
    y0 = (y0_a + y0_b) / 2
    rotation = _align(xp, rows_a, e0_a, rows_b, e0_b, mixed_x[:, halves[0]],
                      mixed_x[:, halves[1]], counts_mix, y0, device.full_scale)
    rows_b = rotation @ rows_b
    tm = xp.concatenate([rows_a[:, 0] + 1j * rows_a[:, 1], rows_b[:, 0] + 1j * rows_b[:, 1]],
                        axis=1)
    e0_b_in_a = (rotation @ e0_b[..., None])[..., 0]
    e0 = (e0_a + e0_b_in_a) / 2
    reference_field = e0[:, 0] + 1j * e0[:, 1]
    # y(0) = |e0|^2 + dark with dark >= 0: a fixed field brighter than the dark frame
    # is noise in the (small) linear term; shrink it onto |e0|^2 <= y(0).
    bound = xp.sqrt(xp.maximum(y0, 0.0))
    magnitude = xp.abs(reference_field)
    reference_field = reference_field * xp.minimum(1.0, bound / xp.maximum(magnitude, 1e-300))
    dark = y0 - xp.abs(reference_field) ** 2
    compute_s += time.perf_counter() - start
    acquisition_s = acquired * device.frame_time_s
    consistency = float(to_numpy(xp.median(xp.abs(e0_a - e0_b_in_a).sum(axis=1))))
    return TMEstimate(to_numpy(tm), to_numpy(reference_field), to_numpy(dark), acquired,
                      acquisition_s, compute_s, saturated / (acquired * n_out),
                      {"e0_half_mismatch_median": consistency})


def _saturated(device, counts) -> int:
    full = device.full_scale
    return 0 if full is None else int((counts >= full).sum())
