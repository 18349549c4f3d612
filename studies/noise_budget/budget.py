"""Measure a device's feedback against ``B e``, source by source, next to the predictions.

The reference ``B e = M e`` is the clean twin's linear map (:mod:`.devices`) applied
exactly; each source is switched on alone over the clean twin, its operator fitted at
the exposure the device settles on and the same errors projected; its *measured*
contribution is the mean square difference with the clean twin's projection of the same
encoded errors (the encoding's own error, ``M (e_q - e)``, is the ``encoding`` source).
The laser's power drift is one draw of a slow process per fit: it is measured over many
fits (``laser_realizations`` devices, each with its own laser), each projecting the
first errors after ``elapsed_s``. The total is the device with everything on against
``B e``.

Each prediction comes from :class:`~.predict.DeviceModel`, built from what a user knows
(:mod:`.knowledge`): never from the tested devices or their fits. The check
(:func:`budget_check`) compares the two within bounds set by the measurement's sampling
error. The budget also splits the feedback's SNR into the optics' (every physical
source, the encoding exact) and the encoding's (the optics exact), for the error set's
encoding and the other one.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from photon.support.arguments import check_choice, check_int
from photon.support.progress import Progress
from photon.support.threads import one_blas_thread

from .devices import (SOURCES, budget_config, clean_config, fit_operator, project,
                      source_overrides)
from .errors import ENCODINGS, ErrorSet, classification_errors
from .knowledge import DeviceKnowledge, device_knowledge
from .predict import DeviceModel

__all__ = ["BUDGET_CHECK", "INPUTS", "TM_REALIZATIONS", "noise_budget", "budget_check", "feedback_fidelity",
           "REALIZATIONS", "LASER_REALIZATIONS", "LASER_ROWS"]

#: The acceptance band of measured / predicted per source (widened to ``z`` standard
#: errors of the measurement where that is wider) and of the sum against the total.
BUDGET_CHECK = {"ratio_low": 0.8, "ratio_high": 1.25, "sum_tolerance": 0.2, "z": 3.0}
REALIZATIONS = 8           # noise realizations of each stochastic source
LASER_REALIZATIONS = 256   # fits over which the laser's power drift is measured
TM_REALIZATIONS = 24       # media over which the polarizer's leak is measured
LASER_ROWS = 16            # error vectors each of them projects (at most)
_FLOOR = 1e-9              # contributions below this fraction of the signal are float32 rounding

#: Where each prediction's inputs come from (the page's column).
INPUTS = {
    "shot": "gain K: photon transfer (calibrate, separate frames); mean counts, row gains: "
            "the TM model (calibrate)",
    "read": "dark noise K sigma_r: dark frames of the camera estimate; row gains: the TM model",
    "dark": "dark current: dark frames at growing exposures (estimate_dark_current); K: "
            "camera estimate; exposure: the device's setting",
    "adc": "bits, full scale: configuration; black offset: camera estimate; mean counts, row "
           "gains: the TM model",
    "rin": "rin_rms: configuration (laser data sheet); mean counts, row gains: the TM model",
    "laser_drift": "drift_rms, drift_time_s: configuration (laser data sheet); block times: "
                   "frames x frame time",
    "fixed_pattern": "flat field: the camera alone under a uniform light (estimate_flat_field); "
                     "DSNU cancels",
    "dmd_leakage": "contrast: configuration (DMD data sheet); fields: the TM model",
    "polarizer": "extinction ratio: configuration; reference responses: the TM model",
    "tm_drift": "decorrelation time: repeated frames on a fresh device "
                "(estimate_decorrelation_time); amplitudes |m_j|: the TM model",
    "encoding": "the encoders' documented rules on the errors; entry variance of M: the TM "
                "model's operator",
}


def _mean_and_se(squares: np.ndarray) -> tuple[float, float]:
    """Mean of the (n, S) squared errors of a noise-free source and its standard error.

    Given the errors (which the prediction sees too), what is left to chance is the
    device's transmission matrix, one independent row per output: the standard error
    of the outputs' means.
    """
    rows = squares.mean(axis=0)
    se = float(rows.std(ddof=1)) / math.sqrt(rows.size) if rows.size > 1 else 0.0
    return float(squares.mean()), se


def _ratio_estimate(measured, predicted, weights) -> tuple[float, float]:
    """Weighted mean of per-realization measurements and its standard error, with each
    realization's own prediction as a control variate (their errors differ): the
    standard error of ``sum w x / sum w p`` times ``sum w p / sum w``."""
    x, p, w = (np.asarray(a, np.float64) for a in (measured, predicted, weights))
    mean = float((w * x).sum() / w.sum())
    if x.size < 2 or not (w * p).sum() > 0:
        return mean, None
    ratio = float((w * x).sum() / (w * p).sum())
    spread = math.sqrt(float((w ** 2 * (x - ratio * p) ** 2).sum()) * x.size / (x.size - 1))
    return mean, spread / float(w.sum())


def _snr_db(signal: float, noise: float) -> float | None:
    return 10.0 * math.log10(signal / noise) if noise > 0 and math.isfinite(noise) else None


class _Bench:
    """The devices a budget measures: the clean twin, the full device, each source alone."""

    def __init__(self, config, error_set: ErrorSet, exposure_us: float, elapsed_s: float):
        self.config, self.error_set = config, error_set
        self.exposure_us, self.elapsed_s = exposure_us, elapsed_s
        self.clean_config = clean_config(config, exposure_us)
        clean = fit_operator(self.clean_config, error_set)
        self.matrix = np.asarray(clean.effective_matrix(), np.float64)           # (S, C)
        self.exact = error_set.errors.astype(np.float64) @ self.matrix.T        # B e
        self.signal = project(clean, error_set).output                          # M e_q
        self.signal_variance = float((self.exact ** 2).mean())

    def source(self, overrides: dict, error_set: ErrorSet | None = None,
               elapsed_s: float = 0.0):
        """Project through the clean twin with ``overrides``: (projection, its fit's seconds)."""
        opu = fit_operator(self.clean_config.replace(**overrides), error_set or self.error_set)
        fit_s = opu.device_.frames_acquired * float(opu.device_.frame_time_s)
        return project(opu, error_set or self.error_set, elapsed_s), fit_s

    def chunks(self, realizations: int) -> list[tuple[slice, ErrorSet]]:
        """``(rows, error set)`` of each realization: whole batches, the error set split
        into ``realizations`` parts (each the whole set when it has fewer batches)."""
        es, b = self.error_set, self.error_set.batch_size
        n = es.errors.shape[0]
        n_batches = math.ceil(n / b)
        if n_batches < realizations:
            return [(slice(0, n), es)] * realizations
        bounds = np.linspace(0, n_batches, realizations + 1).round().astype(int)
        out = []
        for first, last in zip(bounds[:-1], bounds[1:]):
            rows = slice(first * b, min(last * b, n))
            out.append((rows, ErrorSet(es.name, es.errors[rows], b, es.encoder, es.n_bits)))
        return out


def _entry(measured: float, se: float | None, parts: dict, signal_variance: float) -> dict:
    predicted = float(sum(parts.values()))
    tiny = _FLOOR * signal_variance
    ratio = measured / predicted if predicted > tiny and math.isfinite(predicted) else None
    return {"measured": float(measured), "measured_se": se, "predicted": predicted,
            "ratio": ratio, "on": True, "parts": {k: float(v) for k, v in parts.items()}}


#: Noise seeds each source's realizations vary (the medium's drift for the TM).
_NOISE_SEEDS = {"shot": ("camera",), "read": ("camera",), "dark": ("camera",),
                "rin": ("laser",), "tm_drift": ("tm_drift",), "laser_drift": ("laser",)}
_SEED_STEP = 7919


def _realizations(bench: _Bench, name: str, overrides: dict, realizations: int, bar,
                  elapsed_s: float = 0.0):
    """Measure a stochastic source over independent realizations of its noise.

    Realization ``k`` varies the source's noise seeds and projects the ``k``-th part of
    the error set (:meth:`_Bench.chunks`). Returns each realization's ``(rows,
    projection, fit seconds, mean square difference with the clean twin)``.
    """
    seeds = bench.config.seeds
    runs = []
    for k, (rows, chunk) in enumerate(bench.chunks(realizations)):
        shifted = {f"seeds__{key}": getattr(seeds, key) + _SEED_STEP * (k + 1)
                   for key in _NOISE_SEEDS[name]}
        projection, fit_s = bench.source({**overrides, **shifted}, chunk, elapsed_s)
        value = float(((projection.output - bench.signal[rows]) ** 2).mean())
        runs.append((rows, projection, fit_s, value))
    bar.update()
    return runs


def _typical(entry: dict, measured, predicted) -> dict:
    """Check a stochastic source on its typical realization: the median over realizations
    of measured / predicted, and its standard error (``1.2533 x 1.4826 MAD / sqrt(R)``).

    A row of the operator's fit in the blend between its reference and probe sizing
    (docs/design.md section 3) moves in gain with the realization's noise, and can cost
    more than a small source's variance in one realization; the mean (``measured``)
    keeps it, the median does not. ``outlier_realizations`` counts those above twice the
    lower quartile.
    """
    if entry["ratio"] is None:        # predicted zero: checked against the float32 floor
        return entry
    ratios = np.asarray(measured, np.float64) / np.asarray(predicted, np.float64)
    median = float(np.median(ratios))
    mad = float(np.median(np.abs(ratios - median)))
    entry["ratio_of_means"] = entry["ratio"]
    entry["ratio"] = median
    entry["ratio_se"] = 1.2533 * 1.4826 * mad / math.sqrt(ratios.size)
    entry["outlier_realizations"] = int((ratios > 2.0 * float(np.percentile(ratios, 25))).sum())
    entry["check_statistic"] = "median over realizations"
    return entry


def _frame_source(variance_of, *, common: bool = False):
    """A camera-frame noise source: its per-frame count variance, propagated (frames and fit)."""
    def run(bench: _Bench, model: DeviceModel, name: str, overrides: dict, bar,
            realizations: int) -> dict:
        runs = _realizations(bench, name, overrides, realizations, bar)
        variance = variance_of(model)
        frames = model.frame_noise(variance, per_error=True)
        fit = model.fit_noise(variance, common=common)
        predicted = [float(frames[rows].mean()) + fit * float(model.error_power[rows].mean())
                     for rows, *_ in runs]
        values = [run[3] for run in runs]
        measured, se = _ratio_estimate(values, predicted,
                                       [run[1].output.shape[0] for run in runs])
        parts = {"frames": float(frames.mean()), "fit": fit}
        entry = _entry(measured, se, parts, bench.signal_variance)
        entry["realizations"] = realizations
        return _typical(entry, values, predicted) if realizations > 2 else entry
    return run


def _acquired_frames(error_set: ErrorSet) -> np.ndarray:
    """Every frame the projection of ``error_set`` shows: each batch's planes and their
    complements (the error set's own encoder) and the two reference frames."""
    c = error_set.n_classes
    frames = [np.ones((1, c), np.uint8), np.zeros((1, c), np.uint8)]
    for _, batch in error_set.batches():
        planes = np.asarray(error_set.make_encoder().fit(batch).encode(batch), np.uint8)
        flat = planes.reshape(-1, c)
        frames += [flat, 1 - flat]
    return np.concatenate(frames)


def _measure_dark(bench, model, name, overrides, bar, realizations) -> dict:
    """Dark current, end to end: its contribution to the frames the projection acquires.

    The frames the projection shows (planes, complements, references) are acquired with
    the light on at the device's exposure, ``max(1, R / 4)`` times, by the clean twin
    with the dark current on and without it (the same seeds: the difference is the dark
    electrons alone); the variance of the difference, in the TM model's counts (scaled by
    the ratio of the model's mean signal to the device's over the same frames), against
    ``K^2 i_d t``, is propagated through the projection's coefficients, as any frame
    noise. A difference
    of whole projections does not resolve it: at a bench's exposure a frame holds a few
    dark electrons per thousand outputs, and the few that land on the dim rows the
    fit's references weigh most dominate such a difference.
    """
    from devices import VirtualDevice  # noqa: PLC0415

    frames = _acquired_frames(bench.error_set)
    repeats = max(1, realizations // 4)
    dark = VirtualDevice(bench.clean_config.replace(**overrides)).open()
    clean = VirtualDevice(bench.clean_config).open()
    squares, signal = [], 0.0
    for _ in range(repeats):
        reference = np.asarray(clean.acquire(frames), np.float64)
        difference = np.asarray(dark.acquire(frames), np.float64) - reference
        squares.append((difference - difference.mean()) ** 2)
        signal += float(reference.mean()) - bench.clean_config.camera.black_offset_dn
    bar.update()
    # In the TM model's counts: the same frames' mean signal sets the scale (a camera
    # whose gain is not what its estimate says scales the dark variance and the signal
    # alike).
    scale2 = (float(model.counts(frames).mean()) / (signal / repeats)) ** 2
    squares = np.concatenate(squares) * scale2
    frame_variance = float(squares.mean())
    frame_se = float(squares.std(ddof=1)) / math.sqrt(squares.size)
    unit = model.frame_noise(lambda mu: np.ones(np.shape(mu)))
    entry = _entry(unit * frame_variance, unit * frame_se,
                   {"frames": model.frame_noise(_dark(model))}, bench.signal_variance)
    entry["acquired_frames"] = int(frames.shape[0] * repeats)
    entry["frame_variance_dn2"] = frame_variance
    return entry


def _shot(model):
    gain = float(model.knowledge.camera.gain_dn_per_e)
    return lambda mu: gain * np.maximum(np.asarray(mu, np.float64), 0.0)


def _read(model):
    dark_noise2 = float(model.knowledge.camera.dark_noise_dn) ** 2
    return lambda mu: np.full(np.shape(mu), dark_noise2)


def _dark(model):
    k = model.knowledge
    electrons = k.dark_current.electrons(k.exposure_us) if k.dark_current is not None else 0.0
    variance = float(k.camera.gain_dn_per_e) ** 2 * electrons
    return lambda mu: np.full(np.shape(mu), variance)


def _rin(model):
    rin = float(model.knowledge.config.laser.rin_rms)
    return lambda mu: (rin * np.asarray(mu, np.float64)) ** 2


def _deterministic(bench: _Bench, overrides: dict, bar) -> tuple[float, float]:
    """A noise-free source: one projection of the whole error set, mean and its se."""
    projection, _ = bench.source(overrides)
    bar.update()
    return _mean_and_se((projection.output - bench.signal) ** 2)


def _measure_adc(bench, model, name, overrides, bar, realizations) -> dict:
    measured, se = _deterministic(bench, overrides, bar)
    full_scale = model.knowledge.config.camera.full_scale_dn

    def error2(mu):
        return model.rounding_error2(mu, full_scale)

    parts = {"frames": model.rounding_noise(full_scale),
             "fit": model.fit_noise(error2, rounding=True)}
    return _entry(measured, se, parts, bench.signal_variance)


def _measure_fixed_pattern(bench, model, name, overrides, bar, realizations) -> dict:
    """PRNU and DSNU over ``R`` cameras (fixed-pattern seeds), each predicted from its own
    flat field (the camera alone under a uniform light, :func:`estimate_flat_field`)."""
    from calibration.camera import estimate_flat_field  # noqa: PLC0415
    from photon import Camera  # noqa: PLC0415

    known = model.knowledge.config
    seeds = bench.config.seeds
    values, predicted, weights = [], [], []
    for k, (rows, chunk) in enumerate(bench.chunks(realizations)):
        shift = 0 if k == 0 else _SEED_STEP * k
        if k == 0:
            flat = model.knowledge.flat_field
        else:
            camera = Camera(known.camera, known.n_out, noise_seed=known.seeds.camera + shift,
                            fixed_pattern_seed=known.seeds.fixed_pattern + shift)
            flat = estimate_flat_field(camera, known.laser.wavelength_nm)
        projection, _ = bench.source({**overrides,
                                      "seeds__fixed_pattern": seeds.fixed_pattern + shift},
                                     chunk)
        values.append(float(((projection.output - bench.signal[rows]) ** 2).mean()))
        predicted.append(model.flat_field_error(flat.gain, rows))
        weights.append(projection.output.shape[0])
    bar.update()
    measured, se = _ratio_estimate(values, predicted, weights)
    entry = _entry(measured, se, {"flat_field": float(np.average(predicted, weights=weights))},
                   bench.signal_variance)
    entry["realizations"] = realizations
    return _typical(entry, values, predicted) if realizations > 2 else entry


def _measure_leakage(bench, model, name, overrides, bar, realizations) -> dict:
    measured, se = _deterministic(bench, overrides, bar)
    return _entry(measured, se, {"phase_turn": model.leakage_error()}, bench.signal_variance)


def _measure_polarizer(bench, model, overrides, bar, tm_realizations: int) -> dict:
    """The polarizer's leak over ``tm_realizations`` media (the configured TM first).

    The crossed speckle's error is carried by the few rows whose reference response is
    mostly the crossed polarization's, so one TM measures it to about 30 % and predicts
    it (from the rows' law given their responses) to about 20 %. Each further medium is a
    device of its own (the TM's seed shifted), known to its user by its own calibration
    (:func:`~.knowledge.device_knowledge` on the configuration the user knows); the
    check reads the ratio of the summed measurements to the summed predictions, with the
    standard error of that ratio from the media's spread (which holds both errors).
    """
    values, predicted, first_se, first_measured_se = [], [], None, None
    known_ratio = (None if model.knowledge.config.polarizer is None
                   else model.knowledge.config.polarizer.extinction_ratio)
    for k in range(tm_realizations):
        if k == 0:
            bench_k, model_k = bench, model
        else:
            shift = {"seeds__tm": bench.config.seeds.tm + _SEED_STEP * k}
            knowledge = device_knowledge(model.knowledge.config.replace(**shift),
                                         bench.error_set)
            bench_k = _Bench(bench.config.replace(**shift), bench.error_set,
                             knowledge.exposure_us, bench.elapsed_s)
            model_k = DeviceModel(knowledge, bench.error_set)
        projection, _ = bench_k.source(overrides)
        measured, se = _mean_and_se((projection.output - bench_k.signal) ** 2)
        value, predicted_se = model_k.polarizer_error(known_ratio, with_se=True)
        if k == 0:
            first_se, first_measured_se = predicted_se, se
        values.append(measured / bench_k.signal_variance)      # in units of each signal
        predicted.append(value / bench_k.signal_variance)
    bar.update()
    scale = bench.signal_variance
    measured, se = _ratio_estimate(values, predicted, np.ones(tm_realizations))
    entry = _entry(measured * scale, None if se is None else se * scale,
                   {"crossed_speckle": float(np.mean(predicted)) * scale},
                   bench.signal_variance)
    entry["tm_realizations"] = tm_realizations
    if tm_realizations > 1:
        # The ratio of sums' standard error (delta method): the mean's, over the mean prediction.
        entry["ratio_se"] = float(se / np.mean(predicted))
        entry["check_statistic"] = f"ratio of sums over {tm_realizations} media"
    else:  # one medium: its own measurement error and the prediction's, combined
        entry["measured_se"] = first_measured_se
        entry["predicted_relative_se"] = first_se
    return entry


def _measure_tm_drift(bench, model, name, overrides, bar, realizations) -> dict:
    runs = _realizations(bench, name, overrides, realizations, bar, bench.elapsed_s)
    tau = model.knowledge.decorrelation.tau_s
    predicted = [model.tm_drift_error(projection.row_times() + fit_s, tau, rows)
                 for rows, projection, fit_s, _ in runs]
    _, predicted_se = model.tm_drift_error(runs[0][1].row_times() + runs[0][2], tau, runs[0][0],
                                           with_se=True)
    weights = [run[1].output.shape[0] for run in runs]
    measured, se = _ratio_estimate([run[3] for run in runs], predicted, weights)
    entry = _entry(measured, se, {"decorrelation": float(np.average(predicted,
                                                                     weights=weights))},
                   bench.signal_variance)
    entry["realizations"] = realizations
    entry["predicted_relative_se"] = predicted_se
    return _typical(entry, [run[3] for run in runs], predicted) if realizations > 2 else entry


def _measure_encoding(bench, model, name, overrides, bar, realizations) -> dict:
    measured, se = _mean_and_se((bench.signal - bench.exact) ** 2)
    return _entry(measured, se, {"quantization": model.encoding_error()}, bench.signal_variance)


def _measure_laser_drift(bench, model, overrides, bar, realizations: int) -> dict:
    """Many fits, each with its own laser, each projecting one part of the errors after
    ``elapsed_s``: the drift is one draw per fit, so its mean square needs many."""
    chunks = _laser_chunks(bench.error_set, realizations)
    seeds = bench.config.seeds
    clean, references = fit_operator(bench.clean_config, chunks[0][1]), {}
    measured, predicted = [], []
    for k, (rows, chunk) in enumerate(chunks):
        if rows.start not in references:   # the clean twin's projection of the re-batched part
            references[rows.start] = project(clean, chunk).output
        laser = {"seeds__laser": seeds.laser + _SEED_STEP * (k + 1)}
        projection, _ = bench.source({**overrides, **laser}, chunk, bench.elapsed_s)
        measured.append(float(((projection.output - references[rows.start]) ** 2).mean()))
        predicted.append(model.laser_drift_error(projection.row_times(), rows))
    bar.update()
    measured, se = _ratio_estimate(measured, predicted, np.ones(len(measured)))
    entry = _entry(measured, se, {"gain": float(np.mean(predicted))}, bench.signal_variance)
    entry["realizations"] = realizations
    entry["rows"] = int(chunks[0][1].errors.shape[0])
    return entry


def _laser_chunks(error_set: ErrorSet, realizations: int) -> list[tuple[slice, ErrorSet]]:
    """One batch (at most ``LASER_ROWS`` rows, re-batched if longer) per realization,
    cycling over the error set's batches."""
    b = error_set.batch_size
    n = error_set.errors.shape[0]
    rows_per = min(b, LASER_ROWS, n)
    starts = list(range(0, n, b))
    out = []
    for k in range(realizations):
        start = starts[k % len(starts)]
        rows = slice(start, min(start + rows_per, n))
        out.append((rows, ErrorSet(error_set.name, error_set.errors[rows], rows_per,
                                   error_set.encoder, error_set.n_bits)))
    return out


_MEASURES = {
    "shot": _frame_source(_shot),
    "read": _frame_source(_read),
    "dark": _measure_dark,
    "adc": _measure_adc,
    "rin": _frame_source(_rin, common=True),
    "fixed_pattern": _measure_fixed_pattern,
    "dmd_leakage": _measure_leakage,
    "tm_drift": _measure_tm_drift,
    "encoding": _measure_encoding,
}


def _snr_split(bench: _Bench, full_config, error_set: ErrorSet) -> dict:
    """Total, optical and encoding SNR (dB) of ``error_set`` on the full device."""
    clean = project(fit_operator(bench.clean_config, error_set), error_set).output
    full = project(fit_operator(full_config, error_set, exposure_us=bench.exposure_us),
                   error_set, bench.elapsed_s).output
    signal = bench.signal_variance
    total = float(((full - bench.exact) ** 2).mean())
    optical = float(((full - clean) ** 2).mean())
    encoding = float(((clean - bench.exact) ** 2).mean())
    return {"encoder": error_set.encoder, "n_bits": error_set.n_bits
            if error_set.encoder == "bitplanes" else None,
            "total_db": _snr_db(signal, total), "optical_db": _snr_db(signal, optical),
            "encoding_db": _snr_db(signal, encoding), "total_variance": total,
            "optical_variance": optical, "encoding_variance": encoding}


def noise_budget(device="lab-bench", error_set: ErrorSet | None = None, *, n_out: int = 512,
                 macropixel_mirrors: int = 64, elapsed_s: float = 60.0,
                 device_options: dict | None = None, sources: Sequence[str] | None = None,
                 progress: bool | None = None, knowledge: DeviceKnowledge | None = None,
                 realizations: int = REALIZATIONS,
                 laser_realizations: int = LASER_REALIZATIONS,
                 tm_realizations: int = TM_REALIZATIONS,
                 compare_encodings: bool = True) -> dict:
    """Measure the device's feedback against ``B e`` and its noise budget, source by source.

    Parameters
    ----------
    device
        Preset name, YAML path or :class:`photon.DeviceConfig` of a virtual device.
    error_set
        The errors (None: :func:`~.errors.classification_errors` of the digits MLP).
    n_out
        Outputs ``S`` of the feedback device (the sum of the hidden widths).
    macropixel_mirrors
        DMD mirrors per class (as :func:`~dfa_bridge.training.feedback.make_feedback`).
    elapsed_s
        Device seconds between the operator's fit and the projection (drift acts over it).
    device_options
        Overrides of the device configuration (``camera__adc_bits=6`` ...).
    sources
        Sources to measure (None: all of :data:`SOURCES`).
    progress
        Progress bar over the devices measured.
    knowledge
        What the predictions may use (None: :func:`~.knowledge.device_knowledge` of this
        device, from separate frames). Knowledge of another configuration models a
        device that differs from what its user knows: a fault behind the predictions'
        back.
    realizations
        Independent realizations of the noise over which each stochastic source (shot,
        read and dark noise, RIN, TM drift) is measured, each fitting its own operator
        and projecting its part of the errors.
    laser_realizations
        Fits over which the laser's power drift is measured.
    tm_realizations
        Media (transmission matrices) over which the polarizer's leak is measured and
        predicted, each calibrated on its own (its error lives in a few rows of a TM).
    compare_encodings
        Also split the SNR for the other encoding (ternary and 4-bit planes).

    Returns
    -------
    dict
        ``snr_db`` (signal over total error variance, dB), ``correlation`` (of ``B_hat e``
        with ``B e``), ``snr`` (``total_db``, ``optical_db``, ``encoding_db`` per
        encoding, the error set's first), ``signal_variance``, ``total``
        (``measured``: the device's error variance over the realizations, ``this_device``
        with the configured seeds; ``sum_measured``, ``sum_predicted``: of the sources), ``sources`` (name -> ``{"measured",
        "measured_se", "predicted", "ratio", "on", "parts", "inputs"}``; a source the
        device has off has zeros and ``on: false``), ``knowledge`` (the estimates),
        ``exposure_us``, ``errors`` and ``device`` descriptions. Variances in
        linear-mode units (``M`` of unit-variance entries), per output and error vector.
    """
    error_set = error_set if error_set is not None else classification_errors()
    if not (isinstance(elapsed_s, (int, float)) and math.isfinite(elapsed_s) and elapsed_s >= 0):
        raise ValueError(f"elapsed_s = {elapsed_s!r}: expected a finite number of seconds >= 0")
    for setting, value in (("realizations", realizations),
                           ("laser_realizations", laser_realizations),
                           ("tm_realizations", tm_realizations)):
        check_int(setting, value, low=1)
    chosen = list(SOURCES) if sources is None else list(sources)
    for name in chosen:
        check_choice("source", name, SOURCES)
    config = budget_config(device, error_set.n_classes, n_out, macropixel_mirrors,
                           **(device_options or {}))
    switches = source_overrides(config)
    measured_sources = [n for n in chosen if n == "encoding" or switches[n] is not None]
    steps = 5 + len(measured_sources) + (2 if compare_encodings else 1)
    with Progress(steps, "noise budget", enabled=progress, unit="step") as bar, \
            np.errstate(all="ignore"), one_blas_thread():
        if knowledge is None:
            knowledge = device_knowledge(config, error_set)
        bar.update()
        exposure = knowledge.exposure_us
        bench = _Bench(config, error_set, exposure, elapsed_s)
        bar.update()
        full = project(fit_operator(config, error_set, exposure_us=exposure), error_set,
                       elapsed_s).output
        bar.update()
        model = DeviceModel(knowledge, error_set)
        bar.update()
        sources_out = {}
        for name in SOURCES:
            if name not in chosen:
                continue
            if name not in measured_sources:
                sources_out[name] = {"measured": 0.0, "measured_se": None, "predicted": 0.0,
                                     "ratio": None, "on": False, "parts": {},
                                     "inputs": INPUTS[name]}
                continue
            if name == "laser_drift":
                entry = _measure_laser_drift(bench, model, switches[name], bar,
                                             laser_realizations)
            elif name == "polarizer":
                entry = _measure_polarizer(bench, model, switches[name], bar, tm_realizations)
            else:
                entry = _MEASURES[name](bench, model, name, switches[name], bar, realizations)
            entry["inputs"] = INPUTS[name]
            sources_out[name] = entry
        encodings = [error_set] + ([error_set.with_encoder(
            next(e for e in ENCODINGS if e != error_set.encoder), error_set.n_bits)]
            if compare_encodings else [])
        snr = []
        for encoded in encodings:
            snr.append(_snr_split(bench, config, encoded))
            bar.update()
        total_mean, total_se = _total_over_realizations(bench, realizations)
        bar.update()
    signal = bench.signal_variance
    error = full - bench.exact
    total = float((error ** 2).mean())
    correlation = float(np.corrcoef(full.ravel(), bench.exact.ravel())[0, 1])
    measured = [s["measured"] for s in sources_out.values()]
    predicted = [s["predicted"] for s in sources_out.values()]
    return {
        "device": config.name, "n_in": error_set.n_classes, "n_out": n_out,
        "exposure_us": exposure, "elapsed_s": elapsed_s, "errors": error_set.describe(),
        "snr_db": _snr_db(signal, total) if total > 0 else math.inf,
        "correlation": correlation, "signal_variance": signal, "snr": snr,
        "total": {"measured": total_mean, "measured_se": total_se,
                  "this_device": total, "realizations": realizations,
                  "sum_measured": float(sum(measured)), "sum_predicted": float(sum(predicted)),
                  "sum_over_total": (float(sum(measured)) / total_mean if total_mean > 0
                                     else None)},
        "sources": sources_out, "knowledge": knowledge.summary(),
    }


def _total_over_realizations(bench: _Bench, realizations: int) -> tuple[float, float | None]:
    """The device with everything on against ``B e``, over the same realizations as the
    stochastic sources (every noise seed varied, each realization its part of the
    errors), so that the sum of the sources' means can be held against a mean too."""
    seeds = bench.config.seeds
    values, weights = [], []
    for k, (rows, chunk) in enumerate(bench.chunks(realizations)):
        shifted = {f"seeds__{key}": getattr(seeds, key) + _SEED_STEP * (k + 1)
                   for key in ("camera", "laser", "tm_drift", "fixed_pattern")}
        opu = fit_operator(bench.config.replace(**shifted), chunk, exposure_us=bench.exposure_us)
        output = project(opu, chunk, bench.elapsed_s).output
        values.append(float(((output - bench.exact[rows]) ** 2).mean()))
        weights.append(output.shape[0])
    values, weights = np.asarray(values), np.asarray(weights, np.float64)
    mean = float((weights * values).sum() / weights.sum())
    se = float(values.std(ddof=1)) / math.sqrt(values.size) if values.size > 1 else None
    return mean, se


def budget_check(budget: dict, check: dict = BUDGET_CHECK) -> dict:
    """Whether each measured source matches its prediction, and the sources the total.

    A source passes when measured / predicted (for a stochastic source, the median over
    its realizations: :func:`_typical`) lies in ``[ratio_low, ratio_high]``, widened to
    ``1 -+ z se`` (the ratio's relative standard error) where the measurement's own
    sampling error is larger (a check must not fail on the measurement's noise, nor pass a
    wrong prediction at a sample size that could not tell), with the prediction's own
    error where it has one (the polarizer's and the TM drift's rows, known only through
    their law). When the prediction is zero (a source the physics cancels exactly), it
    passes when the measured value is below a billionth of the signal variance too
    (float32 rounding); a source the device has off passes. The sum passes when it is
    within ``sum_tolerance`` of the total error.

    Returns
    -------
    dict
        ``{"sources": {name: bool}, "bands": {name: [low, high]}, "within_band":
        {name: bool}, "sum": bool, "all": bool}``: ``within_band`` against the fixed
        ``[ratio_low, ratio_high]`` alone.
    """
    tiny = _FLOOR * budget["signal_variance"]
    verdicts, bands, strict = {}, {}, {}
    for name, entry in budget["sources"].items():
        if not entry["on"]:
            verdicts[name] = strict[name] = True
            continue
        if entry["ratio"] is None:
            verdicts[name] = strict[name] = (abs(entry["measured"]) <= tiny
                                             and abs(entry["predicted"]) <= tiny)
            continue
        if entry.get("ratio_se") is not None:
            relative = entry["ratio_se"] / entry["ratio"] if entry["ratio"] > 0 else 0.0
        else:
            relative = ((entry["measured_se"] or 0.0) / entry["measured"]
                        if entry["measured"] > 0 else 0.0)
        relative = math.hypot(relative, entry.get("predicted_relative_se") or 0.0)
        low = min(check["ratio_low"], 1.0 - check["z"] * relative)
        high = max(check["ratio_high"], 1.0 + check["z"] * relative)
        bands[name] = [low, high]
        verdicts[name] = low <= entry["ratio"] <= high
        strict[name] = check["ratio_low"] <= entry["ratio"] <= check["ratio_high"]
    total = budget["total"]
    sum_ok = (total["sum_over_total"] is not None
              and abs(total["sum_over_total"] - 1.0) <= check["sum_tolerance"])
    return {"sources": verdicts, "bands": bands, "within_band": strict, "sum": sum_ok,
            "all": sum_ok and all(verdicts.values())}


def feedback_fidelity(device="lab-bench", error_set: ErrorSet | None = None, *,
                      n_out: int = 512, macropixel_mirrors: int = 64, elapsed_s: float = 0.0,
                      device_options: dict | None = None) -> dict:
    """SNR (dB) and correlation of the device's feedback against ``B e`` (no budget).

    The device is fitted with auto exposure and its clean twin at the exposure it
    settled on, as in :func:`noise_budget`; the errors are projected ``elapsed_s``
    device seconds after the fit. Returns ``{"snr_db", "correlation",
    "signal_variance", "error_variance"}`` (SNR None when the device returns no usable
    signal).
    """
    error_set = error_set if error_set is not None else classification_errors()
    config = budget_config(device, error_set.n_classes, n_out, macropixel_mirrors,
                           **(device_options or {}))
    with np.errstate(all="ignore"):
        full = fit_operator(config, error_set, auto_exposure=True)
        output = project(full, error_set, elapsed_s).output
        clean = fit_operator(clean_config(config, float(full.device_.exposure_us)), error_set)
        matrix = np.asarray(clean.effective_matrix(), np.float64)
    exact = error_set.errors.astype(np.float64) @ matrix.T
    signal = float((exact ** 2).mean())
    error = float(((output - exact) ** 2).mean())
    flat = output.ravel()
    correlation = (float(np.corrcoef(flat, exact.ravel())[0, 1])
                   if np.isfinite(flat).all() and flat.std() > 0 else 0.0)
    return {"snr_db": _snr_db(signal, error), "correlation": correlation,
            "signal_variance": signal, "error_variance": error if math.isfinite(error) else None}
