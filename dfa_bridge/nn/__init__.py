"""Networks with an explicit forward and a local backward, on NumPy or CuPy.

:mod:`~dfa_bridge.nn.layers`       Linear, GraphConv, Tanh, ReLU, Dropout
:mod:`~dfa_bridge.nn.losses`       softmax cross-entropy and its error ``e = dL/da_N``
:mod:`~dfa_bridge.nn.optim`        SGD with momentum, Adam
:mod:`~dfa_bridge.nn.models`       blocks, MLP, GCN
:mod:`~dfa_bridge.nn.transformer`  embeddings, layer norm, causal attention, GELU FFN, the character LM
"""

from .layers import Dropout, GraphConv, Layer, Linear, Parameter, ReLU, Tanh
from .losses import SoftmaxCrossEntropy, TrainingDiverged
from .models import GCN, MLP, Block, Network
from .optim import SGD, Adam, make_optimizer
from .transformer import TransformerLM

__all__ = ["Dropout", "GraphConv", "Layer", "Linear", "Parameter", "ReLU", "Tanh",
           "SoftmaxCrossEntropy", "TrainingDiverged", "GCN", "MLP", "Block", "Network",
           "SGD", "Adam", "make_optimizer", "TransformerLM"]
