"""The last step of a TM estimate: each row refitted on every count it can be scored on.

* :func:`row_statistics` and :func:`refit_rows`: with each row's direction ``K_j``
  fixed, its counts are linear in four numbers,
  ``y = alpha |K_j x|^2 + 2 Re(conj(b) K_j x) + c``: the row's scale (the priors of
  :mod:`calibration.priors` shrink rows a little), its fixed field ``e0 = b / sqrt(alpha)``
  and its dark level ``c - |e0|^2``. One weighted least-squares solve per row over the
  probes, anchored probes and mixed frames (the fixed field is the weakest part of the
  earlier fits, from the probes' linear term alone). Its residual is the row quality.
* :func:`polish_rows`: for a device of at most ``POLISH_MAX_INPUTS`` inputs, Levenberg-
  Marquardt steps on every calibration count for every parameter of each row
  (``K_j``, ``e0_j``, ``dark_j``): with a handful of inputs per half the anchors' plane
  and metric rest on few probes, and a full fit costs little.

Weights are the inverse of the camera noise model at the predicted level; censored counts
and those within three noise deviations of the censoring level are left out.
"""

from __future__ import annotations

from .records import CountBlock, NoiseModel, RowModel, RowStatistics

__all__ = ["row_statistics", "normal_equations", "refit_rows", "polish_rows",
           "POLISH_MAX_INPUTS"]

POLISH_MAX_INPUTS = 32     # devices with at most this many inputs are polished
POLISH_ITERATIONS = 6
POLISH_ROW_CHUNK = 64


def _weights(xp, predicted, dark, counts, censor, noise: NoiseModel, floor):
    """Inverse noise variance at the predicted level; 0 for censored (or nearly) counts.

    ``floor`` (n_out,): a variance floor per row, DN^2.
    """
    variance = xp.maximum(predicted - dark[None, :], 0.0)           # the level, then ...
    variance *= noise.common_mode
    variance += noise.shot_dn
    variance *= xp.maximum(predicted - dark[None, :], 0.0)
    variance += noise.read_dn2 + floor[None, :]                     # ... its variance
    if censor is None:
        keep = xp.ones_like(predicted)
    else:
        keep = (counts < censor) & (predicted + 3.0 * xp.sqrt(variance) < censor)
        keep = keep.astype(predicted.dtype)
    return keep / variance, keep


def row_statistics(xp, model: RowModel, block: CountBlock, censor, noise: NoiseModel,
                   floor) -> RowStatistics:
    """Per row, weighted normal equations of a change of ``(alpha, b, c)`` in
    ``y ~ alpha |u|^2 + 2 Re(conj(b) u) + c``, ``u = K_j x`` on the frames of ``block``.

    The current row is ``(1, e0, |e0|^2 + dark)`` of ``model``; the equations are written
    for the change on the residual ``y - prediction`` (small), so the residual sum stays
    exact at any signal-to-noise ratio. Weights from the current prediction (``noise``,
    plus ``floor`` (n_out,) DN^2); counts at or above ``censor`` (DN; None: none) are left
    out. The statistics of several blocks add up (``+``) before :func:`refit_rows` solves
    them.
    """
    tm, e0, dark = model.tm, model.reference_field, model.dark
    frames, counts = block.frames, block.counts
    u_re, u_im = frames @ tm.real.T, frames @ tm.imag.T             # two real GEMMs
    power = u_re ** 2
    power += u_im ** 2
    predicted = u_re + e0.real[None, :]                             # |u + e0|^2 + dark
    predicted **= 2
    shifted = u_im + e0.imag[None, :]
    shifted **= 2
    predicted += shifted
    predicted += dark[None, :]
    weight, keep = _weights(xp, predicted, dark, counts, censor, noise, floor)
    residual = xp.subtract(counts, predicted, out=predicted)
    normal, moment, total = normal_equations(xp, power, u_re, u_im, weight, residual)
    return RowStatistics(normal=normal, moment=moment, residual=total, used=keep.sum(0))


def normal_equations(xp, power, re, im, weight, target):
    """Per row, the weighted normal equations of ``target ~ (power, 2 re, 2 im, 1) theta``.

    All arrays are (frames, rows). Returns ``(normal (rows, 4, 4), moment (rows, 4),
    sum weight target^2)``; sums of products over the frames, without temporaries of
    (frames, rows, 4).
    """
    features = (power, re, im, None)
    weighted = [weight * f for f in features[:3]] + [weight]
    factor = (1.0, 2.0, 2.0, 1.0)
    normal = xp.empty((power.shape[1], 4, 4))
    for a in range(4):
        for b in range(a, 4):
            value = (weighted[a].sum(0) if features[b] is None
                     else xp.einsum("kj,kj->j", weighted[a], features[b]))
            normal[:, a, b] = normal[:, b, a] = value * (factor[a] * factor[b])
    moment = xp.stack([xp.einsum("kj,kj->j", weighted[a], target) * factor[a]
                       for a in range(4)], axis=-1)
    return normal, moment, xp.einsum("kj,kj->j", weighted[3] * target, target)


def refit_rows(xp, model: RowModel, statistics: RowStatistics) -> tuple[RowModel, object]:
    """Solve :func:`row_statistics`: rows rescaled, ``e0`` and ``dark`` refitted.

    A row whose fit is not usable (no positive scale, not finite) keeps its values.
    ``|e0|^2`` is bounded by the refitted ``c`` (``dark >= 0``).

    Returns
    -------
    model : RowModel
        The refitted rows.
    rss : (n_out,) array
        Each row's weighted residual sum of squares after the refit (noise units).
    """
    tm, e0, dark = model.tm, model.reference_field, model.dark
    normal, moment, total = statistics.normal, statistics.moment, statistics.residual
    diagonal = xp.diagonal(normal, axis1=1, axis2=2)
    damped = normal + (1e-10 * diagonal + 1e-300)[:, :, None] * xp.eye(4)
    step = xp.linalg.solve(damped, moment[..., None])[..., 0]
    rss = xp.maximum(total - (step * moment).sum(-1), 0.0)
    alpha = 1.0 + step[:, 0]
    fixed = e0 + step[:, 1] + 1j * step[:, 2]
    level = xp.abs(e0) ** 2 + dark + step[:, 3]
    ok = xp.isfinite(step).all(axis=1) & (alpha > 0) & (level > 0)
    scale = xp.sqrt(xp.where(ok, alpha, 1.0))
    fixed = fixed / scale
    bound = xp.sqrt(xp.maximum(level, 0.0))
    fixed = fixed * xp.minimum(1.0, bound / xp.maximum(xp.abs(fixed), 1e-300))
    new_dark = level - xp.abs(fixed) ** 2
    tm = xp.where(ok[:, None], tm * scale[:, None], tm)
    rss = xp.where(ok, rss, total)
    refitted = RowModel(tm=tm, reference_field=xp.where(ok, fixed, e0),
                        dark=xp.where(ok, new_dark, dark))
    return refitted, rss


def polish_rows(xp, model: RowModel, blocks: list[CountBlock], censor, noise: NoiseModel,
                floor) -> RowModel:
    """Levenberg-Marquardt on every count of ``blocks``, per row.

    Parameters per row: ``Re K_j``, ``Im K_j``, ``e0_j``, ``dark_j``; the global phase, which
    intensities cannot see, is held by the damping. A step is kept only where it lowers the
    row's weighted residual (weights from ``noise`` plus ``floor`` (n_out,) DN^2; counts at
    or above ``censor``, DN, left out).
    """
    frames = xp.concatenate([block.frames for block in blocks])
    counts = xp.concatenate([block.counts for block in blocks])
    n = frames.shape[1]
    n_out = model.tm.shape[0]
    tm, e0, dark = model.tm.copy(), model.reference_field.copy(), model.dark.copy()
    size = 2 * n + 3
    eye = xp.eye(size)
    for r0 in range(0, n_out, POLISH_ROW_CHUNK):
        rows = slice(r0, min(n_out, r0 + POLISH_ROW_CHUNK))
        theta = xp.concatenate([tm[rows].real, tm[rows].imag, e0[rows].real[:, None],
                                e0[rows].imag[:, None], dark[rows][:, None]], axis=1)
        y = counts[:, rows].T                                       # (R, F)
        keep = xp.ones_like(y) if censor is None else (y < censor).astype(y.dtype)

        def evaluate(params):
            k = params[:, :n] + 1j * params[:, n:2 * n]
            field_ = k @ frames.T + (params[:, 2 * n] + 1j * params[:, 2 * n + 1])[:, None]
            level = field_.real ** 2 + field_.imag ** 2
            variance = noise.variance(level) + floor[rows][:, None]
            weight = keep / variance
            residual = y - level - params[:, 2 * n + 2][:, None]
            return field_, weight, residual, (weight * residual ** 2).sum(1)

        field_, weight, residual, cost = evaluate(theta)
        damping = xp.full(theta.shape[0], 1e-3)
        for _ in range(POLISH_ITERATIONS):
            jac = xp.concatenate([2 * field_.real[..., None] * frames[None],
                                  2 * field_.imag[..., None] * frames[None],
                                  2 * field_.real[..., None], 2 * field_.imag[..., None],
                                  xp.ones_like(field_.real)[..., None]], axis=2)
            weighted = jac * weight[..., None]
            normal = weighted.transpose(0, 2, 1) @ jac
            gradient = (weighted * residual[..., None]).sum(1)
            diagonal = xp.diagonal(normal, axis1=1, axis2=2)
            floor_ = 1e-12 * diagonal.max(axis=1, keepdims=True)
            damped = normal + (damping[:, None] * diagonal + floor_)[..., None] * eye
            trial = theta + xp.linalg.solve(damped, gradient[..., None])[..., 0]
            field_t, weight_t, residual_t, cost_t = evaluate(trial)
            better = cost_t < cost
            theta = xp.where(better[:, None], trial, theta)
            field_ = xp.where(better[:, None], field_t, field_)
            weight = xp.where(better[:, None], weight_t, weight)
            residual = xp.where(better[:, None], residual_t, residual)
            cost = xp.where(better, cost_t, cost)
            damping = xp.where(better, damping / 10.0, damping * 10.0)
        tm[rows] = theta[:, :n] + 1j * theta[:, n:2 * n]
        e0[rows] = theta[:, 2 * n] + 1j * theta[:, 2 * n + 1]
        dark[rows] = theta[:, 2 * n + 2]
    return RowModel(tm=tm, reference_field=e0, dark=dark)
