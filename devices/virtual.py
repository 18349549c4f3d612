"""The virtual backend: the full physical chain of :mod:`photon`, noise and all.

A virtual device is built from a preset name (``lab-bench``, ``datacenter-opu``,
``ideal``), a YAML path or a :class:`photon.DeviceConfig`, with optional field
overrides. It returns camera counts (uint8 for an 8-bit camera), keeps its own device
clock (the TM drifts as frames are taken) and lets the exposure be set, as a real
device does.
"""

from __future__ import annotations

import math

from photon import OpticalChain, resolve_config

from .protocol import OPUDevice

__all__ = ["VirtualDevice"]


class VirtualDevice(OPUDevice):
    """An OPU simulated at the physics level.

    Parameters
    ----------
    device
        Preset name, YAML path or :class:`photon.DeviceConfig`.
    **changes
        Overrides, e.g. ``n_in=256, camera__read_noise_e=5.0`` (see
        :meth:`photon.DeviceConfig.replace`).
    """

    backend = "virtual"
    exposure_settable = True
    can_block_light = True  # the laser can be switched off (acquire_dark)

    def __init__(self, device="lab-bench", **changes):
        config = resolve_config(device, **changes)
        super().__init__(config.name)
        self.chain = OpticalChain.from_config(config)

    n_in = property(lambda self: self.chain.n_in, doc="Number of inputs.")
    n_out = property(lambda self: self.chain.n_out, doc="Number of outputs.")
    frame_time_s = property(lambda self: self.chain.frame_time_s,
                            doc="Seconds per frame: DMD period or camera frame for n_out outputs.")

    def frame_time_for(self, n_out: int) -> float:
        """Seconds per frame were this device to read only ``n_out`` outputs.

        The camera reads the fewest sensor rows holding them (or its ``roi_rows``), so a
        smaller output size gives shorter frames down to the DMD's pattern period
        (:meth:`photon.OpticalChain.frame_time_for`).
        """
        OPUDevice.frame_time_for(self, n_out)  # checks n_out
        return self.chain.frame_time_for(int(n_out))

    electrical_power_w = property(lambda self: self.chain.config.electrical_power_w,
                                  doc="Wall-plug watts.")

    @property
    def exposure_us(self) -> float:
        """Camera exposure in microseconds (settable)."""
        return self.chain.camera.exposure_us

    @exposure_us.setter
    def exposure_us(self, value: float) -> None:
        OPUDevice.exposure_us.fset(self, value)

    def _set_exposure_us(self, value: float) -> None:
        self.chain.camera.exposure_us = value

    @property
    def full_scale(self) -> float | None:
        """ADC full scale in DN (None for an analog camera)."""
        return self.chain.camera.full_scale_dn

    def _acquire(self, frames):
        return self.chain.acquire(frames)

    def wait(self, seconds: float) -> None:
        """Let ``seconds`` of device time pass without showing frames.

        A real device's clock is the wall clock: it drifts while it idles. A virtual
        device keeps its own clock, so waiting advances it (the medium decorrelates,
        the laser power wanders) at no computing cost.
        """
        seconds = float(seconds)
        if not (math.isfinite(seconds) and seconds >= 0):
            raise ValueError(f"seconds = {seconds!r}: expected a finite time >= 0 s")
        self.chain.advance(seconds)

    def _acquire_dark(self, n_frames: int):
        """Dark frames with the laser off: the camera's read-out without light
        (:meth:`photon.OpticalChain.acquire_dark`)."""
        return self.chain.acquire_dark(n_frames)

    def noise_free_twin(self) -> "VirtualDevice":
        """The same optics and seeds with every noise source off (open).

        Laser RIN and drift, shot, dark and read noise, PRNU/DSNU and the ADC are
        switched off; DMD leakage, the polarizer and the TM (with its drift) stay, so
        the twin shows what the device computes without noise: the truth a
        calibration or a noise study compares against.
        """
        quiet = self.chain.config.replace(
            laser__rin_rms=0.0, laser__drift_rms=0.0, camera__shot_noise=False,
            camera__read_noise_e=0.0, camera__dark_current_e_per_s=0.0, camera__prnu_rms=0.0,
            camera__dsnu_e=0.0, camera__adc_bits=None, camera__full_well_e=None)
        twin = VirtualDevice(quiet).open()
        twin.chain.advance(self.chain.elapsed_s)
        return twin

    def metadata(self) -> dict:
        """The protocol's metadata plus the physical summary of the chain."""
        return {**super().metadata(), "physics": self.chain.summary()}
