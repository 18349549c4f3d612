"""Throughput study: projections per second and joules per projection, OPU against CPU/GPU.

Usage::

    python scripts/throughput.py --out throughput/              # n = 2^8 .. 2^20
    python scripts/throughput.py --min-exp 8 --max-exp 12 --json

The OPU is modelled from its frame time and wall-plug power (``--device``); the dense
projection ``X @ R`` (float32, batch ``--batch``) is measured on this CPU with NumPy and,
when CuPy sees a GPU, on the GPU; their energy uses the powers stated by ``--cpu-power-w``
and ``--gpu-power-w``. Marks where ``R`` stops fitting in memory (then it is generated
block by block) and where the OPU overtakes; draws the curves as PNG and writes a
Markdown table.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import pathlib
import sys

if importlib.util.find_spec("devices") is None:  # run from a checkout without installing
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from devices import open_device  # noqa: E402
from devices.throughput import (crossovers, plot_throughput, throughput_markdown,  # noqa: E402
                                throughput_table)

__all__ = ["main"]


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
    parser.add_argument("--out", default=None, help="directory for the PNG and Markdown")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not 1 <= args.min_exp <= args.max_exp <= 24:
        parser.error(f"--min-exp {args.min_exp} --max-exp {args.max_exp}: expected "
                     "1 <= min <= max <= 24")
    sizes = [2 ** e for e in range(args.min_exp, args.max_exp + 1)]
    with open_device(args.device) as device:
        rows = throughput_table(sizes, device, batch=args.batch, cpu_power_w=args.cpu_power_w,
                                gpu_power_w=args.gpu_power_w)
    marks = crossovers(rows)
    result = {"rows": rows, "marks": marks, "assumed_power_w": {
        "cpu": args.cpu_power_w, "gpu": args.gpu_power_w}, "device": args.device}
    if args.out:
        out = pathlib.Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        plot_throughput(rows, out / "throughput.png", marks)
        (out / "throughput.md").write_text(throughput_markdown(rows) + "\n", encoding="utf-8")
        result["figure"] = str(out / "throughput.png")
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print(throughput_markdown(rows))
        print(json.dumps(marks))
    return 0


if __name__ == "__main__":
    sys.exit(main())
