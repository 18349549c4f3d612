"""The acceptance studies: several methods on one task, same seeds and epochs, with goals.

``cora``    The two-layer GCN on the Cora citation graph (Planetoid split): ``bp``,
            ``dfa`` with ideal feedback, ``dfa`` through the ``lab-bench`` virtual OPU with
            the default error encoding, with a ternary code and with feedback rows read from
            adjacent (speckle-correlated) outputs, ``shallow``. The default study: hidden
            learning and feedback quality both show on it.
``digits``  MLP (2 x 256 tanh) on scikit-learn's digits: ``bp``, ``dfa`` with ideal
            feedback, ``dfa`` through the ``lab-bench`` virtual OPU (ternarized error,
            8-bit camera, every noise source on) and ``shallow``.
``csbm``    Two-layer GCN on the contextual block model (2,000 nodes, 5 classes):
            ``bp``, ``dfa``, ``shallow``, and the feature-only MLP (``bp``) that shows the
            graph is needed.
``transformer`` Character Transformer (4 blocks x 128, 4 heads, context 64) on the pydoc
            corpus: ``bp``, ``dfa`` (ideal), ``dfa`` through ``lab-bench`` (error in
            signed 4-bit planes), ``shallow``;
            validation perplexity per character, the share of the shallow-to-bp gap dfa
            closes, and each run's wall time.

Any task the trainer runs is a study too (:func:`task_study`: a model family on a named
data set, a user's files or a data set object): ``bp``, ``dfa`` ideal, ``dfa`` through a
device, ``shallow``.

Each study reports every run's result, the accuracy gaps in points, and each goal of
the issue next to the measured value (docs/design.md section 7: a study states its
reference next to its own result). Over several seeds every gap is also a decision
(:data:`GAP_MARGIN_POINTS`): equivalent within the margin by a paired two one-sided test
at 5 %, worse or better beyond it, or undecided (:func:`photon.support.stats.paired_tost`).
"""

from __future__ import annotations

from typing import Callable, Sequence

from photon.support.stats import describe, paired_margin_tests

from dfa_bridge.training.experiment import run_experiment
from dfa_bridge.training.families import family_names
from dfa_bridge.training.trainer import History

__all__ = ["STUDIES", "STUDY_NAMES", "LM_STUDY", "LM_STUDY_NAME", "GAP_MARGIN_POINTS", "GAP_ALPHA", "task_study",
           "gap_closed_pct", "run_study", "run_study_seeds", "study_markdown"]

#: Margin (accuracy points) and level of the paired decision on every gap over seeds.
GAP_MARGIN_POINTS = 1.0
GAP_ALPHA = 0.05


def _max_angle(result: dict) -> float:
    angles = result["alignment_deg"]
    return max(angles["update_vs_gradient"] + angles["weights_vs_feedback"])


#: name -> runs (label -> run_experiment arguments), gaps (a, b: accuracy of a minus b, in
#: points) and goals (claim -> (accuracies in %, results) -> (measured value, met)).
STUDIES: dict[str, dict] = {
    "cora": {
        "runs": {
            "bp": {"model": "gcn", "data": "cora", "method": "bp"},
            "dfa-ideal": {"model": "gcn", "data": "cora", "method": "dfa"},
            "dfa-lab-bench": {"model": "gcn", "data": "cora", "method": "dfa",
                              "feedback": "lab-bench"},
            "dfa-lab-bench-ternary": {"model": "gcn", "data": "cora", "method": "dfa",
                                      "feedback": "lab-bench", "encoder": "ternary"},
            "dfa-lab-bench-adjacent": {"model": "gcn", "data": "cora", "method": "dfa",
                                       "feedback": "lab-bench",
                                       "device_options": {"output_spacing": 1}},
            "shallow": {"model": "gcn", "data": "cora", "method": "shallow"},
        },
        "gaps": (("dfa-ideal", "bp"), ("dfa-lab-bench", "dfa-ideal"),
                 ("dfa-lab-bench-ternary", "dfa-ideal"), ("dfa-lab-bench-adjacent", "dfa-ideal"),
                 ("dfa-ideal", "shallow")),
        "notes": (
            "`dfa-lab-bench` reads the rows of the feedback matrix from device outputs two "
            "pixels apart (`output_spacing=2`, the default of "
            "`dfa_bridge.training.feedback.make_feedback`); `dfa-lab-bench-adjacent` reads "
            "adjacent outputs (`output_spacing=1`), as the toolkit did before. Adjacent "
            "camera pixels see one speckle grain (the preset's `speckle_grain_px`: intensity "
            "correlation exp(-d^2 / 2 sigma^2), 0.54 at one pixel, 0.09 at two), so adjacent "
            "rows of the feedback matrix are correlated and several hidden units receive "
            "nearly the same signal: that, not the camera's noise, is what the adjacent arm "
            "loses against ideal feedback."),
        "goals": {
            "bp test accuracy >= 80 %": lambda a, r: (a["bp"], a["bp"] >= 80.0),
            "dfa (lab-bench, default encoding) within 1.5 points of dfa (ideal)":
                lambda a, r: (a["dfa-lab-bench"] - a["dfa-ideal"],
                              a["dfa-ideal"] - a["dfa-lab-bench"] <= 1.5),
            "shallow more than 10 points below dfa (ideal)":
                lambda a, r: (a["shallow"] - a["dfa-ideal"], a["dfa-ideal"] - a["shallow"] > 10),
        },
    },
    "digits": {
        "runs": {
            "bp": {"model": "mlp", "data": "digits", "method": "bp"},
            "dfa-ideal": {"model": "mlp", "data": "digits", "method": "dfa"},
            "dfa-lab-bench": {"model": "mlp", "data": "digits", "method": "dfa",
                              "feedback": "lab-bench"},
            "shallow": {"model": "mlp", "data": "digits", "method": "shallow"},
        },
        "gaps": (("dfa-ideal", "bp"), ("dfa-lab-bench", "dfa-ideal"), ("dfa-ideal", "shallow")),
        "goals": {
            "bp test accuracy >= 97 %": lambda a, r: (a["bp"], a["bp"] >= 97.0),
            "dfa (ideal) within 1.5 points of bp":
                lambda a, r: (a["dfa-ideal"] - a["bp"], a["bp"] - a["dfa-ideal"] <= 1.5),
            "dfa (lab-bench) within 3 points of dfa (ideal)":
                lambda a, r: (a["dfa-lab-bench"] - a["dfa-ideal"],
                              a["dfa-ideal"] - a["dfa-lab-bench"] <= 3.0),
            "shallow below dfa (ideal)":
                lambda a, r: (a["shallow"] - a["dfa-ideal"], a["shallow"] < a["dfa-ideal"]),
            "dfa alignment angles below 80 degrees (largest)":
                lambda a, r: (max(_max_angle(r["dfa-ideal"]), _max_angle(r["dfa-lab-bench"])),
                              max(_max_angle(r["dfa-ideal"]), _max_angle(r["dfa-lab-bench"])) < 80),
        },
    },
    "csbm": {
        "runs": {
            "gcn-bp": {"model": "gcn", "data": "csbm", "method": "bp"},
            "gcn-dfa": {"model": "gcn", "data": "csbm", "method": "dfa"},
            "gcn-shallow": {"model": "gcn", "data": "csbm", "method": "shallow"},
            "mlp-features": {"model": "mlp", "data": "csbm", "method": "bp"},
        },
        "gaps": (("gcn-dfa", "gcn-bp"), ("gcn-dfa", "gcn-shallow"), ("gcn-bp", "mlp-features")),
        "goals": {
            "feature-only MLP below 80 %":
                lambda a, r: (a["mlp-features"], a["mlp-features"] < 80.0),
            "gcn dfa within 2 points of gcn bp":
                lambda a, r: (a["gcn-dfa"] - a["gcn-bp"], a["gcn-bp"] - a["gcn-dfa"] <= 2.0),
            "gcn dfa above gcn shallow":
                lambda a, r: (a["gcn-dfa"] - a["gcn-shallow"], a["gcn-dfa"] > a["gcn-shallow"]),
        },
    },
}


#: The language-model study: perplexity, lower is better.
LM_STUDY = {
    "runs": {
        "bp": {"model": "transformer", "data": "pydoc", "method": "bp"},
        "dfa-ideal": {"model": "transformer", "data": "pydoc", "method": "dfa"},
        "dfa-lab-bench": {"model": "transformer", "data": "pydoc", "method": "dfa",
                          "feedback": "lab-bench"},
        "shallow": {"model": "transformer", "data": "pydoc", "method": "shallow"},
    },
}


#: The name the language-model study is run by (it names its model family).
LM_STUDY_NAME = LM_STUDY["runs"]["bp"]["model"]

STUDY_NAMES = tuple(STUDIES) + (LM_STUDY_NAME,)


def task_study(model: str, data, data_path=None, device: str = "lab-bench") -> dict:
    """A study of any task the trainer runs: ``bp``, ``dfa`` ideal and through ``device``, ``shallow``.

    Parameters
    ----------
    model
        ``"mlp"`` or ``"gcn"`` (accuracy; the Transformer has its own study).
    data
        A data set name, or a data set object of your own (``Dataset``, ``GraphData``).
    data_path
        Directory of your own files for a named data set.
    device
        The feedback device of the ``dfa-device`` run (its family's default encoding).

    Returns
    -------
    dict
        A study in the form of :data:`STUDIES` (runs, gaps, no goals): give it to
        :func:`run_study` or :func:`run_study_seeds` in place of a name.
    """
    classifiers = family_names(higher_is_better=True)
    if model not in classifiers:
        raise ValueError(f"model = {model!r}: expected a classifier family, "
                         f"{' or '.join(repr(m) for m in classifiers)} "
                         f"(the language study is named {LM_STUDY_NAME!r})")
    common = {"model": model, "data": data}
    if data_path is not None:
        common["data_path"] = data_path
    label = data if isinstance(data, str) else getattr(data, "name", "data")
    return {"name": f"{model}-{label}", "runs": {
        "bp": {**common, "method": "bp"}, "dfa-ideal": {**common, "method": "dfa"},
        "dfa-device": {**common, "method": "dfa", "feedback": device},
        "shallow": {**common, "method": "shallow"}},
        "gaps": (("dfa-ideal", "bp"), ("dfa-device", "dfa-ideal"), ("dfa-ideal", "shallow")),
        "goals": {}}


def gap_closed_pct(perplexity: dict, label: str = "dfa-ideal") -> float:
    """Share of the shallow-to-bp perplexity gap that run ``label`` closes, in percent."""
    gap = perplexity["shallow"] - perplexity["bp"]
    return 100.0 * (perplexity["shallow"] - perplexity[label]) / gap if gap else float("nan")


def _run_lm_study(seed, epochs, steps, progress, on_run, options):
    results, histories = {}, {}
    for label, arguments in LM_STUDY["runs"].items():
        results[label], histories[label] = run_experiment(
            **arguments, seed=seed, epochs=epochs, steps=steps, progress=progress, **options)
        if on_run is not None:
            on_run(label, results[label])
    ppl = {label: result["val_perplexity"] for label, result in results.items()}
    closed = gap_closed_pct(ppl)
    goals = {
        "bp has the lowest perplexity": (ppl["bp"], ppl["bp"] == min(ppl.values())),
        "dfa (ideal) strictly between bp and shallow":
            (ppl["dfa-ideal"], ppl["bp"] < ppl["dfa-ideal"] < ppl["shallow"]),
        "dfa (ideal) closes >= 50 % of the shallow-to-bp gap": (closed, closed >= 50.0),
        "dfa (lab-bench) below shallow": (ppl["dfa-lab-bench"], ppl["dfa-lab-bench"] < ppl["shallow"]),
    }
    summary = {"study": LM_STUDY_NAME, "seed": seed, "val_perplexity": ppl,
               "unigram_perplexity": results["bp"]["unigram_perplexity"],
               "gap_closed_pct": {"dfa-ideal": closed,
                                  "dfa-lab-bench": gap_closed_pct(ppl, "dfa-lab-bench")},
               "seconds": {label: result["seconds"] for label, result in results.items()},
               "goals": {claim: {"value": value, "met": bool(met)}
                         for claim, (value, met) in goals.items()},
               "runs": results}
    return summary, histories


def run_study(name: str | dict, seed: int = 0, epochs: int | None = None,
              progress: bool | None = None,
              on_run: Callable[[str, dict], None] | None = None, *, steps: int | None = None,
              **options) -> tuple[dict, dict[str, History]]:
    """Run every configuration of a study with the same seeds and budget.

    Parameters
    ----------
    name
        ``"cora"``, ``"digits"``, ``"csbm"`` or ``"transformer"`` (trained in ``steps``;
        the summary holds ``val_perplexity``, ``gap_closed_pct`` and ``seconds`` instead
        of accuracies), or a study of :func:`task_study`.
    seed
        Training seed shared by every run.
    epochs
        Epochs of every run of the ``digits`` and ``csbm`` studies (default: each
        model's); None for ``transformer`` (a ValueError says so).
    progress
        Progress bars on stderr.
    on_run
        Called with each run's label and result as it finishes.
    steps
        Steps of every run of the ``transformer`` study (default 1500); None for the
        others.
    **options
        Further :func:`~dfa_bridge.training.experiment.run_experiment` arguments for every run
        (``backend``, ``max_train`` ...).

    Returns
    -------
    (dict, dict)
        ``{"study", "seed", "accuracy_pct", "gaps_pt", "goals", "runs"}`` and each run's
        history.
    """
    if name == LM_STUDY_NAME:
        return _run_lm_study(seed, epochs, steps, progress, on_run, options)
    if isinstance(name, dict):
        study, name = name, name.get("name", "task")
    elif name in STUDIES:
        study = STUDIES[name]
    else:
        raise ValueError(f"study = {name!r}: expected one of {', '.join(map(repr, STUDY_NAMES))} or a "
                         "task_study(...)")
    results, histories = {}, {}
    for label, arguments in study["runs"].items():
        results[label], histories[label] = run_experiment(
            **arguments, seed=seed, epochs=epochs, steps=steps, progress=progress, **options)
        if on_run is not None:
            on_run(label, results[label])
    accuracy = {label: 100.0 * result["test_accuracy"] for label, result in results.items()}
    gaps = {f"{a} - {b}": accuracy[a] - accuracy[b] for a, b in study["gaps"]}
    goals = {}
    for claim, check in study["goals"].items():
        value, met = check(accuracy, results)
        goals[claim] = {"value": value, "met": bool(met)}
    summary = {"study": name, "seed": seed, "accuracy_pct": accuracy, "gaps_pt": gaps,
               "goals": goals, "runs": results}
    return summary, histories


def run_study_seeds(name: str | dict, seeds: Sequence[int], epochs: int | None = None,
                    progress: bool | None = None,
                    on_run: Callable[[str, dict], None] | None = None, *,
                    steps: int | None = None, **options) -> tuple[dict, dict[str, History]]:
    """Run a study once per seed and summarize every figure over the seeds.

    Each seed is a full :func:`run_study` (every run of the study shares it, so the
    differences between runs are paired). Every figure is summarized by
    :func:`photon.support.stats.describe`: mean, standard deviation and the half-width of
    the 95 % Student-t interval of the mean. A gap whose interval contains zero is
    flagged ``within_noise``; over two seeds or more an accuracy gap also carries its
    ``decision`` (:data:`GAP_MARGIN_POINTS`, paired two one-sided tests at
    :data:`GAP_ALPHA`: ``equivalent``, ``worse``, ``better`` or ``undecided``).

    Parameters
    ----------
    name
        A study of :data:`STUDY_NAMES`.
    seeds
        Training seeds, at least one.
    epochs, steps, progress, on_run, **options
        As for :func:`run_study`; ``on_run`` receives ``"<label> (seed <s>)"``.

    Returns
    -------
    (dict, dict)
        ``{"study", "seeds", "metric", "lower_is_better", "runs", "gaps", "goals",
        "seconds", "per_seed"}`` and the first seed's histories.
    """
    seeds = list(seeds)
    if not seeds or any(isinstance(s, bool) or int(s) != s or s < 0 for s in seeds):
        raise ValueError(f"seeds = {seeds!r}: expected one or more non-negative integer seeds")
    summaries, first = [], None
    for seed in seeds:
        callback = None if on_run is None else (
            lambda label, result, seed=seed: on_run(f"{label} (seed {seed})", result))
        summary, histories = run_study(name, seed=int(seed), epochs=epochs, progress=progress,
                                       on_run=callback, steps=steps, **options)
        summaries.append(summary)
        first = histories if first is None else first
    language = name == LM_STUDY_NAME
    name = summaries[0]["study"]
    metric = "val_perplexity" if language else "accuracy_pct"
    labels = list(summaries[0][metric])
    runs = {label: describe([s[metric][label] for s in summaries]) for label in labels}
    if language:
        gap_values = {f"{label} closes (% of shallow-to-bp gap)":
                      [s["gap_closed_pct"][label] for s in summaries]
                      for label in summaries[0]["gap_closed_pct"]}
        seconds = {label: describe([s["seconds"][label] for s in summaries]) for label in labels}
    else:
        gap_values = {gap: [s["gaps_pt"][gap] for s in summaries] for gap in summaries[0]["gaps_pt"]}
        seconds = {label: describe([s["runs"][label]["seconds"] for s in summaries])
                   for label in labels}
    gaps = {}
    for gap, values in gap_values.items():
        entry = describe(values)
        entry["within_noise"] = (entry["ci95"] is not None
                                 and abs(entry["mean"]) <= entry["ci95"])
        if not language and len(values) > 1:
            test = paired_margin_tests(values, GAP_MARGIN_POINTS, GAP_ALPHA)
            entry["decision"] = {"decision": test["decision"], "interval": test["interval"],
                                 "margin": GAP_MARGIN_POINTS, "alpha": GAP_ALPHA,
                                 "p_tost": test["p_tost"], "p_worse": test["p_worse"]}
        gaps[gap] = entry
    goals = {claim: {**describe([s["goals"][claim]["value"] for s in summaries]),
                     "met_in": sum(bool(s["goals"][claim]["met"]) for s in summaries),
                     "of": len(summaries)}
             for claim in summaries[0]["goals"]}
    return {"study": name, "seeds": seeds, "metric": metric, "lower_is_better": language,
            "runs": runs, "gaps": gaps, "goals": goals, "seconds": seconds,
            "per_seed": summaries}, first


def _estimate(entry: dict, digits: int = 2) -> str:
    """``mean +- half-width`` of a :func:`describe` entry (the mean alone for one seed)."""
    text = f"{entry['mean']:.{digits}f}"
    return text if entry["ci95"] is None else f"{text} +- {entry['ci95']:.{digits}f}"


def study_markdown(result: dict, command: str, figure: str | None = None) -> str:
    """The Markdown results page of one study summarized over seeds.

    Parameters
    ----------
    result
        What :func:`run_study_seeds` returns first.
    command
        The command line that produced it (stated on the page).
    figure
        A learning-curve image beside the page, if any.
    """
    n = len(result["seeds"])
    unit = "validation perplexity per character" if result["lower_is_better"] else "test accuracy (%)"
    lines = [f"# DFA acceptance study: {result['study']}", "",
             f"Written by `{command}`. {n} seed(s): {', '.join(map(str, result['seeds']))}; "
             "every run of a seed shares its weights, batches and feedback draw, so the "
             "differences between runs are paired. Figures are the mean over seeds +- the "
             "half-width of the 95 % Student-t interval of the mean"
             + (" (one seed: no interval)." if n == 1 else "."), "",
             f"| run | {unit} | seconds |", "|---|---|---|"]
    for label, entry in result["runs"].items():
        lines.append(f"| {label} | {_estimate(entry)} | {_estimate(result['seconds'][label], 1)} |")
    decided = any("decision" in entry for entry in result["gaps"].values())
    if decided:
        lines += ["", f"Each accuracy gap is also decided: *equivalent* within ±"
                  f"{GAP_MARGIN_POINTS:g} point when both one-sided paired t tests (TOST) "
                  f"reject a gap beyond it at {100 * GAP_ALPHA:g} %, *worse* or *better* when a "
                  f"one-sided test puts it beyond the margin, *undecided* otherwise; the "
                  f"interval is the {100 * (1 - 2 * GAP_ALPHA):g} % interval the tests read. "
                  f"{sum('decision' in e for e in result['gaps'].values())} gaps are decided, "
                  f"each at {100 * GAP_ALPHA:g} %."]
    lines += ["", "| difference | value | reading |" + (" decision |" if decided else ""),
              "|---|---|---|" + ("---|" if decided else "")]
    for gap, entry in result["gaps"].items():
        if entry["ci95"] is None:
            reading = "one seed: no interval"
        else:
            reading = "within the noise" if entry["within_noise"] else "outside the noise"
        unit_gap = "" if result["lower_is_better"] else " points"
        row = f"| {gap} | {_estimate(entry)}{unit_gap} | {reading} |"
        if decided:
            d = entry.get("decision")
            row += (" - |" if d is None else
                    f" {d['decision']} [{d['interval'][0]:+.2f}, {d['interval'][1]:+.2f}] |")
        lines.append(row)
    if result["goals"]:
        lines += ["", "| goal | value | met in seeds |", "|---|---|---|"]
    for claim, entry in result["goals"].items():
        lines.append(f"| {claim} | {_estimate(entry)} | {entry['met_in']} of {entry['of']} |")
    notes = STUDIES.get(result["study"], {}).get("notes")
    if notes:
        lines += ["", notes]
    if figure:
        lines += ["", f"![learning curves of seed {result['seeds'][0]}]({figure})"]
    lines += ["", f"Every run's full result is in `{result['study']}.json` beside this page.", ""]
    return "\n".join(lines)
