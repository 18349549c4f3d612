"""How many threads the native pools under NumPy (the BLAS, OpenMP) may use, for a block.

Small products (classes x outputs, a few hundred rows) run faster on one thread than on a
pool that a shared machine's other jobs also want, and a run whose numbers must not depend
on the pool it lands in (a sweep's point, computed by any worker) pins the summation
order by using one. Timings pin the BLAS alone to a stated number of threads.
"""

from __future__ import annotations

import contextlib

__all__ = ["thread_limit", "one_blas_thread"]


@contextlib.contextmanager
def thread_limit(threads: int, user_api: str | None = None):
    """Run the block with at most ``threads`` threads in the native pools (threadpoolctl,
    which ships with scikit-learn): those of ``user_api`` (``"blas"``, ``"openmp"``), or
    every pool for None. Without threadpoolctl the block runs as it is."""
    try:
        from threadpoolctl import threadpool_limits  # noqa: PLC0415  (optional)
    except ImportError:  # pragma: no cover
        yield
        return
    with threadpool_limits(limits=threads, user_api=user_api):
        yield


def one_blas_thread():
    """A context running the block with one thread in every native pool (the BLAS's too)."""
    return thread_limit(1)
