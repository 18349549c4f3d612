"""What a sweep run is: its task, the device setting of its point, and the key of its result.

A *task* (:class:`StudyTask`) is any training the trainer runs: a model family on a data
set given by name (``cora``), by a directory of a user's files (``data_path``) or as a
data set object, with its hyper-parameters and budget. A *point* is a set of axis values
(:data:`AXES`: one axis, or two in a grid) applied on top of a base device (a preset or a
YAML file). A *run* is a point (or a reference: ideal-feedback DFA, backpropagation, the
shallow baseline) trained with one seed.

Keys: a run's result is stored under the SHA-256 of its *resolved settings*
(:func:`run_settings`): the device configuration's contents after every override (not
the preset's name: a YAML file edited between two sweeps gives new runs), the task (model
family, every hyper-parameter, budget) and the data set's content fingerprint, the seed,
the error encoder and its bits, the fidelity measurement, and the version of the code that
computes a run (:func:`code_version`). Any change gives a new key, hence new runs; an
identical rerun finds every key and computes nothing. Labels (the point's axis values,
the base's name) are stored beside the settings and are not part of the key: two points
that resolve to the same settings share their runs.

Axes (values run from the setting that most hurts DFA to the best)
--------------------------------------------------------------------
``adc_bits``          camera bit depth; the gain keeps the full scale at the full well
``photon_budget``     mean photo-electrons per output with every input on; the exposure
                      sets it and the gain keeps the ADC's full scale at 8 times that mean
``read_noise_e``      camera read noise (electrons rms)
``encoding``          error encoding: signed bit planes of 1 .. 8 bits per sign, ternary
``tm_drift_time_s``   decorrelation time of the TM in device seconds (``static``: none)
``extinction_ratio``  polarizer extinction ratio (1: no polarizer; ``ideal``)
``dmd_contrast``      DMD on/off contrast (1: off mirrors as bright as on ones)

Each axis has a coarser ``grid`` of values for two-axis grids (:func:`sweep_points`).
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import hashlib
import itertools
import json
import pathlib
import platform
from typing import Callable, Sequence

import numpy as np

from photon import resolve_config
from photon.budget import mean_signal_electrons
from photon.config import DeviceConfig, adc_full_scale_dn, config_from_dict
from photon.support import jsonio
from photon.support.arguments import check_choice, check_int, check_seed
from photon.support.schema import to_mapping

from dfa_bridge.data import data_fingerprint, load_dataset
from dfa_bridge.data.text import CharCorpus, load_text_dataset
from dfa_bridge.training.experiment import resolve_settings
from dfa_bridge.training.families import ModelFamily, family
from dfa_bridge.training.feedback import simulated_device_options

__all__ = ["RECORD_FORMAT", "StudyTask", "TASKS", "Axis", "AXES", "REFERENCES",
           "REFERENCE_LABELS", "parse_encoding", "encoding_name", "sweep_points", "point_key",
           "point_label", "device_seeds", "code_version", "run_settings", "settings_key",
           "training_key", "device_cost"]

#: Version of the stored run records; lines of another version are kept but not used.
RECORD_FORMAT = 3

FULL_SCALE_OVER_MEAN = 8.0  # photon_budget: ADC full scale over the all-on mean (exp(-8): 0.03 %)


# ---------------------------------------------------------------------------- code version
#: Source on the computation path of a run: hashed into every key.
CODE_PACKAGES = ("photon", "devices", "dfa_bridge")
CODE_MODULES = ("studies/noise_budget", "studies/sweep/job.py")   # a package's folder, or a module
#: Fronts that no sweep run goes through.
CODE_EXCLUDED = ("dfa_bridge/torch_front.py", "devices/lightonml_compat",
                 "devices/estimators.py")


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(getattr(body[0], "value", None), ast.Constant) \
                and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
    return tree


def _source_files(root: pathlib.Path) -> list[pathlib.Path]:
    files = []
    for package in CODE_PACKAGES:
        files += sorted((root / package).rglob("*.py"))
    for module in CODE_MODULES:
        path = root / module
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    excluded = [root / name for name in CODE_EXCLUDED]   # a module, or a package's folder
    return [f for f in files if f.exists()
            and not any(f == path or path in f.parents for path in excluded)]


@functools.lru_cache(maxsize=1)
def code_version() -> dict:
    """The version of the code that computes a run, as stored in its key.

    ``source``: the SHA-256 (16 hex digits) of the syntax trees, docstrings and comments
    left out, of every module on a run's computation path (the packages ``photon``,
    ``devices`` and ``dfa_bridge`` but their fronts, the noise budget's fidelity
    measurement and :mod:`studies.sweep.job`, which trains a run from its settings; the
    settings themselves are in the key); ``numpy`` and ``python``: the versions that
    did the arithmetic. An edit of a docstring or a comment keeps the version; any other
    edit on the path changes it.
    """
    root = pathlib.Path(__file__).resolve().parents[2]
    digest = hashlib.sha256()
    for path in _source_files(root):
        digest.update(path.relative_to(root).as_posix().encode())
        tree = _strip_docstrings(ast.parse(path.read_text(encoding="utf-8")))
        digest.update(ast.dump(tree, annotate_fields=False).encode())
    return {"source": digest.hexdigest()[:16], "numpy": np.__version__,
            "python": ".".join(platform.python_version_tuple()[:2])}


# ---------------------------------------------------------------------------- tasks
@functools.lru_cache(maxsize=8)
def _load_named(model: str, data: str, data_path: str | None, data_seed: int):
    record = family(model)
    if record.is_language:
        return load_text_dataset(data, data_path)
    dataset = load_dataset(data, data_path, seed=data_seed)
    if record.node_features and hasattr(dataset, "feature_dataset"):
        dataset = dataset.feature_dataset()
    return dataset


@functools.lru_cache(maxsize=8)
def _fingerprint_named(model: str, data: str, data_path: str | None, data_seed: int) -> str:
    return data_fingerprint(_load_named(model, data, data_path, data_seed))


@dataclasses.dataclass(frozen=True, eq=False)
class StudyTask:
    """A training task every point of a sweep runs: any task the trainer runs.

    Attributes
    ----------
    model
        A family of :data:`~dfa_bridge.training.families.FAMILIES` (``"mlp"``,
        ``"gcn"``, ``"transformer"``).
    data
        A data set name (:func:`dfa_bridge.data.load_dataset`, a text corpus), or a data
        set object of the user's (``Dataset``, ``GraphData``, ``CharCorpus``).
    data_path
        Directory (or text file) of a user's own files for a named data set.
    hyper
        ``(name, value)`` pairs replacing the family's hyper-parameters.
    budget
        Epochs (MLP, GCN) or steps (Transformer); None: the family's default.
    data_seed, max_train
        Seed of generated data and splits; training samples kept (tabular data).
    options
        Further ``(name, value)`` arguments of ``run_experiment`` (the Transformer's
        ``evaluations``, ``max_eval_chars``).
    name, description
        Label and what the task is, for the pages.
    """

    model: str
    data: object = None
    data_path: str | None = None
    hyper: tuple = ()
    budget: int | None = None
    data_seed: int = 0
    max_train: int | None = None
    options: tuple = ()
    name: str | None = None
    description: str = ""

    def __post_init__(self):
        family(self.model)
        if self.data is None:
            object.__setattr__(self, "data", self.family.default_data)
        if self.budget is not None:
            object.__setattr__(self, "budget", check_int(self.unit, self.budget))
        check_seed("data_seed", self.data_seed)
        if self.data_path is not None:
            object.__setattr__(self, "data_path", str(self.data_path))

    @property
    def family(self) -> ModelFamily:
        """The record of the task's model family."""
        return family(self.model)

    @property
    def unit(self) -> str:
        """``"epochs"`` or ``"steps"``."""
        return self.family.budget

    @property
    def metric(self) -> str:
        """The score: ``"test_accuracy"`` (higher is better) or ``"val_perplexity"``."""
        return self.family.metric

    @property
    def higher_is_better(self) -> bool:
        return self.family.higher_is_better

    @property
    def data_name(self) -> str:
        """The data set's name (a name given, or the object's ``name``)."""
        return self.data if isinstance(self.data, str) else str(getattr(self.data, "name", "data"))

    @property
    def label(self) -> str:
        """The task's name on the pages."""
        if self.name:
            return self.name
        return f"{self.model}-{self.data_name}" + (" (own files)" if self.data_path else "")

    def load(self):
        """The data set object the runs train on (loaded once per process for a name)."""
        if isinstance(self.data, str):
            return _load_named(self.model, self.data, self.data_path, self.data_seed)
        return self.data

    def fingerprint(self) -> str:
        """SHA-256 of the data set's content (:func:`dfa_bridge.data.data_fingerprint`)."""
        if isinstance(self.data, str):
            return _fingerprint_named(self.model, self.data, self.data_path, self.data_seed)
        return data_fingerprint(self.data)

    def settings(self) -> dict:
        """Every hyper-parameter of the task's runs, with the budget (resolved)."""
        budget = {self.unit: self.budget} if self.budget is not None else {}
        return resolve_settings(self.model, **budget, **dict(self.hyper))

    def n_classes(self) -> int:
        """Width ``C`` of the error: classes, or the corpus's characters."""
        data = self.load()
        return int(data.n_tokens if isinstance(data, CharCorpus) else data.n_classes)

    def feedback_width(self) -> int:
        """Outputs ``S`` the feedback device needs."""
        return self.family.feedback_width(self.settings())

    def rows_per_fit(self) -> int:
        """Error rows per encoder fit in training (the batch, or the training nodes)."""
        return self.family.rows_per_fit(self.settings(), self.load())

    def resolved(self) -> dict:
        """The task as a run's key holds it: family, data identity, every setting."""
        settings = self.settings()
        return {"model": self.model, "data": {"name": self.data_name,
                                              "fingerprint": self.fingerprint()},
                "data_seed": self.data_seed, "max_train": self.max_train,
                "unit": self.unit, "budget": settings[self.unit], "hyper": settings,
                "options": dict(self.options)}

    def fidelity_errors(self) -> str | None:
        """``"classification"`` or ``"language"`` when the task's fidelity errors can be
        drawn by name (:mod:`studies.noise_budget`), else None (a user's files or object)."""
        if not isinstance(self.data, str) or self.data_path is not None:
            return None
        kind = self.family.fidelity_errors
        if kind == "language" and self.data != "pydoc":
            return None
        return kind

    def run_arguments(self) -> dict:
        """Keyword arguments of ``run_experiment`` for a run of this task."""
        arguments = {"model": self.model, "data": self.load() if not isinstance(self.data, str)
                     else self.data, "data_path": self.data_path, "data_seed": self.data_seed,
                     **dict(self.hyper), **dict(self.options)}
        if self.budget is not None:
            arguments[self.unit] = self.budget
        if self.max_train is not None:
            arguments["max_train"] = self.max_train
        return arguments


#: Named tasks. ``gcn-cora`` first: the Cora citation graph (Planetoid split), where
#: hidden learning carries the result (shallow 48 %, DFA 80 %) and feedback quality shows.
TASKS = {task.name: task for task in (
    StudyTask("gcn", "cora", name="gcn-cora", description=(
        "the two-layer GCN (64 hidden ReLU units, dropout 0.5, Adam 0.01, 200 full-batch "
        "epochs) on the Cora citation graph, Planetoid split (140 labelled nodes, 1,000 "
        "test nodes, 7 classes): shallow training of the last layer alone stays far below "
        "DFA, so both hidden learning and the feedback's quality show")),
    StudyTask("gcn", "citeseer", name="gcn-citeseer", description=(
        "the two-layer GCN on the CiteSeer citation graph, Planetoid split (6 classes)")),
    StudyTask("mlp", "teacher", hyper=(("hidden", (256, 256, 256)),), budget=10,
              name="deep-mlp", description=(
                  "a 3-hidden-layer MLP (256 tanh units each) on the generated `teacher` task "
                  "(4 classes read from 4 hidden directions of a 32-d Gaussian input): "
                  "backprop beats the shallow baseline by more than 10 points")),
    StudyTask("mlp", "digits", budget=8, name="mlp-digits", description=(
        "the digits MLP (64-256-256-10, tanh): its shallow baseline is within half a point "
        "of DFA, so feedback quality barely shows")),
    StudyTask("gcn", "csbm", budget=40, name="gcn-csbm", description=(
        "the two-layer GCN on the contextual block model (2,000 nodes, 5 classes)")),
    StudyTask("transformer", "pydoc", budget=300, name="transformer",
              options=(("evaluations", 1), ("max_eval_chars", 16384)), description=(
                  "the character Transformer on the pydoc corpus (4 blocks x 128, context "
                  "64), validation perplexity per character on 16,384 characters")),
)}


# ---------------------------------------------------------------------------- axes
@dataclasses.dataclass(frozen=True)
class Axis:
    """A swept setting: its values and how a value changes a run.

    ``options(value, config)`` returns ``(device_overrides, encoding)``: overrides of the
    device configuration ``config`` (the base with the earlier axes of the point applied)
    and the encoding name, or None to keep it. ``values`` run from the setting that most
    hurts DFA to the best; ``grid`` is the coarser list a two-axis grid uses.
    """

    name: str
    label: str
    values: tuple
    options: Callable
    grid: tuple = ()

    def grid_values(self) -> tuple:
        return self.grid or self.values


def _adc_bits(bits, config):
    full_well = config.camera.full_well_e or 10_000.0
    top = adc_full_scale_dn(bits)
    offset = config.camera.black_offset_dn * top / adc_full_scale_dn(8)  # the offset of 8 bits, rescaled
    return {"camera__adc_bits": bits, "camera__black_offset_dn": offset,
            "camera__gain_dn_per_e": (top - offset) / full_well}, None


def _photon_budget(electrons, config):
    """Exposure for ``electrons`` mean photo-electrons per output with every input on."""
    per_us = mean_signal_electrons(config, on_fraction=1.0) / config.camera.exposure_us
    options = {"camera__exposure_us": electrons / per_us}
    cam = config.camera
    if cam.full_scale_dn is not None:
        top = cam.full_scale_dn - cam.black_offset_dn
        options["camera__gain_dn_per_e"] = max(cam.gain_dn_per_e,
                                               top / (FULL_SCALE_OVER_MEAN * electrons))
    return options, None


def _encoding(value):
    parse_encoding(value)  # refuses an unknown encoding by name
    return {}, value


def _extinction(value, config):
    return {"polarizer": {"extinction_ratio": None if value == "ideal" else float(value)}}, None


AXES = {axis.name: axis for axis in (
    Axis("encoding", "error encoding", ("bitplanes-1", "ternary", "bitplanes-2", "bitplanes-3",
                                        "bitplanes-4", "bitplanes-6", "bitplanes-8"),
         lambda value, config: _encoding(value),
         grid=("ternary", "bitplanes-2", "bitplanes-4")),
    Axis("adc_bits", "camera bit depth", (1, 2, 3, 4, 5, 6, 8, 12), _adc_bits,
         grid=(2, 4, 8)),
    Axis("photon_budget", "photo-electrons per output (all inputs on)",
         (1, 3, 10, 30, 100, 300, 1000, 3000), _photon_budget, grid=(3, 10, 100)),
    Axis("read_noise_e", "read noise (e- rms)", (1000.0, 300.0, 100.0, 30.0, 10.0, 3.0, 0.0),
         lambda value, config: ({"camera__read_noise_e": float(value)}, None),
         grid=(300.0, 30.0, 0.0)),
    Axis("tm_drift_time_s", "TM decorrelation time (device s)",
         (3.0, 10.0, 30.0, 100.0, 300.0, 1000.0, 10000.0, "static"),
         lambda value, config: ({"medium__drift_time_s": None if value == "static"
                                 else float(value)}, None)),
    Axis("extinction_ratio", "polarizer extinction ratio",
         (1.0, 1.5, 2.0, 3.0, 10.0, 100.0, 1000.0, "ideal"), _extinction),
    Axis("dmd_contrast", "DMD contrast", (1.0, 1.1, 1.5, 2.0, 3.0, 10.0, 100.0, 1000.0),
         lambda value, config: ({"dmd__contrast": float(value)}, None)),
)}

#: The references every sweep trains with the same seeds: DFA with ideal Gaussian
#: feedback (the comparison of every decision), backpropagation and the shallow baseline.
REFERENCES = ("ideal", "bp", "shallow")
REFERENCE_LABELS = {"ideal": "DFA, ideal feedback", "bp": "backpropagation",
                    "shallow": "shallow (last layer only)"}
_REFERENCE_METHODS = {"ideal": ("dfa", "ideal"), "shallow": ("shallow", None), "bp": ("bp", None)}


def parse_encoding(text: str) -> tuple[str, int | None]:
    """``"ternary"`` -> ``("ternary", None)``; ``"bitplanes-4"`` -> ``("bitplanes", 4)``."""
    if text == "ternary":
        return "ternary", None
    name, _, bits = str(text).partition("-")
    if name == "bitplanes" and bits.isdigit() and 1 <= int(bits) <= 16:
        return "bitplanes", int(bits)
    raise ValueError(f"encoding = {text!r}: expected 'ternary' or 'bitplanes-N' (N = 1 .. 16 "
                     "bits per sign)")


def encoding_name(encoder: str, n_bits: int | None) -> str:
    """The inverse of :func:`parse_encoding`."""
    return "ternary" if encoder == "ternary" else f"bitplanes-{n_bits}"


def point_key(point: dict) -> str:
    """Canonical text of a point (its axis values)."""
    return json.dumps(point, sort_keys=True)


def point_label(point: dict) -> str:
    """``"adc_bits=4, encoding=ternary"`` (a reference: its name)."""
    if "reference" in point:
        return str(point["reference"])
    return ", ".join(f"{name}={value}" for name, value in point.items())


def sweep_points(axes: Sequence[str] = ("encoding",), pairs: Sequence[tuple[str, str]] = (),
                 ) -> list[dict]:
    """Points of a sweep: each axis alone (its values), then each pair as a grid (their grids).

    Raises
    ------
    ValueError
        For an unknown axis name, or a pair of one axis with itself.
    """
    for name in list(axes) + [n for pair in pairs for n in pair]:
        check_choice("axis", name, AXES)
    for first, second in pairs:
        if first == second:
            raise ValueError(f"pair = {first}:{second}: expected two different axes")
    points = [{name: value} for name in axes for value in AXES[name].values]
    for first, second in pairs:
        points += [{first: a, second: b} for a, b in
                   itertools.product(AXES[first].grid_values(), AXES[second].grid_values())]
    unique = {point_key(p): p for p in points}
    return list(unique.values())


# ---------------------------------------------------------------------------- settings
def device_seeds(seed: int) -> dict:
    """Device seed overrides of training seed ``seed`` (TM, drift, laser, camera, pattern)."""
    state = np.random.SeedSequence([int(seed), 0x0B5]).generate_state(5)
    names = ("tm", "tm_drift", "laser", "camera", "fixed_pattern")
    return {f"seeds__{name}": int(value % (2 ** 31 - 2)) for name, value in zip(names, state)}


def _device_mapping(config: DeviceConfig) -> dict:
    """A configuration's contents as a key holds them (its name and description left out)."""
    mapping = to_mapping(config)
    mapping.pop("name", None)
    mapping.pop("description", None)
    return mapping


def _base_text(base) -> str:
    return base.name if isinstance(base, DeviceConfig) else str(base)


def run_settings(point: dict | str, seed_index: int, *, task: StudyTask, base="lab-bench",
                 seed: int = 0, encoding: str | None = None, fidelity_errors: int = 512
                 ) -> dict:
    """Everything that determines one run's numbers, resolved, and the run's labels.

    Parameters
    ----------
    point
        Axis values (``{"adc_bits": 4}``), or a reference name of :data:`REFERENCES`.
    seed_index
        Which of the seeds (``seed + seed_index`` trains).
    task
        The :class:`StudyTask`.
    base
        The device the points modify: a preset name, a YAML path or a DeviceConfig.
    seed
        First training seed.
    encoding
        The error encoding of points without an ``encoding`` axis (None: the family's
        default, the record's ``encoder``,
        :data:`~dfa_bridge.training.families.FAMILIES`).
    fidelity_errors
        Error vectors of each device run's fidelity measurement (0: none).

    Returns
    -------
    dict
        ``{"settings": ..., "label": ...}``: the settings are the key's contents (plain
        JSON types); the label holds the task's name, the point and the base's name.
    """
    train_seed = check_seed("seed", seed) + check_int("seed_index", seed_index, low=0)
    fidelity_errors = check_int("fidelity_errors", fidelity_errors, low=0)
    settings = {"format": RECORD_FORMAT, "code": code_version(), "task": task.resolved(),
                "seed": train_seed}
    label = {"task": task.label, "base": _base_text(base), "seed_index": int(seed_index)}
    if isinstance(point, str):
        if point not in REFERENCES:
            raise ValueError(f"point = {point!r}: expected axis values or one of "
                             f"{', '.join(REFERENCES)}")
        method, feedback = _REFERENCE_METHODS[point]
        settings.update({"method": method, "feedback": feedback, "device": None,
                         "encoder": None, "fidelity": None})
        label.update({"point": {"reference": point}, "base": None})
        return _plain({"settings": settings, "label": label})
    if not isinstance(point, dict) or not point:
        raise ValueError(f"point = {point!r}: expected a dict of axis values")
    # The device make_feedback opens: its mirrors per class, its outputs' spacing.
    config = resolve_config(base, **simulated_device_options([task.feedback_width()],
                                                             task.n_classes()))
    config = config.replace(**device_seeds(train_seed))
    default_encoder, default_bits = task.family.encoder
    chosen = encoding or encoding_name(default_encoder, default_bits)
    parse_encoding(chosen)
    for name in AXES:  # in the axes' order: a later axis sees the earlier ones applied
        if name not in point:
            continue
        overrides, point_encoding = AXES[name].options(point[name], config)
        if overrides:
            config = config.replace(**overrides)
        if point_encoding is not None:
            chosen = point_encoding
    unknown = sorted(set(point) - set(AXES))
    if unknown:
        check_choice("axis", unknown[0], AXES)
    encoder, n_bits = parse_encoding(chosen)
    kind = task.fidelity_errors()
    fidelity = None
    if fidelity_errors and kind is not None:
        fidelity = {"errors": kind, "n_errors": fidelity_errors,
                    "rows_per_fit": task.rows_per_fit()}
    settings.update({"method": "dfa", "feedback": "device", "device": _device_mapping(config),
                     "encoder": {"name": encoder, "n_bits": n_bits}, "fidelity": fidelity})
    label["point"] = dict(point)
    return _plain({"settings": settings, "label": label})


def _plain(value):
    """Plain JSON types, as stored and read back."""
    return json.loads(jsonio.dumps(value, indent=None))


def settings_key(settings: dict) -> str:
    """SHA-256 (hex) of a run's resolved settings in canonical JSON: equal settings, equal keys."""
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def training_key(settings: dict) -> str:
    """The key of *what was trained*: the settings less the code version and the fidelity set.

    How a reader finds the runs of a setting whatever code computed them (to say so) and
    whatever fixed error set measured their fidelity.
    """
    return settings_key({k: v for k, v in settings.items() if k not in ("code", "fidelity")})


def device_cost(settings: dict) -> dict | None:
    """What a device run's setting costs, from its settings: bits, photons, planes.

    ``adc_bits`` (None: analog read-out), ``photons_per_output`` (mean photo-electrons
    per output with every input on, at the configured exposure) and ``planes`` (binary
    planes per error vector: 2 for ternary, ``2 n_bits`` for signed bit planes; each
    plane is two device frames in complement linear mode). None for a reference.
    """
    if settings.get("device") is None:
        return None
    config = config_from_dict(settings["device"])
    encoder = settings["encoder"]
    planes = 2 if encoder["name"] == "ternary" else 2 * int(encoder["n_bits"])
    return {"adc_bits": config.camera.adc_bits,
            "photons_per_output": float(mean_signal_electrons(config, on_fraction=1.0)),
            "planes": planes, "frames_per_vector": 2 * planes}
