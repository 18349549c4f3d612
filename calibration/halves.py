"""One half of a TM estimate: its frames, the anchor identity, the shared solve, the metric.

To calibrate the inputs of one half (``signal``), :func:`half_frames` draws ``m`` random
half-on probes on it and builds ``N_ANCHORS`` anchors on the other half (rows of a
Hadamard matrix over ``ANCHOR_BLOCKS`` blocks of consecutive inputs); the device is shown
the reference frames ``0, a_1 .. a_N`` (``REFERENCE_REPEATS`` times each), every probe
``x`` and every ``x + a_i``. :func:`half_counts` splits the counts by role and
:func:`fit_half` turns them into the half's rows, each in its own frame (a rotation or
reflection per row), with the anchor identity, one shared least-squares solve (censored
values filled pass after pass) and a five-parameter metric per row (docs/design.md
section 4, steps 1-5 and 7; the module notes of :mod:`calibration.transmission`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.linalg import hadamard

from photon import to_numpy

from .priors import InputCorrelation, column_noise, input_correlation, map_functions

__all__ = ["HalfFrames", "ReferenceCounts", "HalfCounts", "HalfFit", "half_frames",
           "half_counts", "reference_repeats", "fit_half", "apply_rows", "probe_count",
           "N_ANCHORS", "REFERENCE_REPEATS", "REFERENCE_FRAMES", "ANCHOR_BLOCKS"]

N_ANCHORS = 6
REFERENCE_REPEATS = 4
REFERENCE_FRAMES = (1 + N_ANCHORS) * REFERENCE_REPEATS   # frames ahead of the probes
MAX_METRIC_CONDITION = 1e4
CENSOR_PASSES = 12           # passes filling censored anchor values in the shared solve, at most
CENSOR_TOLERANCE = 1e-7      # ... as many as bring the fill's error below this fraction
CENSOR_FEW = 0.02            # columns missing at most this share are filled as one group
MAX_ANCHOR_MISSING = 0.25    # an anchor missing more of a row's values is dropped there
ANCHOR_BLOCKS = 8            # blocks of consecutive inputs the anchors light (Hadamard rows)


@dataclass(frozen=True)
class HalfFrames:
    """What one half shows the device (binary, uint8).

    Attributes
    ----------
    probes : (m, n_half) uint8
        The random half-on probes ``x`` on the half's inputs.
    anchors : (N_ANCHORS, n_in) uint8
        The anchors ``a_i``, on the other half's inputs.
    frames : (REFERENCE_FRAMES + (1 + N_ANCHORS) m, n_in) uint8
        Every frame in the order shown: the references ``0, a_1 .. a_N``
        (``REFERENCE_REPEATS`` each), the probes, then the probes plus each anchor.
    """

    probes: np.ndarray
    anchors: np.ndarray
    frames: np.ndarray

    @property
    def body(self) -> np.ndarray:
        """The frames after the references: probes, then probes plus each anchor."""
        return self.frames[REFERENCE_FRAMES:]


@dataclass(frozen=True)
class ReferenceCounts:
    """Counts of one half's reference frames ``0, a_1 .. a_N`` over their repeats.

    Attributes
    ----------
    mean : (1 + N_ANCHORS, n_out) float
        Mean count of each reference frame, DN (row 0: the all-off frame, ``y(0)``).
    variance : (1 + N_ANCHORS, n_out) float
        Temporal variance over the ``REFERENCE_REPEATS`` repeats (ddof 1), DN^2.
    censored : (1 + N_ANCHORS, n_out) bool
        Whether any repeat was censored (at or above the censoring level).
    """

    mean: object
    variance: object
    censored: object

    @property
    def dark(self):
        """``y(0)``: the all-off frame's mean count per output (n_out,), DN."""
        return self.mean[0]

    @property
    def dark_censored(self):
        """Whether the all-off frame was censored, per output (n_out,) bool."""
        return self.censored[0]


@dataclass(frozen=True)
class HalfCounts:
    """One half's counts by role, DN.

    Attributes
    ----------
    references : ReferenceCounts
        The reference frames.
    body : (1 + N_ANCHORS, m, n_out) float
        Counts of the frames after the references: block 0 of the probes ``x``, block
        ``i`` of ``x + a_i``.
    """

    references: ReferenceCounts
    body: object

    @property
    def probes(self):
        """``(m, n_out)``: counts of the probes ``x``."""
        return self.body[0]

    @property
    def anchored(self):
        """``(N_ANCHORS, m, n_out)``: counts of ``x + a_i``."""
        return self.body[1:]


@dataclass(frozen=True)
class HalfFit:
    """One half's rows, each in its own frame (a rotation or reflection per row).

    Attributes
    ----------
    rows : (n_out, 2, n_half) float
        Real and imaginary parts of ``K`` on this half, sqrt(DN) per input.
    e0 : (n_out, 2) float
        The fixed field in the same frame, sqrt(DN).
    w3 : (n_out, N_ANCHORS, n_half) float
        The anchor functions ``s_i = w3_i . x``, DN per input (zero: the anchor was
        dropped for that row).
    noise_share : (n_out,) float
        Each row's noise energy over its signal energy in the anchors' plane.
    correlation : InputCorrelation or None
        The correlation between inputs the anchor functions show (None: a half too small
        to tell).
    """

    rows: object
    e0: object
    w3: object
    noise_share: object
    correlation: InputCorrelation | None

    @property
    def anchors_used(self):
        """``(n_out, N_ANCHORS)`` bool: the anchors kept on each row."""
        return (self.w3 ** 2).sum(-1) > 0


def apply_rows(rows, probes):
    """``(m, n_out, c)`` values of per-row linear maps ``rows`` (n_out, c, n) on ``probes``
    (m, n): one GEMM."""
    n_out, c, n = rows.shape
    return (probes @ rows.reshape(n_out * c, n).T).reshape(probes.shape[0], n_out, c)


def _row_dot(design, target):
    """``sum_m design[r, m, k] target[r, m]`` for every row: batched ``D^T t``."""
    return (design.transpose(0, 2, 1) @ target[..., None])[..., 0]


def fit_half(xp, counts: HalfCounts, probes, censor) -> HalfFit:
    """Row frames of one half from its probe and anchor counts.

    Parameters
    ----------
    counts
        The half's counts: ``counts.probes`` (m, n_out) of the probes ``x``,
        ``counts.anchored`` (N_ANCHORS, m, n_out) of ``x + a_i`` and the reference frames
        (``counts.references``: mean counts of 0, a_1, ..., a_N, and which of them had a
        censored repeat: such an anchor is dropped for that row).
    probes : (m, n_half) float64
        The probes.
    censor
        Counts at or above it are censored (None: none are). An anchor value
        ``s_i(x)`` with ``y(x)`` or ``y(x + a_i)`` censored is missing: the shared
        least-squares solve fills it with its own current fit, pass after pass (up to
        :data:`CENSOR_PASSES`), which converges to the least-squares fit of the values
        that are there; the per-row metric fit leaves censored probes out.
    """
    counts_x, counts_anchor = counts.probes, counts.anchored
    reference, reference_censored = counts.references.mean, counts.references.censored
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
    return HalfFit(rows=rows, e0=e0, w3=w3, noise_share=noise_share, correlation=correlation)


def _metric(xp, w3, probes, counts_x, y0, censored_x):
    """Per-row plane and metric: ``y(x) - y(0) = w^T Q w + q^T w`` with ``w`` in the plane.

    Also each row's noise share: the anchor functions' energy outside their plane is
    noise (the signal is rank 2), so ``2 mean(lambda_1 .. lambda_(A-2)) / (lambda_(A-1) +
    lambda_A - 2 noise)`` estimates the noise over the signal energy of the plane.
    Returns ``(rows, e0, noise_share)``, the fields of :class:`HalfFit` of those names.
    """
    # Each row's anchor functions span a plane: keep its top-2 principal directions.
    gram = w3 @ w3.transpose(0, 2, 1)                               # (n_out, anchors, anchors)
    eigen, vectors = xp.linalg.eigh(gram)
    used = ((w3 ** 2).sum(-1) > 0).sum(-1)
    noise = xp.where(used > 2, eigen[:, :-2].sum(-1) / xp.maximum(used - 2, 1), 0.0)
    noise_share = 2.0 * noise / xp.maximum(eigen[:, -2:].sum(-1) - 2.0 * noise, 1e-300)
    plane = vectors[:, :, -2:]                                      # (n_out, anchors, 2)
    w2 = plane.transpose(0, 2, 1) @ w3                              # (n_out, 2, n_half)
    w = apply_rows(w2, probes).transpose(1, 0, 2)                  # (n_out, m, 2)
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


def probe_count(n_half: int, probes_per_input: float) -> int:
    """Probes ``m`` of a half of ``n_half`` inputs: ``max(ceil(probes_per_input n_half),
    n_half + 8)`` (enough for a well-conditioned least-squares solve)."""
    return max(int(np.ceil(probes_per_input * n_half)), n_half + 8)


def half_frames(rng, n_in, signal, anchor_region, m) -> HalfFrames:
    """Probe and anchor frames for calibrating the columns ``signal`` with ``m`` probes
    (drawn from ``rng``), anchors on the columns ``anchor_region``."""
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
    return HalfFrames(probes=probes, anchors=anchors, frames=np.concatenate([references, frames]))


def half_counts(xp, counts, m: int, censor) -> HalfCounts:
    """Split one half's counts (all its frames, in :func:`half_frames` order) by role.

    ``censor``: counts at or above it are censored (DN; None: none are).
    """
    n_out = counts.shape[1]
    repeats = reference_repeats(counts)
    mean = repeats.mean(axis=1)
    censored = (repeats >= censor).any(axis=1) if censor is not None else \
        xp.zeros(mean.shape, bool)
    body = counts[REFERENCE_FRAMES:].reshape(1 + N_ANCHORS, m, n_out)
    references = ReferenceCounts(mean=mean, variance=repeats.var(axis=1, ddof=1),
                                 censored=censored)
    return HalfCounts(references=references, body=body)


def reference_repeats(counts):
    """The reference frames' counts (1 + N_ANCHORS, REFERENCE_REPEATS, n_out), DN: the
    first :data:`REFERENCE_FRAMES` of a half's counts."""
    return counts[:REFERENCE_FRAMES].reshape(1 + N_ANCHORS, REFERENCE_REPEATS, counts.shape[1])


