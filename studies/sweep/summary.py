"""What a sweep's runs say: decisions against ideal-feedback DFA, the design answer, the cost front.

Every point is compared with DFA with ideal feedback over the same seeds (paired: seed
index ``i`` has the same weights, batches and device seeds at every point). The paired
difference ``d_i`` is in accuracy points (``100 (a_i - a_ideal_i)``) for a classifier and
in percent of log perplexity (``100 ln(p_ideal_i / p_i)``, positive: better) for a language
model; the margin is 1 accuracy point, or ``100 ln 1.05`` (5 % perplexity), unless given.

A point's decision (:func:`photon.support.stats.sequential_decision`): ``equivalent`` to
ideal DFA within the margin (paired TOST), ``worse`` (a loss beyond the margin: the
setting breaks DFA), ``better``, or ``undecided`` when the seed cap is reached. Seeds are
added at the looks 3, 5, 8, 12, 18, ... until a decision; look ``k`` tests at ``alpha /
(k (k + 1))`` so the error rate of each decision stays below ``alpha`` over all looks.

The design answer is the cheapest device setting decided equivalent: least device time
per error vector (frames per vector, two per binary plane, times the frame time), then
fewest camera bits, then fewest photo-electrons per output. The cost front is the set of
points no other point beats on both device time and accuracy.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Sequence

import numpy as np

from photon.support.arguments import check_int, check_number
from photon.support.stats import describe, look_sizes, sequential_decision

from dfa_bridge.training.families import family

from .spec import AXES, code_version, device_cost, point_key, point_label

__all__ = ["DecisionRule", "paired_difference", "point_decisions", "summarize",
           "axis_entries", "design_answer", "cost_front", "snr_bins", "pair_grids", "json_text"]


@dataclasses.dataclass(frozen=True)
class DecisionRule:
    """How a point is decided against ideal-feedback DFA.

    Attributes
    ----------
    margin
        Accuracy points (classifiers) or fraction of perplexity (language models) within
        which a setting counts as equivalent; None: 1 point, or 0.05.
    alpha
        Error rate of each decision (5 %), spent across the looks.
    first
        Seeds of the first look.
    cap
        The most seeds a point may take (rounded down to a look size).
    """

    margin: float | None = None
    alpha: float = 0.05
    first: int = 3
    cap: int = 18

    def __post_init__(self):
        if self.margin is not None:
            check_number("margin", self.margin, low=0.0, low_open=True)
        check_number("alpha", self.alpha, low=0.0, high=0.5, low_open=True, high_open=True)
        check_int("first", self.first, low=2)
        check_int("cap", self.cap, low=self.first)

    def margin_units(self, higher_is_better: bool) -> float:
        """The margin in the units of the paired difference."""
        if higher_is_better:
            return 1.0 if self.margin is None else float(self.margin)
        return 100.0 * math.log1p(0.05 if self.margin is None else float(self.margin))

    def margin_text(self, higher_is_better: bool) -> str:
        if higher_is_better:
            return f"{self.margin_units(True):g} accuracy point(s)"
        return f"{100 * (0.05 if self.margin is None else self.margin):g} % perplexity"

    def looks(self) -> list[int]:
        """Seed counts of the looks up to the cap."""
        return look_sizes(self.first, self.cap)

    def as_dict(self, higher_is_better: bool) -> dict:
        return {"margin": self.margin_units(higher_is_better),
                "margin_text": self.margin_text(higher_is_better), "alpha": self.alpha,
                "first": self.first, "cap": self.cap, "looks": self.looks()}


def paired_difference(value: float, reference: float, higher_is_better: bool) -> float:
    """``d``: accuracy points gained, or percent of log perplexity gained (positive: better)."""
    if higher_is_better:
        return 100.0 * (value - reference)
    return 100.0 * math.log(reference / value)


def _by_index(records: Sequence[dict], metric: str) -> dict:
    return {r["label"]["seed_index"]: r["result"].get(metric) for r in records}


def _paired(mine: dict, ideal: dict, higher: bool) -> list[float]:
    """Differences for seed indices 0, 1, ... while both runs exist (in order)."""
    diffs, index = [], 0
    while index in mine and index in ideal:
        a, b = mine[index], ideal[index]
        if a is None or b is None or not (math.isfinite(a) and math.isfinite(b)):
            break
        diffs.append(paired_difference(a, b, higher))
        index += 1
    return diffs


def point_decisions(groups: dict, ideal: Sequence[dict], metric: str, higher: bool,
                    rule: DecisionRule) -> dict:
    """``point key -> sequential decision`` of each group of a point's records."""
    reference = _by_index(ideal, metric)
    return {key: sequential_decision(_paired(_by_index(group, metric), reference, higher),
                                     rule.margin_units(higher), rule.alpha, first=rule.first,
                                     cap=rule.cap)
            for key, group in groups.items()}


def _stat(values) -> dict | None:
    values = [v for v in values if v is not None and math.isfinite(v)]
    return describe(values) if values else None


def _angles(records: Sequence[dict]) -> list | None:
    per_run = [r["result"]["alignment_deg"].get("update_vs_gradient") for r in records]
    per_run = [a for a in per_run if a]
    if not per_run:
        return None
    layers = []
    for i in range(max(len(a) for a in per_run)):
        values = [a[i] for a in per_run if i < len(a) and a[i] is not None]
        layers.append(describe(values) if values else None)
    return layers


def _feedback(records, key):
    return _stat([(r["result"].get("feedback") or {}).get(key) for r in records])


def _cost(records: Sequence[dict]) -> dict | None:
    """Device cost of a point: bits, photons, planes, and measured device time per vector."""
    cost = device_cost(records[0]["settings"])
    if cost is None:
        return None
    frame_times = [r["result"]["device_seconds"] / r["result"]["frames"] for r in records
                   if r["result"].get("frames") and r["result"].get("device_seconds")]
    frame_time = float(np.median(frame_times)) if frame_times else None
    cost["frame_time_s"] = frame_time
    cost["device_us_per_vector"] = (None if frame_time is None
                                    else 1e6 * frame_time * cost["frames_per_vector"])
    exposures = [(r["result"].get("feedback") or {}).get("exposure_us") for r in records]
    configured = records[0]["settings"]["device"]["camera"]["exposure_us"]
    exposures = [e for e in exposures if e]
    if exposures and configured:  # the operator may shorten the exposure (saturation)
        cost["photons_per_output"] *= float(np.median(exposures)) / configured
    return cost


def summarize(records: Sequence[dict], rule: DecisionRule = DecisionRule()) -> dict:
    """Statistics and decisions of one sweep's records (one task, one base).

    Returns
    -------
    dict
        ``task``, ``model``, ``metric``, ``higher_is_better``, ``unit``, ``budget``,
        ``base``, ``rule``, ``code`` (the code versions of the runs and whether they are
        the current code's), ``references`` (name -> entry) and ``points`` (list), each
        entry with ``point``, ``label``, ``n`` (seeds used), ``metric`` (``describe``
        over the seeds used), ``angles`` (per layer), ``snr_db``, ``encoding_snr_db``,
        ``correlation`` (the feedback in training), ``fidelity_snr_db`` (a fixed error
        set), ``per_seed`` rows; a point also has ``decision`` (the sequential decision),
        ``paired`` (``describe`` of the differences used) and ``cost``.
    """
    if not records:
        raise ValueError("records = []: expected the records of a sweep")
    first = records[0]
    task = first["settings"]["task"]
    record = family(task["model"])
    metric, higher = record.metric, record.higher_is_better
    groups: dict[str, list] = {}
    for record in records:
        groups.setdefault(point_key(record["label"]["point"]), []).append(record)
    for group in groups.values():
        group.sort(key=lambda r: r["label"]["seed_index"])
    ideal = groups.get(point_key({"reference": "ideal"}), [])
    device_groups = {k: g for k, g in groups.items() if "reference" not in g[0]["label"]["point"]}
    decisions = point_decisions(device_groups, ideal, metric, higher, rule)
    versions = sorted({json_text(r["settings"]["code"]) for r in records})
    current = json_text(code_version())
    base = next((g[0]["label"]["base"] for g in device_groups.values()), None)
    summary = {"task": first["label"]["task"], "model": task["model"], "data": task["data"],
               "metric": metric, "higher_is_better": higher, "unit": task["unit"],
               "budget": task["budget"], "base": base, "rule": rule.as_dict(higher),
               "code": {"versions": versions, "current": current,
                        "current_matches": versions == [current]},
               "references": {}, "points": [], "comparisons": len(device_groups)}
    ideal_values = _by_index(ideal, metric)
    for key, group in groups.items():
        point = group[0]["label"]["point"]
        decision = decisions.get(key)
        used = group if decision is None or not decision["n"] else group[:decision["n"]]
        entry = {"point": point, "label": point_label(point), "n": len(used),
                 "metric": _stat([r["result"].get(metric) for r in used]),
                 "angles": _angles(used), "snr_db": _feedback(used, "snr_db"),
                 "encoding_snr_db": _feedback(used, "encoding_snr_db"),
                 "correlation": _feedback(used, "correlation"),
                 "fidelity_snr_db": _stat([(r["result"].get("fidelity") or {}).get("snr_db")
                                           for r in used]),
                 "per_seed": [_seed_row(r, metric, ideal_values, higher) for r in used]}
        if "reference" in point:
            summary["references"][point["reference"]] = entry
            continue
        diffs = _paired(_by_index(used, metric), ideal_values, higher)
        entry.update({"decision": decision, "paired": _stat(diffs), "cost": _cost(group)})
        summary["points"].append(entry)
    return summary


def json_text(value) -> str:
    """Canonical JSON text of a value (code versions compare by it)."""
    return json.dumps(value, sort_keys=True)


def _seed_row(record: dict, metric: str, ideal: dict, higher: bool) -> dict:
    result = record["result"]
    value = result.get(metric)
    reference = ideal.get(record["label"]["seed_index"])
    angles = result["alignment_deg"].get("update_vs_gradient")
    feedback = result.get("feedback") or {}
    curve = result.get("curve") or []
    tail = [v for v in curve[-max(2, len(curve) // 4):] if v is not None]  # the last quarter
    feedback_curve = feedback.get("curve") or []
    start = feedback_curve[0][2] if feedback_curve else None
    return {"seed": record["settings"]["seed"], "value": value,
            "difference": None if value is None or reference is None or "reference" in
            record["label"]["point"] else paired_difference(value, reference, higher),
            "angle_deg": None if not angles else float(np.mean([a for a in angles
                                                                 if a is not None] or [np.nan])),
            "snr_db": feedback.get("snr_db"), "encoding_snr_db": feedback.get("encoding_snr_db"),
            "snr_db_min": feedback.get("snr_db_min"), "encoding_snr_db_start": start,
            "tail_std": float(np.std(tail, ddof=1)) if len(tail) > 1 else None,
            "tail_min": min(tail) if tail else None, "tail_max": max(tail) if tail else None}


def axis_entries(summary: dict, name: str) -> list[dict]:
    """The single-axis points of axis ``name``, in the axis's order (worst setting first)."""
    rows = [e for e in summary["points"] if list(e["point"]) == [name]]
    order = {value: i for i, value in enumerate(AXES[name].values)}
    return sorted(rows, key=lambda e: order.get(e["point"][name], math.inf))


def _cost_order(entry: dict) -> tuple:
    cost = entry.get("cost") or {}
    time_us = cost.get("device_us_per_vector")
    bits = cost.get("adc_bits")
    return (math.inf if time_us is None else time_us, math.inf if bits is None else bits,
            cost.get("photons_per_output") or math.inf)


def cost_front(summary: dict) -> list[dict]:
    """Points no other point beats on both device time per vector and mean difference.

    Sorted by device time; each is a point entry of the summary.
    """
    entries = [e for e in summary["points"] if e.get("paired") and e.get("cost")
               and e["cost"].get("device_us_per_vector") is not None]
    front, best = [], -math.inf
    for entry in sorted(entries, key=lambda e: (_cost_order(e), -e["paired"]["mean"])):
        if entry["paired"]["mean"] > best:
            front.append(entry)
            best = entry["paired"]["mean"]
    return front


def design_answer(summary: dict) -> dict:
    """The cheapest setting decided equivalent, overall and per axis, and what breaks DFA.

    Returns
    -------
    dict
        ``answer`` (the cheapest equivalent point entry, or None), ``order`` (how cost is
        ranked), ``per_axis`` (for each swept axis: ``settings``, ``decisions``,
        ``cheapest_equivalent``, ``worse``, ``undecided``), ``front`` (:func:`cost_front`)
        and ``counts`` (points per decision).
    """
    equivalent = [e for e in summary["points"]
                  if (e.get("decision") or {}).get("decision") == "equivalent"]
    answer = min(equivalent, key=_cost_order) if equivalent else None
    per_axis = []
    for name in AXES:
        rows = axis_entries(summary, name)
        if not rows:
            continue
        decided = [(e["point"][name], e["decision"]["decision"]) for e in rows]
        fine = [e for e in rows if e["decision"]["decision"] == "equivalent"]
        per_axis.append({
            "axis": name, "label": AXES[name].label, "settings": [v for v, _ in decided],
            "decisions": [d for _, d in decided],
            "cheapest_equivalent": None if not fine else
            min(fine, key=_cost_order)["point"][name],
            "worse": [v for v, d in decided if d == "worse"],
            "undecided": [v for v, d in decided if d == "undecided"]})
    counts = {}
    for entry in summary["points"]:
        decision = entry["decision"]["decision"]
        counts[decision] = counts.get(decision, 0) + 1
    return {"answer": answer, "per_axis": per_axis, "front": cost_front(summary),
            "counts": counts,
            "order": "least device time per error vector, then fewest camera bits, then "
                     "fewest photo-electrons per output"}


def snr_bins(summary: dict, edges: Sequence[float] = (5.0, 10.0, 15.0)) -> list[dict]:
    """Every device run of the sweep binned by its feedback SNR in training.

    Per bin: runs, the mean and spread of their paired difference to ideal DFA, the worst
    one, and the mean update angle: how a feedback SNR read off a run predicts its loss.
    """
    rows = [row for e in summary["points"] for row in e["per_seed"]
            if row["snr_db"] is not None and row["difference"] is not None]
    bounds = [-math.inf, *edges, math.inf]
    bins = []
    for low, high in zip(bounds[:-1], bounds[1:]):
        inside = [r for r in rows if low <= r["snr_db"] < high]
        if not inside:
            continue
        diffs = [r["difference"] for r in inside]
        angles = [r["angle_deg"] for r in inside if r["angle_deg"] is not None]
        bins.append({"low": low, "high": high, "runs": len(inside),
                     "difference": describe(diffs), "worst": min(diffs),
                     "angle_deg": float(np.mean(angles)) if angles else None})
    return bins


def pair_grids(summary: dict):
    """``(first, second, values_first, values_second, grid of entries or None)`` per pair."""
    pairs = sorted({tuple(e["point"]) for e in summary["points"] if len(e["point"]) == 2})
    for first, second in pairs:
        lookup = {(e["point"][first], e["point"][second]): e for e in summary["points"]
                  if tuple(e["point"]) == (first, second)}
        a_values = [v for v in AXES[first].grid_values() if any(k[0] == v for k in lookup)]
        b_values = [v for v in AXES[second].grid_values() if any(k[1] == v for k in lookup)]
        grid = [[lookup.get((a, b)) for b in b_values] for a in a_values]
        yield first, second, a_values, b_values, grid

