"""lightonml's ``OPU`` over this toolkit's devices (docs/lightonml.md).

Which device, which limits, which scale
---------------------------------------
* ``OPU(..., simulated=True)`` or ``opu_device=SimulatedOpuDevice()``: lightonml's
  simulator. The toolkit's ideal device (exact ``|R x|^2``, no noise); inputs up to
  ``max_n_features``; ``output_scale="simulator"``.
* ``OPU(...)`` (lightonml's hardware default): there is no LightOn OPU here, so the
  ideal device stands in for it, answering as lightonml's simulator does in time (no
  camera to simulate); inputs up to the input device's 1140 x 912 elements, as
  lightonml's hardware ``OPU`` (``max_n_features`` is then fixed);
  ``output_scale="unit"``.
* ``OPU(..., device="lab-bench")`` (a preset, a YAML path, a :class:`photon.DeviceConfig`,
  a backend name) or ``opu_device=`` an :class:`devices.OPUDevice`: that device, noise and
  all; ``output_scale="unit"``.

The device is built at ``fit1d``/``fit2d`` for the ``n`` features fitted, with a
third more inputs for the anchor of linear mode; a refit to the same ``n`` reuses it.

Scales (``output_scale``). ``"simulator"``: lightonml's ``SimulatedOpuDevice``'s,
``transform`` ``E|R_ij|^2 = 2 / max_n_features`` (``E[y] = 2 k / max_n_features`` for
``k`` inputs on) and ``linear_transform`` entries of variance ``1 / max_n_features``
before ``rescale``. ``"unit"``: ``E|R_ij|^2 = 1 / n_features`` (``E[y] = k / n_features``)
and unit-variance linear entries before ``rescale``, what lightonml's hardware
``linear_transform`` returns (its measured ``stdev``). ``rescale`` then divides the
linear output by ``sqrt(n_features)`` (``variance``), ``sqrt(n_components)`` (``norm``)
or nothing (``none``), as lightonml does. On the ideal device ``transform`` is exact
(``|x R|^2`` of :attr:`SimulatedOpuDevice.random_matrix`); on another device it is
scaled by the operator's measured all-on level.

Linear mode is the toolkit operator's anchor identity (docs/design.md section 3): an
unbiased Gaussian ``M`` (no constraint on its rows), so randomized linear algebra
(traces, triangles, sketches) lands within its sampling error. ``M`` is not
``Re(R)`` (lightonml's simulator's shortcut: no optics gives it).
"""

from __future__ import annotations

import datetime as dt
import inspect
import math
import os

import numpy as np

from photon import DeviceConfig, preset_names
from photon.support.arguments import check_array, check_bool, check_choice, check_int, check_seed

from ..ideal import IdealDevice
from ..operator import OPU as ToolkitOPU
from ..protocol import OPUDevice
from ..registry import backend_names, check_device_name, open_device
from ._common import (NotReadyError, get_verbose_level, is_tensor, like_input,
                      set_verbose_level, to_numpy)
from .context import Context, ContextArray
from .encoding.base import NoDecoding, NoEncoding
from .internal.simulated_device import INPUT_SHAPE, OpuDeviceView, SimulatedOpuDevice
from .types import OutputRescaling

__all__ = ["OPU", "OUTPUT_SCALES"]

OUTPUT_SCALES = ("simulator", "unit")
#: Inputs of lightonml's hardware OPU (its input device), the limit without simulated=True.
HARDWARE_MAX_FEATURES = INPUT_SHAPE[0] * INPUT_SHAPE[1]


def _anchor_size(n_features: int) -> int:
    """Anchor inputs for ``n_features`` features: a third of them (at least one)."""
    return max(1, n_features // 3)


class OPU:
    """lightonml's ``OPU`` (same arguments, methods and meanings) on a toolkit device.

    Parameters
    ----------
    n_components
        Outputs (lightonml's default 200000 is kept).
    opu_device
        A :class:`SimulatedOpuDevice` (lightonml's simulator) or an
        :class:`devices.OPUDevice` instance (its ``n_out`` is ``n_components``).
    max_n_features
        Largest input dimension with ``simulated=True`` or a ``SimulatedOpuDevice``
        (else the hardware's 1140 * 912, or the given device's inputs).
    config_file, config_override
        lightonml's hardware configuration: refused unless empty (name a ``device``).
    verbose_level, input_roi_strategy, disable_pbar
        lightonml's; a verbose level of 1 or more shows progress bars (unless
        ``disable_pbar``); input regions of interest only arrange a hardware DMD and are
        accepted and not used.
    open_at_init
        Open at construction (None: True, as lightonml).
    simulated
        lightonml's simulator (above).
    rescale
        :class:`~devices.lightonml_compat.types.OutputRescaling` or its name.
    device
        This toolkit's device (keyword only): a backend, a preset, a YAML path or a
        :class:`photon.DeviceConfig`, built at fit with ``device_options``.
    device_options
        Further :func:`devices.open_device` arguments (not ``n_in``/``n_out``).
    seed
        Seed of the device's transmission matrix and of the operator's probes (with a
        ``SimulatedOpuDevice``, its seed; ``build_random_matrix(..., seed)`` changes it).
    output_scale
        ``"simulator"`` or ``"unit"`` (module docstring); None: ``"simulator"`` for
        lightonml's simulator, ``"unit"`` otherwise.
    """

    def __init__(self, n_components: int = 200000, opu_device=None, max_n_features: int = 1000,
                 config_file: str = "", config_override: dict | None = None,
                 verbose_level: int = -1, input_roi_strategy=None, open_at_init=None,
                 disable_pbar: bool = False, simulated: bool = False,
                 rescale=OutputRescaling.variance, *, device=None,
                 device_options: dict | None = None, seed: int = 0,
                 output_scale: str | None = None):
        if config_file:
            raise ValueError(f"config_file = {config_file!r}: expected '' (there is no LightOn "
                             "configuration here: pass device= a toolkit device name)")
        if config_override:
            raise ValueError(f"config_override = {config_override!r}: expected None (a "
                             "LightOn hardware configuration has no meaning here)")
        if check_int("verbose_level", verbose_level, -1) != -1:
            set_verbose_level(verbose_level)
        self.disable_pbar = check_bool("disable_pbar", disable_pbar)
        simulated = check_bool("simulated", simulated)
        if open_at_init is not None:
            check_bool("open_at_init", open_at_init)
        if simulated and opu_device is not None:
            raise ValueError("simulated and opu_device arguments are conflicting")
        if opu_device is not None and not isinstance(opu_device, (SimulatedOpuDevice,
                                                                  OPUDevice)):
            raise TypeError(f"opu_device = {opu_device!r}: expected a SimulatedOpuDevice or a "
                            "devices.OPUDevice")
        if device is not None and (simulated or opu_device is not None):
            raise ValueError(f"device = {device!r} and "
                             f"{'simulated=True' if simulated else 'opu_device'}: expected one "
                             "(simulated=True is the ideal device)")
        if device is not None and not isinstance(device, DeviceConfig):
            check_device_name(device)
        if device_options is not None and not isinstance(device_options, dict):
            raise TypeError(f"device_options = {device_options!r}: expected a dict or None")
        for key in ("n_in", "n_out"):
            if device_options and key in device_options:
                raise ValueError(f"device_options[{key!r}]: expected it absent (set by the "
                                 "features fitted and n_components)")
        if device_options and device is None:
            raise ValueError(f"device_options = {device_options!r}: expected them with device=")
        self.seed = check_seed("seed", seed)
        self._n_components = check_int("n_components", n_components)
        self._max_n_features = check_int("max_n_features", max_n_features)
        self.input_roi_strategy = input_roi_strategy
        self.rescale = rescale
        if simulated:
            opu_device = SimulatedOpuDevice(seed=self.seed)
        elif isinstance(opu_device, SimulatedOpuDevice):
            self.seed = opu_device.seed
        self._simulated = isinstance(opu_device, SimulatedOpuDevice)
        if self._simulated:
            self._device_spec = "ideal"
            self.device = opu_device
            self.device.build_random_matrix(self._max_n_features, self._n_components)
        elif isinstance(opu_device, OPUDevice):
            self._device_spec = None
            self.device = OpuDeviceView(opu_device)
            if opu_device.n_out != self._n_components:
                raise ValueError(f"n_components = {n_components!r}: expected opu_device's "
                                 f"n_out = {opu_device.n_out}")
            self._max_n_features = opu_device.n_in
        else:
            self._device_spec = "ideal" if device is None else device
            self.device = OpuDeviceView()
            self._max_n_features = HARDWARE_MAX_FEATURES if device is None \
                else self._max_n_features
        self._device_options = dict(device_options or {})
        if output_scale is None:
            output_scale = "simulator" if self._simulated else "unit"
        check_choice("output_scale", output_scale, OUTPUT_SCALES)
        self.output_scale = output_scale
        self.operator: ToolkitOPU | None = None
        self._built_for = None  # (n_features, n_components, seed) of the operator
        self._device_for = None  # the same, of the device built
        self._traits = None  # (feature shape, packed, n_features)
        if open_at_init is None or open_at_init:
            self.open()

    # ------------------------------------------------------------------ settings
    @property
    def rescale(self) -> OutputRescaling:
        """``linear_transform``'s rescaling (an :class:`OutputRescaling`)."""
        return self._rescale

    @rescale.setter
    def rescale(self, value) -> None:
        if isinstance(value, str) and value.lower() in OutputRescaling.__members__:
            value = OutputRescaling[value.lower()]
        if not isinstance(value, OutputRescaling):
            raise ValueError(f"rescale = {value!r}: expected an OutputRescaling or one of "
                             f"{', '.join(map(repr, OutputRescaling.__members__))}")
        self._rescale = value

    @property
    def n_components(self) -> int:
        """Outputs; settable (the device is rebuilt at the next transform)."""
        return self._n_components

    @n_components.setter
    def n_components(self, value) -> None:
        value = check_int("n_components", value)
        if self._device_spec is None and value != self._n_components:
            raise ValueError(f"n_components = {value!r}: expected opu_device's n_out = "
                             f"{self._n_components} (a given device cannot be resized)")
        if value != self._n_components:
            self._n_components = value
            self._drop_device()
            if self._simulated:
                self.device.build_random_matrix(self._max_n_features, value)

    @property
    def max_n_features(self) -> int:
        """Largest input dimension; settable with lightonml's simulator only."""
        return self._max_n_features

    @max_n_features.setter
    def max_n_features(self, value) -> None:
        if not self._simulated:
            raise AttributeError("max_n_feature can't be set if device is real")
        value = check_int("max_n_features", value)
        if self._traits is not None and self._traits[2] > value:
            raise ValueError(f"max_n_features = {value}: expected at least the {self._traits[2]} "
                             "features fitted")
        self._max_n_features = value
        self.device.build_random_matrix(value, self._n_components)

    @property
    def toolkit_device(self) -> OPUDevice | None:
        """The toolkit device the projections run on (built at fit)."""
        return self.device.toolkit_device

    @property
    def draws_fresh_noise(self) -> bool:
        """Whether two transforms of one input may differ (a noisy device)."""
        from ..estimators import device_draws_fresh_noise  # noqa: PLC0415

        if self._device_spec is not None:
            return device_draws_fresh_noise(self._device_spec, self._device_options)
        config = getattr(getattr(self.toolkit_device, "chain", None), "config", None)
        return device_draws_fresh_noise(config if config is not None
                                        else self.toolkit_device.backend)

    @property
    def config(self):
        """lightonml's hardware configuration: none here."""
        raise AttributeError("OPU.config: there is no LightOn configuration here (this OPU "
                             "runs on a toolkit device: see .toolkit_device)")

    def version(self, devices: bool = False) -> str:
        """Name and versions, one per line (lightonml's ``OPU.version``)."""
        from . import __version__, toolkit_version  # noqa: PLC0415

        lines = [f"lightonml version {__version__} (photon-dfa {toolkit_version} "
                 "lightonml_compat)"]
        if devices:
            lines.append(self.device.versions())
        return "\n".join(lines)

    def __repr__(self) -> str:
        device = self._device_spec if self._device_spec is not None else self.toolkit_device
        return (f"OPU(n_components={self._n_components}, max_n_features={self._max_n_features}, "
                f"simulated={self._simulated}, device={device!r}, rescale={self._rescale.name!r}, "
                f"output_scale={self.output_scale!r})")

    # ------------------------------------------------------------------ life cycle
    def open(self) -> None:
        """Activate the device (lightonml acquires its hardware here)."""
        self.device.open()

    def close(self) -> None:
        """Deactivate the device (idempotent); :meth:`open` reactivates it."""
        self.device.close()

    def __enter__(self) -> "OPU":
        self._active_before_enter = self.device.active
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        if not getattr(self, "_active_before_enter", False):
            self.close()

    def _drop_device(self) -> None:
        """Forget a device this OPU built (resized): the next use builds a new one."""
        if self._device_spec is not None and self.device.toolkit_device is not None:
            self.device.toolkit_device.close()
            self.device.toolkit_device = None
        self.operator, self._built_for, self._device_for = None, None, None

    # ------------------------------------------------------------------ fitting
    def fit1d(self, X=None, n_features: int | None = None, packed: bool = False,
              online: bool = False, **override) -> None:
        """Set the input dimension from vectors ``X`` (or ``n_features``); build the device.

        Parameters
        ----------
        X
            A vector (n_features,) or a batch (..., n_features); bit-packed uint8
            (``np.packbits`` along the last axis, ``ceil(n_features / 8)`` bytes) with
            ``packed=True``. Only its shape is used (real values are fine: encoders
            come at transform).
        n_features
            The input dimension when ``X`` is None; with packed ``X``, the meaningful
            bits (default ``8 * X.shape[-1]``).
        packed
            Inputs are bit-packed along the last axis.
        online
            lightonml's single-vector acquisition mode: accepted, no effect (every call
            may be one vector or a batch).
        """
        self._refuse_override(override)
        packed, _ = check_bool("packed", packed), check_bool("online", online)
        if X is not None:
            X = self._fit_data(X, packed, min_ndim=1)
            width = 8 * X.shape[-1] if packed else X.shape[-1]
            if n_features is None:
                n_features = width
            elif not packed and n_features != width:
                raise ValueError(f"n_features = {n_features!r}: expected None or X's last "
                                 f"dimension, {width}")
        if n_features is None:
            raise ValueError("fit1d: X = None and n_features = None: expected one of them")
        n = check_int("n_features", n_features)
        if packed and X is not None and not 8 * X.shape[-1] - 8 < n <= 8 * X.shape[-1]:
            raise ValueError(f"n_features = {n}: expected {8 * X.shape[-1] - 7} .. "
                             f"{8 * X.shape[-1]} bits in X's {X.shape[-1]} packed bytes")
        self._fit((n,), packed, n)

    def fit2d(self, X=None, n_features=None, packed: bool = False, online: bool = False,
              **override) -> None:
        """Set the input dimension from 2-D inputs ``X`` (or ``n_features=(h, w)``).

        Parameters
        ----------
        X
            An input (h, w) or a batch (..., h, w); with ``packed=True`` each input is one
            bit-packed vector (..., ceil(h w / 8)) and ``n_features`` is required.
        n_features
            ``(h, w)``: required when ``X`` is None or packed.
        packed, online
            As for :meth:`fit1d`.
        """
        self._refuse_override(override)
        packed, _ = check_bool("packed", packed), check_bool("online", online)
        if n_features is not None:
            if isinstance(n_features, (str, bytes)) or np.ndim(n_features) != 1 \
                    or len(n_features) != 2:
                raise ValueError(f"n_features = {n_features!r}: expected (h, w)")
            n_features = tuple(check_int("n_features", int(s) if isinstance(
                s, np.integer) else s) for s in n_features)
        if X is not None and not packed:
            X = self._fit_data(X, packed, min_ndim=2)
            shape = tuple(int(s) for s in X.shape[-2:])
            if n_features is not None and n_features != shape:
                raise ValueError(f"n_features = {n_features!r}: expected None or X's last two "
                                 f"dimensions, {shape}")
        else:
            if n_features is None:
                raise ValueError(f"n_features = None: expected (h, w) when X is "
                                 f"{'packed' if packed else 'None'}")
            shape = n_features
            if X is not None:
                X = self._fit_data(X, packed, min_ndim=1)
                n = shape[0] * shape[1]
                if X.shape[-1] != math.ceil(n / 8):
                    raise ValueError(f"X: shape {X.shape}: expected ceil({shape[0]} * "
                                     f"{shape[1]} / 8) = {math.ceil(n / 8)} packed bytes last")
        self._fit(shape, packed, shape[0] * shape[1])

    @staticmethod
    def _refuse_override(override: dict) -> None:
        if override:
            raise TypeError(f"override {', '.join(sorted(override))}: lightonml's transform "
                            "settings arrange a hardware DMD and are not reproduced here: "
                            "expected none")

    @staticmethod
    def _fit_data(X, packed: bool, min_ndim: int):
        X, _ = to_numpy(X)
        X = check_array("X", X, min_ndim=min_ndim, what="a vector or a batch of vectors")
        if packed and X.dtype != np.uint8:
            raise ValueError(f"X: dtype {X.dtype}: expected uint8 bit-packed input")
        return X

    def _fit(self, shape: tuple, packed: bool, n: int) -> None:
        if n > self._max_n_features:
            raise ValueError(f"input's number of features ({n}) can't be greater than "
                             f"{self._max_n_features} (max_n_features)")
        self._traits = (tuple(shape), bool(packed), n)
        self._prepare(n, linear=False)

    def _prepare(self, n: int, linear: bool) -> None:
        """Make the device (and, where needed, the fitted operator) ready for ``n`` features.

        The ideal device answers intensities exactly with no operator: ``fit1d`` builds it
        with ``n`` inputs only, and the first ``linear_transform`` replaces it by one with
        the anchor's inputs too (the same first ``n`` rows, so the same intensities) and
        fits the operator. Any other device needs the operator's dark level and scale for
        intensities: it is built with the anchor and fitted at once.
        """
        key = (n, self._n_components, self._seed())
        if self.operator is not None and self._built_for == key:
            return
        view = self.device
        if self._device_spec is None:  # a given device: the spare inputs hold the anchor
            device = view.toolkit_device
            if not linear and isinstance(device, IdealDevice):
                return
            spare = device.n_in - n
            n_anchor = min(spare, _anchor_size(n)) if spare >= 1 else None
        else:
            exact = self._device_spec == "ideal"
            if not linear and exact:
                if self._device_for == key:
                    return
                self._drop_device()
                view.toolkit_device = self._build_device(n)
                self._device_for = key
                if not view.active:
                    view.toolkit_device.close()
                view._refresh()
                return
            self._drop_device()
            n_anchor = _anchor_size(n)
            device = self._build_device(n + n_anchor)
            view.toolkit_device, self._device_for = device, key
        progress = get_verbose_level() >= 1 and not self.disable_pbar
        operator = ToolkitOPU(device, linear_method="anchor" if n_anchor else "complement",
                              n_anchor=n_anchor, progress=progress, seed=self.seed)
        operator.fit(n_features=n)
        if not view.active:
            device.close()  # fit opened it; it answers once the OPU is opened
        view._refresh()
        self.operator, self._built_for = operator, key

    def _seed(self) -> int:
        """Seed of the transmission matrix: the SimulatedOpuDevice's, or ``seed``."""
        return self.device.seed if self._simulated else self.seed

    def _build_device(self, n_in: int) -> OPUDevice:
        spec = self._device_spec
        if isinstance(spec, os.PathLike):
            spec = os.fspath(spec)
        options = {"n_in": n_in, "n_out": self._n_components}
        if spec == "ideal":
            options["seed"] = self._seed()
        elif isinstance(spec, DeviceConfig) or spec == "virtual" or (
                spec not in backend_names() and (spec in preset_names()
                                                 or str(spec).endswith((".yaml", ".yml")))):
            options["seeds__tm"] = self._seed()
        options.update(self._device_options)
        return open_device(spec, **options)

    # ------------------------------------------------------------------ transforms
    def _require_ready(self, what: str) -> None:
        if self._traits is None:
            raise NotReadyError(f"Call fit1d or fit2d before {what}")
        if not self.device.active:
            raise NotReadyError("OPU device isn't active, use opu.open() or \"with opu:\"")

    def _frames(self, X, name: str = "X"):
        """``(binary frames (m, n) uint8, batch shape)`` of encoded input ``X``."""
        shape, packed, n = self._traits
        X = check_array(name, to_numpy(X)[0], min_ndim=1, what="binary input(s)")
        if packed:
            if X.dtype != np.uint8:
                raise ValueError(f"{name}: dtype {X.dtype}: expected uint8 bit-packed input")
            n_bytes = math.ceil(n / 8)
            if X.shape[-1] != n_bytes:
                raise ValueError(f"{name}: shape {X.shape}: expected {n_bytes} packed bytes "
                                 f"last, as fitted ({n} features)")
            bits = np.unpackbits(X, axis=-1)
            if bits[..., n:].any():
                raise ValueError(f"{name}: packed bits beyond the {n} features fitted are set: "
                                 "expected zero padding (as np.packbits writes)")
            X, features_ndim = bits[..., :n], 1
        else:
            features_ndim = len(shape)
            if X.ndim < features_ndim or tuple(X.shape[X.ndim - features_ndim:]) != shape:
                raise ValueError(f"{name}: shape {X.shape}: expected (..., "
                                 f"{', '.join(map(str, shape))}) as fitted")
            if X.dtype != np.bool_:
                bad = (X != 0) & (X != 1)
                if bad.any():
                    index = tuple(int(i) for i in np.argwhere(bad)[0])
                    raise ValueError(f"{name}: value {X[index].item()!r} at index {index}: expected "
                                     "binary input (0 or 1; real data go through an "
                                     "encoder_cls, e.g. SeparatedBitPlanEncoder)")
        batch = X.shape[:X.ndim - features_ndim]
        return X.reshape(math.prod(batch), n).astype(np.uint8, copy=False), batch

    def _intensities(self, frames) -> np.ndarray:
        """``|R x|^2`` of binary frames (m, n) in the output scale, float32."""
        n = self._traits[2]
        device = self.device.toolkit_device
        target = 2.0 * n / self._max_n_features if self.output_scale == "simulator" else 1.0
        if isinstance(device, IdealDevice):  # exact: |R x|^2 with E|R_ij|^2 = 1 / n_in
            padded = np.zeros((frames.shape[0], device.n_in), np.uint8)
            padded[:, :n] = frames
            out = device.acquire(padded)
            out *= np.float32(target * device.n_in / n)
            return out
        out = self.operator.transform(frames)  # E[y] = k / n, measured
        if target != 1.0:
            out *= np.float32(target)
        return out

    def _linear(self, frames) -> np.ndarray:
        """``M x`` of binary frames (m, n), entries in the output scale, float32."""
        if self.operator.linear_method != "anchor":
            device = self.device.toolkit_device
            raise ValueError(f"linear_transform: the device's {device.n_in} inputs are all "
                             f"features ({self._traits[2]} fitted): expected spare inputs for "
                             "the anchor of linear mode (fit fewer features, or give a larger "
                             "device)")
        out = self.operator.linear_transform(frames)
        if self.output_scale == "simulator":
            out *= np.float32(1.0 / math.sqrt(self._max_n_features))
        return out

    def _run(self, X, encoder_cls, decoder_cls, linear: bool):
        was_tensor = is_tensor(X)
        encoder = self._instance("encoder_cls", encoder_cls)
        encoded = encoder.transform(X)
        frames, batch = self._frames(encoded, "X" if isinstance(encoder, NoEncoding)
                                     else f"X encoded by {type(encoder).__name__}")
        if frames.shape[0] == 0:
            raise ValueError(f"X: no input vector (batch shape {batch}): expected at least one")
        self._prepare(self._traits[2], linear)
        start = dt.datetime.now()
        out = self._linear(frames) if linear else self._intensities(frames)
        end = dt.datetime.now()
        out = np.asarray(out).reshape(*batch, self._n_components)
        if inspect.isclass(decoder_cls):
            params = encoder.get_params() if hasattr(encoder, "get_params") else {}
            try:
                decoder = decoder_cls(**params)
            except TypeError as error:
                raise TypeError(f"decoder_cls = {decoder_cls.__name__}: it does not take "
                                f"{type(encoder).__name__}'s parameters {sorted(params)} "
                                f"({error}): expected its decoder (e.g. SeparatedBitPlanDecoder "
                                "for SeparatedBitPlanEncoder) or a decoder instance") from error
        else:
            decoder = decoder_cls
        if not callable(getattr(decoder, "transform", None)):
            raise TypeError(f"decoder_cls = {decoder_cls!r}: expected a decoder class or "
                            "instance (with transform)")
        out = decoder.transform(out)
        if linear:  # after the decoding, as lightonml
            n = self._traits[2]
            if self._rescale is OutputRescaling.variance:
                out = out / math.sqrt(n)
            elif self._rescale is OutputRescaling.norm:
                out = out / math.sqrt(self._n_components)
        if was_tensor:
            return like_input(np.asarray(out), True)
        return ContextArray(out, self._context(start, end, frames))

    @staticmethod
    def _instance(name: str, value):
        instance = value() if inspect.isclass(value) else value
        if not callable(getattr(instance, "transform", None)):
            raise TypeError(f"{name} = {value!r}: expected an encoder class or instance (with "
                            "transform)")
        return instance

    def _context(self, start, end, frames) -> Context:
        view = self.device
        return Context(frametime=view.frametime_us, exposure=view.exposure_us,
                       output_roi=view.output_roi, start=start, end=end,
                       gain=view.gain_dB if self._simulated else None,
                       n_ones=float(frames.sum(axis=1, dtype=np.int64).mean()))

    def transform(self, X, encoder_cls=NoEncoding, decoder_cls=NoDecoding):
        """Intensities ``|R x|^2`` of one input or a batch, float32 (``n_components`` last).

        Parameters
        ----------
        X
            Binary input(s) as fitted, after ``encoder_cls``; NumPy (a
            :class:`~devices.lightonml_compat.context.ContextArray` comes out) or torch (a
            tensor comes out).
        encoder_cls, decoder_cls
            A class (instantiated; the decoder with the encoder's ``get_params()``) or an
            instance; identity by default.
        """
        self._require_ready("transform")
        return self._run(X, encoder_cls, decoder_cls, linear=False)

    def linear_transform(self, X, encoder_cls=NoEncoding, decoder_cls=NoDecoding):
        """Linear projection ``M x`` of one input or a batch, rescaled by ``rescale``.

        Binary input(s) as fitted after ``encoder_cls`` (real data: pass
        ``encoder_cls=SeparatedBitPlanEncoder, decoder_cls=SeparatedBitPlanDecoder``);
        packed input works too (lightonml refuses it). Two device frames per binary
        frame (anchor identity).
        """
        self._require_ready("linear_transform")
        return self._run(X, encoder_cls, decoder_cls, linear=True)

    def fit_transform1d(self, X, packed: bool = False, **override):
        """``fit1d(X, packed=packed)`` then ``transform(X)``."""
        self.fit1d(X, None, packed, False, **override)
        return self.transform(X)

    def fit_transform2d(self, X, packed: bool = False, n_2d_features=None, **override):
        """``fit2d(X, n_2d_features, packed)`` then ``transform(X)``."""
        self.fit2d(X, n_2d_features, packed, False, **override)
        return self.transform(X)

    def transform1d(self, *args, **kwargs):
        """Removed in lightonml: refused as there."""
        raise RuntimeError("transform1d is deprecated, you must now use fit1d and transform")

    def transform2d(self, *args, **kwargs):
        """Removed in lightonml: refused as there."""
        raise RuntimeError("transform2d is deprecated, you must now use fit2d and transform")
