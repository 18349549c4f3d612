"""Noise and quantization sweep: DFA on digits through virtual OPUs of varied settings.

Usage::

    python scripts/noise_sweep.py --out sweep/                        # every axis alone
    python scripts/noise_sweep.py --out sweep/ --pairs adc_bits:read_noise_e
    python scripts/noise_sweep.py --out sweep/ --axes adc_bits encoding --epochs 5

Results stream to ``OUT/noise_sweep.jsonl`` (a rerun resumes where it stopped); the
curves and 2-D maps are drawn as PNG and the tables written to ``OUT/noise_sweep.md``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import pathlib
import sys

if importlib.util.find_spec("dfa_bridge") is None:  # run from a checkout without installing
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from dfa_bridge.studies.sweep import AXES, markdown_table, plot_sweep, run_sweep, sweep_points  # noqa: E402

__all__ = ["main"]


def main(argv=None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="sweep", help="output directory")
    parser.add_argument("--axes", nargs="*", default=list(AXES), choices=list(AXES))
    parser.add_argument("--pairs", nargs="*", default=[], metavar="AXIS:AXIS",
                        help="axis pairs to sweep as a grid")
    parser.add_argument("--base", default="lab-bench", help="preset the points modify")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--max-train", type=int, default=None, help="training samples kept")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    pairs = []
    for text in args.pairs:
        names = text.split(":")
        if len(names) != 2:
            parser.error(f"--pairs {text!r}: expected two axis names joined by ':'")
        pairs.append(tuple(names))
    out = pathlib.Path(args.out)
    try:
        points = sweep_points(args.axes, pairs)
    except ValueError as error:
        parser.error(str(error))
    results = run_sweep(out / "noise_sweep.jsonl", points, base=args.base, epochs=args.epochs,
                        seed=args.seed, max_train=args.max_train)
    table = markdown_table(results)
    (out / "noise_sweep.md").write_text(table + "\n", encoding="utf-8")
    figures = [str(p) for p in plot_sweep(results, out)]
    if args.json:
        print(json.dumps({"results": results, "figures": figures}, indent=1))
    else:
        print(table)
        print("figures: " + ", ".join(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
