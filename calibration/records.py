"""Named records that the steps of a TM estimate hand to each other.

* :class:`NoiseModel`: the camera's count variance against the signal level (DN^2);
* :class:`RowModel`: each output row's count model ``y(x) = |e0 + K x|^2 + dark``;
* :class:`CountBlock`: frames shown and the counts they gave;
* :class:`RowStatistics`: per-row weighted normal equations of the refit
  (:func:`calibration.refine.row_statistics`), summed block by block.

Arrays live on the backend of the computation (NumPy or CuPy).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

__all__ = ["NoiseModel", "RowModel", "CountBlock", "RowStatistics"]


class NoiseModel(NamedTuple):
    """Temporal variance of a count, ``var(y) = a + b s + c s^2`` (DN^2), ``s = y - dark``.

    A tuple ``(a, b, c)``, so that it unpacks as one.

    Attributes
    ----------
    read_dn2 : float
        ``a``: the variance of a dark count, DN^2 (read noise, with the rounding's 1/12
        on a digital camera).
    shot_dn : float
        ``b``: the shot noise's variance per DN of signal, DN (the gain ``K``, DN per
        electron).
    common_mode : float
        ``c``: the common-mode (laser intensity noise, flicker) variance per squared DN
        of signal, dimensionless.
    """

    read_dn2: float
    shot_dn: float
    common_mode: float

    def variance(self, level):
        """``a + b s + c s^2`` at the signal level ``s`` (DN, any array), DN^2."""
        return self.read_dn2 + self.shot_dn * level + self.common_mode * level ** 2


@dataclass(frozen=True)
class RowModel:
    """Each output row's count model ``y_j(x) = |e0_j + K_j x|^2 + dark_j``.

    Attributes
    ----------
    tm : (n_out, n_in) complex
        ``K`` in square-root-of-count units (sqrt(DN)), each row up to a phase and a
        conjugation.
    reference_field : (n_out,) complex
        ``e0``, the fixed field, sqrt(DN), in the same row frames.
    dark : (n_out,) float
        The count of no light at all, DN.
    """

    tm: object
    reference_field: object
    dark: object


class CountBlock(NamedTuple):
    """Frames shown to a device and the counts they gave.

    Attributes
    ----------
    frames : (k, n) float64
        Binary frames as 0.0 / 1.0 (``n`` inputs: all of them, or one half's).
    counts : (k, n_out) float64
        Their counts, DN.
    """

    frames: object
    counts: object


@dataclass(frozen=True)
class RowStatistics:
    """Per-row weighted normal equations of the refit, summed over blocks of frames.

    See :func:`calibration.refine.row_statistics`; ``a + b`` sums two blocks' statistics
    field by field (the refit of :func:`calibration.refine.refit_rows` solves the total).

    Attributes
    ----------
    normal : (n_out, 4, 4) float
        ``D^T W D`` of the change ``(alpha, Re b, Im b, c)`` (DN^2 per unit of each).
    moment : (n_out, 4) float
        ``D^T W r`` with ``r`` the residual counts.
    residual : (n_out,) float
        ``sum w r^2``: the weighted residual sum of squares (noise units, dimensionless).
    used : (n_out,) float
        Counts that entered (the censored ones left out).
    """

    normal: object
    moment: object
    residual: object
    used: object

    @classmethod
    def zero(cls) -> "RowStatistics":
        """The empty sum (every field ``0.0``)."""
        return cls(normal=0.0, moment=0.0, residual=0.0, used=0.0)

    def __add__(self, other: "RowStatistics") -> "RowStatistics":
        return RowStatistics(normal=self.normal + other.normal,
                             moment=self.moment + other.moment,
                             residual=self.residual + other.residual,
                             used=self.used + other.used)
