"""Feedback fidelity without training: how far the device's ``B_hat e`` is from ``B e``.

A DFA co-processor is only as good as the feedback it delivers. For a device and a
realistic error distribution this package measures how far the projection the device
returns, ``B_hat e`` (the operator in complement linear mode, the error encoded into
binary planes, as :class:`~dfa_bridge.training.feedback.DeviceFeedback` does at every
step), is from ``B e``, the exact product with the matrix of the same device's
transmission matrix, and splits the error variance into its sources, each next to its
prediction from the physics (docs/design.md section 7).

* :mod:`.errors`: the errors (:class:`ErrorSet`: a digits MLP, a Cora GCN, a character
  language model) and the encoders' documented quantization;
* :mod:`.devices`: the clean twin, each source switched on alone over it, projections;
* :mod:`.knowledge`: what a user of a real device knows (its configuration, and the
  calibration's estimates from separate frames): the predictions' only inputs;
* :mod:`.predict`: the predictions (:class:`DeviceModel`);
* :mod:`.budget`: :func:`noise_budget`, :func:`budget_check`, :func:`feedback_fidelity`;
* :mod:`.report`: :func:`budget_markdown`.
"""

from .budget import (BUDGET_CHECK, INPUTS, LASER_REALIZATIONS, REALIZATIONS, TM_REALIZATIONS,
                     budget_check, feedback_fidelity, noise_budget)
from .devices import (SOURCES, budget_config, clean_config, drift_correlation, fit_operator,
                      project, source_overrides)
from .errors import (ENCODINGS, ERROR_KINDS, ErrorSet, classification_errors,
                     documented_encoding, documented_quantization, graph_errors,
                     language_errors, task_errors)
from .knowledge import DeviceKnowledge, device_knowledge
from .predict import DeviceModel
from .report import budget_markdown

__all__ = ["SOURCES", "BUDGET_CHECK", "INPUTS", "REALIZATIONS", "LASER_REALIZATIONS",
           "TM_REALIZATIONS", "ENCODINGS", "ERROR_KINDS", "ErrorSet", "classification_errors", "graph_errors",
           "language_errors", "task_errors", "documented_encoding", "documented_quantization",
           "budget_config", "clean_config", "source_overrides", "drift_correlation",
           "fit_operator", "project", "DeviceKnowledge", "device_knowledge", "DeviceModel",
           "noise_budget", "budget_check", "feedback_fidelity", "budget_markdown"]
