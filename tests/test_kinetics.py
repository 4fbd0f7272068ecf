"""Kinetics of closed SDEs: mean first-passage times, rates and committors against closed forms, between the
1-D quadrature and the n-D finite volumes, against closed-SDE first passages, and from an estimated closure.

The double well (systems.double_well, β = 0.3 so that a passage takes ~17 time units): x1 is autonomous,
dx1 = −U′(x1) dt + √(2/β) dW, so its exact closure is B = −U′, D = 2/β, and the exact MFPT from x1 = −2.5 to
[0.5, 3.5], reflecting at the grid's lower end −3.5, is the 1-D quadrature on a 20001-point mesh (trapezoid
error O(10⁻⁸) relative).
"""

import json
import math

import numpy as np
import pytest

from eqfree import Coordinates, systems
from eqfree.cli import main
from eqfree.closures import (
    Box,
    BurstEstimator,
    Closure,
    estimate_closure,
    first_passage_time,
    grid_committor,
    grid_generator,
    grid_mfpt,
    passage,
    simulated_passages,
)
from eqfree.closures.store import template
from eqfree.systems import LinearGaussianLift

BETA = 0.3
WELL = systems.get("double_well", beta=BETA)
D = 2 / BETA
START, TARGET = -2.5, (0.5, 3.5)


def drift(z):
    return -(WELL.a * z**3 - WELL.b * z + WELL.c)


def exact_mfpt(low=-3.5, target=TARGET):
    mesh = np.linspace(low, 3.5, 20001)
    return float(np.interp(START, mesh, first_passage_time(mesh, drift(mesh), np.full_like(mesh, D), target)))


def test_quadrature_and_finite_volumes_are_exact_for_constant_coefficients():
    """Brownian motion with drift b, diffusion d, reflecting at a, absorbed at c: with κ = 2b/d,
    T(z) = [(c − z) − (e^{κ(a−z)} − e^{κ(a−c)})/κ]/b. Scharfetter–Gummel rates are exact for constant
    coefficients between nodes; the quadrature carries the trapezoid's O(h²) error (h = 10⁻⁴ here)."""
    b, d, a, c = 0.7, 0.5, -1.0, 2.0
    kappa = 2 * b / d
    closed = lambda z: ((c - z) - (np.exp(kappa * (a - z)) - np.exp(kappa * (a - c))) / kappa) / b
    mesh = np.linspace(a, 3.0, 50001)
    quadrature = first_passage_time(mesh, np.full_like(mesh, b), np.full_like(mesh, d), (c, 3.0))
    inside = mesh < c
    np.testing.assert_allclose(quadrature[inside], closed(mesh[inside]), rtol=1e-7, atol=1e-9)
    errors = []
    for n in (31, 61):  # the mirror image too: the target below, reflecting at the upper end
        grid = np.linspace(a, c, n)
        for sign in (1, -1):
            q = grid_generator([sign * grid[::sign]], np.full((n, 1), sign * b), np.full((n, 1, 1), d))
            time = grid_mfpt(q, np.arange(n) == (n - 1 if sign == 1 else 0))[::sign]
            errors.append(np.abs(time - closed(grid)).max() / closed(a))
    # exact inside for constant coefficients but for the reflecting end's half cell: O(h²), quartered by h/2
    assert max(errors) < 1e-3
    assert 0.2 < errors[2] / errors[0] < 0.3 and 0.2 < errors[3] / errors[1] < 0.3


def test_the_jump_process_has_the_sdes_first_two_moments():
    """The generator on a grid applied to z_i and z_i z_j: B_i and D_ij exactly (constant B, D, interior cells;
    the Scharfetter–Gummel sum k₊ + k₋ = (a/h²) P coth(P/2) is 2a/h² at B = 0, so second moments with B = 0)."""
    x, y = np.linspace(-1, 1, 21), np.linspace(-2, 2, 31)
    z1, z2 = np.meshgrid(x, y, indexing="ij")
    tensor = np.array([[0.8, -0.3], [-0.3, 1.5]])
    tensors = np.broadcast_to(tensor, (21, 31, 2, 2))
    inner = (slice(1, -1), slice(1, -1))
    moved = grid_generator([x, y], np.broadcast_to([0.4, -1.1], (21, 31, 2)), tensors)
    for i, f in enumerate((z1, z2)):
        np.testing.assert_allclose((moved @ f.ravel()).reshape(21, 31)[inner], [0.4, -1.1][i], atol=1e-12)
    still = grid_generator([x, y], np.zeros((21, 31, 2)), tensors)
    for (i, j), f in {(0, 0): z1**2, (0, 1): z1 * z2, (1, 1): z2**2}.items():
        np.testing.assert_allclose((still @ f.ravel()).reshape(21, 31)[inner], tensor[i, j], atol=1e-12)
    assert abs(still.sum(axis=1)).max() < 1e-12


def test_two_dimensional_mfpt_and_committor_of_a_separable_system():
    """Double well in (x1, x2): x1 autonomous, so the 2-D MFPT to x1 ≥ 0.5 is the 1-D one at every x2 and the
    committor between x1 ≤ −2 and x1 ≥ 0.5 is the 1-D q(z) = ∫_{−2}^z ψ⁻¹ / ∫_{−2}^{0.5} ψ⁻¹. The finite volumes'
    error is O(h²): halving h quarters it."""
    errors = []
    for n in (281, 141):
        x, y = np.linspace(-3.5, 3.5, n), np.linspace(-3, 3, 41)
        z1, z2 = np.meshgrid(x, y, indexing="ij")
        tensors = np.broadcast_to(np.eye(2) * D, (n, 41, 2, 2))
        q = grid_generator([x, y], np.stack([drift(z1), -WELL.d * z2], -1), tensors)
        time = grid_mfpt(q, z1 >= 0.5).reshape(n, 41)
        assert np.ptp(time, axis=1).max() < 1e-9 * time.max()
        errors.append(abs(np.interp(START, x, time[:, 20]) / exact_mfpt() - 1))
    assert errors[1] < 2e-3 and 0.2 < errors[0] / errors[1] < 0.3
    committor = grid_committor(q, z1 <= -2, z1 >= 0.5).reshape(141, 41)
    mesh = np.linspace(-2, 0.5, 20001)
    phi = np.r_[0, np.cumsum(np.diff(mesh) * (drift(mesh[1:]) + drift(mesh[:-1])))] / D
    inverse = np.r_[0, np.cumsum(np.diff(mesh) * 0.5 * (np.exp(-phi[1:]) + np.exp(-phi[:-1])))]
    between = (x > -2) & (x < 0.5)
    exact = np.interp(x[between], mesh, inverse / inverse[-1])
    # O(h²) as the MFPT: 10⁻³ at h = 0.05 (q's range is 1)
    np.testing.assert_allclose(committor[between], np.broadcast_to(exact[:, None], (between.sum(), 41)), atol=1e-3)


def exact_closure(grid, drift_stderr=0.0, diffusion_stderr=0.0):
    data = template(grid, diffusion=True)
    data["drift"].values[:] = drift(grid)
    data["diffusion"].values[:] = D
    data["drift_stderr"].values[:] = drift_stderr
    data["diffusion_stderr"].values[:] = diffusion_stderr
    data["n_samples"].values[:] = 1
    data["done"].values[:] = True
    return Closure(data)


def monitoring_and_step_bias(mfpt, dt):
    """How far the mean of Euler–Maruyama first passages with step dt may lie from the MFPT (module doc of
    closures.kinetics): checking at the steps moves the target's edge by 0.5826 √(D dt) (the change of T it
    makes, by quadrature), and the scheme's invariant law is wider by a factor ≈ 1 + |B′| dt/2 in the well
    (B′ = −13.2 at x1 = −2.53), lowering the barrier Δφ = ∫ 2B/D (well → barrier, 3.5) by Δφ |B′| dt/2."""
    shifted = exact_mfpt(target=(TARGET[0] + 0.5826 * math.sqrt(D * dt), TARGET[1]))
    return abs(shifted - exact_mfpt()) + mfpt * 3.5 * 13.2 * dt / 2


def test_closure_mfpt_matches_quadrature_and_closed_sde_passages():
    closure = exact_closure(np.linspace(-3.5, 0.5, 41))
    result = passage(closure, START, Box((0.5,), (3.5,)), seed=1)
    # PCHIP of the cubic B at h = 0.1: |δB| ≲ h³|B‴|/24 ≈ 2.5·10⁻⁴, δ log T ≤ 3 · 2|δB|/D ≈ 2·10⁻⁴
    np.testing.assert_allclose(result["mfpt"], exact_mfpt(), rtol=1e-3)
    assert result["mfpt_stderr"] == 0 and result["rate"] == pytest.approx(1 / result["mfpt"])
    dt = 2e-3
    times = simulated_passages(closure, START, Box((0.5,), (3.5,)), n_walkers=500, dt=dt, seed=2, max_time=500)
    assert not np.isnan(times).any()
    stderr = times.std(ddof=1) / math.sqrt(times.size)
    assert abs(times.mean() - result["mfpt"]) <= 3 * stderr + monitoring_and_step_bias(result["mfpt"], dt)


def test_rate_from_a_region_is_the_stationary_average():
    """From a region A the MFPT is ⟨T⟩ over ρ ∝ ψ/D in A; a narrow region about the start gives T(start)."""
    closure = exact_closure(np.linspace(-3.5, 0.5, 41))
    point = passage(closure, START, Box((0.5,), (3.5,)), seed=1)
    narrow = passage(closure, Box((START - 1e-3,), (START + 1e-3,)), Box((0.5,), (3.5,)), seed=1)
    np.testing.assert_allclose(narrow["mfpt"], point["mfpt"], rtol=1e-4)
    well = passage(closure, Box((-3.5,), (-1.5,)), Box((0.5,), (3.5,)), seed=1)
    # the well's states have all but left the region's T(z) plateau: T varies by < 2 % over [−3.5, −1.5]
    np.testing.assert_allclose(well["mfpt"], point["mfpt"], rtol=0.02)
    np.testing.assert_allclose(well["rate"], 1 / well["mfpt"])


def test_mfpt_stderr_is_the_spread_over_the_closures_uncertainty():
    """A closure whose drift is uncertain by se at every point: the MFPT's standard error is the delta method's
    √Σ_i (∂T/∂B_i se)², ∂T/∂B_i by finite differences of the hat-function shift; the draws' sd is within
    ±3/√(2·400) of it (400 draws)."""
    grid = np.linspace(-3.5, 0.5, 21)
    se = 0.2
    closure = exact_closure(grid, drift_stderr=se)
    result = passage(closure, START, Box((0.5,), (3.5,)), seed=3, n_samples=400)
    mesh = np.linspace(-3.5, 0.5, 4001)
    base = closure.drift(mesh)
    gradient = []
    for i in range(grid.size):
        hat = np.interp(mesh, grid, np.eye(grid.size)[i]) * 1e-4
        shifted = first_passage_time(mesh, base + hat, np.full_like(mesh, D), TARGET)
        gradient.append((np.interp(START, mesh, shifted) - result["mfpt"]) / 1e-4)
    delta = se * np.linalg.norm(gradient)
    assert abs(result["mfpt_stderr"] / delta - 1) < 3 / math.sqrt(2 * 400)


@pytest.fixture(scope="module")
def estimated_store(tmp_path_factory):
    """The double well's x1 closure from bursts: τ = 0.002 (10 fine steps of 2·10⁻⁴), exact lift x2 ~ N(0, 1/βd)."""
    path = tmp_path_factory.mktemp("kinetics") / "double_well.zarr"
    lift = LinearGaussianLift(0.0, 0.0, 1 / (BETA * WELL.d))
    estimator = BurstEstimator(lift, WELL.evolver(2e-4), Coordinates("x1"), tau=0.002, n_walkers=10_000)
    estimate_closure(estimator, np.linspace(-3.5, 0.5, 13), seed=1, store=path, progress=False)
    return path


def burst_bias(tau):
    """After debiasing, the burst drift keeps ¼τB″D (estimators module doc), which shifts log T by
    −∫_well^barrier 2δB/D = −½τ(B′(barrier) − B′(well)) = −½τ(5.92 + 13.2) ≈ −9.6τ."""
    return 9.6 * tau


def test_kinetics_cli_on_an_estimated_closure(estimated_store, capsys):
    assert main(["closure", "kinetics", "--closure", str(estimated_store), "--from", str(START),
                 "--to", "0.5:3.5", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    exact = exact_mfpt()
    assert abs(result["mfpt"] - exact) <= 3 * result["mfpt_stderr"] + burst_bias(0.002) * exact
    assert result["mfpt_stderr"] < 0.15 * result["mfpt"]
    closure = Closure.from_zarr(estimated_store)
    dt = 2e-3
    times = simulated_passages(closure, START, Box((0.5,), (3.5,)), n_walkers=500, dt=dt, seed=2, max_time=500)
    stderr = times.std(ddof=1) / math.sqrt(times.size)
    assert abs(times.mean() - result["mfpt"]) <= 3 * stderr + monitoring_and_step_bias(result["mfpt"], dt)


def test_kinetics_cli_mistakes_are_one_line(estimated_store, capsys):
    for extra, message in ((["--from", "-2.5", "--to", "0.5"], "lo:hi"),
                           (["--from", "-9", "--to", "0.5:3.5"], "outside the closure's grid"),
                           (["--from", "-2.5,0", "--to", "0.5:3.5"], "1 CV"),
                           (["--from", "-2.5", "--to", "5:6"], "misses the closure's grid"),
                           (["--from", "0.5", "--to", "0:1"], "lies in the target")):
        assert main(["closure", "kinetics", "--closure", str(estimated_store), *extra]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1


@pytest.mark.slow
def test_double_well_mfpt_acceptance(tmp_path):
    """Issue 21: 2·10⁵ walkers on 36 points over [−3.5, 3.5]: within 10 % of the exact MFPT, and within
    3 standard errors of 500 closed-SDE first passages."""
    lift = LinearGaussianLift(0.0, 0.0, 1 / (BETA * WELL.d))
    estimator = BurstEstimator(lift, WELL.evolver(2e-4), Coordinates("x1"), tau=0.002, n_walkers=200_000)
    closure = Closure(estimate_closure(estimator, np.linspace(-3.5, 3.5, 36), seed=1, progress=False))
    result = passage(closure, START, Box((0.5,), (3.5,)), seed=2)
    exact = exact_mfpt()
    print(f"acceptance: mfpt {result}, exact {exact}")
    assert abs(result["mfpt"] / exact - 1) < 0.10
    assert abs(result["mfpt"] - exact) <= 3 * result["mfpt_stderr"] + burst_bias(0.002) * exact
    times = simulated_passages(closure, START, Box((0.5,), (3.5,)), n_walkers=500, dt=1e-3, seed=3, max_time=500)
    stderr = times.std(ddof=1) / math.sqrt(times.size)
    print(f"closed-SDE passages: {times.mean():.4g} ± {stderr:.2g}")
    assert abs(times.mean() - result["mfpt"]) <= 3 * stderr + monitoring_and_step_bias(result["mfpt"], 1e-3)


def correlated_drift(x, y):
    return np.stack([-(x**3 - 2 * x + 0.2) + 0.5 * y, -y + 0.3 * x], axis=-1)


@pytest.mark.slow
def test_two_dimensional_mfpt_with_correlated_noise_matches_direct_simulation():
    """A non-separable, non-reversible 2-D SDE with correlated constant noise, dz = B dt + √D dW, from (−1.2, 0)
    to x ≥ 0.8, reflecting at the box [−2.6, 1.4] × [−3, 3]: the finite volumes (h = 0.04; their O(h²) error
    bounded by |T_h − T_2h|/3, Richardson) against 1000 Euler–Maruyama first passages (dt = 10⁻³, within 3 se
    plus the monitoring delay 0.5826 √(D₁₁ dt) ∂T/∂b and the scheme's O(dt |B′|) ≈ 0.2 % of T)."""
    tensor = np.array([[1.0, 0.4], [0.4, 0.8]])
    solutions = {}
    for h in (0.04, 0.08):
        x, y = np.arange(-2.6, 1.4 + 1e-9, h), np.arange(-3.0, 3.0 + 1e-9, h)
        z1, z2 = np.meshgrid(x, y, indexing="ij")
        q = grid_generator([x, y], correlated_drift(z1, z2), np.broadcast_to(tensor, (*z1.shape, 2, 2)))
        at = (np.argmin(abs(x + 1.2)), np.argmin(abs(y)))
        solutions[h] = [grid_mfpt(q, z1 >= edge).reshape(z1.shape)[at] for edge in (0.8, 0.8 + h)]
    mfpt = solutions[0.04][0]
    slope = (solutions[0.04][1] - mfpt) / 0.04
    rng = np.random.default_rng(1)
    n, dt, factor = 1000, 1e-3, np.linalg.cholesky(tensor)
    z, times, active, step = np.tile([-1.2, 0.0], (n, 1)), np.full(n, np.nan), np.arange(n), 0
    while active.size and step < 10**6:
        step += 1
        w = z[active]
        w = w + correlated_drift(w[:, 0], w[:, 1]) * dt + np.sqrt(dt) * rng.standard_normal((active.size, 2)) @ factor.T
        arrived = w[:, 0] >= 0.8
        times[active[arrived]] = step * dt
        w[:, 0] = np.where(w[:, 0] < -2.6, -5.2 - w[:, 0], w[:, 0])
        w[:, 1] = np.where(w[:, 1] < -3, -6 - w[:, 1], np.where(w[:, 1] > 3, 6 - w[:, 1], w[:, 1]))
        z[active] = w
        active = active[~arrived]
    stderr = times.std(ddof=1) / np.sqrt(n)
    bound = (3 * stderr + abs(solutions[0.04][0] - solutions[0.08][0]) / 3 + 0.5826 * np.sqrt(dt) * abs(slope)
             + 0.002 * mfpt)
    print(f"2-D MFPT: finite volumes {mfpt:.4g}, direct {times.mean():.4g} ± {stderr:.2g}")
    assert abs(times.mean() - mfpt) <= bound
    assert abs(times.mean() / mfpt - 1) < 0.15
