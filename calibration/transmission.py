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
of ``like``). Each half is fitted in :mod:`calibration.halves`, the halves aligned in
:mod:`calibration.alignment`, the censoring level set in :mod:`calibration.saturation`;
the steps hand each other the records of :mod:`calibration.records`.
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import numpy as np

from photon import array_module, to_numpy
from photon.support.arguments import check_number

from .acquisition import acquire_all
from .alignment import align
from .halves import (N_ANCHORS, REFERENCE_FRAMES, HalfCounts, HalfFit, HalfFrames, fit_half,
                     half_counts, half_frames, probe_count, reference_repeats)
from .priors import MIN_NEIGHBOUR_PAIRS, denoise_rows, row_neighbours
from .records import CountBlock, NoiseModel, RowModel, RowStatistics
from .refine import POLISH_MAX_INPUTS, polish_rows, refit_rows, row_statistics
from .saturation import SaturationLevels, detect_saturation, saturation_levels

__all__ = ["TMEstimate", "estimate_transmission_matrix", "min_frames", "mixed_frames",
           "QUALITY_FACTOR", "QUALITY_MIN", "MAX_CENSORED_FRACTION"]

MIN_ANCHORS = 2              # a row needs this many usable anchors (a plane)
MIXED_FRAMES_MIN = 32        # mixed frames: max(32, probes_per_input n_in / 8)
MIXED_FRAMES_PER_PROBE = 1.0 / 8.0
QUALITY_FACTOR = 3.0         # untrusted: row_quality > QUALITY_FACTOR x the median row ...
QUALITY_MIN = 3.0            # ... and > QUALITY_MIN (residual rms in noise units)
MAX_CENSORED_FRACTION = 0.5  # untrusted: more than half of a row's counts censored
QUALITY_BLOCKS = 1           # anchored-probe blocks per half scored in row_quality
INPUT_PROFILE_LAGS = 64      # lags of the estimated input correlation kept in the estimate


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
    noise_model : NoiseModel
        ``(a, b, c)`` of ``var(y) = a + b s + c s^2`` (DN^2) with ``s = y - dark``
        (:class:`calibration.records.NoiseModel`, a named tuple).
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
    noise_model: NoiseModel = NoiseModel(0.0, 0.0, 0.0)
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
        total += (1 + N_ANCHORS) * probe_count(n_half, probes_per_input) + REFERENCE_FRAMES
    return total + mixed_frames(n_in, probes_per_input)


# ---------------------------------------------------------------------- quality
def _noise_model(xp, halves, camera, digital: bool) -> NoiseModel:
    """``(a, b, c)`` of ``var(y) = a + b s + c s^2``, ``s = y - dark`` (DN^2).

    From the camera estimate (``a = sigma_d^2`` with the rounding's 1/12, ``b = K``) with
    ``c`` fitted on both halves' repeated reference frames (those with no censored
    repeat), or all three fitted there; ``dark`` from the first half's all-off count and
    fixed field.
    """
    fit_a, references = halves[0].fit, [half.counts.references for half in halves]
    y0_a = references[0].dark
    dark = y0_a - xp.minimum((fit_a.e0 ** 2).sum(-1), y0_a)
    ref_means = xp.concatenate([references[0].mean, references[1].mean])
    ref_vars = xp.concatenate([references[0].variance, references[1].variance])
    ref_ok = ~xp.concatenate([references[0].censored, references[1].censored])
    s = xp.maximum(ref_means - dark[None, :], 0.0)[ref_ok]
    v = ref_vars[ref_ok]
    if s.size == 0:
        return NoiseModel(0.0, 0.0, 0.0)
    if camera is not None:
        a = camera.dark_noise_dn ** 2 + (1.0 / 12.0 if digital else 0.0)
        b = camera.gain_dn_per_e
        resid = v - a - b * s
        c = float(to_numpy((resid * s ** 2).sum() / xp.maximum((s ** 4).sum(), 1e-300)))
        return NoiseModel(read_dn2=float(a), shot_dn=float(b), common_mode=max(c, 0.0))
    design = xp.stack([xp.ones_like(s), s, s ** 2], axis=1)
    scale = xp.maximum(xp.abs(design).max(axis=0), 1e-300)
    coef = xp.linalg.lstsq(design / scale, v, rcond=None)[0] / scale
    coef = [max(float(to_numpy(c)), 0.0) for c in coef]
    return NoiseModel(*coef)


def _mixed_weights(xp, counts, y0, censor, noise: NoiseModel):
    """Inverse noise variance of mixed-frame counts at their own level; 0 where censored.

    Returns ``(weights, keep)`` (k, n_out): 1 / DN^2, and 1.0 / 0.0 for a count kept.
    """
    keep = xp.ones_like(counts) if censor is None else (counts < censor).astype(counts.dtype)
    level = xp.maximum(counts - y0[None, :], 0.0)
    return keep / (noise.variance(level) + 1e-12), keep


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
    n_in = device.n_in
    if n_in < 4:
        raise ValueError(f"device.n_in = {n_in}: expected at least 4 inputs to calibrate")
    probes_per_input = check_number("probes_per_input", probes_per_input, low=1.0,
                                    unit="probes per input: fewer leave the least-squares "
                                         "problem underdetermined")
    levels = saturation_levels(device, camera, saturation_dn)
    xp = array_module(like)
    rng = np.random.default_rng(seed)
    ledger = _Ledger(censored=xp.zeros(device.n_out))
    columns = (np.arange(n_in // 2), np.arange(n_in // 2, n_in))
    # Without a camera estimate or an override, the first half's counts may show where a
    # well fills below the ADC's top: those levels then hold for both halves.
    half_a, levels = _calibrate_half(device, xp, rng, ledger, columns, 0, levels,
                                     probes_per_input, progress,
                                     detect=camera is None and saturation_dn is None)
    half_b, levels = _calibrate_half(device, xp, rng, ledger, columns, 1, levels,
                                     probes_per_input, progress, detect=False)
    halves = (half_a, half_b)
    # Mixed frames on both halves check the alignment found from the anchors.
    k = mixed_frames(n_in, probes_per_input)
    shown = (rng.random((k, n_in)) < 0.5).astype(np.uint8)
    counts_mix = ledger.acquire(device, xp.asarray(shown), progress=False)
    with ledger.computing():
        censor = levels.censor_dn
        ledger.count_censored(counts_mix, censor)
        mixed = CountBlock(frames=xp.asarray(shown, dtype=np.float64), counts=counts_mix)
        y0 = (halves[0].counts.references.dark + halves[1].counts.references.dark) / 2
        noise = _noise_model(xp, halves, camera, digital=device.full_scale is not None)
        alignment = align(xp, tuple(half.fit for half in halves),
                          tuple(half.anchors for half in halves), columns, mixed, y0, censor,
                          noise)
        joined = _join_halves(xp, halves, alignment.rotation, y0)
        variance_floor = _variance_floor(xp, y0, joined.model.dark)
        prior = _output_prior(xp, halves, joined.model, mixed, y0, censor, noise)
        model, conflict = prior.model, alignment.conflict
        if n_in <= POLISH_MAX_INPUTS:
            model = _polish(xp, halves, model, mixed, censor, noise, variance_floor)
            # Each row is now fitted to every count, the mixed frames included: a half left
            # conjugated would show in its residual, which decides alone.
            conflict = xp.zeros_like(conflict)
        scored = _refit_and_score(xp, halves, model, mixed, censor, noise, variance_floor)
        row_censored = ledger.censored / ledger.frames
    row_quality, row_censored, conflict = (to_numpy(a) for a in (scored.row_quality,
                                                                 row_censored, conflict))
    untrusted, reasons = _untrusted_rows(row_quality, row_censored, conflict,
                                         _dark_saturated(halves), to_numpy(scored.used),
                                         _few_anchors(halves))
    diagnostics = {"e0_half_mismatch_median": joined.e0_mismatch_median,
                   "handedness_margin_min": float(to_numpy(alignment.margin.min())),
                   "handedness_anchor_z_median": float(to_numpy(xp.median(alignment.anchor_z))),
                   "handedness_mixed_z_median": float(to_numpy(xp.median(alignment.mixed_z))),
                   "row_quality_median": float(np.median(row_quality)),
                   "mixed_frames": k,
                   "input_correlation_lags": [half.fit.correlation.significant
                                              if half.fit.correlation is not None else 0
                                              for half in halves],
                   "output_neighbours_per_row": prior.neighbours_per_row,
                   "output_prior_kappa": prior.kappa}
    correlation = halves[0].fit.correlation
    return TMEstimate(
        tm=to_numpy(scored.model.tm), reference_field=to_numpy(scored.model.reference_field),
        dark=to_numpy(scored.model.dark), frames=ledger.frames,
        acquisition_s=ledger.frames * device.frame_time_s, compute_s=ledger.compute_s,
        saturated_fraction=float(row_censored.mean()), diagnostics=diagnostics,
        saturation_dn=levels.saturation_dn, censor_dn=censor, row_quality=row_quality,
        row_censored=row_censored, untrusted=untrusted, untrusted_reasons=reasons,
        noise_model=noise,
        input_correlation=(None if correlation is None
                           else correlation.profile[:INPUT_PROFILE_LAGS]))


# ---------------------------------------------------------------------- its steps
@dataclass
class _Ledger:
    """What an estimate has spent so far (mutable; one per estimate).

    Attributes
    ----------
    censored : (n_out,) float
        Calibration counts at or above the censoring level, per output.
    frames : int
        Device frames shown.
    compute_s : float
        Wall-clock seconds of computation (acquisition excluded).
    """

    censored: object
    frames: int = 0
    compute_s: float = 0.0

    def acquire(self, device, frames, **options):
        """Show ``frames`` (:func:`calibration.acquisition.acquire_all`) and count them."""
        counts = acquire_all(device, frames, **options)
        self.frames += frames.shape[0]
        return counts

    @contextmanager
    def computing(self):
        """Time the block as computation."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.compute_s += time.perf_counter() - start

    def count_censored(self, counts, censor) -> None:
        """Add the counts at or above ``censor`` (DN; None: none) per output."""
        if censor is not None:
            self.censored += (counts >= censor).sum(axis=0)


@dataclass(frozen=True)
class _Half:
    """One half of the estimate: its inputs, what it showed, what it measured, its fit.

    Attributes
    ----------
    columns : (n_half,) int
        The half's input indices.
    shown : HalfFrames
        Its probe, anchor and reference frames (uint8).
    counts : HalfCounts
        Their counts by role, DN.
    anchors : (N_ANCHORS, n_in) float64
        Its anchors (on the other half's inputs), on the computation's backend.
    fit : HalfFit
        Its rows, each in its own frame.
    """

    columns: np.ndarray
    shown: HalfFrames
    counts: HalfCounts
    anchors: object
    fit: HalfFit


def _calibrate_half(device, xp, rng, ledger, columns, index, levels, probes_per_input,
                    progress, detect) -> tuple[_Half, SaturationLevels]:
    """Show half ``index``'s frames and fit its rows.

    ``detect``: look for a saturation plateau in these counts first (no camera estimate,
    no override); the levels found replace ``levels`` for this half and the next. Returns
    the half and the saturation levels in force.
    """
    signal = columns[index]
    m = probe_count(signal.size, probes_per_input)
    shown = half_frames(rng, device.n_in, signal, columns[1 - index], m)
    counts = ledger.acquire(device, xp.asarray(shown.frames), progress=progress,
                            description=f"calibrating half {index + 1}/2")
    with ledger.computing():
        if detect:
            # No camera estimate: look for the level where the counts pile up (a well
            # filling below the ADC's top) in the counts themselves.
            dark_repeats = reference_repeats(counts)[0]
            found = detect_saturation(counts, device.full_scale,
                                      float(to_numpy(xp.median(dark_repeats.var(axis=0,
                                                                                ddof=1)))),
                                      float(to_numpy(xp.median(dark_repeats))))
            if found is not None:
                levels = found
        ledger.count_censored(counts, levels.censor_dn)
        measured = half_counts(xp, counts, m, levels.censor_dn)
        fit = fit_half(xp, measured, xp.asarray(shown.probes, dtype=np.float64),
                       levels.censor_dn)
        half = _Half(columns=signal, shown=shown, counts=measured,
                     anchors=xp.asarray(shown.anchors, dtype=np.float64), fit=fit)
    return half, levels


@dataclass(frozen=True)
class _Joined:
    """The two halves in one frame per row.

    ``model``: the rows, the mean of the halves' fixed fields (shrunk to ``|e0|^2 <=
    y(0)``) and the dark level; ``e0_mismatch_median``: the median over rows of the
    halves' fixed-field difference (sqrt(DN), summed over its two parts).
    """

    model: RowModel
    e0_mismatch_median: float


def _join_halves(xp, halves, rotation, y0) -> _Joined:
    """Half B's rows and fixed field turned into half A's frame by ``rotation``; ``y0``
    (n_out,) the all-off count, DN."""
    fit_a, fit_b = halves[0].fit, halves[1].fit
    rows_a, e0_a = fit_a.rows, fit_a.e0
    rows_b = rotation @ fit_b.rows
    tm = xp.concatenate([rows_a[:, 0] + 1j * rows_a[:, 1], rows_b[:, 0] + 1j * rows_b[:, 1]],
                        axis=1)
    e0_b_in_a = (rotation @ fit_b.e0[..., None])[..., 0]
    e0 = (e0_a + e0_b_in_a) / 2
    reference_field = e0[:, 0] + 1j * e0[:, 1]
    # y(0) = |e0|^2 + dark with dark >= 0: a fixed field brighter than the dark frame
    # is noise in the (small) linear term; shrink it onto |e0|^2 <= y(0).
    bound = xp.sqrt(xp.maximum(y0, 0.0))
    magnitude = xp.abs(reference_field)
    reference_field = reference_field * xp.minimum(1.0, bound / xp.maximum(magnitude, 1e-300))
    dark = y0 - xp.abs(reference_field) ** 2
    mismatch = float(to_numpy(xp.median(xp.abs(e0_a - e0_b_in_a).sum(axis=1))))
    return _Joined(model=RowModel(tm=tm, reference_field=reference_field, dark=dark),
                   e0_mismatch_median=mismatch)


def _variance_floor(xp, y0, dark):
    """A small variance per row (DN^2) under the noise model's: 1e-4 of the row's signal
    and dark level, so that a count of a noise-free camera still has a finite weight."""
    return (1e-4 * xp.maximum(y0 - dark, 1.0)) ** 2 + (1e-4 * xp.abs(dark)) ** 2 + 1e-12


@dataclass(frozen=True)
class _OutputPrior:
    """The rows after the correlated-outputs step.

    ``model``: the rows (re-estimated from their neighbours, or as they were);
    ``neighbours_per_row``: neighbours per row on average; ``kappa``: the strength chosen
    (None: no output correlation, the rows kept).
    """

    model: RowModel
    neighbours_per_row: float
    kappa: float | None


def _output_prior(xp, halves, model, mixed, y0, censor, noise) -> _OutputPrior:
    """Correlated outputs (a speckle grain): each row from its aligned neighbours, the
    strength chosen on the mixed frames (no row was fitted to them)."""
    neighbours = row_neighbours(xp, model.tm)
    if neighbours.per_row < MIN_NEIGHBOUR_PAIRS:
        return _OutputPrior(model=model, neighbours_per_row=neighbours.per_row, kappa=None)
    fits = [half.fit for half in halves]
    energy = [(fit.rows ** 2).sum((1, 2)) for fit in fits]
    share = (fits[0].noise_share * energy[0] + fits[1].noise_share * energy[1]) / \
        xp.maximum(energy[0] + energy[1], 1e-300)
    weights, _ = _mixed_weights(xp, mixed.counts, y0, censor, noise)
    tm, kappa = denoise_rows(xp, model.tm, share, neighbours, mixed, weights)
    return _OutputPrior(model=replace(model, tm=tm), neighbours_per_row=neighbours.per_row,
                        kappa=kappa)


def _polish(xp, halves, model, mixed, censor, noise, variance_floor) -> RowModel:
    """Every row polished on every count of the calibration (a small device)."""
    n_out = model.tm.shape[0]
    every = [CountBlock(frames=xp.asarray(half.shown.body, dtype=np.float64),
                        counts=half.counts.body.reshape(-1, n_out)) for half in halves]
    return polish_rows(xp, model, every + [mixed], censor, noise, variance_floor)


@dataclass(frozen=True)
class _Scored:
    """The refitted rows and their quality.

    ``model``: each row rescaled, its fixed field and dark refitted; ``row_quality``
    (n_out,): the refit's rms residual in noise units; ``used`` (n_out,): the counts
    that entered it.
    """

    model: RowModel
    row_quality: object
    used: object


def _refit_and_score(xp, halves, model, mixed, censor, noise, variance_floor) -> _Scored:
    """Each row rescaled and its fixed field and dark refitted on the mixed frames and,
    per half, its probes and ``QUALITY_BLOCKS`` blocks of anchored probes; the residual
    is its quality."""
    blocks = [mixed]
    for half in halves:
        body, m = half.shown.body, half.counts.body.shape[1]
        blocks += [CountBlock(frames=xp.asarray(body[i * m:(i + 1) * m], dtype=np.float64),
                              counts=half.counts.body[i])
                   for i in range(1 + QUALITY_BLOCKS)]
    statistics = RowStatistics.zero()
    for block in blocks:
        statistics = statistics + row_statistics(xp, model, block, censor, noise,
                                                 variance_floor)
    refitted, rss = refit_rows(xp, model, statistics)
    row_quality = xp.sqrt(rss / xp.maximum(statistics.used, 1.0))
    return _Scored(model=refitted, row_quality=row_quality, used=statistics.used)


def _dark_saturated(halves) -> np.ndarray:
    """``(n_out,)`` bool: rows whose all-off frame was censored in either half."""
    return to_numpy(halves[0].counts.references.dark_censored
                    | halves[1].counts.references.dark_censored)


def _few_anchors(halves) -> np.ndarray:
    """``(n_out,)`` bool: rows left with fewer than ``MIN_ANCHORS`` anchors in a half."""
    left = [to_numpy(half.fit.anchors_used.sum(-1)) for half in halves]
    return (left[0] < MIN_ANCHORS) | (left[1] < MIN_ANCHORS)


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
