"""One training run from names and numbers: what ``scripts/train.py``, the studies and the tests call.

:func:`run_experiment` loads the data, builds the model (an MLP, a GCN or the character
Transformer), the feedback source, the :class:`~dfa_bridge.training.trainer.Trainer` and
the :class:`~dfa_bridge.training.trainer.Task`, trains through the one loop
(:func:`~dfa_bridge.training.trainer.fit`), and returns a plain-data result and the
:class:`~dfa_bridge.training.trainer.History`. The MLP and the GCN train in epochs, the
Transformer in steps (:data:`BUDGETS`); each is given in its own unit.

Every random stream has its own seed derived from ``seed`` (:func:`derive_seeds`:
weights, feedback matrix, data order, sampling) and a generated dataset or split from
``data_seed``, so that runs of different methods with the same seeds start from the same
weights and see the same batches.

``data`` is a name (:func:`dfa_bridge.data.load_dataset`, a text corpus) or a user's own
data set object (a :class:`~dfa_bridge.data.tabular.Dataset`,
:class:`~dfa_bridge.data.graphs.GraphData` or :class:`~dfa_bridge.data.text.CharCorpus`).
The error encoding of a device's feedback defaults per family (:data:`DEFAULT_ENCODERS`,
the answer of the noise study, docs/noise); a run through a virtual device records its
feedback's fidelity at every step (:mod:`~dfa_bridge.training.feedback_monitor`).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import numpy as np

from devices import OPUDevice
from photon.support.arguments import check_int, check_number, check_seed
from photon.support.arrays import backend_module

from ..data import load_dataset
from ..data.graphs import GraphData
from ..data.tabular import Dataset
from ..data.text import CharCorpus, load_text_dataset
from ..nn.models import GCN, MLP
from ..nn.transformer import TransformerLM
from .feedback import DeviceFeedback, Feedback, make_feedback
from .feedback_monitor import FeedbackMonitor, monitor_feedback
from .language import LM_DEFAULTS, sample
from .trainer import (METHODS, GraphTask, History, TabularTask, Task, TextTask, Trainer,
                      feedback_path, fit)

__all__ = ["MODELS", "BUDGETS", "DEFAULTS", "DEFAULT_ENCODERS", "derive_seeds",
           "resolve_settings", "run_experiment"]

MODELS = ("mlp", "gcn", "transformer")

#: The unit each model's training budget is counted in: the MLP and the GCN train for
#: ``epochs`` (passes over the training set; one full-batch step per epoch on a graph),
#: the Transformer for ``steps`` (updates on random windows).
BUDGETS = {"mlp": "epochs", "gcn": "epochs", "transformer": "steps"}

#: Hyper-parameters of each model unless given: the MLP of the digits study, the
#: two-layer GCN of Kipf & Welling (hidden width raised to 64), and the character
#: Transformer (:data:`~dfa_bridge.training.language.LM_DEFAULTS`).
DEFAULTS = {
    "mlp": {"hidden": (256, 256), "activation": "tanh", "dropout": 0.1, "optimizer": "adam",
            "lr": 1e-3, "weight_decay": 0.0, "batch_size": 32, "epochs": 30},
    "gcn": {"hidden": (64,), "activation": "relu", "dropout": 0.5, "optimizer": "adam",
            "lr": 0.01, "weight_decay": 5e-4, "epochs": 200},
    "transformer": LM_DEFAULTS,
}

#: Error encoding of a device's feedback unless one is given, per family: ``(encoder,
#: n_bits)`` (``n_bits`` per sign of signed bit planes; None for ternary). Each default is
#: decided equivalent to ideal-feedback DFA by the noise study (docs/noise: Cora's GCN,
#: the deep MLP), where a ternary code is not: its SNR against the exact ``B e`` falls to
#: about 5 dB once the errors spread. The Transformer's per-token error spreads its mass
#: over ~90 characters, which a ternary code drops.
DEFAULT_ENCODERS = {"mlp": ("bitplanes", 4), "gcn": ("bitplanes", 4),
                    "transformer": ("bitplanes", 4)}

_SEED_STREAMS = ("model", "feedback", "order", "sample")


def derive_seeds(seed: int) -> dict[str, int]:
    """Independent seeds of the ``model`` (weights, dropout), ``feedback``, ``order`` and ``sample`` streams.

    The children of ``numpy.random.SeedSequence(seed)``, one per stream, the same for
    every model family (``sample`` is used by the Transformer alone).
    """
    children = np.random.SeedSequence(seed).spawn(len(_SEED_STREAMS))
    return {name: int(child.generate_state(1)[0]) for name, child in zip(_SEED_STREAMS, children)}


@dataclasses.dataclass
class _Run:
    """What differs between model families before training: the model and its task."""

    network: object
    task: Callable[[object], Task]       # the backend module -> the task on it
    description: dict                    # of the data
    encoder: tuple                       # default (encoder, n_bits) of a device
    feedback_mode: str | None = None
    settings: dict | None = None         # as reported, when it differs from the settings
    corpus: object = None


def resolve_settings(model: str, epochs: int | None = None, steps: int | None = None,
                     **overrides) -> dict:
    """Every hyper-parameter of a run of ``model``: :data:`DEFAULTS` with ``overrides`` and the budget.

    What a run's result depends on besides its data, seeds and feedback: studies key
    their stored results on it. Raises a ValueError naming an unknown or out-of-range
    hyper-parameter, or a budget in the other family's unit.
    """
    if model not in MODELS:
        raise ValueError(f"model = {model!r}: expected one of {', '.join(MODELS)}")
    settings = _settings(model, epochs, steps, overrides)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()}


def _settings(model: str, epochs, steps, overrides: dict) -> dict:
    overrides = {k: v for k, v in overrides.items() if v is not None}
    unknown = sorted(set(overrides) - set(DEFAULTS[model]))
    if unknown:
        raise ValueError(f"{unknown[0]} = {overrides[unknown[0]]!r}: expected one of the "
                         f"hyper-parameters of model {model!r}: {', '.join(DEFAULTS[model])}")
    budget = BUDGETS[model]
    given = {"epochs": epochs, "steps": steps}
    other = "steps" if budget == "epochs" else "epochs"
    if given[other] is not None:
        raise ValueError(f"{other} = {given[other]!r}: expected None for model {model!r}, which "
                         f"trains in {budget}: give {budget} instead")
    settings = {**DEFAULTS[model], **overrides}
    if given[budget] is not None:
        settings[budget] = given[budget]
    _check_hyper_parameters(settings)
    return settings


#: How each numeric hyper-parameter is checked: an integer's lowest value, or a real
#: number's bounds (low, high, low open, high open).
_INTEGER_LOWS = {"epochs": 1, "steps": 1, "batch_size": 1, "warmup": 0, "n_blocks": 1,
                 "width": 1, "heads": 1, "context": 1}
_REAL_BOUNDS = {"lr": (0.0, math.inf, True, False), "weight_decay": (0.0, math.inf, False, False),
                "dropout": (0.0, 1.0, False, True)}


def _check_hyper_parameters(settings: dict) -> None:
    """Refuse a hyper-parameter of the wrong kind or out of range, naming it."""
    for name, value in settings.items():
        if name in _INTEGER_LOWS:
            settings[name] = check_int(name, value, low=_INTEGER_LOWS[name])
        elif name in _REAL_BOUNDS:
            low, high, low_open, high_open = _REAL_BOUNDS[name]
            settings[name] = check_number(name, value, low=low, high=high, low_open=low_open,
                                          high_open=high_open)
    if "hidden" in settings:
        widths = settings["hidden"]
        if isinstance(widths, (str, bytes)) or not hasattr(widths, "__iter__"):
            raise ValueError(f"hidden = {widths!r}: expected a sequence of positive layer widths")
        settings["hidden"] = tuple(check_int("hidden", width) for width in widths)


def _check_family_options(model: str, max_train, evaluations, max_eval_chars, n_sample) -> None:
    if model == "transformer":
        if max_train is not None:
            raise ValueError(f"max_train = {max_train!r}: expected None for model 'transformer' "
                             "(it keeps the first samples of tabular data)")
        return
    for name, value in (("evaluations", evaluations), ("max_eval_chars", max_eval_chars)):
        if value is not None:
            raise ValueError(f"{name} = {value!r}: expected None for model {model!r}, which is "
                             "evaluated after every epoch (it applies to the transformer)")
    if n_sample:
        raise ValueError(f"n_sample = {n_sample!r}: expected 0 for model {model!r} (only the "
                         "transformer samples text)")


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


def _classifier_run(model: str, data, data_path, data_seed: int, max_train, settings: dict,
                    seeds: dict) -> _Run:
    """The MLP or the GCN on a tabular or graph dataset, trained in epochs."""
    dataset = _classifier_data(data, data_path, data_seed)
    if model == "gcn" and not isinstance(dataset, GraphData):
        raise ValueError(f"data = {getattr(dataset, 'name', data)!r}: expected a graph dataset "
                         "for model 'gcn' (csbm, cora, citeseer, pubmed, or a GraphData)")
    if model == "mlp" and isinstance(dataset, GraphData):
        dataset = dataset.feature_dataset()
    if max_train is not None:
        if not isinstance(dataset, Dataset) or max_train < 1:
            raise ValueError(f"max_train = {max_train!r}: expected a positive sample count for "
                             "tabular data")
        dataset = Dataset(dataset.name, dataset.x_train[:max_train], dataset.y_train[:max_train],
                          dataset.x_test, dataset.y_test, dataset.n_classes)
    hidden = tuple(settings["hidden"])
    if model == "gcn":
        network = GCN(dataset.adjacency, dataset.n_features, dataset.n_classes, hidden,
                      settings["activation"], settings["dropout"], seed=seeds["model"])

        def task(xp):
            return GraphTask(dataset.to(xp), settings["epochs"])
    else:
        network = MLP(dataset.n_features, dataset.n_classes, hidden, settings["activation"],
                      settings["dropout"], seed=seeds["model"])

        def task(xp):
            return TabularTask(dataset.to(xp), settings["epochs"], settings["batch_size"],
                               seed=seeds["order"])
    return _Run(network, task, dataset.describe(), DEFAULT_ENCODERS[model],
                settings={**settings, "hidden": list(hidden)})


def _language_run(data, data_path, settings: dict, seeds: dict, evaluations,
                  max_eval_chars) -> _Run:
    """The character Transformer on a text corpus, trained in steps."""
    if isinstance(data, CharCorpus):
        if data_path is not None:
            raise ValueError(f"data_path = {data_path!r}: expected None with a CharCorpus")
        corpus = data
    elif isinstance(data, str):
        corpus = load_text_dataset(data, data_path)
    else:
        raise TypeError(f"data = {type(data).__name__}: expected a text corpus name or a "
                        "CharCorpus for model 'transformer'")
    network = TransformerLM(corpus.n_tokens, settings["context"], settings["width"],
                            settings["heads"], settings["n_blocks"], settings["tied"],
                            seed=seeds["model"])

    def task(xp):
        return TextTask(corpus, settings["steps"], network.context, settings["batch_size"],
                        seed=seeds["order"], warmup=settings["warmup"],
                        evaluations=5 if evaluations is None else evaluations,
                        max_eval_chars=max_eval_chars, xp=xp)
    return _Run(network, task, corpus.describe(), DEFAULT_ENCODERS["transformer"],
                feedback_mode=settings["feedback_mode"], corpus=corpus)


def _feedback_source(feedback, method: str, widths, n_classes: int, seed: int, encoder: str,
                     n_bits: int | None, device_options: dict | None) -> Feedback | None:
    """The run's feedback source: None for ``bp`` and ``shallow`` unless one is given."""
    if feedback is None:
        if method != "dfa":
            return None
        feedback = "ideal"
    if isinstance(feedback, OPUDevice):
        return DeviceFeedback(feedback, widths, n_classes, encoder=encoder, n_bits=n_bits)
    return make_feedback(feedback, widths, n_classes, seed=seed, encoder=encoder, n_bits=n_bits,
                         **(device_options or {}))


def run_experiment(model: str = "mlp", data: str | None = None, method: str = "dfa",
                   feedback=None, *, epochs: int | None = None, steps: int | None = None,
                   seed: int = 0, data_seed: int = 0, data_path=None, backend: str = "numpy",
                   encoder: str | None = None, n_bits: int | None = None,
                   max_train: int | None = None, evaluations: int | None = None,
                   max_eval_chars: int | None = None, n_sample: int = 0,
                   progress: bool | None = None, device_options: dict | None = None,
                   monitor: bool = True, feedback_delay: int = 0,
                   **overrides) -> tuple[dict, History]:
    """Train one model on one dataset with one method and feedback source.

    Parameters
    ----------
    model
        ``"mlp"`` (on a graph dataset: the node features alone), ``"gcn"`` (a graph
        dataset), or ``"transformer"`` (the character Transformer on a text corpus).
    data
        A name of :func:`dfa_bridge.data.load_dataset` (MLP, GCN) or of
        :func:`dfa_bridge.data.text.load_text_dataset` (``"pydoc"``, ``"text"``), or a
        data set object of your own: a :class:`~dfa_bridge.data.tabular.Dataset` or
        :class:`~dfa_bridge.data.graphs.GraphData` (MLP, GCN), a
        :class:`~dfa_bridge.data.text.CharCorpus` (Transformer). None: ``"pydoc"`` for
        the Transformer, ``"digits"`` otherwise.
    method
        ``"bp"``, ``"dfa"`` or ``"shallow"``.
    feedback
        ``"ideal"``, a device name (see :func:`dfa_bridge.training.feedback.make_feedback`),
        or an open :class:`devices.OPUDevice` (a calibrated device, say) with ``n_in >=``
        the classes (tokens) and ``n_out >=`` the sum of the feedback widths. None:
        ``"ideal"`` for ``dfa``, no feedback for ``bp`` and ``shallow``; given to those,
        it only serves the weights-vs-feedback angle of an MLP or a GCN (they never
        project through it).
    epochs
        Epochs of the MLP or the GCN (default: :data:`DEFAULTS`). Must be None for the
        Transformer, which trains in ``steps``: a ValueError says so.
    steps
        Steps of the Transformer (default 1500). Must be None for the MLP and the GCN,
        which train in ``epochs``.
    seed
        Seed of the training streams (:func:`derive_seeds`).
    data_seed
        Seed of a generated dataset or random split (text corpora have a fixed split).
    data_path
        Directory of the dataset's files, or the UTF-8 file of ``data="text"``.
    backend
        ``"numpy"`` or ``"cupy"`` (the data, model and feedback move to the GPU).
    encoder, n_bits
        Error encoder of a device feedback, ``"ternary"`` or ``"bitplanes"`` with
        ``n_bits`` per sign (None: the family's :data:`DEFAULT_ENCODERS`; ``n_bits``
        None: the family's, or 4).
    max_train
        Keep only the first ``max_train`` training samples (tabular data; quick runs).
    evaluations, max_eval_chars
        The Transformer's evaluation checkpoints (None: 5) and cap on the validation
        characters (None: all); see :class:`~dfa_bridge.training.trainer.TextTask`.
    n_sample
        Characters to sample from the trained Transformer into ``result["sample"]``.
    progress
        Progress bar on stderr (None: for runs of four steps or more).
    device_options
        Overrides of a named device's configuration (``camera__adc_bits=6``, ...).
    monitor
        Measure a ``dfa`` run's feedback fidelity at every step when it runs through a
        device with a noise-free twin (:class:`~dfa_bridge.training.feedback_monitor.FeedbackMonitor`;
        the training is unchanged): ``result["feedback_fidelity"]``.
    feedback_delay
        Steps by which DFA's feedback-driven updates lag (0: fresh; 1: one step stale,
        the overlapped schedule of an OPU); see
        :class:`~dfa_bridge.training.trainer.Trainer`. Recorded in the result when not 0.
    **overrides
        Hyper-parameters replacing :data:`DEFAULTS` (MLP: ``hidden``, ``activation``,
        ``dropout``, ``optimizer``, ``lr``, ``weight_decay``, ``batch_size``; the GCN the
        same but ``batch_size``; Transformer: ``n_blocks``, ``width``, ``heads``,
        ``context``, ``tied``, ``optimizer``, ``lr``, ``weight_decay``, ``batch_size``,
        ``warmup``, ``feedback_mode``); None values are ignored.

    Returns
    -------
    (dict, History)
        The result: the run's description (``model``, ``data``, ``method``,
        ``feedback`` (None without a source), ``backend``, ``seed``, ``data_seed`` (MLP,
        GCN), ``settings``), its budget (``epochs`` or ``steps``), its scores
        (``test_accuracy``, ``train_accuracy`` and on a graph ``val_accuracy``; or
        ``val_perplexity``, ``val_loss`` and ``unigram_perplexity``), ``train_loss``,
        ``seconds``, ``diverged_at_step``, the last record's ``alignment_deg``
        (``update_vs_gradient``: None for ``bp`` and ``shallow``; and for the MLP and the
        GCN ``weights_vs_feedback``: None without feedback), ``feedback_fidelity`` (the
        monitor's summary: median ``snr_db``, ``correlation`` and ``encoding_snr_db``
        over the steps and their curve; None when not monitored), ``curves`` per
        evaluation, and ``sample`` when asked; and the history.
    """
    if model not in MODELS:
        raise ValueError(f"model = {model!r}: expected one of {', '.join(MODELS)}")
    if method not in METHODS:
        raise ValueError(f"method = {method!r}: expected one of {', '.join(METHODS)}")
    seed, data_seed = check_seed("seed", seed), check_seed("data_seed", data_seed)
    settings = _settings(model, epochs, steps, overrides)
    _check_family_options(model, max_train, evaluations, max_eval_chars, n_sample)
    xp = backend_module(backend)
    seeds = derive_seeds(seed)
    if model == "transformer":
        run = _language_run("pydoc" if data is None else data, data_path, settings, seeds,
                            evaluations, max_eval_chars)
    else:
        run = _classifier_run(model, "digits" if data is None else data, data_path, data_seed,
                              max_train, settings, seeds)
    widths = feedback_path(run.network, run.feedback_mode).feedback_widths
    default_encoder, default_bits = run.encoder
    if n_bits is None:
        n_bits = default_bits or 4
    source = _feedback_source(feedback, method, widths, run.network.n_outputs, seeds["feedback"],
                              encoder or default_encoder, n_bits, device_options)
    if monitor and method == "dfa":
        try:
            source = monitor_feedback(source)
        except BaseException:
            source.close()
            raise
    try:
        trainer = Trainer(run.network.to(xp), method, source, settings["optimizer"],
                          feedback_mode=run.feedback_mode, lr=settings["lr"],
                          weight_decay=settings["weight_decay"], feedback_delay=feedback_delay)
        history = fit(trainer, run.task(xp), progress=progress)
    finally:
        if source is not None:
            source.close()
    result = _result(model, method, source, backend, seed, data_seed, settings, run, history,
                     n_sample, seeds, xp)
    if feedback_delay:
        result["feedback_delay"] = feedback_delay
    return result, history


def _result(model, method, source, backend, seed, data_seed, settings, run, history, n_sample,
            seeds, xp) -> dict:
    """The plain-data result of a finished run."""
    final = history.final
    result = {"model": model, "data": run.description, "method": method,
              "feedback": None if source is None else source.describe(), "backend": backend,
              "seed": seed}
    if model != "transformer":
        result["data_seed"] = data_seed
    result["settings"] = settings if run.settings is None else run.settings
    budget = BUDGETS[model]
    result[budget] = settings[budget]
    if model == "transformer":
        scores = ("val_perplexity", "val_loss", "train_loss")
        curves = ("step", "train_loss", "val_perplexity")
    else:
        scores = ("test_accuracy", "train_accuracy", "train_loss")
        curves = ("train_loss", "train_accuracy", "test_accuracy")
    result.update({key: final[key] for key in scores})
    if run.corpus is not None:
        result["unigram_perplexity"] = run.corpus.unigram_perplexity()
    result["seconds"] = history.seconds
    result["diverged_at_step"] = history.diverged_at_step
    alignment = {"update_vs_gradient": final["update_angle_deg"]}
    if "feedback_angle_deg" in final:
        alignment["weights_vs_feedback"] = final["feedback_angle_deg"]
    result["alignment_deg"] = alignment
    result["feedback_fidelity"] = (source.summary() if isinstance(source, FeedbackMonitor)
                                   else None)
    if "val_accuracy" in final:
        result["val_accuracy"] = final["val_accuracy"]
    result["curves"] = {key: history.curve(key) for key in curves}
    if n_sample:
        result["sample"] = sample(run.network, run.corpus, n_sample, seed=seeds["sample"], xp=xp)
    return result
