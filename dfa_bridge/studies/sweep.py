"""Noise and quantization study: DFA through virtual OPUs whose settings vary.

Each *point* is a set of device settings (one axis at a time, or two axes in a grid)
on top of a base preset; at each point an MLP is trained with DFA through the virtual
device, and its test accuracy and alignment are recorded. Results stream to a
JSON-lines file as each point finishes (one line per point, flushed and synced); a
rerun with the same file skips the finished points, so an interrupted sweep resumes
where it stopped and never loses or repeats a point. A line cut short by an interruption
is an unfinished point: it is dropped and that point runs again.

Axes
----
``adc_bits``           camera bit depth; the gain keeps the full scale at the full well
``read_noise_e``       camera read noise (electrons rms)
``photon_budget``      exposure relative to the preset's (shot noise grows as it falls)
``encoding``           error encoding: ternary, 2-bit or 4-bit signed bit planes
``extinction_ratio``   polarizer extinction ratio
``tm_drift_time_s``    decorrelation time of the TM in device seconds (``static``: none)
``dmd_contrast``       DMD on/off contrast
"""

from __future__ import annotations

import itertools
import json
import math
import os
import pathlib
from dataclasses import dataclass
from typing import Callable, Sequence

from photon import resolve_config
from photon.support.progress import Progress

from ..training.experiment import run_experiment

__all__ = ["Axis", "AXES", "sweep_points", "read_results", "run_sweep", "point_key",
           "plot_sweep", "markdown_table"]


@dataclass(frozen=True)
class Axis:
    """A swept setting: its values and how a value becomes run options.

    ``options(value, base)`` returns ``(device_options, experiment_options)``: overrides
    of the device configuration and keyword arguments of :func:`run_experiment`.
    """

    name: str
    label: str
    values: tuple
    options: Callable


def _adc_bits(bits, base):
    full_well = base.camera.full_well_e or 10_000.0
    top = 2 ** bits - 1
    offset = base.camera.black_offset_dn * top / 255.0
    return {"camera__adc_bits": bits, "camera__black_offset_dn": offset,
            "camera__gain_dn_per_e": (top - offset) / full_well}, {}


def _encoding(name, base):
    if name == "ternary":
        return {}, {"encoder": "ternary"}
    bits = int(name.split("-")[1])
    return {}, {"encoder": "bitplanes", "n_bits": bits}


AXES = {axis.name: axis for axis in (
    Axis("adc_bits", "camera bit depth", (4, 6, 8, 10, 12), _adc_bits),
    Axis("read_noise_e", "read noise (e- rms)", (0.0, 10.0, 30.0, 100.0, 300.0),
         lambda v, base: ({"camera__read_noise_e": v}, {})),
    Axis("photon_budget", "exposure / preset exposure", (0.01, 0.03, 0.1, 0.3, 1.0),
         lambda v, base: ({"camera__exposure_us": v * base.camera.exposure_us}, {})),
    Axis("encoding", "error encoding", ("ternary", "bitplanes-2", "bitplanes-4"), _encoding),
    Axis("extinction_ratio", "polarizer extinction ratio", (1.0, 3.0, 10.0, 100.0, 1000.0),
         lambda v, base: ({"polarizer__extinction_ratio": v}, {})),
    Axis("tm_drift_time_s", "TM decorrelation time (device s)",
         ("static", 10000.0, 3000.0, 1000.0, 300.0),
         lambda v, base: ({"medium__drift_time_s": None if v == "static" else v}, {})),
    Axis("dmd_contrast", "DMD contrast", (3.0, 10.0, 100.0, 1000.0, 10000.0),
         lambda v, base: ({"dmd__contrast": v}, {})),
)}


def point_key(point: dict) -> str:
    """Canonical text of a point (its axis values), used to recognize finished points."""
    return json.dumps(point, sort_keys=True)


def sweep_points(axes: Sequence[str] = tuple(AXES), pairs: Sequence[tuple[str, str]] = (),
                 ) -> list[dict]:
    """Points of a sweep: each axis alone, then each pair as a full grid.

    Raises
    ------
    ValueError
        For an unknown axis name.
    """
    for name in list(axes) + [n for pair in pairs for n in pair]:
        if name not in AXES:
            raise ValueError(f"axis = {name!r}: expected one of {', '.join(AXES)}")
    points = [{name: value} for name in axes for value in AXES[name].values]
    for first, second in pairs:
        points += [{first: a, second: b}
                   for a, b in itertools.product(AXES[first].values, AXES[second].values)]
    unique = {point_key(p): p for p in points}  # a pair grid repeats no single-axis point
    return list(unique.values())


def read_results(path) -> list[dict]:
    """Finished points of a JSON-lines results file (a cut-short last line is dropped)."""
    path = pathlib.Path(path)
    if not path.exists():
        return []
    results, intact = [], []
    for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # an interrupted write: that point did not finish
        if line.endswith("\n") and "point" in record:
            results.append(record)
            intact.append(line)
    if len(intact) != len(path.read_text(encoding="utf-8").splitlines()):
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text("".join(intact), encoding="utf-8")
        os.replace(tmp, path)  # keep only whole lines, atomically
    return results


def _append(path: pathlib.Path, record: dict) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def run_sweep(path, points: Sequence[dict], *, base: str = "lab-bench", epochs: int = 15,
              seed: int = 0, max_train: int | None = None, progress: bool | None = None,
              runner: Callable = run_experiment) -> list[dict]:
    """Run the points not yet in ``path``, appending one JSON line per finished point.

    Parameters
    ----------
    path
        JSON-lines results file (created if missing; finished points are kept).
    points
        From :func:`sweep_points`.
    base
        The preset the points modify.
    epochs, seed, max_train
        Training budget and seed, the same at every point.
    progress
        Progress bar over points.
    runner
        The training function (:func:`run_experiment`; replaceable in tests).

    Returns
    -------
    list of dict
        Every finished point's record, in the file's order.
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    done = {point_key(r["point"]) for r in read_results(path)}
    todo = [p for p in points if point_key(p) not in done]
    base_config = resolve_config(base)
    with Progress(len(todo), "noise sweep", enabled=progress, unit="point", min_steps=1) as bar:
        for point in todo:
            device_options, options = {}, {"encoder": "ternary"}
            for name, value in point.items():
                more_device, more_options = AXES[name].options(value, base_config)
                device_options.update(more_device)
                options.update(more_options)
            result, _ = runner("mlp", "digits", "dfa", base, epochs=epochs, seed=seed,
                               max_train=max_train, progress=False,
                               device_options=device_options, **options)
            _append(path, {"point": point, "base": base, "epochs": epochs, "seed": seed,
                           "test_accuracy": result["test_accuracy"],
                           "alignment_deg": result["alignment_deg"],
                           "seconds": result["seconds"],
                           "frames": result["feedback"].get("frames_acquired")})
            bar.update()
    return read_results(path)


def _single_axis(results, name):
    rows = [r for r in results if list(r["point"]) == [name]]
    order = {value: i for i, value in enumerate(AXES[name].values)}
    return sorted(rows, key=lambda r: order.get(r["point"][name], math.inf))


def markdown_table(results: Sequence[dict]) -> str:
    """Markdown tables: one per axis (accuracy, mean update angle), one grid per pair."""
    lines = []
    for name, axis in AXES.items():
        rows = _single_axis(results, name)
        if not rows:
            continue
        lines += [f"### {axis.label}", "", f"| {name} | test accuracy | update angle (deg) |",
                  "|---|---|---|"]
        for r in rows:
            angles = r["alignment_deg"]["update_vs_gradient"]
            lines.append(f"| {r['point'][name]} | {100 * r['test_accuracy']:.2f} % | "
                         f"{sum(angles) / len(angles):.1f} |")
        lines.append("")
    for first, second, grid in _pair_grids(results):
        lines += [f"### {AXES[first].label} x {AXES[second].label} (test accuracy, %)", "",
                  "| " + first + " \\ " + second + " | "
                  + " | ".join(str(v) for v in AXES[second].values) + " |",
                  "|---" * (len(AXES[second].values) + 1) + "|"]
        for a, row in zip(AXES[first].values, grid):
            lines.append(f"| {a} | " + " | ".join("" if v is None else f"{100 * v:.1f}"
                                                  for v in row) + " |")
        lines.append("")
    return "\n".join(lines)


def _pair_grids(results):
    pairs = sorted({tuple(r["point"]) for r in results if len(r["point"]) == 2})
    for first, second in pairs:
        lookup = {(r["point"][first], r["point"][second]): r["test_accuracy"]
                  for r in results if tuple(r["point"]) == (first, second)}
        grid = [[lookup.get((a, b)) for b in AXES[second].values] for a in AXES[first].values]
        yield first, second, grid


def plot_sweep(results: Sequence[dict], directory) -> list[pathlib.Path]:
    """Accuracy curves per axis and a 2-D map per pair, as PNG files in ``directory``."""
    from matplotlib.figure import Figure  # noqa: PLC0415  (Agg canvas, no pyplot state)

    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    names = [n for n in AXES if _single_axis(results, n)]
    if names:
        cols = min(4, len(names))
        rows = math.ceil(len(names) / cols)
        fig = Figure(figsize=(4 * cols, 3.2 * rows))
        axes = fig.subplots(rows, cols, squeeze=False)
        for ax, name in zip(axes.ravel(), names):
            data = _single_axis(results, name)
            labels = [str(r["point"][name]) for r in data]
            ax.plot(range(len(data)), [100 * r["test_accuracy"] for r in data], "o-")
            ax.set_xticks(range(len(data)), labels, rotation=30)
            ax.set_xlabel(AXES[name].label)
            ax.set_ylabel("test accuracy (%)")
            ax.grid(alpha=0.3)
        for ax in axes.ravel()[len(names):]:
            ax.axis("off")
        fig.suptitle("DFA through a virtual OPU: one setting at a time")
        fig.tight_layout()
        paths.append(directory / "noise_sweep_axes.png")
        fig.savefig(paths[-1], dpi=110)
    for first, second, grid in _pair_grids(results):
        fig = Figure(figsize=(5.5, 4.5))
        ax = fig.subplots()
        values = [[math.nan if v is None else 100 * v for v in row] for row in grid]
        image = ax.imshow(values, origin="lower", cmap="viridis", aspect="auto")
        ax.set_xticks(range(len(AXES[second].values)), [str(v) for v in AXES[second].values])
        ax.set_yticks(range(len(AXES[first].values)), [str(v) for v in AXES[first].values])
        ax.set_xlabel(AXES[second].label)
        ax.set_ylabel(AXES[first].label)
        fig.colorbar(image, label="test accuracy (%)")
        fig.tight_layout()
        paths.append(directory / f"noise_sweep_{first}_x_{second}.png")
        fig.savefig(paths[-1], dpi=110)
    return paths
