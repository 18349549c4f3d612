"""lightonml's ``encoding`` package: the encoders live in :mod:`.base`, as in lightonml."""

from . import base

__all__ = ["base"]
