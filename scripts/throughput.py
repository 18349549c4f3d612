"""Throughput study: projections per second and joules per projection, OPU against CPU/GPU.

Usage::

    python scripts/throughput.py --out throughput/              # n = 2^8 .. 2^20
    python scripts/throughput.py --min-exp 8 --max-exp 12 --json

The OPU is modelled from its frame time and wall-plug power (``--device``); the dense
projection ``X @ R`` (float32, batch ``--batch``) is measured on this CPU with NumPy and,
when CuPy sees a GPU, on the GPU; their energy uses the powers stated by ``--cpu-power-w``
and ``--gpu-power-w``. The structured projection (SRHT with ``scipy.fft``; CuPy's FFT
on a GPU) is measured side by side, and the GPUs named by ``--gpu-models`` are
*modelled* (roofline, labelled MODEL, figures and assumptions in the output); with a
GPU present, the model of that GPU is compared with its measurement. Marks where ``R``
stops fitting in memory (then it is generated block by block), where the OPU overtakes
and where the SRHT overtakes the dense product; draws the curves as PNG and writes a
Markdown table.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import pathlib
import shlex
import sys

if importlib.util.find_spec("devices") is None:  # run from a checkout without installing
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from devices import open_device  # noqa: E402
from photon.support.cli import run_main  # noqa: E402
from photon.support.jsonio import dumps, write_json  # noqa: E402
from studies.gpu_model import GPUS, PRECISIONS  # noqa: E402
from studies.throughput import (assumptions_markdown, crossovers, local_gpu_name,  # noqa: E402
                                model_assumptions, model_errors, plot_throughput,
                                structured_crossover, throughput_markdown, throughput_table)

__all__ = ["main"]


def _summary(result: dict) -> list[str]:
    """Human-readable lines: where the SRHT overtakes, the model's errors on a GPU present."""
    lines = []
    for name, cross in result["structured_vs_dense"].items():
        if not cross["speedup"]:
            continue
        at = cross["faster_from_n"]
        ratios = ", ".join(f"{n}: {r:.3g}x" for n, r in cross["speedup"].items())
        lines.append(f"{cross['structured']} vs {cross['dense']}: "
                     + (f"faster from n = {at} on" if at else "not faster at the largest n")
                     + f" (speed-up {ratios})")
    errors = result["model_vs_measured"]
    for measured in ("gpu-cupy", "structured-cupy"):
        if measured in errors:
            text = ", ".join(f"{n}: {e:+.0%}"
                             for n, e in errors[measured]["model_time_error"].items())
            lines.append(f"{errors[measured]['vs']} (model) vs {measured} (measured on "
                         f"{errors['gpu']}): time error {text}")
    return lines


def main(argv=None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="datacenter-opu")
    parser.add_argument("--min-exp", type=int, default=8)
    parser.add_argument("--max-exp", type=int, default=20)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--cpu-power-w", type=float, default=25.0,
                        help="assumed CPU power for the energy (default 25 W: two busy cores)")
    parser.add_argument("--gpu-power-w", type=float, default=700.0,
                        help="assumed GPU power (default 700 W: an H100 SXM's board limit)")
    parser.add_argument("--gpu-models", default=",".join(GPUS),
                        help=f"GPUs to model, comma-separated (default {','.join(GPUS)}; "
                             "'' for none)")
    parser.add_argument("--gpu-precision", default="fp32", choices=PRECISIONS,
                        help="GEMM precision of the modelled dense product (default fp32, as "
                             "CuPy's float32 product)")
    parser.add_argument("--no-structured", action="store_true",
                        help="leave out the structured projection (SRHT)")
    parser.add_argument("--out", default=None, help="directory for the PNG and Markdown")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not 1 <= args.min_exp <= args.max_exp <= 24:
        parser.error(f"--min-exp {args.min_exp} --max-exp {args.max_exp}: expected "
                     "1 <= min <= max <= 24")
    gpu_models = [name for name in args.gpu_models.split(",") if name]
    unknown = [name for name in gpu_models if name.upper() not in GPUS]
    if unknown:
        parser.error(f"--gpu-models {args.gpu_models!r}: expected names among {', '.join(GPUS)}")
    structured = not args.no_structured
    sizes = [2 ** e for e in range(args.min_exp, args.max_exp + 1)]
    with open_device(args.device) as device:
        rows = throughput_table(sizes, device, batch=args.batch, cpu_power_w=args.cpu_power_w,
                                gpu_power_w=args.gpu_power_w, structured=structured,
                                gpu_models=gpu_models, gpu_precision=args.gpu_precision)
    marks = crossovers(rows)
    result = {"rows": rows, "marks": marks, "assumed_power_w": {
        "cpu": args.cpu_power_w, "gpu": args.gpu_power_w}, "device": args.device}
    gpu_name = local_gpu_name()
    result["structured_vs_dense"] = {
        "numpy": structured_crossover(rows) if structured else {"speedup": {}}}
    if gpu_name and structured:
        result["structured_vs_dense"]["cupy"] = structured_crossover(rows, "structured-cupy",
                                                                     "gpu-cupy")
    result["gpu_present"] = gpu_name
    result["model_vs_measured"] = model_errors(rows, gpu_name)
    result["assumptions"] = model_assumptions(gpu_models, args.gpu_precision,
                                              cpu_power_w=args.cpu_power_w,
                                              gpu_power_w=args.gpu_power_w, batch=args.batch)
    summary = _summary(result)
    if args.out:
        out = pathlib.Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        command = "python scripts/throughput.py " + shlex.join(
            sys.argv[1:] if argv is None else list(argv))
        text = ["# Throughput: the OPU (modelled) against dense and structured projections", "",
                f"Written by `{command}`; the CPU rows are measured in that run, the OPU and "
                "GPU-model rows are models (marked so, with their assumptions below).", "",
                throughput_markdown(rows), "",
                "## Structured against dense, and the GPU models", ""]
        text += [f"- {line}" for line in summary] or ["- (no structured rows)"]
        text += ["", "## Models, assumptions and sources", "",
                 assumptions_markdown(result["assumptions"])]
        (out / "throughput.md").write_text("\n".join(text) + "\n", encoding="utf-8")
        write_json(out / "throughput.json", result)
        plot_throughput(rows, out / "throughput.png", marks)  # the results first, then the figure
        result["figure"] = str(out / "throughput.png")
    if args.json:
        print(dumps(result, indent=1))
        for line in summary:
            print(line, file=sys.stderr)
    else:
        print(throughput_markdown(rows))
        print(json.dumps(marks))
        for line in summary:
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
