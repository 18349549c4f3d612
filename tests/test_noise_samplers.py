"""The fast noise samplers draw the exact laws (photon.noise_samplers, photon.camera).

Each check is a goodness-of-fit test of a sample against the exact law, or of the fast
camera's counts against counts drawn with NumPy's exact samplers from the camera model,
at a family-wise false-alarm rate ALPHA (Bonferroni over the checks of one test). Each
test also shows that it fails on a sampler with an injected fault.
"""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
from scipy import special, stats

from photon import Camera
from photon.noise_samplers import FastNoise, box_muller_normals, poisson_alias_tables

ALPHA = 1e-6


def normal_law_violations(z: np.ndarray, alpha: float = ALPHA) -> list[str]:
    """Checks of ``z`` against N(0, 1) that fail at family-wise level ``alpha``.

    KS distance (Kolmogorov's law for the sample size), mean, variance, excess kurtosis
    (their normal-theory standard errors), and the counts beyond 3 and 4 standard
    deviations (binomial). Returns the names of the failed checks.
    """
    z = np.asarray(z, np.float64)
    n = z.size
    checks = 6
    zcrit = stats.norm.isf(alpha / (2 * checks))
    failed = []
    d = stats.kstest(z, "norm").statistic
    if d > stats.kstwo.isf(alpha / checks, n):
        failed.append("ks")
    if abs(z.mean()) > zcrit / math.sqrt(n):
        failed.append("mean")
    if abs(z.var() - 1.0) > zcrit * math.sqrt(2.0 / n):
        failed.append("variance")
    if abs(stats.kurtosis(z)) > zcrit * math.sqrt(24.0 / n):
        failed.append("kurtosis")
    for k in (3.0, 4.0):
        p = 2 * special.ndtr(-k)
        count = int((np.abs(z) > k).sum())
        if abs(count - n * p) > zcrit * math.sqrt(n * p * (1 - p)) + 1:
            failed.append(f"tail>{k:g}")
    return failed


def poisson_law_violations(x: np.ndarray, lam: float, alpha: float) -> list[str]:
    """Chi-square test of counts ``x`` against Poisson(``lam``) (cells of expectation >= 5)."""
    n = x.size
    if lam == 0:
        return [] if not np.any(x) else ["nonzero"]
    top = int(stats.poisson.isf(1e-9, lam)) + 2
    edges = np.arange(top + 1)
    expected = np.diff(np.concatenate([[0.0], stats.poisson.cdf(edges[:-1], lam), [1.0]])) * n
    observed = np.bincount(np.minimum(x.astype(np.int64), top), minlength=top + 1)[:top + 1]
    # Pool the low and high tails until every cell expects at least 5 counts.
    cells_e, cells_o, acc_e, acc_o = [], [], 0.0, 0
    for e, o in zip(expected, observed):
        acc_e, acc_o = acc_e + e, acc_o + o
        if acc_e >= 5:
            cells_e.append(acc_e)
            cells_o.append(acc_o)
            acc_e, acc_o = 0.0, 0
    cells_e[-1] += acc_e
    cells_o[-1] += acc_o
    cells_e, cells_o = np.array(cells_e), np.array(cells_o)
    if cells_e.size < 2:
        return []
    chi2 = float(((cells_o - cells_e) ** 2 / cells_e).sum())
    return ["chi2"] if chi2 > stats.chi2.isf(alpha, cells_e.size - 1) else []


# --------------------------------------------------------------------------- normals
def _normals(n=1 << 19, seed=7):
    return FastNoise(seed).standard_normal(n).copy()


def test_box_muller_normals_follow_the_standard_normal_law():
    assert normal_law_violations(_normals()) == []
    # Block draws, direct draws and two-thread draws alike.
    stream = FastNoise(11)
    parts = [stream.standard_normal(n) for n in (1000, 70000, 200000, 1 << 20)]
    assert normal_law_violations(np.concatenate(parts)) == []


@pytest.mark.parametrize("fault, check", [
    (lambda z: 1.01 * z, "variance"),                      # 1 % too wide
    (lambda z: np.clip(z, -3.0, 3.0), "tail>3"),           # tails cut at 3 sigma
    (lambda z: np.where(np.arange(z.size) % 10 == 0, np.abs(z), z), "mean"),  # skewed
])
def test_the_normal_test_fails_on_a_faulty_sampler(fault, check):
    assert check in normal_law_violations(fault(_normals()))


def test_the_normal_stream_depends_on_the_seed_and_calls_only():
    a, b = FastNoise(3), FastNoise(3)
    for n in (10, 90000, 131072, 5, 300000):
        np.testing.assert_array_equal(a.standard_normal(n), b.standard_normal(n))
    assert not np.array_equal(FastNoise(4).standard_normal(100), FastNoise(3).standard_normal(100))
    # A pickled copy continues the same stream (a block drawn ahead is completed first).
    c = pickle.loads(pickle.dumps(a))
    np.testing.assert_array_equal(a.standard_normal(50000), c.standard_normal(50000))
    np.testing.assert_array_equal(a.poisson(np.full(300, 7.5), 50.0),
                                  c.poisson(np.full(300, 7.5), 50.0))


def test_box_muller_fills_what_it_is_given():
    out = np.full(7, np.nan, np.float32)
    box_muller_normals(np.random.SFC64(0), 7, out)
    assert np.isfinite(out).all() and out.dtype == np.float32


# --------------------------------------------------------------------------- Poisson
MEANS = (0.0, 0.13, 0.9, 3.37, 9.99, 10.01, 24.75, 49.9)


def test_alias_poisson_counts_follow_the_poisson_law():
    stream = FastNoise(5)
    for lam in MEANS:
        x = stream.poisson(np.full(1 << 16, lam, np.float32), 50.0)
        assert x.dtype == np.float32
        assert poisson_law_violations(x, lam, ALPHA / len(MEANS)) == [], lam
    # Mixed means in one call: each count against its own law, through the CDF's
    # randomized probability integral transform (uniform when the law is right).
    rng = np.random.default_rng(1)
    lam = rng.uniform(0, 50, 1 << 17)
    x = stream.poisson(lam.astype(np.float32), 50.0).astype(np.int64)
    lam = lam.astype(np.float32).astype(np.float64)
    v = rng.random(lam.size)
    u = stats.poisson.cdf(x - 1, lam) + v * stats.poisson.pmf(x, lam)
    assert stats.kstest(u, "uniform").pvalue > ALPHA


def test_the_poisson_test_fails_on_a_faulty_sampler(monkeypatch):
    import photon.noise_samplers as samplers

    stream = FastNoise(5)
    # The remainder below the grid dropped: Poisson(0.75) where Poisson(0.9) is due.
    monkeypatch.setattr(samplers, "_poisson_by_inversion",
                        lambda lam, u: np.zeros(lam.size, np.int32))
    x = stream.poisson(np.full(1 << 16, 0.9, np.float32), 50.0)
    assert poisson_law_violations(x, 0.9, ALPHA) == ["chi2"]
    monkeypatch.undo()
    # Alias columns shifted by one.
    tables = poisson_alias_tables(50.0)
    monkeypatch.setattr(tables, "alias", np.minimum(tables.alias + 1, tables.columns - 1))
    x = stream.poisson(np.full(1 << 16, 24.75, np.float32), 50.0)
    assert poisson_law_violations(x, 24.75, ALPHA) == ["chi2"]


def test_alias_tables_hold_every_count_above_float64_resolution():
    tables = poisson_alias_tables(50.0)
    assert stats.poisson.sf(tables.columns - 1, 49.75) < 2.0 ** -60
    assert tables.keep.min() >= 0 and tables.keep.max() <= 1


# --------------------------------------------------------------------------- camera
LEVELS_E = (0.0, 4.0, 33.0, 49.5, 50.5, 400.0, 9200.0, 9800.0)


def _camera(**settings):
    base = dict(quantum_efficiency=0.6, exposure_us=100.0, dark_current_e_per_s=0.0,
                read_noise_e=10.0, full_well_e=10000.0, gain_dn_per_e=0.0255,
                black_offset_dn=2.0, adc_bits=8, prnu_rms=0.0, dsnu_e=0.0, binning=1,
                shot_noise=True, shot_noise_exact_below_e=50.0)
    base.update(settings)
    return Camera.from_settings(len(LEVELS_E) * 4096, noise_seed=3, **base)


def _model_counts(camera, mu, rng, read_scale=1.0):
    """Counts of the documented model drawn with NumPy's exact samplers."""
    limit = camera.shot_noise_exact_below_e
    full = camera.full_well_e
    shot = np.where(mu < limit, rng.poisson(mu),
                    mu + np.sqrt(mu) * rng.standard_normal(mu.shape))
    near_full = mu > (math.sqrt(9.0 + full) - 3.0) ** 2
    shot = np.where(near_full, np.clip(shot, 0, full), shot)
    electrons = shot + read_scale * camera.read_noise_e * rng.standard_normal(mu.shape)
    counts = np.rint(electrons * camera.gain_dn_per_e + camera.black_offset_dn)
    return np.clip(counts, 0, camera.full_scale_dn)


def _two_sample_failures(a, b, alpha):
    """Levels whose count histograms differ (chi-square, cells with >= 10 counts pooled)."""
    failed = []
    for level, (x, y) in enumerate(zip(a, b)):
        values = np.union1d(x, y)
        cx = np.array([(x == v).sum() for v in values], float)
        cy = np.array([(y == v).sum() for v in values], float)
        keep = (cx + cy) >= 10
        cx = np.append(cx[keep], cx[~keep].sum())
        cy = np.append(cy[keep], cy[~keep].sum())
        if cx[-1] + cy[-1] == 0:
            cx, cy = cx[:-1], cy[:-1]
        if cx.size < 2:
            if not np.array_equal(np.unique(x), np.unique(y)):
                failed.append(level)
            continue
        table = np.stack([cx, cy])
        chi2, _, dof, _ = stats.chi2_contingency(table, correction=False)
        if chi2 > stats.chi2.isf(alpha, dof):
            failed.append(level)
    return failed


@pytest.mark.parametrize("read_scale", [1.0, 1.15])
def test_the_fast_camera_draws_the_counts_of_the_exact_model(read_scale):
    """Poisson, merged-Gaussian and near-full-well pixels against NumPy's exact samplers.

    With ``read_scale = 1.15`` the reference's read noise is 15 % too large: the test must
    then fail (a fault it can see), at the dark and Poisson levels at least.
    """
    camera = _camera()
    mu = np.repeat(np.array(LEVELS_E, np.float32), 4096)
    watts = mu / camera.electrons_per_watt(532.0)
    fast = camera(watts[None, :].astype(np.float32), 532.0)[0].astype(np.float64)
    model = _model_counts(camera, mu.astype(np.float64), np.random.default_rng(9), read_scale)
    failed = _two_sample_failures(fast.reshape(len(LEVELS_E), -1),
                                  model.reshape(len(LEVELS_E), -1), ALPHA / len(LEVELS_E))
    if read_scale == 1.0:
        assert failed == []
    else:
        assert {0, 1} <= set(failed)
