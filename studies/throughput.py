"""Throughput study: an OPU as modelled against dense and structured projections.

For each size ``n`` (inputs = outputs), these ways to compute a random projection of a
batch of vectors:

* **OPU** (modelled): one frame per vector in intensity mode, two in linear mode, at the
  device's frame time for ``n`` outputs; energy = wall-plug power x time. Only sizes within the device's
  mirrors and camera pixels run;
* **CPU** (measured): ``X @ R`` with NumPy in float32, ``R`` stored while it fits in
  ``memory_fraction`` of the machine's memory, beyond that generated block by block from
  a counter-based seed (timed on the first blocks and extrapolated to all of them);
* **GPU** (measured, when CuPy sees a device): the same with CuPy;
* **structured** (measured): the subsampled randomized Hartley transform
  (:class:`devices.structured.SRHT`, ``O(n log n)`` per vector, no stored matrix) with
  ``scipy.fft`` on every core here (``structured-numpy``), with CuPy's FFT on a GPU
  (``structured-cupy``);
* **GPU models** (every machine): the roofline model of named GPUs
  (:mod:`studies.gpu_model`) for the dense product (``gpu-model-H100`` ...: ``R`` stored
  while it fits, regenerated on the GPU from its counter-based seed beyond) and for the
  SRHT (``structured-model-H100`` ...). These rows are *models*, labelled so, with
  their figures and assumptions in :func:`model_assumptions`; where a GPU is present,
  :func:`model_errors` compares the model of that GPU with its measurement.

Energy of the CPU and GPU uses an *assumed* power (stated in the results): the
machine's own draw is not measured here.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass

import numpy as np

from photon import cupy_available
from photon.gaussian_matrix import GaussianMatrix

from devices.cost import job_cost
from .gpu_model import Roofline, gpu_spec, match_gpu
from devices.structured import SRHT

__all__ = ["ThroughputPoint", "opu_point", "dense_point", "structured_point", "gpu_model_point",
           "throughput_table", "machine_memory_bytes", "crossovers", "structured_crossover",
           "model_assumptions", "model_errors", "local_gpu_name", "plot_throughput",
           "throughput_markdown", "assumptions_markdown"]


@dataclass(frozen=True)
class ThroughputPoint:
    """Projections per second and joules per projection of one way at one size."""

    backend: str
    n: int
    projections_per_s: float | None
    joules_per_projection: float | None
    power_w: float
    storage: str
    note: str = ""

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
    frame_time = (device.frame_time_for(n) if hasattr(device, "frame_time_for")
                  else device.frame_time_s)
    cost = job_cost(n_vectors, mode=mode, frame_time_s=frame_time,
                    electrical_power_w=device.electrical_power_w)
    return ThroughputPoint(label, n, n_vectors / cost.seconds, cost.joules / n_vectors,
                           device.electrical_power_w, "optical", "modelled from the frame time")


def _synchronize(xp):
    if xp is not np:
        xp.cuda.Device().synchronize()


def dense_point(n: int, xp=np, *, batch: int = 256, power_w: float = 25.0,
                memory_bytes: int | None = None, memory_fraction: float = 0.25,
                block_rows: int = 1024, max_blocks_timed: int = 2, repeats: int = 3,
                seed: int = 0) -> ThroughputPoint:
    """Measured throughput of ``X @ R`` (float32) at size ``n`` on backend ``xp``.

    ``R`` is stored when ``4 n^2`` bytes fit in ``memory_fraction`` of ``memory_bytes``
    (the product timed ``repeats`` times, median kept); otherwise its row blocks are
    generated from a counter-based seed and multiplied one by one, the first
    ``max_blocks_timed`` timed (generation included) and the total extrapolated.
    """
    name = "cpu-numpy" if xp is np else "gpu-cupy"
    if memory_bytes is None:
        memory_bytes = (machine_memory_bytes() if xp is np
                        else xp.cuda.Device().mem_info[1])
    rng = np.random.default_rng(seed)
    x = xp.asarray(rng.standard_normal((batch, n), dtype=np.float32))
    if 4 * n * n <= memory_fraction * memory_bytes:
        generator = np.random.default_rng(seed) if xp is np else xp.random.default_rng(seed)
        matrix = generator.standard_normal((n, n), dtype=np.float32)
        matrix *= np.float32(1.0 / math.sqrt(n))
        (x @ matrix)  # warm-up
        samples = []
        for _ in range(repeats):
            _synchronize(xp)
            start = time.perf_counter()
            (x @ matrix)
            _synchronize(xp)
            samples.append(time.perf_counter() - start)
        del matrix
        seconds = float(np.median(samples))
        storage, note = "stored", f"median of {repeats}"
    else:
        # Real and imaginary parts of an n x n/2 complex Gaussian matrix, side by side, are
        # an n x n real one with variance 1 / n, generated where it is used (CPU or GPU).
        half = (n + 1) // 2
        matrix = GaussianMatrix(seed, (0,), n, half, 2.0 / n)
        blocks = math.ceil(n / block_rows)
        timed = min(blocks, max_blocks_timed)
        out = xp.zeros((batch, n), np.float32)
        start = time.perf_counter()
        for b in range(timed):
            r0, r1 = b * block_rows, min(n, (b + 1) * block_rows)
            block = matrix.side_by_side(r0, r1, 0, half, xp)
            out += x[:, r0:r1] @ block[:, :n]
        _synchronize(xp)
        seconds = (time.perf_counter() - start) * blocks / timed
        storage = "generated"
        note = (f"R of {4 * n * n / 2**30:.1f} GiB does not fit in {memory_fraction:.0%} of "
                f"memory: generated in {blocks} blocks, {timed} timed and extrapolated")
    return ThroughputPoint(name, n, batch / seconds, seconds * power_w / batch, power_w,
                           storage, note)


def structured_point(n: int, xp=np, *, batch: int = 256, power_w: float = 25.0,
                     repeats: int = 3, seed: int = 0, workers: int | None = -1,
                     transform: str = "fft") -> ThroughputPoint:
    """Measured throughput of the SRHT ``x -> P x`` (n -> n, float32) on backend ``xp``.

    The same batch as :func:`dense_point`; the signs and rows (``O(n)`` numbers) are
    drawn before the clock starts, as a stored ``R`` is; the projection is timed
    ``repeats`` times after one warm-up and the median kept. ``workers``: threads of
    ``scipy.fft`` (-1: every core, as the BLAS of the dense product uses).
    """
    name = "structured-numpy" if xp is np else "structured-cupy"
    rng = np.random.default_rng(seed)
    x = xp.asarray(rng.standard_normal((batch, n), dtype=np.float32))
    projection = SRHT(n, n, seed, transform=transform, workers=workers if xp is np else None)
    projection(x)  # warm-up (FFT plans, the tables' copy to the GPU)
    samples = []
    for _ in range(repeats):
        _synchronize(xp)
        start = time.perf_counter()
        projection(x)
        _synchronize(xp)
        samples.append(time.perf_counter() - start)
    seconds = float(np.median(samples))
    where = (f"scipy.fft, workers={workers}" if xp is np else "cupyx.scipy.fft")
    note = (f"SRHT ({transform}: {where}), median of {repeats}; stores "
            f"{projection.describe()['stored_numbers']} numbers, no matrix")
    return ThroughputPoint(name, n, batch / seconds, seconds * power_w / batch, power_w,
                           "none", note)


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
                     gpu_precision: str = "fp32", workers: int | None = -1) -> list[dict]:
    """Rows of ``throughput_table``: every way at every size (see the module notes).

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
    workers
        Threads of ``scipy.fft`` for ``structured-numpy``.
    """
    from photon.support.progress import Progress  # noqa: PLC0415

    use_gpu = cupy_available() if gpu is None else gpu
    models = [Roofline(gpu_spec(name), precision=gpu_precision) for name in gpu_models]
    rows = []
    with Progress(len(sizes), "throughput", enabled=progress, unit="size", min_steps=1) as bar:
        for n in sizes:
            rows.append(opu_point(device, n, "intensity").as_dict())
            rows.append(opu_point(device, n, "linear").as_dict())
            rows.append(dense_point(n, batch=batch, power_w=cpu_power_w).as_dict())
            if structured:
                rows.append(structured_point(n, batch=batch, power_w=cpu_power_w,
                                             workers=workers).as_dict())
            if use_gpu:
                import cupy  # noqa: PLC0415

                rows.append(dense_point(n, cupy, batch=batch, power_w=gpu_power_w).as_dict())
                if structured:
                    rows.append(structured_point(n, cupy, batch=batch,
                                                 power_w=gpu_power_w).as_dict())
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
        axes[0].plot(n, [r["projections_per_s"] for r in mine], style, label=label, ms=4)
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


def throughput_markdown(rows) -> str:
    """One Markdown table row per backend and size."""
    lines = ["| n | backend | projections/s | J/projection | power (W) | R | note |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        rate = "-" if r["projections_per_s"] is None else f"{r['projections_per_s']:.4g}"
        energy = "-" if r["joules_per_projection"] is None else f"{r['joules_per_projection']:.3g}"
        lines.append(f"| {r['n']} | {r['backend']} | {rate} | {energy} | {r['power_w']} | "
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
