"""Noise and quantization study: DFA through virtual OPUs whose settings vary, with error bars.

Each *point* is a set of device settings (one axis at a time, or two axes in a grid) on
top of a base preset. At each point a model of a :data:`TASKS` entry is trained with DFA
through the virtual device, once per seed; three references are trained with the same
seeds: DFA with ideal Gaussian feedback, the shallow baseline (only the last layer
trained) and backpropagation. Every run also records the feedback's fidelity at that point
(:func:`~studies.noise_budget.feedback_fidelity`: SNR and correlation of the
device's ``B_hat e`` against the exact ``B e``), so accuracy can be read against SNR
across all axes.

Seeds and pairing
-----------------
Seed index ``i`` trains with seed ``seed + i`` (initial weights, data order, ideal
feedback matrix) and opens the device with seeds derived from it
(:func:`device_seeds`: transmission matrix, drift, laser, camera noise, fixed pattern).
The same index gives the same training seed at every point and in the references, so a
point's difference to ideal DFA is a paired difference over seeds (docs/design.md
section 7). Each run's numbers depend on its settings only: a serial run, ``workers``
local processes and a Dask cluster give identical numbers (each run computes with one
BLAS thread).

Results file
------------
One JSON line per run, flushed and synced as the run finishes, holding the run's full
:func:`run_settings` (task, model, data, budget, seed, base preset, every device
override, encoder, ...) and its result. A rerun reuses a finished run only when all its
settings match; other settings run afresh, so results are never returned for settings
they were not computed with. A line cut short by an interruption, and a line that is
valid JSON but not a run of this format (an older sweep's), are dropped and rerun. Only
the parent process writes the file, as runs complete (one writer), whether the runs go
to local processes (:class:`concurrent.futures.ProcessPoolExecutor`) or to a Dask
distributed scheduler.

Axes (values from the setting that most hurts DFA to the best)
--------------------------------------------------------------
``adc_bits``          camera bit depth; the gain keeps the full scale at the full well
``photon_budget``     mean photo-electrons per output with every input on; the exposure
                      sets it and the gain keeps the ADC's full scale at 8 times that mean
``read_noise_e``      camera read noise (electrons rms)
``encoding``          error encoding: 1-bit planes, ternary, 2 .. 8-bit signed planes
``tm_drift_time_s``   decorrelation time of the TM in device seconds (``static``: none)
``extinction_ratio``  polarizer extinction ratio (1: no polarizer; ``ideal``)
``dmd_contrast``      DMD on/off contrast (1: off mirrors as bright as on ones)
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import functools
import itertools
import json
import math
import multiprocessing
import os
import pathlib
import warnings
from typing import Callable, Iterable, Sequence

import numpy as np

from photon import resolve_config
from photon.budget import mean_signal_electrons
from photon.support import jsonio
from photon.support.progress import Progress
from photon.support.stats import describe

from dfa_bridge.training.experiment import run_experiment

__all__ = ["Axis", "AXES", "Task", "TASKS", "RECORD_FORMAT", "sweep_points", "device_seeds",
           "run_settings", "settings_key", "point_key", "read_results", "run_sweep", "run_job",
           "summarize", "design_answer", "markdown_table", "plot_sweep", "records_json"]

#: Version of the JSON lines this module writes; lines of another version are rerun.
RECORD_FORMAT = 2

#: Accuracy points (classifiers) or relative perplexity (language model) within which a
#: device's DFA counts as matching ideal-feedback DFA in the design answer.
TOLERANCE = {"accuracy_points": 1.0, "perplexity_fraction": 0.05}

MACROPIXEL_MIRRORS = 64   # DMD mirrors per class, as make_feedback opens a virtual device
FULL_SCALE_OVER_MEAN = 8.0  # photon_budget: ADC full scale over the all-on mean (exp(-8): 0.03 %)


# ---------------------------------------------------------------------------- tasks
@dataclasses.dataclass(frozen=True)
class Task:
    """A model on a dataset, trained as every point of a sweep trains it.

    Attributes
    ----------
    name
        The ``--model`` name.
    model, data
        Arguments of :func:`~dfa_bridge.training.experiment.run_experiment`.
    budget
        Default epochs (``"mlp"``, ``"gcn"``) or steps (``"transformer"``).
    hyper
        Hyper-parameters replacing the model's defaults.
    errors
        Error distribution of the fidelity measurement: ``"mlp"`` (classification
        errors of an MLP on ``data``) or ``"lm"`` (character bigram errors).
    options
        Further keyword arguments of ``run_experiment`` (the Transformer's evaluation).
    n_classes
        Width of the error (classes, or characters): the feedback device's inputs.
    description
        What it is and why feedback matters on it.
    """

    name: str
    model: str
    data: str
    budget: int
    hyper: tuple = ()
    errors: str = "mlp"
    options: tuple = ()
    n_classes: int = 10
    description: str = ""

    @property
    def unit(self) -> str:
        """``"epochs"`` or ``"steps"``."""
        return "steps" if self.model == "transformer" else "epochs"

    @property
    def metric(self) -> str:
        """``"test_accuracy"`` (higher is better) or ``"val_perplexity"`` (lower)."""
        return "val_perplexity" if self.model == "transformer" else "test_accuracy"

    @property
    def higher_is_better(self) -> bool:
        return self.metric == "test_accuracy"

    def feedback_width(self) -> int:
        """Outputs ``S`` the feedback device needs (sum of the feedback widths)."""
        hyper = dict(self.hyper)
        if self.model == "transformer":
            from dfa_bridge.training.language import LM_DEFAULTS  # noqa: PLC0415

            settings = {**LM_DEFAULTS, **hyper}
            blocks = 1 if settings["feedback_mode"] == "shared" else settings["n_blocks"]
            return settings["width"] * blocks
        from dfa_bridge.training.experiment import DEFAULTS  # noqa: PLC0415

        return int(sum(hyper.get("hidden", DEFAULTS[self.model]["hidden"])))


TASKS = {task.name: task for task in (
    Task("mlp", "mlp", "digits", 8, description=(
        "the digits MLP (64-256-256-10, tanh): the quick default; its shallow baseline is "
        "within half a point of DFA, so feedback quality barely shows")),
    Task("deep-mlp", "mlp", "teacher", 10, hyper=(("hidden", (256, 256, 256)),), n_classes=4,
         description=(
        "a 3-hidden-layer MLP (256 tanh units each) on the generated `teacher` task "
        "(dfa_bridge/data/generated.py: 4 classes read from 4 hidden directions of a 32-d "
        "Gaussian input): backprop beats the shallow baseline by more than 10 points")),
    Task("gcn", "gcn", "csbm", 40, n_classes=5, description=(
        "the two-layer GCN on the contextual block model (2,000 nodes, 5 classes): hidden "
        "learning carries the result (shallow far below DFA)")),
    Task("transformer", "transformer", "pydoc", 300, errors="lm", n_classes=102,
         options=(("evaluations", 1), ("max_eval_chars", 16384)), description=(
             "the character Transformer on the pydoc corpus (4 blocks x 128, context 64), "
             "validation perplexity per character on 16,384 characters, a short budget")),
)}


# ---------------------------------------------------------------------------- axes
@dataclasses.dataclass(frozen=True)
class Axis:
    """A swept setting: its values and how a value becomes run options.

    ``options(value, base)`` returns ``(device_options, experiment_options)``: overrides
    of the device configuration and keyword arguments of :func:`run_experiment`.
    ``values`` run from the setting that most hurts DFA to the best.
    """

    name: str
    label: str
    values: tuple
    options: Callable


def _adc_bits(bits, base):
    full_well = base.camera.full_well_e or 10_000.0
    top = 2 ** bits - 1
    offset = base.camera.black_offset_dn * top / 255.0
    return {"camera__adc_bits": bits, "camera__black_offset_dn": offset,
            "camera__gain_dn_per_e": (top - offset) / full_well}, {}


def _photon_budget(electrons, base):
    """Exposure for ``electrons`` mean photo-electrons per output with every input on."""
    per_us = mean_signal_electrons(base, on_fraction=1.0) / base.camera.exposure_us
    exposure = electrons / per_us
    options = {"camera__exposure_us": exposure}
    cam = base.camera
    if cam.adc_bits is not None:
        top = 2 ** cam.adc_bits - 1 - cam.black_offset_dn
        options["camera__gain_dn_per_e"] = max(cam.gain_dn_per_e,
                                               top / (FULL_SCALE_OVER_MEAN * electrons))
    return options, {}


def _encoding(name, base):
    if name == "ternary":
        return {}, {"encoder": "ternary"}
    bits = int(name.split("-")[1])
    return {}, {"encoder": "bitplanes", "n_bits": bits}


def _extinction(value, base):
    return {"polarizer": {"extinction_ratio": None if value == "ideal" else float(value)}}, {}


AXES = {axis.name: axis for axis in (
    Axis("adc_bits", "camera bit depth", (1, 2, 3, 4, 5, 6, 8, 10, 12), _adc_bits),
    Axis("photon_budget", "photo-electrons per output (all inputs on)",
         (1, 3, 10, 30, 100, 300, 1000, 3000), _photon_budget),
    Axis("read_noise_e", "read noise (e- rms)", (1000.0, 300.0, 100.0, 30.0, 10.0, 3.0, 0.0),
         lambda v, base: ({"camera__read_noise_e": v}, {})),
    Axis("encoding", "error encoding", ("bitplanes-1", "ternary", "bitplanes-2", "bitplanes-3",
                                        "bitplanes-4", "bitplanes-6", "bitplanes-8"), _encoding),
    Axis("tm_drift_time_s", "TM decorrelation time (device s)",
         (3.0, 10.0, 30.0, 100.0, 300.0, 1000.0, 10000.0, "static"),
         lambda v, base: ({"medium__drift_time_s": None if v == "static" else float(v)}, {})),
    Axis("extinction_ratio", "polarizer extinction ratio",
         (1.0, 1.5, 2.0, 3.0, 10.0, 100.0, 1000.0, "ideal"), _extinction),
    Axis("dmd_contrast", "DMD contrast", (1.0, 1.1, 1.5, 2.0, 3.0, 10.0, 100.0, 1000.0),
         lambda v, base: ({"dmd__contrast": v}, {})),
)}

#: The references every sweep trains with the same seeds: DFA with ideal Gaussian
#: feedback, the shallow baseline (last layer only) and backpropagation.
REFERENCES = ("ideal", "shallow", "bp")
_REFERENCE_METHODS = {"ideal": ("dfa", "ideal"), "shallow": ("shallow", None), "bp": ("bp", None)}
_REFERENCE_LABELS = {"ideal": "DFA, ideal feedback", "shallow": "shallow (last layer only)",
                     "bp": "backpropagation"}


def point_key(point: dict) -> str:
    """Canonical text of a point (its axis values)."""
    return json.dumps(point, sort_keys=True)


def sweep_points(axes: Sequence[str] = tuple(AXES), pairs: Sequence[tuple[str, str]] = (),
                 ) -> list[dict]:
    """Points of a sweep: each axis alone, then each pair as a full grid.

    Raises
    ------
    ValueError
        For an unknown axis name.
    """
    for name in list(axes) + [n for pair in pairs for n in pair]:
        if name not in AXES:
            raise ValueError(f"axis = {name!r}: expected one of {', '.join(AXES)}")
    points = [{name: value} for name in axes for value in AXES[name].values]
    for first, second in pairs:
        points += [{first: a, second: b}
                   for a, b in itertools.product(AXES[first].values, AXES[second].values)]
    unique = {point_key(p): p for p in points}  # a pair grid repeats no single-axis point
    return list(unique.values())


# ---------------------------------------------------------------------------- settings
def device_seeds(seed: int) -> dict:
    """Device seed overrides of training seed ``seed`` (TM, drift, laser, camera, pattern)."""
    state = np.random.SeedSequence([int(seed), 0x0B5]).generate_state(5)
    names = ("tm", "tm_drift", "laser", "camera", "fixed_pattern")
    return {f"seeds__{name}": int(value % (2 ** 31 - 2)) for name, value in zip(names, state)}


def _check_count(name: str, value, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} = {value!r}: expected an integer >= {low}")
    return int(value)


def run_settings(point: dict | str, seed_index: int, *, task: str = "mlp",
                 base: str = "lab-bench", budget: int | None = None, seed: int = 0,
                 max_train: int | None = None, data_seed: int = 0,
                 fidelity_errors: int = 512) -> dict:
    """Everything that determines one run's numbers, as plain data.

    Parameters
    ----------
    point
        Axis values (``{"adc_bits": 4}``), or a reference name of :data:`REFERENCES`.
    seed_index
        Which of the seeds (``seed + seed_index`` trains).
    task
        A :data:`TASKS` name.
    base
        The preset the points modify.
    budget
        Epochs or steps (None: the task's default).
    seed, max_train, data_seed
        First training seed, training samples kept (tabular data), data seed.
    fidelity_errors
        Error vectors of each run's fidelity measurement.
    """
    if task not in TASKS:
        raise ValueError(f"model = {task!r}: expected one of {', '.join(TASKS)}")
    spec = TASKS[task]
    train_seed = int(seed) + _check_count("seed_index", seed_index, 0)
    budget = spec.budget if budget is None else _check_count(spec.unit, budget)
    settings = {"format": RECORD_FORMAT, "task": task, "model": spec.model, "data": spec.data,
                "data_seed": int(data_seed), spec.unit: budget, "seed": train_seed,
                "base": base, "max_train": max_train,
                "hyper": {k: list(v) if isinstance(v, tuple) else v for k, v in spec.hyper},
                "options": dict(spec.options),
                "fidelity_errors": int(fidelity_errors), "macropixel_mirrors": MACROPIXEL_MIRRORS}
    if isinstance(point, str):
        if point not in REFERENCES:
            raise ValueError(f"point = {point!r}: expected axis values or one of "
                             f"{', '.join(REFERENCES)}")
        # No device: the base preset and the fidelity settings do not change the result.
        method, feedback = _REFERENCE_METHODS[point]
        settings.update({"point": {"reference": point}, "method": method,
                         "feedback": feedback, "base": None,
                         "fidelity_errors": None, "macropixel_mirrors": None,
                         "device_options": {}, "encoder": None, "n_bits": None})
        return settings
    base_config = resolve_config(base, n_in=spec.n_classes, n_out=spec.feedback_width(),
                                 dmd__macropixel_mirrors=MACROPIXEL_MIRRORS)
    device_options = dict(device_seeds(train_seed))
    options = {"encoder": "bitplanes" if spec.model == "transformer" else "ternary",
               "n_bits": 4}
    for name, value in point.items():
        if name not in AXES:
            raise ValueError(f"axis = {name!r}: expected one of {', '.join(AXES)}")
        more_device, more_options = AXES[name].options(value, base_config)
        device_options.update(more_device)
        options.update(more_options)
    settings.update({"point": dict(point), "method": "dfa", "feedback": base,
                     "device_options": device_options, "encoder": options["encoder"],
                     "n_bits": options["n_bits"] if options["encoder"] == "bitplanes" else None})
    return json.loads(jsonio.dumps(settings, indent=None))  # plain JSON types, as stored


def settings_key(settings: dict) -> str:
    """Canonical text of a run's settings: two runs match when their keys are equal."""
    return json.dumps(settings, sort_keys=True, separators=(",", ":"))


# ---------------------------------------------------------------------------- one run
@contextlib.contextmanager
def _one_thread():
    """One BLAS thread: the run's numbers do not depend on the pool it runs in."""
    try:
        from threadpoolctl import threadpool_limits  # noqa: PLC0415  (ships with scikit-learn)
    except ImportError:  # pragma: no cover
        yield
        return
    with threadpool_limits(limits=1):
        yield


@functools.lru_cache(maxsize=8)
def _fidelity_errors(task: str, n_errors: int, seed: int):
    """The error set of a task's fidelity measurement (a pure function: cached per process)."""
    from .noise_budget import classification_errors, language_errors  # noqa: PLC0415

    spec = TASKS[task]
    if spec.errors == "lm":
        return language_errors(n_errors, seed=seed)
    return classification_errors(spec.data, n_errors, seed=seed,
                                 batch_size=32 if spec.model == "mlp" else 100)


def run_job(settings: dict) -> dict:
    """Train one run of :func:`run_settings` and measure its feedback's fidelity.

    Returns the JSON-line record: ``settings``, ``key`` and ``result`` (the metric,
    ``test_accuracy`` or ``val_perplexity``, ``alignment_deg``, ``seconds``, frames and
    device seconds, and ``fidelity`` (``snr_db``, ``correlation``; None for the
    references)). A pure function of ``settings``.
    """
    from .noise_budget import feedback_fidelity  # noqa: PLC0415

    spec = TASKS[settings["task"]]
    with _one_thread(), np.errstate(all="ignore"), warnings.catch_warnings():
        # Settings at the end of an axis are meant to break the device (every output
        # weak, updates undefined): their warnings are the expected outcome, not news.
        warnings.simplefilter("ignore", RuntimeWarning)
        budget = {spec.unit: settings[spec.unit]}
        hyper = {k: tuple(v) if isinstance(v, list) else v for k, v in settings["hyper"].items()}
        options = {}
        if settings["encoder"] is not None:
            options = {"encoder": settings["encoder"], "n_bits": settings["n_bits"] or 4}
        if spec.model != "transformer":
            options["max_train"] = settings["max_train"]
            options["data_seed"] = settings["data_seed"]
        options.update(settings["options"])
        result, _ = run_experiment(spec.model, spec.data, settings["method"],
                                   settings["feedback"], seed=settings["seed"], progress=False,
                                   device_options=settings["device_options"] or None,
                                   **budget, **options, **hyper)
        feedback = result["feedback"] or {}
        fidelity = None
        if settings["feedback"] not in (None, "ideal"):
            errors = _fidelity_errors(spec.name, settings["fidelity_errors"],
                                      settings["seed"] if spec.errors == "lm"
                                      else settings["data_seed"])
            if settings["encoder"] is not None:
                errors = errors.with_encoder(settings["encoder"], settings["n_bits"] or 4)
            device_seconds = feedback.get("device_seconds") or 0.0
            fidelity = feedback_fidelity(settings["feedback"], errors,
                                         n_out=spec.feedback_width(),
                                         macropixel_mirrors=settings["macropixel_mirrors"],
                                         elapsed_s=device_seconds / 2.0,
                                         device_options=settings["device_options"])
    angles = result["alignment_deg"]
    record = {"settings": settings, "key": settings_key(settings),
              "result": {spec.metric: result[spec.metric],
                         "alignment_deg": {"update_vs_gradient": angles["update_vs_gradient"]},
                         "seconds": result["seconds"],
                         "diverged_at_step": result["diverged_at_step"],
                         "frames": feedback.get("frames_acquired"),
                         "device_seconds": feedback.get("device_seconds"),
                         "fidelity": fidelity}}
    return json.loads(jsonio.dumps(record, indent=None))


# ---------------------------------------------------------------------------- results file
def _is_record(record) -> bool:
    """A run of this format: its settings, the key they give, and a result with the metric."""
    if not isinstance(record, dict) or not isinstance(record.get("settings"), dict):
        return False
    settings, result = record["settings"], record.get("result")
    if settings.get("format") != RECORD_FORMAT or settings.get("task") not in TASKS:
        return False
    if record.get("key") != settings_key(settings) or not isinstance(result, dict):
        return False
    metric = TASKS[settings["task"]].metric
    value = result.get(metric)
    return (value is None or isinstance(value, (int, float))) and metric in result \
        and isinstance(result.get("alignment_deg"), dict)


def read_results(path) -> list[dict]:
    """Finished runs of a JSON-lines results file.

    A line cut short by an interruption and a line that is valid JSON but not a run of
    this format (:data:`RECORD_FORMAT`) are dropped, and the file is rewritten without
    them (atomically): their runs count as not done.
    """
    path = pathlib.Path(path)
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    results, intact = [], []
    lines = text.splitlines(keepends=True)
    for line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # an interrupted write: that run did not finish
        if line.endswith("\n") and _is_record(record):
            results.append(record)
            intact.append(line)
    if len(intact) != len(lines):
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text("".join(intact), encoding="utf-8")
        os.replace(tmp, path)  # keep only whole runs, atomically
    return results


def _append(path: pathlib.Path, record: dict) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(jsonio.dumps(record, indent=None) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


# ---------------------------------------------------------------------------- engines
def _worker_init() -> None:
    """Local worker: one thread per BLAS, so that parallel processes do not oversubscribe."""
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = "1"


def _serial(jobs, runner):
    for settings in jobs:
        yield runner(settings)


def _local_pool(jobs, runner, workers: int):
    context = multiprocessing.get_context("spawn")  # no forked thread state
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context,
                                                initializer=_worker_init) as pool:
        futures = [pool.submit(runner, settings) for settings in jobs]
        try:
            for future in concurrent.futures.as_completed(futures):
                yield future.result()
        finally:
            for future in futures:
                future.cancel()


def _dask(jobs, runner, address: str, workers: int):
    try:
        from dask.distributed import Client, LocalCluster, as_completed  # noqa: PLC0415
    except ImportError as error:
        raise RuntimeError("dask = " + repr(address) + ": expected the dask[distributed] "
                           "package (pip install 'photon-dfa[dask]')") from error
    cluster = None
    if address == "local":
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
    else:
        client = Client(address)
    try:
        futures = [client.submit(runner, settings, pure=False) for settings in jobs]
        for future in as_completed(futures):
            yield future.result()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def run_sweep(path, points: Sequence[dict], *, task: str = "mlp", base: str = "lab-bench",
              budget: int | None = None, seeds: int = 5, seed: int = 0,
              max_train: int | None = None, fidelity_errors: int = 512, workers: int = 1,
              dask: str | None = None, progress: bool | None = None,
              runner: Callable = run_job) -> list[dict]:
    """Run the sweep's runs not yet in ``path``; append one JSON line per finished run.

    Parameters
    ----------
    path
        JSON-lines results file (created if missing; finished runs of any settings are
        kept, and reused where the settings match).
    points
        From :func:`sweep_points`; the references (:data:`REFERENCES`) are added.
    task
        A :data:`TASKS` name (``--model``).
    base
        The preset the points modify.
    budget
        Epochs (MLP, GCN) or steps (Transformer) of every run (None: the task's).
    seeds
        Runs per point (seed indices ``0 .. seeds - 1``).
    seed, max_train, fidelity_errors
        See :func:`run_settings`.
    workers
        Local processes running runs at once (1: in this process).
    dask
        Address of a Dask distributed scheduler, or ``"local"`` for a ``LocalCluster``
        of ``workers`` processes started here; None: no Dask.
    progress
        Progress bar over runs.
    runner
        The function running one run's settings (:func:`run_job`; replaceable in tests;
        must be importable by the workers when ``workers > 1`` or with Dask).

    Returns
    -------
    list of dict
        The records of this sweep's runs (settings as given), in job order.
    """
    _check_count("seeds", seeds)
    _check_count("workers", workers)
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    common = dict(task=task, base=base, budget=budget, seed=seed, max_train=max_train,
                  fidelity_errors=fidelity_errors)
    jobs = [run_settings(point, i, **common) for point in list(REFERENCES) + list(points)
            for i in range(seeds)]
    keys = [settings_key(s) for s in jobs]
    done = {r["key"]: r for r in read_results(path)}
    todo = [s for s, k in zip(jobs, keys) if k not in done]
    todo = list({settings_key(s): s for s in todo}.values())
    if not todo:
        engine = iter(())
    elif dask is not None:
        engine = _dask(todo, runner, dask, workers)
    elif workers > 1 and len(todo) > 1:
        engine = _local_pool(todo, runner, min(workers, len(todo)))
    else:
        engine = _serial(todo, runner)
    with Progress(len(todo), f"noise sweep ({task})", enabled=progress, unit="run",
                  min_steps=1) as bar:
        for record in engine:
            _append(path, record)
            done[record["key"]] = record
            bar.update()
    return [done[k] for k in keys]


# ---------------------------------------------------------------------------- statistics
def _angles(records: Sequence[dict]) -> list | None:
    """Per-layer mean update angle over runs: ``describe`` of each layer."""
    per_run = [r["result"]["alignment_deg"].get("update_vs_gradient") for r in records]
    per_run = [a for a in per_run if a]
    if not per_run:
        return None
    layers = []
    for i in range(max(len(a) for a in per_run)):
        values = [a[i] for a in per_run if i < len(a) and a[i] is not None]
        layers.append(describe(values) if values else None)   # None: undefined in every run
    return layers


def _values(records, metric):
    return [r["result"][metric] for r in records]


def _stat(values) -> dict | None:
    values = [v for v in values if v is not None and math.isfinite(v)]
    return describe(values) if values else None


def _device_run(records: Sequence[dict]) -> dict:
    """A run through the device, if any (its settings name the base preset)."""
    return next((r for r in records if "reference" not in r["settings"]["point"]), records[0])


def summarize(records: Sequence[dict]) -> dict:
    """Statistics of a sweep's records, per point and per reference.

    Returns
    -------
    dict
        ``task``, ``metric``, ``higher_is_better``, ``settings`` (of the first run),
        ``references`` (name -> stats) and ``points`` (list, in record order): each with
        ``point``, ``n``, ``metric`` (``describe``: mean, std, ci95, n, values), ``angles``
        (per layer), ``snr_db``, ``correlation`` and ``paired`` (the per-seed difference
        to ideal DFA in points or the perplexity ratio: ``describe``, and ``within_noise``:
        whether its interval holds zero, or one).
    """
    if not records:
        raise ValueError("records = []: expected the records of a sweep")
    task = TASKS[records[0]["settings"]["task"]]
    metric = task.metric
    groups: dict[str, list] = {}
    for record in records:
        groups.setdefault(point_key(record["settings"]["point"]), []).append(record)
    ideal = {r["settings"]["seed"]: r["result"][metric]
             for r in groups.get(point_key({"reference": "ideal"}), [])}
    summary = {"task": task.name, "metric": metric, "higher_is_better": task.higher_is_better,
               "settings": {k: v for k, v in _device_run(records)["settings"].items()
                            if k not in ("point", "device_options", "seed", "method",
                                         "feedback", "encoder", "n_bits")},
               "references": {}, "points": []}
    for key, group in groups.items():
        point = group[0]["settings"]["point"]
        entry = {"point": point, "n": len(group), "metric": _stat(_values(group, metric)),
                 "by_seed": [[r["settings"]["seed"], r["result"][metric]] for r in group],
                 "angles": _angles(group),
                 "snr_db": _stat([(r["result"]["fidelity"] or {}).get("snr_db") for r in group]),
                 "correlation": _stat([(r["result"]["fidelity"] or {}).get("correlation")
                                       for r in group])}
        diffs = []
        for r in group:
            mine, reference = r["result"][metric], ideal.get(r["settings"]["seed"])
            if mine is None or reference is None:
                continue
            diffs.append(100.0 * (mine - reference) if task.higher_is_better
                         else mine / reference)
        if diffs and "reference" not in point:
            stats = describe(diffs)
            half = stats["ci95"] or 0.0
            centre = 0.0 if task.higher_is_better else 1.0
            entry["paired"] = {**stats, "within_noise": abs(stats["mean"] - centre) <= half
                               if stats["ci95"] is not None else None}
        if "reference" in point:
            summary["references"][point["reference"]] = entry
        else:
            summary["points"].append(entry)
    return summary


def _axis_entries(summary: dict, name: str) -> list[dict]:
    rows = [e for e in summary["points"] if list(e["point"]) == [name]]
    order = {value: i for i, value in enumerate(AXES[name].values)}
    return sorted(rows, key=lambda e: order.get(e["point"][name], math.inf))


def _within(entry: dict, higher: bool) -> bool:
    """Within tolerance of ideal DFA with 95 % confidence (paired interval)."""
    paired = entry.get("paired")
    if not paired or paired["ci95"] is None:
        return False
    if higher:
        return paired["mean"] - paired["ci95"] > -TOLERANCE["accuracy_points"]
    return paired["mean"] + paired["ci95"] < 1.0 + TOLERANCE["perplexity_fraction"]


def _overlaps(entry: dict, reference: dict) -> bool:
    """Whether the point's 95 % interval of the mean overlaps ideal DFA's."""
    a, b = entry["metric"], reference["metric"]
    if a is None or b is None:
        return False
    ha, hb = a["ci95"] or 0.0, b["ci95"] or 0.0
    return abs(a["mean"] - b["mean"]) <= ha + hb


def _paired_to(entry: dict, other: dict, higher: bool) -> dict | None:
    """``describe`` of the per-seed difference (points) or ratio of ``entry`` to ``other``."""
    theirs = {seed: value for seed, value in other["by_seed"] if value is not None}
    diffs = [100.0 * (v - theirs[s]) if higher else v / theirs[s]
             for s, v in entry["by_seed"] if v is not None and s in theirs]
    return describe(diffs) if diffs else None


def _lowest(flags: list) -> int | None:
    """Index of the lowest setting from which every better one is flagged, or None."""
    if not flags or not flags[-1]:
        return None
    index = len(flags) - 1
    while index > 0 and flags[index - 1]:
        index -= 1
    return index


def design_answer(summary: dict) -> list[dict]:
    """For each axis: the lowest setting at which DFA through the device stays matched.

    Settings run from the one that most hurts DFA to the best (:data:`AXES`). The
    *lowest setting within tolerance* is the least demanding setting from which every
    better one stays within 1 accuracy point (5 % perplexity) of ideal-feedback DFA with
    95 % confidence (the paired interval of the difference over seeds lies inside the
    tolerance); ``None`` ('not reached') when the best setting does not. The *breaking
    point* is the lowest setting from which every better one has a 95 % interval that
    overlaps ideal DFA's; ``broken`` lists the settings below it, whose intervals lie
    off ideal DFA's (a drop outside the noise); an empty list means no setting breaks
    DFA, and a ``None`` breaking point that no setting reaches ideal DFA (another part
    of the device limits it). *Within tolerance of the axis's best setting* applies the
    same paired test against the axis's own best setting: from there on the axis no
    longer matters, whatever else limits DFA.
    """
    ideal = summary["references"].get("ideal")
    higher = summary["higher_is_better"]
    answers = []
    for name in AXES:
        rows = _axis_entries(summary, name)
        if not rows:
            continue
        within = [_within(e, higher) for e in rows]
        overlap = [ideal is not None and _overlaps(e, ideal) for e in rows]
        to_best = [_within({"paired": _paired_to(e, rows[-1], higher)}, higher) for e in rows]
        i_within, i_overlap, i_best = _lowest(within), _lowest(overlap), _lowest(to_best)
        broken = [] if i_overlap is None else [e["point"][name] for e in rows[:i_overlap]
                                               if not _overlaps(e, ideal)]
        answers.append({
            "axis": name, "label": AXES[name].label,
            "settings": [e["point"][name] for e in rows],
            "lowest_within_tolerance": None if i_within is None else rows[i_within]["point"][name],
            "breaking_point": None if i_overlap is None else rows[i_overlap]["point"][name],
            "broken": broken if i_overlap is not None else [e["point"][name] for e in rows],
            "lowest_within_tolerance_of_best": None if i_best is None
            else rows[i_best]["point"][name],
            "within": within, "overlaps_ideal": overlap, "within_best": to_best})
    return answers


# ---------------------------------------------------------------------------- Markdown
def _fmt(stat: dict | None, scale: float = 1.0, digits: int = 2) -> str:
    if stat is None:
        return "-"
    mean = scale * stat["mean"]
    if stat["ci95"] is None:
        return f"{mean:.{digits}f} (1 seed)"
    return f"{mean:.{digits}f} ± {scale * stat['ci95']:.{digits}f}"


def _paired_text(entry: dict, higher: bool) -> str:
    paired = entry.get("paired")
    if not paired:
        return "-"
    if paired["ci95"] is None:
        return f"{paired['mean']:+.2f} (1 seed)" if higher else f"x{paired['mean']:.3f} (1 seed)"
    if higher:
        text = f"{paired['mean']:+.2f} ± {paired['ci95']:.2f} pts"
    else:
        text = f"x{paired['mean']:.3f} ± {paired['ci95']:.3f}"
    return text + (" (within noise)" if paired["within_noise"] else "")


def markdown_table(records: Sequence[dict]) -> str:
    """The sweep's Markdown: references, the design answer, one table per axis, pair grids.

    Every figure is the mean and the half-width of its 95 % Student-t interval over
    seeds; differences to ideal DFA are paired over seeds and marked "within noise"
    when their interval holds zero.
    """
    if not records:
        return "(no finished runs)"
    summary = summarize(records)
    task = TASKS[summary["task"]]
    higher = task.higher_is_better
    scale = 100.0 if higher else 1.0
    name = "test accuracy (%)" if higher else "validation perplexity"
    settings = summary["settings"]
    refs = summary["references"]
    n_seeds = max((e["n"] for e in summary["points"]), default=0)
    lines = [f"Task `{task.name}`: {task.description}. {settings.get(task.unit)} {task.unit} "
             f"per run, base device `{settings['base']}`, {n_seeds} seeds per point, the "
             "same seeds at every point and in the references (paired); every figure is the "
             "mean ± the half-width of its 95 % Student-t interval over seeds.", ""]
    lines += ["| reference | " + name + " |", "|---|---|"]
    for ref in REFERENCES:
        if ref in refs:
            lines.append(f"| {_REFERENCE_LABELS[ref]} | {_fmt(refs[ref]['metric'], scale)} |")
    answers = design_answer(summary)
    tol = (f"{TOLERANCE['accuracy_points']:g} accuracy point" if higher
           else f"{100 * TOLERANCE['perplexity_fraction']:g} % perplexity")
    lines += ["", "### Design answer", "",
              f"Lowest setting at which DFA through the device stays within {tol} of "
              "ideal-feedback DFA with 95 % confidence (every better setting too), and the "
              "breaking point: the lowest setting whose interval still overlaps ideal DFA's "
              "(settings below it drop outside the noise); last, the lowest setting within "
              f"{tol} of the axis's own best setting (paired): from there on this axis no longer "
              "matters, whatever else limits DFA.", "",
              "| axis | lowest setting within tolerance | breaking point | settings that break DFA "
              "| lowest setting within tolerance of the axis's best |", "|---|---|---|---|---|"]
    for a in answers:
        within = "not reached" if a["lowest_within_tolerance"] is None else \
            f"`{a['lowest_within_tolerance']}`"
        if a["breaking_point"] is None:
            breaking, broken = "none overlaps ideal DFA", "every setting: another part of " \
                "the device limits DFA here"
        else:
            breaking = f"`{a['breaking_point']}`"
            broken = ", ".join(f"`{v}`" for v in a["broken"]) or "none: no setting breaks DFA"
        best = "-" if a["lowest_within_tolerance_of_best"] is None else \
            f"`{a['lowest_within_tolerance_of_best']}`"
        lines.append(f"| {a['label']} | {within} | {breaking} | {broken} | {best} |")
    for axis_name, axis in AXES.items():
        rows = _axis_entries(summary, axis_name)
        if not rows:
            continue
        difference = "vs ideal DFA (paired)"
        lines += ["", f"### {axis.label}", "",
                  f"| {axis_name} | {name} | std | {difference} | update angle per layer (deg) "
                  "| feedback SNR (dB) | correlation |", "|---|---|---|---|---|---|---|"]
        for e in rows:
            std = "-" if e["metric"] is None or e["metric"]["std"] is None else \
                f"{scale * e['metric']['std']:.2f}"
            angles = "-" if not e["angles"] else ", ".join(_fmt(a, 1.0, 0) for a in e["angles"])
            lines.append(f"| {e['point'][axis_name]} | {_fmt(e['metric'], scale)} | {std} | "
                         f"{_paired_text(e, higher)} | {angles} | {_fmt(e['snr_db'])} | "
                         f"{_fmt(e['correlation'], 1.0, 3)} |")
    for first, second, grid in _pair_grids(summary):
        lines += ["", f"### {AXES[first].label} x {AXES[second].label} ({name}, mean over seeds)",
                  "", "| " + first + " \\ " + second + " | "
                  + " | ".join(str(v) for v in AXES[second].values) + " |",
                  "|---" * (len(AXES[second].values) + 1) + "|"]
        for a, row in zip(AXES[first].values, grid):
            lines.append(f"| {a} | " + " | ".join("" if v is None else f"{scale * v:.1f}"
                                                  for v in row) + " |")
    return "\n".join(lines)


def _pair_grids(summary: dict):
    pairs = sorted({tuple(e["point"]) for e in summary["points"] if len(e["point"]) == 2})
    for first, second in pairs:
        lookup = {(e["point"][first], e["point"][second]):
                  (e["metric"] or {}).get("mean") for e in summary["points"]
                  if tuple(e["point"]) == (first, second)}
        grid = [[lookup.get((a, b)) for b in AXES[second].values] for a in AXES[first].values]
        yield first, second, grid


# ---------------------------------------------------------------------------- figures
def _band(ax, reference: dict | None, scale: float, label: str, style: dict) -> None:
    if reference is None or reference["metric"] is None:
        return
    mean = scale * reference["metric"]["mean"]
    half = scale * (reference["metric"]["ci95"] or 0.0)
    ax.axhspan(mean - half, mean + half, alpha=0.2, **{k: v for k, v in style.items()
                                                        if k == "color"})
    ax.axhline(mean, linewidth=1, label=label, **style)


def plot_sweep(records: Sequence[dict], directory, prefix: str = "noise_sweep"
               ) -> list[pathlib.Path]:
    """Figures of a sweep, as PNG files in ``directory`` (names start with ``prefix``).

    ``PREFIX_axes.png``: per axis, the mean metric with its 95 % interval at each
    setting, the ideal-DFA band (mean and interval), the shallow and backprop bands;
    ``PREFIX_snr.png``: the metric against the feedback SNR of every point of every
    axis, with both intervals; ``PREFIX_A_x_B.png``: one 2-D map (means) per pair grid.
    """
    from matplotlib.figure import Figure  # noqa: PLC0415  (Agg canvas, no pyplot state)

    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if not records:
        return []
    summary = summarize(records)
    higher = summary["higher_is_better"]
    scale = 100.0 if higher else 1.0
    ylabel = "test accuracy (%)" if higher else "validation perplexity"
    refs = summary["references"]
    ideal_style, shallow_style = {"color": "tab:green"}, {"color": "tab:gray", "linestyle": "--"}
    bp_style = {"color": "tab:purple", "linestyle": ":"}
    paths = []
    names = [n for n in AXES if _axis_entries(summary, n)]
    if names:
        cols = min(4, len(names))
        rows = math.ceil(len(names) / cols)
        fig = Figure(figsize=(4.2 * cols, 3.4 * rows))
        axes = fig.subplots(rows, cols, squeeze=False)
        for ax, name in zip(axes.ravel(), names):
            data = _axis_entries(summary, name)
            x = np.arange(len(data))
            means = [scale * e["metric"]["mean"] if e["metric"] else math.nan for e in data]
            halves = [scale * (e["metric"]["ci95"] or 0.0) if e["metric"] else 0.0 for e in data]
            _band(ax, refs.get("bp"), scale, "backpropagation", bp_style)
            _band(ax, refs.get("ideal"), scale, "DFA, ideal feedback", ideal_style)
            _band(ax, refs.get("shallow"), scale, "shallow", shallow_style)
            ax.errorbar(x, means, yerr=halves, fmt="o-", capsize=3, color="tab:blue",
                        label="DFA through the device")
            ax.set_xticks(x, [str(e["point"][name]) for e in data], rotation=30)
            ax.set_xlabel(AXES[name].label)
            ax.set_ylabel(ylabel)
            ax.grid(alpha=0.3)
        axes.ravel()[0].legend(fontsize=7)
        for ax in axes.ravel()[len(names):]:
            ax.axis("off")
        fig.suptitle(f"{summary['task']}: DFA through a virtual OPU, one setting at a time "
                     "(95 % intervals over seeds)")
        fig.tight_layout()
        paths.append(directory / f"{prefix}_axes.png")
        fig.savefig(paths[-1], dpi=110)
        fig = Figure(figsize=(6.5, 4.5))
        ax = fig.subplots()
        _band(ax, refs.get("bp"), scale, "backpropagation", bp_style)
        _band(ax, refs.get("ideal"), scale, "DFA, ideal feedback", ideal_style)
        _band(ax, refs.get("shallow"), scale, "shallow", shallow_style)
        for index, name in enumerate(names):
            data = [e for e in _axis_entries(summary, name) if e["snr_db"] and e["metric"]]
            if not data:
                continue
            ax.errorbar([e["snr_db"]["mean"] for e in data],
                        [scale * e["metric"]["mean"] for e in data],
                        xerr=[e["snr_db"]["ci95"] or 0.0 for e in data],
                        yerr=[scale * (e["metric"]["ci95"] or 0.0) for e in data],
                        fmt="o", capsize=2, label=AXES[name].label, color=f"C{index}")
        ax.set_xlabel("feedback SNR against B e (dB)")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        ax.set_title("accuracy against feedback fidelity, every axis")
        fig.tight_layout()
        paths.append(directory / f"{prefix}_snr.png")
        fig.savefig(paths[-1], dpi=110)
    for first, second, grid in _pair_grids(summary):
        fig = Figure(figsize=(5.5, 4.5))
        ax = fig.subplots()
        values = [[math.nan if v is None else scale * v for v in row] for row in grid]
        image = ax.imshow(values, origin="lower", cmap="viridis", aspect="auto")
        ax.set_xticks(range(len(AXES[second].values)), [str(v) for v in AXES[second].values])
        ax.set_yticks(range(len(AXES[first].values)), [str(v) for v in AXES[first].values])
        ax.set_xlabel(AXES[second].label)
        ax.set_ylabel(AXES[first].label)
        fig.colorbar(image, label=ylabel)
        fig.tight_layout()
        paths.append(directory / f"{prefix}_{first}_x_{second}.png")
        fig.savefig(paths[-1], dpi=110)
    return paths


def records_json(records: Iterable[dict]) -> dict:
    """The sweep's JSON: summary, design answer and the records (strict JSON ready)."""
    records = list(records)
    summary = summarize(records)
    return {"summary": summary, "design_answer": design_answer(summary), "records": records}

