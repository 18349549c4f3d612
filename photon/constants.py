"""Physical constants (exact SI values since the 2019 redefinition)."""

__all__ = ["PLANCK_J_S", "SPEED_OF_LIGHT_M_PER_S", "photons_per_joule"]

PLANCK_J_S = 6.62607015e-34
SPEED_OF_LIGHT_M_PER_S = 299_792_458.0


def photons_per_joule(wavelength_nm: float) -> float:
    """Number of photons in one joule of light at ``wavelength_nm``: lambda / (h c)."""
    return wavelength_nm * 1e-9 / (PLANCK_J_S * SPEED_OF_LIGHT_M_PER_S)
