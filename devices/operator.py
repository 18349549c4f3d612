"""The OPU operator: random projections through any device, in the fit/transform style.

``OPU(device)`` wraps an :class:`~devices.protocol.OPUDevice` (ideal, virtual,
calibrated or hardware) and offers

* :meth:`OPU.transform`: the intensity projection ``|R x|^2`` of binary inputs;
* :meth:`OPU.linear_transform`: a linear random projection ``M x`` recovered from
  intensities (complement or anchor identity, :mod:`devices.linear`), of binary inputs
  or, through an encoder, of real ones;
* :meth:`OPU.cost`: the frames, seconds and joules a job takes on the device.

Linear mode, normalized
-----------------------
The raw identities give ``f_j(x) = 2 g Re(conj(m_j) K_j x)``: each output row carries
its own random amplitude ``|m_j|``, which would make the entries of ``M`` a Gaussian
scale mixture. Each row is divided by the square root of its reference response
(``f_j(1)`` or ``|K a|^2``, averaged over repeated reference frames at :meth:`fit`),
which is proportional to ``|m_j|`` for a device whose fixed field is DMD leakage only.
The complement identity leaves a component along the all-on frame (``m_j`` contains
``K_j 1``); :meth:`linear_transform` removes it, so ``M`` acts on the inputs' deviation
from their mean and its rows sum to zero. A global scale fitted on probe frames makes
the entries of ``M`` unit-variance Gaussian.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from photon import array_module, check_binary_frames, to_numpy
from photon.support.progress import Progress

from .cost import JobCost, job_cost
from .linear import (anchor_frames, anchor_projection, anchor_references, complement_frames,
                     complement_projection, complement_references, reference_response)
from .protocol import OPUDevice

__all__ = ["OPU"]

_MAX_BATCH_ELEMENTS = 1 << 25  # device frames x outputs per acquisition (128 MiB of float32)
SATURATION_TARGET = 1e-3      # largest fraction of saturated outputs on the brightest frame
WEAK_REFERENCE_FRACTION = 1e-2  # references below this fraction of the median are clamped


class OPU:
    """Random projections through an OPU device.

    Parameters
    ----------
    device
        Any :class:`~devices.protocol.OPUDevice`; it is opened if closed.
    linear_method
        ``"complement"`` (no input reserved) or ``"anchor"`` (the last ``n_anchor``
        inputs form a fixed anchor frame).
    n_anchor
        Anchor size for ``linear_method="anchor"`` (default: a quarter of the inputs).
    encoder
        Encoder of real-valued inputs into binary planes (see :mod:`devices.encoders`);
        fitted by :meth:`fit` when given data.
    batch_size
        Input frames per block: in linear mode each block shares one pair of reference
        frames taken just before it. Acquisitions are further cut so that one stays
        near 128 MiB of counts.
    rescale
        ``"standard"``: intensities as ``|R x|^2`` with ``R`` of variance
        ``1 / n_features`` and linear outputs with unit-variance ``M``; ``"none"``:
        raw (offset-free) counts.
    progress
        Show a progress bar: True, False, or None for work of four batches or more.
    auto_exposure
        At :meth:`fit`, shorten the device's exposure (when it has a settable one) until
        the brightest frame linear mode shows (every used input on) saturates at most
        0.1 % of the outputs: a saturated count breaks the identities' linearity. The
        device's exposure is changed; ``exposure_us_`` records it.
    probe_frames
        Random frames used by :meth:`fit` to set the output scale.
    seed
        Seed of the probe frames.
    """

    def __init__(self, device: OPUDevice, *, linear_method: str = "complement",
                 n_anchor: int | None = None, encoder=None, batch_size: int = 1024,
                 rescale: str = "standard", progress: bool | None = None,
                 auto_exposure: bool = True, probe_frames: int = 32, seed: int = 0):
        if not isinstance(device, OPUDevice):
            raise TypeError(f"device = {device!r}: expected an OPUDevice (see devices.open_device)")
        if linear_method not in ("complement", "anchor"):
            raise ValueError(f"linear_method = {linear_method!r}: expected 'complement' or 'anchor'")
        if rescale not in ("standard", "none"):
            raise ValueError(f"rescale = {rescale!r}: expected 'standard' or 'none'")
        if int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"batch_size = {batch_size!r}: expected a positive integer")
        self.device = device.open()
        self.linear_method = linear_method
        if linear_method == "anchor":
            n_anchor = max(1, device.n_in // 4) if n_anchor is None else int(n_anchor)
            if not 1 <= n_anchor < device.n_in:
                raise ValueError(f"n_anchor = {n_anchor!r}: expected 1 .. {device.n_in - 1} "
                                 f"inputs of the {device.n_in}-input device")
        else:
            n_anchor = 0
        self.n_anchor = n_anchor
        self.encoder = encoder
        self.batch_size = batch_size
        self.rescale = rescale
        self.progress = progress
        self.auto_exposure = bool(auto_exposure)
        self.probe_frames = int(probe_frames)
        self.seed = int(seed)
        self.n_features_: int | None = None

    # ------------------------------------------------------------------ sizes
    @property
    def n_components(self) -> int:
        """Output dimension (the device's outputs)."""
        return self.device.n_out

    @property
    def max_features(self) -> int:
        """Largest input dimension this operator accepts."""
        return self.device.n_in - self.n_anchor

    def _chunk(self, frames_per_input: int) -> int:
        """Input frames per acquisition: a block, or fewer to bound the memory of counts."""
        memory_bound = max(1, _MAX_BATCH_ELEMENTS // (frames_per_input * self.device.n_out))
        return min(self.batch_size, memory_bound)

    # ------------------------------------------------------------------ fitting
    def fit(self, X=None, *, n_features: int | None = None) -> "OPU":
        """Set the input dimension and measure the output scales.

        Costs ``12 + 2 probe_frames + 2`` device frames (dark, all-on and anchor frames,
        the probes in linear mode).

        Parameters
        ----------
        X : (n_samples, n_features) array or int, optional
            Data: its width sets ``n_features`` and the encoder, if any, is fitted on it.
            An integer is taken as ``n_features``.
        n_features
            Input dimension when no data is given.
        """
        if isinstance(X, (int, np.integer)):
            X, n_features = None, int(X)
        if X is not None:
            if getattr(X, "ndim", 0) != 2:
                raise ValueError(f"X: shape {getattr(X, 'shape', None)}: expected (n_samples, n_features)")
            n_features = X.shape[1]
            if self.encoder is not None:
                self.encoder.fit(X)
        if n_features is None or int(n_features) != n_features or n_features < 1:
            raise ValueError(f"n_features = {n_features!r}: expected a positive integer "
                             "(or pass data X)")
        if n_features > self.max_features:
            raise ValueError(f"n_features = {n_features}: expected at most {self.max_features} "
                             f"inputs ({self.device.n_in} on the device"
                             + (f", {self.n_anchor} kept for the anchor)" if self.n_anchor else ")"))
        self.n_features_ = int(n_features)
        self._fit_scales()
        return self

    def _settle_exposure(self) -> None:
        """Keep the brightest frame of linear mode below saturation (see ``auto_exposure``)."""
        device, full = self.device, self.device.full_scale
        self.exposure_us_ = device.exposure_us
        if full is None:
            return
        brightest = np.zeros((2, device.n_in), np.uint8)
        brightest[:, :self.n_features_] = 1
        if self.n_anchor:
            brightest[:, device.n_in - self.n_anchor:] = 1
        for _ in range(4):
            saturated = float((np.asarray(to_numpy(device.acquire(brightest))) >= full).mean())
            if saturated <= SATURATION_TARGET:
                break
            if not self.auto_exposure or not device.exposure_settable:
                warnings.warn(f"{saturated:.1%} of the outputs saturate at {full} when every "
                              f"used input is on: expected at most {SATURATION_TARGET:.1%}; "
                              "linear mode is distorted there (lower the exposure)",
                              RuntimeWarning, stacklevel=4)
                break
            # Exponential speckle: P(y > S) = exp(-S / mean), so the mean must shrink by
            # log(p) / log(target) (a quarter when everything saturates).
            factor = math.log(saturated) / math.log(SATURATION_TARGET) if saturated < 1 else 0.25
            device.exposure_us = device.exposure_us * 0.9 * factor
        self.exposure_us_ = device.exposure_us

    def _fit_scales(self) -> None:
        """Measure the dark level, the per-row references and the output scales."""
        self._settle_exposure()
        d, n_in = self.n_features_, self.device.n_in
        rng = np.random.default_rng(self.seed)
        probes = (rng.random((self.probe_frames, d)) < 0.5).astype(np.uint8)
        # Dark, all-on and anchor frames, repeated to average the noise.
        repeats = 4
        frames = np.zeros((3 * repeats, n_in), np.uint8)
        frames[:repeats, :d] = 1
        if self.n_anchor:
            frames[repeats:2 * repeats, n_in - self.n_anchor:] = 1
        counts = self.device.acquire(frames).astype(np.float64)
        self._dark = counts[2 * repeats:].mean(axis=0).astype(np.float32)
        all_on = counts[:repeats].mean(axis=0) - self._dark
        self._intensity_unit = float(all_on.mean()) / d if all_on.mean() > 0 else 1.0
        # Per-row linear normalization: the reference response f(1) = y(1) - y(0) of the
        # complement identity, or y(a) - y(0) of the anchor.
        lit = counts[:repeats] if not self.n_anchor else counts[repeats:2 * repeats]
        reference = lit.mean(axis=0) - self._dark
        # Rows whose reference is within the noise, or near zero (|R 1 + b|^2 ~ |b|^2: the
        # all-on field interferes destructively with the held-on one), would be amplified
        # without bound: clamp at four standard errors of the reference, and at 1 % of the
        # median reference, so that no row is scaled up more than 10x the typical one (a
        # noise-free device has no noise floor: 1e-6 let two rows of a calibrated device
        # grow 600x and swamp a DFA feedback signal).
        noise = np.median(lit.std(axis=0, ddof=1) + counts[2 * repeats:].std(axis=0, ddof=1))
        floor = max(WEAK_REFERENCE_FRACTION * max(float(np.median(reference)), 0.0),
                    4.0 * noise / math.sqrt(repeats), 1e-12)
        weak = int((reference < floor).sum())
        self.weak_outputs_ = weak
        if weak > 0.1 * reference.size:
            warnings.warn(f"{weak} of {reference.size} outputs have a reference response within "
                          "the noise: their linear outputs are clamped and noisy",
                          RuntimeWarning, stacklevel=3)
        self._row_norm = (1.0 / np.sqrt(np.maximum(reference, floor))).astype(np.float32)
        self._linear_scale = 1.0
        if self.rescale == "standard":
            # Entry variance of M from differences of probe pairs, M (x1 - x2): the
            # random-sign difference keeps the realized row sums of M out of the estimate.
            projected = self._linear_frames(probes, progress=False).astype(np.float64)
            half = self.probe_frames // 2
            diff = projected[:half] - projected[half:2 * half]
            z = probes[:half].astype(np.float64) - probes[half:2 * half]
            norm2 = (z ** 2).sum(axis=1)
            if self.linear_method == "complement":  # M acts on the deviation from the mean
                norm2 -= z.sum(axis=1) ** 2 / d
            variance = float((diff ** 2).mean(axis=1).sum() / norm2.sum())
            self._linear_scale = 1.0 / math.sqrt(variance) if variance > 0 else 1.0

    def _check_fitted(self, X, name: str = "X"):
        if self.n_features_ is None:
            raise RuntimeError("OPU: call fit(X) or fit(n_features=...) before transforming")
        if getattr(X, "ndim", 0) != 2 or X.shape[1] != self.n_features_:
            raise ValueError(f"{name}: shape {getattr(X, 'shape', None)}: expected "
                             f"(n_samples, {self.n_features_}) as fitted")

    # ------------------------------------------------------------------ intensity mode
    def transform(self, X):
        """Intensity projection of binary ``X`` (n_samples, n_features) -> (n_samples, n_out).

        With ``rescale="standard"`` the dark level is removed and the result is in units
        of ``|R x|^2`` for ``R`` of variance ``1 / n_features``; with ``"none"`` it is the
        device's counts less the dark level.
        """
        self._check_fitted(X)
        frames = check_binary_frames(X, self.n_features_, name="X")
        xp = array_module(frames)
        n, d = frames.shape
        batch = self._chunk(1)
        out = xp.empty((n, self.n_components), np.float32)
        dark = xp.asarray(self._dark)
        scale = np.float32(1.0 / (self._intensity_unit * d) if self.rescale == "standard" else 1.0)
        with Progress(math.ceil(n / batch), "OPU transform", enabled=self.progress,
                      unit="batch") as bar:
            for start in range(0, n, batch):
                chunk = frames[start:start + batch]
                padded = xp.zeros((chunk.shape[0], self.device.n_in), np.uint8)
                padded[:, :d] = chunk
                counts = self.device.acquire(padded).astype(np.float32)
                counts -= dark
                counts *= scale
                out[start:start + chunk.shape[0]] = counts
                bar.update()
        return out

    def fit_transform(self, X):
        """:meth:`fit` on ``X`` then :meth:`transform` it."""
        return self.fit(X).transform(X)

    # ------------------------------------------------------------------ linear mode
    def _references(self, xp):
        """Reference response ``y(1) - y(0)`` (complement) or ``y(a) - y(0)`` (anchor)."""
        if self.linear_method == "complement":
            frames = complement_references(self.n_features_, self.device.n_in, xp)
        else:
            frames = anchor_references(self.device.n_in - self.n_anchor, self.device.n_in, xp)
        return reference_response(self.device.acquire(frames))

    def _raw_linear(self, frames, reference):
        """Raw identity output ``f(x)`` of one acquisition's input frames."""
        n_in = self.device.n_in
        if self.linear_method == "complement":
            return complement_projection(self.device.acquire(complement_frames(frames, n_in)),
                                         reference)
        counts = self.device.acquire(anchor_frames(frames, n_in - self.n_anchor, n_in))
        return anchor_projection(counts, reference)

    def _linear_frames(self, frames, progress=None):
        """Normalized linear projection of binary frames (m, n_features) -> (m, n_out)."""
        xp = array_module(frames)
        m, d = frames.shape
        chunk = self._chunk(2)
        out = xp.empty((m, self.n_components), np.float32)
        row_norm = xp.asarray(self._row_norm) * np.float32(self._linear_scale)
        enabled = self.progress if progress is None else progress
        with Progress(math.ceil(m / self.batch_size), "OPU linear_transform", enabled=enabled,
                      unit="block") as bar:
            for block_start in range(0, m, self.batch_size):
                reference = self._references(xp)
                block_stop = min(m, block_start + self.batch_size)
                for start in range(block_start, block_stop, chunk):
                    part = frames[start:min(block_stop, start + chunk)]
                    f = self._raw_linear(part, reference)
                    if self.linear_method == "complement":
                        # Remove the component along the all-on frame: f(x) - mean(x) f(1).
                        on_fraction = part.sum(axis=1, dtype=np.float32) / np.float32(d)
                        f -= on_fraction[:, None] * reference[None, :]
                    f *= row_norm
                    out[start:start + part.shape[0]] = f
                bar.update()
        return out

    def linear_transform(self, X):
        """Linear random projection ``X -> X M^T`` (n_samples, n_out), float32.

        Binary ``X`` is projected directly; real-valued ``X`` needs the operator's
        ``encoder``, whose planes are projected and recombined (exact up to the
        encoder's quantization, since the projection is linear).
        """
        self._check_fitted(X)
        xp = array_module(X)
        binary = X.dtype == bool or bool(xp.all((X == 0) | (X == 1)))
        if binary and self.encoder is None:
            frames = check_binary_frames(X, self.n_features_, name="X")
            return self._linear_frames(frames)
        if self.encoder is None:
            raise ValueError("X: non-binary values (e.g. "
                             f"{float(X[~((X == 0) | (X == 1))].ravel()[0])!r}): expected binary "
                             "frames, or an OPU built with an encoder for real-valued data")
        planes = self.encoder.encode(X)  # (n, p, d)
        n, p, d = planes.shape
        projected = self._linear_frames(planes.reshape(n * p, d))
        return self.encoder.decode(projected.reshape(n, p, self.n_components)).astype(np.float32)

    def effective_matrix(self):
        """Measure the real matrix ``M`` (n_out, n_features) that linear mode applies.

        Projects the unit frames ``e_i``; ``linear_transform(x) = M x`` for binary ``x``.
        Costs ``2 n_features`` frames plus references.
        """
        if self.n_features_ is None:
            raise RuntimeError("OPU: call fit(...) before effective_matrix()")
        eye = np.eye(self.n_features_, dtype=np.uint8)
        return self._linear_frames(eye).T

    # ------------------------------------------------------------------ cost
    def cost(self, n_vectors: int, mode: str = "intensity",
             planes_per_vector: int | None = None) -> JobCost:
        """Frames, seconds and joules to project ``n_vectors`` vectors on this device.

        ``planes_per_vector`` defaults to the encoder's planes (1 without an encoder).
        """
        if planes_per_vector is None:
            planes_per_vector = getattr(self.encoder, "n_planes", 1) if self.encoder else 1
        return job_cost(n_vectors, mode=mode, frame_time_s=self.device.frame_time_s,
                        electrical_power_w=self.device.electrical_power_w,
                        planes_per_vector=planes_per_vector, batch_size=self.batch_size)
