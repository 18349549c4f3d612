"""The generator's CUDA source, compiled for the CPU and checked against the NumPy generator.

The kernel CuPy compiles (:mod:`photon.counter_rng`) is built here as C with the system C
compiler (skipped only where none exists), so that every CI run, GPU or not, catches a
change to either side: the Philox words must match exactly, the Box-Muller floats within
a few ulps (see ``ULP_TOLERANCE``).
"""

import ctypes
import shutil
import subprocess

import numpy as np
import pytest

from photon.counter_rng import _generate, cuda_source_as_c, matrix_key, philox4x32

COMPILER = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
pytestmark = pytest.mark.skipif(COMPILER is None, reason="no C compiler (cc, gcc, clang) found")

# Both sides compute the same float32 operations in the same order (-ffp-contract=off:
# no fused multiply-add here, none in NumPy); they differ only in the float32 log, cos and
# sin of their libraries. NumPy's SIMD float32 log is within ~3.5 ulp and its sin/cos
# within ~1.5 ulp, the C library's within 1 ulp: the radius sqrt(-2 ln u) carries about
# half of log's error (<= 2.3 ulp), cos/sin add <= 2.5 ulp, and the three roundings that
# follow (x sigma, x cos, x sin) up to 1.5 ulp: at most about 6 ulp of the entry's own
# magnitude. Measured on 2 million entries: 80 % agree exactly, the largest gap is 5 ulp.
ULP_TOLERANCE = 8


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """The CUDA source compiled as a C shared library."""
    folder = tmp_path_factory.mktemp("cuda_as_c")
    source = folder / "photon_generator.c"
    source.write_text(cuda_source_as_c())
    built = folder / "photon_generator.so"
    subprocess.run([COMPILER, "-std=c99", "-O2", "-ffp-contract=off", "-fno-fast-math",
                    "-Wall", "-Werror", "-fPIC", "-shared", "-o", str(built), str(source), "-lm"],
                   check=True, capture_output=True, text=True, timeout=60)
    lib = ctypes.CDLL(str(built))
    lib.photon_fill.restype = None
    lib.photon_fill.argtypes = [ctypes.c_uint32, ctypes.c_uint32, ctypes.c_uint32,
                                ctypes.c_uint32, ctypes.c_uint64, ctypes.c_float,
                                ctypes.c_void_p, ctypes.c_longlong]
    lib.photon_philox_words.restype = None
    lib.photon_philox_words.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_uint32,
                                        ctypes.c_longlong]
    return lib


def _c_words(lib, counters: np.ndarray, key) -> np.ndarray:
    words = np.ascontiguousarray(counters, dtype=np.uint32).copy()
    lib.photon_philox_words(words.ctypes.data, key[0], key[1], words.shape[0])
    return words


def test_the_compiled_cipher_gives_the_published_known_answers(library):
    # Random123's kat_vectors for philox4x32_10 (also in tests/test_counter_rng.py).
    cases = [((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
             ((0xFFFFFFFF,) * 4, (0xFFFFFFFF, 0xFFFFFFFF),
              (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD))]
    for counter, key, expected in cases:
        assert tuple(int(w) for w in _c_words(library, np.array([counter]), key)[0]) == expected


def test_the_compiled_cipher_equals_the_numpy_cipher_word_for_word(library):
    rng = np.random.default_rng(5)
    counters = rng.integers(0, 2**32, size=(4096, 4), dtype=np.uint64)
    counters[:8] = [[0, 0, 0, 0], [2**32 - 1] * 4, [1, 0, 0, 0], [0, 1, 0, 0],
                    [2**31, 2**31, 0, 0], [2**32 - 1, 0, 0, 0], [0, 2**32 - 1, 0, 0], [7, 9, 0, 0]]
    for key in (matrix_key(0), matrix_key(9, (0, 1)), (0xFFFFFFFF, 0xFFFFFFFF)):
        expected = np.stack(philox4x32(*(counters[:, j].copy() for j in range(4)), key), axis=1)
        np.testing.assert_array_equal(_c_words(library, counters, key), expected)


@pytest.mark.parametrize("r0, r1, c0, c1", [
    (0, 40, 0, 130),                                   # the matrix's corner
    (123, 131, 7, 517),                                # odd start: the pair's second entry
    (2**31, 2**31 + 3, 2**20 + 1, 2**20 + 301),        # counters above 2^31
    (2**32 - 2, 2**32, 2**32 - 200, 2**32),            # the last rows and columns
])
def test_the_compiled_kernel_fills_the_block_the_numpy_generator_fills(library, r0, r1, c0, c1):
    key, std = matrix_key(9, (0, 1)), 0.7
    expected, _ = _generate(key, r0, r1, c0, c1, std, np)      # (rows, 2, 2 pairs), float32
    rows, pairs = r1 - r0, expected.shape[2] // 2
    out = np.full(expected.shape, np.nan, np.float32)
    library.photon_fill(key[0], key[1], r0, c0 // 2, pairs, std, out.ctypes.data, rows * pairs)
    assert np.all(np.isfinite(out))
    gap = np.abs(out.astype(np.float64) - expected)
    ulp = np.spacing(np.maximum(np.abs(out), np.abs(expected))).astype(np.float64)
    worst = np.unravel_index(int(np.argmax(gap / ulp)), gap.shape)
    assert np.all(gap <= ULP_TOLERANCE * ulp), (
        f"entry {worst}: C {out[worst]!r}, NumPy {expected[worst]!r}: expected within "
        f"{ULP_TOLERANCE} ulp")
    # Most entries agree to the last bit: the two sides do the same float32 arithmetic.
    assert np.mean(gap == 0) > 0.5
