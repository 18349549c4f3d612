"""A way over from lightonml: its modules, names and meanings, on this toolkit's devices.

A lightonml script runs with its import lines changed: ``lightonml`` becomes
``devices.lightonml_compat`` in each of them (docs/lightonml.md)::

    import lightonml                                         # before
    from lightonml import OPU
    from lightonml.encoding.base import SeparatedBitPlanEncoder, SeparatedBitPlanDecoder
    from lightonml.projections.sklearn import OPUMap
    from lightonml.internal.simulated_device import SimulatedOpuDevice

    import devices.lightonml_compat as lightonml             # after
    from devices.lightonml_compat import OPU
    from devices.lightonml_compat.encoding.base import SeparatedBitPlanEncoder, SeparatedBitPlanDecoder
    from devices.lightonml_compat.projections.sklearn import OPUMap
    from devices.lightonml_compat.internal.simulated_device import SimulatedOpuDevice

Modules, as in lightonml: :mod:`.opu` (``OPU``), :mod:`.encoding.base` (encoders and
decoders), :mod:`.projections.sklearn` and :mod:`.projections.torch` (``OPUMap``),
:mod:`.internal.simulated_device` (``SimulatedOpuDevice``), :mod:`.types`
(``OutputRescaling``), :mod:`.context` (``Context``, ``ContextArray``). The package
itself exports ``OPU``, ``__version__`` (the lightonml release whose API this follows),
``set_verbose_level`` and ``get_verbose_level``, and for convenience every encoder,
``OutputRescaling`` and ``SimulatedOpuDevice``. What lightonml does that this cannot,
and is refused, is listed on the migration page.
"""

import importlib.metadata

from ._common import NotReadyError, get_verbose_level, set_verbose_level
from .context import Context, ContextArray
from .encoding.base import (BinaryThresholdEncoder, ConcatenatedBitPlanEncoder,
                            ConcatenatedFloat32Encoder, ConcatenatingBitPlanDecoder,
                            Float32Encoder, MixingBitPlanDecoder, MultiThresholdEncoder,
                            NoDecoding, NoEncoding, SeparatedBitPlanDecoder,
                            SeparatedBitPlanEncoder, SequentialBaseTwoEncoder)
from .internal.simulated_device import SimulatedOpuDevice
from .opu import OPU, OUTPUT_SCALES
from .types import OutputRescaling

#: The lightonml release whose API (names, arguments, meanings) this package follows.
__version__ = "1.4.3"
#: This toolkit's version (the installed photon-dfa distribution's).
try:
    toolkit_version = importlib.metadata.version("photon-dfa")
except importlib.metadata.PackageNotFoundError:  # pragma: no cover - not installed
    toolkit_version = "unknown"

__all__ = ["OPU", "OUTPUT_SCALES", "SimulatedOpuDevice", "OutputRescaling", "Context",
           "ContextArray", "NotReadyError", "set_verbose_level", "get_verbose_level",
           "NoEncoding", "NoDecoding", "SeparatedBitPlanEncoder", "SeparatedBitPlanDecoder",
           "ConcatenatedBitPlanEncoder", "ConcatenatingBitPlanDecoder", "Float32Encoder",
           "ConcatenatedFloat32Encoder", "MixingBitPlanDecoder", "BinaryThresholdEncoder",
           "MultiThresholdEncoder", "SequentialBaseTwoEncoder", "__version__",
           "toolkit_version"]
