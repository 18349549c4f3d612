"""Noise and quantization sweep: DFA through virtual OPUs of varied settings, with error bars.

Usage::

    python scripts/noise_sweep.py --out sweep/                         # digits MLP, every axis
    python scripts/noise_sweep.py --out sweep/ --model gcn deep-mlp --axes adc_bits photon_budget
    python scripts/noise_sweep.py --out sweep/ --pairs adc_bits:read_noise_e --seeds 3
    python scripts/noise_sweep.py --out sweep/ --model transformer --steps 200 --axes encoding
    python scripts/noise_sweep.py --out sweep/ --dask local --workers 4
    python scripts/noise_sweep.py --out sweep/ --dask tcp://scheduler:8786

Every point is trained with ``--seeds`` seeds (the same at every point and in the two
references, ideal-feedback DFA and the shallow baseline) and reported as the mean and
the 95 % interval over them, with the feedback's SNR at that point. Runs stream to
``OUT/noise_sweep.jsonl`` as they finish, each line with its full settings: a rerun
reuses only the runs whose settings all match (other ``--epochs``, ``--base`` ... run
afresh) and resumes an interrupted sweep. ``--workers N`` runs N local processes (default:
the cores); ``--dask ADDRESS`` sends runs to a Dask distributed scheduler (``local``
starts a ``LocalCluster`` of ``--workers`` processes here): the same numbers either way.

Writes ``OUT/index.md`` (the command, each model's design answer, tables and figures),
``OUT/noise_sweep.md`` (the same without the heading), ``OUT/noise_sweep.json`` (strict
JSON: per model the summary, the design answer and the runs) and the PNG figures.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import pathlib
import shlex
import sys

if importlib.util.find_spec("dfa_bridge") is None:  # run from a checkout without installing
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from studies.sweep import (AXES, TASKS, markdown_table, plot_sweep,  # noqa: E402
                                      records_json, run_sweep, sweep_points)
from photon.support import jsonio  # noqa: E402
from photon.support.cli import positive_int, run_main  # noqa: E402

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="sweep", help="output directory")
    parser.add_argument("--model", nargs="+", default=["mlp"], choices=list(TASKS),
                        help="task(s) to sweep: " + "; ".join(
                            f"{name}: {task.model} on {task.data}" for name, task in TASKS.items()))
    parser.add_argument("--axes", nargs="*", default=list(AXES), choices=list(AXES))
    parser.add_argument("--pairs", nargs="*", default=[], metavar="AXIS:AXIS",
                        help="axis pairs to sweep as a grid")
    parser.add_argument("--base", default="lab-bench", help="preset the points modify")
    parser.add_argument("--epochs", type=positive_int, default=None,
                        help="epochs per run of the MLP and GCN tasks (default: the task's)")
    parser.add_argument("--steps", type=positive_int, default=None,
                        help="steps per run of the transformer (default: the task's)")
    parser.add_argument("--max-train", type=positive_int, default=None,
                        help="training samples kept (tabular tasks)")
    parser.add_argument("--seed", type=int, default=0, help="first training seed")
    parser.add_argument("--seeds", type=positive_int, default=5, help="seeds per point")
    parser.add_argument("--workers", type=positive_int, default=os.cpu_count() or 1,
                        help="processes running runs at once (default: the cores)")
    parser.add_argument("--dask", default=None, metavar="ADDRESS",
                        help="a Dask scheduler's address, or 'local' for a LocalCluster here")
    parser.add_argument("--fidelity-errors", type=positive_int, default=512,
                        help="error vectors of each run's feedback-fidelity measurement")
    parser.add_argument("--json", action="store_true", help="print the results as strict JSON")
    return parser


def main(argv=None) -> int:
    """Command-line entry point."""
    parser = build_parser()
    args = parser.parse_args(argv)
    argv = sys.argv[1:] if argv is None else list(argv)
    pairs = []
    for text in args.pairs:
        names = text.split(":")
        if len(names) != 2:
            parser.error(f"--pairs {text!r}: expected two axis names joined by ':'")
        pairs.append(tuple(names))
    if args.epochs is not None and all(TASKS[m].unit != "epochs" for m in args.model):
        parser.error(f"--epochs {args.epochs}: expected --steps for --model "
                     f"{' '.join(args.model)}, which trains in steps")
    if args.steps is not None and all(TASKS[m].unit != "steps" for m in args.model):
        parser.error(f"--steps {args.steps}: expected --epochs for --model "
                     f"{' '.join(args.model)}, which train in epochs")
    try:
        points = sweep_points(args.axes, pairs)
    except ValueError as error:
        parser.error(str(error))
    out = pathlib.Path(args.out)
    if out.exists() and not out.is_dir():
        parser.error(f"--out {str(out)!r}: expected a directory (a file is there)")
    out.mkdir(parents=True, exist_ok=True)
    models = list(dict.fromkeys(args.model))
    results, sections, figures = {}, [], []
    for model in models:
        budget = args.steps if TASKS[model].unit == "steps" else args.epochs
        try:
            records = run_sweep(out / "noise_sweep.jsonl", points, task=model, base=args.base,
                                budget=budget, seeds=args.seeds, seed=args.seed,
                                max_train=args.max_train, fidelity_errors=args.fidelity_errors,
                                workers=args.workers, dask=args.dask)
        except (ValueError, RuntimeError) as error:
            parser.error(str(error))
        results[model] = records_json(records)
        paths = plot_sweep(records, out, prefix=f"noise_sweep_{model}")
        figures += [str(p) for p in paths]
        sections.append(f"## {model}\n\n{markdown_table(records)}\n\n"
                        + "\n".join(f"![{p.name}]({p.name})" for p in paths))
    body = "\n\n".join(sections)
    command = "python scripts/noise_sweep.py " + " ".join(shlex.quote(a) for a in argv)
    (out / "noise_sweep.md").write_text(body + "\n", encoding="utf-8")
    budgets = sorted(p.name for p in out.glob("budget_*.md"))
    links = ("Noise budgets of the feedback (written by `scripts/noise_budget.py --out`): "
             + ", ".join(f"[{name}]({name})" for name in budgets) + ".\n\n") if budgets else ""
    (out / "index.md").write_text(
        "# Noise and quantization sweep\n\n"
        f"Written by `{command.strip()}`; every number below comes from the runs in "
        "`noise_sweep.jsonl` that match these settings (rerun the command to reproduce "
        "them; docs/design.md section 7).\n\n" + links + body + "\n", encoding="utf-8")
    jsonio.write_json(out / "noise_sweep.json", {"command": command.strip(), "models": results,
                                                 "figures": figures})
    if args.json:
        print(jsonio.dumps({"models": results, "figures": figures}))
    else:
        print(body)
        print("figures: " + ", ".join(figures))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
