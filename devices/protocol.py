"""The device protocol: everything calibration and DFA code may know about an OPU.

An OPU is a black box with ``n_in`` binary inputs (DMD macropixels) and ``n_out``
outputs (camera pixels): :meth:`OPUDevice.acquire` shows a batch of binary frames and
returns one camera frame of counts per input frame. Around it: its timing (frame time,
exposure, which may be set), its wall-plug power, a metadata dictionary, and
``open``/``close`` (also as a context manager). Nothing else: no transmission matrix, no
noise model. Backends subclass :class:`OPUDevice` and implement :meth:`_acquire`.
"""

from __future__ import annotations

import abc
import math

from photon import check_binary_frames

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
        value = float(value)
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"exposure_us = {value!r}: expected a finite exposure > 0 us")
        self._set_exposure_us(value)

    def _set_exposure_us(self, value: float) -> None:
        raise NotImplementedError(f"{self.backend} device '{self.name}' has no settable exposure")

    @property
    def full_scale(self) -> float | None:
        """Largest count the device outputs (None when unbounded)."""
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

        Raises
        ------
        DeviceClosedError
            When the device is not open.
        ValueError
            For frames that are not binary or not ``n_in`` wide.
        """
        if not self.is_open:
            raise DeviceClosedError(f"{self.backend} device '{self.name}' is closed: call open() "
                                    "or use it in a 'with' block")
        frames = check_binary_frames(frames, self.n_in)
        counts = self._acquire(frames)
        self.frames_acquired += frames.shape[0]
        return counts

    @abc.abstractmethod
    def _acquire(self, frames):
        """Backend hook: checked binary frames in, counts out (same array backend)."""

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
