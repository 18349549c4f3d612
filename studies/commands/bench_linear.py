"""Bit-plane linear mode against lightonml's simulator, side by side in one run.

Usage::

    python scripts/bench_linear.py --json
    python scripts/bench_linear.py --n-features 1024 --n-components 1024 --samples 1000 \
        --bits 6,8 --repeats 7
    python scripts/bench_linear.py --no-lightonml          # the toolkit's figures only

Both project the same standard-normal batch through bit planes of ``--bits`` bits per sign
(see :mod:`studies.linear_bench`): this toolkit's :class:`devices.OPU` on the ``ideal``
backend with a ``BitPlaneEncoder``, and lightonml 1.4.3's ``OPU(simulated=True)`` with its
``SeparatedBitPlanEncoder``/``Decoder``, timed interleaved, one call of each per repeat.
Prints, per bit depth, the median seconds of each, their errors against the exact product
with their own matrix (equal errors: the bit planes' quantization) and ``speedup`` =
median of the per-repeat ratios lightonml / toolkit (goal >= 1.5), with its range. When
lightonml does not import (``pip install lightonml==1.4.3``; not a dependency), only the
toolkit's figures are printed, with the reason.
"""

from __future__ import annotations

import json

from studies.linear_bench import time_linear_modes
from ._parser import CommandParser, positive_int, seed

__all__ = ["main"]


def main(argv=None) -> int:
    """Command-line entry point."""
    parser = CommandParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-features", type=positive_int, default=1024)
    parser.add_argument("--n-components", type=positive_int, default=1024)
    parser.add_argument("--samples", type=positive_int, default=1000, help="rows of the batch")
    parser.add_argument("--bits", default="6,8", help="bits per sign, comma-separated")
    parser.add_argument("--repeats", type=positive_int, default=5, help="interleaved timed calls (>= 1)")
    parser.add_argument("--seed", type=seed, default=0)
    parser.add_argument("--no-lightonml", action="store_true",
                        help="time the toolkit only, even when lightonml imports")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    try:
        bits = tuple(int(b) for b in args.bits.split(","))
    except ValueError:
        parser.error(f"--bits = {args.bits!r}: expected comma-separated integers, e.g. 6,8")
    if not bits or any(not 1 <= b <= 8 for b in bits):
        parser.error(f"--bits = {args.bits!r}: expected bit depths from 1 to 8 (lightonml's range)")
    result = time_linear_modes(args.n_features, args.n_components, args.samples, bits,
                               repeats=args.repeats, seed=args.seed,
                               with_lightonml=not args.no_lightonml)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"linear_transform of {args.samples} x {args.n_features} onto {args.n_components}, "
          f"bit planes, median of {args.repeats} interleaved calls; lightonml: "
          f"{result['lightonml']}"
          + (f" (shims: {', '.join(result['lightonml_shims'])})"
             if result["lightonml_shims"] else ""))
    for n_bits, entry in result["bits"].items():
        line = (f"  {n_bits} bits: toolkit {entry['toolkit_s']:.3f} s "
                f"(error {100 * entry['toolkit_error']:.2f} %)")
        if "speedup" in entry:
            line += (f", lightonml {entry['lightonml_s']:.3f} s (error "
                     f"{100 * entry['lightonml_error']:.2f} %), speedup {entry['speedup']:.2f} "
                     f"(range {entry['speedup_min']:.2f}-{entry['speedup_max']:.2f}; goal >= "
                     f"{result['goal_speedup_min']})")
        print(line)
    return 0
