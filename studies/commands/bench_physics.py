"""Benchmark the simulated optical chain against the bare GEMM it is built on.

Run from the repository root (no install needed)::

    python scripts/bench_physics.py                  # readable table
    python scripts/bench_physics.py --json           # one JSON object on stdout
    python scripts/bench_physics.py --json --streamed --n-in 32768 --n-out 32768 --batch 64
    python scripts/bench_physics.py --backend cupy --n-in 16384 --n-out 16384 --batch 4096 \
        --precision tf32                             # the GPU goal
    python scripts/bench_physics.py --full-size --backend cupy --precision tf32 --batch 1024
    python scripts/bench_physics.py --full-size --measure-columns 1024 --batch 64   # CPU

What is measured
----------------
A ``lab-bench`` chain is built with an ideal polarizer (one polarization,
``polarizer__extinction_ratio=None``), no speckle grain (``medium__speckle_grain_px=0``:
the GEMM and the naive product use the stored TM) and every other noise source of the preset on
(laser RIN and drift, shot, dark and read noise, PRNU/DSNU, 8-bit ADC, DMD off-state
leakage). A batch of random binary ``uint8`` frames of shape ``(batch, n_in)`` is drawn
from ``--seed``; the TM, laser and camera seeds are the preset's. Three things are timed
on the same frames:

``chain_s``
    ``chain.acquire(frames)``: the whole noisy chain, counts out.
``gemm_s``
    The bare real GEMM the chain is built on, *including* the ``uint8 -> float32``
    conversion of the frames (the chain pays it too):
    ``frames.astype(float32) @ W`` with ``W = chain.medium.stored_weights`` of shape
    ``(n_in, 2 n_out)``, the real and imaginary parts of the TM side by side.
``naive_s``
    The textbook complex product, including the ``uint8 -> complex64`` conversion:
    ``abs(frames.astype(complex64) @ T) ** 2`` with ``T`` the complex64 TM of shape
    ``(n_in, n_out)`` (C-contiguous).

Each is run once to warm up, then ``--repeats`` rounds of chain, GEMM, naive in turn
(interleaved, so that a noisy shared machine affects all three alike); the medians are
reported, and the ratios are ratios of medians taken in the same run:

* ``overhead_ratio = chain_s / gemm_s``, goal ``<= 1.3`` on NumPy (the physics costs at
  most 30 % on top of the GEMM);
* ``speedup_vs_naive = naive_s / chain_s``, goal ``>= 1.5`` on NumPy (the full noisy
  chain beats the naive complex product);
* ``gemm_throughput_fraction = gemm_s / chain_s``, goal ``>= 0.6`` on CuPy (the chain
  runs at 60 % of the throughput of the bare GEMM it needs).

``--precision tf32`` or ``bf16`` builds the chain with ``simulation__tm_precision`` set
(the TM rounded to that format, frames exact) and times the bare GEMM in the same
precision (:func:`photon.precision.precise_matmul`: tensor cores on CuPy, the float32
product of the rounded TM on NumPy).

With ``--streamed`` the chain is built with ``simulation__tm_storage="streamed"`` (the
TM is regenerated block by block on the frames' backend, never stored) and ``acquire`` runs once, cold;
``gemm_s``, ``naive_s`` and the ratios are ``null`` since there is no stored TM to
multiply by. ``peak_rss_mb`` (``ru_maxrss`` of this process, MiB) is always reported; in
streamed mode it shows that a TM too big to store (8 GiB at 32768 x 32768) is never
materialized.

``--full-size`` benchmarks the ``datacenter-opu`` preset as modelled (912 x 1140 =
1,039,680 mirrors onto 2,000,000 pixels, two polarizations), streamed, and reports
``projections_per_s = batch / chain_s``. Every run also reports
``device_projections_per_s``, the modelled device's own rate (one projection per frame
of ``n_out`` outputs, :func:`photon.device_frame_time_s`). ``--measure-columns K`` builds the same device
with only ``K`` camera pixels (same mirrors, same per-pixel light) and scales the time
by ``n_out / K``: the streamed cost is linear in the pixels, and a CPU cannot run the
whole device (the result says ``extrapolated_from_columns``).

``--backend cupy`` puts the frames (``cupy.asarray``) and the GEMM/naive operands on the
GPU and synchronizes the device before stopping each timer. The NumPy backend never
imports CuPy.

Progress goes to stderr; with ``--json`` stdout holds exactly one JSON object.

Notes
-----
The script only imports from ``photon``. It reads ``chain.medium.stored_weights`` (the stored
float32 TM) to time the bare GEMM on exactly the matrix the chain uses.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import sys
import time

import numpy as np

from photon import build_chain, resolve_config
from photon.chain import device_frame_time_s
from photon.precision import TM_PRECISIONS, precise_matmul
from ._parser import CommandParser, positive_int, seed

__all__ = ["main"]

GOAL_OVERHEAD_MAX = 1.3
GOAL_SPEEDUP_MIN = 1.5
GOAL_GPU_GEMM_FRACTION_MIN = 0.6
PRESET = "lab-bench"
FULL_SIZE_PRESET = "datacenter-opu"


def _progress(message: str) -> None:
    """Report progress on stderr (never stdout: ``--json`` owns it)."""
    print(f"[bench_physics {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB (Linux reports ``ru_maxrss`` in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _load_backend(name: str):
    """Return ``(xp, synchronize)`` for backend ``name``; CuPy is imported only here."""
    if name == "numpy":
        return np, (lambda: None)
    try:
        import cupy  # noqa: PLC0415  (only on the GPU path)
    except ImportError as error:
        raise SystemExit(
            f"bench_physics: --backend cupy needs CuPy, which is not importable here "
            f"({error}). Install the wheel matching your CUDA (e.g. pip install "
            f"cupy-cuda12x) or run with --backend numpy.") from None
    try:
        n_devices = cupy.cuda.runtime.getDeviceCount()
    except Exception as error:  # CUDA driver/runtime errors
        raise SystemExit(f"bench_physics: --backend cupy: CuPy is installed but no CUDA device "
                         f"is usable ({error}). Run with --backend numpy.") from None
    if n_devices < 1:
        raise SystemExit("bench_physics: --backend cupy: CuPy sees no CUDA device. "
                         "Run with --backend numpy.")

    def synchronize():
        cupy.cuda.Device().synchronize()

    return cupy, synchronize


def _timed(fn, synchronize) -> float:
    """Seconds taken by ``fn()``, the device synchronized before the clock starts and stops."""
    synchronize()
    start = time.perf_counter()
    result = fn()
    synchronize()
    elapsed = time.perf_counter() - start
    del result
    return elapsed


def _parse(argv):
    parser = CommandParser(
        description="Time chain.acquire against the bare float32 GEMM and a naive complex "
                    "product (see the module docstring).")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object on stdout instead of a table")
    parser.add_argument("--n-in", type=positive_int, default=4096, help="input features (default 4096)")
    parser.add_argument("--n-out", type=positive_int, default=4096, help="output pixels (default 4096)")
    parser.add_argument("--batch", type=positive_int, default=1024, help="frames per batch (default 1024)")
    parser.add_argument("--repeats", type=positive_int, default=5,
                        help="interleaved timing rounds after the warm-up (default 5; "
                             "ignored with --streamed, which runs acquire once)")
    parser.add_argument("--seed", type=seed, default=0, help="seed of the random frames (default 0)")
    parser.add_argument("--backend", choices=("numpy", "cupy"), default="numpy",
                        help="array backend of the frames and operands (default numpy)")
    parser.add_argument("--streamed", action="store_true",
                        help="stream the TM (simulation__tm_storage='streamed') and run "
                             "acquire once; gemm_s and naive_s are not measured")
    parser.add_argument("--precision", choices=TM_PRECISIONS, default="float32",
                        help="TM precision of the chain and of the bare GEMM (default float32)")
    parser.add_argument("--full-size", action="store_true",
                        help=f"the {FULL_SIZE_PRESET} preset at its own size, streamed "
                             "(--n-in/--n-out ignored)")
    parser.add_argument("--tile-rows", type=positive_int, default=None,
                        help="streamed block height in mirrors (default: the preset's, "
                             "32768 with --full-size; a GPU wants tens of thousands)")
    parser.add_argument("--tile-cols", type=positive_int, default=None,
                        help="streamed block width in pixels (default: the preset's, 8192 "
                             "with --full-size)")
    parser.add_argument("--measure-columns", type=positive_int, default=None,
                        help="streamed only: build the device with this many camera pixels "
                             "and scale the time to all of them")
    args = parser.parse_args(argv)
    if args.full_size:
        args.streamed = True
    if args.measure_columns is not None and not args.streamed:
        parser.error(f"--measure-columns = {args.measure_columns}: expected with "
                     "--streamed or --full-size")
    return args


def _ratio(num, den):
    return None if num is None or den is None or den <= 0 else num / den


def _measure_dense(chain, frames, xp, synchronize, repeats, precision):
    """Warm up, then interleave ``repeats`` rounds of chain, GEMM and naive; return samples."""
    n_out = chain.n_out
    weights = chain.medium.stored_weights          # (n_in, 2 n_out) float32, NumPy
    expected = (chain.n_in, 2 * n_out)
    if weights is None or weights.shape != expected:
        raise SystemExit(f"bench_physics: chain.medium.stored_weights has shape "
                         f"{None if weights is None else weights.shape}: expected {expected} "
                         "(one polarization, dense storage)")
    _progress("building the complex64 TM for the naive product")
    tm = np.ascontiguousarray(chain.medium.transmission_matrix().T)   # (n_in, n_out)
    if xp is not np:
        weights, tm = xp.asarray(weights), xp.asarray(tm)
    else:
        weights = np.ascontiguousarray(weights)

    def run_chain():
        return chain.acquire(frames)

    def run_gemm():
        return precise_matmul(frames.astype(np.float32), weights, precision)

    def run_naive():
        return xp.abs(frames.astype(np.complex64) @ tm) ** 2

    # The GEMM and the naive product must compute the same intensity.
    head = frames[:8]
    field = precise_matmul(head.astype(np.float32), weights, precision)
    via_gemm = field[:, :n_out] ** 2 + field[:, n_out:] ** 2
    via_naive = xp.abs(head.astype(np.complex64) @ tm) ** 2
    check = float(xp.max(xp.abs(via_gemm - via_naive)) / xp.max(xp.abs(via_naive)))
    if check > 1e-3:
        raise SystemExit(f"bench_physics: GEMM and naive intensities differ (relative "
                         f"error {check:.3g}): the benchmark would compare different maths")

    runs = {"chain": run_chain, "gemm": run_gemm, "naive": run_naive}
    samples = {name: [] for name in runs}
    for name, fn in runs.items():
        _progress(f"warm-up: {name}")
        _timed(fn, synchronize)
    for round_ in range(repeats):
        for name, fn in runs.items():
            samples[name].append(_timed(fn, synchronize))
        _progress(f"round {round_ + 1}/{repeats}: "
                  + ", ".join(f"{k} {v[-1]:.3f} s" for k, v in samples.items()))
    return samples, check


def main(argv=None) -> int:
    """Run the benchmark and print its result (JSON or a table); return the exit status."""
    args = _parse(argv)
    xp, synchronize = _load_backend(args.backend)
    storage = "streamed" if args.streamed else "dense"

    if args.full_size:
        preset, full = FULL_SIZE_PRESET, resolve_config(FULL_SIZE_PRESET)
        args.n_in, n_out_device = full.n_in, full.n_out
        changes = {}                        # the device as modelled: its own polarizer
    else:
        preset, n_out_device = PRESET, args.n_out
        # No speckle grain: the GEMM and the naive product below use the TM as stored, which
        # the grain (a smoothing of the field over the pixels) would no longer match.
        changes = {"n_in": args.n_in, "polarizer__extinction_ratio": None,
                   "medium__speckle_grain_px": 0.0}
    n_out_built = args.measure_columns or n_out_device
    changes.update(n_out=n_out_built, simulation__tm_storage=storage,
                   simulation__tm_precision=args.precision)
    if args.full_size:   # few large blocks: each is one kernel and one GEMM on a GPU
        args.tile_rows, args.tile_cols = args.tile_rows or 32768, args.tile_cols or 8192
    if args.tile_rows:
        changes["simulation__tile_rows"] = args.tile_rows
    if args.tile_cols:
        changes["simulation__tile_cols"] = args.tile_cols
    _progress(f"building {preset} chain: n_in={args.n_in}, n_out={n_out_built}"
              + (f" (of {n_out_device})" if n_out_built != n_out_device else "")
              + f", storage={storage}, precision={args.precision}, backend={args.backend}")
    start = time.perf_counter()
    chain = build_chain(preset, **changes)
    build_s = time.perf_counter() - start
    if not args.full_size and chain.medium.n_polarizations != 1:
        raise SystemExit("bench_physics: expected one polarization with an ideal polarizer, got "
                         f"{chain.medium.n_polarizations}")

    frames = np.random.default_rng(args.seed).integers(
        0, 2, size=(args.batch, args.n_in), dtype=np.uint8)
    if xp is not np:
        frames = xp.asarray(frames)

    chain_s = gemm_s = naive_s = check = measured_s = None
    samples = None
    if args.streamed:
        _progress(f"streamed acquire of {args.batch} frames (TM of "
                  f"{chain.medium.dense_nbytes / 2**30:.2f} GiB regenerated block by block)")
        chain_s = measured_s = _timed(lambda: chain.acquire(frames), synchronize)
        repeats = 1
        _progress(f"streamed acquire took {chain_s:.3f} s")
        if n_out_built != n_out_device:
            chain_s = measured_s * n_out_device / n_out_built
            _progress(f"scaled to {n_out_device} pixels: {chain_s:.1f} s")
    else:
        repeats = args.repeats
        samples, check = _measure_dense(chain, frames, xp, synchronize, repeats, args.precision)
        chain_s = statistics.median(samples["chain"])
        gemm_s = statistics.median(samples["gemm"])
        naive_s = statistics.median(samples["naive"])

    overhead = _ratio(chain_s, gemm_s)
    speedup = _ratio(naive_s, chain_s)
    gemm_fraction = _ratio(gemm_s, chain_s)
    on_gpu = xp is not np
    goals = ({"gemm_throughput_fraction_min": GOAL_GPU_GEMM_FRACTION_MIN} if on_gpu else
             {"overhead_ratio_max": GOAL_OVERHEAD_MAX, "speedup_vs_naive_min": GOAL_SPEEDUP_MIN})
    goals_met = ({"gemm_throughput_fraction": None if gemm_fraction is None
                  else gemm_fraction >= GOAL_GPU_GEMM_FRACTION_MIN} if on_gpu else
                 {"overhead_ratio": None if overhead is None else overhead <= GOAL_OVERHEAD_MAX,
                  "speedup_vs_naive": None if speedup is None else speedup >= GOAL_SPEEDUP_MIN})
    result = {
        "preset": preset,
        "tm_storage": storage,
        "tm_precision": args.precision,
        "n_in": args.n_in,
        "n_out": n_out_device,
        "extrapolated_from_columns": n_out_built if n_out_built != n_out_device else None,
        "measured_chain_s": measured_s,
        "batch": args.batch,
        "repeats": repeats,
        "seed": args.seed,
        "backend": args.backend,
        "numpy": np.__version__,
        "cupy": xp.__version__ if on_gpu else None,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "n_polarizations": chain.medium.n_polarizations,
        "tm_dense_mb": round(chain.medium.dense_nbytes * n_out_device / n_out_built / 2**20, 1),
        "tile_rows_cols": [chain.medium.tile_rows, chain.medium.tile_cols],
        "build_s": build_s,
        "chain_s": chain_s,
        "projections_per_s": args.batch / chain_s,
        # The modelled device's own rate: one projection per frame of all n_out outputs.
        "device_projections_per_s": 1.0 / device_frame_time_s(chain.config, n_out_device),
        "gemm_s": gemm_s,
        "naive_s": naive_s,
        "gemm_includes_uint8_to_float32": True,
        "naive_includes_uint8_to_complex64": True,
        "overhead_ratio": overhead,
        "speedup_vs_naive": speedup,
        "gemm_throughput_fraction": gemm_fraction,
        "goals": goals,
        "goals_met": goals_met,
        "gemm_vs_naive_max_rel_err": check,
        "samples_s": samples,
        "peak_rss_mb": round(_peak_rss_mb(), 1),
    }

    if args.json:
        print(json.dumps(result))
        return 0

    def fmt(value, unit=""):
        return "n/a (not measured)" if value is None else f"{value:.4g}{unit}"

    def verdict(name):
        met = goals_met.get(name)
        return "" if met is None else ("  ok" if met else "  MISSED")

    rows = [
        ("preset / storage", f"{preset} / {storage}, {result['n_polarizations']} polarization(s)"),
        ("TM precision", args.precision),
        ("n_in x n_out, batch", f"{args.n_in} x {n_out_device}, {args.batch}"
         + (f" (timed on {n_out_built} pixels, scaled)" if result["extrapolated_from_columns"]
            else "")),
        ("backend", f"{args.backend} (numpy {np.__version__}"
                    + (f", cupy {result['cupy']})" if result["cupy"] else ")")),
        ("repeats (median of)", str(repeats)),
        ("TM if stored", f"{result['tm_dense_mb']:.1f} MiB"),
        ("build", fmt(build_s, " s")),
        ("chain.acquire", fmt(chain_s, " s")),
        ("projections per second", fmt(result["projections_per_s"])),
        ("bare GEMM (incl. u8->f32)", fmt(gemm_s, " s")),
        ("naive |x T|^2 (complex64)", fmt(naive_s, " s")),
    ]
    if on_gpu:
        rows.append((f"GEMM/chain throughput (goal >= {GOAL_GPU_GEMM_FRACTION_MIN})",
                     fmt(gemm_fraction) + verdict("gemm_throughput_fraction")))
    else:
        rows += [(f"overhead chain/GEMM (goal <= {GOAL_OVERHEAD_MAX})",
                  fmt(overhead) + verdict("overhead_ratio")),
                 (f"speedup naive/chain (goal >= {GOAL_SPEEDUP_MIN})",
                  fmt(speedup) + verdict("speedup_vs_naive"))]
    rows.append(("peak RSS", f"{result['peak_rss_mb']:.1f} MiB"))
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")
    return 0
