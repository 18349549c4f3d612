"""What one training step costs: BP, DFA with feedback on a GPU (dense, structured), or an OPU.

Model
-----
A step (forward, loss, the method's backward, the Adam update) is a list of
operations (:class:`Op`), each with its FLOPs, the array elements it reads and
writes, its transcendental evaluations (exp, tanh) and its kernel launches, counted
from the code of :mod:`dfa_bridge.nn` (MLP: :class:`~dfa_bridge.nn.models.MLP`;
Transformer: :class:`~dfa_bridge.nn.transformer.TransformerLM`). A machine
(:class:`Machine`) turns an operation into seconds by the roofline rule

    t = max(F / R_gemm(d), bytes / B) + launches * t_launch        (GEMMs)
    t = max(F / R_vec, X / R_exp, bytes / B) + launches * t_launch (everything else)

with ``R_gemm(d) = R_gemm d / (d + d_half)`` for a GEMM whose smallest dimension is ``d``,
``B`` the bandwidth for what one launch moves (a cache: faster for small arrays), plus
the structured projection's fixed cost per call and per short row of its strided
passes; ``d_half``, the cache and those costs are measured on this CPU
(:mod:`studies.step_validation`) and absent (0: full rate, one bandwidth) on a
modelled GPU.

The options differ only in the backward:

``bp``              ``W_{i+1}^T delta`` chained down the network;
``dfa-dense``       one GEMM ``E B^T`` (tokens x C x S) on the machine, then each layer's
                    local backward (an MLP layer skips its input gradient; a
                    Transformer block keeps its internal backward: "macro" DFA, or
                    with a ``micro-*`` feedback mode one signal per layer inside the
                    block: "micro" DFA, a wider projection and a shorter local backward);
``dfa-structured``  the same with the SRHT (:class:`devices.structured.SRHT`) in place
                    of the GEMM: pad and sign-flip the error into ``ceil(S / N)`` blocks
                    of ``N = 2^ceil(log2 C)``, one batched real FFT, the Hartley fold;
``dfa-opu``         the projection on an OPU in linear mode: per error vector, the
                    encoder's binary planes, two frames each, plus two reference frames
                    per block of 1024 input frames (:func:`devices.cost.job_cost`), at the
                    device's frame time for the ``S`` outputs it reads (its camera's
                    read-out model for exactly those rows), times ``ceil(C / n_in)
                    ceil(S / n_out)`` passes when the error or the feedback is wider than
                    the device; the machine encodes the error and decodes the frames.

Schedules
---------
How the operations follow one another (:data:`SCHEDULES`); every result names its own.
With ``M`` the machine's busy seconds and ``O`` the OPU's seconds per step:

``sequential``      everything in turn: ``M + O`` (the machine waits for the OPU).
``overlapped``      the OPU projects step ``t``'s error while the machine runs step
                    ``t + 1`` (forward, its own error, then the local updates of step
                    ``t``): a pipeline of period ``max(M, O)``. The feedback reaching the
                    layers is one step stale; its cost in accuracy is measured, not
                    assumed (:mod:`studies.dfa_variants`). Options without an OPU run
                    the projection on the machine itself: nothing to overlap, the same
                    as sequential.
``layer-parallel``  one machine per layer (per block: a pipeline split, each with the
                    machine's rates; communication not counted). The forward runs in
                    turn; BP's backward is a chain (each layer passes ``W^T delta``
                    down, its own ``dW`` and update run beside the chain); DFA's local
                    updates all start once the error is projected, so its backward
                    costs the slowest layer's, not the sum.

Each schedule's step time is ``max(c, a + O)``: ``c`` the part the OPU cannot delay,
``a`` the machine's work the OPU time adds to (:func:`step_cost` returns both), which
the inverse design (:mod:`studies.step_inverse`) solves for the frame time that ties
another option.

Energy is the machine's busy time times its power, plus the OPU's seconds times its
wall-plug power, plus the machines' idle power while they wait for the OPU
(sequential: ``O``; overlapped: ``max(0, O - M)``; layer-parallel: ``O`` for every
machine).

Units: seconds, joules, FLOPs (an FMA counts 2), bytes.

Machines: :func:`gpu_machine` is the roofline model of a named GPU
(:mod:`studies.gpu_model`, labelled a model); :func:`studies.step_validation.calibrate_cpu`
measures this CPU so that the model can be checked against steps measured here
(:mod:`studies.step_validation`). Times of models too large for one GPU are GPU-seconds
of work: sharding over ``k`` GPUs divides the time by ``k`` and multiplies the power by
``k`` (communication is not counted).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Callable, Sequence

import numpy as np

from devices.cost import job_cost
from photon.support.arguments import check_choice, check_int
from photon.support.progress import Progress
from studies.gpu_model import Roofline, gpu_spec

__all__ = ["OPTIONS", "SCHEDULES", "PHASES", "FEEDBACK_MODES", "MLPShape", "TransformerShape",
           "Op", "Implementation", "HOUSE_NUMPY", "FUSED_BF16", "Machine", "OPUSpec",
           "gpu_machine", "step_ops", "scale_op", "step_cost", "compare_options",
           "GPT3_LADDER", "toolkit_shapes", "crossover_grid", "plot_crossover_map",
           "crossover_markdown", "PUBLISHED_CLAIMS", "opu_spec", "encoder_planes",
           "mlp_grid", "transformer_grid", "gpt3_shapes"]

OPTIONS = ("bp", "dfa-dense", "dfa-structured", "dfa-opu")
SCHEDULES = ("sequential", "overlapped", "layer-parallel")
PHASES = ("forward", "backward", "feedback", "update")

#: The Transformer's feedback modes (as :data:`dfa_bridge.training.trainer.FEEDBACK_MODES`):
#: where the projection enters ("macro": each block's output; "micro": three points per
#: block) and whether every block shares one signal.
FEEDBACK_MODES = {"shared": ("macro", True), "sliced": ("macro", False),
                  "micro-shared": ("micro", True), "micro-sliced": ("micro", False)}



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
        return {"family": self.family, **asdict(self), "hidden": list(self.hidden),
                "parameters": self.parameters, "error_width": self.error_width,
                "feedback_width": self.feedback_width}


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
        One of :data:`FEEDBACK_MODES`: ``"shared"`` (one projection onto ``D``, every
        block gets it), ``"sliced"`` (onto ``L D``), ``"micro-shared"`` (onto ``D + 4 D``:
        the stream signal for both stream points of every block, the feed-forward hidden
        signal for every block) or ``"micro-sliced"`` (onto ``6 L D``: each block's three
        points their own).
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
        check_choice("feedback_mode", self.feedback_mode, FEEDBACK_MODES)

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
        """``S``: ``D`` (shared), ``L D`` (sliced), ``5 D`` (micro-shared) or ``6 L D``
        (micro-sliced)."""
        points, shared = FEEDBACK_MODES[self.feedback_mode]
        per_block = 6 if points == "micro" else 1
        return (5 * self.width if points == "micro" else self.width) if shared else \
            per_block * self.width * self.n_blocks

    @property
    def dfa_points(self) -> str:
        """``"macro"`` (feedback at each block's output) or ``"micro"`` (every layer)."""
        return FEEDBACK_MODES[self.feedback_mode][0]

    @property
    def shared_feedback(self) -> bool:
        """Every block gets the same signals (one projection onto the widths of one block)."""
        return FEEDBACK_MODES[self.feedback_mode][1]

    def describe(self) -> dict:
        """Plain-data form."""
        return {"family": self.family, **asdict(self), "parameters": self.parameters,
                "error_width": self.error_width, "feedback_width": self.feedback_width}


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
    lane
        Where it runs in the layer-parallel schedule: None (the forward, in turn),
        ``"head"`` (the last layer), ``"layer i"`` (hidden layer ``i``), ``"blocks"``
        (one in each Transformer block: ``count`` spread over them), ``"embedding"``,
        ``"feedback"`` (the projection and what prepares its signals).
    chain
        On backpropagation's chain: the next layer down waits for it (its input
        gradient and what leads to it); the others (``dW``, ``db``, the update) run
        beside the chain.
    dims
        A GEMM's ``(m, k, n)`` (one product of a batched one), which sets its
        efficiency on a machine with a ``gemm_half_dim`` (:class:`Machine`).
    rows
        Short rows its strided passes walk (the transforms of a batched FFT), each at
        the machine's ``row_s``.
    call
        A named call (``"srht"``) whose fixed cost the machine may have measured
        (:attr:`Machine.call_s`), paid once per repetition.
    weight
        A multiplier on its cost (1; :func:`scale_op` changes it).
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
    lane: str | None = None
    chain: bool = False
    dims: tuple = ()
    rows: float = 0.0
    call: str | None = None
    weight: float = 1.0


def _gemm(name, phase, m, k, n, count=1, lane=None, chain=False) -> Op:
    """``(m, k) @ (k, n)``."""
    return Op(name, phase, "gemm", 2.0 * m * k * n, float(m * k + k * n + m * n), 0.0, 1.0, count,
              None, lane, chain, (m, k, n))


def _pass(name, phase, elements, launches=1.0, transcendentals=0.0, flops=None, count=1,
          lane=None, chain=False) -> Op:
    """An elementwise pass over ``elements`` elements (reads + writes)."""
    return Op(name, phase, "elementwise", float(elements / 2 if flops is None else flops),
              float(elements), float(transcendentals), float(launches), count, None, lane, chain)


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


def _mlp_lane(shape: MLPShape, layer: int) -> str:
    return "head" if layer == len(shape.widths) - 1 else f"layer {layer}"


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


def _mlp_backward(shape: MLPShape, bp: bool) -> list:
    """Every layer's backward: tanh', dW, db, and (BP, not layer 1) dX, on its own lane.

    Under BP the activation derivative and the input gradient are the chain; under DFA
    every hidden layer's backward starts from its own ``B_i e`` (nothing chains).
    """
    w, b, ops = shape.widths, shape.batch, []
    layers = len(w) - 1
    for i in range(layers, 0, -1):
        lane = _mlp_lane(shape, i)
        if i < layers:
            ops.append(_pass(f"tanh' {i}", "backward", 7 * b * w[i], 3, lane=lane, chain=bp))
        ops.append(_gemm(f"linear {i} dW", "backward", w[i], b, w[i - 1], lane=lane))
        ops.append(_pass(f"linear {i} db", "backward", b * w[i] + w[i], lane=lane))
        if bp and i > 1:
            ops.append(_gemm(f"linear {i} dX", "backward", b, w[i], w[i - 1], lane=lane,
                             chain=True))
    return ops


def _parameter_tensors(shape) -> list:
    """``(lane, count, [tensor sizes])`` of the parameters, grouped by where they update."""
    if isinstance(shape, MLPShape):
        w = shape.widths
        return [(_mlp_lane(shape, i), 1, [w[i - 1] * w[i], w[i]]) for i in range(1, len(w))]
    d, v, f = shape.width, shape.vocab, 4 * shape.width
    block = [d, d, 3 * d * d, 3 * d, d * d, d, d, d, f * d, f, d * f, d]
    return [("embedding", 1, [v * d, shape.context * d]), ("blocks", shape.n_blocks, block),
            ("head", 1, [d, d, v * d, v])]


def _update(shape, impl: Implementation) -> list:
    """Adam, one op per lane and tensor size (each lane updates its own parameters)."""
    ops = []
    for lane, count, tensors in _parameter_tensors(shape):
        for size in sorted(set(tensors)):
            alike = tensors.count(size)
            ops.append(Op("adam", "update", "elementwise", 12.0 * size, 0.0, 0.0,
                          impl.adam_launches_per_tensor, count * alike,
                          impl.adam_bytes_per_parameter * size, lane))
    return ops


def _transformer_forward(s: TransformerShape, impl: Implementation) -> list:
    n, d, h, t, v, f, L = s.tokens, s.width, s.heads, s.context, s.vocab, 4 * s.width, s.n_blocks
    scores = 0.0 if impl.flash_attention else n * h * t  # elements of the score tensor
    ln = dict(elements=12 * n * d, launches=8)
    ops = [_pass("embedding + position", "forward", 5 * n * d, 2)]
    ops += [
        _pass("layer norm 1", "forward", count=L, **ln),
        _gemm("qkv", "forward", n, d, 3 * d, L),
        _pass("qkv bias + head split", "forward", 6 * n * d + 6 * n * d, 2, count=L),
        Op("scores Q K^T", "forward", "gemm", 2.0 * n * t * d, 2 * n * d + scores, 0, 1, L,
           dims=(t, d // h, t)),
        _pass("softmax of scores", "forward", 16 * scores, 9, n * h * t,
              flops=8.0 * n * h * t, count=L),
        Op("A V", "forward", "gemm", 2.0 * n * t * d, scores + 2 * n * d, 0, 1, L,
           dims=(t, t, d // h)),
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


#: Elements and launches of a layer norm's backward: all of it (``dgamma``, ``dbeta``,
#: the input gradient) or its parameters' gradients alone.
_LN_BACK = dict(elements=22, launches=11)
_LN_PARAMS = dict(elements=5, launches=3)


def _transformer_block_backward(s: TransformerShape, impl: Implementation, method: str) -> list:
    """One block's backward, ``count = L`` on lane ``"blocks"``, for ``method``.

    ``"bp"``: everything, the input gradient chained to the block below; ``"macro"``
    (DFA from the block output): the same local backward, ``LN1`` only for its
    parameters (the block's input gradient is block 0's alone, see
    :func:`_transformer_dfa_extras`); ``"micro"``: the feed-forward's down map from the
    output signal (no input gradient), the up map and ``LN2`` (parameters only) from
    the hidden signal, the attention and ``LN1`` (parameters only) from the signal
    after the attention sublayer.
    """
    n, d, h, t, f, L = s.tokens, s.width, s.heads, s.context, 4 * s.width, s.n_blocks
    scores = 0.0 if impl.flash_attention else n * h * t
    bp = method == "bp"

    def g(name, m, k, nn, chain=True):
        return _gemm(name, "backward", m, k, nn, L, "blocks", bp and chain)

    def p(name, per_token_and_width, launches, chain=True):
        return _pass(name, "backward", per_token_and_width * n * d, launches, count=L,
                     lane="blocks", chain=bp and chain)

    def attention_op(name, dims):
        return Op(name, "backward", "gemm", 2.0 * n * t * d, scores + 2 * n * d, 0, 1, L, None,
                  "blocks", bp, dims)

    ffn = [g("ffn 2 dW", d, n, f, False), p("ffn 2 db", 1, 1, False)]
    if method != "micro":
        ffn.append(g("ffn 2 dX", n, d, f))
    ffn += [_pass("gelu'", "backward", 33 * n * f, 13, count=L, lane="blocks", chain=bp),
            g("ffn 1 dW", f, n, d, False), _pass("ffn 1 db", "backward", n * f, 1, count=L,
                                                 lane="blocks"),
            g("ffn 1 dX", n, f, d)]
    if method == "micro":
        ffn.append(p("layer norm 2' (parameters)", _LN_PARAMS["elements"],
                     _LN_PARAMS["launches"], False))
    else:
        ffn += [p("layer norm 2'", _LN_BACK["elements"], _LN_BACK["launches"]),
                p("residual", 3, 1)]
    attention = [
        g("attention out dW", d, n, d, False), p("attention out db", 1, 1, False),
        g("attention out dX", n, d, d), p("split heads", 2, 1),
        attention_op("dV = A^T G", (t, t, d // h)), attention_op("dA = G V^T", (t, d // h, t)),
        _pass("softmax'", "backward", 11 * scores, 5, flops=5.0 * n * h * t, count=L,
              lane="blocks", chain=bp),
        attention_op("dQ = dS K", (t, t, d // h)), attention_op("dK = dS^T Q", (t, t, d // h)),
        p("stack dQ dK dV", 12, 2), g("qkv dW", 3 * d, n, d, False),
        p("qkv db", 3, 1, False), g("qkv dX", n, 3 * d, d)]
    if bp:
        attention += [p("layer norm 1'", _LN_BACK["elements"], _LN_BACK["launches"]),
                      p("residual", 3, 1)]
    else:
        attention.append(p("layer norm 1' (parameters)", _LN_PARAMS["elements"],
                           _LN_PARAMS["launches"], False))
    return ffn + attention


def _transformer_dfa_extras(s: TransformerShape) -> list:
    """What DFA adds to a block's local backward: the stream signals and block 0's input gradient.

    Each stream signal enters through the final layer norm's local backward (once when
    shared, once per block and point when sliced: one point per block for macro DFA,
    two for micro); block 0 computes ``LN1``'s input gradient and the residual sum for
    the embeddings (lane ``"embedding"``).
    """
    n, d, L = s.tokens, s.width, s.n_blocks
    per_block = 2 if s.dfa_points == "micro" else 1
    if s.shared_feedback:
        signals = [_pass("final layer norm' of B e", "backward", 17 * n * d, 8, lane="feedback")]
    else:
        signals = [_pass("final layer norm' of B e", "backward", 17 * n * d, 8,
                         count=per_block * L, lane="blocks")]
    extra = _LN_BACK["elements"] - _LN_PARAMS["elements"]
    return signals + [
        _pass("layer norm 1' input gradient (block 0)", "backward", extra * n * d,
              _LN_BACK["launches"] - _LN_PARAMS["launches"], lane="embedding"),
        _pass("residual (block 0)", "backward", 3 * n * d, 1, lane="embedding")]


def _transformer_head_backward(s: TransformerShape, bp: bool) -> list:
    n, d, v = s.tokens, s.width, s.vocab
    return [_gemm("head dW", "backward", v, n, d, lane="head"),
            _pass("head db", "backward", n * v, 1, lane="head"),
            _gemm("head dX", "backward", n, v, d, lane="head", chain=bp),
            _pass("final layer norm'", "backward", 22 * n * d, 11, lane="head", chain=bp)]


def _transformer_embedding_backward(s: TransformerShape) -> list:
    n, d = s.tokens, s.width
    return [_pass("position + embedding'", "backward", 6 * n * d, 3, lane="embedding")]


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
    lane = "feedback"
    ops = [Op("srht pad + sign flip", "feedback", "elementwise", total,
              2.0 * total + samples * c, 0, 2, lane=lane),
           Op("srht real FFT", "feedback", "elementwise", samples * blocks * fft_flops,
              2.0 * total + 2.0 * samples * blocks, 0, 1, lane=lane,
              rows=float(samples) * blocks, call="srht"),
           Op("srht Hartley fold", "feedback", "elementwise", total, 2.0 * total, 0, 2, lane=lane)]
    if s % size:
        ops.append(_pass("srht output copy", "feedback", 2 * samples * s, 2, lane=lane))
    ops.append(_pass("feedback scale", "feedback", 2 * samples * s + s, lane=lane))
    return ops


def _feedback_ops(shape, option: str, planes: int) -> list:
    b, c, s = shape.samples, shape.error_width, shape.feedback_width
    if option == "dfa-dense":
        return [_gemm("feedback E B^T", "feedback", b, c, s, lane="feedback")]
    if option == "dfa-structured":
        return _structured_feedback_ops(b, c, s)
    if option == "dfa-opu":  # the machine's share: encode the error, decode the frames
        return [_pass("encode error planes", "feedback", (2 + planes) * b * c, 4, lane="feedback"),
                _pass("decode frames", "feedback", (4 * planes + 2) * b * s, 6, lane="feedback"),
                _pass("feedback scale", "feedback", 2 * b * s + s, lane="feedback")]
    return []


def step_ops(shape, option: str, implementation: Implementation = HOUSE_NUMPY,
             planes: int = 2) -> list:
    """The operations of one training step of ``shape`` with ``option`` on the machine.

    Parameters
    ----------
    shape
        :class:`MLPShape` or :class:`TransformerShape` (its ``feedback_mode`` chooses
        macro or micro DFA).
    option
        One of :data:`OPTIONS`.
    implementation
        How the code runs (:data:`HOUSE_NUMPY` for the NumPy code measured here).
    planes
        Binary planes per error vector (``dfa-opu``: the encoder's).

    Returns
    -------
    list of Op
        Forward, backward, feedback (machine side only for ``dfa-opu``) and update,
        each on its lane (:class:`Op`).
    """
    check_choice("option", option, OPTIONS)
    dfa = option != "bp"
    if isinstance(shape, MLPShape):
        ops = _mlp_forward(shape) + _mlp_backward(shape, bp=not dfa)
    elif isinstance(shape, TransformerShape):
        ops = _transformer_forward(shape, implementation)
        ops += _transformer_head_backward(shape, bp=not dfa)
        ops += _transformer_block_backward(shape, implementation,
                                           shape.dfa_points if dfa else "bp")
        if dfa:
            ops += _transformer_dfa_extras(shape)
        ops += _transformer_embedding_backward(shape)
    else:
        raise TypeError(f"shape = {shape!r}: expected an MLPShape or a TransformerShape")
    if dfa:
        ops += _feedback_ops(shape, option, planes)
    ops += _update(shape, implementation)
    return _scale_elementwise(ops, implementation)


def scale_op(name: str, factor: float) -> Callable[[list], list]:
    """A change of the model: every op called ``name`` costs ``factor`` times as much.

    Its weight scales (:attr:`Op.weight`), so its time on any machine scales by
    ``factor`` exactly. For sensitivity checks (:func:`step_cost`'s ``transform``): a
    validation that cannot tell such a model from the true one is blind to that op.
    """
    def transform(ops):
        return [replace(op, weight=op.weight * factor) if op.name == name else op for op in ops]
    return transform


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
    gemm_half_dim
        A GEMM whose smallest dimension is ``d`` runs at ``d / (d + gemm_half_dim)`` of
        ``gemm_flops_per_s`` (Hockney's half-performance length: a skinny product
        cannot fill the register tiles); 0: every GEMM at the full rate.
    near_bytes_per_s, near_bytes, far_bytes
        A cache: an operation moving ``near_bytes`` or fewer per launch streams at
        ``near_bytes_per_s``, one moving ``far_bytes`` or more at ``bytes_per_s``,
        log-linear in between (0: ``bytes_per_s`` for all).
    row_s
        Seconds per short row of a strided pass (:attr:`Op.rows`; 0: none).
    call_s
        Fixed seconds of named calls (:attr:`Op.call`), e.g. the SRHT's set-up.
    update_bytes_per_s
        Bandwidth of the optimizer's passes over weight-sized tensors (the update phase,
        in place of ``bytes_per_s``: the cache still speeds up small tensors), where
        measured apart from other passes (0: as any pass).
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
    gemm_half_dim: float = 0.0
    near_bytes_per_s: float = 0.0
    near_bytes: float = 0.0
    far_bytes: float = 0.0
    row_s: float = 0.0
    call_s: dict = field(default_factory=dict)
    update_bytes_per_s: float = 0.0

    def bandwidth(self, nbytes: float, far_bytes_per_s: float | None = None) -> float:
        """Bytes/s of an operation moving ``nbytes`` (see ``near_bytes_per_s``); the rate
        beyond the cache is ``far_bytes_per_s`` where given (else ``bytes_per_s``)."""
        far = far_bytes_per_s or self.bytes_per_s
        if not self.near_bytes_per_s or nbytes >= self.far_bytes:
            return far
        if nbytes <= self.near_bytes:
            return self.near_bytes_per_s
        where = math.log(nbytes / self.near_bytes) / math.log(self.far_bytes / self.near_bytes)
        return math.exp(math.log(self.near_bytes_per_s)
                        + where * math.log(far / self.near_bytes_per_s))

    def gemm_rate(self, dims: tuple = ()) -> float:
        """FLOP/s of a GEMM of ``dims`` ``(m, k, n)`` (the full rate without dims)."""
        if not dims or not self.gemm_half_dim:
            return self.gemm_flops_per_s
        smallest = min(dims)
        return self.gemm_flops_per_s * smallest / (smallest + self.gemm_half_dim)

    def op_seconds(self, op: Op) -> float:
        """Seconds of ``op`` (all ``count`` repetitions) by the roofline rule (module notes)."""
        nbytes = (op.nbytes if op.nbytes is not None
                  else op.elements * self.implementation.element_bytes)
        far = self.update_bytes_per_s if op.phase == "update" else None
        bandwidth = self.bandwidth(nbytes / max(1.0, op.launches), far)  # one launch's bytes
        if op.kind == "gemm":
            busy = max(op.flops / self.gemm_rate(op.dims), nbytes / bandwidth)
        else:
            busy = max(op.flops / self.vector_flops_per_s,
                       op.transcendentals / self.transcendentals_per_s, nbytes / bandwidth)
        fixed = op.launches * self.launch_s + op.rows * self.row_s + self.call_s.get(op.call, 0.0)
        return op.weight * op.count * (busy + fixed)

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
    frame_time_model
        ``outputs -> seconds``: the frame time when only that many outputs are read
        (the device's own :meth:`~devices.protocol.OPUDevice.frame_time_for`: the
        camera's read-out of exactly the rows holding them); None when the frame time
        does not depend on it.
    """

    name: str
    n_in: int
    n_out: int
    frame_time_s: float
    electrical_power_w: float
    frame_time_model: Callable[[int], float] | None = field(default=None, compare=False,
                                                           repr=False)

    def frame_time_for(self, n_out: int) -> float:
        """Seconds per frame reading ``n_out`` outputs (at most the device's)."""
        n_out = check_int("n_out", n_out, high=self.n_out)
        if self.frame_time_model is None:
            return self.frame_time_s
        return float(self.frame_time_model(n_out))

    def describe(self) -> dict:
        """Plain-data form."""
        return {"name": self.name, "n_in": self.n_in, "n_out": self.n_out,
                "frame_time_s": self.frame_time_s, "frames_per_s": 1.0 / self.frame_time_s,
                "electrical_power_w": self.electrical_power_w,
                "frame_time": ("the device's read-out model for the outputs read"
                               if self.frame_time_model is not None else "fixed")}


def opu_spec(device) -> OPUSpec:
    """The :class:`OPUSpec` of an :class:`devices.OPUDevice` (or of a preset, opened and closed)."""
    if isinstance(device, OPUSpec):
        return device
    if isinstance(device, str):
        from devices import open_device  # noqa: PLC0415

        with open_device(device) as opened:
            return opu_spec(opened)
    return OPUSpec(device.name, int(device.n_in), int(device.n_out), float(device.frame_time_s),
                   float(device.electrical_power_w), device.frame_time_for)


def encoder_planes(encoder: str = "ternary", n_bits: int = 4) -> int:
    """Binary planes per error vector of the encoders (ternary: 2; bit planes: 2 n_bits)."""
    if encoder == "ternary":
        return 2
    if encoder == "bitplanes":
        return 2 * int(n_bits)
    raise ValueError(f"encoder = {encoder!r}: expected 'ternary' or 'bitplanes'")


def _opu_job(shape, opu: OPUSpec, planes: int) -> dict:
    passes = math.ceil(shape.error_width / opu.n_in) * math.ceil(shape.feedback_width / opu.n_out)
    outputs = min(shape.feedback_width, opu.n_out)
    frame_time = opu.frame_time_for(outputs)
    cost = job_cost(shape.samples, mode="linear", frame_time_s=frame_time,
                    electrical_power_w=opu.electrical_power_w, planes_per_vector=planes,
                    batch_size=1024)
    return {"frames": cost.frames * passes, "passes": passes, "seconds": cost.seconds * passes,
            "frame_time_s": frame_time, "outputs_read": outputs,
            "joules": cost.joules * passes, "frames_per_vector": cost.frames_per_vector,
            "reference_frames": cost.reference_frames * passes}


# ---------------------------------------------------------------------------- schedules
def _hidden_lanes(shape) -> list:
    """The lanes of the layers below the head, top first (``"blocks"`` once per block)."""
    if isinstance(shape, MLPShape):
        return [f"layer {i}" for i in range(len(shape.hidden), 0, -1)]
    return ["blocks"] * shape.n_blocks


def _lane_seconds(ops, machine: Machine, shape) -> dict:
    """``{lane: [chain seconds, local seconds]}`` of the backward and update (``"blocks"``: one)."""
    copies = shape.n_blocks if isinstance(shape, TransformerShape) else 1
    lanes: dict = {}
    for op in ops:
        if op.phase == "forward":
            continue
        seconds = machine.op_seconds(op) / (copies if op.lane == "blocks" else 1)
        entry = lanes.setdefault(op.lane, [0.0, 0.0])
        entry[0 if op.chain else 1] += seconds
    return lanes


def _schedule_terms(ops, machine: Machine, shape, option: str, schedule: str) -> dict:
    """``c`` (floor), ``a`` (offset; None without an OPU term), parts of ``max(c, a + O)``."""
    busy = sum(machine.op_seconds(op) for op in ops)
    if schedule == "sequential":
        return {"floor_s": busy, "offset_s": busy, "units": 1}
    if schedule == "overlapped":
        return {"floor_s": busy, "offset_s": 0.0, "units": 1}
    forward = sum(machine.op_seconds(op) for op in ops if op.phase == "forward")
    lanes = _lane_seconds(ops, machine, shape)
    hidden = _hidden_lanes(shape)
    units = 1 + len(hidden)
    if option == "bp":  # the chain, each lane's local work beside it
        start = end = forward
        for lane in ["head"] + hidden + ["embedding"]:
            chain, local = lanes.get(lane, (0.0, 0.0))
            end = max(end, start + chain + local)
            start += chain
        return {"floor_s": max(end, start), "offset_s": None, "units": units,
                "parts": {"forward": forward, "backward_chain": start - forward}}
    head = sum(lanes.get("head", (0.0, 0.0)))
    feedback = sum(lanes.get("feedback", (0.0, 0.0)))
    slowest = max(sum(lanes.get(lane, (0.0, 0.0))) for lane in hidden)
    slowest += sum(lanes.get("embedding", (0.0, 0.0)))  # after block 0, when there is one
    return {"floor_s": forward + head, "offset_s": forward + feedback + slowest, "units": units,
            "parts": {"forward": forward, "head": head, "feedback_machine": feedback,
                      "slowest_layer": slowest}}


# ---------------------------------------------------------------------------- cost
def step_cost(shape, option: str, machine: Machine, opu: OPUSpec | None = None,
              planes: int = 2, schedule: str = "sequential",
              transform: Callable[[list], list] | None = None) -> dict:
    """Seconds and joules of one training step (module notes).

    Parameters
    ----------
    shape
        :class:`MLPShape` or :class:`TransformerShape`.
    option
        One of :data:`OPTIONS`.
    machine
        Where the network runs (:func:`gpu_machine`, or this CPU calibrated:
        :func:`studies.step_validation.calibrate_cpu`).
    opu
        The OPU of ``dfa-opu`` (:func:`opu_spec`).
    planes
        Binary planes per error vector (:func:`encoder_planes`).
    schedule
        One of :data:`SCHEDULES`.
    transform
        A change of the op list before it is costed (:func:`scale_op`; sensitivity
        checks), or None.

    Returns
    -------
    dict
        ``seconds``, ``joules``, the ``schedule``, ``machine_seconds`` (busy time) and
        ``flops`` per phase, ``floor_s`` and ``offset_s`` (the step time is
        ``max(floor_s, offset_s + opu_seconds)``; ``offset_s`` None when no OPU time
        could enter), ``units`` (machines), ``busy_joules``, the OPU's ``frames``,
        ``frame_time_s``, ``opu_seconds`` and ``opu_joules`` (``dfa-opu``), the
        machines' ``idle_joules``.
    """
    if option == "dfa-opu" and opu is None:
        raise ValueError("opu = None: expected an OPUSpec (see opu_spec) for option 'dfa-opu'")
    check_choice("schedule", schedule, SCHEDULES)
    ops = step_ops(shape, option, machine.implementation, planes)
    if transform is not None:
        ops = transform(ops)
    seconds = {phase: 0.0 for phase in PHASES}
    flops = {phase: 0.0 for phase in PHASES}
    for op in ops:
        seconds[op.phase] += machine.op_seconds(op)
        flops[op.phase] += op.count * op.flops
    busy = sum(seconds.values())
    terms = _schedule_terms(ops, machine, shape, option, schedule)
    result = {"option": option, "schedule": schedule, "shape": shape.name,
              "machine": machine.name, "machine_kind": machine.kind, "machine_seconds": seconds,
              "flops": flops, "gemm_flops": sum(op.count * op.flops for op in ops
                                                if op.kind == "gemm"),
              "frames": 0, "opu_seconds": 0.0, "opu_joules": 0.0, **terms,
              "busy_joules": busy * machine.power_w}
    opu_seconds = 0.0
    if option == "dfa-opu":
        job = _opu_job(shape, opu, planes)
        opu_seconds = job["seconds"]
        result.update(frames=job["frames"], opu_seconds=opu_seconds, opu_joules=job["joules"],
                      opu_passes=job["passes"], opu=opu.name, frame_time_s=job["frame_time_s"],
                      outputs_read=job["outputs_read"])
    offset = terms["offset_s"]
    result["seconds"] = terms["floor_s"] if offset is None else max(terms["floor_s"],
                                                                     offset + opu_seconds)
    result["idle_joules"] = _idle_seconds(schedule, busy, opu_seconds, terms["units"]) * \
        machine.idle_power_w
    result["joules"] = result["busy_joules"] + result["opu_joules"] + result["idle_joules"]
    return result


def _idle_seconds(schedule: str, busy_s: float, opu_s: float, units: int) -> float:
    """Machine-seconds spent waiting for the OPU (module notes)."""
    if schedule == "overlapped":
        return max(0.0, opu_s - busy_s)
    return opu_s * (units if schedule == "layer-parallel" else 1)


def _break_even_frame_time(cost: dict, target_s: float) -> float | None:
    """Frame time at which ``cost``'s ``dfa-opu`` step takes ``target_s`` (None: none can)."""
    floor, offset = cost["floor_s"], cost["offset_s"]
    if offset is None or floor > target_s or offset >= target_s or not cost["frames"]:
        return None
    return (target_s - offset) / cost["frames"]


def compare_options(shape, machine: Machine, opu: OPUSpec | None, planes: int = 2,
                    options: Sequence[str] = OPTIONS, schedule: str = "sequential") -> dict:
    """:func:`step_cost` of every option under one schedule; the fastest and the most frugal.

    Also, for ``dfa-opu``, the break-even frame time against each other option under
    the same schedule: the OPU frame time at which ``dfa-opu``'s step takes as long as
    that option's (:func:`studies.step_inverse.inverse_design` says what that OPU
    would be; None when no frame time would do).
    """
    costs = {o: step_cost(shape, o, machine, opu, planes, schedule) for o in options
             if o != "dfa-opu" or opu is not None}
    fastest = min(costs, key=lambda o: costs[o]["seconds"])
    frugal = min(costs, key=lambda o: costs[o]["joules"])
    result = {"shape": shape.describe(), "schedule": schedule, "costs": costs,
              "fastest": fastest, "most_frugal": frugal}
    if "dfa-opu" in costs:
        result["break_even_frame_time_s"] = {
            other: _break_even_frame_time(costs["dfa-opu"], costs[other]["seconds"])
            for other in costs if other != "dfa-opu"}
    return result


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
                   mlp_batch: int = 1024, schedule: str = "sequential") -> dict:
    """Winners in time and in energy over the MLP and Transformer grids (plain data).

    MLP: 784 inputs, four hidden layers of each width, ``mlp_batch`` samples per step,
    against the number of classes; Transformer: the char model and the GPT-3 ladder
    (their own tokens per step, sliced feedback) against the vocabulary; every option
    under ``schedule``.
    """
    grids = {MLPShape.family: mlp_grid(batch=mlp_batch),
             TransformerShape.family: transformer_grid()}
    axis_labels = {MLPShape.family: (f"hidden width (4 layers, batch {mlp_batch})", "classes"),
                   TransformerShape.family: ("model (sliced feedback)", "vocabulary")}
    result = {}
    total = sum(len(g[1]) * len(g[0]) for g in grids.values())
    with Progress(total, f"crossover map ({schedule})", enabled=progress, unit="shape",
                  min_steps=200) as bar:
        for family, (xs, ys, shapes) in grids.items():
            cells = []
            for row in shapes:
                cells.append([])
                for shape in row:
                    compared = compare_options(shape, machine, opu, planes, schedule=schedule)
                    costs = compared["costs"]
                    cells[-1].append({
                        "fastest": compared["fastest"], "most_frugal": compared["most_frugal"],
                        "seconds": {o: c["seconds"] for o, c in costs.items()},
                        "joules": {o: c["joules"] for o, c in costs.items()},
                        "parameters": shape.parameters})
                    bar.update()
            result[family] = {"x": xs, "y": ys, "cells": cells, "schedule": schedule,
                              "x_label": axis_labels[family][0],
                              "y_label": axis_labels[family][1]}
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
            ax.set_title(f"{family}, {data.get('schedule', 'sequential')} schedule: least "
                         f"{label} per step (number: winner / bp)", fontsize=9)
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
    """Markdown table of :func:`compare_options` results (one row per shape, one schedule)."""
    schedules = sorted({entry.get("schedule", "sequential") for entry in ladder})
    lines = [f"Machine: **{machine.name}** ({machine.kind.upper()}); schedule: "
             f"**{', '.join(schedules)}**. Seconds and joules per step.",
             "",
             "| shape | parameters | C | S | samples/step | " +
             " | ".join(f"{o} s" for o in OPTIONS) + " | " +
             " | ".join(f"{o} J" for o in OPTIONS) + " | OPU frames | fastest | least energy |",
             "|" + "---|" * (7 + 2 * len(OPTIONS) + 1)]
    for entry in ladder:
        shape, costs = entry["shape"], entry["costs"]
        c = shape.get("vocab", shape.get("n_classes"))
        s = shape["feedback_width"]
        samples = shape.get("tokens", shape.get("batch"))
        secs = " | ".join(_fmt_s(costs[o]["seconds"]) if o in costs else "-" for o in OPTIONS)
        joules = " | ".join(_fmt_s(costs[o]["joules"]) if o in costs else "-" for o in OPTIONS)
        frames = costs.get("dfa-opu", {}).get("frames", "-")
        lines.append(f"| {shape['name']} | {shape['parameters']:.3g} | {c} | {s} | {samples} | "
                     f"{secs} | {joules} | {frames} | {entry['fastest']} | "
                     f"{entry['most_frugal']} |")
    return "\n".join(lines)
