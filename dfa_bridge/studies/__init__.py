"""Studies built on the trainer: what the scripts under ``scripts/`` run.

:mod:`~dfa_bridge.studies.acceptance`  several methods on one task, same seeds, with goals
:mod:`~dfa_bridge.studies.sweep`       DFA through virtual OPUs whose noise and quantization vary,
                                      over seeds, in parallel (processes or Dask)
:mod:`~dfa_bridge.studies.noise_budget` the feedback's fidelity and noise budget, without training
:mod:`~dfa_bridge.studies.benchmark`   BP against DFA step time
:mod:`~dfa_bridge.studies.plots`       learning and alignment curves as PNG
"""

from .acceptance import run_study
from .benchmark import time_training_steps
from .sweep import run_sweep

__all__ = ["run_study", "time_training_steps", "run_sweep"]
