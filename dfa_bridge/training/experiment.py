"""One training run from names and numbers: what ``scripts/train.py`` and the tests call.

:func:`run_experiment` loads the data, builds the model, the feedback source and the
trainer, trains, and returns a plain-data result and the :class:`History`. Every random
stream has its own seed derived from ``seed`` (weights, dropout masks, feedback matrix,
data order) and the data from ``data_seed``, so that runs of different methods with the
same seeds start from the same weights and see the same batches.
"""

from __future__ import annotations

import numpy as np

from devices import OPUDevice
from photon.support.arrays import BACKENDS, backend_module

from ..data.tabular import Dataset
from ..data import load_dataset
from .feedback import DeviceFeedback, make_feedback
from ..data.graphs import GraphData
from ..nn.models import GCN, MLP
from .trainer import History, Trainer, fit

__all__ = ["MODELS", "DEFAULTS", "derive_seeds", "run_experiment"]

MODELS = ("mlp", "gcn", "transformer")

#: Hyper-parameters of each model unless given: the MLP of the digits study and the
#: two-layer GCN of Kipf & Welling (hidden width raised to 64).
DEFAULTS = {
    "mlp": {"hidden": (256, 256), "activation": "tanh", "dropout": 0.1, "optimizer": "adam",
            "lr": 1e-3, "weight_decay": 0.0, "batch_size": 32, "epochs": 30},
    "gcn": {"hidden": (64,), "activation": "relu", "dropout": 0.5, "optimizer": "adam",
            "lr": 0.01, "weight_decay": 5e-4, "epochs": 200},
}


def derive_seeds(seed: int) -> dict[str, int]:
    """Independent seeds of the ``model`` (weights, dropout), ``feedback`` and ``order`` streams."""
    children = np.random.SeedSequence(seed).spawn(3)
    return {name: int(child.generate_state(1)[0])
            for name, child in zip(("model", "feedback", "order"), children)}


def run_experiment(model: str = "mlp", data: str = "digits", method: str = "dfa",
                   feedback: str = "ideal", *, epochs: int | None = None, seed: int = 0,
                   data_seed: int = 0, data_path=None, backend: str = "numpy",
                   encoder: str | None = None, n_bits: int = 4, max_train: int | None = None,
                   progress: bool | None = None, device_options: dict | None = None,
                   **overrides) -> tuple[dict, History]:
    """Train one model on one dataset with one method and feedback source.

    Parameters
    ----------
    model
        ``"mlp"`` (on a graph dataset: the node features alone), ``"gcn"``, or
        ``"transformer"`` (a text dataset; delegated to
        :func:`dfa_bridge.training.language.run_language_experiment`, ``epochs`` read as steps).
    data
        A name of :func:`dfa_bridge.data.load_dataset`.
    method
        ``"bp"``, ``"dfa"`` or ``"shallow"``.
    feedback
        ``"ideal"``, a device name (see :func:`dfa_bridge.training.feedback.make_feedback`), or an
        open :class:`devices.OPUDevice` (a calibrated device, say) with ``n_in >= classes``
        and ``n_out >=`` the sum of the hidden widths.
    epochs
        Epochs (default: the model's, :data:`DEFAULTS`).
    seed
        Seed of the training streams (:func:`derive_seeds`).
    data_seed
        Seed of the dataset (generated graph, random split).
    data_path
        Directory of the dataset's files, where it needs one.
    backend
        ``"numpy"`` or ``"cupy"`` (the data, model and feedback move to the GPU).
    encoder, n_bits
        Error encoder of a device feedback (None: ``ternary`` for the MLP and the GCN,
        ``bitplanes`` for the Transformer, see :func:`~dfa_bridge.training.language.run_language_experiment`).
    max_train
        Keep only the first ``max_train`` training samples (tabular data; for quick runs).
    device_options
        Overrides of a named device's configuration (``camera__adc_bits=6``, ...).
    progress
        Progress bar on stderr (None: for runs of four steps or more).
    **overrides
        Hyper-parameters replacing :data:`DEFAULTS` (``hidden``, ``activation``,
        ``dropout``, ``optimizer``, ``lr``, ``weight_decay``, and ``batch_size`` for the
        MLP; the GCN trains full batch); None values are ignored.

    Returns
    -------
    (dict, History)
        The result (``test_accuracy``, ``train_loss``, ``epochs``, ``seconds``,
        ``alignment_deg``, the per-epoch ``curves`` and the run's description) and the
        per-epoch history.
    """
    if model not in MODELS:
        raise ValueError(f"model = {model!r}: expected one of {', '.join(MODELS)}")
    if model == "transformer":  # trained in steps, not epochs: see dfa_bridge.training.language
        from .language import run_language_experiment  # noqa: PLC0415

        if epochs is not None:
            overrides.setdefault("steps", epochs)
        return run_language_experiment(data, method, feedback, data_path=data_path, seed=seed,
                                       backend=backend, encoder=encoder or "bitplanes",
                                       n_bits=n_bits,
                                       progress=progress, **overrides)
    encoder = encoder or "ternary"
    overrides = {k: v for k, v in overrides.items() if v is not None}
    unknown = sorted(set(overrides) - set(DEFAULTS[model]))
    if unknown:
        raise ValueError(f"{unknown[0]} = {overrides[unknown[0]]!r}: expected one of the "
                         f"hyper-parameters of model {model!r}: {', '.join(DEFAULTS[model])}")
    settings = {**DEFAULTS[model], **overrides}
    if epochs is not None:
        settings["epochs"] = epochs
    xp = backend_module(backend)
    seeds = derive_seeds(seed)
    dataset = load_dataset(data, data_path, seed=data_seed)
    if model == "gcn" and not isinstance(dataset, GraphData):
        raise ValueError(f"data = {data!r}: expected a graph dataset for model 'gcn' "
                         "(csbm, cora, citeseer, pubmed)")
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
    else:
        network = MLP(dataset.n_features, dataset.n_classes, hidden, settings["activation"],
                      settings["dropout"], seed=seeds["model"])
    if isinstance(feedback, OPUDevice):
        source = DeviceFeedback(feedback, hidden, dataset.n_classes, encoder=encoder,
                                n_bits=n_bits)
    else:
        source = make_feedback(feedback, hidden, dataset.n_classes, seed=seeds["feedback"],
                               encoder=encoder, n_bits=n_bits, **(device_options or {}))
    try:
        trainer = Trainer(network.to(xp), method, source, settings["optimizer"],
                          lr=settings["lr"], weight_decay=settings["weight_decay"])
        history = fit(trainer, dataset.to(xp), settings["epochs"],
                      batch_size=settings.get("batch_size", 1), seed=seeds["order"],
                      progress=progress)
    finally:
        source.close()
    final = history.final
    result = {
        "model": model, "data": dataset.describe(), "method": method,
        "feedback": source.describe(), "backend": backend, "seed": seed, "data_seed": data_seed,
        "settings": {**settings, "hidden": list(hidden)},
        "epochs": settings["epochs"],
        "test_accuracy": final["test_accuracy"],
        "train_accuracy": final["train_accuracy"],
        "train_loss": final["train_loss"],
        "seconds": history.seconds,
        "diverged_at_step": history.diverged_at_step,
        "alignment_deg": {"update_vs_gradient": final["update_angle_deg"],
                          "weights_vs_feedback": final["feedback_angle_deg"]},
    }
    if "val_accuracy" in final:
        result["val_accuracy"] = final["val_accuracy"]
    result["curves"] = {key: [record[key] for record in history.records]
                        for key in ("train_loss", "train_accuracy", "test_accuracy")}
    return result, history
