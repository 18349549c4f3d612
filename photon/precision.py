"""Reduced precision for the transmission matrix: TF32 or bf16 TM, exact binary frames.

Model
-----
A tensor-core GEMM in TF32 or bf16 reads each operand with a shorter mantissa (10 or 7
explicit bits instead of float32's 23) and accumulates the products in float32. Binary
DMD frames (0 and 1) are exact in every format, so the only change is the TM itself:
each of its entries rounded to the nearest value of the format (ties to even). The
chain models this by storing (or streaming) the TM already rounded and multiplying in
float32, which on the CPU is the tensor core's arithmetic up to the order of the sums;
on CuPy the same rounded TM is multiplied by cuBLAS with the matching tensor-core compute
type, so the numbers agree with the CPU's and the GPU runs at the format's speed.

Rounding an entry ``x`` with ``p`` mantissa bits adds an error uniform within half a
unit in the last place, ``+-2^(e-p-1)`` for ``x`` in ``[2^e, 2^(e+1))``. With the
mantissa log-uniform within its binade (``E[2^(2e)/x^2] = 3 / (8 ln 2)``), the relative
rms error of an entry is ``eps = 2^-p sqrt(3 / (8 ln 2) / 12) = 0.2123 * 2^-p``:
``2.07e-4`` for TF32 and ``1.66e-3`` for bf16. The field on a pixel sums ``n_in``
entries with independent errors, so its error has ``E|dE|^2 = eps^2 E|E|^2``; for
speckle (``E[I^2] = 2 E[I]^2``) the intensity error ``dI = 2 Re(E* dE)`` then has rms
``eps`` relative to the rms intensity. The speckle law (contrast, exponential
statistics) is unchanged to that order. :func:`photon.speckle.precision_effect` measures
it on a chain, and ``scripts/precision_study.py`` reports it.
"""

from __future__ import annotations

import math

import numpy as np

from .support.arguments import check_choice
from .support.arrays import array_module

__all__ = ["TM_PRECISIONS", "MANTISSA_BITS", "round_to_precision", "check_precision",
           "precise_matmul", "relative_rounding_rms", "cublas_gemm_enums"]

#: Explicit mantissa bits of each supported TM format (float32 keeps all 23).
MANTISSA_BITS = {"float32": 23, "tf32": 10, "bf16": 7}
TM_PRECISIONS = tuple(MANTISSA_BITS)

# The cuBLAS compute type of each precision, by its name in CuPy's cuBLAS module
# (cupy_backends.cuda.libs.cublas, cublasComputeType_t of cublas_api.h): float32
# accumulation with float32, TF32 or bf16 reading of the float32 inputs.
_CUBLAS_COMPUTE_NAMES = {"float32": "CUBLAS_COMPUTE_32F", "tf32": "CUBLAS_COMPUTE_32F_FAST_TF32",
                         "bf16": "CUBLAS_COMPUTE_32F_FAST_16BF"}


def cublas_gemm_enums(precision: str, cublas=None, runtime=None) -> dict:
    """The cuBLAS ``gemmEx`` enums of ``precision``, read from CuPy's own constants.

    Parameters
    ----------
    precision
        One of :data:`TM_PRECISIONS`.
    cublas, runtime
        CuPy's cuBLAS and CUDA runtime modules (``cupy_backends.cuda.libs.cublas`` and
        ``cupy.cuda.runtime``, imported when omitted; a test may pass stand-ins).

    Returns
    -------
    dict
        ``compute_type`` (``cublasComputeType_t``), ``data_type`` (``CUDA_R_32F``, the
        ``cudaDataType_t`` of the float32 operands and output), ``algo``
        (``CUBLAS_GEMM_DEFAULT``), ``op_n`` (``CUBLAS_OP_N``) and ``pointer_mode_host``
        (``CUBLAS_POINTER_MODE_HOST``).

    Raises
    ------
    RuntimeError
        When a constant is missing (a CuPy older than CUDA 11's compute types), naming it.
    """
    check_precision(precision, "precision")
    if cublas is None:
        from cupy_backends.cuda.libs import cublas  # noqa: PLC0415  (GPU path only)
    if runtime is None:
        from cupy.cuda import runtime  # noqa: PLC0415
    wanted = {"compute_type": (cublas, _CUBLAS_COMPUTE_NAMES[precision]),
              "data_type": (runtime, "CUDA_R_32F"),
              "algo": (cublas, "CUBLAS_GEMM_DEFAULT"),
              "op_n": (cublas, "CUBLAS_OP_N"),
              "pointer_mode_host": (cublas, "CUBLAS_POINTER_MODE_HOST")}
    enums = {}
    for key, (module, name) in wanted.items():
        value = getattr(module, name, None)
        if value is None:
            raise RuntimeError(f"{getattr(module, '__name__', module)}.{name} is missing: "
                               f"expected CuPy's cuBLAS constant for tm_precision = "
                               f"{precision!r} (CuPy >= 8 built for CUDA >= 11)")
        enums[key] = int(value)
    return enums


def relative_rounding_rms(precision: str) -> float:
    """Theoretical relative rms error of a TM entry (and of the intensity) in ``precision``."""
    check_precision(precision)
    return 2.0 ** -MANTISSA_BITS[precision] * math.sqrt(3.0 / (8.0 * math.log(2.0)) / 12.0)


def check_precision(precision: str, name: str = "tm_precision") -> str:
    """Return ``precision`` if it is one of :data:`TM_PRECISIONS`, else raise ValueError."""
    return check_choice(name, precision, TM_PRECISIONS)


def round_to_precision(values, precision: str):
    """Round float32 ``values`` to the nearest ``precision`` value (ties to even), in place.

    Works on the float32 bit pattern (NumPy or CuPy): adding ``2^(d-1) - 1`` plus the
    lowest kept bit to the pattern and clearing the ``d = 23 - p`` dropped bits is
    round-to-nearest-even, carries into the exponent included. Returns ``values``.
    """
    check_precision(precision)
    dropped = 23 - MANTISSA_BITS[precision]
    if dropped == 0:
        return values
    if values.dtype != np.float32 or not values.flags.c_contiguous:
        raise ValueError(f"values: dtype {values.dtype}, C-contiguous "
                         f"{values.flags.c_contiguous}: expected a C-contiguous float32 array")
    xp = array_module(values)
    bits = values.view(np.uint32)
    keep_lowest = (bits >> xp.uint32(dropped)) & xp.uint32(1)
    bits += xp.uint32((1 << (dropped - 1)) - 1)
    bits += keep_lowest
    bits &= xp.uint32(~((1 << dropped) - 1) & 0xFFFFFFFF)
    return values


def _blas_view(array, xp):
    """``(array, leading dimension)`` with unit stride along rows (copied only if needed)."""
    if array.dtype == np.float32 and array.strides[1] == 4 and array.strides[0] % 4 == 0 \
            and array.strides[0] >= 4 * array.shape[1]:
        return array, array.strides[0] // 4
    array = xp.ascontiguousarray(array, dtype=np.float32)
    return array, array.shape[1]


def precise_matmul(frames, weights, precision: str, accumulate=None):
    """``frames @ weights`` (float32) with the GEMM's inputs read in ``precision``.

    On NumPy this is the ordinary product: with ``weights`` already rounded
    (:func:`round_to_precision`) and binary frames it equals the tensor-core result up to
    the order of the float32 sums. On CuPy a ``float32`` product is ``cupy.matmul``
    (cuBLAS in float32 unless the user set ``CUPY_TF32=1``); ``tf32`` and ``bf16`` are one
    cuBLAS ``gemmEx`` with float32 operands, output and accumulation and the tensor-core
    compute type of the precision (:func:`cublas_gemm_enums`), reading row-strided views
    in place.

    Parameters
    ----------
    frames : (m, k) float32 array
    weights : (k, n) float32 array
    precision
        One of :data:`TM_PRECISIONS`.
    accumulate : (m, n) float32 array, optional
        Add the product to this array (C-contiguous rows) and return it.

    Returns
    -------
    (m, n) float32 array on the operands' backend.
    """
    xp = array_module(frames, weights)
    check_precision(precision, "precision")
    if accumulate is not None:
        m, n = frames.shape[0], weights.shape[1]
        if accumulate.shape != (m, n) or not accumulate.flags.c_contiguous \
                or accumulate.dtype != np.float32:
            raise ValueError(f"accumulate: shape {accumulate.shape}, dtype {accumulate.dtype}: "
                             f"expected a C-contiguous float32 ({m}, {n}) array")
    if xp is np or precision == "float32":
        product = xp.matmul(frames, weights)
        if accumulate is None:
            return product
        accumulate += product
        return accumulate
    from cupy_backends.cuda.libs import cublas  # noqa: PLC0415  (GPU path only)

    enums = cublas_gemm_enums(precision, cublas, xp.cuda.runtime)
    frames, ld_frames = _blas_view(frames, xp)
    weights, ld_weights = _blas_view(weights, xp)
    m, k = frames.shape
    n = weights.shape[1]
    if accumulate is None:
        out, beta = xp.empty((m, n), np.float32), np.zeros(1, np.float32)
    else:
        out, beta = accumulate, np.ones(1, np.float32)
    one = np.ones(1, np.float32)
    data_type, op_n = enums["data_type"], enums["op_n"]
    handle = xp.cuda.device.get_cublas_handle()
    mode = cublas.getPointerMode(handle)
    cublas.setPointerMode(handle, enums["pointer_mode_host"])
    try:  # row-major out = frames @ weights is column-major out^T = weights^T frames^T
        cublas.gemmEx(handle, op_n, op_n, n, m, k,
                      one.ctypes.data, weights.data.ptr, data_type, ld_weights,
                      frames.data.ptr, data_type, ld_frames,
                      beta.ctypes.data, out.data.ptr, data_type, n,
                      enums["compute_type"], enums["algo"])
    finally:
        cublas.setPointerMode(handle, mode)
    return out
