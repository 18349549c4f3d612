"""The command-line fronts run end to end at tiny sizes and print what they promise."""

import json
import subprocess
import sys

import pytest


def _run(*args):
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_bench_physics_prints_one_json_object_with_its_ratios():
    result = json.loads(_run("scripts/bench_physics.py", "--json", "--n-in", "256",
                             "--n-out", "256", "--batch", "16", "--repeats", "1"))
    for key in ("chain_s", "gemm_s", "naive_s", "overhead_ratio", "speedup_vs_naive", "peak_rss_mb"):
        assert result[key] > 0
    assert result["overhead_ratio"] == pytest.approx(result["chain_s"] / result["gemm_s"])
    assert result["speedup_vs_naive"] == pytest.approx(result["naive_s"] / result["chain_s"])


def test_bench_physics_streamed_reports_peak_memory():
    result = json.loads(_run("scripts/bench_physics.py", "--json", "--streamed", "--n-in", "512",
                             "--n-out", "512", "--batch", "8"))
    assert result["tm_storage"] == "streamed" and result["gemm_s"] is None
    assert result["chain_s"] > 0 and result["peak_rss_mb"] > 0


def test_bench_physics_times_the_gemm_in_the_chains_precision():
    result = json.loads(_run("scripts/bench_physics.py", "--json", "--n-in", "256", "--n-out",
                             "256", "--batch", "16", "--repeats", "1", "--precision", "bf16"))
    assert result["tm_precision"] == "bf16" and result["gemm_vs_naive_max_rel_err"] < 1e-3
    assert result["gemm_throughput_fraction"] == pytest.approx(result["gemm_s"] / result["chain_s"])
    assert set(result["goals"]) == {"overhead_ratio_max", "speedup_vs_naive_min"}  # NumPy goals


def test_bench_physics_full_size_scales_a_column_slice_of_the_full_device():
    result = json.loads(_run("scripts/bench_physics.py", "--json", "--full-size",
                             "--measure-columns", "4", "--batch", "2", "--tile-rows", "262144"))
    assert result["preset"] == "datacenter-opu" and result["tm_storage"] == "streamed"
    assert (result["n_in"], result["n_out"]) == (912 * 1140, 2_000_000)
    assert result["extrapolated_from_columns"] == 4 and result["n_polarizations"] == 2
    assert result["projections_per_s"] == pytest.approx(2 / result["chain_s"])
    assert result["chain_s"] == pytest.approx(result["measured_chain_s"] * 2_000_000 / 4)
    assert result["tile_rows_cols"] == [262144, 8192]     # the full-size default width


def test_precision_study_writes_its_table(tmp_path):
    rows = json.loads(_run("scripts/precision_study.py", "--n-in", "64", "--n-out", "256",
                           "--frames", "8", "--json", "--out", str(tmp_path)))
    assert [r["precision"] for r in rows] == ["float32", "tf32", "bf16"]
    assert 0 == rows[0]["intensity_rel_rms_error"] < rows[1]["intensity_rel_rms_error"] \
        < rows[2]["intensity_rel_rms_error"]
    table = (tmp_path / "precision.md").read_text()
    assert table.count("\n") == 5 and "| bf16 |" in table


def test_photon_main_job_prints_the_device_and_its_statistics(tmp_path):
    result = json.loads(_run("-m", "photon", "--n-in", "128", "--n-out", "1024", "--json"))
    assert result["device"]["name"] == "lab-bench"
    stats = result["statistics"]
    assert abs(stats["speckle_contrast"] - stats["speckle_contrast_theory"]) < 0.05
    from photon import build_chain
    from studies.physics_pages import plot_speckle_histogram  # figures: the studies floor
    plot_speckle_histogram(build_chain("lab-bench", n_in=128, n_out=1024), tmp_path / "s.png")
    assert (tmp_path / "s.png").stat().st_size > 10_000


def test_opu_info_prints_the_device_and_the_cost_of_a_job():
    result = json.loads(_run("scripts/opu_info.py", "--device", "datacenter-opu", "--json"))
    device = result["device"]
    assert device["n_in"] == 912 * 1140 and device["electrical_power_w"] == 30.0
    intensity = result["cost"]["intensity_binary"]
    linear = result["cost"]["linear_binary"]
    assert result["n_vectors"] == 10_000 and result["n_features"] == 1_000
    assert intensity["frames"] == 10_000
    assert intensity["seconds"] == pytest.approx(10_000 * device["frame_time_s"])
    assert intensity["joules"] == pytest.approx(intensity["seconds"] * 30.0)
    assert 2 * 10_000 < linear["frames"] <= 2 * 10_000 + 2 * 10
    # The frame rate follows the read-out of the 977 sensor rows holding the 2e6 outputs
    # (CMV2000: 32.25 us + 2.6875 us per row), the datasheet's ~340 fps at full frame.
    readout = result["readout"]
    assert readout["rows_read"] == 977 and readout["line_time_us"] == 2.6875
    assert device["frames_per_s"] == pytest.approx(1e6 / (32.25 + 977 * 2.6875))
    assert readout["frames_per_s"] == device["frames_per_s"]
    assert readout["full_frame_rate_hz"] == pytest.approx(340.0, rel=0.01)
    assert readout["max_rows_at_dmd_rate"] == 76 and readout["dmd_rate_hz"] == 4225.0


@pytest.mark.parametrize("n_out, rate", [(2048 * 1088, 1e6 / (32.25 + 1088 * 2.6875)),
                                         (174 * 2048, 1e6 / (32.25 + 174 * 2.6875)),
                                         (175 * 2048, 1e6 / (32.25 + 175 * 2.6875)),
                                         (76 * 2048, 4225.0), (1000, 4225.0)])
def test_opu_info_frame_rate_depends_on_the_outputs_read(n_out, rate):
    """Full frame: the CMV2000's ~340 fps; 2 kHz only up to 174 rows; the DMD's rate below 77."""
    result = json.loads(_run("scripts/opu_info.py", "--device", "datacenter-opu", "--n-out",
                             str(n_out), "--json"))
    assert result["device"]["n_out"] == n_out
    assert result["device"]["frames_per_s"] == pytest.approx(rate)
    assert (result["device"]["frames_per_s"] >= 2000.0) == (n_out <= 174 * 2048)
    assert result["cost"]["intensity_binary"]["seconds"] == pytest.approx(10_000 / rate)


def test_calibrate_prints_quality_frames_and_camera(tmp_path):
    result = json.loads(_run("scripts/calibrate.py", "--device", "lab-bench", "--n-in", "48",
                             "--n-out", "64", "--probes-per-input", "2", "--json"))
    for key in ("intensity_r", "tm_corr", "frames", "seconds", "acquisition_s", "camera",
                "projection_error"):
        assert key in result
    assert 0.5 < result["intensity_r"] <= 1.0 and 0.5 < result["tm_corr"] <= 1.0
    assert result["frames"] <= 40 * 48 + 400
    assert result["camera"]["gain_dn_per_e"] == pytest.approx(0.0255, rel=0.2)


def test_calibrate_writes_its_results_page_with_intervals_over_seeds(tmp_path):
    out = tmp_path / "calibration"
    result = json.loads(_run("scripts/calibrate.py", "--device", "ideal", "--n-in", "24",
                             "--n-out", "32", "--seeds", "2", "--out", str(out), "--json"))
    rows = result["quality_against_frames"]
    assert {r["seed"] for r in rows} == {0, 1} and {r["preset"] for r in rows} == {"ideal", "lab-bench"}
    page = (out / "index.md").read_text()
    assert "python scripts/calibrate.py --device ideal" in page and "+-" in page
    assert json.loads((out / "calibration.json").read_text())["n_in"] == 24
    assert (out / "calibration_quality.png").stat().st_size > 0
    # A file where the folder should go is refused before any work.
    blocker = tmp_path / "taken"
    blocker.write_text("x")
    done = subprocess.run([sys.executable, "scripts/calibrate.py", "--out", str(blocker)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--out" in done.stderr and "expected a directory" in done.stderr


def test_throughput_marks_memory_and_the_opu_crossover(tmp_path):
    result = json.loads(_run("scripts/throughput.py", "--min-exp", "6", "--max-exp", "8",
                             "--batch", "8", "--out", str(tmp_path), "--json"))
    rows = result["rows"]
    assert {r["backend"] for r in rows} >= {"opu-intensity", "opu-linear", "cpu-numpy"}
    opu = [r for r in rows if r["backend"] == "opu-intensity"]
    # At size n the camera reads the rows holding n outputs: for n <= 256 one row of the
    # CMV2000 (32.25 us + max(35 us exposure, 2.7 us)), so the DMD's 4225 Hz sets the pace.
    from devices import VirtualDevice

    device = VirtualDevice("datacenter-opu")
    for r in opu:
        rate = 1.0 / device.frame_time_for(r["n"])
        assert rate == pytest.approx(4225.0)
        assert r["projections_per_s"] == pytest.approx(rate)
        assert r["joules_per_projection"] == pytest.approx(30.0 / rate)
    assert result["assumed_power_w"] == {"cpu": 25.0, "gpu": 700.0}
    assert (tmp_path / "throughput.png").stat().st_size > 10_000
    assert "| 64 | cpu-numpy |" in (tmp_path / "throughput.md").read_text()


def test_dense_projection_beyond_memory_is_generated_block_by_block():
    from studies.throughput import dense_point

    point = dense_point(2048, batch=4, memory_bytes=2048 * 2048, block_rows=512)
    assert point.storage == "generated" and "4 blocks, 2 timed" in point.note
    assert point.projections_per_s > 0


def test_report_runs_end_to_end_and_writes_its_figures(tmp_path):
    """The report reads the noise study's store (here: a few stand-in runs) and computes none."""
    from studies.sweep import TASKS, DecisionRule, run_sweep
    from tests.sweep_fakes import fake_job

    store = tmp_path / "store.jsonl"
    run_sweep(store, [{"encoding": "ternary"}, {"encoding": "bitplanes-4"}], task=TASKS["gcn-cora"],
              rule=DecisionRule(cap=5), runner=fake_job)
    lines = store.read_text().splitlines()
    _run("scripts/report.py", "--out", str(tmp_path), "--epochs", "1", "--max-exp", "8",
         "--store", str(store))
    index = (tmp_path / "index.md").read_text()
    for section in ("## 1. Calibration", "## 2. DFA on Cora's GCN", "## 3. Noise", "## 4. Throughput",
                    "## 5. TM precision"):
        assert section in index
    for figure in ("calibration_quality.png", "noise_sweep_axes.png", "throughput.png"):
        assert f"({figure})" in index and (tmp_path / figure).stat().st_size > 5_000
    numbers = json.loads((tmp_path / "numbers.json").read_text())
    assert f"{numbers['calibration']['intensity_r']:.4f}" in index  # numbers come from the run
    assert numbers["sweep_runs"] == len(lines) and store.read_text().splitlines() == lines
    assert "default encoding `bitplanes-4`" in index and "ternary encoding (the former default)" \
        in index and "Every run was computed by the current code" in index
