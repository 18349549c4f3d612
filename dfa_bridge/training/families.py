"""One record per model family: everything that differs between the MLP, the GCN and the Transformer.

A :class:`ModelFamily` holds what the trainer and the studies need to know of a family:
its hyper-parameter defaults, the unit of its training budget, the score it is judged on,
its default data set and feedback encoder, the feedback width its device needs, the kind
of error vectors that measure a device's fidelity on it, the flags that say which
run options apply (a text corpus, a graph, ``max_train``, sampled text), and the callable
that builds its network and task from a run's settings. :data:`FAMILIES` is the registry
and :func:`family` looks a record up by name.

Adding a family is one new record here plus its network and task code:
:func:`~dfa_bridge.training.experiment.run_experiment` and the studies dispatch through
the record and never test a family's name.

The families
------------
``mlp``
    A multilayer perceptron on tabular data (on a graph: the node features alone),
    trained in epochs of mini-batches; scored on the test accuracy.
``gcn``
    The two-layer graph convolutional network of Kipf & Welling (hidden width 64) on a
    graph, one full-batch step per epoch; scored on the test accuracy.
``transformer``
    The character Transformer (:data:`~dfa_bridge.training.language.LM_DEFAULTS`) on a
    text corpus, trained in steps on random windows; scored on the validation
    perplexity per character (lower is better).
"""

from __future__ import annotations

import dataclasses
import types
from typing import Callable, Mapping

from photon.support.arguments import check_choice

from ..data import load_dataset
from ..data.graphs import GraphData
from ..data.tabular import Dataset
from ..data.text import CharCorpus, load_text_dataset
from ..nn.models import GCN, MLP
from ..nn.transformer import TransformerLM
from .language import LM_DEFAULTS
from .trainer import GraphTask, TabularTask, Task, TextTask

__all__ = ["ModelFamily", "FamilyRun", "FAMILIES", "family", "family_names", "classifier_dataset",
           "build_mlp", "build_gcn", "build_transformer", "hidden_width", "block_width",
           "batch_rows", "window_rows"]


@dataclasses.dataclass
class FamilyRun:
    """What a family's builder returns: the network, its task and the data's description.

    Attributes
    ----------
    network
        The model (``n_outputs``, ``to(xp)``, the trainer's protocol).
    task
        The backend module -> the :class:`~dfa_bridge.training.trainer.Task` on it.
    description
        Plain-data description of the data set (its ``describe()``).
    feedback_mode
        The Transformer's feedback mode; None for the others.
    corpus
        The text corpus (perplexity baseline, sampling), or None.
    """

    network: object
    task: Callable[[object], Task]
    description: dict
    feedback_mode: str | None = None
    corpus: object = None


@dataclasses.dataclass(frozen=True)
class ModelFamily:
    """Everything that varies by model family, in one record.

    Attributes
    ----------
    name
        The family's name (``run_experiment(model=name)``).
    description
        One line on what the family is.
    defaults
        Every hyper-parameter with its default value, the budget among them (read-only).
    budget
        The unit of the training budget: ``"epochs"`` or ``"steps"``.
    metric, higher_is_better
        The score a run is judged on and its direction.
    default_data
        The data set of a run that names none.
    encoder
        Error encoding of a device's feedback unless one is given: ``(encoder, n_bits)``
        (``n_bits`` per sign of signed bit planes; None for ternary).
    fidelity_errors
        The kind of error vectors that measure a device's fidelity on the family:
        ``"classification"`` or ``"language"`` (:mod:`studies.noise_budget`).
    build
        ``build(family, data, data_path=, data_seed=, max_train=, settings=, seeds=,
        evaluations=, max_eval_chars=) -> FamilyRun``: the network and the task of a run.
    feedback_width
        ``settings -> S``, the feedback outputs a device needs for the resolved settings.
    rows_per_fit
        ``(settings, data) -> rows``: error rows per encoder fit (the batch, a graph's
        training nodes).
    scores, curves
        The final record's keys copied into a result, and the history's curves kept.
    is_language
        Data are a text corpus (fixed split: no ``data_seed`` in the result); the run
        takes ``evaluations`` and ``max_eval_chars``.
    is_graph
        Data must be a graph (:class:`~dfa_bridge.data.graphs.GraphData`).
    node_features
        On a graph, the family reads the node features alone (a tabular data set).
    max_train_applies
        ``max_train`` (keep the first training samples of tabular data) applies.
    samples_text
        ``n_sample`` characters can be sampled from the trained network.
    """

    name: str
    description: str
    defaults: Mapping
    budget: str
    metric: str
    higher_is_better: bool
    default_data: str
    encoder: tuple
    fidelity_errors: str
    build: Callable[..., FamilyRun]
    feedback_width: Callable[[dict], int]
    rows_per_fit: Callable[[dict, object], int]
    scores: tuple = ("test_accuracy", "train_accuracy", "train_loss")
    curves: tuple = ("train_loss", "train_accuracy", "test_accuracy")
    is_language: bool = False
    is_graph: bool = False
    node_features: bool = False
    max_train_applies: bool = True
    samples_text: bool = False

    def __post_init__(self):
        check_choice("budget", self.budget, ("epochs", "steps"))
        if self.budget not in self.defaults:
            raise ValueError(f"defaults = {dict(self.defaults)!r}: expected the budget "
                             f"{self.budget!r} among them")
        object.__setattr__(self, "defaults", types.MappingProxyType(dict(self.defaults)))

    @property
    def other_budget(self) -> str:
        """The budget unit the family does not train in."""
        return "steps" if self.budget == "epochs" else "epochs"


# ---------------------------------------------------------------------------- builders
def _classifier_data(data, data_path, data_seed: int) -> Dataset | GraphData:
    """A data set by name, or the user's own object (checked)."""
    if isinstance(data, (Dataset, GraphData)):
        if data_path is not None:
            raise ValueError(f"data_path = {data_path!r}: expected None with a data set "
                             "object (it holds its data)")
        return data
    if not isinstance(data, str):
        raise TypeError(f"data = {type(data).__name__}: expected a data set name, a Dataset "
                        "or a GraphData")
    return load_dataset(data, data_path, seed=data_seed)


def classifier_dataset(record: ModelFamily, data, data_path, data_seed: int, max_train):
    """The tabular or graph data set of a classifier family by its record: a graph for a
    family that ``is_graph``, a graph's node features for one that reads ``node_features``,
    the first ``max_train`` training samples when given (checked)."""
    dataset = _classifier_data(data, data_path, data_seed)
    if record.is_graph and not isinstance(dataset, GraphData):
        raise ValueError(f"data = {getattr(dataset, 'name', data)!r}: expected a graph dataset "
                         f"for model {record.name!r} (csbm, cora, citeseer, pubmed, or a GraphData)")
    if record.node_features and isinstance(dataset, GraphData):
        dataset = dataset.feature_dataset()
    if max_train is not None:
        if not isinstance(dataset, Dataset) or max_train < 1:
            raise ValueError(f"max_train = {max_train!r}: expected a positive sample count for "
                             "tabular data")
        dataset = Dataset(dataset.name, dataset.x_train[:max_train], dataset.y_train[:max_train],
                          dataset.x_test, dataset.y_test, dataset.n_classes)
    return dataset


def build_mlp(record: ModelFamily, data, *, data_path, data_seed: int, max_train, settings: dict,
              seeds: dict, **_) -> FamilyRun:
    """An MLP on a tabular data set (a graph's node features), trained in epochs."""
    dataset = classifier_dataset(record, data, data_path, data_seed, max_train)
    hidden = tuple(settings["hidden"])
    network = MLP(dataset.n_features, dataset.n_classes, hidden, settings["activation"],
                  settings["dropout"], seed=seeds["model"])

    def task(xp):
        return TabularTask(dataset.to(xp), settings["epochs"], settings["batch_size"],
                           seed=seeds["order"])
    return FamilyRun(network, task, dataset.describe())


def build_gcn(record: ModelFamily, data, *, data_path, data_seed: int, max_train, settings: dict,
              seeds: dict, **_) -> FamilyRun:
    """A GCN on a graph, one full-batch step per epoch."""
    dataset = classifier_dataset(record, data, data_path, data_seed, max_train)
    hidden = tuple(settings["hidden"])
    network = GCN(dataset.adjacency, dataset.n_features, dataset.n_classes, hidden,
                  settings["activation"], settings["dropout"], seed=seeds["model"])

    def task(xp):
        return GraphTask(dataset.to(xp), settings["epochs"])
    return FamilyRun(network, task, dataset.describe())


def build_transformer(record: ModelFamily, data, *, data_path, settings: dict, seeds: dict,
                      evaluations, max_eval_chars, **_) -> FamilyRun:
    """The character Transformer on a text corpus, trained in steps."""
    if isinstance(data, CharCorpus):
        if data_path is not None:
            raise ValueError(f"data_path = {data_path!r}: expected None with a CharCorpus")
        corpus = data
    elif isinstance(data, str):
        corpus = load_text_dataset(data, data_path)
    else:
        raise TypeError(f"data = {type(data).__name__}: expected a text corpus name or a "
                        f"CharCorpus for model {record.name!r}")
    network = TransformerLM(corpus.n_tokens, settings["context"], settings["width"],
                            settings["heads"], settings["n_blocks"], settings["tied"],
                            seed=seeds["model"])

    def task(xp):
        return TextTask(corpus, settings["steps"], network.context, settings["batch_size"],
                        seed=seeds["order"], warmup=settings["warmup"],
                        evaluations=5 if evaluations is None else evaluations,
                        max_eval_chars=max_eval_chars, xp=xp)
    return FamilyRun(network, task, corpus.describe(), feedback_mode=settings["feedback_mode"],
                     corpus=corpus)


# ---------------------------------------------------------------------------- widths
def hidden_width(settings: dict) -> int:
    """Feedback width of a classifier: the sum of its hidden widths."""
    return int(sum(settings["hidden"]))


def block_width(settings: dict) -> int:
    """Feedback width of the Transformer: its width, once (shared) or per block."""
    blocks = 1 if settings["feedback_mode"] == "shared" else settings["n_blocks"]
    return int(settings["width"]) * int(blocks)


def batch_rows(settings: dict, data) -> int:
    """Error rows per encoder fit: the batch, or a graph's training nodes (full batch)."""
    train_index = getattr(data, "train_index", None)
    if train_index is not None:
        return int(len(train_index))
    return int(settings.get("batch_size", 32))


def window_rows(settings: dict, data) -> int:
    """Error rows per encoder fit of the Transformer's fidelity measurement."""
    return 1024


# ---------------------------------------------------------------------------- registry
#: Every model family by name. The defaults: the MLP of the digits study, the two-layer
#: GCN of Kipf & Welling (hidden width raised to 64), and the character Transformer
#: (:data:`~dfa_bridge.training.language.LM_DEFAULTS`). The default encoder, signed 4-bit
#: planes, is decided equivalent to ideal-feedback DFA on Cora's GCN and comes closest of
#: the codes tried on the deep MLP (docs/noise), where a ternary code is decided worse on
#: both: its SNR against the exact ``B e`` falls to about 5 dB once the errors spread. The Transformer's per-token error spreads its mass over
#: ~90 characters, which a ternary code drops.
FAMILIES: dict[str, ModelFamily] = {
    "mlp": ModelFamily(
        name="mlp", description="multilayer perceptron on tabular data (a graph's node features)",
        defaults={"hidden": (256, 256), "activation": "tanh", "dropout": 0.1,
                  "optimizer": "adam", "lr": 1e-3, "weight_decay": 0.0, "batch_size": 32,
                  "epochs": 30},
        budget="epochs", metric="test_accuracy", higher_is_better=True, default_data="digits",
        encoder=("bitplanes", 4), fidelity_errors="classification", build=build_mlp,
        feedback_width=hidden_width, rows_per_fit=batch_rows, node_features=True),
    "gcn": ModelFamily(
        name="gcn", description="two-layer graph convolutional network on a graph",
        defaults={"hidden": (64,), "activation": "relu", "dropout": 0.5, "optimizer": "adam",
                  "lr": 0.01, "weight_decay": 5e-4, "epochs": 200},
        budget="epochs", metric="test_accuracy", higher_is_better=True, default_data="digits",
        encoder=("bitplanes", 4), fidelity_errors="classification", build=build_gcn,
        feedback_width=hidden_width, rows_per_fit=batch_rows, is_graph=True),
    "transformer": ModelFamily(
        name="transformer", description="character Transformer on a text corpus",
        defaults=LM_DEFAULTS, budget="steps", metric="val_perplexity", higher_is_better=False,
        default_data="pydoc", encoder=("bitplanes", 4), fidelity_errors="language",
        build=build_transformer, feedback_width=block_width, rows_per_fit=window_rows,
        scores=("val_perplexity", "val_loss", "train_loss"),
        curves=("step", "train_loss", "val_perplexity"), is_language=True,
        max_train_applies=False, samples_text=True),
}


def family(name) -> ModelFamily:
    """The record of the family ``name``; a ValueError naming the known ones otherwise."""
    return FAMILIES[check_choice("model", name, tuple(FAMILIES))]


def family_names(**flags) -> tuple[str, ...]:
    """Names of the families whose record has every attribute of ``flags`` at its value
    (``family_names(higher_is_better=True)``; none given: every family)."""
    return tuple(name for name, record in FAMILIES.items()
                 if all(getattr(record, key) == value for key, value in flags.items()))
