"""Backends by name, and the one factory that opens any device.

Built in: ``ideal`` (:class:`IdealDevice`), ``virtual`` (:class:`VirtualDevice`),
``calibrated`` (:class:`CalibratedDevice`). A preset name or a YAML path opens a
virtual device directly. Drivers add themselves with :func:`register_backend`.
"""

from __future__ import annotations

import pathlib
from typing import Callable

from photon import preset_names

from .calibrated import CalibratedDevice
from .ideal import IdealDevice
from .protocol import OPUDevice
from .virtual import VirtualDevice

__all__ = ["register_backend", "backend_names", "open_device"]

_BACKENDS: dict[str, Callable[..., OPUDevice]] = {
    "ideal": IdealDevice,
    "virtual": VirtualDevice,
    "calibrated": CalibratedDevice,
}


def register_backend(name: str, factory: Callable[..., OPUDevice], *,
                     replace: bool = False) -> None:
    """Make ``open_device(name, **kwargs)`` call ``factory(**kwargs)``.

    Raises
    ------
    ValueError
        When ``name`` is taken (unless ``replace``) or is a preset's name.
    """
    if not replace and (name in _BACKENDS or name in preset_names()):
        raise ValueError(f"name = {name!r}: expected a name not yet taken by a backend or "
                         f"preset ({', '.join(sorted(_BACKENDS) + preset_names())})")
    _BACKENDS[name] = factory


def backend_names() -> list[str]:
    """Names ``open_device`` accepts besides preset names and YAML paths."""
    return sorted(_BACKENDS)


def open_device(name: str = "lab-bench", /, **kwargs) -> OPUDevice:
    """Build and open a device.

    Parameters
    ----------
    name
        A backend name (``ideal``, ``virtual``, ``calibrated`` or a registered driver),
        a preset name (a virtual device of that preset), or a YAML path.
    **kwargs
        Passed to the backend; for a preset or YAML path, field overrides such as
        ``n_in=256`` or ``camera__read_noise_e=5.0``.

    Returns
    -------
    OPUDevice
        An open device (use it in a ``with`` block to close it).
    """
    if name in _BACKENDS:
        device = _BACKENDS[name](**kwargs)
    elif name in preset_names() or pathlib.Path(name).suffix in (".yaml", ".yml"):
        device = VirtualDevice(name, **kwargs)
    else:
        raise ValueError(f"device = {name!r}: expected a backend ({', '.join(backend_names())}), "
                         f"a preset ({', '.join(preset_names())}) or a YAML path")
    return device.open()
