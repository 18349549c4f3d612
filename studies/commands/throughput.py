"""Throughput study: projections per second and joules per projection, OPU against CPU/GPU.

Usage::

    python scripts/throughput.py --out throughput/              # n = 2^8 .. 2^20
    python scripts/throughput.py --min-exp 8 --max-exp 12 --json

The OPU is modelled from its frame time and wall-plug power (``--device``); the dense
projection ``X @ R`` (float32, batch ``--batch``) is measured on this CPU with NumPy and,
when CuPy sees a GPU, on the GPU, each the median of ``--repeats`` interleaved timings
with its quartiles, on ``--threads`` CPU threads (default 1); their energy uses the
powers stated by ``--cpu-power-w`` and ``--gpu-power-w``. The structured projection (SRHT with ``scipy.fft``; CuPy's FFT
on a GPU) is measured side by side, and the GPUs named by ``--gpu-models`` are
*modelled* (roofline, labelled MODEL, figures and assumptions in the output); with a
GPU present, the model of that GPU is compared with its measurement. Marks where ``R``
stops fitting in memory (then it is generated block by block), where the OPU overtakes
and where the SRHT overtakes the dense product; draws the curves as PNG and writes a
Markdown table.
"""

from __future__ import annotations

import json
import shlex
import sys

from devices import open_device
from photon.support.jsonio import dumps
from studies.gpu_model import GPUS, PRECISIONS
from studies.throughput import (throughput_markdown, throughput_study,
                                throughput_summary, write_throughput_page)
from ._parser import CommandParser, int_in, non_negative_int, number_in, positive_int

__all__ = ["main"]


def main(argv=None) -> int:
    """Command-line entry point."""
    parser = CommandParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="datacenter-opu")
    parser.add_argument("--min-exp", type=int_in(1, 24), default=8)
    parser.add_argument("--max-exp", type=int_in(1, 24), default=20)
    parser.add_argument("--batch", type=positive_int, default=256)
    parser.add_argument("--cpu-power-w", type=number_in(0.0, low_open=True, unit="W"), default=25.0,
                        help="assumed CPU power for the energy (default 25 W: two busy cores)")
    parser.add_argument("--gpu-power-w", type=number_in(0.0, low_open=True, unit="W"), default=700.0,
                        help="assumed GPU power (default 700 W: an H100 SXM's board limit)")
    parser.add_argument("--gpu-models", default=",".join(GPUS),
                        help=f"GPUs to model, comma-separated (default {','.join(GPUS)}; "
                             "'' for none)")
    parser.add_argument("--gpu-precision", default="fp32", choices=PRECISIONS,
                        help="GEMM precision of the modelled dense product (default fp32, as "
                             "CuPy's float32 product)")
    parser.add_argument("--no-structured", action="store_true",
                        help="leave out the structured projection (SRHT)")
    parser.add_argument("--threads", type=non_negative_int, default=1,
                        help="CPU threads of the measured products (default 1: per core, "
                             "clocked by the process's CPU time; 0: as configured, wall clock)")
    parser.add_argument("--repeats", type=positive_int, default=5,
                        help="interleaved timings of each measured way (default 5)")
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
    sizes = [2 ** e for e in range(args.min_exp, args.max_exp + 1)]
    try:
        device = open_device(args.device)
    except TypeError:  # a backend that needs sizes: no camera whose timing could be modelled
        parser.error(f"--device {args.device!r}: expected a preset or YAML file of a device "
                     "with a camera (its frame time and power are modelled), e.g. "
                     "datacenter-opu")
    with device:
        result = throughput_study(sizes, device, batch=args.batch, cpu_power_w=args.cpu_power_w,
                                  gpu_power_w=args.gpu_power_w,
                                  structured=not args.no_structured, gpu_models=gpu_models,
                                  gpu_precision=args.gpu_precision,
                                  threads=args.threads or None, repeats=args.repeats)
    result["device"] = args.device
    summary = throughput_summary(result)
    if args.out:
        command = "python scripts/throughput.py " + shlex.join(
            sys.argv[1:] if argv is None else list(argv))
        page = write_throughput_page(result, args.out, command)
        result["figure"] = str(page.with_name("throughput.png"))
    if args.json:
        print(dumps(result, indent=1))
        for line in summary:
            print(line, file=sys.stderr)
    else:
        print(throughput_markdown(result["rows"]))
        print(json.dumps(result["marks"]))
        for line in summary:
            print(line)
    return 0
