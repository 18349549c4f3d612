"""What one training step costs: BP, DFA with feedback on a GPU (dense, structured), or an OPU.

Model
-----
A step (forward, loss, the method's backward, the Adam update) is a list of
operations (:class:`Op`), each with its FLOPs, the array elements it reads and
writes, its transcendental evaluations (exp, tanh) and its kernel launches, counted
from the code of :mod:`dfa_bridge.nn` (MLP: :class:`~dfa_bridge.nn.models.MLP`;
Transformer: :class:`~dfa_bridge.nn.transformer.TransformerLM`). A machine
(:class:`Machine`) turns an operation into seconds by the roofline rule

    t = max(F / R_gemm, bytes / B) + launches * t_launch           (GEMMs)
    t = max(F / R_vec, X / R_exp, bytes / B) + launches * t_launch (everything else)

and the step's time is the sum (no overlap). The options differ only in the backward:

``bp``              ``W_{i+1}^T delta`` chained down the network;
``dfa-dense``       one GEMM ``E B^T`` (tokens x C x S) on the machine, then each layer's
                    local backward (an MLP layer skips its input gradient; a
                    Transformer block keeps its internal backward: "macro" DFA);
``dfa-structured``  the same with the SRHT (:class:`devices.structured.SRHT`) in place
                    of the GEMM: pad and sign-flip the error into ``ceil(S / N)`` blocks
                    of ``N = 2^ceil(log2 C)``, one batched real FFT, the Hartley fold;
``dfa-opu``         the projection on an OPU in linear mode: per error vector, the
                    encoder's binary planes, two frames each, plus two reference frames
                    per block of 1024 input frames (:func:`devices.cost.job_cost`), at the
                    device's frame time for ``S`` outputs (its camera reads only those), times
                    ``ceil(C / n_in) ceil(S / n_out)`` passes when the error or the
                    feedback is wider than the device; the machine encodes the error and
                    decodes the frames (elementwise) and waits for the OPU (sequential).

Energy is the machine's busy time times its power, plus the OPU's seconds times its
wall-plug power and the machine's idle power (it waits).

Units: seconds, joules, FLOPs (an FMA counts 2), bytes.

Machines: :func:`gpu_machine` is the roofline model of a named GPU
(:mod:`studies.gpu_model`, labelled a model); :func:`calibrate_cpu` measures this
CPU's GEMM rate, streaming bandwidth, ``tanh`` rate and per-call overhead (one timing
each, in the same run) so that the model can be checked against steps measured here
(:func:`validate_on_cpu`, where these timings are interleaved with the steps'). Times of models too large for one GPU are GPU-seconds of
work: sharding over ``k`` GPUs divides the time by ``k`` and multiplies the power by
``k`` (communication is not counted); DFA's freedom to run the layers' backward in
parallel is not counted either.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Sequence

import numpy as np

from devices.cost import job_cost
from studies.gpu_model import Roofline, gpu_spec
from photon.support.progress import Progress
from photon.support.arguments import check_int

__all__ = ["OPTIONS", "MLPShape", "TransformerShape", "Op", "Implementation", "HOUSE_NUMPY",
           "FUSED_BF16", "Machine", "OPUSpec", "gpu_machine", "calibrate_cpu", "step_ops",
           "step_cost", "compare_options", "measure_steps", "validate_on_cpu", "GPT3_LADDER",
           "toolkit_shapes", "crossover_grid", "plot_crossover_map", "crossover_markdown",
           "PUBLISHED_CLAIMS", "opu_spec", "encoder_planes", "validation_shapes",
           "mlp_grid", "transformer_grid", "gpt3_shapes", "validate_on_gpu"]

OPTIONS = ("bp", "dfa-dense", "dfa-structured", "dfa-opu")
PHASES = ("forward", "backward", "feedback", "update")


# ---------------------------------------------------------------------------- shapes
@dataclass(frozen=True)
class MLPShape:
    """An MLP ``n_features -> hidden... -> n_classes`` trained on batches of ``batch``.

    Attributes
    ----------
    n_features, hidden, n_classes, batch
        Widths and batch (samples per step).
    name
        Label in tables.
    """

    n_features: int
    hidden: tuple
    n_classes: int
    batch: int
    name: str = "mlp"

    def __post_init__(self):
        check_int("n_features", self.n_features)
        check_int("n_classes", self.n_classes)
        check_int("batch", self.batch)
        hidden = tuple(check_int("hidden width", w) for w in self.hidden)
        if not hidden:
            raise ValueError(f"hidden = {self.hidden!r}: expected one or more hidden widths")
        object.__setattr__(self, "hidden", hidden)

    family = "mlp"

    @property
    def widths(self) -> tuple:
        """``(n_0, .., n_N)``: features, hidden widths, classes."""
        return (self.n_features, *self.hidden, self.n_classes)

    @property
    def parameters(self) -> int:
        """Weights and biases."""
        w = self.widths
        return sum(a * b + b for a, b in zip(w[:-1], w[1:]))

    @property
    def samples(self) -> int:
        """Error vectors per step (the batch)."""
        return self.batch

    @property
    def error_width(self) -> int:
        """``C``: width of the error (classes)."""
        return self.n_classes

    @property
    def feedback_width(self) -> int:
        """``S``: outputs of the feedback projection (sum of the hidden widths)."""
        return sum(self.hidden)

    def describe(self) -> dict:
        """Plain-data form."""
        return {"family": "mlp", **asdict(self), "hidden": list(self.hidden),
                "parameters": self.parameters}


@dataclass(frozen=True)
class TransformerShape:
    """A decoder-only Transformer (:class:`~dfa_bridge.nn.transformer.TransformerLM`).

    Attributes
    ----------
    vocab, width, n_blocks, heads, context
        ``V``, ``D``, ``L``, ``H``, ``T``.
    tokens
        Tokens per step (batch x context).
    feedback_mode
        ``"shared"`` (one projection onto ``D``, every block gets it) or ``"sliced"``
        (onto ``L D``).
    name
        Label in tables.
    """

    vocab: int
    width: int
    n_blocks: int
    heads: int
    context: int
    tokens: int
    feedback_mode: str = "shared"
    name: str = "transformer"

    def __post_init__(self):
        for key in ("vocab", "width", "n_blocks", "heads", "context", "tokens"):
            check_int(key, getattr(self, key))
        if self.feedback_mode not in ("shared", "sliced"):
            raise ValueError(f"feedback_mode = {self.feedback_mode!r}: expected 'shared' or "
                             "'sliced'")

    family = "transformer"

    @property
    def parameters(self) -> int:
        """Embeddings, blocks (``12 D^2 + 13 D`` each), final norm, untied head."""
        d, v = self.width, self.vocab
        return v * d + self.context * d + self.n_blocks * (12 * d * d + 13 * d) + 2 * d + d * v + v

    @property
    def samples(self) -> int:
        """Error vectors per step (tokens)."""
        return self.tokens

    @property
    def error_width(self) -> int:
        """``C``: the vocabulary."""
        return self.vocab

    @property
    def feedback_width(self) -> int:
        """``S``: ``D`` (shared) or ``L D`` (sliced)."""
        return self.width * (self.n_blocks if self.feedback_mode == "sliced" else 1)

    def describe(self) -> dict:
        """Plain-data form."""
        return {"family": "transformer", **asdict(self), "parameters": self.parameters}


#: GPT-3 model family (Brown et al., "Language Models are Few-Shot Learners", 2020,
#: table 2.1): name, layers, d_model, heads, batch in tokens; vocabulary 50257 (the
#: GPT-2 BPE), context 2048. Kept as printed, quirks included (XL: 24 heads of 128 for
#: d_model 2048; 13B: d_model 5140); the heads enter the cost only through the
#: attention scores' size.
GPT3_LADDER = (("GPT-3 Small", 12, 768, 12, 500_000), ("GPT-3 Medium", 24, 1024, 16, 500_000),
               ("GPT-3 Large", 24, 1536, 16, 500_000), ("GPT-3 XL", 24, 2048, 24, 1_000_000),
               ("GPT-3 2.7B", 32, 2560, 32, 1_000_000), ("GPT-3 6.7B", 32, 4096, 32, 2_000_000),
               ("GPT-3 13B", 40, 5140, 40, 2_000_000), ("GPT-3 175B", 96, 12288, 96, 3_200_000))
GPT3_VOCAB, GPT3_CONTEXT = 50257, 2048


def toolkit_shapes() -> dict:
    """This toolkit's own sizes: the digits MLP, the benchmark MLP, the character Transformer."""
    return {"digits MLP": MLPShape(64, (256, 256), 10, 32, "digits MLP"),
            "benchmark MLP": MLPShape(784, (1024,) * 4, 10, 256, "benchmark MLP"),
            "char Transformer": TransformerShape(96, 128, 4, 4, 64, 16 * 64, "shared",
                                                 "char Transformer")}


def gpt3_shapes(feedback_mode: str = "shared", vocab: int = GPT3_VOCAB) -> list:
    """The GPT-3 ladder as :class:`TransformerShape` (tokens per step in whole sequences)."""
    shapes = []
    for name, layers, width, heads, tokens in GPT3_LADDER:
        sequences = max(1, round(tokens / GPT3_CONTEXT))
        shapes.append(TransformerShape(vocab, width, layers, heads, GPT3_CONTEXT,
                                       sequences * GPT3_CONTEXT, feedback_mode, name))
    return shapes


# ---------------------------------------------------------------------------- operations
@dataclass(frozen=True)
class Op:
    """One operation of a step, ``count`` times.

    Attributes
    ----------
    name
        What it is (``"linear 2 dW"``).
    phase
        ``"forward"``, ``"backward"``, ``"feedback"`` or ``"update"``.
    kind
        ``"gemm"`` (its FLOPs run at the GEMM rate) or ``"elementwise"``.
    flops
        Floating-point operations (FMA = 2).
    elements
        Array elements read plus written (bytes: times the implementation's element
        size), unless ``nbytes`` is given.
    transcendentals
        exp / tanh / log evaluations.
    launches
        Kernel launches (NumPy calls).
    count
        Repetitions (e.g. once per block).
    nbytes
        Bytes moved, when not ``elements`` times the element size (the optimizer's state).
    """

    name: str
    phase: str
    kind: str = "elementwise"
    flops: float = 0.0
    elements: float = 0.0
    transcendentals: float = 0.0
    launches: float = 1.0
    count: int = 1
    nbytes: float | None = None


def _gemm(name, phase, m, k, n, count=1) -> Op:
    """``(m, k) @ (k, n)``."""
    return Op(name, phase, "gemm", 2.0 * m * k * n, float(m * k + k * n + m * n), 0.0, 1.0, count)


def _pass(name, phase, elements, launches=1.0, transcendentals=0.0, flops=None, count=1) -> Op:
    """An elementwise pass over ``elements`` elements (reads + writes)."""
    return Op(name, phase, "elementwise", float(elements / 2 if flops is None else flops),
              float(elements), float(transcendentals), float(launches), count)


@dataclass(frozen=True)
class Implementation:
    """How the operations are coded: element size, optimizer traffic, fusion.

    Attributes
    ----------
    name
        Label.
    element_bytes
        Bytes of an activation or weight element in the GEMMs and elementwise passes.
    adam_bytes_per_parameter
        Bytes the Adam update moves per parameter.
    adam_launches_per_tensor
        Launches of the Adam update per parameter tensor.
    elementwise_traffic
        Multiplier on the elementwise traffic counted from the NumPy code (fused
        kernels move less).
    flash_attention
        The attention scores stay on chip (no ``tokens x heads x context`` traffic).
    """

    name: str
    element_bytes: int
    adam_bytes_per_parameter: float
    adam_launches_per_tensor: float
    elementwise_traffic: float = 1.0
    flash_attention: bool = False


#: The NumPy code of :mod:`dfa_bridge.nn` in float32: Adam reads and writes 29 elements
#: per parameter in 12 calls (:class:`dfa_bridge.nn.optim.Adam`).
HOUSE_NUMPY = Implementation("house NumPy, float32", 4, 116.0, 12.0, 1.0, False)

#: A tuned mixed-precision GPU code (ASSUMED): bf16 activations and weights, fp32
#: master weights and moments with a fused multi-tensor Adam (read master, m, v, bf16
#: grad, write master, m, v, bf16 weight: 28 bytes per parameter), fused elementwise
#: kernels moving half the NumPy code's traffic, flash attention.
FUSED_BF16 = Implementation("fused mixed precision (bf16, fp32 Adam)", 2, 28.0, 0.01, 0.5, True)


def _mlp_forward(shape: MLPShape) -> list:
    w, b, ops = shape.widths, shape.batch, []
    layers = len(w) - 1
    for i in range(1, layers + 1):
        ops.append(_gemm(f"linear {i}", "forward", b, w[i - 1], w[i]))
        ops.append(_pass(f"bias {i}", "forward", 2 * b * w[i] + w[i]))
        if i < layers:
            ops.append(_pass(f"tanh {i}", "forward", 2 * b * w[i], 1, b * w[i]))
    c = shape.n_classes
    ops.append(_pass("softmax cross-entropy", "forward", 14 * b * c, 10, 2 * b * c))
    return ops


def _mlp_backward(shape: MLPShape, input_grads: bool) -> list:
    """Backward of every layer: tanh', dW, db, and dX when ``input_grads`` (BP, not layer 1)."""
    w, b, ops = shape.widths, shape.batch, []
    layers = len(w) - 1
    for i in range(layers, 0, -1):
        if i < layers:
            ops.append(_pass(f"tanh' {i}", "backward", 7 * b * w[i], 3))
        ops.append(_gemm(f"linear {i} dW", "backward", w[i], b, w[i - 1]))
        ops.append(_pass(f"linear {i} db", "backward", b * w[i] + w[i]))
        if input_grads and i > 1:
            ops.append(_gemm(f"linear {i} dX", "backward", b, w[i], w[i - 1]))
    return ops


def _parameter_tensors(shape) -> list:
    if shape.family == "mlp":
        w = shape.widths
        return [t for a, b in zip(w[:-1], w[1:]) for t in (a * b, b)]
    d, v, f = shape.width, shape.vocab, 4 * shape.width
    block = [d, d, 3 * d * d, 3 * d, d * d, d, d, d, f * d, f, d * f, d]
    return [v * d, shape.context * d] + block * shape.n_blocks + [d, d, v * d, v]


def _update(shape, impl: Implementation) -> list:
    tensors = _parameter_tensors(shape)
    total = float(sum(tensors))
    return [Op("adam", "update", "elementwise", 12.0 * total, 0.0, 0.0,
               impl.adam_launches_per_tensor * len(tensors), 1,
               impl.adam_bytes_per_parameter * total)]


def _transformer_forward(s: TransformerShape, impl: Implementation) -> list:
    n, d, h, t, v, f, L = s.tokens, s.width, s.heads, s.context, s.vocab, 4 * s.width, s.n_blocks
    scores = 0.0 if impl.flash_attention else n * h * t  # elements of the score tensor
    ln = dict(elements=12 * n * d, launches=8)
    ops = [_pass("embedding + position", "forward", 5 * n * d, 2)]
    ops += [
        _pass("layer norm 1", "forward", count=L, **ln),
        _gemm("qkv", "forward", n, d, 3 * d, L),
        _pass("qkv bias + head split", "forward", 6 * n * d + 6 * n * d, 2, count=L),
        Op("scores Q K^T", "forward", "gemm", 2.0 * n * t * d, 2 * n * d + scores, 0, 1, L),
        _pass("softmax of scores", "forward", 16 * scores, 9, n * h * t,
              flops=8.0 * n * h * t, count=L),
        Op("A V", "forward", "gemm", 2.0 * n * t * d, scores + 2 * n * d, 0, 1, L),
        _pass("merge heads", "forward", 2 * n * d, 1, count=L),
        _gemm("attention out", "forward", n, d, d, L),
        _pass("out bias + residual", "forward", 5 * n * d, 2, count=L),
        _pass("layer norm 2", "forward", count=L, **ln),
        _gemm("ffn 1", "forward", n, d, f, L),
        _pass("ffn 1 bias", "forward", 2 * n * f, 1, count=L),
        _pass("gelu", "forward", 22 * n * f, 9, n * f, count=L),
        _gemm("ffn 2", "forward", n, f, d, L),
        _pass("ffn 2 bias + residual", "forward", 5 * n * d, 2, count=L),
        _pass("final layer norm", "forward", **ln),
        _gemm("head", "forward", n, d, v),
        _pass("head bias", "forward", 2 * n * v, 1),
        _pass("softmax cross-entropy", "forward", 14 * n * v, 10, 2 * n * v),
    ]
    return ops


def _transformer_block_backward(s: TransformerShape, impl: Implementation) -> list:
    n, d, h, t, f, L = s.tokens, s.width, s.heads, s.context, 4 * s.width, s.n_blocks
    scores = 0.0 if impl.flash_attention else n * h * t
    ln_back = dict(elements=22 * n * d, launches=11)
    return [
        _gemm("ffn 2 dW", "backward", d, n, f, L), _pass("ffn 2 db", "backward", n * d, 1, count=L),
        _gemm("ffn 2 dX", "backward", n, d, f, L),
        _pass("gelu'", "backward", 33 * n * f, 13, count=L),
        _gemm("ffn 1 dW", "backward", f, n, d, L), _pass("ffn 1 db", "backward", n * f, 1, count=L),
        _gemm("ffn 1 dX", "backward", n, f, d, L),
        _pass("layer norm 2'", "backward", count=L, **ln_back),
        _pass("residual", "backward", 3 * n * d, 1, count=L),
        _gemm("attention out dW", "backward", d, n, d, L),
        _pass("attention out db", "backward", n * d, 1, count=L),
        _gemm("attention out dX", "backward", n, d, d, L),
        _pass("split heads", "backward", 2 * n * d, 1, count=L),
        Op("dV = A^T G", "backward", "gemm", 2.0 * n * t * d, scores + 2 * n * d, 0, 1, L),
        Op("dA = G V^T", "backward", "gemm", 2.0 * n * t * d, scores + 2 * n * d, 0, 1, L),
        _pass("softmax'", "backward", 11 * scores, 5, flops=5.0 * n * h * t, count=L),
        Op("dQ = dS K", "backward", "gemm", 2.0 * n * t * d, scores + 2 * n * d, 0, 1, L),
        Op("dK = dS^T Q", "backward", "gemm", 2.0 * n * t * d, scores + 2 * n * d, 0, 1, L),
        _pass("stack dQ dK dV", "backward", 12 * n * d, 2, count=L),
        _gemm("qkv dW", "backward", 3 * d, n, d, L),
        _pass("qkv db", "backward", 3 * n * d, 1, count=L),
        _gemm("qkv dX", "backward", n, 3 * d, d, L),
        _pass("layer norm 1'", "backward", count=L, **ln_back),
        _pass("residual", "backward", 3 * n * d, 1, count=L),
    ]


def _transformer_head_backward(s: TransformerShape) -> list:
    n, d, v = s.tokens, s.width, s.vocab
    return [_gemm("head dW", "backward", v, n, d), _pass("head db", "backward", n * v, 1),
            _gemm("head dX", "backward", n, v, d),
            _pass("final layer norm'", "backward", 22 * n * d, 11)]


def _transformer_embedding_backward(s: TransformerShape) -> list:
    n, d = s.tokens, s.width
    return [_pass("position + embedding'", "backward", 6 * n * d, 3)]


def _scale_elementwise(ops, impl: Implementation) -> list:
    if impl.elementwise_traffic == 1.0:
        return ops
    return [replace(op, elements=op.elements * impl.elementwise_traffic)
            if op.kind == "elementwise" and op.nbytes is None else op for op in ops]


def _structured_feedback_ops(samples: int, c: int, s: int) -> list:
    """The SRHT of :class:`devices.structured.SRHT` from ``C`` to ``S`` on ``samples`` errors.

    All ``ceil(S / N)`` blocks in one batched pass over ``E = samples x blocks x N``
    numbers: pad and sign-flip (``E`` written twice, the errors read), one batched real
    FFT (``2.5 N log2 N`` FLOPs per block and error; ``E`` read, ``E`` written as
    complex halves), the Hartley fold in place (``2 E``), the copy of the blocks into
    the output when the last one is partial (``2 samples S``), the per-layer scale.
    """
    size = 1 << max(0, math.ceil(math.log2(c))) if c > 1 else 1
    blocks = math.ceil(s / size)
    total = float(samples) * blocks * size
    fft_flops = 2.5 * size * math.log2(size) if size > 1 else 0.0
    ops = [Op("srht pad + sign flip", "feedback", "elementwise", total,
              2.0 * total + samples * c, 0, 2),
           Op("srht real FFT", "feedback", "elementwise", samples * blocks * fft_flops,
              2.0 * total + 2.0 * samples * blocks, 0, 1),
           Op("srht Hartley fold", "feedback", "elementwise", total, 2.0 * total, 0, 2)]
    if s % size:
        ops.append(_pass("srht output copy", "feedback", 2 * samples * s, 2))
    ops.append(_pass("feedback scale", "feedback", 2 * samples * s + s))
    return ops


def _feedback_ops(shape, option: str, planes: int) -> list:
    b, c, s = shape.samples, shape.error_width, shape.feedback_width
    if option == "dfa-dense":
        return [_gemm("feedback E B^T", "feedback", b, c, s)]
    if option == "dfa-structured":
        return _structured_feedback_ops(b, c, s)
    if option == "dfa-opu":  # the machine's share: encode the error, decode the frames
        return [_pass("encode error planes", "feedback", (2 + planes) * b * c, 4),
                _pass("decode frames", "feedback", (4 * planes + 2) * b * s, 6),
                _pass("feedback scale", "feedback", 2 * b * s + s)]
    return []


def step_ops(shape, option: str, implementation: Implementation = HOUSE_NUMPY,
             planes: int = 2) -> list:
    """The operations of one training step of ``shape`` with ``option`` on the machine.

    Parameters
    ----------
    shape
        :class:`MLPShape` or :class:`TransformerShape`.
    option
        One of :data:`OPTIONS`.
    implementation
        How the code runs (:data:`HOUSE_NUMPY` for the NumPy code measured here).
    planes
        Binary planes per error vector (``dfa-opu``: the encoder's).

    Returns
    -------
    list of Op
        Forward, backward, feedback (machine side only for ``dfa-opu``) and update.
    """
    if option not in OPTIONS:
        raise ValueError(f"option = {option!r}: expected one of {', '.join(OPTIONS)}")
    dfa = option != "bp"
    if shape.family == "mlp":
        ops = _mlp_forward(shape) + _mlp_backward(shape, input_grads=not dfa)
    elif shape.family == "transformer":
        ops = _transformer_forward(shape, implementation) + _transformer_head_backward(shape)
        ops += _transformer_block_backward(shape, implementation)
        if dfa:  # the final norm's input gradient brings each block's B e into the stream
            ops.append(_pass("final layer norm' of B e", "backward",
                             17 * shape.tokens * shape.width, 8, count=shape.n_blocks))
        ops += _transformer_embedding_backward(shape)
    else:
        raise TypeError(f"shape = {shape!r}: expected an MLPShape or a TransformerShape")
    if dfa:
        ops += _feedback_ops(shape, option, planes)
    ops += _update(shape, implementation)
    return _scale_elementwise(ops, implementation)


# ---------------------------------------------------------------------------- machines
@dataclass(frozen=True)
class Machine:
    """A roofline of the machine that runs the network: rates, overhead, power.

    Attributes
    ----------
    name
        Label (``"gpu-model-H100 (bf16)"``, ``"this CPU (calibrated)"``).
    kind
        ``"model"`` (datasheet figures and assumptions) or ``"calibrated"`` (rates
        measured here).
    gemm_flops_per_s, vector_flops_per_s
        GEMM and non-GEMM arithmetic rates (FLOP/s).
    bytes_per_s
        Memory bandwidth (bytes/s).
    transcendentals_per_s
        exp / tanh evaluations per second.
    launch_s
        Fixed cost per launch (s).
    power_w, idle_power_w
        Power while busy and while waiting for an OPU (W).
    implementation
        How the code runs on it.
    assumptions
        Figures, sources and assumptions behind the rates (plain data).
    """

    name: str
    kind: str
    gemm_flops_per_s: float
    vector_flops_per_s: float
    bytes_per_s: float
    transcendentals_per_s: float
    launch_s: float
    power_w: float
    idle_power_w: float
    implementation: Implementation = HOUSE_NUMPY
    assumptions: dict = field(default_factory=dict)

    def op_seconds(self, op: Op) -> float:
        """Seconds of ``op`` (all ``count`` repetitions) by the roofline rule (module notes)."""
        nbytes = (op.nbytes if op.nbytes is not None
                  else op.elements * self.implementation.element_bytes)
        if op.kind == "gemm":
            busy = max(op.flops / self.gemm_flops_per_s, nbytes / self.bytes_per_s)
        else:
            busy = max(op.flops / self.vector_flops_per_s,
                       op.transcendentals / self.transcendentals_per_s, nbytes / self.bytes_per_s)
        return op.count * (busy + op.launches * self.launch_s)

    def describe(self) -> dict:
        """Plain-data form."""
        return {**asdict(self), "implementation": asdict(self.implementation)}


def gpu_machine(gpu="H100", precision: str = "bf16", *, compute_efficiency: float = 0.7,
                bandwidth_efficiency: float = 0.8, launch_s: float = 10e-6,
                idle_power_w: float = 100.0,
                implementation: Implementation = FUSED_BF16) -> Machine:
    """The roofline model of a named GPU (:mod:`studies.gpu_model`) as a step machine: a MODEL.

    GEMMs run at ``compute_efficiency`` of the ``precision``'s dense peak, everything
    else at that fraction of the FP32 peak; transcendentals at the special-function
    units' rate, ASSUMED 16 results per SM per clock against 128 FP32 lanes (the order
    of the CUDA C++ Programming Guide's arithmetic-throughput table; not re-checked
    here), i.e. 1/16 of the FP32 FLOP rate; ``idle_power_w`` is ASSUMED (no datasheet
    figure).
    """
    roofline = Roofline(gpu_spec(gpu), precision=precision, compute_efficiency=compute_efficiency,
                        bandwidth_efficiency=bandwidth_efficiency, launch_s=launch_s)
    assumptions = {**roofline.assumptions(), "idle_power_w": idle_power_w,
                   "transcendentals": "ASSUMED 1/16 of the FP32 FLOP rate (16 special-function "
                                      "results per SM per clock vs 128 FP32 lanes, the order of "
                                      "the CUDA C++ Programming Guide's throughput table; not "
                                      "re-checked)",
                   "implementation": asdict(implementation),
                   "scale": "GPU-seconds of work: a model larger than one GPU is sharded "
                            "(time / k, power x k), communication not counted",
                   "assumed": roofline.assumptions()["assumed"] + [
                       "idle_power_w", "implementation", "transcendentals"]}
    return Machine(f"gpu-model-{roofline.spec.key} ({precision})", "model", roofline.flops_per_s,
                   roofline.vector_flops_per_s, roofline.bytes_per_s,
                   roofline.vector_flops_per_s / 16.0, launch_s, roofline.power_w, idle_power_w,
                   implementation, assumptions)


def _median_seconds(function, repeats: int) -> float:
    function()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


_TINY_CALLS = 100


def _calibration_probes(width: int = 1024, batch: int = 256, seed: int = 0) -> tuple[dict, dict]:
    """Callables timing one GEMM, one streaming pass, one tanh, tiny calls; and their sizes."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, width), dtype=np.float32)
    w = rng.standard_normal((width, width), dtype=np.float32)
    a, b = np.ones(width * width, np.float32), np.full(width * width, 1e-3, np.float32)
    out = np.empty_like(x)
    tiny = np.zeros(8, np.float32)

    def many_tiny():
        for _ in range(_TINY_CALLS):
            np.add(tiny, tiny, out=tiny)

    probes = {"calibration gemm": lambda: x @ w,
              "calibration stream": lambda: np.add(a, b, out=a),
              "calibration tanh": lambda: np.tanh(x, out=out),
              "calibration tiny calls": many_tiny}
    return probes, {"width": width, "batch": batch, "stream_elements": a.size,
                    "tanh_elements": x.size}


def _machine_from_medians(medians: dict, sizes: dict, power_w: float,
                          blas_threads: int | None) -> Machine:
    batch, width = sizes["batch"], sizes["width"]
    gemm_s, stream_s = medians["calibration gemm"], medians["calibration stream"]
    tanh_s, launch_s = medians["calibration tanh"], medians["calibration tiny calls"] / _TINY_CALLS
    bandwidth = 12.0 * sizes["stream_elements"] / stream_s
    measured = {
        "gemm": f"(batch {batch}, {width}) @ ({width}, {width}) float32: {gemm_s * 1e3:.3f} ms",
        "stream": f"a += b over {sizes['stream_elements']} float32: {stream_s * 1e3:.3f} ms",
        "tanh": f"tanh over {sizes['tanh_elements']} float32: {tanh_s * 1e3:.3f} ms",
        "launch": f"one tiny NumPy call: {launch_s * 1e6:.2f} us",
        "blas_threads": "as configured" if blas_threads is None else blas_threads,
        "power_w": f"ASSUMED {power_w} W",
        "kind": "rates measured here, in this run (medians)"}
    return Machine("this CPU (calibrated)", "calibrated", 2.0 * batch * width * width / gemm_s,
                   bandwidth / 4.0, bandwidth, sizes["tanh_elements"] / tanh_s, launch_s, power_w,
                   0.2 * power_w, HOUSE_NUMPY, measured)


def _blas_limit(threads: int | None):
    """A context limiting the BLAS to ``threads`` (threadpoolctl, if installed), or a no-op."""
    import contextlib  # noqa: PLC0415

    if threads is None:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits  # noqa: PLC0415  (scikit-learn's dependency)
    except ImportError:  # pragma: no cover - scikit-learn brings it
        return contextlib.nullcontext()
    return threadpool_limits(limits=int(threads), user_api="blas")


def calibrate_cpu(width: int = 1024, batch: int = 256, repeats: int = 7,
                  power_w: float = 25.0, seed: int = 0, blas_threads: int | None = None) -> Machine:
    """This CPU's roofline, measured now: one GEMM, one streaming pass, one tanh, tiny calls.

    Parameters
    ----------
    width, batch
        The calibration GEMM is ``(batch, width) @ (width, width)`` float32; the
        streaming pass ``a += b`` runs over ``width^2`` floats (a weight matrix's size);
        ``tanh`` over ``batch x width``; the per-call overhead is that of a NumPy call
        on 8 floats.
    repeats
        Timings per calibration (median kept).
    power_w
        ASSUMED power of the busy CPU (W).
    seed
        Seed of the operands.
    blas_threads
        Limit the BLAS to this many threads while timing (None: as configured).

    Returns
    -------
    Machine
        ``kind = "calibrated"``, running :data:`HOUSE_NUMPY`.
    """
    probes, sizes = _calibration_probes(width, batch, seed)
    with _blas_limit(blas_threads):
        medians = {name: _median_seconds(probe, repeats) for name, probe in probes.items()}
    return _machine_from_medians(medians, sizes, power_w, blas_threads)


# ---------------------------------------------------------------------------- OPU
@dataclass(frozen=True)
class OPUSpec:
    """What the step model needs of an OPU: size, frame time, power (from a device).

    Attributes
    ----------
    name, n_in, n_out
        The device's name, inputs and outputs.
    frame_time_s
        Seconds per frame reading all ``n_out`` outputs.
    electrical_power_w
        Wall-plug power (W).
    frame_times
        ``((outputs, seconds), ...)`` sorted by outputs: the frame time when only that
        many outputs are read (a camera region of interest), sampled at powers of two;
        empty when the frame time does not depend on it.
    """

    name: str
    n_in: int
    n_out: int
    frame_time_s: float
    electrical_power_w: float
    frame_times: tuple = ()

    def frame_time_for(self, n_out: int) -> float:
        """Seconds per frame reading ``n_out`` outputs: the sample at the next larger size."""
        for outputs, seconds in self.frame_times:
            if outputs >= n_out:
                return seconds
        return self.frame_time_s


def opu_spec(device) -> OPUSpec:
    """The :class:`OPUSpec` of an :class:`devices.OPUDevice` (or of a preset, opened and closed)."""
    if isinstance(device, OPUSpec):
        return device
    if isinstance(device, str):
        from devices import open_device  # noqa: PLC0415

        with open_device(device) as opened:
            return opu_spec(opened)
    n_out = int(device.n_out)
    frame_times = ()
    if hasattr(device, "frame_time_for"):
        sizes = sorted({min(n_out, 2 ** e) for e in range(n_out.bit_length() + 1)} | {n_out})
        frame_times = tuple((n, float(device.frame_time_for(n))) for n in sizes)
    return OPUSpec(device.name, int(device.n_in), n_out, float(device.frame_time_s),
                   float(device.electrical_power_w), frame_times)


def encoder_planes(encoder: str = "ternary", n_bits: int = 4) -> int:
    """Binary planes per error vector of the encoders (ternary: 2; bit planes: 2 n_bits)."""
    if encoder == "ternary":
        return 2
    if encoder == "bitplanes":
        return 2 * int(n_bits)
    raise ValueError(f"encoder = {encoder!r}: expected 'ternary' or 'bitplanes'")


def _opu_job(shape, opu: OPUSpec, planes: int) -> dict:
    passes = math.ceil(shape.error_width / opu.n_in) * math.ceil(shape.feedback_width / opu.n_out)
    frame_time = opu.frame_time_for(min(shape.feedback_width, opu.n_out))
    cost = job_cost(shape.samples, mode="linear", frame_time_s=frame_time,
                    electrical_power_w=opu.electrical_power_w, planes_per_vector=planes,
                    batch_size=1024)
    return {"frames": cost.frames * passes, "passes": passes, "seconds": cost.seconds * passes,
            "frame_time_s": frame_time,
            "joules": cost.joules * passes, "frames_per_vector": cost.frames_per_vector,
            "reference_frames": cost.reference_frames * passes}


# ---------------------------------------------------------------------------- cost
def step_cost(shape, option: str, machine: Machine, opu: OPUSpec | None = None,
              planes: int = 2) -> dict:
    """Seconds and joules of one training step (module notes).

    Parameters
    ----------
    shape
        :class:`MLPShape` or :class:`TransformerShape`.
    option
        One of :data:`OPTIONS`.
    machine
        Where the network runs (:func:`gpu_machine`, :func:`calibrate_cpu`).
    opu
        The OPU of ``dfa-opu`` (:func:`opu_spec`).
    planes
        Binary planes per error vector (:func:`encoder_planes`).

    Returns
    -------
    dict
        ``seconds``, ``joules``, ``machine_seconds`` and ``flops`` per phase, the OPU's
        ``frames``, ``opu_seconds`` and ``opu_joules`` (``dfa-opu``), the machine.
    """
    if option == "dfa-opu" and opu is None:
        raise ValueError("opu = None: expected an OPUSpec (see opu_spec) for option 'dfa-opu'")
    ops = step_ops(shape, option, machine.implementation, planes)
    seconds = {phase: 0.0 for phase in PHASES}
    flops = {phase: 0.0 for phase in PHASES}
    for op in ops:
        seconds[op.phase] += machine.op_seconds(op)
        flops[op.phase] += op.count * op.flops
    busy = sum(seconds.values())
    result = {"option": option, "shape": shape.name, "machine": machine.name,
              "machine_kind": machine.kind, "machine_seconds": seconds, "flops": flops,
              "gemm_flops": sum(op.count * op.flops for op in ops if op.kind == "gemm"),
              "frames": 0, "opu_seconds": 0.0, "opu_joules": 0.0}
    total, joules = busy, busy * machine.power_w
    if option == "dfa-opu":
        job = _opu_job(shape, opu, planes)
        result.update(frames=job["frames"], opu_seconds=job["seconds"], opu_joules=job["joules"],
                      opu_passes=job["passes"], opu=opu.name, frame_time_s=job["frame_time_s"])
        total += job["seconds"]
        joules += job["joules"] + job["seconds"] * machine.idle_power_w
    result["seconds"], result["joules"] = total, joules
    return result


def compare_options(shape, machine: Machine, opu: OPUSpec | None, planes: int = 2,
                    options: Sequence[str] = OPTIONS) -> dict:
    """:func:`step_cost` of every option, the fastest and the most frugal one.

    Also, for ``dfa-opu``, the break-even frame time against each other option: the
    OPU frame time below which ``dfa-opu`` would take less time per step than it
    (``(t_other - t_machine) / frames``; None when the machine's share alone already
    takes longer: no frame rate would do).
    """
    costs = {o: step_cost(shape, o, machine, opu, planes) for o in options
             if o != "dfa-opu" or opu is not None}
    fastest = min(costs, key=lambda o: costs[o]["seconds"])
    frugal = min(costs, key=lambda o: costs[o]["joules"])
    result = {"shape": shape.describe(), "costs": costs, "fastest": fastest,
              "most_frugal": frugal}
    if "dfa-opu" in costs:
        opu_cost = costs["dfa-opu"]
        machine_s = sum(opu_cost["machine_seconds"].values())
        frames = opu_cost["frames"]
        result["break_even_frame_time_s"] = {
            other: ((costs[other]["seconds"] - machine_s) / frames
                    if costs[other]["seconds"] > machine_s else None)
            for other in costs if other != "dfa-opu"}
    return result


# ---------------------------------------------------------------------------- measured here
def _trainers(shape, options, seed: int, xp=np):
    """Twin models, one trainer per option (same weights), and the batch, on backend ``xp``."""
    from dfa_bridge.nn.models import MLP  # noqa: PLC0415
    from dfa_bridge.nn.transformer import TransformerLM  # noqa: PLC0415
    from dfa_bridge.training.feedback import IdealFeedback  # noqa: PLC0415
    from dfa_bridge.training.language import LanguageTrainer  # noqa: PLC0415
    from dfa_bridge.training.structured_feedback import StructuredFeedback  # noqa: PLC0415
    from dfa_bridge.training.trainer import Trainer  # noqa: PLC0415

    rng = np.random.default_rng(seed)
    widths = ((shape.width,) * shape.n_blocks if shape.family == "transformer"
              and shape.feedback_mode == "sliced" else
              (shape.width,) if shape.family == "transformer" else shape.hidden)
    feedback = {"bp": None,
                "dfa-dense": IdealFeedback(widths, shape.error_width, seed=seed + 1),
                "dfa-structured": StructuredFeedback(widths, shape.error_width, seed=seed + 1)}
    trainers = {}
    for option in options:
        if option not in feedback:
            raise ValueError(f"option = {option!r}: expected one of {', '.join(feedback)} (the "
                             "options measured here)")
        method = "bp" if option == "bp" else "dfa"
        if shape.family == "mlp":
            model = MLP(shape.n_features, shape.n_classes, shape.hidden, seed=seed).to(xp)
            trainers[option] = Trainer(model, method, feedback[option])
        else:
            model = TransformerLM(shape.vocab, shape.context, shape.width, shape.heads,
                                  shape.n_blocks, seed=seed).to(xp)
            trainers[option] = LanguageTrainer(model, method, feedback[option],
                                               feedback_mode=shape.feedback_mode)
    if shape.family == "mlp":
        batch = (rng.standard_normal((shape.batch, shape.n_features), dtype=np.float32),
                 rng.integers(0, shape.n_classes, shape.batch))
    else:
        sequences = max(1, shape.tokens // shape.context)
        tokens = rng.integers(0, shape.vocab, (sequences, shape.context + 1))
        batch = (tokens[:, :-1], tokens[:, 1:])
    return trainers, tuple(xp.asarray(a) for a in batch)


def measure_steps(shape, options: Sequence[str] = ("bp", "dfa-dense", "dfa-structured"),
                  repeats: int = 7, warmup: int = 2, seed: int = 0, probes: dict | None = None,
                  blas_threads: int | None = None, backend: str = "numpy",
                  clock: str = "wall") -> dict:
    """Median seconds of one training step per option, measured here with NumPy.

    The options run on twin models (same weights, same batch), interleaved and in a
    rotating order every repeat so that drifting machine load hits them alike. A step
    is the trainer's ``step``: forward, loss, the method's backward, Adam.

    Parameters
    ----------
    shape
        :class:`MLPShape` or :class:`TransformerShape`.
    options
        Among ``bp``, ``dfa-dense`` (Gaussian feedback), ``dfa-structured``.
    repeats, warmup
        Timed and untimed steps per option.
    seed
        Seed of the weights, feedback and batch.
    probes
        More callables (name -> function) timed in the same rotation, e.g. the CPU's
        calibration (:func:`validate_on_cpu`); their medians are returned too.
    blas_threads
        Limit the BLAS to this many threads (None: as configured).
    backend
        ``"numpy"`` or ``"cupy"`` (each timing then ends with a device synchronization).
    clock
        ``"wall"`` (elapsed time) or ``"cpu"`` (the process's CPU time: what the step
        costs the cores it runs on, whatever else the machine runs meanwhile; NumPy
        only).
    """
    from photon.support.arrays import backend_module  # noqa: PLC0415

    xp = backend_module(backend)
    if clock not in ("wall", "cpu") or (clock == "cpu" and xp is not np):
        raise ValueError(f"clock = {clock!r}: expected 'wall', or 'cpu' with backend 'numpy'")
    now = time.perf_counter if clock == "wall" else time.process_time
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats = {repeats!r}, warmup = {warmup!r}: expected repeats >= 1 "
                         "and warmup >= 0")
    trainers, (x, y) = _trainers(shape, options, seed, xp)
    synchronize = (lambda: None) if xp is np else xp.cuda.get_current_stream().synchronize
    functions = {option: (lambda t=trainer: t.step(x, y)) for option, trainer in trainers.items()}
    functions.update(probes or {})
    with _blas_limit(blas_threads):
        for function in functions.values():
            for _ in range(warmup):
                function()
        samples = {name: [] for name in functions}
        order = list(functions)
        for repeat in range(repeats):
            for name in order[repeat % len(order):] + order[:repeat % len(order)]:
                synchronize()
                start = now()
                functions[name]()
                synchronize()
                samples[name].append(now() - start)
    return {name: statistics.median(values) for name, values in samples.items()}


def validation_shapes() -> list:
    """Shapes whose steps take milliseconds here: big enough to time, small enough to be quick."""
    return [MLPShape(784, (512,) * 3, 10, 128, "MLP 784-512x3-10, batch 128"),
            MLPShape(784, (1024,) * 4, 10, 256, "MLP 784-1024x4-10, batch 256"),
            MLPShape(784, (2048,) * 2, 1000, 256, "MLP 784-2048x2-1000, batch 256"),
            TransformerShape(96, 128, 4, 4, 64, 16 * 64, "shared",
                             "Transformer D128 L4 T64, 1024 tok"),
            TransformerShape(512, 256, 2, 4, 128, 8 * 128, "sliced",
                             "Transformer D256 L2 T128 V512 sliced, 1024 tok")]


def validate_on_cpu(shapes=None, options: Sequence[str] = ("bp", "dfa-dense", "dfa-structured"),
                    repeats: int = 7, blas_threads: int | None = 1, clock: str = "cpu",
                    power_w: float = 25.0, progress: bool | None = None) -> dict:
    """The step model on this CPU against steps measured here: ``model / measured - 1``.

    For each shape, the CPU's rates (:func:`calibrate_cpu`'s one GEMM, one streaming
    pass, one ``tanh``, tiny calls) are timed in the same interleaved rotation as the
    steps (:func:`measure_steps`), so that both see the same machine load; the model's
    step time on that calibrated machine is compared with the measured median.

    Parameters
    ----------
    shapes
        Shapes to measure (default :func:`validation_shapes`).
    options
        Options measured (``bp``, ``dfa-dense``, ``dfa-structured``).
    repeats
        Timed steps per option and shape.
    blas_threads
        BLAS threads while timing (default 1: on a small shared machine a second
        process stalls a multi-threaded GEMM's helper thread for whole time slices,
        which no roofline models; None: as configured).
    clock
        ``"cpu"`` (default: the process's CPU time, which other processes sharing the
        cores do not inflate; with one BLAS thread it is the step's compute time) or
        ``"wall"``.
    power_w
        ASSUMED CPU power (W).
    progress
        Progress bar (None: for two shapes or more).

    Returns
    -------
    dict
        ``rows`` (shape, option, measured and modelled seconds, relative error, the
        shape's calibrated GEMM rate), ``machines`` (per shape), ``max_abs_error``.
    """
    shapes = validation_shapes() if shapes is None else list(shapes)
    rows, machines = [], {}
    with Progress(len(shapes), "step model vs measured", enabled=progress, unit="shape",
                  min_steps=2) as bar:
        for shape in shapes:
            probes, sizes = _calibration_probes()
            measured = measure_steps(shape, options, repeats=repeats, probes=probes,
                                     blas_threads=blas_threads, clock=clock)
            machine = _machine_from_medians(measured, sizes, power_w, blas_threads)
            machines[shape.name] = machine.describe()
            for option in options:
                model = step_cost(shape, option, machine)["seconds"]
                rows.append({"shape": shape.name, "family": shape.family, "option": option,
                             "measured_s": measured[option], "model_s": model,
                             "error": model / measured[option] - 1.0,
                             "gemm_flops_per_s": machine.gemm_flops_per_s})
            bar.update()
    return {"rows": rows, "machines": machines,
            "max_abs_error": max(abs(r["error"]) for r in rows),
            "blas_threads": blas_threads, "clock": clock, "repeats": repeats}


def validate_on_gpu(shapes=None, options: Sequence[str] = ("bp", "dfa-dense", "dfa-structured"),
                    repeats: int = 7, gpu_name: str | None = None,
                    progress: bool | None = None) -> dict:
    """The GPU model against steps measured with CuPy on the GPU present (needs one).

    The model is :func:`gpu_machine` of the spec whose name the CUDA device's contains
    (:func:`studies.gpu_model.match_gpu`), in fp32 with the house code's traffic
    (:data:`HOUSE_NUMPY`: the same layers run on CuPy, float32, no TF32): ``model /
    measured - 1`` per shape and option. Without a matching spec, the measurements
    alone.
    """
    from studies.gpu_model import match_gpu  # noqa: PLC0415
    from studies.throughput import local_gpu_name  # noqa: PLC0415

    gpu_name = gpu_name or local_gpu_name()
    if gpu_name is None:
        raise RuntimeError("validate_on_gpu: no GPU (CuPy sees no CUDA device): expected one")
    spec = match_gpu(gpu_name)
    house_cupy = replace(HOUSE_NUMPY, name="house CuPy, float32")
    machine = gpu_machine(spec, "fp32", implementation=house_cupy) if spec else None
    shapes = validation_shapes() if shapes is None else list(shapes)
    rows = []
    with Progress(len(shapes), "GPU step model vs measured", enabled=progress, unit="shape",
                  min_steps=2) as bar:
        for shape in shapes:
            measured = measure_steps(shape, options, repeats=repeats, backend="cupy")
            for option in options:
                row = {"shape": shape.name, "family": shape.family, "option": option,
                       "measured_s": measured[option]}
                if machine is not None:
                    row["model_s"] = step_cost(shape, option, machine)["seconds"]
                    row["error"] = row["model_s"] / row["measured_s"] - 1.0
                rows.append(row)
            bar.update()
    errors = [abs(r["error"]) for r in rows if "error" in r]
    return {"gpu": gpu_name, "model": machine.describe() if machine else None, "rows": rows,
            "max_abs_error": max(errors) if errors else None}


# ---------------------------------------------------------------------------- crossover map
#: Published claims the study weighs (as quoted in the issue; the second is a secondary source).
PUBLISHED_CLAIMS = [
    {"claim": "an OPU at 1,500 TeraOPS under 30 W with inputs up to ~1e6",
     "source": "a published claim, as quoted in the issue (not verified here)"},
    {"claim": "optical DFA beats backpropagation in wall-clock time only at about 2.7 billion "
              "parameters",
     "source": "a secondary source, as quoted in the issue (not verified here)"},
]


def mlp_grid(widths=None, classes=None, depth: int = 4, batch: int = 1024, n_features: int = 784):
    """MLP shapes on a (width, classes) grid: ``depth`` hidden layers of ``width``."""
    widths = [2 ** e for e in range(8, 18)] if widths is None else list(widths)
    classes = [10, 100, 1000, 10_000, 100_000, 1_000_000] if classes is None else list(classes)
    return widths, classes, [[MLPShape(n_features, (w,) * depth, c, batch, f"MLP w{w} c{c}")
                              for w in widths] for c in classes]


def transformer_grid(vocabs=None, feedback_mode: str = "sliced"):
    """The char Transformer and the GPT-3 ladder on a (model, vocabulary) grid."""
    char = toolkit_shapes()["char Transformer"]
    vocabs = [96, 1024, 8192, GPT3_VOCAB, 262_144, 1_048_576] if vocabs is None else list(vocabs)
    models = [replace(char, feedback_mode=feedback_mode)] + gpt3_shapes(feedback_mode)
    names = [m.name for m in models]
    return names, vocabs, [[replace(m, vocab=v) for m in models] for v in vocabs]


def crossover_grid(machine: Machine, opu: OPUSpec, planes: int = 2, progress=None,
                   mlp_batch: int = 1024) -> dict:
    """Winners in time and in energy over the MLP and Transformer grids (plain data).

    MLP: 784 inputs, four hidden layers of each width, ``mlp_batch`` samples per step,
    against the number of classes; Transformer: the char model and the GPT-3 ladder
    (their own tokens per step, sliced feedback) against the vocabulary.
    """
    grids = {"mlp": mlp_grid(batch=mlp_batch), "transformer": transformer_grid()}
    result = {}
    total = sum(len(g[1]) * len(g[0]) for g in grids.values())
    with Progress(total, "crossover map", enabled=progress, unit="shape", min_steps=200) as bar:
        for family, (xs, ys, shapes) in grids.items():
            cells = []
            for row in shapes:
                cells.append([])
                for shape in row:
                    compared = compare_options(shape, machine, opu, planes)
                    costs = compared["costs"]
                    cells[-1].append({
                        "fastest": compared["fastest"], "most_frugal": compared["most_frugal"],
                        "seconds": {o: c["seconds"] for o, c in costs.items()},
                        "joules": {o: c["joules"] for o, c in costs.items()},
                        "parameters": shape.parameters})
                    bar.update()
            result[family] = {"x": xs, "y": ys, "cells": cells,
                              "x_label": (f"hidden width (4 layers, batch {mlp_batch})"
                                          if family == "mlp" else "model (sliced feedback)"),
                              "y_label": "classes" if family == "mlp" else "vocabulary"}
    return result


_COLOURS = {"bp": "#4C72B0", "dfa-dense": "#DD8452", "dfa-structured": "#55A868",
            "dfa-opu": "#C44E52"}


def plot_crossover_map(grid: dict, path, title: str = "") -> None:
    """Winner maps (time, energy) for each family, with where the OPU beats dense GPU feedback.

    Each cell is coloured by the option with the least time (left) or energy (right);
    the hatched cells are those where ``dfa-opu`` beats ``dfa-dense`` (the OPU against a
    dense feedback GEMM on the GPU).
    """
    from matplotlib.colors import ListedColormap  # noqa: PLC0415
    from matplotlib.figure import Figure  # noqa: PLC0415  (Agg canvas, no pyplot state)
    from matplotlib.patches import Patch  # noqa: PLC0415

    index = {o: i for i, o in enumerate(OPTIONS)}
    cmap = ListedColormap([_COLOURS[o] for o in OPTIONS])
    fig = Figure(figsize=(12, 8.5))
    axes = fig.subplots(2, 2)
    for r, (family, data) in enumerate(grid.items()):
        for c, (key, metric, label) in enumerate((("fastest", "seconds", "time"),
                                                  ("most_frugal", "joules", "energy"))):
            ax = axes[r][c]
            winners = np.array([[index[cell[key]] for cell in row] for row in data["cells"]])
            ax.imshow(winners, cmap=cmap, vmin=-0.5, vmax=len(OPTIONS) - 0.5, origin="lower",
                      aspect="auto")
            for i, row in enumerate(data["cells"]):
                for j, cell in enumerate(row):
                    values = cell[metric]
                    if "dfa-opu" in values and values["dfa-opu"] < values["dfa-dense"]:
                        ax.add_patch(_hatch(j, i))
                    ratio = values[cell[key]] / values["bp"]
                    ax.text(j, i, f"{ratio:.2f}", ha="center", va="center", fontsize=6,
                            color="white")
            ax.set_xticks(range(len(data["x"])))
            ax.set_xticklabels([str(x).replace("GPT-3 ", "") for x in data["x"]], rotation=45,
                               fontsize=7, ha="right")
            ax.set_yticks(range(len(data["y"])))
            ax.set_yticklabels([f"{y:,}" for y in data["y"]], fontsize=7)
            ax.set_xlabel(data["x_label"])
            ax.set_ylabel(data["y_label"])
            ax.set_title(f"{family}: least {label} per step (number: winner / bp)", fontsize=9)
    handles = [Patch(color=_COLOURS[o], label=o) for o in OPTIONS]
    handles.append(Patch(facecolor="none", hatch="///", edgecolor="black",
                         label="dfa-opu beats dfa-dense"))
    fig.legend(handles=handles, loc="lower center", ncol=5, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0.05, 1, 0.96))
    fig.savefig(path, dpi=110)


def _hatch(j, i):
    from matplotlib.patches import Rectangle  # noqa: PLC0415

    return Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, hatch="///", edgecolor="black",
                     linewidth=0)


def _fmt_s(seconds: float) -> str:
    return f"{seconds:.3g}"


def crossover_markdown(ladder: list, machine: Machine) -> str:
    """Markdown table of :func:`compare_options` results (one row per shape)."""
    lines = [f"Machine: **{machine.name}** ({machine.kind.upper()}). Seconds and joules per step.",
             "",
             "| shape | parameters | C | S | samples/step | " +
             " | ".join(f"{o} s" for o in OPTIONS) + " | " +
             " | ".join(f"{o} J" for o in OPTIONS) + " | OPU frames | fastest | least energy |",
             "|" + "---|" * (7 + 2 * len(OPTIONS) + 1)]
    for entry in ladder:
        shape, costs = entry["shape"], entry["costs"]
        c = shape.get("vocab", shape.get("n_classes"))
        s = (shape["width"] * (shape["n_blocks"] if shape.get("feedback_mode") == "sliced" else 1)
             if shape["family"] == "transformer" else sum(shape["hidden"]))
        samples = shape.get("tokens", shape.get("batch"))
        secs = " | ".join(_fmt_s(costs[o]["seconds"]) if o in costs else "-" for o in OPTIONS)
        joules = " | ".join(_fmt_s(costs[o]["joules"]) if o in costs else "-" for o in OPTIONS)
        frames = costs.get("dfa-opu", {}).get("frames", "-")
        lines.append(f"| {shape['name']} | {shape['parameters']:.3g} | {c} | {s} | {samples} | "
                     f"{secs} | {joules} | {frames} | {entry['fastest']} | "
                     f"{entry['most_frugal']} |")
    return "\n".join(lines)
