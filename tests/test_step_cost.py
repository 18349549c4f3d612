"""The DFA training step's cost model: counts, machines, the OPU's frames, the check here."""

import json
import math
import subprocess
import sys

import pytest

from devices.cost import job_cost
from studies.step_cost import (HOUSE_NUMPY, OPTIONS, Machine, MLPShape, OPUSpec,
                                          TransformerShape, compare_options, crossover_grid,
                                          encoder_planes, gpt3_shapes, gpu_machine, step_cost,
                                          step_ops, toolkit_shapes, validate_on_cpu,
                                          validation_shapes)

TINY = MLPShape(4, (3,), 2, 5, "tiny")  # widths 4 -> 3 -> 2, batch 5


def _gemm_flops(shape, option, phase):
    return sum(op.count * op.flops for op in step_ops(shape, option)
               if op.kind == "gemm" and op.phase == phase)


def test_tiny_mlp_flops_match_a_hand_count():
    # forward: 2 b (4*3 + 3*2) = 180; BP backward: dW 2 b (3*4 + 2*3) = 180 and dX of the
    # top layer only, 2 b 2*3 = 60; DFA backward: dW only; dense feedback: 2 b C S = 60.
    assert _gemm_flops(TINY, "bp", "forward") == 180
    assert _gemm_flops(TINY, "bp", "backward") == 240
    assert _gemm_flops(TINY, "dfa-dense", "backward") == 180
    assert _gemm_flops(TINY, "dfa-dense", "feedback") == 60
    assert _gemm_flops(TINY, "dfa-structured", "feedback") == 0
    assert TINY.parameters == 4 * 3 + 3 + 3 * 2 + 2
    update = [op for op in step_ops(TINY, "bp") if op.phase == "update"]
    assert len(update) == 1 and update[0].nbytes == 116 * TINY.parameters  # house Adam
    assert update[0].launches == 12 * 4  # twelve calls per tensor, four tensors


def test_transformer_gemm_flops_are_six_n_p_plus_attention():
    # The classic estimate: 6 N P for the dense layers (N tokens, P weights of the
    # blocks and the head) plus 12 N L T D for the attention products (full T x T).
    shape = gpt3_shapes()[-1]
    n, d, layers, t, v = shape.tokens, shape.width, shape.n_blocks, shape.context, shape.vocab
    weights = layers * 12 * d * d + d * v
    expected = 6 * n * weights + 12 * n * layers * t * d
    total = sum(_gemm_flops(shape, "bp", phase) for phase in ("forward", "backward"))
    assert total == pytest.approx(expected, rel=1e-9)
    assert shape.parameters == pytest.approx(175e9, rel=0.01)  # GPT-3 175B


def test_roofline_machine_times_each_op():
    machine = Machine("m", "model", gemm_flops_per_s=1e9, vector_flops_per_s=1e8,
                      bytes_per_s=1e9, transcendentals_per_s=1e7, launch_s=1e-6, power_w=10.0,
                      idle_power_w=1.0, implementation=HOUSE_NUMPY)
    cost = step_cost(TINY, "bp", machine)
    ops = step_ops(TINY, "bp")
    expected = sum(machine.op_seconds(op) for op in ops)
    assert cost["seconds"] == pytest.approx(expected)
    assert cost["joules"] == pytest.approx(10.0 * expected)
    gemm = next(op for op in ops if op.kind == "gemm")
    assert machine.op_seconds(gemm) == pytest.approx(
        max(gemm.flops / 1e9, 4 * gemm.elements / 1e9) + 1e-6)


def test_opu_frames_are_planes_times_two_plus_references_per_pass():
    opu = OPUSpec("toy", n_in=1, n_out=10, frame_time_s=1e-3, electrical_power_w=30.0)
    machine = gpu_machine("H100")
    cost = step_cost(TINY, "dfa-opu", machine, opu, planes=2)
    single = job_cost(5, mode="linear", frame_time_s=1e-3, electrical_power_w=30.0,
                      planes_per_vector=2, batch_size=1024)
    assert single.frames == 5 * 2 * 2 + 2
    assert cost["opu_passes"] == 2  # C = 2 classes on a 1-input device: two passes
    assert cost["frames"] == 2 * single.frames
    assert cost["opu_seconds"] == pytest.approx(2 * single.seconds)
    busy = sum(cost["machine_seconds"].values())
    assert cost["seconds"] == pytest.approx(busy + cost["opu_seconds"])
    assert cost["joules"] == pytest.approx(busy * machine.power_w + cost["opu_joules"]
                                           + cost["opu_seconds"] * machine.idle_power_w)
    assert encoder_planes("ternary") == 2 and encoder_planes("bitplanes", 4) == 8
    with pytest.raises(ValueError, match="opu = None"):
        step_cost(TINY, "dfa-opu", machine)


def test_compare_options_and_break_even_frame_time():
    machine = gpu_machine("H200", "bf16")
    opu = OPUSpec("toy", 10 ** 6, 2 * 10 ** 6, 5e-4, 30.0)
    shape = toolkit_shapes()["benchmark MLP"]
    result = compare_options(shape, machine, opu)
    assert set(result["costs"]) == set(OPTIONS)
    assert result["fastest"] == min(result["costs"], key=lambda o: result["costs"][o]["seconds"])
    opu_cost = result["costs"]["dfa-opu"]
    machine_s = sum(opu_cost["machine_seconds"].values())
    for other, frame_time in result["break_even_frame_time_s"].items():
        if frame_time is not None:  # at that frame time dfa-opu ties the other option
            assert machine_s + frame_time * opu_cost["frames"] == pytest.approx(
                result["costs"][other]["seconds"])
    assert machine.kind == "model" and "source" in machine.assumptions["gpu"]


def test_bad_shapes_and_options_are_named():
    with pytest.raises(ValueError, match="hidden width = 0"):
        MLPShape(4, (0,), 2, 5)
    with pytest.raises(ValueError, match="feedback_mode = 'both'"):
        TransformerShape(10, 8, 1, 2, 4, 8, "both")
    with pytest.raises(ValueError, match="option = 'dfa-magic'"):
        step_ops(TINY, "dfa-magic")


def test_crossover_grid_names_a_winner_everywhere():
    grid = crossover_grid(gpu_machine("H100"), OPUSpec("toy", 10 ** 6, 2 * 10 ** 6, 5e-4, 30.0))
    for family in ("mlp", "transformer"):
        cells = [cell for row in grid[family]["cells"] for cell in row]
        assert len(cells) == len(grid[family]["x"]) * len(grid[family]["y"])
        assert all(cell["fastest"] in OPTIONS and cell["most_frugal"] in OPTIONS for cell in cells)


def test_step_model_is_within_30_percent_of_a_step_measured_here():
    # The CPU's rates are timed in the same interleaved rotation as the steps, on one
    # BLAS thread (see validate_on_cpu): the model's error, not the machine's speed.
    result = validate_on_cpu(validation_shapes()[:1], repeats=5, progress=False)
    assert {r["option"] for r in result["rows"]} == {"bp", "dfa-dense", "dfa-structured"}
    assert result["max_abs_error"] < 0.3, result["rows"]


@pytest.mark.slow
def test_step_model_is_within_30_percent_at_every_size_measured_here():
    result = validate_on_cpu(repeats=7, progress=False)
    assert result["max_abs_error"] < 0.3, result["rows"]


def test_dfa_step_cost_script_prints_the_crossover_table(tmp_path):
    done = subprocess.run([sys.executable, "scripts/dfa_step_cost.py", "--quick", "--repeats",
                           "3", "--out", str(tmp_path), "--json"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["machine"]["kind"] == "model" and "(MODEL)" in result["table"]
    names = [entry["shape"]["name"] for entry in result["ladder"]]
    assert names[0] == "digits MLP" and "GPT-3 175B" in names
    assert {r["option"] for r in result["validation"]["cpu"]["rows"]} >= {"bp", "dfa-dense"}
    assert len(result["claims"]) == 2 and all("model" in c for c in result["claims"])
    assert "source" in result["assumptions"]["gpu"]["gpu"]
    page = (tmp_path / "dfa_step_cost.md").read_text()
    for heading in ("## Validation against steps measured here", "## Crossover table",
                    "## Published claims weighed", "## Assumptions and sources"):
        assert heading in page
    assert (tmp_path / "crossover_map.png").stat().st_size > 20_000
    assert math.isfinite(result["seconds"])


def test_opu_frame_time_follows_the_outputs_read():
    opu = OPUSpec("roi", 10, 1000, 4e-3, 30.0, ((1, 1e-3), (512, 2e-3), (1000, 4e-3)))
    assert [opu.frame_time_for(n) for n in (1, 2, 512, 513, 1000)] == [1e-3, 2e-3, 2e-3,
                                                                       4e-3, 4e-3]
    shape = MLPShape(4, (300, 200), 2, 5)  # S = 500 outputs read per frame
    cost = step_cost(shape, "dfa-opu", gpu_machine("H100"), opu)
    assert cost["frame_time_s"] == 2e-3
    assert cost["opu_seconds"] == pytest.approx(cost["frames"] * 2e-3)
