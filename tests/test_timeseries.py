"""Warm-up detection and decorrelation against AR(1) facts and against pymbar's timeseries module."""

import math
import subprocess
import sys

import numpy as np
import pytest

from eqfree import timeseries
from eqfree._pymbar import import_pymbar, pymbar_available

pymbar = import_pymbar() if pymbar_available() else None
needs_pymbar = pytest.mark.skipif(pymbar is None, reason="pymbar is not installed (pip install 'eqfree[md]')")


def ar1(length: int, walkers: int, phi: float, seed: int) -> np.ndarray:
    """Stationary x_{t+1} = φ x_t + ε_t, ε ~ N(0, 1), shape (time, walker); exact g = (1 + φ)/(1 − φ)."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(size=(length, walkers))
    x = np.empty((length, walkers))
    x[0] = noise[0] / math.sqrt(1 - phi**2)
    for t in range(1, length):
        x[t] = phi * x[t - 1] + noise[t]
    return x


@pytest.mark.parametrize("walkers", [1, 8])
def test_ar1_inefficiency_is_exact_within_estimator_error(walkers):
    phi, length = 0.8, 40_000 // walkers
    x = ar1(length, walkers, phi, seed=walkers)
    g = timeseries.statistical_inefficiency(x[:, 0] if walkers == 1 else x, method="eqfree")
    exact = (1 + phi) / (1 - phi)
    # Sokal: var(g)/g² ≈ 2(2M + 1)/N for a window of M lags (M ≲ 40 here), plus the truncated tail 2φ^M/(1−φ)
    relative_sd = math.sqrt(2 * (2 * 40 + 1) / x.size)
    assert abs(g - exact) < 4 * relative_sd * exact, (g, exact)


@needs_pymbar
def test_fft_inefficiency_equals_pymbar():
    single = ar1(5000, 1, 0.7, seed=3)[:, 0]
    several = ar1(1500, 6, 0.9, seed=4)
    assert timeseries.statistical_inefficiency(single, method="eqfree") == pytest.approx(
        pymbar.timeseries.statistical_inefficiency(single), rel=1e-10)
    assert timeseries.statistical_inefficiency(several, method="eqfree") == pytest.approx(
        pymbar.timeseries.statistical_inefficiency_multiple(several.T), rel=1e-10)
    assert timeseries.statistical_inefficiency(several, method="pymbar") == pytest.approx(
        timeseries.statistical_inefficiency(several, method="eqfree"), rel=1e-10)


def with_transient(length, walkers, amplitude, decay, seed):
    phi = 0.8
    return ar1(length, walkers, phi, seed) + amplitude * np.exp(-np.arange(length) / decay)[:, None], phi


@needs_pymbar
def test_warmup_equals_pymbar_detect_equilibration():
    x = with_transient(1500, 1, 8.0, 60.0, seed=5)[0][:, 0]
    mine = timeseries.detect_warmup(x, nskip=5, method="eqfree")
    start, g, n_effective = pymbar.timeseries.detect_equilibration(x, fast=False, nskip=5)
    assert mine.start == start
    assert mine.inefficiency == pytest.approx(g, rel=1e-6)  # pymbar stores g in float32
    # pymbar counts T − t0 + 1 samples from t0 on; eqfree counts T − t0
    assert mine.n_effective == pytest.approx(n_effective * (x.size - start) / (x.size - start + 1), rel=1e-6)
    assert timeseries.detect_warmup(x, nskip=5, method="pymbar") == pytest.approx(tuple(mine), rel=1e-10)


@needs_pymbar
@pytest.mark.parametrize("walkers", [1, 10])
def test_warmup_starts_after_the_transient_has_decayed_below_the_noise(walkers):
    amplitude, decay, length = 10.0, 100.0, 4000
    x, phi = with_transient(length, walkers, amplitude, decay, seed=7)
    noise_sd = 1 / math.sqrt(1 - phi**2)
    warmup = timeseries.detect_warmup(x[:, 0] if walkers == 1 else x, method="eqfree")
    kept = walkers * (length - warmup.start)
    # The property warm-up detection promises: the transient left in the kept tail biases its mean by
    # A τ (e^{−t0/τ} − e^{−T/τ}) / (T − t0), small against the mean's standard error σ (g / kept)^½.
    # Maximizing N_eff trades bias for variance and keeps up to ~2 SE (over 300 seeds: at most 0.97 SE for
    # one walker, 2.07 for ten); bound 3 SE.
    exact_g = (1 + phi) / (1 - phi)
    bias = amplitude * decay * (math.exp(-warmup.start / decay) - math.exp(-length / decay)) / (length - warmup.start)
    # (bound derived in the comment above: 3 SE of the kept tail's mean, σ√(g/kept))
    assert bias < 3 * noise_sd * math.sqrt(exact_g / kept), (warmup.start, bias)
    # and it keeps most of the run: past t0 = 5τ the transient is < 1 % of σ, and a later start wins only
    # through noise in g (relative sd ≤ 0.21 below); losing half the data would need g off by 2.4 sd
    assert warmup.start < length / 2
    # Sokal: relative sd of g ≈ √(2(2M + 1)/N) over the N kept samples, M the cut-off lag (median 21 for one
    # walker, 28 for ten over 300 seeds; M = 30 here), plus a bias bound 0.05 (left-over transient: measured
    # mean +0.02; truncation 2φ^M/((1 − φ) g) < 0.002). Old bound rel = 0.25 was 1.8 sd at one walker and
    # failed for 6 % of seeds (measured, 300 seeds: 0 % now).
    relative_sd = math.sqrt(2 * (2 * 30 + 1) / kept)
    assert abs(warmup.inefficiency / exact_g - 1) < 4 * relative_sd + 0.05, (warmup.inefficiency, relative_sd)
    assert warmup.n_effective == pytest.approx(walkers * (length - warmup.start) / warmup.inefficiency)
    pooled = timeseries.detect_warmup(x, method="pymbar") if walkers > 1 else None
    if pooled is not None:
        assert pooled.start == warmup.start and pooled.inefficiency == pytest.approx(warmup.inefficiency, rel=1e-10)


@needs_pymbar
def test_decorrelate_takes_every_ceil_g_th_sample_from_the_start():
    x, _ = with_transient(3000, 4, 10.0, 100.0, seed=8)
    warmup = timeseries.detect_warmup(x, method="eqfree")
    indices = timeseries.decorrelate(x, method="eqfree")
    expected = np.asarray(pymbar.timeseries.subsample_correlated_data(
        x[warmup.start:, 0], g=warmup.inefficiency, conservative=True)) + warmup.start
    np.testing.assert_array_equal(indices, expected)
    assert np.all(np.diff(indices) == math.ceil(warmup.inefficiency))
    np.testing.assert_array_equal(timeseries.decorrelate(x, timeseries.Warmup(10, 2.5, 0.0)), np.arange(10, 3000, 3))


@pytest.mark.parametrize("series, match", [
    (np.array([1.0, np.nan, 2.0, 3.0]), "NaN"),
    (np.array([1.0, 2.0]), "at least 3"),
    (np.zeros((5, 2, 2)), "shape"),
    (np.ones(50), "constant"),
])
def test_bad_series_raise(series, match):
    with pytest.raises(ValueError, match=match):
        timeseries.statistical_inefficiency(series)
    with pytest.raises(ValueError, match=match):
        timeseries.detect_warmup(series)


def test_bad_arguments_raise():
    x = ar1(100, 1, 0.5, seed=1)[:, 0]
    with pytest.raises(ValueError, match="method"):
        timeseries.statistical_inefficiency(x, method="jax")
    with pytest.raises(ValueError, match="nskip"):
        timeseries.detect_warmup(x, nskip=0)
    with pytest.raises(ValueError, match="inefficiency"):
        timeseries.decorrelate(x, timeseries.Warmup(0, math.nan, 1.0))
    with pytest.raises(ValueError, match="outside"):
        timeseries.decorrelate(x, timeseries.Warmup(100, 2.0, 1.0))


def test_without_pymbar_the_default_works_and_pymbar_method_explains(monkeypatch):
    phi = 0.6
    x = ar1(2000, 1, phi, seed=2)[:, 0]
    monkeypatch.setitem(sys.modules, "pymbar", None)
    exact = (1 + phi) / (1 - phi)  # Sokal's relative sd √(2(2M + 1)/N), M ≲ 20 lags here
    assert abs(timeseries.statistical_inefficiency(x) - exact) < 4 * math.sqrt(2 * 41 / x.size) * exact
    with pytest.raises(ImportError, match=r"pip install 'eqfree\[md\]'"):
        timeseries.statistical_inefficiency(x, method="pymbar")
    with pytest.raises(ImportError, match="pymbar"):
        import_pymbar()


@needs_pymbar
def test_importing_pymbar_through_eqfree_prints_nothing():
    code = ("import logging; from eqfree._pymbar import import_pymbar; import_pymbar(); "
            "print(logging.getLogger('pymbar').level)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stderr == ""
    assert done.stdout.strip() == "0"  # the pymbar logger's level is restored (NOTSET)


def test_mser_warmup_finds_a_noise_free_step_exactly():
    """m_t = A for t < d0 and 0 after: the tail variance is zero from d0 on and positive before, so
    MSER's argmin is d0 exactly (the first of the zeros), whatever the number of walkers."""
    for d0, walkers in ((0, 1), (37, 1), (123, 5)):
        x = np.zeros((400, walkers))
        x[:d0] = 2.5
        assert timeseries.mser_warmup(x) == d0
        assert timeseries.mser_warmup(x[:, 0]) == d0


@pytest.mark.parametrize("seed", range(3))
def test_mser_warmup_is_the_brute_force_argmin(seed):
    """The cumulative-sum statistic equals its definition Σ_{t≥d}(m_t − m̄_d)²/(T − d)² evaluated lag by lag."""
    x = ar1(300, 4, 0.5, seed) + 3 * np.exp(-np.arange(300) / 20)[:, None]
    mean = x.mean(axis=1)
    statistic = [np.sum((mean[d:] - mean[d:].mean()) ** 2) / (len(mean) - d) ** 2 for d in range(len(mean) // 2)]
    assert timeseries.mser_warmup(x) == int(np.argmin(statistic))


@pytest.mark.parametrize("walkers", [1, 10])
def test_mser_warmup_leaves_a_bias_below_the_standard_error(walkers):
    """AR(1) (φ = 0.8) plus a transient A e^{−t/τ} (A = 10, τ = 100), T = 4000, seeds 0-19. The property
    MSER promises: the transient left in the kept tail biases its mean by A τ (e^{−d/τ} − e^{−T/τ})/(T − d),
    within 3 of the mean's standard errors σ (g/(W (T − d)))^½ (g = 9, σ² = 1/(1 − φ²)); and it discards
    less than half (its search range). Minimizing the squared standard error of the tail mean keeps a bias
    of about one SE (measured over 200 seeds: at most 1.27 SE for one walker, 1.28 for ten)."""
    amplitude, decay, length, phi = 10.0, 100.0, 4000, 0.8
    g, sigma = (1 + phi) / (1 - phi), 1 / math.sqrt(1 - phi**2)
    for seed in range(20):
        x = ar1(length, walkers, phi, seed) + amplitude * np.exp(-np.arange(length) / decay)[:, None]
        d = timeseries.mser_warmup(x)
        bias = amplitude * decay * (math.exp(-d / decay) - math.exp(-length / decay)) / (length - d)
        assert bias < 3 * sigma * math.sqrt(g / (walkers * (length - d))), (seed, d)
        # the same claim as in test_warmup_starts_after...: past 5τ the transient is < 1 % of σ, so only noise moves the
        # start, and half the run is mser's search range
        assert d < length // 2
