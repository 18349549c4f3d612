"""Feedback sources: the projection ``B e`` of the error onto every hidden layer at once.

Model (docs/design.md section 5)
---------------------------
For hidden widths ``n_1 .. n_{N-1}`` (total ``S``) and ``C`` classes, a feedback source
holds one fixed matrix ``B`` (S, C), the hidden layers' ``B_i`` (n_i, C) stacked. A batch
of errors ``E`` (batch, C) is projected ONCE, ``E B^T`` (batch, S), and the result is
sliced per layer: ``E B_i^T`` (batch, n_i). That one projection is what an OPU computes.

Scale: ``B_i = G_i / sqrt(n_i)`` with ``G`` i.i.d. N(0, 1), so ``E[|B_i e|^2] = |e|^2``.
Backpropagation's signal at a layer initialised with variance ``1/n_i`` has the same
norm, ``E[|W_{i+1}^T delta|^2] = |delta|^2``: both methods start on the same scale, and a
learning rate tuned for one suits the other.

Sources
-------
:class:`IdealFeedback`   a seeded Gaussian ``G``, no device: one GEMM.
:class:`DeviceFeedback`  ``G`` realized by any device of the :mod:`devices` protocol through
                         the :class:`devices.OPU` operator: the error is encoded into binary
                         planes (signed bit planes by default, or ternarized with a
                         threshold), each plane is
                         projected with the complement identity, and the linear projection
                         is recovered from camera intensities. ``G`` is the device's
                         transmission physics, fixed over training; noise, drift and
                         quantization act on it as they would.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from devices import (OPU, BitPlaneEncoder, Encoder, OPUDevice, TernaryEncoder, backend_names,
                     open_device)
from photon import array_module
from photon.support.arguments import check_choice, check_int, check_widths
from photon.support.arrays import asarray_like

from .feedback_base import NO_HIDDEN, Feedback
from .structured_feedback import StructuredFeedback

__all__ = ["Feedback", "IdealFeedback", "DeviceFeedback", "StructuredFeedback", "ENCODERS",
           "OUTPUT_SPACING", "make_encoder", "simulated_device_options", "make_feedback"]

ENCODERS = ("ternary", "bitplanes")
#: Camera pixels (binned) between two rows of ``B``: outputs two pixels apart share little
#: of a speckle grain (see :class:`DeviceFeedback`).
OUTPUT_SPACING = 2


class IdealFeedback(Feedback):
    """Gaussian feedback with no device: ``B = diag(1/sqrt(n_i)) G``, ``G`` i.i.d. N(0, 1).

    Parameters
    ----------
    widths, n_classes
        As for :class:`Feedback`.
    seed
        Seed of ``G`` (its own stream).
    """

    def __init__(self, widths: Sequence[int], n_classes: int, seed: int = 0):
        super().__init__(widths, n_classes)
        self.seed = int(seed)
        gaussian = np.random.default_rng(self.seed).standard_normal(
            (self.total_width, self.n_classes))
        self._matrix = gaussian * self.column_scale[:, None].astype(np.float64)
        self._transposed: dict[tuple[str, str], object] = {}

    def _project(self, error):
        xp = array_module(error)
        key = (xp.__name__, str(error.dtype))
        transposed = self._transposed.get(key)
        if transposed is None:  # B^T, cached per backend and dtype
            transposed = asarray_like(np.ascontiguousarray(self._matrix.T.astype(error.dtype)), xp)
            self._transposed[key] = transposed
        return error @ transposed

    def matrix(self) -> np.ndarray:
        """``B`` (S, C), float64."""
        return self._matrix.copy()

    def describe(self) -> dict:
        """Plain-data description for reports."""
        return {**super().describe(), "seed": self.seed}


def make_encoder(name: str, n_bits: int = 4) -> Encoder:
    """The error encoder ``name``: ``"ternary"`` or ``"bitplanes"`` (``n_bits`` per sign)."""
    if check_choice("encoder", name, ENCODERS) == "ternary":
        return TernaryEncoder()
    return BitPlaneEncoder(n_bits=n_bits, signed=True)


class DeviceFeedback(Feedback):
    """Feedback through an OPU device: ``B = diag(1/sqrt(n_i)) M`` with ``M`` the device's.

    The :class:`devices.OPU` operator in complement linear mode is fitted once (dark
    level, per-row normalization, scale: ``M`` has i.i.d. N(0, 1)-like entries and its rows
    sum to zero, ``complement_mean="zero"``: the matrix the device measures, which loses
    nothing since each error row sums to zero). At each
    projection only the encoder is refitted on the batch's error, so the threshold and
    scale follow the error's magnitude; the device, hence ``M``, is never re-measured.

    Rows of ``B`` are device outputs chosen once, at construction (``rows``). A device
    with spare outputs gives the operator's usable ones first (neither weak, within the
    noise, nor untrusted, as a calibrated device flags the rows its calibration could not
    fit), ``output_spacing`` apart in device order where it has outputs enough, then the
    other usable ones, then, only when it has too few, the weak ones and last the
    untrusted ones. A device with exactly ``S`` outputs keeps them in order. An untrusted
    row's feedback is zero (its hidden unit gets none).

    Why spaced: neighbouring camera pixels see one speckle grain, so their rows of the
    transmission matrix are correlated (field correlation ``exp(-d^2 / 4 sigma^2)`` at
    ``d`` pixels for a grain of rms radius ``sigma``, docs/design.md section 2); rows of
    ``B`` that are correlated feed nearly the same signal to several hidden units, and DFA
    on Cora's GCN loses accuracy by it (docs/studies/cora.md). :func:`make_feedback` opens
    a simulated device whose outputs are already spaced (a sub-sampled camera read-out,
    ``camera.output_pitch_bins``), so that it computes no output it does not use.

    Parameters
    ----------
    device
        An :class:`devices.OPUDevice` with ``n_in >= C`` and ``n_out >= S``.
    widths, n_classes
        As for :class:`Feedback`.
    encoder
        ``"bitplanes"`` (default: signed bit planes, ``2 n_bits`` planes), ``"ternary"``
        (two planes: ``sign(e) [|e| > t]``), or an :class:`devices.Encoder` instance.
        The default follows the noise study (docs/noise): on Cora's GCN a ternary code
        loses accuracy against ideal feedback, 4-bit planes do not.
    n_bits
        Bits per sign for ``"bitplanes"`` (default 4).
    output_spacing
        Outputs between two rows of ``B`` in device order, where the device has
        ``output_spacing * S`` usable outputs or more (default
        :data:`OUTPUT_SPACING`; 1: the first usable outputs).
    """

    def __init__(self, device: OPUDevice, widths: Sequence[int], n_classes: int,
                 encoder: str | Encoder = "bitplanes", n_bits: int = 4,
                 output_spacing: int = OUTPUT_SPACING):
        super().__init__(widths, n_classes)
        self.output_spacing = check_int("output_spacing", output_spacing, low=1)
        if not isinstance(device, OPUDevice):
            raise TypeError(f"device = {device!r}: expected an OPUDevice (see devices.open_device)")
        if device.n_in < self.n_classes:
            raise ValueError(f"device: {device.n_in} inputs: expected at least n_classes = "
                             f"{self.n_classes} (one input per class of the error)")
        if device.n_out < self.total_width:
            raise ValueError(f"device: {device.n_out} outputs: expected at least the sum of the "
                             f"hidden widths {self.widths} = {self.total_width} (one output per "
                             "row of the feedback matrix)")
        encoder = make_encoder(encoder, n_bits) if isinstance(encoder, str) else encoder
        if not isinstance(encoder, Encoder):
            raise TypeError(f"encoder = {encoder!r}: expected {' or '.join(map(repr, ENCODERS))} "
                            "or a devices.Encoder")
        self.opu = OPU(device, linear_method="complement", complement_mean="zero",
                       encoder=encoder, progress=False).fit(n_features=self.n_classes)
        self.rows = self._choose_rows()
        self._first_rows = bool(np.array_equal(self.rows, np.arange(self.total_width)))
        self._rows_by_backend: dict[str, object] = {}
        self._scale_by_backend: dict[str, object] = {}
        self._matrix = None

    def _choose_rows(self) -> np.ndarray:
        """Device outputs realizing the ``S`` rows of ``B``: usable ones first, spaced.

        A device with exactly ``S`` outputs keeps them in order (its untrusted rows feed
        back zero).
        """
        usable = np.asarray(self.opu.usable_outputs_, bool)
        if usable.size == self.total_width:
            return np.arange(self.total_width, dtype=np.int64)
        untrusted = np.zeros(usable.size, bool)
        untrusted[np.asarray(self.opu.untrusted_outputs_, np.int64)] = True
        weak = ~usable & ~untrusted
        usable_index = np.flatnonzero(usable)
        spaced = usable_index[::self.output_spacing]
        if spaced.size < self.total_width:  # too few for the spacing: the first usable ones
            spaced = usable_index[:0]
        rest = np.setdiff1d(usable_index, spaced, assume_unique=True)
        order = np.concatenate([spaced, rest, np.flatnonzero(weak),
                                np.flatnonzero(untrusted)])
        return order[:self.total_width].astype(np.int64)

    @property
    def device(self) -> OPUDevice:
        """The device the feedback runs through."""
        return self.opu.device

    @property
    def name(self) -> str:
        """The device's name."""
        return self.device.name

    def _project(self, error):
        xp = array_module(error)
        if not bool(xp.any(error)):  # nothing to encode: the projection is zero
            return xp.zeros((error.shape[0], self.total_width), np.float32)
        self.opu.encoder.fit(error)
        projection = self.opu.linear_transform(error)
        if self._first_rows:
            projection = projection[:, :self.total_width]  # the first S outputs, as a view
        else:
            rows = self._rows_by_backend.get(xp.__name__)
            if rows is None:
                rows = self._rows_by_backend[xp.__name__] = asarray_like(self.rows, xp)
            projection = projection[:, rows]
        scale = self._scale_by_backend.get(xp.__name__)
        if scale is None:
            scale = self._scale_by_backend[xp.__name__] = asarray_like(self.column_scale, xp)
        projection *= scale
        return projection.astype(error.dtype, copy=False)

    def matrix(self) -> np.ndarray:
        """``B`` (S, C) as the device realizes it, measured once on unit frames, float64.

        The first call costs ``2 C`` frames plus references (for alignment logging only).
        """
        if self._matrix is None:
            measured = np.asarray(self.opu.effective_matrix(), np.float64)[self.rows]
            self._matrix = measured * self.column_scale[:, None].astype(np.float64)
        return self._matrix.copy()

    def close(self) -> None:
        """Close the device (idempotent)."""
        self.device.close()

    def describe(self) -> dict:
        """Plain-data description: device, encoder, frames shown, their time on the device."""
        return {**super().describe(), "backend": self.device.backend,
                "encoder": repr(self.opu.encoder), "output_spacing": self.output_spacing,
                "frames_acquired": self.device.frames_acquired,
                "device_seconds": self.device.frames_acquired * self.device.frame_time_s,
                "weak_outputs": int(self.opu.weak_outputs_),
                "untrusted_outputs": int(len(self.opu.untrusted_outputs_)),
                "rows_weak_or_untrusted": int((~np.asarray(self.opu.usable_outputs_))[
                    self.rows].sum())}


def simulated_device_options(widths: Sequence[int], n_classes: int,
                             macropixel_mirrors: int = 64,
                             output_spacing: int = OUTPUT_SPACING) -> dict:
    """The settings a simulated (virtual) feedback device is opened with.

    ``n_in = n_classes``, ``n_out = sum(widths)``, ``macropixel_mirrors`` DMD mirrors per
    class (more light per input) and outputs ``output_spacing`` binned pixels apart
    (``camera.output_pitch_bins``, see :class:`DeviceFeedback`): what
    :func:`make_feedback` opens, and what a study that builds the device's configuration
    itself must use to measure the same device.
    """
    return {"n_in": n_classes, "n_out": sum(check_widths("widths", widths, why=NO_HIDDEN)),
            "dmd__macropixel_mirrors": check_int("macropixel_mirrors", macropixel_mirrors,
                                                 low=1),
            "camera__output_pitch_bins": check_int("output_spacing", output_spacing, low=1)}


def make_feedback(name: str, widths: Sequence[int], n_classes: int, *, seed: int = 0,
                  encoder: str | Encoder = "bitplanes", n_bits: int = 4,
                  macropixel_mirrors: int = 64, output_spacing: int = OUTPUT_SPACING,
                  **device_options) -> Feedback:
    """A feedback source by name.

    Parameters
    ----------
    name
        ``"ideal"``: Gaussian, no device. ``"structured"``: a subsampled randomized
        Hartley transform on the GPU's or CPU's own arithmetic
        (:class:`~dfa_bridge.training.structured_feedback.StructuredFeedback`). Any other
        name, optionally written
        ``"device:NAME"``, is a device :func:`devices.open_device` opens: a preset
        (``lab-bench``, ``datacenter-opu``, ...), a YAML path or a backend
        (``device:ideal`` is the noise-free ``|R x|^2`` backend, through the OPU path).
    widths, n_classes
        Hidden widths and classes.
    seed
        Seed of the ideal feedback matrix (a device's matrix is its physics).
    encoder, n_bits
        Error encoder of a device (see :class:`DeviceFeedback`).
    macropixel_mirrors
        DMD mirrors per input of a simulated (virtual) device: more light per class.
    output_spacing
        Binned camera pixels between the outputs that realize two rows of ``B``: a
        simulated device is opened with ``camera.output_pitch_bins = output_spacing``
        (a sub-sampled read-out, see :class:`DeviceFeedback`); a backend without a camera
        (``ideal``, whose outputs are independent) or a calibrated device is opened as
        named, and :class:`DeviceFeedback` spaces its rows where it has outputs to spare.
    **device_options
        Further arguments of :func:`devices.open_device` (e.g. preset overrides).

    Returns
    -------
    Feedback
        The source; a device is opened with ``n_in = n_classes`` inputs and
        ``n_out = sum(widths)`` outputs.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"feedback = {name!r}: expected 'ideal', 'structured' or a device name")
    if name == "ideal":
        return IdealFeedback(widths, n_classes, seed=seed)
    if name == "structured":
        return StructuredFeedback(widths, n_classes, seed=seed)
    device_name = name.removeprefix("device:")
    if device_name not in backend_names() or device_name == "virtual":  # a simulated chain
        options = simulated_device_options(widths, n_classes, macropixel_mirrors, output_spacing)
    else:
        output_spacing = check_int("output_spacing", output_spacing, low=1)
        options = {"n_in": n_classes,
                   "n_out": sum(check_widths("widths", widths, why=NO_HIDDEN))}
    options.update(device_options)
    try:
        device = open_device(device_name, **options)
    except ValueError as error:
        raise ValueError(f"feedback = {name!r}: expected 'ideal' or a device ({error})") from error
    return DeviceFeedback(device, widths, n_classes, encoder=encoder, n_bits=n_bits,
                          output_spacing=output_spacing)
