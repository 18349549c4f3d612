"""devices: the device-agnostic OPU operator (built on photon/; see DESIGN.md section 6)."""

__all__: list[str] = []
