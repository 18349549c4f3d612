"""dfa_bridge: Direct Feedback Alignment training through any OPU (docs/design.md section 5).

Forward ``a_i = W_i h_{i-1}``, ``h_i = f_i(a_i)``; error ``e = dL/da_N``. Backpropagation
sets ``delta_i = (W_{i+1}^T delta_{i+1}) * f_i'(a_i)``; DFA sets ``delta_i = (B_i e) *
f_i'(a_i)`` with fixed random ``B_i``, all ``B_i e`` from ONE projection of ``e`` onto the
sum of the hidden widths: the projection an OPU computes in one shot of light.

Subpackages
-----------
:mod:`~dfa_bridge.nn`        layers with a local backward, losses, optimizers, MLP, GCN, the character Transformer
:mod:`~dfa_bridge.data`      datasets by name: digits (shipped), MNIST IDX, block model, Planetoid, text corpora
:mod:`~dfa_bridge.training`  one training loop (``bp`` / ``dfa`` / ``shallow``) for every model, feedback through any device, alignment

Imports point down: ``training -> (nn, data)``. Every public name is also importable from
``dfa_bridge`` itself. The studies built on the trainer (acceptance studies, the noise
sweep, benchmarks, plots) live one floor up, in :mod:`studies`.

The array backend follows the data (NumPy in, NumPy out; CuPy in, CuPy out); every
random stream (weights, dropout, feedback matrix, data order) has its own seed.
"""

from .data import DATASET_NAMES, load_dataset
from .data.graphs import GraphData, contextual_sbm, load_planetoid, normalized_adjacency
from .data.tabular import Dataset, load_digits, load_mnist, read_idx
from .data.text import CharCorpus, load_pydoc, load_text_file
from .nn.layers import Dropout, GraphConv, Layer, Linear, Parameter, ReLU, Tanh
from .nn.losses import SoftmaxCrossEntropy
from .nn.models import GCN, MLP, Block, Network
from .nn.optim import SGD, Adam, make_optimizer
from .nn.transformer import TransformerLM
from .training.alignment import angle_deg, feedback_angles, update_angles
from .training.experiment import run_experiment
from .training.feedback import DeviceFeedback, Feedback, IdealFeedback, make_feedback
from .training.language import sample
from .training.trainer import METHODS, GraphTask, History, TabularTask, Task, TextTask, Trainer, fit

__all__ = [
    "angle_deg", "feedback_angles", "update_angles",
    "Dataset", "load_digits", "load_mnist", "read_idx", "DATASET_NAMES", "load_dataset",
    "run_experiment", "DeviceFeedback", "Feedback", "IdealFeedback", "make_feedback",
    "GraphData", "contextual_sbm", "load_planetoid", "normalized_adjacency",
    "Dropout", "GraphConv", "Layer", "Linear", "Parameter", "ReLU", "Tanh",
    "SoftmaxCrossEntropy", "GCN", "MLP", "Block", "Network", "SGD", "Adam", "make_optimizer",
    "METHODS", "History", "Trainer", "fit", "Task", "TabularTask", "GraphTask",
    "TextTask",
    "sample",
    "CharCorpus", "load_pydoc", "load_text_file", "TransformerLM",
]
