"""devices: one device-agnostic random-projection operator over any OPU.

* :class:`OPUDevice`: the protocol calibration and DFA code see (binary frames in,
  counts out, timing, power, open/close);
* backends: :class:`IdealDevice` (exact ``|R x|^2``), :class:`VirtualDevice` (the
  :mod:`photon` chain), :class:`CalibratedDevice` (an estimated TM),
  :class:`HardwareDevice` (the slot for a real driver), found by name through
  :func:`open_device` and :func:`register_backend`;
* :class:`OPU`: settings at construction, then ``fit`` (opens the device, settles its
  exposure, measures references) / ``transform`` (intensities) / ``linear_transform`` (a
  linear random projection recovered from intensities) / ``cost`` (frames, seconds,
  joules); :class:`NotFittedError` before ``fit``;
* :mod:`devices.encoders`: real-valued data to binary planes and back.
* :class:`SRHT` (:mod:`devices.structured`): the structured random projection a GPU
  user would pick instead (subsampled randomized Hartley/Hadamard transform);
"""

from .calibrated import CalibratedDevice
from .cost import JobCost, job_cost
from .encoders import BitPlaneEncoder, Encoder, TernaryEncoder, ThermometerEncoder, ThresholdEncoder
from .hardware import HardwareDevice
from .ideal import IdealDevice
from .operator import OPU, NotFittedError
from .protocol import DeviceClosedError, OPUDevice
from .registry import backend_names, open_device, register_backend
from .structured import SRHT
from .virtual import VirtualDevice

__all__ = [
    "CalibratedDevice", "JobCost", "job_cost", "BitPlaneEncoder", "Encoder", "TernaryEncoder",
    "ThermometerEncoder", "ThresholdEncoder", "HardwareDevice", "IdealDevice", "OPU",
    "NotFittedError", "DeviceClosedError", "OPUDevice", "backend_names", "open_device",
    "register_backend", "VirtualDevice",
]
__all__ += ["SRHT"]
from .estimators import OPULinearProjection, OPURandomFeatures  # scikit-learn front

__all__ += ["OPURandomFeatures", "OPULinearProjection"]
