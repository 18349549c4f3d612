"""Noise and quantization sweep: DFA through virtual OPUs of varied settings, decided against ideal feedback.

Usage::

    python scripts/noise_sweep.py --out sweep/                          # Cora's GCN, encoding axis
    python scripts/noise_sweep.py --out sweep/ --axes encoding adc_bits --pairs encoding:adc_bits
    python scripts/noise_sweep.py --out sweep/ --model gcn --data cora --data-path my_planetoid/
    python scripts/noise_sweep.py --out sweep/ --task deep-mlp --encoding bitplanes-4
    python scripts/noise_sweep.py --out sweep/ --base my_device.yaml --axes read_noise_e
    python scripts/noise_sweep.py --out sweep/ --dask local --workers 4
    python scripts/noise_sweep.py --out sweep/ --dask tcp://scheduler:8786

Every setting (a point) is trained over seeds and compared with DFA with ideal feedback
at the same seeds: *equivalent* within the margin (paired two one-sided tests, 5 %),
*worse* (a loss beyond the margin: the setting breaks DFA) or *undecided* at the seed cap.
Seeds are added to a point (3, 5, 8, 12, 18, ...) until it is decided; the page states
the margin, the tests, the seeds each point took and the number of comparisons. The
design answer is the cheapest setting decided equivalent (a front of device cost against
accuracy).

Runs are kept in ``OUT/noise_sweep.jsonl`` (or ``--store``), one line each, keyed on their
resolved settings (the device configuration's contents, the task and its data's
fingerprint, the seed, the encoding, the code's version): an identical rerun computes
nothing, any change computes new runs. Two sweeps may share a store at once (claims and
a lock): neither repeats the other's runs. ``--workers N`` runs N local processes;
``--dask ADDRESS`` sends runs to a Dask scheduler (``local`` starts a LocalCluster of
``--workers`` here and prints its dashboard): the same numbers either way.

Writes ``OUT/noise_sweep_TASK.md`` (the command, the decisions, tables and figures),
``OUT/noise_sweep_TASK.json`` (strict JSON: the summary and the design answer), the PNG
figures, and ``OUT/index.md`` linking every page of ``OUT``.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import shlex
import signal
import sys
import threading

from dfa_bridge.data import DATASET_NAMES
from dfa_bridge.data.text import TEXT_DATASETS
from dfa_bridge.training.families import FAMILIES
from photon.support import jsonio
from photon.support.cli import (non_negative_int, positive_float, positive_int,
                                widths)
from studies.sweep import (AXES, TASKS, DecisionRule, StudyTask, design_answer,
                           parse_encoding, run_sweep, summarize, sweep_points)
from studies.sweep.pages import index_page, sweep_page
from studies.sweep.render import plot_sweep

from ._parser import CommandParser, number_in

__all__ = ["main", "build_parser"]


def build_parser() -> CommandParser:
    """The command line."""
    parser = CommandParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="sweep", help="output directory of the pages")
    parser.add_argument("--store", default=None,
                        help="the runs' JSON-lines store (default OUT/noise_sweep.jsonl)")
    what = parser.add_argument_group("task (a named task, or --model with --data)")
    what.add_argument("--task", nargs="+", default=None, choices=list(TASKS),
                      help="named task(s) (default gcn-cora): " + "; ".join(TASKS))
    what.add_argument("--model", choices=tuple(FAMILIES), help="a model family, with --data")
    what.add_argument("--data", choices=DATASET_NAMES + TEXT_DATASETS,
                      help="data set of --model (cora, citeseer, digits, ...)")
    what.add_argument("--data-path", help="directory of your own files for --data (Planetoid "
                      "files for cora/citeseer/pubmed, MNIST files) or a UTF-8 text file")
    what.add_argument("--data-seed", type=non_negative_int, default=0,
                      help="seed of generated data and splits")
    what.add_argument("--hidden", type=widths, help="hidden widths of --model, e.g. 256,256")
    what.add_argument("--max-train", type=positive_int, help="training samples kept (tabular)")
    parser.add_argument("--epochs", type=positive_int, default=None,
                        help="epochs per run of an MLP or GCN task (default: the task's)")
    parser.add_argument("--steps", type=positive_int, default=None,
                        help="steps per run of a Transformer task (default: the task's)")
    parser.add_argument("--axes", nargs="*", default=["encoding"], choices=list(AXES),
                        help="axes swept one at a time (default: encoding)")
    parser.add_argument("--pairs", nargs="*", default=[], metavar="AXIS:AXIS",
                        help="axis pairs swept as a grid of their coarser values")
    parser.add_argument("--values", nargs="*", default=[], metavar="AXIS=V,V",
                        help="keep only these values of an axis (e.g. encoding=ternary,bitplanes-4)")
    parser.add_argument("--base", default="lab-bench",
                        help="the device the points modify: a preset or a YAML file")
    parser.add_argument("--encoding", default=None,
                        help="encoding of points without one: ternary or bitplanes-N "
                             "(default: the family's)")
    decide = parser.add_argument_group("decisions")
    decide.add_argument("--margin", type=positive_float, default=None,
                        help="equivalence margin: accuracy points (default 1) or fraction of "
                             "perplexity (default 0.05)")
    decide.add_argument("--alpha", type=number_in(0.0, 0.5, low_open=True, high_open=True),
                        default=0.05,
                        help="error rate of each decision (default 0.05)")
    decide.add_argument("--first-seeds", type=positive_int, default=3,
                        help="seeds of the first look (default 3)")
    decide.add_argument("--max-seeds", type=positive_int, default=18,
                        help="most seeds a point takes (default 18; looks 3, 5, 8, 12, 18, "
                             "27 ...)")
    decide.add_argument("--reference-seeds", type=positive_int, default=5,
                        help="seeds of the backpropagation and shallow references (default 5)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="first training seed")
    parser.add_argument("--workers", type=positive_int, default=os.cpu_count() or 1,
                        help="processes running runs at once (default: the cores)")
    parser.add_argument("--dask", default=None, metavar="ADDRESS",
                        help="a Dask scheduler's address, or 'local' for a LocalCluster here")
    parser.add_argument("--fidelity-errors", type=non_negative_int, default=512,
                        help="error vectors of each run's fidelity measurement (0: none)")
    parser.add_argument("--json", action="store_true", help="print the summaries as strict JSON")
    return parser


def _tasks(parser, args) -> list[StudyTask]:
    custom = args.model is not None or args.data is not None or args.data_path is not None
    if custom and args.task:
        parser.error("--task: expected either named tasks or --model with --data, not both")
    if args.hidden is not None and not custom:
        parser.error("--hidden: expected with --model and --data (a named task fixes its own)")
    if custom:
        if args.model is None or args.data is None:
            parser.error("--model and --data: expected both for a task of your own")
        hyper = (("hidden", args.hidden),) if args.hidden else ()
        try:
            tasks = [StudyTask(args.model, args.data, args.data_path, hyper=hyper,
                               data_seed=args.data_seed, max_train=args.max_train)]
        except ValueError as error:
            parser.error(str(error))
    else:
        tasks = [TASKS[name] for name in dict.fromkeys(args.task or ["gcn-cora"])]
    units = {task.unit for task in tasks}
    for flag, unit, value in (("--epochs", "epochs", args.epochs), ("--steps", "steps", args.steps)):
        if value is not None and unit not in units:
            parser.error(f"{flag} {value}: expected --{next(iter(units))} for task(s) "
                         f"{', '.join(t.label for t in tasks)}, which train in {next(iter(units))}")
    chosen = []
    for task in tasks:
        budget = args.epochs if task.unit == "epochs" else args.steps
        chosen.append(task if budget is None else dataclasses.replace(task, budget=budget))
    return chosen


def main(argv=None) -> int:
    """Command-line entry point."""
    if threading.current_thread() is threading.main_thread():  # a kill ends cleanly: claims dropped
        signal.signal(signal.SIGTERM, lambda number, frame: sys.exit(128 + number))
    parser = build_parser()
    args = parser.parse_args(argv)
    argv = sys.argv[1:] if argv is None else list(argv)
    pairs = []
    for text in args.pairs:
        names = text.split(":")
        if len(names) != 2:
            parser.error(f"--pairs {text!r}: expected two axis names joined by ':'")
        pairs.append(tuple(names))
    if args.encoding is not None:
        try:
            parse_encoding(args.encoding)
        except ValueError as error:
            parser.error(f"--encoding: {error}")
    keep = {}
    for text in args.values:
        name, _, values = text.partition("=")
        if name not in AXES or not values:
            parser.error(f"--values {text!r}: expected AXIS=V,V with AXIS one of {', '.join(AXES)}")
        known = {str(v): v for v in AXES[name].values}
        unknown = [v for v in values.split(",") if v not in known]
        if unknown:
            parser.error(f"--values {text!r}: {unknown[0]!r} is not a value of {name} "
                         f"(expected some of {', '.join(known)})")
        keep[name] = {known[v] for v in values.split(",")}
    try:
        points = [p for p in sweep_points(args.axes, pairs)
                  if all(p[name] in keep[name] for name in p if name in keep)]
        rule = DecisionRule(args.margin, args.alpha, args.first_seeds, args.max_seeds)
    except ValueError as error:
        parser.error(str(error).replace("cap = ", "--max-seeds ").replace("first = ",
                                                                          "--first-seeds "))
    if not points:
        parser.error("--axes, --pairs: expected at least one axis or pair to sweep")
    tasks = _tasks(parser, args)
    out = pathlib.Path(args.out)
    if out.exists() and not out.is_dir():
        parser.error(f"--out {str(out)!r}: expected a directory (a file is there)")
    out.mkdir(parents=True, exist_ok=True)
    store = pathlib.Path(args.store) if args.store else out / "noise_sweep.jsonl"
    command = "python scripts/noise_sweep.py " + shlex.join(argv)
    results = {}
    for task in tasks:
        records = run_sweep(store, points, task=task, base=args.base, seed=args.seed,
                            encoding=args.encoding, rule=rule,
                            reference_seeds=args.reference_seeds,
                            fidelity_errors=args.fidelity_errors, workers=args.workers,
                            dask=args.dask)
        summary = summarize(records, rule)
        slug = task.label.replace(" ", "_").replace("(", "").replace(")", "")
        prefix = f"noise_sweep_{slug}"
        figures = plot_sweep(summary, out, prefix=prefix)
        page = sweep_page(summary, command.strip(), prefix, task.description,
                          store_name=os.path.relpath(store, out))
        (out / f"{prefix}.md").write_text(page, encoding="utf-8")
        answer = design_answer(summary)
        results[task.label] = {"summary": summary, "design_answer": answer,
                               "figures": [str(p) for p in figures]}
        jsonio.write_json(out / f"{prefix}.json", {"command": command.strip(),
                                                    **results[task.label]})
        best = answer["answer"]
        print(f"{task.label}: {len(records)} runs; design answer: "
              f"{'none' if best is None else best['label']}; decisions "
              f"{answer['counts']}; page {out / (prefix + '.md')}", file=sys.stderr)
    (out / "index.md").write_text(index_page(out), encoding="utf-8")
    if args.json:
        print(jsonio.dumps(results))
    return 0
