"""The co-design report: calibrate, train through the OPU, sweep noise, compare throughput.

Usage::

    python scripts/report.py                 # writes report/index.md and its PNG figures
    python scripts/report.py --out my-report --epochs 10

On the embedded defaults (the ``lab-bench`` virtual OPU, scikit-learn's digits) it

1. calibrates the virtual device that will carry the DFA feedback (10 inputs, one per
   class, onto 512 outputs) from its frames alone, and draws calibration quality
   against frames for the noise-free and the noisy preset;
2. shows DFA on Cora's GCN over seeds, read from the noise study's store
   (``docs/noise/noise_sweep.jsonl``, or ``--store``): backpropagation, DFA with ideal
   feedback, DFA through the ``lab-bench`` virtual OPU with the default error encoding and
   with the design answer's, the shallow baseline; then trains the digits MLP through the
   virtual OPU and through the *calibrated* device (the estimated TM predicting what the
   OPU would measure);
3. measures the feedback device's noise budget (every source against its prediction)
   and shows the noise study's decisions on Cora's GCN from the same store: each setting
   equivalent to ideal feedback, worse, or undecided (paired two one-sided tests), the
   design answer (the cheapest setting within the margin) and the cost front;
4. compares the OPU's modelled throughput with a dense projection measured here (once:
   the median of interleaved repeats with its spread, the same figures in section 6,
   in ``OUT/throughput/throughput.md`` and, with ``--throughput-out DIR``, in
   ``DIR/throughput.md``);
5. measures what a TF32 or bf16 transmission matrix changes in the speckle;
6. compares the OPU with what a GPU user would pick: the structured projection (SRHT)
   measured here, H100 / H200 roofline models, and the DFA training step's cost model
   (checked against a step measured here) with its crossover maps, one per schedule;

and writes ``OUT/index.md``: every number in it comes from this run, but the stored DFA
runs of sections 2 and 3, which it reads (never recomputes: ``scripts/noise_sweep.py``
writes them) and whose code version it states. Progress goes to stderr throughout.
"""

from __future__ import annotations

import json
import pathlib
import shlex
import sys
import time

import numpy as np

from calibration import calibrate, row_correlation
from studies.calibration_quality import PUBLISHED_R, plot_quality, quality_against_frames
from dfa_bridge import run_experiment
from studies.noise_budget import (budget_check, budget_markdown,
                                             classification_errors, noise_budget)
from studies.sweep import (TASKS, DecisionRule, design_answer, summarize,
                           sweep_points)
from studies.sweep.collect import stored_sweep
from studies.sweep.pages import default_encoding, failure_section
from studies.sweep.render import code_text, decision_text, plot_sweep
from studies.sweep.render import markdown as sweep_markdown
from devices import OPU, VirtualDevice, open_device
from studies.throughput import crossovers, plot_throughput, rate_text
from photon import resolve_config
from photon.speckle import precision_effect
from studies.physics_pages import precision_markdown
from photon.support.jsonio import write_json
from ._parser import CommandParser, int_in, positive_int, seed

__all__ = ["main"]

PRESET = "lab-bench"
HIDDEN_TOTAL = 512      # two hidden layers of 256
N_CLASSES = 10
MACROPIXEL_MIRRORS = 64  # mirrors per class on the DMD: more light per input


def _say(message: str) -> None:
    print(f"[report {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _calibration_section(out: pathlib.Path, seed: int) -> tuple[dict, object]:
    _say(f"calibrating the {PRESET} feedback device ({N_CLASSES} inputs -> {HIDDEN_TOTAL} outputs)")
    device = VirtualDevice(PRESET, n_in=N_CLASSES, n_out=HIDDEN_TOTAL,
                           dmd__macropixel_mirrors=MACROPIXEL_MIRRORS).open()
    # Calibrate at the exposure DFA will use: the OPU operator shortens it until the
    # all-on frame of the complement identity stays below saturation.
    OPU(device).fit(n_features=N_CLASSES)
    result = calibrate(device, seed=seed, progress=False)
    corr = row_correlation(result.tm.tm, device.chain.medium.transmission_matrix())
    cam, truth = result.camera, device.chain.camera
    numbers = {
        "intensity_r": result.intensity_r, "tm_corr": float(np.median(corr)),
        "frames": result.frames, "compute_s": result.tm.compute_s,
        "acquisition_s": result.frames * device.frame_time_s,
        "camera": cam.as_dict(),
        "camera_truth": {"gain_dn_per_e": truth.gain_dn_per_e, "read_noise_e": truth.read_noise_e,
                         "black_offset_dn": truth.black_offset_dn,
                         "saturation_e": truth.saturation_electrons()},
    }
    _say("calibration quality against frames (ideal and lab-bench, 64 x 64)")
    rows = []
    for preset in ("ideal", PRESET):
        rows += quality_against_frames(preset, 64, 64, probes=(1.0, 2.0, 4.0), seed=seed,
                                       verbose=False)
    plot_quality(rows, out / "calibration_quality.png")
    numbers["quality_against_frames"] = rows
    return numbers, result.device()


def _calibrated_section(calibrated, epochs: int, seed: int) -> dict:
    """The digits MLP through the virtual OPU and through its calibrated twin (one seed)."""
    runs = {f"dfa ({PRESET} OPU)": PRESET, "dfa (calibrated device)": calibrated}
    results = {}
    for label, feedback in runs.items():
        _say(f"training the digits MLP: {label}, {epochs} epochs")
        result, _ = run_experiment("mlp", "digits", "dfa", feedback, epochs=epochs, seed=seed,
                                   progress=False)
        results[label] = {key: result[key] for key in
                          ("test_accuracy", "train_loss", "seconds", "alignment_deg")}
        results[label]["frames"] = (result["feedback"] or {}).get("frames_acquired")
    return results


#: The noise study the report reads (the store of docs/noise, written by SWEEP_COMMAND).
STORE = pathlib.Path(__file__).resolve().parents[2] / "docs" / "noise" / "noise_sweep.jsonl"
SWEEP_TASK = "gcn-cora"
SWEEP_AXES = ("encoding",)
SWEEP_PAIRS = (("encoding", "adc_bits"), ("photon_budget", "read_noise_e"))
SWEEP_COMMAND = ("python scripts/noise_sweep.py --out docs/noise --task gcn-cora --axes "
                 + " ".join(SWEEP_AXES) + " --pairs "
                 + " ".join(f"{a}:{b}" for a, b in SWEEP_PAIRS))


def _stored_study(out: pathlib.Path, store: pathlib.Path) -> dict:
    """The noise study of Cora's GCN as stored: records, summary, figures (nothing computed)."""
    task = TASKS[SWEEP_TASK]
    points = sweep_points(SWEEP_AXES, SWEEP_PAIRS)
    _say(f"reading the noise study of {SWEEP_TASK} from {store}")
    records, missing = stored_sweep(store, points, task=task, base=PRESET)
    if not any("reference" not in r["label"]["point"] for r in records):
        return {"records": records, "summary": None, "missing": missing, "figures": []}
    summary = summarize(records, DecisionRule())
    figures = plot_sweep(summary, out, prefix="noise_sweep")
    return {"records": records, "summary": summary, "missing": missing,
            "figures": [p.name for p in figures]}


def _cora_rows(study: dict) -> list[dict]:
    """Section 2's rows: bp, ideal, the default and the answer's encodings, shallow."""
    summary = study["summary"]
    if summary is None:
        return []
    entries = {e["label"]: e for e in summary["points"]}
    default = default_encoding(summary["model"])
    answer = design_answer(summary)
    axis = next((a for a in answer["per_axis"] if a["axis"] == "encoding"), None)
    chosen = None if axis is None else axis["cheapest_equivalent"]
    rows = [("backpropagation", summary["references"].get("bp")),
            ("DFA, ideal feedback", summary["references"].get("ideal")),
            (f"DFA through `{PRESET}`, default encoding `{default}`",
             entries.get(f"encoding={default}"))]
    if chosen is not None and chosen != default:
        rows.append((f"DFA through `{PRESET}`, the design answer's encoding `{chosen}`",
                     entries.get(f"encoding={chosen}")))
    overall = answer["answer"]   # the cheapest setting decided equivalent, axes and grids
    if overall is not None and overall["label"] not in (f"encoding={default}",
                                                        f"encoding={chosen}"):
        rows.append((f"DFA through `{PRESET}`, the design answer `{overall['label']}`",
                     entries.get(overall["label"])))
    if default != "ternary":
        rows.append((f"DFA through `{PRESET}`, ternary encoding (the former default)",
                     entries.get("encoding=ternary")))
    rows.append(("shallow (last layer only)", summary["references"].get("shallow")))
    return [{"run": label, "entry": entry} for label, entry in rows if entry is not None]


def _budget_section(seed: int) -> dict:
    """Section 3's noise budget of the feedback device, on Cora's GCN errors."""
    _say("noise budget of the feedback device: every source alone, against its prediction")
    task = TASKS[SWEEP_TASK]
    encoder, n_bits = default_encoding(task.model), None
    if encoder.startswith("bitplanes"):
        encoder, n_bits = "bitplanes", int(encoder.split("-")[1])
    errors = classification_errors(task.data, 1024, seed=seed, batch_size=task.rows_per_fit())
    errors = errors.with_encoder(encoder, n_bits or 4)
    budget = noise_budget(PRESET, errors, n_out=task.feedback_width(),
                          macropixel_mirrors=MACROPIXEL_MIRRORS)
    budget["check"] = budget_check(budget)
    return budget


def _throughput_section(out: pathlib.Path, max_exp: int, command: str,
                        also: str | None = None) -> dict:
    """Sections 4 and 6's throughput, measured once: the study and its page, ``OUT/throughput/``.

    The dense product and the SRHT measured here (interleaved repeats, their spread),
    the OPU and the H100 / H200 modelled; section 4 shows the dense rows, section 6 all
    of them, and ``OUT/throughput/throughput.md`` (and ``also``, e.g. docs/throughput)
    the same figures (one measurement).
    """
    from studies.gpu_model import GPUS  # noqa: PLC0415
    from studies.throughput import throughput_study, write_throughput_page  # noqa: PLC0415

    _say(f"throughput: n = 2^8 .. 2^{max_exp}, measured once (dense and structured "
         "interleaved), GPUs modelled")
    with open_device("datacenter-opu") as device:
        study = throughput_study([2 ** e for e in range(8, max_exp + 1)], device, progress=False,
                                 structured=True, gpu_models=tuple(GPUS))
    dense = [r for r in study["rows"] if r["backend"] in ("opu-intensity", "opu-linear",
                                                          "cpu-numpy", "gpu-cupy")]
    plot_throughput(dense, out / "throughput.png", crossovers(dense))
    write_throughput_page(study, out / "throughput", command)
    if also:
        write_throughput_page(study, also, command)
    return study


def _opu_vs_gpu_section(out: pathlib.Path, study: dict, seed: int) -> tuple[dict, str]:
    """Section 6: structured and modelled-GPU projections, and the DFA step's cost model.

    The SRHT and the dense product come from the throughput study this run measured
    once (section 4's); the GPUs are the roofline MODELS of :mod:`studies.gpu_model`
    (labelled so); the DFA step model is checked against steps measured here on one
    small MLP, then drawn as the crossover map on the modelled H100, one per schedule.
    """
    from studies.gpu_model import GPUS  # noqa: PLC0415
    from studies.step_cost import (SCHEDULES, compare_options, crossover_grid,  # noqa: PLC0415
                                   crossover_markdown, gpt3_shapes, gpu_machine, opu_spec,
                                   plot_crossover_map, toolkit_shapes)
    from studies.step_validation import validate_on_cpu, validation_shapes  # noqa: PLC0415
    from studies.throughput import (assumptions_markdown, model_assumptions,  # noqa: PLC0415
                                    rate_text)

    rows, cross = study["rows"], study["structured_vs_dense"]["numpy"]
    plot_throughput(rows, out / "throughput_gpu.png", {})
    _say("DFA step cost: the model against one measured MLP step, then the crossover maps")
    validation = validate_on_cpu(validation_shapes()[:1], repeats=5, progress=False)
    machine = gpu_machine("H100", "bf16")
    opu = opu_spec("datacenter-opu")
    shapes = list(toolkit_shapes().values()) + gpt3_shapes("shared")
    ladders = {schedule: [compare_options(shape, machine, opu, schedule=schedule)
                          for shape in shapes] for schedule in SCHEDULES}
    for schedule in SCHEDULES:
        plot_crossover_map(crossover_grid(machine, opu, schedule=schedule),
                           out / f"crossover_map_{schedule}.png",
                           f"{machine.name} (MODEL) with {opu.name}, {schedule} schedule")
    lines = ["## 6. OPU against GPU: structured projections and the DFA training step", "",
             "Projections per second of an n -> n projection (batch 256): the OPU modelled, the "
             "dense product and the SRHT (subsampled randomized Hartley transform, `scipy.fft`) "
             f"measured here (the same measurement as section 4: median of "
             f"{study['repeats']} interleaved repeats, the quartiles' rates in brackets, "
             f"{study['cpu_threads']} CPU thread(s)), the H100 and H200 **modelled** (roofline, "
             "not measured):", "",
             "| n | backend | projections/s | J/projection | R |", "|---|---|---|---|---|"]
    for r in rows:
        if r["backend"].startswith("opu-linear"):
            continue
        energy = "-" if r["joules_per_projection"] is None else f"{r['joules_per_projection']:.3g}"
        label = r["backend"] + (" (MODEL)" if "-model-" in r["backend"] else "")
        lines.append(f"| {r['n']} | {label} | {rate_text(r)} | {energy} | {r['storage']} |")
    speedups = ", ".join(f"{n}: {v:.3g}x" for n, v in cross["speedup"].items())
    lines += ["", "SRHT against the dense product here: faster from n = "
              f"{cross['faster_from_n']} on (speed-up {speedups}).", "",
              "![throughput with GPUs](throughput_gpu.png)", "",
              "DFA step model against steps measured here (this CPU calibrated in the same run; "
              "the full check over twelve shapes is `docs/dfa_step_cost`):",
              "", "| shape | option | measured (s) | model (s) | error |", "|---|---|---|---|---|"]
    for r in validation["rows"]:
        lines.append(f"| {r['shape']} | {r['option']} | {r['measured_s']:.4g} | "
                     f"{r['model_s']:.4g} | {r['error']:+.0%} |")
    for schedule, ladder in ladders.items():
        lines += ["", f"One step on the modelled H100 (bf16) with the `datacenter-opu` for "
                  f"`dfa-opu`, **{schedule}** schedule:", "",
                  crossover_markdown(ladder, machine), "",
                  f"![crossover map, {schedule}](crossover_map_{schedule}.png)"]
    lines += ["", "Schedules: sequential (the machine waits for the OPU), overlapped (the OPU "
              "projects step t's error while the machine runs step t+1: one-step-stale "
              "feedback), layer-parallel (one machine per layer; DFA's local updates all at "
              "once). The inverse design (the OPU that would tie backprop, per schedule) and "
              "the measured accuracy cost of stale feedback and micro DFA are in "
              "`docs/dfa_step_cost`.", "",
              "Models and assumptions:", "",
              assumptions_markdown(model_assumptions(tuple(GPUS))), ""]
    numbers = {"structured_vs_dense": cross, "validation": validation,
               "ladders": ladders, "seed": seed}
    return numbers, "\n".join(lines)


def _cora_lines(numbers: dict) -> list[str]:
    """Section 2: DFA on Cora's GCN over seeds, from the store."""
    study = numbers["study"]
    lines = ["## 2. DFA on Cora's GCN, over seeds", ""]
    if study["summary"] is None:
        return lines + [f"No stored runs of `{SWEEP_TASK}` in `{numbers['store']}`: write them "
                        f"with `{SWEEP_COMMAND}` (this report reads them, never computes them).",
                        ""]
    summary = study["summary"]
    lines += [f"Read from `{numbers['store']}`, the store `{SWEEP_COMMAND}` writes and "
              "docs/noise reads. " + code_text(summary), "",
              f"Two-layer GCN (64 hidden ReLU units), 200 full-batch epochs on Cora (Planetoid "
              f"split, 1,000 test nodes); DFA's feedback through the `{PRESET}` virtual OPU with "
              "every noise source on. Each row over seeds 0, 1, ...: mean ± the half-width "
              "of the 95 % Student-t interval; the device rows also against ideal DFA at the same "
              "seeds, decided by paired two one-sided tests within "
              f"{summary['rule']['margin_text']} (section 3 states the method).", "",
              "| run | test accuracy (%) | seeds | vs ideal DFA: decision (seeds): mean "
              "[interval] | update angle (deg) | feedback SNR in training (dB) |",
              "|---|---|---|---|---|---|"]
    for row in numbers["cora_rows"]:
        entry = row["entry"]
        metric = entry["metric"]
        value = "-" if metric is None else (
            f"{100 * metric['mean']:.2f}" + ("" if metric["ci95"] is None
                                             else f" ± {100 * metric['ci95']:.2f}"))
        decision = "-" if "decision" not in entry else decision_text(entry, summary)
        angles = "-" if not entry["angles"] else ", ".join(
            f"{a['mean']:.0f}" for a in entry["angles"] if a)
        snr = "-" if entry["snr_db"] is None else f"{entry['snr_db']['mean']:.1f}"
        lines.append(f"| {row['run']} | {value} | {entry['n']} | {decision} | {angles} | {snr} |")
    lines += ["", "Why the ternary code fails on this task, seed by seed, and how a run shows "
              "it coming: section 3.", ""]
    return lines


def _sweep_text(study: dict) -> str:
    """Section 3's decisions, the same Markdown as docs/noise (one store, one renderer)."""
    if study["summary"] is None:
        return f"No stored runs to show: write them with `{SWEEP_COMMAND}`."
    text = sweep_markdown(study["summary"], prefix="noise_sweep", heading="####",
                          description=TASKS[SWEEP_TASK].description)
    if study["missing"]["points"]:
        text += (f"\n\n{len(study['missing']['points'])} setting(s) of the study have no stored "
                 f"run yet (`{SWEEP_COMMAND}` computes them).")
    return text + "\n\n" + "\n".join(failure_section(study["summary"], heading="#####"))


def _markdown(numbers: dict) -> str:
    cal, training = numbers["calibration"], numbers["calibrated"]
    cam, truth = cal["camera"], cal["camera_truth"]
    lines = [
        "# Co-design report",
        "",
        f"Written by `{numbers['command']}` in {numbers['seconds']:.0f} s; every number "
        "below comes from that run (seed "
        f"{numbers['seed']}), but the DFA runs of sections 2 and 3, read from the store "
        f"`{numbers['store']}` (written by `{SWEEP_COMMAND}`; this report computes none of them).",
        "",
        "## 1. Calibration of the feedback device",
        "",
        f"`{PRESET}` virtual OPU, {N_CLASSES} inputs ({MACROPIXEL_MIRRORS} mirrors each) onto "
        f"{HIDDEN_TOTAL} camera pixels, calibrated from {cal['frames']} frames "
        f"({cal['acquisition_s']:.0f} s of device time, {cal['compute_s']:.2f} s of compute).",
        "",
        "| quantity | estimated | truth |",
        "|---|---|---|",
        f"| intensity r on fresh frames | {cal['intensity_r']:.4f} | (published real device: {PUBLISHED_R}) |",
        f"| median TM row correlation | {cal['tm_corr']:.5f} | 1 |",
        f"| gain (DN/e-) | {cam['gain_dn_per_e']:.4f} | {truth['gain_dn_per_e']:.4f} |",
        f"| read noise (e-) | {cam['read_noise_e']:.2f} | {truth['read_noise_e']:.2f} |",
        f"| black offset (DN) | {cam['black_offset_dn']:.3f} | {truth['black_offset_dn']:.3f} |",
        f"| saturation (e-) | {cam['saturation_e']:.0f} | {truth['saturation_e']:.0f} |",
        "",
        "![calibration quality](calibration_quality.png)",
        "",
    ]
    lines += _cora_lines(numbers)
    lines += ["### The digits MLP through the device and through its calibrated twin", "",
              "One seed: DFA through the `lab-bench` virtual OPU (its default encoding) and "
              "through the device calibrated in section 1 (the estimated TM predicting what the "
              "OPU would measure).", "",
              "| run | test accuracy | final loss | update angle (deg) | device frames | seconds |",
              "|---|---|---|---|---|---|"]
    for label, r in training.items():
        angles = r["alignment_deg"]["update_vs_gradient"]
        angle = "-" if angles is None else ", ".join(f"{a:.0f}" for a in angles)
        lines.append(f"| {label} | {100 * r['test_accuracy']:.2f} % | {r['train_loss']:.3f} | "
                     f"{angle} | {r['frames'] or '-'} | {r['seconds']:.1f} |")
    lines += ["", "## 3. Noise and quantization", "",
              "### What the feedback device delivers: the noise budget", "",
              "How far the device's feedback `B_hat e` is from the exact `B e` of its own "
              "transmission matrix, and the error variance each source adds when switched on "
              "alone over the noise-free twin, next to its prediction from the physics "
              "(docs/design.md section 7):", "", numbers["noise_budget_table"], "",
              "Every source within 0.8 .. 1.25 of its prediction and the sum within 20 % of "
              f"the total: **{'yes' if numbers['noise_budget']['check']['all'] else 'no'}**.",
              "", "### What DFA needs: the decisions", ""]
    lines += [numbers["sweep_table"], ""]
    study = numbers["throughput"]
    dense = [r for r in study["rows"] if r["backend"] in ("opu-intensity", "opu-linear",
                                                          "cpu-numpy", "gpu-cupy")]
    lines += ["", "## 4. Throughput: OPU (modelled) against a dense projection (measured)", "",
              "Energy of the CPU uses an assumed 25 W (two busy cores); the OPU's is its 30 W "
              "wall-plug power times its frame time. Each measured rate is the median of "
              f"{study['repeats']} interleaved repeats ({study['cpu_threads']} CPU thread(s), "
              f"{study['cpu_clock']} clock), the rates at the quartiles of its timings in "
              "brackets; measured once in this run, the same figures as section 6 and "
              "[throughput/throughput.md](throughput/throughput.md).", "",
              "| n | backend | projections/s | J/projection | R |", "|---|---|---|---|---|"]
    for r in dense:
        energy = "-" if r["joules_per_projection"] is None else f"{r['joules_per_projection']:.3g}"
        lines.append(f"| {r['n']} | {r['backend']} | {rate_text(r)} | {energy} | "
                     f"{r['storage']} |")
    lines += ["", f"Crossovers: `{json.dumps(crossovers(dense))}`", "",
              "![throughput](throughput.png)", ""]
    lines += ["## 5. TM precision", "",
              f"`{PRESET}`, 1024 inputs onto 4096 pixels, the TM rounded to each format "
              "(frames exact, float32 sums), against float32 with the same seeds:", "",
              precision_markdown(numbers["precision"]), ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    """Command-line entry point."""
    parser = CommandParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="report", help="output directory (default report/)")
    parser.add_argument("--epochs", type=positive_int, default=10,
                        help="epochs of the digits runs through the device and its twin")
    parser.add_argument("--store", default=None,
                        help="the noise study's store to read (default docs/noise/noise_sweep.jsonl)")
    parser.add_argument("--max-exp", type=int_in(8, 24), default=14, help="largest size 2^k of the "
                        "throughput comparison")
    parser.add_argument("--seed", type=seed, default=0)
    parser.add_argument("--throughput-out", default=None,
                        help="also write the throughput page there (e.g. docs/throughput), from "
                             "this run's one measurement (default: OUT/throughput only)")
    args = parser.parse_args(argv)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    numbers = {"seed": args.seed, "command": "python scripts/report.py " + shlex.join(
        sys.argv[1:] if argv is None else list(argv))}
    numbers["calibration"], calibrated = _calibration_section(out, args.seed)
    _say(f"calibration done at {time.perf_counter() - start:.0f} s")
    store = pathlib.Path(args.store) if args.store else STORE
    numbers["store"] = args.store or "docs/noise/noise_sweep.jsonl"
    study = _stored_study(out, store)
    numbers["study"] = {"summary": study["summary"], "missing_points": study["missing"]["points"],
                        "runs": len(study["records"]), "figures": study["figures"]}
    numbers["cora_rows"] = _cora_rows(study)
    numbers["calibrated"] = _calibrated_section(calibrated, args.epochs, args.seed)
    _say(f"training done at {time.perf_counter() - start:.0f} s")
    numbers["noise_budget"] = _budget_section(args.seed)
    numbers["noise_budget_table"] = budget_markdown(numbers["noise_budget"])
    numbers["sweep_runs"] = len(study["records"])
    numbers["sweep_table"] = _sweep_text(study)
    numbers["throughput"] = _throughput_section(out, args.max_exp, numbers["command"],
                                                args.throughput_out)
    _say("TM precision: float32, tf32, bf16")
    numbers["precision"] = precision_effect(resolve_config(PRESET, n_in=1024, n_out=4096))
    numbers["opu_vs_gpu"], opu_vs_gpu = _opu_vs_gpu_section(out, numbers["throughput"], args.seed)
    numbers["seconds"] = time.perf_counter() - start
    (out / "index.md").write_text(_markdown(numbers) + "\n" + opu_vs_gpu, encoding="utf-8")
    write_json(out / "numbers.json", numbers)
    _say(f"wrote {out / 'index.md'} in {numbers['seconds']:.0f} s")
    return 0
