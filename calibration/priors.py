"""Correlations of a medium, estimated from a calibration's own counts, used as priors.

A correlated medium makes a TM's entries depend on their neighbours' (docs/design.md
sections 2 and 4): neighbouring mirrors (inputs) give correlated columns, a speckle grain
larger than a pixel gives correlated rows. Nothing here is told about a layout, a grain
size or a correlation length: each is measured on the estimates themselves, and a medium
with none leaves the estimates as they are.

**Inputs** (:func:`input_correlation`, :func:`map_functions`). The shared least-squares
solve gives, for every row and anchor, a linear function ``w`` of the frame whose
coefficients follow the row's TM entries. Their mean lag products
``c(d) = <w_i w_(i+d)>`` over positions ``i``, columns and rows, less the part the
least-squares noise puts there (``sigma^2 (P^T P)^-1``, from each column's residual),
estimate the correlation between inputs ``d`` apart in index order. A lag is significant
when it stands ``INPUT_Z`` standard errors clear of zero, the standard error measured on
the same functions with their inputs shuffled (which keeps every amplitude and the
number of independent rows, and destroys any order). With a significant lag the
functions are re-estimated under the Gaussian prior ``w ~ N(0, tau^2 C)``, ``C`` the
Toeplitz matrix of the estimated ``c(d)`` (each lag weighted by ``z^2 / (z^2 + 4)``, its
evidence), ``tau^2`` and the noise variance per column from the data:
``w = (P^T P + lambda C^-1)^-1 P^T s``, computed for every column at once in the
eigenbasis of ``C^(1/2) P^T P C^(1/2)``.

**Outputs** (:func:`row_neighbours`, :func:`denoise_rows`). Rows are known up to a phase
and a conjugation each, so their correlation is measured as
``a_jl = max(|<u_j, u_l>|, |<u_j, conj u_l>|)`` between unit rows. Unrelated rows give
``a^2`` of mean ``mu`` (about ``1 / n_in``; more with correlated inputs), measured as the
median over all pairs; a pair above ``mu ln(n_out / OUTPUT_FALSE_RATE)`` is a neighbour
(an expected ``OUTPUT_FALSE_RATE`` false neighbours per row). With at least half a
neighbour per row on average, each row is replaced by the best linear unbiased estimate
of its signal from itself and its strongest ``MAX_NEIGHBOURS`` neighbours, each turned
onto the row's phase and conjugation: with ``M`` the Gram matrix of these unit rows
(signal plus noise) and ``nu_j`` the row's own noise share, ``k_j <- k_j - nu_j |k_j|
sum_b z_b y_b`` with ``M^T z = e_0``. ``nu_j`` is ``kappa`` times the row's noise share
estimated from its anchor functions, ``kappa`` chosen on frames no estimate was fitted
to (the mixed frames) from ``KAPPAS`` (``0``: the rows as they were).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from photon import to_numpy

from .records import CountBlock
from .refine import normal_equations

__all__ = ["InputCorrelation", "column_noise", "input_correlation", "map_functions",
           "RowNeighbours",
           "row_neighbours", "denoise_rows", "INPUT_Z", "OUTPUT_FALSE_RATE", "KAPPAS"]

INPUT_Z = 5.0              # a lag product this many standard errors from zero is a correlation
INPUT_EVIDENCE_Z = 2.0     # lags enter the prior weighted by z^2 / (z^2 + INPUT_EVIDENCE_Z^2)
MIN_PRIOR_INPUTS = 8       # fewer inputs per half: no input prior
EIGEN_FLOOR = 1e-3         # prior variance floor, relative to the largest eigenvalue of C
SHUFFLE_SEED = 20260          # the shuffle behind the lag products' standard error
OUTPUT_FALSE_RATE = 0.005  # expected false neighbours per row
MIN_NEIGHBOUR_PAIRS = 0.5  # neighbours per row, on average, for an output correlation
MAX_NEIGHBOURS = 16        # neighbours a row is estimated from
KAPPAS = (0.0, 1.0, 3.0, 10.0, 30.0, 100.0)
MAX_NOISE_SHARE = 0.9
# Median of the larger of two independent exponentials of mean mu: mu ln(1 / (1 - 2^-1/2)).
_MAX_OF_TWO_MEDIAN = math.log(1.0 / (1.0 - 2.0 ** -0.5))


# ---------------------------------------------------------------------- inputs
@dataclass(frozen=True)
class InputCorrelation:
    """The correlation between inputs ``d`` apart, estimated from the anchor functions.

    Attributes
    ----------
    profile : (n,) float64
        ``c(d) / c(0)`` for ``d = 0 .. n - 1`` (``n`` inputs of the half), noise removed.
    z : (n,) float64
        Each lag's distance from zero in standard errors.
    significant : int
        Lags ``1 <= d < n / 2`` beyond ``INPUT_Z`` standard errors.
    """

    profile: np.ndarray
    z: np.ndarray
    significant: int

    @property
    def prior(self) -> np.ndarray | None:
        """The prior's correlation ``c(d)``, each lag weighted by its evidence; None
        when no lag is significant (the inputs are independent as far as the data
        tell)."""
        if not self.significant:
            return None
        n = self.profile.size
        weight = self.z ** 2 / (self.z ** 2 + INPUT_EVIDENCE_Z ** 2)
        weight[n // 2:] = 0.0
        prior = self.profile * weight
        prior[0] = 1.0
        return prior


def _lag_products(xp, w, weights):
    """``sum_col weights_col sum_i w[i, col] w[i + d, col] / (n - d)`` for every lag ``d``."""
    n = w.shape[0]
    spectrum = xp.fft.rfft(w, n=2 * n, axis=0)
    power = (spectrum.real ** 2 + spectrum.imag ** 2) @ weights
    return xp.fft.irfft(power, n=2 * n)[:n] / (n - xp.arange(n))


def _noise_lags(xp, pinv) -> tuple[float, float]:
    """Mean diagonal and mean off-diagonal entry of ``(P^T P)^-1 = pinv pinv^T``: the
    least-squares noise's lag products per unit of noise variance (lag 0, lags > 0; the
    off-diagonal entries differ from lag to lag only by chance)."""
    n = pinv.shape[0]
    trace = float((pinv ** 2).sum())
    total = float((pinv.sum(axis=0) ** 2).sum())
    return trace / n, (total - trace) / max(n * (n - 1), 1)


def column_noise(xp, probes, s, w):
    """Residual variance per column of the least-squares fit ``s ~ probes w``.

    ``|s - P w|^2 = |s|^2 - w . (P^T P) w`` for the least-squares ``w``: one ``n x n``
    product instead of ``m x n``.
    """
    m, n = probes.shape
    rss = (s ** 2).sum(axis=0) - (w * ((probes.T @ probes) @ w)).sum(axis=0)
    return xp.maximum(rss, 0.0) / max(m - n, 1)


def input_correlation(xp, probes, pinv, sigma2, w) -> InputCorrelation | None:
    """Estimate the correlation between inputs from least-squares anchor functions.

    Parameters
    ----------
    probes : (m, n) float64
        The half's probe frames.
    pinv : (n, m)
        Their pseudo-inverse.
    sigma2 : (columns,)
        Each column's noise variance (:func:`column_noise`).
    w : (n, columns)
        The least-squares functions: one per row and anchor.

    Returns
    -------
    InputCorrelation or None
        None for a half too small (fewer than 8 inputs, or no more probes than inputs).
    """
    m, n = probes.shape
    if n < MIN_PRIOR_INPUTS or m <= n:
        return None
    energy = (w ** 2).sum(axis=0)
    ok = energy > 0
    weights = xp.where(ok, 1.0 / xp.where(ok, energy, 1.0), 0.0)
    diagonal, off = _noise_lags(xp, pinv)
    noise = float((sigma2 * weights).sum()) * xp.where(xp.arange(n) == 0, diagonal, off)
    signal = _lag_products(xp, w, weights) - noise
    shuffle = xp.asarray(np.random.default_rng(SHUFFLE_SEED).permutation(n))
    null = _lag_products(xp, w[shuffle], weights) - noise
    half = n // 2
    lags = xp.arange(n)
    spread = null[1:half] - xp.mean(null[1:half])
    scale = float(xp.sqrt(xp.mean(spread ** 2 * (n - lags[1:half])))) if half > 1 else 0.0
    level = float(signal[0])
    if not level > 0 or not scale > 0:
        return None
    z = xp.abs(signal) * xp.sqrt(n - lags) / scale
    significant = int(((z[1:half] > INPUT_Z)).sum())
    return InputCorrelation(profile=np.asarray(to_numpy(signal / level)),
                            z=np.asarray(to_numpy(z)), significant=significant)


def map_functions(xp, probes, pinv, sigma2, w, prior):
    """Anchor functions re-estimated under the prior ``N(0, tau^2 C)``, ``C`` Toeplitz.

    Parameters
    ----------
    prior : (n,) array
        ``c(d)``, ``c(0) = 1`` (:attr:`InputCorrelation.prior`).

    Returns
    -------
    (n, columns) array
        ``(P^T P + lambda C^-1)^-1 P^T s`` per column, ``lambda = sigma^2 / tau^2`` from
        the column's residual and its energy above the noise.
    """
    m, n = probes.shape
    lags = np.arange(n)
    cov = xp.asarray(np.asarray(prior)[np.abs(lags[:, None] - lags[None, :])])
    gamma, basis = xp.linalg.eigh(cov)
    gamma = xp.maximum(gamma, EIGEN_FLOOR * float(gamma.max()))
    root = basis * xp.sqrt(gamma)[None, :]                          # C^(1/2)
    gram = probes.T @ probes
    s2, rotation = xp.linalg.eigh(root.T @ gram @ root)
    s2 = xp.maximum(s2, 0.0)
    noise_energy = sigma2 * float((pinv ** 2).sum())
    energy = (w ** 2).sum(axis=0)
    tau2 = xp.maximum(energy - noise_energy, 1e-3 * energy) / float(gamma.sum())
    lam = sigma2 / xp.maximum(tau2, 1e-300)
    # P^T s = (P^T P) w for the least-squares w (one n x n product instead of n x m).
    t = (rotation.T @ root.T @ gram) @ w
    t /= s2[:, None] + lam[None, :]
    return (root @ rotation) @ t


# ---------------------------------------------------------------------- outputs
@dataclass(frozen=True)
class RowNeighbours:
    """Each row's most correlated rows (see :func:`row_neighbours`).

    Attributes
    ----------
    index : (n_out, k) int
        Neighbour rows, strongest first.
    valid : (n_out, k) bool
        Whether the slot holds a neighbour.
    conjugate : (n_out, k) bool
        Whether the neighbour matches the row conjugated.
    phase : (n_out, k) complex
        The unit factor turning the neighbour (conjugated if so) onto the row's phase.
    per_row : float
        Neighbours per row, on average (all pairs above the threshold).
    null_mean : float
        ``mu``: the mean ``a^2`` of unrelated rows.
    direct, product : (n_out, n_out) complex
        ``D[l, m] = sum u_l conj(u_m)`` and ``E[l, m] = sum u_l u_m`` of the unit rows
        ``u`` (dimensionless): the overlaps :func:`denoise_rows` builds its Gram matrices
        from.
    """

    index: object
    valid: object
    conjugate: object
    phase: object
    per_row: float
    null_mean: float
    direct: object = None
    product: object = None


def row_neighbours(xp, tm) -> RowNeighbours:
    """Find each row's correlated rows, blind to the rows' phases and conjugations."""
    n_out = tm.shape[0]
    norms = xp.sqrt((tm.real ** 2 + tm.imag ** 2).sum(1))
    unit = tm / xp.maximum(norms, 1e-300)[:, None]
    re, im = unit.real, unit.imag
    rr, ii, ri = re @ re.T, im @ im.T, re @ im.T
    direct = (rr + ii) + 1j * (ri.T - ri)       # D[l, m] = sum u_l conj(u_m)
    product = (rr - ii) + 1j * (ri + ri.T)      # E[l, m] = sum u_l u_m
    a_direct, a_product = xp.abs(direct), xp.abs(product)
    score = xp.maximum(a_direct, a_product)
    off = ~xp.eye(n_out, dtype=bool)
    null_mean = float(xp.median(score[off] ** 2)) / _MAX_OF_TWO_MEDIAN if n_out > 1 else 0.0
    threshold = null_mean * math.log(max(n_out, 2) / OUTPUT_FALSE_RATE)
    neighbour = (score ** 2 > threshold) & off
    per_row = float(neighbour.sum()) / max(n_out, 1)
    k = max(1, min(MAX_NEIGHBOURS, n_out - 1))
    ranked = xp.where(neighbour, score, -1.0)
    index = xp.argsort(-ranked, axis=1)[:, :k]
    valid = xp.take_along_axis(ranked, index, 1) > 0
    conjugate = xp.take_along_axis(a_product > a_direct, index, 1)
    rows = xp.arange(n_out)[:, None]
    # <u_j, v> = sum conj(u_j) v: conj(D[j, l]) for v = u_l, conj(E[j, l]) for conj(u_l).
    overlap = xp.where(conjugate, xp.conj(product[rows, index]), xp.conj(direct[rows, index]))
    phase = xp.conj(overlap) / xp.maximum(xp.abs(overlap), 1e-300)
    return RowNeighbours(index=index, valid=valid, conjugate=conjugate, phase=phase,
                         per_row=per_row, null_mean=null_mean, direct=direct, product=product)


def _validation_residual(xp, re, im, counts, weights) -> float:
    """Weighted residual of counts after a per-row fit of ``a |f|^2 + 2 Re(conj(b) f) + c``."""
    normal, moment, total = normal_equations(xp, re ** 2 + im ** 2, re, im, weights, counts)
    diagonal = xp.diagonal(normal, axis1=1, axis2=2)
    normal = normal + (1e-10 * diagonal + 1e-300)[:, :, None] * xp.eye(4)
    theta = xp.linalg.solve(normal, moment[..., None])[..., 0]
    return float(xp.sum(xp.maximum(total - (theta * moment).sum(-1), 0.0)))


def denoise_rows(xp, tm, noise_share, neighbours: RowNeighbours, validation: CountBlock,
                 weights):
    """Each row's best linear unbiased estimate from itself and its aligned neighbours.

    Parameters
    ----------
    tm : (n_out, n) complex
        The rows, each in its own phase and conjugation.
    noise_share : (n_out,) array
        Each row's noise energy over its signal energy, as estimated (scaled by the
        chosen ``kappa``).
    neighbours
        :func:`row_neighbours` of ``tm``.
    validation
        Frames no row was fitted to (all inputs) and their counts: ``kappa`` is the one
        of ``KAPPAS`` whose rows predict them best.
    weights : (k, n_out) array
        Each validation count's inverse noise variance, 1 / DN^2 (0: left out).

    Returns
    -------
    (tm, kappa)
    """
    n_out, n = tm.shape
    norms = xp.sqrt((tm.real ** 2 + tm.imag ** 2).sum(1))
    unit = tm / xp.maximum(norms, 1e-300)[:, None]
    index = xp.concatenate([xp.arange(n_out)[:, None], neighbours.index], axis=1)
    valid = xp.concatenate([xp.ones((n_out, 1), bool), neighbours.valid], axis=1)
    flip = xp.concatenate([xp.zeros((n_out, 1), bool), neighbours.conjugate], axis=1)
    phase = xp.concatenate([xp.ones((n_out, 1), complex), neighbours.phase], axis=1)
    # Gram of the aligned unit rows y_a = q_a v_a: M[a, b] = q_a conj(q_b) sum v_a conj(v_b).
    a_idx, b_idx = index[:, :, None], index[:, None, :]
    fa, fb = flip[:, :, None], flip[:, None, :]
    d, e = neighbours.direct[a_idx, b_idx], neighbours.product[a_idx, b_idx]
    raw = xp.where(fa, xp.where(fb, xp.conj(d), xp.conj(e)), xp.where(fb, e, d))
    gram = phase[:, :, None] * xp.conj(phase)[:, None, :] * raw
    mask = valid[:, :, None] & valid[:, None, :]
    size = index.shape[1]
    eye = xp.eye(size)
    gram = xp.where(mask, gram, eye) + 1e-9 * eye
    basis = xp.zeros((n_out, size, 1), dtype=gram.dtype)
    basis[:, 0] = 1.0
    z = xp.linalg.solve(gram.transpose(0, 2, 1), basis)[..., 0] * valid   # M^T z = e_0
    correction = xp.zeros_like(tm)
    for slot in range(size):
        rows = unit[index[:, slot]]
        rows = xp.where(flip[:, slot, None], xp.conj(rows), rows)
        correction += (z[:, slot] * phase[:, slot])[:, None] * rows
    correction *= norms[:, None]
    frames, counts = validation.frames, validation.counts
    now_re, now_im = frames @ tm.real.T, frames @ tm.imag.T
    step_re, step_im = frames @ correction.real.T, frames @ correction.imag.T
    best_kappa, best_score = 0.0, None
    for kappa in KAPPAS:
        share = xp.clip(kappa * noise_share, 0.0, MAX_NOISE_SHARE)
        score = _validation_residual(xp, now_re - share[None, :] * step_re,
                                     now_im - share[None, :] * step_im, counts, weights)
        if best_score is None or score < best_score:
            best_kappa, best_score = kappa, score
    share = xp.clip(best_kappa * noise_share, 0.0, MAX_NOISE_SHARE)
    return tm - share[:, None] * correction, best_kappa
