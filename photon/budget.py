"""Photon budget: the mean camera signal a configuration gives, and the exposure for a target.

For frames with a fraction ``f`` of the features on, the mean field intensity per
polarization on a sensor pixel is ``f + (1 - f) leak^2 + held_on / n_mirrors`` (field
units of :mod:`photon.medium`), times ``1 + eps`` behind a polarizer of leak ``eps`` (2
without one), times ``binning^2`` after binning. The chain's ``watts_per_unit_intensity``
and the camera's electrons per watt turn it into electrons, and ``K`` into DN.

For fully developed (exponential) speckle, a pixel exceeds ``c`` times the mean with
probability ``exp(-c)``: with the mean at ``1 / 6.9`` of the signal range 99.9 % of the
pixels stay below saturation (docs/design.md section 2).
"""

from __future__ import annotations

import math

from .config import DeviceConfig
from .constants import photons_per_joule
from .laser import attenuated_power_w

__all__ = [
    "UNSATURATED_MEAN_FRACTION",
    "mean_intensity",
    "mean_signal_electrons",
    "mean_counts_dn",
    "exposure_for_mean_fraction",
    "saturated_fraction_exponential",
    "watts_per_unit_intensity",
]

UNSATURATED_MEAN_FRACTION = 1.0 / 6.9  # exp(-6.9) = 0.1 % of exponential speckle above


def mean_intensity(config: DeviceConfig, on_fraction: float = 0.5) -> float:
    """Mean field intensity per output pixel for frames with ``on_fraction`` of features on."""
    if not 0.0 <= on_fraction <= 1.0:
        raise ValueError(f"on_fraction = {on_fraction!r}: expected a fraction in [0, 1]")
    dmd = config.dmd
    leak2 = 0.0 if dmd.contrast is None else 1.0 / dmd.contrast
    n_mirrors = config.n_in * dmd.macropixel_mirrors
    per_pol = on_fraction + (1.0 - on_fraction) * leak2 + dmd.held_on_mirrors / n_mirrors
    if config.polarizer is None:
        pol_factor = 2.0
    else:
        er = config.polarizer.extinction_ratio
        pol_factor = 1.0 + (0.0 if er is None else 1.0 / er)
    return per_pol * pol_factor * config.camera.binning ** 2


def watts_per_unit_intensity(laser_power_w: float, fill_factor: float, used_mirrors: int,
                             illuminated_mirrors: int, transmission: float,
                             sensor_pixels: int) -> float:
    """Power on a sensor pixel per unit of field intensity (one polarization), watts.

    ``P fill_factor (used / illuminated) transmission / (2 sensor_pixels)``: the laser
    power spread over the illuminated mirrors, the used ones' share sent on, the medium's
    transmission onto the sensor, split evenly between two polarizations.
    """
    return (laser_power_w * fill_factor * used_mirrors / illuminated_mirrors * transmission
            / (2.0 * sensor_pixels))


def _config_watts_per_unit_intensity(config: DeviceConfig) -> float:
    dmd, laser, cam = config.dmd, config.laser, config.camera
    used = config.n_in * dmd.macropixel_mirrors
    return watts_per_unit_intensity(attenuated_power_w(laser.power_mw, laser.nd_filter_od),
                                    dmd.fill_factor, used, used + dmd.held_on_mirrors,
                                    config.medium.transmission,
                                    cam.sensor_rows * cam.sensor_cols)


def _photo_electrons_per_s(config: DeviceConfig, on_fraction: float) -> float:
    cam = config.camera
    watts = mean_intensity(config, on_fraction) * _config_watts_per_unit_intensity(config)
    return watts * photons_per_joule(config.laser.wavelength_nm) * cam.quantum_efficiency


def mean_signal_electrons(config: DeviceConfig, on_fraction: float = 0.5) -> float:
    """Mean photo-electrons per output pixel (dark signal excluded)."""
    return _photo_electrons_per_s(config, on_fraction) * config.camera.exposure_us * 1e-6


def mean_counts_dn(config: DeviceConfig, on_fraction: float = 0.5) -> float:
    """Mean camera count (DN) before clipping, dark signal and black offset included."""
    cam = config.camera
    dark = cam.dark_current_e_per_s * cam.exposure_us * 1e-6
    return cam.gain_dn_per_e * (mean_signal_electrons(config, on_fraction) + dark) + cam.black_offset_dn


def exposure_for_mean_fraction(config: DeviceConfig,
                               fraction: float = UNSATURATED_MEAN_FRACTION,
                               on_fraction: float = 0.5) -> float:
    """Exposure (us) that puts the mean signal at ``fraction`` of the usable range.

    The usable range runs from the black offset to the first limit the signal meets:
    the ADC's full scale or the full well.
    """
    cam = config.camera
    limits = []
    if cam.full_scale_e is not None:
        limits.append(cam.full_scale_e)
    if cam.full_well_e is not None:
        limits.append(cam.full_well_e)
    if not limits:
        raise ValueError("config.camera: adc_bits and full_well_e are both null: an "
                         "unlimited camera has no full scale to aim at")
    target_e = fraction * min(limits)
    rate = _photo_electrons_per_s(config, on_fraction) + cam.dark_current_e_per_s
    return target_e / rate * 1e6


def saturated_fraction_exponential(saturation_e: float, mean_e: float) -> float:
    """Fraction of exponential-speckle pixels of mean ``mean_e`` above ``saturation_e``."""
    return math.exp(-saturation_e / mean_e)
