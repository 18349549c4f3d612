"""Feedback fidelity and noise budget of a DFA co-processor, without training.

Usage::

    python scripts/noise_budget.py                                  # lab-bench, MLP errors
    python scripts/noise_budget.py --device lab-bench --json
    python scripts/noise_budget.py --errors lm                      # ~100-character LM errors
    python scripts/noise_budget.py --set camera__adc_bits=6 --set medium__drift_time_s=600
    python scripts/noise_budget.py --out docs/noise                 # budget_mlp.md, budget_mlp.json

For a device and a realistic error distribution it measures how far the device's
feedback ``B_hat e`` is from the exact ``B e`` of the same device's transmission
matrix (correlation, SNR in dB) and the error variance each source contributes
(switched on alone over the device's noise-free twin), next to its prediction from the
physics (docs/design.md section 7). ``--json`` prints ``{"snr_db", "correlation",
"sources": {"shot": {"measured", "predicted", ...}, ...}, ...}`` (strict JSON; variances
in the operator's linear-mode units, per output and error vector).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import pathlib
import shlex
import sys

if importlib.util.find_spec("dfa_bridge") is None:  # run from a checkout without installing
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from studies.noise_budget import (budget_check, budget_markdown,  # noqa: E402
                                             classification_errors, language_errors,
                                             noise_budget)
from photon.support import jsonio  # noqa: E402
from photon.support.cli import positive_int, run_main  # noqa: E402

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


def main(argv=None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="lab-bench", help="preset name or YAML path")
    parser.add_argument("--errors", choices=("mlp", "lm"), default="mlp",
                        help="mlp: errors of the digits MLP mid-training, ternary encoded; lm: "
                             "softmax - onehot of a character bigram model, 4-bit planes")
    parser.add_argument("--n-errors", type=positive_int, default=1024, help="error vectors")
    parser.add_argument("--n-out", type=positive_int, default=512,
                        help="outputs of the feedback device (sum of the hidden widths)")
    parser.add_argument("--elapsed-s", type=_seconds, default=60.0,
                        help="device seconds between the operator's fit and the projection")
    parser.add_argument("--set", dest="overrides", type=_override, action="append", default=[],
                        metavar="KEY=VALUE", help="device configuration override (repeatable)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the error set")
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
    if args.errors == "mlp":
        errors = classification_errors("digits", args.n_errors, seed=args.seed)
    else:
        errors = language_errors(args.n_errors, seed=args.seed)
    try:
        budget = noise_budget(args.device, errors, n_out=args.n_out, elapsed_s=args.elapsed_s,
                              device_options=dict(args.overrides))
    except (ValueError, TypeError) as error:
        parser.error(str(error))
    budget["check"] = budget_check(budget)
    budget["command"] = ("python scripts/noise_budget.py "
                         + " ".join(shlex.quote(a) for a in argv)).strip()
    table = budget_markdown(budget)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        verdict = "yes" if budget["check"]["all"] else "no"
        (out / f"budget_{args.errors}.md").write_text(
            f"# Noise budget of the DFA feedback ({args.errors} errors)\n\n"
            f"Written by `{budget['command']}`; every number comes from that run. Variances "
            "per output and error vector in linear-mode units; the predictions are those of "
            "docs/design.md section 7.\n\n" + table + "\n\n"
            "Every source within 0.8 .. 1.25 of its prediction and the sum within 20 % of the "
            f"total: **{verdict}**.\n", encoding="utf-8")
        jsonio.write_json(out / f"budget_{args.errors}.json", budget)
    if args.json:
        print(jsonio.dumps(budget))
    else:
        print(table)
        verdict = "every source within" if budget["check"]["all"] else "NOT every source within"
        print(f"\n{verdict} 0.8 .. 1.25 of its prediction and the sum within 20 % of the total")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
