"""Gillespie's SSA and tau-leaping against exact laws: the Schlögl chain's closed-form stationary distribution
and its master equation, the immigration–death process; seeding that does not depend on how walkers are split."""

import numpy as np
import pytest
from scipy import linalg

from eqfree import Evolve, systems
from eqfree.errors import InputError
from eqfree.evolve import GillespieEvolver, ReactionNetwork


def chi_square(counts: np.ndarray, probabilities: np.ndarray, n: int) -> tuple[float, int]:
    """Pearson's statistic over the states expected at least 5 times (the rest pooled in one bin) and its
    degrees of freedom."""
    expected = probabilities * n
    keep = expected >= 5
    observed = np.append(counts[keep], n - counts[keep].sum())
    expected = np.append(expected[keep], n - expected[keep].sum())
    return float(((observed - expected) ** 2 / expected).sum()), int(keep.sum())


def histogram(x: np.ndarray, omega: float, size: int) -> np.ndarray:
    counts = np.rint(x * omega).astype(int)
    return np.bincount(np.minimum(counts, size), minlength=size + 1)[:size]


# Bound: walkers are independent, so a histogram of n of them is multinomial and Pearson's statistic is
# χ² with k degrees of freedom (mean k, sd √(2k)); mean + 5 sd is exceeded with probability < 10⁻⁴.
def test_ssa_keeps_the_exact_stationary_distribution_of_the_schlogl_chain():
    system = systems.get("schlogl", omega=20)  # bistable: modes near x = 0.3 and 1.7
    states, pi = system.stationary_distribution()
    assert pi.sum() == pytest.approx(1) and pi[-1] < 1e-12
    n = 10_000
    x0 = system.stationary_samples(n, seed=1)
    run = system.simulate(n, 200, dt=0.01, x0=x0, seed=2, save_every=200)  # t = 2: several relaxation times
    statistic, dof = chi_square(histogram(run.values[-1, :, 0], 20, len(pi)), pi, n)
    # Pearson's χ² of a multinomial histogram: mean k, sd √(2k); mean + 5 sd (comment above the test)
    assert statistic < dof + 5 * np.sqrt(2 * dof)
    assert not np.array_equal(run.values[-1], run.values[0])  # the walkers moved


def test_ssa_follows_the_master_equation_from_a_point_mass():
    """From X = 20 (the unstable middle state at Ω = 20) the law at t = 0.5 is p₀ exp(Qt), Q the chain's generator
    on the states 0 … 119 (π beyond is below 10⁻¹⁶)."""
    system = systems.get("schlogl", omega=20)
    states, pi = system.stationary_distribution()
    rates = system.propensities(states[:, None])
    births, deaths = rates[:, 0] + rates[:, 2], rates[:, 1] + rates[:, 3]
    births[-1] = 0.0  # truncation
    generator = np.diag(births[:-1], 1) + np.diag(deaths[1:], -1)
    generator -= np.diag(generator.sum(axis=1))
    p0 = np.zeros(len(states))
    p0[20] = 1.0
    exact = p0 @ linalg.expm(0.5 * generator)
    n = 10_000
    run = system.simulate(n, 50, dt=0.01, x0=np.array([1.0]), seed=4, save_every=50)
    statistic, dof = chi_square(histogram(run.values[-1, :, 0], 20, len(pi)), exact, n)
    # Pearson's χ² against the exact transient law p0·exp(0.5 Q): mean + 5 sd, as above (SSA is exact: no bias)
    assert statistic < dof + 5 * np.sqrt(2 * dof)
    # and the law has not yet reached π: a wrong clock (e.g. a rate off by 2) would be caught the same way
    wrong = p0 @ linalg.expm(1.0 * generator)
    # the power check: the same mean + 5 sd threshold, now exceeded for the law at t = 1
    assert chi_square(histogram(run.values[-1, :, 0], 20, len(pi)), wrong, n)[0] > dof + 5 * np.sqrt(2 * dof)


def immigration_death(k: float, gamma: float) -> ReactionNetwork:
    return ReactionNetwork(np.array([[1], [-1]]),
                           lambda counts: np.column_stack([np.full(len(counts), k), gamma * counts[:, 0]]))


@pytest.mark.parametrize("leap", [None, 0.2])
def test_immigration_death_stationary_moments(leap):
    """SSA: Poisson(k/γ), mean = variance = 20. Tau-leaping with leap δ: X' = X + Poisson(kδ) − Poisson(γδX) has
    the mean recursion m' = m + (k − γm)δ (fixed point k/γ, exact) and the variance V' = (1 − γδ)² V + (k + γm)δ,
    so V = 2kδ / (1 − (1 − γδ)²) = (k/γ)/(1 − γδ/2) = 22.2 at δ = 0.2. Bounds: 4 standard errors of the mean
    (√(V/n)) and of the variance (V √(2/n) for a near-Gaussian law): 0.19 and 1.3, the leap's shift is 2.2."""
    k, gamma, n = 20.0, 1.0, 10_000
    evolver = GillespieEvolver(immigration_death(k, gamma), 1.0, leap=leap)
    run = evolver(np.full((n, 1), 20.0), 5, seed=7, save_every=5)  # the variance relaxes as e^(−2γt): e⁻¹⁰ left
    x = run.values[-1, :, 0]
    variance = k / gamma if leap is None else (k / gamma) / (1 - gamma * leap / 2)
    assert abs(x.mean() - k / gamma) < 4 * np.sqrt(variance / n)
    assert abs(x.var(ddof=1) - variance) < 4 * variance * np.sqrt(2 / n)
    assert np.array_equal(x, np.round(x))


def test_same_seed_same_numbers_whatever_the_split():
    system = systems.get("schlogl", omega=50)
    evolver = system.evolver(0.05)
    x0 = system.stationary_samples(1500, seed=3)
    whole = evolver(x0, 4, seed=9)
    again = evolver(x0, 4, seed=9)
    assert np.array_equal(whole.values, again.values)
    # walkers 1000 … 1499 straddle the block boundary at 1024: alone, they draw the same numbers
    part = evolver(x0[1000:], 4, seed=9, first_walker=1000)
    assert np.array_equal(part.values, whole.values[:, 1000:])
    leaping = system.evolver(0.05, leap=0.01)
    assert np.array_equal(leaping(x0[1000:], 2, seed=9, first_walker=1000).values,
                          leaping(x0, 2, seed=9).values[:, 1000:])
    assert not np.array_equal(evolver(x0, 4, seed=10).values, whole.values)


def test_the_evolver_is_an_evolve_and_refuses_what_it_cannot_do():
    system = systems.get("schlogl")
    evolver = system.evolver()
    assert isinstance(evolver, Evolve) and evolver.coords == ["x1"] and evolver.dt == system.dt
    run = evolver(system.x0[None], 3, seed=1)
    assert run.dims == ("time", "walker", "coord") and np.allclose(run.time, [0, 0.01, 0.02, 0.03])
    with pytest.raises(InputError, match="no potential to bias"):
        evolver.biased(None)
    with pytest.raises(InputError, match="multiples of 1/volume"):
        evolver(np.array([[0.123]]), 1, seed=1)
    with pytest.raises(InputError, match="must divide"):
        GillespieEvolver(immigration_death(1, 1), 0.1, leap=0.03)
    with pytest.raises(InputError, match="made a count negative"):
        GillespieEvolver(immigration_death(0.1, 1), 1.0, leap=1.0)(np.full((1000, 1), 1.0), 5, seed=1)
    with pytest.raises(InputError, match="stoichiometry"):
        ReactionNetwork(np.array([[0.5]]), lambda counts: counts)


def test_schlogl_facts():
    system = systems.get("schlogl")
    (x_low, b_low), (x_high, b_high) = system.folds()
    assert x_low == pytest.approx(1 - 1 / np.sqrt(6)) and x_high == pytest.approx(1 + 1 / np.sqrt(6))
    assert b_low == pytest.approx(0.636083, abs=1e-6) and b_high == pytest.approx(0.363917, abs=1e-6)
    assert np.allclose(system.steady_states(), [1 - np.sqrt(0.5), 1, 1 + np.sqrt(0.5)])
    assert np.allclose(system.rate_equation(system.steady_states()), 0, atol=1e-12)
    x = np.linspace(0.1, 2, 20)
    # the chain's drift vanishes on its own branch, and that branch is within the stated O(1/Ω) bound of g
    assert np.allclose([systems.get("schlogl", b=b).chain_drift(xi) for xi, b in zip(x, system.chain_branch(x))], 0,
                       atol=1e-12)
    assert np.all(np.abs(system.chain_branch(x) - system.branch(x)) <= system.branch_bound(x))
    assert system.x0[0] * system.omega == pytest.approx(round(system.x0[0] * system.omega), abs=1e-9)
