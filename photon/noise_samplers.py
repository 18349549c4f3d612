"""Fast samplers of a camera's temporal noise on the CPU: normal deviates and Poisson counts.

NumPy's own samplers are exact but cost about 7 ns per normal deviate (ziggurat) and
40-80 ns per Poisson count (PTRS, or multiplication below a mean of 10), most of the
noisy chain's time at the sizes of a DFA step. The samplers below draw the same laws
from raw 64-bit words of one SFC64 generator with whole-array operations.

Normal deviates (Box-Muller)
----------------------------
``n`` deviates take ``n`` 32-bit words (``n / 2`` raw 64-bit words), read as a first half
``a`` and a second half ``b``; each pair ``(a_k, b_k)`` gives

    ``u = (a + 1) 2^-32`` in ``(0, 1]``,  ``theta = 2 pi b 2^-32``,
    ``z1 = sqrt(-2 ln u) cos(theta)``,  ``z2 = sqrt(-2 ln u) sin(theta)``,

in float32: two independent standard normal deviates (Box and Muller, Ann. Math. Stat.
29, 610, 1958), the transform :mod:`photon.counter_rng` uses for the TM. The radius is
cut at ``sqrt(64 ln 2) = 6.66``: ``|z| > 6.66`` never occurs, where the exact law puts
2.7e-11 of its mass; float32 rounds ``u`` and ``theta`` to 24 bits, which moves no
probability by more than ``2^-24`` (invisible to any test of fewer than about 1e13
deviates).

Poisson counts of a mean below a limit (grid and alias tables, then inversion)
-----------------------------------------------------------------------------
For ``lam < limit`` write ``lam = g h + r`` with ``h = 1/4``, ``g = floor(lam / h)`` and
``0 <= r < h``. A sum of independent Poisson counts is Poisson with the summed mean, so

    ``Poisson(lam) = Poisson(g h) + Poisson(r)``    (exactly in law).

``Poisson(g h)`` comes from Walker's alias table of that grid mean (Walker, ACM TOMS 3,
253, 1977; Vose's construction, IEEE TSE 17, 972, 1991): one uniform picks a column
``j`` and, from its fractional part, keeps ``j`` or takes the column's alias; the tables
hold every count whose probability exceeds ``2^-64`` (the rest, below float64's
resolution of the uniform, is folded into the last count). ``Poisson(r)`` is drawn by
inversion of its CDF: count ``k`` while the uniform exceeds ``P(X <= k)``, which for
``r < 1/4`` ends at 0 for 78 % or more of the draws and rarely passes 2. Tables are built
once per ``limit`` (about 20 ms and 0.5 MB for the presets' 50 electrons); a limit above
:data:`MAX_TABLE_LIMIT` falls back on NumPy's exact sampler.

Blocks
------
Normal deviates and the Poisson sampler's uniforms are drawn in blocks
(:data:`BLOCK_SIZE`, :data:`UNIFORM_BLOCK_SIZE`) and handed out in order as read-only
views, so a small call (a DFA step's 60,000 deviates) costs a slice, not a dozen array
operations. (Drawing the next block ahead on a helper thread was tried: on a busy
machine the helper's blocks arrive cold in the caller's cache and the step got slower.)
A call larger than half a block is drawn on its own (in two halves on two threads from
:data:`PARALLEL_MIN_SIZE` on, each half from its own child generator). Each block comes
from its stream's own generator, in order: the numbers depend on the seed and the
sequence of calls only, never on timing. Every stream takes its own seed.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy.special import gammaln, pdtrc

from .support.arrays import run_in_pair

__all__ = ["FastNoise", "box_muller_normals", "poisson_alias_tables", "PoissonTables",
           "BLOCK_SIZE", "UNIFORM_BLOCK_SIZE", "PARALLEL_MIN_SIZE", "MAX_TABLE_LIMIT",
           "GRID_STEP"]

#: Normal deviates drawn ahead per block (1 MiB of float32).
BLOCK_SIZE = 1 << 18
#: Uniforms (float64) of the Poisson sampler drawn ahead per block (512 KiB).
UNIFORM_BLOCK_SIZE = 1 << 16
#: A draw at least this large is filled by two threads (one child generator each).
PARALLEL_MIN_SIZE = 1 << 20
#: Largest Poisson limit (mean, electrons) served by alias tables; above, NumPy's sampler.
MAX_TABLE_LIMIT = 256.0
#: Spacing of the grid of tabulated Poisson means.
GRID_STEP = 0.25

_BOX_MULLER_CHUNK = 1 << 16   # deviates per pass of the transform (its arrays stay in cache)
_TWO_POW_M32 = np.float32(2.0 ** -32)
_TWO_PI_TWO_POW_M32 = np.float32(2.0 * math.pi * 2.0 ** -32)
_TAIL_PROBABILITY = 2.0 ** -64


def box_muller_normals(bit_generator: np.random.BitGenerator, n: int, out=None) -> np.ndarray:
    """``n`` standard normal deviates (float32) from raw words of ``bit_generator``.

    Parameters
    ----------
    bit_generator
        A NumPy bit generator (its ``random_raw`` words are consumed: ``ceil(n / 2)``).
    n
        How many deviates.
    out
        Optional float32 array of ``n`` elements to fill.

    Returns
    -------
    (n,) float32 array
        Per chunk of up to 65536, the pairs' cosine deviates, then their sine deviates
        (every entry an independent N(0, 1) deviate; see the module notes for the tail
        cut).
    """
    n = int(n)
    if out is None:
        out = np.empty(n, np.float32)
    if n > _BOX_MULLER_CHUNK:  # in cache-sized chunks: the temporaries stay in cache
        for start in range(0, n, _BOX_MULLER_CHUNK):
            stop = min(n, start + _BOX_MULLER_CHUNK)
            box_muller_normals(bit_generator, stop - start, out[start:stop])
        return out
    pairs = (n + 1) // 2
    if n == 0:
        return out
    words = bit_generator.random_raw(pairs).view(np.uint32)
    radius = words[:pairs].astype(np.float32)
    radius += np.float32(1.0)
    radius *= _TWO_POW_M32
    np.log(radius, out=radius)
    radius *= np.float32(-2.0)
    np.sqrt(radius, out=radius)
    angle = words[pairs:].astype(np.float32)
    angle *= _TWO_PI_TWO_POW_M32
    first, second = out[:pairs], out[pairs:]
    np.cos(angle, out=first)
    first *= radius
    np.sin(angle[:n - pairs], out=second)
    second *= radius[:n - pairs]
    return out


class PoissonTables:
    """Alias tables of ``Poisson(g h)`` for the grid means ``g h < limit`` (see the module notes).

    Attributes
    ----------
    limit, step
        The means served (``[0, limit)``) and the grid spacing ``h``.
    columns
        Counts per table (every count of probability above ``2^-64`` at the largest mean).
    keep : (n_grid * columns,) float64
        Probability of keeping the picked column.
    alias : (n_grid * columns,) int32
        The column taken otherwise.
    """

    def __init__(self, limit: float, step: float = GRID_STEP):
        self.limit, self.step = float(limit), float(step)
        n_grid = max(1, int(math.ceil(self.limit / self.step)))
        top = (n_grid - 1) * self.step
        columns = 1
        while pdtrc(columns - 1, top) > _TAIL_PROBABILITY:  # P(X > columns - 1)
            columns += 1
        self.columns = columns
        keep = np.ones((n_grid, columns))
        alias = np.tile(np.arange(columns, dtype=np.int32), (n_grid, 1))
        counts = np.arange(columns, dtype=np.float64)
        means = np.arange(n_grid)[:, None] * self.step
        with np.errstate(divide="ignore", invalid="ignore"):  # log(0) of the mean 0
            log_pmf = counts * np.log(means) - means - gammaln(counts + 1.0)
        pmf = np.exp(log_pmf)
        pmf[0] = 0.0
        pmf[0, 0] = 1.0                                 # Poisson(0) is 0
        pmf[:, -1] += np.maximum(0.0, 1.0 - pmf.sum(axis=1))  # the mass beyond (< 2^-64)
        pmf /= pmf.sum(axis=1, keepdims=True)
        for g in range(n_grid):
            keep[g], alias[g] = _vose(pmf[g])
        self.keep = keep.ravel()
        self.alias = alias.ravel()


def _vose(pmf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vose's alias construction: ``(keep, alias)`` of a discrete law over ``len(pmf)`` columns."""
    n = pmf.size
    scaled = pmf * n
    keep = np.ones(n)
    alias = np.arange(n, dtype=np.int32)
    small = [i for i in range(n) if scaled[i] < 1.0]
    large = [i for i in range(n) if scaled[i] >= 1.0]
    while small and large:
        s, big = small.pop(), large.pop()
        keep[s], alias[s] = scaled[s], big
        scaled[big] -= 1.0 - scaled[s]
        (small if scaled[big] < 1.0 else large).append(big)
    for i in small + large:  # rounding leftovers: columns that keep themselves
        keep[i] = 1.0
    return keep, alias


@functools.lru_cache(maxsize=8)
def poisson_alias_tables(limit: float, step: float = GRID_STEP) -> PoissonTables:
    """The :class:`PoissonTables` of ``limit`` (built once per process and limit)."""
    return PoissonTables(limit, step)


class _BlockStream:
    """Blocks of one random stream, handed out in order as read-only views.

    Block ``k`` is the ``k``-th draw of ``size`` numbers from the stream's own bit
    generator: the numbers depend on the seed and on the order of the requests only.
    Views handed out stay valid (a block is never written again).
    """

    def __init__(self, bit_generator, kind: str, size: int):
        self._bits, self._kind, self._size = bit_generator, kind, int(size)
        self._block = np.empty(0, np.float32 if kind == "normal" else np.float64)
        self._used = 0

    def _draw(self):
        if self._kind == "normal":
            block = box_muller_normals(self._bits, self._size)
        else:
            block = np.random.Generator(self._bits).random(self._size)
        block.flags.writeable = False
        return block

    def take(self, n: int):
        """The next ``n`` numbers (``n <= size``), a read-only view."""
        if self._used + n > self._block.size:
            self._block, self._used = self._draw(), 0
        start, self._used = self._used, self._used + n
        return self._block[start:self._used]


class FastNoise:
    """A seeded stream of normal deviates and small-mean Poisson counts (NumPy, float32).

    Normal deviates and the Poisson sampler's uniforms come in blocks
    (:data:`BLOCK_SIZE` and :data:`UNIFORM_BLOCK_SIZE`), handed out in order; picklable.

    Parameters
    ----------
    seed
        Seed of the stream; five child generators are spawned from it (normal blocks,
        uniform blocks, the two halves of a large draw, and draws made in place).
    """

    def __init__(self, seed: int):
        children = np.random.SeedSequence(int(seed)).spawn(5)
        bits = [np.random.SFC64(child) for child in children]
        self._normals = _BlockStream(bits[0], "normal", BLOCK_SIZE)
        self._uniforms = _BlockStream(bits[1], "uniform", UNIFORM_BLOCK_SIZE)
        self._halves = bits[2:4]
        self._generator = np.random.Generator(bits[4])

    def standard_normal(self, n: int) -> np.ndarray:
        """``n`` standard normal deviates, float32, read-only (a view into a block when small).

        The caller may not write into the result (copy it first, or use it as an operand).
        """
        n = int(n)
        if n > BLOCK_SIZE // 2:
            return self._large_normals(n)
        return self._normals.take(n)

    def _large_normals(self, n: int) -> np.ndarray:
        out = np.empty(n, np.float32)
        if n < PARALLEL_MIN_SIZE:
            return box_muller_normals(self._generator.bit_generator, n, out)
        half = n // 2
        run_in_pair(lambda: box_muller_normals(self._halves[0], half, out[:half]),
                    lambda: box_muller_normals(self._halves[1], n - half, out[half:]))
        return out

    def _uniform(self, n: int) -> np.ndarray:
        """``n`` uniforms in ``[0, 1)``, float64 (from the blocks when small)."""
        if n > UNIFORM_BLOCK_SIZE // 2:
            return self._generator.random(n)
        return self._uniforms.take(n)

    def poisson(self, lam, limit: float) -> np.ndarray:
        """Poisson counts (float32) of the means ``lam`` (1-D, each in ``[0, limit)``).

        Parameters
        ----------
        lam : (m,) array
            Means, electrons; every one must lie in ``[0, limit)``.
        limit
            The bound the caller guarantees (the tables' limit).
        """
        lam = np.asarray(lam)
        if lam.size == 0:
            return np.zeros(0, np.float32)
        if limit > MAX_TABLE_LIMIT:
            return self._generator.poisson(lam).astype(np.float32)
        tables = poisson_alias_tables(float(limit))
        n = lam.size
        # lam = g h + r, exactly: h is a power of two, the fraction of lam / h is exact.
        scaled = lam * lam.dtype.type(1.0 / tables.step)
        grid = np.floor(scaled)
        scaled -= grid
        scaled *= lam.dtype.type(tables.step)           # r, in [0, h)
        uniforms = self._uniform(2 * n)
        pick = uniforms[:n] * tables.columns
        column = pick.astype(np.int32)
        pick -= column                                  # the fractional part: the keep test
        cell = grid.astype(np.int32)
        cell *= tables.columns
        cell += column
        counts = tables.alias.take(cell)
        np.copyto(counts, column, where=pick < tables.keep.take(cell))
        counts += _poisson_by_inversion(scaled.astype(np.float64), uniforms[n:])
        return counts.astype(np.float32)


def _poisson_by_inversion(lam: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Poisson counts (int32) of small means ``lam`` by inversion of the CDF with uniforms ``u``.

    Count ``k`` is the number of CDF values ``P(X <= j)``, ``j = 0, 1, ...``, that ``u``
    reaches: 0 and 1 in closed form for all, then a loop over the few that reach 2.
    """
    term = np.negative(lam)
    np.exp(term, out=term)                       # P(X = 0)
    counts = (u >= term).view(np.uint8).astype(np.int32)
    cdf = lam + 1.0
    cdf *= term                                  # P(X <= 1)
    active = np.flatnonzero(u >= cdf)
    if not active.size:
        return counts
    lam_a, u_a = lam[active], u[active]
    term, cdf = term[active] * lam_a, cdf[active]
    k = 1
    while active.size:
        k += 1
        counts[active] = k
        term = term * lam_a / k
        cdf = cdf + term
        more = u_a >= cdf
        if k > 1000 or not more.any():   # the CDF reached 1 to rounding: stop
            break
        active, cdf, term, lam_a, u_a = (a[more] for a in (active, cdf, term, lam_a, u_a))
    return counts
