"""Camera following the EMVA 1288 linear sensor model.

For a pixel receiving optical power ``P`` (W) during the exposure ``t``:

* photons ``mu_p = P t lambda / (h c)``;
* photo-electrons Poisson with mean ``QE mu_p (1 + prnu_i)`` plus dark electrons
  ``dark_current t`` (Poisson too), where ``prnu_i`` is a fixed per-pixel pattern; with
  ``shot_noise`` off the photo-electrons are their mean, while the dark electrons keep
  their Poisson noise (thermal generation is not photon shot noise);
* the charge saturates at the full well;
* read-out adds Gaussian read noise ``sigma_r`` and a fixed dark-signal pattern ``dsnu_i``
  (electrons);
* the ADC converts with gain ``K`` (DN per electron) onto the black offset, rounds, and
  clips to ``[0, 2^bits - 1]``.

The mean count is ``mu_y = K (mu_e + mu_dark) + offset``. Where the temporal noise
spans several DN and away from saturation, the variance follows the photon-transfer
line ``sigma_y^2 = sigma_d^2 + K (mu_y - mu_d)`` with ``sigma_d^2 = K^2 sigma_r^2 + 1/12``
(``1/12`` DN^2 is the rounding's share, Sheppard's correction). That correction holds
only for a noise of about 0.5 DN rms or more (within 2.5 % at 0.5 DN, 0.3 % at
0.6 DN): below, the variance after rounding is a periodic function of where the mean
falls between two integers (:func:`rounded_gaussian_variance`) and lies off the line.
At the dark level of the 8-bit presets, ``K sigma_r = 0.255`` DN and the black offset
of 2 DN sits on an integer, so the dark variance is about 0.050 DN^2 (0.051 averaged
over their DSNU pattern), not the line's 0.148.

Timing (:func:`readout`, :func:`frame_time_s`): the sensor reads ``rows_read`` rows
(the region of interest holding the outputs) at ``line_time_us`` each and clocks the
rows outside it at ``skipped_line_time_us``; a frame takes ``frame_overhead_us +
max(exposure_us, readout_us)``, the exposure of the next frame overlapping the
read-out of this one (a global shutter in pipelined mode).

Charge-domain binning sums ``binning x binning`` sensor pixels before the noise.
Shot noise is exact (Poisson) where the mean is below ``shot_noise_exact_below_e`` and
Gaussian of equal mean and variance above; pixels within six standard deviations of
the full well draw shot and read noise separately so that saturation is exact too.
Elsewhere one Gaussian draw of variance ``mu_e + sigma_r^2`` carries both.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

from .config import CameraConfig
from .constants import photons_per_joule
from .noise_samplers import FastNoise
from .support.arrays import NoiseStream, PerBackend, array_module, asarray_like
from .support.schema import check_setting, from_mapping, settings_as_properties

__all__ = ["Camera", "Readout", "readout", "frame_time_s", "max_rows_for_frame_time",
           "rounded_gaussian_variance"]


@dataclass(frozen=True)
class Readout:
    """How long the camera takes to deliver one frame of ``n_out`` outputs.

    Attributes
    ----------
    n_out
        Outputs read (after binning).
    rows_read
        Sensor rows in the region of interest.
    rows_skipped
        Sensor rows outside it (clocked at ``skipped_line_time_us`` each).
    readout_us
        Time to read the region of interest and clock past the other rows, us.
    frame_time_s
        Camera frame period, ``frame_overhead_us + max(exposure_us, readout_us)``, s.
    full_frame_time_s
        The same with every sensor row read, s.
    """

    n_out: int
    rows_read: int
    rows_skipped: int
    readout_us: float
    frame_time_s: float
    full_frame_time_s: float

    @property
    def frames_per_s(self) -> float:
        """Frame rate, Hz."""
        return 1.0 / self.frame_time_s

    @property
    def full_frame_rate_hz(self) -> float:
        """Frame rate with every sensor row read, Hz."""
        return 1.0 / self.full_frame_time_s


def _frame_time_us(config: CameraConfig, rows: int) -> tuple[float, float]:
    """(read-out time, frame period) in us for ``rows`` sensor rows read."""
    readout_us = (rows * config.line_time_us
                  + (config.sensor_rows - rows) * config.skipped_line_time_us)
    return readout_us, config.frame_overhead_us + max(config.exposure_us, readout_us)


def readout(config: CameraConfig, n_out: int) -> Readout:
    """Read-out timing of a camera reading ``n_out`` outputs (a pure function of both).

    The region of interest is ``config.rows_read(n_out)`` full-width sensor rows (the
    fewest that hold the outputs, or ``config.roi_rows``). Each is read in
    ``line_time_us``; the rows outside it are clocked past in ``skipped_line_time_us``
    (a CCD's fast dump; 0 for a CMOS sensor that addresses its rows); the frame period
    is ``frame_overhead_us + max(exposure_us, readout_us)``.

    Parameters
    ----------
    config
        The camera's settings.
    n_out
        Outputs read (after binning), >= 1.

    Raises
    ------
    ConfigError
        When ``n_out`` is not a positive integer, does not fit on the sensor or not in
        ``config.roi_rows``.

    Examples
    --------
    >>> readout(CameraConfig(), 1292 * 964).frames_per_s  # doctest: +SKIP
    31.00...
    """
    n_out = check_setting("n_out", n_out, "readout", kind=int, lo=1, unit="outputs")
    rows = config.rows_read(n_out)
    readout_us, frame_us = _frame_time_us(config, rows)
    _, full_us = _frame_time_us(config, config.sensor_rows)
    return Readout(n_out, rows, config.sensor_rows - rows, readout_us, frame_us * 1e-6,
                   full_us * 1e-6)


def frame_time_s(config: CameraConfig, n_out: int) -> float:
    """Camera frame period in seconds when ``n_out`` outputs are read (see :func:`readout`)."""
    return readout(config, n_out).frame_time_s


def max_rows_for_frame_time(config: CameraConfig, frame_time_s: float) -> int:
    """Tallest region of interest (sensor rows) whose camera frame period is <= ``frame_time_s``.

    0 when even one row is too slow (the exposure or the overhead alone exceed it).

    Raises
    ------
    ValueError
        When ``frame_time_s`` is not a finite time > 0.
    """
    target = float(frame_time_s)
    if not (math.isfinite(target) and target > 0):
        raise ValueError(f"frame_time_s = {frame_time_s!r}: expected a finite time > 0 s")
    target_us = target * 1e6 * (1 + 1e-12)  # tolerate the rounding of 1 / rate
    if config.frame_overhead_us + config.exposure_us > target_us:
        return 0
    # readout_us = rows (line - skipped) + sensor_rows skipped, increasing in rows.
    budget = target_us - config.frame_overhead_us - config.sensor_rows * config.skipped_line_time_us
    rows = math.floor(budget / (config.line_time_us - config.skipped_line_time_us)) \
        if config.line_time_us > config.skipped_line_time_us else config.sensor_rows
    rows = max(0, min(config.sensor_rows, rows))
    while rows > 0 and _frame_time_us(config, rows)[1] > target_us:  # float safety
        rows -= 1
    return rows


def rounded_gaussian_variance(mean_dn, sigma_dn, lo: float | None = None,
                              hi: float | None = None):
    """Exact variance of ``rint(N(mean_dn, sigma_dn^2))``, clipped to ``[lo, hi]`` if given.

    The variance an ADC reports for a Gaussian signal: ``sigma^2 + 1/12`` (Sheppard's
    correction) only for ``sigma_dn`` above about 0.5 DN; below, a periodic function of
    ``mean_dn`` with period 1 DN, smallest on an integer and largest half-way.

    Parameters
    ----------
    mean_dn : float or array
        Mean before rounding, DN.
    sigma_dn : float
        Standard deviation before rounding, DN (>= 0).
    lo, hi
        Integer clipping bounds of the ADC (``0`` and ``2^bits - 1``), or None.

    Returns
    -------
    float or array
        The variance, DN^2, shaped like ``mean_dn``.

    Examples
    --------
    >>> round(float(rounded_gaussian_variance(2.0, 0.255)), 4)
    0.0499
    """
    sigma = float(sigma_dn)
    if not (math.isfinite(sigma) and sigma >= 0):
        raise ValueError(f"sigma_dn = {sigma_dn!r}: expected a finite standard deviation >= 0 DN")
    mean = np.asarray(mean_dn, dtype=np.float64)
    if sigma == 0:
        return np.zeros(mean.shape) if mean.ndim else 0.0
    reach = int(math.ceil(12 * sigma)) + 2
    base = np.rint(mean)[..., None]
    k = base + np.arange(-reach, reach + 1)
    cdf_hi = ndtr((k + 0.5 - mean[..., None]) / sigma)
    cdf_lo = ndtr((k - 0.5 - mean[..., None]) / sigma)
    p = cdf_hi - cdf_lo
    if lo is not None:
        p = np.where(k == lo, cdf_hi, p)
        p = np.where(k < lo, 0.0, p)
    if hi is not None:
        p = np.where(k == hi, 1.0 - cdf_lo, p)
        p = np.where(k > hi, 0.0, p)
    m = (p * k).sum(axis=-1)
    var = (p * (k - m[..., None]) ** 2).sum(axis=-1)
    return float(var) if var.ndim == 0 else var


#: A Poisson count of a mean below the exact-shot-noise limit ``L`` exceeds ``4 L`` plus this
#: many electrons with a probability below 1e-300: a full well beyond that never clips it.
_POISSON_REACH_E = 2048.0


def _poisson(noise, lam, limit: float, xp):
    """Poisson counts (float32) of the 1-D means ``lam`` (each below ``limit``)."""
    if xp is np:
        return noise.poisson(lam, limit)
    return noise.poisson(lam).astype(np.float32)


def _normals(noise, shape, xp):
    """Standard normal deviates of ``shape`` (float32) from ``noise`` (read-only on NumPy)."""
    if xp is np:
        return noise.standard_normal(math.prod(shape)).reshape(shape)
    return noise.standard_normal(shape)


@settings_as_properties(CameraConfig)
class Camera:
    """An EMVA 1288 camera reading ``n_out`` (binned) pixels.

    Parameters
    ----------
    config
        The sensor's settings (quantum efficiency, exposure, dark current, read noise,
        full well, gain, offset, ADC, PRNU/DSNU, binning, read-out timing, shot-noise
        model), validated by :class:`~photon.config.CameraConfig`; each is also
        readable as an attribute (``camera.read_noise_e``) that reads ``camera.config``.
        Only ``exposure_us`` may be set afterwards (it replaces ``config``).
    n_out
        Number of output pixels (after binning).
    pixel_grid
        ``(rows, cols)`` layout of the output pixels, whose ``binning x binning``
        sensor pixels are summed (the simulated speckle lies on this grid). The read-out
        time counts the full-width sensor rows that hold ``n_out`` outputs instead
        (:attr:`readout`): where the outputs sit does not change their statistics.
    noise_seed
        Seed of the temporal noise stream.
    fixed_pattern_seed
        Seed of the PRNU and DSNU patterns.

    See Also
    --------
    from_settings : build the configuration from keyword settings.
    """

    _readout = (None, None)  # (config, Readout) of the last read-out timing asked

    def __init__(self, config: CameraConfig, n_out: int, *,
                 pixel_grid: tuple[int, int] | None = None, noise_seed: int = 0,
                 fixed_pattern_seed: int = 1):
        if not isinstance(config, CameraConfig):
            raise TypeError(f"config = {config!r}: expected a CameraConfig "
                            "(or use Camera.from_settings(n_out, **settings))")
        self.config = config
        self.n_out = check_setting("n_out", n_out, "Camera", kind=int, lo=1, unit="pixels")
        self.pixel_grid = tuple(pixel_grid) if pixel_grid else (1, self.n_out)
        if self.pixel_grid[0] * self.pixel_grid[1] != self.n_out:
            raise ValueError(f"pixel_grid = {pixel_grid!r}: expected rows * cols == n_out = {n_out}")
        self.noise_seed = int(noise_seed)
        self.fixed_pattern_seed = int(fixed_pattern_seed)
        self._generators = PerBackend()  # backend module -> NoiseStream (pickles by name)
        self._patterns = PerBackend()

    @classmethod
    def from_settings(cls, n_out: int, *, pixel_grid: tuple[int, int] | None = None,
                      noise_seed: int = 0, fixed_pattern_seed: int = 1, **settings) -> "Camera":
        """A camera whose :class:`~photon.config.CameraConfig` is built from ``settings``.

        Examples
        --------
        >>> Camera.from_settings(1024, read_noise_e=6.0, adc_bits=12)  # doctest: +SKIP
        """
        config = from_mapping(CameraConfig, settings, "Camera.from_settings")
        return cls(config, n_out, pixel_grid=pixel_grid, noise_seed=noise_seed,
                   fixed_pattern_seed=fixed_pattern_seed)

    # ------------------------------------------------------------------ settings
    @property
    def exposure_us(self) -> float:
        """Exposure time in microseconds (settable: finite and > 0)."""
        return self.config.exposure_us

    @exposure_us.setter
    def exposure_us(self, value: float) -> None:
        self.config = dataclasses.replace(self.config, exposure_us=value)  # validated

    @property
    def n_sensor_pixels(self) -> int:
        """Sensor pixels read (before binning)."""
        return self.n_out * self.binning ** 2

    @property
    def full_scale_dn(self) -> float | None:
        """Largest count the ADC outputs, ``2^bits - 1`` (None for an analog read-out)."""
        return self.config.full_scale_dn

    @property
    def output_dtype(self):
        """uint8 up to 8 bits, uint16 up to 16 bits, float32 for an analog read-out."""
        if self.adc_bits is None:
            return np.float32
        return np.uint8 if self.adc_bits <= 8 else np.uint16

    @property
    def readout(self) -> Readout:
        """Read-out timing of this camera's ``n_out`` outputs (:func:`readout`)."""
        config, timing = self._readout
        if config is not self.config:  # the settings are frozen: computed once per config
            timing = readout(self.config, self.n_out)
            self._readout = (self.config, timing)
        return timing

    @property
    def frame_time_s(self) -> float:
        """Shortest time between frames, s: overhead plus the longer of exposure and read-out."""
        return self.readout.frame_time_s

    def electrons_per_watt(self, wavelength_nm: float) -> float:
        """Mean photo-electrons collected per watt on a sensor pixel during one exposure."""
        return self.exposure_us * 1e-6 * photons_per_joule(wavelength_nm) * self.quantum_efficiency

    def saturation_electrons(self) -> float:
        """Noise-free charge at which the output reaches full scale (the full well or the ADC top).

        The ADC outputs ``2^bits - 1`` once ``K e + offset`` rounds to it, i.e. from
        ``K e + offset = 2^bits - 1.5`` on; infinite for an unlimited camera.
        """
        limits = [math.inf]
        if self.full_well_e is not None:
            limits.append(self.full_well_e)
        if self.adc_bits is not None:
            limits.append((self.full_scale_dn - 0.5 - self.black_offset_dn) / self.gain_dn_per_e)
        return min(limits)

    # ------------------------------------------------------------------ pieces
    def _generator(self, xp):
        """The temporal noise stream on backend ``xp``, seeded ``noise_seed``.

        NumPy: :class:`photon.noise_samplers.FastNoise` (Box-Muller normals drawn in
        blocks, alias-table Poisson counts); CuPy: the device's generator.
        """
        stream = self._generators.get(xp)
        if stream is None:
            stream = FastNoise(self.noise_seed) if xp is np else NoiseStream(xp, self.noise_seed)
            self._generators[xp] = stream
        return stream

    def _fixed_patterns(self, xp):
        """PRNU gain map and DSNU offset map (electrons) on backend ``xp``, or None each."""
        if xp not in self._patterns:
            rng = np.random.Generator(np.random.PCG64(self.fixed_pattern_seed))
            prnu = dsnu = None
            if self.prnu_rms:
                prnu = np.maximum(1.0 + self.prnu_rms * rng.standard_normal(self.n_out), 0.0)
                prnu = asarray_like(prnu.astype(np.float32), xp)
            if self.dsnu_e:
                dsnu = asarray_like((self.dsnu_e * rng.standard_normal(self.n_out)).astype(np.float32), xp)
            self._patterns[xp] = (prnu, dsnu)
        return self._patterns[xp]

    def _bin(self, electrons):
        b = self.binning
        if b == 1:
            return electrons
        rows, cols = self.pixel_grid
        grid = electrons.reshape(electrons.shape[0], rows, b, cols, b)
        return grid.sum(axis=(2, 4)).reshape(electrons.shape[0], self.n_out)

    def dark_electrons(self) -> float:
        """Mean dark electrons per pixel and exposure, ``dark_current_e_per_s * t``."""
        return self.dark_current_e_per_s * self.exposure_us * 1e-6

    def mean_electrons(self, pixel_power_w, wavelength_nm: float, overwrite: bool = False,
                       frame_watts=None):
        """Mean electrons (photo plus dark, PRNU applied) of each output pixel.

        Parameters
        ----------
        pixel_power_w : (batch, n_sensor_pixels) float32 array
            Optical power on each sensor pixel, watts (or in units of ``frame_watts``).
        wavelength_nm
            Wavelength of the light.
        overwrite
            Reuse ``pixel_power_w``'s memory (saves a copy on the hot path).
        frame_watts : (batch,) array, optional
            Watts per unit of ``pixel_power_w`` in each frame (the chain's intensity unit
            times the laser's power that frame): applied in the same pass as the
            electrons per watt.
        """
        xp = array_module(pixel_power_w)
        if pixel_power_w.ndim != 2 or pixel_power_w.shape[1] != self.n_sensor_pixels:
            raise ValueError(f"pixel_power_w: shape {tuple(pixel_power_w.shape)}: expected "
                             f"(batch, {self.n_sensor_pixels}) sensor pixels")
        mu = pixel_power_w if overwrite else pixel_power_w.copy()
        per_watt = self.electrons_per_watt(wavelength_nm)
        if frame_watts is None:
            mu *= np.float32(per_watt)
        else:
            scale = np.asarray(frame_watts, np.float64) * per_watt
            mu *= asarray_like(scale.astype(np.float32), xp)[:, None]
        mu = self._bin(mu)
        prnu, _ = self._fixed_patterns(xp)
        if prnu is not None:
            mu *= prnu
        dark = self.dark_electrons()
        if dark:
            mu += np.float32(dark)
        return mu

    def _noisy_electrons(self, mu, xp):
        """Collected charge plus read noise for mean electrons ``mu`` (float32): shot and read noise.

        ``mu`` is not changed. Where the Gaussian shot model is exact enough (mean at or
        above ``shot_noise_exact_below_e``, more than six standard deviations below the
        full well) one Gaussian of variance ``mu + sigma_r^2`` carries both; below, the
        shot noise is Poisson; near the full well it is Gaussian, clipped to the well,
        then the read noise is added.
        """
        noise = self._generator(xp)
        read2 = self.read_noise_e ** 2
        full = self.full_well_e
        if not self.shot_noise:
            # Photon shot noise off: the photo-electrons are their mean, but dark electrons
            # are a Poisson process of their own (thermal generation), kept either way.
            dark = self.dark_electrons()
            electrons = mu.copy()
            if dark:
                counts = _poisson(noise, xp.full(mu.size, dark, np.float32), dark + 1.0, xp)
                electrons += counts.reshape(mu.shape) - np.float32(dark)
            if full is not None:
                xp.minimum(electrons, np.float32(full), out=electrons)
            if read2:
                electrons += np.float32(self.read_noise_e) * _normals(noise, mu.shape, xp)
            return electrons
        # Pixels the merged Gaussian does not describe exactly, found before the bulk draw.
        limit = np.float32(self.shot_noise_exact_below_e)
        special = mu < limit
        if full is not None:
            near_full = np.float32((math.sqrt(9.0 + full) - 3.0) ** 2)  # mu + 6 sqrt(mu) = well
            if float(mu.max()) > near_full:   # one read of mu, where few frames come near
                special |= mu > near_full
        where = xp.flatnonzero(special)
        # Bulk: one Gaussian of variance mu + sigma_r^2 carries shot and read noise.
        normals = _normals(noise, mu.shape, xp)
        electrons = mu + np.float32(read2)
        xp.sqrt(electrons, out=electrons)
        electrons *= normals
        electrons += mu
        if where.size:
            # The bulk deviate of a special pixel is not used by the bulk: it is the pixel's
            # read noise (one independent N(0, 1) deviate either way).
            electrons.reshape(-1)[where] = self._special_electrons(
                mu.reshape(-1)[where], normals.reshape(-1)[where], noise, xp)
        return electrons

    def _special_electrons(self, m, read_normals, noise, xp):
        """Shot noise drawn exactly (Poisson below the limit, Gaussian clipped to the full
        well near it) plus read noise ``sigma_r * read_normals``, for the 1-D means ``m``."""
        full = self.full_well_e
        limit = float(self.shot_noise_exact_below_e)
        low = m < np.float32(limit)
        n_low = int(xp.count_nonzero(low))
        if n_low == m.size:  # only small means (the usual case): no masks needed
            shot = _poisson(noise, m, limit, xp)
            # Counts of means below the limit never reach a full well of many limits.
            full = None if full is None or full >= 4 * limit + _POISSON_REACH_E else full
        else:
            shot = xp.empty_like(m)
            high = ~low      # near the full well: Gaussian shot noise, clipped to the well
            mh = m[high]
            shot[high] = mh + xp.sqrt(mh) * _normals(noise, mh.shape, xp)
            if n_low:
                shot[low] = _poisson(noise, m[low], limit, xp)
        if full is not None:
            xp.clip(shot, 0, np.float32(full), out=shot)
        if self.read_noise_e:
            read = read_normals * np.float32(self.read_noise_e)
            shot += read
        return shot

    def _adc_counts(self, electrons, xp):
        """Read-out of the charge (overwritten): DSNU, gain, black offset, rounding, clipping.

        Returns counts in :attr:`output_dtype` (float32 for an analog read-out).
        """
        _, dsnu = self._fixed_patterns(xp)
        counts = electrons
        gain = np.float32(self.gain_dn_per_e)
        counts *= gain
        if dsnu is not None:      # K (e + dsnu) + offset, the per-pixel part formed once
            counts += dsnu * gain + np.float32(self.black_offset_dn)
        elif self.black_offset_dn:
            counts += np.float32(self.black_offset_dn)
        if self.adc_bits is None:
            return counts
        xp.rint(counts, out=counts)
        xp.clip(counts, 0, np.float32(self.full_scale_dn), out=counts)
        return counts.astype(self.output_dtype)

    # ------------------------------------------------------------------ read-out
    def __call__(self, pixel_power_w, wavelength_nm: float, overwrite: bool = False,
                 frame_watts=None):
        """Expose and read out one batch of frames.

        Parameters
        ----------
        pixel_power_w : (batch, n_sensor_pixels) float32 array
            Optical power on each sensor pixel, watts (NumPy or CuPy), or in units of
            ``frame_watts``.
        wavelength_nm
            Wavelength of the light.
        overwrite
            Reuse ``pixel_power_w``'s memory.
        frame_watts : (batch,) array, optional
            Watts per unit of ``pixel_power_w`` in each frame (see :meth:`mean_electrons`).

        Returns
        -------
        (batch, n_out) array of counts (DN)
            uint8/uint16 for an ADC, float32 for an analog read-out; same backend.
        """
        xp = array_module(pixel_power_w)
        mu = self.mean_electrons(pixel_power_w, wavelength_nm, overwrite=overwrite,
                                 frame_watts=frame_watts)
        return self._adc_counts(self._noisy_electrons(mu, xp), xp)
