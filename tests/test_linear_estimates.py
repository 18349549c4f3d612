"""Randomized linear algebra through linear mode lands within its sampling error (issue 28.2).

A randomized trace estimate ``tr(A) ~ tr(M A M^T) / k`` needs ``E[M^T M] = k I``: a matrix
whose rows sum to zero (the complement identity's own ``M_c``) loses ``1^T A 1 / d``.
Through an ideal device, the operator's default complement (mean column drawn) and the
anchor identity both estimate the trace of a graph's adjacency with self-loops and its
triangle count ``tr(A^3) / 6`` within ``Z`` standard errors; ``complement_mean="zero"``
misses the trace by its bias (the test can fail).

Standard error: for ``M`` with i.i.d. N(0, 1) entries and symmetric ``B``,
``var(m^T B m) = 2 tr(B^2)``, so ``tr(M B M^T) / k`` has standard error
``sqrt(2 tr(B^2) / k)``; the output scale fitted on ``probe_frames / 2`` pair differences
over ``k`` rows adds a relative error ``2 sqrt(2 / (probe_frames / 2 * k))`` to ``E[M^T M]``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from devices import OPU, open_device

Z = 5.0
N_OUT, N_IN, NODES, PROBES = 4096, 64, 48, 32


def _graph(seed=3, p=0.3):
    rng = np.random.default_rng(seed)
    upper = np.triu(rng.random((NODES, NODES)) < p, 1)
    return (upper | upper.T).astype(np.uint8)


def _estimates(linear_method, **options):
    """(trace estimate of A + I, its tolerance, triangle estimate, its tolerance, truths)."""
    device = open_device("ideal", n_in=N_IN, n_out=N_OUT, seed=11)
    opu = OPU(device, linear_method=linear_method, probe_frames=PROBES,
              n_anchor=16 if linear_method == "anchor" else None, **options)
    opu.fit(n_features=NODES)
    adjacency = _graph()
    looped = adjacency | np.eye(NODES, dtype=np.uint8)
    m = opu.effective_matrix().astype(np.float64)                 # (k, d)
    # The device projects the (binary, symmetric) matrices: rows x -> M x.
    q_looped = opu.linear_transform(looped).astype(np.float64).T   # M (A + I)
    q = opu.linear_transform(adjacency).astype(np.float64).T       # M A
    a, b = adjacency.astype(np.float64), looped.astype(np.float64)
    scale_rel = 2 * math.sqrt(2 / (PROBES // 2 * N_OUT))
    trace = float((q_looped * m).sum()) / N_OUT
    trace_true = float(np.trace(b))
    trace_tol = Z * math.hypot(math.sqrt(2 * np.trace(b @ b) / N_OUT), scale_rel * trace_true)
    a3 = a @ a @ a
    triangles = float(((q @ a) * q).sum()) / N_OUT / 6
    triangles_true = float(np.trace(a3)) / 6
    triangles_tol = Z * math.hypot(math.sqrt(2 * np.trace(a3 @ a3) / N_OUT) / 6,
                                   scale_rel * triangles_true)
    return (trace, trace_tol, trace_true), (triangles, triangles_tol, triangles_true), opu


@pytest.mark.parametrize("linear_method", ["complement", "anchor"])
def test_trace_and_triangle_estimates_are_unbiased(linear_method):
    (trace, trace_tol, trace_true), (tri, tri_tol, tri_true), opu = _estimates(linear_method)
    assert opu.linear_identity_ == linear_method
    assert abs(trace - trace_true) < trace_tol, (trace, trace_true, trace_tol)
    assert abs(tri - tri_true) < tri_tol, (tri, tri_true, tri_tol)


def test_rows_summing_to_zero_bias_the_trace_by_the_mean_term():
    """The fault the default removes: ``M_c`` estimates ``tr(P A P)``, not ``tr(A)``."""
    (trace, trace_tol, trace_true), _, opu = _estimates("complement", complement_mean="zero")
    assert opu.linear_identity_ == "complement, rows summing to zero"
    looped = _graph() | np.eye(NODES, dtype=np.uint8)
    bias = -float(looped.sum()) / NODES                   # -1^T A 1 / d
    assert abs(trace - trace_true) > trace_tol           # the test would catch it
    assert abs(trace - (trace_true + bias)) < trace_tol  # and it is the mean term
