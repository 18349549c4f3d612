"""The step-cost model against training steps measured here (NumPy) or on a GPU (CuPy).

The model (:mod:`studies.step_cost`) predicts each phase of a step (forward with the
loss; the method's backward; the feedback projection; the Adam update) from its
operations and the machine's rates. Here the same steps run on the house code
(:class:`~dfa_bridge.training.trainer.Trainer`), each phase timed on its own
(:func:`measure_steps`: the trainer's ``error``, ``backward`` with the feedback's
``project`` timed inside it, and the optimizer's ``step``), every option and this CPU's
calibration probes (one GEMM, one streaming pass, one ``tanh``, tiny calls) interleaved
in one rotation (:func:`studies.timing.interleaved_times`), so that the machine the model
is given and the steps it predicts see the same load.

:func:`validate_on_cpu` gives ``model / measured - 1`` for every shape, option and
phase, and the check: the median absolute step error at most 15 %, the worst at most
30 % (:data:`CRITERIA`). :func:`model_errors` recomputes the errors of a stored
measurement with a changed model (:func:`studies.step_cost.scale_op`), and
:func:`sensitivity` shows which operations the check pins: doubling (or halving) an
operation that makes up most of a measured phase moves that phase's error past the
phase tolerance, so the check fails.
"""

from __future__ import annotations

import statistics
from dataclasses import replace
from typing import Sequence

import numpy as np

from dfa_bridge.training.structured_feedback import StructuredFeedback
from photon.support.progress import Progress
from studies.step_cost import (HOUSE_NUMPY, PHASES, Implementation, Machine, MLPShape,
                               TransformerShape, scale_op, step_cost, step_ops)
from studies.timing import blas_limit, interleaved_times

__all__ = ["CRITERIA", "MEASURED_OPTIONS", "calibrate_cpu", "measure_steps", "validation_shapes",
           "validate_on_cpu", "validate_on_gpu", "model_errors", "sensitivity",
           "shape_from_description", "machine_from_description"]

#: The check of the model on this CPU: the median and the worst absolute step error
#: (the step), and every substantial phase (at least ``phase_min_share`` of its step
#: and ``phase_min_s`` long, measured: long enough to time on a shared machine) within
#: ``phase``. An operation that makes up ``pinned_share`` of a substantial phase is
#: pinned by the check (:func:`sensitivity`).
CRITERIA = {"median": 0.15, "worst": 0.30, "phase": 0.30, "phase_min_share": 0.25,
            "phase_min_s": 5e-3, "pinned_share": 0.7}

#: Options a step can be measured for (``dfa-opu`` needs the OPU itself).
MEASURED_OPTIONS = ("bp", "dfa-dense", "dfa-structured")

#: The tiny step that calibrates the cost of a launch in the house code (Python and
#: NumPy dispatch per call): its arrays are a few numbers, its time is its launches'.
_TINY_SHAPE = MLPShape(4, (4, 4), 2, 2, "tiny step")
_SKINNY_ROWS = 16
_NEAR_FRACTION = 16  # the near stream's arrays: 1/16 of a weight matrix (in the core's cache)
_NEAR_PASSES = 8     # passes over them per timing: the first brings them in, the rest hit
#: The structured projections timed for its fixed cost per call and per short row:
#: (errors, outputs) of 10 classes (transforms of 16 points: the shortest rows).
_SRHT_CLASSES = 10
_SRHT_PROBES = {"small": (32, 1024), "large": (256, 4096)}


def _calibration_probes(width: int = 1024, batch: int = 256, seed: int = 0) -> tuple[dict, dict]:
    """Callables timing each calibration probe (module notes), and their sizes."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, width), dtype=np.float32)
    w = rng.standard_normal((width, width), dtype=np.float32)
    skinny = np.ascontiguousarray(x[:_SKINNY_ROWS])
    a, b = np.ones(width * width, np.float32), np.full(width * width, 1e-3, np.float32)
    near = width * width // _NEAR_FRACTION
    a_near, b_near = a[:near].copy(), b[:near].copy()
    out = np.empty_like(x)
    trainers, (tiny_x, tiny_y) = _trainers(_TINY_SHAPE, ("bp",), seed)
    adam = _adam_probe(width * width)
    srht = {}
    for key, (rows_, width_) in _SRHT_PROBES.items():
        srht[key] = (StructuredFeedback((width_,), _SRHT_CLASSES, seed=seed),
                     rng.standard_normal((rows_, _SRHT_CLASSES), dtype=np.float32))

    def near_passes():  # passes over the same arrays, as an update or a layer's passes are
        for _ in range(_NEAR_PASSES):
            np.add(a_near, b_near, out=a_near)

    tiny = trainers["bp"]
    probes = {"calibration gemm": lambda: x @ w,
              "calibration skinny gemm": lambda: skinny @ w,
              "calibration stream": lambda: np.add(a, b, out=a),
              "calibration near stream": near_passes,
              "calibration adam": adam,
              "calibration tanh": lambda: np.tanh(x, out=out),
              "calibration tiny step": lambda: tiny.step(tiny_x, tiny_y),
              **{f"calibration srht {key}": (lambda f=f, e=e: f.project(e))
                 for key, (f, e) in srht.items()}}
    launches = sum(op.count * op.launches for op in step_ops(_TINY_SHAPE, "bp"))
    return probes, {"width": width, "batch": batch, "stream_elements": a.size,
                    "near_stream_elements": a_near.size, "adam_parameters": width * width,
                    "tanh_elements": x.size, "skinny_rows": _SKINNY_ROWS,
                    "tiny_step_launches": launches}


def _adam_probe(parameters: int):
    """One house Adam step over one weight matrix of ``parameters`` floats (in place)."""
    from dfa_bridge.nn.layers import Parameter  # noqa: PLC0415
    from dfa_bridge.nn.optim import Adam  # noqa: PLC0415

    weight = Parameter(np.zeros(parameters, np.float32), "probe")
    weight.grad[...] = 1e-3
    return Adam([weight]).step


def _machine_from_times(times: dict, sizes: dict, power_w: float,
                        blas_threads: int | None) -> Machine:
    medians = {name: times[name]["median_s"] for name in times}
    batch, width, rows = sizes["batch"], sizes["width"], sizes["skinny_rows"]
    gemm_s, stream_s = medians["calibration gemm"], medians["calibration stream"]
    skinny_s, tanh_s = medians["calibration skinny gemm"], medians["calibration tanh"]
    launch_s = medians["calibration tiny step"] / sizes["tiny_step_launches"]
    # R(d) = R d / (d + h) at d = batch and d = rows: solve for h, then R.
    ratio = (batch * width * width / gemm_s) / (rows * width * width / skinny_s)
    half_dim = max(0.0, batch * (ratio - 1.0) / (batch / rows - ratio)) \
        if ratio < batch / rows else 0.0
    gemm_rate = 2.0 * batch * width * width / gemm_s * (batch + half_dim) / batch
    bandwidth = 12.0 * sizes["stream_elements"] / stream_s
    near_elements = sizes["near_stream_elements"]
    near_bandwidth = 12.0 * near_elements * _NEAR_PASSES / medians["calibration near stream"]
    # The update's passes over weight-sized tensors, measured as what they are: one Adam
    # step over a weight matrix, its traffic per parameter over its time less its
    # launches. (The stream's a += b over the same size ran 1.4-1.6x faster than Adam's
    # passes on this machine, and varied with the load: the update's phase error swung
    # between +25 % and +52 % on the largest MLP from one run to the next.)
    adam_launches = HOUSE_NUMPY.adam_launches_per_tensor * launch_s
    adam_s = max(medians["calibration adam"] - adam_launches, 1e-12)
    update_bandwidth = HOUSE_NUMPY.adam_bytes_per_parameter * sizes["adam_parameters"] / adam_s
    measured = {
        "gemm": f"(batch {batch}, {width}) @ ({width}, {width}) float32: {gemm_s * 1e3:.3f} ms",
        "skinny gemm": f"({rows}, {width}) @ ({width}, {width}): {skinny_s * 1e3:.3f} ms, "
                       f"half-performance dimension {half_dim:.1f}",
        "stream": f"a += b over {sizes['stream_elements']} float32: {stream_s * 1e3:.3f} ms "
                  f"({bandwidth / 1e9:.1f} GB/s); over {near_elements}: "
                  f"{near_bandwidth / 1e9:.1f} GB/s",
        "update": f"an Adam step over {sizes['adam_parameters']} parameters (in place): "
                  f"{medians['calibration adam'] * 1e3:.3f} ms "
                  f"({update_bandwidth / 1e9:.1f} GB/s at "
                  f"{HOUSE_NUMPY.adam_bytes_per_parameter:.0f} B per parameter)",
        "tanh": f"tanh over {sizes['tanh_elements']} float32: {tanh_s * 1e3:.3f} ms",
        "launch": f"a training step of the {_TINY_SHAPE.widths} MLP on {_TINY_SHAPE.batch} "
                  f"samples over its {sizes['tiny_step_launches']:.0f} launches: "
                  f"{launch_s * 1e6:.2f} us each",
        "blas_threads": "as configured" if blas_threads is None else blas_threads,
        "power_w": f"ASSUMED {power_w} W",
        "kind": "rates measured here, in this run (medians of interleaved repeats)"}
    machine = Machine("this CPU (calibrated)", "calibrated", gemm_rate, bandwidth / 4.0,
                      bandwidth, sizes["tanh_elements"] / tanh_s, launch_s, power_w,
                      0.2 * power_w, HOUSE_NUMPY, measured, half_dim, near_bandwidth,
                      12.0 * near_elements, 12.0 * sizes["stream_elements"],
                      update_bytes_per_s=update_bandwidth)
    # The structured projection: what its two probes take beyond the roofline, split
    # into a fixed cost per call and a cost per short row (transform).
    excess, rows = {}, {}
    for key, (errors, width_) in _SRHT_PROBES.items():
        shape = MLPShape(1, (width_,), _SRHT_CLASSES, errors)
        ops = [op for op in step_ops(shape, "dfa-structured") if op.phase == "feedback"]
        excess[key] = medians[f"calibration srht {key}"] - sum(map(machine.op_seconds, ops))
        rows[key] = sum(op.rows for op in ops)
    row_s = max(0.0, (excess["large"] - excess["small"]) / (rows["large"] - rows["small"]))
    call_s = max(0.0, excess["small"] - row_s * rows["small"])
    measured["srht"] = (f"structured projection of {_SRHT_CLASSES} classes: {call_s * 1e6:.1f} us "
                        f"per call and {row_s * 1e9:.1f} ns per transform beyond the roofline")
    return replace(machine, row_s=row_s, call_s={"srht": call_s}, assumptions=measured)


def calibrate_cpu(width: int = 1024, batch: int = 256, repeats: int = 7,
                  power_w: float = 25.0, seed: int = 0, blas_threads: int | None = 1,
                  clock: str = "cpu") -> Machine:
    """This CPU's roofline, measured now: one GEMM, one streaming pass, one tanh, tiny calls.

    Parameters
    ----------
    width, batch
        The calibration GEMM is ``(batch, width) @ (width, width)`` float32, the skinny
        one ``(16, width) @ (width, width)`` (its rate sets the half-performance
        dimension); the streaming pass ``a += b`` runs over ``width^2`` floats (a weight
        matrix's size); ``tanh`` over ``batch x width``; the cost of a launch is a
        training step of a 4-4-4-2 MLP on 2 samples over the launches the model counts
        in it.
    repeats
        Interleaved timings per probe (median kept).
    power_w
        ASSUMED power of the busy CPU (W).
    seed
        Seed of the operands.
    blas_threads
        Limit the BLAS to this many threads while timing (None: as configured).
    clock
        ``"cpu"`` or ``"wall"`` (:mod:`studies.timing`).

    Returns
    -------
    Machine
        ``kind = "calibrated"``, running :data:`~studies.step_cost.HOUSE_NUMPY`.
    """
    probes, sizes = _calibration_probes(width, batch, seed)
    with blas_limit(blas_threads):
        times = interleaved_times(probes, repeats, 1, clock)
    return _machine_from_times(times, sizes, power_w, blas_threads)


# ---------------------------------------------------------------------------- steps
def _feedback_widths(model, feedback_mode):
    from dfa_bridge.training.trainer import feedback_path  # noqa: PLC0415

    return feedback_path(model, feedback_mode).feedback_widths


def _trainers(shape, options, seed: int, xp=np):
    """Twin models, one trainer per option (same weights), and the batch, on backend ``xp``."""
    from dfa_bridge.nn.models import MLP  # noqa: PLC0415
    from dfa_bridge.nn.transformer import TransformerLM  # noqa: PLC0415
    from dfa_bridge.training.feedback import IdealFeedback  # noqa: PLC0415
    from dfa_bridge.training.structured_feedback import StructuredFeedback  # noqa: PLC0415
    from dfa_bridge.training.trainer import Trainer  # noqa: PLC0415

    sources = {"bp": None, "dfa-dense": IdealFeedback, "dfa-structured": StructuredFeedback}
    rng = np.random.default_rng(seed)
    trainers = {}
    for option in options:
        if option not in sources:
            raise ValueError(f"option = {option!r}: expected one of {', '.join(map(repr, sources))} (the "
                             "options measured here)")
        if isinstance(shape, MLPShape):
            model, mode = MLP(shape.n_features, shape.n_classes, shape.hidden, seed=seed), None
        else:
            model = TransformerLM(shape.vocab, shape.context, shape.width, shape.heads,
                                  shape.n_blocks, seed=seed)
            mode = shape.feedback_mode
        source = sources[option]
        feedback = None if source is None else source(_feedback_widths(model, mode),
                                                      shape.error_width, seed=seed + 1)
        trainers[option] = Trainer(model.to(xp), "bp" if option == "bp" else "dfa", feedback,
                                   feedback_mode=mode)
    if isinstance(shape, MLPShape):
        batch = (rng.standard_normal((shape.batch, shape.n_features), dtype=np.float32),
                 rng.integers(0, shape.n_classes, shape.batch))
    else:
        sequences = max(1, shape.tokens // shape.context)
        tokens = rng.integers(0, shape.vocab, (sequences, shape.context + 1))
        batch = (tokens[:, :-1], tokens[:, 1:])
    return trainers, tuple(xp.asarray(a) for a in batch)


def _phased_step(trainer, x, y, now, synchronize):
    """A training step whose phases time themselves; returns (step, read the parts)."""
    parts = {"forward": 0.0, "backward": 0.0, "feedback": 0.0, "update": 0.0}
    feedback = trainer.feedback
    if feedback is not None:
        project = feedback.project

        def timed_project(error):
            synchronize()
            start = now()
            out = project(error)
            synchronize()
            parts["feedback"] += now() - start
            return out

        feedback.project = timed_project  # this trainer's source only, for the measurement

    def step():
        start = now()
        batch = trainer.error(x, y)
        synchronize()
        middle = now()
        trainer.backward(batch)
        synchronize()
        end = now()
        trainer.optimizer.step()
        synchronize()
        parts["forward"] += middle - start
        parts["backward"] += end - middle
        parts["update"] += now() - end

    def read():
        measured = dict(parts, backward=parts["backward"] - parts["feedback"])
        for key in parts:
            parts[key] = 0.0
        return measured

    return step, read


def measure_steps(shape, options: Sequence[str] = MEASURED_OPTIONS, repeats: int = 7,
                  warmup: int = 2, seed: int = 0, probes: dict | None = None,
                  blas_threads: int | None = None, backend: str = "numpy",
                  clock: str = "wall") -> dict:
    """One training step per option, each phase timed, measured here.

    The options run on twin models (same weights, same batch), interleaved with the
    ``probes`` in a rotating order every repeat (:func:`studies.timing.interleaved_times`).

    Parameters
    ----------
    shape
        :class:`~studies.step_cost.MLPShape` or :class:`~studies.step_cost.TransformerShape`.
    options
        Among :data:`MEASURED_OPTIONS`.
    repeats, warmup
        Timed and untimed steps per option.
    seed
        Seed of the weights, feedback and batch.
    probes
        More callables (name -> function) timed in the same rotation (the CPU's
        calibration).
    blas_threads
        Limit the BLAS to this many threads (None: as configured).
    backend
        ``"numpy"`` or ``"cupy"`` (each timing then ends with a device synchronization).
    clock
        ``"wall"`` or ``"cpu"`` (NumPy only).

    Returns
    -------
    dict
        ``name -> {"median_s", "q25_s", "q75_s", "samples_s", "repeats"}`` per option
        and probe; an option's has ``"parts"`` per phase (forward with the loss;
        backward without the projection; the projection; the update).
    """
    from photon.support.arrays import backend_module  # noqa: PLC0415
    from studies.timing import CLOCKS  # noqa: PLC0415

    xp = backend_module(backend)
    if clock not in CLOCKS or (clock == "cpu" and xp is not np):
        raise ValueError(f"clock = {clock!r}: expected 'wall', or 'cpu' with backend 'numpy'")
    trainers, (x, y) = _trainers(shape, options, seed, xp)
    synchronize = (lambda: None) if xp is np else xp.cuda.get_current_stream().synchronize
    functions, splits = {}, {}
    for option, trainer in trainers.items():
        functions[option], splits[option] = _phased_step(trainer, x, y, CLOCKS[clock],
                                                         synchronize)
    functions.update(probes or {})
    with blas_limit(blas_threads):
        return interleaved_times(functions, repeats, warmup, clock,
                                 None if xp is np else synchronize, splits)


def validation_shapes() -> list:
    """Twelve step shapes, each dominated by a different part of the model.

    MLP widths and batches from launch-bound (the digits MLP) to GEMM-bound, one whose
    update dominates (many weights, a small batch), one whose first layer's GEMMs
    dominate, one whose elementwise passes weigh (narrow layers, a large batch), one
    with many classes (the loss and the feedback); Transformers: shared, sliced, micro
    DFA and an attention-bound one.
    """
    return [MLPShape(784, (512,) * 3, 10, 128, "MLP 784-512x3-10, batch 128"),
            MLPShape(784, (1024,) * 4, 10, 256, "MLP 784-1024x4-10, batch 256"),
            MLPShape(784, (2048,) * 2, 1000, 256, "MLP 784-2048x2-1000, batch 256"),
            MLPShape(64, (256, 256), 10, 32, "MLP 64-256x2-10, batch 32 (digits)"),
            MLPShape(784, (4096,), 10, 16, "MLP 784-4096-10, batch 16"),
            MLPShape(1024, (4096,), 10, 256, "MLP 1024-4096-10, batch 256"),
            MLPShape(32, (64,) * 4, 256, 8192, "MLP 32-64x4-256, batch 8192"),
            MLPShape(256, (512, 512), 4096, 512, "MLP 256-512x2-4096, batch 512"),
            TransformerShape(96, 128, 4, 4, 64, 16 * 64, "shared",
                             "Transformer D128 L4 T64, 1024 tok"),
            TransformerShape(512, 256, 2, 4, 128, 8 * 128, "sliced",
                             "Transformer D256 L2 T128 V512 sliced, 1024 tok"),
            TransformerShape(96, 128, 2, 4, 64, 16 * 64, "micro-shared",
                             "Transformer D128 L2 T64 micro-shared, 1024 tok"),
            TransformerShape(96, 64, 2, 4, 256, 8 * 256, "shared",
                             "Transformer D64 L2 T256, 2048 tok")]


def shape_from_description(description: dict):
    """The shape a ``describe()`` came from."""
    fields = {k: v for k, v in description.items()
              if k not in ("family", "parameters", "error_width", "feedback_width")}
    if description["family"] == MLPShape.family:
        return MLPShape(**{**fields, "hidden": tuple(fields["hidden"])})
    return TransformerShape(**fields)


def machine_from_description(description: dict) -> Machine:
    """The machine a ``describe()`` came from."""
    return Machine(**{**description,
                      "implementation": Implementation(**description["implementation"])})


def validate_on_cpu(shapes=None, options: Sequence[str] = MEASURED_OPTIONS, repeats: int = 7,
                    blas_threads: int | None = 1, clock: str = "cpu",
                    power_w: float = 25.0, progress: bool | None = None) -> dict:
    """The step model on this CPU against steps measured here: ``model / measured - 1``.

    For each shape, the CPU's rates (:func:`calibrate_cpu`'s probes) are timed in the
    same interleaved rotation as the steps (:func:`measure_steps`), so that both see the
    same load; the model's step and phase times on that calibrated machine are compared
    with the measured medians.

    Parameters
    ----------
    shapes
        Shapes to measure (default :func:`validation_shapes`).
    options
        Options measured (:data:`MEASURED_OPTIONS`).
    repeats
        Timed steps per option and shape (>= 5 for a reported figure).
    blas_threads
        BLAS threads while timing (default 1: see :mod:`studies.timing`; None: as
        configured).
    clock
        ``"cpu"`` (default: the process's CPU time) or ``"wall"``.
    power_w
        ASSUMED CPU power (W).
    progress
        Progress bar (None: for two shapes or more).

    Returns
    -------
    dict
        ``measurements`` (per shape: its description, the calibrated machine, the
        measured steps), the :func:`model_errors` (``rows``, ``median_abs_error``,
        ``max_abs_error``, ``passed``), ``blas_threads``, ``clock``, ``repeats``.
    """
    shapes = validation_shapes() if shapes is None else list(shapes)
    measurements = []
    with Progress(len(shapes), "step model vs measured", enabled=progress, unit="shape",
                  min_steps=2) as bar:
        for shape in shapes:
            probes, sizes = _calibration_probes()
            measured = measure_steps(shape, options, repeats=repeats, probes=probes,
                                     blas_threads=blas_threads, clock=clock)
            probe_times = {name: measured.pop(name) for name in probes}
            machine = _machine_from_times(probe_times, sizes, power_w, blas_threads)
            measurements.append({"shape": shape.describe(), "machine": machine.describe(),
                                 "steps": measured})
            bar.update()
    return {"measurements": measurements, **model_errors({"measurements": measurements}),
            "blas_threads": blas_threads, "clock": clock, "repeats": repeats}


def model_errors(validation: dict, transform=None) -> dict:
    """The model's errors on stored measurements (``validation["measurements"]``).

    Parameters
    ----------
    validation
        What :func:`validate_on_cpu` returned (or its ``measurements``).
    transform
        A change of the model (:func:`studies.step_cost.scale_op`), or None.

    Returns
    -------
    dict
        ``rows`` (shape, option, measured median and quartiles, model, error, and per
        phase measured, model, error, the phase's share of the measured step),
        ``median_abs_error``, ``max_abs_error``, ``worst_phase`` (the largest phase
        error among phases of at least ``CRITERIA["phase_min_share"]`` of their step),
        ``passed`` (:data:`CRITERIA`), ``criteria``.
    """
    rows = []
    for entry in validation["measurements"]:
        shape = shape_from_description(entry["shape"])
        machine = machine_from_description(entry["machine"])
        for option, measured in entry["steps"].items():
            cost = step_cost(shape, option, machine, transform=transform)
            row = {"shape": shape.name, "family": shape.family, "option": option,
                   "measured_s": measured["median_s"], "q25_s": measured["q25_s"],
                   "q75_s": measured["q75_s"], "model_s": cost["seconds"],
                   "error": cost["seconds"] / measured["median_s"] - 1.0,
                   "gemm_flops_per_s": machine.gemm_flops_per_s, "phases": {}}
            for phase, part in measured.get("parts", {}).items():
                model = cost["machine_seconds"][phase]
                row["phases"][phase] = {
                    "measured_s": part["median_s"], "q25_s": part["q25_s"],
                    "q75_s": part["q75_s"], "model_s": model,
                    "share": part["median_s"] / measured["median_s"],
                    "substantial": _substantial(part["median_s"], measured["median_s"]),
                    "error": model / part["median_s"] - 1.0 if part["median_s"] > 0 else None}
            rows.append(row)
    errors = [abs(r["error"]) for r in rows]
    phases = [abs(p["error"]) for r in rows for p in r["phases"].values() if p["substantial"]]
    median, worst = statistics.median(errors), max(errors)
    worst_phase = max(phases) if phases else None
    passed = median <= CRITERIA["median"] and worst <= CRITERIA["worst"] and \
        (worst_phase is None or worst_phase <= CRITERIA["phase"])
    return {"rows": rows, "median_abs_error": median, "max_abs_error": worst,
            "worst_phase_error": worst_phase, "passed": passed, "criteria": dict(CRITERIA)}


def _substantial(phase_s: float, step_s: float) -> bool:
    """A phase long enough, and a large enough part of its step, to be checked alone."""
    return phase_s >= CRITERIA["phase_min_s"] and phase_s >= CRITERIA["phase_min_share"] * step_s


def sensitivity(validation: dict, factors: Sequence[float] = (2.0, 0.5),
                min_share: float | None = None) -> list:
    """Which operations the check pins: each changed alone by each factor, is the check failed?

    An operation is tried where it makes up at least ``min_share`` (default
    ``CRITERIA["pinned_share"]``) of the modelled time of a substantial measured phase
    (in some row of ``validation``): there doubling it moves that phase's prediction by
    at least ``min_share`` and halving it by ``min_share / 2`` (which a phase the model
    already puts high in the same direction can absorb). For each such operation name and factor, the model with that op
    scaled (:func:`studies.step_cost.scale_op`) is checked again on every measurement.

    Returns
    -------
    list of dict
        ``op``, ``factor``, the row and phase where it dominates, its ``share``,
        ``caught`` (the changed model fails the check), and the changed model's
        ``median_abs_error``, ``max_abs_error`` and ``worst_phase_error``.
    """
    min_share = CRITERIA["pinned_share"] if min_share is None else min_share
    dominant = {}
    for entry in validation["measurements"]:
        shape = shape_from_description(entry["shape"])
        machine = machine_from_description(entry["machine"])
        for option, measured in entry["steps"].items():
            ops = step_ops(shape, option, machine.implementation)
            for phase in PHASES:
                part = measured.get("parts", {}).get(phase)
                if part is None or not _substantial(part["median_s"], measured["median_s"]):
                    continue
                mine = [op for op in ops if op.phase == phase]
                total = sum(machine.op_seconds(op) for op in mine)
                by_name = {}
                for op in mine:
                    by_name[op.name] = by_name.get(op.name, 0.0) + machine.op_seconds(op)
                for name, seconds in by_name.items():
                    share = seconds / total if total else 0.0
                    if share >= min_share and share > dominant.get(name, {}).get("share", 0.0):
                        dominant[name] = {"shape": shape.name, "option": option, "phase": phase,
                                          "share": share}
    result = []
    for name, where in sorted(dominant.items()):
        for factor in factors:
            changed = model_errors(validation, scale_op(name, factor))
            result.append({"op": name, "factor": factor, **where, "caught": not changed["passed"],
                           "median_abs_error": changed["median_abs_error"],
                           "max_abs_error": changed["max_abs_error"],
                           "worst_phase_error": changed["worst_phase_error"]})
    return result


def validate_on_gpu(shapes=None, options: Sequence[str] = MEASURED_OPTIONS, repeats: int = 7,
                    gpu_name: str | None = None, progress: bool | None = None) -> dict:
    """The GPU model against steps measured with CuPy on the GPU present (needs one).

    The model is :func:`studies.step_cost.gpu_machine` of the spec whose name the CUDA
    device's contains (:func:`studies.gpu_model.match_gpu`), in fp32 with the house
    code's traffic (:data:`~studies.step_cost.HOUSE_NUMPY`: the same layers run on CuPy,
    float32, no TF32): ``model / measured - 1`` per shape, option and phase, and the same
    check as on the CPU. Without a matching spec, the measurements alone.
    """
    from dataclasses import replace  # noqa: PLC0415

    from studies.gpu_model import match_gpu  # noqa: PLC0415
    from studies.step_cost import gpu_machine  # noqa: PLC0415
    from studies.throughput import local_gpu_name  # noqa: PLC0415

    gpu_name = gpu_name or local_gpu_name()
    if gpu_name is None:
        raise RuntimeError("validate_on_gpu: no GPU (CuPy sees no CUDA device): expected one")
    spec = match_gpu(gpu_name)
    house_cupy = replace(HOUSE_NUMPY, name="house CuPy, float32")
    machine = gpu_machine(spec, "fp32", implementation=house_cupy) if spec else None
    shapes = validation_shapes() if shapes is None else list(shapes)
    measurements = []
    with Progress(len(shapes), "GPU step model vs measured", enabled=progress, unit="shape",
                  min_steps=2) as bar:
        for shape in shapes:
            measured = measure_steps(shape, options, repeats=repeats, backend="cupy")
            measurements.append({"shape": shape.describe(), "steps": measured,
                                 "machine": machine.describe() if machine else None})
            bar.update()
    result = {"gpu": gpu_name, "model": machine.describe() if machine else None,
              "measurements": measurements, "repeats": repeats, "clock": "wall"}
    if machine is not None:
        result.update(model_errors(result))
    else:
        result["rows"] = [{"shape": m["shape"]["name"], "family": m["shape"]["family"],
                           "option": option, "measured_s": steps["median_s"],
                           "q25_s": steps["q25_s"], "q75_s": steps["q75_s"], "phases": {}}
                          for m in measurements for option, steps in m["steps"].items()]
        result.update(median_abs_error=None, max_abs_error=None, passed=None)
    return result
