"""Transmission-matrix estimation by numerical interferometry (docs/design.md section 4).

The field on output ``j`` is affine in the binary frame, ``E_j(x) = e0_j + K_j x``, and the
camera reads ``y_j = |E_j|^2 + dark_j`` (the gain absorbed into ``K`` and ``e0``). With
anchors ``a_i`` on the other half of the inputs, the anchor identity

    ``s_i(x) = (y(x + a_i) - y(x) - y(a_i) + y(0)) / 2 = Re(conj(K a_i) K x)``

phases each intensity against six reference directions. The anchors are rows of a
Hadamard matrix over eight blocks of consecutive inputs (:func:`_anchor_patterns`): as
diverse as random half-on anchors on independent inputs, and still diverse where
neighbouring inputs are correlated. For each output row the six linear functions
``s_i`` span a plane (the complex plane of ``K x`` seen through an unknown real-linear
map): one least-squares solve, shared by all rows, gives ``s = W x`` (re-estimated under
the inputs' correlation where the functions show one, :mod:`calibration.priors`); the
top-2 principal directions of ``W`` per row give ``w = V x`` in R^2. Then
``y(x) - y(0) = w^T Q w + q^T w`` (five unknowns per row, linear least squares) fixes the
metric: with ``P = Q^(1/2)`` the row is ``k = (P V)_0 + i (P V)_1`` and ``e0 = P^-1 q / 2``.
Each half comes out in its own frame (a rotation or reflection per row, ``G_A`` and
``G_B``).

**Alignment of the halves.** The anchors of one half's calibration light the other half:
each anchor function, written in its row's own frame, is ``c_i = G_A K_B a_i`` while the
other half's estimate gives ``v_i = G_B K_B a_i``. So ``c_i = C v_i`` with ``C = G_A G_B^T``
orthogonal: a Procrustes fit over the twelve anchors of both halves (every probe of the
calibration behind each) gives ``C``, and its two singular values say how clearly it is a
rotation or a reflection. Mixed frames on both halves (their number grows with the probe
budget) check the choice on fresh data: ``2 Re(conj(K_A x_A) K_B x_B) = 2 v_A^T C v_B``.
A row whose two sources disagree, or whose choice is not clear, is named untrusted.

**Correlated outputs, refit.** Where rows are correlated (a speckle grain), each row is
re-estimated from its aligned neighbours, the strength chosen on the mixed frames
(:mod:`calibration.priors`). A device of at most 32 inputs has every row polished on every
count; then each row's scale, fixed field and dark level are refitted on its probes,
anchored probes and mixed frames (:mod:`calibration.refine`).

**Saturation.** Counts at or above the censoring level (the camera's measured saturation
less its spread, :class:`calibration.camera.CameraEstimate`; the device's full scale
without one) only bound the truth from below. They get no weight in the per-row fits and,
in the shared solve, are replaced by the current prediction (never below the censoring
level) over several passes. An anchor whose reference frame saturates a row is dropped
for that row.

**Row quality.** Every row's prediction is compared with the calibration's own counts
(probes, anchored probes, mixed frames; censored counts left out): ``row_quality`` is the
rms residual of the refit in units of the noise the camera model predicts,
``var(y) = sigma_d^2 + K (y - dark) + c (y - dark)^2`` (``sigma_d`` and ``K`` from the
camera estimate or, without one, with the common-mode term ``c`` fitted on the repeated
reference frames). Near 1 a row is calibrated to the noise.

All of it is a handful of GEMMs and batched small solves, on NumPy or CuPy (the backend
of ``like``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from scipy.linalg import hadamard

from photon import array_module, to_numpy
from photon.support.arguments import check_number

from .acquisition import acquire_all
from .priors import (MIN_NEIGHBOUR_PAIRS, column_noise, denoise_rows, input_correlation,
                     map_functions, row_neighbours)
from .refine import POLISH_MAX_INPUTS, polish_rows, refit_rows, row_statistics

__all__ = ["TMEstimate", "estimate_transmission_matrix", "min_frames", "mixed_frames",
           "detect_saturation",
           "QUALITY_FACTOR", "QUALITY_MIN", "MAX_CENSORED_FRACTION"]

N_ANCHORS = 6
REFERENCE_REPEATS = 4
MAX_METRIC_CONDITION = 1e4
CENSOR_PASSES = 12           # passes filling censored anchor values in the shared solve, at most
CENSOR_TOLERANCE = 1e-7      # ... as many as bring the fill's error below this fraction
CENSOR_FEW = 0.02            # columns missing at most this share are filled as one group
MAX_ANCHOR_MISSING = 0.25    # an anchor missing more of a row's values is dropped there
MIN_ANCHORS = 2              # a row needs this many usable anchors (a plane)
MIXED_FRAMES_MIN = 32        # mixed frames: max(32, probes_per_input n_in / 8)
MIXED_FRAMES_PER_PROBE = 1.0 / 8.0
QUALITY_FACTOR = 3.0         # untrusted: row_quality > QUALITY_FACTOR x the median row ...
QUALITY_MIN = 3.0            # ... and > QUALITY_MIN (residual rms in noise units)
MAX_CENSORED_FRACTION = 0.5  # untrusted: more than half of a row's counts censored
HANDEDNESS_Z = 5.0           # rotation-or-reflection evidence needed, in noise units
QUALITY_BLOCKS = 1           # anchored-probe blocks per half scored in row_quality
ANCHOR_BLOCKS = 8            # blocks of consecutive inputs the anchors light (Hadamard rows)
INPUT_PROFILE_LAGS = 64      # lags of the estimated input correlation kept in the estimate


@dataclass
class _HalfFit:
    """One half's rows, fixed field, anchor functions, noise share and input correlation."""

    rows: object
    e0: object
    w3: object
    noise_share: object
    correlation: object


@dataclass
class TMEstimate:
    """An estimated transmission matrix and the fixed field and dark level per row.

    Predicted counts: ``y(x) = min(|e0 + K x|^2 + dark, saturation_dn)`` (NumPy arrays).

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
        Fraction of the calibration counts at or above ``censor_dn`` (censored).
    diagnostics : dict
        Medians of the alignment and consistency figures.
    saturation_dn : float or None
        The count a saturated output reads (the camera's plateau or the ADC top);
        predictions are clipped there. None: no saturation known.
    censor_dn : float or None
        Counts at or above this level were treated as censored.
    row_quality : (n_out,) float64
        Rms residual of each row's prediction on the calibration counts, in units of
        the noise the camera model predicts (1: calibrated to the noise).
    row_censored : (n_out,) float64
        Fraction of each row's calibration counts that were censored.
    untrusted : (k,) int64
        Rows that could not be calibrated (see ``untrusted_reasons``).
    untrusted_reasons : dict
        Row index -> why (``"dark frame saturated"``, ``"censored"``,
        ``"residual"``, ``"alignment"``).
    noise_model : tuple of float
        ``(a, b, c)`` of ``var(y) = a + b s + c s^2`` (DN^2) with ``s = y - dark``.
    input_correlation : (k,) float64 or None
        The correlation between inputs ``d = 0 .. k - 1`` apart in index order, estimated
        from the first half's anchor functions (:func:`calibration.priors.input_correlation`;
        None for a half too small to tell).
    """

    tm: np.ndarray
    reference_field: np.ndarray
    dark: np.ndarray
    frames: int
    acquisition_s: float
    compute_s: float
    saturated_fraction: float = 0.0
    diagnostics: dict = field(default_factory=dict)
    saturation_dn: float | None = None
    censor_dn: float | None = None
    row_quality: np.ndarray | None = None
    row_censored: np.ndarray | None = None
    untrusted: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    untrusted_reasons: dict = field(default_factory=dict)
    noise_model: tuple = (0.0, 0.0, 0.0)
    input_correlation: np.ndarray | None = None

    def predict(self, frames, clip: bool = True) -> np.ndarray:
        """Predicted counts of binary ``frames`` (batch, n_in), float64.

        ``clip``: clip at ``saturation_dn`` (what the camera reads), when known.
        """
        field_ = np.asarray(frames, np.float64) @ self.tm.T + self.reference_field
        predicted = np.abs(field_) ** 2 + self.dark
        if clip and self.saturation_dn is not None and math.isfinite(self.saturation_dn):
            np.minimum(predicted, self.saturation_dn, out=predicted)
        return predicted

    @property
    def trusted(self) -> np.ndarray:
        """Boolean mask (n_out,) of the rows that were calibrated."""
        mask = np.ones(self.tm.shape[0], bool)
        mask[self.untrusted] = False
        return mask


def mixed_frames(n_in: int, probes_per_input: float = 4.0) -> int:
    """Mixed frames (both halves lit) that check the alignment of the halves.

    ``max(32, ceil(probes_per_input n_in / 8))``: they grow with the probe budget, so a
    longer calibration checks its alignment on as large a share of its frames.
    """
    return max(MIXED_FRAMES_MIN, int(math.ceil(probes_per_input * n_in * MIXED_FRAMES_PER_PROBE)))


def min_frames(n_in: int, probes_per_input: float = 1.0) -> int:
    """Frames :func:`estimate_transmission_matrix` takes for ``n_in`` inputs."""
    total = 0
    for n_half in (n_in // 2, n_in - n_in // 2):
        m = max(int(np.ceil(probes_per_input * n_half)), n_half + 8)
        total += (1 + N_ANCHORS) * m + (1 + N_ANCHORS) * REFERENCE_REPEATS
    return total + mixed_frames(n_in, probes_per_input)


# ---------------------------------------------------------------------- one half
def _apply_rows(rows, probes):
    """``(m, n_out, c)`` values of per-row linear maps ``rows`` (n_out, c, n) on ``probes``
    (m, n): one GEMM."""
    n_out, c, n = rows.shape
    return (probes @ rows.reshape(n_out * c, n).T).reshape(probes.shape[0], n_out, c)


def _row_dot(design, target):
    """``sum_m design[r, m, k] target[r, m]`` for every row: batched ``D^T t``."""
    return (design.transpose(0, 2, 1) @ target[..., None])[..., 0]


def _fit_half(xp, counts_x, counts_anchor, reference, probes, censor, reference_censored):
    """Row frames of one half from its probe and anchor counts.

    Parameters
    ----------
    counts_x : (m, n_out)          counts of the probes x
    counts_anchor : (N_ANCHORS, m, n_out)  counts of x + a_i
    reference : (1 + N_ANCHORS, n_out)     mean counts of 0, a_1, ..., a_N
    probes : (m, n_half) float64   the probes
    censor
        Counts at or above it are censored (None: none are). An anchor value
        ``s_i(x)`` with ``y(x)`` or ``y(x + a_i)`` censored is missing: the shared
        least-squares solve fills it with its own current fit, pass after pass (up to
        :data:`CENSOR_PASSES`), which converges to the least-squares fit of the values
        that are there; the per-row metric fit leaves censored probes out.
    reference_censored : (1 + N_ANCHORS, n_out) bool
        References with a censored repeat: such an anchor is dropped for that row.

    Returns
    -------
    rows : (n_out, 2, n_half)   real and imaginary parts of K on this half (own frame)
    e0 : (n_out, 2)             the fixed field in the same frame
    w3 : (n_out, N_ANCHORS, n_half)  the anchor functions ``s_i = w3_i . x``
    """
    y0 = reference[0]
    anchor_gain = (reference[1:] - y0)[:, None, :]                  # y(a_i) - y(0)
    usable = (~reference_censored[1:]).T.astype(probes.dtype)       # (n_out, anchors)
    m, n_out = counts_x.shape
    censored_x = None
    # Anchor identity: s_i(x) = (y(x + a_i) - y(x) - y(a_i) + y(0)) / 2.
    s = counts_anchor - counts_x[None]                              # in place from here
    s -= anchor_gain
    s *= 0.5
    s = s.transpose(1, 0, 2).reshape(m, N_ANCHORS * n_out)          # (m, anchors * n_out)
    # Pseudo-inverse through the normal equations: random probes with m >= n + 8 have
    # a well-conditioned Gram matrix, and one LU solve costs far less than an SVD.
    pinv = xp.linalg.solve(probes.T @ probes, probes.T)             # (n_half, m)
    w3 = pinv @ s
    if censor is not None:
        censored_x = counts_x >= censor
        missing = (counts_anchor >= censor) | censored_x[None]
        missing = missing.transpose(1, 0, 2).reshape(m, N_ANCHORS * n_out)
        # An anchor missing too many of its values on a row (a bright anchor field
        # saturates most of its frames) leaves too few to fit: drop it there.
        fraction = missing.mean(axis=0).reshape(N_ANCHORS, n_out).T  # (n_out, anchors)
        usable = usable * (fraction <= MAX_ANCHOR_MISSING)
        columns = xp.flatnonzero(missing.any(axis=0) & (fraction.T.reshape(-1)
                                                        <= MAX_ANCHOR_MISSING))
        if columns.size:
            # Fill the missing values with the fit of the others until it settles. The
            # error contracts by about a column's missing fraction each pass: columns
            # missing little need few passes (a group of them, then the rest).
            share = missing[:, columns].mean(axis=0)
            for group in (share <= CENSOR_FEW, share > CENSOR_FEW):
                chosen = columns[group]
                if not chosen.size:
                    continue
                worst = float(to_numpy(share[group].max()))
                passes = min(CENSOR_PASSES, max(1, math.ceil(
                    math.log(CENSOR_TOLERANCE) / math.log(max(worst, 1e-12)))))
                sub, sub_missing = s[:, chosen], missing[:, chosen]
                w_sub = w3[:, chosen]
                for _ in range(passes):
                    fitted = probes @ w_sub
                    sub = xp.where(sub_missing, fitted, sub)
                    w_sub = pinv @ sub
                w3[:, chosen] = w_sub
        else:
            censored_x = None
    sigma2 = column_noise(xp, probes, s, w3)
    correlation = input_correlation(xp, probes, pinv, sigma2, w3)
    if correlation is not None and correlation.prior is not None:
        w3 = map_functions(xp, probes, pinv, sigma2, w3, correlation.prior)
    w3 = w3.reshape(-1, N_ANCHORS, n_out).transpose(2, 1, 0)        # (n_out, anchors, n_half)
    w3 = w3 * usable[..., None]
    rows, e0, noise_share = _metric(xp, w3, probes, counts_x, y0, censored_x)
    return _HalfFit(rows, e0, w3, noise_share, correlation)


def _metric(xp, w3, probes, counts_x, y0, censored_x):
    """Per-row plane and metric: ``y(x) - y(0) = w^T Q w + q^T w`` with ``w`` in the plane.

    Also each row's noise share: the anchor functions' energy outside their plane is
    noise (the signal is rank 2), so ``2 mean(lambda_1 .. lambda_(A-2)) / (lambda_(A-1) +
    lambda_A - 2 noise)`` estimates the noise over the signal energy of the plane.
    """
    # Each row's anchor functions span a plane: keep its top-2 principal directions.
    gram = w3 @ w3.transpose(0, 2, 1)                               # (n_out, anchors, anchors)
    eigen, vectors = xp.linalg.eigh(gram)
    used = ((w3 ** 2).sum(-1) > 0).sum(-1)
    noise = xp.where(used > 2, eigen[:, :-2].sum(-1) / xp.maximum(used - 2, 1), 0.0)
    noise_share = 2.0 * noise / xp.maximum(eigen[:, -2:].sum(-1) - 2.0 * noise, 1e-300)
    plane = vectors[:, :, -2:]                                      # (n_out, anchors, 2)
    w2 = plane.transpose(0, 2, 1) @ w3                              # (n_out, 2, n_half)
    w = _apply_rows(w2, probes).transpose(1, 0, 2)                  # (n_out, m, 2)
    # Plane coordinates of order one keep the normal equations well conditioned (the
    # metric is fitted in these units; the row comes out the same).
    unit = xp.sqrt((w ** 2).sum(-1).mean(-1))
    unit = xp.where(unit > 0, unit, 1.0)
    w2 = w2 / unit[:, None, None]
    w /= unit[:, None, None]
    target = (counts_x - y0[None, :]).T                             # (n_out, m)
    if censored_x is not None:                                      # censored counts: weight 0
        keep = (~censored_x).T
        w *= keep[..., None]             # every feature below is then 0 there (keep^2 = keep)
        target *= keep
    design = xp.stack([w[..., 0] ** 2, 2 * w[..., 0] * w[..., 1], w[..., 1] ** 2,
                       w[..., 0], w[..., 1]], axis=-1)              # (n_out, m, 5)
    normal = design.transpose(0, 2, 1) @ design
    # A row with (nearly) every count censored has no information: a tiny ridge keeps
    # the solve regular (the row is named untrusted later).
    ridge = 1e-12 * xp.trace(normal, axis1=1, axis2=2) + 1e-300
    normal = normal + ridge[:, None, None] * xp.eye(5, dtype=normal.dtype)
    rhs = _row_dot(design, target)
    theta = xp.linalg.solve(normal, rhs[..., None])[..., 0]         # (n_out, 5)
    q_matrix = xp.stack([xp.stack([theta[:, 0], theta[:, 1]], -1),
                         xp.stack([theta[:, 1], theta[:, 2]], -1)], -2)
    values, axes = xp.linalg.eigh(q_matrix)
    # A row whose metric has no positive direction (too few usable counts or anchors)
    # has no estimate: it is zeroed, and its residual names it untrusted.
    top = values.max(axis=1, keepdims=True)
    broken = ~(top[:, 0] > 0) | ~xp.isfinite(theta).all(axis=1)
    top = xp.where(broken[:, None], 1.0, top)
    # A plane direction that carries no intensity is noise: bound the metric's condition.
    values = xp.where(broken[:, None], 1.0, xp.maximum(values, MAX_METRIC_CONDITION ** -1 * top))
    sqrt_q = axes @ (xp.sqrt(values)[..., None] * axes.transpose(0, 2, 1))
    inv_sqrt_q = axes @ ((1.0 / xp.sqrt(values))[..., None] * axes.transpose(0, 2, 1))
    rows = sqrt_q @ w2                                              # (n_out, 2, n_half)
    e0 = 0.5 * (inv_sqrt_q @ xp.nan_to_num(theta[:, 3:5, None]))[..., 0]  # (n_out, 2)
    rows = xp.where(broken[:, None, None], 0.0, rows)
    e0 = xp.where(broken[:, None], 0.0, e0)
    return rows, e0, noise_share


def _anchor_patterns(n_in: int, anchor_region) -> np.ndarray:
    """The ``N_ANCHORS`` anchors: rows 1-6 of the 8 x 8 Sylvester-Hadamard matrix over 8
    blocks of consecutive inputs of ``anchor_region`` (a block lit where the row is +1).

    Each anchor lights half of the region and any two share exactly a quarter of it, as
    random half-on anchors do on average, so on independent inputs their fields are as
    diverse. Neighbouring inputs of a correlated medium fall in the same block: the
    anchors' fields then differ by whole blocks instead of sharing the region's common
    (bright, low spatial frequency) field, which random anchors all carry.
    """
    rows = hadamard(ANCHOR_BLOCKS)[1:1 + N_ANCHORS] > 0
    block = (np.arange(anchor_region.size) * ANCHOR_BLOCKS) // anchor_region.size
    anchors = np.zeros((N_ANCHORS, n_in), np.uint8)
    anchors[:, anchor_region] = rows[:, block]
    return anchors


def _half_frames(rng, n_in, signal, anchor_region, m):
    """Probe and anchor frames for calibrating the columns ``signal``."""
    probes = (rng.random((m, signal.size)) < 0.5).astype(np.uint8)
    anchors = _anchor_patterns(n_in, anchor_region)
    frames = np.zeros(((1 + N_ANCHORS) * m, n_in), np.uint8)
    frames[:m, signal] = probes
    for i in range(N_ANCHORS):
        block = frames[(1 + i) * m:(2 + i) * m]
        block[:, signal] = probes
        block |= anchors[i]
    references = np.zeros((1 + N_ANCHORS, n_in), np.uint8)
    references[1:] = anchors
    references = np.repeat(references, REFERENCE_REPEATS, axis=0)
    return probes, anchors, np.concatenate([references, frames])


# ---------------------------------------------------------------------- alignment
def _anchor_coordinates(xp, w3, rows):
    """Each anchor function ``w3_i`` (n_out, anchors, n) written in its row's frame
    ``rows`` (n_out, 2, n): ``c_i`` with ``w3_i ~ c_i^T rows``, shape (n_out, anchors, 2)."""
    gram = rows @ rows.transpose(0, 2, 1)                           # (n_out, 2, 2)
    scale = xp.trace(gram, axis1=1, axis2=2)
    gram = gram + (1e-12 * scale + 1e-300)[:, None, None] * xp.eye(2, dtype=gram.dtype)
    projected = rows @ w3.transpose(0, 2, 1)                        # (n_out, 2, anchors)
    return xp.linalg.solve(gram, projected).transpose(0, 2, 1)


def _procrustes(xp, pairs):
    """Orthogonal ``C`` (n_out, 2, 2) minimizing ``sum |p - C q|^2`` over ``pairs`` of
    (n_out, k, 2) arrays ``(p, q, weight)``; with the best map of the other handedness
    and the residual sums of both."""
    m = 0.0
    total = 0.0
    count = 0.0
    for p, q, weight in pairs:
        m = m + (p * weight[..., None]).transpose(0, 2, 1) @ q      # sum_i w p_i q_i^T
        total = total + (weight * ((p ** 2).sum(-1) + (q ** 2).sum(-1))).sum(-1)
        count = count + 2.0 * weight.sum(-1)
    u, s, vt = xp.linalg.svd(m)
    flip = xp.ones((m.shape[0], 2), dtype=m.dtype)
    flip[:, 1] = -1.0
    best = u @ vt
    other = (u * flip[:, None, :]) @ vt
    rss_best = xp.maximum(total - 2.0 * (s[:, 0] + s[:, 1]), 0.0)
    rss_other = total - 2.0 * (s[:, 0] - s[:, 1])
    return best, other, rss_best, rss_other, count


def _cross_residuals(xp, va, vb, cross, keep, maps):
    """Residual sums of the mixed frames' cross terms ``cross ~ 2 va^T C vb`` for each
    map in ``maps`` (n_out, 2, 2)."""
    out = []
    for c in maps:
        predicted = 2.0 * ((va @ c) * vb).sum(-1)                   # va^T C vb, (n_out, k)
        out.append((keep * (cross - predicted) ** 2).sum(-1))
    return out


def _align(xp, halves_fit, anchors, half_columns, mixed, counts_mix, y0, censor, noise):
    """The orthogonal map taking half B's row frames into half A's, per row, and its check.

    Returns ``(C, conflict, margin)``: ``conflict`` marks rows where the mixed frames
    prefer the other handedness or where neither source decides; ``margin`` is the
    anchors' evidence for the chosen handedness in noise units.
    """
    (rows_a, e0_a, w3_a), (rows_b, e0_b, w3_b) = ((f.rows, f.e0, f.w3) for f in halves_fit)
    cols_a, cols_b = half_columns
    # Half A's anchors light half B: c_i = C v_i with v_i = rows_B a_i.
    c_a = _anchor_coordinates(xp, w3_a, rows_a)                     # (n_out, anchors, 2)
    v_b = _apply_rows(rows_b, anchors[0][:, cols_b]).transpose(1, 0, 2)
    # Half B's anchors light half A: v'_i = C c'_i.
    c_b = _anchor_coordinates(xp, w3_b, rows_b)
    v_a = _apply_rows(rows_a, anchors[1][:, cols_a]).transpose(1, 0, 2)
    weight_a = ((w3_a ** 2).sum(-1) > 0).astype(c_a.dtype)          # dropped anchors: 0
    weight_b = ((w3_b ** 2).sum(-1) > 0).astype(c_b.dtype)
    best, other, rss_best, rss_other, count = _procrustes(
        xp, [(c_a, v_b, weight_a), (v_a, c_b, weight_b)])
    sigma2 = rss_best / xp.maximum(count - 1.0, 1.0) + 1e-300
    anchor_z = (rss_other - rss_best) / sigma2 / xp.sqrt(xp.maximum(count, 1.0))
    # Mixed frames: the cross term 2 Re(conj(K_A x_A) K_B x_B) = 2 va^T C vb.
    va = _apply_rows(rows_a, mixed[:, cols_a]).transpose(1, 0, 2)   # (n_out, k, 2)
    vb = _apply_rows(rows_b, mixed[:, cols_b]).transpose(1, 0, 2)
    own = ((va ** 2).sum(-1) + 2 * (va * e0_a[:, None, :]).sum(-1)
           + (vb ** 2).sum(-1) + 2 * (vb * e0_b[:, None, :]).sum(-1))
    cross = (counts_mix - y0[None, :]).T - own                      # (n_out, k)
    keep = xp.ones_like(cross) if censor is None else (counts_mix < censor).T.astype(cross.dtype)
    rss_mix_best, rss_mix_other = _cross_residuals(xp, va, vb, cross, keep, (best, other))
    level = xp.maximum((counts_mix - y0[None, :]).T, 0.0)
    variance = (noise[0] + noise[1] * level + noise[2] * level ** 2) * keep
    mix_sigma2 = variance.sum(-1) / xp.maximum(keep.sum(-1), 1.0) + 1e-300
    mix_z = (rss_mix_other - rss_mix_best) / mix_sigma2 / xp.sqrt(xp.maximum(keep.sum(-1), 1.0))
    # Choose by both sources; a row where they disagree clearly, or neither decides, is
    # not trusted: one of its halves may be conjugated.
    total_z = anchor_z + mix_z
    rotation = xp.where((total_z >= 0)[:, None, None], best, other)
    conflict = ((anchor_z > HANDEDNESS_Z) & (mix_z < -HANDEDNESS_Z)) | \
               ((anchor_z < -HANDEDNESS_Z) & (mix_z > HANDEDNESS_Z)) | \
               (xp.abs(total_z) < HANDEDNESS_Z)
    return rotation, conflict, xp.abs(total_z), anchor_z, mix_z


# ---------------------------------------------------------------------- quality
def _noise_model(xp, ref_means, ref_vars, ref_ok, dark, camera, digital):
    """``(a, b, c)`` of ``var(y) = a + b s + c s^2``, ``s = y - dark`` (DN^2).

    From the camera estimate (``a = sigma_d^2`` with the rounding's 1/12, ``b = K``) with
    ``c`` fitted on the repeated reference frames, or all three fitted there.
    """
    s = xp.maximum(ref_means - dark[None, :], 0.0)[ref_ok]
    v = ref_vars[ref_ok]
    if s.size == 0:
        return (0.0, 0.0, 0.0)
    if camera is not None:
        a = camera.dark_noise_dn ** 2 + (1.0 / 12.0 if digital else 0.0)
        b = camera.gain_dn_per_e
        resid = v - a - b * s
        c = float(to_numpy((resid * s ** 2).sum() / xp.maximum((s ** 4).sum(), 1e-300)))
        return (float(a), float(b), max(c, 0.0))
    design = xp.stack([xp.ones_like(s), s, s ** 2], axis=1)
    scale = xp.maximum(xp.abs(design).max(axis=0), 1e-300)
    coef = xp.linalg.lstsq(design / scale, v, rcond=None)[0] / scale
    coef = [max(float(to_numpy(c)), 0.0) for c in coef]
    return tuple(coef)


def _mixed_weights(xp, counts, y0, censor, noise):
    """Inverse noise variance of mixed-frame counts at their own level; 0 where censored."""
    keep = xp.ones_like(counts) if censor is None else (counts < censor).astype(counts.dtype)
    level = xp.maximum(counts - y0[None, :], 0.0)
    return keep / (noise[0] + noise[1] * level + noise[2] * level ** 2 + 1e-12), keep


# ---------------------------------------------------------------------- the estimator
def estimate_transmission_matrix(device, *, probes_per_input: float = 4.0, seed: int = 0,
                                 like=None, progress: bool | None = None, camera=None,
                                 saturation_dn: float | None = None) -> TMEstimate:
    """Estimate the TM of ``device`` from its frames alone.

    Parameters
    ----------
    device
        An open :class:`devices.OPUDevice` with at least 4 inputs.
    probes_per_input
        Random probes per input column (>= 1; more averages the noise down). The
        device shows about ``7 probes_per_input n_in + 56 + max(32, probes_per_input
        n_in / 8)`` frames (:func:`min_frames`).
    seed
        Seed of the probe and anchor frames.
    like
        An array whose backend (NumPy or CuPy) the computation runs on.
    progress
        Progress bar: True, False, or None for long acquisitions.
    camera
        A :class:`calibration.camera.CameraEstimate` of the device: its saturation
        level (where the response stops growing) sets the censoring level and the
        clip of predictions, its dark noise and gain the noise model of
        ``row_quality``. None: censoring where the counts pile up below the full scale
        (:func:`detect_saturation`), else at ``device.full_scale``, and a noise model
        fitted on the repeated reference frames.
    saturation_dn
        Override of the censoring level, DN: counts at or above it are censored.

    Raises
    ------
    ValueError
        For a device too small, or too few probes to determine every column.
    """
    n_in, n_out = device.n_in, device.n_out
    if n_in < 4:
        raise ValueError(f"device.n_in = {n_in}: expected at least 4 inputs to calibrate")
    probes_per_input = check_number("probes_per_input", probes_per_input, low=1.0,
                                    unit="probes per input: fewer leave the least-squares "
                                         "problem underdetermined")
    censor, clip = _saturation_levels(device, camera, saturation_dn)
    digital = device.full_scale is not None
    xp = array_module(like)
    rng = np.random.default_rng(seed)
    halves = (np.arange(n_in // 2), np.arange(n_in // 2, n_in))
    acquired = 0
    censored_counts = xp.zeros(n_out)
    compute_s = 0.0
    fits, anchor_sets, bodies, references = [], [], [], []
    for index, signal in enumerate(halves):
        anchor_region = halves[1 - index]
        m = max(int(np.ceil(probes_per_input * signal.size)), signal.size + 8)
        probes, anchors, frames = _half_frames(rng, n_in, signal, anchor_region, m)
        counts = acquire_all(device, xp.asarray(frames), progress=progress,
                             description=f"calibrating half {index + 1}/2")
        acquired += frames.shape[0]
        start = time.perf_counter()
        repeats = counts[:(1 + N_ANCHORS) * REFERENCE_REPEATS].reshape(
            1 + N_ANCHORS, REFERENCE_REPEATS, n_out)
        if index == 0 and camera is None and saturation_dn is None:
            # No camera estimate: look for the level where the counts pile up (a well
            # filling below the ADC's top) in the counts themselves.
            found = detect_saturation(counts, device.full_scale,
                                      float(to_numpy(xp.median(repeats[0].var(axis=0, ddof=1)))),
                                      float(to_numpy(xp.median(repeats[0]))))
            if found is not None:
                clip, censor = found
        if censor is not None:
            censored_counts += (counts >= censor).sum(axis=0)
        refs = repeats.mean(axis=1)
        ref_censored = (repeats >= censor).any(axis=1) if censor is not None else \
            xp.zeros(refs.shape, bool)
        body = counts[(1 + N_ANCHORS) * REFERENCE_REPEATS:].reshape(1 + N_ANCHORS, m, n_out)
        probes_x = xp.asarray(probes, dtype=np.float64)
        fits.append(_fit_half(xp, body[0], body[1:], refs, probes_x, censor, ref_censored))
        references.append((refs, repeats.var(axis=1, ddof=1), ref_censored))
        anchor_sets.append(xp.asarray(anchors, dtype=np.float64))
        bodies.append((frames[(1 + N_ANCHORS) * REFERENCE_REPEATS:], body))
        compute_s += time.perf_counter() - start
    # Mixed frames on both halves check the alignment found from the anchors.
    k = mixed_frames(n_in, probes_per_input)
    mixed = (rng.random((k, n_in)) < 0.5).astype(np.uint8)
    counts_mix = acquire_all(device, xp.asarray(mixed), progress=False)
    acquired += k
    start = time.perf_counter()
    if censor is not None:
        censored_counts += (counts_mix >= censor).sum(axis=0)
    (rows_a, e0_a), (rows_b, e0_b) = ((fit.rows, fit.e0) for fit in fits)
    y0_a, y0_b = references[0][0][0], references[1][0][0]
    y0 = (y0_a + y0_b) / 2
    dark_a = y0_a - xp.minimum((e0_a ** 2).sum(-1), y0_a)
    ref_means = xp.concatenate([references[0][0], references[1][0]])
    ref_vars = xp.concatenate([references[0][1], references[1][1]])
    ref_ok = ~xp.concatenate([references[0][2], references[1][2]])
    noise = _noise_model(xp, ref_means, ref_vars, ref_ok, dark_a, camera, digital)
    mixed_x = xp.asarray(mixed, dtype=np.float64)
    rotation, conflict, margin, anchor_z, mix_z = _align(
        xp, fits, anchor_sets, halves, mixed_x, counts_mix, y0, censor, noise)
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
    floor = (1e-4 * xp.maximum(y0 - dark, 1.0)) ** 2 + (1e-4 * xp.abs(dark)) ** 2 + 1e-12
    # Correlated outputs (a speckle grain): each row from its aligned neighbours, the
    # strength chosen on the mixed frames (no row was fitted to them).
    neighbours = row_neighbours(xp, tm)
    kappa = None
    if neighbours.per_row >= MIN_NEIGHBOUR_PAIRS:
        energy = [(fit.rows ** 2).sum((1, 2)) for fit in fits]
        share = (fits[0].noise_share * energy[0] + fits[1].noise_share * energy[1]) / \
            xp.maximum(energy[0] + energy[1], 1e-300)
        weight_mix, _ = _mixed_weights(xp, counts_mix, y0, censor, noise)
        tm, kappa = denoise_rows(xp, tm, share, neighbours, (mixed_x, counts_mix, weight_mix))
    if n_in <= POLISH_MAX_INPUTS:
        every = [(xp.asarray(f, dtype=np.float64), c.reshape(-1, n_out)) for f, c in bodies]
        tm, reference_field, dark = polish_rows(xp, tm, reference_field, dark,
                                                every + [(mixed_x, counts_mix)], censor, noise,
                                                floor)
        # Each row is now fitted to every count, the mixed frames included: a half left
        # conjugated would show in its residual, which decides alone.
        conflict = xp.zeros_like(conflict)
    # Each row rescaled and its fixed field and dark refitted on its probes, two blocks of
    # anchored probes per half and the mixed frames; the residual is its quality.
    blocks = [(mixed_x, counts_mix)]
    for frames_body, body in bodies:
        m = body.shape[1]
        blocks += [(xp.asarray(frames_body[i * m:(i + 1) * m], dtype=np.float64), body[i])
                   for i in range(1 + QUALITY_BLOCKS)]
    normal = moment = total = used = 0.0
    for frames_q, counts_q in blocks:
        parts = row_statistics(xp, tm, reference_field, dark, frames_q, counts_q, censor,
                               noise, floor)
        normal, moment, total, used = (normal + parts[0], moment + parts[1],
                                       total + parts[2], used + parts[3])
    tm, reference_field, dark, sum_sq = refit_rows(xp, tm, reference_field, dark, normal,
                                                   moment, total)
    row_quality = xp.sqrt(sum_sq / xp.maximum(used, 1.0))
    row_censored = censored_counts / acquired
    compute_s += time.perf_counter() - start
    row_quality, row_censored, conflict = (to_numpy(a) for a in (row_quality, row_censored,
                                                                 conflict))
    dark_saturated = to_numpy(references[0][2][0] | references[1][2][0])
    anchors_left = [to_numpy(((fit.w3 ** 2).sum(-1) > 0).sum(-1)) for fit in fits]
    few_anchors = (anchors_left[0] < MIN_ANCHORS) | (anchors_left[1] < MIN_ANCHORS)
    untrusted, reasons = _untrusted_rows(row_quality, row_censored, conflict,
                                         dark_saturated, to_numpy(used), few_anchors)
    consistency = float(to_numpy(xp.median(xp.abs(e0_a - e0_b_in_a).sum(axis=1))))
    diagnostics = {"e0_half_mismatch_median": consistency,
                   "handedness_margin_min": float(to_numpy(margin.min())),
                   "handedness_anchor_z_median": float(to_numpy(xp.median(anchor_z))),
                   "handedness_mixed_z_median": float(to_numpy(xp.median(mix_z))),
                   "row_quality_median": float(np.median(row_quality)),
                   "mixed_frames": k,
                   "input_correlation_lags": [fit.correlation.significant
                                              if fit.correlation is not None else 0
                                              for fit in fits],
                   "output_neighbours_per_row": neighbours.per_row,
                   "output_prior_kappa": kappa}
    correlation = fits[0].correlation
    return TMEstimate(to_numpy(tm), to_numpy(reference_field), to_numpy(dark), acquired,
                      acquired * device.frame_time_s, compute_s,
                      float(row_censored.mean()), diagnostics, clip, censor,
                      row_quality, row_censored, untrusted, reasons, noise,
                      None if correlation is None else correlation.profile[:INPUT_PROFILE_LAGS])


def detect_saturation(counts, full_scale=None, dark_variance: float = 0.0,
                      dark_level: float | None = None):
    """``(level, censor)`` where counts pile up below the device's full scale, or None.

    A well that fills below the ADC's top leaves its mark in any set of counts: a spike
    of values, spread by the read noise, at the top of a tail that otherwise thins out.
    With ``w = 4 sqrt(dark_variance) + 1`` DN (four read-noise deviations), the counts
    within ``2 w`` of the largest one (the whole spike) are compared with the band ``4 w``
    below: a density ten times higher there (and at least 20 counts) is a plateau at the
    median of the top band, censored from ``w`` below it. Counts that reach the full
    scale are left to it (the caller's default). An analog read-out (no full scale) is
    not checked: the band is measured in DN, the steps of an ADC.

    Parameters
    ----------
    counts : array
        Any counts of the device (NumPy or CuPy).
    full_scale
        The device's largest count (None: an analog read-out, not checked).
    dark_variance
        Temporal variance of a dark or dim count, DN^2 (sets the band width).
    dark_level
        The counts of an all-off frame, DN: a pile-up within ``2 w`` of it is a device
        that sees (almost) no light, not a full well.
    """
    values = np.asarray(to_numpy(counts), np.float64).ravel()
    if values.size == 0 or full_scale is None:
        return None
    top = float(values.max())
    if full_scale is not None and top >= full_scale - 0.5:
        return None
    width = 4.0 * math.sqrt(max(dark_variance, 0.0)) + 1.0
    near = values[values >= top - 2 * width]
    below = np.count_nonzero((values >= top - 6 * width) & (values < top - 2 * width))
    if near.size < 20 or near.size < 10.0 * below / 2.0:
        return None
    level = float(np.median(near))
    if dark_level is not None and level <= dark_level + 2 * width:
        return None
    return level, level - width


def _saturation_levels(device, camera, saturation_dn):
    """``(censor, clip)``: the censoring level and the level predictions clip at."""
    full = device.full_scale
    clip = None if full is None else float(full)
    censor = None if full is None else float(full) - 0.5
    if camera is not None and math.isfinite(camera.saturation_dn):
        clip = float(camera.saturation_dn)
        censor = float(camera.censor_dn)
    if saturation_dn is not None:
        saturation_dn = float(saturation_dn)
        if not math.isfinite(saturation_dn):
            raise ValueError(f"saturation_dn = {saturation_dn!r}: expected a finite count "
                             "(DN) or None")
        censor = saturation_dn
        if clip is None:
            clip = saturation_dn
    return censor, clip


def _untrusted_rows(quality, censored, conflict, dark_saturated, used, few_anchors):
    """Rows that could not be calibrated, and why (the first reason that applies)."""
    reasons = {}
    typical = float(np.median(quality)) if quality.size else 1.0
    limit = max(QUALITY_MIN, QUALITY_FACTOR * typical)
    for row in np.flatnonzero(dark_saturated):
        reasons.setdefault(int(row), "dark frame saturated")
    for row in np.flatnonzero((censored > MAX_CENSORED_FRACTION) | (used == 0) | few_anchors):
        reasons.setdefault(int(row), "censored")
    for row in np.flatnonzero(conflict):
        reasons.setdefault(int(row), "alignment")
    for row in np.flatnonzero(~(quality <= limit)):
        reasons.setdefault(int(row), "residual")
    rows = np.array(sorted(reasons), np.int64)
    return rows, {int(r): reasons[int(r)] for r in rows}
