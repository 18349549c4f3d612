"""The noise sweep: points, resumable JSON-lines results, tables and figures."""

import json

import pytest

from dfa_bridge.studies.sweep import (AXES, markdown_table, plot_sweep, read_results, run_sweep,
                              sweep_points)


def _fake_runner(calls):
    def runner(model, data, method, feedback, **options):
        calls.append(options["device_options"])
        accuracy = 0.9 - 0.01 * len(calls)
        return ({"test_accuracy": accuracy, "seconds": 0.1, "feedback": {"frames_acquired": 7},
                 "alignment_deg": {"update_vs_gradient": [60.0, 50.0],
                                   "weights_vs_feedback": [70.0, 65.0]}}, None)
    return runner


def test_points_cover_each_axis_and_each_pair_grid():
    points = sweep_points(["adc_bits", "encoding"], [("adc_bits", "encoding")])
    assert len(points) == 5 + 3 + 5 * 3
    assert {"adc_bits": 4, "encoding": "bitplanes-2"} in points
    with pytest.raises(ValueError, match=r"axis = 'bits': expected one of .*adc_bits"):
        sweep_points(["bits"])


def test_adc_axis_keeps_the_full_scale_at_the_full_well():
    from photon import load_preset

    device, _ = AXES["adc_bits"].options(12, load_preset("lab-bench"))
    top = 2 ** 12 - 1
    assert device["camera__gain_dn_per_e"] * 10_000 + device["camera__black_offset_dn"] == \
        pytest.approx(top)


def test_an_interrupted_sweep_resumes_without_losing_or_repeating_points(tmp_path):
    path = tmp_path / "sweep.jsonl"
    points = sweep_points(["read_noise_e"])
    calls = []
    run_sweep(path, points[:3], runner=_fake_runner(calls))
    # Interrupt in the middle of writing the fourth point: a cut-short line.
    with path.open("a") as handle:
        handle.write('{"point": {"read_noise_e": 100.0}, "test_acc')
    results = run_sweep(path, points, runner=_fake_runner(calls))
    keys = [json.dumps(r["point"], sort_keys=True) for r in results]
    assert len(keys) == len(set(keys)) == len(points)
    assert len(calls) == len(points)  # each point trained exactly once
    assert all(line.endswith("}") for line in path.read_text().splitlines())
    again = []
    run_sweep(path, points, runner=_fake_runner(again))
    assert again == []  # nothing left to do


def test_tables_and_figures_are_written(tmp_path):
    calls = []
    results = run_sweep(tmp_path / "s.jsonl",
                        sweep_points(["dmd_contrast"], [("adc_bits", "read_noise_e")]),
                        runner=_fake_runner(calls))
    table = markdown_table(results)
    assert "### DMD contrast" in table and "camera bit depth x read noise" in table
    paths = plot_sweep(results, tmp_path)
    assert [p.name for p in paths] == ["noise_sweep_axes.png",
                                       "noise_sweep_adc_bits_x_read_noise_e.png"]
    assert all(p.stat().st_size > 5_000 for p in paths)


def test_one_real_point_trains_through_a_virtual_device(tmp_path):
    results = run_sweep(tmp_path / "real.jsonl", [{"adc_bits": 6}], epochs=1, max_train=200)
    (record,) = results
    assert record["point"] == {"adc_bits": 6} and 0.2 < record["test_accuracy"] <= 1.0
    assert record["frames"] > 0 and len(record["alignment_deg"]["update_vs_gradient"]) == 2
    assert read_results(tmp_path / "real.jsonl") == results
