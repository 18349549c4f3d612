"""The CuPy path: same physics, CuPy in and CuPy out (skipped without a GPU)."""

import numpy as np
import pytest

from photon import build_chain

pytestmark = pytest.mark.gpu


def _frames(n_in, batch=32, seed=0):
    return (np.random.default_rng(seed).random((batch, n_in)) < 0.5).astype(np.uint8)


def test_cupy_frames_give_cupy_counts_with_the_same_intensity():
    import cupy

    chain = build_chain("lab-bench", n_in=256, n_out=512)
    frames = _frames(256)
    host = chain.intensity(frames)
    device = chain.intensity(cupy.asarray(frames))
    assert isinstance(device, cupy.ndarray)
    np.testing.assert_allclose(cupy.asnumpy(device), host, rtol=1e-4, atol=1e-7)
    counts = chain.acquire(cupy.asarray(frames))
    assert isinstance(counts, cupy.ndarray) and counts.dtype == cupy.uint8


def test_cupy_counts_are_reproducible_and_statistically_like_numpy():
    import cupy

    frames = _frames(256, batch=64)
    a = build_chain("lab-bench", n_in=256, n_out=2048).acquire(cupy.asarray(frames))
    b = build_chain("lab-bench", n_in=256, n_out=2048).acquire(cupy.asarray(frames))
    cupy.testing.assert_array_equal(a, b)
    host = build_chain("lab-bench", n_in=256, n_out=2048).acquire(frames).astype(np.float64)
    dev = cupy.asnumpy(a).astype(np.float64)
    # Same TM and intensities, independent noise: means agree to within the noise.
    assert abs(host.mean() - dev.mean()) < 5 * 1.5 / np.sqrt(host.size) + 0.05


def test_streamed_tm_on_cupy():
    import cupy

    kw = dict(n_in=300, n_out=500, simulation__tile_rows=128, simulation__tile_cols=192)
    frames = _frames(300, batch=8)
    dense = build_chain("ideal", simulation__tm_storage="dense", **kw).intensity(frames)
    streamed = build_chain("ideal", simulation__tm_storage="streamed", **kw).intensity(
        cupy.asarray(frames))
    np.testing.assert_allclose(cupy.asnumpy(streamed), dense, rtol=1e-4, atol=1e-7)


def test_ideal_backend_gives_the_same_numbers_on_numpy_and_cupy():
    import cupy

    from devices import open_device

    frames = _frames(512, batch=16)
    for storage in ("dense", "streamed"):
        device = open_device("ideal", n_in=512, n_out=700, seed=3, storage=storage)
        host = device.acquire(frames)
        gpu = device.acquire(cupy.asarray(frames))
        assert isinstance(gpu, cupy.ndarray)
        np.testing.assert_allclose(cupy.asnumpy(gpu), host, rtol=1e-4, atol=1e-6)


def test_linear_transform_on_cupy_matches_numpy():
    import cupy

    from devices import OPU, open_device

    opu = OPU(open_device("ideal", n_in=256, n_out=512)).fit(n_features=200)
    x = _frames(200, batch=10)
    np.testing.assert_allclose(cupy.asnumpy(opu.linear_transform(cupy.asarray(x))),
                               opu.linear_transform(x), rtol=1e-3, atol=1e-3)


def test_opu_fit_probes_cupy_data_with_cupy_frames():
    import cupy

    from devices import OPU, IdealDevice

    seen = []

    class Recording(IdealDevice):
        def _acquire(self, frames):
            seen.append(type(frames))
            return super()._acquire(frames)

    x = cupy.asarray(_frames(10, batch=4))
    opu = OPU(Recording(16, 32)).fit(x)
    assert seen and all(kind is cupy.ndarray for kind in seen)
    host = OPU(IdealDevice(16, 32)).fit(n_features=10)
    np.testing.assert_allclose(cupy.asnumpy(opu.linear_transform(x)),
                               host.linear_transform(cupy.asnumpy(x)), rtol=1e-3, atol=1e-3)


def test_tm_estimation_runs_unchanged_on_cupy():
    import cupy

    from calibration import estimate_transmission_matrix, row_correlation
    from devices import VirtualDevice

    device = VirtualDevice("ideal", n_in=128, n_out=128).open()
    estimate = estimate_transmission_matrix(device, probes_per_input=1.5, like=cupy.empty(0))
    corr = row_correlation(estimate.tm, device.chain.medium.transmission_matrix())
    assert np.median(corr) >= 0.999


def test_counter_gaussians_are_the_same_numbers_on_the_gpu():
    import cupy

    from photon.counter_rng import circular_gaussian_block, matrix_key

    key = matrix_key(9, (0, 1))
    for block in [(0, 300, 0, 257), (123, 456, 1, 1000), (2**31, 2**31 + 3, 2**20 + 1, 2**20 + 90)]:
        host = circular_gaussian_block(key, *block, 0.7)
        dev = circular_gaussian_block(key, *block, 0.7, xp=cupy)
        assert isinstance(dev[0], cupy.ndarray)
        for h, d in zip(host, dev):
            np.testing.assert_allclose(cupy.asnumpy(d), h, rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("precision", ["tf32", "bf16"])
def test_tensor_core_gemm_equals_the_cpu_emulation_of_a_rounded_tm(precision):
    import cupy

    from photon.precision import precise_matmul, round_to_precision

    rng = np.random.default_rng(0)
    frames = (rng.random((64, 512)) < 0.5).astype(np.float32)
    weights = round_to_precision(rng.standard_normal((512, 300)).astype(np.float32), precision)
    # Binary frames and rounded weights are exact in the format: only the summation order differs.
    device = precise_matmul(cupy.asarray(frames), cupy.asarray(weights), precision)
    np.testing.assert_allclose(cupy.asnumpy(device), frames @ weights, rtol=1e-5, atol=1e-4)
    rounded = round_to_precision(cupy.asarray(rng.standard_normal(1000).astype(np.float32)),
                                 precision)
    np.testing.assert_array_equal(cupy.asnumpy(rounded),
                                  round_to_precision(cupy.asnumpy(rounded), precision))


@pytest.mark.parametrize("storage", ["dense", "streamed"])
def test_a_tf32_chain_on_the_gpu_gives_the_cpu_intensities(storage):
    import cupy

    kw = dict(n_in=300, n_out=500, simulation__tm_precision="tf32", simulation__tm_storage=storage)
    frames = _frames(300, batch=16)
    host = build_chain("lab-bench", **kw).intensity(frames)
    device = build_chain("lab-bench", **kw).intensity(cupy.asarray(frames))
    np.testing.assert_allclose(cupy.asnumpy(device), host, rtol=1e-4, atol=1e-7)


def test_gemm_enums_come_from_the_installed_cupy():
    from photon.precision import cublas_gemm_enums

    assert cublas_gemm_enums("tf32")["compute_type"] == 77      # CUBLAS_COMPUTE_32F_FAST_TF32
    assert cublas_gemm_enums("bf16")["compute_type"] == 75      # CUBLAS_COMPUTE_32F_FAST_16BF
    assert cublas_gemm_enums("float32")["data_type"] == 0       # CUDA_R_32F


def test_float32_products_go_through_cupy_matmul_and_accumulate():
    import cupy

    from photon.precision import precise_matmul

    rng = np.random.default_rng(4)
    frames = (rng.random((33, 300)) < 0.5).astype(np.float32)
    weights = rng.standard_normal((300, 70)).astype(np.float32)
    acc = cupy.ones((33, 70), np.float32)
    out = precise_matmul(cupy.asarray(frames), cupy.asarray(weights[:, :]), "float32",
                         accumulate=acc)
    assert out is acc
    np.testing.assert_allclose(cupy.asnumpy(out), 1 + frames @ weights, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("batch", [8, 96])
def test_a_drifting_dense_tm_drifts_on_the_gpu_without_host_rebuilds(batch):
    import cupy

    from photon import ScatteringMedium

    kw = dict(n_polarizations=2, drift_time_s=100.0, held_on_mirrors=30, speckle_grain_px=0.0,
              tm_storage="dense")
    gpu = ScatteringMedium.from_settings(128, 300, **kw)
    cpu = ScatteringMedium.from_settings(128, 300, **kw)
    frames = _frames(128, batch=batch).astype(np.float32)
    for medium in (gpu, cpu):
        medium.advance(170.0)                     # keyframes 1 and 2
    device = gpu.field(cupy.asarray(frames), uniform=0.01)
    assert isinstance(device, cupy.ndarray)
    # The new keyframes were generated on the GPU; the host holds only keyframe 0's copy.
    assert sorted(gpu._keyframes[cupy]) == [1, 2]
    assert not gpu._keyframes.get(np)
    np.testing.assert_allclose(cupy.asnumpy(device), cpu.field(frames, uniform=0.01),
                               rtol=1e-4, atol=1e-5)
