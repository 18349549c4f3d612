"""A roofline model of named GPUs: what a dense or structured projection costs on them.

Where no GPU is at hand, the GPU side of the throughput and DFA-step studies is
*modelled*, never measured: every number this module returns is labelled a model and
comes with the figures and assumptions it rests on (:meth:`Roofline.assumptions`).

Model
-----
One operation (a GEMM, an FFT, an elementwise pass) that performs ``F`` floating-point
operations and moves ``M`` bytes between the GPU's memory and its cores takes

    t = max(F / (eta_c * P), M / (eta_m * B)) + t_launch

with ``P`` the datasheet peak of the precision used (FLOP/s), ``B`` the datasheet memory
bandwidth (bytes/s), ``eta_c`` and ``eta_m`` the achievable fractions of them (assumed,
stated) and ``t_launch`` a fixed cost per operation (kernel launch and host dispatch,
assumed). A sequence of operations costs the sum of theirs (no overlap). Energy is
time times the board power (the GPU is assumed to draw its board limit while busy).

A transmission matrix ``R`` that does not fit in the GPU's memory (more than
``memory_fraction`` of it) is regenerated on the GPU block by block from its
counter-based seed (:mod:`photon.counter_rng`): generating ``E`` float32 entries costs
``E * I / R_int`` seconds, with ``I`` instructions per entry (Philox4x32-10 and
Box-Muller, counted below; assumed) issued at the INT32 rate ``R_int``, or the time to
write them, whichever is longer.

Figures
-------
:data:`H100_SXM` and :data:`H200_SXM`: NVIDIA's datasheet figures for the SXM boards
(dense tensor throughput is half of the "with sparsity" figures NVIDIA prints); the
``source`` of each spec names where it comes from.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

from photon.support.arguments import check_choice, check_number

__all__ = ["GPUSpec", "H100_SXM", "H200_SXM", "GPUS", "PRECISIONS", "Roofline", "gpu_spec",
           "match_gpu", "PHILOX_INSTRUCTIONS_PER_ENTRY"]

PRECISIONS = ("fp32", "tf32", "bf16")

#: Instructions per generated float32 entry of the counter-based TM (assumed): one
#: Philox4x32-10 call (10 rounds of two 32x32->64-bit products, i.e. four IMADs, two
#: three-input XORs and two key additions: ~8 instructions, ~80 per call) yields two
#: complex entries, i.e. four float32 numbers; the two Box-Muller transforms take
#: about 170 more (two int->float conversions and scalings, logf ~10, sqrtf ~4, and
#: the accurate sinf/cosf with range reduction ~30 each, per pair). ~250 per call,
#: ~64 per float32 entry.
PHILOX_INSTRUCTIONS_PER_ENTRY = 64.0


@dataclass(frozen=True)
class GPUSpec:
    """Datasheet figures of one GPU board.

    Attributes
    ----------
    name
        Board name.
    key
        Short name used in row labels (``"H100"``).
    fp32_flops
        Peak FP32 throughput without tensor cores (FLOP/s, FMA = 2).
    tf32_flops, bf16_flops
        Peak dense tensor-core throughput in TF32 and bf16 (FLOP/s; without sparsity).
    int32_ops
        Peak INT32 instruction rate (instructions/s).
    bandwidth_bytes_per_s
        Peak memory bandwidth (bytes/s).
    memory_bytes
        Memory size (bytes).
    board_power_w
        Maximum board power (W).
    source
        Where the figures come from.
    """

    name: str
    key: str
    fp32_flops: float
    tf32_flops: float
    bf16_flops: float
    int32_ops: float
    bandwidth_bytes_per_s: float
    memory_bytes: float
    board_power_w: float
    source: str

    def peak_flops(self, precision: str) -> float:
        """Peak FLOP/s of ``precision`` (``"fp32"``, ``"tf32"`` or ``"bf16"``)."""
        check_choice("precision", precision, PRECISIONS)
        peaks = {"fp32": self.fp32_flops, "tf32": self.tf32_flops, "bf16": self.bf16_flops}
        return peaks[precision]

    def as_dict(self) -> dict:
        """Plain-data form."""
        return asdict(self)


_HOPPER_COMPUTE = ("FP32 66.9 TFLOP/s (non-tensor); TF32 tensor 494.7 TFLOP/s dense (989 with "
                   "sparsity); bf16 tensor 989.4 TFLOP/s dense (1979 with sparsity); INT32 33.5 "
                   "Tinstr/s")

H100_SXM = GPUSpec(
    name="NVIDIA H100 SXM5 80 GB", key="H100",
    fp32_flops=66.9e12, tf32_flops=494.7e12, bf16_flops=989.4e12, int32_ops=33.5e12,
    bandwidth_bytes_per_s=3.35e12, memory_bytes=80e9, board_power_w=700.0,
    source=("NVIDIA H100 Tensor Core GPU datasheet, H100 SXM column (nvidia.com/en-us/"
            "data-center/h100): FP32 67 TFLOPS, TF32 989 / BF16 1979 TFLOPS 'with sparsity' "
            "(dense: half), 80 GB HBM3 at 3.35 TB/s, max TDP 700 W; per-precision peaks "
            "(" + _HOPPER_COMPUTE + ") as tabulated from NVIDIA's Hopper figures at "
            "glennklockwood.com/garden/processors/h100"),
)

H200_SXM = GPUSpec(
    name="NVIDIA H200 SXM 141 GB", key="H200",
    fp32_flops=66.9e12, tf32_flops=494.7e12, bf16_flops=989.4e12, int32_ops=33.5e12,
    bandwidth_bytes_per_s=4.8e12, memory_bytes=141e9, board_power_w=700.0,
    source=("NVIDIA H200 Tensor Core GPU datasheet, H200 SXM column (nvidia.com/en-us/"
            "data-center/h200): 141 GB HBM3e at 4.8 TB/s, max TDP up to 700 W; the same GH100 "
            "compute as the H100 SXM (" + _HOPPER_COMPUTE + ")"),
)

GPUS = {spec.key: spec for spec in (H100_SXM, H200_SXM)}


def gpu_spec(name) -> GPUSpec:
    """The spec named ``name`` (``"H100"``, ``"H200"``) or ``name`` itself if a :class:`GPUSpec`."""
    if isinstance(name, GPUSpec):
        return name
    key = str(name).upper()
    if key not in GPUS:
        raise ValueError(f"gpu = {name!r}: expected one of {', '.join(map(repr, GPUS))} or a GPUSpec")
    return GPUS[key]


def match_gpu(device_name: str) -> GPUSpec | None:
    """The spec whose key appears in a CUDA device name (``"NVIDIA H200"`` -> H200), or None."""
    upper = str(device_name).upper()
    for key, spec in GPUS.items():
        if key in upper:
            return spec
    return None


@dataclass(frozen=True)
class Roofline:
    """Time and energy of operations on one GPU, by the roofline model (module notes).

    Parameters
    ----------
    spec
        The GPU (:data:`H100_SXM`, :data:`H200_SXM` or a :class:`GPUSpec`).
    precision
        Precision of the GEMMs: ``"fp32"`` (what a float32 product in CuPy uses unless
        TF32 is enabled), ``"tf32"`` or ``"bf16"``.
    compute_efficiency
        Achievable fraction of the peak FLOP/s of a large GEMM (assumed; cuBLAS reaches
        roughly 0.6-0.8 of the dense peak on large Hopper GEMMs).
    bandwidth_efficiency
        Achievable fraction of the peak bandwidth of a streaming kernel (assumed).
    launch_s
        Fixed cost of one operation: kernel launch and host dispatch (assumed, s).
    generation_instructions_per_entry
        Instructions per float32 entry of a regenerated TM (assumed, see
        :data:`PHILOX_INSTRUCTIONS_PER_ENTRY`).
    """

    spec: GPUSpec = H100_SXM
    precision: str = "fp32"
    compute_efficiency: float = 0.7
    bandwidth_efficiency: float = 0.8
    launch_s: float = 10e-6
    generation_instructions_per_entry: float = PHILOX_INSTRUCTIONS_PER_ENTRY

    def __post_init__(self):
        object.__setattr__(self, "spec", gpu_spec(self.spec))
        self.spec.peak_flops(self.precision)  # validates the precision
        check_number("compute_efficiency", self.compute_efficiency, low=0.0, high=1.0,
                     low_open=True)
        check_number("bandwidth_efficiency", self.bandwidth_efficiency, low=0.0, high=1.0,
                     low_open=True)
        if not (isinstance(self.launch_s, (int, float)) and self.launch_s >= 0):
            raise ValueError(f"launch_s = {self.launch_s!r}: expected a non-negative number of "
                             "seconds")

    # ------------------------------------------------------------------ rates
    @property
    def label(self) -> str:
        """Row label: ``gpu-model-H100`` (a model, never a measurement)."""
        return f"gpu-model-{self.spec.key}"

    @property
    def element_bytes(self) -> int:
        """Bytes of one GEMM operand element: 2 for bf16, 4 for fp32 and TF32 (stored as fp32)."""
        return 2 if self.precision == "bf16" else 4

    @property
    def flops_per_s(self) -> float:
        """Achievable GEMM rate: ``eta_c * P`` (FLOP/s)."""
        return self.compute_efficiency * self.spec.peak_flops(self.precision)

    @property
    def vector_flops_per_s(self) -> float:
        """Achievable non-tensor rate (elementwise, FFT butterflies): ``eta_c * P_fp32``."""
        return self.compute_efficiency * self.spec.fp32_flops

    @property
    def bytes_per_s(self) -> float:
        """Achievable bandwidth: ``eta_m * B`` (bytes/s)."""
        return self.bandwidth_efficiency * self.spec.bandwidth_bytes_per_s

    @property
    def power_w(self) -> float:
        """Power while busy: the board limit (W)."""
        return self.spec.board_power_w

    @property
    def generation_entries_per_s(self) -> float:
        """Float32 TM entries generated per second: ``R_int / I``, capped by writing them."""
        compute = self.spec.int32_ops / self.generation_instructions_per_entry
        return min(compute, self.bytes_per_s / 4.0)

    def with_precision(self, precision: str) -> "Roofline":
        """The same model at another GEMM precision."""
        return replace(self, precision=precision)

    # ------------------------------------------------------------------ operations
    def seconds(self, flops: float, nbytes: float, launches: int = 1, tensor: bool = True) -> float:
        """``max(F / (eta_c P), M / (eta_m B)) + launches t_launch`` (s).

        ``tensor``: the FLOPs run at the GEMM precision's peak; otherwise at FP32's.
        """
        rate = self.flops_per_s if tensor else self.vector_flops_per_s
        return max(flops / rate, nbytes / self.bytes_per_s) + launches * self.launch_s

    def gemm_seconds(self, m: int, k: int, n: int) -> float:
        """One ``(m, k) @ (k, n)`` product: ``2 m k n`` FLOPs, every operand moved once."""
        nbytes = self.element_bytes * (m * k + k * n + m * n)
        return self.seconds(2.0 * m * k * n, nbytes)

    def generation_seconds(self, entries: float) -> float:
        """Regenerating ``entries`` float32 TM entries on the GPU (s), one launch."""
        return entries / self.generation_entries_per_s + self.launch_s

    def dense_projection(self, n_in: int, n_out: int, batch: int, *,
                         memory_fraction: float = 0.25, block_rows: int = 1024) -> dict:
        """Modelled ``X @ R`` for a batch, as :func:`studies.throughput.dense_point` runs it.

        ``R`` (float32, ``n_in x n_out``) is stored while ``4 n_in n_out`` bytes fit in
        ``memory_fraction`` of the GPU's memory; beyond, its row blocks of ``block_rows``
        are generated and multiplied one by one, each product added into the output.

        Returns
        -------
        dict
            ``seconds`` for the batch, ``storage`` (``"stored"`` or ``"generated"``),
            ``blocks``, ``flops``.
        """
        check_number("memory_fraction", memory_fraction, low=0.0, high=1.0, low_open=True)
        flops = 2.0 * batch * n_in * n_out
        if 4.0 * n_in * n_out <= memory_fraction * self.spec.memory_bytes:
            return {"seconds": self.gemm_seconds(batch, n_in, n_out), "storage": "stored",
                    "blocks": 0, "flops": flops}
        blocks = math.ceil(n_in / block_rows)
        seconds = 0.0
        for b in range(blocks):
            rows = min(block_rows, n_in - b * block_rows)
            seconds += self.generation_seconds(rows * 2 * ((n_out + 1) // 2))
            seconds += self.gemm_seconds(batch, rows, n_out)
            seconds += self.seconds(batch * n_out, 12.0 * batch * n_out, tensor=False)  # out +=
        return {"seconds": seconds, "storage": "generated", "blocks": blocks, "flops": flops}

    def structured_projection(self, n_in: int, n_out: int, batch: int) -> dict:
        """Modelled SRHT (:class:`devices.structured.SRHT`) of a batch with cuFFT.

        All ``ceil(n_out / N)`` blocks of ``N = 2^ceil(log2 n_in)`` outputs in one batched
        pass over ``E = batch x blocks x N`` numbers: pad and sign-flip (read ``4 n_in``
        per row, write ``4 E`` twice; two launches), one batched real FFT (``2.5 N log2 N``
        FLOPs per block and row at the FP32 rate; ``8 E`` bytes read and written, times
        ``ceil(log2 N / 12)`` passes through memory: assumed for cuFFT's multi-kernel
        plans beyond 4096 points), the Hartley fold in place (``8 E``, two launches) and,
        when the last block is partial, the copy into the output (``8 n_out`` per row).
        """
        size = 1 << max(0, math.ceil(math.log2(max(1, n_in))))
        blocks = math.ceil(n_out / size)
        total = float(batch) * blocks * size
        passes = max(1, math.ceil(math.log2(size) / 12)) if size > 1 else 1
        fft_flops = 2.5 * size * math.log2(size) * batch * blocks if size > 1 else 0.0
        seconds = (self.seconds(total, 8.0 * total + 4.0 * batch * n_in, launches=2, tensor=False)
                   + self.seconds(fft_flops, passes * 8.0 * total, tensor=False)
                   + self.seconds(total, 8.0 * total, launches=2, tensor=False))
        if n_out % size:
            seconds += self.seconds(0.0, 8.0 * batch * n_out, tensor=False)
        return {"seconds": seconds, "storage": "none", "blocks": blocks, "flops": fft_flops,
                "fft_passes": passes}

    def assumptions(self) -> dict:
        """Every figure and assumption the model's numbers rest on (plain data)."""
        return {
            "kind": "roofline model (not a measurement)",
            "gpu": self.spec.as_dict(),
            "precision": self.precision,
            "peak_flops": self.spec.peak_flops(self.precision),
            "compute_efficiency": self.compute_efficiency,
            "bandwidth_efficiency": self.bandwidth_efficiency,
            "launch_s": self.launch_s,
            "generation_instructions_per_entry": self.generation_instructions_per_entry,
            "generation_entries_per_s": self.generation_entries_per_s,
            "power": "board power while busy (assumed)",
            "formula": "t = max(flops / (compute_efficiency * peak), bytes / "
                       "(bandwidth_efficiency * bandwidth)) + launch_s, summed over operations",
            "assumed": ["compute_efficiency", "bandwidth_efficiency", "launch_s",
                        "generation_instructions_per_entry", "power"],
        }
