"""Acquiring many frames from a device in memory-bounded chunks, with progress."""

from __future__ import annotations

import math

import numpy as np

from photon import array_module
from photon.support.progress import Progress

__all__ = ["acquire_all"]

_MAX_ELEMENTS = 1 << 24  # frames x outputs per acquisition (64 MiB of float32)


def acquire_all(device, frames: np.ndarray, *, description: str = "acquiring",
                progress: bool | None = None) -> np.ndarray:
    """Acquire ``frames`` (m, n_in) and return float64 counts (m, n_out) on their backend.

    Parameters
    ----------
    device
        An open :class:`devices.OPUDevice`.
    frames
        Binary frames (NumPy or CuPy).
    description
        Label of the progress bar.
    progress
        True, False, or None for a bar on four chunks or more.
    """
    xp = array_module(frames)
    m = frames.shape[0]
    chunk = max(1, _MAX_ELEMENTS // device.n_out)
    out = xp.empty((m, device.n_out), np.float64)
    with Progress(math.ceil(m / chunk), description, enabled=progress, unit="chunk") as bar:
        for start in range(0, m, chunk):
            counts = device.acquire(frames[start:start + chunk])
            out[start:start + counts.shape[0]] = counts
            bar.update()
    return out

