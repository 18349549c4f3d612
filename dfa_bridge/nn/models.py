"""Networks as stacks of blocks: MLP and GCN.

Model (docs/design.md section 5)
---------------------------
A network is ``N`` blocks. Block ``i`` holds one weight layer (:class:`Linear` or
:class:`GraphConv`) ``a_i = W_i h_{i-1} (+ b_i)``, optional layers before it (input
dropout) and after it (the activation ``f_i``, dropout): its output is the hidden layer
``h_i``. The last block has no activation: its output ``a_N`` are the logits. A training
method differs only in the signal it injects at each block's output:

* backpropagation: ``dL/dh_i = W_{i+1}^T delta_{i+1}``, chained from the top
  (:meth:`Network.backward`);
* DFA: ``B_i e`` from the feedback, each block alone (:meth:`Network.backward_block`).

Inside a block the backward is local in both cases: through the layers after the weight
layer (``delta_i = dL/dh_i * f_i'(a_i)``), then the weight layer's gradients.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from photon.support.arguments import check_choice, check_widths

from .layers import Dropout, GraphConv, Layer, Linear, Parameter, ReLU, Tanh

__all__ = ["Block", "Network", "MLP", "GCN", "ACTIVATIONS"]

ACTIVATIONS = {"tanh": Tanh, "relu": ReLU}


class Block:
    """One weight layer with the layers before and after it.

    Parameters
    ----------
    weight_layer
        The block's only layer with parameters (its ``n_out`` is the block's width).
    before
        Parameter-free layers applied before it (e.g. input dropout).
    after
        Parameter-free layers applied after it (activation, dropout).
    """

    def __init__(self, weight_layer: Layer, before: Sequence[Layer] = (),
                 after: Sequence[Layer] = ()):
        for layer in (*before, *after):
            if layer.parameters():
                raise ValueError(f"{type(layer).__name__}: a layer with parameters outside the "
                                 "block's weight layer: expected parameter-free layers only")
        self.weight_layer = weight_layer
        self.before = list(before)
        self.after = list(after)

    @property
    def width(self) -> int:
        """Output width of the block."""
        return self.weight_layer.n_out

    def parameters(self) -> list[Parameter]:
        """The weight layer's parameters."""
        return self.weight_layer.parameters()

    def forward(self, x, training: bool = False):
        """Apply the layers in order."""
        for layer in (*self.before, self.weight_layer, *self.after):
            x = layer.forward(x, training)
        return x

    def backward(self, grad_output, input_grad: bool = True):
        """Local backward from ``dL/dh`` at the block's output.

        Sets the weight layer's gradients; returns ``dL/dx`` at the block's input, or
        None when ``input_grad`` is False.
        """
        grad = grad_output
        for layer in reversed(self.after):
            grad = layer.backward(grad)
        grad = self.weight_layer.backward(grad, input_grad=input_grad)
        if not input_grad:
            return None
        for layer in reversed(self.before):
            grad = layer.backward(grad)
        return grad

    def to(self, xp) -> None:
        """Move every layer to the backend ``xp``."""
        for layer in (*self.before, self.weight_layer, *self.after):
            layer.to(xp)


class Network:
    """A stack of blocks; the last one outputs the logits.

    Parameters
    ----------
    blocks
        Blocks in order, at least one; each block's input width is the previous one's
        width.
    """

    def __init__(self, blocks: Sequence[Block]):
        if not blocks:
            raise ValueError("blocks: empty: expected at least one block")
        self.blocks = list(blocks)

    @property
    def hidden_widths(self) -> tuple[int, ...]:
        """Widths of the hidden layers ``h_1 .. h_{N-1}`` (the blocks DFA feeds)."""
        return tuple(block.width for block in self.blocks[:-1])

    @property
    def n_outputs(self) -> int:
        """Width of the logits."""
        return self.blocks[-1].width

    @property
    def weights(self) -> list:
        """The weight matrices ``W_1 .. W_N``, each ``(n_out, n_in)``, on the model's backend."""
        return [block.weight_layer.weight.value for block in self.blocks]

    def parameters(self, blocks: Sequence[int] | None = None) -> list[Parameter]:
        """Parameters of the given block indices (all blocks by default)."""
        chosen = range(len(self.blocks)) if blocks is None else blocks
        return [p for i in chosen for p in self.blocks[i].parameters()]

    def forward(self, x, training: bool = False):
        """Logits ``a_N`` (n, n_outputs) for inputs ``x`` (n, n_features)."""
        for block in self.blocks:
            x = block.forward(x, training)
        return x

    def backward(self, error) -> None:
        """Backpropagation of ``e = dL/da_N``: sets every parameter's gradient."""
        grad = error
        for index in range(len(self.blocks) - 1, -1, -1):
            grad = self.blocks[index].backward(grad, input_grad=index > 0)

    def backward_block(self, index: int, grad_output) -> None:
        """Local backward of block ``index`` alone, from ``dL/dh_index`` at its output.

        Sets that block's parameter gradients and nothing else (no gradient flows
        below it): the DFA update when ``grad_output = B_i e``.
        """
        self.blocks[index].backward(grad_output, input_grad=False)

    def carry_feedback(self, index: int, signal):
        """Carry a feedback signal ``B_i e`` to the output of block ``index``.

        DFA replaces the learned weights above a layer by a fixed random matrix; any
        fixed, parameter-free map the layers above apply stays. The MLP has none: the
        signal is returned as is.
        """
        return signal

    def to(self, xp) -> "Network":
        """Move every block to the backend ``xp``; returns the network."""
        for block in self.blocks:
            block.to(xp)
        return self


def _activation(name: str) -> Layer:
    check_choice("activation", name, ACTIVATIONS)
    return ACTIVATIONS[name]()


def _seeds(seed: int, count: int) -> tuple[np.random.Generator, list[int]]:
    """The weight generator and ``count`` dropout seeds, independent streams of ``seed``."""
    weight_seed, dropout_seed = np.random.SeedSequence(seed).spawn(2)
    dropout_seeds = [int(s.generate_state(1)[0]) for s in dropout_seed.spawn(count)]
    return np.random.default_rng(weight_seed), dropout_seeds


class MLP(Network):
    """Multi-layer perceptron ``Linear -> f (-> Dropout)`` per hidden layer, ``Linear`` on top.

    Parameters
    ----------
    n_features
        Input width.
    n_classes
        Output width (logits).
    hidden
        Hidden widths, e.g. ``(256, 256)``.
    activation
        ``"tanh"`` or ``"relu"``.
    dropout
        Dropout rate after each hidden activation (0: none).
    seed
        Seed of the weights and (an independent stream) of the dropout masks.
    dtype
        Parameter dtype.
    """

    def __init__(self, n_features: int, n_classes: int, hidden: Sequence[int] = (256, 256),
                 activation: str = "tanh", dropout: float = 0.0, seed: int = 0,
                 dtype=np.float32):
        widths = check_widths("hidden", hidden)
        rng, dropout_seeds = _seeds(seed, len(widths))
        blocks, n_in = [], n_features
        for width, dropout_seed in zip(widths, dropout_seeds):
            after = [_activation(activation)]
            if dropout:
                after.append(Dropout(dropout, dropout_seed))
            blocks.append(Block(Linear(n_in, width, rng, dtype), after=after))
            n_in = width
        blocks.append(Block(Linear(n_in, n_classes, rng, dtype)))
        super().__init__(blocks)


class GCN(Network):
    """Graph convolutional network (Kipf & Welling 2017), full batch.

    Each block is ``Dropout -> GraphConv -> f`` (no activation on the last), all on the
    same normalized adjacency ``A_hat``; DFA feeds the error back at each hidden graph
    convolution's output.

    Parameters
    ----------
    adjacency : (n_nodes, n_nodes) sparse matrix
        ``A_hat = D^-1/2 (A + I) D^-1/2`` (see :func:`dfa_bridge.data.graphs.normalized_adjacency`).
    n_features, n_classes
        Input and output widths.
    hidden
        Hidden widths, e.g. ``(64,)`` for the two-layer GCN.
    activation
        ``"relu"`` or ``"tanh"``.
    dropout
        Dropout rate on each block's input (0: none).
    seed
        Seed of the weights and (an independent stream) of the dropout masks.
    dtype
        Parameter dtype.
    """

    def __init__(self, adjacency, n_features: int, n_classes: int, hidden: Sequence[int] = (64,),
                 activation: str = "relu", dropout: float = 0.5, seed: int = 0,
                 dtype=np.float32):
        widths = check_widths("hidden", hidden)
        rng, dropout_seeds = _seeds(seed, len(widths) + 1)
        blocks, n_in = [], n_features
        for index, width in enumerate((*widths, n_classes)):
            before = [Dropout(dropout, dropout_seeds[index])] if dropout else []
            after = [_activation(activation)] if index < len(widths) else []
            blocks.append(Block(GraphConv(adjacency, n_in, width, rng, dtype),
                                before=before, after=after))
            n_in = width
        super().__init__(blocks)

    def carry_feedback(self, index: int, signal):
        """``A_hat^T`` applied once per graph convolution above block ``index``.

        Backpropagation reaches hidden layer ``i`` through ``A_hat^T`` and ``W^T`` of each
        graph convolution above it; DFA keeps the graph's propagation, which is fixed and
        learns nothing, and replaces only the weights by ``B_i`` (the topology-aware
        feedback of Zhao et al., NeurIPS 2024). The error of a labelled node thus reaches
        its neighbours, as the backprop gradient does.
        """
        for block in self.blocks[index + 1:]:
            signal = block.weight_layer.adjacency_t @ signal
        return signal

