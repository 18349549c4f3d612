"""Training by backpropagation, DFA or the shallow baseline, with feedback through any device.

:mod:`~dfa_bridge.training.trainer`     ``bp`` / ``dfa`` / ``shallow`` steps, evaluation, the training loop
:mod:`~dfa_bridge.training.language`    the character Transformer's trainer, perplexity, sampling
:mod:`~dfa_bridge.training.feedback`    ideal (Gaussian) and device feedback (through :class:`devices.OPU`)
:mod:`~dfa_bridge.training.alignment`   update-vs-gradient and weights-vs-feedback angles
:mod:`~dfa_bridge.training.experiment`  one run from names and numbers (``scripts/train.py``)
"""

from .alignment import angle_deg, feedback_angles, update_angles
from .experiment import run_experiment
from .feedback import DeviceFeedback, Feedback, IdealFeedback, make_feedback
from .language import LanguageTrainer, fit_language_model, run_language_experiment, sample
from .trainer import METHODS, History, Trainer, fit

__all__ = ["angle_deg", "feedback_angles", "update_angles", "run_experiment",
           "DeviceFeedback", "Feedback", "IdealFeedback", "make_feedback",
           "LanguageTrainer", "fit_language_model", "run_language_experiment", "sample",
           "METHODS", "History", "Trainer", "fit"]
