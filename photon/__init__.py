"""photon: physics-level model of an Optical Processing Unit.

``532 nm laser -> DMD (binary amplitude) -> TiO2 layer (transmission matrix R) ->
polarizer -> camera``: :class:`OpticalChain` turns binary DMD frames into camera counts,
``y = camera(|R x|^2)``, with every noise source of the real device. Build one from a
shipped preset, a YAML file or a :class:`DeviceConfig`::

    from photon import build_chain
    chain = build_chain("lab-bench", n_in=256, n_out=512)
    counts = chain.acquire(frames)          # frames: (batch, 256) binary, NumPy or CuPy

See ``docs/design.md`` sections 1, 2 and 6 for the model.
"""

from .support.arrays import array_module, cupy_available, to_numpy
from .budget import exposure_for_mean_fraction, mean_counts_dn, mean_intensity
from .camera import Camera
from .chain import OpticalChain
from .config import (CameraConfig, DeviceConfig, DMDConfig, LaserConfig, MediumConfig,
                     PolarizerConfig, SeedsConfig, SimulationConfig, dump_config, load_config)
from .dmd import DMD, check_binary_frames
from .laser import Laser
from .medium import ScatteringMedium
from .polarizer import Polarizer, speckle_contrast_for_leak
from .presets import load_preset, preset_names, resolve_config
from .support.schema import ConfigError

__all__ = [
    "array_module", "cupy_available", "to_numpy",
    "exposure_for_mean_fraction", "mean_counts_dn", "mean_intensity",
    "Camera", "OpticalChain", "DMD", "check_binary_frames", "Laser", "ScatteringMedium",
    "Polarizer", "speckle_contrast_for_leak",
    "CameraConfig", "DeviceConfig", "DMDConfig", "LaserConfig", "MediumConfig",
    "PolarizerConfig", "SeedsConfig", "SimulationConfig", "dump_config", "load_config",
    "load_preset", "preset_names", "resolve_config", "ConfigError", "build_chain",
]


def build_chain(device="lab-bench", **changes) -> OpticalChain:
    """Build an :class:`OpticalChain` from a preset name, a YAML path or a DeviceConfig.

    ``changes`` override fields: ``n_in=256``, ``camera__read_noise_e=5.0``, ...
    """
    return OpticalChain.from_config(resolve_config(device, **changes))
