"""PyTorch front: DFA for a user's own ``torch.nn.Module``, in the training loop users write.

Install with ``pip install -e '.[torch]'``; import explicitly (``dfa_bridge`` does not
import this module, so the package works without torch)::

    from dfa_bridge.torch_front import DFA, FeedbackPoint

    dfa = DFA(model, "dfa", "lab-bench")        # hooks the model; an nn.Module itself
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for x, y in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)     # or dfa(x): the same forward
        loss.backward()                         # the DFA update, not backprop's
        optimizer.step()

Model (docs/design.md section 5, section 6 "Fronts")
----------------------------------------------------
The user marks where feedback enters: a :class:`FeedbackPoint` (an identity module) in the
model, or any submodule passed to :class:`DFA` (``points=``), whose output is the point.
Point ``i``'s output ``h_i`` (batch..., any shape) plays the role of a hidden layer of
the NumPy path, flattened: the error ``e = dL/d(output)`` (batch..., C) is projected
ONCE per backward by a :class:`~dfa_bridge.training.feedback.Feedback` (ideal, a preset
such as ``lab-bench``, a calibrated device: :func:`~dfa_bridge.training.feedback.make_feedback`)
and ``h_i`` receives ``B_i e`` as its gradient, reshaped to ``h_i``'s shape (a point
after a convolution, (batch, C, H, W), has width ``C H W``; the leading dimensions of
the output are the batch: a Transformer's points (batch, T, D) have width ``D``).
Autograd carries ``B_i e`` into the parameters between point ``i - 1`` and point ``i``
(``delta_i = (B_i e) * f'(a_i)`` for a point after an activation); no gradient flows from
one block to the one below; the parameters above the last point (the head) get the true
gradient of the loss.

How: the DFA registers forward hooks on the model and on each point. During a forward
with gradients enabled, each point's output passes through an autograd function whose
backward returns the projected error instead of the gradient it receives, and the
model's output through one whose backward projects the error it receives (the true
gradient passes on to the head). So ``loss.backward()`` (or ``torch.autograd.grad``)
gives the DFA update in any training loop, and a backward always uses the activations
and the error of the forward it belongs to (the graph carries them): interleaved
forwards, a ``no_grad`` validation forward in between, or ``retain_graph`` work as
expected. A forward without gradients (``torch.no_grad()``, inference) is the plain
model.

* ``bp``: ordinary autograd (no hooks);
* ``dfa``: as above; ``feedback_mode="sliced"`` gives point ``i`` its own slice of one
  projection onto ``sum n_i`` (the MLP form); ``"shared"`` projects onto ``n`` (all points
  of equal width) and gives every point the same signal (TinyDFA, Launay et al.);
* ``shallow``: only the head trains (every point stops the gradient).

A point may carry the signal through a fixed module first (``through=``): the
Transformer's final layer norm, whose input gradient brings ``B e`` into the residual
stream, as the NumPy :class:`~dfa_bridge.training.trainer.TransformerPath` does.

``torch.compile``: the hooks run eagerly (``torch.compiler.disable``), so a compiled
model trains with DFA as it does uncompiled, with a graph break at each point
(``fullgraph=True`` cannot hold and is refused by torch). Autocast (bf16, fp16): the
error is projected in float32 and each point's signal cast to its activation's dtype.

Arrays: CPU tensors go to the feedback as NumPy (``Tensor.numpy``, no copy), CUDA
tensors as CuPy through DLPack (``cupy.from_dlpack``/``torch.from_dlpack``, no host
copy). Alignment: :meth:`DFA.alignment` gives, per point, the angle between block
``i``'s DFA update and its backprop gradient on one batch
(:func:`dfa_bridge.training.alignment.angle_deg`, degrees).

Misuse is named in one :class:`DFAUsageError`: a point whose input depends on no
trainable parameter (placed first, or after frozen layers only), a point returning a
tuple (an ``nn.LSTM``), a point not reached or reached twice by one forward, a model
returning something else than one tensor, any use after :meth:`DFA.close`.
"""

from __future__ import annotations

import functools
import math
from typing import Callable, Sequence

import numpy as np

try:
    import torch
    from torch import nn
except ImportError as _error:  # pragma: no cover - exercised only without torch
    raise ImportError("dfa_bridge.torch_front needs PyTorch: pip install -e '.[torch]'") from _error

from devices import Encoder, backend_names
from devices.registry import check_device_name
from photon import preset_names, resolve_config
from photon.support.arguments import check_choice, check_int, check_seed

from .training.alignment import angle_deg
from .training.feedback import ENCODERS, Feedback, make_feedback
from .training.trainer import FEEDBACK_MODES as TRAINER_FEEDBACK_MODES
from .training.trainer import METHODS as TRAINER_METHODS

__all__ = ["FeedbackPoint", "DFA", "DFAUsageError", "METHODS", "FEEDBACK_MODES",
           "FEEDBACK_OPTIONS", "to_array", "from_array"]

#: The methods of the trainer (:data:`dfa_bridge.training.trainer.METHODS`).
METHODS = TRAINER_METHODS
#: The trainer's macro feedback modes (a user's points carry no block structure for the
#: micro modes); the default is ``"sliced"``, the MLP form, as for the trainer's MLP.
FEEDBACK_MODES = tuple(mode for mode in TRAINER_FEEDBACK_MODES if not mode.startswith("micro"))
#: ``feedback_options`` keys by kind of feedback (a device also takes its configuration
#: fields, e.g. ``camera__read_noise_e``, checked against the device).
FEEDBACK_OPTIONS = {"ideal": ("seed",), "structured": ("seed",),
                    "device": ("encoder", "n_bits", "macropixel_mirrors")}


class DFAUsageError(RuntimeError):
    """The DFA front used in a way it cannot honour (the message names the case)."""


class FeedbackPoint(nn.Module):
    """Identity module marking where the DFA signal enters (its output is the point).

    Parameters
    ----------
    through
        Optional fixed module the signal is carried through first: the point gets the
        input gradient of ``through`` at ``h`` for the cotangent ``B e`` (``through``'s
        own parameters get nothing from it).
    """

    def __init__(self, through: nn.Module | None = None):
        super().__init__()
        if through is not None and not isinstance(through, nn.Module):
            raise TypeError(f"through = {through!r}: expected None or a torch.nn.Module")
        self.through = [through]  # a list: not registered as a submodule (no double params)

    def forward(self, x):
        return x


def to_array(tensor):
    """A detached tensor as NumPy (CPU, shares memory) or CuPy (CUDA, DLPack, no copy)."""
    tensor = tensor.detach()
    if tensor.is_cuda:
        import cupy  # noqa: PLC0415  (CUDA tensors only)

        return cupy.from_dlpack(tensor.contiguous())
    return tensor.contiguous().numpy()


def from_array(array, like):
    """``array`` (NumPy or CuPy) as a tensor on ``like``'s device and dtype (DLPack on CUDA)."""
    if isinstance(array, np.ndarray):
        out = torch.from_numpy(np.ascontiguousarray(array))
    else:
        out = torch.from_dlpack(array)
    return out.to(device=like.device, dtype=like.dtype)


# ---------------------------------------------------------------------- one forward
class _Step:
    """One forward pass through a DFA-hooked model: what its backward needs.

    ``shapes[i]``: point ``i``'s output shape; ``signals``: the projected error per point
    (set by the output's backward); ``mode``: ``"dfa"`` or ``"bp"`` (alignment only);
    ``outputs``: the points' outputs, kept only for :meth:`DFA.alignment`.
    """

    __slots__ = ("dfa", "shapes", "signals", "mode", "outputs")

    def __init__(self, dfa: "DFA", keep_outputs: bool = False):
        self.dfa = dfa
        self.shapes: dict[int, torch.Size] = {}
        self.signals: list | None = None
        self.mode = "dfa"
        self.outputs: dict | None = {} if keep_outputs else None


class _PointFunction(torch.autograd.Function):
    """Identity forward; backward returns the point's projected error (DFA)."""

    @staticmethod
    def forward(ctx, h, step, index):
        ctx.step, ctx.index = step, index
        through = step.dfa._through[index]
        if through is not None:
            ctx.save_for_backward(h)
        return h.view_as(h)

    @staticmethod
    def backward(ctx, grad):
        step = ctx.step
        if step.mode == "bp":
            return grad, None, None
        if step.signals is None:
            raise DFAUsageError(
                f"feedback point {ctx.index} ({step.dfa._point_names[ctx.index]}) received a "
                "gradient but the model's output received none: expected a loss of the "
                "model's output (the DFA projects the error dL/d(output))")
        signal = step.signals[ctx.index if step.dfa.feedback_mode == "sliced" else 0]
        signal = signal.reshape(grad.shape).to(device=grad.device, dtype=grad.dtype)
        through = step.dfa._through[ctx.index]
        if through is not None:
            (h,) = ctx.saved_tensors
            with torch.enable_grad():
                leaf = h.detach().requires_grad_()
                (signal,) = torch.autograd.grad(through(leaf), leaf, signal)
        return signal, None, None


class _OutputFunction(torch.autograd.Function):
    """Identity forward; backward projects the error it receives and passes it on."""

    @staticmethod
    def forward(ctx, output, step):
        ctx.step = step
        return output.view_as(output)

    @staticmethod
    def backward(ctx, grad):
        step = ctx.step
        if step.mode == "dfa":
            step.signals = step.dfa._project(grad)
        return grad, None


# Hooks: module-level functions (picklable through functools.partial), run eagerly under
# torch.compile.
@torch.compiler.disable
def _open_step(dfa: "DFA", module, args):
    dfa._open_step()


@torch.compiler.disable
def _close_step(dfa: "DFA", module, args, output):
    return dfa._close_step(output)


@torch.compiler.disable
def _at_point(dfa: "DFA", index: int, module, args, output):
    return dfa._at_point(index, output)


def _check_feedback_options(feedback, options) -> dict:
    """``options`` as a dict, or an error naming the key that would be ignored or wrong."""
    if isinstance(feedback, str) and feedback not in ("ideal", "structured"):
        try:
            check_device_name(feedback.removeprefix("device:"))
        except ValueError as error:
            raise ValueError(f"feedback = {feedback!r}: expected 'ideal', 'structured' or a "
                             f"device ({error})") from error
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise TypeError(f"feedback_options = {options!r}: expected a dict or None")
    options = dict(options)
    for key in options:
        if not isinstance(key, str):
            raise TypeError(f"feedback_options key {key!r}: expected a string")
    if isinstance(feedback, Feedback):
        if options:
            raise ValueError(f"feedback_options = {options!r}: expected none with a Feedback "
                             "instance (it is built already; its options would be ignored)")
        return options
    kind = feedback if feedback in ("ideal", "structured") else "device"
    allowed = FEEDBACK_OPTIONS[kind]
    for key, check in (("seed", lambda v: check_seed("feedback_options['seed']", v)),
                       ("n_bits", lambda v: check_int("feedback_options['n_bits']", v)),
                       ("macropixel_mirrors",
                        lambda v: check_int("feedback_options['macropixel_mirrors']", v))):
        if key in options:
            check(options[key])
    encoder = options.get("encoder")
    if encoder is not None and not isinstance(encoder, Encoder) and encoder not in ENCODERS:
        raise ValueError(f"feedback_options['encoder'] = {encoder!r}: expected one of "
                         f"{', '.join(map(repr, ENCODERS))} or a devices.Encoder")
    if kind != "device":
        unknown = sorted(set(options) - set(allowed))
        if unknown:
            raise ValueError(f"feedback_options[{unknown[0]!r}]: not an option of feedback = "
                             f"{feedback!r}: expected {', '.join(allowed)}")
        return options
    if "seed" in options:
        raise ValueError(f"feedback_options['seed'] = {options['seed']!r}: a device's feedback "
                         "matrix is its physics (its TM seed is a device field, seeds__tm): "
                         f"expected {', '.join(allowed)} or device fields")
    device_name = feedback.removeprefix("device:")
    fields = {k: v for k, v in options.items() if k not in allowed}
    if fields and (device_name == "virtual" or device_name not in backend_names()) and (
            device_name in preset_names() or device_name.endswith((".yaml", ".yml"))):
        try:
            resolve_config(device_name, **fields)
        except ValueError as error:
            raise ValueError(f"feedback_options: {error}") from error
    return options


class DFA(nn.Module):
    """Train a ``torch.nn.Module`` with bp, DFA or the shallow baseline, through ``loss.backward()``.

    An ``nn.Module`` wrapping ``model`` (``dfa(x)`` is ``model(x)``; calling ``model``
    directly is the same, the hooks are on it). Its ``state_dict`` holds the model's and
    the DFA's settings; it pickles and deep-copies whole (the feedback device included).

    Parameters
    ----------
    model
        The user's module; its output (batch..., C), one tensor, is what the loss sees.
    method
        ``"bp"``, ``"dfa"`` or ``"shallow"``.
    feedback
        A :class:`~dfa_bridge.training.feedback.Feedback`, or a name for
        :func:`~dfa_bridge.training.feedback.make_feedback` (``"ideal"``, ``"lab-bench"``,
        ``"device:ideal"``, ...), built at the first forward from the points' widths and
        the output width. Unused by ``bp`` and ``shallow``.
    points
        Submodules of ``model`` whose outputs (one tensor each) are the feedback points,
        bottom to top; None: every :class:`FeedbackPoint` in ``model``, in registration
        order.
    feedback_mode
        ``"sliced"`` or ``"shared"`` (module docstring).
    feedback_options
        Keyword arguments of ``make_feedback``: ``seed`` for ``"ideal"`` and
        ``"structured"``; ``encoder``, ``n_bits``, ``macropixel_mirrors`` and device
        fields (``camera__read_noise_e=...``) for a device (:data:`FEEDBACK_OPTIONS`).
        Any other key is refused.

    Attributes
    ----------
    model : torch.nn.Module
    feedback : Feedback or None
        The feedback source (after the first ``dfa`` forward when given by name).
    widths : tuple of int or None
        The points' flattened widths (after the first ``dfa`` forward).
    """

    def __init__(self, model: nn.Module, method: str = "dfa", feedback="ideal", *,
                 points: Sequence[nn.Module] | None = None, feedback_mode: str = "sliced",
                 feedback_options: dict | None = None):
        super().__init__()
        if not isinstance(model, nn.Module):
            raise TypeError(f"model = {model!r}: expected a torch.nn.Module")
        check_choice("method", method, METHODS)
        check_choice("feedback_mode", feedback_mode, FEEDBACK_MODES)
        if method == "dfa" and not (isinstance(feedback, Feedback)
                                    or (isinstance(feedback, str) and feedback)):
            raise TypeError(f"feedback = {feedback!r}: expected a Feedback or a feedback name")
        options = _check_feedback_options(feedback, feedback_options) if method == "dfa" \
            else _check_feedback_options("ideal", {})
        names = {id(m): name or type(m).__name__ for name, m in model.named_modules()}
        if points is None:
            points = [m for m in model.modules() if isinstance(m, FeedbackPoint)]
        elif isinstance(points, nn.Module) or not isinstance(points, (list, tuple)):
            raise TypeError(f"points = {points!r}: expected a list of submodules of the model")
        points = list(points)
        for i, point in enumerate(points):
            if not isinstance(point, nn.Module):
                raise TypeError(f"points[{i}] = {point!r}: expected a torch.nn.Module")
            if id(point) not in names or point is model:
                raise ValueError(f"points[{i}] = {type(point).__name__}: expected a submodule "
                                 "of the model (not the model itself)")
        if len({id(p) for p in points}) != len(points):
            raise ValueError("points: the same module twice: expected each point once")
        if method != "bp" and not points:
            raise ValueError(f"method = {method!r}: expected feedback points (FeedbackPoint "
                             "modules in the model, or points=[submodules])")
        for hook in model._forward_hooks.values():
            owner = hook.args[0] if isinstance(hook, functools.partial) \
                and hook.func is _close_step else None
            if owner is not None and not owner._closed:
                raise ValueError("model: already trained by another DFA: expected one DFA per "
                                 "model (close() the other one first)")
        self.model = model
        self.method, self.feedback_mode = method, feedback_mode
        self.feedback = feedback if isinstance(feedback, Feedback) else None
        self._feedback_name = feedback if isinstance(feedback, str) else None
        self.feedback_options = options
        self.points = points  # a plain list: the modules are registered under model
        self._point_names = [names[id(p)] for p in points]
        self._through = [getattr(p, "through", [None])[0] if isinstance(p, FeedbackPoint)
                         else None for p in points]
        self.widths: tuple[int, ...] | None = None
        self._current: _Step | None = None
        self._keep_outputs = False
        self._kept_step: _Step | None = None
        self._closed = False
        self._handles = []
        if method != "bp":
            self._handles.append(model.register_forward_pre_hook(
                functools.partial(_open_step, self)))
            self._handles.append(model.register_forward_hook(
                functools.partial(_close_step, self), always_call=True))
            for i, point in enumerate(points):
                self._handles.append(point.register_forward_hook(
                    functools.partial(_at_point, self, i)))

    def extra_repr(self) -> str:
        feedback = self._feedback_name or (self.feedback.name if self.feedback else None)
        return (f"method={self.method!r}, feedback={feedback!r}, "
                f"feedback_mode={self.feedback_mode!r}, points={self._point_names}")

    # ------------------------------------------------------------------ forward
    def forward(self, *args, **kwargs):
        """``model(*args, **kwargs)`` (the hooks make its backward DFA's)."""
        self._require_open("forward")
        return self.model(*args, **kwargs)

    def _require_open(self, what: str) -> None:
        if self._closed:
            raise DFAUsageError(f"DFA.{what} after close(): this DFA released its hooks and its "
                                "feedback device; expected a new DFA(model, ...)")

    def _open_step(self) -> None:
        self._require_open("forward")
        active = torch.is_grad_enabled() and self.method != "bp"
        self._current = _Step(self, self._keep_outputs) if active else None

    def _at_point(self, index: int, output):
        step = self._current
        if step is None:
            return output
        name = f"feedback point {index} ({self._point_names[index]})"
        if not torch.is_tensor(output):
            raise DFAUsageError(f"{name} returned a {type(output).__name__}: expected one "
                                "tensor (an nn.LSTM returns (output, (h, c)): select the "
                                "output in the model and put a FeedbackPoint after it)")
        if index in step.shapes:
            raise DFAUsageError(f"{name} was reached twice in one forward: expected one "
                                "FeedbackPoint per place (a module used twice cannot be a point)")
        step.shapes[index] = output.shape
        if self.method == "shallow":
            return output.detach()
        if not output.requires_grad:
            raise DFAUsageError(f"{name}: its input depends on no trainable parameter (a point "
                                "placed first, or after frozen layers only), so its DFA signal "
                                "would train nothing: expected a point after a trainable layer "
                                "(remove this point, or unfreeze the layer below it)")
        out = _PointFunction.apply(output, step, index)
        if step.outputs is not None:
            step.outputs[index] = out
        return out

    def _close_step(self, output):
        step, self._current = self._current, None
        if step is None or self.method == "shallow" or output is None:
            return output  # (None: the forward raised; its error goes on as it is)
        if not torch.is_tensor(output):
            raise DFAUsageError(f"the model returned a {type(output).__name__}: expected one "
                                "tensor (batch..., n_classes), the output whose error DFA "
                                "projects")
        missing = [i for i in range(len(self.points)) if i not in step.shapes]
        if missing:
            raise DFAUsageError(
                f"feedback point {missing[0]} ({self._point_names[missing[0]]}) was not "
                "reached by this forward: expected every point on the path to the output")
        if output.ndim < 1:
            raise DFAUsageError("the model returned a scalar: expected an output (batch..., "
                                "n_classes) whose error DFA projects (compute the loss outside "
                                "the model)")
        if not output.requires_grad:
            raise DFAUsageError(f"the model's output (shape {tuple(output.shape)}) does not "
                                "depend on any trainable parameter: nothing to train")
        self._ensure_feedback(output, step)
        if self._keep_outputs:
            self._kept_step = step
        return _OutputFunction.apply(output, step)

    def _ensure_feedback(self, output, step) -> Feedback:
        lead = tuple(output.shape[:-1])
        widths = []
        for i in range(len(self.points)):
            shape = tuple(step.shapes[i])
            if shape[:len(lead)] != lead or len(shape) <= len(lead):
                raise DFAUsageError(
                    f"feedback point {i} ({self._point_names[i]}): output shape {shape}: "
                    f"expected the model output's leading (batch) dimensions {lead} first, "
                    "then the point's own")
            widths.append(math.prod(shape[len(lead):]))
        widths = tuple(widths)
        if self.feedback_mode == "shared":
            if len(set(widths)) != 1:
                raise DFAUsageError(f"feedback_mode = 'shared': points of widths {widths}: "
                                    "expected equal widths")
            widths = widths[:1]
        n_classes = int(output.shape[-1])
        if self.feedback is None:
            try:
                self.feedback = make_feedback(self._feedback_name, widths, n_classes,
                                              **self.feedback_options)
            except TypeError as error:  # a backend's unknown keyword
                raise ValueError(f"feedback_options = {self.feedback_options!r}: {error}") \
                    from error
        if tuple(self.feedback.widths) != widths or self.feedback.n_classes != n_classes:
            raise DFAUsageError(f"feedback: widths {self.feedback.widths} and "
                                f"{self.feedback.n_classes} classes: expected {widths} and "
                                f"{n_classes} (the points' widths and the output's last "
                                "dimension)")
        self.widths = widths
        return self.feedback

    # ------------------------------------------------------------------ backward
    def _project(self, grad) -> list:
        """The points' signals (torch, float32 or float64) of the output's gradient."""
        self._require_open("backward")
        n_classes = int(grad.shape[-1])
        error = grad.detach().reshape(-1, n_classes)
        if error.dtype not in (torch.float32, torch.float64):
            error = error.float()  # bf16 / fp16 under autocast: NumPy has no bf16
        signals = self.feedback.project(to_array(error))
        return [from_array(s, error) for s in signals]

    # ------------------------------------------------------------------ helpers
    def step(self, x, y, loss_fn: Callable, optimizer) -> float:
        """``zero_grad``, forward, ``loss_fn(output, y).backward()``, ``optimizer.step()``.

        Returns
        -------
        float
            The loss before the update.
        """
        self._require_open("step")
        if not callable(loss_fn):
            raise TypeError(f"loss_fn = {loss_fn!r}: expected a callable loss_fn(output, y)")
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(self(x), y)
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    def alignment(self, x, y, loss_fn: Callable) -> list[float]:
        """Angle per point between the DFA update of its block and backprop's (degrees).

        Block ``i``: the trainable parameters point ``i``'s output depends on and point
        ``i - 1``'s does not. One forward of ``x``; the parameters' ``.grad`` are left
        as they are. NaN for a block without parameters. ``dfa`` only.
        """
        self._require_open("alignment")
        if self.method != "dfa":
            raise ValueError(f"alignment: method = {self.method!r}: expected 'dfa'")
        self._keep_outputs = True
        try:
            output = self(x)
            step, self._kept_step = self._kept_step, None
        finally:
            self._keep_outputs = False
        loss = loss_fn(output, y)
        params = [p for p in self.model.parameters() if p.requires_grad]
        step.mode = "bp"
        bp = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
        step.mode = "dfa"
        dfa = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
        below: set[int] = set()
        angles = []
        for i in range(len(self.points)):
            h = step.outputs[i]
            used = torch.autograd.grad(h.sum(), params, retain_graph=True, allow_unused=True)
            block = [j for j, g in enumerate(used) if g is not None and j not in below]
            below |= set(block)

            def flat(grads):
                return torch.cat([(torch.zeros_like(params[j]) if grads[j] is None
                                   else grads[j]).reshape(-1) for j in block]
                                 ).detach().double().cpu().numpy()

            angles.append(angle_deg(flat(dfa), flat(bp)) if block else float("nan"))
        return angles

    # ------------------------------------------------------------------ state
    def get_extra_state(self) -> dict:
        """The DFA's settings (plain data), saved in ``state_dict``."""
        options = {k: (v if isinstance(v, (str, int, float, bool, type(None))) else repr(v))
                   for k, v in self.feedback_options.items()}
        return {"method": self.method, "feedback_mode": self.feedback_mode,
                "feedback": self._feedback_name or (self.feedback.name if self.feedback
                                                    else None),
                "feedback_options": options,
                "widths": list(self.widths) if self.widths is not None else None}

    def set_extra_state(self, state) -> None:
        """Check that a loaded state dict was saved by a DFA of the same settings."""
        mine = self.get_extra_state()
        for key in ("method", "feedback_mode", "feedback", "feedback_options"):
            if state.get(key) != mine[key] and not (key == "feedback" and mine[key] is None):
                raise ValueError(f"load_state_dict: {key} = {state.get(key)!r} in the state "
                                 f"dict: expected this DFA's {mine[key]!r}")

    def remove(self) -> None:
        """Remove the hooks (the model is left as it was: a plain module, backprop)."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def close(self) -> None:
        """Remove the hooks and close the feedback's device (idempotent); the DFA is done."""
        self.remove()
        if self.feedback is not None:
            self.feedback.close()
        self._closed = True
