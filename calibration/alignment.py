"""Alignment of a TM estimate's two halves (docs/design.md section 4, step 6).

Each half comes out of :func:`calibration.halves.fit_half` in its own frame per row (a
rotation or reflection, ``G_A`` and ``G_B``). The anchors of one half's calibration light
the other half: each anchor function, written in its row's own frame, is
``c_i = G_A K_B a_i`` while the other half's estimate gives ``v_i = G_B K_B a_i``, so
``c_i = C v_i`` with ``C = G_A G_B^T`` orthogonal. A Procrustes fit over the anchors of
both halves gives ``C``; its two singular values say how clearly it is a rotation or a
reflection. Mixed frames on both halves check the choice on fresh data:
``2 Re(conj(K_A x_A) K_B x_B) = 2 v_A^T C v_B``. Both sources' evidence, in noise units,
decides; a row where they disagree, or neither decides, is in conflict.
"""

from __future__ import annotations

from dataclasses import dataclass

from .halves import HalfFit, apply_rows
from .records import CountBlock, NoiseModel

__all__ = ["Alignment", "align", "HANDEDNESS_Z"]

HANDEDNESS_Z = 5.0           # rotation-or-reflection evidence needed, in noise units


@dataclass(frozen=True)
class Alignment:
    """The map taking half B's row frames into half A's, per row, and the evidence for it.

    Attributes
    ----------
    rotation : (n_out, 2, 2) float
        ``C``: orthogonal, a rotation or a reflection per row.
    conflict : (n_out,) bool
        Rows where the anchors and the mixed frames disagree clearly (beyond
        ``HANDEDNESS_Z`` each) or whose summed evidence does not decide.
    margin : (n_out,) float
        ``|anchor_z + mixed_z|``: the evidence for the chosen handedness, noise units.
    anchor_z : (n_out,) float
        The anchors' evidence for the best rotation-or-reflection over the other, noise
        units (positive: the Procrustes fit's own choice).
    mixed_z : (n_out,) float
        The mixed frames' evidence for the same, noise units.
    """

    rotation: object
    conflict: object
    margin: object
    anchor_z: object
    mixed_z: object


@dataclass(frozen=True)
class _Procrustes:
    """Best orthogonal map of each handedness and their weighted residual sums.

    ``best``, ``other``: (n_out, 2, 2) maps (the best one, the best of the other
    handedness); ``rss_best``, ``rss_other``: (n_out,) residual sums; ``count``: (n_out,)
    weighted number of coordinates fitted.
    """

    best: object
    other: object
    rss_best: object
    rss_other: object
    count: object


def _anchor_coordinates(xp, w3, rows):
    """Each anchor function ``w3_i`` (n_out, anchors, n) written in its row's frame
    ``rows`` (n_out, 2, n): ``c_i`` with ``w3_i ~ c_i^T rows``, shape (n_out, anchors, 2)."""
    gram = rows @ rows.transpose(0, 2, 1)                           # (n_out, 2, 2)
    scale = xp.trace(gram, axis1=1, axis2=2)
    gram = gram + (1e-12 * scale + 1e-300)[:, None, None] * xp.eye(2, dtype=gram.dtype)
    projected = rows @ w3.transpose(0, 2, 1)                        # (n_out, 2, anchors)
    return xp.linalg.solve(gram, projected).transpose(0, 2, 1)


def _procrustes(xp, pairs) -> _Procrustes:
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
    return _Procrustes(best=best, other=other, rss_best=rss_best, rss_other=rss_other,
                       count=count)


def _cross_residuals(xp, va, vb, cross, keep, maps):
    """Residual sums of the mixed frames' cross terms ``cross ~ 2 va^T C vb`` for each
    map in ``maps`` (n_out, 2, 2)."""
    out = []
    for c in maps:
        predicted = 2.0 * ((va @ c) * vb).sum(-1)                   # va^T C vb, (n_out, k)
        out.append((keep * (cross - predicted) ** 2).sum(-1))
    return out


def align(xp, fits: tuple[HalfFit, HalfFit], anchors, columns, mixed: CountBlock, y0,
          censor, noise: NoiseModel) -> Alignment:
    """The orthogonal map taking half B's row frames into half A's, per row, and its check.

    Parameters
    ----------
    fits
        The two halves' fits (A, B), each row in its own frame.
    anchors
        Each half's anchors ``(N_ANCHORS, n_in)`` float64 (A's light half B, B's half A).
    columns
        Each half's input columns.
    mixed
        The mixed frames (both halves lit, all inputs) and their counts.
    y0 : (n_out,)
        The all-off count, DN.
    censor
        Counts at or above it are censored (DN; None: none are).
    noise
        The camera noise model (weights of the mixed frames' evidence).
    """
    fit_a, fit_b = fits
    rows_a, e0_a, w3_a = fit_a.rows, fit_a.e0, fit_a.w3
    rows_b, e0_b, w3_b = fit_b.rows, fit_b.e0, fit_b.w3
    cols_a, cols_b = columns
    counts_mix = mixed.counts
    # Half A's anchors light half B: c_i = C v_i with v_i = rows_B a_i.
    c_a = _anchor_coordinates(xp, w3_a, rows_a)                     # (n_out, anchors, 2)
    v_b = apply_rows(rows_b, anchors[0][:, cols_b]).transpose(1, 0, 2)
    # Half B's anchors light half A: v'_i = C c'_i.
    c_b = _anchor_coordinates(xp, w3_b, rows_b)
    v_a = apply_rows(rows_a, anchors[1][:, cols_a]).transpose(1, 0, 2)
    weight_a = fit_a.anchors_used.astype(c_a.dtype)                 # dropped anchors: 0
    weight_b = fit_b.anchors_used.astype(c_b.dtype)
    fit = _procrustes(xp, [(c_a, v_b, weight_a), (v_a, c_b, weight_b)])
    sigma2 = fit.rss_best / xp.maximum(fit.count - 1.0, 1.0) + 1e-300
    anchor_z = (fit.rss_other - fit.rss_best) / sigma2 / xp.sqrt(xp.maximum(fit.count, 1.0))
    # Mixed frames: the cross term 2 Re(conj(K_A x_A) K_B x_B) = 2 va^T C vb.
    va = apply_rows(rows_a, mixed.frames[:, cols_a]).transpose(1, 0, 2)   # (n_out, k, 2)
    vb = apply_rows(rows_b, mixed.frames[:, cols_b]).transpose(1, 0, 2)
    own = ((va ** 2).sum(-1) + 2 * (va * e0_a[:, None, :]).sum(-1)
           + (vb ** 2).sum(-1) + 2 * (vb * e0_b[:, None, :]).sum(-1))
    cross = (counts_mix - y0[None, :]).T - own                      # (n_out, k)
    keep = xp.ones_like(cross) if censor is None else (counts_mix < censor).T.astype(cross.dtype)
    rss_mix_best, rss_mix_other = _cross_residuals(xp, va, vb, cross, keep,
                                                   (fit.best, fit.other))
    level = xp.maximum((counts_mix - y0[None, :]).T, 0.0)
    variance = noise.variance(level) * keep
    mix_sigma2 = variance.sum(-1) / xp.maximum(keep.sum(-1), 1.0) + 1e-300
    mix_z = (rss_mix_other - rss_mix_best) / mix_sigma2 / xp.sqrt(xp.maximum(keep.sum(-1), 1.0))
    # Choose by both sources; a row where they disagree clearly, or neither decides, is
    # not trusted: one of its halves may be conjugated.
    total_z = anchor_z + mix_z
    rotation = xp.where((total_z >= 0)[:, None, None], fit.best, fit.other)
    conflict = ((anchor_z > HANDEDNESS_Z) & (mix_z < -HANDEDNESS_Z)) | \
               ((anchor_z < -HANDEDNESS_Z) & (mix_z > HANDEDNESS_Z)) | \
               (xp.abs(total_z) < HANDEDNESS_Z)
    return Alignment(rotation=rotation, conflict=conflict, margin=xp.abs(total_z),
                     anchor_z=anchor_z, mixed_z=mix_z)


