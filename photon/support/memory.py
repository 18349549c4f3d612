"""Memory planning for batch calls: refuse what cannot fit, chunk what can.

A call on ``n`` rows (frames, vectors) keeps a result of ``n * out_bytes_per_row`` bytes
and, while computing, works on ``work_bytes_per_row`` more per row (fields, intensities,
noise draws). :func:`plan_chunk_rows` refuses, before anything is allocated, a call whose
result alone would not fit in half of the memory available on the data's backend (host
RAM for NumPy, the GPU's free memory for CuPy), naming the figures; otherwise it returns
how many rows to process at a time so that the working memory stays under
``WORK_BUDGET_BYTES``; a call smaller than ``SMALL_CALL_BYTES`` in all runs at once
without asking the system. :func:`map_rows` applies a function chunk by chunk into one
preallocated result.
"""

from __future__ import annotations

import os

import numpy as np

__all__ = ["InsufficientMemory", "WORK_BUDGET_BYTES", "SMALL_CALL_BYTES", "available_bytes",
           "plan_chunk_rows", "map_rows"]

#: Working memory a chunk may use (the result excluded).
WORK_BUDGET_BYTES = 512 * 2 ** 20
#: A call whose result and working memory together stay below this is planned without
#: reading the memory available (a file read on Linux, ~20 us, on every small call).
SMALL_CALL_BYTES = 32 * 2 ** 20


class InsufficientMemory(MemoryError, ValueError):
    """A call whose result cannot fit in the memory available (refused before allocating)."""


#: Control-group files (limit, usage) of a container's memory: cgroup v2, then v1.
_CGROUP_MEMORY_FILES = (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                        ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                         "/sys/fs/cgroup/memory/memory.usage_in_bytes"))


def _read_int(path: str) -> int | None:
    try:
        with open(path, encoding="ascii") as handle:
            text = handle.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None  # "max": no limit


def _cgroup_headroom_bytes() -> int | None:
    """Limit minus usage of the process's memory control group, if it sets a limit.

    A container's ``/proc/meminfo`` shows the host's memory; the kernel kills the process
    at the group's limit, which may be far lower.
    """
    for limit_path, usage_path in _CGROUP_MEMORY_FILES:
        limit, usage = _read_int(limit_path), _read_int(usage_path)
        if limit is not None and usage is not None and limit < 2 ** 60:
            return max(0, limit - usage)
    return None


def _host_available_bytes() -> int:
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not a POSIX system: do not refuse
        return 2 ** 62


def available_bytes(xp=np) -> int:
    """Bytes available for new arrays on the backend ``xp`` (NumPy: host, CuPy: GPU).

    On the host: the system's available memory, or the headroom under the process's
    control-group limit where that is smaller (a container's real ceiling).
    """
    if xp is not np:
        free, _ = xp.cuda.runtime.memGetInfo()
        return int(free)
    host = _host_available_bytes()
    headroom = _cgroup_headroom_bytes()
    return host if headroom is None else min(host, headroom)


def _gib(n_bytes: float) -> str:
    return f"{n_bytes / 2 ** 30:.3g} GiB"


def plan_chunk_rows(n_rows: int, out_bytes_per_row: float, work_bytes_per_row: float, *,
                    xp=np, what: str = "this call",
                    work_budget_bytes: int | None = None) -> int:
    """Rows per chunk for a call on ``n_rows`` rows, or :class:`InsufficientMemory`.

    Parameters
    ----------
    n_rows
        Rows of the call.
    out_bytes_per_row, work_bytes_per_row
        Bytes of the result per row, and of the working arrays per row.
    xp
        The data's array module.
    what
        The call, for the message (``"acquire of 4000000 frames"``).
    work_budget_bytes
        Working memory a chunk may use (None: :data:`WORK_BUDGET_BYTES`).

    Returns
    -------
    int
        Rows per chunk (``n_rows`` when the whole call fits the budget).
    """
    result = n_rows * out_bytes_per_row
    if work_budget_bytes is None:
        work_budget_bytes = WORK_BUDGET_BYTES
    if n_rows * (out_bytes_per_row + work_bytes_per_row) <= min(SMALL_CALL_BYTES,
                                                                 work_budget_bytes):
        return max(1, n_rows)  # fits any machine this runs on: no need to ask the system
    available = available_bytes(xp)
    if result > available / 2:
        raise InsufficientMemory(
            f"{what}: its result needs {_gib(result)} ({n_rows} rows of "
            f"{out_bytes_per_row:.0f} bytes): expected at most half of the {_gib(available)} "
            f"available on the {'GPU' if xp is not np else 'host'}; split the call")
    budget = min(work_budget_bytes, max(available / 4 - result, work_bytes_per_row))
    return max(1, min(n_rows, int(budget // max(work_bytes_per_row, 1))))


def map_rows(function, rows, chunk_rows: int):
    """``function`` applied to ``rows`` in chunks of ``chunk_rows``, stacked in one array.

    ``function(chunk)`` must return an array of ``len(chunk)`` rows on the backend of
    ``rows``; the chunks run in order (a device's clock and noise streams advance as for
    successive calls).
    """
    n = rows.shape[0]
    if chunk_rows >= n:
        return function(rows)
    first = function(rows[:chunk_rows])
    xp = np if isinstance(first, np.ndarray) else __import__("cupy")
    out = xp.empty((n,) + first.shape[1:], dtype=first.dtype)
    out[:chunk_rows] = first
    for start in range(chunk_rows, n, chunk_rows):
        out[start:start + chunk_rows] = function(rows[start:start + chunk_rows])
    return out
