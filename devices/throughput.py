"""Throughput study: an OPU as modelled against a dense random projection measured here.

For each size ``n`` (inputs = outputs), three ways to compute a random projection of a
batch of vectors:

* **OPU** (modelled): one frame per vector in intensity mode, two in linear mode, at the
  device's frame time; energy = wall-plug power x time. Only sizes within the device's
  mirrors and camera pixels run;
* **CPU** (measured): ``X @ R`` with NumPy in float32, ``R`` stored while it fits in
  ``memory_fraction`` of the machine's memory, beyond that generated block by block from
  a counter-based seed (timed on the first blocks and extrapolated to all of them);
* **GPU** (measured, when CuPy sees a device): the same with CuPy.

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

from .cost import job_cost

__all__ = ["ThroughputPoint", "opu_point", "dense_point", "throughput_table", "machine_memory_bytes",
           "crossovers", "plot_throughput", "throughput_markdown"]


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
    """Modelled throughput of ``device`` (an :class:`~devices.protocol.OPUDevice`) at size ``n``."""
    label = f"opu-{mode}"
    if n > device.n_in or n > device.n_out:
        return ThroughputPoint(label, n, None, None, device.electrical_power_w, "n/a",
                               f"beyond the device's {device.n_in} inputs / {device.n_out} outputs")
    cost = job_cost(n_vectors, mode=mode, frame_time_s=device.frame_time_s,
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


def throughput_table(sizes, device, *, batch: int = 256, cpu_power_w: float = 25.0,
                     gpu_power_w: float = 700.0, gpu: bool | None = None,
                     progress=None) -> list[dict]:
    """Rows of ``throughput_table``: every way at every size (see the module notes)."""
    from photon.support.progress import Progress  # noqa: PLC0415

    use_gpu = cupy_available() if gpu is None else gpu
    rows = []
    with Progress(len(sizes), "throughput", enabled=progress, unit="size", min_steps=1) as bar:
        for n in sizes:
            rows.append(opu_point(device, n, "intensity").as_dict())
            rows.append(opu_point(device, n, "linear").as_dict())
            rows.append(dense_point(n, batch=batch, power_w=cpu_power_w).as_dict())
            if use_gpu:
                import cupy  # noqa: PLC0415

                rows.append(dense_point(n, cupy, batch=batch, power_w=gpu_power_w).as_dict())
            bar.update()
    return rows


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
        axes[0].plot(n, [r["projections_per_s"] for r in mine], "o-", label=backend)
        axes[1].plot(n, [r["joules_per_projection"] for r in mine], "o-", label=backend)
    for backend, mark in marks.items():
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
        ax.legend(fontsize=8)
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
