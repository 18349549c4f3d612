"""What the lightonml compatibility modules share: the not-ready error and torch in, torch out.

lightonml's encoders and ``OPU`` take NumPy arrays or (CPU) torch tensors and answer in
the same kind; :func:`preserve_type` does that for a ``transform`` method.
"""

from __future__ import annotations

import functools

import numpy as np

from photon.support.arguments import check_int

__all__ = ["NotReadyError", "is_tensor", "to_numpy", "like_input", "preserve_type",
           "set_verbose_level", "get_verbose_level"]

_verbose_level = [0]  # lightonml's module-wide verbosity (0 to 3)


class NotReadyError(RuntimeError, AssertionError):
    """A call that needs a fit (``fit1d``/``fit2d``, an encoder's ``fit``) or an open device.

    lightonml signals these with ``assert`` (an AssertionError): this error is both an
    AssertionError, so that a lightonml script's ``except AssertionError`` still catches
    it, and a RuntimeError.
    """


def is_tensor(X) -> bool:
    """True for a torch tensor (checked without importing torch)."""
    return type(X).__name__ == "Tensor" and hasattr(X, "detach")


def to_numpy(X):
    """``(array, was_tensor)``: a torch tensor becomes a NumPy array (CPU); anything else
    goes through :func:`numpy.asarray`."""
    if is_tensor(X):
        return X.detach().cpu().numpy(), True
    return np.asarray(X), False


def like_input(Y, was_tensor: bool):
    """``Y`` as a torch tensor when the input was one, else as it is."""
    if was_tensor:
        import torch  # noqa: PLC0415  (only when the input was a tensor)

        return torch.from_numpy(np.ascontiguousarray(Y))
    return Y


def preserve_type(method):
    """Decorate ``method(self, X, ...)``: NumPy or torch ``X`` in, the same kind out."""
    @functools.wraps(method)
    def wrapper(self, X, *args, **kwargs):
        was_tensor = is_tensor(X)
        return like_input(method(self, X, *args, **kwargs), was_tensor)
    return wrapper


def set_verbose_level(verbose_level: int) -> None:
    """lightonml's verbosity: 0 nothing, 1 progress bars, 2 and 3 as 1 here."""
    _verbose_level[0] = check_int("verbose_level", verbose_level, 0, 3)


def get_verbose_level() -> int:
    """The verbosity set by :func:`set_verbose_level` (0 by default)."""
    return _verbose_level[0]
