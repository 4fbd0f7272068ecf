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
from scipy.interpolate import RegularGridInterpolator

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


def test_a_tensor_singular_along_an_axis_gives_the_upwind_limit():
    """D_22 = 0 (a closure drawn within wide errors, projected onto the PSD tensors): the rates along x2 are the
    Scharfetter–Gummel limit a → 0, (a/h²) Bern(∓hB/a) → max(±B, 0)/h, so the generator is that of D_22 = 1e-12
    to round-off; its first moments are still B exactly (interior cells), and the rows sum to 0."""
    x, y = np.linspace(0, 1, 6), np.linspace(0, 1, 5)
    drift = np.broadcast_to([0.7, -0.4], (6, 5, 2))
    singular, nearly = (np.broadcast_to(np.diag([0.3, d]), (6, 5, 2, 2)) for d in (0.0, 1e-12))
    limit, near = grid_generator([x, y], drift, singular), grid_generator([x, y], drift, nearly)
    assert abs(limit - near).max() < 1e-9 and abs(limit.sum(axis=1)).max() < 1e-12  # rates ~ 1: round-off
    z2 = np.meshgrid(x, y, indexing="ij")[1]
    np.testing.assert_allclose((limit @ z2.ravel()).reshape(6, 5)[1:-1, 1:-1], -0.4, atol=1e-12)


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
    # deterministic (no sampling): the finite volumes' O(h²) error quarters when h halves, the ratio 0.25 moved by the
    # O(h³) rest (relative O(h) ≈ 0.025–0.05 at these h: window 0.2–0.3); 2e-3 is the O(h²) size at h = 0.025
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
    data["drift"].values[:, 0] = drift(grid)
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
    # 3 standard errors of the mean of 500 independent passages plus the stated bias of EM first passages at this dt
    # (monitoring_and_step_bias: the 0.5826 √(D dt) edge shift by quadrature and the scheme's wider well)
    assert abs(times.mean() - result["mfpt"]) <= 3 * stderr + monitoring_and_step_bias(result["mfpt"], dt)


def test_rate_from_a_region_is_the_stationary_average():
    """From a region A the MFPT is ⟨T⟩ over ρ ∝ ψ/D in A; a narrow region about the start gives T(start)."""
    closure = exact_closure(np.linspace(-3.5, 0.5, 41))
    point = passage(closure, START, Box((0.5,), (3.5,)), seed=1)
    narrow = passage(closure, Box((START - 1e-3,), (START + 1e-3,)), Box((0.5,), (3.5,)), seed=1)
    # deterministic: averaging T over ρ ∝ ψ/D on [start ± 1e-3] differs from T(start) by T′·(ρ's mean offset, ≈ φ′δ²/3)
    # + ½T″δ²/3, relative ~1e-6·O(10) at δ = 1e-3; rtol 1e-4
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
    # 3 standard errors of the MFPT (mfpt_stderr: the closure's drift and diffusion errors propagated) plus the debiased
    # bursts' stated bias, 9.6τ relative (burst_bias)
    assert abs(result["mfpt"] - exact) <= 3 * result["mfpt_stderr"] + burst_bias(0.002) * exact
    # a precision claim at 10 000 walkers on 13 points, not a statistical bound: the relative standard error must stay
    # below 15 % for the check above to bite
    assert result["mfpt_stderr"] < 0.15 * result["mfpt"]
    closure = Closure.from_zarr(estimated_store)
    dt = 2e-3
    times = simulated_passages(closure, START, Box((0.5,), (3.5,)), n_walkers=500, dt=dt, seed=2, max_time=500)
    stderr = times.std(ddof=1) / math.sqrt(times.size)
    # 3 se of 500 passages plus monitoring_and_step_bias, as in
    # test_closure_mfpt_matches_quadrature_and_closed_sde_passages
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
    # issue 21's acceptance (within 10 %), a specification; the statistical bound follows
    assert abs(result["mfpt"] / exact - 1) < 0.10
    # 3 standard errors of the MFPT plus the bursts' stated bias 9.6τ (burst_bias)
    assert abs(result["mfpt"] - exact) <= 3 * result["mfpt_stderr"] + burst_bias(0.002) * exact
    times = simulated_passages(closure, START, Box((0.5,), (3.5,)), n_walkers=500, dt=1e-3, seed=3, max_time=500)
    stderr = times.std(ddof=1) / math.sqrt(times.size)
    print(f"closed-SDE passages: {times.mean():.4g} ± {stderr:.2g}")
    # 3 se of 500 passages plus monitoring_and_step_bias at dt = 1e-3
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
    # the docstring's bound: 3 se of 1000 independent passages, the finite volumes' O(h²) error by Richardson |T_h −
    # T_2h|/3, the monitoring delay 0.5826 √(D₁₁ dt)·∂T/∂b (D₁₁ = 1) and EM's O(dt|B′|) ≈ 0.2 % of T
    bound = (3 * stderr + abs(solutions[0.04][0] - solutions[0.08][0]) / 3 + 0.5826 * np.sqrt(dt) * abs(slope)
             + 0.002 * mfpt)
    print(f"2-D MFPT: finite volumes {mfpt:.4g}, direct {times.mean():.4g} ± {stderr:.2g}")
    assert abs(times.mean() - mfpt) <= bound
    # the docstring's specification (within 15 %), next to the derived bound above
    assert abs(times.mean() / mfpt - 1) < 0.15


# -- n-D kinetics on systems.correlated_ou ------------------------------------------------------------------
# Slow z = (x1, x2) driven by correlated fast OU noises: in the fast limit dz = B dt + √D dW with B = −½ D ∇U,
# U = h (z1² − 1)² + ½ k z2², D constant with correlation ρ (systems/correlated_ou.py). At ρ = 0, z1 is autonomous:
# dz1 = −½ s1² U′(z1) dt + s1 dW, so kinetics between regions bounded in z1 only are those of this 1-D SDE.
OU = systems.get("correlated_ou")
X1, X2 = np.linspace(-2, 2, 41), np.linspace(-4, 4, 41)
FROM, INTO, AWAY = np.array([-1.0, 0.0]), Box((0.5, -4.0), (2.0, 4.0)), Box((-2.0, -4.0), (-0.5, 4.0))


def plane(x, y):
    return np.stack(np.meshgrid(x, y, indexing="ij"), axis=-1)


def analytic_closure(system, x=X1, y=X2, drift_stderr=0.0, diffusion_stderr=0.0):
    """The closure whose grid values are the system's averaged drift and homogenized diffusion."""
    data = template([x, y], diffusion=True, names=["x1", "x2"])
    z = plane(x, y)
    data["drift"].values[:] = system.averaged_drift(z)
    data["diffusion"].values[:] = system.homogenized_diffusion(z)
    data["drift_stderr"].values[:] = drift_stderr
    data["diffusion_stderr"].values[:] = diffusion_stderr
    data["n_samples"].values[:] = 1
    data["done"].values[:] = True
    return Closure(data)


def one_dimensional_mfpt(system, edge=0.5, start=-1.0):
    """T(start) of dz1 = −½ s1² U′ dt + s1 dW to z1 ≥ edge, reflecting at −2, by the 1-D quadrature (20001 points)."""
    mesh = np.linspace(-2, 2, 20001)
    u_prime = 4 * system.h * mesh * (mesh**2 - 1)
    time = first_passage_time(mesh, -0.5 * system.s1**2 * u_prime, np.full_like(mesh, system.s1**2), (edge, 2.0))
    return float(np.interp(start, mesh, time))


def one_dimensional_committor(system, z, low=-0.5, high=0.5):
    """q(z) = ∫_low^z e^U / ∫_low^high e^U of the 1-D SDE (ψ = e^{−U}), by adaptive quadrature."""
    from scipy.integrate import quad

    weight = lambda v: np.exp(system.h * (v**2 - 1) ** 2)
    total = quad(weight, low, high, epsabs=0, epsrel=1e-12)[0]
    return np.array([quad(weight, low, v, epsabs=0, epsrel=1e-12)[0] / total for v in np.clip(z, low, high)])


def test_separable_2d_kinetics_are_the_1d_ones():
    """ρ = 0: the finite volumes on the analytic B, D over the plane give T(−1, x2) = the 1-D quadrature at every
    x2, and the committor between x1 ≤ −0.5 and x1 ≥ 0.5 the 1-D one, with an O(h²) error: halving h along x1
    quarters it (x2 is a spectator here, at any spacing)."""
    system = systems.get("correlated_ou", rho=0.0)
    truth, errors = one_dimensional_mfpt(system), []
    for n in (81, 161):
        x, y = np.linspace(-2, 2, n), np.linspace(-4, 4, 17)
        z = plane(x, y)
        q = grid_generator([x, y], system.averaged_drift(z), system.homogenized_diffusion(z))
        time = grid_mfpt(q, z[..., 0] >= 0.5).reshape(z.shape[:-1])
        assert np.ptp(time, axis=1).max() < 1e-9 * time.max()
        errors.append(abs(time[(n - 1) // 4, 8] / truth - 1))
        committor = grid_committor(q, z[..., 0] <= -0.5, z[..., 0] >= 0.5).reshape(z.shape[:-1])
        errors.append(np.abs(committor - one_dimensional_committor(system, x)[:, None]).max())
    # deterministic: O(h²) at h = 0.025, as in test_two_dimensional_mfpt_and_committor_of_a_separable_system; ratio
    # window 0.2–0.3 around ¼ for the O(h³) rest
    assert errors[2] < 1e-3 and errors[3] < 1e-3
    assert 0.2 < errors[2] / errors[0] < 0.3 and 0.2 < errors[3] / errors[1] < 0.3


def test_closure_kinetics_in_2d_match_the_finite_volumes_of_the_analytic_coefficients():
    """``passage`` and ``committor`` on a 41 × 41 closure of the analytic B, D (ρ = 0.6) against the finite volumes
    on a mesh of the exact B, D (h = 0.05: O(h²) error 4·10⁻³, test above). The closure interpolates B
    multilinearly at h = (0.1, 0.2), an error ≤ h²|∂²B|/8 ≈ 0.02 near the wells, which moves log T by ≲ 2 %.
    From a region, T is averaged over the stationary law exp(−U)/Z in it. No standard errors, no spread."""
    x, y = np.linspace(-2, 2, 81), np.linspace(-4, 4, 161)
    z = plane(x, y)
    q = grid_generator([x, y], OU.averaged_drift(z), OU.homogenized_diffusion(z))
    exact = grid_mfpt(q, INTO.contains(z)).reshape(z.shape[:-1])
    closure = analytic_closure(OU)
    result = passage(closure, FROM, INTO, seed=1, n_samples=2)
    # deterministic: the docstring's error budget, the multilinear interpolation's ≲ 2 % on log T plus the reference's
    # O(h²) 0.4 %: 2.4 %
    np.testing.assert_allclose(result["mfpt"], exact[20, 80], rtol=0.024)
    assert result["mfpt_stderr"] == 0 and result["rate"] == pytest.approx(1 / result["mfpt"])
    well = Box((-1.5, -1.0), (-0.5, 1.0))
    region = passage(closure, well, INTO, seed=1, n_samples=2)
    weight = OU.stationary_density(z) * well.contains(z)  # exp(−U)/Z: B = −½ D ∇U is reversible
    np.testing.assert_allclose(region["mfpt"], (weight * exact).sum() / weight.sum(), rtol=0.024)
    from eqfree.closures import committor

    field = committor(analytic_closure(systems.get("correlated_ou", rho=0.0)), AWAY, INTO, seed=1, n_samples=2)
    assert field["committor"].dims == ("x1", "x2") and float(field["committor_stderr"].max()) == 0
    truth = one_dimensional_committor(OU, field["x1"].values)
    # the closure's interpolation error moves q by ≲ 2 % of its range, as it moves log T
    np.testing.assert_allclose(field["committor"].values, np.broadcast_to(truth[:, None], field["committor"].shape),
                               atol=0.02)


def test_2d_mfpt_stderr_is_the_spread_over_the_closures_uncertainty():
    """A 9 × 9 closure whose drift is uncertain by se at every point and component: the draws' standard deviation
    is the delta method's √Σ_g,c (∂T/∂B_gc se)² (∂T/∂B_gc by finite differences of the hat-function shift on
    the same kinetics mesh), within ±3/√(2·200) (200 draws)."""
    from eqfree.closures import kinetics_axes

    se = 0.2
    closure = analytic_closure(OU, np.linspace(-2, 2, 9), np.linspace(-4, 4, 9), drift_stderr=se)
    result = passage(closure, FROM, INTO, seed=3, n_samples=200, points=41)
    axes = kinetics_axes(closure, 41, [INTO.lo, INTO.hi])
    mesh = plane(*axes)
    points = mesh.reshape(-1, 2)
    b, d = closure.drift(points), closure.diffusion(points)

    def mfpt(drift):  # T at FROM, multilinear between the mesh's nodes
        time = grid_mfpt(grid_generator(axes, drift, d), INTO.contains(mesh)).reshape(mesh.shape[:-1])
        return RegularGridInterpolator(axes, time)(FROM)[0]

    base, gradient = mfpt(b), []
    for flat in range(81 * 2):
        hat = np.zeros(81 * 2)
        hat[flat] = 1e-4
        gradient.append((mfpt(b + closure.interpolator(hat.reshape(9, 9, 2))(points)) - base) / 1e-4)
    assert result["mfpt"] == pytest.approx(base)
    delta = se * np.linalg.norm(gradient)
    assert abs(result["mfpt_stderr"] / delta - 1) < 3 / math.sqrt(2 * 200)


def test_periodic_cv_mfpt_is_exact_and_matches_closed_sde_passages():
    """B = (0, b), D = diag(0.5, d) on [−1, 1] × a circle of period 2π (x2 periodic): x1 is a reflected spectator,
    and on the circle the walker drifts to the target strip through the free arc of length L, absorbed at both
    of its ends: T(u) = [L (1 − e^{−κu})/(1 − e^{−κL}) − u]/b, κ = 2b/d, u the distance from the strip's upper
    edge (Brownian motion with drift on [0, L]). Scharfetter–Gummel is exact for constant coefficients, so the
    finite volumes agree to round-off at a node. 400 closed-SDE passages (Euler–Maruyama, dt = 2·10⁻³) agree
    within 3 se plus the monitoring delay 0.5826 √(d dt)/b."""
    from eqfree.closures import kinetics_axes

    b, d, period = 1.0, 0.8, 2 * np.pi
    x, y = np.linspace(-1, 1, 5), np.arange(32) * period / 32
    data = template([x, y], diffusion=True, names=["a", "phi"], periods=[None, period])
    data["drift"].values[:] = [0.0, b]
    data["diffusion"].values[:] = np.diag([0.5, d])
    data["drift_stderr"].values[:] = 0.0
    data["diffusion_stderr"].values[:] = 0.0
    data["done"].values[:] = True
    closure = Closure(data)
    strip = Box((-1.0, np.pi - 0.5), (1.0, np.pi + 0.5))
    axes = kinetics_axes(closure, 101, [strip.lo, strip.hi])
    upper = axes[1][axes[1] <= strip.hi[1]].max()  # the strip the mesh sees: its upper edge on the last node in it
    start = np.array([0.3, axes[1][np.argmin(abs(axes[1] - 0.2))]])
    length, u, kappa = period - (upper - strip.lo[1]), (start[1] - upper) % period, 2 * b / d
    exact = (length * (1 - np.exp(-kappa * u)) / (1 - np.exp(-kappa * length)) - u) / b
    result = passage(closure, start, strip, seed=1, n_samples=2, points=101)
    np.testing.assert_allclose(result["mfpt"], exact, rtol=1e-9)
    times = simulated_passages(closure, start, strip, n_walkers=400, dt=2e-3, seed=2, max_time=50)
    assert not np.isnan(times).any()
    length, u = period - 1.0, (start[1] - strip.hi[1]) % period  # the SDE sees the strip itself
    exact = (length * (1 - np.exp(-kappa * u)) / (1 - np.exp(-kappa * length)) - u) / b
    stderr = times.std(ddof=1) / math.sqrt(times.size)
    # 3 standard errors of the mean of 400 independent passages plus the monitoring delay: checking at steps of dt moves
    # the edge by 0.5826 √(D dt), crossed at speed b (constant drift)
    assert abs(times.mean() - exact) <= 3 * stderr + 0.5826 * math.sqrt(d * 2e-3) / b


def fine_passages(system, z0, edge, n_walkers, seed, max_time, chunk=250):
    """First-passage times of x1 to ``edge`` of the fine system from its exact lift at ``z0``, by its own evolver in
    chunks of ``chunk`` steps (checked at every step); NaN if not arrived by ``max_time``."""
    from eqfree.seeding import child

    x = system.exact_lift(system.dt)(np.asarray(z0, dtype=float), n_walkers, seed=child(seed, 0))
    evolve = system.evolver()
    times, active = np.full(n_walkers, np.nan), np.arange(n_walkers)
    for k in range(math.ceil(max_time / (chunk * system.dt))):
        if not active.size:
            break
        run = evolve(x[active], chunk, seed=child(seed, k + 1)).values
        crossed = run[1:, :, 0] >= edge
        arrived = crossed.any(axis=0)
        times[active[arrived]] = (k * chunk + crossed[:, arrived].argmax(axis=0) + 1) * system.dt
        x[active] = run[-1]
        active = active[~arrived]
    return times


def mfpt_on_plane(system, drift, diffusion, edge=0.5, n=(81, 161)):
    """T(−1, 0) to x1 ≥ edge by the finite volumes on [−2, 2] × [−4, 4] (h = 0.05: O(h²) ≈ 4·10⁻³)."""
    x, y = np.linspace(-2, 2, n[0]), np.linspace(-4, 4, n[1])
    z = plane(x, y)
    time = grid_mfpt(grid_generator([x, y], drift(z), diffusion(z)), z[..., 0] >= edge - 1e-12)
    return RegularGridInterpolator([x, y], time.reshape(z.shape[:-1]))(FROM)[0]


@pytest.mark.slow
def test_2d_mfpt_acceptance_against_direct_fine_simulation():
    """Issue 21: on correlated_ou (ρ = 0.6), the MFPT from (−1, 0) to x1 ≥ 0.5 of the kinetics solve on the analytic
    B, D against 1000 first passages of the fine system: within 15 %, and within 3 standard errors plus the finite-ε
    biases the system states — D_ε = D + (ε/2)(JD + DJᵀ) (T recomputed with it) and the colored noise's boundary
    layer, which delays the passage as if the edge were ℓ ≤ 2 √(D₁₁ ε) further (T′(edge) ℓ).

    ε = 0.0025, not the system's default 0.01: at 0.01 the boundary layer alone puts the fine MFPT 11.7 % above the
    limit (7.548: 8.911, 8.174, 8.865, 8.088, 8.346, 8.207 ± 0.25 at seeds 1–6, measured 2026-12-05), at the edge
    of the 15 % specification, which then failed at 2 of 6 seeds; at 0.0025 (half the layer) 7.817, 7.568 and
    8.144 at seeds 1–3."""
    fine = systems.get("correlated_ou", eps=0.0025)
    exact = mfpt_on_plane(fine, fine.averaged_drift, fine.homogenized_diffusion)
    corrected = mfpt_on_plane(fine, fine.averaged_drift,
                              lambda z: fine.homogenized_diffusion(z) + fine.diffusion_bias(z))
    slope = (mfpt_on_plane(fine, fine.averaged_drift, fine.homogenized_diffusion, edge=0.55) - exact) / 0.05
    times = fine_passages(fine, FROM, 0.5, 1000, seed=1, max_time=150)
    assert not np.isnan(times).any()
    mean, stderr = times.mean(), times.std(ddof=1) / math.sqrt(times.size)
    print(f"2-D MFPT: kinetics {exact:.4g} (with D_ε {corrected:.4g}), direct fine {mean:.4g} ± {stderr:.2g}")
    # issue 21's acceptance (within 15 %), a specification; the derived bound follows
    assert abs(mean / exact - 1) < 0.15
    assert abs(mean - exact) <= 3 * stderr + abs(corrected - exact) + slope * 2 * math.sqrt(fine.eps)


@pytest.mark.slow
def test_2d_closed_sde_passages_match_the_finite_volumes():
    """1000 closed-SDE first passages on the analytic 41 × 41 closure (ρ = 0.6, Euler–Maruyama, dt = 2·10⁻³)
    against ``passage`` on it: within 3 se plus the monitoring delay 0.5826 √(D₁₁ dt) T′(edge)."""
    closure = analytic_closure(OU)
    result = passage(closure, FROM, INTO, seed=1, n_samples=2)
    slope = (passage(closure, FROM, Box((0.55, -4.0), (2.0, 4.0)), seed=1, n_samples=2)["mfpt"]
             - result["mfpt"]) / 0.05
    times = simulated_passages(closure, FROM, INTO, n_walkers=1000, dt=2e-3, seed=2, max_time=150)
    assert not np.isnan(times).any()
    stderr = times.std(ddof=1) / math.sqrt(times.size)
    print(f"closed SDE: {times.mean():.4g} ± {stderr:.2g}; finite volumes {result['mfpt']:.4g}")
    # the docstring's bound: 3 se of 1000 independent passages plus the monitoring delay 0.5826 √(D₁₁ dt) T′(edge) (D₁₁
    # = 1)
    assert abs(times.mean() - result["mfpt"]) <= 3 * stderr + 0.5826 * math.sqrt(2e-3) * slope


@pytest.mark.slow
def test_2d_kinetics_of_an_estimated_closure_match_the_analytic_ones():
    """A closure of correlated_ou from bursts (τ = 0.05, 2000 walkers, the exact lift) on 29 × 15 points of
    [−1.75, 1.75] × [−3.5, 3.5]: its MFPT from (−1, 0) to x1 ≥ 0.5 within 3 of its standard errors of the MFPT of
    the analytic closure on the same grid, plus the change of T that the stated biases make — of the fine system
    at finite ε (drift_bias, diffusion_bias) and of the bursts after debiasing (¼ τ ∇²B : D on the drift; the
    slope of Var Δz over [τ/2, τ] missing ε(e^{−τ/2ε} − e^{−τ/ε})/(τ/2) of D, the fast noise's memory)."""
    x, y = np.linspace(-1.75, 1.75, 29), np.linspace(-3.5, 3.5, 15)
    tau = 0.05
    estimator = BurstEstimator(OU.exact_lift(OU.dt), OU.evolver(), Coordinates(["x1", "x2"]), tau=tau,
                               n_walkers=2000)
    closure = Closure(estimate_closure(estimator, [x, y], seed=1, progress=False))
    into = Box((0.5, -3.5), (1.75, 3.5))
    result = passage(closure, FROM, into, seed=2)
    analytic = passage(analytic_closure(OU, x, y), FROM, into, seed=2, n_samples=2)["mfpt"]
    z = plane(x, y)
    curvature = -2 * OU.drift_bias(z) / OU.eps  # ∇²B : D
    memory = OU.eps * (math.exp(-tau / (2 * OU.eps)) - math.exp(-tau / OU.eps)) / (tau / 2)
    biased = analytic_closure(OU, x, y)
    biased.dataset["drift"].values += OU.drift_bias(z) + 0.25 * tau * curvature
    biased.dataset["diffusion"].values += OU.diffusion_bias(z) - memory * OU.homogenized_diffusion(z)
    shifted = passage(Closure(biased.dataset), FROM, into, seed=2, n_samples=2)["mfpt"]
    print(f"estimated closure: {result['mfpt']:.4g} ± {result['mfpt_stderr']:.2g}; analytic {analytic:.4g}, "
          f"with the stated biases {shifted:.4g}")
    assert abs(result["mfpt"] - analytic) <= 3 * result["mfpt_stderr"] + abs(shifted - analytic)
    # a precision claim at 2000 walkers per point, not a statistical bound
    assert result["mfpt_stderr"] < 0.1 * result["mfpt"]


def test_kinetics_cli_in_2d(tmp_path, capsys):
    """``closure kinetics`` on a 2-D store: the point and region starts give what ``passage`` gives (the same
    seed), and a mistake is one line."""
    from eqfree.closures import save

    path = tmp_path / "closure_2d.zarr"
    closure = analytic_closure(OU, np.linspace(-2, 2, 9), np.linspace(-4, 4, 9), drift_stderr=0.05,
                               diffusion_stderr=0.01)
    save(closure.dataset, path)
    for start, expected in (("-1,0", FROM), ("-1.5:-0.5,-1:1", Box((-1.5, -1.0), (-0.5, 1.0)))):
        assert main(["closure", "kinetics", "--closure", str(path), f"--from={start}", "--to=0.5:2,-4:4",
                     "--samples", "4", "--seed", "3", "--json"]) == 0
        result = json.loads(capsys.readouterr().out)
        assert result["cvs"] == ["x1", "x2"]
        direct = passage(closure, expected, INTO, seed=3, n_samples=4)
        assert result["mfpt"] == pytest.approx(direct["mfpt"]) and result["mfpt_stderr"] == pytest.approx(
            direct["mfpt_stderr"])
        assert result["mfpt_stderr"] > 0
    for extra, message in ((["--from=-1", "--to=0.5:2,-4:4"], "2 CVs"),
                           (["--from=-1,0", "--to=0.5:2"], "2 CVs"),
                           (["--from=-1,9", "--to=0.5:2,-4:4"], "outside the closure's grid"),
                           (["--from=-1,0", "--to=3:4,-4:4"], "misses the closure's grid"),
                           (["--from=1,0", "--to=0.5:2,-4:4"], "lies in the target")):
        assert main(["closure", "kinetics", "--closure", str(path), *extra]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1


def test_3d_closure_mfpt_of_a_separable_system_is_the_1d_one():
    """Three CVs: z1 autonomous (correlated_ou's B1 at ρ = 0, D11 = 1) and two Ornstein–Uhlenbeck spectators with
    D = 64 (so the mesh, spaced ∝ √D_ii, spends its ~21³ nodes along z1: h1 = 0.05). T from (−1, 0, 0) to
    z1 ≥ 0.5 is the 1-D quadrature of the closure's own (linearly interpolated) B1, reflecting at the mesh's
    lowest z1 node; the finite volumes' O(h²) error at h = 0.05 is 3.6·10⁻³ (2-D test above): twice that."""
    from eqfree.closures import kinetics_axes

    system = systems.get("correlated_ou", rho=0.0)
    x, y = np.linspace(-2, 2, 41), np.linspace(-2, 2, 5)
    z = np.stack(np.meshgrid(x, y, y, indexing="ij"), axis=-1)
    data = template([x, y, y], diffusion=True, names=["x1", "x2", "x3"])
    data["drift"].values[:] = np.stack([system.averaged_drift(z[..., :2])[..., 0], -z[..., 1], -z[..., 2]], -1)
    data["diffusion"].values[:] = np.diag([1.0, 64.0, 64.0])
    data["drift_stderr"].values[:] = 0.0
    data["diffusion_stderr"].values[:] = 0.0
    data["done"].values[:] = True
    closure = Closure(data)
    target = Box((0.5, -2.0, -2.0), (2.0, 2.0, 2.0))
    result = passage(closure, [-1.0, 0.0, 0.0], target, seed=1, n_samples=2, points=21)
    axes = kinetics_axes(closure, 21, [target.lo, target.hi])
    h1 = axes[0][1] - axes[0][0]
    mesh = np.linspace(axes[0][0], 2, 20001)
    drift = np.interp(mesh, x, system.averaged_drift(np.stack([x, 0 * x], -1))[:, 0])
    exact = np.interp(-1.0, mesh, first_passage_time(mesh, drift, np.ones_like(mesh), (0.5, 2.0)))
    assert h1 == pytest.approx(0.05, rel=0.05)
    # deterministic: the mesh's O(h²) error at h1 = 0.05, 3.6e-3 (measured for this drift in the 1-D test, h = 0.05),
    # doubled for the spectator axes' coarse 21-point mesh
    np.testing.assert_allclose(result["mfpt"], exact, rtol=2 * 3.6e-3)
