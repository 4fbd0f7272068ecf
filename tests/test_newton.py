"""Coarse Newton–Krylov fixed points and coarse eigenvalues on the stochastic coarse time-stepper, against the
averaged drift of averaging_cubic, B(z) = λz − z³ − 3vz (v = s², the fast variance under the default
Leimkuhler–Matthews scheme: eqfree.systems.AveragingCubic.fast_variance)."""

import numpy as np
import pytest

from eqfree import CoarseTimeStepper, Coordinates, systems
from eqfree.coarse import BurstDrift, newton_krylov
from eqfree.errors import ConvergenceError, InputError, InputTypeError

DT = 1e-4  # the system's default step, ε/10
TAU = 100 * DT  # the CLI's default burst: 100 fine steps = 10 ε


def family(lam):
    system = systems.get("averaging_cubic", lam=lam)
    return CoarseTimeStepper(system.exact_lift(DT), system.evolver(DT), Coordinates("x1", 2))


def truth(lam):
    system = systems.get("averaging_cubic", lam=lam)
    v = system.fast_variance(DT)
    return system, v


# Tolerances: the burst drift at a computed root is F̄ = 0, so the root's error is the sampling error of F
# (its delta-method standard error z_stderr), plus the burst bias: E[Δz]/τ = B + ½ τ B′B + O(τ²) vanishes at a
# root of B, and the lag and O(ε) corrections of the averaging are below 10⁻³ at ε = 10⁻³, against standard
# errors of 10⁻². Eigenvalues: log(1 + τν)/τ of the Jacobian ν is B′ up to O(τ B′³) ≈ 10⁻², and the central
# difference of the cubic adds −h² (h ≤ √σ_F ≈ 0.1: at most 0.01), a third of their standard error.
def test_fixed_point_and_eigenvalue_on_the_nontrivial_branch():
    lam = 1.5
    system, v = truth(lam)
    drift = BurstDrift(family, tau=TAU, n_walkers=1000)
    point = newton_krylov(drift, 1.2, lam=lam, seed=3)
    z_star = np.sqrt(lam - 3 * v)
    # 3 delta-method standard errors; the burst bias vanishes at the root and the averaging's corrections are < 1e-3
    # against se ≈ 1e-2 (the Tolerances block above)
    assert abs(point.z[0] - z_star) < 3 * point.z_stderr[0]
    assert 0.005 < point.z_stderr[0] < 0.05  # resolved, and not so loose that the check is empty
    slope = lam - 3 * v - 3 * point.z[0] ** 2  # B′ at the computed root (−2 z*² on the branch)
    assert abs(point.eigenvalues.values[0] - slope) < 3 * point.eigenvalues.stderr[0]
    # against −2 z*² at the analytic root: the root's own error moves B′ by 4 z* δz
    margin = 3 * point.eigenvalues.stderr[0] + 4 * z_star * 3 * point.z_stderr[0]
    assert abs(point.eigenvalues.values[0] + 2 * z_star**2) < margin
    assert point.stable and point.iterations <= 6
    assert point.fine_steps == drift.n_bursts * 1000 * 100


@pytest.mark.parametrize("lam, stable", [(0.5, True), (1.0, False)])
def test_trivial_branch_on_both_sides_of_the_pitchfork(lam, stable):
    system, v = truth(lam)
    assert 3 * v == pytest.approx(0.75)
    point = newton_krylov(BurstDrift(family, tau=TAU, n_walkers=1000), 0.1, lam=lam, seed=5)
    # 3 delta-method standard errors; no bias at the root (Tolerances block above)
    assert abs(point.z[0]) < 3 * point.z_stderr[0]
    slope = lam - 3 * v  # B′(0) = λ − 3 s²: −0.25 and +0.25
    eigenvalue, stderr = point.eigenvalues.values[0], point.eigenvalues.stderr[0]
    # 3 standard errors of the eigenvalue, plus the root's own error moving B′ = λ − 3s² − 3z² by 6|z|δz ≈ 3|z|·(3
    # z_stderr) at the computed z ≈ 0 (the O(τB′³) and −h² biases are a third of a standard error: Tolerances block
    # above)
    assert abs(eigenvalue - slope) < 3 * stderr + 3 * abs(point.z[0]) * 3 * point.z_stderr[0]
    assert abs(eigenvalue) > 3 * stderr and np.sign(eigenvalue) == np.sign(slope)  # the sign is resolved
    assert point.stable is stable


def test_same_seed_same_root_and_another_seed_another_sample():
    drift = BurstDrift(family, tau=TAU, n_walkers=200)
    first, again = (newton_krylov(drift, 1.0, lam=1.2, seed=9) for _ in range(2))
    assert np.array_equal(first.z, again.z) and np.array_equal(first.eigenvalues.values, again.eigenvalues.values)
    other = newton_krylov(drift, 1.0, lam=1.2, seed=10)
    assert other.z[0] != first.z[0]


def test_replicate_solves_scatter_as_the_delta_method_says():
    """10 independent solves (bursts of 5 ε): their sample variance over the mean squared delta-method standard
    error is χ²₉/9 distributed; its 0.1 % and 99.9 % quantiles are 0.128 and 3.10."""
    drift = BurstDrift(family, tau=TAU / 2, n_walkers=200)
    points = [newton_krylov(drift, 0.5, lam=1.0, seed=100 + k) for k in range(10)]
    z = np.array([p.z[0] for p in points])
    ratio = z.var(ddof=1) / np.mean([p.z_stderr[0] ** 2 for p in points])
    # the docstring's χ²₉/9 quantiles at 0.1 % and 99.9 %: a false failure for 0.2 % of seeds
    assert 0.128 < ratio < 3.10
    _, v = truth(1.0)
    # 3 standard errors of the mean of the 10 independent solves (their own scatter); the root's bias is < 1e-3
    # (Tolerances block above)
    assert abs(z.mean() - np.sqrt(1.0 - 3 * v)) < 3 * np.sqrt(z.var(ddof=1) / len(z))


def test_walkers_double_until_the_standard_error_target():
    drift = BurstDrift(family, tau=TAU, n_walkers=100)
    loose = newton_krylov(drift, 0.7, lam=1.0, seed=4)
    target = loose.z_stderr[0] / 2.5  # needs about 2.5² = 6.3 times the walkers
    tight = newton_krylov(drift, 0.7, lam=1.0, seed=4, stderr_target=target)
    assert tight.n_walkers >= 400 and tight.z_stderr[0] <= target
    # it stopped at the first doubling that met the target: half as many walkers (the same seed) did not
    half = newton_krylov(drift.with_walkers(tight.n_walkers // 2), 0.7, lam=1.0, seed=4)
    assert half.z_stderr[0] > target
    capped = newton_krylov(drift, 0.7, lam=1.0, seed=4, stderr_target=target, max_walkers=200)
    assert capped.n_walkers == 200 and capped.z_stderr[0] > target


def test_common_random_numbers_shrink_the_derivative_noise():
    """Per walker, a central difference with independent seeds has variance 2 Var(F_r)/(2h)² (an invariant of
    independent draws); with the same seed it is the scatter of the pathwise derivative, far smaller."""
    drift = BurstDrift(family, tau=TAU, n_walkers=2000)
    u, h, e = np.array([0.6, 1.0]), 0.05, np.array([1.0, 0.0])
    spread = drift.samples(u, 1).var(ddof=1)
    common = drift.directional_samples(u, e, h, 1).var(ddof=1)
    independent = ((drift.samples(u + h * e, 2) - drift.samples(u - h * e, 3)) / (2 * h)).var(ddof=1)
    # the variance of a sample variance of 2000 draws: within 15 % (a few standard errors for kurtosis up to 10)
    assert independent == pytest.approx(2 * spread / (2 * h) ** 2, rel=0.15)
    assert independent / common > 50


def test_mistakes_are_refused():
    drift = BurstDrift(family, tau=TAU, n_walkers=50)
    with pytest.raises(InputError, match="z0 must be"):
        newton_krylov(drift, np.nan, lam=1.0, seed=1)
    with pytest.raises(InputTypeError, match="family must be callable"):
        BurstDrift(3.0, tau=TAU, n_walkers=50)
    with pytest.raises(InputError, match="n_walkers"):
        BurstDrift(family, tau=TAU, n_walkers=1)
    with pytest.raises(ConvergenceError, match="did not converge in 1 iterations"):
        newton_krylov(drift, 1.5, lam=1.0, seed=1, max_iterations=1)


def test_two_dimensional_fixed_point_and_both_eigenvalues():
    """two_slow restricted to its slow pair (x1, x2): the coarse dynamics are exactly linear and closed (x3 does not
    act on them), z_{n+1} = (I − A dt) z_n + noise with A = [[0, −1], [1, γ]] under its Euler–Maruyama scheme, so the
    coarse fixed point is 0 and the flow eigenvalues log(1 + τν)/τ of a burst of n = τ/dt steps are exactly
    log(eig(I − A dt))/dt, within O(dt |λ|²) ≈ 5e-4 of the continuous (−γ ± i√(4 − γ²))/2. With common random
    numbers the directional derivatives of a linear map carry no noise, so the eigenvalues match to rounding."""
    system = systems.get("two_slow")
    stepper = CoarseTimeStepper(system.exact_lift(cv=("x1", "x2")), system.evolver(), Coordinates(["x1", "x2"], 3))
    point = newton_krylov(BurstDrift(lambda lam: stepper, tau=100 * system.dt, n_walkers=2000), [0.3, 0.2], lam=0.0,
                          seed=1)
    # the coarse fixed point is exactly 0 (docstring): 3 delta-method standard errors
    assert np.all(np.abs(point.z) < 3 * point.z_stderr)
    exact = np.log(np.linalg.eigvals(np.eye(2) - system.rate_matrix[:2, :2] * system.dt).astype(complex)) / system.dt
    continuous = np.linalg.eigvals(-system.rate_matrix[:2, :2])
    # the docstring's O(dt |λ|²) ≈ 5e-4 between EM's and the continuous eigenvalues: bound 1e-3
    assert np.allclose(np.sort_complex(exact), np.sort_complex(continuous), atol=1e-3)
    order, exact_order = np.argsort(point.eigenvalues.values.imag), np.argsort(exact.imag)
    found, stderr = point.eigenvalues.values[order], point.eigenvalues.stderr[order]
    # exact (docstring): with common random numbers a linear map's directional derivatives carry no noise, so only
    # rounding, 1e-8 (plus 3 reported standard errors, themselves ≈ 0)
    assert np.all(np.abs(found - exact[exact_order]) < 3 * np.abs(stderr) + 1e-8)
    assert point.stable
