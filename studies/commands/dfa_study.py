"""Run an acceptance study: several training methods on one task, same seeds and budget.

Usage::

    python scripts/dfa_study.py --seeds 3                  # Cora's GCN: bp, dfa ideal / lab-bench, shallow
    python scripts/dfa_study.py --model gcn --data citeseer --seeds 3   # any task the trainer runs
    python scripts/dfa_study.py --model gcn --data cora --data-path my_planetoid/ --seeds 3
    python scripts/dfa_study.py --study digits --json      # bp, dfa (ideal), dfa (lab-bench), shallow
    python scripts/dfa_study.py --study csbm --plot out/   # GCN bp, dfa, shallow; feature-only MLP
    python scripts/dfa_study.py --study transformer --steps 1500  # char Transformer: perplexities, gap closed
    python scripts/dfa_study.py --study digits --seeds 5 --out docs/studies   # the results page

The digits and csbm studies train for ``--epochs``, the transformer study for
``--steps`` (giving the other one is an error). Prints each run's test accuracy (or
validation perplexity), the gaps between methods in points and each goal of the issue
next to the measured value; ``--plot DIR`` saves the learning curves of every
run and the alignment curves of the DFA runs as PNG.

``--seeds N`` runs the study for seeds ``--seed .. --seed + N - 1`` and reports every
figure as the mean and the 95 % interval over them, flagging differences inside the
noise; ``--out DIR`` writes the study's results page (``<study>.md`` and ``<study>.json``,
then the learning curves of the first seed) and the index of the pages in ``DIR``.
"""

from __future__ import annotations

import json
import pathlib
import shlex
import sys

from photon.support.arrays import BACKENDS
from studies.plots import plot_alignment_curves, plot_learning_curves
from dfa_bridge.data import DATASET_NAMES
from dfa_bridge.training.families import family_names
from studies.acceptance import (LM_STUDY_NAME, STUDY_NAMES, run_study,
                                           run_study_seeds, study_markdown, task_study)
from photon.support.jsonio import dumps, write_json
from ._parser import CommandParser, positive_int, seed

__all__ = ["main"]


def main(argv=None) -> int:
    """Command-line entry point."""
    parser = CommandParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", choices=STUDY_NAMES, default=None,
                        help="a named study (default cora), or give --model and --data")
    parser.add_argument("--model", choices=family_names(higher_is_better=True), help="a task of your own: the model")
    parser.add_argument("--data", choices=DATASET_NAMES, help="... and its data set")
    parser.add_argument("--data-path", help="directory of your own files for --data")
    parser.add_argument("--seed", type=seed, default=0)
    parser.add_argument("--epochs", type=positive_int,
                        help="epochs of the digits and csbm studies (default: 30 mlp, 200 gcn)")
    parser.add_argument("--steps", type=positive_int,
                        help="steps of the transformer study (default 1500)")
    parser.add_argument("--backend", choices=BACKENDS, default="numpy")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--plot", metavar="DIR", help="save learning and alignment curves as PNG")
    parser.add_argument("--seeds", type=positive_int, default=1,
                        help="seeds --seed .. --seed + N - 1, summarized with 95 %% intervals")
    parser.add_argument("--out", metavar="DIR", help="write the study's results page in DIR")
    args = parser.parse_args(argv)
    if args.model or args.data or args.data_path:
        if args.study:
            parser.error("--study: expected either a named study or --model with --data")
        if not (args.model and args.data):
            parser.error("--model and --data: expected both for a task of your own")
        args.study = task_study(args.model, args.data, args.data_path)
        args.study_name = args.study["name"]
    else:
        args.study = args.study or "cora"
        args.study_name = args.study
    for option, value in (("--out", args.out), ("--plot", args.plot)):
        if value and pathlib.Path(value).exists() and not pathlib.Path(value).is_dir():
            parser.error(f"{option} {value}: expected a directory (a file of that name exists)")

    def report(label, result):
        score = (f"val perplexity {result['val_perplexity']:.3f}" if "val_perplexity" in result
                 else f"test accuracy {100 * result['test_accuracy']:.2f} %")
        print(f"{label}: {score} ({result['seconds']:.1f} s)", file=sys.stderr)

    if args.seeds > 1 or args.out:
        return _run_over_seeds(parser, args, report, argv)
    try:
        summary, histories = run_study(args.study, seed=args.seed, epochs=args.epochs,
                                       steps=args.steps, backend=args.backend, on_run=report)
    except ValueError as error:
        parser.error(str(error))
    if args.study == LM_STUDY_NAME:
        return _print_lm_study(summary, args)
    if args.plot:
        directory = pathlib.Path(args.plot)
        directory.mkdir(parents=True, exist_ok=True)
        plots = [plot_learning_curves(histories, directory / f"{args.study_name}_learning.png")]
        plots += [plot_alignment_curves(history, directory / f"{args.study_name}_{label}_alignment.png",
                                        f"{args.study_name}: {label}")
                  for label, history in histories.items() if summary["runs"][label]["method"] == "dfa"]
        summary["plots"] = [str(path) for path in plots]
        (directory / f"{args.study_name}.json").write_text(json.dumps(summary, indent=2))
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"study {args.study_name}, seed {args.seed}")
    for label, accuracy in summary["accuracy_pct"].items():
        print(f"  {label:<16} {accuracy:6.2f} %")
    for gap, value in summary["gaps_pt"].items():
        print(f"  {gap:<28} {value:+6.2f} points")
    for claim, goal in summary["goals"].items():
        print(f"  [{'met' if goal['met'] else 'NOT met'}] {claim}: {goal['value']:.2f}")
    return 0


def _run_over_seeds(parser, args, report, argv) -> int:
    """The study over ``--seeds`` seeds: its summary, and its page with ``--out``."""
    seeds = range(args.seed, args.seed + args.seeds)
    try:
        result, histories = run_study_seeds(args.study, seeds, epochs=args.epochs,
                                            steps=args.steps, backend=args.backend, on_run=report)
    except ValueError as error:
        parser.error(str(error))
    if args.out:  # the results first, then the figure, then the index
        directory = pathlib.Path(args.out)
        directory.mkdir(parents=True, exist_ok=True)
        command = "python scripts/dfa_study.py " + shlex.join(
            sys.argv[1:] if argv is None else list(argv))
        figure = None if args.study == LM_STUDY_NAME else f"{args.study_name}_learning.png"
        write_json(directory / f"{args.study_name}.json", result)
        (directory / f"{args.study_name}.md").write_text(study_markdown(result, command, figure),
                                                     encoding="utf-8")
        if figure:
            plot_learning_curves(histories, directory / figure)
        _write_index(directory)
    if args.json:
        print(dumps(result, indent=2))
        return 0
    print(f"study {args.study_name}, seeds {', '.join(map(str, result['seeds']))} "
          "(mean +- 95 % interval)")
    for label, entry in result["runs"].items():
        half = "" if entry["ci95"] is None else f" +- {entry['ci95']:.2f}"
        print(f"  {label:<16} {entry['mean']:7.2f}{half}")
    for gap, entry in result["gaps"].items():
        half = "" if entry["ci95"] is None else f" +- {entry['ci95']:.2f}"
        note = "" if entry["ci95"] is None else (" (within the noise)" if entry["within_noise"]
                                                  else "")
        print(f"  {gap:<40} {entry['mean']:+7.2f}{half}{note}")
    for claim, goal in result["goals"].items():
        print(f"  [met in {goal['met_in']} of {goal['of']}] {claim}: {goal['mean']:.2f}")
    return 0


def _write_index(directory: pathlib.Path) -> None:
    """``index.md``: a link to every study page in ``directory``."""
    pages = sorted(path.stem for path in directory.glob("*.md") if path.name != "index.md")
    lines = ["# DFA acceptance studies", "",
             "Each page is written by `python scripts/dfa_study.py --study NAME --seeds N --out "
             "DIR` (or `--model M --data D` for any task) and states the exact command of its "
             "run.", ""]
    lines += [f"* [{name}]({name}.md)" for name in pages]
    (directory / "index.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _print_lm_study(summary: dict, args) -> int:
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"study transformer, seed {args.seed} (unigram perplexity "
          f"{summary['unigram_perplexity']:.2f})")
    for label, ppl in summary["val_perplexity"].items():
        angles = summary["runs"][label]["alignment_deg"]["update_vs_gradient"]
        angles = "" if angles is None else f"  alignment {[round(a, 1) for a in angles]} deg"
        print(f"  {label:<16} perplexity {ppl:7.3f}  {summary['seconds'][label]:7.1f} s{angles}")
    for label, closed in summary["gap_closed_pct"].items():
        print(f"  {label} closes {closed:.1f} % of the shallow-to-bp gap")
    for claim, goal in summary["goals"].items():
        print(f"  [{'met' if goal['met'] else 'NOT met'}] {claim}: {goal['value']:.2f}")
    return 0
