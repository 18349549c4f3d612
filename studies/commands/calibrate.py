"""Calibrate a device from its frames alone and report the quality.

Usage::

    python scripts/calibrate.py --device lab-bench --n-in 256 --n-out 256 --json
    python scripts/calibrate.py --device lab-bench --n-in 128 --n-out 128 --plot plots/
    python scripts/calibrate.py --all-presets --seeds 3 --out docs/calibration

Prints ``intensity_r`` (Pearson r between measured and predicted counts on fresh
frames), for virtual devices ``tm_corr`` (median per-row correlation with the true TM,
invariant to the row phase) and ``projection_error`` (relative Frobenius error of the
linear projection the calibrated device gives, against the noise-free device's; also its
median over rows), the frames
used, the compute ``seconds`` and the device's own ``acquisition_s``, and the camera
estimates next to the truth. With ``--plot DIR`` it also draws calibration quality
against the number of frames, for the noise-free preset and the chosen one (every
shipped preset with ``--all-presets``), as PNG, each point the mean over ``--seeds``
calibration seeds with its 95 % interval. ``--out DIR`` writes the results page
(``index.md``, ``calibration.json``, then the figure) with the calibration cost of every
preset at scale next to its drift time, and the quality of the ways to fit that budget
measured at ``--n-in x --n-out`` (``datacenter-opu`` and a correlated medium).
"""

from __future__ import annotations

import pathlib
import shlex
import sys

import numpy as np

from calibration import (calibrate, projection_error, row_correlation,
                         row_projection_errors)
from studies.calibration_quality import (PUBLISHED_R, budget_quality,
                                         calibration_page, correlated_settings,
                                         cost_at_scale, plot_quality, quality_against_frames)
from devices import OPU, VirtualDevice, open_device
from photon import preset_names
from photon.support.jsonio import dumps, write_json
from ._parser import CommandParser, int_in, number_in, positive_int, seed

__all__ = ["main", "calibration_report"]

REFERENCE = f"published: Pearson r = {PUBLISHED_R} on a real 100 x 100 TM (Gupta et al., ICASSP 2020)"


def calibration_report(device, probes_per_input: float, seed: int = 0,
                       progress: bool | None = None) -> dict:
    """Calibrate ``device`` and return the numbers the script prints."""
    result = calibrate(device, probes_per_input=probes_per_input, seed=seed, progress=progress)
    report = {
        "device": device.name,
        "n_in": device.n_in,
        "n_out": device.n_out,
        "intensity_r": result.intensity_r,
        "frames": result.frames,
        "frames_per_input": result.frames / device.n_in,
        "seconds": result.tm.compute_s,
        "acquisition_s": result.frames * device.frame_time_s,
        "saturated_fraction": result.tm.saturated_fraction,
        "reference": REFERENCE,
    }
    if isinstance(device, VirtualDevice):
        truth = device.chain.medium.transmission_matrix()
        corr = row_correlation(result.tm.tm, truth)
        report["tm_corr"] = float(np.median(corr))
        report["tm_corr_p05"] = float(np.percentile(corr, 5))
        n_features = max(1, device.n_in - 1)
        measured = OPU(result.device()).fit(n_features=n_features).effective_matrix()
        reference = OPU(device.noise_free_twin()).fit(n_features=n_features).effective_matrix()
        report["projection_error"] = projection_error(measured, reference)
        report["projection_error_median_row"] = float(np.median(
            row_projection_errors(measured, reference)))
    if result.camera is not None:
        report["camera"] = result.camera.as_dict()
        if isinstance(device, VirtualDevice):
            cam = device.chain.camera
            report["camera_truth"] = {
                "gain_dn_per_e": cam.gain_dn_per_e, "read_noise_e": cam.read_noise_e,
                "black_offset_dn": cam.black_offset_dn, "saturation_e": cam.saturation_electrons()}
    return report


def main(argv=None) -> int:
    """Command-line entry point."""
    parser = CommandParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="lab-bench", help="preset, YAML path or backend")
    parser.add_argument("--n-in", type=int_in(4), default=256)
    parser.add_argument("--n-out", type=positive_int, default=256)
    parser.add_argument("--probes-per-input", type=number_in(1.0, unit="probes per input"), default=4.0,
                        help="random probes per input (about 7 frames each)")
    parser.add_argument("--seed", type=seed, default=0)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--plot", metavar="DIR", help="save quality against frames as PNG")
    parser.add_argument("--all-presets", action="store_true",
                        help="with --plot or --out: curves for every shipped preset")
    parser.add_argument("--seeds", type=positive_int, default=1,
                        help="calibration seeds per point of the quality curves (default 1)")
    parser.add_argument("--out", metavar="DIR",
                        help="write the results page: index.md, calibration.json, the figure")
    args = parser.parse_args(argv)
    plot_dir = args.out or args.plot
    for option, value in (("--out", args.out), ("--plot", args.plot)):
        if value and pathlib.Path(value).exists() and not pathlib.Path(value).is_dir():
            parser.error(f"{option} {value}: expected a directory (a file of that name exists)")

    device = open_device(args.device, n_in=args.n_in, n_out=args.n_out)
    print(f"calibrating {args.device} ({args.n_in} x {args.n_out}) ...", file=sys.stderr)
    report = calibration_report(device, args.probes_per_input, args.seed)
    if plot_dir:
        presets = (preset_names() if args.all_presets else
                   ["ideal", args.device if isinstance(device, VirtualDevice) else "lab-bench"])
        rows = []
        for preset in dict.fromkeys(presets):
            rows += quality_against_frames(preset, args.n_in, args.n_out,
                                           seeds=range(args.seed, args.seed + args.seeds))
        directory = pathlib.Path(plot_dir)
        directory.mkdir(parents=True, exist_ok=True)
        report["quality_against_frames"] = rows
        cost_rows, budget_rows = [], []
        if args.out:
            print("calibration cost at scale; the ways to fit, measured ...", file=sys.stderr)
            cost_rows = cost_at_scale()
            seeds = range(args.seed, args.seed + args.seeds)
            budget_rows = budget_quality("datacenter-opu", args.n_in, args.n_out, seeds=seeds)
            budget_rows += budget_quality("lab-bench", args.n_in, args.n_out, seeds=seeds,
                                          settings=correlated_settings(),
                                          label="lab-bench, correlated medium")
            report["cost_at_scale"] = cost_rows
            report["ways_to_fit_measured"] = budget_rows
        report["plot"] = str(directory / "calibration_quality.png")
        if args.out:  # the results first, then the figure
            command = "python scripts/calibrate.py " + shlex.join(
                sys.argv[1:] if argv is None else list(argv))
            write_json(directory / "calibration.json", report)
            (directory / "index.md").write_text(
                calibration_page(report, rows, command, cost_rows, budget_rows),
                encoding="utf-8")
        plot_quality(rows, directory / "calibration_quality.png")
    if args.json:
        print(dumps(report, indent=2))
        return 0
    for key, value in report.items():
        if key in ("cost_at_scale", "ways_to_fit_measured"):
            print(f"{key:<20} (see calibration.json)")
        elif key == "quality_against_frames":
            print(f"{'preset':<14} {'frames/input':>12} {'intensity r':>12} {'tm corr':>10}")
            for row in value:
                print(f"{row['preset']:<14} {row['frames_per_input']:>12.1f} "
                      f"{row['intensity_r']:>12.5f} {row['tm_corr']:>10.6f}")
        else:
            print(f"{key:<20} {value}")
    return 0
