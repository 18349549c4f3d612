"""Counter-based circular complex Gaussians: the same numbers on the CPU and the GPU.

Model
-----
Entry ``(r, c)`` of a matrix is a pure function of the matrix's 64-bit key and of
``(r, c)``: no generator state, no draw order. The Philox4x32-10 block cipher (Salmon
et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011; the generator cuRAND
and Random123 call ``philox4x32_10``) maps the counter ``(c // 2, r, 0, 0)`` and the key
to four uniform 32-bit words ``(a, b, c, d)``; a Box-Muller transform turns ``(a, b)``
into entry ``2 k`` and ``(c, d)`` into entry ``2 k + 1``:

    u = (a + 1) 2^-32 in (0, 1],   theta = 2 pi b 2^-32,
    z = sqrt(-2 ln u) exp(i theta) * std,

which is exactly a circular complex Gaussian with ``E|z|^2 = 2 std^2``: ``|z|^2 / (2
std^2)`` is exponential (the speckle law) and the phase uniform. The radius is cut at
``sqrt(64 ln 2) = 6.66`` standard deviations (the smallest ``u`` is ``2^-32``), i.e.
``|z|^2`` above 22.2 times its mean never occurs, where the exact law puts 2.3e-10 of
its mass.

Backends
--------
With NumPy the cipher runs as whole-array integer operations on cache-sized chunks;
with CuPy one elementwise CUDA kernel computes each entry in registers. Both perform
the same integer arithmetic (bit-identical words) and the same float32 operations in
the same order, so the matrices agree to the last few ulps of the float32 ``log``,
``cos`` and ``sin`` of each library (relative differences ~1e-7). The kernel's source is
one text, device functions (:data:`_CUDA_PREAMBLE`) and an elementwise body
(:data:`_CUDA_BODY`); :func:`cuda_source_as_c` wraps that same text for a C compiler, so
the tests check it against the NumPy generator on any machine (``tests/test_cuda_source.py``).
"""

from __future__ import annotations

import math

import numpy as np

from .support.arrays import array_module, run_in_pair

__all__ = ["philox4x32", "matrix_key", "circular_gaussian_block", "circular_gaussian_side_by_side",
           "cuda_source_as_c"]

# Philox4x32 multipliers and Weyl key increments (Salmon et al. 2011, table 2).
_M0, _M1 = 0xD2511F53, 0xCD9E8D57
_W0, _W1 = 0x9E3779B9, 0xBB67AE85
_ROUNDS = 10
_MASK32 = 0xFFFFFFFF
_TWO_POW_M32 = np.float32(2.0 ** -32)
_TWO_PI_TWO_POW_M32 = np.float32(2.0 * math.pi * 2.0 ** -32)
_CHUNK_COUNTERS = 1 << 15   # NumPy: counters per chunk, so that a round's arrays stay in cache
_PARALLEL_MIN_COUNTERS = 1 << 17   # NumPy: larger blocks are filled by two threads


def matrix_key(seed: int, stream: tuple = ()) -> tuple[int, int]:
    """Return the 64-bit Philox key (two 32-bit words) of matrix ``stream`` of ``seed``.

    The key is hashed from ``seed`` and the stream numbers by NumPy's ``SeedSequence``,
    so nearby seeds and streams give unrelated keys.
    """
    words = np.random.SeedSequence(int(seed), spawn_key=tuple(int(s) for s in stream)
                                   ).generate_state(2, np.uint32)
    return int(words[0]), int(words[1])


def philox4x32(c0, c1, c2, c3, key: tuple[int, int]):
    """Philox4x32-10 of the counters ``(c0, c1, c2, c3)`` under ``key`` (NumPy reference).

    Parameters
    ----------
    c0, c1, c2, c3 : uint64 arrays of one shape holding 32-bit values
        The four counter words (overwritten).
    key
        The two 32-bit key words.

    Returns
    -------
    tuple of four uint64 arrays holding the 32-bit output words.
    """
    xp = array_module(c0)
    m0, m1, shift, mask = (xp.uint64(v) for v in (_M0, _M1, 32, _MASK32))
    k0, k1 = key
    p0, p1 = xp.empty_like(c0), xp.empty_like(c0)
    for _ in range(_ROUNDS):
        xp.multiply(c0, m0, out=p0)           # exact: 32-bit by 32-bit fits in 64 bits
        xp.multiply(c2, m1, out=p1)
        xp.bitwise_xor(c1, xp.uint64(k0), out=c1)
        xp.bitwise_xor(c3, xp.uint64(k1), out=c3)
        xp.right_shift(p1, shift, out=c0)     # new c0 = hi(M1 c2) ^ c1 ^ k0
        xp.bitwise_xor(c0, c1, out=c0)
        xp.bitwise_and(p1, mask, out=c1)      # new c1 = lo(M1 c2)
        xp.right_shift(p0, shift, out=c2)     # new c2 = hi(M0 c0) ^ c3 ^ k1
        xp.bitwise_xor(c2, c3, out=c2)
        xp.bitwise_and(p0, mask, out=c3)      # new c3 = lo(M0 c0)
        k0, k1 = (k0 + _W0) & _MASK32, (k1 + _W1) & _MASK32
    return c0, c1, c2, c3


def _box_muller(radius_word, angle_word, std, out_real, out_imag) -> None:
    """Write ``std sqrt(-2 ln u) (cos, sin)(theta)`` of two uint64 word arrays (float32)."""
    u = radius_word.astype(np.float32)
    u += np.float32(1.0)
    u *= _TWO_POW_M32
    radius = np.log(u)
    radius *= np.float32(-2.0)
    np.sqrt(radius, out=radius)
    radius *= np.float32(std)
    theta = angle_word.astype(np.float32)
    theta *= _TWO_PI_TWO_POW_M32
    np.multiply(radius, np.cos(theta), out=out_real)
    np.multiply(radius, np.sin(theta), out=out_imag)


def _fill_rows(out, key, r0, a, b, p0, p1, std) -> None:
    """Fill rows ``a:b`` of the block ``out`` (``(rows, 2, 2 pairs)``, first row = matrix row ``r0``)."""
    pairs = p1 - p0
    chunk_rows = max(1, _CHUNK_COUNTERS // pairs)
    pair_index = np.arange(p0, p1, dtype=np.uint64)
    for start in range(a, b, chunk_rows):
        stop = min(b, start + chunk_rows)
        shape = (stop - start, pairs)
        c0 = np.empty(shape, np.uint64)
        c0[...] = pair_index
        c1 = np.empty(shape, np.uint64)
        c1[...] = np.arange(r0 + start, r0 + stop, dtype=np.uint64)[:, None]
        words = philox4x32(c0, c1, np.zeros(shape, np.uint64), np.zeros(shape, np.uint64), key)
        real, imag = out[start:stop, 0], out[start:stop, 1]
        _box_muller(words[0], words[1], std, real[:, 0::2], imag[:, 0::2])
        _box_muller(words[2], words[3], std, real[:, 1::2], imag[:, 1::2])


def _block_numpy(key, r0, r1, p0, p1, std) -> np.ndarray:
    """The block as ``(rows, real/imag, 2 pairs)``; two threads share a large one.

    Every entry is a function of its own counter, so the split changes nothing in the
    result (NumPy releases the GIL inside its array operations).
    """
    rows, pairs = r1 - r0, p1 - p0
    out = np.empty((rows, 2, 2 * pairs), np.float32)
    if rows < 2 or rows * pairs < _PARALLEL_MIN_COUNTERS:
        _fill_rows(out, key, r0, 0, rows, p0, p1, std)
        return out
    half = rows // 2
    run_in_pair(lambda: _fill_rows(out, key, r0, 0, half, p0, p1, std),
                lambda: _fill_rows(out, key, r0, half, rows, p0, p1, std))
    return out


# The generator's CUDA source, in two parts: device functions (the kernel's preamble) and
# the elementwise body (CuPy's ElementwiseKernel supplies ``i``, the index of the counter in
# the block, and the named parameters). The same text is compiled for the CPU by
# :func:`cuda_source_as_c` so that a test checks it against the NumPy generator above.
_CUDA_PREAMBLE = r"""
__device__ __forceinline__ void photon_philox4x32_10(unsigned int c[4], unsigned int ka,
                                                     unsigned int kb)
{
    for (int step = 0; step < 10; ++step) {
        const unsigned long long q0 = (unsigned long long)c[0] * 0xD2511F53ull;
        const unsigned long long q1 = (unsigned long long)c[2] * 0xCD9E8D57ull;
        const unsigned int n0 = (unsigned int)(q1 >> 32) ^ c[1] ^ ka;
        const unsigned int n2 = (unsigned int)(q0 >> 32) ^ c[3] ^ kb;
        c[1] = (unsigned int)q1;
        c[3] = (unsigned int)q0;
        c[0] = n0;
        c[2] = n2;
        ka += 0x9E3779B9u;
        kb += 0xBB67AE85u;
    }
}

__device__ __forceinline__ void photon_box_muller(unsigned int radius_word,
                                                  unsigned int angle_word, float sigma,
                                                  float *real, float *imag)
{
    float u = (float)radius_word;
    u += 1.0f;
    u *= 2.3283064365386963e-10f;
    float radius = logf(u);
    radius *= -2.0f;
    radius = sqrtf(radius);
    radius *= sigma;
    float theta = (float)angle_word;
    theta *= 1.4629180792671596e-09f;
    *real = radius * cosf(theta);
    *imag = radius * sinf(theta);
}
"""
_CUDA_BODY = r"""
    const unsigned long long local_pair = (unsigned long long)i % pairs;
    const unsigned long long local_row = (unsigned long long)i / pairs;
    unsigned int words[4];
    words[0] = pair0 + (unsigned int)local_pair;
    words[1] = row0 + (unsigned int)local_row;
    words[2] = 0u;
    words[3] = 0u;
    photon_philox4x32_10(words, k0, k1);
    // out is (rows, 2, 2 pairs): each row holds its real parts, then its imaginary parts
    const unsigned long long at = local_row * 4ull * pairs + 2ull * local_pair;
    for (int e = 0; e < 2; ++e) {
        photon_box_muller(words[2 * e], words[2 * e + 1], sigma,
                          &out[at + e], &out[at + 2ull * pairs + e]);
    }
"""
_CUDA_PARAMS = "uint32 k0, uint32 k1, uint32 row0, uint32 pair0, uint64 pairs, float32 sigma"

# The CUDA-isms of the source above, for a C99 compiler. CuPy compiles without
# ``-use_fast_math``, so ``logf``, ``sqrtf``, ``cosf`` and ``sinf`` are CUDA's accurate
# functions (``sqrtf`` correctly rounded; ``logf`` within 1 ulp, ``cosf``/``sinf`` within
# 2 ulp, CUDA Programming Guide, "Mathematical functions"), mirrored by the C library's.
_C_SHIM_HEAD = r"""
#include <math.h>
#define __device__ static
#define __forceinline__ inline
"""
_C_SHIM_TAIL = r"""
/* The elementwise kernel as a loop over i: fills the (rows, 2, 2 pairs) block. */
void photon_fill(unsigned int k0, unsigned int k1, unsigned int row0, unsigned int pair0,
                 unsigned long long pairs, float sigma, float *out, long long n)
{
    for (long long i = 0; i < n; ++i) {
%(body)s
    }
}

/* The cipher alone: n counters (4 words each, in place) under the key (k0, k1). */
void photon_philox_words(unsigned int *counters, unsigned int k0, unsigned int k1, long long n)
{
    for (long long i = 0; i < n; ++i) {
        photon_philox4x32_10(counters + 4 * i, k0, k1);
    }
}
"""


def cuda_source_as_c() -> str:
    """Return the generator's CUDA source as one C99 translation unit (for a CPU check).

    The device functions and the elementwise body are the very strings CuPy compiles;
    a small shim defines the CUDA qualifiers (``__device__`` as ``static``,
    ``__forceinline__`` as ``inline``) and wraps the body in a loop over the kernel's
    index ``i``. Compiled as a shared library (``cc -std=c99 -O2 -ffp-contract=off
    -shared -fPIC ... -lm``) it exports

    ``void photon_fill(uint32 k0, uint32 k1, uint32 row0, uint32 pair0, uint64 pairs,
    float sigma, float *out, int64 n)``
        The kernel over ``i = 0 .. n - 1``: ``out`` is the ``(rows, 2, 2 pairs)`` float32
        block of :func:`circular_gaussian_block`'s layout, ``n = rows * pairs``.
    ``void photon_philox_words(uint32 *counters, uint32 k0, uint32 k1, int64 n)``
        Philox4x32-10 of ``n`` counters of 4 words each, in place.

    Returns
    -------
    str
        The C source.
    """
    return _C_SHIM_HEAD + _CUDA_PREAMBLE + _C_SHIM_TAIL % {"body": _CUDA_BODY}


_cuda_kernels = {}


def _block_cupy(xp, key, r0, r1, p0, p1, std):
    kernel = _cuda_kernels.get(xp)
    if kernel is None:
        kernel = xp.ElementwiseKernel(_CUDA_PARAMS, "raw float32 out", _CUDA_BODY,
                                      "photon_philox_circular_gaussian",
                                      preamble=_CUDA_PREAMBLE)
        _cuda_kernels[xp] = kernel
    rows, pairs = r1 - r0, p1 - p0
    out = xp.empty((rows, 2, 2 * pairs), np.float32)
    kernel(np.uint32(key[0]), np.uint32(key[1]), np.uint32(r0), np.uint32(p0),
           np.uint64(pairs), np.float32(std), out, size=rows * pairs)
    return out


def _generate(key, r0, r1, c0, c1, std, xp):
    """The ``(rows, 2, even width)`` array holding the block and the column offset in it."""
    if not (0 <= r0 <= r1 <= 2**32 and 0 <= c0 <= c1 <= 2**32):
        raise ValueError(f"block rows {r0}:{r1}, columns {c0}:{c1}: expected "
                         "0 <= start <= stop <= 2^32")
    p0, p1 = c0 // 2, (c1 + 1) // 2
    if r1 == r0 or c1 == c0:
        return xp.zeros((r1 - r0, 2, 0), np.float32), 0
    if xp is np:
        return _block_numpy(key, r0, r1, p0, p1, std), c0 - 2 * p0
    return _block_cupy(xp, key, r0, r1, p0, p1, std), c0 - 2 * p0


def circular_gaussian_block(key: tuple[int, int], r0: int, r1: int, c0: int, c1: int,
                            std: float, xp=np):
    """Return ``(real, imag)`` of rows ``r0:r1``, columns ``c0:c1`` of the keyed matrix.

    Parameters
    ----------
    key
        The matrix's key (:func:`matrix_key`).
    r0, r1, c0, c1
        The block; rows and columns below ``2^32``.
    std
        Standard deviation of the real and of the imaginary part (``E|z|^2 = 2 std^2``).
    xp
        ``numpy`` or ``cupy``: where the block is computed and returned.

    Returns
    -------
    real, imag : float32 arrays of shape ``(r1 - r0, c1 - c0)``
        Views with unit stride along a row (ready for a GEMM).
    """
    out, offset = _generate(key, r0, r1, c0, c1, std, xp)
    if out.shape[2] == 0:
        return xp.zeros((r1 - r0, c1 - c0), np.float32), xp.zeros((r1 - r0, c1 - c0), np.float32)
    columns = slice(offset, offset + c1 - c0)
    return out[:, 0, columns], out[:, 1, columns]


def circular_gaussian_side_by_side(key: tuple[int, int], r0: int, r1: int, c0: int, c1: int,
                                   std: float, xp=np):
    """Return the block as one C-contiguous ``(r1 - r0, 2 (c1 - c0))`` float32 array.

    Each row holds the real parts of columns ``c0:c1`` then their imaginary parts: the
    operand of one real GEMM that yields both quadratures of the field. With ``c0`` and
    ``c1`` even it is the generated array itself (no copy).
    """
    out, offset = _generate(key, r0, r1, c0, c1, std, xp)
    width = c1 - c0
    if offset == 0 and out.shape[2] == width:
        return out.reshape(r1 - r0, 2 * width)
    return xp.ascontiguousarray(out[:, :, offset:offset + width]).reshape(r1 - r0, 2 * width)
