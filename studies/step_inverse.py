"""Inverse design: the OPU that would tie backprop (and dense DFA), shape by shape, per schedule.

For a shape, a machine (a modelled GPU) and a schedule (:data:`studies.step_cost.SCHEDULES`),
``dfa-opu``'s step time is ``max(c, a + F tau)`` (:func:`studies.step_cost.step_cost`):
``F`` frames of ``tau`` seconds each. The OPU that ties another option's step time
``T`` has ``tau = (T - a) / F``, provided ``c <= T`` and ``a < T``: it reads the shape's
``S`` feedback outputs (one pass: an OPU with at least ``C`` inputs and ``S`` outputs) at
``1 / tau`` frames per second. Where no ``tau > 0`` can, the machine's own share
already takes ``T`` or more, and :func:`inverse_design` says which part of it.

Each answer stands beside today's presets (:func:`preset_rates`): the frame rate at
which each reads the same ``S`` outputs (its camera's read-out of exactly those rows),
or how many passes it needs when ``S`` exceeds its outputs. The energy per step at the
tie uses the preset's wall-plug power (``datacenter-opu``'s unless another is given),
and the OPU power below which ``dfa-opu`` would also spend no more energy than the
other option is given with it.
"""

from __future__ import annotations

import math

from studies.step_cost import OPUSpec, SCHEDULES, opu_spec, step_cost

__all__ = ["inverse_design", "preset_rates", "inverse_markdown"]


def _ideal_opu(shape, reference: OPUSpec, frame_time_s: float) -> OPUSpec:
    """An OPU as large as the shape needs (one pass), reading at ``frame_time_s``."""
    return OPUSpec(f"OPU needed ({shape.error_width} -> {shape.feedback_width})",
                   max(shape.error_width, 1), max(shape.feedback_width, 1), frame_time_s,
                   reference.electrical_power_w)


def _machine_share_reason(cost: dict, target: dict, other: str, bp: dict | None) -> str:
    """One line: which part of the machine's own share already reaches ``other``'s step time."""
    seconds = cost["machine_seconds"]
    t = target["seconds"]
    if cost["schedule"] == "layer-parallel":
        parts = cost["parts"]
        if cost["floor_s"] > t:
            return (f"forward {parts['forward']:.3g} s + the head's backward and update "
                    f"{parts['head']:.3g} s already exceed {other}'s {t:.3g} s")
        return (f"forward {parts['forward']:.3g} s + encoding and decoding "
                f"{parts['feedback_machine']:.3g} s + the slowest layer's local backward and "
                f"update {parts['slowest_layer']:.3g} s = {cost['offset_s']:.3g} s already reach "
                f"{other}'s {t:.3g} s")
    share = sum(seconds.values())
    text = (f"the machine's own share {share:.3g} s (forward {seconds['forward']:.3g}, backward "
            f"{seconds['backward']:.3g}, encode/decode {seconds['feedback']:.3g}, update "
            f"{seconds['update']:.3g}) already reaches {other}'s {t:.3g} s")
    if bp is not None and other == "bp":
        saved = bp["machine_seconds"]["backward"] - seconds["backward"]
        text += (f": DFA's backward saves {saved:.3g} s of bp's, encoding and decoding the "
                 f"error add {seconds['feedback']:.3g} s")
    return text


def inverse_design(shape, machine, reference, planes: int = 2,
                   schedules=SCHEDULES, against=("bp", "dfa-dense")) -> list:
    """The OPU frame rate (and energy) at which ``dfa-opu`` ties each option in ``against``.

    Parameters
    ----------
    shape
        :class:`~studies.step_cost.MLPShape` or :class:`~studies.step_cost.TransformerShape`.
    machine
        The machine (:func:`~studies.step_cost.gpu_machine`).
    reference
        The OPU whose wall-plug power prices the tie (an :class:`OPUSpec`, a device or a
        preset name).
    planes
        Binary planes per error vector.
    schedules, against
        Schedules and options to tie.

    Returns
    -------
    list of dict
        Per schedule and option: ``frame_time_s`` and ``frame_rate_hz`` (None where no
        frame rate can), ``outputs`` (``S``), ``frames`` per step, the step time to tie,
        ``joules_per_step`` at the tie (the reference's power), the other option's
        joules, ``max_opu_power_w`` (the OPU power at which the energies tie too; None
        or negative: none), and ``reason`` where no frame rate can.
    """
    reference = opu_spec(reference)
    rows = []
    for schedule in schedules:
        costs = {o: step_cost(shape, o, machine, schedule=schedule) for o in against}
        probe = step_cost(shape, "dfa-opu", machine, _ideal_opu(shape, reference, 1.0), planes,
                          schedule)
        for other in against:
            target = costs[other]
            row = {"shape": shape.name, "schedule": schedule, "against": other,
                   "machine": machine.name, "outputs": shape.feedback_width,
                   "inputs": shape.error_width, "frames": probe["frames"],
                   "target_s": target["seconds"], "target_joules": target["joules"],
                   "frame_time_s": None, "frame_rate_hz": None, "joules_per_step": None,
                   "max_opu_power_w": None, "reason": None}
            offset, floor = probe["offset_s"], probe["floor_s"]
            if offset is None or floor > target["seconds"] or offset >= target["seconds"]:
                row["reason"] = _machine_share_reason(probe, target, other,
                                                      costs.get("bp"))
                rows.append(row)
                continue
            tau = (target["seconds"] - offset) / probe["frames"]
            tied = step_cost(shape, "dfa-opu", machine, _ideal_opu(shape, reference, tau), planes,
                             schedule)
            others = tied["joules"] - tied["opu_joules"]
            row.update(frame_time_s=tau, frame_rate_hz=1.0 / tau, joules_per_step=tied["joules"],
                       tied_seconds=tied["seconds"],
                       max_opu_power_w=(target["joules"] - others) / tied["opu_seconds"])
            rows.append(row)
    return rows


def preset_rates(outputs: int, presets=("datacenter-opu", "lab-bench")) -> list:
    """How fast each preset reads ``outputs`` outputs: frames/s, or the passes it needs.

    Returns
    -------
    list of dict
        ``preset``, ``outputs_read`` (at most its outputs), ``frame_rate_hz`` at that
        many (its camera's read-out of exactly those rows), ``passes`` (``ceil(outputs /
        n_out)``), ``effective_rate_hz`` (frames of ``outputs`` outputs per second:
        the frame rate over the passes), ``electrical_power_w``.
    """
    result = []
    for name in presets:
        spec = opu_spec(name)
        read = min(outputs, spec.n_out)
        rate = 1.0 / spec.frame_time_for(read)
        passes = math.ceil(outputs / spec.n_out)
        result.append({"preset": spec.name, "outputs_read": read, "frame_rate_hz": rate,
                       "passes": passes, "effective_rate_hz": rate / passes,
                       "n_out": spec.n_out, "electrical_power_w": spec.electrical_power_w})
    return result


def _rate(hz: float) -> str:
    for unit, scale in (("GHz", 1e9), ("MHz", 1e6), ("kHz", 1e3)):
        if hz >= scale:
            return f"{hz / scale:.3g} {unit}"
    return f"{hz:.3g} Hz"


def _tie_text(row: dict) -> str:
    if row["frame_rate_hz"] is None:
        return f"no frame rate: {row['reason']}"
    power = ("no OPU power ties its energy" if row["max_opu_power_w"] <= 0
             else f"energies tie below {row['max_opu_power_w']:.3g} W")
    return (f"needs **{_rate(row['frame_rate_hz'])}** at {row['outputs']:,} outputs; "
            f"{row['joules_per_step']:.3g} J per step (vs {row['target_joules']:.3g} J; {power})")


def inverse_markdown(rows: list, presets: dict) -> str:
    """A Markdown table of :func:`inverse_design` rows beside the presets' rates.

    One line per shape and schedule: what ties backprop, what ties dense DFA (each with
    the step time it ties), today's presets at the shape's ``S`` outputs. ``presets``
    maps an output count to :func:`preset_rates` of it.
    """
    grouped = {}
    for row in rows:
        grouped.setdefault((row["shape"], row["schedule"]), {})[row["against"]] = row
    lines = ["| shape | schedule | to tie bp | to tie dfa-dense | today's presets at S outputs |",
             "|---|---|---|---|---|"]
    for (shape, schedule), against in grouped.items():
        first = next(iter(against.values()))
        beside = "; ".join(
            f"`{p['preset']}` reads {p['outputs_read']:,} at {p['frame_rate_hz']:.0f} fps"
            + (f" ({p['passes']} passes)" if p["passes"] > 1 else "")
            for p in presets[first["outputs"]])
        cells = [f"({against[o]['target_s']:.3g} s) {_tie_text(against[o])}" if o in against
                 else "-" for o in ("bp", "dfa-dense")]
        lines.append(f"| {shape} | {schedule} | {cells[0]} | {cells[1]} | {beside} |")
    return "\n".join(lines)
