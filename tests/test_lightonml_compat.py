"""The lightonml migration module: same names and meanings, any device."""

import numpy as np
import pytest

from devices.lightonml_compat import (BinaryThresholdEncoder, MultiThresholdEncoder, OPU,
                                      SeparatedBitPlanDecoder, SeparatedBitPlanEncoder)

# The lightonml user's script of docs/lightonml.md, as written for lightonml.
LIGHTONML_SCRIPT = """\
import numpy as np
from lightonml import OPU
from lightonml.encoding.base import SeparatedBitPlanEncoder, SeparatedBitPlanDecoder

X = np.random.default_rng(0).normal(size=(200, 100)).astype(np.float32)
X_bin = (X > 0).astype(np.uint8)
opu = OPU(n_components=1000, max_n_features=100, simulated=True)
opu.fit1d(X_bin)
Y = opu.transform(X_bin)
Y_lin = opu.linear_transform(X, encoder_cls=SeparatedBitPlanEncoder,
                             decoder_cls=SeparatedBitPlanDecoder)
"""
IMPORTS_HERE = ("from devices.lightonml_compat import OPU, SeparatedBitPlanEncoder, "
                "SeparatedBitPlanDecoder\n")


def test_the_lightonml_script_runs_with_its_import_lines_changed():
    lines = LIGHTONML_SCRIPT.splitlines(keepends=True)
    assert lines[1].startswith("from lightonml import") and "lightonml" in lines[2]
    script = "".join([lines[0], IMPORTS_HERE] + lines[3:])
    namespace = {}
    exec(compile(script, "lightonml_script.py", "exec"), namespace)
    X, X_bin, Y, Y_lin, opu = (namespace[k] for k in ("X", "X_bin", "Y", "Y_lin", "opu"))
    assert Y.shape == Y_lin.shape == (200, 1000)
    # transform: |R x|^2 with E|R_ij|^2 = 1/n_features (the toolkit's scale)
    assert Y.mean() == pytest.approx(X_bin.mean(), rel=0.05)
    # linear_transform: M x_q / sqrt(n_features), M unit-variance and unbiased (the
    # complement identity's mean column drawn: no zero-row-sum constraint)
    M = np.asarray(opu.operator.effective_matrix(), np.float64)
    expected = X @ M.T / np.sqrt(100)
    step = np.abs(X).max() / (2 ** 6 - 1)
    assert np.abs(Y_lin - expected).max() < 3 * step * np.abs(M).sum(axis=1).max() / 10
    assert np.corrcoef(Y_lin.ravel(), expected.ravel())[0, 1] > 0.999


def test_intensity_scale_toolkit_or_lightonml():
    x = (np.random.default_rng(1).random((400, 50)) < 0.5).astype(np.uint8)
    toolkit = OPU(512, max_n_features=200, simulated=True)
    toolkit.fit1d(x)
    ours = toolkit.transform(x)
    lighton = OPU(512, max_n_features=200, simulated=True, intensity_scale="lightonml")
    lighton.fit1d(x)
    theirs = lighton.transform(x)
    np.testing.assert_allclose(theirs, ours * (2 * 50 / 200), rtol=1e-6)
    # lightonml's SimulatedOpuDevice: re and im parts of std 1/sqrt(max_n_features); the
    # toolkit's scale is set on the measured all-on level (within ~1/sqrt(n_components))
    rng = np.random.RandomState(0)
    R = (rng.normal(0, 1 / np.sqrt(200), (200, 512))
         + 1j * rng.normal(0, 1 / np.sqrt(200), (200, 512))).astype(np.complex64)
    simulated = np.abs(x @ R[:50]) ** 2
    assert theirs.mean() == pytest.approx(simulated.mean(), rel=0.1)
    assert ours.mean() == pytest.approx(x.sum(axis=1).mean() / 50, rel=0.1)


def test_2d_packed_single_and_batched_inputs_agree():
    rng = np.random.default_rng(2)
    images = (rng.random((6, 4, 5)) < 0.5).astype(np.uint8)
    opu = OPU(32, max_n_features=20, simulated=True)
    opu.fit2d(images)
    y2d = opu.transform(images)
    assert y2d.shape == (6, 32)
    assert opu.transform(images[0]).shape == (32,)
    np.testing.assert_array_equal(opu.transform(images[0]), y2d[0])
    flat = images.reshape(6, 20)
    opu.fit1d(flat)
    np.testing.assert_array_equal(opu.transform(flat), y2d)
    np.testing.assert_array_equal(opu.transform(flat.reshape(2, 3, 20)).reshape(6, 32), y2d)
    packed = np.packbits(flat, axis=-1)  # (6, 3): 24 bits, 20 used
    opu.fit1d(packed, n_features=20, packed=True)
    np.testing.assert_array_equal(opu.transform(packed), y2d)
    lin = opu.linear_transform(packed)  # lightonml refuses packed here; this works
    opu.fit1d(flat)
    np.testing.assert_allclose(lin, opu.linear_transform(flat), rtol=1e-5, atol=1e-5)
    opu.fit2d(packed, n_features=(4, 5), packed=True)
    np.testing.assert_array_equal(opu.transform(packed), y2d)
    assert opu.fit_transform1d(flat).shape == (6, 32)
    assert opu.fit_transform2d(images).shape == (6, 32)


def test_real_inputs_are_refused_not_cast():
    opu = OPU(16, max_n_features=8, simulated=True)
    opu.fit1d(n_features=8)
    with pytest.raises(ValueError, match="X"):
        opu.transform(np.full((2, 8), 0.7))
    with pytest.raises(ValueError, match="expected"):
        opu.linear_transform(np.full((2, 8), 3.0))
    with pytest.raises(ValueError, match="as fitted"):
        opu.transform(np.ones((2, 7), np.uint8))


def test_rescale_modes_and_context_manager():
    x = (np.random.default_rng(3).random((10, 40)) < 0.5).astype(np.uint8)
    out = {}
    for rescale in ("none", "variance", "norm"):
        with OPU(25, max_n_features=40, simulated=True, rescale=rescale,
                 open_at_init=False) as opu:
            opu.fit1d(x)
            out[rescale] = opu.linear_transform(x)
        with pytest.raises(RuntimeError, match="active"):
            opu.transform(x)
    np.testing.assert_allclose(out["variance"], out["none"] / np.sqrt(40), rtol=1e-5)
    np.testing.assert_allclose(out["norm"], out["none"] / 5, rtol=1e-5)
    with pytest.raises(ValueError, match="rescale = 'l2'"):
        OPU(4, max_n_features=4, simulated=True, rescale="l2")
    with pytest.raises(ValueError, match="intensity_scale"):
        OPU(4, max_n_features=4, simulated=True, intensity_scale="camera")


def test_any_device_and_resizing():
    opu = OPU(48, max_n_features=16, device="lab-bench", seed=1)
    x = (np.random.default_rng(4).random((5, 16)) < 0.5).astype(np.uint8)
    opu.fit1d(x)
    assert opu.transform(x).shape == (5, 48)
    assert opu.device.name == "lab-bench"
    opu.n_components = 24
    opu.fit1d(x)
    assert opu.transform(x).shape == (5, 24)
    with pytest.raises(ValueError, match="max_n_features"):
        opu.fit1d(n_features=17)


def test_bit_plane_encoder_and_decoder_round_trip():
    X = np.random.default_rng(5).normal(size=(7, 9))
    enc = SeparatedBitPlanEncoder(precision=6)
    planes = enc.transform(X)
    assert planes.shape == (2 * 7 * 6, 9) and planes.dtype == np.uint8
    decoded = SeparatedBitPlanDecoder(**enc.get_params()).transform(planes)
    step = max(X.max(), -X.min()) / (2 ** 6 - 1)
    assert np.abs(decoded - X).max() <= step
    positive = np.abs(X)
    planes = enc.transform(positive)
    assert planes.shape == (7 * 6, 9)
    assert np.abs(SeparatedBitPlanDecoder(**enc.get_params()).transform(planes) - positive).max() \
        <= positive.max() / 63
    with pytest.raises(RuntimeError, match="precision"):
        SeparatedBitPlanEncoder(n_bits=8)


def test_multi_threshold_encoder_matches_lightonml_semantics():
    X = np.array([[0.0, 10.0], [1.0, 20.0], [2.0, 30.0], [3.0, 40.0]])
    shared = MultiThresholdEncoder("linspace", n_bins=4).fit(X)
    np.testing.assert_allclose(shared.thresholds, [10, 20, 30])
    enc = shared.transform(X)
    assert enc.shape == (4, 6)
    np.testing.assert_array_equal(enc[:, :2], X > 10)  # block k = threshold k, all features
    per_column = MultiThresholdEncoder("quantiles", n_bins=2, columnwise=True).fit(X)
    np.testing.assert_allclose(per_column.thresholds[:, 0], [1.5, 25.0])
    np.testing.assert_array_equal(per_column.transform(X), X > [1.5, 25.0])
    fixed = MultiThresholdEncoder([[0.5, 2.5], [15, 35]], columnwise=True)
    assert fixed.n_bins == 3 and fixed.transform(X).shape == (4, 4)
    with pytest.raises(ValueError, match="columnwise"):
        MultiThresholdEncoder([1, 2], columnwise=True)
    binar = BinaryThresholdEncoder().fit(X)
    np.testing.assert_array_equal(binar.transform(X), X > np.median(X, axis=0))


def test_intensity_through_the_multi_threshold_encoder():
    X = np.random.default_rng(6).normal(size=(30, 10))
    enc = MultiThresholdEncoder("quantiles", n_bins=4, columnwise=True).fit(X)
    opu = OPU(64, max_n_features=30, simulated=True)
    opu.fit1d(enc.transform(X))
    assert opu.transform(X, encoder_cls=enc).shape == (30, 64)


def test_torch_tensors_in_torch_tensors_out():
    torch = pytest.importorskip("torch")
    x = (np.random.default_rng(7).random((4, 12)) < 0.5).astype(np.uint8)
    opu = OPU(8, max_n_features=12, simulated=True)
    opu.fit1d(torch.from_numpy(x))
    out = opu.transform(torch.from_numpy(x))
    assert isinstance(out, torch.Tensor)
    np.testing.assert_array_equal(out.numpy(), opu.transform(x))
