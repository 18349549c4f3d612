"""Array-backend helpers: the backend follows the data.

Every function here looks at the arrays it is given and answers with the matching
module (NumPy or CuPy). There is no module-level switch: a CuPy array in gives CuPy
arrays out, a NumPy array in gives NumPy arrays out. CuPy is imported lazily, only when
a CuPy array is actually seen, so the CPU path never needs it installed.
"""

from __future__ import annotations

import types

import numpy as np

__all__ = [
    "array_module",
    "is_cupy_array",
    "to_numpy",
    "asarray_like",
    "cupy_available",
    "noise_generator",
]


def is_cupy_array(array) -> bool:
    """Return True when ``array`` is a CuPy ndarray (checked without importing CuPy)."""
    return type(array).__module__.split(".")[0] == "cupy"


def array_module(*arrays) -> types.ModuleType:
    """Return ``cupy`` if any argument is a CuPy array, else ``numpy``.

    Parameters
    ----------
    *arrays
        Arrays (or anything else: non-arrays are ignored).
    """
    for array in arrays:
        if is_cupy_array(array):
            import cupy  # noqa: PLC0415  (lazy: only needed on the GPU path)

            return cupy
    return np


def to_numpy(array) -> np.ndarray:
    """Return ``array`` as a NumPy array, copying from the GPU when needed."""
    if is_cupy_array(array):
        return array.get()
    return np.asarray(array)


def asarray_like(array, xp: types.ModuleType):
    """Return ``array`` on the backend ``xp`` (a no-op when it is already there)."""
    if xp is np:
        return to_numpy(array)
    return xp.asarray(array)


def cupy_available() -> bool:
    """Return True when CuPy imports and sees at least one CUDA device."""
    try:
        import cupy  # noqa: PLC0415

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # ImportError, CUDA driver errors: no usable GPU either way
        return False


def noise_generator(xp: types.ModuleType, seed: int):
    """Return a seeded random generator living on backend ``xp``.

    NumPy gets a PCG64 :class:`numpy.random.Generator`; CuPy gets its own
    :class:`cupy.random.Generator`. The same seed gives bit-identical streams on the
    same backend; the two backends' streams differ from each other.
    """
    if xp is np:
        return np.random.Generator(np.random.PCG64(seed))
    return xp.random.default_rng(seed)
