"""Benchmark the simulated optical chain against the bare GEMM it is built on.

Run from the repository root (no install needed)::

    python scripts/bench_physics.py                  # readable table
    python scripts/bench_physics.py --json           # one JSON object on stdout
    python scripts/bench_physics.py --json --streamed --n-in 32768 --n-out 32768 --batch 64

What is measured
----------------
A ``lab-bench`` chain is built with an ideal polarizer (one polarization,
``polarizer__extinction_ratio=None``) and every other noise source of the preset on
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
reported, and the two ratios are ratios of medians taken in the same run:

* ``overhead_ratio = chain_s / gemm_s``, goal ``<= 1.3`` (the physics costs at most 30 %
  on top of the GEMM);
* ``speedup_vs_naive = naive_s / chain_s``, goal ``>= 1.5`` (the full noisy chain beats
  the naive complex product).

With ``--streamed`` the chain is built with ``simulation__tm_storage="streamed"`` (the
TM is regenerated block by block on the frames' backend, never stored) and ``acquire`` runs once, cold;
``gemm_s``, ``naive_s`` and the ratios are ``null`` since there is no stored TM to
multiply by. ``peak_rss_mb`` (``ru_maxrss`` of this process, MiB) is always reported; in
streamed mode it shows that a TM too big to store (8 GiB at 32768 x 32768) is never
materialized.

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

import argparse
import importlib.util
import json
import os
import pathlib
import platform
import resource
import statistics
import sys
import time

if importlib.util.find_spec("photon") is None:  # run from a checkout without installing
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from photon import build_chain  # noqa: E402

__all__ = []

GOAL_OVERHEAD_MAX = 1.3
GOAL_SPEEDUP_MIN = 1.5
PRESET = "lab-bench"


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
    parser = argparse.ArgumentParser(
        description="Time chain.acquire against the bare float32 GEMM and a naive complex "
                    "product (see the module docstring).")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object on stdout instead of a table")
    parser.add_argument("--n-in", type=int, default=4096, help="input features (default 4096)")
    parser.add_argument("--n-out", type=int, default=4096, help="output pixels (default 4096)")
    parser.add_argument("--batch", type=int, default=1024, help="frames per batch (default 1024)")
    parser.add_argument("--repeats", type=int, default=5,
                        help="interleaved timing rounds after the warm-up (default 5; "
                             "ignored with --streamed, which runs acquire once)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random frames (default 0)")
    parser.add_argument("--backend", choices=("numpy", "cupy"), default="numpy",
                        help="array backend of the frames and operands (default numpy)")
    parser.add_argument("--streamed", action="store_true",
                        help="stream the TM (simulation__tm_storage='streamed') and run "
                             "acquire once; gemm_s and naive_s are not measured")
    args = parser.parse_args(argv)
    for name in ("n_in", "n_out", "batch", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} = {getattr(args, name)}: expected >= 1")
    return args


def _ratio(num, den):
    return None if num is None or den is None or den <= 0 else num / den


def _measure_dense(chain, frames, xp, synchronize, repeats):
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
        return frames.astype(np.float32) @ weights

    def run_naive():
        return xp.abs(frames.astype(np.complex64) @ tm) ** 2

    # The GEMM and the naive product must compute the same intensity.
    head = frames[:8]
    field = head.astype(np.float32) @ weights
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

    _progress(f"building {PRESET} chain: n_in={args.n_in}, n_out={args.n_out}, "
              f"storage={storage}, backend={args.backend}")
    start = time.perf_counter()
    chain = build_chain(PRESET, n_in=args.n_in, n_out=args.n_out,
                        polarizer__extinction_ratio=None, simulation__tm_storage=storage)
    build_s = time.perf_counter() - start
    if chain.medium.n_polarizations != 1:
        raise SystemExit("bench_physics: expected one polarization with an ideal polarizer, got "
                         f"{chain.medium.n_polarizations}")

    frames = np.random.default_rng(args.seed).integers(
        0, 2, size=(args.batch, args.n_in), dtype=np.uint8)
    if xp is not np:
        frames = xp.asarray(frames)

    chain_s = gemm_s = naive_s = check = None
    samples = None
    if args.streamed:
        _progress(f"streamed acquire of {args.batch} frames (TM of "
                  f"{chain.medium.dense_nbytes / 2**30:.2f} GiB regenerated block by block)")
        chain_s = _timed(lambda: chain.acquire(frames), synchronize)
        repeats = 1
        _progress(f"streamed acquire took {chain_s:.3f} s")
    else:
        repeats = args.repeats
        samples, check = _measure_dense(chain, frames, xp, synchronize, repeats)
        chain_s = statistics.median(samples["chain"])
        gemm_s = statistics.median(samples["gemm"])
        naive_s = statistics.median(samples["naive"])

    overhead = _ratio(chain_s, gemm_s)
    speedup = _ratio(naive_s, chain_s)
    result = {
        "preset": PRESET,
        "tm_storage": storage,
        "n_in": args.n_in,
        "n_out": args.n_out,
        "batch": args.batch,
        "repeats": repeats,
        "seed": args.seed,
        "backend": args.backend,
        "numpy": np.__version__,
        "cupy": xp.__version__ if xp is not np else None,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "n_polarizations": chain.medium.n_polarizations,
        "tm_dense_mb": round(chain.medium.dense_nbytes / 2**20, 1),
        "build_s": build_s,
        "chain_s": chain_s,
        "gemm_s": gemm_s,
        "naive_s": naive_s,
        "gemm_includes_uint8_to_float32": True,
        "naive_includes_uint8_to_complex64": True,
        "overhead_ratio": overhead,
        "speedup_vs_naive": speedup,
        "goals": {"overhead_ratio_max": GOAL_OVERHEAD_MAX,
                  "speedup_vs_naive_min": GOAL_SPEEDUP_MIN},
        "goals_met": {
            "overhead_ratio": None if overhead is None else overhead <= GOAL_OVERHEAD_MAX,
            "speedup_vs_naive": None if speedup is None else speedup >= GOAL_SPEEDUP_MIN,
        },
        "gemm_vs_naive_max_rel_err": check,
        "samples_s": samples,
        "peak_rss_mb": round(_peak_rss_mb(), 1),
    }

    if args.json:
        print(json.dumps(result))
        return 0

    def fmt(value, unit=""):
        return "n/a (not measured)" if value is None else f"{value:.4f}{unit}"

    goals_met = result["goals_met"]
    rows = [
        ("preset / storage", f"{PRESET} / {storage}, {result['n_polarizations']} polarization"),
        ("n_in x n_out, batch", f"{args.n_in} x {args.n_out}, {args.batch}"),
        ("backend", f"{args.backend} (numpy {np.__version__}"
                    + (f", cupy {result['cupy']})" if result["cupy"] else ")")),
        ("repeats (median of)", str(repeats)),
        ("TM if stored", f"{result['tm_dense_mb']:.1f} MiB"),
        ("build", fmt(build_s, " s")),
        ("chain.acquire", fmt(chain_s, " s")),
        ("bare GEMM (incl. u8->f32)", fmt(gemm_s, " s")),
        ("naive |x T|^2 (complex64)", fmt(naive_s, " s")),
        (f"overhead chain/GEMM (goal <= {GOAL_OVERHEAD_MAX})",
         fmt(overhead) + ("" if overhead is None else
                          ("  ok" if goals_met["overhead_ratio"] else "  MISSED"))),
        (f"speedup naive/chain (goal >= {GOAL_SPEEDUP_MIN})",
         fmt(speedup) + ("" if speedup is None else
                         ("  ok" if goals_met["speedup_vs_naive"] else "  MISSED"))),
        ("peak RSS", f"{result['peak_rss_mb']:.1f} MiB"),
    ]
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
