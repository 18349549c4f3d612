"""The optical chain: binary DMD frames in, camera counts out.

``laser -> DMD -> scattering medium -> polarizer -> camera``. The chain keeps the
device clock: each acquisition of a batch takes ``batch * frame_time_s``, during which
the medium drifts and the laser power wanders.

Photon budget
-------------
The telescope spreads the laser power ``P`` over the illuminated mirrors (the used
region plus any held-on mirrors), of which the fraction ``fill_factor`` is sent on. The
medium delivers the fraction ``transmission`` of that light onto the camera sensor of
``sensor_pixels`` pixels, split evenly between the two polarizations. In the field
units of :mod:`photon.medium` (``|E|^2 = 1``: the mean intensity with every used mirror
on, per polarization) one unit of intensity on a sensor pixel is therefore

    ``P_unit = P fill_factor (n_used / n_illuminated) transmission / (2 sensor_pixels)``

watts, independent of how many features or pixels are simulated.
"""

from __future__ import annotations

import numpy as np

from .support.arrays import array_module, asarray_like
from .budget import watts_per_unit_intensity
from .camera import Camera
from .config import DeviceConfig
from .dmd import DMD
from .laser import Laser
from .medium import ScatteringMedium, near_square_shape
from .polarizer import Polarizer

__all__ = ["OpticalChain"]


class OpticalChain:
    """A simulated OPU made of physical elements.

    Parameters
    ----------
    laser, dmd, medium, polarizer, camera
        The elements, each holding its validated configuration. ``medium`` must have the
        DMD's ``n_in``, ``macropixel_mirrors`` and ``held_on_mirrors``, produce
        ``camera.n_sensor_pixels`` pixels and ``polarizer.n_polarizations``
        polarizations. The photon budget reads the medium's ``transmission`` and the
        camera's ``sensor_rows x sensor_cols``.
    config
        The :class:`~photon.config.DeviceConfig` this chain was built from, if any.
    """

    def __init__(self, laser: Laser, dmd: DMD, medium: ScatteringMedium, polarizer: Polarizer,
                 camera: Camera, *, config: DeviceConfig | None = None):
        if medium.n_in != dmd.n_in:
            raise ValueError(f"medium.n_in = {medium.n_in}: expected the DMD's n_in = {dmd.n_in}")
        for name in ("macropixel_mirrors", "held_on_mirrors"):
            if getattr(medium, name) != getattr(dmd, name):
                raise ValueError(f"medium.{name} = {getattr(medium, name)}: expected the DMD's "
                                 f"{name} = {getattr(dmd, name)}")
        if medium.n_pixels != camera.n_sensor_pixels:
            raise ValueError(f"medium.n_pixels = {medium.n_pixels}: expected the camera's "
                             f"{camera.n_sensor_pixels} sensor pixels")
        if medium.n_polarizations != polarizer.n_polarizations:
            raise ValueError(f"medium.n_polarizations = {medium.n_polarizations}: expected "
                             f"{polarizer.n_polarizations} for this polarizer")
        self.laser, self.dmd, self.medium = laser, dmd, medium
        self.polarizer, self.camera = polarizer, camera
        self.config = config
        self.frames_acquired = 0
        self._laser_pending_s = 0.0  # device time the laser drift has not yet seen

    # ------------------------------------------------------------------ building
    @classmethod
    def from_config(cls, config: DeviceConfig) -> "OpticalChain":
        """Build the chain a validated :class:`~photon.config.DeviceConfig` describes.

        Each element receives its section of ``config`` and its seeds from
        ``config.seeds``; the laser's drift stream is seeded ``seeds.laser + 1``.
        """
        seeds, binning = config.seeds, config.camera.binning
        polarizer = (Polarizer.absent() if config.polarizer is None
                     else Polarizer(config.polarizer))
        out_grid = near_square_shape(config.n_out)
        sensor_grid = (out_grid[0] * binning, out_grid[1] * binning)
        laser = Laser(config.laser, rin_seed=seeds.laser, drift_seed=seeds.laser + 1)
        dmd = DMD(config.dmd, config.n_in)
        medium = ScatteringMedium(
            config.medium, config.n_in, config.n_out * binning ** 2, dmd=config.dmd,
            simulation=config.simulation, n_polarizations=polarizer.n_polarizations,
            pixel_grid=sensor_grid, seed=seeds.tm, drift_seed=seeds.tm_drift)
        camera = Camera(config.camera, config.n_out, pixel_grid=out_grid,
                        noise_seed=seeds.camera, fixed_pattern_seed=seeds.fixed_pattern)
        return cls(laser, dmd, medium, polarizer, camera, config=config)

    # ------------------------------------------------------------------ geometry and timing
    @property
    def n_in(self) -> int:
        """Input features (DMD macropixels)."""
        return self.dmd.n_in

    @property
    def n_out(self) -> int:
        """Output values (camera pixels after binning)."""
        return self.camera.n_out

    @property
    def frame_time_s(self) -> float:
        """Time per frame: the slowest of the DMD pattern rate, the exposure and the camera."""
        return max(1.0 / self.dmd.frame_rate_hz, self.camera.frame_time_s)

    @property
    def elapsed_s(self) -> float:
        """Device time elapsed since the chain was built."""
        return self.medium.elapsed_s

    @property
    def transmission(self) -> float:
        """Fraction of the DMD's light delivered onto the sensor (``medium.transmission``)."""
        return self.medium.transmission

    @property
    def sensor_pixels(self) -> int:
        """Sensor pixels the transmitted light is spread over (``sensor_rows x sensor_cols``)."""
        return self.camera.sensor_rows * self.camera.sensor_cols

    @property
    def watts_per_unit_intensity(self) -> float:
        """Power on a sensor pixel per unit of field intensity (see the module notes)."""
        return watts_per_unit_intensity(self.laser.power_w, self.dmd.fill_factor,
                                        self.dmd.n_in * self.dmd.macropixel_mirrors,
                                        self.dmd.illuminated_mirrors, self.transmission,
                                        self.sensor_pixels)

    # ------------------------------------------------------------------ light
    def field(self, frames):
        """Noise-free field on the sensor pixels, ``(batch, n_pol, 2, n_sensor_pixels)``."""
        amplitudes = self.dmd(frames)
        return self.medium.field(amplitudes.binary, amplitudes.uniform, amplitudes.on_amplitude)

    def intensity(self, frames):
        """Noise-free intensity behind the polarizer, ``(batch, n_sensor_pixels)`` float32.

        In field units: with an ideal polarizer, no leakage and no held-on mirrors this is
        exactly ``|R x|^2`` for the feature-level TM ``R`` of variance ``1 / n_in``. The
        device clock does not move.
        """
        return self.polarizer(self.field(frames), overwrite=True)

    def acquire(self, frames):
        """Take one camera frame per DMD frame: the full noisy chain.

        Parameters
        ----------
        frames : (batch, n_in) or (n_in,) binary array, NumPy or CuPy

        Returns
        -------
        (batch, n_out) counts on the same backend (uint8/uint16, or float32 for an
        analog camera). The device clock advances by ``batch * frame_time_s``; the TM
        drift and laser power drift act between batches.
        """
        intensity = self.intensity(frames)
        xp = array_module(intensity)
        batch = intensity.shape[0]
        factors = self.laser.frame_factors(batch, dt_s=self._laser_pending_s)
        self._laser_pending_s = 0.0
        scale = (self.watts_per_unit_intensity * factors).astype(np.float32)
        intensity *= asarray_like(scale, xp)[:, None]
        counts = self.camera(intensity, self.laser.wavelength_nm, overwrite=True)
        self.frames_acquired += batch
        self.advance(batch * self.frame_time_s)
        return counts

    def advance(self, dt_s: float) -> None:
        """Let ``dt_s`` seconds of device time pass (the medium and the laser drift)."""
        self.medium.advance(dt_s)
        self._laser_pending_s += dt_s

    # ------------------------------------------------------------------ description
    def summary(self) -> dict:
        """Plain-data description of the device: sizes, timing, photon budget."""
        cam = self.camera
        return {
            "name": self.config.name if self.config else "custom",
            "n_in": self.n_in,
            "n_out": self.n_out,
            "wavelength_nm": self.laser.wavelength_nm,
            "laser_power_mw": self.laser.power_mw,
            "dmd_mirrors": [self.dmd.rows, self.dmd.cols],
            "macropixel_mirrors": self.dmd.macropixel_mirrors,
            "dmd_contrast": self.dmd.contrast,
            "polarizer_leak": self.polarizer.leak,
            "tm_storage": self.medium.storage,
            "tm_dense_mb": round(self.medium.dense_nbytes / 2**20, 3),
            "tm_drift_time_s": self.medium.drift_time_s,
            "exposure_us": cam.exposure_us,
            "adc_bits": cam.adc_bits,
            "frame_time_s": self.frame_time_s,
            "frames_per_s": 1.0 / self.frame_time_s,
            "watts_per_unit_intensity": self.watts_per_unit_intensity,
        }
