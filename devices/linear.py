"""Linear projections from intensity-only measurements (docs/design.md section 3).

Every OPU's field is affine in the binary frame, ``E(x) = e0 + K x`` (``e0`` gathers
DMD leakage and any fixed reference), and the camera reads ``y = g |E|^2 + c``. Two
identities turn such intensities into a linear function of ``x``, exactly:

Complement, with ``1`` the all-on frame of the used inputs::

    f(x) = (y(x) - y(1 - x) + y(1) - y(0)) / 2 = 2 g Re(conj(m) K x),  m = e0 + K 1 / 2

Anchor, with ``a`` a fixed frame on inputs that ``x`` never uses::

    f(x) = (y(x + a) - y(x) - y(a) + y(0)) / 2 = g Re(conj(K a) K x)

Both cost two device frames per input frame, plus two reference frames (``1`` and
``0``, or ``a`` and ``0``) shared by a block of inputs and taken in the same acquisition
(the identity frames of one more input in front: ``with_reference``), so that slow
drift cancels. The black offset ``c`` cancels in every difference.

Row normalization (:func:`row_norms`)
-------------------------------------
Row ``j`` of either identity is a random functional whose size depends on the fixed
field: ``|m_j|`` for the complement, ``|K_j a|`` for the anchor. Its size is measured
where it acts: the variance of the row's outputs over random probe frames, less the
noise's share. Where the fixed field is DMD leakage only (``e0`` proportional to
``K 1``) the reference response ``f(1) = y(1) - y(0)`` (or ``y(a) - y(0)``) is
proportional to that variance and far more precise (repeated frames, not a handful of
random ones); it is used for the rows it agrees with, when it agrees with nearly all
of them. A reference field (mirrors held on outside the used region) breaks that
proportionality: ``f(1) = 2 g Re(conj(m) K 1)`` may then be small or negative while the
row is strong, and the measured variance is used. A row whose probe variance disagrees
with it by three to five standard errors is sized by a geometric blend of the two
(:func:`probe_weight`), so that no small change moves a row's size by a jump. A row
whose signal is within the noise is *weak*: it is never scaled up beyond a tenth of the
typical row's size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from photon import array_module

__all__ = ["REFERENCE_FRAMES", "complement_frames", "anchor_frames", "identity_halves",
           "RowNorms", "row_norms", "probe_weight", "WEAK_SNR", "MAX_ROW_GAIN",
           "MODEL_TOLERANCE_Z", "MODEL_SWITCH_Z"]

REFERENCE_FRAMES = 2  # per block of inputs, for either identity
WEAK_SNR = 1.0        # a row whose signal rms on random inputs is below the noise's is weak
MAX_ROW_GAIN = 10.0   # no row is scaled up more than this times the typical row
MODEL_AGREEMENT = 0.9  # fraction of rows the reference model must agree with to be used
MODEL_TOLERANCE_Z = 3.0  # agreement: log ratio within this many standard errors
MODEL_SWITCH_Z = 5.0     # beyond this many standard errors a row is sized by its probes alone


def complement_frames(frames, n_in: int, with_reference: bool = False):
    """Device frames ``[x; 1 - x]`` for inputs ``frames`` (b, d) on the first ``d`` inputs.

    The complement is taken within the ``d`` used inputs; inputs beyond stay off. With
    ``with_reference`` the all-on input ``u`` comes first, ``[u, x; 0, u - x]``: its pair
    gives the reference response ``y(u) - y(0)`` in the same acquisition.
    """
    xp = array_module(frames)
    b, d = frames.shape
    lead = int(with_reference)
    half = b + lead
    out = xp.zeros((2 * half, n_in), np.uint8)
    if lead:
        out[0, :d] = 1
    out[lead:half, :d] = frames
    xp.subtract(1, frames, out=out[half + lead:, :d], casting="unsafe")
    return out


def anchor_frames(frames, anchor_start: int, n_in: int, with_reference: bool = False):
    """Device frames ``[x + a; x]``; the anchor ``a`` lights inputs ``anchor_start ..``.

    With ``with_reference`` the input ``0`` comes first, ``[a, x + a; 0, x]``: its pair gives
    the reference response ``y(a) - y(0)`` in the same acquisition.
    """
    xp = array_module(frames)
    b, d = frames.shape
    lead = int(with_reference)
    half = b + lead
    out = xp.zeros((2 * half, n_in), np.uint8)
    out[lead:half, :d] = frames
    out[:half, anchor_start:] = 1
    out[half + lead:, :d] = frames
    return out


def identity_halves(counts, with_reference: bool):
    """The identity frames' counts split into partners, and the reference response.

    Parameters
    ----------
    counts : (2 b, n_out) array
        Counts of :func:`complement_frames` or :func:`anchor_frames` (first the ``b``
        frames ``x`` or ``x + a``, then their partners ``1 - x`` or ``x``).
    with_reference
        Whether the frames were made ``with_reference`` (the first pair is split off).

    Returns
    -------
    first, second : (b or b - 1, n_out) views of ``counts``
        The counts of each input's two frames: ``f = (first - second + reference) / 2``
        (complement) or ``(first - second - reference) / 2`` (anchor) is the identity of
        the module notes.
    reference : (n_out,) float32 or None
        ``y(ref) - y(0)``.
    """
    b = counts.shape[0] // 2
    first, second = counts[:b], counts[b:]
    reference = None
    if with_reference:
        xp = array_module(counts)
        reference = xp.subtract(first[0], second[0], dtype=np.float32)
        first, second = first[1:], second[1:]
    return first, second, reference


@dataclass(frozen=True)
class RowNorms:
    """Per-row sizes of a linear-mode matrix (see :func:`row_norms`).

    Attributes
    ----------
    norm2 : (n_out,) float64
        Each row's squared size in reference units (``f(1)`` where the reference model
        holds); rows are divided by ``sqrt(max(norm2, floor))``.
    floor : (n_out,) float64
        The smallest squared size a row is scaled as: the noise level, and a hundredth
        of the median (so no row is scaled up more than ``MAX_ROW_GAIN`` times the
        typical one).
    weak : (n_out,) bool
        Rows whose signal is within the noise (``norm2 < floor``).
    from_reference : (n_out,) bool
        Rows sized by the reference response alone (``probe_weight == 0``).
    probe_weight : (n_out,) float64
        The probe variance's weight ``w`` in each row's size, ``norm2 = reference^(1 - w)
        (signal / alpha)^w``: 0 within ``MODEL_TOLERANCE_Z`` standard errors, 1 beyond
        ``MODEL_SWITCH_Z``, a smooth step between (so that a small change of a row's
        measurements never jumps its size).
    signal_to_noise : (n_out,) float64
        Rms of each row's signal over rms of its noise, on random inputs (inf without
        noise).
    """

    norm2: np.ndarray
    floor: np.ndarray
    weak: np.ndarray
    from_reference: np.ndarray
    signal_to_noise: np.ndarray
    probe_weight: np.ndarray

    @property
    def scale(self) -> np.ndarray:
        """``1 / sqrt(max(norm2, floor))`` per row, float32."""
        return (1.0 / np.sqrt(np.maximum(self.norm2, self.floor))).astype(np.float32)


def row_norms(probe_outputs, reference, noise_variance, *, n_inputs: int | None = None,
              weak_snr: float = WEAK_SNR, max_gain: float = MAX_ROW_GAIN) -> RowNorms:
    """Size each output row of linear mode from what the identity measured.

    Parameters
    ----------
    probe_outputs : (P, n_out) array
        Raw identity outputs of ``P`` random binary frames (for the complement, less their
        component along the all-on frame).
    reference : (n_out,) array
        The reference response ``y(1) - y(0)`` (complement) or ``y(a) - y(0)`` (anchor),
        averaged over repeated frames, counts.
    noise_variance : (n_out,) array
        Variance of one raw output from noise alone, counts^2.
    n_inputs
        Inputs the rows act on (None: many). With ``|m_j|`` fixed, a row's squared size
        is a chi-square of about ``n_inputs`` degrees of freedom (relative variance
        ``2 / n_inputs``): the natural spread of a Gaussian row's norm, which the
        reference model rightly keeps and its agreement test allows for.
    weak_snr
        A row whose signal rms is below ``weak_snr`` times its noise rms is weak.
    max_gain
        No row is scaled up more than this times the median row.

    Returns
    -------
    RowNorms
        ``norm2`` per row in reference units: ``reference`` where the leakage model
        ``variance = alpha * reference`` holds (for at least ``MODEL_AGREEMENT`` of the
        rows, each within ``MODEL_TOLERANCE_Z`` standard errors: a variance of ``P``
        values and the rows' natural spread), the signal variance over ``P`` probes
        divided by ``alpha`` (the median ratio, 1 when no reference is positive) where
        it disagrees by more than ``MODEL_SWITCH_Z`` standard errors or the model fails
        for the device, and between the two, their geometric blend with weight
        :func:`probe_weight`.
    """
    outputs = np.asarray(probe_outputs, np.float64)
    reference = np.asarray(reference, np.float64)
    noise_variance = np.maximum(np.asarray(noise_variance, np.float64), 0.0)
    p = outputs.shape[0]
    if p < 2:
        raise ValueError(f"probe_outputs: {p} frames: expected at least 2 to measure a variance")
    total = outputs.var(axis=0, ddof=1)
    signal = np.maximum(total - noise_variance, 0.0)
    positive = (reference > 0) & (signal > 0)
    alpha = float(np.median(signal[positive] / reference[positive])) if positive.any() else 1.0
    if not alpha > 0:
        alpha = 1.0
    predicted = alpha * np.maximum(reference, 0.0)
    # A sample variance of P values scatters by sqrt(2 / (P - 1)) of the total variance;
    # a Gaussian row's squared norm by sqrt(2 / n_inputs) about its expectation.
    natural = 0.0 if n_inputs is None else 2.0 / max(int(n_inputs) - 1, 1)
    relative = math.sqrt(2.0 / (p - 1) + natural)
    with np.errstate(divide="ignore", invalid="ignore"):  # compared on a log scale (skewed)
        ratio = np.log((signal + noise_variance) / (predicted + noise_variance))
    agree = positive & (np.abs(ratio) <= MODEL_TOLERANCE_Z * relative)
    model_holds = agree.sum() >= MODEL_AGREEMENT * max(positive.sum(), 1) and \
        positive.sum() >= MODEL_AGREEMENT * reference.size
    weight = (np.where(positive, probe_weight(np.abs(ratio) / relative), 1.0) if model_holds
              else np.ones(reference.size))
    probe_sized = signal / alpha
    with np.errstate(divide="ignore", invalid="ignore"):   # blended on a log scale
        blended = np.exp((1.0 - weight) * np.log(np.where(positive, reference, 1.0))
                         + weight * np.log(np.where(positive, probe_sized, 1.0)))
    norm2 = np.where(weight <= 0.0, np.maximum(reference, 0.0),
                     np.where(weight >= 1.0, probe_sized, blended))
    noise2 = noise_variance / alpha
    typical = float(np.median(norm2)) if norm2.size else 0.0
    floor = np.maximum(weak_snr ** 2 * noise2, typical / max_gain ** 2)
    floor = np.maximum(floor, 1e-30)
    weak = norm2 < floor
    with np.errstate(divide="ignore", invalid="ignore"):
        snr = np.where(noise2 > 0, np.sqrt(norm2 / np.where(noise2 > 0, noise2, 1.0)), np.inf)
    return RowNorms(norm2, floor, weak, weight == 0.0, snr, weight)


def probe_weight(z):
    """The probe variance's weight in a row's size given its disagreement ``z``.

    ``z`` is the log ratio of the row's probe variance to the reference model's, in
    standard errors. 0 up to ``MODEL_TOLERANCE_Z`` (the reference alone), 1 from
    ``MODEL_SWITCH_Z`` (the probes alone), and the smooth step ``3 t^2 - 2 t^3`` between:
    a row's size is continuous in its measurements, so a perturbation that moves a row
    across the tolerance changes its gain by a little, not by ``exp(z relative / 2)``.
    """
    t = np.clip((np.asarray(z, np.float64) - MODEL_TOLERANCE_Z)
                / (MODEL_SWITCH_Z - MODEL_TOLERANCE_Z), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)
