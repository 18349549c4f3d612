"""Optimizers: SGD with momentum and Adam, updating parameters in place.

Each optimizer owns a list of :class:`~dfa_bridge.nn.layers.Parameter` and, at
:meth:`Optimizer.step`, reads their ``grad`` (set by a backward, of any training method)
and updates their ``value``. Optional L2 weight decay adds ``weight_decay * w`` to the
gradient. State arrays are created at the first step, on the parameters' backend.
"""

from __future__ import annotations

import math

from photon import array_module
from photon.support.arguments import check_choice, check_number

from .layers import Parameter

__all__ = ["Optimizer", "SGD", "Adam", "OPTIMIZERS", "make_optimizer"]


class Optimizer:
    """Base class: a learning rate, optional L2 weight decay, and the parameters.

    Parameters
    ----------
    parameters
        The parameters to update (e.g. only the last layer's, for shallow training).
    lr
        Learning rate, > 0.
    weight_decay
        L2 coefficient, >= 0.
    """

    def __init__(self, parameters, lr: float, weight_decay: float = 0.0):
        self.parameters: list[Parameter] = list(parameters)
        if not self.parameters:
            raise ValueError("parameters: an empty list: expected at least one parameter to train")
        self.lr = check_number("lr", lr, low=0.0, low_open=True)
        self.weight_decay = check_number("weight_decay", weight_decay, low=0.0)
        self.steps = 0

    def _gradient(self, parameter: Parameter):
        """The parameter's gradient plus the weight decay term."""
        if self.weight_decay:
            return parameter.grad + parameter.value * parameter.value.dtype.type(self.weight_decay)
        return parameter.grad

    def step(self) -> None:
        """Update every parameter from its current gradient."""
        self.steps += 1
        for index, parameter in enumerate(self.parameters):
            self._update(index, parameter, self._gradient(parameter))

    def _update(self, index: int, parameter: Parameter, gradient) -> None:
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent with heavy-ball momentum.

    ``v <- momentum v + g``,  ``w <- w - lr v`` (``v`` starts at zero).

    Parameters
    ----------
    parameters, lr, weight_decay
        As for :class:`Optimizer`.
    momentum
        ``0 <= momentum < 1`` (0: plain SGD).
    """

    def __init__(self, parameters, lr: float = 0.01, momentum: float = 0.9,
                 weight_decay: float = 0.0):
        super().__init__(parameters, lr, weight_decay)
        self.momentum = check_number("momentum", momentum, low=0.0, high=1.0, high_open=True)
        self._velocity: list = [None] * len(self.parameters)

    def _update(self, index, parameter, gradient):
        dtype = parameter.value.dtype.type
        velocity = self._velocity[index]
        if velocity is None:
            velocity = self._velocity[index] = array_module(gradient).zeros_like(gradient)
        velocity *= dtype(self.momentum)
        velocity += gradient
        parameter.value -= dtype(self.lr) * velocity


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with bias correction.

    ``m <- b1 m + (1 - b1) g``, ``v <- b2 v + (1 - b2) g^2``,
    ``w <- w - lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)``.

    Parameters
    ----------
    parameters, lr, weight_decay
        As for :class:`Optimizer` (the decay is L2, added to ``g``).
    betas
        ``(b1, b2)``, each in ``[0, 1)``.
    eps
        Denominator offset, > 0.
    """

    def __init__(self, parameters, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0):
        super().__init__(parameters, lr, weight_decay)
        self.beta1 = check_number("betas[0]", betas[0], low=0.0, high=1.0, high_open=True)
        self.beta2 = check_number("betas[1]", betas[1], low=0.0, high=1.0, high_open=True)
        self.eps = check_number("eps", eps, low=0.0, low_open=True)
        self._moments: list = [None] * len(self.parameters)

    def _update(self, index, parameter, gradient):
        xp = array_module(gradient)
        dtype = parameter.value.dtype.type
        if self._moments[index] is None:  # first moment, second moment, scratch
            self._moments[index] = tuple(xp.zeros_like(gradient) for _ in range(3))
        first, second, scratch = self._moments[index]
        # In place, through one scratch array: no temporary is allocated per step.
        first *= dtype(self.beta1)
        xp.multiply(gradient, dtype(1 - self.beta1), out=scratch)
        first += scratch
        second *= dtype(self.beta2)
        xp.multiply(gradient, gradient, out=scratch)
        scratch *= dtype(1 - self.beta2)
        second += scratch
        step_size = self.lr * math.sqrt(1 - self.beta2 ** self.steps) / (1 - self.beta1 ** self.steps)
        eps_hat = self.eps * math.sqrt(1 - self.beta2 ** self.steps)
        xp.sqrt(second, out=scratch)
        scratch += dtype(eps_hat)
        xp.divide(first, scratch, out=scratch)
        scratch *= dtype(step_size)
        parameter.value -= scratch


OPTIMIZERS = {"adam": Adam, "sgd": SGD}


def make_optimizer(name: str, parameters, **options) -> Optimizer:
    """Build the optimizer ``name`` (``"adam"`` or ``"sgd"``) over ``parameters``.

    Parameters
    ----------
    name
        Optimizer name.
    parameters
        Parameters to train.
    **options
        Passed to the optimizer (``lr``, ``weight_decay``, ``momentum`` for SGD, ...).
    """
    check_choice("optimizer", name, OPTIMIZERS)
    return OPTIMIZERS[name](parameters, **options)
