"""The OPU operator: random projections through any device, in the estimator style.

``OPU(device, ...)`` only stores its settings, as scikit-learn's random projections do
(``GaussianRandomProjection(n_components=..., random_state=...)``): nothing is opened
and no frame is shown. :meth:`OPU.fit` does the work: it opens the device, shortens its
exposure if the brightest frame would saturate, measures the dark level, the per-output
references and the output scale, and fits the encoder on the data; what it learns ends
in ``_`` (``n_features_in_``, ``device_``, ``exposure_us_``, ...). Then

* :meth:`OPU.transform`: the intensity projection ``|R x|^2`` of binary inputs;
* :meth:`OPU.linear_transform`: a linear random projection ``M x`` recovered from
  intensities (complement or anchor identity, :mod:`devices.linear`), of binary inputs
  or, through an encoder, of real ones;
* :meth:`OPU.cost`: the frames, seconds and joules a job takes on the device.

A method that needs :meth:`OPU.fit` raises :class:`NotFittedError` before it.

Linear mode, normalized (docs/design.md section 3)
--------------------------------------------------
The raw identities give ``f_j(x) = 2 g Re(conj(m_j) K_j x)``: each output row carries
its own random amplitude ``|m_j|`` (``|K_j a|`` for the anchor), which would make the
entries of ``M`` a Gaussian scale mixture. Each row is divided by its size, measured by
what the identity does on random probe frames (the variance of the row's outputs, less
the noise's share; :func:`devices.linear.row_norms`). Where the fixed field is DMD
leakage only, the reference response ``f_j(1)`` (or ``|K_j a|^2``, averaged over
repeated reference frames) is proportional to that variance and far more precise: it
sizes the rows it agrees with. A reference field comparable to the signal (mirrors held
on outside the used region) breaks that proportionality (``f_j(1)`` may be small or
negative for a strong row); the probes then size every row, with more probes
(``NORM_PROBES``). A row whose signal is within the noise is weak (``weak_outputs_``):
it is never scaled up beyond a tenth of the typical row. Rows the device flags as
untrusted (``untrusted_outputs``, e.g. rows a calibration could not fit) are left out:
their linear outputs are zero. The complement identity leaves a component along the
all-on frame (``m_j`` contains ``K_j 1``, a bias of every row along ``1``);
:meth:`OPU.linear_transform` removes it, so the device's part ``M_c`` acts on the inputs'
deviation from their mean and its rows sum to zero. That part alone would bias every
estimate that needs ``E[M^T M] = k I`` (a randomized trace ``tr(M A M^T) / k`` loses
``1^T A 1 / d``), so by default (``complement_mean="drawn"``) the component along the
all-on frame, which the identity cannot measure, is drawn from the operator's seed:
``M = M_c + w 1^T / sqrt(d)`` with ``w`` i.i.d. Gaussian on the rows' scale, and ``M`` is
an i.i.d. Gaussian matrix (unbiased for any input). ``complement_mean="zero"`` keeps the
zero-row-sum ``M_c`` (inputs whose mean carries nothing, such as DFA errors). The anchor
identity's ``M`` has no such constraint: its rows are measured against an anchor field
independent of them (``n_anchor`` inputs reserved). ``linear_identity_`` says which
matrix a fitted operator applies. A global scale fitted on probe frames makes the
entries of ``M`` unit-variance Gaussian.

Cost: each block of ``batch_size`` inputs takes ONE acquisition of ``2 (b + 1)`` frames:
the identity frames of the inputs with one more input in front whose identity output is
the reference response (``u``, all used inputs on, for the complement; ``0`` for the
anchor). A device that computes the field of complementary halves with one product
(:mod:`photon.complement_pairs`) does half the work for the complement identity.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping

import numpy as np

from photon import DeviceConfig, array_module, check_binary_frames, to_numpy
from photon.support.arguments import check_bool, check_choice, check_int, is_integer
from photon.support.memory import plan_chunk_rows
from photon.support.progress import Progress

from .cost import JobCost, job_cost
from .encoders import Encoder
from .linear import WEAK_SNR, anchor_frames, complement_frames, identity_halves, row_norms
from .protocol import OPUDevice
from .registry import check_device_name, open_device

__all__ = ["OPU", "NotFittedError"]

_MAX_BATCH_ELEMENTS = 1 << 25  # device frames x outputs per acquisition (128 MiB of float32)
SATURATION_TARGET = 1e-3      # largest fraction of saturated outputs on the brightest frame
SATURATION_TRIES = 4          # brightest-frame measurements at most, at fit
REFERENCE_REPEATS = 4         # repeats of each of the dark, all-on and anchor frames at fit
NORM_PROBES = 128             # probes sizing the rows where no reference model holds
COMPLEMENT_MEANS = ("drawn", "zero")
_MEAN_COLUMN_STREAM = 0x4D43  # stream of the drawn mean column, spawned from ``seed``
EFFECTIVE_FRAMES_PER_INPUT = 2  # random frames per input behind effective_matrix


def _decode(weights, planes, samples: int, p: int, xp):
    """``sum_q weights[q] planes[s p + q]`` per input ``s``, float32 ``(samples, n_out)``."""
    planes = planes.reshape(samples, p, -1)
    if xp is np:
        return np.einsum("p,spo->so", weights, planes, dtype=np.float32, casting="unsafe")
    return xp.einsum("p,spo->so", weights, planes.astype(np.float32, copy=False))


class NotFittedError(ValueError, AttributeError):
    """An :class:`OPU` method that needs :meth:`OPU.fit` was called before it.

    A subclass of both ValueError and AttributeError, as scikit-learn's
    ``NotFittedError``: ``hasattr(opu, "device_")`` is False before ``fit``.
    """


class OPU:
    """Random projections through an OPU device.

    Construction only stores and checks the settings below: no device is built or
    opened and no frame is shown until :meth:`fit`.

    Parameters
    ----------
    device
        The device: an :class:`~devices.protocol.OPUDevice` instance (used as is, opened
        at :meth:`fit` if closed), or what :func:`devices.open_device` accepts (a
        backend name, a preset name, a YAML path or a :class:`photon.DeviceConfig`),
        built and opened at :meth:`fit` with ``device_options``. Names are checked at
        construction (no file is read).
    device_options
        Keyword arguments of :func:`devices.open_device` when ``device`` is not an
        instance, e.g. ``dict(n_in=256, n_out=1024)``.
    linear_method
        ``"complement"`` (no input reserved) or ``"anchor"`` (the last ``n_anchor``
        inputs form a fixed anchor frame).
    n_anchor
        Anchor size for ``linear_method="anchor"``, inputs (None: a quarter of the
        device's inputs, resolved at :meth:`fit` as ``n_anchor_``). Must be None with
        ``"complement"``.
    complement_mean
        The component of the complement identity's ``M`` along the all-on frame, which
        the device cannot measure: ``"drawn"`` (from ``seed``: ``M`` is i.i.d. Gaussian,
        unbiased for any input) or ``"zero"`` (rows sum to zero: ``M`` acts on ``x -
        mean(x)``). Ignored by the anchor identity. See the module notes.
    encoder
        A :class:`~devices.encoders.Encoder` of real-valued inputs into binary planes,
        or None for binary inputs only. :meth:`fit` fits it in place when given data.
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
        device's exposure stays changed after :meth:`fit` (see there).
    probe_frames
        Random binary frames (>= 2) :meth:`fit` projects to set the output scale
        (ignored with ``rescale="none"``).
    seed
        Seed (>= 0) of the probe frames.

    Attributes
    ----------
    The settings above are kept under their names, as given (``opu.device`` is the
    instance, name or config passed in). :meth:`fit` sets:

    device_ : OPUDevice
        The open device the operator acquires with (the ``device`` instance itself, or
        the one built from its name).
    n_features_in_ : int
        Input dimension.
    n_anchor_ : int
        Anchor inputs (0 for ``"complement"``).
    exposure_us_, initial_exposure_us_ : float or None
        The device's exposure after and before the last :meth:`fit`, microseconds (None
        for a device without one).
    weak_outputs_ : int
        Trusted outputs whose linear signal is within the noise (signal-to-noise below
        :data:`devices.linear.WEAK_SNR` on random inputs; scaled no more than a tenth of
        the typical row).
    untrusted_outputs_ : (k,) int array
        Outputs the device flags as unreliable (its ``untrusted_outputs``): zero in
        linear mode.
    usable_outputs_ : (n_out,) bool array
        Outputs neither weak nor untrusted.
    row_signal_to_noise_ : (n_out,) float array
        Each row's signal rms over its noise rms on random inputs (inf without noise).
    fit_frames_ : int
        Device frames the last :meth:`fit` showed.
    linear_identity_ : str
        The matrix linear mode applies: ``"complement"`` (mean component drawn, no
        constraint), ``"complement, rows summing to zero"`` or ``"anchor"``.

    Examples
    --------
    >>> import numpy as np
    >>> x = (np.random.default_rng(0).random((5, 48)) < 0.5).astype(np.uint8)
    >>> opu = OPU("ideal", device_options=dict(n_in=64, n_out=128))  # settings only
    >>> opu.fit(x).linear_transform(x).shape                         # fit opens the device
    (5, 128)
    """

    def __init__(self, device, *, device_options: Mapping | None = None,
                 linear_method: str = "complement", n_anchor: int | None = None,
                 complement_mean: str = "drawn",
                 encoder: Encoder | None = None, batch_size: int = 1024,
                 rescale: str = "standard", progress: bool | None = None,
                 auto_exposure: bool = True, probe_frames: int = 32, seed: int = 0):
        if isinstance(device, OPUDevice):
            if device_options:
                raise ValueError(f"device_options = {device_options!r}: expected None when "
                                 "device is an OPUDevice instance (options build a device from "
                                 "a name or a config)")
        elif not isinstance(device, DeviceConfig):
            if not isinstance(device, (str, os.PathLike)):
                raise TypeError(f"device = {device!r}: expected an OPUDevice, a device name (a "
                                "backend, a preset or a YAML path) or a photon.DeviceConfig")
            check_device_name(device)
        if device_options is not None and not isinstance(device_options, Mapping):
            raise TypeError(f"device_options = {device_options!r}: expected a dict of "
                            "open_device keyword arguments, or None")
        check_choice("linear_method", linear_method, ("complement", "anchor"))
        check_choice("complement_mean", complement_mean, COMPLEMENT_MEANS)
        if n_anchor is not None:
            if linear_method != "anchor":
                raise ValueError(f"n_anchor = {n_anchor!r}: expected None with "
                                 f"linear_method = {linear_method!r} (an anchor is reserved only "
                                 "with linear_method='anchor')")
            check_int("n_anchor", n_anchor, low=1)
        if encoder is not None and not isinstance(encoder, Encoder):
            raise TypeError(f"encoder = {encoder!r}: expected None or a devices.Encoder "
                            "(e.g. BitPlaneEncoder(n_bits=8), TernaryEncoder())")
        check_int("batch_size", batch_size, low=1)
        check_choice("rescale", rescale, ("standard", "none"))
        check_bool("progress", progress, optional=True, none_means="bars for long jobs")
        check_bool("auto_exposure", auto_exposure)
        check_int("probe_frames", probe_frames, low=2)
        check_int("seed", seed, low=0)
        self.device = device
        self.device_options = device_options
        self.linear_method = linear_method
        self.n_anchor = n_anchor
        self.complement_mean = complement_mean
        self.encoder = encoder
        self.batch_size = int(batch_size)
        self.rescale = rescale
        self.progress = progress
        self.auto_exposure = bool(auto_exposure)
        self.probe_frames = int(probe_frames)
        self.seed = int(seed)
        self._device: OPUDevice | None = None  # the device fit opened
        self._built_from = None  # (device, device_options) of a device fit built, else None
        self._fitted = False

    def __repr__(self) -> str:
        defaults = dict(device_options=None, linear_method="complement", n_anchor=None,
                        complement_mean="drawn", encoder=None, batch_size=1024, rescale="standard", progress=None,
                        auto_exposure=True, probe_frames=32, seed=0)
        changed = [f"{k}={getattr(self, k)!r}" for k, v in defaults.items()
                   if getattr(self, k) != v]
        return f"OPU({', '.join([repr(self.device)] + changed)})"

    # ------------------------------------------------------------------ fitted state
    def _require_fitted(self, what: str) -> None:
        if not self._fitted:
            raise NotFittedError(f"OPU.{what}: this OPU is not fitted yet: call fit(X) or "
                                 "fit(n_features=...) first (fit opens the device and measures "
                                 "its references)")

    def _any_device(self, what: str) -> OPUDevice:
        """The opened device, or the ``device`` instance before fit (not opened)."""
        if self._device is not None:
            return self._device
        if isinstance(self.device, OPUDevice):
            return self.device
        raise NotFittedError(f"OPU.{what}: the device {self.device!r} is built at fit: call "
                             "fit(X) or fit(n_features=...) first, or pass an OPUDevice instance")

    @property
    def device_(self) -> OPUDevice:
        """The open device the fitted operator acquires with."""
        self._require_fitted("device_")
        return self._device

    # ------------------------------------------------------------------ sizes
    @property
    def n_components(self) -> int:
        """Output dimension (the device's outputs)."""
        return self._any_device("n_components").n_out

    @property
    def max_features(self) -> int:
        """Largest input dimension this operator accepts (the device's inputs less the anchor)."""
        device = self._any_device("max_features")
        return device.n_in - self._resolve_anchor(device.n_in)

    def _resolve_anchor(self, n_in: int) -> int:
        """Anchor inputs on a device of ``n_in`` inputs (0 for the complement identity)."""
        if self.linear_method != "anchor":
            return 0
        n_anchor = max(1, n_in // 4) if self.n_anchor is None else int(self.n_anchor)
        if not 1 <= n_anchor < n_in:
            raise ValueError(f"n_anchor = {n_anchor!r}: expected 1 .. {n_in - 1} "
                             f"inputs of the {n_in}-input device")
        return n_anchor

    def _chunk(self, frames_per_input: int) -> int:
        """Input frames per acquisition: a block, or fewer to bound the memory of counts."""
        memory_bound = max(1, _MAX_BATCH_ELEMENTS // (frames_per_input * self._device.n_out))
        return min(self.batch_size, memory_bound)

    # ------------------------------------------------------------------ life cycle
    def _open_device(self) -> OPUDevice:
        """Open the device fit works on; build it once per ``device``/``device_options``."""
        if isinstance(self.device, OPUDevice):
            self._release_built()
            self._device = self.device.open()
            return self._device
        source = (self.device, dict(self.device_options or {}))
        if self._built_from is not None and self._built_from == source:
            return self._device.open()
        self._release_built()
        spec = os.fspath(self.device) if isinstance(self.device, os.PathLike) else self.device
        self._device = open_device(spec, **source[1])
        self._built_from = source
        return self._device

    def _release_built(self) -> None:
        """Close a device an earlier fit built from settings that have changed since."""
        if self._built_from is not None:
            self._device.close()
            self._device, self._built_from = None, None

    def close(self) -> None:
        """Close the device: the one :meth:`fit` built, or the instance passed in (idempotent).

        A later :meth:`fit` reopens it.
        """
        if self._device is not None:
            self._device.close()
        elif isinstance(self.device, OPUDevice):
            self.device.close()

    def __enter__(self) -> "OPU":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ fitting
    def _check_fit_args(self, X, n_features):
        """Return ``(X, xp, n_features)`` after checking ``fit``'s arguments."""
        if X is None:
            if n_features is None:
                raise ValueError("fit: X = None and n_features = None: expected data X "
                                 "(n_samples, n_features) or fit(n_features=<positive integer>)")
            return None, np, check_int("n_features", n_features, low=1)
        if isinstance(X, (bool, int, float, complex, str, np.generic)):
            hint = (f"fit(n_features={int(X)})" if is_integer(X) and X >= 1
                    else "fit(n_features=<positive integer>)")
            raise TypeError(f"X = {X!r}: expected an array (n_samples, n_features); to fit "
                            f"without data, pass the feature count by keyword: {hint}")
        xp = array_module(X)
        X = xp.asarray(X)
        if X.ndim != 2:
            raise ValueError(f"X: shape {tuple(X.shape)}: expected a 2-D array "
                             "(n_samples, n_features)")
        if X.shape[0] < 1 or X.shape[1] < 1:
            raise ValueError(f"X: shape {tuple(X.shape)}: expected at least one sample and one "
                             "feature")
        if X.dtype.kind not in "biuf":
            raise ValueError(f"X: dtype {X.dtype}: expected real numbers")
        if X.dtype.kind == "f":
            bad = ~xp.isfinite(X)
            if bool(bad.any()):
                index = tuple(int(i) for i in np.unravel_index(int(xp.argmax(bad)), X.shape))
                raise ValueError(f"X: value {X[index].item()!r} at index {index}: expected "
                                 "finite values")
        if n_features is not None and (not is_integer(n_features) or n_features != X.shape[1]):
            raise ValueError(f"n_features = {n_features!r}: expected None or X's width, "
                             f"{X.shape[1]}")
        return X, xp, int(X.shape[1])

    def fit(self, X=None, *, n_features: int | None = None) -> "OPU":
        """Open the device, settle its exposure and measure the operator's scales.

        Parameters
        ----------
        X : (n_samples, n_features) array, NumPy or CuPy, optional
            Data: its width sets the input dimension, the ``encoder`` (if any) is fitted
            on it in place, and the device is probed on its array backend (CuPy data,
            CuPy frames). Values are checked (real, finite) but otherwise unused.
        n_features
            Input dimension, keyword only, to fit without data (NumPy frames); an
            ``encoder`` is then left as it is (fit it, or give its parameters, before
            transforming real data).

        Returns
        -------
        OPU
            ``self``, fitted.

        Notes
        -----
        What fit does to the device, in order (a refit repeats steps 2 to 4):

        1. **Opens it.** A name or config is built with :func:`devices.open_device` and
           ``device_options``, once: a refit reuses it (reopened if closed). An
           ``OPUDevice`` instance is opened if closed.
        2. **Exposure** (only for a device whose counts saturate, ``full_scale`` not
           None): shows the brightest frame of linear mode, every one of the
           ``n_features`` used inputs on plus the anchor inputs, twice, and counts the
           outputs at ``full_scale``. While more than 0.1 % saturate and
           ``auto_exposure`` is True and the device's exposure is settable, it sets
           ``device.exposure_us`` to ``0.9 ln(p) / ln(1e-3)`` times itself (a quarter
           when every output saturates) and measures again: at most 4 measurements,
           2 frames each. **The exposure stays changed** after fit; it is recorded in
           ``exposure_us_`` (and the exposure found in ``initial_exposure_us_``).
           Otherwise a RuntimeWarning says how many outputs saturate.
        3. **References**: 12 frames, 4 with the used inputs on, 4 with the anchor on
           (no input on for the complement identity), 4 dark. Their means give the
           dark level, removed from intensities; the per-output reference response;
           the camera-like noise model ``var(y) = a + b (y - dark)`` of their repeats;
           and the intensity unit of ``rescale="standard"``.
        4. **Row sizes and scale**: ``probe_frames`` random binary frames (seeded by
           ``seed``) through linear mode, ``2 probe_frames`` frames plus 2 reference
           frames per block of ``batch_size``. Each row's output variance over them,
           less the noise's share, sizes the row, or its reference response where
           that agrees with the probes on nearly every row (DMD leakage only); where it
           does not (a reference field), ``NORM_PROBES - probe_frames`` more probes are
           shown. Rows within the noise are ``weak_outputs_``; rows the device flags
           (``untrusted_outputs``) are zeroed. With ``rescale="standard"`` the
           variance of probe-pair differences sets the global scale of ``M``.

        ``fit_frames_`` counts the frames shown. Nothing else on the device is set; a
        virtual device's clock (and drift) advances with the frames, as for any
        acquisition.
        """
        X, xp, n_features = self._check_fit_args(X, n_features)
        self._fitted = False
        device = self._open_device()
        n_anchor = self._resolve_anchor(device.n_in)
        if n_features > device.n_in - n_anchor:
            given = f"X: shape {tuple(X.shape)}" if X is not None else f"n_features = {n_features}"
            raise ValueError(f"{given}: expected at most {device.n_in - n_anchor} "
                             f"inputs ({device.n_in} on the device"
                             + (f", {n_anchor} kept for the anchor)" if n_anchor else ")"))
        if X is not None and self.encoder is not None:
            self.encoder.fit(X)
        self.n_anchor_ = n_anchor
        self.n_features_in_ = n_features
        frames_before = device.frames_acquired
        self._fit_scales(xp)
        self.fit_frames_ = device.frames_acquired - frames_before
        self._fitted = True
        return self

    def _settle_exposure(self, xp) -> None:
        """Keep the brightest frame of linear mode below saturation (see :meth:`fit`)."""
        device, full = self._device, self._device.full_scale
        self.initial_exposure_us_ = self.exposure_us_ = device.exposure_us
        if full is None:
            return
        brightest = np.zeros((2, device.n_in), np.uint8)
        brightest[:, :self.n_features_in_] = 1
        if self.n_anchor_:
            brightest[:, device.n_in - self.n_anchor_:] = 1
        brightest = xp.asarray(brightest)
        for _ in range(SATURATION_TRIES):
            saturated = float((to_numpy(device.acquire(brightest)) >= full).mean())
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

    def _fit_scales(self, xp) -> None:
        """Measure the dark level, the per-row references, the row sizes and the scale."""
        self._settle_exposure(xp)
        device = self._device
        d, n_in, n_anchor = self.n_features_in_, device.n_in, self.n_anchor_
        # The probes (float64 draws, then bytes) and their projections (float64, a few
        # copies) must fit: refused, naming the setting, before anything is drawn.
        plan_chunk_rows(self.probe_frames, 9.0 * d + 24.0 * device.n_out, 0.0,
                        what=f"fit with probe_frames = {self.probe_frames}")
        rng = np.random.default_rng(self.seed)
        probes = (rng.random((self.probe_frames, d)) < 0.5).astype(np.uint8)
        # Dark, all-on and anchor frames, repeated to average the noise.
        repeats = REFERENCE_REPEATS
        frames = np.zeros((3 * repeats, n_in), np.uint8)
        frames[:repeats, :d] = 1
        if n_anchor:
            frames[repeats:2 * repeats, n_in - n_anchor:] = 1
        counts = to_numpy(device.acquire(xp.asarray(frames))).astype(np.float64)
        dark_counts, on_counts = counts[2 * repeats:], counts[:repeats]
        self._dark = dark_counts.mean(axis=0).astype(np.float32)
        all_on = on_counts.mean(axis=0) - self._dark
        self._intensity_unit = float(all_on.mean()) / d if all_on.mean() > 0 else 1.0
        # Reference response f(1) = y(1) - y(0) of the complement identity, or y(a) - y(0)
        # of the anchor.
        lit = on_counts if not n_anchor else counts[repeats:2 * repeats]
        reference = lit.mean(axis=0) - self._dark
        noise = self._output_noise(dark_counts, on_counts, counts[repeats:2 * repeats])
        # Rows the device itself flags (a calibration that could not fit them).
        flagged = device.untrusted_outputs
        untrusted = np.zeros(device.n_out, bool)
        if flagged is not None and len(flagged):
            untrusted[np.asarray(flagged, np.int64)] = True
        self.untrusted_outputs_ = np.flatnonzero(untrusted)
        # Each row's size from the probes' raw outputs (docs/design.md section 3).
        raw = self._raw_outputs(xp, probes)
        norms = row_norms(raw, reference, noise, n_inputs=d)
        if not norms.from_reference.any() and probes.shape[0] < NORM_PROBES:
            # No reference model here (a reference field): the sizes rest on the probes'
            # variance alone; more probes make it precise.
            extra = (rng.random((NORM_PROBES - probes.shape[0], d)) < 0.5).astype(np.uint8)
            probes = np.concatenate([probes, extra])
            raw = np.concatenate([raw, self._raw_outputs(xp, extra)])
            norms = row_norms(raw, reference, noise, n_inputs=d)
        weak = norms.weak & ~untrusted
        self.weak_outputs_ = int(weak.sum())
        self.usable_outputs_ = ~(weak | untrusted)
        self.row_signal_to_noise_ = norms.signal_to_noise
        self._row_sizes = norms
        if weak.sum() > 0.1 * weak.size:
            warnings.warn(f"weak_outputs_ = {int(weak.sum())} of {weak.size} outputs have a linear "
                          f"signal within the noise (signal-to-noise below {WEAK_SNR}): expected "
                          "at most 10 %; their linear outputs are clamped and noisy (raise the "
                          "exposure or the light)", RuntimeWarning, stacklevel=3)
        row_norm = norms.scale
        row_norm[untrusted] = 0.0
        self._row_norm = row_norm
        # Entry variance of M from differences of probe pairs, M (x1 - x2): the
        # random-sign difference keeps the realized row sums of M out of the estimate.
        projected = raw * row_norm[None, :].astype(np.float64)
        rows = ~untrusted
        half = probes.shape[0] // 2
        diff = (projected[:half] - projected[half:2 * half])[:, rows]
        z = probes[:half].astype(np.float64) - probes[half:2 * half]
        norm2 = (z ** 2).sum(axis=1)
        if self.linear_method == "complement":  # M_c acts on the deviation from the mean
            norm2 -= z.sum(axis=1) ** 2 / d
        variance = (float((diff ** 2).mean(axis=1).sum() / norm2.sum())
                    if norm2.sum() and diff.size else 0.0)
        entry_std = math.sqrt(variance) if variance > 0 else 1.0
        self._linear_scale = 1.0 / entry_std if self.rescale == "standard" else 1.0
        self._mean_column = None
        self._scaled_vectors = {}   # backend name -> (row scale, drawn column) of linear mode
        if self.linear_method == "anchor":
            self.linear_identity_ = "anchor"
        elif self.complement_mean == "zero":
            self.linear_identity_ = "complement, rows summing to zero"
        else:
            # The component along 1 / sqrt(d) of an i.i.d. matrix of the rows' entry scale,
            # drawn once from the operator's own stream of ``seed``.
            stream = np.random.default_rng(np.random.SeedSequence(
                self.seed, spawn_key=(_MEAN_COLUMN_STREAM,)))
            # A weak row is scaled as one of the floor's size: its drawn part shrinks alike.
            fraction = np.sqrt(np.clip(norms.norm2 / np.maximum(norms.norm2, norms.floor), 0, 1))
            column = stream.standard_normal(device.n_out) * fraction * (entry_std / math.sqrt(d))
            column[untrusted] = 0.0
            self._mean_column = column.astype(np.float32)
            self.linear_identity_ = "complement"

    def _raw_outputs(self, xp, probes) -> np.ndarray:
        """Raw identity outputs (less the all-on component) of binary ``probes``, float64."""
        return to_numpy(self._linear_frames(xp.asarray(probes), progress=False,
                                            normalized=False)).astype(np.float64)

    def _output_noise(self, dark_counts, on_counts, anchor_counts) -> np.ndarray:
        """Variance of one raw identity output from noise alone, per row (counts^2).

        The repeated dark, all-on and anchor frames give ``var(y) = a + b (y - dark)``
        (a camera's read and shot noise), pooled over rows; an output differences two
        frames, ``f = (y_1 - y_2) / 2 + ...``: ``var f = (var y_1 + var y_2) / 4`` at the
        levels its frames reach on average.
        """
        dark = self._dark.astype(np.float64)
        sets = [dark_counts, on_counts] + ([anchor_counts] if self.n_anchor_ else [])
        levels = np.concatenate([c.mean(axis=0) - dark for c in sets])
        variances = np.concatenate([c.var(axis=0, ddof=1) for c in sets])
        design = np.stack([np.ones_like(levels), np.maximum(levels, 0.0)], axis=1)
        scale = np.maximum(np.abs(design).max(axis=0), 1e-300)
        coef = np.linalg.lstsq(design / scale, variances, rcond=None)[0] / scale
        a, b = max(float(coef[0]), 0.0), max(float(coef[1]), 0.0)
        on = np.maximum(on_counts.mean(axis=0) - dark, 0.0)
        if self.n_anchor_:  # y(x) about half of all-on, y(x + a) that plus the anchor's
            anchor = np.maximum(anchor_counts.mean(axis=0) - dark, 0.0)
            level = on / 2 + anchor / 2
        else:               # y(x) and y(1 - x), both about half-on
            level = on / 2
        return (2 * a + 2 * b * level) / 4

    def _check_fitted(self, X, method: str, name: str = "X"):
        self._require_fitted(method)
        if getattr(X, "ndim", 0) != 2 or X.shape[1] != self.n_features_in_:
            raise ValueError(f"{name}: shape {getattr(X, 'shape', None)}: expected "
                             f"(n_samples, {self.n_features_in_}) as fitted")

    # ------------------------------------------------------------------ intensity mode
    def transform(self, X):
        """Intensity projection of binary ``X`` (n_samples, n_features) -> (n_samples, n_out).

        With ``rescale="standard"`` the dark level is removed and the result is in units
        of ``|R x|^2`` for ``R`` of variance ``1 / n_features``; with ``"none"`` it is the
        device's counts less the dark level. One device frame per sample.
        """
        self._check_fitted(X, "transform")
        frames = check_binary_frames(X, self.n_features_in_, name="X")
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
                padded = xp.zeros((chunk.shape[0], self._device.n_in), np.uint8)
                padded[:, :d] = chunk
                counts = self._device.acquire(padded).astype(np.float32)
                counts -= dark
                counts *= scale
                out[start:start + chunk.shape[0]] = counts
                bar.update()
        return out

    def fit_transform(self, X):
        """:meth:`fit` on ``X`` then :meth:`transform` it."""
        return self.fit(X).transform(X)

    # ------------------------------------------------------------------ linear mode
    def _identity_counts(self, part, with_reference: bool):
        """Counts of the identity frames of inputs ``part`` from one acquisition.

        With ``with_reference`` the acquisition also holds the reference input in front
        (the frames' ``with_reference``). Returns :func:`identity_halves`'s
        ``(first, second, reference)``.
        """
        device, n_in = self._device, self._device.n_in
        if self.linear_method == "complement":
            frames = complement_frames(part, n_in, with_reference)
        else:
            frames = anchor_frames(part, n_in - self.n_anchor_, n_in, with_reference)
        return identity_halves(device.acquire(frames), with_reference)

    def _scaled(self, xp):
        """``(row scale, drawn column or None)`` of linear mode on backend ``xp``, float32."""
        vectors = self._scaled_vectors.get(xp.__name__)
        if vectors is None:
            scale = np.float32(self._linear_scale)
            column = None if self._mean_column is None else xp.asarray(self._mean_column * scale)
            vectors = (xp.asarray(self._row_norm * scale), column)
            self._scaled_vectors[xp.__name__] = vectors
        return vectors

    def _linear_frames(self, frames, progress=None, normalized: bool = True, weights=None):
        """Normalized linear projection of binary frames (m, n_features) -> (m, n_out).

        ``normalized=False``: the raw identity outputs (less the all-on component), as
        :meth:`fit` measures them to size the rows. With ``weights`` (p,), every ``p``
        consecutive frames are the planes of one input and the result is their weighted
        sum, ``(m / p, n_out)`` (an encoder's decoding, done once per input rather than
        once per plane).

        Per frame ``x`` with ``s`` inputs on, and ``R = y(ref) - y(0)`` of its block, the
        raw output is ``(first - second) / 2 + c R`` with ``c = 1/2 - s / d`` for the
        complement (its identity plus the removal of the component along the all-on
        frame, ``- (s / d) f(1)``) and ``c = -1/2`` for the anchor; each row is then
        scaled, and the drawn mean column adds ``s w``. A block of ``batch_size`` frames
        (rounded down to whole inputs) shares one reference.
        """
        xp = array_module(frames)
        rows, d = frames.shape
        p = 1 if weights is None else len(weights)
        plane_weights = xp.asarray(np.ones(1) if weights is None else weights, np.float32)
        out = xp.empty((rows // p, self.n_components), np.float32)
        if normalized:
            row_scale, column = self._scaled(xp)
        else:
            row_scale = xp.ones(self.n_components, np.float32)
            column = None
        half_weights = plane_weights * np.float32(0.5)
        complement = self.linear_method == "complement"
        block = max(p, self.batch_size // p * p)
        chunk = max(p, self._chunk(2) // p * p)
        enabled = self.progress if progress is None else progress
        blocks = math.ceil(rows / block)
        bar = (Progress(blocks, "OPU linear_transform", enabled=enabled, unit="block")
               if enabled or (enabled is None and blocks >= 4) else None)
        try:
            for block_start in range(0, rows, block):
                block_stop = min(rows, block_start + block)
                scaled_reference = None
                for start in range(block_start, block_stop, chunk):
                    part = frames[start:min(block_stop, start + chunk)]
                    first, second, reference = self._identity_counts(part,
                                                                     scaled_reference is None)
                    if reference is not None:
                        scaled_reference = reference * row_scale
                    f = out[start // p:(start + part.shape[0]) // p]
                    on = part.sum(axis=1, dtype=np.float32)
                    coefficients = (np.float32(0.5) - on * np.float32(1.0 / d) if complement
                                    else xp.full(on.shape, -0.5, np.float32))
                    if p == 1:
                        xp.subtract(first, second, out=f, dtype=np.float32)
                        f *= half_weights[0] * row_scale
                        coefficients *= plane_weights[0]
                        on *= plane_weights[0]
                    else:  # decoded from each half: no per-plane difference formed
                        samples = first.shape[0] // p
                        decoded = _decode(half_weights, first, samples, p, xp)
                        decoded -= _decode(half_weights, second, samples, p, xp)
                        xp.multiply(decoded, row_scale, out=f)
                        # Row by row (a matrix-vector product rounds a lone row otherwise).
                        coefficients = xp.einsum("sp,p->s", coefficients.reshape(samples, p),
                                                 plane_weights)
                        on = xp.einsum("sp,p->s", on.reshape(samples, p), plane_weights)
                    f += coefficients[:, None] * scaled_reference[None, :]
                    if column is not None:
                        f += on[:, None] * column[None, :]
                if bar is not None:
                    bar.update()
        finally:
            if bar is not None:
                bar.close()
        return out

    def linear_transform(self, X):
        """Linear random projection ``X -> X M^T`` (n_samples, n_out), float32.

        Binary ``X`` is projected directly; real-valued ``X`` needs the operator's
        ``encoder``, whose planes are projected and recombined (exact up to the
        encoder's quantization, since the projection is linear). Two device frames per
        binary frame, plus :data:`devices.linear.REFERENCE_FRAMES` per block of
        ``batch_size``.
        """
        self._check_fitted(X, "linear_transform")
        xp = array_module(X)
        if self.encoder is None and (X.dtype == bool or bool(xp.all((X == 0) | (X == 1)))):
            frames = check_binary_frames(X, self.n_features_in_, name="X")
            return self._linear_frames(frames)
        if self.encoder is None:
            raise ValueError("X: non-binary values (e.g. "
                             f"{float(X[~((X == 0) | (X == 1))].ravel()[0])!r}): expected binary "
                             "frames, or an OPU built with an encoder for real-valued data")
        if not self.encoder.is_fitted:
            raise NotFittedError(f"OPU.linear_transform: encoder = {self.encoder!r} is not "
                                 "fitted: call fit(X) with data, or fit the encoder first")
        planes = self.encoder.encode(X)  # (n, p, d)
        n, p, d = planes.shape
        # Decoded as Encoder.decode does, sum_p weights[p] f(planes[:, p]), per block.
        return self._linear_frames(planes.reshape(n * p, d), weights=self.encoder.weights)

    def effective_matrix(self):
        """Measure the real matrix ``M`` (n_out, n_features) that linear mode applies.

        ``linear_transform(x) = M x`` for binary ``x``: ``M`` is the least-squares fit of
        the projections of ``EFFECTIVE_FRAMES_PER_INPUT n_features`` random half-on frames
        (seeded by ``seed``). Each entry then carries the noise of many frames, not of
        one (a unit frame ``e_i`` measures one entry with a whole frame's noise: ``n / 8``
        times the variance). Costs ``2 EFFECTIVE_FRAMES_PER_INPUT n_features`` frames
        plus references.
        """
        self._require_fitted("effective_matrix")
        d = self.n_features_in_
        rng = np.random.default_rng(self.seed + 1)
        frames = (rng.random((max(EFFECTIVE_FRAMES_PER_INPUT * d, d + 8), d)) < 0.5
                  ).astype(np.uint8)
        projected = np.asarray(to_numpy(self._linear_frames(frames)), np.float64)
        x = frames.astype(np.float64)  # random frames: a well-conditioned Gram matrix
        return np.linalg.solve(x.T @ x, x.T @ projected).T.astype(np.float32)

    # ------------------------------------------------------------------ cost
    def cost(self, n_vectors: int, mode: str = "intensity",
             planes_per_vector: int | None = None) -> JobCost:
        """Frames, seconds and joules to project ``n_vectors`` vectors on this device.

        Needs no fit when ``device`` is an instance (only its frame time and power are
        read). ``planes_per_vector`` defaults to the encoder's planes (1 without an
        encoder).
        """
        device = self._any_device("cost")
        if planes_per_vector is None:
            planes_per_vector = getattr(self.encoder, "n_planes", 1) if self.encoder else 1
        return job_cost(n_vectors, mode=mode, frame_time_s=device.frame_time_s,
                        electrical_power_w=device.electrical_power_w,
                        planes_per_vector=planes_per_vector, batch_size=self.batch_size)

