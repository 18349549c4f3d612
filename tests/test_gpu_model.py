"""The roofline model of named GPUs, the throughput study's rows and how they are timed."""

import json
import subprocess
import sys

import numpy as np
import pytest

from studies.gpu_model import GPUS, H100_SXM, H200_SXM, Roofline, gpu_spec, match_gpu
from studies.throughput import (gpu_model_point, model_assumptions, model_errors, rate_text,
                                structured_crossover, structured_point)
from studies.timing import interleaved_times, spread_text


def test_datasheet_figures_and_their_sources():
    assert set(GPUS) == {"H100", "H200"}
    for spec in (H100_SXM, H200_SXM):
        assert spec.fp32_flops == pytest.approx(66.9e12)
        assert spec.tf32_flops == pytest.approx(494.7e12)  # dense: half the sparse 989
        assert spec.bf16_flops == pytest.approx(989.4e12)
        assert spec.board_power_w == 700.0
        assert "datasheet" in spec.source and "nvidia.com" in spec.source
    assert (H100_SXM.bandwidth_bytes_per_s, H100_SXM.memory_bytes) == (3.35e12, 80e9)
    assert (H200_SXM.bandwidth_bytes_per_s, H200_SXM.memory_bytes) == (4.8e12, 141e9)
    assert gpu_spec("h200") is H200_SXM and gpu_spec(H100_SXM) is H100_SXM
    assert match_gpu("NVIDIA H200") is H200_SXM and match_gpu("NVIDIA A100-SXM4-40GB") is None


def test_compute_bound_time_is_flops_over_the_achievable_peak():
    model = Roofline(H100_SXM, "fp32", compute_efficiency=0.5, bandwidth_efficiency=0.5,
                     launch_s=0.0)
    m = k = n = 4096
    assert model.gemm_seconds(m, k, n) == pytest.approx(2 * m * k * n / (0.5 * 66.9e12))
    bf16 = model.with_precision("bf16")
    assert bf16.gemm_seconds(m, k, n) == pytest.approx(2 * m * k * n / (0.5 * 989.4e12))


def test_memory_bound_time_is_bytes_over_the_achievable_bandwidth():
    model = Roofline(H200_SXM, "fp32", compute_efficiency=0.5, bandwidth_efficiency=0.5,
                     launch_s=0.0)
    nbytes = 4 * (8192 + 8192 * 8192 + 8192)  # a matrix-vector product
    assert model.gemm_seconds(1, 8192, 8192) == pytest.approx(nbytes / (0.5 * 4.8e12))
    assert Roofline(H200_SXM, launch_s=1e-5).seconds(0.0, 0.0, launches=3) == pytest.approx(3e-5)


def test_a_matrix_beyond_memory_is_regenerated_at_the_philox_rate():
    model = Roofline(H100_SXM, "fp32", launch_s=0.0)
    stored = model.dense_projection(4096, 4096, 256)
    assert stored["storage"] == "stored"
    assert stored["seconds"] == pytest.approx(model.gemm_seconds(256, 4096, 4096))
    generated = model.dense_projection(4096, 4096, 256, memory_fraction=1e-6, block_rows=1024)
    assert generated["storage"] == "generated" and generated["blocks"] == 4
    generation = 4096 * 4096 / model.generation_entries_per_s
    assert generated["seconds"] > stored["seconds"] + generation * 0.999
    assert model.generation_entries_per_s == pytest.approx(33.5e12 / 64)
    # H100: 2^17 x 2^17 float32 (64 GiB) exceeds a quarter of 80 GB; 2^16 (16 GiB) fits
    assert model.dense_projection(2 ** 16, 2 ** 16, 1)["storage"] == "stored"
    assert model.dense_projection(2 ** 17, 2 ** 17, 1)["storage"] == "generated"


def test_structured_model_grows_like_n_log_n():
    model = Roofline(H100_SXM, launch_s=0.0)
    small = model.structured_projection(2 ** 16, 2 ** 16, 256)["seconds"]
    large = model.structured_projection(2 ** 20, 2 ** 20, 256)["seconds"]
    assert 16 <= large / small < 16 * 2  # memory bound: ~linear, cuFFT passes at most double
    assert model.structured_projection(10, 512, 4)["blocks"] == 32


@pytest.mark.parametrize("kwargs, message", [
    ({"precision": "fp8"}, "precision = 'fp8'"),
    ({"compute_efficiency": 1.5}, "compute_efficiency = 1.5"),
    ({"bandwidth_efficiency": 0}, "bandwidth_efficiency = 0"), ({"launch_s": -1}, "launch_s = -1")])
def test_bad_model_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Roofline(H100_SXM, **kwargs)
    with pytest.raises(ValueError, match="gpu = 'A100'"):
        gpu_spec("A100")


def test_model_rows_are_labelled_models_with_their_assumptions():
    point = gpu_model_point(1024, Roofline(H200_SXM), batch=64)
    assert point.backend == "gpu-model-H200" and point.note.startswith("MODEL, not measured")
    assert point.joules_per_projection == pytest.approx(700.0 / point.projections_per_s)
    structured = gpu_model_point(1024, Roofline(H200_SXM), batch=64, structured=True)
    assert structured.backend == "structured-model-H200" and structured.storage == "none"
    assumptions = model_assumptions(["H200"])
    entry = assumptions["gpu-model-H200"]
    assert entry["kind"].startswith("roofline model") and "source" in entry["gpu"]
    assert set(entry["assumed"]) >= {"compute_efficiency", "bandwidth_efficiency", "launch_s"}


def test_structured_point_is_measured_here():
    point = structured_point(256, batch=8, repeats=1)
    assert point.backend == "structured-numpy" and point.storage == "none"
    assert point.projections_per_s > 0 and "no matrix" in point.note


def test_interleaved_times_rotate_and_repeat_fast_functions():
    calls = []
    functions = {name: (lambda name=name: calls.append(name)) for name in "abc"}
    times = interleaved_times(functions, repeats=3, warmup=0, clock="wall")
    # the order rotates every repeat: abc, bca, cab
    assert calls == list("abcbcacab")
    assert all(t["repeats"] == 3 and t["q25_s"] <= t["median_s"] <= t["q75_s"]
               for t in times.values())
    calls.clear()
    times = interleaved_times({"a": functions["a"]}, repeats=2, warmup=0, min_sample_s=1e-3)
    per_sample = times["a"]["calls_per_sample"]
    assert per_sample > 1 and len(calls) == 1 + 2 * per_sample  # one probe call, then samples
    assert spread_text({"median_s": 2.0, "q25_s": 1.9, "q75_s": 2.3}) == "±10 %"


def _rows(backend, rates):
    return [{"backend": backend, "n": n, "projections_per_s": r} for n, r in rates.items()]


def test_structured_crossover_is_where_it_stays_faster():
    dense = _rows("cpu-numpy", {64: 10.0, 128: 10.0, 256: 10.0, 512: 10.0})
    rows = dense + _rows("structured-numpy", {64: 20.0, 128: 5.0, 256: 20.0, 512: 30.0})
    result = structured_crossover(rows)
    assert result["faster_from_n"] == 256 and result["speedup"][512] == pytest.approx(3.0)
    slower = dense + _rows("structured-numpy", {64: 20.0, 128: 20.0, 256: 20.0, 512: 5.0})
    assert structured_crossover(slower)["faster_from_n"] is None


def test_model_error_is_model_time_over_measured_time():
    rows = _rows("gpu-cupy", {4096: 100.0}) + _rows("gpu-model-H200", {4096: 80.0})
    errors = model_errors(rows, "NVIDIA H200")
    assert errors["gpu-cupy"]["model_time_error"][4096] == pytest.approx(100.0 / 80.0 - 1.0)
    assert model_errors(rows, None) == {} and model_errors(rows, "NVIDIA A100") == {}


def test_throughput_script_adds_structured_and_model_rows(tmp_path):
    done = subprocess.run([sys.executable, "scripts/throughput.py", "--min-exp", "6",
                           "--max-exp", "8", "--batch", "8", "--out", str(tmp_path), "--json"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    backends = {r["backend"] for r in result["rows"]}
    assert backends >= {"opu-intensity", "opu-linear", "cpu-numpy", "structured-numpy",
                        "gpu-model-H100", "gpu-model-H200", "structured-model-H100",
                        "structured-model-H200"}
    keys = {"backend", "n", "projections_per_s", "joules_per_projection", "power_w",
            "storage", "note"}
    assert all(set(r) >= keys for r in result["rows"])  # rows keep their old fields
    for r in result["rows"]:  # a measured rate: median of >= 5 interleaved repeats, quartiles
        if r["backend"] in ("cpu-numpy", "structured-numpy"):
            assert r["repeats"] == 5 and r["clock"] == "cpu" and r["threads"] == 1
            assert r["projections_per_s_q25"] <= r["projections_per_s"] <= \
                r["projections_per_s_q75"]
        else:
            assert r["repeats"] is None and r["projections_per_s_q25"] is None
    assert set(result["structured_vs_dense"]["numpy"]["speedup"]) == {"64", "128", "256"}
    assert "gpu-model-H100" in result["assumptions"] and "marks" in result
    page = (tmp_path / "throughput.md").read_text()
    assert "| 64 | gpu-model-H100 |" in page and "MODEL, not measured" in page
    measured = next(r for r in result["rows"] if r["backend"] == "cpu-numpy")
    assert f"| 64 | cpu-numpy | {rate_text(measured)} |" in page  # the page shows the run's figure
    assert "median of 5 interleaved repeats" in page
    assert "## Models, assumptions and sources" in page and "datasheet" in page
    assert "structured-numpy vs cpu-numpy" in done.stderr


@pytest.mark.gpu
def test_measured_gpu_dense_product_is_within_30_percent_of_the_roofline():
    import cupy  # noqa: F401

    from studies.throughput import dense_point, local_gpu_name

    spec = match_gpu(local_gpu_name())
    if spec is None:
        pytest.skip(f"no roofline spec for {local_gpu_name()!r}")
    # Large products (batch 256 against n x n, fp32 without TF32, as CuPy runs float32),
    # where the GPU's tiles fill every SM and the launch is a small part.
    model = Roofline(spec, "fp32")
    for n in (16384, 32768):
        measured = dense_point(n, cupy, batch=256)
        modelled = gpu_model_point(n, model, batch=256)
        assert measured.storage == modelled.storage == "stored"
        error = measured.projections_per_s / modelled.projections_per_s - 1.0  # model time error
        assert abs(error) < 0.3, (n, measured, modelled)


@pytest.mark.gpu
def test_structured_projection_is_measured_on_the_gpu():
    import cupy

    point = structured_point(4096, cupy, batch=64, repeats=2)
    assert point.backend == "structured-cupy" and point.projections_per_s > 0
    assert np.isfinite(point.joules_per_projection)
