"""calibration: estimate a device's transmission matrix and camera from its frames alone.

* :func:`estimate_transmission_matrix`: anchors phase the intensities, one shared
  least-squares solve and a five-parameter metric per row give the TM (up to a phase
  and a conjugation per row), its fixed field and dark level, the halves aligned from
  the anchors and checked on mixed frames, saturated counts censored, a quality figure
  per row and the rows that could not be calibrated (docs/design.md section 4);
* :func:`estimate_camera`: gain, read noise, black offset (from dark frames, or
  extrapolated to zero exposure without a shutter) and the saturation level where the
  response stops growing, by the EMVA 1288 photon-transfer method;
* :func:`calibrate`: both, at an exposure where few rows saturate often (when settable,
  :func:`settle_exposure`), scored on fresh frames, giving a :class:`Calibration` whose
  :meth:`~Calibration.device` is a ``calibrated`` device for the OPU operator;
* correlated media: the correlation between inputs and between outputs is estimated from
  the calibration's own counts and used as a prior (:mod:`calibration.priors`);
* :class:`DriftMonitor`: says when a device has moved away from its calibration;
* metrics invariant to the per-row phase: :func:`row_correlation`,
  :func:`intensity_correlation`, :func:`projection_error`.
"""

from .camera import CameraEstimate, estimate_camera, fit_rounded_gaussian
from .drift import DriftCheck, DriftMonitor
from .exposure import ExposureSetting, settle_exposure
from .metrics import (fresh_frames, intensity_correlation, projection_error, row_correlation,
                      row_projection_errors)
from .saturation import detect_saturation
from .session import Calibration, calibrate
from .transmission import TMEstimate, estimate_transmission_matrix, min_frames, mixed_frames

__all__ = [
    "CameraEstimate", "estimate_camera", "fit_rounded_gaussian", "DriftCheck", "DriftMonitor",
    "ExposureSetting", "settle_exposure",
    "fresh_frames", "intensity_correlation", "projection_error", "row_correlation",
    "row_projection_errors",
    "Calibration", "calibrate", "TMEstimate", "detect_saturation", "estimate_transmission_matrix",
    "min_frames", "mixed_frames",
]
