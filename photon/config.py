"""Device configuration: one validated dataclass per optical element.

A :class:`DeviceConfig` holds everything needed to build an optical chain: the
simulated sizes, the laser, the DMD, the scattering medium, the polarizer, the camera,
the seeds of every random stream and how the transmission matrix is stored. It loads
from and dumps to YAML (:func:`load_config`, :func:`dump_config`).

Each section dataclass is the one declaration of its element's parameters: type,
range, unit and default, through :func:`~photon.support.schema.setting`. Every instance
validates itself when it is built, in code (``CameraConfig(read_noise_e=5.0)``), by
:func:`dataclasses.replace`, by :meth:`DeviceConfig.replace` or from a file, and the
elements of :mod:`photon` take these validated configurations (``Camera(config, n_out)``)
rather than re-declaring their fields. Float settings are finite; ``null`` (``None``)
is legal only where a field says what it means.

Units are in the names: ``_nm``, ``_mw``, ``_us``, ``_s``, ``_hz``, ``_e`` (electrons),
``_dn`` (digital numbers), ``_px`` (camera pixels). Fractions are plain numbers in [0, 1].
"""

from __future__ import annotations

import dataclasses
import pathlib
from dataclasses import dataclass
from typing import Optional

import yaml

from .precision import TM_PRECISIONS
from .support.schema import ConfigError, Settings, from_mapping, setting, to_mapping

__all__ = [
    "adc_full_scale_dn",
    "LaserConfig",
    "DMDConfig",
    "MediumConfig",
    "PolarizerConfig",
    "CameraConfig",
    "SeedsConfig",
    "SimulationConfig",
    "DeviceConfig",
    "load_config",
    "dump_config",
    "config_from_dict",
    "UniqueKeyLoader",
]


@dataclass(frozen=True)
class LaserConfig(Settings):
    """Continuous-wave laser.

    ``rin_rms`` is the relative intensity noise: each frame's power is multiplied by
    ``1 + eps_t`` with ``eps_t`` ~ N(0, rin_rms^2), one common factor per frame.
    ``drift_rms`` and ``drift_time_s`` set a slow Ornstein-Uhlenbeck drift of the power
    (relative rms and correlation time). ``nd_filter_od`` is the optical density of a
    neutral-density attenuator in the beam (transmission 10^-OD).
    """

    wavelength_nm: float = setting(532.0, lo=200.0, hi=2000.0, unit="nm")
    power_mw: float = setting(25.0, lo=0.0, lo_open=True, hi=1e5, unit="mW")
    rin_rms: float = setting(0.0, lo=0.0, hi=0.5, unit="fraction rms")
    drift_rms: float = setting(0.0, lo=0.0, hi=0.5, unit="fraction rms")
    drift_time_s: float = setting(600.0, lo=0.0, lo_open=True, unit="s")
    nd_filter_od: float = setting(0.0, lo=0.0, hi=10.0, unit="optical density")


@dataclass(frozen=True)
class DMDConfig(Settings):
    """Digital micromirror device used as a binary amplitude modulator.

    ``contrast`` is the on/off intensity contrast; an off mirror leaks a field
    amplitude ``1/sqrt(contrast)`` (null: no leakage). ``macropixel_mirrors`` mirrors
    show the same input feature (its transmission-matrix row is the sum of theirs).
    ``held_on_mirrors`` mirrors outside the used region stay on and add a fixed
    reference field. ``fill_factor`` is the fraction of the incident power the mirror
    array reflects into the on-state direction. ``frame_rate_hz`` is the binary pattern
    rate the controller sustains; its period already holds the mirrors' reset and
    settling, so no settle time is added to it.
    """

    rows: int = setting(768, kind=int, lo=1, unit="mirrors")
    cols: int = setting(1024, kind=int, lo=1, unit="mirrors")
    fill_factor: float = setting(0.92, lo=0.0, lo_open=True, hi=1.0)
    contrast: Optional[float] = setting(1000.0, lo=1.0, unit="on/off intensity ratio",
                                        null_means="a perfect off state")
    frame_rate_hz: float = setting(22_727.0, lo=0.0, lo_open=True, unit="Hz")
    macropixel_mirrors: int = setting(1, kind=int, lo=1, unit="mirrors per feature")
    held_on_mirrors: int = setting(0, kind=int, lo=0, unit="mirrors")


@dataclass(frozen=True)
class MediumConfig(Settings):
    """Multiply scattering layer (TiO2) described by its transmission matrix.

    ``transmission`` is the fraction of the power leaving the DMD that the layer and the
    imaging optics deliver onto the camera sensor. ``drift_time_s`` is the decorrelation
    time tau of the TM (null: static): over a step dt the TM becomes
    ``sqrt(1 - a) T + sqrt(a) G`` with ``a = dt / tau``. ``speckle_grain_px`` is the
    rms radius, in camera (sensor) pixels, of the speckle grain (0: independent pixels);
    ``input_grain_mirrors`` the rms radius, in mirrors, of the blur with which the optics
    image the DMD onto the layer, which correlates neighbouring mirrors' TM columns (0:
    independent mirrors). See :mod:`photon.grain`.
    ``thickness_um`` documents the layer; the i.i.d. model holds for a layer many
    transport mean free paths thick.
    """

    transmission: float = setting(0.05, lo=0.0, lo_open=True, hi=1.0)
    thickness_um: float = setting(300.0, lo=0.0, lo_open=True, unit="um")
    drift_time_s: Optional[float] = setting(None, lo=0.0, lo_open=True, unit="s",
                                            null_means="a static medium")
    speckle_grain_px: float = setting(0.0, lo=0.0, hi=64.0, unit="pixels")
    input_grain_mirrors: float = setting(0.0, lo=0.0, hi=16.0, unit="mirrors")


@dataclass(frozen=True)
class PolarizerConfig(Settings):
    """Linear polarizer in front of the camera.

    ``extinction_ratio`` ER: the blocked polarization leaks ``eps = 1/ER`` of its
    intensity; null means an ideal polarizer (eps = 0). A device config with no
    polarizer section (null) lets both polarizations reach the camera (eps = 1).
    """

    extinction_ratio: Optional[float] = setting(100.0, lo=1.0, null_means="an ideal polarizer")


def adc_full_scale_dn(adc_bits: int) -> float:
    """Largest count of an ADC of ``adc_bits`` bits: ``2^adc_bits - 1`` DN."""
    return float(2 ** adc_bits - 1)


@dataclass(frozen=True)
class CameraConfig(Settings):
    """Camera following the EMVA 1288 linear model.

    Photons per pixel ``mu_p = P t lambda / (h c)`` for pixel power P and exposure t;
    photo-electrons Poisson with mean ``QE mu_p`` plus dark current; clipped at the full
    well; Gaussian read noise; converted with gain K (DN per electron) onto a black
    offset; rounded and clipped to ``[0, 2^adc_bits - 1]``. ``adc_bits`` null gives an
    ideal analog read-out (float DN, no rounding, no clipping) and ``full_well_e`` null
    an unlimited well. ``prnu_rms`` (photo-response non-uniformity, relative) and
    ``dsnu_e`` (dark-signal non-uniformity, electrons rms) are fixed per-pixel patterns.
    ``binning`` sums binning x binning sensor pixels in the charge domain.
    ``output_pitch_bins`` places the outputs every ``output_pitch_bins``-th binned pixel
    along a row and every ``output_pitch_bins``-th binned row (a sub-sampled read-out: the
    pixels between are not read), so that neighbouring outputs lie further apart than a
    speckle grain; 1 reads every binned pixel.
    Shot noise is drawn exactly (Poisson) below ``shot_noise_exact_below_e`` electrons
    and as a Gaussian of equal mean and variance above, where the two are
    indistinguishable after quantization.

    Read-out timing (:func:`photon.camera.readout`): the sensor reads a region of
    interest (ROI) of ``roi_rows`` full-width sensor rows, by default the fewest that
    hold the ``n_out`` outputs (:meth:`rows_read`). A frame takes
    ``frame_overhead_us + max(exposure_us, readout_us)`` with ``readout_us =
    rows_read * line_time_us + (sensor_rows - rows_read) * skipped_line_time_us``: a
    global shutter whose exposure of the next frame overlaps the read-out of this one.
    ``skipped_line_time_us`` is the time to clock a row outside the ROI through the
    sensor (a CCD's fast dump; 0 for a CMOS sensor that addresses its rows). The
    default sensor is a Sony ICX445 CCD as an Allied Vision Guppy PRO F-125 reads it
    (1292 x 964, 31.00 fps at full frame), the lab-bench camera.
    """

    sensor_rows: int = setting(964, kind=int, lo=1, unit="pixels")
    sensor_cols: int = setting(1292, kind=int, lo=1, unit="pixels")
    quantum_efficiency: float = setting(0.6, lo=0.0, lo_open=True, hi=1.0)
    exposure_us: float = setting(100.0, lo=0.0, lo_open=True, unit="us")
    dark_current_e_per_s: float = setting(0.0, lo=0.0, unit="e-/s")
    read_noise_e: float = setting(0.0, lo=0.0, unit="e- rms")
    full_well_e: Optional[float] = setting(10_000.0, lo=0.0, lo_open=True, unit="e-",
                                           null_means="an unlimited well")
    gain_dn_per_e: float = setting(0.0255, lo=0.0, lo_open=True, unit="DN/e-")
    black_offset_dn: float = setting(0.0, lo=0.0, unit="DN")
    adc_bits: Optional[int] = setting(8, kind=int, lo=1, hi=16, unit="bits",
                                      null_means="an analog read-out")
    prnu_rms: float = setting(0.0, lo=0.0, hi=0.5, unit="fraction rms")
    dsnu_e: float = setting(0.0, lo=0.0, unit="e- rms")
    binning: int = setting(1, kind=int, lo=1, hi=16, unit="pixels per side")
    output_pitch_bins: int = setting(1, kind=int, lo=1, hi=16,
                                     unit="binned pixels between neighbouring outputs")
    line_time_us: float = setting(33.19, lo=0.0, lo_open=True, unit="us per sensor row read")
    skipped_line_time_us: float = setting(5.03, lo=0.0, unit="us per sensor row outside the ROI")
    frame_overhead_us: float = setting(259.70, lo=0.0, unit="us per frame")
    roi_rows: Optional[int] = setting(None, kind=int, lo=1, unit="sensor rows",
                                      null_means="the fewest full-width rows holding n_out")
    shot_noise: bool = setting(True, kind=bool)
    shot_noise_exact_below_e: float = setting(50.0, lo=0.0, unit="e-")

    @property
    def full_scale_dn(self) -> float | None:
        """Largest count the ADC outputs, ``2^adc_bits - 1`` DN (None: an analog read-out)."""
        return None if self.adc_bits is None else adc_full_scale_dn(self.adc_bits)

    @property
    def full_scale_e(self) -> float | None:
        """Photo-electrons that take the output from the black offset to the ADC's full
        scale, ``(2^adc_bits - 1 - black_offset_dn) / gain_dn_per_e`` (None: analog)."""
        full_scale = self.full_scale_dn
        return None if full_scale is None else \
            (full_scale - self.black_offset_dn) / self.gain_dn_per_e

    def check(self, source: str = "CameraConfig") -> None:
        """Offset below the ADC's full scale, ROI on the sensor (run on construction)."""
        full_scale = self.full_scale_dn
        if full_scale is not None and self.black_offset_dn >= full_scale:
            raise ConfigError.invalid(
                "black_offset_dn", self.black_offset_dn,
                f"a value below the ADC full scale {full_scale:g} DN", source)
        if self.binning > min(self.sensor_rows, self.sensor_cols):
            raise ConfigError.invalid(
                "binning", self.binning, f"at most the sensor's {self.sensor_rows} x "
                f"{self.sensor_cols} pixels per side", source)
        if self.outputs_per_row < 1:
            raise ConfigError.invalid(
                "output_pitch_bins", self.output_pitch_bins, f"at most the sensor's "
                f"{self.sensor_cols // self.binning} binned pixels per row", source)
        if self.roi_rows is not None and self.roi_rows > self.sensor_rows:
            raise ConfigError.invalid(
                "roi_rows", self.roi_rows, f"at most the sensor's {self.sensor_rows} rows, or "
                "null for the fewest full-width rows holding n_out", source)

    @property
    def outputs_per_row(self) -> int:
        """Outputs along one sensor row: ``sensor_cols // (binning output_pitch_bins)``."""
        return self.sensor_cols // (self.binning * self.output_pitch_bins)

    def rows_needed(self, n_out: int) -> int:
        """Fewest full-width sensor rows that hold ``n_out`` outputs of ``binning^2`` pixels.

        A row of outputs holds :attr:`outputs_per_row` of them, and the rows of outputs
        lie ``binning output_pitch_bins`` sensor rows apart: ``k`` rows of outputs span
        ``((k - 1) output_pitch_bins + 1) binning`` sensor rows. It may exceed
        ``sensor_rows`` (then ``n_out`` does not fit).
        """
        per_row = self.outputs_per_row
        if per_row < 1:
            return self.sensor_rows + 1   # not one output fits along a row
        output_rows = -(-int(n_out) // per_row)
        return ((output_rows - 1) * self.output_pitch_bins + 1) * self.binning

    def rows_read(self, n_out: int) -> int:
        """Sensor rows the read-out covers for ``n_out`` outputs: ``roi_rows`` or the fewest.

        Raises
        ------
        ConfigError
            When ``n_out`` does not fit on the sensor, or not in ``roi_rows`` rows.
        """
        needed = self.rows_needed(n_out)
        if needed > self.sensor_rows:
            raise ConfigError.invalid(
                "n_out", n_out, f"outputs that fit in the sensor's {self.sensor_rows} rows of "
                f"{self.outputs_per_row} outputs (needs {needed} rows)",
                "CameraConfig")
        if self.roi_rows is None:
            return needed
        if self.roi_rows < needed:
            raise ConfigError.invalid(
                "roi_rows", self.roi_rows, f"at least the {needed} sensor rows that hold "
                f"n_out = {n_out} outputs of {self.binning} x {self.binning} pixels "
                f"({self.outputs_per_row} per row)", "CameraConfig")
        return self.roi_rows


@dataclass(frozen=True)
class SeedsConfig(Settings):
    """One seed per independent random stream."""

    tm: int = setting(0, kind=int, lo=0)
    tm_drift: int = setting(1, kind=int, lo=0)
    laser: int = setting(2, kind=int, lo=0)
    camera: int = setting(3, kind=int, lo=0)
    fixed_pattern: int = setting(4, kind=int, lo=0)


@dataclass(frozen=True)
class SimulationConfig(Settings):
    """How the transmission matrix is held in memory.

    ``tm_storage``: ``dense`` stores it, ``streamed`` regenerates it block by block from a
    counter-based seed on every acquisition, on the frames' backend (memory O(block +
    batch (n_in + n_out))), ``auto`` streams when the dense matrix would exceed
    ``max_dense_tm_mb``. ``tile_rows x tile_cols`` is the block size; it sets memory and
    speed, never the matrix: both storages and every block size give the same TM for the
    same seed. ``tm_precision`` (``float32``, ``tf32``, ``bf16``) rounds the TM's entries
    to that format, as a tensor-core GEMM reads them; binary frames stay exact
    (:mod:`photon.precision`).
    """

    tm_storage: str = setting("auto", kind=str, choices=("auto", "dense", "streamed"))
    max_dense_tm_mb: float = setting(2048.0, lo=0.0, lo_open=True, unit="MiB")
    tile_rows: int = setting(1024, kind=int, lo=1, unit="mirrors")
    tile_cols: int = setting(1024, kind=int, lo=1, unit="pixels")
    tm_precision: str = setting("float32", kind=str, choices=TM_PRECISIONS)


@dataclass(frozen=True)
class DeviceConfig(Settings):
    """A whole simulated OPU: sizes, elements, seeds and simulation settings.

    ``n_in`` is the number of input features (each on ``dmd.macropixel_mirrors``
    mirrors); ``n_out`` the number of camera output values (after binning).
    ``polarizer`` null means no polarizer. ``electrical_power_w`` is the wall-plug power
    of the whole device (laser, DMD, camera, control), for energy estimates.
    """

    name: str = "custom"
    description: str = ""
    electrical_power_w: float = setting(30.0, lo=0.0, lo_open=True, unit="W")
    n_in: int = setting(1024, kind=int, lo=1, unit="features")
    n_out: int = setting(1024, kind=int, lo=1, unit="camera pixels")
    laser: LaserConfig = LaserConfig()
    dmd: DMDConfig = DMDConfig()
    medium: MediumConfig = MediumConfig()
    polarizer: Optional[PolarizerConfig] = PolarizerConfig()
    camera: CameraConfig = CameraConfig()
    seeds: SeedsConfig = SeedsConfig()
    simulation: SimulationConfig = SimulationConfig()

    def check(self, source: str = "DeviceConfig") -> None:
        """Check the constraints that tie several sections together (run on construction).

        The used DMD region must fit on the mirror array, the outputs on the sensor and in
        the camera's region of interest (``camera.roi_rows``).

        Raises
        ------
        ConfigError
            Naming the key (``n_in``, ``n_out`` or ``camera.roi_rows``), its value and the
            limit.
        """
        mirrors = self.dmd.rows * self.dmd.cols
        used = self.n_in * self.dmd.macropixel_mirrors + self.dmd.held_on_mirrors
        if used > mirrors:
            raise ConfigError.invalid(
                "n_in", self.n_in, f"n_in * dmd.macropixel_mirrors + dmd.held_on_mirrors <= "
                f"{mirrors} mirrors of the {self.dmd.rows} x {self.dmd.cols} DMD (got {used})",
                source)
        pixels = self.camera.sensor_rows * self.camera.sensor_cols
        needed = self.n_out * self.camera.binning ** 2
        if needed > pixels:
            raise ConfigError.invalid(
                "n_out", self.n_out, f"n_out * camera.binning^2 <= {pixels} pixels of the "
                f"{self.camera.sensor_rows} x {self.camera.sensor_cols} sensor (got {needed})",
                source)
        try:
            self.camera.rows_read(self.n_out)
        except ConfigError as err:
            raise ConfigError.invalid(("camera." if err.key == "roi_rows" else "") + err.key,
                                      err.value, err.expected, source) from None

    def replace(self, **changes) -> "DeviceConfig":
        """Return a validated copy with top-level fields or ``section__field`` changed.

        Examples
        --------
        >>> cfg.replace(n_in=256, camera__read_noise_e=5.0)  # doctest: +SKIP
        """
        top = {}
        sections: dict[str, dict] = {}
        for key, value in changes.items():
            if "__" in key:
                section, name = key.split("__", 1)
                sections.setdefault(section, {})[name] = value
            else:
                top[key] = value
        mapping = to_mapping(self)
        for section, values in sections.items():
            if section not in mapping or not isinstance(mapping[section], dict):
                name = next(iter(values))
                sections_now = [k for k, v in mapping.items() if isinstance(v, dict)]
                raise ConfigError.invalid(
                    f"{section}__{name}", values[name], f"a field of a section present in "
                    f"{self.name} ({', '.join(sections_now)})", f"{self.name} (replace)")
            mapping[section].update(values)
        mapping.update({k: (to_mapping(v) if dataclasses.is_dataclass(v) else v)
                        for k, v in top.items()})
        return config_from_dict(mapping, source=f"{self.name} (replaced)")


def config_from_dict(mapping: dict, source: str = "<dict>") -> DeviceConfig:
    """Build a validated :class:`DeviceConfig` from a plain mapping (``{}``: the defaults).

    Raises
    ------
    ConfigError
        When ``mapping`` is not a mapping (``None`` included), or for any bad key or
        value, naming ``source``.
    """
    if not isinstance(mapping, dict):
        raise ConfigError.invalid("<top level>", mapping, "a mapping of keys to values (name, "
                                  "n_in, n_out, laser, ...)", source)
    return from_mapping(DeviceConfig, mapping, source)


class UniqueKeyLoader(yaml.SafeLoader):
    """A YAML ``SafeLoader`` that refuses a key written twice in one mapping.

    PyYAML keeps the last of two equal keys silently; a device file with
    ``read_noise_e`` twice is more likely a mistake than an override. Set ``source`` (the
    file name) before loading: the :class:`ConfigError` quotes it, with the dotted key
    and the lines of both occurrences. Keys merged in with ``<<`` may be overridden.
    """

    source = "<yaml>"

    def construct_document(self, node):
        self._check_unique_keys(node, "", set())
        return super().construct_document(node)

    def _check_unique_keys(self, node, prefix: str, seen_nodes: set) -> None:
        if id(node) in seen_nodes:  # an alias met again (or a recursive anchor)
            return
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            lines: dict = {}
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                if isinstance(key_node, yaml.ScalarNode):
                    key = self.construct_object(key_node)  # a scalar: hashable
                    label = f"{prefix}{key}"
                    first = lines.get(key)
                    line = key_node.start_mark.line + 1
                    if first is not None:
                        where = (f"line {line}" if first == line
                                 else f"lines {first} and {line}")
                        raise ConfigError(
                            f"{self.source}: key '{label}' written twice ({where}): expected "
                            "each key once per section",
                            key=label, value=getattr(value_node, "value", None)
                            if isinstance(value_node, yaml.ScalarNode) else None,
                            expected="each key once per section", source=self.source)
                    lines[key] = line
                    child_prefix = f"{label}."
                else:
                    child_prefix = prefix
                self._check_unique_keys(value_node, child_prefix, seen_nodes)
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                self._check_unique_keys(item, prefix, seen_nodes)


def load_config(path: str | pathlib.Path) -> DeviceConfig:
    """Load and validate a device configuration from a YAML file.

    The file must be UTF-8 YAML text whose top level is a mapping (an empty file is
    refused rather than read as the default device) with each key written once.

    Raises
    ------
    ConfigError
        Naming the file and, where one is at fault, the key, its value and what was
        expected.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise ConfigError(f"path = '{path}': expected an existing YAML file")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"{path}: byte at offset {err.start} = {data[err.start]:#04x}: expected UTF-8 text "
            "(a YAML device configuration)", source=str(path)) from None
    try:
        loader = UniqueKeyLoader(text)  # the reader already refuses control characters
        loader.source = str(path)
        try:
            mapping = loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}", source=str(path)) from None
    if mapping is None:
        raise ConfigError(f"{path}: top level = empty document: expected a mapping of keys to "
                          "values (name, n_in, n_out, laser, dmd, medium, polarizer, camera, "
                          "...)", source=str(path))
    return config_from_dict(mapping, source=str(path))


def dump_config(config: DeviceConfig, path: str | pathlib.Path | None = None) -> str:
    """Return ``config`` as YAML text, also writing it to ``path`` when given."""
    text = yaml.safe_dump(to_mapping(config), sort_keys=False)
    if path is not None:
        pathlib.Path(path).write_text(text, encoding="utf-8")
    return text
