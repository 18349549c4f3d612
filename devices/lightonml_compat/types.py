"""lightonml's ``types``: how ``OPU.linear_transform`` rescales its output."""

from __future__ import annotations

from enum import Enum

__all__ = ["OutputRescaling"]


class OutputRescaling(Enum):
    """Rescaling of ``linear_transform``'s output (lightonml's names and values).

    ``variance``: divide by ``sqrt(n_features)`` (unit output variance for inputs of unit
    variance per feature); ``norm``: divide by ``sqrt(n_components)`` (norms kept on
    average); ``none``: no rescaling.
    """

    variance = 1
    norm = 2
    none = 3
