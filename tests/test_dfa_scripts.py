"""scripts/train.py, bench_dfa.py and dfa_study.py run end to end at small sizes."""

import json
import subprocess
import sys

import numpy as np
import pytest


def _run(*args, expect=0):
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == expect, done.stderr
    return done


def test_train_prints_the_promised_json_and_saves_plots(tmp_path):
    done = _run("scripts/train.py", "--model", "mlp", "--data", "digits", "--method", "dfa",
                "--feedback", "ideal", "--epochs", "3", "--seed", "1", "--json", "--plot",
                str(tmp_path))
    result = json.loads(done.stdout)
    assert result["epochs"] == 3 and result["method"] == "dfa"
    assert 0.85 < result["test_accuracy"] <= 1.0
    assert 0 < result["train_loss"] < 1.0 and result["seconds"] > 0
    alignment = result["alignment_deg"]
    assert len(alignment["update_vs_gradient"]) == 2 == len(alignment["weights_vs_feedback"])
    assert all(0 < angle < 90 for angle in alignment["weights_vs_feedback"])
    assert len(result["curves"]["test_accuracy"]) == 3
    for path in result["plots"]:
        assert (tmp_path / path.split("/")[-1]).stat().st_size > 10_000
    assert json.loads((tmp_path / "mlp_digits_dfa_ideal.json").read_text())["epochs"] == 3
    assert "dfa training" in done.stderr  # the progress bar


def test_train_runs_a_gcn_through_a_virtual_opu():
    result = json.loads(_run("scripts/train.py", "--model", "gcn", "--data", "csbm", "--method",
                             "dfa", "--feedback", "lab-bench", "--epochs", "5", "--json").stdout)
    assert result["feedback"]["source"] == "lab-bench"
    assert result["data"]["n_nodes"] == 2000 and 0 < result["test_accuracy"] <= 1
    assert len(result["alignment_deg"]["update_vs_gradient"]) == 1


@pytest.mark.parametrize("args, message", [
    (("--feedback", "no-such-opu"), "feedback = 'no-such-opu': expected 'ideal' or a device"),
    (("--model", "gcn", "--data", "digits"), "data = 'digits': expected a graph dataset"),
    (("--data", "mnist"), "path = None: expected the directory of the mnist files"),
    (("--data", "mnist", "--data-path", "/nowhere/mnist"), "path = '/nowhere/mnist': expected a directory"),
    (("--method", "hebbian"), "invalid choice: 'hebbian'"),
    (("--model", "gcn", "--batch-size", "8"), "batch_size = 8: expected one of the hyper-parameters"),
    (("--model", "transformer",),
     "epochs = 1: expected None for model 'transformer', which trains in steps: give steps"),
    (("--steps", "5"), "steps = 5: expected None for model 'mlp', which trains in epochs"),
    (("--blocks", "2"), "n_blocks = 2: expected one of the hyper-parameters of model 'mlp'"),
    (("--max-train", "10", "--model", "transformer"), "expected None for model 'transformer'"),
])
def test_train_refuses_bad_arguments_with_a_clear_message(args, message):
    done = _run("scripts/train.py", "--epochs", "1", *args, expect=2)
    assert message in done.stderr


def test_train_bp_needs_no_feedback_and_reports_no_update_angle():
    done = _run("scripts/train.py", "--method", "bp", "--epochs", "2", "--max-train", "300",
                "--hidden", "32", "--lr", "0.01", "--json")
    result = json.loads(done.stdout)
    assert result["feedback"] is None and result["epochs"] == 2
    assert result["alignment_deg"] == {"update_vs_gradient": None, "weights_vs_feedback": None}
    assert 0.7 < result["test_accuracy"] <= 1.0 and len(result["curves"]["test_accuracy"]) == 2
    text = _run("scripts/train.py", "--method", "shallow", "--epochs", "1", "--max-train", "200",
                "--hidden", "32").stdout
    assert "shallow (no feedback), 1 epochs" in text and "alignment" not in text


def test_train_gcn_on_the_embedded_cora_reaches_the_published_accuracy():
    # Kipf & Welling 2017 report 81.5 % (mean of 100 runs, std about 0.5 points): a
    # correct two-layer GCN on the shipped Planetoid split reaches 80 % on any seed.
    result = json.loads(_run("scripts/train.py", "--model", "gcn", "--data", "cora",
                             "--method", "bp", "--json").stdout)
    assert result["data"]["name"] == "cora" and result["data"]["n_train"] == 140
    assert result["test_accuracy"] >= 0.80


def test_train_help_names_shared_the_default_feedback_mode():
    text = " ".join(_run("scripts/train.py", "--help").stdout.split())
    assert "shared: the same signal for every block (default)" in text
    assert "sliced: one slice of the projection per block" in text
    assert "sliced: one slice of the projection per block (default)" not in text


def test_bench_dfa_prints_the_step_times_and_their_ratio():
    result = json.loads(_run("scripts/bench_dfa.py", "--json", "--features", "64", "--hidden",
                             "128,128", "--batch", "32", "--repeats", "3", "--device-repeats",
                             "2", "--device-steps", "2", "--device-threads", "1").stdout)
    for key in ("bp_s", "dfa_s", "bp_backward_s", "dfa_backward_s"):
        assert result[key] > 0
    assert result["dfa_over_bp"] == pytest.approx(result["dfa_s"] / result["bp_s"])
    assert result["hidden"] == [128, 128] and result["batch_size"] == 32
    # Beside them: a DFA step through the small lab-bench device over ideal feedback, for
    # the MLP's own encoding (also at the top level) and ternary errors.
    device = result["device_feedback"]
    assert device["device"] == "lab-bench" and device["device_outputs"] == [10, 512]
    assert list(device["by_encoding"]) == ["bitplanes-4", "ternary"]
    # 32 errors x planes (8 for signed 4-bit, 2 ternarized) x 2 (complement pair) + 2 references
    for encoding, frames in (("bitplanes-4", 514), ("ternary", 130)):
        part = device["by_encoding"][encoding]
        assert part["frames_per_step"] == frames and part["pixel_frames_per_step"] == frames * 512
        assert part["device_extra_s_per_frame"] == pytest.approx(
            (part["numpy"]["device_step_s"] - part["numpy"]["ideal_step_s"]) / frames)
        for front in ("numpy", "torch"):
            if part[front] is None:                  # torch not installed
                continue
            ratios = part[front]["ratios"]
            assert len(ratios) == 2 and part[front]["device_over_ideal"] == pytest.approx(
                float(np.median(ratios)))
            assert part[front]["read_noise_s"] > 0 and part[front]["read_noise_over_ideal"] > 0
    assert device["frames_per_step"] == 514 and device["numpy"] == device["by_encoding"][
        "bitplanes-4"]["numpy"]
    done = _run("scripts/bench_dfa.py", "--device-encodings", "ternary,bitplanes-0", expect=2)
    assert done.stderr == ("bench_dfa.py: error: --device-encodings = 'ternary,bitplanes-0': "
                           "encoding = 'bitplanes-0': expected 'ternary' or 'bitplanes-N' "
                           "(N = 1 .. 16 bits per sign)\n")
    done = _run("scripts/bench_dfa.py", "--device-threads", "0", expect=2)
    assert done.stderr == ("bench_dfa.py: error: argument --device-threads: 0: expected a "
                           "positive integer\n")


def test_dfa_study_reports_accuracies_gaps_and_goals():
    summary = json.loads(_run("scripts/dfa_study.py", "--study", "csbm", "--epochs", "3",
                              "--json").stdout)
    assert set(summary["accuracy_pct"]) == {"gcn-bp", "gcn-dfa", "gcn-shallow", "mlp-features"}
    gap = summary["gaps_pt"]["gcn-dfa - gcn-shallow"]
    accuracy = summary["accuracy_pct"]
    assert gap == pytest.approx(accuracy["gcn-dfa"] - accuracy["gcn-shallow"])
    assert set(summary["goals"]) == {"feature-only MLP below 80 %", "gcn dfa within 2 points of gcn bp",
                                     "gcn dfa above gcn shallow"}
    assert summary["runs"]["gcn-bp"]["alignment_deg"]["update_vs_gradient"] is None
    assert len(summary["runs"]["gcn-dfa"]["alignment_deg"]["update_vs_gradient"]) == 1


def test_dfa_study_counts_the_transformer_in_steps():
    done = _run("scripts/dfa_study.py", "--study", "transformer", "--epochs", "3", expect=2)
    assert "epochs = 3: expected None for model 'transformer', which trains in steps" in done.stderr
    done = _run("scripts/dfa_study.py", "--study", "digits", "--steps", "3", expect=2)
    assert "steps = 3: expected None for model 'mlp', which trains in epochs" in done.stderr


def test_dfa_study_over_seeds_writes_its_page_with_paired_intervals(tmp_path):
    out = tmp_path / "studies"
    result = json.loads(_run("scripts/dfa_study.py", "--study", "csbm", "--epochs", "8",
                             "--seeds", "3", "--out", str(out), "--json").stdout)
    assert result["seeds"] == [0, 1, 2] and len(result["per_seed"]) == 3
    # Each gap is summarized from the per-seed (paired) differences of its two runs.
    per_seed = [s["accuracy_pct"]["gcn-dfa"] - s["accuracy_pct"]["gcn-bp"]
                for s in result["per_seed"]]
    gap = result["gaps"]["gcn-dfa - gcn-bp"]
    assert gap["values"] == pytest.approx(per_seed)
    assert gap["mean"] == pytest.approx(sum(per_seed) / 3)
    assert gap["within_noise"] == (abs(gap["mean"]) <= gap["ci95"])
    runs = result["runs"]["gcn-bp"]
    assert runs["mean"] == pytest.approx(
        sum(s["accuracy_pct"]["gcn-bp"] for s in result["per_seed"]) / 3)
    page = (out / "csbm.md").read_text()
    assert "scripts/dfa_study.py --study csbm --epochs 8 --seeds 3" in page and "+-" in page
    assert "[csbm](csbm.md)" in (out / "index.md").read_text()
    assert json.loads((out / "csbm.json").read_text())["study"] == "csbm"
    assert (out / "csbm_learning.png").stat().st_size > 0


@pytest.mark.parametrize("script, args, named", [
    ("scripts/calibrate.py", ["--device", "no-such-device"], "device = 'no-such-device'"),
    ("scripts/dfa_study.py", ["--study", "csbm", "--epochs", "0"], "epochs"),
    ("scripts/precision_study.py", ["--device", "missing.yaml"], "missing.yaml"),
])
def test_a_users_error_is_one_line_not_a_traceback(script, args, named):
    done = subprocess.run([sys.executable, script, *args], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and named in done.stderr
