"""The noise sweep: resolved keys, sequential decisions, the design answer, engines, a real run."""

import dataclasses
import json
import math

import numpy as np
import pytest

from photon import load_preset
from photon.config import dump_config
from studies.sweep import (AXES, REFERENCES, TASKS, DecisionRule, ResultStore, StudyTask,
                           design_answer, markdown, plot_sweep, run_settings, run_sweep,
                           settings_key, summarize, sweep_points)
from studies.sweep.pages import failure_section, sweep_page
from studies.sweep.spec import code_version, device_cost, parse_encoding
from tests.sweep_fakes import fake_job, read_calls

CORA = TASKS["gcn-cora"]
QUICK = DecisionRule(first=3, cap=12)


def _counting(calls):
    def runner(payload):
        calls.append(payload["key"])
        return fake_job(payload)
    return runner


def test_points_cover_each_axis_and_each_pair_grid():
    points = sweep_points(["adc_bits", "encoding"], [("encoding", "adc_bits")])
    n_adc, n_enc = len(AXES["adc_bits"].values), len(AXES["encoding"].values)
    grid = len(AXES["adc_bits"].grid) * len(AXES["encoding"].grid)
    assert len(points) == n_adc + n_enc + grid
    assert {"encoding": "ternary", "adc_bits": 4} in points
    with pytest.raises(ValueError, match=r"axis = 'bits': expected one of .*adc_bits"):
        sweep_points(["bits"])
    with pytest.raises(ValueError, match="expected two different axes"):
        sweep_points([], [("adc_bits", "adc_bits")])
    assert parse_encoding("bitplanes-3") == ("bitplanes", 3)
    with pytest.raises(ValueError, match="encoding = 'quaternary'"):
        parse_encoding("quaternary")


def test_photon_budget_axis_sets_the_mean_photo_electrons():
    from photon.budget import mean_signal_electrons

    base = load_preset("lab-bench")
    for electrons in (1, 30, 3000):
        device, _ = AXES["photon_budget"].options(electrons, base)
        assert mean_signal_electrons(base.replace(**device), on_fraction=1.0) == \
            pytest.approx(electrons, rel=1e-9)


def test_a_key_holds_the_resolved_settings_not_the_names(tmp_path):
    """A YAML edited between two sweeps gives new keys; a renamed copy gives the same."""
    config = load_preset("lab-bench")
    path = tmp_path / "bench.yaml"
    dump_config(config, path)
    ours = run_settings({"adc_bits": 6}, 0, task=CORA, base=str(path))["settings"]
    preset = run_settings({"adc_bits": 6}, 0, task=CORA, base="lab-bench")["settings"]
    assert settings_key(ours) == settings_key(preset)  # same contents, other name
    renamed = tmp_path / "renamed.yaml"
    dump_config(config.replace(name="other", description="a copy"), renamed)
    assert settings_key(run_settings({"adc_bits": 6}, 0, task=CORA, base=str(renamed))[
        "settings"]) == settings_key(ours)
    dump_config(config.replace(camera__read_noise_e=300.0), path)  # the file is edited
    edited = run_settings({"adc_bits": 6}, 0, task=CORA, base=str(path))["settings"]
    assert edited["device"]["camera"]["read_noise_e"] == 300.0
    assert settings_key(edited) != settings_key(ours)
    key = settings_key(preset)
    for change in (dict(seed=1), dict(encoding="ternary"),
                   dict(task=dataclasses.replace(CORA, budget=100)),
                   dict(task=StudyTask("gcn", "citeseer")),
                   dict(task=dataclasses.replace(CORA, hyper=(("lr", 0.02),)))):
        arguments = dict(task=CORA, base="lab-bench") | change
        assert settings_key(run_settings({"adc_bits": 6}, 0, **arguments)["settings"]) != key
    assert preset["code"] == code_version() and len(code_version()["source"]) == 16
    assert preset["task"]["data"]["fingerprint"] == CORA.fingerprint()
    assert preset["task"]["hyper"]["lr"] == 0.01 and preset["task"]["budget"] == 200
    # Two labels that resolve to the same settings share one key; a reference needs no device.
    default = run_settings({"encoding": "bitplanes-4", "adc_bits": 6}, 0, task=CORA)
    assert settings_key(default["settings"]) == key
    ideal = run_settings("ideal", 0, task=CORA, base=str(path))["settings"]
    assert ideal["device"] is None and settings_key(ideal) == settings_key(
        run_settings("ideal", 0, task=CORA)["settings"])
    assert device_cost(preset)["planes"] == 8 and device_cost(preset)["adc_bits"] == 6


def test_a_users_own_data_set_is_keyed_on_its_content():
    from dfa_bridge.data import contextual_sbm

    graph = contextual_sbm(n_nodes=300, n_features=50, n_val=50, n_test=100, seed=1)
    other = contextual_sbm(n_nodes=300, n_features=50, n_val=50, n_test=100, seed=2)
    a = run_settings("ideal", 0, task=StudyTask("gcn", graph))["settings"]
    b = run_settings("ideal", 0, task=StudyTask("gcn", other))["settings"]
    assert a["task"]["data"]["fingerprint"] != b["task"]["data"]["fingerprint"]
    assert settings_key(a) != settings_key(b)


def test_injected_effects_are_decided_and_an_identical_rerun_computes_nothing(tmp_path):
    store = tmp_path / "runs.jsonl"
    points = [{"adc_bits": 1}, {"adc_bits": 2}, {"adc_bits": 8}, {"encoding": "ternary"}]
    calls = []
    records = run_sweep(store, points, task=CORA, rule=QUICK, runner=_counting(calls))
    summary = summarize(records, QUICK)
    decision = {e["label"]: e["decision"] for e in summary["points"]}
    assert decision["adc_bits=1"]["decision"] == "worse" and decision["adc_bits=1"]["n"] == 3
    assert decision["encoding=ternary"]["decision"] == "worse"
    assert decision["adc_bits=8"]["decision"] == "equivalent"
    assert decision["adc_bits=2"]["decision"] == "equivalent"   # -0.3 pt: within 1 point
    assert decision["adc_bits=8"]["n"] in (5, 8, 12) and decision["adc_bits=8"]["n"] > 3
    assert len(calls) == len(set(calls)) == len(ResultStore(store).read().records)
    again = []
    assert run_sweep(store, points, task=CORA, rule=QUICK, runner=_counting(again)) == records
    assert again == []
    answer = design_answer(summary)
    assert answer["answer"]["label"] == "adc_bits=2"        # fewest bits within the margin
    assert {a["axis"]: a["worse"] for a in answer["per_axis"]} == {"encoding": ["ternary"],
                                                                   "adc_bits": [1]}
    assert summary["comparisons"] == 4 and summary["code"]["current_matches"]


def test_raising_the_seed_cap_never_flips_a_decision_and_reuses_every_run(tmp_path):
    store = tmp_path / "runs.jsonl"
    points = [{"adc_bits": b} for b in (1, 2, 3, 8)] + [{"encoding": "ternary"}]
    small_rule, large_rule = DecisionRule(cap=5), DecisionRule(cap=18)
    small = summarize(run_sweep(store, points, task=CORA, rule=small_rule, runner=fake_job),
                      small_rule)
    before = set(ResultStore(store).read().by_key())
    calls = []
    large = summarize(run_sweep(store, points, task=CORA, rule=large_rule,
                                runner=_counting(calls)), large_rule)
    assert before.isdisjoint(calls)  # nothing computed twice
    for a, b in zip(small["points"], large["points"]):
        if a["decision"]["decision"] != "undecided":
            assert (b["decision"]["decision"], b["decision"]["n"]) == \
                (a["decision"]["decision"], a["decision"]["n"])


def test_a_changed_setting_computes_new_runs_and_never_returns_old_ones(tmp_path):
    store = tmp_path / "runs.jsonl"
    run_sweep(store, [{"adc_bits": 8}], task=CORA, rule=QUICK, runner=fake_job)
    calls = []
    records = run_sweep(store, [{"adc_bits": 8}], task=dataclasses.replace(CORA, budget=150),
                        rule=QUICK, runner=_counting(calls))
    assert calls and all(r["settings"]["task"]["budget"] == 150 for r in records)
    assert len(calls) == len(records)


def test_pages_state_the_method_the_seeds_the_comparisons_and_the_code(tmp_path):
    points = [{"encoding": e} for e in ("bitplanes-1", "ternary", "bitplanes-4")]
    points += [{"encoding": e, "adc_bits": b} for e in ("ternary", "bitplanes-4") for b in (2, 8)]
    records = run_sweep(tmp_path / "runs.jsonl", points, task=CORA, rule=QUICK,
                        runner=fake_job)
    summary = summarize(records, QUICK)
    text = markdown(summary, prefix="p")
    n = len(points)
    assert f"{n} settings were compared ({n} equivalence and {n} loss tests)" in text
    assert "TOST" in text and "alpha / (k (k + 1))" in text and "±1 accuracy point" in text
    assert "Every run was computed by the current code" in text
    assert "### error encoding x camera bit depth" in text and "**worse**" in text
    assert "The cost front" in text and "(p_front.png)" in text
    page = sweep_page(summary, "python scripts/noise_sweep.py --x", "p")
    assert page.startswith("# Noise and quantization sweep: gcn-cora")
    assert "Written by `python scripts/noise_sweep.py --x`" in page
    assert "What makes a run fail, seed by seed" in "\n".join(failure_section(summary))
    paths = plot_sweep(summary, tmp_path, prefix="p")
    assert [p.name for p in paths] == ["p_axes.png", "p_snr.png", "p_front.png",
                                       "p_encoding_x_adc_bits.png"]
    assert all(p.stat().st_size > 5_000 for p in paths)
    # Runs computed by other code are said to be so, plainly.
    for record in records:
        record["settings"]["code"] = {"source": "0" * 16, "numpy": "1.0", "python": "3.0"}
    assert "computed by other code than the current one" in markdown(summarize(records, QUICK))


def test_a_dask_cluster_writes_the_runs_of_a_serial_sweep_and_releases_them(tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    points = [{"adc_bits": 1}, {"adc_bits": 8}]
    rule = DecisionRule(cap=3)
    serial = run_sweep(tmp_path / "a.jsonl", points, task=CORA, rule=rule, runner=fake_job)
    with distributed.LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster:
        said = []
        dasked = run_sweep(tmp_path / "b.jsonl", points, task=CORA, rule=rule,
                           runner=fake_job, dask=cluster.scheduler_address, say=said.append)
        tasks = cluster.scheduler.tasks  # every stored run was released: the cluster holds none
    strip = [{k: v for k, v in r.items() if k != "written"} for r in serial]
    assert strip == [{k: v for k, v in r.items() if k != "written"} for r in dasked]
    assert not tasks
    assert any(f"Dask scheduler {cluster.scheduler_address}" in line for line in said)


def test_dask_releases_each_result_once_the_caller_has_it():
    """A stored run is forgotten by the cluster: losing a worker cannot bring it back."""
    distributed = pytest.importorskip("dask.distributed")
    import time

    from studies.sweep.run import _dask, make_jobs

    jobs = make_jobs(CORA, [({"adc_bits": 4}, i) for i in range(3)], base="lab-bench", seed=0,
                     encoding=None, fidelity_errors=0)
    with distributed.LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        engine = _dask(jobs, fake_job, client, cluster.scheduler_address, lambda message: None)
        first, _ = next(engine)
        assert first.name in cluster.scheduler.tasks  # held until the caller has stored it
        second, _ = next(engine)
        deadline = time.monotonic() + 5.0
        while first.name in cluster.scheduler.tasks and time.monotonic() < deadline:
            time.sleep(0.05)
        assert first.name not in cluster.scheduler.tasks
        assert {job.name for job, _ in engine} | {first.name, second.name} == \
            {job.name for job in jobs}


@pytest.mark.slow
def test_local_workers_and_a_dask_cluster_write_the_same_runs_with_named_keys(tmp_path):
    pytest.importorskip("dask.distributed")
    points = [{"adc_bits": 1}, {"adc_bits": 8}]
    rule = DecisionRule(cap=3)
    serial = run_sweep(tmp_path / "a.jsonl", points, task=CORA, rule=rule, runner=fake_job)
    pooled = run_sweep(tmp_path / "b.jsonl", points, task=CORA, rule=rule, runner=fake_job,
                       workers=2)
    said = []
    dasked = run_sweep(tmp_path / "c.jsonl", points, task=CORA, rule=rule, runner=fake_job,
                       workers=2, dask="local", say=said.append)
    strip = [{k: v for k, v in r.items() if k != "written"} for r in serial]
    assert strip == [{k: v for k, v in r.items() if k != "written"} for r in pooled]
    assert strip == [{k: v for k, v in r.items() if k != "written"} for r in dasked]
    assert any("dashboard http" in line and "scheduler tcp://" in line for line in said)


def test_with_no_dask_worker_the_client_says_it_waits_and_for_how_long(tmp_path, monkeypatch):
    distributed = pytest.importorskip("dask.distributed")
    import threading

    from studies.sweep import run as engines

    monkeypatch.setattr(engines, "DASK_WAIT_REPORT_S", 0.3)
    said = []
    with distributed.LocalCluster(n_workers=0, processes=False, dashboard_address=None) as cluster:
        timer = threading.Timer(1.0, cluster.scale, args=(1,))
        timer.start()
        records = run_sweep(tmp_path / "runs.jsonl", [{"adc_bits": 1}], task=CORA,
                            rule=DecisionRule(cap=3), runner=fake_job,
                            dask=cluster.scheduler_address, say=said.append)
        timer.join()
    waiting = [line for line in said if "no Dask worker at" in line]
    assert waiting and "waiting for one (0 s so far)" in waiting[0]
    assert len(records) == 3 * 4  # the point and three references, three seeds each


def test_dask_task_keys_name_the_point_and_the_seed():
    from studies.sweep.run import make_jobs

    (job,) = make_jobs(CORA, [({"adc_bits": 4}, 2)], base="lab-bench", seed=0, encoding=None,
                       fidelity_errors=0)
    assert job.name.startswith("gcn-cora adc_bits=4, seed=2 (") and job.key[:8] in job.name


def test_an_unreachable_scheduler_is_given_up_within_ten_seconds_naming_it():
    pytest.importorskip("dask.distributed")
    import time

    from studies.sweep.run import DaskUnavailable, dask_client

    start = time.monotonic()
    with pytest.raises(DaskUnavailable, match=r"dask = 'tcp://127.0.0.1:9': no Dask scheduler "
                                              r"answered"):
        with dask_client("tcp://127.0.0.1:9", 1, print):
            pass
    assert time.monotonic() - start < 10.0


@pytest.mark.slow
def test_a_finished_run_is_not_recomputed_after_a_worker_is_lost(tmp_path, monkeypatch):
    """Kill a worker once runs are stored: no stored run is computed again."""
    distributed = pytest.importorskip("dask.distributed")
    import os
    import signal
    import threading

    calls = tmp_path / "calls.txt"
    monkeypatch.setenv("SWEEP_FAKE_CALLS", str(calls))
    monkeypatch.setenv("SWEEP_FAKE_DELAY", "0.3")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None)
    store = ResultStore(tmp_path / "runs.jsonl")
    stored_before_kill, killed = [], []

    def kill_one():
        while len(store.read(warn=False).records) < 6:
            threading.Event().wait(0.1)
        stored_before_kill.extend(store.read(warn=False).by_key())
        nanny = next(iter(cluster.workers.values()))
        os.kill(nanny.process.process.pid, signal.SIGKILL)  # a worker lost, as a crash loses it
        killed.append(True)

    killer = threading.Thread(target=kill_one, daemon=True)
    killer.start()
    try:
        run_sweep(store, [{"adc_bits": b} for b in (1, 2, 3, 4, 5, 6)], task=CORA,
                  rule=DecisionRule(cap=3), runner=fake_job, dask=cluster.scheduler_address)
    finally:
        cluster.close()
    killer.join(timeout=5)
    counted = read_calls(calls)
    assert killed and stored_before_kill and all(counted.count(k) == 1 for k in stored_before_kill)


def test_one_real_run_trains_through_a_virtual_device_and_records_its_feedback(tmp_path):
    task = dataclasses.replace(CORA, budget=4)
    records = run_sweep(tmp_path / "real.jsonl", [{"encoding": "ternary"}], task=task,
                        rule=DecisionRule(first=2, cap=2), reference_seeds=1,
                        fidelity_errors=64)
    device = [r for r in records if r["settings"]["device"] is not None]
    assert [r["settings"]["seed"] for r in device] == [0, 1]
    device = device[0]
    result = device["result"]
    assert 0.0 < result["test_accuracy"] <= 1.0 and result["frames"] > 0
    feedback = result["feedback"]
    assert feedback["steps"] == 4 and math.isfinite(feedback["snr_db"])
    assert feedback["encoding_snr_db"] is not None and len(result["curve"]) == 4
    assert 0.0 < result["fidelity"]["correlation"] < 1.0
    assert ResultStore(tmp_path / "real.jsonl").read().by_key()[device["key"]]["result"] == result


def test_a_sweep_runs_on_a_users_own_graph_object(tmp_path):
    from dfa_bridge.data import contextual_sbm

    graph = contextual_sbm(n_nodes=200, n_features=50, n_val=40, n_test=50, seed=3)
    task = StudyTask("gcn", graph, budget=2, hyper=(("hidden", (16,)),))
    records = run_sweep(tmp_path / "own.jsonl", [{"encoding": "bitplanes-2"}], task=task,
                        rule=DecisionRule(first=2, cap=2), reference_seeds=1)
    assert {r["settings"]["task"]["data"]["fingerprint"] for r in records} == {
        task.fingerprint()}
    assert all(r["result"]["fidelity"] is None for r in records)  # a user's data: in training only
    assert any(r["result"]["feedback"] for r in records)


def _script(*args, timeout=120):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "scripts/noise_sweep.py", *args], capture_output=True,
                          text=True, timeout=timeout)


def _main(*args):
    """The script's main in this process, as run_main ends it: (exit status, stderr)."""
    import contextlib
    import importlib.util
    import io

    spec = importlib.util.spec_from_file_location("noise_sweep_script", "scripts/noise_sweep.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    from photon.support.cli import run_main

    errors = io.StringIO()
    with contextlib.redirect_stderr(errors):
        try:
            status = run_main(script.main, list(args), prog="noise_sweep.py")
        except SystemExit as stop:  # argparse's usage errors
            status = stop.code
    return status, errors.getvalue()


@pytest.mark.parametrize("args, message", [
    (["--values", "adc_bits=7"], "'7' is not a value of adc_bits"),
    (["--values", "bits=1"], "--values 'bits=1': expected AXIS=V,V"),
    (["--pairs", "adc_bits"], "expected two axis names joined by ':'"),
    (["--task", "gcn-cora", "--model", "gcn", "--data", "cora"], "expected either named tasks"),
    (["--model", "gcn"], "expected both for a task of your own"),
    (["--encoding", "quaternary"], "encoding = 'quaternary'"),
    (["--steps", "5"], "--steps 5: expected --epochs for task(s) gcn-cora"),
    (["--max-seeds", "2"], "--max-seeds 2: expected an integer >= 3"),
])
def test_the_script_names_a_bad_argument_in_one_line(tmp_path, args, message):
    status, errors = _main("--out", str(tmp_path), *args)
    assert status == 2 and message in errors and "Traceback" not in errors


def test_an_unreachable_dask_scheduler_ends_the_script_in_one_line_naming_it(tmp_path):
    pytest.importorskip("dask.distributed")
    status, errors = _main("--out", str(tmp_path), "--values", "encoding=ternary",
                           "--dask", "tcp://127.0.0.1:9")
    assert status == 2 and errors.count("\n") == 1
    assert "error: dask = 'tcp://127.0.0.1:9': no Dask scheduler answered" in errors


@pytest.mark.slow
def test_the_script_sweeps_a_users_planetoid_files_and_reruns_nothing(tmp_path):
    """--model gcn --data cora --data-path DIR: a user's copy of the files, keyed on content."""
    import shutil

    from dfa_bridge.data import PLANETOID_DIRECTORY

    files = tmp_path / "mine"
    shutil.copytree(PLANETOID_DIRECTORY, files)
    out = tmp_path / "out"
    args = ["--out", str(out), "--model", "gcn", "--data", "cora", "--data-path", str(files),
            "--epochs", "3", "--values", "encoding=ternary", "--max-seeds", "3",
            "--reference-seeds", "1", "--fidelity-errors", "0", "--workers", "1", "--json"]
    first = _script(*args, timeout=900)
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)["gcn-cora (own files)"]["summary"]
    assert summary["data"]["fingerprint"] == CORA.fingerprint()  # the same content as embedded
    lines = (out / "noise_sweep.jsonl").read_text().splitlines()
    again = _script(*args, timeout=900)
    assert again.returncode == 0 and (out / "noise_sweep.jsonl").read_text().splitlines() == lines
    page = (out / "noise_sweep_gcn-cora_own_files.md").read_text()
    assert "Written by `python scripts/noise_sweep.py --out" in page and "--data-path" in page
    assert "[gcn-cora_own_files](noise_sweep_gcn-cora_own_files.md)" in (out / "index.md").read_text()


@pytest.mark.slow
def test_serial_workers_and_dask_give_identical_numbers_for_real_runs(tmp_path):
    """Real training and fidelity: the same numbers from the three engines (one BLAS thread)."""
    pytest.importorskip("dask.distributed")
    task = dataclasses.replace(CORA, budget=3)
    common = dict(task=task, rule=DecisionRule(first=2, cap=2), reference_seeds=1,
                  fidelity_errors=64)
    points = [{"encoding": "ternary"}, {"photon_budget": 30}]
    serial = run_sweep(tmp_path / "a.jsonl", points, **common)
    pooled = run_sweep(tmp_path / "b.jsonl", points, workers=2, **common)
    dasked = run_sweep(tmp_path / "c.jsonl", points, workers=2, dask="local", **common)

    def numbers(records):
        return [{k: v for k, v in r["result"].items() if k != "seconds"} for r in records]

    assert numbers(serial) == numbers(pooled) == numbers(dasked)


def test_a_sweep_point_measures_the_device_make_feedback_opens():
    """The stored device is the one DFA trains through: the same mirrors per class and the
    same spacing of the outputs (a sweep that read adjacent outputs would measure another
    feedback than the trainer's)."""
    from dfa_bridge.training.feedback import OUTPUT_SPACING, make_feedback

    device = run_settings({"adc_bits": 6}, 0, task=CORA)["settings"]["device"]
    source = make_feedback("lab-bench", [CORA.feedback_width()], CORA.n_classes())
    opened = source.device.chain.config
    assert device["camera"]["output_pitch_bins"] == OUTPUT_SPACING == \
        opened.camera.output_pitch_bins
    assert device["dmd"]["macropixel_mirrors"] == opened.dmd.macropixel_mirrors
    assert (device["n_in"], device["n_out"]) == (opened.n_in, opened.n_out)
    source.close()
