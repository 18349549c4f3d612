"""Structured random projections: the subsampled randomized Hartley / Hadamard transform.

What a careful user picks instead of a dense Gaussian ``R`` when ``n`` is large: a
projection that costs ``O(n log n)`` per vector and stores ``O(n)`` numbers, not
``n^2`` (Ailon & Chazelle, "The fast Johnson-Lindenstrauss transform", STOC 2006;
Tropp, "Improved analysis of the subsampled randomized Hadamard transform", 2011).

Model
-----
An input ``x`` of ``n_in`` numbers is zero-padded to ``N = 2^ceil(log2 n_in)``. The
``n_out`` outputs come in ``ceil(n_out / N)`` blocks; block ``b`` has its own random
signs ``D_b`` (i.i.d. +-1); every block keeps all ``N`` rows of its transform but the
last, which keeps a uniformly chosen subset ``S`` of the ``n_out - (blocks - 1) N``
outputs still needed (when ``n_out < N``, the one block is that subset)::

    y_b = s * S_b T D_b x,        y = [y_0; y_1; ...]

``T`` is an ``N x N`` orthogonal-up-to-scale transform with entries of mean square 1
(``T T^T = N I``):

* ``"fft"`` (default): the discrete Hartley transform ``T_kj = cas(2 pi jk / N) =
  cos + sin``, computed from one real FFT (``scipy.fft.rfft`` on NumPy,
  ``cupyx.scipy.fft.rfft`` on CuPy): ``T x = Re X - Im X`` for ``k <= N/2`` and
  ``Re X_{N-k} + Im X_{N-k}`` above;
* ``"hadamard"``: the Walsh-Hadamard transform, entries exactly +-1 (an in-place
  butterfly, ``log2 N`` passes; slower than the FFT in NumPy).

The scale ``s`` is ``1 / sqrt(n_out)`` for ``scale="jl"``, so that ``E ||Px||^2 =
||x||^2`` (a Johnson-Lindenstrauss map: ``||Px||^2 / ||x||^2`` has mean 1 and, for ``n_out
<< N``, variance about ``2 / n_out``, as for a Gaussian ``P``), or 1 for
``scale="unit"``: the effective matrix ``P`` (``n_out x n_in``) then has entries of
variance 1, like the OPU's linear mode, exactly +-1 for Hadamard.

The signs and rows are drawn once from ``seed`` on the host; the backend follows the
data (NumPy in, NumPy out; CuPy in, CuPy out), the host arrays copied to the GPU once.
"""

from __future__ import annotations

import math

import numpy as np

from photon.support.arrays import array_module
from photon.support.arguments import check_choice, check_int

__all__ = ["SRHT", "TRANSFORMS", "SCALES"]

TRANSFORMS = ("fft", "hadamard")
SCALES = ("jl", "unit")
_CHUNK_ELEMENTS = 1 << 22  # NumPy: rows per pass chosen so that a chunk stays ~16 MiB


def _fft_module(xp):
    if xp is np:
        import scipy.fft  # noqa: PLC0415

        return scipy.fft
    import cupyx.scipy.fft  # noqa: PLC0415  (GPU path only)

    return cupyx.scipy.fft


def _walsh_hadamard(v, xp) -> None:
    """Unnormalized Walsh-Hadamard transform of the rows of ``v`` (rows, N), in place."""
    rows, size = v.shape
    half = 1
    while half < size:
        view = v.reshape(rows, size // (2 * half), 2, half)
        top, bottom = view[:, :, 0, :], view[:, :, 1, :]
        total = top + bottom
        xp.subtract(top, bottom, out=bottom)
        top[...] = total
        half *= 2


class SRHT:
    """Subsampled randomized Hartley (or Hadamard) transform ``x -> P x`` (module notes).

    Parameters
    ----------
    n_in
        Input size.
    n_out
        Output size (any; several blocks when larger than the padded input).
    seed
        Seed of the signs and rows.
    transform
        ``"fft"`` (Hartley via a real FFT) or ``"hadamard"``.
    scale
        ``"jl"`` (``E ||Px||^2 = ||x||^2``) or ``"unit"`` (entries of variance 1).
    workers
        Threads of ``scipy.fft`` on NumPy (None: SciPy's default; -1: every core).

    Examples
    --------
    >>> import numpy as np
    >>> P = SRHT(100, 64, seed=0)
    >>> P(np.ones((3, 100), np.float32)).shape
    (3, 64)
    """

    def __init__(self, n_in: int, n_out: int, seed: int = 0, *, transform: str = "fft",
                 scale: str = "jl", workers: int | None = None):
        self.n_in = check_int("n_in", n_in)
        self.n_out = check_int("n_out", n_out)
        check_choice("transform", transform, TRANSFORMS)
        check_choice("scale", scale, SCALES)
        self.transform, self.scale, self.seed, self.workers = transform, scale, int(seed), workers
        self.size = 1 << math.ceil(math.log2(self.n_in)) if self.n_in > 1 else 1
        self.n_blocks = math.ceil(self.n_out / self.size)
        rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(0x5247,)))
        #: (blocks, N) float32 signs +-1
        self.signs = np.where(rng.random((self.n_blocks, self.size)) < 0.5, -1.0, 1.0
                              ).astype(np.float32)
        #: rows of the last block when it is partial (sorted, distinct, uniformly chosen);
        #: every other block keeps all ``N`` rows of its transform, in order
        self.full_blocks = self.n_out // self.size
        partial = self.n_out - self.full_blocks * self.size
        self.partial_rows = (np.sort(rng.choice(self.size, partial, replace=False)).astype(np.int64)
                             if partial else np.zeros(0, np.int64))
        self.factor = 1.0 / math.sqrt(self.n_out) if scale == "jl" else 1.0
        self._on_backend: dict[str, tuple] = {}

    @property
    def rows(self) -> list:
        """Per block, the transform's rows kept (int64 arrays)."""
        full = [np.arange(self.size, dtype=np.int64)] * self.full_blocks
        return full + ([self.partial_rows] if self.partial_rows.size else [])

    # ------------------------------------------------------------------ helpers
    def _tables(self, xp):
        """Scaled signs ``s D_b`` and the partial block's rows, on ``xp`` (cached per backend)."""
        key = xp.__name__
        tables = self._on_backend.get(key)
        if tables is None:
            signs = (self.signs * np.float32(self.factor)).astype(np.float32)
            tables = (xp.asarray(signs), xp.asarray(self.partial_rows))
            self._on_backend[key] = tables
        return tables

    def _hartley(self, padded, xp) -> None:
        """Replace the last axis of ``padded`` by its Hartley transform (one real FFT)."""
        fft = _fft_module(xp)
        options = {"workers": self.workers} if xp is np and self.workers is not None else {}
        spectrum = fft.rfft(padded, axis=-1, **options)
        half = self.size // 2
        xp.subtract(spectrum.real, spectrum.imag, out=padded[..., :half + 1])  # k <= N/2
        if half > 1:  # k > N/2: Re X_{N-k} + Im X_{N-k}
            mirrored = spectrum[..., half - 1:0:-1]
            xp.add(mirrored.real, mirrored.imag, out=padded[..., half + 1:])

    def _blocks(self, x, xp, tables, dtype):
        """``s S_b T D_b x`` of every block, ``(rows, n_out)``: one batched transform."""
        signs, partial_rows = tables
        rows = x.shape[0]
        padded = xp.zeros((rows, self.n_blocks, self.size), dtype)
        xp.multiply(x[:, None, :], signs[:, :self.n_in].astype(dtype, copy=False),
                    out=padded[:, :, :self.n_in])
        if self.transform == "hadamard":
            _walsh_hadamard(padded.reshape(rows * self.n_blocks, self.size), xp)
        elif self.size > 1:
            self._hartley(padded, xp)
        flat = padded.reshape(rows, self.n_blocks * self.size)
        if not partial_rows.size:
            return flat
        full = self.full_blocks * self.size
        out = xp.empty((rows, self.n_out), dtype)
        out[:, :full] = flat[:, :full]
        out[:, full:] = xp.take(padded[:, self.full_blocks], partial_rows, axis=1)
        return out

    # ------------------------------------------------------------------ public
    def __call__(self, x):
        """``P x`` for ``x`` (n_in,) or (batch, n_in); float32 stays float32, else float64.

        The result is on the backend of ``x``. On NumPy the rows go through in chunks
        of about ``2^22`` transformed numbers (memory and cache stay bounded).
        """
        xp = array_module(x)
        if getattr(x, "ndim", 0) not in (1, 2) or x.shape[-1] != self.n_in:
            raise ValueError(f"x: shape {getattr(x, 'shape', None)}: expected ({self.n_in},) or "
                             f"(batch, {self.n_in})")
        single = x.ndim == 1
        rows = x[None, :] if single else x
        dtype = np.float32 if rows.dtype == np.float32 else np.float64
        rows = rows.astype(dtype, copy=False)
        tables = self._tables(xp)
        chunk = (rows.shape[0] if xp is not np
                 else max(1, _CHUNK_ELEMENTS // (self.size * self.n_blocks)))
        if rows.shape[0] <= chunk:
            out = self._blocks(rows, xp, tables, dtype)
        else:
            out = xp.empty((rows.shape[0], self.n_out), dtype)
            for start in range(0, rows.shape[0], chunk):
                stop = min(rows.shape[0], start + chunk)
                out[start:stop] = self._blocks(rows[start:stop], xp, tables, dtype)
        return out[0] if single else out

    def matrix(self) -> np.ndarray:
        """The effective matrix ``P`` (n_out, n_in), float64 NumPy (for checks: ``O(n^2)``)."""
        return np.ascontiguousarray(self(np.eye(self.n_in)).T)

    def flops_per_vector(self) -> float:
        """Arithmetic of one projection: sign flips, ``2.5 N log2 N`` per real FFT, gathers."""
        fft = 2.5 * self.size * math.log2(self.size) if self.size > 1 else 0.0
        if self.transform == "hadamard":
            fft = self.size * math.log2(self.size) if self.size > 1 else 0.0
        return self.n_blocks * (self.n_in + fft) + 2.0 * self.n_out

    def describe(self) -> dict:
        """Plain-data description."""
        return {"kind": "srht", "transform": self.transform, "scale": self.scale,
                "n_in": self.n_in, "n_out": self.n_out, "padded": self.size,
                "blocks": self.n_blocks, "seed": self.seed,
                "stored_numbers": int(self.signs.size + self.partial_rows.size)}

    def __repr__(self) -> str:
        return (f"SRHT(n_in={self.n_in}, n_out={self.n_out}, seed={self.seed}, "
                f"transform={self.transform!r}, scale={self.scale!r})")
