"""Reduced-precision TM: exact rounding, the error law it predicts, speckle unchanged."""

import numpy as np
import pytest

from photon import build_chain, resolve_config
from photon.precision import MANTISSA_BITS, relative_rounding_rms, round_to_precision
from photon.speckle import precision_effect
from tests.stats import Z


def _reference_rounding(x: np.ndarray, bits: int) -> np.ndarray:
    """Round to ``bits`` explicit mantissa bits in float64 arithmetic (half to even)."""
    mantissa, exponent = np.frexp(x.astype(np.float64))     # |mantissa| in [0.5, 1)
    scale = 2.0 ** (bits + 1)
    return np.ldexp(np.round(mantissa * scale) / scale, exponent).astype(np.float32)


@pytest.mark.parametrize("precision", ["tf32", "bf16"])
def test_rounding_is_round_to_nearest_even_of_the_format(precision):
    bits = MANTISSA_BITS[precision]
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.standard_normal(100_000).astype(np.float32) * 1e-3,
                        np.float32([1.0, 1 + 2.0 ** -(bits + 1), 1 + 3 * 2.0 ** -(bits + 1),
                                    -(2 - 2.0 ** -(bits + 2)), 2 - 2.0 ** -23])])
    rounded = round_to_precision(x.copy(), precision)
    np.testing.assert_array_equal(rounded, _reference_rounding(x, bits))
    # Ties to even, and a carry into the exponent.
    assert rounded[-5] == 1.0 and rounded[-4] == 1.0
    assert rounded[-3] == np.float32(1 + 2.0 ** -(bits - 1))
    assert rounded[-2] == -2.0 and rounded[-1] == 2.0
    # The dropped bits are zero and rounding again changes nothing.
    assert not np.any(rounded.view(np.uint32) & np.uint32((1 << (23 - bits)) - 1))
    np.testing.assert_array_equal(round_to_precision(rounded.copy(), precision), rounded)


def test_rounding_refuses_what_it_cannot_do_in_place():
    with pytest.raises(ValueError, match="expected a C-contiguous float32 array"):
        round_to_precision(np.ones(4, np.float64), "bf16")
    with pytest.raises(ValueError, match=r"tm_precision = 'fp8': expected one of 'float32', 'tf32', 'bf16'"):
        round_to_precision(np.ones(4, np.float32), "fp8")


@pytest.mark.parametrize("precision", ["tf32", "bf16"])
def test_entry_error_matches_the_log_uniform_mantissa_law(precision):
    x = np.random.default_rng(1).standard_normal(400_000).astype(np.float32)
    relative = (round_to_precision(x.copy(), precision).astype(np.float64) - x) / x
    rms = np.sqrt(np.mean(relative ** 2))
    # Uniform error: var(r^2) / E[r^2]^2 <= 9/5 - 1; a 2 % allowance for the Gaussian's
    # mantissa not being exactly log-uniform (Benford's law holds to about that).
    se = 0.5 * np.sqrt(0.8 / x.size)
    assert rms / relative_rounding_rms(precision) == pytest.approx(1.0, abs=Z * se + 0.02)


@pytest.mark.parametrize("precision", ["tf32", "bf16"])
def test_stored_and_streamed_reduced_tms_are_rounded_alike(precision):
    # No speckle grain: it smooths the field after the product, so the TM the camera sees
    # (transmission_matrix) is no longer made of entries of the storage precision.
    kw = dict(n_in=200, n_out=300, simulation__tm_precision=precision,
              medium__speckle_grain_px=0.0)
    dense = build_chain("lab-bench", simulation__tm_storage="dense", **kw)
    streamed = build_chain("lab-bench", simulation__tm_storage="streamed", **kw)
    tm = dense.medium.transmission_matrix()
    np.testing.assert_array_equal(tm, streamed.medium.transmission_matrix())
    np.testing.assert_array_equal(round_to_precision(tm.real.copy(), precision), tm.real)
    frames = (np.random.default_rng(2).random((8, 200)) < 0.5).astype(np.uint8)
    np.testing.assert_allclose(dense.intensity(frames), streamed.intensity(frames),
                               rtol=1e-4, atol=1e-7)


def test_precision_changes_intensity_by_the_predicted_rms_and_leaves_speckle_alone():
    rows = {r["precision"]: r for r in precision_effect(
        resolve_config("lab-bench", n_in=256, n_out=1024), n_frames=32, random_frames=32)}
    assert rows["float32"]["intensity_rel_rms_error"] == 0.0
    for precision in ("tf32", "bf16"):
        row = rows[precision]
        # 64 frames x 1024 pixels of near-Gaussian errors: relative SE of an rms ~ 1/sqrt(2N).
        ratio = row["intensity_rel_rms_error"] / row["intensity_rel_rms_theory"]
        assert ratio == pytest.approx(1.0, abs=Z / np.sqrt(2 * 64 * 1024) + 0.03)
        # The speckle law is untouched far below its own sampling error.
        delta = abs(row["speckle_contrast"] - rows["float32"]["speckle_contrast"])
        assert delta < 0.05 * row["speckle_contrast_se"]
        assert abs(row["ks_exponential"] - rows["float32"]["ks_exponential"]) < 1e-3
    assert rows["tf32"]["error_over_shot_noise"] < rows["bf16"]["error_over_shot_noise"] < 0.2


def _fake_cupy_modules(missing=()):
    """Stand-ins for CuPy's cuBLAS and runtime modules holding the published enum values."""
    import types

    cublas = types.SimpleNamespace(
        __name__="cupy_backends.cuda.libs.cublas", CUBLAS_COMPUTE_32F=68,
        CUBLAS_COMPUTE_32F_FAST_TF32=77, CUBLAS_COMPUTE_32F_FAST_16BF=75,
        CUBLAS_GEMM_DEFAULT=-1, CUBLAS_OP_N=0, CUBLAS_POINTER_MODE_HOST=0)
    runtime = types.SimpleNamespace(__name__="cupy.cuda.runtime", CUDA_R_32F=0)
    for name in missing:
        delattr(cublas, name)
    return cublas, runtime


@pytest.mark.parametrize("precision, compute", [("float32", 68), ("tf32", 77), ("bf16", 75)])
def test_gemm_enums_are_read_by_name_from_cupys_constants(precision, compute):
    from photon.precision import cublas_gemm_enums

    cublas, runtime = _fake_cupy_modules()
    # Values distinct from cuBLAS's prove they are read, not hard-coded.
    cublas.CUBLAS_COMPUTE_32F_FAST_TF32, runtime.CUDA_R_32F = 1077, 1000
    enums = cublas_gemm_enums(precision, cublas, runtime)
    assert enums["compute_type"] == (1077 if precision == "tf32" else compute)
    assert enums["data_type"] == 1000 and enums["algo"] == -1 and enums["op_n"] == 0


def test_a_missing_cublas_constant_is_named():
    from photon.precision import cublas_gemm_enums

    cublas, runtime = _fake_cupy_modules(missing=("CUBLAS_COMPUTE_32F_FAST_16BF",))
    with pytest.raises(RuntimeError, match="cupy_backends.cuda.libs.cublas."
                       "CUBLAS_COMPUTE_32F_FAST_16BF is missing: expected"):
        cublas_gemm_enums("bf16", cublas, runtime)
    with pytest.raises(ValueError, match="precision = 'fp16': expected one of"):
        cublas_gemm_enums("fp16", cublas, runtime)


def test_precise_matmul_accumulates_and_checks_the_accumulator():
    from photon.precision import precise_matmul

    rng = np.random.default_rng(3)
    frames = (rng.random((5, 7)) < 0.5).astype(np.float32)
    weights = rng.standard_normal((7, 3)).astype(np.float32)
    acc = np.ones((5, 3), np.float32)
    assert precise_matmul(frames, weights, "float32", accumulate=acc) is acc
    np.testing.assert_allclose(acc, 1 + frames @ weights, rtol=1e-6)
    with pytest.raises(ValueError, match=r"accumulate: shape \(3, 5\).*expected a C-contiguous "
                       r"float32 \(5, 3\) array"):
        precise_matmul(frames, weights, "tf32", accumulate=np.zeros((3, 5), np.float32))
