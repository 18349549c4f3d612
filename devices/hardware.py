"""The adapter slot for real hardware.

A driver for a physical OPU subclasses :class:`HardwareDevice`, implements the four
hooks below, and registers itself so that :func:`devices.open_device` finds it by name;
no other module changes::

    from devices import HardwareDevice, register_backend

    class MyLabOPU(HardwareDevice):
        def _connect(self): ...                  # open the DMD and camera SDKs
        def _disconnect(self): ...
        def _display_and_capture(self, frames): ...  # (batch, n_in) uint8 -> (batch, n_out) counts
        def _describe(self): return dict(n_in=..., n_out=..., frame_time_s=...,
                                         electrical_power_w=..., full_scale=255)

    register_backend("my-lab-opu", MyLabOPU)

Frames reach ``_display_and_capture`` already checked (binary, ``n_in`` wide) and as
NumPy arrays, since drivers talk to host memory. A driver whose camera exposure can be
set says ``exposure_settable = True`` and implements ``exposure_us`` and
``_set_exposure_us``.
"""

from __future__ import annotations

import abc

from photon import to_numpy

from .protocol import OPUDevice

__all__ = ["HardwareDevice"]


class HardwareDevice(OPUDevice):
    """Base class of hardware drivers (see the module notes)."""

    backend = "hardware"

    def __init__(self, name: str | None = None, **settings):
        super().__init__(name)
        self.settings = settings
        self._description: dict | None = None

    @abc.abstractmethod
    def _connect(self) -> None:
        """Open the connections to the DMD and the camera."""

    @abc.abstractmethod
    def _disconnect(self) -> None:
        """Close them."""

    @abc.abstractmethod
    def _display_and_capture(self, frames):
        """Show each frame on the DMD and return the camera's counts, one row per frame."""

    @abc.abstractmethod
    def _describe(self) -> dict:
        """Return ``n_in``, ``n_out``, ``frame_time_s``, ``electrical_power_w`` (and
        optionally ``full_scale``, ``exposure_us``) as read from the hardware."""

    def _info(self, key):
        if self._description is None:
            self._description = self._describe()
        return self._description.get(key)

    n_in = property(lambda self: self._info("n_in"), doc="Number of inputs.")
    n_out = property(lambda self: self._info("n_out"), doc="Number of outputs.")
    frame_time_s = property(lambda self: self._info("frame_time_s"), doc="Seconds per frame.")
    electrical_power_w = property(lambda self: self._info("electrical_power_w"),
                                  doc="Wall-plug watts.")
    full_scale = property(lambda self: self._info("full_scale"), doc="Largest count.")

    def _open(self) -> None:
        self._connect()

    def _close(self) -> None:
        self._disconnect()

    def _acquire(self, frames):
        return self._display_and_capture(to_numpy(frames))
