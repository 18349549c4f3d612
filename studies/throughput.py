"""Throughput study: an OPU as modelled against dense and structured projections.

For each size ``n`` (inputs = outputs), these ways to compute a random projection of a
batch of vectors:

* **OPU** (modelled): one frame per vector in intensity mode, two in linear mode, at the
  device's frame time for ``n`` outputs (its camera's read-out of exactly the rows
  holding them); energy = wall-plug power x time. Only sizes within the device's
  mirrors and camera pixels run;
* **CPU** (measured): ``X @ R`` with NumPy in float32, ``R`` stored while it fits in
  ``memory_fraction`` of the machine's memory, beyond that generated block by block from
  a counter-based seed (timed on the first blocks and extrapolated to all of them);
* **GPU** (measured, when CuPy sees a device): the same with CuPy;
* **structured** (measured): the subsampled randomized Hartley transform
  (:class:`devices.structured.SRHT`, ``O(n log n)`` per vector, no stored matrix) with
  ``scipy.fft`` here (``structured-numpy``), with CuPy's FFT on a GPU
  (``structured-cupy``);
* **GPU models** (every machine): the roofline model of named GPUs
  (:mod:`studies.gpu_model`) for the dense product (``gpu-model-H100`` ...: ``R`` stored
  while it fits, regenerated on the GPU from its counter-based seed beyond) and for the
  SRHT (``structured-model-H100`` ...). These rows are *models*, labelled so, with
  their figures and assumptions in :func:`model_assumptions`; where a GPU is present,
  :func:`model_errors` compares the model of that GPU with its measurement.

Every measured rate is the median of interleaved repeats (at least 5) with the rates at
the quartiles of its timings (:mod:`studies.timing`): the dense product and the SRHT at
one size are timed in one rotation, on one CPU thread by default, clocked by the
process's CPU time (other jobs on a shared machine do not inflate it). Each is measured
once per run (:func:`throughput_study`) and every page that run writes shows the same
figure (:func:`write_throughput_page`, the report's sections 4 and 6).

Energy of the CPU and GPU uses an *assumed* power (stated in the results): the
machine's own draw is not measured here.
"""

from __future__ import annotations

import math
import os
import pathlib
from dataclasses import asdict, dataclass

import numpy as np

from photon import cupy_available
from photon.gaussian_matrix import GaussianMatrix

from devices.cost import job_cost
from devices.structured import SRHT
from studies.gpu_model import Roofline, gpu_spec, match_gpu
from studies.timing import blas_limit, interleaved_times

__all__ = ["ThroughputPoint", "opu_point", "dense_point", "structured_point", "gpu_model_point",
           "throughput_table", "machine_memory_bytes", "crossovers", "structured_crossover",
           "model_assumptions", "model_errors", "local_gpu_name", "plot_throughput",
           "throughput_markdown", "assumptions_markdown", "throughput_study",
           "throughput_summary", "write_throughput_page", "rate_text"]


@dataclass(frozen=True)
class ThroughputPoint:
    """Projections per second and joules per projection of one way at one size.

    A measured point also gives the spread of its repeats (the rates at the first and
    third quartile of the timings), their number, the clock and the threads.
    """

    backend: str
    n: int
    projections_per_s: float | None
    joules_per_projection: float | None
    power_w: float
    storage: str
    note: str = ""
    projections_per_s_q25: float | None = None
    projections_per_s_q75: float | None = None
    repeats: int | None = None
    clock: str | None = None
    threads: int | None = None

    def as_dict(self) -> dict:
        """Plain-data form."""
        return asdict(self)


def machine_memory_bytes() -> int:
    """Physical memory of this machine (bytes)."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def opu_point(device, n: int, mode: str = "intensity", n_vectors: int = 10_000) -> ThroughputPoint:
    """Modelled throughput of ``device`` (an :class:`~devices.protocol.OPUDevice`) at size ``n``.

    The frame time is the device's when it reads ``n`` outputs
    (:meth:`~devices.protocol.OPUDevice.frame_time_for`: a camera reading fewer rows
    delivers frames sooner).
    """
    label = f"opu-{mode}"
    if n > device.n_in or n > device.n_out:
        return ThroughputPoint(label, n, None, None, device.electrical_power_w, "n/a",
                               f"beyond the device's {device.n_in} inputs / {device.n_out} outputs")
    frame_time = device.frame_time_for(n)
    cost = job_cost(n_vectors, mode=mode, frame_time_s=frame_time,
                    electrical_power_w=device.electrical_power_w)
    return ThroughputPoint(label, n, n_vectors / cost.seconds, cost.joules / n_vectors,
                           device.electrical_power_w, "optical", "modelled from the frame time")


def _synchronize(xp):
    if xp is not np:
        xp.cuda.Device().synchronize()


def _dense_job(n: int, xp, batch: int, memory_bytes: int | None, memory_fraction: float,
               block_rows: int, max_blocks_timed: int, seed: int) -> dict:
    """What one timed call of the dense product does, and how to scale it to the batch.

    ``R`` stored: the product (scale 1). Otherwise its row blocks are generated from a
    counter-based seed and multiplied; one call runs the first
    ``min(blocks, max_blocks_timed)`` (scale: all blocks over those).
    """
    if memory_bytes is None:
        memory_bytes = (machine_memory_bytes() if xp is np
                        else xp.cuda.Device().mem_info[1])
    rng = np.random.default_rng(seed)
    x = xp.asarray(rng.standard_normal((batch, n), dtype=np.float32))
    if 4 * n * n <= memory_fraction * memory_bytes:
        generator = np.random.default_rng(seed) if xp is np else xp.random.default_rng(seed)
        matrix = generator.standard_normal((n, n), dtype=np.float32)
        matrix *= np.float32(1.0 / math.sqrt(n))
        return {"function": lambda: x @ matrix, "scale": 1.0, "storage": "stored", "note": ""}
    # Real and imaginary parts of an n x n/2 complex Gaussian matrix, side by side, are
    # an n x n real one with variance 1 / n, generated where it is used (CPU or GPU).
    half = (n + 1) // 2
    generated = GaussianMatrix(seed, (0,), n, half, 2.0 / n)
    blocks = math.ceil(n / block_rows)
    timed = min(blocks, max_blocks_timed)

    def some_blocks():
        out = xp.zeros((batch, n), np.float32)
        for b in range(timed):
            r0, r1 = b * block_rows, min(n, (b + 1) * block_rows)
            block = generated.side_by_side(r0, r1, 0, half, xp)
            out += x[:, r0:r1] @ block[:, :n]
        return out

    return {"function": some_blocks, "scale": blocks / timed, "storage": "generated",
            "note": (f"R of {4 * n * n / 2**30:.1f} GiB does not fit in {memory_fraction:.0%} of "
                     f"memory: generated in {blocks} blocks, {timed} timed and extrapolated")}


def _structured_job(n: int, xp, batch: int, seed: int, workers: int | None,
                    transform: str) -> dict:
    rng = np.random.default_rng(seed)
    x = xp.asarray(rng.standard_normal((batch, n), dtype=np.float32))
    projection = SRHT(n, n, seed, transform=transform, workers=workers if xp is np else None)
    where = (f"scipy.fft, workers={workers}" if xp is np else "cupyx.scipy.fft")
    return {"function": lambda: projection(x), "scale": 1.0, "storage": "none",
            "note": (f"SRHT ({transform}: {where}); stores "
                     f"{projection.describe()['stored_numbers']} numbers, no matrix")}


def _point(name, n, job, timing, batch, power_w, clock, threads) -> ThroughputPoint:
    """A measured point from :func:`studies.timing.interleaved_times`' entry for it."""
    scale = job["scale"]
    seconds, q25, q75 = (timing[k] * scale for k in ("median_s", "q25_s", "q75_s"))
    note = f"median of {timing['repeats']} interleaved repeats ({clock} clock, " \
           f"{'as configured' if threads is None else threads} thread(s)" + \
           (f", {timing['calls_per_sample']} calls per sample)" if timing["calls_per_sample"] > 1
            else ")")
    if job["note"]:
        note += f"; {job['note']}"
    return ThroughputPoint(name, n, batch / seconds, seconds * power_w / batch, power_w,
                           job["storage"], note, batch / q75, batch / q25, timing["repeats"],
                           clock, threads)


def _measure(jobs: dict, n: int, batch: int, powers: dict, repeats: int, threads,
             clock: str, xp=np) -> list:
    """Time ``jobs`` (name -> job) interleaved; their measured points."""
    with blas_limit(threads if xp is np else None):
        timings = interleaved_times({name: job["function"] for name, job in jobs.items()},
                                    repeats, 1, clock,
                                    None if xp is np else (lambda: _synchronize(xp)),
                                    min_sample_s=_MIN_SAMPLE_S)
    return [_point(name, n, job, timings[name], batch, powers[name], clock, threads)
            for name, job in jobs.items()]


#: Each timing sample lasts at least this long (fast products are repeated within it).
_MIN_SAMPLE_S = 2e-3


def _cpu_clock(threads: int | None) -> str:
    """``"cpu"`` for one thread (other jobs on the cores do not inflate it), else ``"wall"``."""
    return "cpu" if threads == 1 else "wall"


def dense_point(n: int, xp=np, *, batch: int = 256, power_w: float = 25.0,
                memory_bytes: int | None = None, memory_fraction: float = 0.25,
                block_rows: int = 1024, max_blocks_timed: int = 2, repeats: int = 5,
                seed: int = 0, threads: int | None = 1) -> ThroughputPoint:
    """Measured throughput of ``X @ R`` (float32) at size ``n`` on backend ``xp``, alone.

    ``R`` is stored when ``4 n^2`` bytes fit in ``memory_fraction`` of ``memory_bytes``
    (the product timed ``repeats`` times, median kept); otherwise its row blocks are
    generated from a counter-based seed and multiplied one by one, the first
    ``max_blocks_timed`` timed (generation included) and the total extrapolated.
    ``threads``: BLAS threads (1: the process's CPU time is the clock; None: as
    configured, wall clock). :func:`throughput_table` times it interleaved with the
    other ways instead.
    """
    job = _dense_job(n, xp, batch, memory_bytes, memory_fraction, block_rows,
                     max_blocks_timed, seed)
    name = "cpu-numpy" if xp is np else "gpu-cupy"
    clock = _cpu_clock(threads) if xp is np else "wall"
    return _measure({name: job}, n, batch, {name: power_w}, repeats, threads, clock, xp)[0]


def structured_point(n: int, xp=np, *, batch: int = 256, power_w: float = 25.0,
                     repeats: int = 5, seed: int = 0, workers: int | None = 1,
                     transform: str = "fft") -> ThroughputPoint:
    """Measured throughput of the SRHT ``x -> P x`` (n -> n, float32) on backend ``xp``, alone.

    The same batch as :func:`dense_point`; the signs and rows (``O(n)`` numbers) are
    drawn before the clock starts, as a stored ``R`` is; timed ``repeats`` times after
    one warm-up, the median kept. ``workers``: threads of ``scipy.fft`` (1: the
    process's CPU time is the clock, as the dense product's with one BLAS thread).
    """
    job = _structured_job(n, xp, batch, seed, workers, transform)
    name = "structured-numpy" if xp is np else "structured-cupy"
    clock = _cpu_clock(workers) if xp is np else "wall"
    return _measure({name: job}, n, batch, {name: power_w}, repeats,
                    workers if xp is np else None, clock, xp)[0]


def gpu_model_point(n: int, model: Roofline, *, batch: int = 256, structured: bool = False,
                    memory_fraction: float = 0.25, block_rows: int = 1024) -> ThroughputPoint:
    """Modelled throughput on a named GPU (:class:`studies.gpu_model.Roofline`): a model.

    The dense product is modelled as :func:`dense_point` runs it on a GPU (``R`` stored
    while it fits in ``memory_fraction`` of the GPU's memory, regenerated block by block
    beyond); ``structured=True`` models the SRHT with cuFFT instead.
    """
    key = model.spec.key
    if structured:
        result = model.structured_projection(n, n, batch)
        label, what = f"structured-model-{key}", "SRHT with cuFFT"
    else:
        result = model.dense_projection(n, n, batch, memory_fraction=memory_fraction,
                                        block_rows=block_rows)
        label, what = model.label, f"X @ R in {model.precision}"
        if result["storage"] == "generated":
            what += (f", R of {4 * n * n / 2**30:.0f} GiB regenerated on the GPU in "
                     f"{result['blocks']} blocks")
    seconds = result["seconds"]
    note = (f"MODEL, not measured: roofline of the {model.spec.name} ({what}; "
            f"{model.compute_efficiency:.0%} of peak FLOP/s, {model.bandwidth_efficiency:.0%} "
            f"of {model.spec.bandwidth_bytes_per_s / 1e12:.2f} TB/s, "
            f"{model.launch_s * 1e6:.0f} us per launch; see assumptions)")
    return ThroughputPoint(label, n, batch / seconds, seconds * model.power_w / batch,
                           model.power_w, result["storage"], note)


def local_gpu_name() -> str | None:
    """The CUDA device name CuPy sees (device 0), or None without a GPU."""
    if not cupy_available():
        return None
    import cupy  # noqa: PLC0415

    name = cupy.cuda.runtime.getDeviceProperties(0)["name"]
    return name.decode() if isinstance(name, bytes) else str(name)


def throughput_table(sizes, device, *, batch: int = 256, cpu_power_w: float = 25.0,
                     gpu_power_w: float = 700.0, gpu: bool | None = None,
                     progress=None, structured: bool = False, gpu_models=(),
                     gpu_precision: str = "fp32", threads: int | None = 1,
                     repeats: int = 5) -> list[dict]:
    """Rows of ``throughput_table``: every way at every size (see the module notes).

    At each size the measured ways on one backend (the dense product and the SRHT) are
    timed interleaved, ``repeats`` times each (:func:`studies.timing.interleaved_times`):
    each row holds the median rate and the rates at the quartiles of the timings.

    Parameters
    ----------
    sizes
        The ``n`` to run.
    device
        The OPU device (:class:`~devices.protocol.OPUDevice`) modelled.
    batch
        Vectors per measured batch.
    cpu_power_w, gpu_power_w
        Assumed powers of the measured CPU and GPU.
    gpu
        Measure on the GPU (None: when CuPy sees one).
    progress
        Progress bar (None: shown for four sizes or more).
    structured
        Also measure the SRHT (``structured-numpy``; ``structured-cupy`` on a GPU).
    gpu_models
        Names of :data:`studies.gpu_model.GPUS` to model (``("H100", "H200")``): a
        ``gpu-model-NAME`` row (dense product at ``gpu_precision``) and, with
        ``structured``, a ``structured-model-NAME`` row per size.
    gpu_precision
        GEMM precision of the modelled dense product (``"fp32"``: as CuPy's float32
        product runs without TF32).
    threads
        CPU threads of the BLAS and of ``scipy.fft`` (default 1: per core, the
        process's CPU time as the clock, which other jobs on a shared machine do not
        inflate; None: as configured, wall clock).
    repeats
        Interleaved timings of each measured way (>= 5 for a reported figure).
    """
    from photon.support.progress import Progress  # noqa: PLC0415

    use_gpu = cupy_available() if gpu is None else gpu
    models = [Roofline(gpu_spec(name), precision=gpu_precision) for name in gpu_models]
    clock = _cpu_clock(threads)
    rows = []
    with Progress(len(sizes), "throughput", enabled=progress, unit="size", min_steps=1) as bar:
        for n in sizes:
            rows.append(opu_point(device, n, "intensity").as_dict())
            rows.append(opu_point(device, n, "linear").as_dict())
            jobs = {"cpu-numpy": _dense_job(n, np, batch, None, 0.25, 1024, 2, 0)}
            if structured:
                jobs["structured-numpy"] = _structured_job(n, np, batch, 0,
                                                           -1 if threads is None else threads,
                                                           "fft")
            rows += [p.as_dict() for p in _measure(jobs, n, batch, dict.fromkeys(jobs, cpu_power_w),
                                                   repeats, threads, clock)]
            del jobs
            if use_gpu:
                import cupy  # noqa: PLC0415

                jobs = {"gpu-cupy": _dense_job(n, cupy, batch, None, 0.25, 1024, 2, 0)}
                if structured:
                    jobs["structured-cupy"] = _structured_job(n, cupy, batch, 0, None, "fft")
                rows += [p.as_dict() for p in _measure(jobs, n, batch,
                                                       dict.fromkeys(jobs, gpu_power_w),
                                                       repeats, None, "wall", cupy)]
                del jobs
            for model in models:
                rows.append(gpu_model_point(n, model, batch=batch).as_dict())
                if structured:
                    rows.append(gpu_model_point(n, model, batch=batch, structured=True).as_dict())
            bar.update()
    return rows


def structured_crossover(rows, structured: str = "structured-numpy",
                         dense: str = "cpu-numpy") -> dict:
    """Where the structured projection overtakes the dense one, measured side by side.

    Returns
    -------
    dict
        ``speedup`` per ``n`` (structured projections/s over dense), ``faster_from_n``
        (the smallest ``n`` from which the structured one is faster at every larger
        size run; None if it is not faster at the largest), and the backends compared.
    """
    rate = {(r["backend"], r["n"]): r["projections_per_s"] for r in rows}
    sizes = sorted({r["n"] for r in rows if (structured, r["n"]) in rate
                    and (dense, r["n"]) in rate})
    speedup = {n: rate[structured, n] / rate[dense, n] for n in sizes}
    faster_from = None
    for n in reversed(sizes):
        if speedup[n] <= 1.0:
            break
        faster_from = n
    return {"structured": structured, "dense": dense, "speedup": speedup,
            "faster_from_n": faster_from}


def model_assumptions(gpu_models=(), gpu_precision: str = "fp32", *, cpu_power_w: float = 25.0,
                      gpu_power_w: float = 700.0, batch: int = 256) -> dict:
    """Every modelled or assumed number of the study, with its source (plain data)."""
    result = {
        "opu": "MODEL: frames x the device's frame time; energy = its wall-plug power x time "
               "(devices.cost.job_cost)",
        "cpu-numpy": f"measured here (float32 X @ R, batch {batch}); energy uses an ASSUMED "
                     f"{cpu_power_w} W",
        "structured-numpy": f"measured here (SRHT, scipy.fft); energy uses an ASSUMED "
                            f"{cpu_power_w} W",
        "gpu-cupy": f"measured with CuPy where a GPU is present; energy uses an ASSUMED "
                    f"{gpu_power_w} W",
    }
    for name in gpu_models:
        model = Roofline(gpu_spec(name), precision=gpu_precision)
        result[model.label] = model.assumptions()
        result[f"structured-model-{model.spec.key}"] = {
            **model.assumptions(),
            "structured": "pad and sign flip, one batched real FFT over the blocks of N = "
                          "2^ceil(log2 n) outputs (2.5 N log2 N FLOPs per block at the FP32 rate, "
                          "ceil(log2 N / 12) passes through memory: ASSUMED for cuFFT), the "
                          "Hartley fold in place, the output copy when the last block is "
                          "partial; five or six launches"}
    return result


def model_errors(rows, gpu_name: str | None) -> dict:
    """Model against measurement on the GPU present: ``model / measured - 1`` per size.

    ``gpu_name`` is the CUDA device's name (:func:`local_gpu_name`); its model is the
    spec whose key it contains (:func:`studies.gpu_model.match_gpu`). Empty without a GPU
    or without a matching spec.
    """
    spec = match_gpu(gpu_name) if gpu_name else None
    if spec is None:
        return {}
    rate = {(r["backend"], r["n"]): r["projections_per_s"] for r in rows}
    result = {"gpu": gpu_name, "model": spec.name}
    for measured, modelled in (("gpu-cupy", f"gpu-model-{spec.key}"),
                               ("structured-cupy", f"structured-model-{spec.key}")):
        errors = {n: (1.0 / rate[modelled, n]) / (1.0 / rate[measured, n]) - 1.0
                  for (backend, n) in rate if backend == measured and (modelled, n) in rate}
        if errors:
            result[measured] = {"model_time_error": errors, "vs": modelled}
    return result


def crossovers(rows) -> dict:
    """Smallest size where the OPU beats each measured backend, and where storage ends."""
    result = {}
    measured = sorted({r["backend"] for r in rows if not r["backend"].startswith("opu")})
    opu = {r["n"]: r["projections_per_s"] for r in rows if r["backend"] == "opu-intensity"}
    for backend in measured:
        mine = sorted((r for r in rows if r["backend"] == backend), key=lambda r: r["n"])
        faster = [r["n"] for r in mine if opu.get(r["n"]) and r["projections_per_s"] < opu[r["n"]]]
        generated = [r["n"] for r in mine if r["storage"] == "generated"]
        result[backend] = {"opu_overtakes_at_n": faster[0] if faster else None,
                           "matrix_stops_fitting_at_n": generated[0] if generated else None}
    return result


def plot_throughput(rows, path, marks: dict) -> None:
    """Projections/s and J/projection against n, log-log."""
    from matplotlib.figure import Figure  # noqa: PLC0415  (Agg canvas, no pyplot state)

    fig = Figure(figsize=(11, 4.2))
    axes = fig.subplots(1, 2)
    for backend in dict.fromkeys(r["backend"] for r in rows):
        mine = [r for r in rows if r["backend"] == backend and r["projections_per_s"]]
        n = [r["n"] for r in mine]
        style, label = ("s--", f"{backend} (MODEL)") if "-model-" in backend else ("o-", backend)
        rates = [r["projections_per_s"] for r in mine]
        if all(r.get("projections_per_s_q25") is not None for r in mine):  # measured: quartiles
            spread = [[rate - r["projections_per_s_q25"] for rate, r in zip(rates, mine)],
                      [r["projections_per_s_q75"] - rate for rate, r in zip(rates, mine)]]
            axes[0].errorbar(n, rates, yerr=spread, fmt=style, label=label, ms=4, capsize=2)
        else:
            axes[0].plot(n, rates, style, label=label, ms=4)
        axes[1].plot(n, [r["joules_per_projection"] for r in mine], style, label=label, ms=4)
    for backend, mark in marks.items():
        if "-model-" in backend or backend.startswith("structured"):
            continue  # marks of the measured dense products only
        if mark["matrix_stops_fitting_at_n"]:
            axes[0].axvline(mark["matrix_stops_fitting_at_n"], ls=":", color="gray",
                            label=f"{backend}: R stops fitting in memory")
            axes[0].text(mark["matrix_stops_fitting_at_n"], axes[0].get_ylim()[0] * 2,
                         f" {backend}: R generated\n beyond memory", fontsize=7)
        if mark["opu_overtakes_at_n"]:
            axes[0].axvline(mark["opu_overtakes_at_n"], ls="--", color="red",
                            label=f"OPU overtakes {backend}")
    for ax, label in zip(axes, ["projections per second", "joules per projection"]):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("n (inputs = outputs)")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def rate_text(row: dict) -> str:
    """``"1.17e+06 (1.1e+06 .. 1.2e+06)"``: the median rate and, measured, its quartiles."""
    if row["projections_per_s"] is None:
        return "-"
    text = f"{row['projections_per_s']:.4g}"
    if row.get("projections_per_s_q25") is not None:
        text += f" ({row['projections_per_s_q25']:.3g} .. {row['projections_per_s_q75']:.3g})"
    return text


def throughput_markdown(rows) -> str:
    """One Markdown table row per backend and size (measured: the quartiles' rates too)."""
    lines = ["| n | backend | projections/s (quartiles) | J/projection | power (W) | R | note |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        energy = "-" if r["joules_per_projection"] is None else f"{r['joules_per_projection']:.3g}"
        lines.append(f"| {r['n']} | {r['backend']} | {rate_text(r)} | {energy} | {r['power_w']} | "
                     f"{r['storage']} | {r['note']} |")
    return "\n".join(lines)


def assumptions_markdown(assumptions: dict) -> str:
    """The models' figures and assumptions as a Markdown list (one item per backend)."""
    lines = []
    for backend, value in assumptions.items():
        if isinstance(value, str):
            lines.append(f"- `{backend}`: {value}")
            continue
        gpu = value["gpu"]
        lines.append(
            f"- `{backend}`: {value['kind']}. {gpu['name']}: peak {value['precision']} "
            f"{value['peak_flops'] / 1e12:.1f} TFLOP/s, {gpu['bandwidth_bytes_per_s'] / 1e12:.2f} "
            f"TB/s, {gpu['memory_bytes'] / 1e9:.0f} GB, {gpu['board_power_w']:.0f} W (source: "
            f"{gpu['source']}). ASSUMED: {value['compute_efficiency']:.0%} of peak FLOP/s, "
            f"{value['bandwidth_efficiency']:.0%} of peak bandwidth, "
            f"{value['launch_s'] * 1e6:.0f} us per launch, TM regeneration at "
            f"{value['generation_entries_per_s']:.3g} entries/s "
            f"({value['generation_instructions_per_entry']:.0f} instructions per entry at the "
            f"INT32 rate), board power while busy."
            + (f" {value['structured']}." if "structured" in value else ""))
    return "\n".join(lines)


def throughput_summary(result: dict) -> list[str]:
    """Human-readable lines: where the SRHT overtakes, the model's errors on a GPU present."""
    lines = []
    for cross in result["structured_vs_dense"].values():
        if not cross["speedup"]:
            continue
        at = cross["faster_from_n"]
        ratios = ", ".join(f"{n}: {r:.3g}x" for n, r in cross["speedup"].items())
        lines.append(f"{cross['structured']} vs {cross['dense']}: "
                     + (f"faster from n = {at} on" if at else "not faster at the largest n")
                     + f" (speed-up {ratios})")
    errors = result["model_vs_measured"]
    for measured in ("gpu-cupy", "structured-cupy"):
        if measured in errors:
            text = ", ".join(f"{n}: {e:+.0%}"
                             for n, e in errors[measured]["model_time_error"].items())
            lines.append(f"{errors[measured]['vs']} (model) vs {measured} (measured on "
                         f"{errors['gpu']}): time error {text}")
    return lines


def throughput_study(sizes, device, *, batch: int = 256, cpu_power_w: float = 25.0,
                     gpu_power_w: float = 700.0, structured: bool = True, gpu_models=(),
                     gpu_precision: str = "fp32", threads: int | None = 1, repeats: int = 5,
                     progress=None) -> dict:
    """The whole study, measured once: rows, marks, crossovers, model errors, assumptions.

    Parameters are those of :func:`throughput_table`. Every page a run writes takes its
    figures from this one result (:func:`write_throughput_page`; the report).
    """
    rows = throughput_table(sizes, device, batch=batch, cpu_power_w=cpu_power_w,
                            gpu_power_w=gpu_power_w, structured=structured,
                            gpu_models=gpu_models, gpu_precision=gpu_precision,
                            threads=threads, repeats=repeats, progress=progress)
    gpu_name = local_gpu_name()
    result = {"rows": rows, "marks": crossovers(rows),
              "assumed_power_w": {"cpu": cpu_power_w, "gpu": gpu_power_w},
              "device": device.name, "batch": batch, "repeats": repeats,
              "cpu_threads": threads, "cpu_clock": _cpu_clock(threads),
              "structured_vs_dense": {
                  "numpy": structured_crossover(rows) if structured else {"speedup": {}}},
              "gpu_present": gpu_name, "model_vs_measured": model_errors(rows, gpu_name),
              "assumptions": model_assumptions(gpu_models, gpu_precision,
                                               cpu_power_w=cpu_power_w,
                                               gpu_power_w=gpu_power_w, batch=batch)}
    if gpu_name and structured:
        result["structured_vs_dense"]["cupy"] = structured_crossover(rows, "structured-cupy",
                                                                     "gpu-cupy")
    return result


def write_throughput_page(result: dict, out, command: str) -> pathlib.Path:
    """``throughput.md``, ``throughput.json`` and ``throughput.png`` of one study into ``out``."""
    from photon.support.jsonio import write_json  # noqa: PLC0415

    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    threads = result.get("cpu_threads")
    text = ["# Throughput: the OPU (modelled) against dense and structured projections", "",
            f"Written by `{command}`; the CPU rows are measured in that run (each the median "
            f"of {result['repeats']} interleaved repeats, with the rates at the quartiles of "
            f"its timings; {'as configured' if threads is None else threads} CPU thread(s), "
            f"{result.get('cpu_clock', 'wall')} clock), the OPU and GPU-model rows are models "
            "(marked so, with their assumptions below).", "",
            throughput_markdown(result["rows"]), "",
            "## Structured against dense, and the GPU models", ""]
    text += [f"- {line}" for line in throughput_summary(result)] or ["- (no structured rows)"]
    text += ["", "## Models, assumptions and sources", "",
             assumptions_markdown(result["assumptions"])]
    (out / "throughput.md").write_text("\n".join(text) + "\n", encoding="utf-8")
    write_json(out / "throughput.json", result)
    plot_throughput(result["rows"], out / "throughput.png", result["marks"])
    return out / "throughput.md"
