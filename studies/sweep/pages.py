"""The sweep's pages: one per task (command, decisions, why runs fail) and the index.

The page of a task is :func:`~studies.sweep.render.markdown` under a heading that states
the command that wrote it and the store it read, followed by what the stored runs say
about the runs that fail (:func:`failure_section`): per seed, the feedback's SNR in
training, the share of it the error encoding sets, the update angle and how far the test
accuracy swings over the last evaluations. Every number comes from the store.
"""

from __future__ import annotations

import math
import pathlib

import numpy as np

from dfa_bridge.training.families import family

from .render import decision_text, markdown, seed_table
from .spec import encoding_name
from .summary import axis_entries, snr_bins

__all__ = ["sweep_page", "failure_section", "index_page", "default_encoding"]


def default_encoding(model: str) -> str:
    """The family's default error encoding, as an ``encoding`` axis value."""
    return encoding_name(*family(model).encoder)


def _median(rows, key):
    values = [r[key] for r in rows if r.get(key) is not None and math.isfinite(r[key])]
    return float(np.median(values)) if values else None


def _spread(entry) -> float | None:
    diffs = [r["difference"] for r in entry["per_seed"] if r["difference"] is not None]
    return float(np.std(diffs, ddof=1)) if len(diffs) > 1 else None


def _num(value, digits=1, suffix="") -> str:
    return "-" if value is None else f"{value:.{digits}f}{suffix}"


def failure_section(summary: dict, heading: str = "###") -> list[str]:
    """Why the encodings that are not equivalent fail, seed by seed, against the default.

    Empty when the sweep has no encoding axis.
    """
    rows = axis_entries(summary, "encoding")
    if not rows:
        return []
    default = default_encoding(summary["model"])
    chosen = [e for e in rows if e["point"]["encoding"] == default]
    failing = [e for e in rows if e["decision"]["decision"] != "equivalent"
               and e["point"]["encoding"] != default]
    if not failing and not chosen:
        return []
    ideal_angles = (summary["references"].get("ideal") or {}).get("angles") or []
    ideal_angle = float(np.mean([a["mean"] for a in ideal_angles if a])) if ideal_angles else None
    unit = "points" if summary["higher_is_better"] else "% of log perplexity"
    lines = [f"{heading} What makes a run fail, seed by seed", "",
             "Per seed: the run's score and its difference to ideal DFA at the same seed; "
             "the update's angle to the backprop gradient (mean over layers); the feedback's "
             "SNR in training (median and lowest point over the steps); the SNR the error "
             "encoding alone allows (the code's own error projected exactly); and the test "
             "score's range over the last quarter of its evaluations (the last 50 epochs of "
             "200): how far the run still swings when it stops." + (f" Ideal DFA's update angle: {ideal_angle:.0f} deg." if ideal_angle
                           else ""), ""]
    for entry in chosen + failing:
        tag = " (the default)" if entry in chosen else ""
        lines += [f"`encoding={entry['point']['encoding']}`{tag}: "
                  f"{decision_text(entry, summary)}", "", seed_table(entry, summary), ""]
    reference = chosen[0] if chosen else None
    for entry in failing:
        per_seed = entry["per_seed"]
        snr, coded = _median(per_seed, "snr_db"), _median(per_seed, "encoding_snr_db")
        start, lowest = _median(per_seed, "encoding_snr_db_start"), _median(per_seed, "snr_db_min")
        angle, swing = _median(per_seed, "angle_deg"), _median(per_seed, "tail_std")
        worst = min((r["difference"] for r in per_seed if r["difference"] is not None),
                    default=None)
        scale = 100.0 if summary["higher_is_better"] else 1.0
        text = (f"**`{entry['point']['encoding']}`** ({entry['decision']['decision']}). Its "
                f"feedback reaches the hidden layers at {_num(snr, 1, ' dB')} (median over "
                f"seeds of each run's median) and the code alone allows {_num(coded, 1, ' dB')}")
        if snr is not None and coded is not None and coded - snr < 1.0:
            text += ": the encoding, not the camera or the optics, sets the feedback's fidelity"
        if start is not None and lowest is not None and start - lowest > 3.0:
            text += (f". The code loses little while the errors are alike (the first steps: "
                     f"{_num(start, 1, ' dB')}) and most once they spread over classes and "
                     f"samples (lowest point {_num(lowest, 1, ' dB')})")
        if angle is not None and ideal_angle is not None:
            relation = ("further from the gradient than" if angle > ideal_angle + 5.0
                        else "about as close to the gradient as")
            text += (f". Its update is {relation} ideal DFA's ({angle:.0f} against "
                     f"{ideal_angle:.0f} deg)")
        ref_swing = None if reference is None else _median(reference["per_seed"], "tail_std")
        if swing is not None:
            text += (f"; at the end of training its score still swings by "
                     f"{_num(scale * swing, 1)} (std over the last quarter of the evaluations)")
            if ref_swing is not None:
                text += (f" against {_num(scale * ref_swing, 1)} for "
                         f"`{reference['point']['encoding']}`")
            if ref_swing is not None and swing > 1.5 * ref_swing:
                text += ", and the final epoch lands anywhere in that band"
        fixed = (entry.get("fidelity_snr_db") or {}).get("mean")
        if fixed is not None and snr is not None and fixed - snr > 3.0:
            text += (f". A fixed error set (an MLP's errors after two epochs of backprop) puts "
                     f"this code at {fixed:.1f} dB and misses the failure: it shows on the "
                     "errors of the run itself")
        spread = _spread(entry)
        text += (f". Across seeds its difference to ideal DFA spreads by {_num(spread, 2)} {unit} "
                 f"(std; worst seed {_num(worst, 1)})")
        if reference is not None and _spread(reference) is not None:
            text += f" against {_num(_spread(reference), 2)} for `{reference['point']['encoding']}`"
        text += "."
        if entry["point"]["encoding"] == "ternary":
            text += (" A ternary code keeps one magnitude for every entry beyond a threshold "
                     "fitted on each batch (0.7 times the batch's mean |e|) and drops the "
                     "others: a nearly fitted sample pulls its hidden units as hard as a wrong "
                     "one, and the small entries of the classes it does not predict vanish. "
                     "Signed bit planes keep the magnitudes to 2^-n of the batch's largest "
                     "entry.")
        lines += [text, ""]
    bins = snr_bins(summary)
    if bins:
        low = [b for b in bins if b["high"] <= 5.0]
        high = [b for b in bins if b["low"] >= 15.0]
        sentence = ("**How a user sees it coming**: `run_experiment` (and `scripts/train.py "
                    "--json`) report the feedback's SNR in training (`feedback_fidelity`) and "
                    "the update angle of every run; the table above bins every run of this "
                    "sweep by that SNR")
        if low and high:
            sentence += (f": below 5 dB runs lost {low[0]['difference']['mean']:+.2f} {unit} on "
                         f"average (worst {low[0]['worst']:+.1f}), at 15 dB and above "
                         f"{high[0]['difference']['mean']:+.2f} (worst {high[0]['worst']:+.1f})")
        lines += [sentence + ".", ""]
    return lines


def sweep_page(summary: dict, command: str, prefix: str, description: str = "",
               store_name: str = "noise_sweep.jsonl") -> str:
    """A task's page: the command, the store, the sweep's Markdown and the failure section."""
    head = [f"# Noise and quantization sweep: {summary['task']}", "",
            f"Written by `{command}`; every number below is read from the runs in "
            f"`{store_name}` (one line per run, keyed on its resolved settings: rerun the "
            "command to reproduce them; a run already stored is not computed again).", ""]
    body = markdown(summary, prefix=prefix, heading="##", description=description)
    return "\n".join(head) + "\n" + body + "\n\n" + "\n".join(failure_section(summary)) + "\n"


def index_page(directory) -> str:
    """``index.md`` of a pages folder: a link to every sweep and budget page in it."""
    directory = pathlib.Path(directory)
    sweeps = sorted(p.name for p in directory.glob("noise_sweep_*.md"))
    budgets = sorted(p.name for p in directory.glob("budget_*.md"))
    lines = ["# Noise and quantization", "",
             "What DFA through an optical device needs, decided against ideal feedback. Each "
             "page states the command that wrote it; the sweeps read their runs from "
             "`noise_sweep.jsonl`, the store that `scripts/report.py` reads too.", ""]
    if sweeps:
        lines += ["Sweeps (written by `scripts/noise_sweep.py`):", ""]
        lines += [f"* [{name[len('noise_sweep_'):-3]}]({name})" for name in sweeps]
        lines.append("")
    if budgets:
        lines += ["Noise budgets of the feedback (written by `scripts/noise_budget.py`):", ""]
        lines += [f"* [{name[len('budget_'):-3]}]({name})" for name in budgets]
        lines.append("")
    return "\n".join(lines)
