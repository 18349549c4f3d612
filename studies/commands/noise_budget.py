"""Feedback fidelity and noise budget of a DFA co-processor, without training.

Usage::

    python scripts/noise_budget.py                                  # lab-bench, MLP errors
    python scripts/noise_budget.py --device lab-bench --json
    python scripts/noise_budget.py --errors gcn                     # Cora GCN errors
    python scripts/noise_budget.py --errors lm                      # ~100-character LM errors
    python scripts/noise_budget.py --set camera__adc_bits=6 --set medium__drift_time_s=600
    python scripts/noise_budget.py --out docs/noise                 # budget_mlp.md, budget_mlp.json

For a device and a realistic error distribution it measures how far the device's
feedback ``B_hat e`` is from the exact ``B e`` of the same device's transmission
matrix (correlation, SNR in dB, split into the optics' and the encoding's) and the
error variance each source contributes (switched on alone over the device's noise-free
twin), next to its prediction from the physics (docs/design.md section 7) and what a
user of the device could know: its configuration and the calibration's estimates from
frames of their own. ``--json`` prints ``{"snr_db", "correlation", "snr", "sources":
{"shot": {"measured", "predicted", "inputs", ...}, ...}, "check", ...}`` (strict JSON;
variances in the operator's linear-mode units, per output and error vector).
"""

from __future__ import annotations

import argparse
import json
import math
import pathlib
import shlex
import sys

from photon.support import jsonio
from photon.support.cli import positive_int
from studies.noise_budget import (BUDGET_CHECK, ERROR_KINDS, LASER_REALIZATIONS, REALIZATIONS,
                                  TM_REALIZATIONS, budget_check, budget_markdown, noise_budget,
                                  task_errors)
from ._parser import CommandParser, seed

__all__ = ["main"]


def _override(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r}: expected KEY=VALUE, e.g. camera__adc_bits=6")
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        parsed = value
    return key, parsed


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected seconds >= 0") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: expected seconds >= 0")
    return value


def _knowledge_text(budget: dict) -> str:
    """The estimates behind the predictions, in one paragraph."""
    k = budget["knowledge"]
    cam, dark, flat, drift = k["camera"], k["dark_current"], k["flat_field"], k["decorrelation"]
    tau = drift["tau_s"]
    parts = [f"exposure {k['exposure_us']:.1f} us (an OPU fit with auto exposure)",
             f"camera gain K = {cam['gain_dn_per_e']:.4g} DN/e- and dark noise "
             f"{cam['dark_noise_dn']:.3g} DN ({cam['read_noise_e']:.3g} e-) by photon transfer "
             f"on {cam['frames']} frames",
             f"TM model: r = {k['tm_model']['intensity_r']:.4f} on fresh frames "
             f"({k['tm_model']['frames']} frames)"]
    if dark is not None:
        parts.append(f"dark current {dark['e_per_s']:.3g} +- {dark['e_per_s_se']:.2g} e-/s from "
                     f"{dark['frames']} dark frames at {len(dark['exposures_us'])} exposures up "
                     f"to {max(dark['exposures_us']) * 1e-6:.3g} s")
    parts.append(f"flat field PRNU {flat['prnu_rms']:.4f} rms from {flat['frames']} frames of "
                 "the camera under a uniform light")
    parts.append("a static medium (no decorrelation within "
                 f"{max(drift['lags_s']):.0f} s)" if not math.isfinite(tau) else
                 f"TM decorrelation time {tau:.4g} +- {drift['tau_se_s']:.2g} s from frames "
                 f"repeated up to {max(drift['lags_s']):.0f} s later on a fresh device")
    return ("What the predictions know of the device, besides its configuration, each "
            "estimated by the calibration package on frames of its own (a separate device "
            "of the same configuration and physical seeds, other noise seeds): "
            + "; ".join(parts) + ".")


def main(argv=None) -> int:
    """Command-line entry point."""
    parser = CommandParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="lab-bench", help="preset name or YAML path")
    parser.add_argument("--errors", choices=tuple(ERROR_KINDS), default="mlp",
                        help="; ".join(f"{k}: {v}" for k, v in ERROR_KINDS.items()))
    parser.add_argument("--n-errors", type=positive_int, default=1024, help="error vectors")
    parser.add_argument("--n-out", type=positive_int, default=512,
                        help="outputs of the feedback device (sum of the hidden widths)")
    parser.add_argument("--elapsed-s", type=_seconds, default=60.0,
                        help="device seconds between the operator's fit and the projection")
    parser.add_argument("--set", dest="overrides", type=_override, action="append", default=[],
                        metavar="KEY=VALUE", help="device configuration override (repeatable)")
    parser.add_argument("--realizations", type=positive_int, default=REALIZATIONS,
                        help="noise realizations of each stochastic source")
    parser.add_argument("--laser-realizations", type=positive_int, default=LASER_REALIZATIONS,
                        help="fits over which the laser's power drift is measured")
    parser.add_argument("--tm-realizations", type=positive_int, default=TM_REALIZATIONS,
                        help="media (TMs, each calibrated) over which the polarizer's leak is "
                             "measured")
    parser.add_argument("--seed", type=seed, default=0, help="seed of the error set")
    parser.add_argument("--out", default=None,
                        help="directory for budget_ERRORS.md and budget_ERRORS.json")
    parser.add_argument("--json", action="store_true", help="print strict JSON")
    args = parser.parse_args(argv)
    argv = sys.argv[1:] if argv is None else list(argv)
    out = None
    if args.out is not None:
        out = pathlib.Path(args.out)
        if out.exists() and not out.is_dir():
            parser.error(f"--out {str(out)!r}: expected a directory (a file is there)")
    errors = task_errors(args.errors, args.n_errors, seed=args.seed)
    try:
        budget = noise_budget(args.device, errors, n_out=args.n_out, elapsed_s=args.elapsed_s,
                              device_options=dict(args.overrides),
                              realizations=args.realizations,
                              laser_realizations=args.laser_realizations,
                              tm_realizations=args.tm_realizations)
    except (ValueError, TypeError) as error:
        parser.error(str(error))
    budget["check"] = budget_check(budget)
    budget["command"] = ("python scripts/noise_budget.py "
                         + " ".join(shlex.quote(a) for a in argv)).strip()
    table = budget_markdown(budget)
    check = budget["check"]
    low, high = BUDGET_CHECK["ratio_low"], BUDGET_CHECK["ratio_high"]
    strict = all(check["within_band"].values()) and check["sum"]
    verdict = (f"Every source within {low:g} .. {high:g} of its prediction and the sum within "
               f"{BUDGET_CHECK['sum_tolerance']:.0%} of the total: "
               f"**{'yes' if strict else 'no'}**; "
               f"every source within its band (0.8 .. 1.25, widened to {BUDGET_CHECK['z']:g} "
               "standard errors where the measurement's sampling error is larger): "
               f"**{'yes' if check['all'] else 'no'}**.")
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / f"budget_{args.errors}.md").write_text(
            f"# Noise budget of the DFA feedback ({args.errors} errors)\n\n"
            f"Written by `{budget['command']}`; every number comes from that run. Variances "
            "per output and error vector in linear-mode units; the predictions are those of "
            "docs/design.md section 7, each computed from the device's configuration and the "
            "calibration's estimates from frames of their own (the column *prediction's "
            "inputs*), never from the measured devices or their fits. Each source is "
            "switched on alone over the device's noise-free twin; a stochastic one is "
            "measured over independent realizations of its noise, each with its own fit.\n\n"
            + _knowledge_text(budget) + "\n\n" + table + "\n\n" + verdict + "\n",
            encoding="utf-8")
        jsonio.write_json(out / f"budget_{args.errors}.json", budget)
    if args.json:
        print(jsonio.dumps(budget))
    else:
        print(table)
        print("\n" + verdict.replace("**", ""))
    return 0
