"""The DFA step-cost study as one run and one page (``scripts/dfa_step_cost.py``).

:func:`step_cost_study` runs everything once: the crossover table and maps under each
schedule (:data:`studies.step_cost.SCHEDULES`) on a modelled GPU, the inverse design on
every modelled GPU (:mod:`studies.step_inverse`) beside today's presets, the model's
check against steps measured here (and on a GPU present) with the operations that
check pins (:mod:`studies.step_validation`), and optionally the accuracy cost of the
overlapped schedule's stale feedback and of micro DFA (:mod:`studies.dfa_variants`).
:func:`markdown_page` writes it as one page; every number on it comes from that run.
"""

from __future__ import annotations

import time

from studies.gpu_model import GPUS
from studies.step_cost import (OPTIONS, PUBLISHED_CLAIMS, SCHEDULES, compare_options,
                               crossover_grid, crossover_markdown, encoder_planes, gpt3_shapes,
                               gpu_machine, opu_spec, plot_crossover_map, toolkit_shapes)
from studies.step_inverse import inverse_design, inverse_markdown, preset_rates
from studies.throughput import assumptions_markdown

__all__ = ["ladder_shapes", "step_cost_study", "accuracy_results", "claims", "markdown_page",
           "write_figures", "ACCURACY_VERSION"]

#: The presets the inverse design is compared with.
PRESETS = ("datacenter-opu", "lab-bench")


def ladder_shapes() -> list:
    """The crossover table's shapes: this toolkit's, the GPT-3 ladder, and two variants.

    The GPT-3 ladder with shared macro feedback; GPT-3 175B with sliced feedback (one
    signal per block: ``S = L D``); the char Transformer and GPT-3 Small and 175B with
    micro DFA (shared: ``S = 5 D``).
    """
    from dataclasses import replace  # noqa: PLC0415

    toolkit = toolkit_shapes()
    ladder = gpt3_shapes("shared")
    big = ladder[-1]
    return (list(toolkit.values()) + ladder
            + [replace(big, feedback_mode="sliced", name=f"{big.name} (sliced)")]
            + [replace(shape, feedback_mode="micro-shared", name=f"{shape.name} (micro)")
               for shape in (toolkit["char Transformer"], ladder[0], big)])


def step_cost_study(gpu: str = "H100", precision: str = "bf16", device: str = "datacenter-opu",
                    encoder: str = "ternary", n_bits: int = 4, gpu_idle_w: float = 100.0,
                    validate: bool = True, quick: bool = False, repeats: int = 7,
                    accuracy: bool = False, accuracy_seeds=range(5), micro_steps: int = 600,
                    accuracy_store=None, command: str = "", progress: bool | None = None) -> dict:
    """The whole study, each figure computed or measured once (see the module notes).

    Parameters
    ----------
    gpu, precision, gpu_idle_w
        The modelled GPU of the crossover table and maps (the inverse design runs on
        every one of :data:`studies.gpu_model.GPUS` at ``precision``).
    device
        The OPU of ``dfa-opu`` (a preset name).
    encoder, n_bits
        The error encoder (binary planes per vector).
    validate, quick, repeats
        Check the model against steps measured here (``quick``: one shape), ``repeats``
        interleaved timings each.
    accuracy, accuracy_seeds, micro_steps
        Measure the accuracy cost of stale feedback and of micro DFA, on these seeds.
    accuracy_store, command
        A JSON file keeping those results under their settings (:func:`accuracy_results`)
        and the command that runs this study.
    progress
        Progress bars on stderr.
    """
    from studies.step_validation import (sensitivity, validate_on_cpu,  # noqa: PLC0415
                                         validate_on_gpu, validation_shapes)
    from studies.throughput import local_gpu_name  # noqa: PLC0415

    start = time.perf_counter()
    machine = gpu_machine(gpu, precision, idle_power_w=gpu_idle_w)
    opu = opu_spec(device)
    planes = encoder_planes(encoder, n_bits)
    shapes = ladder_shapes()
    ladders = {s: [compare_options(shape, machine, opu, planes, schedule=s) for shape in shapes]
               for s in SCHEDULES}
    grids = {s: crossover_grid(machine, opu, planes, progress=progress, schedule=s)
             for s in SCHEDULES}
    inverse = {}
    for name in GPUS:
        other = gpu_machine(name, precision, idle_power_w=gpu_idle_w)
        inverse[other.name] = [row for shape in shapes
                               for row in inverse_design(shape, other, opu, planes)]
    presets = {shape.feedback_width: preset_rates(shape.feedback_width, PRESETS)
               for shape in shapes}
    result = {"machine": machine.describe(), "opu": {**opu.describe(), "encoder": encoder,
                                                      "planes_per_vector": planes},
              "options": list(OPTIONS), "schedules": list(SCHEDULES), "ladders": ladders,
              "grids": grids, "inverse": inverse, "presets": presets,
              "tables": {s: crossover_markdown(ladders[s], machine) for s in SCHEDULES}}
    validation = {}
    if validate:
        shapes_here = validation_shapes()[:1] if quick else None
        validation["cpu"] = validate_on_cpu(shapes_here, repeats=repeats, progress=progress)
        validation["cpu"]["sensitivity"] = sensitivity(validation["cpu"])
        gpu_name = local_gpu_name()
        if gpu_name:
            validation["gpu"] = validate_on_gpu(shapes_here, repeats=repeats, gpu_name=gpu_name,
                                                progress=progress)
    result["validation"] = validation
    if accuracy:
        result["accuracy"] = accuracy_results(accuracy_seeds, micro_steps, accuracy_store,
                                              command, progress)
    result["claims"] = claims(ladders, grids["sequential"], machine, opu, planes)
    result["assumptions"] = {
        "gpu": machine.assumptions,
        "opu": f"{opu.name}: {opu.n_in} inputs, {opu.n_out} outputs, frame time "
               f"{opu.frame_time_s:.4g} s at full frame, shorter for fewer outputs (its camera "
               f"reads exactly the rows holding them), {opu.electrical_power_w} W wall-plug (its "
               "preset cites its sources); linear mode, complement identity: 2 frames per binary "
               "plane, 2 reference frames per 1024 input frames (devices.cost.job_cost)",
        "encoder": f"{encoder}: {planes} binary planes per error vector",
        "schedules": "sequential: the machine waits for the OPU; overlapped: the OPU projects "
                     "step t's error during step t+1 (period max(machine, OPU)); layer-parallel: "
                     "one machine per layer or block (pipeline split, communication not "
                     "counted), DFA's local updates all at once; energy counts the machines' "
                     f"ASSUMED idle {gpu_idle_w} W while they wait for the OPU",
        "transformer_dfa": "macro DFA (Launay et al. 2020): each block keeps its internal "
                           "backward; micro DFA (their 'full' variant, feedback modes micro-*): "
                           "a signal after the attention sublayer, at the feed-forward hidden "
                           "layer and at the block output",
        "cpu_validation": "this CPU's rates measured in the same run (validation.cpu)",
    }
    result["seconds"] = time.perf_counter() - start
    return result


#: Changes when what the accuracy studies compute changes (a stored result then reruns).
ACCURACY_VERSION = 1


def accuracy_results(seeds, micro_steps: int, store=None, command: str = "",
                     progress: bool | None = None) -> dict:
    """The accuracy cost of stale feedback and of micro DFA, computed or reused.

    The results are keyed on what they depend on (the seeds, the tasks and budgets,
    the margins, :data:`ACCURACY_VERSION`): a ``store`` holding results under the same
    key is reused (and says so, with the command that measured it); otherwise the two
    studies run (:mod:`studies.dfa_variants`, long), the store written after each (a
    rerun after an interruption keeps the finished one).
    """
    import json  # noqa: PLC0415
    import pathlib  # noqa: PLC0415

    from photon.support.jsonio import write_json  # noqa: PLC0415
    from studies.dfa_variants import (STALE_TASKS, micro_dfa_study,  # noqa: PLC0415
                                      stale_feedback_study)

    key = json.loads(json.dumps({"seeds": list(seeds), "stale_tasks": STALE_TASKS,
                                 "micro_steps": micro_steps, "stale_margin_points": 1.0,
                                 "micro_margin_nats": 0.02, "version": ACCURACY_VERSION}))
    path = pathlib.Path(store) if store else None
    stored = json.loads(path.read_text()) if path is not None and path.exists() else {}
    if stored.get("key") == key and "stale" in stored and "micro" in stored:
        return {**stored, "reused_from": str(path)}
    if stored.get("key") != key:
        stored = {}
    result = {"key": key, "command": command, "seconds": stored.get("seconds", 0.0)}
    studies = {"stale": lambda: stale_feedback_study(key["seeds"], progress=progress),
               "micro": lambda: micro_dfa_study(key["seeds"], micro_steps, progress=progress)}
    for name, study in studies.items():  # each kept as soon as it is done
        if name in stored:
            result[name] = stored[name]
            continue
        start = time.perf_counter()
        result[name] = study()
        result["seconds"] += time.perf_counter() - start
        if path is not None:
            write_json(path, result)
    return result


def claims(ladders: dict, grid: dict, machine, opu, planes: int) -> list:
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
    wins = {s: [e["shape"]["name"] for e in ladder
                if e["costs"]["dfa-opu"]["seconds"] < e["costs"]["bp"]["seconds"]]
            for s, ladder in ladders.items()}
    mlp_wins = sorted(cell["parameters"] for row in grid["mlp"]["cells"] for cell in row
                      if cell["seconds"]["dfa-opu"] < cell["seconds"]["bp"])
    second = {**PUBLISHED_CLAIMS[1], "model": {
        **{f"shapes_where_dfa_opu_beats_bp_{s}": names for s, names in wins.items()},
        "smallest_mlp_parameters_where_dfa_opu_beats_bp_sequential":
            mlp_wins[0] if mlp_wins else None,
        "device_frame_time_s": opu.frame_time_s,
        "note": "with the presets' frame rates; the inverse design gives the frame rate each "
                "shape would need, per schedule"}}
    return [first, second]


def write_figures(result: dict, out) -> None:
    """One crossover map per schedule into ``out``."""
    machine = result["machine"]
    for schedule, grid in result["grids"].items():
        plot_crossover_map(grid, out / f"crossover_map_{schedule}.png",
                           f"{machine['name']} (MODEL) with {result['opu']['name']} "
                           f"({result['opu']['planes_per_vector']} planes/vector), {schedule} "
                           "schedule")


def _validation_markdown(validation: dict, title: str) -> list:
    from studies.timing import spread_text  # noqa: PLC0415

    lines = [f"### {title}", "",
             "| shape | option | measured (s) | spread | model (s) | model / measured - 1 | "
             "forward | backward | feedback | update |", "|" + "---|" * 10]
    for r in validation["rows"]:
        model = r.get("model_s")
        spread = spread_text({"median_s": r["measured_s"], "q25_s": r["q25_s"],
                              "q75_s": r["q75_s"]})
        phases = []
        for phase in ("forward", "backward", "feedback", "update"):
            p = r.get("phases", {}).get(phase)
            if p is None or p.get("error") is None:
                phases.append("-")
            else:
                mark = "**" if p["substantial"] else ""
                phases.append(f"{mark}{p['error']:+.0%}{mark} ({p['share']:.0%})")
        lines.append(f"| {r['shape']} | {r['option']} | {r['measured_s']:.4g} | {spread} | "
                     + ("-" if model is None else f"{model:.4g}") + " | "
                     + ("-" if "error" not in r else f"{r['error']:+.0%}") + " | "
                     + " | ".join(phases) + " |")
    if validation.get("max_abs_error") is not None:
        criteria = validation["criteria"]
        lines += ["", f"**Median absolute step error {validation['median_abs_error']:.1%} "
                  f"(criterion <= {criteria['median']:.0%}), worst "
                  f"{validation['max_abs_error']:.1%} (<= {criteria['worst']:.0%}); worst "
                  f"substantial phase "
                  + ("-" if validation["worst_phase_error"] is None
                     else f"{validation['worst_phase_error']:.1%}")
                  + f" (<= {criteria['phase']:.0%}): "
                  f"{'passed' if validation['passed'] else 'FAILED'}.**", "",
                  "Phase columns: error (the phase's share of the measured step); bold: a "
                  f"substantial phase (>= {criteria['phase_min_share']:.0%} of its step and >= "
                  f"{criteria['phase_min_s'] * 1e3:.0f} ms), checked alone."]
    return lines + [""]


def _sensitivity_markdown(rows: list) -> list:
    if not rows:
        return ["(no operation makes up most of a substantial phase in these shapes)", ""]
    lines = ["Each operation below makes up most of a substantial measured phase; the model "
             "with that one operation's cost doubled or halved is checked again on every "
             "measurement:", "",
             "| operation | where it dominates | its share | x2: median / worst / phase | "
             "x0.5: median / worst / phase | check fails (x2, x0.5) |", "|---|---|---|---|---|---|"]
    by_op = {}
    for row in rows:
        by_op.setdefault(row["op"], {})[row["factor"]] = row
    for op, factors in by_op.items():
        first = next(iter(factors.values()))

        def fmt(row):
            phase = "-" if row["worst_phase_error"] is None else f"{row['worst_phase_error']:.0%}"
            return f"{row['median_abs_error']:.0%} / {row['max_abs_error']:.0%} / {phase}"

        caught = ", ".join("yes" if factors[f]["caught"] else "**no**" for f in sorted(factors,
                                                                                      reverse=True))
        lines.append(f"| `{op}` | {first['shape']}, {first['option']}, {first['phase']} | "
                     f"{first['share']:.0%} | {fmt(factors.get(2.0, first))} | "
                     f"{fmt(factors.get(0.5, first))} | {caught} |")
    return lines + [""]


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


def _key_lines(result: dict) -> list:
    """The inverse design's headline: per schedule, where today's datacenter-opu stands."""
    lines = []
    machine = result["machine"]["name"]
    rows = result["inverse"].get(machine, [])
    for schedule in result["schedules"]:
        tied = [r for r in rows if r["schedule"] == schedule and r["against"] == "bp"]
        possible = [r for r in tied if r["frame_rate_hz"] is not None]
        enough = [r for r in possible
                  if any(p["passes"] == 1 and p["frame_rate_hz"] >= r["frame_rate_hz"]
                         for p in result["presets"][r["outputs"]]
                         if p["preset"] == "datacenter-opu")]
        text = (f"- **{schedule}**: a frame rate that ties backprop exists for {len(possible)} of "
                f"{len(tied)} shapes")
        if possible:
            easiest = min(possible, key=lambda r: r["frame_rate_hz"])
            rate = next(p for p in result["presets"][easiest["outputs"]]
                        if p["preset"] == "datacenter-opu")
            text += (f"; the lowest is {easiest['frame_rate_hz']:.3g} fps ({easiest['shape']}, "
                     f"{easiest['outputs']:,} outputs; `datacenter-opu` reads "
                     f"{rate['outputs_read']:,} outputs at {rate['frame_rate_hz']:.0f} fps)")
        text += (f"; today's `datacenter-opu` is fast enough for "
                 f"{', '.join(r['shape'] for r in enough) if enough else 'none'}.")
        lines.append(text)
    return lines


def markdown_page(result: dict, command: str) -> str:
    """The study as one Markdown page (``command``: what wrote it)."""
    from studies.dfa_variants import variants_markdown  # noqa: PLC0415

    machine = result["machine"]
    lines = ["# DFA training step: BP, DFA on the GPU (dense, structured), DFA through an OPU", "",
             f"Written by `{command}` in {result['seconds']:.0f} s; every number below comes "
             "from that run.", "",
             "## Model and schedules", "",
             "A step is a list of operations counted from the code of `dfa_bridge.nn` "
             "(FLOPs, elements moved, exp/tanh, launches); each takes `max(F / R_gemm, bytes / B) "
             "+ launches t_launch` on the machine (GEMMs), `max(F / R_vec, X / R_exp, bytes / B) + "
             "launches t_launch` otherwise. `dfa-opu` adds the OPU's frames (encoder planes x 2 + "
             "2 references per 1024 input frames, per error vector, at the device's frame time "
             "for the outputs it reads, and its wall-plug power). See `studies/step_cost.py`.", "",
             "Every result is labelled with its **schedule**:", "",
             "- **sequential**: every operation in turn; the machine waits for the OPU.",
             "- **overlapped**: the OPU projects step t's error while the machine runs step "
             "t+1 (forward, its error, the local updates of step t): period max(machine, OPU). "
             "The feedback is one step stale; its accuracy cost is measured below.",
             "- **layer-parallel**: one machine per layer or block (communication not counted); "
             "BP's backward is a chain, DFA's local updates all start once the error is "
             "projected.", "",
             "Options without an OPU run the projection on the machine itself: overlapped is "
             "their sequential time. **Micro DFA** (feedback to every layer inside a block) is an "
             "option beside macro DFA: the rows marked (micro).", "",
             f"GPU side: **{machine['name']}: a roofline MODEL, not a measurement** "
             f"({machine['implementation']['name']}).", ""]
    lines += ["## Validation against steps measured here", ""]
    validation = result["validation"]
    if validation.get("cpu"):
        cpu = validation["cpu"]
        lines += ["The same model on this CPU: its rates (a GEMM and a skinny GEMM, a streaming "
                  "pass over large and over cache-sized arrays, one Adam step over a weight matrix "
                  "for the update's passes, a tanh, a tiny training step for "
                  "the cost of a launch, two structured projections) timed in the same "
                  f"interleaved rotation as the steps, {cpu['repeats']} repeats each, medians "
                  f"(spread: half the interquartile range); BLAS threads: {cpu['blas_threads']}, "
                  f"clock: {cpu['clock']} (the process's CPU time: other processes on the shared "
                  "cores do not inflate it). Every phase of a step is timed too (the trainer's "
                  "forward with the loss, its backward without the projection, the projection, "
                  "the update).", ""]
        lines += _validation_markdown(cpu, "This CPU (NumPy)")
        lines += ["### What the check pins", ""] + _sensitivity_markdown(cpu.get("sensitivity", []))
    else:
        lines += ["(not run: `--no-validate`)", ""]
    if validation.get("gpu"):
        lines += _validation_markdown(validation["gpu"],
                                      f"GPU present: {validation['gpu']['gpu']} (CuPy)")
    else:
        lines += ["No GPU here: `scripts/gpu_check.sh` runs the same check against CuPy steps "
                  "on a GPU (`scripts/dfa_step_cost.py --gpu-only`).", ""]
    lines += ["## Inverse design: the OPU that would tie", "",
              "For each shape, schedule and modelled GPU: the frame rate at which an OPU reading "
              "the shape's S feedback outputs (one pass) ties backprop's step time and dense DFA's "
              "(`max(c, a + F tau) = T`), the energy per step at that tie with "
              f"`{result['opu']['name']}`'s {result['opu']['electrical_power_w']:g} W, the OPU "
              "power at which the energies would tie too, and today's presets reading the same "
              "outputs (their cameras' read-out of exactly those rows). Where no frame rate can, "
              "the line says which part of the machine's own share already takes that long.", ""]
    lines += _key_lines(result) + [""]
    for name, rows in result["inverse"].items():
        lines += [f"### {name} (MODEL)", "", inverse_markdown(rows, result["presets"]), ""]
    accuracy = result.get("accuracy")
    lines += ["## What the schedules cost in accuracy (measured)", ""]
    if accuracy:
        where = (f"reused from `{accuracy['reused_from']}` (the same settings), measured by "
                 f"`{accuracy['command']}`" if accuracy.get("reused_from")
                 else "measured by this run")
        lines += [f"Measured over seeds with DFA's ideal feedback, {where} in "
                  f"{accuracy['seconds']:.0f} s.", "",
                  variants_markdown(accuracy["stale"], accuracy["micro"])]
    else:
        lines += ["(not run: `--accuracy`)", ""]
    lines += ["## Crossover tables", ""]
    for schedule, table in result["tables"].items():
        lines += [f"### {schedule}", "", table, ""]
    lines += ["## Where each option wins", ""]
    for schedule in result["schedules"]:
        lines += [f"![crossover map, {schedule}](crossover_map_{schedule}.png)", ""]
    lines += ["Each cell: the option with the least time (left) or energy (right) per step; the "
              "number is its cost over bp's; hatched: `dfa-opu` beats `dfa-dense`. MLP: 784 "
              "inputs, 4 hidden layers, batch 1024; Transformer: the char model and the GPT-3 "
              "ladder at their tokens per step, sliced feedback (S = L D). One map per schedule.",
              "", "## Published claims weighed", ""]
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
