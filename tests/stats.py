"""Standard errors for the statistical tests, derived from the sample itself.

A test compares an estimate with its theoretical value within ``Z`` standard errors;
``Z = 5`` makes a false alarm a one-in-a-million event while a real defect of a few
standard errors' size still fails.
"""

import numpy as np

Z = 5.0


def mean_and_se(samples) -> tuple[float, float]:
    """Sample mean and its standard error (i.i.d. samples)."""
    samples = np.asarray(samples, np.float64).ravel()
    return samples.mean(), samples.std(ddof=1) / np.sqrt(samples.size)


def contrast_and_se(samples) -> tuple[float, float]:
    """Speckle contrast std/mean and its delta-method standard error.

    With central moments ``sigma^2, mu3, mu4`` and ``C = sqrt(v) / m``:
    ``N Var(C) = (C/m)^2 sigma^2 + (C/2v)^2 (mu4 - sigma^4) - (C^2/(m v)) mu3``.
    """
    x = np.asarray(samples, np.float64).ravel()
    n, m = x.size, x.mean()
    d = x - m
    v, mu3, mu4 = (d ** 2).mean(), (d ** 3).mean(), (d ** 4).mean()
    c = np.sqrt(v) / m
    var_c = ((c / m) ** 2 * v + (c / (2 * v)) ** 2 * (mu4 - v * v) - c * c / (m * v) * mu3) / n
    return c, float(np.sqrt(var_c))


def binomial_se(p: float, n: int) -> float:
    """Standard error of a fraction estimated from ``n`` Bernoulli(p) trials."""
    return float(np.sqrt(p * (1 - p) / n))
