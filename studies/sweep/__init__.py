"""The noise and quantization sweep: DFA through virtual OPUs of varied settings, decided.

Split by role:

:mod:`~studies.sweep.spec`     what a run is: the task (any task the trainer runs), the
                               axes and points, the resolved settings and their key, the
                               code version
:mod:`~studies.sweep.store`    where runs are kept: an append-only JSON-lines store with
                               a lock and claims
:mod:`~studies.sweep.job`      one run from its resolved settings (what the code version
                               hashes, with the library)
:mod:`~studies.sweep.run`      how runs are executed: serial, local processes or Dask,
                               seeds added until every point is decided
:mod:`~studies.sweep.summary`  what the runs say: decisions against ideal DFA, the design
                               answer, the cost front
:mod:`~studies.sweep.render`   how they are shown: Markdown and PNG figures

Usage from Python on a user's own task::

    from studies.sweep import StudyTask, run_sweep, summarize, sweep_points
    task = StudyTask("gcn", my_graph_data)           # a GraphData of your own
    records = run_sweep("runs.jsonl", sweep_points(["encoding"]), task=task)
    summary = summarize(records)
"""

from .render import markdown, plot_sweep
from .job import run_job
from .run import DaskUnavailable, Job, execute, run_sweep
from .spec import (AXES, REFERENCES, TASKS, Axis, StudyTask, code_version, parse_encoding,
                   point_key, point_label, run_settings, settings_key, sweep_points)
from .store import ResultStore, StoreError
from .summary import DecisionRule, design_answer, summarize

__all__ = ["AXES", "REFERENCES", "TASKS", "Axis", "StudyTask", "code_version", "parse_encoding",
           "point_key", "point_label", "run_settings", "settings_key", "sweep_points",
           "ResultStore", "StoreError", "DaskUnavailable", "Job", "execute", "run_job",
           "run_sweep", "DecisionRule", "design_answer", "summarize", "markdown", "plot_sweep"]
