"""Running a sweep: one run, the engines (serial, local processes, Dask), seeds until decided.

:func:`~studies.sweep.job.run_job` trains one run from its resolved settings alone.
:func:`execute` runs the jobs a store lacks, in
this process, in ``workers`` local processes or on a Dask cluster, and appends each
finished run to the store as it arrives (the parent alone writes); :func:`run_sweep`
adds seeds to every point until its decision is taken (:mod:`studies.sweep.summary`).

Each run computes with one BLAS thread, so its numbers do not depend on the engine: a
serial run, local processes and Dask give the same records.

Dask
----
``dask="local"`` starts a ``LocalCluster`` of ``workers`` processes here and prints its
scheduler's and dashboard's addresses (the dashboard needs ``bokeh``, in the ``dask``
extra); any other value is a scheduler's address, given up after
:data:`DASK_CONNECT_S` seconds with one line naming it. Task keys name the point and the
seed (``gcn-cora encoding=ternary, seed=3 (1f2e3d4c)``). Each result is released on the
cluster once it is stored, so a worker lost later never makes the scheduler compute a
stored run again. While the cluster has no worker, the client says it is waiting and for
how long.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import datetime
import importlib.util
import multiprocessing
import os
import socket
import sys
import time
from typing import Callable, Iterable, Sequence

from photon.support.arguments import check_int
from photon.support.progress import Progress

from .job import run_job
from .spec import REFERENCES, TASKS, StudyTask, point_key, point_label, run_settings, settings_key
from .store import ResultStore, StoreError
from .summary import DecisionRule, point_decisions

__all__ = ["Job", "DaskUnavailable", "DASK_CONNECT_S", "make_jobs", "execute",
           "run_sweep", "dask_client", "StoreError"]

#: Seconds a ``--dask ADDRESS`` connection is tried before giving up.
DASK_CONNECT_S = 8.0
#: Seconds between two "waiting for Dask workers" messages.
DASK_WAIT_REPORT_S = 10.0


class DaskUnavailable(ValueError):
    """No Dask scheduler at the address given (or no Dask installed), naming it."""


@dataclasses.dataclass
class Job:
    """One run to do: its key, resolved settings, labels and the task's run arguments."""

    key: str
    settings: dict
    label: dict
    arguments: dict

    @property
    def name(self) -> str:
        """``TASK POINT, seed=N (KEY8)``: the run's name (a Dask task key)."""
        return (f"{self.label['task']} {point_label(self.label['point'])}, "
                f"seed={self.settings['seed']} ({self.key[:8]})")

    def payload(self) -> dict:
        return {"key": self.key, "settings": self.settings, "label": self.label,
                "arguments": self.arguments}


# ---------------------------------------------------------------------------- engines
def _worker_init() -> None:
    """Local worker: one thread per BLAS, so that parallel processes do not oversubscribe."""
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = "1"


def _serial(jobs, runner, say):
    for job in jobs:
        yield job, runner(job.payload())


def _local_pool(jobs, runner, workers: int, say):
    context = multiprocessing.get_context("spawn")  # no forked thread state
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context,
                                                initializer=_worker_init) as pool:
        futures = {pool.submit(runner, job.payload()): job for job in jobs}
        try:
            for future in concurrent.futures.as_completed(futures):
                yield futures[future], future.result()
        finally:
            for future in futures:
                future.cancel()


def _dashboard_available() -> bool:
    return importlib.util.find_spec("bokeh") is not None


@contextlib.contextmanager
def dask_client(address: str, workers: int, say: Callable[[str], None]):
    """A Dask client on ``address`` (``"local"``: a LocalCluster of ``workers`` here).

    Raises
    ------
    DaskUnavailable
        Dask is not installed, or no scheduler answered at ``address`` within
        :data:`DASK_CONNECT_S` seconds (one line naming it).
    """
    try:
        from dask.distributed import Client, LocalCluster  # noqa: PLC0415  (optional extra)
    except ImportError:
        raise DaskUnavailable(f"dask = {address!r}: expected the dask[distributed] package "
                              "(pip install 'photon-dfa[dask]')") from None
    cluster = None
    if address == "local":
        dashboard = ":0" if _dashboard_available() else None
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=dashboard)
        client = Client(cluster)
        link = client.dashboard_link if dashboard else "none (pip install bokeh)"
        say(f"Dask LocalCluster of {workers} worker(s): scheduler {cluster.scheduler_address}, "
            f"dashboard {link}")
    else:
        _probe(address)
        try:
            client = Client(address, timeout=DASK_CONNECT_S)
        except Exception as error:  # noqa: BLE001  (OSError, TimeoutError, ValueError ...)
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise DaskUnavailable(
                f"dask = {address!r}: no Dask scheduler answered within {DASK_CONNECT_S:g} s "
                f"({reason}): expected the address of a running scheduler "
                "(tcp://HOST:8786) or 'local'") from None
        try:
            link = client.dashboard_link
        except Exception:  # noqa: BLE001  (a scheduler without a dashboard)
            link = "none"
        say(f"Dask scheduler {address}: dashboard {link}")
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _probe(address: str) -> None:
    """A TCP address that refuses or does not answer fails here, at once or after the timeout."""
    if not isinstance(address, str) or not address.startswith("tcp://"):
        return
    host, _, port = address[len("tcp://"):].rpartition(":")
    if not host or not port.isdigit():
        raise DaskUnavailable(f"dask = {address!r}: expected tcp://HOST:PORT or 'local'")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=DASK_CONNECT_S):
            pass
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise DaskUnavailable(
            f"dask = {address!r}: no Dask scheduler answered within {DASK_CONNECT_S:g} s "
            f"({reason}): expected the address of a running scheduler (tcp://HOST:8786) or "
            "'local'") from None


def _worker_count(client) -> int:
    try:
        return len(client.scheduler_info().get("workers", {}))
    except Exception:  # noqa: BLE001
        return 0


def _wait_for_workers(client, address: str, say) -> None:
    start = time.monotonic()
    while _worker_count(client) == 0:
        say(f"no Dask worker at {address}: waiting for one "
            f"({time.monotonic() - start:.0f} s so far)")
        with contextlib.suppress(Exception):
            client.wait_for_workers(1, timeout=DASK_WAIT_REPORT_S)


def _dask(jobs, runner, client, address: str, say):
    from dask.distributed import wait  # noqa: PLC0415  (optional extra)

    _wait_for_workers(client, address, say)
    pending = {client.submit(runner, job.payload(), key=job.name, pure=False): job
               for job in jobs}
    waiting_since = None
    try:
        while pending:
            done, _ = wait(list(pending), timeout=DASK_WAIT_REPORT_S,
                           return_when="FIRST_COMPLETED")
            if not done:
                if _worker_count(client) == 0:
                    waiting_since = waiting_since or time.monotonic()
                    say(f"no Dask worker at {address}: {len(pending)} run(s) waiting "
                        f"({time.monotonic() - waiting_since:.0f} s so far)")
                continue
            waiting_since = None
            for future in done:
                job = pending.pop(future)
                record = future.result()
                yield job, record      # the caller stores it ...
                future.release()       # ... then the cluster forgets it
    finally:
        for future in pending:
            future.cancel()


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def execute(store: ResultStore, jobs: Sequence[Job], *, runner: Callable = run_job,
            workers: int = 1, dask: str | None = None, progress: bool | None = None,
            description: str = "runs", say: Callable[[str], None] | None = None,
            poll_s: float = 2.0, client=None) -> dict:
    """Run the jobs ``store`` lacks and append each finished run; returns ``key -> record``.

    Every job is claimed in the store before it runs (a job claimed by another live
    writer is left to it and its line awaited; one whose claim goes stale is run here).
    The parent alone writes the store.

    Parameters
    ----------
    store
        The results store.
    jobs
        The runs wanted (duplicates of a key run once).
    runner
        The function running one job's payload (:func:`run_job`; replaceable in tests;
        importable by the workers when ``workers > 1`` or with Dask).
    workers
        Local processes (1: in this process), or the workers of ``dask="local"``.
    dask
        ``"local"`` or a Dask scheduler's address; None: no Dask.
    progress
        Progress bar over the runs done here.
    description
        What the bar says.
    say
        Where messages go (stderr).
    poll_s
        Seconds between two reads of the store while waiting for another writer.
    client
        An open Dask client on ``dask`` (None: one is opened for these jobs).
    """
    check_int("workers", workers)
    say = say or _stderr
    if dask is not None and client is None:
        with dask_client(dask, workers, say) as opened:
            return execute(store, jobs, runner=runner, workers=workers, dask=dask,
                           progress=progress, description=description, say=say,
                           poll_s=poll_s, client=opened)
    unique = list({job.key: job for job in jobs}.values())
    done = {k: r for k, r in store.read().by_key().items()}
    todo = [job for job in unique if job.key not in done]
    while todo:
        mine = [job for job in todo if store.claim(job.key)]
        theirs = [job for job in todo if job not in mine]
        if mine:  # another writer may have stored and released one since the store was read
            stored = store.read(warn=False).by_key()
            for job in [job for job in mine if job.key in stored]:
                done[job.key] = stored[job.key]
                store.release(job.key)
                mine.remove(job)
        try:
            if mine:
                _run_claimed(store, mine, runner, workers, dask, client, progress, description,
                             say, done)
        finally:
            for job in mine:
                store.release(job.key)
        if theirs:
            say(f"{len(theirs)} run(s) claimed by another writer of {store.path}: waiting "
                "for their lines")
            theirs = _await_others(store, theirs, done, poll_s)
        todo = theirs  # those whose writer vanished: claim and run them here
    return done


def _run_claimed(store, jobs, runner, workers, dask, client, progress, description, say, done):
    if dask is not None:
        engine = _dask(jobs, runner, client, dask, say)
    elif workers > 1 and len(jobs) > 1:
        engine = _local_pool(jobs, runner, min(workers, len(jobs)), say)
    else:
        engine = _serial(jobs, runner, say)
    with Progress(len(jobs), description, enabled=progress, unit="run", min_steps=1) as bar:
        for job, record in engine:
            record = dict(record)
            record["written"] = {"host": socket.gethostname(), "pid": os.getpid(),
                                 "time": datetime.datetime.now(datetime.timezone.utc)
                                 .isoformat(timespec="seconds")}
            store.append(record)
            store.release(job.key)
            done[job.key] = record
            bar.update()


def _await_others(store, jobs, done, poll_s) -> list:
    """Wait until every job's line is in the store or its claim is gone; returns the latter."""
    waiting = list(jobs)
    while waiting:
        found = store.read(warn=False).by_key()
        still = []
        for job in waiting:
            if job.key in found:
                done[job.key] = found[job.key]
            elif store.is_claimed(job.key):
                still.append(job)
            else:
                return [j for j in waiting if j.key not in found]
        waiting = still
        if waiting:
            time.sleep(poll_s)
    return []


# ---------------------------------------------------------------------------- a sweep
def make_jobs(task: StudyTask, wanted: Iterable[tuple], *, base, seed: int,
              encoding: str | None, fidelity_errors: int, cache: dict | None = None
              ) -> list[Job]:
    """The jobs of ``(point or reference name, seed index)`` pairs."""
    cache = {} if cache is None else cache
    arguments = task.run_arguments()
    jobs = []
    for point, index in wanted:
        handle = (point if isinstance(point, str) else point_key(point), index)
        if handle not in cache:
            resolved = run_settings(point, index, task=task, base=base, seed=seed,
                                    encoding=encoding, fidelity_errors=fidelity_errors)
            cache[handle] = Job(settings_key(resolved["settings"]), resolved["settings"],
                                resolved["label"], arguments)
        jobs.append(cache[handle])
    return jobs


def run_sweep(store, points: Sequence[dict], *, task: StudyTask | str = "gcn-cora",
              base="lab-bench", seed: int = 0, encoding: str | None = None,
              rule: DecisionRule = DecisionRule(), reference_seeds: int = 5,
              fidelity_errors: int = 512, workers: int = 1, dask: str | None = None,
              progress: bool | None = None, runner: Callable = run_job,
              say: Callable[[str], None] | None = None) -> list[dict]:
    """Run a sweep's points with seeds added until each point is decided; returns its records.

    Parameters
    ----------
    store
        A :class:`~studies.sweep.store.ResultStore` or its path.
    points
        From :func:`~studies.sweep.spec.sweep_points`.
    task
        A :class:`~studies.sweep.spec.StudyTask` or a name of ``TASKS``.
    base
        The device the points modify (preset name, YAML path or DeviceConfig).
    seed
        First training seed (seed index ``i`` trains with ``seed + i``).
    encoding
        Encoding of points that do not set one (None: the family's default).
    rule
        The decision rule (margin, alpha, first look, seed cap).
    reference_seeds
        Seeds of the backpropagation and shallow references (shown, not decided); ideal
        DFA gets as many as the most demanding point.
    fidelity_errors, workers, dask, progress, runner, say
        See :func:`~studies.sweep.spec.run_settings` and :func:`execute`.

    Returns
    -------
    list of dict
        The records of the runs the decisions used (and the references), labelled with
        this sweep's points.
    """
    if isinstance(task, str):
        if task not in TASKS:
            raise ValueError(f"task = {task!r}: expected one of {', '.join(map(repr, TASKS))} or a StudyTask")
        task = TASKS[task]
    check_int("reference_seeds", reference_seeds)
    store = store if isinstance(store, ResultStore) else ResultStore(store)
    if dask is None:
        return _sweep(store, points, task, base, seed, encoding, rule, reference_seeds,
                      fidelity_errors, workers, None, None, progress, runner, say)
    with dask_client(dask, workers, say or _stderr) as client:  # one client for every look
        return _sweep(store, points, task, base, seed, encoding, rule, reference_seeds,
                      fidelity_errors, workers, dask, client, progress, runner, say)


def _sweep(store, points, task, base, seed, encoding, rule, reference_seeds, fidelity_errors,
           workers, dask, client, progress, runner, say) -> list[dict]:
    looks = rule.looks()
    needs = {point_key(p): looks[0] for p in points}
    by_key = {point_key(p): p for p in points}
    shown = min(reference_seeds, looks[-1])
    cache: dict = {}
    common = dict(base=base, seed=seed, encoding=encoding, fidelity_errors=fidelity_errors,
                  cache=cache)
    metric = task.metric
    records: dict = {}
    while True:
        ideal_need = max([shown, *needs.values()])
        wanted = [("ideal", i) for i in range(ideal_need)]
        wanted += [(name, i) for name in REFERENCES if name != "ideal" for i in range(shown)]
        wanted += [(by_key[k], i) for k, n in needs.items() for i in range(n)]
        jobs = make_jobs(task, wanted, **common)
        missing = list({job.key: job for job in jobs if job.key not in records}.values())
        if missing:
            found = execute(store, missing, runner=runner, workers=workers, dask=dask,
                            client=client, progress=progress, say=say,
                            description=f"sweep {task.label} ({max(needs.values(), default=shown)} "
                                        "seeds)")
            records.update({job.key: found[job.key] for job in missing})
        groups: dict = {}
        for job in jobs:
            groups.setdefault(point_key(job.label["point"]), []).append(
                {**records[job.key], "label": job.label})
        ideal = groups.pop(point_key({"reference": "ideal"}), [])
        for name in REFERENCES:
            groups.pop(point_key({"reference": name}), None)
        decisions = point_decisions(groups, ideal, metric, task.higher_is_better, rule)
        following = {}
        for k, decision in decisions.items():
            if decision["need"] is None:           # decided, or the cap reached
                following[k] = decision["n"]
            elif decision["need"] > needs[k]:      # the next look
                following[k] = decision["need"]
            else:                                   # no usable value to go on with
                following[k] = needs[k]
        if following == needs:
            break
        needs = following
    return [{**records[job.key], "label": job.label} for job in jobs]
