"""A sweep on the page: Markdown tables of the decisions and PNG figures beside them.

Everything here reads a summary (:func:`studies.sweep.summary.summarize`); nothing is
computed again. Figures are drawn on Matplotlib's Agg canvas (no pyplot state).
"""

from __future__ import annotations

import json
import math
import pathlib

import numpy as np
from matplotlib.figure import Figure

from photon.support.stats import look_alpha

from .spec import AXES, REFERENCE_LABELS, REFERENCES
from .summary import axis_entries, design_answer, pair_grids, snr_bins

__all__ = ["markdown", "method_text", "code_text", "references_table", "decision_text",
           "seed_table", "plot_sweep", "DECISION_MARKS"]

#: How a decision is marked in tables and grids.
DECISION_MARKS = {"equivalent": "equivalent", "worse": "**worse**", "better": "better",
                  "undecided": "undecided"}
_COLORS = {"equivalent": "tab:green", "worse": "tab:red", "better": "tab:blue",
           "undecided": "tab:orange"}


def _scale(summary: dict) -> tuple[float, str]:
    if summary["higher_is_better"]:
        return 100.0, "test accuracy (%)"
    return 1.0, "validation perplexity"


def _fmt(stat: dict | None, scale: float = 1.0, digits: int = 2) -> str:
    if stat is None:
        return "-"
    mean = scale * stat["mean"]
    if stat["ci95"] is None:
        return f"{mean:.{digits}f} (1 seed)"
    return f"{mean:.{digits}f} ± {scale * stat['ci95']:.{digits}f}"


def _unit(summary: dict) -> str:
    return "pts" if summary["higher_is_better"] else "% log-ppl"


def decision_text(entry: dict, summary: dict) -> str:
    """``equivalent (8 seeds): -0.31 [-0.92, +0.30] pts``: the decision and its interval."""
    decision = entry["decision"]
    test = decision["test"]
    mark = DECISION_MARKS[decision["decision"]]
    if test is None:
        return f"{mark} (waiting for seeds)"
    low, high = test["interval"]
    pending = "" if decision["need"] is None else f", {decision['need']} seeds pending"
    return (f"{mark} ({decision['n']} seeds{pending}): {test['mean']:+.2f} [{low:+.2f}, "
            f"{high:+.2f}] {_unit(summary)}")


def method_text(summary: dict) -> str:
    """How every answer of the page is decided, with the error rates and the comparisons."""
    rule = summary["rule"]
    looks = rule["looks"]
    levels = ", ".join(f"{100 * look_alpha(k, rule['alpha']):.2g} %"
                       for k in range(1, len(looks) + 1))
    n = summary["comparisons"]
    counts = design_answer(summary)["counts"]
    told = ", ".join(f"{counts.get(d, 0)} {d}" for d in ("equivalent", "worse", "better",
                                                            "undecided") if counts.get(d))
    pending = sum(e["decision"]["need"] is not None for e in summary["points"])
    if pending:
        told += (f" ({pending} of the undecided are not finished: they wait for seeds; "
                 "rerunning the command goes on from the stored runs)")
    difference = ("the paired difference in accuracy points (the setting's test accuracy "
                  "minus ideal DFA's at the same seed)" if summary["higher_is_better"] else
                  "the paired difference in percent of log perplexity, 100 ln(ideal / "
                  "setting) (positive: better)")
    return (
        f"**How each answer is decided.** Every setting is compared with DFA with ideal "
        f"feedback over the same seeds (seed index i trains with the same weights, batches "
        f"and device seeds at every point): {difference}. *Equivalent*: both one-sided paired "
        f"t tests of the two one-sided test procedure (TOST) reject a difference beyond "
        f"±{rule['margin_text']}; *worse* (the setting breaks DFA): a one-sided paired t "
        f"test rejects a loss smaller than the margin; *undecided*: neither by the cap of "
        f"{looks[-1]} seeds. Seeds are added to a point until it is decided, looking at "
        f"{', '.join(map(str, looks))} seeds; look k tests at alpha / (k (k + 1)) = {levels} "
        f"for alpha = {100 * rule['alpha']:g} %, so that over all looks the chance of a wrong "
        f"equivalence (or of a wrong loss) stays below {100 * rule['alpha']:g} % per point "
        f"(union bound, whatever the correlation between looks); the looks and their levels "
        f"do not depend on the cap, so raising it never changes a decision already taken. "
        f"The interval shown with a decision is the 1 - 2 alpha_k interval of the mean "
        f"difference its look read. {n} settings were compared ({n} equivalence and {n} loss "
        f"tests); at {100 * rule['alpha']:g} % each, at most {n * rule['alpha']:.1f} wrong "
        f"decision(s) are expected among them. Decisions: {told or 'none'}.")


def _version(text: str) -> str:
    version = json.loads(text)
    return f"`{version['source']}` (NumPy {version['numpy']}, Python {version['python']})"


def code_text(summary: dict) -> str:
    """Whether the runs were computed by the code that reads them, said plainly."""
    code = summary["code"]
    if code["current_matches"]:
        return ("Every run was computed by the current code (version "
                f"{_version(code['current'])}: a hash of the source on a run's path).")
    versions = "; ".join(_version(v) for v in code["versions"])
    return (f"**These runs were computed by other code than the current one** (run code "
            f"{versions}; the current code is {_version(code['current'])}): their numbers are what "
            "that code gave. Rerun the sweep's command to recompute them with this code.")


def references_table(summary: dict) -> str:
    """The references over seeds: mean ± 95 % interval."""
    scale, name = _scale(summary)
    lines = [f"| reference | {name}, mean ± 95 % interval | seeds |", "|---|---|---|"]
    for ref in REFERENCES:
        entry = summary["references"].get(ref)
        if entry is not None:
            lines.append(f"| {REFERENCE_LABELS[ref]} | {_fmt(entry['metric'], scale)} | "
                         f"{entry['n']} |")
    return "\n".join(lines)


def _cost_text(cost: dict | None) -> str:
    if not cost:
        return "-"
    time_us = cost.get("device_us_per_vector")
    bits = "analog" if cost.get("adc_bits") is None else f"{cost['adc_bits']} bits"
    when = "-" if time_us is None else f"{time_us:.0f} µs"
    return f"{when}, {cost['planes']} planes, {bits}, {cost['photons_per_output']:.3g} e-"


def _angles(entry: dict) -> str:
    return "-" if not entry["angles"] else ", ".join(_fmt(a, 1.0, 0) for a in entry["angles"])


def _point_row(entry: dict, summary: dict, first_cell: str) -> str:
    scale, _ = _scale(summary)
    return (f"| {first_cell} | {decision_text(entry, summary)} | {_fmt(entry['metric'], scale)} "
            f"| {_angles(entry)} | {_fmt(entry['snr_db'], 1.0, 1)} | "
            f"{_fmt(entry['encoding_snr_db'], 1.0, 1)} | {_fmt(entry['fidelity_snr_db'], 1.0, 1)}"
            f" | {_cost_text(entry['cost'])} |")


_POINT_HEADER = ("| decision vs ideal DFA (seeds): mean [interval] | {name} | update angle "
                 "(deg) | feedback SNR in training (dB) | encoding alone (dB) | SNR on fixed "
                 "errors (dB) | device cost per error vector: time, planes, bits, e- per "
                 "output |")


def _answer_lines(summary: dict, prefix: str, sub: str = "###") -> list[str]:
    answer = design_answer(summary)
    lines = [f"{sub} The design answer: the cheapest setting within the margin", ""]
    best = answer["answer"]
    if best is None:
        lines.append("No setting was decided equivalent to ideal-feedback DFA.")
    else:
        lines.append(f"**`{best['label']}`** is the cheapest setting decided equivalent "
                     f"({answer['order']}): {decision_text(best, summary)}; device cost "
                     f"{_cost_text(best['cost'])}.")
    lines += ["", "| axis | cheapest setting decided equivalent | worse: breaks DFA | "
              "undecided |", "|---|---|---|---|"]
    for axis in answer["per_axis"]:
        cheapest = "none" if axis["cheapest_equivalent"] is None else \
            f"`{axis['cheapest_equivalent']}`"
        lines.append(f"| {axis['label']} | {cheapest} | "
                     f"{', '.join(f'`{v}`' for v in axis['worse']) or 'none'} | "
                     f"{', '.join(f'`{v}`' for v in axis['undecided']) or 'none'} |")
    scale, name = _scale(summary)
    lines += ["", "The cost front: settings no other setting beats on both device time per "
              "error vector and paired difference to ideal DFA (cheapest first):", "",
              "| setting | " + _POINT_HEADER.format(name=name)[2:],
              "|---|---|---|---|---|---|---|---|"]
    for entry in answer["front"]:
        lines.append(_point_row(entry, summary, f"`{entry['label']}`"))
    lines += ["", f"![cost front]({prefix}_front.png)"]
    return lines


def seed_table(entry: dict, summary: dict) -> str:
    """Per seed: the run's score, its difference to ideal DFA and its feedback in training."""
    scale, name = _scale(summary)
    lines = [f"| seed | {name} | vs ideal ({_unit(summary)}) | update angle (deg) | feedback "
             "SNR in training: median, lowest (dB) | encoding alone (dB) | last quarter of "
             "the evaluations: min .. max (std) |", "|---|---|---|---|---|---|---|"]
    for row in entry["per_seed"]:
        value = "-" if row["value"] is None else f"{scale * row['value']:.2f}"
        diff = "-" if row["difference"] is None else f"{row['difference']:+.2f}"
        angle = "-" if row["angle_deg"] is None else f"{row['angle_deg']:.0f}"
        snr = "-" if row["snr_db"] is None else \
            f"{row['snr_db']:.1f}, {row['snr_db_min']:.1f}"
        coded = "-" if row["encoding_snr_db"] is None else f"{row['encoding_snr_db']:.1f}"
        tail = "-" if row["tail_min"] is None else (
            f"{scale * row['tail_min']:.1f} .. {scale * row['tail_max']:.1f} "
            f"({scale * (row['tail_std'] or 0.0):.1f})")
        lines.append(f"| {row['seed']} | {value} | {diff} | {angle} | {snr} | {coded} | {tail} |")
    return "\n".join(lines)


def _snr_lines(summary: dict, prefix: str, sub: str = "###") -> list[str]:
    bins = snr_bins(summary)
    if not bins:
        return []
    lines = [f"{sub} How a run's feedback predicts its loss", "",
             "Every device run of this sweep, binned by the median SNR of its feedback in "
             "training (the device's `B_hat e` against the exact `B e` of its noise-free "
             "twin, measured at every step; `result['feedback_fidelity']` of "
             "`run_experiment`, or `scripts/train.py --json`):", "",
             f"| feedback SNR in training | runs | vs ideal DFA ({_unit(summary)}): mean ± 95 % "
             "| std | worst | mean update angle (deg) |", "|---|---|---|---|---|---|"]
    for b in bins:
        low = "" if math.isinf(b["low"]) else f"{b['low']:g}"
        high = "" if math.isinf(b["high"]) else f"{b['high']:g}"
        span = f"below {high} dB" if not low else (f"{low} dB and above" if not high
                                                   else f"{low} .. {high} dB")
        d = b["difference"]
        std = "-" if d["std"] is None else f"{d['std']:.2f}"
        angle = "-" if b["angle_deg"] is None else f"{b['angle_deg']:.0f}"
        lines.append(f"| {span} | {b['runs']} | {_fmt(d)} | {std} | {b['worst']:+.2f} | {angle} |")
    lines += ["", f"![accuracy against feedback SNR]({prefix}_snr.png)"]
    return lines


def markdown(summary: dict, prefix: str = "noise_sweep", heading: str = "##",
             description: str = "") -> str:
    """The sweep's Markdown: method, references, design answer, SNR, axes and grids."""
    scale, name = _scale(summary)
    base = summary["base"]
    sub = heading + "#"
    lines = [f"{heading} {summary['task']}", "",
             (description.rstrip(".") + ". " if description else "")
             + f"{summary['budget']} {summary['unit']} per run; data `{summary['data']['name']}` "
             f"(content SHA-256 `{summary['data']['fingerprint'][:16]}`)"
             + (f"; base device `{base}`." if base else "."), "",
             method_text(summary), "", code_text(summary), "", references_table(summary), ""]
    if summary["points"]:
        lines += _answer_lines(summary, prefix, sub) + [""] + _snr_lines(summary, prefix, sub)
    for axis_name, axis in AXES.items():
        rows = axis_entries(summary, axis_name)
        if not rows:
            continue
        lines += ["", f"{sub} {axis.label}", "", f"| {axis_name} " + _POINT_HEADER.format(
            name=name), "|---" * 8 + "|"]
        lines += [_point_row(e, summary, f"`{e['point'][axis_name]}`") for e in rows]
    if any(axis_entries(summary, n) for n in AXES):
        lines += ["", f"![every axis]({prefix}_axes.png)"]
    for first, second, a_values, b_values, grid in pair_grids(summary):
        lines += ["", f"{sub} {AXES[first].label} x {AXES[second].label}", "",
                  "Each cell: the decision against ideal DFA, the mean paired difference "
                  f"({_unit(summary)}) and the seeds it took.", "",
                  f"| {first} \\ {second} | " + " | ".join(f"`{v}`" for v in b_values) + " |",
                  "|---" * (len(b_values) + 1) + "|"]
        for a, row in zip(a_values, grid):
            cells = []
            for entry in row:
                if entry is None or entry["decision"]["test"] is None:
                    cells.append("-")
                    continue
                d = entry["decision"]
                cells.append(f"{DECISION_MARKS[d['decision']]} {d['test']['mean']:+.1f} "
                             f"({d['n']})")
            lines.append(f"| `{a}` | " + " | ".join(cells) + " |")
        lines += ["", f"![{first} x {second}]({prefix}_{first}_x_{second}.png)"]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- figures
def _paired_interval(entry: dict) -> tuple[float, float, float]:
    test = entry["decision"]["test"]
    if test is None:
        return math.nan, 0.0, 0.0
    low, high = test["interval"]
    return test["mean"], test["mean"] - low, high - test["mean"]


def _save(fig: Figure, path: pathlib.Path) -> pathlib.Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def plot_sweep(summary: dict, directory, prefix: str = "noise_sweep") -> list[pathlib.Path]:
    """The sweep's figures as PNG in ``directory`` (names start with ``prefix``).

    ``_axes``: per axis, each setting's paired difference to ideal DFA with the interval
    its decision read, coloured by decision, and the margin; ``_snr``: every device run's
    difference against its feedback SNR in training; ``_front``: device time per error
    vector against the difference, the cost front drawn; ``_A_x_B``: a map per grid.
    """
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if not summary["points"]:
        return []
    margin = summary["rule"]["margin"]
    unit = _unit(summary)
    paths = []
    names = [n for n in AXES if axis_entries(summary, n)]
    if names:
        cols = min(3, len(names))
        rows = math.ceil(len(names) / cols)
        fig = Figure(figsize=(4.6 * cols, 3.6 * rows))
        axes = fig.subplots(rows, cols, squeeze=False)
        for ax, name in zip(axes.ravel(), names):
            data = axis_entries(summary, name)
            ax.axhspan(-margin, margin, color="tab:green", alpha=0.12, label="margin")
            ax.axhline(0.0, color="black", linewidth=0.8)
            for x, entry in enumerate(data):
                mean, below, above = _paired_interval(entry)
                ax.errorbar([x], [mean], yerr=[[below], [above]], fmt="o", capsize=3,
                            color=_COLORS[entry["decision"]["decision"]])
            ax.set_xticks(range(len(data)), [str(e["point"][name]) for e in data], rotation=30)
            ax.set_xlabel(AXES[name].label)
            ax.set_ylabel(f"vs ideal DFA ({unit})")
            ax.grid(alpha=0.3)
        for ax in axes.ravel()[len(names):]:
            ax.axis("off")
        handles = [axes.ravel()[0].plot([], [], "o", color=c, label=d)[0]
                   for d, c in _COLORS.items()]
        axes.ravel()[0].legend(handles=handles, fontsize=7)
        fig.suptitle(f"{summary['task']}: DFA through the device against ideal feedback "
                     "(green band: the margin)")
        paths.append(_save(fig, directory / f"{prefix}_axes.png"))
    runs = [(row, entry) for entry in summary["points"] for row in entry["per_seed"]
            if row["snr_db"] is not None and row["difference"] is not None]
    if runs:
        fig = Figure(figsize=(6.5, 4.5))
        ax = fig.subplots()
        ax.axhspan(-margin, margin, color="tab:green", alpha=0.12)
        for decision, color in _COLORS.items():
            chosen = [(r, e) for r, e in runs if e["decision"]["decision"] == decision]
            if chosen:
                ax.scatter([r["snr_db"] for r, _ in chosen], [r["difference"] for r, _ in chosen],
                           s=12, color=color, alpha=0.7, label=f"runs of {decision} settings")
        ax.set_xlabel("feedback SNR in training, median over steps (dB)")
        ax.set_ylabel(f"vs ideal DFA, same seed ({unit})")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        ax.set_title("every device run: its loss against its feedback's SNR")
        paths.append(_save(fig, directory / f"{prefix}_snr.png"))
    costed = [e for e in summary["points"] if e.get("cost")
              and e["cost"].get("device_us_per_vector") and e["decision"]["test"]]
    if costed:
        fig = Figure(figsize=(7.0, 4.8))
        ax = fig.subplots()
        ax.axhspan(-margin, margin, color="tab:green", alpha=0.12)
        for entry in costed:
            mean, below, above = _paired_interval(entry)
            ax.errorbar([entry["cost"]["device_us_per_vector"]], [mean],
                        yerr=[[below], [above]], fmt="o", capsize=2, markersize=4,
                        color=_COLORS[entry["decision"]["decision"]], alpha=0.8)
        front = design_answer(summary)["front"]
        ax.plot([e["cost"]["device_us_per_vector"] for e in front],
                [e["decision"]["test"]["mean"] for e in front], "-", color="black",
                linewidth=1, label="cost front")
        for entry in front:
            ax.annotate(entry["label"], (entry["cost"]["device_us_per_vector"],
                                         entry["decision"]["test"]["mean"]),
                        fontsize=6, xytext=(3, 3), textcoords="offset points")
        ax.set_xscale("log")
        ax.set_xlabel("device time per error vector (µs): frames x frame time")
        ax.set_ylabel(f"vs ideal DFA ({unit})")
        ax.grid(alpha=0.3, which="both")
        ax.legend(handles=[ax.plot([], [], "o", color=c, label=d)[0] for d, c in _COLORS.items()]
                  + [ax.plot([], [], "-", color="black", label="cost front")[0]], fontsize=7)
        ax.set_title(f"{summary['task']}: device cost against accuracy")
        paths.append(_save(fig, directory / f"{prefix}_front.png"))
    for first, second, a_values, b_values, grid in pair_grids(summary):
        fig = Figure(figsize=(6.0, 4.6))
        ax = fig.subplots()
        values = np.array([[math.nan if e is None or e["decision"]["test"] is None
                            else e["decision"]["test"]["mean"] for e in row] for row in grid])
        image = ax.imshow(values, origin="lower", cmap="RdYlGn", aspect="auto",
                          vmin=-3 * margin, vmax=3 * margin)
        for i, row in enumerate(grid):
            for j, entry in enumerate(row):
                if entry is not None and entry["decision"]["test"] is not None:
                    ax.text(j, i, entry["decision"]["decision"][:5], ha="center", va="center",
                            fontsize=7)
        ax.set_xticks(range(len(b_values)), [str(v) for v in b_values])
        ax.set_yticks(range(len(a_values)), [str(v) for v in a_values])
        ax.set_xlabel(AXES[second].label)
        ax.set_ylabel(AXES[first].label)
        fig.colorbar(image, label=f"vs ideal DFA ({unit})")
        paths.append(_save(fig, directory / f"{prefix}_{first}_x_{second}.png"))
    return paths

