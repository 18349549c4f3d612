"""What a projection job costs on a device: frames, seconds, joules.

Frames follow from the mode and the encoding: intensity mode shows one frame per
binary plane of each input vector; linear mode two, plus the reference frames of each
batch (:data:`devices.linear.REFERENCE_FRAMES`). Seconds are frames times the
device's frame time; joules are seconds times its wall-plug power.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from photon.support.arguments import check_int, check_number

from .linear import REFERENCE_FRAMES

__all__ = ["JobCost", "job_cost"]


@dataclass(frozen=True)
class JobCost:
    """Modelled cost of projecting ``n_vectors`` vectors."""

    mode: str
    n_vectors: int
    planes_per_vector: int
    frames_per_vector: int
    reference_frames: int
    frames: int
    frame_time_s: float
    seconds: float
    electrical_power_w: float
    joules: float

    def as_dict(self) -> dict:
        """Plain-data form (JSON-ready)."""
        return asdict(self)


def job_cost(n_vectors: int, *, mode: str, frame_time_s: float, electrical_power_w: float,
             planes_per_vector: int = 1, batch_size: int = 1024) -> JobCost:
    """Cost of projecting ``n_vectors`` vectors.

    Parameters
    ----------
    n_vectors
        Input vectors.
    mode
        ``"intensity"`` or ``"linear"``.
    frame_time_s, electrical_power_w
        The device's frame time and wall-plug power.
    planes_per_vector
        Binary frames an encoder makes of one vector (1 for binary data).
    batch_size
        Input frames per block (linear mode pays its reference frames per block).
    """
    if mode not in ("intensity", "linear"):
        raise ValueError(f"mode = {mode!r}: expected 'intensity' or 'linear'")
    n_vectors = check_int("n_vectors", n_vectors, low=0)
    planes_per_vector = check_int("planes_per_vector", planes_per_vector)
    batch_size = check_int("batch_size", batch_size)
    frame_time_s = check_number("frame_time_s", frame_time_s, low=0.0, low_open=True, unit="s")
    electrical_power_w = check_number("electrical_power_w", electrical_power_w, low=0.0,
                                      unit="W")
    input_frames = n_vectors * planes_per_vector
    if mode == "intensity":
        per_vector, references = planes_per_vector, 0
    else:
        per_vector = 2 * planes_per_vector
        references = REFERENCE_FRAMES * math.ceil(input_frames / batch_size)
    frames = n_vectors * per_vector + references
    seconds = frames * frame_time_s
    return JobCost(mode, int(n_vectors), int(planes_per_vector), per_vector, references, frames,
                   frame_time_s, seconds, electrical_power_w, seconds * electrical_power_w)
