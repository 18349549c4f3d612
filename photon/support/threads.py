"""How many threads the BLAS under NumPy may use, for a block of work.

Small products (classes x outputs, a few hundred rows) run faster on one thread than on a
pool that a shared machine's other jobs also want, and a run whose numbers must not depend
on the pool it lands in (a sweep's point, computed by any worker) pins the summation
order by using one.
"""

from __future__ import annotations

import contextlib

__all__ = ["one_blas_thread"]


@contextlib.contextmanager
def one_blas_thread():
    """Run the block with one BLAS thread (threadpoolctl, which ships with scikit-learn);
    without threadpoolctl the block runs as it is."""
    try:
        from threadpoolctl import threadpool_limits  # noqa: PLC0415  (optional)
    except ImportError:  # pragma: no cover
        yield
        return
    with threadpool_limits(limits=1):
        yield
