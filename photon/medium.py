"""Multiply scattering medium: a transmission matrix per polarization.

Model
-----
The field on camera pixel ``j`` in polarization ``p`` is ``E_pj = sum_i T_pji a_i + b_pj``
where ``a_i`` is the field amplitude leaving mirror ``i`` of the DMD's used region and
``b`` the fixed reference field of mirrors held on outside it. ``T`` is i.i.d. circular
complex Gaussian with variance ``1 / n_mirrors`` (docs/design.md section 2), one independent
matrix per polarization. A macropixel's row is the sum of its mirrors' rows, so the
feature-level matrix of ``n_in`` macropixels of ``m`` mirrors has variance ``1 / n_in``.
The held-on mirrors' field is the sum of ``held_on_mirrors`` such rows, i.e. circular
Gaussian of variance ``held_on_mirrors / n_mirrors``.

Fields are real arrays of shape ``(batch, n_polarizations, 2, n_pixels)`` (real and
imaginary parts) in units where ``|E|^2 = 1`` is the mean intensity of all used mirrors
on. The product with a batch of frames is one real GEMM against the real and imaginary
parts side by side.

Drift follows docs/design.md section 2: ``T(t + dt) = sqrt(1 - a) T(t) + sqrt(a) G`` with ``a = dt / tau``,
taken from keyframes: independent Gaussian matrices ``K_0 = T(0), K_1, K_2, ...`` sit
``tau`` apart and ``T(m tau + dt) = sqrt(1 - a) K_m + sqrt(a) K_(m+1)`` for
``0 <= dt < tau``. The correlation between ``T(m tau)`` (the TM at time zero, say) and the
TM ``dt`` later is exactly ``sqrt(1 - dt / tau)``; every ``T(t)`` has the same i.i.d.
Gaussian law; and any block of ``T(t)`` is computable from two keyframe blocks, so a
streamed TM drifts exactly as a stored one does. (Between two times that are both off a
keyframe the correlation is higher than a Markov process's: the path runs along a great
circle from one keyframe to the next.) The reference field drifts the same way.
A stored (dense) TM keeps its two keyframes on the backend of the frames that use them
(copied from the host once per keyframe, or generated there) and never rebuilds on the
host for a CuPy product: a batch of at most ``_PRODUCT_MIX_MAX_BATCH`` frames takes the
two products ``sqrt(1 - a) (x K_m) + sqrt(a) (x K_(m+1))``; a larger one (or a reduced
``tm_precision``, whose TM now is the rounded mix) mixes the keyframes into the TM now on
that backend, once per clock position. Both are the same linear map, equal to float32
rounding.
The TM may be held in a reduced precision (``tm_precision``: TF32 or bf16, see
:mod:`photon.precision`): the TM now is rounded to it, the frames stay exact. A speckle
grain larger than a pixel (``speckle_grain_px``) and neighbouring mirrors that share
their light (``input_grain_mirrors``) correlate the TM's rows and columns: each entry is
a weighted sum of independent sources placed by the pixel's position on the sensor and
the mirror's on the DMD (:mod:`photon.grain`), so it depends on the seed and the two
positions alone, never on how many pixels are read, and nothing wraps around an edge.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from .config import DMDConfig, MediumConfig, SimulationConfig
from .gaussian_matrix import GaussianMatrix
from .grain import GrainAxis, plane_positions
from .precision import precise_matmul, round_to_precision
from .support.arrays import array_module
from .support.memory import SMALL_CALL_BYTES, InsufficientMemory, available_bytes
from .support.schema import ConfigError, check_setting, from_mapping, settings_as_properties

__all__ = ["ScatteringMedium", "near_square_shape"]

# Stream identifiers of the medium's random matrices (combined with the polarization).
_TM, _REFERENCE = 0, 1
# A drifting dense TM: batches up to this many frames take two products with the two
# keyframes (reading the TM twice) instead of mixing the keyframes into the TM now
# (reading two matrices, writing a third, then one product). Below about 60 rows the
# second product is bound by memory on the CPU and on the GPU, so it is the cheaper way.
_PRODUCT_MIX_MAX_BATCH = 32
# Row chunk of the keyframe mix: {on NumPy (cache-sized): bytes, on CuPy: bytes}.
_MIX_CHUNK_BYTES = {True: 1 << 20, False: 1 << 28}
# Host bytes per pixel and per mirror: (row, column) positions and source indices (int64),
# with the temporaries that build them.
_INDEX_BYTES = 64


def near_square_shape(n: int) -> tuple[int, int]:
    """Return ``(rows, cols)`` with ``rows * cols == n`` and rows the largest divisor <= sqrt(n)."""
    rows = int(math.isqrt(n))
    while n % rows:
        rows -= 1
    return rows, n // rows


@settings_as_properties(SimulationConfig, "simulation",
                        ("tm_storage", "max_dense_tm_mb", "tile_rows", "tile_cols", "tm_precision"))
@settings_as_properties(DMDConfig, "dmd", ("macropixel_mirrors", "held_on_mirrors"))
@settings_as_properties(MediumConfig)
class ScatteringMedium:
    """Transmission matrices of a scattering layer, stored or streamed.

    Parameters
    ----------
    config
        The layer's settings, validated by :class:`~photon.config.MediumConfig`: the
        decorrelation time ``drift_time_s`` of the TM (``None``: static), the rms
        radius ``speckle_grain_px`` of the speckle grain in sensor pixels (0: independent
        pixels) and ``input_grain_mirrors`` of the blur that correlates neighbouring
        mirrors (0: independent mirrors; :mod:`photon.grain`); ``transmission`` and
        ``thickness_um`` are read by the chain. Each is
        readable as an attribute (``medium.drift_time_s``) that reads ``medium.config``.
    n_in
        Number of input features (DMD macropixels).
    n_pixels
        Number of camera sensor pixels the field is computed on.
    dmd
        The DMD in front of the layer (:class:`~photon.config.DMDConfig`): the TM is
        drawn per mirror and summed over each feature's ``macropixel_mirrors``; its
        ``held_on_mirrors`` add the reference field. Readable as
        ``medium.macropixel_mirrors`` and ``medium.held_on_mirrors``.
    simulation
        How the TM is held (:class:`~photon.config.SimulationConfig`): ``tm_storage``
        ``"dense"``, ``"streamed"`` or ``"auto"`` (dense up to ``max_dense_tm_mb``);
        ``tm_precision`` ``"float32"``, ``"tf32"`` or ``"bf16"``, the format the TM's
        entries are rounded to (frames are exact in all three; products accumulate in
        float32); ``tile_rows x tile_cols``, the block (mirrors x pixels) in which a
        streamed TM is regenerated and a stored one is built. The block size sets memory
        and speed only: every entry is a function of the seed and of its own position
        (:class:`~photon.gaussian_matrix.GaussianMatrix`). Readable as attributes too.
    n_polarizations
        1 (an ideal polarizer: only one polarization matters) or 2.
    pixel_positions : (n_pixels, 2) int array, optional
        Row and column of each pixel on the camera sensor (the chain gives those of the
        region of interest the camera reads, :func:`photon.grain.sensor_pixel_positions`),
        and ``sensor_cols`` the sensor's width: a pixel's speckle is a function of its
        position. Default: pixels row by row on a sensor ``sensor_cols`` wide (a
        near-square grid of ``n_pixels`` when ``sensor_cols`` is None too).
    sensor_cols
        The sensor's width in pixels.
    seed, drift_seed
        Seeds of the TM and of its drift innovations.

    Attributes
    ----------
    storage
        ``"dense"`` or ``"streamed"``: ``tm_storage`` resolved for this size.

    See Also
    --------
    from_settings : build the configurations from keyword settings.
    """

    def __init__(self, config: MediumConfig, n_in: int, n_pixels: int, *,
                 dmd: DMDConfig = DMDConfig(), simulation: SimulationConfig = SimulationConfig(),
                 n_polarizations: int = 1, pixel_positions=None,
                 sensor_cols: int | None = None, seed: int = 0, drift_seed: int = 1):
        for name, value, cls in (("config", config, MediumConfig), ("dmd", dmd, DMDConfig),
                                 ("simulation", simulation, SimulationConfig)):
            if not isinstance(value, cls):
                raise TypeError(f"{name} = {value!r}: expected a {cls.__name__} (or use "
                                "ScatteringMedium.from_settings(n_in, n_pixels, **settings))")
        self.config, self.dmd, self.simulation = config, dmd, simulation
        if n_polarizations not in (1, 2):
            raise ValueError(f"n_polarizations = {n_polarizations!r}: expected 1 or 2")
        self.n_in = check_setting("n_in", n_in, "ScatteringMedium", kind=int, lo=1,
                                  unit="features")
        self.n_pixels = check_setting("n_pixels", n_pixels, "ScatteringMedium", kind=int,
                                      lo=1, unit="pixels")
        self.n_polarizations = n_polarizations
        self.n_mirrors = self.n_in * self.macropixel_mirrors
        storage = self.tm_storage
        if storage == "auto":
            storage = "dense" if self.dense_nbytes <= self.max_dense_tm_mb * 2**20 else "streamed"
        self.storage = storage
        self._check_fits_in_memory()
        self._pixel_grain, self._mirror_grain = self._grain_axes(pixel_positions, sensor_cols)
        self.seed, self.drift_seed = int(seed), int(drift_seed)
        self.has_reference = self.held_on_mirrors > 0
        self.elapsed_s = 0.0
        # Dense storage. Keyframes live on the backend of the frames that need them:
        # backend module -> {keyframe index: {"weights", "reference", "ones"}}, unrounded.
        self._keyframes = {}
        # The TM now as the GEMM operand, per backend, built lazily for the clock position:
        # backend module -> {"position", "weights" (rounded), "reference", "ones", "owned"}.
        self._now = {}
        self._given = False          # from_transmission_matrix: no generator behind the TM
        if storage == "dense":
            self._operand(np)                # the stored TM at time zero, on the host
            if self.drift_time_s is None:
                self._keyframes.clear()      # a static medium never needs its keyframe again

    @classmethod
    def from_settings(cls, n_in: int, n_pixels: int, *, n_polarizations: int = 1,
                      pixel_positions=None, sensor_cols: int | None = None, seed: int = 0,
                      drift_seed: int = 1, **settings) -> "ScatteringMedium":
        """A medium whose configurations are built from keyword ``settings``.

        Each setting goes to the configuration that declares it:
        :class:`~photon.config.MediumConfig` (``drift_time_s``, ``speckle_grain_px``,
        ...), :class:`~photon.config.DMDConfig` (``macropixel_mirrors``,
        ``held_on_mirrors``, ...) or :class:`~photon.config.SimulationConfig`
        (``tm_storage``, ``tile_rows``, ``tm_precision``, ...).

        Examples
        --------
        >>> ScatteringMedium.from_settings(128, 512, drift_time_s=3600.0,
        ...                                tm_storage="streamed")  # doctest: +SKIP
        """
        sections = {MediumConfig: {}, DMDConfig: {}, SimulationConfig: {}}
        owners = {f.name: cls_ for cls_ in sections for f in dataclasses.fields(cls_)}
        for key, value in settings.items():
            if key not in owners:
                raise ConfigError(
                    f"ScatteringMedium.from_settings: unknown key '{key}' = {value!r}: expected "
                    f"one of {', '.join(sorted(owners))}", key=key, value=value,
                    expected="a known key", source="ScatteringMedium.from_settings")
            sections[owners[key]][key] = value
        config, dmd, simulation = (from_mapping(cls_, values, "ScatteringMedium.from_settings")
                                   for cls_, values in sections.items())
        return cls(config, n_in, n_pixels, dmd=dmd, simulation=simulation,
                   n_polarizations=n_polarizations, pixel_positions=pixel_positions,
                   sensor_cols=sensor_cols, seed=seed,
                   drift_seed=drift_seed)

    @classmethod
    def from_transmission_matrix(cls, transmission_matrix, reference_field=None) -> "ScatteringMedium":
        """A static medium with a given TM (an estimate, say) instead of a random one.

        Parameters
        ----------
        transmission_matrix : (n_pixels, n_in) complex array
            ``R`` in ``E = R a + b``.
        reference_field : (n_pixels,) complex array, optional
            The fixed field ``b`` (zero when omitted).
        """
        tm = np.asarray(transmission_matrix)
        if tm.ndim != 2 or not np.all(np.isfinite(tm)):
            raise ValueError(f"transmission_matrix: shape {tm.shape}: expected a finite "
                             "(n_pixels, n_in) complex matrix")
        n_pixels, n_in = tm.shape
        medium = cls(MediumConfig(), n_in, n_pixels,
                     simulation=SimulationConfig(tm_storage="streamed"))  # generates nothing
        medium.storage = "dense"
        weights = np.empty((n_in, 2 * n_pixels), np.float32)
        weights[:, :n_pixels] = tm.real.T
        weights[:, n_pixels:] = tm.imag.T
        reference = np.zeros(2 * n_pixels, np.float32)
        if reference_field is not None:
            ref = np.asarray(reference_field).reshape(-1)
            if ref.shape != (n_pixels,) or not np.all(np.isfinite(ref)):
                raise ValueError(f"reference_field: shape {ref.shape}: expected ({n_pixels},) "
                                 "finite complex values")
            reference[:n_pixels], reference[n_pixels:] = ref.real, ref.imag
            medium.has_reference = True
        medium._given = True
        medium._now[np] = {"position": (0, 0.0), "weights": weights, "reference": reference,
                           "ones": None, "owned": True}
        return medium

    # ------------------------------------------------------------------ generation
    @property
    def dense_nbytes(self) -> int:
        """Bytes of the stored float32 TM (real and imaginary parts, all polarizations)."""
        return 4 * self.n_in * self.n_polarizations * 2 * self.n_pixels

    def _check_fits_in_memory(self) -> None:
        """Refuse, before allocating, a medium whose arrays cannot fit in host memory.

        The medium keeps :data:`_INDEX_BYTES` per pixel and per mirror (positions and
        source indices, with their temporaries) and, stored dense, the TM
        (:attr:`dense_nbytes`). Half of the memory available is the limit, as for a batch
        call (:mod:`photon.support.memory`).
        """
        need = _INDEX_BYTES * (self.n_pixels + self.n_mirrors)
        if self.storage == "dense":
            need += self.dense_nbytes
        if need <= SMALL_CALL_BYTES:
            return
        available = available_bytes(np)
        if need > available / 2:
            stored = " and the dense TM" if self.storage == "dense" else ""
            raise InsufficientMemory(
                f"n_in = {self.n_in} ({self.n_mirrors} mirrors) and n_pixels = "
                f"{self.n_pixels}: the medium's per-pixel and per-mirror indices{stored} need "
                f"{need / 2 ** 30:.3g} GiB, more than half of the {available / 2 ** 30:.3g} GiB "
                "available; expected fewer inputs or pixels"
                + ("" if stored == "" else ", or tm_storage = 'streamed'"))

    def _grain_axes(self, pixel_positions, sensor_cols):
        """The pixel and mirror sides of the TM (:class:`photon.grain.GrainAxis`)."""
        if pixel_positions is None:
            width = sensor_cols if sensor_cols else near_square_shape(self.n_pixels)[1]
            pixel_positions = plane_positions(self.n_pixels, width)
        positions = np.asarray(pixel_positions, np.int64)
        if positions.shape != (self.n_pixels, 2) or (positions.size and positions.min() < 0):
            raise ValueError(f"pixel_positions: shape {positions.shape}: expected ({self.n_pixels}"
                             ", 2) non-negative sensor rows and columns")
        width = int(sensor_cols) if sensor_cols else int(positions[:, 1].max()) + 1
        if positions[:, 1].max() >= width:
            raise ValueError(f"sensor_cols = {sensor_cols!r}: expected more than the largest "
                             f"pixel column {int(positions[:, 1].max())}")
        pixels = GrainAxis(positions, width, self.speckle_grain_px, keep="variance")
        mirrors = GrainAxis(plane_positions(self.n_mirrors, self.dmd.cols), self.dmd.cols,
                            self.input_grain_mirrors, keep="uniform")
        return pixels, mirrors

    @property
    def grained(self) -> bool:
        """Whether an entry is a sum of sources (a grain, or pixels off their own index)."""
        return not (self._pixel_grain.identity and self._mirror_grain.identity)

    def _matrix(self, reference: bool, pol: int, keyframe: int) -> GaussianMatrix:
        """Sources of the TM (or of the reference row) of keyframe ``keyframe`` (0: time
        zero): mirror sites by pixel sites (:mod:`photon.grain`)."""
        seed = self.seed if keyframe == 0 else self.drift_seed
        if reference:
            return GaussianMatrix(seed, (_REFERENCE, pol, keyframe), 1,
                                  self._pixel_grain.n_sources,
                                  self.held_on_mirrors / self.n_mirrors)
        return GaussianMatrix(seed, (_TM, pol, keyframe), self._mirror_grain.n_sources,
                              self._pixel_grain.n_sources, 1.0 / self.n_mirrors)

    def _feature_chunk(self) -> int:
        chunk = max(1, self.tile_rows // self.macropixel_mirrors)
        if self.grained:  # sources of a chunk of rows: about 2^24 float32 at most
            rows = self._mirror_grain.radius * 2 + 1
            sources = self._pixel_grain.box(0, self.n_pixels)[1]
            budget = (1 << 24) // max(1, 2 * sources[0] * sources[1] * rows * rows)
            chunk = max(1, min(chunk, budget // self.macropixel_mirrors))
        return chunk

    def _source_block(self, pol: int, m0: int, m1: int, c0: int, c1: int, keyframe: int,
                      xp=np, reference: bool = False):
        """Mirrors ``m0:m1`` (or the reference row), pixels ``c0:c1``, grain applied, as
        ``[real | imag]`` float32 rows on ``xp``."""
        matrix = self._matrix(reference, pol, keyframe)
        pixel_runs, pixel_box, pixel_gather = self._pixel_grain.box(c0, c1)
        if reference:
            mirror_runs, mirror_box, mirror_gather = [(0, 1)], (1, 1), np.arange(1)
            mirror_axis = None
        else:
            mirror_runs, mirror_box, mirror_gather = self._mirror_grain.box(m0, m1)
            mirror_axis = self._mirror_grain
        n_rows = sum(b - a for a, b in mirror_runs)
        n_cols = sum(b - a for a, b in pixel_runs)
        parts = []
        for real_part in (True, False):
            parts.append(xp.empty((n_rows, n_cols), np.float32))
        row = 0
        for r0, r1 in mirror_runs:
            col = 0
            for s0, s1 in pixel_runs:
                real, imag = matrix.block(r0, r1, s0, s1, xp)
                parts[0][row:row + r1 - r0, col:col + s1 - s0] = real
                parts[1][row:row + r1 - r0, col:col + s1 - s0] = imag
                col += s1 - s0
            row += r1 - r0
        out = xp.empty((m1 - m0 if not reference else 1, 2 * (c1 - c0)), np.float32)
        for k, part in enumerate(parts):
            part = self._pixel_grain.apply(part, pixel_box, pixel_gather, 1, xp)
            if mirror_axis is not None:
                part = mirror_axis.apply(part, mirror_box, mirror_gather, 0, xp)
            out[:, k * (c1 - c0):(k + 1) * (c1 - c0)] = part
        return out

    def _rounded(self, weights, owned: bool = False):
        """``weights`` rounded to the TM precision (in place when ``owned``, else a copy)."""
        if self.tm_precision == "float32":
            return weights
        return round_to_precision(weights if owned else weights.copy(), self.tm_precision)

    def _drift_position(self) -> tuple[int, float]:
        """``(m, a)``: the TM now is ``sqrt(1 - a) K_m + sqrt(a) K_(m+1)``."""
        if self.drift_time_s is None:
            return 0, 0.0
        phase = self.elapsed_s / self.drift_time_s
        m = int(math.floor(phase))
        return m, phase - m

    def _keyframe_block(self, pol: int, f0: int, f1: int, c0: int, c1: int,
                        keyframe: int, xp=np):
        group = self.macropixel_mirrors
        if not self.grained:
            return self._matrix(False, pol, keyframe).summed_rows(group, f0, f1, c0, c1, xp)
        block = self._source_block(pol, f0 * group, f1 * group, c0, c1, keyframe, xp)
        if group == 1:
            return block
        return block.reshape(f1 - f0, group, block.shape[1]).sum(axis=1)

    def _weight_block(self, pol: int, f0: int, f1: int, c0: int, c1: int, xp=np):
        """The TM now, features ``f0:f1``, pixels ``c0:c1``, as ``[real | imag]`` rows.

        A fresh float32 array of shape ``(f1 - f0, 2 (c1 - c0))`` on ``xp`` (the caller owns it).
        """
        m, a = self._drift_position()
        block = self._keyframe_block(pol, f0, f1, c0, c1, m, xp)
        if a > 0:
            block *= np.float32(math.sqrt(1.0 - a))
            block += np.float32(math.sqrt(a)) * self._keyframe_block(pol, f0, f1, c0, c1, m + 1, xp)
        return block

    def _reference_now(self, xp=np):
        """The held-on mirrors' field now, ``(n_pol * 2 * n_pixels,)`` float32 on ``xp``."""
        m, a = self._drift_position()
        reference = self._keyframe_reference(m, xp)
        if a > 0:
            reference = (np.float32(math.sqrt(1.0 - a)) * reference
                         + np.float32(math.sqrt(a)) * self._keyframe_reference(m + 1, xp))
        return reference

    def _keyframe_weights(self, keyframe: int, xp=np):
        """Keyframe ``keyframe`` as the ``(n_in, n_pol * 2 * n_pixels)`` operand, made on ``xp``."""
        n, p = self.n_pixels, self.n_polarizations
        weights = xp.empty((self.n_in, p * 2 * n), np.float32)
        chunk = self._feature_chunk()
        for pol in range(p):
            for f0 in range(0, self.n_in, chunk):
                f1 = min(self.n_in, f0 + chunk)
                weights[f0:f1, (2 * pol) * n:(2 * pol + 2) * n] = self._keyframe_block(
                    pol, f0, f1, 0, n, keyframe, xp)
        return weights

    def _keyframe_reference(self, keyframe: int, xp=np):
        n, p = self.n_pixels, self.n_polarizations
        reference = xp.zeros(p * 2 * n, np.float32)
        if self.held_on_mirrors:
            for pol in range(p):
                if self.grained:
                    row = self._source_block(pol, 0, 1, 0, n, keyframe, xp, reference=True)[0]
                    real, imag = row[:n], row[n:]
                else:
                    real, imag = (part[0] for part in
                                  self._matrix(True, pol, keyframe).block(0, 1, 0, n, xp))
                reference[(2 * pol) * n:(2 * pol + 1) * n] = real
                reference[(2 * pol + 1) * n:(2 * pol + 2) * n] = imag
        return reference

    def _keyframe(self, keyframe: int, xp) -> dict:
        """Stored keyframe on backend ``xp``, kept while it is one of the two in use.

        Copied from the host when the host holds it (once per keyframe, i.e. once per
        ``drift_time_s``), else generated on ``xp`` by the counter-based generator.
        """
        frames = self._keyframes.setdefault(xp, {})
        if keyframe not in frames:
            host = self._keyframes.get(np, {}).get(keyframe) if xp is not np else None
            if host is not None:
                frames[keyframe] = {"weights": xp.asarray(host["weights"]),
                                    "reference": xp.asarray(host["reference"]), "ones": None}
            else:
                frames[keyframe] = {"weights": self._keyframe_weights(keyframe, xp),
                                    "reference": self._keyframe_reference(keyframe, xp),
                                    "ones": None}
        return frames[keyframe]

    @staticmethod
    def _ones(entry: dict):
        """Column sums of an operand (the field of the all-on frame), computed once."""
        if entry["ones"] is None:
            entry["ones"] = entry["weights"].sum(axis=0)
        return entry["ones"]

    def _operand(self, xp) -> dict:
        """The dense TM now on backend ``xp``: ``weights`` (rounded), ``reference``, ``ones``.

        Built once per clock position and backend, where the frames are: a static or given
        TM is the host's (copied once to another backend); a drifting one mixes its two
        keyframes on ``xp``, ``sqrt(1 - a) K_m + sqrt(a) K_(m+1)`` (section 2), into a
        buffer it reuses, a row chunk at a time.
        """
        position = self._drift_position()
        now = self._now.get(xp)
        if now is not None and now["position"] == position:
            return now
        if self._given or (self.drift_time_s is None and xp is not np and np in self._now):
            host = self._now[np]
            fresh = {"position": position, "weights": xp.asarray(host["weights"]),
                     "reference": xp.asarray(host["reference"]), "ones": None, "owned": True}
        else:
            m, a = position
            first = self._keyframe(m, xp)
            if a == 0:
                weights, reference = self._rounded(first["weights"]), first["reference"]
                owned = weights is not first["weights"]
            else:
                second = self._keyframe(m + 1, xp)
                buffer = now["weights"] if now is not None and now["owned"] else None
                weights = _mix(first["weights"], second["weights"], a, buffer, xp)
                weights = self._rounded(weights, owned=True)
                reference = (np.float32(math.sqrt(1.0 - a)) * first["reference"]
                             + np.float32(math.sqrt(a)) * second["reference"])
                owned = True
            fresh = {"position": position, "weights": weights, "reference": reference,
                     "ones": None, "owned": owned}
        self._now[xp] = fresh
        return fresh

    # ------------------------------------------------------------------ inspection
    @property
    def stored_weights(self) -> np.ndarray | None:
        """The stored TM now as the float32 GEMM operand (in its precision), or None when streamed.

        Shape ``(n_in, n_polarizations * 2 * n_pixels)``: for each polarization the real
        parts then the imaginary parts of ``R^T``, so ``frames @ stored_weights`` is the
        field. Read-only by convention. Built on the host for the clock's present position
        (a drifting TM mixes its keyframes here); the array returned stays as it is when
        the clock moves on.
        """
        if self.storage != "dense":
            return None
        now = self._operand(np)
        now["owned"] = False         # handed out: the next drift step mixes into a new array
        return now["weights"]

    def transmission_matrix(self, polarization: int = 0) -> np.ndarray:
        """Return the feature-level TM ``R`` of shape ``(n_pixels, n_in)``, complex64.

        ``E = R a + b`` for a column vector ``a`` of feature amplitudes. Built from the
        same entries whether the TM is stored or streamed (a streamed one is generated
        here, so mind its size). With a grain (``speckle_grain_px``,
        ``input_grain_mirrors``) this is the TM the camera sees, rows and columns
        correlated (:mod:`photon.grain`).
        """
        n = self.n_pixels
        if self.storage == "dense":
            w = self._operand(np)["weights"]
            real = w[:, (2 * polarization) * n:(2 * polarization + 1) * n]
            imag = w[:, (2 * polarization + 1) * n:(2 * polarization + 2) * n]
        else:
            block = self._rounded(self._weight_block(polarization, 0, self.n_in, 0, n), owned=True)
            real, imag = block[:, :n], block[:, n:]
        return _complex(real, imag).T

    def mirror_transmission_matrix(self, polarization: int = 0) -> np.ndarray:
        """Return the mirror-level TM at time zero, shape ``(n_pixels, n_mirrors)``, complex64.

        With a grain, each mirror's row and column as the sources give them
        (:mod:`photon.grain`).
        """
        n = self.n_pixels
        if not self.grained:
            real, imag = self._matrix(False, polarization, 0).block(0, self.n_mirrors, 0, n)
            return _complex(real, imag).T
        block = self._source_block(polarization, 0, self.n_mirrors, 0, n, 0)
        return _complex(block[:, :n], block[:, n:]).T

    def reference_field(self, polarization: int = 0) -> np.ndarray:
        """Return the held-on mirrors' field ``b`` on each pixel now, complex64.

        With a speckle grain, correlated over the sensor as the TM's rows are.
        """
        n = self.n_pixels
        ref = self._operand(np)["reference"] if self.storage == "dense" else self._reference_now()
        real = ref[(2 * polarization) * n:(2 * polarization + 1) * n]
        imag = ref[(2 * polarization + 1) * n:(2 * polarization + 2) * n]
        return _complex(real, imag)

    # ------------------------------------------------------------------ propagation
    def field(self, modulated, uniform: float = 0.0, on_amplitude: float = 1.0):
        """Propagate mirror amplitudes ``on_amplitude * modulated + uniform`` through the medium.

        Parameters
        ----------
        modulated : (batch, n_in) float32 array
            The part of each feature's field amplitude that follows the frame (binary
            frames as zeros and ones keep the product exact in every TM precision).
        uniform
            A field amplitude common to every used mirror (DMD off-state leakage).
        on_amplitude
            A factor on ``modulated``, applied to the product.

        Returns
        -------
        (batch, n_polarizations, 2, n_pixels) float32 array
            Real and imaginary parts of the field on each pixel, same backend as
            ``modulated``.
        """
        xp = array_module(modulated)
        if on_amplitude != 1.0 and self.tm_precision == "float32":
            # Exact either way in float32; the input is half the size of the output.
            modulated = modulated * np.float32(on_amplitude)
            on_amplitude = 1.0
        if self.storage == "dense":
            m, a = self._drift_position()
            if a > 0 and self.tm_precision == "float32" \
                    and modulated.shape[0] <= _PRODUCT_MIX_MAX_BATCH:
                out, reference, ones_field = self._mixed_products(modulated, m, a,
                                                                  bool(uniform), xp)
            else:
                operand = self._operand(xp)
                out = precise_matmul(modulated, operand["weights"], self.tm_precision)
                reference = operand["reference"]
                ones_field = self._ones(operand) if uniform else None
            if on_amplitude != 1.0:
                out *= np.float32(on_amplitude)
            if uniform:
                out += reference + np.float32(uniform) * ones_field
            elif self.has_reference:
                out += reference
        else:
            out = self._streamed_field(modulated, uniform, on_amplitude, xp)
        return out.reshape(modulated.shape[0], self.n_polarizations, 2, self.n_pixels)

    def _mixed_products(self, modulated, m: int, a: float, need_ones: bool, xp):
        """The drifted field as ``sqrt(1 - a) (x K_m) + sqrt(a) (x K_(m+1))``: two products.

        For a small batch two products read the TM twice, less than mixing the two
        keyframes into a third matrix; equal to the product with the mixed TM to float32
        rounding. Returns ``(field, reference, ones_field or None)`` on ``xp``.
        """
        first, second = self._keyframe(m, xp), self._keyframe(m + 1, xp)
        keep, fresh = np.float32(math.sqrt(1.0 - a)), np.float32(math.sqrt(a))
        out = precise_matmul(modulated, first["weights"], "float32")
        out *= keep
        drifted = precise_matmul(modulated, second["weights"], "float32")
        drifted *= fresh
        out += drifted
        reference = keep * first["reference"] + fresh * second["reference"]
        ones_field = keep * self._ones(first) + fresh * self._ones(second) if need_ones else None
        return out, reference, ones_field

    def _streamed_field(self, modulated, uniform: float, on_amplitude: float, xp):
        batch, n = modulated.shape[0], self.n_pixels
        if uniform:
            # The all-on field (for the DMD leak) rides along as one more frame of ones.
            modulated = xp.concatenate([modulated, xp.ones((1, self.n_in), np.float32)])
        out = xp.empty((batch, self.n_polarizations * 2 * n), np.float32)
        reference = self._reference_now(xp) if self.held_on_mirrors else None
        chunk = self._feature_chunk()
        for pol in range(self.n_polarizations):
            for c0 in range(0, n, self.tile_cols):
                c1 = min(n, c0 + self.tile_cols)
                acc = xp.zeros((modulated.shape[0], 2 * (c1 - c0)), np.float32)
                for f0 in range(0, self.n_in, chunk):
                    f1 = min(self.n_in, f0 + chunk)
                    block = self._rounded(self._weight_block(pol, f0, f1, c0, c1, xp), owned=True)
                    precise_matmul(modulated[:, f0:f1], block, self.tm_precision, accumulate=acc)
                if on_amplitude != 1.0:
                    acc[:batch] *= np.float32(on_amplitude)
                if uniform:
                    acc[:batch] += np.float32(uniform) * acc[batch]
                out[:, (2 * pol) * n + c0:(2 * pol) * n + c1] = acc[:batch, :c1 - c0]
                out[:, (2 * pol + 1) * n + c0:(2 * pol + 1) * n + c1] = acc[:batch, c1 - c0:]
        if reference is not None:
            out += reference
        return out

    # ------------------------------------------------------------------ pickling
    def __getstate__(self) -> dict:
        """State without the per-backend caches (keyed by array modules, which cannot be
        pickled): a generated TM is regenerated from its seeds on first use, bit for bit
        (counter-based generator); a given TM (:meth:`from_transmission_matrix`) is kept.
        A few generated entries travel along and are checked on loading, so a pickle
        never silently meets a different generator."""
        state = self.__dict__.copy()
        state["_keyframes"], state["_now"] = {}, {}
        if self._given:
            state["_given_operand"] = self._now[np]
        else:
            state["_tm_check"] = self._tm_sample()
        return state

    def __setstate__(self, state: dict) -> None:
        state = dict(state)
        given = state.pop("_given_operand", None)
        expected = state.pop("_tm_check", None)
        self.__dict__.update(state)
        if given is not None:
            self._now[np] = given
        elif expected is not None and not np.array_equal(self._tm_sample(), expected):
            raise ValueError(f"ScatteringMedium (seed {self.seed}): the transmission matrix "
                             "regenerated from its seed differs from the pickled one: expected "
                             "the generator it was pickled with (photon.gaussian_matrix "
                             "changed since); rebuild the device instead of unpickling it")

    def _tm_sample(self) -> np.ndarray:
        """The first mirror row's first (up to) 8 entries of the time-zero TM, float32."""
        matrix = self._matrix(False, 0, 0)
        real, imag = matrix.block(0, 1, 0, min(8, matrix.n_cols))
        return np.concatenate([real[0], imag[0]])

    # ------------------------------------------------------------------ drift
    def advance(self, dt_s: float) -> None:
        """Let ``dt_s`` seconds pass: the TM drifts (a static medium only keeps time).

        Nothing is computed here: the TM now is built from its keyframes, on the
        frames' backend, by the next product that needs it. Keyframes out of use are
        dropped on every backend.
        """
        if not dt_s >= 0:  # also refuses NaN
            raise ValueError(f"dt_s = {dt_s!r}: expected a time step >= 0 seconds")
        self.elapsed_s += dt_s
        if self.storage != "dense" or self.drift_time_s is None:
            return
        m, _ = self._drift_position()
        for frames in self._keyframes.values():
            for keyframe in [k for k in frames if k not in (m, m + 1)]:
                del frames[keyframe]


def _complex(real, imag) -> np.ndarray:
    """``real + 1j imag`` as a complex64 host array."""
    return (np.asarray(real, np.float32) + 1j * np.asarray(imag, np.float32)).astype(np.complex64)


def _mix(first, second, a: float, out, xp):
    """``sqrt(1 - a) first + sqrt(a) second`` (float32) into ``out`` (allocated when None).

    Row chunks of about ``_MIX_CHUNK_BYTES`` keep the three operands in cache on the CPU
    (few launches on the GPU); each entry is rounded exactly as in the whole-array
    expression ``keep * first + fresh * second``.
    """
    keep, fresh = np.float32(math.sqrt(1.0 - a)), np.float32(math.sqrt(a))
    if out is None:
        out = xp.empty_like(first)
    rows, width = first.shape
    chunk = max(1, _MIX_CHUNK_BYTES[xp is np] // (4 * width))
    scratch = xp.empty((min(chunk, rows), width), np.float32)
    for r0 in range(0, rows, chunk):
        r1 = min(rows, r0 + chunk)
        part, term = out[r0:r1], scratch[:r1 - r0]
        xp.multiply(first[r0:r1], keep, out=part)
        xp.multiply(second[r0:r1], fresh, out=term)
        part += term
    return out
