"""The noise budget's predictions, from the physics and what a user knows of the device.

Everything here starts from a :class:`~.knowledge.DeviceKnowledge`: the configuration
and the calibration's estimates from separate frames. The *TM model* (the calibrated
device) gives each frame's mean counts ``mu_j(x)`` above the dark level, each row's
reference response ``r_j = mu_j(1) - mu_j(0)`` and complex amplitude ``m_j``; an
operator fitted on it gives the model's ``M`` and each row's gain ``g_j`` (linear
units per DN); the encoders' documented rules give the encoded errors ``e_q``, their
planes and weights, and ``S = e_q M^T``, the output the budget's errors have.

Output ``j`` of error ``n`` (planes ``x_p``, weights ``w_p``, on-fractions ``m_p``) is
``g_j sum_p w_p [(y_j(x_p) - y_j(1 - x_p)) / 2 + (1/2 - m_p) r_j]`` with the block's
reference frames. For count noise independent between frames, of variance ``s_j^2(x)``::

    var_nj = g_j^2 [sum_p w_p^2 (s_j^2(x_p) + s_j^2(1 - x_p)) / 4 + c_n^2 (s_j^2(1) + s_j^2(0))]
    c_n = sum_p w_p (1/2 - m_p)

and the same noise in the fit moves each row's gain. The operator's row-sizing rule
(docs/design.md section 3, :func:`devices.linear.row_norms`) is applied to the model:
without mirrors held on, row ``j`` is divided by the square root of its reference
response ``r_j``, the mean of ``REFERENCE_REPEATS`` frame pairs (``r_j + delta``,
``delta ~ N(0, (s_j^2(1) + s_j^2(0)) / R)``), floored at the noise level and at a
hundredth of the median (the clean twin's floor is the latter alone), unless its probe
variance disagrees with the reference by more than ``MODEL_TOLERANCE_Z`` standard
errors (then the probes size it, in part up to ``MODEL_SWITCH_Z``); with mirrors held
on the probes size every row. The global scale, a variance of probe-pair differences, takes back the rows' mean change and
is biased by the noise's share ``b`` of it. The error of row ``j`` is ``E[(g_j / G_j -
1)^2]`` times its expected output power ``P_j`` (the model's mean row power, less for
a row below the floor). A noise common to a frame (laser RIN) moves every row alike:
the global scale takes it back.
"""

from __future__ import annotations

import math

import numpy as np

from devices.linear import MAX_ROW_GAIN, WEAK_SNR, probe_weight
from devices.operator import NORM_PROBES, REFERENCE_REPEATS

from .devices import fit_operator
from .errors import ErrorSet, documented_encoding, documented_quantization
from .knowledge import DeviceKnowledge

__all__ = ["DeviceModel", "PROBES_FOR_SCALE"]

PROBES_FOR_SCALE = 32      # random half-on probes standing for the operator's (its default)
QUADRATURE_NODES = 64      # Gauss-Legendre nodes over a posterior's quantiles
HERMITE_NODES = 32         # Gauss-Hermite nodes over a Gaussian reference error
#: Relative difference between a row's reference response on the device (PRNU, the
#: polarizer's leak and the DMD's leak in it) and on a twin without them, rms.
REFERENCE_MISMATCH = 0.02


class DeviceModel:
    """A user's model of the device for one error set, and the budget's predictions.

    Parameters
    ----------
    knowledge
        The configuration and the estimates from separate frames.
    error_set
        The errors and their encoding.
    """

    def __init__(self, knowledge: DeviceKnowledge, error_set: ErrorSet):
        self.knowledge = knowledge
        self.error_set = error_set
        config = knowledge.config
        self.probe_sized = bool(config.dmd.held_on_mirrors)   # a reference field: probes size rows
        model = knowledge.model_device()
        self.model_device = model
        c = error_set.n_classes
        operator = fit_operator(model, error_set)
        self.matrix = np.asarray(operator.effective_matrix(), np.float64)          # (S, C)
        self.dark = np.asarray(model.acquire_dark(1), np.float64)[0]
        refs = np.zeros((2, c), np.uint8)
        refs[0] = 1
        model_on, self.mu_off = self._counts(model, refs)
        model_reference = model_on - self.mu_off
        eye = np.eye(c, dtype=np.uint8)
        unit, complement = self._counts(model, eye), self._counts(model, 1 - eye)
        raw = (unit - complement + model_reference) / 2.0 - model_reference / c    # (C, S)
        power = (raw ** 2).sum(axis=0)
        model_gain = np.where(power > 0, (self.matrix.T * raw).sum(axis=0)
                              / np.where(power > 0, power, 1.0), 0.0)
        # The gains and counts of frame noise come from the TM model together (a scale
        # error of the model cancels between them); what depends on one row's size (its
        # reference error, its floor, its rounding) uses the reference response as
        # measured on repeated frames, far more precise than the model's for a dim row.
        self.gain = model_gain                                                     # g_j
        self.reference = np.asarray(knowledge.reference_dn, np.float64)            # r_j, DN
        self.reference_se = np.asarray(knowledge.reference_se_dn, np.float64)
        self.mu_on = self.reference + self.mu_off
        self.amplitude2 = np.abs(knowledge.reference_amplitude()) ** 2             # |m_j|^2
        self.encoded = documented_quantization(error_set)
        self.signal = self.encoded @ self.matrix.T                                 # S (n, S)
        self._frames(model)
        probes = (np.random.default_rng(0).random((PROBES_FOR_SCALE, c)) < 0.5).astype(np.uint8)
        self.mu_probe = self._counts(model, probes)
        self.mu_probe_complement = self._counts(model, 1 - probes)
        # The row-sizing rule on the model: floors, the reference model's scale alpha,
        # and each row's expected output power.
        positive = np.maximum(self.reference, 0.0)
        self.floor = float(np.median(positive)) / MAX_ROW_GAIN ** 2
        raw_probe = (self.mu_probe - self.mu_probe_complement) / 2.0
        self.probe_signal = raw_probe.var(axis=0, ddof=1)                          # (S,) DN^2
        usable = positive > 0
        self.alpha = (float(np.median(self.probe_signal[usable] / positive[usable]))
                      if usable.any() else 1.0)
        # The size each row is divided by (reference response, or probe variance), and
        # its floor: a row below it keeps less of its power.
        sizes = self.probe_signal if self.probe_sized else positive
        kept = np.minimum(1.0, sizes / (float(np.median(sizes)) / MAX_ROW_GAIN ** 2))
        self.unit_power = float((self.signal ** 2).mean()) / float(kept.mean())
        self.row_power = self.unit_power * kept                                    # P_j
        self.error_power = (self.signal ** 2).mean(axis=1) / float((self.signal ** 2).mean())
        d = c
        # One standard error of a row's log ratio of probe variance to reference model.
        self.log_ratio_se = math.sqrt(2.0 / (PROBES_FOR_SCALE - 1) + 2.0 / max(d - 1, 1))

    # ------------------------------------------------------------------ model counts
    def counts(self, frames) -> np.ndarray:
        """The TM model's mean counts above the dark level of ``frames`` (m, C), DN."""
        return self._counts(self.model_device, frames)

    def _counts(self, model, frames) -> np.ndarray:
        """Model counts above the dark level of ``frames`` (m, C) -> (m, S) float64."""
        counts = np.asarray(model.acquire(np.asarray(frames, np.uint8)), np.float64)
        return counts - self.dark[None, :]

    def _frames(self, model) -> None:
        """Plane weights, on-fractions, planes and model counts of every batch's frames."""
        c = self.error_set.n_classes
        self.weights, self.fractions, self.planes, self.mu_x, self.mu_c = [], [], [], [], []
        for _, planes, weights in documented_encoding(self.error_set):
            n_b, p, _ = planes.shape
            flat = planes.reshape(n_b * p, c)
            counts = self._counts(model, np.concatenate([flat, 1 - flat]))
            self.mu_x.append(counts[:n_b * p].reshape(n_b, p, -1))
            self.mu_c.append(counts[n_b * p:].reshape(n_b, p, -1))
            self.weights.append(weights)
            self.fractions.append(planes.mean(axis=2, dtype=np.float64))
            self.planes.append(planes)

    def _reference_coefficient(self) -> np.ndarray:
        """``c_n = sum_p w_p (1/2 - m_p)`` of every error (n,)."""
        return np.concatenate([(w[None, :] * (0.5 - m)).sum(axis=1)
                               for w, m in zip(self.weights, self.fractions)])

    def _per_row(self, factor) -> float:
        """Mean over errors and outputs of ``factor_j P_j``."""
        return float(np.mean(np.asarray(factor, np.float64) * self.row_power))

    # ------------------------------------------------------------------ frame noise
    def frame_noise(self, variance, per_error: bool = False):
        """Mean over errors and outputs of the frame-noise variance of the output.

        ``variance(mu)``: the count variance (DN^2) of a frame of model counts ``mu``.
        ``per_error``: the mean over outputs of each error instead, (n,).
        """
        planes = np.concatenate([(w[None, :, None] ** 2 / 4.0) * (variance(mx) + variance(mc))
                                 for w, mx, mc in zip(self.weights, self.mu_x, self.mu_c)
                                 ]).sum(axis=1)
        references = variance(self.mu_on) + variance(self.mu_off)
        coefficient = self._reference_coefficient()
        per_element = self.gain[None, :] ** 2 * (planes + coefficient[:, None] ** 2
                                                 * references[None, :])
        return per_element.mean(axis=1) if per_error else float(per_element.mean())

    def _probe_noise(self, variance) -> np.ndarray:
        """Variance of one raw output of a random half-on probe from the noise (S,) DN^2."""
        return (variance(self.mu_probe) + variance(self.mu_probe_complement)).mean(axis=0) / 4

    def scale_bias(self, variance) -> float:
        """The noise's share ``b`` of the global scale's variance of probe-pair differences.

        A pair's difference carries the noise of four frames, ``(s^2(x1) + s^2(1 - x1)
        + s^2(x2) + s^2(1 - x2)) / 4``, in normalized units ``g_j^2`` times it; the
        signal of a pair is ``|z|^2 - (sum z)^2 / C``, ``(C - 1) / 2`` for random probes.
        """
        c = self.error_set.n_classes
        noise = self._probe_noise(variance)
        return float((self.gain ** 2 * 2.0 * noise).mean() / ((c - 1) / 2.0))

    def fit_noise(self, variance, *, common: bool = False, repeats: int = REFERENCE_REPEATS,
                  rounding: bool = False) -> float:
        """The row gains' error from the same noise in the fit's frames (module notes).

        ``common``: the noise is one factor per frame (every row alike: the global scale
        takes it back, only its bias on the scale is left). ``repeats``: the reference
        frames averaged. ``rounding``: the error is the ADC's, fixed by the frame: the
        reference reads ``rint(b + r_j) - rint(b)`` (``b`` the black offset), taken over
        the TM model's uncertainty on ``r_j`` (:data:`MODEL_COUNT_ERROR`).
        """
        bias = self.scale_bias(variance)
        noise = self._probe_noise(variance)
        if self.probe_sized:
            # Rows sized by the variance of NORM_PROBES probe outputs less the noise's
            # estimate: var(ln norm2) = (4 n / s + 2 (n / s)^2) / P.
            ratio = np.where(self.probe_signal > 0, noise / np.where(self.probe_signal > 0,
                                                                      self.probe_signal, 1.0), 0.0)
            log_var = (4.0 * ratio + 2.0 * ratio ** 2) / NORM_PROBES
            scale = 1.0 / math.sqrt(1.0 + bias)
            return self._per_row(scale ** 2 * (1.0 + log_var / 4.0) - 2.0 * scale + 1.0)
        r = self.reference
        noisy_floor = np.maximum(WEAK_SNR ** 2 * noise / self.alpha, self.floor)
        nodes, weights = np.polynomial.hermite_e.hermegauss(HERMITE_NODES)
        weights = weights / weights.sum()
        if rounding:
            offset = float(self.knowledge.camera.black_offset_dn)
            spread = np.hypot(self.reference_se, REFERENCE_MISMATCH * np.abs(r))
            true = r[:, None] + spread[:, None] * nodes[None, :]                   # (S, k)
            measured = np.rint(offset + true) - np.rint(offset)
        else:
            spread = (np.zeros_like(r) if common
                      else (variance(self.mu_on) + variance(self.mu_off)) / repeats)
            true = np.broadcast_to(r[:, None], (r.size, nodes.size))
            measured = r[:, None] + np.sqrt(spread)[:, None] * nodes[None, :]      # (S, k)
        ratio = np.maximum(true, self.floor) / np.maximum(measured, noisy_floor[:, None])
        mean_ratio, mean_root = ratio @ weights, np.sqrt(ratio) @ weights
        kept = self.row_power / self.unit_power
        scale2 = float(kept.sum()) / (float((kept * mean_ratio).sum()) + bias * float(kept.sum()))
        scale = math.sqrt(scale2)
        return self._per_row(scale2 * mean_ratio - 2.0 * scale * mean_root + 1.0)

    # ------------------------------------------------------------------ ADC
    def rounding_error2(self, mu, full_scale: float) -> np.ndarray:
        """Expected squared rounding error (DN^2) of a frame of model counts ``mu``.

        Counts spread over many steps: ``1/12`` (Sheppard); a frame within half a step
        of the black offset rounds onto it (``(q - c)^2`` exactly); a clipped one reads
        the full scale.
        """
        offset = float(self.knowledge.camera.black_offset_dn)
        count = np.asarray(mu, np.float64) + offset
        exact = (np.clip(np.rint(count), 0.0, full_scale) - count) ** 2
        spread = np.full_like(count, 1.0 / 12.0)
        dim = np.asarray(mu) < 0.5
        clipped = count > full_scale - 0.5
        return np.where(dim | clipped, exact, spread)

    def rounding_noise(self, full_scale: float) -> float:
        """The ADC's share of the output: rounding errors fixed by each frame's pattern.

        Equal frames of one error vector (a plane shown twice, an all-off plane and the
        dark reference) share their error: their coefficients add before squaring.
        """
        def error2(mu):
            return self.rounding_error2(mu, full_scale)

        c = self.error_set.n_classes
        on_key, off_key = bytes(np.ones(c, np.uint8)), bytes(np.zeros(c, np.uint8))
        reference = {on_key: error2(self.mu_on), off_key: error2(self.mu_off)}
        rows = []
        for w, planes, mu_x, mu_c in zip(self.weights, self.planes, self.mu_x, self.mu_c):
            coefficient = (w[None, :] * (0.5 - planes.mean(axis=2))).sum(axis=1)
            err_x, err_c = error2(mu_x), error2(mu_c)
            for n in range(planes.shape[0]):
                terms = {on_key: [coefficient[n], reference[on_key]],
                         off_key: [-coefficient[n], reference[off_key]]}
                for p in range(planes.shape[1]):
                    x = planes[n, p]
                    for key, value, err in ((bytes(x), w[p] / 2.0, err_x[n, p]),
                                            (bytes(1 - x), -w[p] / 2.0, err_c[n, p])):
                        if key in terms:
                            terms[key][0] += value
                        else:
                            terms[key] = [value, err]
                rows.append(sum(value ** 2 * err for value, err in terms.values()))
        return float((np.asarray(rows) * self.gain[None, :] ** 2).mean())

    # ------------------------------------------------------------------ gains of the raw output
    def flat_field_error(self, gain: np.ndarray, rows=slice(None)) -> float:
        """PRNU: row ``j``'s raw output and its reference response scale by ``1 + p_j``.

        Sized by the reference, the row keeps ``sqrt(1 + p_j)`` (its floor, if it sits
        there, does not scale: ``1 + p_j``); the global scale takes back the mean.
        Sized by probes (a reference field) it is scaled back exactly: zero.
        """
        if self.probe_sized:
            return 0.0
        gain = np.asarray(gain, np.float64)
        floored = np.maximum(self.reference, 0.0) < self.floor
        kept = np.where(floored, gain, np.sqrt(np.maximum(gain, 0.0)))
        weight = self.row_power / self.unit_power
        kept = kept / math.sqrt(float((weight * kept ** 2).sum() / weight.sum()))
        return self._per_row((kept - 1.0) ** 2) * float(self.error_power[rows].mean())

    def laser_drift_error(self, row_times_s: np.ndarray, rows=slice(None)) -> float:
        """``E[(d_t - d_fit)^2] = 2 sigma^2 (1 - exp(-t / tau_L))`` times the output's power:
        the power drift of an Ornstein-Uhlenbeck laser between the fit and each block.
        ``row_times_s``: seconds from the fit to each error's block, for the errors
        ``rows`` of the set."""
        laser = self.knowledge.config.laser
        factor = 2.0 * laser.drift_rms ** 2 * (1.0 - np.exp(-np.asarray(row_times_s)
                                                           / laser.drift_time_s))
        return float((factor * self.error_power[rows]).mean()) * float(self.row_power.mean())

    def leakage_error(self) -> float:
        """A leak ``l = contrast^-1/2`` adds ``l K 1`` to the fixed field.

        Without a reference field the complement identity and the row normalization
        cancel it exactly (``m`` and the rows scale alike: docs/design.md section 3).
        With one (``e0 = b + l K 1``), ``m = e0 + (1 - l) K 1 / 2`` turns by
        ``dphi_j`` against the leak-free ``b + K 1 / 2``; rows sized by probes keep
        their size, so the error is ``4 sin^2(dphi_j / 2) P_j``. ``K``, ``e0`` from the TM
        model (which sees ``(1 - l) K`` and ``b + l K 1``).
        """
        contrast = self.knowledge.config.dmd.contrast
        if contrast is None or not self.knowledge.config.dmd.held_on_mirrors:
            return 0.0
        leak = 1.0 / math.sqrt(contrast)
        tm = self.knowledge.calibration.tm
        column = tm.tm.sum(axis=1)                      # (1 - l) K 1
        with_leak = tm.reference_field + column / 2.0
        without = tm.reference_field + column * (1.0 - 2.0 * leak) / (2.0 * (1.0 - leak))
        turn = np.angle(with_leak * np.conj(without))
        return self._per_row(4.0 * np.sin(turn / 2.0) ** 2)

    def polarizer_error(self, extinction_ratio: float | None, with_se: bool = False):
        """A leak ``eps`` adds the crossed polarization's own speckle.

        The reference response is ``T_j = a_j + eps b_j`` (``a``, ``b`` the two
        polarizations' all-on intensities, independent exponentials of one mean
        ``mu``); given ``T_j`` (measured on repeated frames), ``u_j = eps b_j / T_j``
        follows a truncated exponential of rate ``T_j (1 - eps) / (eps mu)`` on ``[0, 1]``.
        Sized by ``T_j`` (floored), the row keeps ``sqrt(a_j / T_j)`` of its passed output
        and gains a crossed one of variance ``eps u_j T_j / T_j``; a row whose linear
        variance over its reference, ``s = 1 - u (1 - eps)``, falls out of the agreement
        tolerance (``u`` near 1) is sized as the operator does, by ``T_j s^w``
        (floored), ``w`` the probes' weight at ``|ln s|``
        (:func:`devices.linear.probe_weight`). The clean twin sizes it by ``a_j``
        (floored). The global scale takes back the mean; the error is the posterior mean of ``(kept c - clean)^2 + c^2
        crossed`` in the unfloored row's power units. With a reference field
        (probes size every row) only the crossed term is left, ``eps^2 E|m|^2 / |m_j|^2``.
        ``with_se``: also the prediction's relative standard error from the rows' posterior
        spread (the realized ``u_j`` are not known, only their law given ``T_j``).
        """
        eps = 1.0 if extinction_ratio is None else 1.0 / extinction_ratio
        if self.probe_sized:
            mean2 = float(self.amplitude2.mean())
            value = self._per_row(eps ** 2 * mean2 / np.maximum(self.amplitude2, 1e-300))
            return (value, 0.0) if with_se else value
        total, u, weights = self._leak_posterior(eps)
        passed = total * (1.0 - u)
        share = np.maximum(1.0 - u * (1.0 - eps), 1e-300)  # linear variance over reference
        weight = probe_weight(np.abs(np.log(share)) / self.log_ratio_se)
        norm = np.maximum(total * share ** weight, self.floor)  # reference^(1-w) linear^w
        kept = np.sqrt(passed / norm)
        crossed = eps * u * total / norm
        clean = np.sqrt(passed / np.maximum(passed, self.floor))
        power = kept ** 2 + crossed                                    # leaky row's power
        clean_power = clean ** 2
        scale = math.sqrt(float((clean_power @ weights).sum()) / float((power @ weights).sum()))
        error = (scale * kept - clean) ** 2 + scale ** 2 * crossed
        per_row = error @ weights
        value = self.unit_power * float(per_row.mean())
        if not with_se:
            return value
        spread = np.maximum((error ** 2) @ weights - per_row ** 2, 0.0)
        return value, _relative_se(per_row, spread)

    def _leak_posterior(self, eps: float):
        """The crossed share ``u_j = eps b_j / T_j`` of each reference response given it.

        Returns ``T`` (S, 1), ``u`` (S, k) at the quadrature's quantiles of the truncated
        exponential of rate ``T_j (1 - eps) / (eps mu)`` on ``[0, 1]`` (``u = 0`` without a
        leak) and the quadrature weights (k,).
        """
        total = np.maximum(self.reference, 1e-300)[:, None]
        nodes, weights = np.polynomial.legendre.leggauss(QUADRATURE_NODES)
        weights = weights / 2.0
        if eps == 0.0:
            return total, np.zeros((total.shape[0], nodes.size)), weights
        q = ((nodes + 1.0) / 2.0)[None, :]
        mu = float(total.mean()) / (1.0 + eps)
        rate = total * (1.0 - eps) / (eps * mu)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            u = np.where(rate > 1e-9, -np.log1p(q * np.expm1(-rate)) / rate, q)
        return total, np.clip(u, 0.0, 1.0), weights

    def tm_drift_error(self, row_times_s: np.ndarray, tau_s: float, rows=slice(None),
                       with_se: bool = False):
        """Row ``j`` reads ``Re(conj(m_t) K_t e)`` over its fit's ``|m_0|``; with
        ``K_t = rho K_0 + sqrt(1 - rho^2) W`` the error is ``(1 - rho^2)(1 + E|m|^2 /
        |m_j|^2)`` of the row's power, ``rho^2 = 1 - t / tau`` since the TM the budget
        compares with (the device's start, docs/design.md section 2). Without a reference
        field ``|m_j|^2`` is the passed part ``a_j`` of the reference response given its
        measured ``T_j`` (:meth:`_leak_posterior`), in the unfloored row's power units:
        ``(1 - rho^2) E[(a_j + E a) / max(a_j, floor)]``. ``row_times_s``: for the errors
        ``rows`` of the set; ``with_se``: also the relative error from the rows' posterior."""
        if not math.isfinite(tau_s):
            return (0.0, 0.0) if with_se else 0.0
        loss = np.minimum(np.asarray(row_times_s) / tau_s, 1.0)          # 1 - rho^2 (n,)
        per_error = float((loss * self.error_power[rows]).mean())
        if self.probe_sized:
            size = self.amplitude2
            spread = 1.0 + float(size.mean()) / np.maximum(size, 1e-3 * float(np.median(size)))
            value = per_error * self._per_row(spread)
            return (value, 0.0) if with_se else value
        # The drifting device has an ideal polarizer: row j is sized by its passed
        # a_j = T_j (1 - u) (the measured T_j = a_j + eps b_j holds the leak), E|a|^2 =
        # mean(T) / (1 + eps); in the unfloored row's power units the error is
        # (1 - rho^2) E[(a_j + E|a|^2) / max(a_j, floor)].
        config = self.knowledge.config
        extinction = None if config.polarizer is None else config.polarizer.extinction_ratio
        eps = 1.0 if config.polarizer is None else (0.0 if extinction is None else 1.0 / extinction)
        total, u, weights = self._leak_posterior(eps)
        mean_passed = float(total.mean()) / (1.0 + eps)
        passed = total * (1.0 - u)
        nodes = (passed + mean_passed) / np.maximum(passed, self.floor)
        factor = nodes @ weights
        value = per_error * self.unit_power * float(factor.mean())
        if not with_se:
            return value
        return value, _relative_se(factor, np.maximum((nodes ** 2) @ weights - factor ** 2, 0.0))

    def encoding_error(self) -> float:
        """``M (e_q - e)``: ``sigma_M^2 |delta_c|^2`` with ``delta`` the documented
        quantization's error, centred (``M``'s rows sum to zero), ``sigma_M^2`` the
        entry variance of the TM model's ``M``."""
        delta = self.encoded - self.error_set.errors.astype(np.float64)
        delta -= delta.mean(axis=1, keepdims=True)
        s, c = self.matrix.shape
        entry_variance = float((self.matrix ** 2).sum() / (s * (c - 1)))
        return entry_variance * float((delta ** 2).sum(axis=1).mean())


def _relative_se(means: np.ndarray, variances: np.ndarray) -> float:
    """Relative standard error of the mean over rows of independent per-row quantities
    of posterior means ``means`` and variances ``variances``."""
    total = float(np.sum(means))
    return math.sqrt(float(np.sum(variances))) / total if total > 0 else 0.0
