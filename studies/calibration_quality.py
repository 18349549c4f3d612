"""Calibration quality against the number of frames, for any preset, and its results page.

:func:`quality_against_frames` calibrates a fresh virtual device at several probe budgets
(each seed draws its own probes); :func:`summarize_quality` gives, per preset and budget,
the mean and a 95 % Student-t interval over the seeds; :func:`cost_at_scale` prices
calibrating each preset at its configured and full sizes against its drift time
(:mod:`calibration.cost`) and :func:`budget_quality` measures the ways to fit at a size
this machine runs; :func:`calibration_page` writes the Markdown page of
``scripts/calibrate.py --out``.
"""

from __future__ import annotations

import math
import sys
import warnings

import numpy as np

from devices import VirtualDevice
from photon.support.stats import mean_interval

from calibration.metrics import row_correlation
from calibration.session import calibrate

__all__ = ["PUBLISHED_R", "quality_against_frames", "summarize_quality",
           "plot_quality", "calibration_page", "full_size", "cost_at_scale", "budget_quality",
           "summarize_budget", "cost_markdown", "correlated_settings"]

PUBLISHED_R = 0.978  # a real 100 x 100 TM (Gupta et al., ICASSP 2020)


def correlated_settings(preset: str = "lab-bench") -> dict:
    """Settings of a correlated medium: a speckle grain of 2 pixels, mirrors blurred
    together (rms 0.9 mirror) on a DMD region 16 mirrors wide, and the exposure doubled
    (the blur passes about half of a half-on frame's light)."""
    from photon import resolve_config  # noqa: PLC0415

    return dict(medium__speckle_grain_px=2.0, medium__input_grain_mirrors=0.9, dmd__cols=16,
                camera__exposure_us=2.0 * resolve_config(preset).camera.exposure_us)


def quality_against_frames(preset: str, n_in: int, n_out: int,
                           probes=(1.0, 1.5, 2.0, 3.0, 4.0, 6.0), seed: int = 0,
                           verbose: bool = True, seeds=None) -> list[dict]:
    """Intensity r and TM row correlation of ``preset`` for several probe budgets.

    Parameters
    ----------
    preset
        A preset name or YAML path of a virtual device.
    n_in, n_out
        The device's inputs and outputs.
    probes
        Random probes per input (about 7 device frames each).
    seed
        The calibration seed when ``seeds`` is None.
    verbose
        Print each point on stderr.
    seeds
        Calibration seeds (probe and anchor frames); one row per seed and budget.

    Returns
    -------
    list of dict
        ``preset``, ``seed``, ``probes_per_input``, ``frames_per_input``,
        ``intensity_r`` (fresh frames), ``tm_corr`` (median row correlation),
        ``tm_corr_p05`` (its 5th percentile over rows) and ``untrusted`` (rows the
        calibration could not fit: a result here, counted rather than warned about).
    """
    rows = []
    for calibration_seed in ([seed] if seeds is None else list(seeds)):
        for count in probes:
            device = VirtualDevice(preset, n_in=n_in, n_out=n_out).open()
            result = _calibrate_quietly(device, probes_per_input=count, camera=False,
                                        seed=calibration_seed)
            corr = row_correlation(result.tm.tm, device.chain.medium.transmission_matrix())
            rows.append({"preset": preset, "seed": calibration_seed, "probes_per_input": count,
                         "frames_per_input": result.tm.frames / n_in,
                         "intensity_r": result.intensity_r, "tm_corr": float(np.median(corr)),
                         "tm_corr_p05": float(np.percentile(corr, 5)),
                         "untrusted": int(result.untrusted.size)})
            if verbose:
                print(f"  {preset}, seed {calibration_seed}: {count} probes/input -> "
                      f"{result.tm.frames / n_in:.1f} frames/input, r = {result.intensity_r:.4f}",
                      file=sys.stderr)
    return rows


def _calibrate_quietly(device, **options):
    """:func:`calibration.calibrate` whose warnings about this device's rows are results of
    the study (``untrusted`` in its rows), not messages."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return calibrate(device, progress=False, **options)


def summarize_quality(rows) -> list[dict]:
    """Per preset and probe budget: the mean and 95 % interval half-width over seeds.

    Each summary row holds ``preset``, ``probes_per_input``, ``frames_per_input``,
    ``seeds`` (how many) and, for ``intensity_r``, ``tm_corr`` and ``tm_corr_p05``, the
    mean under the same key and the half-width under ``<key>_ci95``.
    """
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["preset"], row["probes_per_input"]), []).append(row)
    summary = []
    for (preset, probes), group in groups.items():
        entry = {"preset": preset, "probes_per_input": probes,
                 "frames_per_input": float(np.mean([r["frames_per_input"] for r in group])),
                 "seeds": len(group),
                 "untrusted": float(np.mean([r.get("untrusted", 0) for r in group]))}
        for key in ("intensity_r", "tm_corr", "tm_corr_p05"):
            entry[key], entry[f"{key}_ci95"] = mean_interval([r[key] for r in group])
        summary.append(entry)
    return summary


def plot_quality(rows, path) -> None:
    """``1 - r`` and ``1 - row correlation`` against frames per input, one curve per preset."""
    from matplotlib.figure import Figure  # noqa: PLC0415  (Agg canvas, no pyplot state)

    fig = Figure(figsize=(10, 4))
    axes = fig.subplots(1, 2)
    summary = summarize_quality(rows)
    for preset in dict.fromkeys(r["preset"] for r in summary):
        mine = [r for r in summary if r["preset"] == preset]
        x = [r["frames_per_input"] for r in mine]
        for ax, key in zip(axes, ("intensity_r", "tm_corr")):
            y = np.array([max(1 - r[key], 1e-12) for r in mine])
            half = np.nan_to_num(np.array([r[f"{key}_ci95"] for r in mine]))
            # the interval of 1 - q, clipped above zero for the log axis
            ax.errorbar(x, y, yerr=[np.minimum(half, 0.999 * y), half], fmt="o-", capsize=3,
                        label=preset)
    axes[0].axhline(1 - PUBLISHED_R, color="gray", ls="--",
                    label=f"published real device (r = {PUBLISHED_R})")
    for ax, what in zip(axes, ["1 - intensity r (fresh frames)", "1 - median TM row correlation"]):
        ax.set_yscale("log")
        ax.set_xlabel("device frames per input")
        ax.set_ylabel(what)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Calibration quality against frames")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def _mean_cell(row: dict, key: str) -> str:
    """``row[key]`` with its 95 % half-width (``row[key + '_ci95']``; none for one seed)."""
    half = row[f"{key}_ci95"]
    return f"{row[key]:.5f}" + ("" if math.isnan(half) else f" +- {half:.5f}")

def calibration_page(report: dict, rows, command: str, cost_rows=(), budget_rows=()) -> str:
    """The Markdown results page of ``scripts/calibrate.py --out``.

    Parameters
    ----------
    report
        What :func:`studies.commands.calibrate.calibration_report` returns for one device.
    rows
        :func:`quality_against_frames` rows (any presets and seeds).
    command
        The command line that wrote the page.
    cost_rows, budget_rows
        :func:`cost_at_scale` and :func:`budget_quality` rows (the cost-at-scale section;
        none without them).
    """
    lines = ["# Calibration from frames alone", "",
             f"Written by `{command}`; every number below comes from that run. The method is "
             "described in [design.md section 4](../design.md).", "",
             f"## {report['device']}, {report['n_in']} inputs onto {report['n_out']} outputs", "",
             "| quantity | estimated | truth or reference |", "|---|---|---|",
             f"| intensity r on fresh frames | {report['intensity_r']:.5f} | "
             f"published real device: {PUBLISHED_R} |"]
    if "tm_corr" in report:
        lines.append(f"| TM row correlation, median / 5th percentile | {report['tm_corr']:.5f} / "
                     f"{report['tm_corr_p05']:.5f} | 1 |")
        lines.append(f"| linear projection error (relative Frobenius) | "
                     f"{report['projection_error']:.4f} | 0 |")
    lines.append(f"| frames (per input) | {report['frames']} ({report['frames_per_input']:.1f}) | |")
    lines.append(f"| device time / compute time (s) | {report['acquisition_s']:.1f} / "
                 f"{report['seconds']:.2f} | |")
    camera, truth = report.get("camera"), report.get("camera_truth", {})
    if camera:
        for key, label in (("gain_dn_per_e", "gain (DN/e-)"), ("read_noise_e", "read noise (e-)"),
                           ("black_offset_dn", "black offset (DN)"),
                           ("saturation_e", "saturation (e-)")):
            expected = f"{truth[key]:.4g}" if key in truth else ""
            lines.append(f"| {label} | {camera[key]:.4g} | {expected} |")
    if rows:
        summary = summarize_quality(rows)
        seeds = max(r["seeds"] for r in summary)
        lines += ["", "## Quality against frames", "",
                  f"Mean over {seeds} calibration seed(s), +- the half-width of the 95 % "
                  "Student-t interval (blank for one seed).", "",
                  "| preset | frames per input | intensity r | TM row corr, median | "
                  "TM row corr, 5th percentile | untrusted rows |", "|---|---|---|---|---|---|"]
        for row in summary:
            lines.append(f"| {row['preset']} | {row['frames_per_input']:.1f} | "
                         f"{_mean_cell(row, 'intensity_r')} | {_mean_cell(row, 'tm_corr')} | "
                         f"{_mean_cell(row, 'tm_corr_p05')} | {row['untrusted']:.1f} |")
        lines += ["", "![calibration quality against frames](calibration_quality.png)"]
    if cost_rows:
        lines += cost_markdown(cost_rows, budget_rows)
    lines += ["", "The raw numbers are in `calibration.json` beside this page.", ""]
    return "\n".join(lines)


# ---------------------------------------------------------------------- cost at scale
def full_size(config) -> tuple[int, int]:
    """``(n_in, n_out)`` of the whole DMD (less held-on mirrors, in macropixels) and the
    whole sensor (binned)."""
    dmd, cam = config.dmd, config.camera
    n_in = (dmd.rows * dmd.cols - dmd.held_on_mirrors) // dmd.macropixel_mirrors
    n_out = (cam.sensor_rows // cam.binning) * (cam.sensor_cols // cam.binning)
    return n_in, n_out


def cost_at_scale(presets=None, job=(10, 512)) -> list[dict]:
    """Calibration cost of every preset at its configured size and at its full size.

    Each entry: ``preset``, ``size`` (``"configured"`` or ``"full DMD and sensor"``) and
    :meth:`calibration.cost.CalibrationCost.as_dict` (the whole device, then the ways to
    fit: fewer probes, outputs at the DMD's rate, a job's ``job = (inputs, outputs)``).
    """
    from photon import load_preset, preset_names  # noqa: PLC0415

    from calibration.cost import config_calibration_cost  # noqa: PLC0415

    rows = []
    for preset in (preset_names() if presets is None else presets):
        config = load_preset(preset)
        sizes = {"configured": (config.n_in, config.n_out), "full DMD and sensor":
                 full_size(config)}
        for size, (n_in, n_out) in dict(sizes).items():
            cost = config_calibration_cost(config, n_in=n_in, n_out=n_out, job=job)
            rows.append({"preset": preset, "size": size, **cost.as_dict()})
    return rows


def budget_quality(preset: str, n_in: int, n_out: int, seeds=(0,), probes=(1.0, 1.5, 4.0),
                   settings=None, label: str | None = None, verbose: bool = True) -> list[dict]:
    """Measured quality of the ways to fit a drift budget, at a size this machine runs.

    For each seed: calibrations at each of ``probes`` (frames per input) on a static copy
    of the device, and one at the default probes on the device drifting so that the
    calibration lasts :data:`calibration.cost.BUDGET_SHARE` of its drift time (its TM
    correlation measured against the TM half way through). ``settings`` override the
    preset (a correlated medium, say); ``label`` names the device in the rows.

    Returns
    -------
    list of dict
        ``device``, ``seed``, ``plan`` (``"probes_per_input=p"`` or ``"a tenth of the
        drift time"``), ``frames_per_input``, ``intensity_r``, ``tm_corr_p05``,
        ``untrusted``.
    """
    from calibration.cost import BUDGET_SHARE  # noqa: PLC0415

    settings = dict(settings or {})
    label = label or preset
    rows = []
    for seed in seeds:
        for count in probes:
            device = VirtualDevice(preset, n_in=n_in, n_out=n_out, medium__drift_time_s=None,
                                   **settings).open()
            result = _calibrate_quietly(device, probes_per_input=count, seed=seed)
            corr = row_correlation(result.tm.tm, device.chain.medium.transmission_matrix())
            rows.append(_budget_row(label, seed, f"probes_per_input={count:g}", result, corr,
                                    n_in))
        # The same calibration lasting a tenth of the drift time.
        probe = VirtualDevice(preset, n_in=n_in, n_out=n_out, medium__drift_time_s=None,
                              **settings).open()
        seconds = _calibrate_quietly(probe, seed=seed).frames * probe.frame_time_s
        device = VirtualDevice(preset, n_in=n_in, n_out=n_out,
                               medium__drift_time_s=seconds / BUDGET_SHARE, **settings).open()
        start = device.chain.elapsed_s
        result = _calibrate_quietly(device, seed=seed)
        twin = VirtualDevice(device.chain.config)
        twin.chain.advance(start + 0.5 * (device.chain.elapsed_s - start))
        corr = row_correlation(result.tm.tm, twin.chain.medium.transmission_matrix())
        rows.append(_budget_row(label, seed, "a tenth of the drift time", result, corr, n_in))
        if verbose:
            print(f"  {label}, seed {seed}: ways to fit measured", file=sys.stderr)
    return rows


def _budget_row(label, seed, plan, result, corr, n_in) -> dict:
    return {"device": label, "seed": seed, "plan": plan,
            "frames_per_input": result.frames / n_in, "intensity_r": result.intensity_r,
            "tm_corr_p05": float(np.percentile(corr, 5)),
            "untrusted": int(result.untrusted.size)}


def summarize_budget(rows) -> list[dict]:
    """Per device and plan: mean and 95 % half-width over seeds of the measured figures."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["device"], row["plan"]), []).append(row)
    summary = []
    for (device, plan), group in groups.items():
        entry = {"device": device, "plan": plan, "seeds": len(group),
                 "frames_per_input": float(np.mean([r["frames_per_input"] for r in group])),
                 "untrusted": float(np.mean([r["untrusted"] for r in group]))}
        for key in ("intensity_r", "tm_corr_p05"):
            entry[key], entry[f"{key}_ci95"] = mean_interval([r[key] for r in group])
        summary.append(entry)
    return summary


def _hours(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.3g} h"
    if seconds >= 60:
        return f"{seconds / 60:.3g} min"
    return f"{seconds:.3g} s"


def cost_markdown(cost_rows, budget_rows) -> list[str]:
    """The cost-at-scale section of the calibration page (lines of Markdown)."""
    from calibration.cost import BUDGET_SHARE  # noqa: PLC0415

    lines = ["", "## Calibration cost at scale", "",
             f"Device time a calibration needs (`calibration.cost`: the TM's frames at 4 "
             "probes per input, the camera estimate, the exposure pilot and the scoring "
             f"frames, each at the frame time of the outputs read) next to the medium's "
             f"drift time: a calibration is usable within {BUDGET_SHARE:.0%} of it. "
             "\"Largest inputs\" is the most inputs calibratable within that budget at the "
             "plan's outputs and probes.", "",
             "| preset | size | plan | inputs | outputs | frames | frame time | device time "
             "| drift time | share of drift | fits | largest inputs |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in cost_rows:
        drift = row["drift_time_s"]
        for plan in [row["whole"]] + row["ways_to_fit"]:
            share = plan["budget_share"]
            lines.append(
                f"| {row['preset']} | {row['size']} | {plan['label']} | {plan['n_in']:,} | "
                f"{plan['n_out']:,} | {plan['frames']:,} | {plan['frame_time_s'] * 1e3:.3g} ms | "
                f"{_hours(plan['device_s'])} | {'static' if drift is None else _hours(drift)} | "
                f"{'' if share is None else f'{share:.3g}'} | "
                f"{'' if plan['fits'] is None else ('yes' if plan['fits'] else 'no')} | "
                f"{'' if plan['largest_n_in'] is None else format(plan['largest_n_in'], ',')} |")
    if budget_rows:
        summary = summarize_budget(budget_rows)
        seeds = max(r["seeds"] for r in summary)
        lines += ["", "### The ways to fit, measured here", "",
                  "Calibrations at fewer probes (1.5 and the least, 1, per input) and at the "
                  "default, and one lasting a "
                  "tenth of the drift time (the drift set so; its TM compared with the TM half "
                  f"way through). Mean over {seeds} seed(s), +- the 95 % half-width.", "",
                  "| device | plan | frames per input | intensity r | TM row corr, 5th "
                  "percentile | untrusted rows |", "|---|---|---|---|---|---|"]
        for row in summary:
            lines.append(f"| {row['device']} | {row['plan']} | {row['frames_per_input']:.1f} | "
                         f"{_mean_cell(row, 'intensity_r')} | {_mean_cell(row, 'tm_corr_p05')} | "
                         f"{row['untrusted']:.1f} |")
    return lines
