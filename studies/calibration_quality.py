"""Calibration quality against the number of frames, for any preset, and its results page.

:func:`quality_against_frames` calibrates a fresh virtual device at several probe budgets
(each seed draws its own probes); :func:`summarize_quality` gives, per preset and budget,
the mean and a 95 % Student-t interval over the seeds; :func:`calibration_page` writes the
Markdown page of ``scripts/calibrate.py --out``.
"""

from __future__ import annotations

import math
import sys

import numpy as np

from devices import VirtualDevice
from photon.support.stats import mean_interval

from calibration.metrics import row_correlation
from calibration.session import calibrate

__all__ = ["PUBLISHED_R", "quality_against_frames", "summarize_quality",
           "plot_quality", "calibration_page"]

PUBLISHED_R = 0.978  # a real 100 x 100 TM (Gupta et al., ICASSP 2020)


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
        ``intensity_r`` (fresh frames), ``tm_corr`` (median row correlation) and
        ``tm_corr_p05`` (its 5th percentile over rows).
    """
    rows = []
    for calibration_seed in ([seed] if seeds is None else list(seeds)):
        for count in probes:
            device = VirtualDevice(preset, n_in=n_in, n_out=n_out).open()
            result = calibrate(device, probes_per_input=count, camera=False, progress=False,
                               seed=calibration_seed)
            corr = row_correlation(result.tm.tm, device.chain.medium.transmission_matrix())
            rows.append({"preset": preset, "seed": calibration_seed, "probes_per_input": count,
                         "frames_per_input": result.tm.frames / n_in,
                         "intensity_r": result.intensity_r, "tm_corr": float(np.median(corr)),
                         "tm_corr_p05": float(np.percentile(corr, 5))})
            if verbose:
                print(f"  {preset}, seed {calibration_seed}: {count} probes/input -> "
                      f"{result.tm.frames / n_in:.1f} frames/input, r = {result.intensity_r:.4f}",
                      file=sys.stderr)
    return rows


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
                 "seeds": len(group)}
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


def calibration_page(report: dict, rows, command: str) -> str:
    """The Markdown results page of ``scripts/calibrate.py --out``.

    Parameters
    ----------
    report
        What :func:`scripts.calibrate.calibration_report` returns for one device.
    rows
        :func:`quality_against_frames` rows (any presets and seeds).
    command
        The command line that wrote the page.
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
                  "TM row corr, 5th percentile |", "|---|---|---|---|---|"]

        def cell(row, key):
            half = row[f"{key}_ci95"]
            return f"{row[key]:.5f}" + ("" if math.isnan(half) else f" +- {half:.5f}")

        for row in summary:
            lines.append(f"| {row['preset']} | {row['frames_per_input']:.1f} | "
                         f"{cell(row, 'intensity_r')} | {cell(row, 'tm_corr')} | "
                         f"{cell(row, 'tm_corr_p05')} |")
        lines += ["", "![calibration quality against frames](calibration_quality.png)"]
    lines += ["", "The raw numbers are in `calibration.json` beside this page.", ""]
    return "\n".join(lines)
