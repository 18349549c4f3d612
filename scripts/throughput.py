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
from devices.throughput import throughput_table  # noqa: E402

__all__ = ["main", "crossovers", "plot", "markdown"]


def crossovers(rows) -> dict:
    """Smallest size where the OPU beats each measured backend, and where storage ends."""
    result = {}
    measured = sorted({r["backend"] for r in rows if not r["backend"].startswith("opu")})
    opu = {r["n"]: r["projections_per_s"] for r in rows if r["backend"] == "opu-intensity"}
    for backend in measured:
        mine = sorted((r for r in rows if r["backend"] == backend), key=lambda r: r["n"])
        faster = [r["n"] for r in mine if opu.get(r["n"]) and r["projections_per_s"] < opu[r["n"]]]
        generated = [r["n"] for r in mine if r["storage"] == "generated"]
        result[backend] = {"opu_overtakes_at_n": faster[0] if faster else None,
                           "matrix_stops_fitting_at_n": generated[0] if generated else None}
    return result


def plot(rows, path: pathlib.Path, marks: dict) -> None:
    """Projections/s and J/projection against n, log-log."""
    from matplotlib.figure import Figure  # noqa: PLC0415  (Agg canvas, no pyplot state)

    fig = Figure(figsize=(11, 4.2))
    axes = fig.subplots(1, 2)
    for backend in dict.fromkeys(r["backend"] for r in rows):
        mine = [r for r in rows if r["backend"] == backend and r["projections_per_s"]]
        n = [r["n"] for r in mine]
        axes[0].plot(n, [r["projections_per_s"] for r in mine], "o-", label=backend)
        axes[1].plot(n, [r["joules_per_projection"] for r in mine], "o-", label=backend)
    for backend, mark in marks.items():
        if mark["matrix_stops_fitting_at_n"]:
            axes[0].axvline(mark["matrix_stops_fitting_at_n"], ls=":", color="gray")
            axes[0].text(mark["matrix_stops_fitting_at_n"], axes[0].get_ylim()[0] * 2,
                         f" {backend}: R generated\n beyond memory", fontsize=7)
        if mark["opu_overtakes_at_n"]:
            axes[0].axvline(mark["opu_overtakes_at_n"], ls="--", color="red")
    for ax, label in zip(axes, ["projections per second", "joules per projection"]):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("n (inputs = outputs)")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def markdown(rows) -> str:
    """One Markdown table row per backend and size."""
    lines = ["| n | backend | projections/s | J/projection | power (W) | R | note |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        rate = "-" if r["projections_per_s"] is None else f"{r['projections_per_s']:.4g}"
        energy = "-" if r["joules_per_projection"] is None else f"{r['joules_per_projection']:.3g}"
        lines.append(f"| {r['n']} | {r['backend']} | {rate} | {energy} | {r['power_w']} | "
                     f"{r['storage']} | {r['note']} |")
    return "\n".join(lines)


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
        plot(rows, out / "throughput.png", marks)
        (out / "throughput.md").write_text(markdown(rows) + "\n", encoding="utf-8")
        result["figure"] = str(out / "throughput.png")
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print(markdown(rows))
        print(json.dumps(marks))
    return 0


if __name__ == "__main__":
    sys.exit(main())
