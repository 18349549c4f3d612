"""calibration: black-box transmission-matrix and camera estimation (DESIGN.md section 4)."""

__all__: list[str] = []
