"""Standard errors for the statistical tests, derived from the sample itself.

A test compares an estimate with its theoretical value within ``Z`` standard errors;
``Z = 5`` makes a false alarm a one-in-a-million event while a real defect of a few
standard errors' size still fails.
"""

import numpy as np

from photon.speckle import contrast_and_se  # noqa: F401  (re-exported for the tests)

Z = 5.0


def mean_and_se(samples) -> tuple[float, float]:
    """Sample mean and its standard error (i.i.d. samples)."""
    samples = np.asarray(samples, np.float64).ravel()
    return samples.mean(), samples.std(ddof=1) / np.sqrt(samples.size)


def binomial_se(p: float, n: int) -> float:
    """Standard error of a fraction estimated from ``n`` Bernoulli(p) trials."""
    return float(np.sqrt(p * (1 - p) / n))
