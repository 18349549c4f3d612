"""Camera following the EMVA 1288 linear sensor model.

For a pixel receiving optical power ``P`` (W) during the exposure ``t``:

* photons ``mu_p = P t lambda / (h c)``;
* photo-electrons Poisson with mean ``QE mu_p (1 + prnu_i)`` plus dark electrons
  ``dark_current t`` (Poisson too), where ``prnu_i`` is a fixed per-pixel pattern;
* the charge saturates at the full well;
* read-out adds Gaussian read noise ``sigma_r`` and a fixed dark-signal pattern ``dsnu_i``
  (electrons);
* the ADC converts with gain ``K`` (DN per electron) onto the black offset, rounds, and
  clips to ``[0, 2^bits - 1]``.

The mean count is ``mu_y = K (mu_e + mu_dark) + offset`` and, away from saturation,
the temporal variance follows the photon-transfer line
``sigma_y^2 = K^2 sigma_r^2 + 1/12 + K (mu_y - mu_y_dark)``.

Charge-domain binning sums ``binning x binning`` sensor pixels before the noise.
Shot noise is exact (Poisson) where the mean is below ``shot_noise_exact_below_e`` and
Gaussian of equal mean and variance above; pixels within six standard deviations of
the full well draw shot and read noise separately so that saturation is exact too.
Elsewhere one Gaussian draw of variance ``mu_e + sigma_r^2`` carries both.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from .config import CameraConfig
from .constants import photons_per_joule
from .support.arrays import NoiseStream, array_module, asarray_like
from .support.schema import check_setting, from_mapping, settings_as_properties

__all__ = ["Camera"]


@settings_as_properties(CameraConfig)
class Camera:
    """An EMVA 1288 camera reading ``n_out`` (binned) pixels.

    Parameters
    ----------
    config
        The sensor's settings (quantum efficiency, exposure, dark current, read noise,
        full well, gain, offset, ADC, PRNU/DSNU, binning, frame rate, shot-noise model),
        validated by :class:`~photon.config.CameraConfig`; each is also readable as an
        attribute (``camera.read_noise_e``) that reads ``camera.config``. Only
        ``exposure_us`` may be set afterwards (it replaces ``config``).
    n_out
        Number of output pixels (after binning).
    pixel_grid
        ``(rows, cols)`` of the output pixels; the sensor region read is
        ``(rows * binning, cols * binning)``.
    noise_seed
        Seed of the temporal noise stream.
    fixed_pattern_seed
        Seed of the PRNU and DSNU patterns.

    See Also
    --------
    from_settings : build the configuration from keyword settings.
    """

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
        self._generators = {}
        self._patterns = {}

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
        return None if self.adc_bits is None else float(2 ** self.adc_bits - 1)

    @property
    def output_dtype(self):
        """uint8 up to 8 bits, uint16 up to 16 bits, float32 for an analog read-out."""
        if self.adc_bits is None:
            return np.float32
        return np.uint8 if self.adc_bits <= 8 else np.uint16

    @property
    def frame_time_s(self) -> float:
        """Shortest time between frames: the longer of the exposure and the read-out period."""
        return max(self.exposure_us * 1e-6, 1.0 / self.max_frame_rate_hz)

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
        if xp not in self._generators:
            self._generators[xp] = NoiseStream(xp, self.noise_seed)
        return self._generators[xp]

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

    def mean_electrons(self, pixel_power_w, wavelength_nm: float, overwrite: bool = False):
        """Mean electrons (photo plus dark, PRNU applied) of each output pixel.

        Parameters
        ----------
        pixel_power_w : (batch, n_sensor_pixels) float32 array
            Optical power on each sensor pixel, watts.
        wavelength_nm
            Wavelength of the light.
        overwrite
            Reuse ``pixel_power_w``'s memory (saves a copy on the hot path).
        """
        xp = array_module(pixel_power_w)
        if pixel_power_w.ndim != 2 or pixel_power_w.shape[1] != self.n_sensor_pixels:
            raise ValueError(f"pixel_power_w: shape {tuple(pixel_power_w.shape)}: expected "
                             f"(batch, {self.n_sensor_pixels}) sensor pixels")
        mu = pixel_power_w if overwrite else pixel_power_w.copy()
        mu *= np.float32(self.electrons_per_watt(wavelength_nm))
        mu = self._bin(mu)
        prnu, _ = self._fixed_patterns(xp)
        if prnu is not None:
            mu *= prnu
        dark = self.dark_current_e_per_s * self.exposure_us * 1e-6
        if dark:
            mu += np.float32(dark)
        return mu

    def _noisy_electrons(self, mu, xp):
        """Collected charge plus read noise for mean electrons ``mu`` (float32)."""
        noise = self._generator(xp)
        read2 = self.read_noise_e ** 2
        full = self.full_well_e
        if not self.shot_noise:
            electrons = mu if full is None else xp.minimum(mu, np.float32(full))
            if read2:
                electrons = electrons + np.float32(self.read_noise_e) * noise.standard_normal(mu.shape)
            return electrons
        # Bulk: one Gaussian of variance mu + sigma_r^2 carries shot and read noise.
        electrons = mu + np.float32(read2)
        xp.sqrt(electrons, out=electrons)
        electrons *= noise.standard_normal(mu.shape)
        electrons += mu
        # Exact treatment where the Gaussian shot model or the merged draw is not exact.
        special = mu < np.float32(self.shot_noise_exact_below_e)
        if full is not None:
            near_full = (math.sqrt(9.0 + full) - 3.0) ** 2  # mu + 6 sqrt(mu) = full well
            special |= mu > np.float32(near_full)
        m = mu[special]
        if m.size:
            low = m < np.float32(self.shot_noise_exact_below_e)
            shot = m + xp.sqrt(m) * noise.standard_normal(m.shape)
            if bool(low.any()):
                shot[low] = noise.poisson(m[low]).astype(np.float32)
            if full is not None:
                xp.clip(shot, 0, np.float32(full), out=shot)
            if read2:
                shot += np.float32(self.read_noise_e) * noise.standard_normal(m.shape)
            electrons[special] = shot
        return electrons

    # ------------------------------------------------------------------ read-out
    def __call__(self, pixel_power_w, wavelength_nm: float, overwrite: bool = False):
        """Expose and read out one batch of frames.

        Parameters
        ----------
        pixel_power_w : (batch, n_sensor_pixels) float32 array
            Optical power on each sensor pixel, watts (NumPy or CuPy).
        wavelength_nm
            Wavelength of the light.
        overwrite
            Reuse ``pixel_power_w``'s memory.

        Returns
        -------
        (batch, n_out) array of counts (DN)
            uint8/uint16 for an ADC, float32 for an analog read-out; same backend.
        """
        xp = array_module(pixel_power_w)
        mu = self.mean_electrons(pixel_power_w, wavelength_nm, overwrite=overwrite)
        electrons = self._noisy_electrons(mu, xp)
        _, dsnu = self._fixed_patterns(xp)
        if dsnu is not None:
            electrons += dsnu
        counts = electrons
        counts *= np.float32(self.gain_dn_per_e)
        if self.black_offset_dn:
            counts += np.float32(self.black_offset_dn)
        if self.adc_bits is None:
            return counts
        xp.rint(counts, out=counts)
        xp.clip(counts, 0, np.float32(self.full_scale_dn), out=counts)
        return counts.astype(self.output_dtype)
