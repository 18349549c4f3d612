"""The noise sweep: points, settings-keyed resumable results, statistics, design answer, engines."""

import json
import math

import numpy as np
import pytest

from studies.sweep import (AXES, REFERENCES, TASKS, design_answer, markdown_table,
                                      plot_sweep, read_results, run_settings, run_sweep,
                                      settings_key, summarize, sweep_points)


def fake_job(settings):
    """A deterministic stand-in for run_job: accuracy from the settings alone.

    Module level, so that worker processes and Dask workers can import it.
    """
    point = settings["point"]
    rng = np.random.default_rng([settings["seed"], len(json.dumps(point))])
    accuracy = 0.9 + 0.0005 * rng.standard_normal()
    if point.get("adc_bits") == 1:
        accuracy -= 0.4
    if point.get("reference") == "shallow":
        accuracy = 0.5
    epochs = settings.get("epochs") or settings.get("steps")
    record = {"settings": settings, "key": settings_key(settings),
              "result": {"test_accuracy": accuracy + 1e-4 * epochs,
                         "alignment_deg": {"update_vs_gradient": [60.0, 50.0]},
                         "seconds": 0.01, "diverged_at_step": None, "frames": 7,
                         "device_seconds": 1.0,
                         "fidelity": None if "reference" in point else
                         {"snr_db": 5.0 + rng.standard_normal(), "correlation": 0.9}}}
    return record


def _counting(calls):
    def runner(settings):
        calls.append(settings)
        return fake_job(settings)
    return runner


def test_points_cover_each_axis_and_each_pair_grid():
    points = sweep_points(["adc_bits", "encoding"], [("adc_bits", "encoding")])
    n_adc, n_enc = len(AXES["adc_bits"].values), len(AXES["encoding"].values)
    assert len(points) == n_adc + n_enc + n_adc * n_enc
    assert {"adc_bits": 4, "encoding": "bitplanes-2"} in points
    with pytest.raises(ValueError, match=r"axis = 'bits': expected one of .*adc_bits"):
        sweep_points(["bits"])


def test_axes_reach_where_dfa_breaks():
    assert AXES["adc_bits"].values[0] == 1 and AXES["adc_bits"].values[-1] == 12
    assert AXES["photon_budget"].values[0] == 1          # about one photo-electron
    assert AXES["encoding"].values[0] == "bitplanes-1"
    assert AXES["dmd_contrast"].values[0] == 1.0 and AXES["extinction_ratio"].values[0] == 1.0
    assert AXES["tm_drift_time_s"].values[-1] == "static"
    assert min(v for v in AXES["tm_drift_time_s"].values if v != "static") <= 10.0


def test_adc_axis_keeps_the_full_scale_at_the_full_well():
    from photon import load_preset

    device, _ = AXES["adc_bits"].options(12, load_preset("lab-bench"))
    top = 2 ** 12 - 1
    assert device["camera__gain_dn_per_e"] * 10_000 + device["camera__black_offset_dn"] == \
        pytest.approx(top)


@pytest.mark.parametrize("electrons", [1, 30, 3000])
def test_photon_budget_axis_sets_the_mean_photo_electrons(electrons):
    from photon import load_preset
    from photon.budget import mean_signal_electrons

    base = load_preset("lab-bench")
    device, _ = AXES["photon_budget"].options(electrons, base)
    changed = base.replace(**device)
    assert mean_signal_electrons(changed, on_fraction=1.0) == pytest.approx(electrons, rel=1e-9)
    # The gain keeps the ADC's full scale at 8 times the mean, never below the preset's.
    top = 255 - base.camera.black_offset_dn
    assert changed.camera.gain_dn_per_e == pytest.approx(
        max(base.camera.gain_dn_per_e, top / (8.0 * electrons)))


def test_run_settings_hold_everything_that_changes_a_result():
    settings = run_settings({"adc_bits": 4}, 1, task="mlp", base="lab-bench", budget=3, seed=10)
    assert settings["model"] == "mlp" and settings["data"] == "digits"
    assert settings["epochs"] == 3 and settings["seed"] == 11 and settings["base"] == "lab-bench"
    assert settings["encoder"] == "ternary" and settings["feedback"] == "lab-bench"
    options = settings["device_options"]
    assert options["camera__adc_bits"] == 4 and "seeds__tm" in options
    key = settings_key(settings)
    assert key == settings_key(run_settings({"adc_bits": 4}, 1, task="mlp", budget=3, seed=10))
    for other in (dict(budget=4), dict(base="datacenter-opu"), dict(seed=11),
                  dict(max_train=100), dict(task="deep-mlp")):
        arguments = dict(task="mlp", base="lab-bench", budget=3, seed=10) | other
        assert settings_key(run_settings({"adc_bits": 4}, 1, **arguments)) != key, other
    # The device's seeds follow the training seed, the same at every point (paired).
    assert run_settings({"adc_bits": 6}, 1, seed=10)["device_options"]["seeds__camera"] == \
        options["seeds__camera"]
    assert run_settings({"adc_bits": 4}, 2, seed=10)["device_options"]["seeds__tm"] != \
        options["seeds__tm"]
    reference = run_settings("ideal", 0, task="gcn")
    assert reference["feedback"] == "ideal" and reference["device_options"] == {}
    assert reference["epochs"] == TASKS["gcn"].budget
    with pytest.raises(ValueError, match="model = 'cnn': expected one of"):
        run_settings("ideal", 0, task="cnn")
    with pytest.raises(ValueError, match="epochs = 0: expected an integer >= 1"):
        run_settings("ideal", 0, task="gcn", budget=0)


def test_an_interrupted_sweep_resumes_without_losing_or_repeating_runs(tmp_path):
    path = tmp_path / "sweep.jsonl"
    points = sweep_points(["read_noise_e"])[:3]
    calls = []
    run_sweep(path, points[:2], seeds=2, runner=_counting(calls))
    # Interrupt in the middle of writing a line; add a line that is valid JSON but not a
    # run (an older sweep's record) and one that is not even a dict.
    with path.open("a") as handle:
        handle.write(json.dumps({"point": {"read_noise_e": 100.0}, "test_accuracy": 0.9}) + "\n")
        handle.write("[1, 2]\n")
        handle.write('{"settings": {"format": 2, "task": "mlp"}, "result": {"test_acc')
    results = run_sweep(path, points, seeds=2, runner=_counting(calls))
    keys = [r["key"] for r in results]
    n_runs = 2 * (len(points) + len(REFERENCES))
    assert len(keys) == len(set(keys)) == n_runs
    assert len(calls) == n_runs  # each run trained exactly once
    lines = path.read_text().splitlines()
    assert len(lines) == n_runs and all(json.loads(line)["key"] for line in lines)
    again = []
    assert run_sweep(path, points, seeds=2, runner=_counting(again)) == results
    assert again == []  # nothing left to do
    assert read_results(path) == [json.loads(line) for line in lines]


def test_other_settings_run_afresh_and_never_return_old_results(tmp_path):
    path = tmp_path / "sweep.jsonl"
    first, second = [], []
    points = [{"adc_bits": 4}]
    old = run_sweep(path, points, budget=1, seeds=2, runner=_counting(first))
    new = run_sweep(path, points, budget=2, seeds=2, runner=_counting(second))
    assert len(second) == len(first) == 2 * (1 + len(REFERENCES))  # every run trained again
    assert all(r["settings"]["epochs"] == 2 for r in new)
    assert all(r["settings"]["epochs"] == 1 for r in old)
    assert summarize(new)["settings"]["epochs"] == 2
    other_base = []
    run_sweep(path, points, budget=2, seeds=2, base="datacenter-opu",
              runner=_counting(other_base))
    assert len(other_base) == 2  # the ideal and shallow references need no device: reused
    assert {r["settings"]["base"] for r in read_results(path)} == {"lab-bench", "datacenter-opu",
                                                                   None}
    assert len(read_results(path)) == 2 * 4 + 2 * 4 + 2


def _record(point, seed, accuracy, snr=None):
    settings = run_settings(point, seed, task="gcn")
    return {"settings": settings, "key": settings_key(settings),
            "result": {"test_accuracy": accuracy, "seconds": 0.0, "diverged_at_step": None,
                       "alignment_deg": {"update_vs_gradient": [70.0 + seed]},
                       "frames": None, "device_seconds": None,
                       "fidelity": None if snr is None else {"snr_db": snr, "correlation": 0.5}}}


def _synthetic(spread=0.004):
    """Five seeds: ideal 0.83, bp 0.84; adc 1 and 2 far below, 3 a little, 4 and up on ideal."""
    offsets = spread * np.array([-1.0, -0.5, 0.0, 0.5, 1.0])
    drops = {1: 0.5, 2: 0.2, 3: 0.03, 4: 0.0, 5: 0.0, 6: 0.0, 8: 0.0, 10: 0.0, 12: 0.0}
    records = []
    for i, o in enumerate(offsets):
        records.append(_record("ideal", i, 0.83 + o))
        records.append(_record("shallow", i, 0.52 + o))
        records.append(_record("bp", i, 0.84 + o))
        for bits, drop in drops.items():
            records.append(_record({"adc_bits": bits}, i, 0.83 + o - drop, snr=float(bits)))
    return records


def test_summary_reports_mean_std_interval_and_paired_differences():
    summary = summarize(_synthetic())
    ideal = summary["references"]["ideal"]["metric"]
    values = 0.83 + 0.004 * np.array([-1.0, -0.5, 0.0, 0.5, 1.0])
    assert ideal["mean"] == pytest.approx(values.mean())
    assert ideal["std"] == pytest.approx(values.std(ddof=1))
    from scipy import stats
    assert ideal["ci95"] == pytest.approx(stats.t.ppf(0.975, 4) * values.std(ddof=1) / math.sqrt(5))
    by_bits = {e["point"]["adc_bits"]: e for e in summary["points"]}
    # Paired over seeds: the common seed-to-seed spread cancels in the difference.
    assert by_bits[3]["paired"]["mean"] == pytest.approx(-3.0)
    assert by_bits[3]["paired"]["ci95"] == pytest.approx(0.0, abs=1e-9)
    assert by_bits[8]["paired"]["within_noise"] is True
    assert by_bits[1]["paired"]["within_noise"] is False
    assert by_bits[2]["angles"][0]["mean"] == pytest.approx(72.0)
    assert by_bits[5]["snr_db"]["mean"] == pytest.approx(5.0)


def test_design_answer_finds_the_lowest_setting_within_tolerance_and_the_break():
    (answer,) = design_answer(summarize(_synthetic()))
    assert answer["axis"] == "adc_bits"
    assert answer["lowest_within_tolerance"] == 4     # 3 bits costs 3 points
    assert answer["breaking_point"] == 4 and answer["broken"] == [1, 2, 3]
    assert answer["lowest_within_tolerance_of_best"] == 4
    # Runs scattered far more than the drop at 3 bits: nothing below 3 can be told apart
    # from ideal DFA... but 1 and 2 bits still can; nothing is certified within 1 point.
    noisy = []
    rng = np.random.default_rng(0)
    for r in _synthetic():
        r = json.loads(json.dumps(r))
        r["result"]["test_accuracy"] += 0.05 * rng.standard_normal()
        noisy.append(r)
    (answer,) = design_answer(summarize(noisy))
    assert answer["lowest_within_tolerance"] is None
    assert 1 in answer["broken"] and answer["breaking_point"] in (2, 3, 4, 5)


def test_an_axis_that_never_reaches_ideal_dfa_still_says_where_it_stops_mattering():
    records = []
    for r in _synthetic():
        r = json.loads(json.dumps(r))
        if "adc_bits" in r["settings"]["point"]:
            r["result"]["test_accuracy"] -= 0.05      # another source costs 5 points
        records.append(r)
    (answer,) = design_answer(summarize(records))
    assert answer["lowest_within_tolerance"] is None and answer["breaking_point"] is None
    assert answer["lowest_within_tolerance_of_best"] == 4
    table = markdown_table(records)
    assert "not reached" in table and "another part of the device limits DFA here" in table


def test_no_setting_breaks_dfa_is_said_with_the_intervals():
    records = [r for r in _synthetic() if r["settings"]["point"].get("adc_bits", 99) >= 4]
    (answer,) = design_answer(summarize(records))
    assert answer["broken"] == [] and answer["breaking_point"] == 4
    table = markdown_table(records)
    assert "none: no setting breaks DFA" in table and "(within noise)" in table
    assert "83.00 ± " in table  # every figure with its interval
    assert "| backpropagation | 84.00 ± " in table


def test_tables_and_figures_are_written(tmp_path):
    records = run_sweep(tmp_path / "s.jsonl",
                        sweep_points(["adc_bits", "dmd_contrast"], [("adc_bits", "read_noise_e")]),
                        seeds=3, runner=fake_job)
    table = markdown_table(records)
    assert "### DMD contrast" in table and "camera bit depth x read noise" in table
    assert "### Design answer" in table and "| camera bit depth | `2` | `2` | `1` | `2` |" in table
    paths = plot_sweep(records, tmp_path)
    assert [p.name for p in paths] == ["noise_sweep_axes.png", "noise_sweep_snr.png",
                                       "noise_sweep_adc_bits_x_read_noise_e.png"]
    assert all(p.stat().st_size > 5_000 for p in paths)


def test_one_real_run_trains_through_a_virtual_device_and_measures_its_fidelity(tmp_path):
    results = run_sweep(tmp_path / "real.jsonl", [{"adc_bits": 6}], task="gcn", budget=3,
                        seeds=1, fidelity_errors=128)
    device = [r for r in results if r["settings"]["feedback"] == "lab-bench"]
    (record,) = device
    result = record["result"]
    assert 0.1 < result["test_accuracy"] <= 1.0 and result["frames"] > 0
    assert len(result["alignment_deg"]["update_vs_gradient"]) == 1
    fidelity = result["fidelity"]
    assert 0.0 < fidelity["correlation"] < 1.0 and math.isfinite(fidelity["snr_db"])
    assert read_results(tmp_path / "real.jsonl") == results


def test_local_workers_and_a_dask_local_cluster_write_the_same_runs(tmp_path):
    """The engines run the same settings and the parent alone writes the file."""
    pytest.importorskip("dask.distributed")
    points = [{"adc_bits": 1}, {"adc_bits": 8}]
    serial = run_sweep(tmp_path / "serial.jsonl", points, seeds=2, runner=fake_job)
    pooled = run_sweep(tmp_path / "pool.jsonl", points, seeds=2, workers=2, runner=fake_job)
    dasked = run_sweep(tmp_path / "dask.jsonl", points, seeds=2, workers=2, dask="local",
                       runner=fake_job)
    assert serial == pooled == dasked
    lines = sorted((tmp_path / "dask.jsonl").read_text().splitlines())
    assert lines == sorted((tmp_path / "serial.jsonl").read_text().splitlines())
    again = []
    run_sweep(tmp_path / "dask.jsonl", points, seeds=2, dask="local", runner=_counting(again))
    assert again == []  # resumable through Dask too


@pytest.mark.slow
def test_serial_workers_and_dask_give_identical_numbers_for_real_runs(tmp_path):
    """Real training and fidelity: bit-identical across the three engines (one BLAS thread)."""
    pytest.importorskip("dask.distributed")
    points = [{"adc_bits": 3}, {"photon_budget": 30}]
    common = dict(task="gcn", budget=5, seeds=2, fidelity_errors=128)
    serial = run_sweep(tmp_path / "a.jsonl", points, **common)
    pooled = run_sweep(tmp_path / "b.jsonl", points, workers=2, **common)
    dasked = run_sweep(tmp_path / "c.jsonl", points, workers=2, dask="local", **common)
    strip = [{k: v for k, v in r["result"].items() if k != "seconds"} for r in serial]
    assert strip == [{k: v for k, v in r["result"].items() if k != "seconds"} for r in pooled]
    assert strip == [{k: v for k, v in r["result"].items() if k != "seconds"} for r in dasked]


@pytest.mark.slow
def test_the_script_reruns_every_point_when_the_epochs_change(tmp_path):
    import subprocess
    import sys

    def run(epochs):
        done = subprocess.run([sys.executable, "scripts/noise_sweep.py", "--out", str(tmp_path),
                               "--model", "gcn", "--axes", "adc_bits", "--seeds", "2",
                               "--epochs", str(epochs), "--workers", "1", "--fidelity-errors",
                               "64", "--json"], capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    first = run(1)
    second = run(2)
    records = second["models"]["gcn"]["records"]
    assert second["models"]["gcn"]["summary"]["settings"]["epochs"] == 2
    assert {r["settings"]["epochs"] for r in records} == {2}
    assert len(records) == 2 * (len(AXES["adc_bits"].values) + len(REFERENCES))
    assert {r["key"] for r in records}.isdisjoint(
        {r["key"] for r in first["models"]["gcn"]["records"]})
    index = (tmp_path / "index.md").read_text()
    assert "--epochs 2" in index and "### Design answer" in index
    assert json.loads((tmp_path / "noise_sweep.json").read_text())["models"]["gcn"][
        "summary"]["settings"]["epochs"] == 2


@pytest.mark.slow
def test_a_transformer_point_reports_perplexity_against_ideal_as_a_ratio(tmp_path):
    records = run_sweep(tmp_path / "lm.jsonl", [{"encoding": "bitplanes-2"}], task="transformer",
                        budget=3, seeds=2, fidelity_errors=128)
    summary = summarize(records)
    assert summary["metric"] == "val_perplexity" and not summary["higher_is_better"]
    (point,) = summary["points"]
    assert point["metric"]["mean"] > 1.0 and 0.5 < point["paired"]["mean"] < 2.0
    assert point["snr_db"] is not None and len(point["angles"]) == 4
    assert "5 % perplexity" in markdown_table(records)
