"""The device protocol: everything calibration and DFA code may know about an OPU.

An OPU is a black box with ``n_in`` binary inputs (DMD macropixels) and ``n_out``
outputs (camera pixels): :meth:`OPUDevice.acquire` shows a batch of binary frames and
returns one camera frame of counts per input frame. Around it: its timing (frame time,
exposure, which may be set), its wall-plug power, a metadata dictionary, and
``open``/``close`` (also as a context manager). Nothing else: no transmission matrix, no
noise model. Backends subclass :class:`OPUDevice` and implement :meth:`_acquire`.

Two optional capabilities, with defaults that say "not available":

* :meth:`OPUDevice.acquire_dark`: camera frames with the light blocked (a shutter, or
  the laser switched off), ``None`` where the device cannot block it
  (``can_block_light``). All-off DMD frames are not dark: DMD leakage and mirrors held
  on outside the used region still light the camera. Calibration uses true dark frames
  for the black offset and read noise where it can.
* :attr:`OPUDevice.untrusted_outputs`: outputs the device itself knows to be
  unreliable (a calibrated device names the rows its calibration could not fit);
  ``None`` where it knows of none. The OPU operator leaves them out of linear mode.
"""

from __future__ import annotations

import abc

from photon import array_module, check_binary_frames
from photon.support.arguments import check_int, check_number
from photon.support.memory import map_rows, plan_chunk_rows

__all__ = ["OPUDevice", "DeviceClosedError"]


class DeviceClosedError(RuntimeError):
    """Frames were sent to a device that is not open."""


class OPUDevice(abc.ABC):
    """Base class of every OPU backend (ideal, virtual, calibrated, hardware).

    Subclasses set ``backend`` and implement :attr:`n_in`, :attr:`n_out`,
    :attr:`frame_time_s`, :attr:`electrical_power_w` and :meth:`_acquire`; they may
    override :meth:`_open`, :meth:`_close`, :meth:`_set_exposure_us` and
    :meth:`metadata`. The base class checks frames (binary, ``n_in`` wide) before any
    backend sees them and counts the frames shown.
    """

    backend = "abstract"
    #: Whether ``exposure_us`` may be set (a camera whose exposure the driver controls).
    exposure_settable = False
    #: Whether :meth:`acquire_dark` can block the light (a shutter, or the laser off).
    can_block_light = False

    def __init__(self, name: str | None = None):
        self.name = name or self.backend
        self.is_open = False
        self.frames_acquired = 0

    # ------------------------------------------------------------------ geometry and timing
    @property
    @abc.abstractmethod
    def n_in(self) -> int:
        """Number of binary inputs (DMD macropixels)."""

    @property
    @abc.abstractmethod
    def n_out(self) -> int:
        """Number of outputs (camera pixels) per frame."""

    @property
    @abc.abstractmethod
    def frame_time_s(self) -> float:
        """Seconds per frame at the device's sustained rate."""

    def frame_time_for(self, n_out: int) -> float:
        """Seconds per frame were the device to read only ``n_out`` outputs.

        A camera that reads a smaller region of interest delivers frames sooner; a
        backend with a read-out model (the virtual device) overrides this. The default is
        :attr:`frame_time_s` whatever ``n_out`` (a device whose frame time is fixed).

        Raises
        ------
        ValueError
            When ``n_out`` is not an integer in ``[1, n_out]`` of the device.
        """
        if isinstance(n_out, bool) or int(n_out) != n_out or not 1 <= n_out <= self.n_out:
            raise ValueError(f"n_out = {n_out!r}: expected an integer from 1 to the device's "
                             f"{self.n_out} outputs")
        return self.frame_time_s

    @property
    @abc.abstractmethod
    def electrical_power_w(self) -> float:
        """Wall-plug power of the whole device, watts."""

    @property
    def exposure_us(self) -> float | None:
        """Camera exposure in microseconds (None for a device without one)."""
        return None

    @exposure_us.setter
    def exposure_us(self, value: float) -> None:
        value = check_number("exposure_us", value, low=0.0, low_open=True, unit="us")
        self._set_exposure_us(value)

    def _set_exposure_us(self, value: float) -> None:
        raise NotImplementedError(f"{self.backend} device '{self.name}' has no settable exposure")

    @property
    def full_scale(self) -> float | None:
        """Largest count the device outputs (None when unbounded).

        This is the ADC's top: a camera's response may stop growing below it (a full
        well); ``calibration.estimate_camera`` measures where.
        """
        return None

    @property
    def untrusted_outputs(self):
        """Outputs the device knows to be unreliable, as sorted indices, or None.

        None (the default): the device knows of none. A calibrated device names the
        rows its calibration could not fit; the OPU operator leaves them out.
        """
        return None

    # ------------------------------------------------------------------ life cycle
    def open(self) -> "OPUDevice":
        """Make the device ready to acquire; returns the device."""
        if not self.is_open:
            self._open()
            self.is_open = True
        return self

    def close(self) -> None:
        """Release the device (idempotent)."""
        if self.is_open:
            self._close()
            self.is_open = False

    def _open(self) -> None:
        """Backend hook: connect to hardware, allocate buffers."""

    def _close(self) -> None:
        """Backend hook: disconnect, free buffers."""

    def __enter__(self) -> "OPUDevice":
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ acquisition
    def acquire(self, frames):
        """Show binary ``frames`` (batch, n_in) and return the counts (batch, n_out).

        The backend follows the data: NumPy frames give NumPy counts, CuPy frames give
        CuPy counts.

        A batch too large to compute at once is shown in chunks (in order, as successive
        calls would), so that the working memory stays bounded
        (:mod:`photon.support.memory`).

        Raises
        ------
        DeviceClosedError
            When the device is not open.
        ValueError
            For frames that are not binary or not ``n_in`` wide.
        photon.support.memory.InsufficientMemory
            When the counts alone would not fit in half of the memory available (refused
            before any frame is shown).
        """
        if not self.is_open:
            raise DeviceClosedError(f"{self.backend} device '{self.name}' is closed: call open() "
                                    "or use it in a 'with' block")
        shape = getattr(frames, "shape", ())
        n = int(shape[0]) if len(shape) == 2 else 1
        # Refused before anything is checked or allocated: counts (uint8, uint16 or
        # float32 per output); fields of two polarizations, intensities and noise draws
        # while computing.
        top = self.full_scale
        count_bytes = 4 if top is None or top >= 2 ** 16 else (1 if top < 2 ** 8 else 2)
        chunk = plan_chunk_rows(n, count_bytes * self.n_out, 4.0 * self.n_in + 40.0 * self.n_out,
                                xp=array_module(frames),
                                what=f"acquire of {n} frames on '{self.name}'")
        frames = check_binary_frames(frames, self.n_in)

        def show(part):
            counts = self._acquire(part)
            self.frames_acquired += part.shape[0]
            return counts

        return map_rows(show, frames, chunk)

    @abc.abstractmethod
    def _acquire(self, frames):
        """Backend hook: checked binary frames in, counts out (same array backend)."""

    def acquire_dark(self, n_frames: int):
        """``n_frames`` camera frames with the light blocked, or None.

        Dark frames at the current exposure: the camera's offset, dark current and read
        noise, and no light at all (not even the fixed field an all-off DMD frame lets
        through). Returns a NumPy array (n_frames, n_out) of counts, or None for a device
        that cannot block its light (``can_block_light`` False, the default). The
        frames count in ``frames_acquired``.

        Raises
        ------
        DeviceClosedError
            When the device is not open.
        ValueError
            For ``n_frames`` not a positive integer.
        """
        if not self.is_open:
            raise DeviceClosedError(f"{self.backend} device '{self.name}' is closed: call open() "
                                    "or use it in a 'with' block")
        n_frames = check_int("n_frames", n_frames)
        if not self.can_block_light:
            return None
        counts = self._acquire_dark(int(n_frames))
        self.frames_acquired += int(n_frames)
        return counts

    def _acquire_dark(self, n_frames: int):
        """Backend hook of :meth:`acquire_dark` (set ``can_block_light = True`` with it)."""
        raise NotImplementedError(f"{self.backend} device '{self.name}' cannot block its light")

    # ------------------------------------------------------------------ description
    def metadata(self) -> dict:
        """Plain-data description: backend, name, sizes, timing, power."""
        return {
            "backend": self.backend,
            "name": self.name,
            "n_in": self.n_in,
            "n_out": self.n_out,
            "frame_time_s": self.frame_time_s,
            "frames_per_s": 1.0 / self.frame_time_s,
            "exposure_us": self.exposure_us,
            "electrical_power_w": self.electrical_power_w,
            "full_scale": self.full_scale,
        }

    def __repr__(self) -> str:
        state = "open" if self.is_open else "closed"
        return f"<{type(self).__name__} '{self.name}' {self.n_in} -> {self.n_out}, {state}>"
