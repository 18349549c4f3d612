"""DFA step cost: BP, DFA with feedback on the GPU (dense, structured) and DFA through an OPU.

Usage::

    python scripts/dfa_step_cost.py --out dfa_step_cost/ --json
    python scripts/dfa_step_cost.py --gpu H200 --precision bf16 --device datacenter-opu

Models one training step (:mod:`studies.step_cost`) for this toolkit's
sizes and the GPT-3 ladder (vocabulary 50257), on the roofline MODEL of a named GPU
(``--gpu``, ``--precision``) with the OPU of ``--device`` for ``dfa-opu``; validates the
step model against steps measured here (this CPU, calibrated in the same run; with a
GPU present, also against steps measured with CuPy, printing the model's error);
draws where each option wins in time and in energy (PNG) and writes the crossover
table (Markdown). Every modelled number carries its assumptions and sources.
"""

from __future__ import annotations

import argparse
import importlib.util
import pathlib
import sys
import time

if importlib.util.find_spec("dfa_bridge") is None:  # run from a checkout without installing
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from studies.gpu_model import GPUS, PRECISIONS  # noqa: E402
from studies.throughput import assumptions_markdown, local_gpu_name  # noqa: E402
from studies.step_cost import (OPTIONS, PUBLISHED_CLAIMS, compare_options,  # noqa: E402
                                          crossover_grid, crossover_markdown, encoder_planes,
                                          gpt3_shapes, gpu_machine, opu_spec,
                                          plot_crossover_map, toolkit_shapes, validate_on_cpu,
                                          validate_on_gpu, validation_shapes)
from photon.support.cli import run_main  # noqa: E402
from photon.support.jsonio import dumps  # noqa: E402

__all__ = ["main", "claims", "markdown_page"]


def claims(ladder: list, grid: dict, machine, opu, planes: int) -> list:
    """The published claims next to what this model says (plain data)."""
    ops_intensity = 2.0 * opu.n_in * opu.n_out / opu.frame_time_s
    frames_per_vector = 2 * planes
    gpu_flops = machine.gemm_flops_per_s
    first = {**PUBLISHED_CLAIMS[0], "model": {
        "device": opu.name,
        "equivalent_ops_per_s_intensity": ops_intensity,
        "equivalent_ops_per_s_linear_dfa": ops_intensity / frames_per_vector,
        "joules_per_op_linear_dfa": opu.electrical_power_w / (ops_intensity / frames_per_vector),
        "gpu_gemm_flops_per_s": gpu_flops,
        "gpu_joules_per_flop": machine.power_w / gpu_flops,
        "note": "equivalent operations count 2 n_in n_out per frame, useful only when the "
                "projection fills the device; a DFA error of C << n_in uses C / n_in of them"}}
    transformer_wins = [e["shape"]["name"] for e in ladder if e["shape"]["family"] == "transformer"
                        and e["costs"]["dfa-opu"]["seconds"] < e["costs"]["bp"]["seconds"]]
    mlp_wins = sorted(cell["parameters"] for row in grid["mlp"]["cells"] for cell in row
                      if cell["seconds"]["dfa-opu"] < cell["seconds"]["bp"])
    frame_times = {e["shape"]["name"]: e["break_even_frame_time_s"]["bp"] for e in ladder}
    second = {**PUBLISHED_CLAIMS[1], "model": {
        "transformer_shapes_where_dfa_opu_beats_bp": transformer_wins,
        "smallest_mlp_parameters_where_dfa_opu_beats_bp": mlp_wins[0] if mlp_wins else None,
        "break_even_frame_time_vs_bp_s": frame_times,
        "device_frame_time_s": opu.frame_time_s,
        "note": "sequential steps on one machine (the machine waits for the OPU); DFA's "
                "layer-parallel backward and pipelining are not modelled"}}
    return [first, second]


def _validation_markdown(validation: dict, title: str) -> list:
    lines = [f"### {title}", "",
             "| shape | option | measured (s) | model (s) | model / measured - 1 |",
             "|---|---|---|---|---|"]
    for r in validation["rows"]:
        model = r.get("model_s")
        lines.append(f"| {r['shape']} | {r['option']} | {r['measured_s']:.4g} | "
                     + ("-" if model is None else f"{model:.4g}") + " | "
                     + ("-" if "error" not in r else f"{r['error']:+.0%}") + " |")
    if validation.get("max_abs_error") is not None:
        lines += ["", f"Largest error: {validation['max_abs_error']:.0%}."]
    return lines + [""]


def markdown_page(result: dict) -> str:
    """The study as one Markdown page."""
    machine = result["machine"]
    lines = ["# DFA training step: BP, DFA on the GPU (dense, structured), DFA through an OPU", "",
             f"Written by `python scripts/dfa_step_cost.py` in {result['seconds']:.0f} s.", "",
             "## Model", "",
             "A step is a list of operations counted from the code of `dfa_bridge.nn` "
             "(FLOPs, elements moved, exp/tanh, launches); each takes `max(F / R_gemm, bytes / B) "
             "+ launches t_launch` on the machine (GEMMs), `max(F / R_vec, X / R_exp, bytes / B) + "
             "launches t_launch` otherwise, summed. `dfa-opu` adds the OPU's frames (encoder "
             "planes x 2 + 2 references per 1024 input frames, per error vector, at the "
             "device's frame time and wall-plug power) while the machine waits at its idle "
             "power. See `studies/step_cost.py`.", "",
             f"GPU side: **{machine['name']}: a roofline MODEL, not a measurement** "
             f"({machine['implementation']['name']}).", ""]
    lines += ["## Validation against steps measured here", ""]
    if result["validation"].get("cpu"):
        lines += ["The same model on this CPU, its rates (one GEMM, one streaming pass, one "
                  "tanh, tiny calls) timed in the same interleaved rotation as the steps; BLAS "
                  f"threads: {result['validation']['cpu']['blas_threads']}, clock: "
                  f"{result['validation']['cpu']['clock']} (the process's CPU time: other "
                  "processes on the shared cores do not inflate it).", ""]
        lines += _validation_markdown(result["validation"]["cpu"], "This CPU (NumPy)")
    else:
        lines += ["(not run: `--no-validate`)", ""]
    if result["validation"].get("gpu"):
        lines += _validation_markdown(result["validation"]["gpu"],
                                      f"GPU present: {result['validation']['gpu']['gpu']} (CuPy)")
    lines += ["## Crossover table", "", result["table"], "",
              "Break-even OPU frame time (s) below which `dfa-opu` would beat each option "
              "(None: never, the machine's own share is already slower):", "",
              "| shape | " + " | ".join(o for o in OPTIONS if o != "dfa-opu") + " |",
              "|---|" + "---|" * (len(OPTIONS) - 1)]
    for entry in result["ladder"]:
        even = entry["break_even_frame_time_s"]
        lines.append(f"| {entry['shape']['name']} | " + " | ".join(
            "None" if even[o] is None else f"{even[o]:.3g}" for o in OPTIONS if o != "dfa-opu")
            + " |")
    lines += ["", "## Where each option wins", "",
              "![crossover map](crossover_map.png)", "",
              "Each cell: the option with the least time (left) or energy (right) per step; the "
              "number is its cost over bp's; hatched: `dfa-opu` beats `dfa-dense`. MLP: 784 "
              "inputs, 4 hidden layers, batch 1024; Transformer: the char model and the GPT-3 "
              "ladder at their tokens per step, sliced feedback (S = L D).", "",
              "## Published claims weighed", ""]
    for claim in result["claims"]:
        lines.append(f"- **{claim['claim']}** ({claim['source']}). This model:")
        for key, value in claim["model"].items():
            lines.append(f"  - {key.replace('_', ' ')}: {_plain(value)}")
    gpu = result["assumptions"]["gpu"]
    lines += ["", "## Assumptions and sources", "",
              assumptions_markdown({machine["name"]: gpu}),
              f"- transcendentals: {gpu['transcendentals']}",
              f"- idle power while waiting for the OPU: ASSUMED {gpu['idle_power_w']} W",
              f"- implementation: {_plain(gpu['implementation'])} (ASSUMED)",
              f"- scale: {gpu['scale']}"]
    for key, value in result["assumptions"].items():
        if key != "gpu":
            lines.append(f"- {key.replace('_', ' ')}: {_plain(value)}")
    return "\n".join(lines) + "\n"


def _plain(value) -> str:
    """A number to 3 significant digits, a dict as ``key: value`` pairs, else as text."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, (int, float)):
        return f"{value:.3g}"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_plain(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(_plain(v) for v in value) or "none"
    return str(value)


def main(argv=None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpu", default="H100", choices=sorted(GPUS), help="GPU modelled")
    parser.add_argument("--precision", default="bf16", choices=PRECISIONS,
                        help="GEMM precision of the modelled GPU (default bf16)")
    parser.add_argument("--device", default="datacenter-opu", help="OPU of dfa-opu (a preset)")
    parser.add_argument("--encoder", default="ternary", choices=("ternary", "bitplanes"))
    parser.add_argument("--n-bits", type=int, default=4, help="bits per sign of bitplanes")
    parser.add_argument("--gpu-idle-w", type=float, default=100.0,
                        help="ASSUMED power of the GPU while it waits for the OPU (W)")
    parser.add_argument("--repeats", type=int, default=7, help="timed steps per validation point")
    parser.add_argument("--quick", action="store_true",
                        help="validate on the smallest shape only (for tests)")
    parser.add_argument("--no-validate", action="store_true", help="skip the measured steps")
    parser.add_argument("--out", default=None, help="directory for the PNG and Markdown")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats {args.repeats}: expected a positive integer")
    start = time.perf_counter()
    machine = gpu_machine(args.gpu, args.precision, idle_power_w=args.gpu_idle_w)
    opu = opu_spec(args.device)
    planes = encoder_planes(args.encoder, args.n_bits)
    shapes = list(toolkit_shapes().values()) + gpt3_shapes("shared") + gpt3_shapes("sliced")[-1:]
    ladder = [compare_options(shape, machine, opu, planes) for shape in shapes]
    for entry, shape in zip(ladder, shapes):  # tell shared and sliced 175B apart
        if shape.family == "transformer" and shape.feedback_mode == "sliced":
            entry["shape"]["name"] += " (sliced)"
    grid = crossover_grid(machine, opu, planes)
    result = {"machine": machine.describe(), "opu": {**vars(opu), "encoder": args.encoder,
                                                      "planes_per_vector": planes},
              "options": list(OPTIONS), "ladder": ladder, "grid": grid,
              "table": crossover_markdown(ladder, machine)}
    validation = {}
    if not args.no_validate:
        shapes_here = validation_shapes()[:1] if args.quick else None
        validation["cpu"] = validate_on_cpu(shapes_here, repeats=args.repeats)
        gpu_name = local_gpu_name()
        if gpu_name:
            validation["gpu"] = validate_on_gpu(shapes_here, repeats=args.repeats,
                                                gpu_name=gpu_name)
    result["validation"] = validation
    result["claims"] = claims(ladder, grid, machine, opu, planes)
    result["assumptions"] = {
        "gpu": machine.assumptions,
        "opu": f"{opu.name}: {opu.n_in} inputs, {opu.n_out} outputs, frame time "
               f"{opu.frame_time_s} s, {opu.electrical_power_w} W wall-plug (its preset cites "
               "its sources); linear mode, complement identity: 2 frames per binary plane, 2 "
               "reference frames per 1024 input frames (devices.cost.job_cost)",
        "encoder": f"{args.encoder}: {planes} binary planes per error vector",
        "sequential": "the machine waits for the OPU (no overlap, no pipelining); energy counts "
                      f"the GPU's ASSUMED idle {args.gpu_idle_w} W meanwhile",
        "transformer_dfa": "macro DFA (Launay et al. 2020): each block keeps its internal "
                           "backward; only the chain between blocks is replaced",
        "cpu_validation": "this CPU's rates measured in the same run (see validation.cpu.machines)",
    }
    result["seconds"] = time.perf_counter() - start
    if args.out:
        out = pathlib.Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        plot_crossover_map(grid, out / "crossover_map.png",
                           f"{machine.name} (MODEL) with {opu.name} ({planes} planes/vector)")
        (out / "dfa_step_cost.md").write_text(markdown_page(result), encoding="utf-8")
        result["figure"] = str(out / "crossover_map.png")
    if args.json:
        print(dumps(result, indent=1))
    else:
        print(result["table"])
    if validation:
        for where, report in validation.items():
            if report.get("max_abs_error") is not None:
                print(f"step model vs measured ({where}): largest error "
                      f"{report['max_abs_error']:.0%}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
