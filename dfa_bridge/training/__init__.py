"""Training by backpropagation, DFA or the shallow baseline, with feedback through any device.

:mod:`~dfa_bridge.training.trainer`     the one loop for the MLP, the GCN and the Transformer:
                                        :class:`Trainer`, the tasks, :func:`fit`, :class:`History`
:mod:`~dfa_bridge.training.language`    the character Transformer's defaults and sampling
:mod:`~dfa_bridge.training.feedback`    ideal (Gaussian) and device feedback (through :class:`devices.OPU`)
:mod:`~dfa_bridge.training.alignment`   update-vs-gradient and weights-vs-feedback angles
:mod:`~dfa_bridge.training.experiment`  one run from names and numbers (``scripts/train.py``)

Imports point down: ``experiment -> language -> trainer -> (alignment, feedback)``.
"""

from .alignment import angle_deg, feedback_angles, update_angles
from .experiment import run_experiment
from .feedback import DeviceFeedback, Feedback, IdealFeedback, StructuredFeedback, make_feedback
from .language import sample
from .trainer import (METHODS, GraphTask, History, TabularTask, Task, TextTask, Trainer, fit)

__all__ = ["angle_deg", "feedback_angles", "update_angles", "run_experiment",
           "DeviceFeedback", "Feedback", "IdealFeedback", "StructuredFeedback", "make_feedback",
           "sample",
           "METHODS", "History", "Trainer", "fit", "Task", "TabularTask", "GraphTask", "TextTask"]
