"""Learning and alignment curves of training runs, saved as PNG.

Drawn on :class:`matplotlib.figure.Figure` objects rendered by the Agg canvas: no
pyplot state and no global backend switch, so it works headless and inside other
programs.
"""

from __future__ import annotations

import pathlib
from typing import Mapping

from dfa_bridge.training.trainer import History

__all__ = ["plot_learning_curves", "plot_alignment_curves"]


def _figure(n_axes: int):
    from matplotlib.figure import Figure  # noqa: PLC0415  (plots only)

    figure = Figure(figsize=(5.0 * n_axes, 4.0))
    return figure, figure.subplots(1, n_axes, squeeze=False)[0]


def plot_learning_curves(histories: Mapping[str, History], path) -> pathlib.Path:
    """Training loss and test accuracy per epoch, one line per run.

    Parameters
    ----------
    histories
        Label of each run -> its history.
    path
        PNG file to write.
    """
    figure, (loss_axis, accuracy_axis) = _figure(2)
    for label, history in histories.items():
        epochs = [r["epoch"] for r in history.records]
        loss_axis.plot(epochs, [r["train_loss"] for r in history.records], label=label)
        accuracy_axis.plot(epochs, [100 * r["test_accuracy"] for r in history.records], label=label)
    loss_axis.set(xlabel="epoch", ylabel="training loss", yscale="log", title="loss")
    accuracy_axis.set(xlabel="epoch", ylabel="test accuracy (%)", title="test accuracy")
    for axis in (loss_axis, accuracy_axis):
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    path = pathlib.Path(path)
    figure.savefig(path, dpi=110)
    return path


def plot_alignment_curves(history: History, path, title: str = "") -> pathlib.Path:
    """Per-layer alignment angles per epoch: DFA update vs gradient, weights vs feedback.

    Parameters
    ----------
    history
        A run whose records hold ``update_angle_deg`` and ``feedback_angle_deg``.
    path
        PNG file to write.
    title
        Figure title.
    """
    figure, axes = _figure(2)
    panels = (("update_angle_deg", "DFA update vs BP gradient"),
              ("feedback_angle_deg", r"$W_{i+1}^T \cdots W_N^T$ vs $B_i$"))
    for axis, (key, name) in zip(axes, panels):
        records = [r for r in history.records if r[key] is not None]
        for layer in range(len(records[0][key]) if records else 0):
            axis.plot([r["epoch"] for r in records], [r[key][layer] for r in records],
                      label=f"hidden layer {layer + 1}")
        axis.axhline(90.0, color="k", linestyle=":", linewidth=1)
        axis.set(xlabel="epoch", ylabel="angle (degrees)", ylim=(0, 100), title=name)
        axis.grid(alpha=0.3)
        if records:
            axis.legend()
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    path = pathlib.Path(path)
    figure.savefig(path, dpi=110)
    return path
