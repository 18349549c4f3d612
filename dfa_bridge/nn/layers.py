"""Layers with an explicit forward and a local backward, written once for NumPy and CuPy.

Conventions
-----------
Arrays are batch-major: a layer maps ``x`` of shape ``(n, d_in)`` (``n`` samples or graph
nodes) to ``y`` of shape ``(n, d_out)``. :meth:`Layer.forward` caches what the backward
needs; :meth:`Layer.backward` takes ``dL/dy`` and

* stores the gradient of every parameter in its :attr:`Parameter.grad` (overwritten,
  never accumulated);
* returns ``dL/dx``, or None when ``input_grad=False`` (the first layer of a network, and
  every layer DFA trains: they need no gradient below them, which is what spares DFA
  the chain of transposed products of backpropagation).

The array backend follows the data (NumPy in, NumPy out; CuPy in, CuPy out). Parameters
are drawn on the host from a seeded :class:`numpy.random.Generator` and moved with
:meth:`Layer.to`.
"""

from __future__ import annotations

import math

import numpy as np

from photon import array_module
from photon.support.arguments import check_int
from photon.support.arrays import asarray_like

__all__ = ["Parameter", "Layer", "Linear", "GraphConv", "Tanh", "ReLU", "Dropout"]


class Parameter:
    """A trainable array and the gradient the last backward stored for it.

    Parameters
    ----------
    value
        The array (updated in place by the optimizers).
    name
        A label, e.g. ``"weight"``.
    """

    __slots__ = ("value", "grad", "name")

    def __init__(self, value, name: str):
        self.value = value
        self.grad = array_module(value).zeros_like(value)
        self.name = name

    def to(self, xp) -> None:
        """Move the value and the gradient to the backend ``xp``."""
        self.value = asarray_like(self.value, xp)
        self.grad = asarray_like(self.grad, xp)

    def __repr__(self) -> str:
        return f"Parameter({self.name}, shape={tuple(self.value.shape)}, dtype={self.value.dtype})"


class Layer:
    """Base class: a map ``(n, d_in) -> (n, d_out)`` with a local backward."""

    def parameters(self) -> list[Parameter]:
        """Trainable parameters (none by default)."""
        return []

    def forward(self, x, training: bool = False):
        """Output of the layer for ``x``; caches what :meth:`backward` needs.

        Parameters
        ----------
        x : (n, d_in) array
        training
            Training mode (dropout is active) or evaluation mode.
        """
        raise NotImplementedError

    def backward(self, grad_output, input_grad: bool = True):
        """Gradients of the last :meth:`forward`, given ``dL/dy`` (n, d_out).

        Parameters
        ----------
        grad_output : (n, d_out) array
            ``dL/dy``.
        input_grad
            Whether to compute and return ``dL/dx``.

        Returns
        -------
        (n, d_in) array or None
            ``dL/dx``, or None when ``input_grad`` is False.
        """
        raise NotImplementedError

    def to(self, xp) -> "Layer":
        """Move the layer's arrays to the backend ``xp``; returns the layer."""
        for parameter in self.parameters():
            parameter.to(xp)
        return self

    def _require_forward(self, cached) -> None:
        if cached is None:
            raise RuntimeError(f"{type(self).__name__}: call forward(x) before backward()")


def _check_width(layer: str, x, expected: int) -> None:
    if getattr(x, "ndim", 0) != 2 or x.shape[1] != expected:
        raise ValueError(f"{layer}.forward: x: shape {getattr(x, 'shape', None)}: expected "
                         f"(n, {expected})")


def _glorot_uniform(rng: np.random.Generator, n_out: int, n_in: int, dtype):
    """Glorot/Xavier uniform weights ``U(-r, r)``, ``r = sqrt(6 / (n_in + n_out))``."""
    limit = math.sqrt(6.0 / (n_in + n_out))
    return rng.uniform(-limit, limit, size=(n_out, n_in)).astype(dtype)


class Linear(Layer):
    """Affine layer ``y = x W^T + b``.

    Backward, with ``g = dL/dy`` (n, d_out)::

        dL/dW = g^T x   (d_out, d_in)     dL/db = sum_n g   (d_out,)     dL/dx = g W   (n, d_in)

    Parameters
    ----------
    n_in, n_out
        Input and output widths.
    rng
        Generator of the Glorot-uniform initial weights (biases start at zero).
    dtype
        Parameter dtype (float32 for training, float64 for gradient checks).
    """

    def __init__(self, n_in: int, n_out: int, rng: np.random.Generator, dtype=np.float32):
        self.n_in = check_int("n_in", n_in)
        self.n_out = check_int("n_out", n_out)
        self.weight = Parameter(_glorot_uniform(rng, self.n_out, self.n_in, dtype), "weight")
        self.bias = Parameter(np.zeros(self.n_out, dtype), "bias")
        self._x = None

    def parameters(self) -> list[Parameter]:
        """``[weight (n_out, n_in), bias (n_out,)]``."""
        return [self.weight, self.bias]

    def forward(self, x, training: bool = False):
        """``x W^T + b``."""
        _check_width("Linear", x, self.n_in)
        self._x = x
        y = x @ self.weight.value.T
        y += self.bias.value
        return y

    def backward(self, grad_output, input_grad: bool = True):
        """Store ``g^T x`` and ``sum_n g``; return ``g W`` (or None)."""
        self._require_forward(self._x)
        xp = array_module(grad_output)
        xp.matmul(grad_output.T, self._x, out=self.weight.grad)
        grad_output.sum(axis=0, out=self.bias.grad)
        return grad_output @ self.weight.value if input_grad else None


class GraphConv(Layer):
    """Graph convolution (Kipf & Welling 2017) ``y = A_hat x W^T + b``.

    ``A_hat`` is the normalized adjacency ``D^-1/2 (A + I) D^-1/2`` of the whole graph
    (full-batch training: ``x`` holds every node). The product is taken as
    ``A_hat (x W^T)``, a sparse product on the narrower side. Backward, with
    ``g = dL/dy`` (n_nodes, d_out) and ``s = A_hat^T g``::

        dL/dW = s^T x     dL/db = sum_n g     dL/dx = s W

    Parameters
    ----------
    adjacency : (n_nodes, n_nodes) sparse matrix
        ``A_hat``: a ``scipy.sparse`` matrix on the CPU, ``cupyx.scipy.sparse`` on the GPU
        (:meth:`to` converts it).
    n_in, n_out
        Input and output widths.
    rng
        Generator of the Glorot-uniform initial weights.
    dtype
        Parameter and adjacency dtype.
    """

    def __init__(self, adjacency, n_in: int, n_out: int, rng: np.random.Generator,
                 dtype=np.float32):
        shape = getattr(adjacency, "shape", None)
        if shape is None or len(shape) != 2 or shape[0] != shape[1] or not hasattr(adjacency, "tocsr"):
            raise ValueError(f"adjacency: {type(adjacency).__name__} of shape {shape}: expected "
                             "a square sparse matrix (n_nodes, n_nodes)")
        self.n_in = check_int("n_in", n_in)
        self.n_out = check_int("n_out", n_out)
        self.adjacency = adjacency.tocsr().astype(dtype)
        self.adjacency_t = self.adjacency.T.tocsr()
        self.weight = Parameter(_glorot_uniform(rng, self.n_out, self.n_in, dtype), "weight")
        self.bias = Parameter(np.zeros(self.n_out, dtype), "bias")
        self._x = None

    @property
    def n_nodes(self) -> int:
        """Number of nodes of the graph."""
        return self.adjacency.shape[0]

    def parameters(self) -> list[Parameter]:
        """``[weight (n_out, n_in), bias (n_out,)]``."""
        return [self.weight, self.bias]

    def forward(self, x, training: bool = False):
        """``A_hat (x W^T) + b``."""
        _check_width("GraphConv", x, self.n_in)
        if x.shape[0] != self.n_nodes:
            raise ValueError(f"GraphConv.forward: x: shape {x.shape}: expected one row per node "
                             f"({self.n_nodes}, {self.n_in})")
        self._x = x
        y = self.adjacency @ (x @ self.weight.value.T)
        y += self.bias.value
        return y

    def backward(self, grad_output, input_grad: bool = True):
        """Store ``(A_hat^T g)^T x`` and ``sum_n g``; return ``(A_hat^T g) W`` (or None)."""
        self._require_forward(self._x)
        xp = array_module(grad_output)
        spread = self.adjacency_t @ grad_output
        xp.matmul(spread.T, self._x, out=self.weight.grad)
        grad_output.sum(axis=0, out=self.bias.grad)
        return spread @ self.weight.value if input_grad else None

    def to(self, xp) -> "GraphConv":
        """Move the parameters and the adjacency (``cupyx.scipy.sparse`` on CuPy)."""
        super().to(xp)
        self.adjacency = _sparse_to(self.adjacency, xp)
        self.adjacency_t = _sparse_to(self.adjacency_t, xp)
        return self


def _sparse_to(matrix, xp):
    """A CSR matrix on the backend ``xp`` (scipy.sparse for NumPy, cupyx for CuPy)."""
    on_gpu = type(matrix).__module__.startswith("cupyx")
    if xp is np:
        return matrix.get() if on_gpu else matrix
    if on_gpu:
        return matrix
    import cupyx.scipy.sparse  # noqa: PLC0415  (lazy: GPU path only)

    return cupyx.scipy.sparse.csr_matrix(matrix)


class Tanh(Layer):
    """``y = tanh(x)``; backward ``dL/dx = g (1 - y^2)``."""

    def __init__(self):
        self._y = None

    def forward(self, x, training: bool = False):
        """``tanh(x)``."""
        self._y = array_module(x).tanh(x)
        return self._y

    def backward(self, grad_output, input_grad: bool = True):
        """``g (1 - y^2)``."""
        self._require_forward(self._y)
        return grad_output * (1 - self._y * self._y)


class ReLU(Layer):
    """``y = max(x, 0)``; backward ``dL/dx = g [x > 0]``."""

    def __init__(self):
        self._active = None

    def forward(self, x, training: bool = False):
        """``max(x, 0)``."""
        self._active = x > 0
        return x * self._active

    def backward(self, grad_output, input_grad: bool = True):
        """``g [x > 0]``."""
        self._require_forward(self._active)
        return grad_output * self._active


class Dropout(Layer):
    """Inverted dropout: in training ``y = x m / (1 - p)``, ``m ~ Bernoulli(1 - p)``.

    A fresh mask is drawn at every training forward; in evaluation ``y = x``. Backward
    multiplies by the same ``m / (1 - p)``.

    Parameters
    ----------
    rate
        Drop probability ``p``, ``0 <= p < 1``.
    seed
        Seed of the mask stream: a :class:`numpy.random.Generator` for NumPy data, a
        ``cupy.random`` generator (created at the first CuPy forward) for CuPy data.
    """

    def __init__(self, rate: float, seed: int):
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate < 1:
            raise ValueError(f"rate = {rate!r}: expected a drop probability in [0, 1)")
        self.rate = float(rate)
        self.seed = int(seed)
        self._generators: dict[str, object] = {}
        self._scale = None

    def _uniform(self, xp, shape, dtype):
        """Uniform [0, 1) draws of ``shape`` from this layer's stream on ``xp``."""
        generator = self._generators.get(xp.__name__)
        if generator is None:
            generator = xp.random.default_rng(self.seed)
            self._generators[xp.__name__] = generator
        return generator.random(shape, dtype=dtype)

    def forward(self, x, training: bool = False):
        """``x m / (1 - p)`` in training, ``x`` in evaluation."""
        if not training or self.rate == 0.0:
            self._scale = 1.0
            return x
        xp = array_module(x)
        dtype = x.dtype if x.dtype in (np.float32, np.float64) else np.float64
        keep = self._uniform(xp, x.shape, dtype) >= self.rate
        self._scale = keep.astype(x.dtype) * x.dtype.type(1.0 / (1.0 - self.rate))
        return x * self._scale

    def backward(self, grad_output, input_grad: bool = True):
        """``g m / (1 - p)`` (``g`` after an evaluation forward)."""
        self._require_forward(self._scale)
        return grad_output * self._scale
