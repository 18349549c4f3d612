"""PyTorch front: DFA for a user's own ``torch.nn.Module``, through any feedback device.

Install with ``pip install -e '.[torch]'``; import explicitly (``dfa_bridge`` does not
import this module, so the package works without torch)::

    from dfa_bridge.torch_front import DFA, FeedbackPoint

Model (docs/design.md section 5, section 6.x "Fronts")
------------------------------------------------------
The user marks where feedback enters: a :class:`FeedbackPoint` (an identity module) in the
model, or any submodule passed to :class:`DFA` (``points=``), whose output is the point.
Point ``i``'s output ``h_i`` (batch, ..., n_i) plays the role of the hidden layer of the
NumPy path: ``dfa`` gives it ``B_i e`` as its gradient, with ``e = dL/d(output)`` the
global error (batch, ..., C) projected ONCE per step by a
:class:`~dfa_bridge.training.feedback.Feedback` (ideal, a preset such as ``lab-bench``,
a calibrated device: :func:`~dfa_bridge.training.feedback.make_feedback`). The module's
own autograd carries ``B_i e`` into the parameters of block ``i`` (the parameters that
``h_i`` depends on and ``h_{i-1}`` does not): ``delta_i = (B_i e) * f'(a_i)`` for a
point after an activation. No gradient flows from one block to the one below. The
parameters above the last point (the head) get the true gradient of the loss.

* ``bp``: ordinary autograd (points are identities);
* ``dfa``: as above; ``feedback_mode="sliced"`` gives point ``i`` its own slice of one
  projection onto ``sum n_i`` (the MLP form); ``"shared"`` projects onto ``n`` (all points
  of equal width) and gives every point the same signal (TinyDFA, Launay et al.);
* ``shallow``: only the head trains.

A point may carry the signal through a fixed module first (``through=``): the
Transformer's final layer norm, whose input gradient brings ``B e`` into the residual
stream, as the NumPy :class:`~dfa_bridge.training.trainer.TransformerPath` does.

Arrays: CPU tensors go to the feedback as NumPy (``Tensor.numpy``, no copy), CUDA
tensors as CuPy through DLPack (``cupy.from_dlpack``/``torch.from_dlpack``, no host
copy). Alignment: with ``measure_alignment=True`` a ``dfa`` step also computes the
backprop gradient of the same forward pass and returns, per point, the angle between
block ``i``'s DFA update and its backprop gradient
(:func:`dfa_bridge.training.alignment.angle_deg`, degrees).
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

try:
    import torch
    from torch import nn
except ImportError as _error:  # pragma: no cover - exercised only without torch
    raise ImportError("dfa_bridge.torch_front needs PyTorch: pip install -e '.[torch]'") from _error

from .training.alignment import angle_deg
from .training.feedback import Feedback, make_feedback

__all__ = ["FeedbackPoint", "DFA", "METHODS", "FEEDBACK_MODES", "to_array", "from_array"]

METHODS = ("bp", "dfa", "shallow")
FEEDBACK_MODES = ("sliced", "shared")


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


def _flat(grads) -> np.ndarray:
    return torch.cat([g.reshape(-1) for g in grads]).detach().double().cpu().numpy()


class DFA:
    """Train a ``torch.nn.Module`` with bp, DFA or the shallow baseline.

    Parameters
    ----------
    model
        The user's module; its output (batch, ..., C) is what the loss sees.
    method
        ``"bp"``, ``"dfa"`` or ``"shallow"``.
    feedback
        A :class:`~dfa_bridge.training.feedback.Feedback`, or a name for
        :func:`~dfa_bridge.training.feedback.make_feedback` (``"ideal"``, ``"lab-bench"``,
        ``"device:ideal"``, ...), built at the first step from the points' widths and
        the output width. Unused by ``bp`` and ``shallow``.
    points
        Submodules whose outputs are the feedback points, bottom to top; None: every
        :class:`FeedbackPoint` in ``model``, in registration order.
    feedback_mode
        ``"sliced"`` or ``"shared"`` (module docstring).
    feedback_options
        Keyword arguments of ``make_feedback`` (``seed``, ``encoder``, ``n_bits``, device
        options).

    Attributes
    ----------
    feedback : Feedback or None
        The feedback source (after the first ``dfa`` step when given by name).
    blocks : list of list of torch.nn.Parameter
        Parameters of block ``i`` (below point ``i``, above point ``i - 1``); found at
        the first step.
    head : list of torch.nn.Parameter
        Parameters above the last point.
    """

    def __init__(self, model: nn.Module, method: str = "dfa", feedback="ideal", *,
                 points: Sequence[nn.Module] | None = None, feedback_mode: str = "sliced",
                 feedback_options: dict | None = None):
        if not isinstance(model, nn.Module):
            raise TypeError(f"model = {model!r}: expected a torch.nn.Module")
        if method not in METHODS:
            raise ValueError(f"method = {method!r}: expected one of {', '.join(METHODS)}")
        if feedback_mode not in FEEDBACK_MODES:
            raise ValueError(f"feedback_mode = {feedback_mode!r}: expected one of "
                             f"{', '.join(FEEDBACK_MODES)}")
        if method == "dfa" and not isinstance(feedback, (str, Feedback)):
            raise TypeError(f"feedback = {feedback!r}: expected a Feedback or a feedback name")
        if points is None:
            points = [m for m in model.modules() if isinstance(m, FeedbackPoint)]
        points = list(points)
        if method != "bp" and not points:
            raise ValueError(f"method = {method!r}: expected feedback points (FeedbackPoint "
                             "modules in the model, or points=[submodules])")
        self.model, self.method, self.feedback_mode = model, method, feedback_mode
        self.feedback = feedback if isinstance(feedback, Feedback) else None
        self._feedback_name = feedback if isinstance(feedback, str) else None
        self.feedback_options = dict(feedback_options or {})
        self.points = points
        self._outputs: list = [None] * len(points)
        self._handles = [m.register_forward_hook(self._hook(i)) for i, m in enumerate(points)]
        self.blocks: list[list] | None = None
        self.head: list | None = None

    def _hook(self, index: int) -> Callable:
        def record(module, inputs, output):
            self._outputs[index] = output
        return record

    def remove(self) -> None:
        """Remove the forward hooks (the model is left as it was)."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    # ------------------------------------------------------------------ structure
    def _find_blocks(self) -> None:
        """Block ``i`` = parameters point ``i`` depends on and point ``i - 1`` does not."""
        params = [p for p in self.model.parameters() if p.requires_grad]
        below: set[int] = set()
        self.blocks = []
        for output in self._outputs:
            if output is None:
                raise RuntimeError("a feedback point was not reached by the forward pass: "
                                   "expected every point on the path to the output")
            grads = torch.autograd.grad(output.sum(), params, retain_graph=True,
                                        allow_unused=True)
            used = {id(p) for p, g in zip(params, grads) if g is not None}
            self.blocks.append([p for p in params if id(p) in used - below])
            below |= used
        self.head = [p for p in params if id(p) not in below]

    def _widths(self) -> tuple[int, ...]:
        return tuple(int(o.shape[-1]) for o in self._outputs)

    def _ensure_feedback(self, n_classes: int) -> Feedback:
        widths = self._widths()
        if self.feedback_mode == "shared":
            if len(set(widths)) != 1:
                raise ValueError(f"feedback_mode = 'shared': points of widths {widths}: expected "
                                 "equal widths")
            widths = widths[:1]
        if self.feedback is None:
            self.feedback = make_feedback(self._feedback_name, widths, n_classes,
                                          **self.feedback_options)
        if tuple(self.feedback.widths) != widths or self.feedback.n_classes != n_classes:
            raise ValueError(f"feedback: widths {self.feedback.widths} and {self.feedback.n_classes} "
                             f"classes: expected {widths} and {n_classes}")
        return self.feedback

    # ------------------------------------------------------------------ backward
    def backward(self, loss, output, measure_alignment: bool = False):
        """Set the parameters' ``.grad`` for ``loss`` of this forward's ``output``.

        Parameters
        ----------
        loss
            Scalar loss of ``output`` (e.g. ``F.cross_entropy(output, y)``, a mean).
        output
            The model's output (batch, ..., C) of the same forward pass.
        measure_alignment
            ``dfa`` only: also return the angle per point between the DFA update and the
            backprop gradient of its block (degrees).

        Returns
        -------
        list of float or None
        """
        if self.method == "bp":
            loss.backward()
            return None
        if self.blocks is None:
            self._find_blocks()
        error, *head_grads = torch.autograd.grad(loss, [output] + self.head, retain_graph=True)
        bp = None
        if measure_alignment and self.method == "dfa":
            block_params = [p for block in self.blocks for p in block]
            bp = torch.autograd.grad(loss, block_params, retain_graph=True, allow_unused=True)
        updates = []
        if self.method == "dfa":
            n_classes = int(error.shape[-1])
            feedback = self._ensure_feedback(n_classes)
            flat_error = error.reshape(-1, n_classes)
            signals = feedback.project(to_array(flat_error))
            for index, (point, block) in enumerate(zip(self.points, self.blocks)):
                h = self._outputs[index]
                signal = signals[index if self.feedback_mode == "sliced" else 0]
                signal = from_array(signal, h).reshape(h.shape)
                through = getattr(point, "through", [None])[0]
                if through is not None:
                    leaf = h.detach().requires_grad_()
                    (signal,) = torch.autograd.grad(through(leaf), leaf, signal)
                grads = torch.autograd.grad(h, block, signal, retain_graph=True,
                                            allow_unused=True) if block else []
                updates.append([torch.zeros_like(p) if g is None else g
                                for p, g in zip(block, grads)])
        self._accumulate(self.head, head_grads)
        for block, grads in zip(self.blocks, updates):
            self._accumulate(block, grads)
        if bp is None:
            return None
        angles, start = [], 0
        for block, grads in zip(self.blocks, updates):
            ref = [torch.zeros_like(p) if g is None else g
                   for p, g in zip(block, bp[start:start + len(block)])]
            start += len(block)
            angles.append(angle_deg(_flat(grads), _flat(ref)) if block else float("nan"))
        return angles

    @staticmethod
    def _accumulate(params, grads) -> None:
        for p, g in zip(params, grads):
            g = g.detach()
            p.grad = g.clone() if p.grad is None else p.grad + g

    def step(self, x, y, loss_fn: Callable, optimizer, measure_alignment: bool = False):
        """Forward, loss, this method's gradients and one optimizer step.

        Returns
        -------
        (float, list of float or None)
            The loss before the update and the alignment angles (see :meth:`backward`).
        """
        optimizer.zero_grad(set_to_none=True)
        output = self.model(x)
        loss = loss_fn(output, y)
        angles = self.backward(loss, output, measure_alignment)
        optimizer.step()
        return float(loss.detach()), angles

    def trained_parameters(self) -> list:
        """Parameters the method updates (all, or the head for ``shallow``; after a step)."""
        if self.method == "shallow" and self.head is not None:
            return list(self.head)
        return [p for p in self.model.parameters() if p.requires_grad]

    def close(self) -> None:
        """Remove the hooks and close the feedback's device (idempotent)."""
        self.remove()
        if self.feedback is not None:
            self.feedback.close()
