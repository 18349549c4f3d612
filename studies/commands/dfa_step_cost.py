"""DFA step cost: BP, DFA with feedback on the GPU (dense, structured) and DFA through an OPU.

Usage::

    python scripts/dfa_step_cost.py --out docs/dfa_step_cost --accuracy
    python scripts/dfa_step_cost.py --gpu H200 --precision bf16 --device datacenter-opu
    python scripts/dfa_step_cost.py --gpu-only --json      # on a GPU: the model against CuPy

Models one training step (:mod:`studies.step_cost`) for this toolkit's sizes and the
GPT-3 ladder (vocabulary 50257) under each schedule (sequential, overlapped,
layer-parallel), on the roofline MODEL of a named GPU (``--gpu``, ``--precision``) with
the OPU of ``--device`` for ``dfa-opu``; solves for the OPU that would tie backprop and
dense DFA on every modelled GPU, beside today's presets (:mod:`studies.step_inverse`);
validates the step model against steps measured here (this CPU, calibrated in the same
run; with a GPU present, also against steps measured with CuPy) and shows which
operations that check pins; with ``--accuracy``, measures what the overlapped
schedule's stale feedback and micro DFA cost in accuracy over seeds
(:mod:`studies.dfa_variants`). Draws where each option wins (one PNG per schedule) and
writes one Markdown page (:mod:`studies.step_cost_page`).
"""

from __future__ import annotations

import pathlib
import shlex
import sys

from photon.support.jsonio import dumps, write_json
from studies.gpu_model import GPUS, PRECISIONS
from ._parser import CommandParser, int_in, non_negative_float, positive_int

__all__ = ["main"]


def _gpu_only(args) -> int:
    """The step model against steps measured with CuPy on the GPU present (gpu_check.sh)."""
    from studies.step_validation import validate_on_gpu, validation_shapes  # noqa: PLC0415
    from studies.throughput import local_gpu_name  # noqa: PLC0415

    name = local_gpu_name()
    if name is None:
        print("dfa_step_cost.py --gpu-only: no GPU (CuPy sees no CUDA device): expected one",
              file=sys.stderr)
        return 2
    shapes = validation_shapes()[:1] if args.quick else None
    result = validate_on_gpu(shapes, repeats=args.repeats, gpu_name=name)
    print(dumps(result, indent=1))
    if result.get("max_abs_error") is not None:
        print(f"step model vs CuPy steps on {name}: median error {result['median_abs_error']:.1%}, "
              f"worst {result['max_abs_error']:.1%}: {'passed' if result['passed'] else 'FAILED'}",
              file=sys.stderr)
    return 0


def main(argv=None) -> int:
    """Command-line entry point."""
    parser = CommandParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpu", default="H100", choices=sorted(GPUS),
                        help="GPU modelled in the crossover tables and maps")
    parser.add_argument("--precision", default="bf16", choices=PRECISIONS,
                        help="GEMM precision of the modelled GPUs (default bf16)")
    parser.add_argument("--device", default="datacenter-opu", help="OPU of dfa-opu (a preset)")
    parser.add_argument("--encoder", default="ternary", choices=("ternary", "bitplanes"))
    parser.add_argument("--n-bits", type=int_in(1, 16), default=4, help="bits per sign of bitplanes")
    parser.add_argument("--gpu-idle-w", type=non_negative_float, default=100.0,
                        help="ASSUMED power of the GPU while it waits for the OPU (W)")
    parser.add_argument("--repeats", type=positive_int, default=7,
                        help="interleaved timings per validation point (>= 5 for the page)")
    parser.add_argument("--quick", action="store_true",
                        help="validate on the smallest shape only (for tests)")
    parser.add_argument("--no-validate", action="store_true", help="skip the measured steps")
    parser.add_argument("--gpu-only", action="store_true",
                        help="only the model against CuPy steps on the GPU present, as JSON")
    parser.add_argument("--accuracy", action="store_true",
                        help="measure the accuracy cost of stale feedback (Cora GCN, digits "
                             "MLP) and of micro DFA (char Transformer) over seeds (long; kept "
                             "in OUT/accuracy.json under its settings and reused by a rerun "
                             "with the same ones)")
    parser.add_argument("--seeds", type=int_in(2), default=5, help="seeds of --accuracy (paired)")
    parser.add_argument("--micro-steps", type=positive_int, default=600,
                        help="training steps of each micro/macro Transformer run")
    parser.add_argument("--out", default=None, help="directory for the PNG and Markdown")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.gpu_only:
        return _gpu_only(args)
    from studies.step_cost_page import markdown_page, step_cost_study, write_figures  # noqa

    command = "python scripts/dfa_step_cost.py " + shlex.join(
        sys.argv[1:] if argv is None else list(argv))
    store = pathlib.Path(args.out) / "accuracy.json" if args.out else None
    result = step_cost_study(args.gpu, args.precision, args.device, args.encoder, args.n_bits,
                             args.gpu_idle_w, validate=not args.no_validate, quick=args.quick,
                             repeats=args.repeats, accuracy=args.accuracy,
                             accuracy_seeds=range(args.seeds), micro_steps=args.micro_steps,
                             accuracy_store=store, command=command)
    if args.out:
        out = pathlib.Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "dfa_step_cost.json", result)  # the results first, then the figures
        (out / "dfa_step_cost.md").write_text(markdown_page(result, command), encoding="utf-8")
        write_figures(result, out)
        result["figures"] = sorted(str(p) for p in out.glob("crossover_map_*.png"))
    if args.json:
        print(dumps(result, indent=1))
    else:
        print(result["tables"]["sequential"])
    cpu = result["validation"].get("cpu")
    if cpu:
        print(f"step model vs measured here: median error {cpu['median_abs_error']:.1%}, worst "
              f"{cpu['max_abs_error']:.1%}: {'passed' if cpu['passed'] else 'FAILED'}",
              file=sys.stderr)
    return 0
