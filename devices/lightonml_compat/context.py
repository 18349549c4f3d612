"""lightonml's ``context``: a transform's output array carries when and how it was taken.

:class:`ContextArray` is a NumPy array with a ``context`` attribute (a :class:`Context`);
``OPU.transform`` and ``OPU.linear_transform`` return one for NumPy input, as lightonml
does. The fields are the toolkit device's: its exposure and frame time (microseconds),
the outputs read (``output_roi``: offset and shape of the (1, n_components) row of
outputs), the start and end of the acquisition and the mean number of inputs on.
"""

from __future__ import annotations

import numpy as np

__all__ = ["Context", "ContextArray"]


class Context:
    """When and how an OPU transform was taken (lightonml's fields).

    Parameters
    ----------
    frametime, exposure
        Frame time and exposure of the device, microseconds (None when it has none).
    output_roi
        ``((row, col), (rows, cols))`` of the outputs read.
    start, end
        Datetimes of the acquisition.
    gain
        Output gain in dB (None when not applicable).
    input_roi
        ``((row, col), (rows, cols))`` of the inputs used (None: all).
    n_ones
        Mean number of inputs on per vector.
    """

    def __init__(self, frametime=None, exposure=None, output_roi=None, start=None, end=None,
                 gain=None, input_roi=None, n_ones=None, fmt_type=None, fmt_factor=None):
        self.info = None
        self.exposure_us = exposure
        self.frametime_us = frametime
        self.output_roi_upper, self.output_roi_shape = output_roi if output_roi else (None, None)
        self.input_roi_upper, self.input_roi_shape = input_roi if input_roi else (None, None)
        self.start, self.end = start, end
        self.gain = gain
        self.n_ones = n_ones
        self.fmt_type, self.fmt_factor = fmt_type, fmt_factor

    def add_info(self, info) -> None:
        """Attach free-form information (kept as ``info``)."""
        self.info = info

    def as_dict(self) -> dict:
        """The fields set, as lightonml's ``Context.as_dict``."""
        result = {"exposure_us": self.exposure_us, "frametime_us": self.frametime_us,
                  "output_roi": (self.output_roi_upper, self.output_roi_shape),
                  "start": self.start}
        optional = {"gain_dB": self.gain, "info": self.info, "end": self.end,
                    "n_ones": self.n_ones, "fmt_type": self.fmt_type,
                    "fmt_factor": self.fmt_factor}
        result.update({k: v for k, v in optional.items() if v is not None})
        if self.input_roi_shape is not None and self.input_roi_upper is not None:
            result["input_roi"] = (self.input_roi_upper, self.input_roi_shape)
        return result

    def as_flat_dict(self) -> dict:
        """:meth:`as_dict` with the regions of interest spread over scalar keys."""
        result = self.as_dict()
        for key in ("output_roi", "input_roi"):
            roi = result.pop(key, None)
            if roi is not None and roi[0] is not None:
                (r, c), (h, w) = roi
                result.update({f"{key}_position_0": r, f"{key}_position_1": c,
                               f"{key}_shape_0": h, f"{key}_shape_1": w})
        return result

    def __str__(self) -> str:
        return str(self.as_dict())

    def __eq__(self, other) -> bool:
        if not isinstance(other, Context):
            return NotImplemented
        return self.__dict__ == other.__dict__

    __hash__ = None


class ContextArray(np.ndarray):
    """A NumPy array with a ``context`` attribute (a :class:`Context`, or None)."""

    def __new__(cls, input_array, context: Context | None):
        obj = np.asarray(input_array).view(cls)
        obj.context = context
        return obj

    def __array_finalize__(self, obj):
        if obj is not None:
            self.context = getattr(obj, "context", None)

    def __reduce__(self):
        reconstruct, args, state = super().__reduce__()
        return reconstruct, args, (state, self.context)

    def __setstate__(self, state):
        array_state, self.context = state
        super().__setstate__(array_state)
