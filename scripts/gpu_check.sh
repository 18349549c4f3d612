#!/usr/bin/env bash
# Run every GPU measurement of the toolkit in one go and summarize it in one folder.
#
#   bash scripts/gpu_check.sh                 # outputs in gpu_check_out/ (or $OUT when set)
#   bash scripts/gpu_check.sh --out DIR       # outputs in DIR
#   bash scripts/gpu_check.sh --dry-run       # print the steps and their time limits only
#
# Sized for one H100/H200-class GPU: every step runs under `timeout`; the limits add up to
# 600 s, and GPU_CHECK_BUDGET_S (default 570) caps them all together, so the whole check
# ends within 10 minutes (about 5 minutes typical). A step
# that fails or runs out of time is recorded in steps.tsv and the check goes on; the exit
# status is 1 when any step failed. Steps, in order (typical time on an H100/H200):
#
#   1. pytest -m gpu                                        gpu_tests.log          ~1 min
#   2. bench_physics 16384 x 16384, batch 4096, tf32         bench_tf32.json        ~1 min
#      (goal: gemm_throughput_fraction >= 0.6)
#   3. bench_physics --full-size, tf32, batch 1024           bench_full_size.json   ~2 min
#      (the whole datacenter-opu, 1,039,680 -> 2,000,000, streamed; projections/s next to
#      the device's own rate)
#   4. DFA on CuPy and on NumPy, seeds 0 and 1: digits MLP, GCN on csbm, a short
#      Transformer                                          dfa_*.json             ~2 min
#   5. the DFA step-cost model against training steps measured with CuPy (twelve shapes,
#      bp / dense / structured DFA, each phase timed; the model of this GPU from
#      studies.gpu_model)                                   step_model.json        ~30 s
#   6. throughput study with CuPy rows, --max-exp 15, every CPU core for the NumPy rows
#                                                           throughput/            ~1 min
#   7. summary: index.md (GPU name, bench figures against their goals, DFA CuPy/NumPy
#      accuracy and speed-up, the step model's errors), to be copied to docs/gpu/ with
#      the results.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT_DIR="${OUT:-gpu_check_out}"
DRY_RUN=0
while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) DRY_RUN=1 ;;
        --out) shift; OUT_DIR="${1:?--out: expected a folder}" ;;
        -h|--help) sed -n '2,29p' "$0"; exit 0 ;;
        *) echo "gpu_check.sh: unknown argument '$1': expected --dry-run, --out DIR or --help" >&2
           exit 2 ;;
    esac
    shift
done
PYTHON="${PYTHON:-python3}"
BUDGET_S="${GPU_CHECK_BUDGET_S:-570}"
START_S=$(date +%s)
FAILED=0

cd "$ROOT"
if [ "$DRY_RUN" -eq 0 ]; then
    mkdir -p "$OUT_DIR"
    OUT_DIR="$(cd "$OUT_DIR" && pwd)"
    printf 'step\tlimit_s\tseconds\texit\n' > "$OUT_DIR/steps.tsv"
fi

# step NAME LIMIT_S OUTPUT_FILE COMMAND...: run COMMAND under `timeout`, stdout to
# OUTPUT_FILE in the output folder (stderr to NAME.log), within what is left of the budget.
step() {
    local name="$1" limit="$2" output="$3"
    shift 3
    if [ "$DRY_RUN" -eq 1 ]; then
        echo "[$name] timeout ${limit}s $* > $OUT_DIR/$output"
        return 0
    fi
    local left=$(( BUDGET_S - ($(date +%s) - START_S) ))
    [ "$limit" -gt "$left" ] && limit="$left"
    if [ "$limit" -le 5 ]; then
        echo "[$name] skipped: the ${BUDGET_S} s budget is spent" >&2
        printf '%s\t%s\t0\tskipped\n' "$name" "$limit" >> "$OUT_DIR/steps.tsv"
        FAILED=1
        return 0
    fi
    echo "[$name] $* (limit ${limit}s)" >&2
    local t0 rc=0
    t0=$(date +%s)
    timeout --kill-after=10 "$limit" "$@" > "$OUT_DIR/$output" 2> "$OUT_DIR/$name.log" || rc=$?
    printf '%s\t%s\t%s\t%s\n' "$name" "$limit" "$(( $(date +%s) - t0 ))" "$rc" >> "$OUT_DIR/steps.tsv"
    if [ "$rc" -ne 0 ]; then
        echo "[$name] exit $rc (124: out of time); see $OUT_DIR/$name.log" >&2
        FAILED=1
    fi
}

step gpu_tests 80 gpu_tests.log "$PYTHON" -m pytest -m gpu -q -p no:cacheprovider tests
step bench_tf32 60 bench_tf32.json "$PYTHON" scripts/bench_physics.py --backend cupy \
    --n-in 16384 --n-out 16384 --batch 4096 --precision tf32 --json
step bench_full_size 140 bench_full_size.json "$PYTHON" scripts/bench_physics.py --full-size \
    --backend cupy --precision tf32 --batch 1024 --json
for seed in 0 1; do
    for backend in cupy numpy; do
        step "dfa_mlp_${backend}_s${seed}" 18 "dfa_mlp_${backend}_s${seed}.json" "$PYTHON" \
            scripts/train.py --model mlp --data digits --method dfa --epochs 10 \
            --seed "$seed" --backend "$backend" --json
        step "dfa_gcn_${backend}_s${seed}" 12 "dfa_gcn_${backend}_s${seed}.json" "$PYTHON" \
            scripts/train.py --model gcn --data csbm --method dfa --epochs 50 \
            --seed "$seed" --backend "$backend" --json
    done
done
for backend in cupy numpy; do
    step "dfa_transformer_${backend}_s0" 25 "dfa_transformer_${backend}_s0.json" "$PYTHON" \
        scripts/train.py --model transformer --method dfa --steps 60 --blocks 2 --width 64 \
        --seed 0 --backend "$backend" --json
done
step step_model 45 step_model.json "$PYTHON" scripts/dfa_step_cost.py --gpu-only --repeats 5
step throughput 105 throughput.json "$PYTHON" scripts/throughput.py --out "$OUT_DIR/throughput" \
    --max-exp 15 --threads 0 --json

if [ "$DRY_RUN" -eq 1 ]; then
    echo "[summary] $PYTHON - $OUT_DIR > $OUT_DIR/index.md"
    exit 0
fi

"$PYTHON" - "$OUT_DIR" > "$OUT_DIR/index.md" <<'PY' || FAILED=1
"""Summarize the GPU check's outputs as Markdown (docs/gpu/index.md style)."""
import json
import pathlib
import statistics
import subprocess
import sys

out = pathlib.Path(sys.argv[1])


def load(name):
    try:
        return json.loads((out / name).read_text())
    except (OSError, ValueError):
        return None


def gpu_name():
    try:
        return subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version",
                               "--format=csv,noheader"], capture_output=True, text=True,
                              check=True, timeout=20).stdout.strip()
    except Exception:
        try:
            import cupy
            name = cupy.cuda.runtime.getDeviceProperties(0)["name"]
            return name.decode() if isinstance(name, bytes) else str(name)
        except Exception:
            return "unknown (neither nvidia-smi nor CuPy answered)"


def fmt(value, spec=".4g"):
    return "n/a" if value is None else format(value, spec)


lines = ["# GPU check", "", f"GPU: {gpu_name()}", ""]
steps = (out / "steps.tsv").read_text().splitlines()[1:]
lines += ["## Steps", "", "| step | limit (s) | time (s) | exit |", "|---|---|---|---|"]
lines += ["| " + " | ".join(row.split("\t")) + " |" for row in steps]
tests = (out / "gpu_tests.log").read_text().strip().splitlines() if (out / "gpu_tests.log").exists() else []
lines += ["", f"`pytest -m gpu`: {tests[-1] if tests else 'no output'}", ""]

lines += ["## Physics benchmark", "", "| run | chain (s) | GEMM (s) | GEMM fraction (goal >= 0.6) "
          "| projections/s | device's own rate (projections/s) |", "|---|---|---|---|---|---|"]
for name, label in (("bench_tf32.json", "16384 x 16384, batch 4096, tf32"),
                    ("bench_full_size.json", "datacenter-opu full size, batch 1024, tf32")):
    r = load(name) or {}
    fraction = r.get("gemm_throughput_fraction")
    met = "" if fraction is None else (" (met)" if fraction >= 0.6 else " (not met)")
    lines.append(f"| {label} | {fmt(r.get('chain_s'))} | {fmt(r.get('gemm_s'))} | "
                 f"{fmt(fraction, '.3f')}{met} | {fmt(r.get('projections_per_s'))} | "
                 f"{fmt(r.get('device_projections_per_s'))} |")

lines += ["", "## DFA training, CuPy against NumPy", "",
          "| model | metric | CuPy (per seed) | NumPy (per seed) | CuPy - NumPy | seed spread "
          "| NumPy s / CuPy s |", "|---|---|---|---|---|---|---|"]
for model, metric in (("mlp", "test_accuracy"), ("gcn", "test_accuracy"),
                      ("transformer", "val_perplexity")):
    runs = {b: [r for r in (load(f"dfa_{model}_{b}_s{s}.json") for s in (0, 1)) if r]
            for b in ("cupy", "numpy")}
    values = {b: [r[metric] for r in runs[b] if r.get(metric) is not None] for b in runs}
    seconds = {b: sum(r["seconds"] for r in runs[b]) for b in runs}
    gap = spread = speedup = None
    if values["cupy"] and values["numpy"]:
        gap = statistics.mean(values["cupy"]) - statistics.mean(values["numpy"])
        every = values["cupy"] + values["numpy"]
        spread = max(values["numpy"]) - min(values["numpy"]) if len(values["numpy"]) > 1 \
            else max(every) - min(every)
        if seconds["cupy"] > 0 and len(runs["cupy"]) == len(runs["numpy"]):
            speedup = seconds["numpy"] / seconds["cupy"]
    lines.append(f"| {model} | {metric} | {', '.join(fmt(v) for v in values['cupy']) or 'n/a'} | "
                 f"{', '.join(fmt(v) for v in values['numpy']) or 'n/a'} | {fmt(gap)} | "
                 f"{fmt(spread)} | {fmt(speedup, '.2f')} |")

model = load("step_model.json") or {}
lines += ["", "## The DFA step-cost model against CuPy steps", ""]
if model.get("median_abs_error") is not None:
    lines += [f"Model: {(model.get('model') or {}).get('name', 'n/a')}. Median absolute step error "
              f"{model['median_abs_error']:.1%}, worst {model['max_abs_error']:.1%} (criteria "
              f"<= 15 % and <= 30 %): {'passed' if model.get('passed') else 'FAILED'}.", "",
              "| shape | option | measured (s) | model (s) | error |", "|---|---|---|---|---|"]
    lines += [f"| {r['shape']} | {r['option']} | {fmt(r['measured_s'])} | "
              f"{fmt(r.get('model_s'))} | {fmt(r.get('error'), '+.0%')} |"
              for r in model.get("rows", [])]
else:
    lines.append("not run, or no roofline spec for this GPU (measurements alone in "
                 "step_model.json)")
lines.append("")

tp = load("throughput.json")
lines += ["", "## Throughput study", "",
          "CuPy rows measured: " + ("yes" if tp and tp.get("gpu_present") else "no")
          + " (full table: throughput/).", ""]
print("\n".join(lines))
PY

echo "gpu_check.sh: outputs in $OUT_DIR (summary: $OUT_DIR/index.md)" >&2
exit "$FAILED"
