"""Simulate a device and print its summary and speckle statistics.

Usage::

    python -m photon [--device lab-bench] [--n-in 1024] [--n-out 4096] [--json]

The speckle histogram is drawn on the studies floor:
``studies.physics_pages.plot_speckle_histogram``.
"""

from __future__ import annotations

import argparse
import json
import sys

from . import build_chain, preset_names
from .speckle import speckle_report
from .support.cli import positive_int, run_main

__all__ = ["main"]


def main(argv=None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python -m photon", description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="lab-bench",
                        help=f"preset ({', '.join(preset_names())}) or YAML path")
    parser.add_argument("--n-in", type=positive_int, default=1024, help="input features")
    parser.add_argument("--n-out", type=positive_int, default=4096, help="output pixels")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)

    print(f"simulating {args.device} at {args.n_in} x {args.n_out} ...", file=sys.stderr)
    chain = build_chain(args.device, n_in=args.n_in, n_out=args.n_out)
    result = {"device": chain.summary(), "statistics": speckle_report(chain)}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{'device':<28} value")
    for key, value in result["device"].items():
        print(f"  {key:<26} {value}")
    print(f"{'speckle statistics':<28} measured")
    for key, value in result["statistics"].items():
        print(f"  {key:<26} {value:.6g}" if isinstance(value, float) else f"  {key:<26} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main, prog="python -m photon"))
