"""One training run from names and numbers: what ``scripts/train.py``, the studies and the tests call.

:func:`run_experiment` loads the data, builds the model (an MLP, a GCN or the character
Transformer), the feedback source, the :class:`~dfa_bridge.training.trainer.Trainer` and
the :class:`~dfa_bridge.training.trainer.Task`, trains through the one loop
(:func:`~dfa_bridge.training.trainer.fit`), and returns a plain-data result and the
:class:`~dfa_bridge.training.trainer.History`. The MLP and the GCN train in epochs, the
Transformer in steps (the family's ``budget``); each is given in its own unit. Everything
that differs between the families is read from their records
(:data:`~dfa_bridge.training.families.FAMILIES`): this module tests no family's name.

Every random stream has its own seed derived from ``seed`` (:func:`derive_seeds`:
weights, feedback matrix, data order, sampling) and a generated dataset or split from
``data_seed``, so that runs of different methods with the same seeds start from the same
weights and see the same batches.

``data`` is a name (:func:`dfa_bridge.data.load_dataset`, a text corpus) or a user's own
data set object (a :class:`~dfa_bridge.data.tabular.Dataset`,
:class:`~dfa_bridge.data.graphs.GraphData` or :class:`~dfa_bridge.data.text.CharCorpus`).
The error encoding of a device's feedback defaults per family (the record's ``encoder``,
the answer of the noise study, docs/noise); a run through a virtual device records its
feedback's fidelity at every step (:mod:`~dfa_bridge.training.feedback_monitor`).
"""

from __future__ import annotations

import math

import numpy as np

from devices import OPUDevice
from photon.support.arguments import check_choice, check_int, check_number, check_seed
from photon.support.arrays import backend_module

from .families import FamilyRun, ModelFamily, family, family_names
from .feedback import DeviceFeedback, Feedback, make_feedback
from .feedback_monitor import FeedbackMonitor, monitor_feedback
from .language import sample
from .trainer import METHODS, History, Trainer, feedback_path, fit

__all__ = ["derive_seeds", "resolve_settings", "run_experiment"]

_SEED_STREAMS = ("model", "feedback", "order", "sample")


def derive_seeds(seed: int) -> dict[str, int]:
    """Independent seeds of the ``model`` (weights, dropout), ``feedback``, ``order`` and ``sample`` streams.

    The children of ``numpy.random.SeedSequence(seed)``, one per stream, the same for
    every model family (``sample`` is used by the Transformer alone).
    """
    children = np.random.SeedSequence(seed).spawn(len(_SEED_STREAMS))
    return {name: int(child.generate_state(1)[0]) for name, child in zip(_SEED_STREAMS, children)}


def resolve_settings(model: str, epochs: int | None = None, steps: int | None = None,
                     **overrides) -> dict:
    """Every hyper-parameter of a run of ``model``: the family's ``defaults`` with ``overrides`` and the budget.

    What a run's result depends on besides its data, seeds and feedback: studies key
    their stored results on it. Raises a ValueError naming an unknown or out-of-range
    hyper-parameter, or a budget in the other family's unit.
    """
    settings = _settings(family(model), epochs, steps, overrides)
    return _plain_settings(settings)


def _plain_settings(settings: dict) -> dict:
    """The settings as plain data (a tuple as a list)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()}


def _settings(record: ModelFamily, epochs, steps, overrides: dict) -> dict:
    model, defaults = record.name, record.defaults
    overrides = {k: v for k, v in overrides.items() if v is not None}
    unknown = sorted(set(overrides) - set(defaults))
    if unknown:
        raise ValueError(f"{unknown[0]} = {overrides[unknown[0]]!r}: expected one of the "
                         f"hyper-parameters of model {model!r}: {', '.join(defaults)}")
    budget, other = record.budget, record.other_budget
    given = {"epochs": epochs, "steps": steps}
    if given[other] is not None:
        raise ValueError(f"{other} = {given[other]!r}: expected None for model {model!r}, which "
                         f"trains in {budget}: give {budget} instead")
    settings = {**defaults, **overrides}
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


def _names(names) -> str:
    return " or ".join(repr(name) for name in names) or "no model"


def _check_family_options(record: ModelFamily, max_train, evaluations, max_eval_chars,
                          n_sample) -> None:
    """Refuse a run option that does not apply to the family, naming those it applies to."""
    model = record.name
    if max_train is not None and not record.max_train_applies:
        raise ValueError(f"max_train = {max_train!r}: expected None for model {model!r} "
                         "(it keeps the first samples of tabular data)")
    if not record.is_language:
        for name, value in (("evaluations", evaluations), ("max_eval_chars", max_eval_chars)):
            if value is not None:
                raise ValueError(f"{name} = {value!r}: expected None for model {model!r}, which "
                                 "is evaluated after every epoch (it applies to "
                                 f"{_names(family_names(is_language=True))})")
    if n_sample and not record.samples_text:
        raise ValueError(f"n_sample = {n_sample!r}: expected 0 for model {model!r} (only "
                         f"{_names(family_names(samples_text=True))} sample text)")


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
        dataset), or ``"transformer"`` (the character Transformer on a text corpus): a
        name of :data:`~dfa_bridge.training.families.FAMILIES`.
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
        Epochs of the MLP or the GCN (default: the family's ``defaults``). Must be None for the
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
        ``n_bits`` per sign (None: the family's ``encoder``; ``n_bits``
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
        Hyper-parameters replacing the family's ``defaults`` (MLP: ``hidden``, ``activation``,
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
    record = family(model)
    check_choice("method", method, METHODS)
    seed, data_seed = check_seed("seed", seed), check_seed("data_seed", data_seed)
    settings = _settings(record, epochs, steps, overrides)
    _check_family_options(record, max_train, evaluations, max_eval_chars, n_sample)
    xp = backend_module(backend)
    seeds = derive_seeds(seed)
    run = record.build(record, record.default_data if data is None else data,
                       data_path=data_path, data_seed=data_seed, max_train=max_train,
                       settings=settings, seeds=seeds, evaluations=evaluations,
                       max_eval_chars=max_eval_chars)
    widths = feedback_path(run.network, run.feedback_mode).feedback_widths
    default_encoder, default_bits = record.encoder
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
    result = _result(record, method, source, backend, seed, data_seed, settings, run, history,
                     n_sample, seeds, xp)
    if feedback_delay:
        result["feedback_delay"] = feedback_delay
    return result, history


def _result(record: ModelFamily, method, source, backend, seed, data_seed, settings,
            run: FamilyRun, history, n_sample, seeds, xp) -> dict:
    """The plain-data result of a finished run."""
    final = history.final
    result = {"model": record.name, "data": run.description, "method": method,
              "feedback": None if source is None else source.describe(), "backend": backend,
              "seed": seed}
    if not record.is_language:
        result["data_seed"] = data_seed
    result["settings"] = _plain_settings(settings)
    result[record.budget] = settings[record.budget]
    result.update({key: final[key] for key in record.scores})
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
    result["curves"] = {key: history.curve(key) for key in record.curves}
    if n_sample:
        result["sample"] = sample(run.network, run.corpus, n_sample, seed=seeds["sample"], xp=xp)
    return result
