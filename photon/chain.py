"""The optical chain: binary DMD frames in, camera counts out.

``laser -> DMD -> scattering medium -> polarizer -> camera``. The chain keeps the
device clock: each acquisition of a batch takes ``batch * frame_time_s``, during which
the medium drifts and the laser power wanders. The frame time is the longer of the
DMD's pattern period and the camera's frame period for the outputs it reads
(:func:`device_frame_time_s`, :func:`photon.camera.readout`).

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

from .support.arrays import array_module
from .support.memory import map_rows, plan_chunk_rows
from .budget import watts_per_unit_intensity
from .camera import Camera, max_rows_for_frame_time, readout
from .complement_pairs import intensity_of_batch
from .config import DeviceConfig
from .dmd import DMD, check_binary_frames
from .laser import Laser
from .grain import sensor_pixel_positions
from .medium import ScatteringMedium, near_square_shape
from .polarizer import Polarizer

__all__ = ["OpticalChain", "device_frame_time_s"]

#: A device of at most this many inputs with a static TM tabulates each frame's intensity,
#: if the table of all ``2^n_in`` frames stays within _INTENSITY_TABLE_MAX_BYTES.
_INTENSITY_TABLE_MAX_INPUTS = 14
_INTENSITY_TABLE_MAX_BYTES = 32 * 2 ** 20


def device_frame_time_s(config: DeviceConfig, n_out: int | None = None) -> float:
    """Seconds per frame of the device ``config`` describes when it reads ``n_out`` outputs.

    ``max(1 / dmd.frame_rate_hz, camera frame period)``: the DMD shows the next pattern
    while the camera exposes and reads (:func:`photon.camera.readout`), so the slower of
    the two sets the pace. A pure function of the configuration: the frame time of the
    same device built with another output size, without building it.

    Parameters
    ----------
    config
        The device.
    n_out
        Outputs read (default ``config.n_out``).

    Raises
    ------
    ConfigError
        When ``n_out`` does not fit on the sensor or in ``camera.roi_rows``.
    """
    n_out = config.n_out if n_out is None else n_out
    return max(1.0 / config.dmd.frame_rate_hz, readout(config.camera, n_out).frame_time_s)


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
        self._intensity_tables = {}  # backend name -> every frame's intensity (few inputs)

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
        positions = sensor_pixel_positions(config.n_out, config.camera.sensor_cols, binning,
                                           out_grid, config.camera.output_pitch_bins)
        laser = Laser(config.laser, rin_seed=seeds.laser, drift_seed=seeds.laser + 1)
        dmd = DMD(config.dmd, config.n_in)
        medium = ScatteringMedium(
            config.medium, config.n_in, config.n_out * binning ** 2, dmd=config.dmd,
            simulation=config.simulation, n_polarizations=polarizer.n_polarizations,
            pixel_positions=positions, sensor_cols=config.camera.sensor_cols, seed=seeds.tm,
            drift_seed=seeds.tm_drift)
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
        """Time per frame, s: the longer of the DMD pattern period and the camera's frame period.

        The camera's period covers its overhead, the exposure and the read-out of the
        rows holding its ``n_out`` outputs (:attr:`Camera.readout`).
        """
        return max(1.0 / self.dmd.frame_rate_hz, self.camera.frame_time_s)

    def frame_time_for(self, n_out: int) -> float:
        """Time per frame, s, of this device reading ``n_out`` outputs (same DMD, camera settings).

        Raises
        ------
        ConfigError
            When ``n_out`` does not fit on the sensor or in ``camera.roi_rows``.
        """
        return max(1.0 / self.dmd.frame_rate_hz, readout(self.camera.config, n_out).frame_time_s)

    def readout_summary(self) -> dict:
        """Plain-data read-out figures of the camera (rates in Hz, times in us or s).

        Rows read and skipped, line times, overhead, the camera's frame period, its rate
        at full frame and with one row, and the tallest region of interest (rows, and
        the outputs it holds) that keeps up with the DMD's pattern rate.
        """
        cam, dmd_rate = self.camera.config, self.dmd.frame_rate_hz
        now = self.camera.readout
        rows_at_dmd = max_rows_for_frame_time(cam, 1.0 / dmd_rate)
        per_row = cam.sensor_cols // cam.binning
        return {
            "sensor_rows": cam.sensor_rows,
            "sensor_cols": cam.sensor_cols,
            "rows_read": now.rows_read,
            "rows_skipped": now.rows_skipped,
            "line_time_us": cam.line_time_us,
            "skipped_line_time_us": cam.skipped_line_time_us,
            "frame_overhead_us": cam.frame_overhead_us,
            "readout_us": now.readout_us,
            "camera_frame_time_s": now.frame_time_s,
            "camera_frames_per_s": now.frames_per_s,
            "full_frame_rate_hz": now.full_frame_rate_hz,
            "one_row_rate_hz": readout(cam, 1).frames_per_s,
            "dmd_rate_hz": dmd_rate,
            "max_rows_at_dmd_rate": rows_at_dmd,
            "max_outputs_at_dmd_rate": (rows_at_dmd // cam.binning) * per_row,
        }

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
        device clock does not move. A batch of complementary halves (linear mode's frames)
        takes one product for both (:func:`photon.complement_pairs.intensity_of_batch`).
        A device of few inputs with a static TM computes each distinct frame's intensity
        once and looks it up afterwards (:meth:`_intensity_table`): the intensity is a
        pure function of the frame while the optics stay as they are.
        """
        table = self._intensity_table(array_module(frames))
        if table is not None:
            return self._tabulated_intensity(frames, table)
        return self._computed_intensity(frames)

    def _intensity_table(self, xp):
        """The table of every frame's intensity (filled as frames are seen), or None.

        Kept for a static TM (no drift) when all ``2^n_in`` frames' intensities fit in
        :data:`_INTENSITY_TABLE_MAX_BYTES`; keyed on the optics it depends on (the medium
        and the DMD, polarizer and medium settings), so a change of any starts a new one.
        """
        if self.medium.drift_time_s is not None or self.n_in > _INTENSITY_TABLE_MAX_INPUTS:
            return None
        n_pixels = self.camera.n_sensor_pixels
        if 4 * n_pixels << self.n_in > _INTENSITY_TABLE_MAX_BYTES:
            return None
        optics = (self.medium, self.medium.config, self.medium.simulation, self.dmd.config,
                  self.polarizer.config)   # frozen settings: a change is a new object
        table = self._intensity_tables.get(xp.__name__)
        if table is None or any(a is not b for a, b in zip(table["optics"], optics)):
            table = {"optics": optics, "filled": xp.zeros(1 << self.n_in, bool),
                     "intensity": xp.empty((1 << self.n_in, n_pixels), np.float32),
                     "powers": xp.asarray(1 << np.arange(self.n_in), dtype=np.int64)}
            self._intensity_tables[xp.__name__] = table
        return table

    def _tabulated_intensity(self, frames, table):
        """Intensities of ``frames`` from the table, computing the frames not seen yet."""
        frames = check_binary_frames(frames, self.n_in)
        xp = array_module(frames)
        if frames.dtype.kind == "f":
            frames = frames.astype(np.uint8)
        keys = frames @ table["powers"]          # each frame's bits as one integer
        filled = table["filled"]
        seen = filled[keys]
        if not bool(seen.all()):
            fresh = xp.unique(keys[~seen])
            bits = ((fresh[:, None] >> xp.arange(self.n_in)) & 1).astype(np.uint8)
            table["intensity"][fresh] = self._computed_intensity(bits)
            filled[fresh] = True
        return table["intensity"][keys]

    def _computed_intensity(self, frames):
        """The intensity of ``frames`` through the DMD, the medium and the polarizer."""
        frames = check_binary_frames(frames, self.n_in)

        def field(binary):
            amplitudes = self.dmd(binary)
            return self.medium.field(amplitudes.binary, amplitudes.uniform,
                                     amplitudes.on_amplitude)

        return intensity_of_batch(field, lambda f, out: self.polarizer(f, True, out), frames)

    def acquire(self, frames):
        """Take one camera frame per DMD frame: the full noisy chain.

        Parameters
        ----------
        frames : (batch, n_in) or (n_in,) binary array, NumPy or CuPy

        Returns
        -------
        (batch, n_out) counts on the same backend (uint8/uint16, or float32 for an
        analog camera). The device clock advances by ``batch * frame_time_s``; the TM
        drift and laser power drift act between batches. A batch too large to compute at
        once runs in chunks, as successive calls would; one whose counts alone would not
        fit in half of the available memory is refused before anything is allocated
        (:class:`photon.support.memory.InsufficientMemory`).
        """
        shape = getattr(frames, "shape", ())
        n = int(shape[0]) if len(shape) == 2 else 1
        top = self.camera.full_scale_dn
        count_bytes = 4 if top is None or top >= 2 ** 16 else (1 if top < 2 ** 8 else 2)
        chunk = plan_chunk_rows(n, count_bytes * self.n_out, 4.0 * self.n_in + 40.0 * self.n_out,
                                xp=array_module(frames), what=f"acquire of {n} frames")
        if chunk < n:  # in order, as successive calls would
            return map_rows(self.acquire, check_binary_frames(frames, self.n_in), chunk)
        intensity = self.intensity(frames)
        batch = intensity.shape[0]
        factors = self.laser.frame_factors(batch, dt_s=self._laser_pending_s)
        self._laser_pending_s = 0.0
        counts = self.camera(intensity, self.laser.wavelength_nm, overwrite=True,
                             frame_watts=self.watts_per_unit_intensity * factors)
        self.frames_acquired += batch
        self.advance(batch * self.frame_time_s)
        return counts

    def acquire_dark(self, n_frames: int, xp=np):
        """Take ``n_frames`` camera frames with the laser off (no light on the sensor).

        The camera reads out as in :meth:`acquire`: dark current, read noise, DSNU, black
        offset and ADC; no photons, not even the fixed field an all-off DMD frame lets
        through. Counts ``(n_frames, n_out)`` on backend ``xp``; the device clock advances
        by ``n_frames * frame_time_s``.
        """
        n = int(n_frames)
        if n < 1:
            raise ValueError(f"n_frames = {n_frames!r}: expected a positive number of frames")
        power = xp.zeros((n, self.camera.n_sensor_pixels), np.float32)
        counts = self.camera(power, self.laser.wavelength_nm, overwrite=True)
        self.frames_acquired += n
        self.advance(n * self.frame_time_s)
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
            "readout": self.readout_summary(),
            "speckle_grain_px": self.medium.speckle_grain_px,
            "input_grain_mirrors": self.medium.input_grain_mirrors,
            "watts_per_unit_intensity": self.watts_per_unit_intensity,
        }
