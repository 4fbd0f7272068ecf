"""WHAM and MBAR against exact umbrella data: samples drawn exactly (inverse CDF on a fine grid) from
biased densities ∝ exp(−F(x) − κ/2 d(x, z_k)²) of a known F, whose window free energies, PMF,
overlap and conditional means follow by quadrature."""

import math
import warnings

import numpy as np
import pytest

from eqfree._pymbar import pymbar_available
from eqfree.errors import NotFittedError
from eqfree.reweight import MBAR, WHAM, ConvergenceError
from eqfree.reweight.common import overlap_matrix
from eqfree.statistics import kish_ess

needs_pymbar = pytest.mark.skipif(not pymbar_available(), reason="pymbar is not installed (pip install 'eqfree[md]')")

#: WHAM's binning bias on f_k and the PMF, in kT, at the bin widths used here (Δ ≈ σ_window/5). Measured
#: with 40 000 samples per window on the double well: 0.18 kT at Δ = 0.14, 0.05 at 0.07, 0.015 at 0.035 (∝ Δ²).
BINNING_ALLOWANCE = 0.05

EQFREE_WARNINGS = "low overlap|.* hold no samples"


def double_well(x):
    return x**4 / 4 - 3 * x**2 + x


def periodic_well(theta):
    return 1.5 * np.cos(theta) - 0.5 * np.sin(2 * theta)


def wrapped(d, period):
    return d if period is None else d - period * np.floor(d / period + 0.5)


class Umbrella:
    """Exact umbrella samples, with y | x ~ N(sin x, 0.1²) alongside, and the quadrature truths."""

    def __init__(self, free, centres, kappa, n_per_window, seed, grid, period=None, walkers_per_window=10):
        rng = np.random.default_rng(seed)
        self.free, self.grid, self.period, self.kappa = free, grid, period, kappa
        self.centres = np.asarray(centres, dtype=float)
        log_p = -free(grid)[None, :] - self.bias(grid)  # (K, grid)
        density = np.exp(log_p - log_p.max())
        cdf = np.concatenate([np.zeros((len(centres), 1)),
                              np.cumsum(0.5 * (density[:, 1:] + density[:, :-1]) * np.diff(grid), axis=1)], axis=1)
        self.x = np.concatenate([np.interp(rng.random(n_per_window) * c[-1], c, grid) for c in cdf])
        self.window = np.repeat(np.arange(len(centres)), n_per_window)
        self.groups = np.arange(self.x.size) // (n_per_window // walkers_per_window)
        self.y = np.sin(self.x) + 0.1 * rng.normal(size=self.x.size)
        self.u = self.bias(self.x)
        log_z = np.log(cdf[:, -1])
        self.f_exact = -(log_z - log_z[0])
        self.p_exact = density / cdf[:, -1:]  # normalized biased densities on the grid
        self.n_k = np.full(len(centres), n_per_window)

    def bias(self, x):
        return 0.5 * self.kappa * wrapped(x[None, :] - self.centres[:, None], self.period) ** 2

    def integrate(self, values):
        return np.sum(0.5 * (values[..., 1:] + values[..., :-1]) * np.diff(self.grid), axis=-1)

    def pmf(self, centres, widths):
        """Exact −log(∫_bin e^{−F}/Δ) of each bin (what a histogram estimates), not yet referenced."""
        pmf = []
        for c, h in zip(centres, widths):
            x = np.linspace(c - h / 2, c + h / 2, 201)
            pmf.append(-np.log(np.mean(np.exp(-self.free(x)))))
        return np.array(pmf)

    def overlap(self):
        """O_ij = N_j ∫ p_i p_j / Σ_k N_k p_k (trapezoid rule)."""
        trapezoid = np.full(self.grid.size, self.grid[1] - self.grid[0])  # uniform grid
        trapezoid[[0, -1]] /= 2
        scaled = self.p_exact * np.sqrt(trapezoid / np.sum(self.n_k[:, None] * self.p_exact, axis=0))
        return (scaled @ scaled.T) * self.n_k[None, :]

    def kernel_mean(self, function, z, bandwidth):
        """Exact E[function(ξ)] under e^{−F(ξ)} times the Gaussian kernel around z: what the weights estimate."""
        weight = np.exp(-self.free(self.grid) - 0.5 * (wrapped(self.grid - z, self.period) / bandwidth) ** 2)
        return self.integrate(function(self.grid) * weight) / self.integrate(weight)


@pytest.fixture(scope="module")
def well():
    return Umbrella(double_well, np.linspace(-3.5, 3.5, 20), 15.0, 1000, seed=11, grid=np.linspace(-6, 6, 120_001))


@pytest.fixture(scope="module")
def fits(well):
    with warnings.catch_warnings():
        warnings.filterwarnings("error", EQFREE_WARNINGS)  # the default data has neither empty bins nor low overlap
        wham = WHAM(bins=140, n_bootstrap=40).fit(well.u, well.window, well.x, well.groups, seed=3)
        mbar = MBAR(bins=140).fit(well.u, well.window, well.x) if pymbar_available() else None
    return {"WHAM": wham, "MBAR": mbar}


def estimators(*names):
    return pytest.mark.parametrize("name", [pytest.param(n, marks=needs_pymbar) if n == "MBAR" else n for n in names])


@estimators("WHAM", "MBAR")
def test_window_free_energies_match_quadrature(fits, well, name):
    est = fits[name]
    allowance = BINNING_ALLOWANCE if name == "WHAM" else 0.0
    assert est.f_[0] == 0 and est.f_stderr_[0] == pytest.approx(0, abs=1e-8)
    assert 0.01 < est.f_stderr_[1:].min() and est.f_stderr_.max() < 0.3
    np.testing.assert_array_less(np.abs(est.f_ - well.f_exact), 4 * est.f_stderr_ + allowance + 1e-9)


@estimators("WHAM", "MBAR")
def test_pmf_matches_quadrature_below_8_kT(fits, well, name):
    pmf = fits[name].pmf_
    exact = well.pmf(pmf.cv.values, pmf.bin_width.values)
    reference = int(np.argmin(pmf.pmf.values))
    exact -= exact[reference]
    assert pmf.pmf.values[reference] == 0 and pmf.pmf_stderr.values[reference] == pytest.approx(0, abs=1e-8)
    low = exact < 8
    assert low.sum() > 40
    allowance = BINNING_ALLOWANCE if name == "WHAM" else 0.0
    deviation = np.abs(pmf.pmf.values - exact)[low]
    np.testing.assert_array_less(deviation, 4 * pmf.pmf_stderr.values[low] + allowance + 1e-9)
    assert pmf.attrs["estimator"] == name and pmf.pmf.attrs["units"] == "kT"
    assert int(pmf.counts.sum()) == well.x.size


@needs_pymbar
def test_wham_and_mbar_pmfs_agree_within_error_bars(fits):
    wham, mbar = fits["WHAM"].pmf_, fits["MBAR"].pmf_
    np.testing.assert_allclose(wham.cv, mbar.cv)
    reference = int(np.argmin(mbar.pmf.values))
    difference = (wham.pmf - wham.pmf[reference]) - mbar.pmf
    bar = np.hypot(wham.pmf_stderr, mbar.pmf_stderr)
    assert (np.abs(difference) <= bar).all()
    # WHAM's bootstrap errors and MBAR's asymptotic ones estimate the same spread
    ratio = fits["WHAM"].f_stderr_[1:] / fits["MBAR"].f_stderr_[1:]
    assert 0.7 < ratio.min() and ratio.max() < 1.4


@estimators("WHAM", "MBAR")
def test_overlap_rows_sum_to_one_and_match_quadrature(fits, well, name):
    overlap = fits[name].overlap_
    np.testing.assert_allclose(overlap.sum(axis=1), 1, atol=1e-12)
    np.testing.assert_allclose(overlap, well.overlap(), atol=0.02)


@needs_pymbar
def test_mbar_free_energy_difference_of_two_sets_matches_quadrature(fits, well):
    """ΔF between x < −1 and x > 1 of the unbiased law, −log(P_b/P_a), against quadrature of e^{−F}, within 4
    analytical standard errors; the error bar is of the order of the window free energies' errors."""
    density = np.exp(-well.free(well.grid))
    exact = -np.log(well.integrate(density * (well.grid > 1)) / well.integrate(density * (well.grid < -1)))
    difference, stderr = fits["MBAR"].free_energy_difference(well.x < -1, well.x > 1)
    assert 0.01 < stderr < 0.5 and abs(difference - exact) < 4 * stderr, (difference, exact, stderr)
    with pytest.raises(ValueError, match="at least one sample"):
        fits["MBAR"].free_energy_difference(well.x < -1, well.x > 100)


@needs_pymbar
def test_overlap_equals_pymbar_compute_overlap(fits, well):
    mbar = fits["MBAR"]
    reference = mbar.mbar_.compute_overlap()["matrix"]
    np.testing.assert_allclose(mbar.overlap_, reference, atol=1e-8)
    np.testing.assert_allclose(overlap_matrix(well.u, well.n_k, mbar.mbar_.f_k), reference, atol=1e-8)


@estimators("WHAM", "MBAR")
def test_low_overlap_warning_names_exactly_the_gap(name):
    gap = Umbrella(double_well, [-3.0, -2.6, -2.2, -0.6, -0.2], 15.0, 600, seed=5, grid=np.linspace(-6, 6, 60_001))
    neighbours = np.diag(gap.overlap(), 1)
    assert neighbours[2] < 0.01 and np.delete(neighbours, 2).min() > 0.1  # the design: one gap, between 2 and 3
    estimator = WHAM(bins=20, n_bootstrap=2) if name == "WHAM" else MBAR(bins=20)
    with pytest.warns(UserWarning, match="low overlap") as record:
        estimator.fit(gap.u, gap.window, gap.x, **({"seed": 0} if name == "WHAM" else {}))
    message = next(str(r.message) for r in record if "low overlap" in str(r.message))
    assert "(2, 3)" in message and "(1, 2)" not in message and "(3, 4)" not in message
    assert min(estimator.overlap_[2, 3], estimator.overlap_[3, 2]) < 0.03


@estimators("WHAM", "MBAR")
@pytest.mark.parametrize("z", [-2.4, -1.0, 0.3, 2.2])
def test_conditional_weights_give_the_exact_conditional_mean(fits, well, name, z):
    bandwidth = 0.03
    weights = fits[name].conditional_weights(z, bandwidth)
    assert weights.sum() == pytest.approx(1) and (weights >= 0).all()
    with np.errstate(divide="ignore"):
        ess = kish_ess(np.log(weights))
    assert ess > 50
    estimate = weights @ well.y
    stderr = math.sqrt(np.sum(weights**2 * (well.y - estimate) ** 2))  # ≈ sd(y | kernel)/√ESS
    exact_smoothed = well.kernel_mean(np.sin, z, bandwidth)
    assert abs(estimate - exact_smoothed) < 4 * stderr
    kernel_bias = abs(exact_smoothed - math.sin(z))  # O(h²); E[y | x = z] = sin z exactly
    assert abs(estimate - math.sin(z)) < 4 * stderr + kernel_bias
    assert stderr == pytest.approx(0.1 / math.sqrt(ess), rel=0.5)


def test_kish_ess():
    with np.errstate(divide="ignore", invalid="ignore"):
        assert kish_ess(np.log(np.ones(7))) == pytest.approx(7)
        assert kish_ess(np.log([0, 0, 3.0, 0])) == pytest.approx(1)
        assert kish_ess(np.log([1.0, 3.0])) == pytest.approx(16 / 10)
        with pytest.raises(ValueError, match="non-negative"):
            kish_ess(np.log([1.0, -1.0]))


@pytest.fixture(scope="module")
def ring():
    period = 2 * math.pi
    centres = math.pi - period * np.arange(16) / 16  # window 0 centred at π, on the cut
    return Umbrella(periodic_well, centres, 12.0, 600, seed=21, grid=np.linspace(-math.pi, math.pi, 60_001),
                    period=period)


@estimators("WHAM", "MBAR")
def test_periodic_cv_across_the_cut(ring, name):
    estimator = (WHAM(bins=96, n_bootstrap=30, period=ring.period) if name == "WHAM"
                 else MBAR(bins=96, period=ring.period))
    with warnings.catch_warnings():
        warnings.filterwarnings("error", EQFREE_WARNINGS)
        est = estimator.fit(ring.u, ring.window, ring.x, **({"seed": 1} if name == "WHAM" else {}))
    allowance = BINNING_ALLOWANCE if name == "WHAM" else 0.0
    np.testing.assert_array_less(np.abs(est.f_ - ring.f_exact), 4 * est.f_stderr_ + allowance + 1e-9)

    pmf = est.pmf_
    assert pmf.sizes["cv"] == 96 and pmf.cv.attrs["period"] == ring.period
    np.testing.assert_allclose(pmf.cv[[0, -1]], [-math.pi + math.pi / 96, math.pi - math.pi / 96])
    exact = ring.pmf(pmf.cv.values, pmf.bin_width.values)
    exact -= exact[int(np.argmin(pmf.pmf.values))]
    np.testing.assert_array_less(np.abs(pmf.pmf.values - exact), 4 * pmf.pmf_stderr.values + allowance + 1e-9)

    # around z = π the kernel sees the samples just above −π as near: the weight on θ < 0 is the exact share
    bandwidth = 0.05
    weights = est.conditional_weights(math.pi, bandwidth)
    below = (ring.x < 0).astype(float)
    share = weights @ below
    stderr = math.sqrt(np.sum(weights**2 * (below - share) ** 2))
    exact_share = ring.kernel_mean(lambda t: (t < 0).astype(float), math.pi, bandwidth)
    assert 0.2 < exact_share < 0.8 and abs(share - exact_share) < 4 * stderr
    exact_mean = ring.kernel_mean(np.sin, math.pi, bandwidth)
    estimate = weights @ ring.y
    assert abs(estimate - exact_mean) < 4 * math.sqrt(np.sum(weights**2 * (ring.y - estimate) ** 2))


@estimators("WHAM", "MBAR")
def test_empty_bins_are_left_out_with_a_warning_naming_them(well, name):
    left = well.window < 6  # the six leftmost windows, x < -1.3
    edges = np.linspace(-4.0, 0.0, 81)  # wider than the samples: the outer bins are empty
    estimator = WHAM(bins=edges, n_bootstrap=20) if name == "WHAM" else MBAR(bins=edges)
    with pytest.warns(UserWarning, match=r"hold no samples .*\[-4, -3.95\)"):
        est = estimator.fit(well.u[:6][:, left], well.window[left], well.x[left], *(
            [well.groups[left]] if name == "WHAM" else []), **({"seed": 0} if name == "WHAM" else {}))
    counts = np.histogram(well.x[left], edges)[0]
    assert est.pmf_.sizes["cv"] == (counts > 0).sum()
    assert (est.pmf_.counts > 0).all() and np.isfinite(est.pmf_.pmf).all() and np.isfinite(est.pmf_.pmf_stderr).all()


def test_wham_bootstrap_is_reproducible_from_its_seed(well):
    subset = well.window < 6
    args = (well.u[:6][:, subset], well.window[subset], well.x[subset], well.groups[subset])
    first, again, other = (WHAM(bins=20, n_bootstrap=5).fit(*args, seed=s).f_stderr_ for s in (7, 7, 8))
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first[1:], other[1:])


def test_wham_reports_non_convergence(well):
    with pytest.raises(ConvergenceError, match="did not converge in 5 iterations"):
        WHAM(max_iterations=5, n_bootstrap=2).fit(well.u, well.window, well.x, seed=0)


@pytest.mark.parametrize("change, match", [
    (lambda u, w, x: (u[:, :-1], w, x), r"window must have shape \(\d+,\)"),
    (lambda u, w, x: (u, w, x[:-1]), r"cv must have shape"),
    (lambda u, w, x: (np.where(np.arange(u.shape[1]) == 5, np.nan, u), w, x), r"non-finite values for samples \[5\]"),
    (lambda u, w, x: (u, np.where(w == 3, 4, w), x), r"windows \[3\] have no samples"),
    (lambda u, w, x: (u, w.astype(float), x), "integers"),
    (lambda u, w, x: (u[:1], w * 0, x), "at least 2 windows"),
])
def test_bad_umbrella_data_raise(well, change, match):
    with pytest.raises(ValueError, match=match):
        WHAM(n_bootstrap=2).fit(*change(well.u, well.window, well.x), seed=0)


@pytest.mark.parametrize("kwargs, match", [
    ({"bins": [0.0, 1.0, 0.5]}, "strictly increasing"),
    ({"bins": np.linspace(-1, 1, 5)}, "widen the edges"),
    ({"bins": 0}, "positive number of bins"),
    ({"bins": np.linspace(0, 3, 5), "period": 2 * math.pi}, "one period"),
    ({"period": -1.0}, "period"),
    ({"n_bootstrap": 1}, "n_bootstrap"),
])
def test_bad_parameters_raise(well, kwargs, match):
    with pytest.raises(ValueError, match=match):
        WHAM(**{"n_bootstrap": 2, **kwargs}).fit(well.u, well.window, well.x, seed=0)


@needs_pymbar
def test_conditional_weights_check_their_arguments(fits):
    with pytest.raises(ValueError, match="bandwidth"):
        fits["MBAR"].conditional_weights(0.0, 0.0)
    with pytest.raises(NotFittedError, match="not fitted"):
        MBAR().conditional_weights(0.0, 0.1)


def test_mbar_without_pymbar_explains(monkeypatch, well):
    monkeypatch.setitem(__import__("sys").modules, "pymbar", None)
    with pytest.raises(ImportError, match=r"pip install 'eqfree\[md\]'"):
        MBAR().fit(well.u, well.window, well.x)
