"""Bit-plane linear mode against lightonml's simulator, side by side in one process.

Both project the same real-valued batch ``X`` (n_samples x n_features, standard normal)
linearly onto ``n_components`` outputs through bit planes of ``n_bits`` bits per sign:

* this toolkit: :class:`devices.OPU` on the noise-free ``ideal`` backend with a
  :class:`devices.BitPlaneEncoder` (complement identity: each plane costs two intensity
  frames, which the ideal device computes with one product for both);
* lightonml 1.4.3: ``OPU(simulated=True).linear_transform(X, SeparatedBitPlanEncoder,
  SeparatedBitPlanDecoder)`` (each plane one complex product on its simulated device).

The error of each is the relative Frobenius distance of its output to the exact product
with its own matrix (the toolkit's ``effective_matrix()``, lightonml's ``Re(R)``), after
the best scalar (the two scale their outputs differently): the bit planes' quantization
error, the same for both. Each repeat times one call of each, the order alternating; the
result is the median and range of the per-repeat ratios ``lightonml_s / toolkit_s``
(``speedup``). When lightonml does not import, only the toolkit's figures are reported.

lightonml 1.4.3 predates NumPy 1.24 and setuptools 81: it imports ``pkg_resources`` and
its bit-plane encoder calls ``np.float``. When exactly these are missing, this module
provides them for the lightonml side only (a stand-in ``pkg_resources`` module during the
import, ``numpy.float = float`` during its calls, both removed afterwards) and says so in
the result (``lightonml_shims``).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import statistics
import sys
import time
import types

import numpy as np

from devices import OPU, BitPlaneEncoder, open_device

__all__ = ["time_linear_modes", "import_lightonml"]


@contextlib.contextmanager
def _numpy_float_alias():
    """``numpy.float`` (removed in NumPy 1.24) as ``float`` for the duration, if missing."""
    added = not hasattr(np, "float")
    if added:
        np.float = float
    try:
        yield added
    finally:
        if added:
            del np.float


def _pkg_resources_stand_in() -> types.ModuleType:
    module = types.ModuleType("pkg_resources")

    class ResolutionError(Exception):
        pass

    def get_distribution(name):
        return types.SimpleNamespace(version=importlib.metadata.version(name))

    def require(*_):
        raise ResolutionError("pkg_resources stand-in: no requirement checks")

    module.ResolutionError = ResolutionError
    module.get_distribution = get_distribution
    module.require = require
    return module


def import_lightonml():
    """``(lightonml modules, shims used)`` or ``(None, reason)`` when it cannot be imported.

    Returns
    -------
    (dict or None, list of str or str)
        ``{"OPU": ..., "encoder": ..., "decoder": ..., "version": ...}`` and the shims
        (``"pkg_resources"``, ``"numpy.float"``), or None and why.
    """
    shims = []
    stand_in = None
    try:
        import pkg_resources  # noqa: F401, PLC0415
    except ImportError:
        stand_in = _pkg_resources_stand_in()
        sys.modules["pkg_resources"] = stand_in
        shims.append("pkg_resources")
    try:
        lightonml = importlib.import_module("lightonml")
        opu_module = importlib.import_module("lightonml.opu")
        encoding = importlib.import_module("lightonml.encoding.base")
    except Exception as error:  # noqa: BLE001  (any import failure: report it)
        return None, f"lightonml does not import: {type(error).__name__}: {error}"
    finally:
        if stand_in is not None and sys.modules.get("pkg_resources") is stand_in:
            del sys.modules["pkg_resources"]
    if not hasattr(np, "float"):
        shims.append("numpy.float")
    return {"OPU": opu_module.OPU, "encoder": encoding.SeparatedBitPlanEncoder,
            "decoder": encoding.SeparatedBitPlanDecoder,
            "version": getattr(lightonml, "__version__", "unknown")}, shims


def _relative_error(output, exact) -> float:
    """``|Y - c E| / |c E|`` with the least-squares scalar ``c``."""
    output = np.asarray(output, np.float64)
    exact = np.asarray(exact, np.float64)
    c = float((output * exact).sum() / (exact * exact).sum())
    return float(np.linalg.norm(output - c * exact) / np.linalg.norm(c * exact))


def _toolkit(x, n_components: int, n_bits: int, seed: int):
    device = open_device("ideal", n_in=x.shape[1], n_out=n_components, seed=seed)
    opu = OPU(device, encoder=BitPlaneEncoder(n_bits=n_bits), progress=False).fit(x)
    exact = x.astype(np.float64) @ opu.effective_matrix().astype(np.float64).T

    def run():
        return opu.linear_transform(x)

    return run, exact


def _lightonml(modules, x, n_components: int, n_bits: int):
    opu = modules["OPU"](n_components=n_components, simulated=True,
                         max_n_features=x.shape[1], disable_pbar=True)
    opu.fit1d(n_features=x.shape[1])
    matrix = np.asarray(opu.device.random_matrix)
    exact = x.astype(np.float64) @ matrix.real.astype(np.float64)

    def run():
        with _numpy_float_alias():
            return np.asarray(opu.linear_transform(x, modules["encoder"](precision=n_bits),
                                                   modules["decoder"]))

    return run, exact


def time_linear_modes(n_features: int = 1024, n_components: int = 1024, n_samples: int = 1000,
                      bits=(6, 8), repeats: int = 5, seed: int = 0,
                      with_lightonml: bool = True) -> dict:
    """Seconds and errors of bit-plane linear mode, this toolkit's and lightonml's.

    Parameters
    ----------
    n_features, n_components, n_samples
        The projection and the batch.
    bits
        Bits per sign of the bit planes (one comparison each).
    repeats
        Interleaved timed calls of each (after one untimed call).
    seed
        Seed of ``X`` and of the toolkit's TM.
    with_lightonml
        Time lightonml too when it imports.

    Returns
    -------
    dict
        Per bit depth: ``toolkit_s`` (median), ``toolkit_error``, and with lightonml
        ``lightonml_s``, ``lightonml_error``, ``speedup`` (median of the per-repeat
        ratios ``lightonml_s / toolkit_s``), ``speedup_min``, ``speedup_max``; and
        ``lightonml`` (version or why it was not timed), ``lightonml_shims``, the set-up.
    """
    x = np.random.default_rng(seed).standard_normal((n_samples, n_features)).astype(np.float32)
    modules, shims = import_lightonml() if with_lightonml else (None, "not asked")
    result = {"n_features": n_features, "n_components": n_components, "n_samples": n_samples,
              "repeats": repeats, "goal_speedup_min": 1.5,
              "lightonml": modules["version"] if modules else shims,
              "lightonml_shims": shims if modules else None, "bits": {}}
    for n_bits in bits:
        runs = {"toolkit": _toolkit(x, n_components, n_bits, seed)}
        if modules:
            runs["lightonml"] = _lightonml(modules, x, n_components, n_bits)
        errors = {name: _relative_error(run(), exact) for name, (run, exact) in runs.items()}
        seconds = {name: [] for name in runs}
        for repeat in range(repeats):
            names = list(runs) if repeat % 2 == 0 else list(runs)[::-1]
            for name in names:
                start = time.perf_counter()
                runs[name][0]()
                seconds[name].append(time.perf_counter() - start)
        entry = {"toolkit_s": statistics.median(seconds["toolkit"]),
                 "toolkit_error": errors["toolkit"], "toolkit_samples_s": seconds["toolkit"]}
        if modules:
            ratios = [lo / tk for lo, tk in zip(seconds["lightonml"], seconds["toolkit"])]
            entry.update(lightonml_s=statistics.median(seconds["lightonml"]),
                         lightonml_error=errors["lightonml"],
                         lightonml_samples_s=seconds["lightonml"],
                         speedup=statistics.median(ratios), speedup_min=min(ratios),
                         speedup_max=max(ratios))
        result["bits"][str(n_bits)] = entry
    return result
