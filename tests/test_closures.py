"""Closures: estimated drifts against the closed-form averaged drift, closed ODE against direct
simulation, resumable stores, executors, and the errors at the boundary.

Bias of the burst drift m(τ)/τ for ``averaging_cubic`` (dx1 = −x2³ dt, dx2 = −(x2 − x1)/ε dt +
√(2s²/ε) dW, the default scheme with a = Δt/ε, K steps, τ = KΔt), against the fast-limit drift
B(z) = −z³ − 3s²z. With the exact fast-limit lift x1 = z, x2 ~ N(z, s²) and y = x2 − x1,
the estimate is −(1/K) Σ_k x2_k³ and E[x2³] = m³ + 3 m v for x2 ~ N(m, v). Its leading bias is

    β(z) = ½ (K−1) Δt · B'B                         B changes along the burst
         − 3 z (v − s²) (1 − ⟨(1−a)^{2k}⟩_k)         the scheme's OU variance v, reached after the lift (s² for
                                                    Leimkuhler–Matthews, s²/(1 − a/2) for Euler–Maruyama)
         − ε B'B (1 − ⟨(1−a)^k⟩_k)                  x2 lags x1: E[y] → −εB (finite ε)

(⟨·⟩_k the mean over k < K). The first neglected terms, allowed for in full, are

    r(z) = 3 |z| ε |B'| s²                          finite-ε variance shift v ≈ s²(1 − εB')
         + τ²/6 · |B'²B + B''B²|                    second order along the burst

so the test asserts |B̂ − B| ≤ Z se + |β| + r at every grid point, Z = 3.7 for 41 points at once
(Bonferroni: P(some |N(0,1)| > 3.7 among 41) ≈ 1 %), and within 3 se + |β| + r at 95 % of them. (With 10⁵ walkers
per point the residual B̂ − B − β is within one standard error at z = 0.3 … 1.5.) The conditional average
over the exact fast-limit law has no bias: E[−x2³ | x1 = z] = B(z) exactly.
"""

import itertools
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr
from scipy.stats import norm

from eqfree import Coordinates, systems
from eqfree.closures import (
    BurstEstimator,
    Closure,
    ConditionalAverageEstimator,
    debiased,
    estimate_closure,
    integrate,
    load,
    mean_path,
)
from eqfree.closures.store import template
from eqfree.io import parameters_of, provenance
from eqfree.operators import FunctionLift
from eqfree.systems import LinearGaussianLift

CUBIC = systems.get("averaging_cubic")
EPS, S = CUBIC.eps, CUBIC.s
DT = EPS / 10
GRID = np.linspace(-1.5, 1.5, 41)
Z = 3.7  # standard errors allowed at each of 41 points (family-wise 1 %)
EXACT_CUBIC_LIFT = LinearGaussianLift(0.0, 1.0, S**2, valid_range=(-2.0, 2.0))


def slow_drift(x):
    """μ_slow of averaging_cubic in fine coordinates: dx1/dt = −x2³."""
    return -x[:, 1] ** 3


def derivatives(z):
    return -3 * z**2 - 3 * S**2, -6 * z  # B', B''


def burst_bias(z, n_steps):
    """(β, r) of the module docstring."""
    a, tau, B = DT / EPS, n_steps * DT, CUBIC.averaged_drift(z)
    dB, d2B = derivatives(z)
    k = np.arange(n_steps)
    v = CUBIC.fast_variance(DT)
    beta = (0.5 * (n_steps - 1) * DT * dB * B - 3 * z * (v - S**2) * (1 - np.mean((1 - a) ** (2 * k)))
            - EPS * dB * B * (1 - np.mean((1 - a) ** k)))
    rest = 3 * np.abs(z) * EPS * np.abs(dB) * S**2 + tau**2 / 6 * np.abs(dB**2 * B + d2B * B**2)
    return beta, rest


def one_cv(dataset):
    """A 1-D closure's estimates as plain values per grid point (the store has ``component``, ``row``, ``column``
    of size 1)."""
    return dataset.squeeze([dim for dim in ("component", "row", "column") if dim in dataset.dims], drop=True)


def burst_setup(n_walkers=4000, n_steps=100):
    return BurstEstimator(EXACT_CUBIC_LIFT, CUBIC.evolver(DT), Coordinates("x1"), tau=n_steps * DT, n_walkers=n_walkers)


def test_burst_drift_matches_averaged_drift():
    n_steps = 100  # τ = 10 ε
    estimate = estimate_closure(burst_setup(4000, n_steps), GRID, seed=2026)
    closure = one_cv(estimate)
    beta, rest = burst_bias(GRID, n_steps)
    se = closure["drift_stderr"].values
    allowed = Z * se + np.abs(beta) + rest
    error = np.abs(closure["drift"].values - CUBIC.averaged_drift(GRID))
    assert np.all(error <= allowed), np.c_[GRID, error, allowed][error > allowed]
    # module docstring: within 3 se + |β| + r at ≥ 95 % of the 41 points (≤ 2 misses; P(≥ 3 of 41 beyond 3 se) ≈ 2e-4)
    assert np.mean(error <= 3 * se + np.abs(beta) + rest) >= 0.95
    # a precision check at 4000 walkers, τ = 10ε: the largest se is 0.0254 at |z| = 1.5 (seed 2026); the se's own
    # sampling error is ≈ 2 %, so 0.03 (+18 %) fails only if the estimator's variance grows
    assert closure["drift_stderr"].max() < 0.03
    # debiased across the grid, ½τB'B goes (β keeps ½(K−1)Δt; the difference −½ΔtB'B stays), and B̂' carries
    # the finite differences' noise, ≤ Z √26 se / (2h) (one-sided second-order stencil (−3, 4, −1)/(2h) at the
    # ends) and their O(h²) error h²|B'''|/3
    tau, h = n_steps * DT, GRID[1] - GRID[0]
    B, (dB, _) = CUBIC.averaged_drift(GRID), derivatives(GRID)
    slope_error = Z * np.sqrt(26) * se / (2 * h) + h**2 * 6 / 3
    tight = Z * se + np.abs(beta - 0.5 * tau * dB * B) + rest + 0.5 * tau * np.abs(B) * slope_error
    error_debiased = np.abs(one_cv(Closure(estimate).dataset)["drift"].values - B)
    assert np.all(error_debiased <= tight), np.c_[GRID, error_debiased, tight][error_debiased > tight]
    assert tight.max() < allowed.max()
    wrong = np.abs(closure["drift"].values - (-(GRID**3)))  # missing −3 s² z
    assert np.any(wrong > 3 * allowed)
    assert np.all(closure["done"]) and np.all(closure["n_samples"] == 4000)
    assert closure["drift"].attrs["long_name"] and closure["drift"].attrs["units"] == "1"
    assert closure["x1"].attrs["long_name"] == "collective variable x1"
    recipe = parameters_of(closure.attrs)
    assert recipe["seed"] == 2026 and recipe["grid"] == GRID.tolist() and recipe["estimator"] == "bursts"
    assert "AveragingCubic(eps=0.001, s=0.5" in recipe["evolve"] and recipe["tau"] == pytest.approx(0.01)
    assert recipe["t_heal"] == pytest.approx(0.005) and "diffusion" in recipe["bias"]
    assert recipe["diffusion_lever"] == pytest.approx(1.44 * 0.01, rel=0.01)  # ≈ t_heal + τ


def test_conditional_average_matches_averaged_drift():
    estimator = ConditionalAverageEstimator(EXACT_CUBIC_LIFT, slow_drift, n_samples=20_000)
    closure = one_cv(estimate_closure(estimator, GRID, seed=7))
    error = np.abs(closure["drift"].values - CUBIC.averaged_drift(GRID))
    se = closure["drift_stderr"].values
    assert np.all(error <= Z * se) and np.mean(error <= 3 * se) >= 0.95  # no bias: the lift is exact
    assert np.any(np.abs(closure["drift"].values + GRID**3) > 10 * se)
    # precision at 20 000 draws: se = sd(x2³ | z)/√n, at |z| = 1.5 sd(x2³) = √(9z⁴s² + 36z²s⁴ + 15s⁶) = 4.09, se 0.029;
    # bound 0.05 (a regression check on the variance, not a statistical bound)
    assert "diffusion" not in closure and se.max() < 0.05


def test_burst_drift_and_diffusion_of_a_brownian_slow_variable(fast_slow):
    """fast_slow_linear: x1 is Brownian motion with drift a1 and diffusion a2², whatever x2 does."""
    mean, variance = fast_slow.conditional_moments()
    lift = LinearGaussianLift(mean, 0.0, variance)
    estimator = BurstEstimator(lift, fast_slow.evolver(), Coordinates("x1"), tau=20.0, n_walkers=4000)
    closure = estimate_closure(estimator, [-1.0, 0.0, 2.5], seed=3)
    # x1 is exactly Brownian (docstring): no bias; 3 standard errors each (3 grid points; drift se over 4000 independent
    # walkers)
    assert np.all(np.abs(closure["drift"] - fast_slow.a1) <= 3 * closure["drift_stderr"])
    assert np.all(np.abs(closure["diffusion"] - fast_slow.a2**2) <= 3 * closure["diffusion_stderr"])
    # precision: the relative se of a Gaussian variance estimate from 4000 walkers is √(2/4000) = 2.2 %; 5 % fails only
    # if the estimator loses half its information
    assert np.all(closure["diffusion_stderr"] < 0.05 * fast_slow.a2**2)


def test_closure_sde_ensemble_matches_brownian_moments(fast_slow):
    lift = LinearGaussianLift(1.0, 0.0, 0.05)
    estimator = BurstEstimator(lift, fast_slow.evolver(), Coordinates("x1"), tau=20.0, n_walkers=2000)
    closure = Closure(estimate_closure(estimator, np.linspace(-1, 1, 5), seed=4))
    paths = integrate(closure, 0.0, (0.0, 100.0), sde=True, dt=1.0, n_walkers=4000, seed=5, t_eval=[0.0, 50.0, 100.0])
    assert paths.dims == ("time", "walker") and paths["time"].values.tolist() == [0.0, 50.0, 100.0]
    end = paths.isel(time=-1).values
    D, B = closure.diffusion(0.0), closure.drift(0.0)
    # the closure's SDE with (nearly) constant coefficients: x(100) ~ N(100B, 100D) (the paths stay in z ∈ [0.06, 0.14],
    # where the interpolated B̂, D̂ differ from their values at 0 by their estimation noise only); 4 standard errors of
    # a Gaussian's mean and variance over 4000 walkers (measured 0.5–0.9 and 0.8–1.0 se over seeds 5–7)
    assert abs(end.mean() - 100 * B) < 4 * np.sqrt(100 * D / end.size)
    assert abs(end.var(ddof=1) / (100 * D) - 1) < 4 * np.sqrt(2 / end.size)
    # the closure at z = 0 is the estimate at that grid point: 3 of its standard errors (the drift's is a2/√(τn)
    # = 5e-6, 0.5 % of a1; the diffusion's ≈ √(2/n) = 3 % of a2²), no bias (x1 is exactly Brownian). Old: rtol 0.1
    # for both, 20 standard errors for the drift
    at_zero = one_cv(closure.dataset).sel(x1=0.0)
    assert abs(float(B) - fast_slow.a1) <= 3 * float(at_zero["drift_stderr"])
    # (3 standard errors of the diffusion at z = 0, as derived above)
    assert abs(float(D) - fast_slow.a2**2) <= 3 * float(at_zero["diffusion_stderr"])


def test_closed_ode_matches_direct_simulation():
    """Mean x1(t) of direct fine runs from x1 = 1 against dz/dt = B̂(z) from the conditional average.

    B' ≤ −3s² < 0, so a drift error δ(z) moves the path by at most ∫₀ᵗ e^{−3s²(t−u)} δ(z(u)) du, with
    δ = 3 se(B̂) (estimation) + 3|z| |v − s²| (the scheme's variance v) + ε|B'B| (lag) + 3|z|ε|B'|s² (variance
    shift) + ½|B''| Var x1(t) (the ensemble's spread seen through the curvature of B).
    """
    estimator = ConditionalAverageEstimator(EXACT_CUBIC_LIFT, slow_drift, n_samples=200_000)
    closure = Closure(estimate_closure(estimator, GRID, seed=11))
    times = np.linspace(0, 1, 101)
    ode = integrate(closure, 1.0, (0.0, 1.0), t_eval=times).values
    walkers = 1000
    x0 = EXACT_CUBIC_LIFT(np.array([1.0]), walkers, seed=12)
    x1 = CUBIC.simulate(walkers, 10_000, seed=13, x0=x0, save_every=100)[..., 0].values
    mean, se = x1.mean(axis=1), x1.std(axis=1, ddof=1) / np.sqrt(walkers)

    dB, d2B = derivatives(ode)
    stderr = np.interp(ode, GRID, closure.dataset["drift_stderr"].values[:, 0])
    delta = (3 * stderr + 3 * np.abs(ode) * abs(CUBIC.fast_variance(DT) - S**2)
             + EPS * np.abs(dB * CUBIC.averaged_drift(ode)) + 3 * np.abs(ode) * EPS * np.abs(dB) * S**2
             + 0.5 * np.abs(d2B) * x1.var(axis=1))
    bound = np.zeros_like(times)
    for i in range(1, times.size):  # bound' = −3s² bound + δ
        h = times[i] - times[i - 1]
        bound[i] = bound[i - 1] * np.exp(-3 * S**2 * h) + h * 0.5 * (delta[i] + delta[i - 1] * np.exp(-3 * S**2 * h))
    assert np.all(np.abs(mean - ode) <= 3 * se + bound)
    # the propagated bias bound (docstring) itself must stay small for the check above to mean anything: it is a
    # property of the formula at these settings (≈ 0.03 here), not a statistical bound
    assert bound[-1] < 0.05
    cubed = -(closure.dataset[closure.names[0]] ** 3)
    wrong = Closure(closure.dataset.assign(drift=cubed.expand_dims(component=closure.names, axis=-1)))
    gap = np.abs(mean - integrate(wrong, 1.0, (0.0, 1.0), t_eval=times).values)
    assert gap[-1] > 3 * (3 * se[-1] + bound[-1])



def test_homogenized_diffusion_is_the_green_kubo_integral():
    """D(z) = 2 ∫₀^∞ Cov(x2(0)³, x2(t)³) dt for the OU x2 ~ N(z, s²) of correlation e^{−t/ε}, by Gauss–Hermite
    quadrature over the bivariate normal (10² nodes, exact for these degree-6 polynomials) and Simpson's rule
    in t over 30 ε (the neglected tail is e^{−30}; the rule's error is O((Δt/ε)⁴) = 10⁻⁷ relative)."""
    from scipy.integrate import simpson

    x, w = np.polynomial.hermite_e.hermegauss(10)
    w = w / w.sum()
    t = np.linspace(0, 30 * EPS, 1201)
    rho = np.exp(-t / EPS)[:, None, None]
    for z in (-1.3, 0.0, 0.4, 1.0):
        first = (z + S * x[None, :, None]) ** 3
        later = (z + S * (rho * x[None, :, None] + np.sqrt(1 - rho**2) * x[None, None, :])) ** 3
        mean = w @ (z + S * x) ** 3
        covariance = np.einsum("i,j,tij->t", w, w, first * later) - mean**2
        np.testing.assert_allclose(2 * simpson(covariance, x=t), CUBIC.homogenized_diffusion(z), rtol=1e-6)


# the default burst closure at the truth ------------------------------------------------------------

def default_closure(n_walkers, seed):
    """What `eqfree closure estimate --system averaging_cubic --cv x1 --lift exact --grid=-1:1:9 --burst 0.01
    --walkers N` runs: the system's default step and scheme, its exact lift at that step, τ = 10ε and the
    default healing time τ/2; read back as a Closure, i.e. with the bursts' B' terms removed."""
    lift = CUBIC.exact_lift(CUBIC.dt)
    estimator = BurstEstimator(lift, CUBIC.evolver(), Coordinates("x1"), tau=0.01, n_walkers=n_walkers)
    return one_cv(Closure(estimate_closure(estimator, np.linspace(-1, 1, 9), seed=seed)).dataset)


def assert_closure_at_the_truth(data):
    """Drift within 3 se of B(z) = −z³ − 3s²z and diffusion within 3 se + 2 % of the homogenized D(z) at ≥ 8
    of the 9 points. Allowed besides: the fast variable's lag behind the moving z, which the bursts see
    (E[x2 − x1] → −εB shifts the drift by −εB'B, a finite-ε effect the fast limit B lacks), and the
    estimator's stated remainder τ|B''|D/4. Pooled over the 9 independent points, the mean relative error
    of D must be within 3 of its standard errors + 1 % (the memory bound 2 e^{−5}/5 = 0.3 % and O(ε|B'|) ≤
    0.4 %): the end-point estimate Var(Δz)/τ, 5–11 % low, fails this."""
    z = data["x1"].values
    B, D = CUBIC.averaged_drift(z), CUBIC.homogenized_diffusion(z)
    dB, d2B = derivatives(z)
    drift_allowed = 3 * data["drift_stderr"].values + EPS * np.abs(dB * B) + 0.01 * np.abs(d2B) * D / 4
    drift_ok = np.abs(data["drift"].values - B) <= drift_allowed
    relative, relative_se = data["diffusion"].values / D - 1, data["diffusion_stderr"].values / D
    diffusion_ok = np.abs(relative) <= 3 * relative_se + 0.02
    assert drift_ok.sum() >= 8, np.c_[z, data["drift"].values - B, drift_allowed]
    assert diffusion_ok.sum() >= 8, np.c_[z, relative, relative_se]
    # the docstring's pooled bound: 3 standard errors of the mean over 9 independent points plus 1 % (memory 0.3 % +
    # O(ε|B'|) 0.4 %)
    assert abs(relative.mean()) <= 3 * np.sqrt(np.sum(relative_se**2)) / z.size + 0.01
    return relative_se


def test_default_burst_closure_at_the_truth():
    relative_se = assert_closure_at_the_truth(default_closure(4000, seed=19))
    assert relative_se.max() < 0.08  # the price of the memory-free slope: about 1.7x the end-point's se


@pytest.mark.slow
def test_default_burst_closure_at_the_truth_with_20000_walkers():
    """The acceptance command of issue 19 (20000 walkers per point)."""
    assert_closure_at_the_truth(default_closure(20_000, seed=1))


def burst_dataset(grid, drift, diffusion, tau, lever):
    dataset = template(grid, diffusion=True, attrs=provenance(
        "test", {"estimator": "bursts", "tau": tau, "diffusion_lever": lever}))
    dataset["drift"].values[:, 0], dataset["diffusion"].values[:, 0, 0] = drift, diffusion
    dataset["drift_stderr"].values[:], dataset["diffusion_stderr"].values[:] = 0.01, 0.01
    dataset["done"].values[:] = True
    return dataset


def test_debiased_removes_the_burst_terms():
    """Burst statistics built from the expansion drift = B + ½τB'B, diffusion = D + p(B'D + ½BD') for
    B = −z³ − z, D = 1 + z² (p = 1.5τ): debiased leaves only second-order terms (B̂' is the slope of the
    biased drift, so B̂'B̂ − B'B = O(τ)), so halving τ quarters what is left, where the raw error halves;
    the grid is fine enough (h = 0.005) that the finite differences' O(h²) is 10⁻⁶ of it."""
    grid = np.linspace(-1, 1, 401)
    B, dB = -(grid**3) - grid, -3 * grid**2 - 1
    D, dD = 1 + grid**2, 2 * grid
    errors = []
    for tau in (0.02, 0.01):
        lever = 1.5 * tau
        raw = burst_dataset(grid, B + 0.5 * tau * dB * B, D + lever * (dB * D + 0.5 * B * dD), tau, lever)
        fixed = debiased(raw)
        raw_1, fixed_1 = one_cv(raw), one_cv(fixed)
        errors.append([np.abs(raw_1["drift"].values - B).max(), np.abs(fixed_1["drift"].values - B).max(),
                       np.abs(raw_1["diffusion"].values - D).max(), np.abs(fixed_1["diffusion"].values - D).max()])
    (raw_b, fixed_b, raw_d, fixed_d), (raw_b2, fixed_b2, raw_d2, fixed_d2) = errors
    assert raw_b / raw_b2 == pytest.approx(2, rel=1e-6) and raw_d / raw_d2 == pytest.approx(2, rel=1e-6)
    # deterministic (docstring): the debiased remainder is second order, so halving τ quarters it up to its O(τ³) part,
    # relative O(τ) ≈ 2–4 % at τ = 0.02; rel 0.05
    assert fixed_b / fixed_b2 == pytest.approx(4, rel=0.05) and fixed_d / fixed_d2 == pytest.approx(4, rel=0.05)
    # deterministic: the first-order raw error against the second-order remainder at τ = 0.01; 5 is the separation the
    # test claims
    assert fixed_b2 < raw_b2 / 5 and fixed_d2 < raw_d2 / 5
    assert debiased(fixed) is fixed and fixed.attrs["debiased"] == 1
    assert Closure(raw).drift(0.5) == pytest.approx(float(np.interp(0.5, grid, fixed["drift"].values[:, 0])), abs=1e-6)
    plain = raw.copy()
    plain.attrs = {}
    assert debiased(plain) is plain  # not a burst estimate: as it is


# the mean path with its band ------------------------------------------------------------------------

def linear_closure(se):
    """B(z) = −z, D = 0.04 on [−2, 2] (PCHIP reproduces both exactly), drift standard error ``se``."""
    grid = np.linspace(-2, 2, 9)
    dataset = template(grid, diffusion=True)
    dataset["drift"].values[:, 0], dataset["diffusion"].values[:] = -grid, 0.04
    dataset["drift_stderr"].values[:], dataset["diffusion_stderr"].values[:] = se, 0.0
    dataset["done"].values[:] = True
    return Closure(dataset), grid


def test_mean_path_of_an_ornstein_uhlenbeck_closure():
    """dz = −z dt + 0.2 dW from z = 1: E z = e^{−t}, sd z = √(0.04 (1 − e^{−2t})/2). The drift's
    uncertainty, independent N(0, se²) at the 9 grid points and linear between them, moves the mean path by
    δ(t) = Σ_i η_i se ∫₀^t e^{−(t−u)} E[φ_i(z(u))] du (linear response; φ_i the hat functions, E over the
    paths' normal law), so closure_sd = se √(Σ_i c_i(t)²), computed here by quadrature."""
    closure, grid = linear_closure(0.05)
    times = np.linspace(0, 1, 6)
    band = mean_path(closure, 1.0, (0.0, 1.0), t_eval=times, dt=0.01, n_walkers=4000, n_samples=200,
                     walkers_per_sample=64, seed=3)
    assert list(band.data_vars) == ["z", "closure_sd", "path_sd", "z_stderr"]
    sd = np.sqrt(0.04 * (1 - np.exp(-2 * times)) / 2)
    heun = 0.01**2 * times  # weak order 2: |error| ≤ Δt² t |B|''-free bound for a linear drift
    assert np.all(np.abs(band.z.values - np.exp(-times)) <= 4 * band.z_stderr.values + heun)
    # the paths' sd: Heun with additive noise on B = −z is the linear chain z' = a z + c √(D Δt) ξ, a = 1 − Δt + Δt²/2,
    # c = 1 − Δt/2, whose variance after k steps is D Δt c² (1 − a^{2k})/(1 − a²) exactly: the bias bound is that
    # sd's relative distance to the exact one (computed: ≤ 2e-5 at Δt = 0.01), plus 4 relative standard errors of a
    # Gaussian sd over 4000 walkers, 1/√(2n). Old: + 0.01, not derived
    h = 0.01
    a, c, k = 1 - h + h**2 / 2, 1 - h / 2, np.round(times / h)
    heun_sd = np.sqrt(0.04 * h * c**2 * (1 - a ** (2 * k)) / (1 - a**2))
    bias = np.max(np.abs(heun_sd[1:] / sd[1:] - 1))
    np.testing.assert_allclose(band.path_sd.values[1:], sd[1:], rtol=4 / np.sqrt(2 * 4000) + bias)  # (above)
    u = np.linspace(0, 1, 2001)
    mean_u, sd_u = np.exp(-u), np.sqrt(0.04 * (1 - np.exp(-2 * u)) / 2)
    x, w = np.polynomial.hermite_e.hermegauss(40)
    w = w / w.sum()
    z = mean_u[:, None] + sd_u[:, None] * x[None, :]
    hats = np.stack([np.interp(z, grid, np.eye(grid.size)[i]) @ w for i in range(grid.size)])  # E φ_i(z(u))
    expected = [0.0]
    for t in times[1:]:
        inside = u <= t
        c = np.trapezoid(np.exp(-(t - u[inside])) * hats[:, inside], u[inside], axis=1)
        expected.append(0.05 * np.sqrt(np.sum(c**2)))
    # 200 draws: the sd's relative standard error is 1/√400 = 5 %; 64 shared paths per draw approximate E φ_i
    np.testing.assert_allclose(band.closure_sd.values[1:], expected[1:], rtol=4 / np.sqrt(400) + 0.05)
    assert band.closure_sd.values[0] == 0 and band.path_sd.values[0] == 0
    exact = mean_path(linear_closure(0.0)[0], 1.0, (0.0, 1.0), t_eval=times, dt=0.01, n_walkers=100,
                      n_samples=4, walkers_per_sample=8, seed=3)
    assert np.all(exact.closure_sd.values == 0)  # no uncertainty, no band
    again = mean_path(closure, 1.0, (0.0, 1.0), t_eval=times, dt=0.01, n_walkers=4000, n_samples=200,
                      walkers_per_sample=64, seed=3)
    xr.testing.assert_identical(again, band)


# storage and resume -------------------------------------------------------------------------------

def small_burst(n_walkers=200, n_steps=20):
    return burst_setup(n_walkers, n_steps)


def assert_same_store(a: xr.Dataset, b: xr.Dataset):
    xr.testing.assert_equal(a, b)
    assert parameters_of(a.attrs) == parameters_of(b.attrs)


def test_store_has_one_chunk_per_point_and_reads_back(tmp_path):
    import zarr

    result = estimate_closure(small_burst(), GRID[:6], seed=1, store=tmp_path / "c.zarr")
    group = zarr.open_group(str(tmp_path / "c.zarr"), mode="r")
    assert group.metadata.zarr_format == 3
    chunked = ("drift", "diffusion", "done", "n_samples")
    assert all(group[name].chunks == (1, *group[name].shape[1:]) for name in chunked)
    stored = load(tmp_path / "c.zarr")
    assert_same_store(stored, result)
    assert stored.attrs["title"] and stored.attrs["eqfree_version"]


def test_interrupted_then_resumed_store_equals_uninterrupted(tmp_path, monkeypatch):
    reference = estimate_closure(small_burst(), GRID, seed=5, store=tmp_path / "reference.zarr")
    original = LinearGaussianLift.__call__
    calls = []

    def failing(self, z, n, *, seed):
        calls.append(z)
        if len(calls) == 8:
            raise KeyboardInterrupt("interrupted at the 8th grid point")
        return original(self, z, n, seed=seed)

    monkeypatch.setattr(LinearGaussianLift, "__call__", failing)
    with pytest.raises(KeyboardInterrupt):
        estimate_closure(small_burst(), GRID, seed=5, store=tmp_path / "resumed.zarr")
    partial = load(tmp_path / "resumed.zarr")
    assert partial["done"].sum() == 7 and np.isnan(partial["drift"].values[7:]).all()

    calls.clear()

    def counting(self, z, n, *, seed):
        calls.append(z)
        return original(self, z, n, seed=seed)

    monkeypatch.setattr(LinearGaussianLift, "__call__", counting)
    resumed = estimate_closure(small_burst(), GRID, seed=5, store=tmp_path / "resumed.zarr")
    assert len(calls) == GRID.size - 7  # only the missing points were computed
    assert_same_store(resumed, reference)
    assert_same_store(load(tmp_path / "resumed.zarr"), load(tmp_path / "reference.zarr"))


KILLED_RUN = """
import sys
sys.path.insert(0, {tests!r})
from test_closures import GRID, burst_setup
from eqfree.closures import estimate_closure
estimate_closure(burst_setup(2000, 100), GRID, seed=9, store={store!r})
"""


def test_killed_run_resumes_to_the_uninterrupted_store(tmp_path):
    """A real crash: the estimating process is SIGKILLed once a few points are stored."""
    store = tmp_path / "killed.zarr"
    script = KILLED_RUN.format(tests=str(Path(__file__).parent), store=str(store))
    process = subprocess.Popen([sys.executable, "-c", script], env={**os.environ, "OMP_NUM_THREADS": "1"})
    chunks = store / "done" / "c"
    deadline = time.monotonic() + 120
    while (not (chunks.exists() and len(os.listdir(chunks)) >= 4) and process.poll() is None
           and time.monotonic() < deadline):
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    partial = load(store)
    assert 4 <= partial["done"].sum() < GRID.size
    resumed = estimate_closure(burst_setup(2000, 100), GRID, seed=9, store=store)
    reference = estimate_closure(burst_setup(2000, 100), GRID, seed=9)
    xr.testing.assert_equal(resumed, reference)
    xr.testing.assert_equal(load(store), reference)


def test_store_is_the_same_on_every_executor(tmp_path):
    distributed = pytest.importorskip("distributed")
    serial = estimate_closure(small_burst(), GRID[::4], seed=8, store=tmp_path / "serial.zarr")
    with ThreadPoolExecutor(2) as pool:
        threads = estimate_closure(small_burst(), GRID[::4], seed=8, store=tmp_path / "threads.zarr", executor=pool)
    assert_same_store(load(tmp_path / "threads.zarr"), serial)
    assert_same_store(threads, serial)
    for workers in (1, 2):
        with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=False,
                                      dashboard_address=None) as cluster, distributed.Client(cluster) as client:
            store = tmp_path / f"dask{workers}.zarr"
            estimate_closure(small_burst(), GRID[::4], seed=8, store=store, executor=client.get_executor())
        assert_same_store(load(store), serial)


@pytest.mark.slow
def test_store_is_the_same_on_dask_worker_processes(tmp_path):
    distributed = pytest.importorskip("distributed")
    serial = estimate_closure(small_burst(), GRID[::4], seed=8)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        estimate_closure(small_burst(), GRID[::4], seed=8, store=tmp_path / "p.zarr", executor=client.get_executor())
    assert_same_store(load(tmp_path / "p.zarr"), serial)


# bad input ----------------------------------------------------------------------------------------

def test_grid_outside_the_lifts_valid_range_is_refused_before_any_work(tmp_path):
    with pytest.raises(ValueError, match=r"outside the lift's valid range \[-2, 2\]"):
        estimate_closure(small_burst(), np.linspace(-3, 3, 7), seed=0, store=tmp_path / "c.zarr")
    assert not (tmp_path / "c.zarr").exists()
    with pytest.raises(ValueError, match="strictly increasing"):
        estimate_closure(small_burst(), [0.0, 0.0, 1.0], seed=0)


@pytest.mark.parametrize("tau", [0.0, -0.01, float("nan")])
def test_non_positive_burst_is_refused(tau):
    with pytest.raises(ValueError, match="tau .*must be a finite positive"):
        BurstEstimator(EXACT_CUBIC_LIFT, CUBIC.evolver(DT), Coordinates("x1"), tau=tau, n_walkers=10)
    with pytest.raises(ValueError, match="multiple of the fine step"):
        BurstEstimator(EXACT_CUBIC_LIFT, CUBIC.evolver(DT), Coordinates("x1"), tau=1.5 * DT, n_walkers=10)
    with pytest.raises(ValueError, match="t_heal = 0.02 must satisfy"):
        BurstEstimator(EXACT_CUBIC_LIFT, CUBIC.evolver(DT), Coordinates("x1"), tau=0.01, n_walkers=10, t_heal=0.02)
    with pytest.raises(ValueError, match="holds 2 saved states, too few"):
        BurstEstimator(EXACT_CUBIC_LIFT, CUBIC.evolver(DT), Coordinates("x1"), tau=2 * DT, n_walkers=10)


def test_store_from_a_different_recipe_is_refused(tmp_path):
    store = tmp_path / "c.zarr"
    estimate_closure(small_burst(), GRID[:3], seed=1, store=store)
    with pytest.raises(ValueError, match=r"different recipe.*seed: 1 → 2"):
        estimate_closure(small_burst(), GRID[:3], seed=2, store=store)
    with pytest.raises(ValueError, match=r"n_walkers: 200 → 300"):
        estimate_closure(small_burst(300), GRID[:3], seed=1, store=store)
    with pytest.raises(ValueError, match=r"grid: "):
        estimate_closure(small_burst(), GRID[:4], seed=1, store=store)
    fresh = estimate_closure(small_burst(300), GRID[:3], seed=1, store=store, overwrite=True)
    assert parameters_of(load(store).attrs)["n_walkers"] == 300 and fresh["done"].all()


def test_missing_dask_gives_an_install_hint(monkeypatch):
    from eqfree.parallel import executor_for

    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ImportError, match=r"pip install 'eqfree\[dist\]'"):
        with executor_for("tcp://127.0.0.1:8786"):
            pass


def test_closure_refuses_outside_the_grid_and_where_not_done():
    dataset = estimate_closure(small_burst(), GRID[:5], seed=1)
    dataset["done"].values[3] = False
    dataset["drift"].values[3] = np.nan
    closure = Closure(dataset)
    estimates = closure.dataset  # debiased within the run of done points 0-2; the lone point 4 as estimated
    assert estimates["drift"].values[4] == dataset["drift"].values[4]
    grid = GRID[:5]
    np.testing.assert_allclose(closure.drift(grid[:3]), estimates["drift"].values[:3, 0])
    assert closure.drift(grid[1] + 0.01).shape == ()
    with pytest.raises(ValueError, match="outside the closure's grid"):
        closure.drift(grid[-1] + 0.1)
    with pytest.raises(ValueError, match=r"not estimated around z = -1.275.*resume"):
        closure.drift(grid[3])
    with pytest.raises(ValueError, match="not estimated around"):
        closure.diffusion(0.5 * (grid[3] + grid[4]))
    np.testing.assert_allclose(closure.drift(grid[4]), estimates["drift"].values[4, 0])  # a lone done end point
    linear = Closure(dataset, interpolation="linear")
    np.testing.assert_allclose(linear.drift(0.5 * (grid[0] + grid[1])), estimates["drift"].values[:2].mean())
    with pytest.raises(ValueError, match="interpolation must be one of"):
        Closure(dataset, interpolation="spline")
    averages = ConditionalAverageEstimator(EXACT_CUBIC_LIFT, slow_drift, n_samples=10)
    no_diffusion = Closure(estimate_closure(averages, GRID[:3], seed=1))
    with pytest.raises(ValueError, match="no diffusion"):
        integrate(no_diffusion, -1.45, (0, 0.01), sde=True, dt=1e-3, n_walkers=2, seed=1)


def test_integration_leaving_the_grid_is_reported():
    averages = ConditionalAverageEstimator(EXACT_CUBIC_LIFT, slow_drift, n_samples=100)
    closure = Closure(estimate_closure(averages, GRID[25:], seed=1))
    with pytest.raises(ValueError, match=r"closed ODE at t = .*outside the closure's grid \[0.375, 1.5\]"):
        integrate(closure, 0.5, (0.0, 5.0))
    with pytest.raises(ValueError, match="t_span"):
        integrate(closure, 0.5, (1.0, 1.0))
    with pytest.raises(ValueError, match="explicit seed"):
        integrate(closure, 0.5, (0.0, 1.0), sde=True, dt=0.1)


@pytest.mark.slow
def test_demo_mean_path_band_holds_the_direct_mean(tmp_path, capsys):
    """`make demo`: the closure of tutorials/closure_demo.toml, then `closure integrate --compare 1000 --seed 2`.
    The direct mean must lie within the Bonferroni family-wise 1 % bound of the combined standard error at
    all 100 saved times after the first (|N(0, 1)| > 3.89 at any of 100 with probability ≤ 1 %); the
    closure's 3-sd band stays narrower than 0.01, and at t = 1 the closure's sd exceeds the direct mean's se
    (the uncertainty a band without the closure's errors would leave out)."""
    from eqfree.cli import main

    store, path = tmp_path / "closure.zarr", tmp_path / "path.zarr"
    recipe = Path(__file__).parents[1] / "tutorials" / "closure_demo.toml"
    assert main(["run", str(recipe), f"--out={store}", "--quiet"]) == 0
    assert main(["closure", "integrate", "--closure", str(store), "--z0", "1", "--t-end", "1", "--compare", "1000",
                 "--seed", "2", "--out", str(path), "--quiet"]) == 0
    assert "direct mean inside the simultaneous 99 % band at 101 of 101 times" in capsys.readouterr().out
    result = xr.open_zarr(path)
    assert np.all(np.abs(result["gap"].values[1:]) <= 3.89)
    combined = np.sqrt(result["closure_sd"] ** 2 + result["z_stderr"] ** 2 + result["direct_stderr"] ** 2)
    np.testing.assert_allclose(result["band"], norm.isf(0.01 / 200) * combined)  # the band the gaps are measured in
    assert 3 * float(result["closure_sd"].max()) < 0.01
    assert float(result["closure_sd"][-1]) > float(result["direct_stderr"][-1])


def test_burst_drift_vector_and_diffusion_tensor_of_the_full_double_well():
    """Issue 21: double_well with CVs (x1, x2), the whole state, lifted exactly (the point itself): drift = −∇U and
    D = (2/β) I within 3 se + 3 % (of |∇U| and of 2/β) at ≥ 90 % of an 11 × 7 grid on [−2.5, 2.5] × [−1.5, 1.5].
    Not debiased (one point at a time): the burst keeps ½τ(B′B + ½B″D) in the drift, ≤ 0.04 at τ = 0.002 (3 se ≈ 0.7),
    and ½p(JD + DJᵀ) in the diffusion (J = ∇B, the lever p ≈ 1.5τ), ≤ 0.08 at x1 = ±2.5 (3 se + 3 % ≈ 0.15)."""
    well = systems.get("double_well")
    lift = FunctionLift(lambda z, n, *, seed: np.tile(np.asarray(z, dtype=float).reshape(1, 2), (n, 1)))
    estimator = BurstEstimator(lift, well.evolver(2e-4), Coordinates(["x1", "x2"]), tau=0.002, n_walkers=20_000)
    hits = []
    for i, point in enumerate(itertools.product(np.linspace(-2.5, 2.5, 11), np.linspace(-1.5, 1.5, 7))):
        values = estimator(np.array(point), seed=i)
        force = well.drift(torch.tensor([point]), 0.0).numpy()[0]
        drift_ok = np.abs(values["drift"] - force) <= 3 * values["drift_stderr"] + 0.03 * np.abs(force)
        diffusion_ok = np.abs(values["diffusion"] - 2 / well.beta * np.eye(2)) <= (
            3 * values["diffusion_stderr"] + 0.03 * 2 / well.beta)
        hits.append(drift_ok.all() and diffusion_ok.all())
    print(f"double_well (x1, x2): {np.mean(hits):.1%} of 77 points within 3 se + 3 %")
    # the docstring's bound: each point within 3 se + 3 % (the stated burst biases are below the 3 %); 3 se on each of 6
    # components has joint coverage ≈ 0.984, so ≥ 90 % of 77 points fails for a correct estimator with probability
    # 4e-5 (binomial(77, 0.016) ≥ 8; fewer still with the 3 % allowance)
    assert np.mean(hits) >= 0.9
