"""Device presets shipped with the package as YAML (``photon/presets/*.yaml``).

* ``ideal``: noise-free virtual OPU (analog camera, ideal polarizer, perfect contrast);
* ``lab-bench``: the 2015 laboratory set-up (532 nm DPSS, DLP7000, TiO2, polarizer,
  8-bit ICX445-class CCD, 31 fps at full frame), realistic noise;
* ``datacenter-opu``: a data-centre OPU (912 x 1140 mirrors, 2 Mpx 8-bit CMV2000-class
  camera, 338 fps at full frame and 376 fps for its 2e6 outputs, 30 W, TM drifting over
  an hour), realistic noise.

The frame rate follows the outputs read (the camera's region of interest); the two
realistic presets have a speckle grain of 2 pixels (``speckle_grain_px: 0.9``).

Each file cites where its values come from.
"""

from __future__ import annotations

import pathlib

from .config import DeviceConfig, load_config

__all__ = ["PRESET_DIR", "preset_names", "preset_path", "load_preset", "resolve_config"]

PRESET_DIR = pathlib.Path(__file__).with_name("presets")


def preset_names() -> list[str]:
    """Names of the shipped presets."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def preset_path(name: str) -> pathlib.Path:
    """Path of the YAML file of preset ``name``."""
    path = PRESET_DIR / f"{name}.yaml"
    if not path.is_file():
        raise ValueError(f"preset = {name!r}: expected one of {', '.join(map(repr, preset_names()))}")
    return path


def load_preset(name: str) -> DeviceConfig:
    """Load and validate the shipped preset ``name``."""
    return load_config(preset_path(name))


def resolve_config(spec, **changes) -> DeviceConfig:
    """Return a :class:`DeviceConfig` from a preset name, a YAML path or a config.

    ``changes`` are applied with :meth:`DeviceConfig.replace` (``n_in=256``,
    ``camera__read_noise_e=5.0``, ...).
    """
    if isinstance(spec, DeviceConfig):
        config = spec
    elif isinstance(spec, (str, pathlib.Path)) and pathlib.Path(spec).suffix in (".yaml", ".yml"):
        config = load_config(spec)
    elif isinstance(spec, str):
        config = load_preset(spec)
    else:
        raise TypeError(f"device = {spec!r}: expected a preset name "
                        f"({', '.join(preset_names())}), a YAML path or a DeviceConfig")
    return config.replace(**changes) if changes else config
