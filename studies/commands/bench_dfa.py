"""Time one training step of backpropagation and of DFA, side by side, in one run.

Usage::

    python scripts/bench_dfa.py --json
    python scripts/bench_dfa.py --hidden 1024,1024,1024,1024 --batch 256 --repeats 30
    python scripts/bench_dfa.py --backend cupy --json
    python scripts/bench_dfa.py --json --device-feedback lab-bench --device-repeats 9

An MLP (default: 4 hidden layers of 1024 tanh units, 784 inputs, 10 classes) takes the
same batch (default 256) by BP and by DFA with ideal feedback; the steps are timed
interleaved and the medians compared. Prints ``bp_s``, ``dfa_s`` and ``dfa_over_bp``
(goal <= 1.0: DFA needs one projection of the error where BP needs a chain of
transposed products), and the same for the backward alone.

Beside them (``device_feedback``, skipped with ``--device-feedback none``): a DFA step of
the digits MLP (64-256-256-10, batches of 32) through a small virtual device
(``--device-feedback``, default ``lab-bench`` with every noise source of the preset on; 10
inputs onto 512 outputs) against the same step with ideal feedback, in NumPy and in the
PyTorch front, timed in interleaved blocks
(:func:`studies.device_feedback_bench.time_device_feedback_steps`), for each error
encoding of ``--device-encodings`` (default: the MLP's own 4-bit planes, 514 frames a
step, then ternary, 130 frames): ``device_over_ideal`` is the median of the repeats'
ratios (goal <= 2.0), with its range; ``read_noise_over_ideal`` is the time of drawing
only the read noise of the step's frames (one N(0, 1) deviate per output and frame, the
camera's own sampler) over the ideal step, the least the device adds; and
``device_extra_s_per_frame`` the device's extra time per frame. The first encoding's
figures also stand at the top level of ``device_feedback``. ``--device-threads 1`` limits
BLAS and torch to one thread on both sides (a loaded machine's multi-threaded BLAS spends
its time waiting for its threads).
"""

from __future__ import annotations

import json

from studies.benchmark import time_training_steps
from studies.device_feedback_bench import DEFAULT_ENCODINGS, time_device_feedback_steps
from studies.sweep.spec import parse_encoding
from photon.support.arrays import BACKENDS
from ._parser import CommandParser, int_in, positive_int

__all__ = ["main"]


def main(argv=None) -> int:
    """Command-line entry point."""
    parser = CommandParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=positive_int, default=784)
    parser.add_argument("--hidden", default="1024,1024,1024,1024", help="hidden widths")
    parser.add_argument("--classes", type=int_in(2), default=10)
    parser.add_argument("--batch", type=positive_int, default=256)
    parser.add_argument("--repeats", type=positive_int, default=20, help="timed steps per method")
    parser.add_argument("--backend", choices=BACKENDS, default="numpy")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--device-feedback", default="lab-bench",
                        help="device of the device-vs-ideal DFA step (a preset, YAML path or "
                             "device:BACKEND; 'none' skips it)")
    parser.add_argument("--device-repeats", type=positive_int, default=7,
                        help="interleaved repeats of the device-vs-ideal blocks (>= 1)")
    parser.add_argument("--device-steps", type=positive_int, default=40,
                        help="steps per block of the device-vs-ideal timing (>= 1)")
    parser.add_argument("--device-encodings", default=",".join(DEFAULT_ENCODINGS),
                        help="comma-separated error encodings of the device-vs-ideal step "
                             "('ternary', 'bitplanes-N'; the first is reported at the top "
                             "level)")
    parser.add_argument("--device-threads", type=positive_int, default=None,
                        help="limit BLAS and torch threads in the device-vs-ideal timing "
                             "(default: their own; 1 makes a loaded machine's figures stable)")
    args = parser.parse_args(argv)
    try:
        hidden = tuple(int(w) for w in args.hidden.split(","))
    except ValueError:
        parser.error(f"--hidden = {args.hidden!r}: expected comma-separated widths")
    encodings = [e.strip() for e in args.device_encodings.split(",") if e.strip()]
    try:  # checked before anything is timed
        if not encodings:
            raise ValueError("expected at least one encoding")
        for encoding in encodings:
            parse_encoding(encoding)
    except ValueError as error:
        parser.error(f"--device-encodings = {args.device_encodings!r}: {error}")
    try:
        result = time_training_steps(args.features, hidden, args.classes, args.batch,
                                     repeats=args.repeats, backend=args.backend)
    except ValueError as error:
        parser.error(str(error))
    if args.device_feedback != "none":
        try:
            result["device_feedback"] = time_device_feedback_steps(
                args.device_feedback, repeats=args.device_repeats,
                steps_per_repeat=args.device_steps, threads=args.device_threads,
                encodings=encodings)
        except ValueError as error:
            parser.error(str(error))
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"MLP {args.features}-{'-'.join(map(str, hidden))}-{args.classes}, batch {args.batch}, "
          f"{args.backend}, median of {args.repeats} interleaved steps")
    print(f"  step:     bp {1e3 * result['bp_s']:.2f} ms, dfa {1e3 * result['dfa_s']:.2f} ms, "
          f"dfa/bp {result['dfa_over_bp']:.3f}")
    print(f"  backward: bp {1e3 * result['bp_backward_s']:.2f} ms, dfa "
          f"{1e3 * result['dfa_backward_s']:.2f} ms, dfa/bp {result['backward_dfa_over_bp']:.3f}")
    device = result.get("device_feedback")
    if device:
        print(f"DFA step through '{device['device']}' ({device['device_outputs'][0]} -> "
              f"{device['device_outputs'][1]}) over ideal feedback, {device['model']}, median "
              f"of {device['repeats']} interleaved blocks (goal <= "
              f"{device['goal_device_over_ideal_max']}):")
        for encoding, part in device["by_encoding"].items():
            print(f"  {encoding}, {part['frames_per_step']:.0f} frames a step, the device adds "
                  f"{1e6 * part['device_extra_s_per_frame']:.1f} us a frame (NumPy):")
            for front in ("numpy", "torch"):
                timing = part[front]
                if timing is None:
                    print(f"    {front}: not timed (torch does not import)")
                    continue
                print(f"    {front}: ideal {1e3 * timing['ideal_step_s']:.3f} ms, device "
                      f"{1e3 * timing['device_step_s']:.3f} ms, device/ideal "
                      f"{timing['device_over_ideal']:.2f} (range "
                      f"{timing['device_over_ideal_min']:.2f}-"
                      f"{timing['device_over_ideal_max']:.2f}); read noise alone/ideal "
                      f"{timing['read_noise_over_ideal']:.2f}")
    return 0
