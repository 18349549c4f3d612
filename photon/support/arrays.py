"""Array-backend helpers: the backend follows the data.

Every function here looks at the arrays it is given and answers with the matching
module (NumPy or CuPy). There is no module-level switch: a CuPy array in gives CuPy
arrays out, a NumPy array in gives NumPy arrays out. CuPy is imported lazily, only when
a CuPy array is actually seen, so the CPU path never needs it installed.
"""

from __future__ import annotations

import types

import numpy as np

from .arguments import check_choice

__all__ = [
    "BACKENDS",
    "backend_module",
    "array_module",
    "is_cupy_array",
    "to_numpy",
    "asarray_like",
    "cupy_available",
    "NoiseStream",
    "PerBackend",
    "run_in_pair",
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


_helper_thread = None


def run_in_pair(first, second) -> None:
    """Run ``second()`` on a helper thread while ``first()`` runs here; wait for both.

    For the CPU path's large fills (noise draws, generated matrix blocks): NumPy releases
    the GIL inside them, so two halves of one array fill on two cores. One helper thread
    serves the whole process; a caller whose halves are fixed gets the same numbers
    whatever the timing.
    """
    global _helper_thread
    if _helper_thread is None:
        from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

        _helper_thread = ThreadPoolExecutor(1, thread_name_prefix="photon-half")
    pending = _helper_thread.submit(second)
    first()
    pending.result()


class PerBackend(dict):
    """A cache keyed by array module (``numpy``, ``cupy``) that pickles and deep-copies.

    Modules cannot be pickled; this dict pickles its keys by name (``"numpy"``,
    ``"cupy"``) and maps them back to the modules on load (:func:`backend_module`), so
    an object holding per-backend state (noise streams, fixed patterns) pickles whole.
    """

    def __reduce__(self):
        named = {getattr(key, "__name__", key): value for key, value in self.items()}
        return _per_backend_from_names, (named,)


def _per_backend_from_names(named: dict) -> PerBackend:
    return PerBackend({backend_module(key) if key in BACKENDS else key: value
                       for key, value in named.items()})


class NoiseStream:
    """A seeded stream of noise on one backend.

    On NumPy a large float32 normal draw is filled in two fixed halves by two child
    generators of the seed, the second half on a helper thread (NumPy releases the GIL
    while it fills): the result depends on the seed and the shape only, never on the
    number of cores or on thread timing. On CuPy one device generator draws it all.
    The same seed gives bit-identical streams on the same backend.

    Parameters
    ----------
    xp
        ``numpy`` or ``cupy``.
    seed
        Seed of the stream.
    """

    _PARALLEL_MIN_SIZE = 1 << 16

    def __init__(self, xp: types.ModuleType, seed: int):
        self.xp = xp
        if xp is np:
            children = np.random.SeedSequence(seed).spawn(2)
            self._generators = [np.random.Generator(np.random.SFC64(c)) for c in children]
        else:
            self._generators = [xp.random.default_rng(seed)]

    def standard_normal(self, shape):
        """Float32 N(0, 1) samples of ``shape``."""
        first = self._generators[0]
        size = int(np.prod(shape))
        if self.xp is not np or size < self._PARALLEL_MIN_SIZE:
            return first.standard_normal(shape, dtype=np.float32)
        out = np.empty(shape, np.float32)
        flat = out.reshape(-1)
        half = size // 2
        run_in_pair(lambda: first.standard_normal(dtype=np.float32, out=flat[:half]),
                    lambda: self._generators[1].standard_normal(dtype=np.float32,
                                                                out=flat[half:]))
        return out

    def poisson(self, lam):
        """Poisson samples of mean ``lam`` (an array on this backend)."""
        return self._generators[0].poisson(lam)

    def __getstate__(self) -> dict:
        """The generators' states, with the backend by name (a module cannot be pickled)."""
        state = self.__dict__.copy()
        state["xp"] = self.xp.__name__
        return state

    def __setstate__(self, state: dict) -> None:
        state = dict(state)
        state["xp"] = backend_module(state["xp"])
        self.__dict__.update(state)


BACKENDS = ("numpy", "cupy")


def backend_module(backend: str):
    """The array module of ``backend``: ``"numpy"`` or ``"cupy"`` (imported only when named)."""
    check_choice("backend", backend, BACKENDS)
    if backend == "numpy":
        return np
    try:
        import cupy  # noqa: PLC0415  (GPU path only)
    except ImportError as error:
        raise ValueError(f"backend = {backend!r}: expected CuPy to be installed "
                         "(pip install 'photon-dfa[gpu]')") from error
    return cupy
