"""lightonml's ``internal`` package: only what user scripts import from it."""

from . import simulated_device

__all__ = ["simulated_device"]
