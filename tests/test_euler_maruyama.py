"""Euler–Maruyama against exact moments: weak order 1 and the long-run law of the seed systems."""

import math

import numpy as np
import pytest
import torch

from eqfree import SDE, euler_maruyama, systems
from eqfree.statistics import ensemble_moments

THETA, SIGMA, X0, T = 2.0, 0.5, 10.0, 1.0


def ou():
    return SDE(lambda x, t: -THETA * x, lambda x, t: torch.tensor([SIGMA], dtype=x.dtype))


def test_weak_order_one_on_ornstein_uhlenbeck():
    """|E x(T) − e^{−θT} x0| and |Var x(T) − σ²(1 − e^{−2θT})/(2θ)| shrink like dt¹. EM's own law on OU is
    Gaussian and known exactly: with r = 1 − θδt, E x_n = x0 rⁿ and Var x_n = σ²δt (1 − r²ⁿ)/(1 − r²), so
    each moment is checked against it and each log–log slope against the slope of the exact EM errors
    (1.013 for the mean, 1.042 for the variance: the O(δt) corrections to the leading error)."""
    exact_mean = X0 * math.exp(-THETA * T)
    exact_var = SIGMA**2 * (1 - math.exp(-2 * THETA * T)) / (2 * THETA)
    walkers = 400_000
    steps = np.array([10, 20, 40, 80])
    dts = T / steps
    r = 1 - THETA * dts
    em_mean, em_var = X0 * r**steps, SIGMA**2 * dts * (1 - r ** (2 * steps)) / (1 - r**2)
    mean_err, var_err = [], []
    for n, m, v in zip(steps, em_mean, em_var):
        final = euler_maruyama(ou(), np.full((walkers, 1), X0), dt=T / n, n_steps=int(n), seed=11,
                               save_every=int(n))[-1, :, 0].values
        mean, var = final.mean(), final.var(ddof=1)
        # each error must stand well clear of its Monte Carlo standard error for a slope to mean anything
        # (≥ 80 and ≥ 6 standard errors at the smallest δt, from the exact EM moments; bounds 10 and 3)
        assert abs(mean - exact_mean) > 10 * math.sqrt(var / walkers)
        # (the variance's, 3 se of a Gaussian variance, var·√(2/W))
        assert abs(var - exact_var) > 3 * var * math.sqrt(2 / walkers)
        # against EM's exact law: 4 standard errors, √(v/W) for the mean and v√(2/W) for a Gaussian's variance
        assert abs(mean - m) < 4 * math.sqrt(v / walkers) and abs(var - v) < 4 * v * math.sqrt(2 / walkers)
        mean_err.append(abs(mean - exact_mean))
        var_err.append(abs(var - exact_var))
    x = np.log(dts) - np.log(dts).mean()
    weights = x / np.sum(x**2)  # the least-squares slope is Σ wᵢ log eᵢ
    for errors, exact_errors, sd in ((mean_err, np.abs(em_mean - exact_mean), np.sqrt(em_var / walkers)),
                                     (var_err, np.abs(em_var - exact_var), em_var * math.sqrt(2 / walkers))):
        slope = np.polyfit(np.log(dts), np.log(errors), 1)[0]
        expected = np.polyfit(np.log(dts), np.log(exact_errors), 1)[0]
        slope_sd = math.sqrt(np.sum(weights**2 * (sd / exact_errors) ** 2))
        # 4 standard errors of the slope by the delta method, sd(log eᵢ) = seᵢ/eᵢ, treated as independent
        # (0.005 for the mean, 0.074 for the variance; old: 0.8–1.2 for both, 2.2 sd low for the variance)
        assert abs(slope - expected) < 4 * slope_sd, (slope, expected, slope_sd)


def test_fast_slow_linear_long_run_conditional_law(fast_slow):
    """x2 ~ N(1, 0.05); under EM at dt = 0.1 the invariant variance is a4²/(a3(2 − a3 dt))."""
    dt = 0.1
    run = fast_slow.simulate(2000, 3000, seed=5, dt=dt, save_every=10, scheme="euler_maruyama")
    moments = ensemble_moments(run.sel(coord="x2", time=slice(50, None)).values)
    em_var = fast_slow.euler_maruyama_conditional_variance(dt)
    assert em_var == pytest.approx(0.05 / (1 - 0.1 * dt / 2))
    # x2's EM invariant law at this dt (em_var, exact for the scheme, so no bias); 3 standard errors of ensemble_moments
    # (over the 2000 independent walkers) for mean and variance
    assert abs(moments.mean - 1.0) < 3 * moments.mean_stderr
    assert abs(moments.variance - em_var) < 3 * moments.variance_stderr
    # the slow variable: E x1(t) = a1 t, Var x1(t) = a2² t
    mean1, var1 = fast_slow.slow_moments(0.0, float(run.time[-1]))
    final = run.sel(coord="x1")[-1].values
    # x1 is Brownian with drift, exactly Gaussian under EM too (its increments do not depend on x1): 3 standard errors
    # of a mean over independent walkers
    assert abs(final.mean() - mean1) < 3 * math.sqrt(var1 / final.size)


def test_double_well_long_run_left_probability():
    """Walkers start in the metastable right well (P = 0) and must cross the barrier: P(x1 < 0) → 0.99165
    (the trapezoid rule on the density, below; old: the package's own 0.9917 as truth).

    Relaxation goes at rate k ≈ 1.4e-3 (measured), so by t = 4000 the transient left is ~e^{-5.6}·0.99.
    """
    well = systems.get("double_well")
    exact = left_probability_by_trapezoid()
    # the package's adaptive quadrature against the trapezoid rule: both at round-off (≲ 1e-12)
    assert well.prob_left() == pytest.approx(exact, abs=1e-10)
    run = well.simulate(1000, 300_000, seed=7, dt=0.02, x0=[well.minima()[-1], 0.0], save_every=50,
                        scheme="euler_maruyama")
    left = (run.sel(coord="x1", time=slice(4000, None)).values < 0).astype(float)
    moments = ensemble_moments(left)
    # allowance for what standard errors do not cover: the transient left in t ≥ 4000 (≈ 0.0012 at k ≈ 1.4e-3)
    # and the O(dt) shift of the EM invariant law (P = 0.99143 at dt = 0.02 from the EM transition kernel
    # on a 1500-point grid, i.e. −2e-4)
    assert abs(moments.mean - exact) < 3 * moments.mean_stderr + 0.002


@pytest.mark.slow
def test_double_well_long_run_tight():
    """The same crossing study, twice as many walkers, T = 10⁴ at dt = 0.01: the transient left in
    t ≥ 6000 is ≈ 2e-4 and EM's invariant P is 0.99157 (−1e-4), both inside the allowance."""
    well = systems.get("double_well")
    run = well.simulate(2000, 1_000_000, seed=17, dt=0.01, x0=[well.minima()[-1], 0.0], save_every=100,
                        scheme="euler_maruyama")
    moments = ensemble_moments((run.sel(coord="x1", time=slice(6000, None)).values < 0).astype(float))
    # 3 standard errors plus the bias allowance: transient 2e-4 + EM's O(dt) shift 1e-4 = 3e-4 ≤ 5e-4
    assert abs(moments.mean - left_probability_by_trapezoid()) < 3 * moments.mean_stderr + 5e-4


def left_probability_by_trapezoid() -> float:
    """P(x1 < 0) under exp(−U), U(x1) = x1⁴/4 − 3x1² + x1 (the x2 factor cancels), by the trapezoid rule on
    [−8, 8] with h = 1e-4: its error, h² max|f''|/12 relative, is ≈ 1e-9 (the tails beyond ±8, e^{−800}, nil).
    Written out here from the formula, independent of the package's quadrature. Value 0.99165137."""
    x = np.linspace(-8.0, 8.0, 160_001)
    density = np.exp(-(x**4 / 4 - 3 * x**2 + x))
    return float(np.trapezoid(density[x <= 0], x[x <= 0]) / np.trapezoid(density, x))
