"""Reading a sweep back from its store, computing nothing: what a report shows.

:func:`stored_sweep` finds, for a sweep's points and references, the stored runs of seed
indices 0, 1, ... (as far as they go) whose settings match, *whatever code computed
them*: a run of the current code is preferred, and the summary's ``code`` entry says
plainly when the runs came from other code. A reader that must stay fast (the report)
uses it instead of :func:`~studies.sweep.run.run_sweep`.
"""

from __future__ import annotations

from typing import Sequence

from .run import make_jobs
from .spec import REFERENCES, StudyTask, code_version, point_key, training_key
from .store import ResultStore
from .summary import DecisionRule

__all__ = ["stored_sweep"]


def _index(records: Sequence[dict]) -> dict:
    """Code-free key -> the record to use (the current code's if there is one)."""
    current = code_version()
    index: dict = {}
    for record in records:
        key = training_key(record["settings"])
        if key not in index or (record["settings"]["code"] == current
                                and index[key]["settings"]["code"] != current):
            index[key] = record
    return index


def stored_sweep(store, points: Sequence[dict], *, task: StudyTask, base="lab-bench",
                 seed: int = 0, encoding: str | None = None, rule: DecisionRule = DecisionRule(),
                 reference_seeds: int = 5) -> tuple[list[dict], dict]:
    """The stored runs of a sweep, and what is missing.

    Returns
    -------
    (list of dict, dict)
        The records (labelled with these points; seed indices from 0 while stored, up to
        the cap) and ``{"points": points with no run, "runs": runs found}``.
    """
    store = store if isinstance(store, ResultStore) else ResultStore(store)
    index = _index(store.read().records)
    cap = rule.looks()[-1]
    cache: dict = {}
    common = dict(base=base, seed=seed, encoding=encoding, fidelity_errors=0, cache=cache)
    records, empty = [], []
    wanted = [(name, reference_seeds if name != "ideal" else cap) for name in REFERENCES]
    wanted += [(point, cap) for point in points]
    for point, limit in wanted:
        found = []
        for seed_index in range(limit):
            (job,) = make_jobs(task, [(point, seed_index)], **common)
            record = index.get(training_key(job.settings))
            if record is None:
                break
            found.append({**record, "label": job.label})
        if not found and not isinstance(point, str):
            empty.append(point)
        records += found
    return records, {"points": empty, "runs": len(records),
                     "point_keys": [point_key(p) for p in empty]}
