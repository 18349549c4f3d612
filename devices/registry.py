"""Backends by name, and the one factory that opens any device.

Built in: ``ideal`` (:class:`IdealDevice`), ``virtual`` (:class:`VirtualDevice`),
``calibrated`` (:class:`CalibratedDevice`). A preset name, a YAML path or a
:class:`photon.DeviceConfig` opens a virtual device directly. Drivers add themselves
with :func:`register_backend`. :func:`check_device_name` tells whether
:func:`open_device` knows a name without building anything.
"""

from __future__ import annotations

import os
import pathlib
from typing import Callable

from photon import DeviceConfig, preset_names

from .calibrated import CalibratedDevice
from .ideal import IdealDevice
from .protocol import OPUDevice
from .virtual import VirtualDevice

__all__ = ["register_backend", "backend_names", "check_device_name", "open_device"]

_BACKENDS: dict[str, Callable[..., OPUDevice]] = {
    "ideal": IdealDevice,
    "virtual": VirtualDevice,
    "calibrated": CalibratedDevice,
}


def register_backend(name: str, factory: Callable[..., OPUDevice], *,
                     replace: bool = False) -> None:
    """Make ``open_device(name, **kwargs)`` call ``factory(**kwargs)``.

    Parameters
    ----------
    name
        A non-empty name without path separators or a YAML suffix (it must not be
        mistaken for a file).
    factory
        A callable (a class or a function) returning an :class:`OPUDevice`; what it
        returns is checked when the device is opened.
    replace
        Replace a backend of the same name.

    Raises
    ------
    TypeError
        When ``name`` is not a string or ``factory`` is not callable.
    ValueError
        When ``name`` is empty, looks like a path, is taken (unless ``replace``) or is a
        preset's name.
    """
    if not isinstance(name, str):
        raise TypeError(f"name = {name!r}: expected a string")
    if not name.strip() or os.sep in name or "/" in name \
            or pathlib.Path(name).suffix in (".yaml", ".yml"):
        raise ValueError(f"name = {name!r}: expected a non-empty name that is not a path "
                         "or a YAML file name")
    if not callable(factory):
        raise TypeError(f"factory = {factory!r}: expected a callable returning an OPUDevice "
                        "(a class or a function)")
    if not isinstance(replace, bool):
        raise TypeError(f"replace = {replace!r}: expected True or False")
    if not replace and (name in _BACKENDS or name in preset_names()):
        raise ValueError(f"name = {name!r}: expected a name not yet taken by a backend or "
                         f"preset ({', '.join(sorted(_BACKENDS) + preset_names())})")
    _BACKENDS[name] = factory


def backend_names() -> list[str]:
    """Names ``open_device`` accepts besides preset names and YAML paths."""
    return sorted(_BACKENDS)


def check_device_name(name) -> str:
    """Return ``name`` (a string or path) if :func:`open_device` knows it; build nothing.

    Known: a backend name, a preset name, or a path ending in ``.yaml``/``.yml`` (the
    file itself is read only when the device is opened).

    Raises
    ------
    TypeError
        When ``name`` is neither a string nor a path.
    ValueError
        When it names no backend, preset or YAML file.
    """
    if isinstance(name, os.PathLike):
        name = os.fspath(name)
    if not isinstance(name, str):
        raise TypeError(f"device = {name!r}: expected a device name (a backend, a preset or a "
                        "YAML path)")
    if name in _BACKENDS or name in preset_names() or pathlib.Path(name).suffix in (".yaml",
                                                                                  ".yml"):
        return name
    raise ValueError(f"device = {name!r}: expected a backend ({', '.join(backend_names())}), "
                     f"a preset ({', '.join(preset_names())}) or a YAML path")


def open_device(name: str | DeviceConfig = "lab-bench", /, **kwargs) -> OPUDevice:
    """Build and open a device.

    Parameters
    ----------
    name
        A backend name (``ideal``, ``virtual``, ``calibrated`` or a registered driver),
        a preset name (a virtual device of that preset), a YAML path, or a
        :class:`photon.DeviceConfig` (a virtual device of that configuration).
    **kwargs
        Passed to the backend; for a preset, YAML path or config, field overrides such
        as ``n_in=256`` or ``camera__read_noise_e=5.0``.

    Returns
    -------
    OPUDevice
        An open device (use it in a ``with`` block to close it).
    """
    if isinstance(name, DeviceConfig):
        return VirtualDevice(name, **kwargs).open()
    name = check_device_name(name)
    if name in _BACKENDS:
        device = _BACKENDS[name](**kwargs)
        if not isinstance(device, OPUDevice):
            raise TypeError(f"backend {name!r}: its factory returned {type(device).__name__}: "
                            "expected an OPUDevice")
    else:
        device = VirtualDevice(name, **kwargs)
    return device.open()
