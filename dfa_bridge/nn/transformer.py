"""A character-level Transformer language model with explicit forward and local backward.

Model (docs/design.md section 5; GPT-2 style, pre-layer-norm)
---------------------------------------------------------
Tokens ``x`` (B, T) int, ``T <= context``; width ``D``, ``H`` heads of ``D / H``::

    h_0 = E[x] + P[:T]                                   (B, T, D)   token + learned position
    h_k = h'_k + FFN(LN2_k(h'_k)),  h'_k = h_{k-1} + Attn(LN1_k(h_{k-1}))     k = 1 .. L
    logits = LN_f(h_L) W_out^T + b_out                    (B T, V)    W_out = E when tied

``Attn`` is multi-head causal self-attention (position ``t`` sees ``s <= t`` only),
``FFN`` is ``Linear(D, 4D) -> GELU -> Linear(4D, D)``. Every layer here maps
``(B, T, d)`` arrays (batch, positions, features) and has a local backward that takes
``dL/dy`` of the same shape, stores its parameters' gradients (overwritten, as in
:mod:`dfa_bridge.nn.layers`) and returns ``dL/dx``. The dense maps are the house
:class:`~dfa_bridge.nn.layers.Linear` applied to the ``B T`` rows.

Training methods differ only in the signal at each block's output ``h_k`` (the residual
stream): backpropagation chains ``dL/dh_k`` from the top (:meth:`TransformerLM.backward`);
"macro" DFA (Launay et al., NeurIPS 2020) injects ``B_k e`` per token and runs each
block's backward alone (:meth:`TransformerLM.backward_block`); "micro" DFA (their "full"
variant) injects a projection at every layer inside a block too: after the attention
sublayer (the stream ``h'_k``), at the feed-forward hidden layer (after the GELU) and at
the block output, and backpropagates locally only from each point to the weights below
it, up to the next point (:meth:`TransformerLM.backward_block_micro`); the head always
gets the true gradient (:meth:`TransformerLM.backward_head`).

The array backend follows the data (NumPy tokens in, NumPy logits out; CuPy likewise);
parameters are drawn on the host from a seeded generator and moved with ``to``.
"""

from __future__ import annotations

import math

import numpy as np

from photon import array_module
from photon.support.arguments import check_int

from .layers import Layer, Linear, Parameter

__all__ = ["TokenEmbedding", "PositionalEmbedding", "LayerNorm", "GELU", "FeedForward",
           "CausalSelfAttention", "TransformerBlock", "OutputProjection", "TransformerLM"]


def _check_3d(layer: str, x, width: int) -> None:
    if getattr(x, "ndim", 0) != 3 or x.shape[2] != width:
        raise ValueError(f"{layer}.forward: x: shape {getattr(x, 'shape', None)}: expected "
                         f"(batch, positions, {width})")


class TokenEmbedding(Layer):
    """Token embedding ``y[b, t] = E[x[b, t]]``, ``E`` (V, D) ~ N(0, std^2).

    Backward: ``dL/dE[v] = sum over (b, t) with x[b, t] = v of g[b, t]``; tokens have no
    gradient (:meth:`backward` returns None).

    Parameters
    ----------
    n_tokens, width
        Vocabulary size ``V`` and width ``D``.
    rng
        Generator of the initial embedding.
    std
        Standard deviation of the initial entries.
    dtype
        Parameter dtype.
    """

    def __init__(self, n_tokens: int, width: int, rng: np.random.Generator, std: float = 0.5,
                 dtype=np.float32):
        self.n_tokens = check_int("n_tokens", n_tokens)
        self.width = check_int("width", width)
        self.weight = Parameter((std * rng.standard_normal((self.n_tokens, self.width))).astype(dtype),
                                "embedding")
        self._tokens = None

    def parameters(self) -> list[Parameter]:
        """``[embedding (V, D)]``."""
        return [self.weight]

    def forward(self, x, training: bool = False):
        """``E[x]`` (B, T, D) for integer tokens ``x`` (B, T) in ``[0, V)``."""
        if getattr(x, "ndim", 0) != 2 or x.dtype.kind not in "iu":
            raise ValueError(f"TokenEmbedding.forward: x: {getattr(x, 'dtype', type(x).__name__)} "
                             f"of shape {getattr(x, 'shape', None)}: expected integer tokens "
                             "(batch, positions)")
        self._tokens = x
        return self.weight.value[x]

    def backward(self, grad_output, input_grad: bool = False):
        """Scatter-add ``g`` (B, T, D) into the rows of the tokens; returns None."""
        self._require_forward(self._tokens)
        xp = array_module(grad_output)
        self.weight.grad[...] = 0
        rows, tokens = grad_output.reshape(-1, self.width), self._tokens.reshape(-1)
        if xp is np:
            np.add.at(self.weight.grad, tokens, rows)
        else:  # CuPy: atomic scatter-add on the GPU
            import cupyx  # noqa: PLC0415  (GPU path only)

            cupyx.scatter_add(self.weight.grad, tokens, rows)
        return None


class PositionalEmbedding(Layer):
    """Learned positions ``y[b, t] = x[b, t] + P[t]``, ``P`` (context, D) ~ N(0, std^2).

    Backward: ``dL/dP[t] = sum_b g[b, t]`` (zero beyond the positions seen), ``dL/dx = g``.

    Parameters
    ----------
    context, width
        Longest sequence and width ``D``.
    rng, std, dtype
        As for :class:`TokenEmbedding`.
    """

    def __init__(self, context: int, width: int, rng: np.random.Generator, std: float = 0.1,
                 dtype=np.float32):
        self.context = check_int("context", context)
        self.width = check_int("width", width)
        self.weight = Parameter((std * rng.standard_normal((self.context, self.width))).astype(dtype),
                                "position")
        self._length = None

    def parameters(self) -> list[Parameter]:
        """``[position (context, D)]``."""
        return [self.weight]

    def forward(self, x, training: bool = False):
        """``x + P[:T]`` for ``x`` (B, T, D), ``T <= context``."""
        _check_3d("PositionalEmbedding", x, self.width)
        if x.shape[1] > self.context:
            raise ValueError(f"PositionalEmbedding.forward: x: {x.shape[1]} positions: expected at "
                             f"most context = {self.context}")
        self._length = x.shape[1]
        return x + self.weight.value[:self._length]

    def backward(self, grad_output, input_grad: bool = True):
        """Store ``sum_b g``; return ``g``."""
        self._require_forward(self._length)
        self.weight.grad[...] = 0
        grad_output.sum(axis=0, out=self.weight.grad[:self._length])
        return grad_output if input_grad else None


class LayerNorm(Layer):
    """Layer normalization over the last axis: ``y = gamma (x - mu) / sigma + beta``.

    ``sigma = sqrt(var + eps)``. Backward, with ``x_hat = (x - mu) / sigma`` and
    ``u = g gamma``::

        dL/dgamma = sum g x_hat    dL/dbeta = sum g
        dL/dx = (u - mean(u) - x_hat mean(u x_hat)) / sigma      (means over the last axis)

    Parameters
    ----------
    width
        Size ``D`` of the last axis.
    eps
        Variance offset.
    dtype
        Parameter dtype (``gamma`` starts at one, ``beta`` at zero).
    """

    def __init__(self, width: int, eps: float = 1e-5, dtype=np.float32):
        self.width = check_int("width", width)
        self.eps = float(eps)
        self.gain = Parameter(np.ones(self.width, dtype), "gain")
        self.bias = Parameter(np.zeros(self.width, dtype), "bias")
        self._cache = None

    def parameters(self) -> list[Parameter]:
        """``[gain (D,), bias (D,)]``."""
        return [self.gain, self.bias]

    def forward(self, x, training: bool = False):
        """Normalize ``x`` (..., D) over its last axis, then scale and shift."""
        if getattr(x, "ndim", 0) < 1 or x.shape[-1] != self.width:
            raise ValueError(f"LayerNorm.forward: x: shape {getattr(x, 'shape', None)}: expected "
                             f"(..., {self.width})")
        xp = array_module(x)
        centred = x - x.mean(axis=-1, keepdims=True)
        inverse_sigma = 1.0 / xp.sqrt((centred * centred).mean(axis=-1, keepdims=True)
                                      + x.dtype.type(self.eps))
        normalized = centred * inverse_sigma
        self._cache = (normalized, inverse_sigma)
        return normalized * self.gain.value + self.bias.value

    def backward(self, grad_output, input_grad: bool = True):
        """Store ``dL/dgamma``, ``dL/dbeta``; return ``dL/dx``."""
        self._require_forward(self._cache)
        normalized, _ = self._cache
        rows = grad_output.reshape(-1, self.width)
        (rows * normalized.reshape(-1, self.width)).sum(axis=0, out=self.gain.grad)
        rows.sum(axis=0, out=self.bias.grad)
        if not input_grad:
            return None
        return self.input_gradient(grad_output)

    def input_gradient(self, grad_output):
        """``dL/dx`` for ``dL/dy = grad_output`` at the last forward, storing nothing.

        ``(u - mean(u) - x_hat mean(u x_hat)) / sigma`` with ``u = gamma * grad_output``:
        the component along the mean and along ``x_hat`` (to which the normalization
        is blind) removed.
        """
        self._require_forward(self._cache)
        normalized, inverse_sigma = self._cache
        u = grad_output * self.gain.value
        mean_u = u.mean(axis=-1, keepdims=True)
        mean_ux = (u * normalized).mean(axis=-1, keepdims=True)
        return (u - mean_u - normalized * mean_ux) * inverse_sigma


class GELU(Layer):
    """GELU, tanh form (Hendrycks & Gimpel 2016; GPT-2): ``y = x (1 + tanh(u)) / 2``.

    ``u = c (x + 0.044715 x^3)``, ``c = sqrt(2 / pi)``; backward
    ``dL/dx = g [(1 + t) / 2 + x (1 - t^2) c (1 + 3 * 0.044715 x^2) / 2]``, ``t = tanh(u)``.
    """

    _C = math.sqrt(2.0 / math.pi)
    _A = 0.044715

    def __init__(self):
        self._cache = None

    def forward(self, x, training: bool = False):
        """``x (1 + tanh(c (x + 0.044715 x^3))) / 2`` elementwise."""
        xp = array_module(x)
        t = xp.tanh(self._C * (x + self._A * x * x * x))
        self._cache = (x, t)
        return 0.5 * x * (1 + t)

    def backward(self, grad_output, input_grad: bool = True):
        """``g`` times the derivative above."""
        self._require_forward(self._cache)
        x, t = self._cache
        slope = 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * self._C * (1 + 3 * self._A * x * x)
        return grad_output * slope


class FeedForward(Layer):
    """Position-wise ``Linear(D, hidden) -> GELU -> Linear(hidden, D)`` on (B, T, D).

    Parameters
    ----------
    width, hidden
        ``D`` and the inner width (4 D in GPT-2).
    rng, dtype
        Generator of the Glorot-uniform weights; parameter dtype.
    """

    def __init__(self, width: int, hidden: int, rng: np.random.Generator, dtype=np.float32):
        self.width = check_int("width", width)
        self.up = Linear(self.width, hidden, rng, dtype)
        self.activation = GELU()
        self.down = Linear(hidden, self.width, rng, dtype)

    def parameters(self) -> list[Parameter]:
        """``[up weight, up bias, down weight, down bias]``."""
        return self.up.parameters() + self.down.parameters()

    def forward(self, x, training: bool = False):
        """``W2 GELU(W1 x + b1) + b2`` per position."""
        _check_3d("FeedForward", x, self.width)
        rows = x.reshape(-1, self.width)
        y = self.down.forward(self.activation.forward(self.up.forward(rows)))
        return y.reshape(x.shape)

    def backward(self, grad_output, input_grad: bool = True):
        """Local backward through both linear maps and the GELU."""
        grad = self.down.backward(grad_output.reshape(-1, self.width))
        grad = self.up.backward(self.activation.backward(grad), input_grad=input_grad)
        return None if grad is None else grad.reshape(grad_output.shape)

    def backward_micro(self, grad_output, grad_hidden):
        """Micro-DFA backward: ``dL/dy`` sets the down map's gradients only; ``grad_hidden``
        (B T, hidden), the signal at the GELU's output, sets the up map's.

        Returns ``dL/dx`` (B, T, D) from ``grad_hidden`` (the layer norm before needs it
        for its own parameters).
        """
        self.down.backward(grad_output.reshape(-1, self.width), input_grad=False)
        grad = self.up.backward(self.activation.backward(grad_hidden))
        return grad.reshape(grad_output.shape)

    def to(self, xp) -> "FeedForward":
        """Move the linear maps."""
        self.up.to(xp)
        self.down.to(xp)
        return self


class CausalSelfAttention(Layer):
    """Multi-head causal self-attention on (B, T, D), ``H`` heads of ``d = D / H``.

    Forward, per head, with ``[Q, K, V] = x W_qkv^T + b_qkv`` split into heads::

        S = Q K^T / sqrt(d) + M     (M[t, s] = -inf for s > t: no position sees the future)
        A = softmax(S) (rows)       O = A V       y = concat_heads(O) W_o^T + b_o

    Backward, with ``G = dL/dO``: ``dV = A^T G``, ``dA = G V^T``,
    ``dS = A * (dA - rowsum(dA * A))``, ``dQ = dS K / sqrt(d)``, ``dK = dS^T Q / sqrt(d)``;
    masked entries have ``A = 0`` hence ``dS = 0``, so no gradient reaches a position
    from the positions before it through the future. Scores more than 80 below a row's
    maximum are raised to -80 before the exponential (weights below ``e^-80`` are held
    at that normal float32 value instead of subnormals, which slow CPU products tenfold).

    Parameters
    ----------
    width, heads
        ``D`` and ``H`` (``H`` divides ``D``).
    rng, dtype
        Generator of the Glorot-uniform weights; parameter dtype.
    """

    def __init__(self, width: int, heads: int, rng: np.random.Generator, dtype=np.float32):
        self.width = check_int("width", width)
        self.heads = check_int("heads", heads)
        if self.width % self.heads:
            raise ValueError(f"heads = {heads!r}: expected a divisor of width = {width}")
        self.head_width = self.width // self.heads
        self.qkv = Linear(self.width, 3 * self.width, rng, dtype)
        self.out = Linear(self.width, self.width, rng, dtype)
        self._cache = None
        self._masks: dict = {}

    def parameters(self) -> list[Parameter]:
        """``[qkv weight (3D, D), qkv bias, out weight (D, D), out bias]``."""
        return self.qkv.parameters() + self.out.parameters()

    def _mask(self, xp, length: int, dtype):
        key = (xp.__name__, length, str(dtype))
        mask = self._masks.get(key)
        if mask is None:
            past = np.tril(np.ones((length, length), dtype))  # 1 where s <= t
            mask = self._masks[key] = xp.asarray(past)
        return mask

    def _mask_bias(self, xp, length: int, dtype):
        key = ("bias", xp.__name__, length, str(dtype))
        bias = self._masks.get(key)
        if bias is None:
            future = np.triu(np.ones((length, length), bool), 1)
            bias = self._masks[key] = xp.asarray(np.where(future, -np.inf, 0).astype(dtype))
        return bias

    def forward(self, x, training: bool = False):
        """Causal attention output (B, T, D)."""
        _check_3d("CausalSelfAttention", x, self.width)
        xp = array_module(x)
        batch, length, _ = x.shape
        qkv = self.qkv.forward(x.reshape(-1, self.width))
        qkv = qkv.reshape(batch, length, 3, self.heads, self.head_width).transpose(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # (B, H, T, d) each
        scale = x.dtype.type(1.0 / math.sqrt(self.head_width))
        scores = q @ k.swapaxes(-1, -2)
        scores *= scale
        scores -= (scores + self._mask_bias(xp, length, x.dtype)).max(axis=-1, keepdims=True)
        # exp(-80) is a normal float32: no subnormal weights, which slow every product
        # they enter by an order of magnitude on CPUs; the mask then zeroes the future.
        xp.maximum(scores, scores.dtype.type(-80.0), out=scores)
        attention = xp.exp(scores, out=scores)
        attention *= self._mask(xp, length, x.dtype)
        attention /= attention.sum(axis=-1, keepdims=True)
        mixed = attention @ v  # (B, H, T, d)
        self._cache = (q, k, v, attention, scale, x.shape)
        rows = mixed.transpose(0, 2, 1, 3).reshape(-1, self.width)
        return self.out.forward(rows).reshape(x.shape)

    def backward(self, grad_output, input_grad: bool = True):
        """Store the four parameter gradients; return ``dL/dx`` (B, T, D)."""
        self._require_forward(self._cache)
        xp = array_module(grad_output)
        q, k, v, attention, scale, shape = self._cache
        batch, length, _ = shape
        grad_mixed = self.out.backward(grad_output.reshape(-1, self.width))
        grad_mixed = grad_mixed.reshape(batch, length, self.heads,
                                        self.head_width).transpose(0, 2, 1, 3)
        grad_v = attention.swapaxes(-1, -2) @ grad_mixed
        grad_scores = grad_mixed @ v.swapaxes(-1, -2)
        grad_scores -= (grad_scores * attention).sum(axis=-1, keepdims=True)
        grad_scores *= attention
        grad_scores *= scale
        grad_q = grad_scores @ k
        grad_k = grad_scores.swapaxes(-1, -2) @ q
        grad_qkv = xp.stack([grad_q, grad_k, grad_v])  # (3, B, H, T, d)
        grad_qkv = grad_qkv.transpose(1, 3, 0, 2, 4).reshape(-1, 3 * self.width)
        grad = self.qkv.backward(grad_qkv, input_grad=input_grad)
        return None if grad is None else grad.reshape(shape)

    def to(self, xp) -> "CausalSelfAttention":
        """Move the linear maps."""
        self.qkv.to(xp)
        self.out.to(xp)
        self._masks.clear()
        return self


class TransformerBlock(Layer):
    """Pre-LN block: ``h' = x + Attn(LN1(x))``, ``y = h' + FFN(LN2(h'))`` on (B, T, D).

    Backward from ``g = dL/dy``: ``dL/dh' = g + LN2'(FFN'(g))``,
    ``dL/dx = dL/dh' + LN1'(Attn'(dL/dh'))`` (the residual paths carry ``g`` through).

    Parameters
    ----------
    width, heads
        ``D`` and ``H``.
    rng, dtype
        Generator of the weights; parameter dtype.
    ffn_factor
        Inner width of the feed-forward block, in multiples of ``D``.
    """

    def __init__(self, width: int, heads: int, rng: np.random.Generator, dtype=np.float32,
                 ffn_factor: int = 4):
        self.width = check_int("width", width)
        self.norm1 = LayerNorm(self.width, dtype=dtype)
        self.attention = CausalSelfAttention(self.width, heads, rng, dtype)
        self.norm2 = LayerNorm(self.width, dtype=dtype)
        self.ffn = FeedForward(self.width, check_int("ffn_factor", ffn_factor) * self.width,
                               rng, dtype)

    def layers(self) -> list[Layer]:
        """``[LN1, Attn, LN2, FFN]``."""
        return [self.norm1, self.attention, self.norm2, self.ffn]

    def parameters(self) -> list[Parameter]:
        """Every parameter of the block, in the order of :meth:`layers`."""
        return [p for layer in self.layers() for p in layer.parameters()]

    def forward(self, x, training: bool = False):
        """The block's output, the residual stream after it."""
        _check_3d("TransformerBlock", x, self.width)
        middle = x + self.attention.forward(self.norm1.forward(x), training)
        return middle + self.ffn.forward(self.norm2.forward(middle), training)

    def backward(self, grad_output, input_grad: bool = True):
        """Local backward from ``dL/dy``; returns ``dL/dx`` (or None)."""
        grad_middle = grad_output + self.norm2.backward(self.ffn.backward(grad_output))
        branch = self.norm1.backward(self.attention.backward(grad_middle))
        return grad_middle + branch if input_grad else None

    def backward_micro(self, grad_output, grad_hidden, grad_middle, input_grad: bool = False):
        """Micro-DFA backward: a signal at each of the block's three feedback points.

        ``grad_output`` (B, T, D) at the block output trains the feed-forward's down map;
        ``grad_hidden`` (B T, 4 D) at the GELU's output the up map and ``LN2``;
        ``grad_middle`` (B, T, D) at ``h'`` (after the attention sublayer) the attention
        and ``LN1``. Nothing flows from one point to the one below it. Returns ``dL/dx``
        from ``grad_middle`` (or None).
        """
        self.norm2.backward(self.ffn.backward_micro(grad_output, grad_hidden), input_grad=False)
        branch = self.norm1.backward(self.attention.backward(grad_middle), input_grad=input_grad)
        return grad_middle + branch if input_grad else None

    def to(self, xp) -> "TransformerBlock":
        """Move every layer."""
        for layer in self.layers():
            layer.to(xp)
        return self


class OutputProjection(Layer):
    """Logits ``y = h W^T + b`` (B T, V) from ``h`` (B, T, D); ``W`` tied or its own.

    Tied (Press & Wolf 2017): ``W`` is the token embedding ``E`` (V, D), owned by the
    embedding; :meth:`parameters` then lists the bias only and the weight's gradient is
    left in :attr:`tied_grad` for the model to add to the embedding's.

    Parameters
    ----------
    width, n_tokens
        ``D`` and ``V``.
    rng, dtype
        Generator of the Glorot-uniform weight (untied); parameter dtype.
    tied_to
        The :class:`TokenEmbedding` whose matrix to share, or None.
    """

    def __init__(self, width: int, n_tokens: int, rng: np.random.Generator, dtype=np.float32,
                 tied_to: TokenEmbedding | None = None):
        self.width = check_int("width", width)
        self.n_tokens = check_int("n_tokens", n_tokens)
        self.tied_to = tied_to
        if tied_to is not None and (tied_to.n_tokens, tied_to.width) != (self.n_tokens, self.width):
            raise ValueError(f"tied_to: embedding ({tied_to.n_tokens}, {tied_to.width}): expected "
                             f"({self.n_tokens}, {self.width})")
        self.linear = Linear(self.width, self.n_tokens, rng, dtype)
        if tied_to is not None:
            self.linear.weight = tied_to.weight
        self.tied_grad = None

    def parameters(self) -> list[Parameter]:
        """``[weight (V, D), bias (V,)]``, or ``[bias]`` when tied."""
        return [self.linear.bias] if self.tied_to is not None else self.linear.parameters()

    def forward(self, x, training: bool = False):
        """Logits (B T, V), one row per position."""
        _check_3d("OutputProjection", x, self.width)
        return self.linear.forward(x.reshape(-1, self.width))

    def backward(self, grad_output, input_grad: bool = True):
        """From ``dL/dlogits`` (B T, V); returns ``dL/dh`` as (B T, D) rows (or None)."""
        if self.tied_to is not None:  # the weight's gradient goes to tied_grad, not E's grad
            x = self.linear._x
            self.linear._require_forward(x)
            self.tied_grad = grad_output.T @ x
            grad_output.sum(axis=0, out=self.linear.bias.grad)
            return grad_output @ self.linear.weight.value if input_grad else None
        return self.linear.backward(grad_output, input_grad)

    def to(self, xp) -> "OutputProjection":
        """Move the linear map (a tied weight moves with its embedding)."""
        self.linear.bias.to(xp)
        if self.tied_to is None:
            self.linear.weight.to(xp)
        else:
            self.linear.weight = self.tied_to.weight
        return self


class TransformerLM:
    """Decoder-only Transformer language model (see the module's model).

    Parameters
    ----------
    n_tokens
        Vocabulary size ``V``.
    context
        Longest input ``T``.
    width, heads, n_blocks
        ``D``, ``H`` and ``L``.
    tied
        Share the token embedding with the output projection.
    seed
        Seed of the initial weights.
    dtype
        Parameter dtype (float32 to train, float64 for gradient checks).
    """

    def __init__(self, n_tokens: int, context: int = 64, width: int = 128, heads: int = 4,
                 n_blocks: int = 4, tied: bool = False, seed: int = 0, dtype=np.float32):
        rng = np.random.default_rng(np.random.SeedSequence(seed))
        self.n_tokens = check_int("n_tokens", n_tokens)
        self.context = check_int("context", context)
        self.width = check_int("width", width)
        self.heads = check_int("heads", heads)
        self.tied = bool(tied)
        self.embedding = TokenEmbedding(self.n_tokens, self.width, rng, dtype=dtype)
        self.position = PositionalEmbedding(self.context, self.width, rng, dtype=dtype)
        self.blocks = [TransformerBlock(self.width, heads, rng, dtype)
                       for _ in range(check_int("n_blocks", n_blocks))]
        self.final_norm = LayerNorm(self.width, dtype=dtype)
        self.head = OutputProjection(self.width, self.n_tokens, rng, dtype,
                                     tied_to=self.embedding if self.tied else None)
        self._shape = None

    # ------------------------------------------------------------------ structure
    @property
    def feedback_widths(self) -> tuple[int, ...]:
        """Widths of the block outputs DFA feeds: ``(D,) * L``."""
        return (self.width,) * len(self.blocks)

    @property
    def ffn_width(self) -> int:
        """Inner width of the feed-forward layers (``4 D``)."""
        return self.blocks[0].ffn.up.n_out

    @property
    def micro_feedback_widths(self) -> tuple[int, ...]:
        """Widths of micro DFA's points, block by block: ``(D, 4 D, D) * L``.

        After the attention sublayer, at the feed-forward hidden layer, at the block output.
        """
        return (self.width, self.ffn_width, self.width) * len(self.blocks)

    @property
    def n_outputs(self) -> int:
        """Width of the logits (the vocabulary)."""
        return self.n_tokens

    def embedding_parameters(self) -> list[Parameter]:
        """Token and position embeddings."""
        return self.embedding.parameters() + self.position.parameters()

    def head_parameters(self) -> list[Parameter]:
        """Final layer norm and output projection (the bias only when tied)."""
        return self.final_norm.parameters() + self.head.parameters()

    def parameters(self) -> list[Parameter]:
        """Every parameter: embeddings, blocks, head."""
        return (self.embedding_parameters() + [p for b in self.blocks for p in b.parameters()]
                + self.head_parameters())

    # ------------------------------------------------------------------ passes
    def forward(self, tokens, training: bool = False):
        """Logits (B T, V) of the next token at every position of ``tokens`` (B, T)."""
        if getattr(tokens, "ndim", 0) == 2 and tokens.shape[1] > self.context:
            raise ValueError(f"tokens: shape {tokens.shape}: expected at most context = "
                             f"{self.context} positions")
        h = self.position.forward(self.embedding.forward(tokens), training)
        for block in self.blocks:
            h = block.forward(h, training)
        self._shape = h.shape
        return self.head.forward(self.final_norm.forward(h), training)

    def backward_head(self, error):
        """True gradients of the head from ``e = dL/dlogits`` (B T, V); returns ``dL/dh_L``."""
        if self._shape is None:
            raise RuntimeError("TransformerLM: call forward(tokens) before backward")
        grad = self.head.backward(error).reshape(self._shape)
        return self.final_norm.backward(grad)

    def backward_block(self, index: int, grad_output, input_grad: bool = False):
        """Local backward of block ``index`` from ``dL/dh_index`` (B, T, D) at its output."""
        return self.blocks[index].backward(grad_output, input_grad=input_grad)

    def backward_block_micro(self, index: int, grad_output, grad_hidden, grad_middle,
                             input_grad: bool = False):
        """Micro-DFA backward of block ``index`` (:meth:`TransformerBlock.backward_micro`)."""
        return self.blocks[index].backward_micro(grad_output, grad_hidden, grad_middle,
                                                 input_grad=input_grad)

    def backward_embedding(self, grad_output) -> None:
        """Embedding gradients from ``dL/dh_0`` (B, T, D) (plus the head's, when tied)."""
        self.embedding.backward(self.position.backward(grad_output))
        if self.tied and self.head.tied_grad is not None:
            self.embedding.weight.grad += self.head.tied_grad

    def backward(self, error) -> None:
        """Backpropagation of ``e = dL/dlogits`` (B T, V): sets every parameter's gradient."""
        grad = self.backward_head(error)
        for index in range(len(self.blocks) - 1, -1, -1):
            grad = self.backward_block(index, grad, input_grad=True)
        self.backward_embedding(grad)

    def to(self, xp) -> "TransformerLM":
        """Move every layer to the backend ``xp``; returns the model."""
        for layer in (self.embedding, self.position, *self.blocks, self.final_norm, self.head):
            layer.to(xp)
        return self
