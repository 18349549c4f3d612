"""What a TF32 or bf16 transmission matrix changes: speckle statistics and projection error.

Usage::

    python scripts/precision_study.py                         # lab-bench, 1024 -> 4096
    python scripts/precision_study.py --device datacenter-opu --n-in 2048 --n-out 8192 --json

Builds the device once per TM precision (``float32``, ``tf32``, ``bf16``; same seeds, so
the same TM before rounding and the same noise) and prints, for each, the rms intensity
change against float32 next to its theory ``0.2123 * 2^-p`` (``photon.precision``), the
speckle contrast with its standard error, the Kolmogorov-Smirnov distance of the
normalized speckle to the exponential law, and the change in units of the photon shot
noise at the device's exposure. ``--out DIR`` also writes ``DIR/precision.md``.
"""

from __future__ import annotations

import json
import pathlib
import sys

from photon import resolve_config
from photon.speckle import precision_effect
from studies.physics_pages import precision_markdown
from ._parser import CommandParser, positive_int, seed

__all__ = ["main"]


def main(argv=None) -> int:
    """Command-line entry point."""
    parser = CommandParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="lab-bench", help="preset name or YAML path")
    parser.add_argument("--n-in", type=positive_int, default=1024)
    parser.add_argument("--n-out", type=positive_int, default=4096)
    parser.add_argument("--frames", type=positive_int, default=64,
                        help="disjoint frames and random half-on frames, each (default 64)")
    parser.add_argument("--seed", type=seed, default=0)
    parser.add_argument("--out", default=None, help="directory for precision.md")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.frames < 2 or args.frames > args.n_in:
        parser.error(f"--frames = {args.frames}: expected 2 .. n_in = {args.n_in}")
    config = resolve_config(args.device, n_in=args.n_in, n_out=args.n_out)
    print(f"[precision_study] {config.name}: {args.n_in} -> {args.n_out}, "
          f"{args.frames} + {args.frames} frames per precision", file=sys.stderr, flush=True)
    rows = precision_effect(config, n_frames=args.frames, random_frames=args.frames,
                            seed=args.seed)
    table = precision_markdown(rows)
    if args.out:
        out = pathlib.Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "precision.md").write_text(table + "\n", encoding="utf-8")
    print(json.dumps(rows, indent=1) if args.json else table)
    return 0
