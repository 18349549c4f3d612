"""One declaration per parameter, validated once; every bad configuration gets a clear error.

Part one: the configuration dataclasses (:mod:`photon.config`) are the only declaration
of the elements' parameters and validate themselves when built, however they are built;
the elements take a validated configuration and keep no second copy of its fields.
Part two: bad values (infinities, NaN, booleans or text for numbers) and bad YAML files
(empty, not a mapping, a key written twice, a non-string key, not UTF-8) are refused
with a :class:`ConfigError` naming the key, the value, what was expected and the file.
"""

import dataclasses
import inspect
import math

import numpy as np
import pytest

from photon import (DMD, Camera, CameraConfig, ConfigError, DeviceConfig, DMDConfig, Laser,
                    LaserConfig, MediumConfig, OpticalChain, Polarizer, PolarizerConfig,
                    ScatteringMedium, SimulationConfig, build_chain, dump_config, load_config)
from photon.config import config_from_dict
from photon.support.schema import to_mapping

SECTIONS = {"laser": LaserConfig, "dmd": DMDConfig, "medium": MediumConfig,
            "polarizer": PolarizerConfig, "camera": CameraConfig}
ELEMENTS = {"laser": Laser, "dmd": DMD, "medium": ScatteringMedium, "polarizer": Polarizer,
            "camera": Camera}


def _settings(cls):
    """``{name: declaration}`` of the :func:`setting` fields of a configuration class."""
    return {f.name: f.metadata["setting"] for f in dataclasses.fields(cls)
            if "setting" in f.metadata}


def _float_keys():
    """Every float setting of a device, as ``(section or None, name)``."""
    keys = [(None, name) for name, meta in _settings(DeviceConfig).items() if meta["kind"] is float]
    for field in dataclasses.fields(DeviceConfig):
        if dataclasses.is_dataclass(field.default):
            cls = type(field.default)
            keys += [(field.name, name) for name, meta in _settings(cls).items()
                     if meta["kind"] is float]
    return keys


def _write(tmp_path, text, name="device.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _assert_names(err, *parts):
    message = str(err)
    for part in parts:
        assert part in message, (part, message)
    assert "expected" in message, message


# ---------------------------------------------------------------- one declaration (part A)
@pytest.mark.parametrize("cls, field, value", [
    (CameraConfig, "read_noise_e", -5),
    (CameraConfig, "quantum_efficiency", 3),
    (CameraConfig, "adc_bits", 8.5),
    (LaserConfig, "power_mw", 0.0),
    (DMDConfig, "contrast", 0.5),
    (MediumConfig, "drift_time_s", -1.0),
    (PolarizerConfig, "extinction_ratio", 0.5),
    (SimulationConfig, "tm_storage", "ram"),
])
def test_a_config_built_in_code_validates_itself(cls, field, value):
    with pytest.raises(ConfigError) as info:
        cls(**{field: value})
    _assert_names(info.value, cls.__name__, f"'{field}'", repr(value))
    assert info.value.key == field and info.value.value == value


def test_replacing_a_field_validates_too():
    config = CameraConfig()
    with pytest.raises(ConfigError, match=r"'read_noise_e' = -1\.0: expected a finite number >= 0"):
        dataclasses.replace(config, read_noise_e=-1.0)
    with pytest.raises(ConfigError, match=r"'camera' = 'fast': expected a CameraConfig"):
        DeviceConfig(camera="fast")
    with pytest.raises(ConfigError, match=r"'n_in' = 786433: expected .* <= 786432 mirrors"):
        DeviceConfig(n_in=768 * 1024 + 1)


def test_values_are_normalized_to_the_declared_type():
    config = CameraConfig(read_noise_e=5, adc_bits=10.0, exposure_us=np.float32(50.0),
                          binning=np.int64(2), shot_noise=np.bool_(False))
    assert type(config.read_noise_e) is float and config.read_noise_e == 5.0
    assert type(config.adc_bits) is int and config.adc_bits == 10
    assert type(config.exposure_us) is float and type(config.binning) is int
    assert config.shot_noise is False
    assert config == CameraConfig(read_noise_e=5.0, adc_bits=10, exposure_us=50.0, binning=2,
                                  shot_noise=False)


@pytest.mark.parametrize("build, key, value", [
    (lambda: Camera.from_settings(16, read_noise_e=-5, quantum_efficiency=0.5), "read_noise_e",
     "-5"),
    (lambda: Camera.from_settings(16, quantum_efficiency=3), "quantum_efficiency", "3"),
    (lambda: Camera.from_settings(16, gain_dn_per_e=float("inf")), "gain_dn_per_e", "inf"),
    (lambda: Laser.from_settings(rin_rms=float("nan")), "rin_rms", "nan"),
    (lambda: DMD.from_settings(16, fill_factor=1.5), "fill_factor", "1.5"),
    (lambda: Polarizer.from_settings(extinction_ratio=0.1), "extinction_ratio", "0.1"),
    (lambda: ScatteringMedium.from_settings(16, 32, speckle_grain_px=-1.0), "speckle_grain_px",
     "-1.0"),
    (lambda: ScatteringMedium.from_settings(16, 32, tile_rows=0), "tile_rows", "0"),
    (lambda: ScatteringMedium.from_settings(16, 32, drift_time_s=math.inf), "drift_time_s", "inf"),
    (lambda: Camera.from_settings(16, shutter="global"), "shutter", "'global'"),
    (lambda: ScatteringMedium.from_settings(16, 32, storage="dense"), "storage", "'dense'"),
])
def test_an_element_refuses_an_out_of_range_setting(build, key, value):
    with pytest.raises(ConfigError) as info:
        build()
    _assert_names(info.value, f"'{key}'", f"= {value}")


@pytest.mark.parametrize("build, key", [
    (lambda: DMD(DMDConfig(rows=4, cols=4), 17), "n_in"),
    (lambda: DMD(DMDConfig(), 0), "n_in"),
    (lambda: Camera(CameraConfig(), 2.5), "n_out"),
    (lambda: ScatteringMedium(MediumConfig(), 8, True), "n_pixels"),
])
def test_element_sizes_are_checked_the_same_way(build, key):
    with pytest.raises(ConfigError) as info:
        build()
    _assert_names(info.value, f"'{key}'")


@pytest.mark.parametrize("name", sorted(ELEMENTS))
def test_an_element_takes_its_config_and_declares_none_of_its_fields(name):
    element_cls, config_cls = ELEMENTS[name], SECTIONS[name]
    fields = {f.name for f in dataclasses.fields(config_cls)}
    for method in (element_cls.__init__, element_cls.from_settings):
        assert not fields & set(inspect.signature(method).parameters), method
    with pytest.raises(TypeError, match="expected a"):
        element_cls(to_mapping(config_cls()), *([8] if name in ("dmd", "camera") else
                                                [8, 8] if name == "medium" else []))


@pytest.mark.parametrize("preset", ["ideal", "lab-bench", "datacenter-opu"])
def test_the_chain_elements_read_the_device_config_and_keep_no_copy(preset):
    chain = build_chain(preset, n_in=32, n_out=64)
    config = chain.config
    assert chain.laser.config is config.laser and chain.dmd.config is config.dmd
    assert chain.camera.config is config.camera and chain.medium.config is config.medium
    assert chain.medium.dmd is config.dmd and chain.medium.simulation is config.simulation
    if config.polarizer is not None:
        assert chain.polarizer.config is config.polarizer
    for name, element in (("laser", chain.laser), ("dmd", chain.dmd), ("medium", chain.medium),
                          ("camera", chain.camera)):
        fields = [f.name for f in dataclasses.fields(SECTIONS[name])]
        assert not set(fields) & set(vars(element)), (name, set(fields) & set(vars(element)))
        for field in fields:  # each setting reads through to the one configuration
            assert getattr(element, field) == getattr(element.config, field)
    assert not {"transmission", "sensor_pixels"} & set(vars(chain))
    assert chain.transmission == config.medium.transmission
    assert chain.sensor_pixels == config.camera.sensor_rows * config.camera.sensor_cols


def test_settings_are_read_only_and_the_exposure_is_set_through_the_config():
    camera = Camera.from_settings(16, exposure_us=100.0)
    with pytest.raises(AttributeError):
        camera.read_noise_e = 3.0
    camera.exposure_us = 50
    assert camera.config.exposure_us == 50.0 and type(camera.exposure_us) is float
    for bad in (-1.0, 0.0, float("nan"), float("inf"), True, "50"):
        with pytest.raises(ConfigError, match=r"'exposure_us' = .*: expected a finite number > 0"):
            camera.exposure_us = bad
    assert camera.exposure_us == 50.0


def test_polarizer_presets_are_configs():
    assert Polarizer.ideal().leak == 0.0 and Polarizer.ideal().n_polarizations == 1
    assert Polarizer.absent().leak == 1.0 and Polarizer.absent().n_polarizations == 2
    assert Polarizer(PolarizerConfig(extinction_ratio=100.0)).leak == pytest.approx(0.01)


def test_a_chain_refuses_a_medium_built_for_another_dmd():
    config = DeviceConfig(n_in=8, n_out=16, dmd=DMDConfig(macropixel_mirrors=2))
    chain = OpticalChain.from_config(config)
    medium = ScatteringMedium(config.medium, 8, 16, n_polarizations=chain.polarizer.n_polarizations)
    with pytest.raises(ValueError, match=r"medium.macropixel_mirrors = 1: expected the DMD's"):
        OpticalChain(chain.laser, chain.dmd, medium, chain.polarizer, chain.camera)


# ---------------------------------------------------------------- bad values (part B)
@pytest.mark.parametrize("section, name", _float_keys(),
                         ids=[f"{s}.{n}" if s else n for s, n in _float_keys()])
@pytest.mark.parametrize("text, shown", [(".inf", "inf"), ("-.inf", "-inf"), (".nan", "nan")])
def test_every_float_setting_must_be_finite(tmp_path, section, name, text, shown):
    body = f"{name}: {text}\n" if section is None else f"{section}:\n  {name}: {text}\n"
    path = _write(tmp_path, body)
    key = name if section is None else f"{section}.{name}"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    _assert_names(info.value, str(path), f"'{key}' = {shown}")
    assert info.value.key == key
    change = name if section is None else f"{section}__{name}"
    with pytest.raises(ConfigError, match=rf"'{key}' = {shown}: expected"):
        DeviceConfig().replace(**{change: float(shown)})


def test_an_infinite_read_noise_no_longer_reaches_the_camera():
    for key in ("camera__read_noise_e", "camera__gain_dn_per_e", "camera__dark_current_e_per_s"):
        with pytest.raises(ConfigError, match="expected a finite number"):
            build_chain("lab-bench", n_in=8, n_out=8, **{key: math.inf})


def test_null_only_where_declared_and_its_meaning_is_quoted(tmp_path):
    path = _write(tmp_path, "medium:\n  drift_time_s: .inf\n")
    with pytest.raises(ConfigError, match=r"or null for a static medium"):
        load_config(path)
    static = load_config(_write(tmp_path, "medium: {drift_time_s: null}\n"))
    assert static.medium.drift_time_s is None
    with pytest.raises(ConfigError, match=r"'camera.read_noise_e' = None: expected a finite"):
        load_config(_write(tmp_path, "camera: {read_noise_e: null}\n"))


@pytest.mark.parametrize("text, key, shown, extra", [
    ("camera:\n  exposure_us: true\n", "camera.exposure_us", "True", ""),
    ("n_in: yes\n", "n_in", "True", ""),
    ("camera:\n  adc_bits: false\n", "camera.adc_bits", "False", ""),
    ("laser:\n  power_mw: '25'\n", "laser.power_mw", "'25'", "1.0e+3"),
    ("laser:\n  power_mw: 1e3\n", "laser.power_mw", "'1e3'", "1.0e+3"),
    ("camera:\n  read_noise_e: ten\n", "camera.read_noise_e", "'ten'", ""),
    ("camera:\n  shot_noise: 'yes'\n", "camera.shot_noise", "'yes'", "true or false"),
    ("camera:\n  shot_noise: 1\n", "camera.shot_noise", "1", "true or false"),
    ("simulation:\n  tm_storage: 3\n", "simulation.tm_storage", "3", "'dense'"),
    ("name: 42\n", "name", "42", "a string"),
    ("camera: 5\n", "camera", "5", "a mapping"),
])
def test_booleans_and_text_are_not_numbers(tmp_path, text, key, shown, extra):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    _assert_names(info.value, str(path), f"'{key}' = {shown}", extra)


# ---------------------------------------------------------------- bad files (part B)
@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n", "~\n"])
def test_an_empty_file_is_refused(tmp_path, text):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError, match="empty document: expected a mapping") as info:
        load_config(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("text, shown", [("- 1\n- 2\n", "[1, 2]"), ("lab-bench\n", "'lab-bench'"),
                                          ("42\n", "42")])
def test_a_top_level_that_is_not_a_mapping_is_refused(tmp_path, text, shown):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    _assert_names(info.value, str(path), f"= {shown}", "a mapping")


@pytest.mark.parametrize("text, key, lines", [
    ("n_in: 8\nn_out: 8\nn_in: 16\n", "n_in", "lines 1 and 3"),
    ("camera:\n  read_noise_e: 1.0\n  gain_dn_per_e: 0.1\n  read_noise_e: 2.0\n",
     "camera.read_noise_e", "lines 2 and 4"),
    ("camera: {read_noise_e: 1.0}\nn_in: 4\ncamera: {gain_dn_per_e: 0.1}\n", "camera",
     "lines 1 and 3"),
    ("seeds: {tm: 1, tm: 1}\n", "seeds.tm", "line 1"),
])
def test_a_key_written_twice_is_refused(tmp_path, text, key, lines):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    _assert_names(info.value, str(path), f"'{key}' written twice", lines)


def test_a_merged_key_may_be_overridden(tmp_path):
    text = "camera:\n  <<: {read_noise_e: 1.0, gain_dn_per_e: 0.5}\n  read_noise_e: 2.0\n"
    camera = load_config(_write(tmp_path, text)).camera
    assert camera.read_noise_e == 2.0 and camera.gain_dn_per_e == 0.5


@pytest.mark.parametrize("text, shown, extra", [
    ("1: 2\nname: x\n", "key 1 = 2", ""),
    ("camera:\n  read_noise_e: 1.0\n  3.5: 1\n", "key camera.3.5 = 1", ""),
    ("camera:\n  yes: 3\n", "key camera.True = 3", "quote the key"),
    ("null: 3\n", "key None = 3", "quote the key"),
])
def test_a_non_string_key_is_refused(tmp_path, text, shown, extra):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    _assert_names(info.value, str(path), shown, "a string key", extra)


@pytest.mark.parametrize("data, shown", [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "offset 0 = 0x89"),
    ("name: caf\xe9\n".encode("latin-1"), "offset 9 = 0xe9"),
])
def test_a_binary_file_is_refused_naming_the_file(tmp_path, data, shown):
    path = tmp_path / "device.yaml"
    path.write_bytes(data)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    _assert_names(info.value, str(path), shown, "UTF-8")


def test_control_characters_and_broken_yaml_name_the_file(tmp_path):
    for data in (b"name: a\x00b\n", b"camera: {read_noise_e: 1.0\n"):
        path = tmp_path / "device.yaml"
        path.write_bytes(data)
        with pytest.raises(ConfigError, match="not valid YAML") as info:
            load_config(path)
        assert str(path) in str(info.value)


def test_config_errors_are_value_errors():
    assert issubclass(ConfigError, ValueError)


def test_a_valid_file_still_round_trips(tmp_path):
    config = DeviceConfig(n_in=64, n_out=128, camera=CameraConfig(read_noise_e=3))
    path = tmp_path / "ok.yaml"
    dump_config(config, path)
    assert load_config(path) == config


# ---------------------------------------------------------------- property-based
def _all_keys():
    """Every settable leaf of a device config, as dotted keys with their declarations."""
    keys = dict(_settings(DeviceConfig))
    for field in dataclasses.fields(DeviceConfig):
        if dataclasses.is_dataclass(field.default):
            for name, meta in _settings(type(field.default)).items():
                keys[f"{field.name}.{name}"] = meta
    return keys


KEYS = _all_keys()
CROSS_FIELD_KEYS = {"n_in", "n_out", "camera.black_offset_dn"}  # limits tying sections together


def _check_random_settings(flat: dict) -> None:
    """``flat`` (dotted keys) builds a valid DeviceConfig, or a ConfigError names the key."""
    mapping: dict = {}
    for key, value in flat.items():
        section, _, name = key.rpartition(".")
        (mapping.setdefault(section, {}) if section else mapping)[name] = value
    non_finite = [k for k, v in flat.items() if KEYS[k]["kind"] is float
                  and isinstance(v, float) and not math.isfinite(v)]
    try:
        config = config_from_dict(mapping, source="<random>")
    except ConfigError as err:
        message = str(err)
        assert err.key in flat or err.key in CROSS_FIELD_KEYS, (err.key, flat)
        assert message.startswith("<random>: ") and f"'{err.key}'" in message
        assert "expected" in message and repr(err.value)[:40] in message
        if err.key in flat:  # the value given (a cross-field limit quotes it normalized)
            assert err.value is flat[err.key] or err.value == flat[err.key]
        return
    assert not non_finite, non_finite  # every float setting is finite
    stored = to_mapping(config)
    for key, value in flat.items():
        section, _, name = key.rpartition(".")
        got = stored[section][name] if section else stored[name]
        assert got == value
        assert type(got) is (type(None) if value is None else KEYS[key]["kind"])
        if KEYS[key]["kind"] is not bool:
            assert not isinstance(value, bool)
    assert config_from_dict(stored) == config


def test_random_settings_build_a_valid_config_or_name_the_bad_key():
    """Random mappings of known keys to finite, infinite, NaN, negative, text, boolean and
    null values: a valid DeviceConfig, or a ConfigError naming the key at fault."""
    hypothesis = pytest.importorskip("hypothesis")  # the 'test' extra installs it
    st = hypothesis.strategies
    anything = st.one_of(
        st.floats(allow_nan=False, allow_infinity=False),
        st.floats(min_value=0.0, max_value=1.0),
        st.floats(min_value=1.0, max_value=5000.0),
        st.sampled_from([math.inf, -math.inf, math.nan, -1.0, 0.0]),
        st.integers(min_value=-3, max_value=2_000),
        st.booleans(),
        st.none(),
        st.text(max_size=6),
        st.sampled_from(["auto", "dense", "streamed", "float32", "bf16", "1e3"]),
    )

    def in_range(meta):  # values the declaration accepts: a fair share of valid examples
        kind, lo, hi = meta["kind"], meta["lo"], meta["hi"]
        if kind is bool:
            return st.booleans()
        if kind is str:
            return st.sampled_from(meta["choices"])
        if kind is int:
            return st.integers(min_value=lo, max_value=hi if hi is not None else lo + 64)
        return st.floats(min_value=lo, max_value=hi if hi is not None else lo + 1e4,
                         exclude_min=meta["lo_open"], exclude_max=meta["hi_open"])

    items = st.sampled_from(sorted(KEYS)).flatmap(
        lambda key: st.tuples(st.just(key), st.one_of(in_range(KEYS[key]), anything)))

    @hypothesis.settings(max_examples=200, deadline=None, database=None)
    @hypothesis.given(st.lists(items, max_size=6).map(dict))
    def check(flat):
        _check_random_settings(flat)

    check()


def test_camera_full_scale_is_derived_in_the_configuration():
    from photon.budget import exposure_for_mean_fraction
    from photon import resolve_config
    from photon.config import CameraConfig, adc_full_scale_dn
    assert CameraConfig(adc_bits=8).full_scale_dn == 255.0 == adc_full_scale_dn(8)
    assert CameraConfig(adc_bits=12).full_scale_dn == 4095.0
    analog = CameraConfig(adc_bits=None)
    assert analog.full_scale_dn is None and analog.full_scale_e is None
    camera = CameraConfig(adc_bits=10, black_offset_dn=23.0, gain_dn_per_e=0.5)
    assert camera.full_scale_e == pytest.approx((1023.0 - 23.0) / 0.5)
    # the exposure aims at the first limit: the ADC (2000 e-) before a 10,000 e- well
    config = resolve_config("lab-bench", n_in=10, n_out=64,
                            camera__adc_bits=10, camera__black_offset_dn=23.0,
                            camera__gain_dn_per_e=0.5)
    half = exposure_for_mean_fraction(config, fraction=0.5)
    quarter = exposure_for_mean_fraction(config, fraction=0.25)
    assert half == pytest.approx(2 * quarter)
    unlimited = config.replace(camera__full_well_e=None)
    assert exposure_for_mean_fraction(unlimited, fraction=0.5) == pytest.approx(half)
    deep = config.replace(camera__gain_dn_per_e=0.01)   # ADC range 100,000 e-: the well limits
    assert exposure_for_mean_fraction(deep, fraction=0.5) == pytest.approx(half * 10_000 / 2000)
