"""scripts/gpu_check.sh: present, executable, and its dry run lists every GPU step in budget."""

import os
import pathlib
import re
import shutil
import subprocess

import pytest

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "scripts" / "gpu_check.sh"


def test_the_gpu_check_script_exists_and_is_executable():
    assert SCRIPT.is_file() and os.access(SCRIPT, os.X_OK)


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_the_dry_run_prints_every_step_within_ten_minutes(tmp_path):
    env = dict(os.environ, OUT=str(tmp_path / "out"))
    done = subprocess.run(["bash", str(SCRIPT), "--dry-run"], capture_output=True, text=True,
                          env=env, timeout=30, check=True)
    lines = done.stdout.splitlines()
    text = done.stdout
    assert "-m pytest -m gpu" in text
    assert re.search(r"bench_physics\.py --backend cupy --n-in 16384 --n-out 16384 "
                     r"--batch 4096 --precision tf32 --json", text)
    assert re.search(r"bench_physics\.py --full-size --backend cupy --precision tf32 "
                     r"--batch 1024 --json", text)
    for model in ("mlp", "gcn", "transformer"):
        for backend in ("cupy", "numpy"):
            assert re.search(rf"train\.py --model {model} .*--backend {backend} --json", text)
    assert re.search(r"throughput\.py --out \S+/throughput --max-exp 15", text)
    assert re.search(r"dfa_step_cost\.py --gpu-only --repeats 5", text)
    # Every output goes under the one folder ($OUT), and nothing ran.
    assert all(str(tmp_path / "out") in line for line in lines)
    assert not (tmp_path / "out").exists()
    limits = [int(m) for m in re.findall(r"timeout (\d+)s", text)]
    assert len(limits) == len(lines) - 1 and sum(limits) <= 600


def test_an_unknown_argument_is_refused_by_name():
    done = subprocess.run(["bash", str(SCRIPT), "--fast"], capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 2
    assert "unknown argument '--fast': expected --dry-run, --out DIR or --help" in done.stderr
