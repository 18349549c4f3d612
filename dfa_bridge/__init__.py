"""dfa_bridge: Direct Feedback Alignment training through any OPU (DESIGN.md section 5).

Forward ``a_i = W_i h_{i-1}``, ``h_i = f_i(a_i)``; error ``e = dL/da_N``. Backpropagation
sets ``delta_i = (W_{i+1}^T delta_{i+1}) * f_i'(a_i)``; DFA sets ``delta_i = (B_i e) *
f_i'(a_i)`` with fixed random ``B_i``, all ``B_i e`` from ONE projection of ``e`` onto the
sum of the hidden widths: the projection an OPU computes in one shot of light.

Modules
-------
:mod:`~dfa_bridge.layers`      Linear, GraphConv, Tanh, ReLU, Dropout: forward and local backward
:mod:`~dfa_bridge.losses`      softmax cross-entropy and its error ``e``
:mod:`~dfa_bridge.optim`       SGD with momentum, Adam
:mod:`~dfa_bridge.models`      blocks, MLP, GCN
:mod:`~dfa_bridge.transformer` embeddings, layer norm, causal attention, GELU FFN, blocks, the LM
:mod:`~dfa_bridge.text`        character corpora: pydoc (shipped), any UTF-8 file
:mod:`~dfa_bridge.language`    ``bp`` / macro ``dfa`` / ``shallow`` for the LM, perplexity, sampling
:mod:`~dfa_bridge.feedback`    ideal (Gaussian) and device feedback (through :class:`devices.OPU`)
:mod:`~dfa_bridge.training`    ``bp`` / ``dfa`` / ``shallow`` steps, evaluation, the training loop
:mod:`~dfa_bridge.alignment`   update-vs-gradient and weights-vs-feedback angles
:mod:`~dfa_bridge.data`        digits (shipped), MNIST IDX files
:mod:`~dfa_bridge.graphs`      contextual block model, Planetoid files, normalized adjacency
:mod:`~dfa_bridge.datasets`    datasets by name
:mod:`~dfa_bridge.experiment`  one run from names and numbers (``scripts/train.py``)
:mod:`~dfa_bridge.studies`     the acceptance studies (``scripts/dfa_study.py``)
:mod:`~dfa_bridge.benchmark`   BP vs DFA step time (``scripts/bench_dfa.py``)
:mod:`~dfa_bridge.plots`       learning and alignment curves as PNG

The array backend follows the data (NumPy in, NumPy out; CuPy in, CuPy out); every
random stream (weights, dropout, feedback matrix, data order) has its own seed.
"""

from .alignment import angle_deg, feedback_angles, update_angles
from .data import Dataset, load_digits, load_mnist, read_idx
from .datasets import DATASET_NAMES, load_dataset
from .experiment import run_experiment
from .feedback import DeviceFeedback, Feedback, IdealFeedback, make_feedback
from .graphs import GraphData, contextual_sbm, load_planetoid, normalized_adjacency
from .layers import Dropout, GraphConv, Layer, Linear, Parameter, ReLU, Tanh
from .losses import SoftmaxCrossEntropy
from .models import GCN, MLP, Block, Network
from .optim import SGD, Adam, make_optimizer
from .language import LanguageTrainer, fit_language_model, run_language_experiment, sample
from .studies import run_study
from .text import CharCorpus, load_pydoc, load_text_file
from .transformer import TransformerLM
from .training import METHODS, History, Trainer, fit

__all__ = [
    "angle_deg", "feedback_angles", "update_angles",
    "Dataset", "load_digits", "load_mnist", "read_idx", "DATASET_NAMES", "load_dataset",
    "run_experiment", "DeviceFeedback", "Feedback", "IdealFeedback", "make_feedback",
    "GraphData", "contextual_sbm", "load_planetoid", "normalized_adjacency",
    "Dropout", "GraphConv", "Layer", "Linear", "Parameter", "ReLU", "Tanh",
    "SoftmaxCrossEntropy", "GCN", "MLP", "Block", "Network", "SGD", "Adam", "make_optimizer",
    "run_study", "METHODS", "History", "Trainer", "fit",
    "LanguageTrainer", "fit_language_model", "run_language_experiment", "sample",
    "CharCorpus", "load_pydoc", "load_text_file", "TransformerLM",
]
