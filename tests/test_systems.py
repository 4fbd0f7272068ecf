"""The seed systems: registry, analytic facts, and simulations against those facts."""

import numpy as np
import pytest
import torch
from scipy import integrate

from eqfree import systems
from eqfree.statistics import ensemble_moments


def test_registry():
    assert systems.available() == ["alanine_dipeptide", "averaging_cubic", "caps", "correlated_ou", "double_well",
                                   "fast_slow_linear", "half_moons", "s_shaped", "schlogl", "two_slow"]
    for name in systems.available():
        system = systems.get(name)
        assert system.name == name and system.x0.shape == (system.dim,) and len(system.coords) == system.dim
        if isinstance(system, systems.System):  # an SDE: its slow variables are coordinates
            assert all(c in system.coords for c in system.slow)
        else:  # a molecule: its slow variables are dihedrals of its atoms
            assert system.restriction().names == list(system.slow)
    assert systems.get("fast_slow_linear", a3="0.2").a3 == 0.2
    assert systems.get("half_moons").dt == 5e-2 and systems.get("caps").dt == 1e-3  # appendix C
    assert systems.get("averaging_cubic", eps=1e-2).dt == pytest.approx(1e-3)


def test_double_well_facts():
    well = systems.get("double_well")
    # the value the module doc and summary print (0.9917, 12.065), to half a unit in its last digit (rounding); the
    # truth is the brute 2-D quadrature below, at 1e-7 / 1e-8 (dblquad's default tolerance 1.5e-8)
    assert well.prob_left() == pytest.approx(0.9917, abs=5e-5)
    assert well.log_partition() == pytest.approx(12.065, abs=5e-4)
    # the default start is the global minimum: zero force, lower energy than the other well
    x0 = torch.tensor(well.x0)[None]
    assert torch.allclose(well.drift(x0, 0.0), torch.zeros(1, 2, dtype=torch.float64), atol=1e-12)
    assert well.potential(well.x0) < well.potential(np.array([well.minima()[-1], 0.0]))
    # log Z and P(x1 < 0) by brute 2-D quadrature (the system's own are 1-D quadratures of the x1 marginal)
    weight = lambda x2, x1: np.exp(-well.potential(np.array([x1, x2])))
    brute, _ = integrate.dblquad(weight, -8, 8, -12, 12)
    assert well.log_partition() == pytest.approx(np.log(brute), abs=1e-7)
    left, _ = integrate.dblquad(weight, -8, 0, -12, 12)
    assert well.prob_left() == pytest.approx(left / brute, abs=1e-8)


def test_fast_slow_linear_facts(fast_slow):
    assert fast_slow.conditional_moments() == (1.0, pytest.approx(0.05))
    total, _ = integrate.quad(fast_slow.conditional_density, -np.inf, np.inf)
    assert total == pytest.approx(1.0, abs=1e-10)
    samples = fast_slow.sample_conditional(10.0, 200_000, seed=1)
    assert np.all(samples[:, 0] == 10.0)
    # 3 standard errors of a mean of n = 200 000 exact draws of N(1, 0.05): se = √(0.05/n); the sampler is exact, no
    # bias
    assert abs(samples[:, 1].mean() - 1) < 3 * np.sqrt(0.05 / 200_000)


def test_caps_fast_pair_relaxes_to_its_conditional_law():
    caps = systems.get("caps")
    assert caps.conditional_variances() == pytest.approx((1e-3, 1e-4))
    run = caps.simulate(2000, 1500, seed=4, save_every=10)  # T = 1.5; relaxation times 0.05 and 0.005
    late = run.sel(time=slice(0.5, None))
    for coord in ("x2", "x3"):
        mean, var = caps.reference_moments(coord, caps.dt)[caps.scheme]  # the default scheme's invariant law
        moments = ensemble_moments(late.sel(coord=coord).values)
        # 3 standard errors (ensemble_moments: over walkers at the last frames, the 2000 walkers independent) of mean
        # and variance against the default scheme's exact invariant law at this dt, so no discretization bias; the
        # transient (relaxation 0.05, 0.005 against t ≥ 0.5) is e^{-10} ≈ 5e-5 of the start offset, below 0.1 se
        assert abs(moments.mean - mean) < 3 * moments.mean_stderr
        assert abs(moments.variance - var) < 3 * moments.variance_stderr
    np.testing.assert_allclose(run.sel(coord="x1")[-1].values, 1.5, rtol=1e-12)  # dx1 = a1 dt
    y = caps.observe(run[-1].values)
    x = run[-1].values
    np.testing.assert_allclose(y[:, 0] - y[:, 1], x[:, 0])  # y1 − y2 = x1: the caps' apex moves with x1
    np.testing.assert_allclose(y[:, 2], x[:, 2])


@pytest.mark.parametrize("z", [-1.0, 0.5, 1.0])
def test_averaging_cubic_short_bursts_recover_the_averaged_drift(z):
    """E[x1(τ) − z]/τ over bursts from the conditional law approaches B(z) = −z³ − 3 s² z.

    The default (Leimkuhler–Matthews) scheme holds the OU fast variable at its exact variance s² at any
    stable step, so bursts start from the fast-limit law N(z, s²) and the target is the physical B(z).
    Accounted for explicitly: the fresh noise ξ_0 of a burst puts y = x2 − x1 off its stationary variance
    V = s² by d_k = −a(1 − a) a^(2(k−1)) V at step k ≥ 1 (a = 1 − dt/ε; Var y_(k+1) = a² Var y_k + 2c² + 2ac²
    once Cov(y_k, ξ_k) = c = √(2s²dt/ε)/2, which is 0 at k = 0), which shifts the mean rate by
    −3z⟨d_k⟩ (E[x2³] = m³ + 3mv); the remaining biases are bounded by the burst curvature ½ B B' τ and
    the lag of x2 behind the moving x1, 3 (z² + s²) ε |B|.
    """
    system = systems.get("averaging_cubic")
    tau, walkers = 0.01, 4000
    steps = round(tau / system.dt)
    v = system.fast_variance(system.dt)  # the scheme's: s² for Leimkuhler–Matthews
    assert v == pytest.approx(system.s**2)
    a = 1 - system.dt / system.eps
    k = np.arange(steps)
    start_shift = np.mean(np.where(k > 0, -a * (1 - a) * a ** (2 * (k - 1)) * v, 0.0))
    rng = np.random.default_rng(2)
    x0 = np.column_stack([np.full(walkers, z), rng.normal(z, np.sqrt(v), walkers)])
    run = system.simulate(walkers, steps, seed=3, x0=x0, save_every=steps)
    rates = (run.sel(coord="x1")[-1].values - z) / tau
    b = system.averaged_drift(z) - 3 * z * start_shift
    b_prime = -3 * z**2 - 3 * v
    se = rates.std(ddof=1) / np.sqrt(walkers)
    allowance = abs(0.5 * b * b_prime * tau) + 3 * (z**2 + v) * system.eps * abs(b)
    assert abs(rates.mean() - b) < 3 * se + allowance
    assert system.averaged_drift(z) == pytest.approx(-(z**3) - 0.75 * z)


def test_correlated_ou_facts():
    """The analytic coefficients against finite differences of U and of each other, and the law's normalisation."""
    system = systems.get("correlated_ou", rho=-0.4, s1=0.8, s2=1.3)
    tensor = system.homogenized_diffusion(np.zeros(2))
    np.testing.assert_allclose(tensor, [[0.64, -0.4 * 0.8 * 1.3], [-0.4 * 0.8 * 1.3, 1.69]])
    z = np.array([[-1.3, 0.4], [0.2, -2.0], [0.9, 1.1]])
    h, unit = 1e-5, np.eye(2)
    gradient = np.stack([(system.potential(z + h * e) - system.potential(z - h * e)) / (2 * h) for e in unit], -1)
    np.testing.assert_allclose(system.averaged_drift(z), -0.5 * gradient @ tensor.T, rtol=1e-8)
    jacobian = np.stack([(system.averaged_drift(z + h * e) - system.averaged_drift(z - h * e)) / (2 * h)
                         for e in unit], -1)
    np.testing.assert_allclose(system.drift_jacobian(z), jacobian, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(system.diffusion_bias(z), 0.5 * system.eps * (jacobian @ tensor
                                                                             + tensor @ np.swapaxes(jacobian, 1, 2)),
                               rtol=1e-7, atol=1e-12)
    curvature = sum(tensor[i, j] * (system.averaged_drift(z + h * (unit[i] + unit[j]))
                                    - system.averaged_drift(z + h * (unit[i] - unit[j]))
                                    - system.averaged_drift(z - h * (unit[i] - unit[j]))
                                    + system.averaged_drift(z - h * (unit[i] + unit[j]))) / (4 * h * h)
                    for i in range(2) for j in range(2))
    # second differences with h = 1e-5: truncation O(h²) ≈ 1e-10; round-off eps·|B|/h² ≈ 2e-16/1e-10 ≈ 2e-6 of
    # |B| = O(1), 50× below rtol 1e-4; atol 1e-8 for the entries near zero
    np.testing.assert_allclose(system.drift_bias(z), -0.5 * system.eps * curvature, rtol=1e-4, atol=1e-8)
    x1, x2 = np.linspace(-4, 4, 1601), np.linspace(-12, 12, 2401)  # trapezoids: O(h²) ≈ 10⁻⁶ here
    density = system.stationary_density(np.stack(np.meshgrid(x1, x2, indexing="ij"), -1))
    # trapezoid rule on h = 5e-3 / 1e-2 meshes: error h²/12 |ρ''| integrated ≈ 1e-6 (comment above), the tails beyond
    # ±4, ±12 below 1e-7; bound 1e-5 = 10× that
    assert np.trapezoid(np.trapezoid(density, x2, axis=1), x1) == pytest.approx(1.0, abs=1e-5)
    x = system.exact_lift()(np.array([0.3, -0.2]), 20_000, seed=1)
    np.testing.assert_array_equal(x[:, :2], np.broadcast_to([0.3, -0.2], (20_000, 2)))
    moments = np.cov(x[:, 2:].T)  # the fast pair ~ N(0, I): entries within 4 se = 4 √(2/n) (diagonal), 4/√n
    assert np.abs(moments - np.eye(2)).max() < 4 * np.sqrt(2 / 20_000) and np.abs(x[:, 2:].mean(0)).max() < 0.03


def test_correlated_ou_green_kubo_diffusion_is_the_slow_variance_growth():
    """Without the slow drift (h = k = 0), z(t) − z(0) = ∫₀ᵗ η with η = (2ε)^(−½) S u, u an OU of time ε:
    Cov = D [t − ε(1 − e^{−t/ε})] exactly, D = S Sᵀ the Green–Kubo tensor. 4000 walkers to t = 100 ε from the
    exact lift (Leimkuhler–Matthews holds ∫u dt at its exact long-run variance; its fresh first noise shifts the
    intercept by O(dt)): each entry within 3 standard errors √((D_ii D_jj + D_ij²)/n) t plus dt·|D|."""
    system = systems.get("correlated_ou", h=0.0, k=0.0)
    n, t = 4000, 100 * system.eps
    steps = round(t / system.dt)
    x0 = system.exact_lift(system.dt)(np.array([0.5, -1.0]), n, seed=1)
    run = system.simulate(n, steps, seed=2, x0=x0, save_every=steps)
    moved = run.values[-1, :, :2] - [0.5, -1.0]
    tensor = system.homogenized_diffusion(np.zeros(2))
    expected = tensor * (t - system.eps * (1 - np.exp(-t / system.eps)))
    stderr = np.sqrt((np.outer(np.diag(tensor), np.diag(tensor)) + tensor**2) / n) * t
    assert np.all(np.abs(np.cov(moved.T) - expected) <= 3 * stderr + system.dt * np.abs(tensor))
    assert tensor[0, 1] == pytest.approx(0.6)


def test_correlated_ou_stationary_law_by_quadrature_vs_a_long_simulation():
    """ρ = 0: z1 is autonomous; at finite ε its law is, to first order, that of dz1 = B dt + √D_ε dW (module doc),
    ρ ∝ exp(∫2B/D_ε)/D_ε by quadrature, which moves P(|z1| < 0.5) from exp(−U)'s 0.175 by −5 %. 1000 walkers
    started from exp(−U)/Z (by inverse transform), run to t = 4 (the wells relax in 1/|J| = 1/6; by symmetry
    the wells' populations are equal): the time average over t ∈ [1, 4] within 3 standard errors (walkers are
    independent) plus the second-order remainder, bounded by the first-order shift times ε|J| = 6 %."""
    from scipy.integrate import cumulative_trapezoid

    system = systems.get("correlated_ou", rho=0.0)
    mesh = np.linspace(-3, 3, 60001)
    z = np.stack([mesh, 0 * mesh], -1)
    drift, diffusion = system.averaged_drift(z)[:, 0], system.homogenized_diffusion(z)[:, 0, 0]
    laws = []
    for d in (diffusion, diffusion + system.diffusion_bias(z)[:, 0, 0]):
        phi = cumulative_trapezoid(2 * drift / d, mesh, initial=0)
        laws.append(np.exp(phi - phi.max()) / d)
    exact, first_order = (np.trapezoid(p * (abs(mesh) < 0.5), mesh) / np.trapezoid(p, mesh) for p in laws)
    marginal = np.exp(-system.potential(z))
    assert exact == pytest.approx(np.trapezoid(marginal * (abs(mesh) < 0.5), mesh) / np.trapezoid(marginal, mesh))
    rng = np.random.default_rng(1)
    cdf = cumulative_trapezoid(marginal, mesh, initial=0)
    n = 1000
    x0 = np.column_stack([np.interp(rng.uniform(0, cdf[-1], n), cdf, mesh), rng.normal(0, 1 / np.sqrt(system.k), n),
                          rng.standard_normal((n, 2))])
    run = system.simulate(n, round(4 / system.dt), seed=2, x0=x0, save_every=10)
    inside = (np.abs(run.sel(coord="x1").values[run.time.values >= 1]) < 0.5).mean(axis=0)
    stderr = inside.std(ddof=1) / np.sqrt(n)
    # the docstring's 3 standard errors (walkers independent) plus the second-order bias bound 0.06 × the first-order
    # shift (ε|J| = 6 %)
    assert abs(inside.mean() - first_order) <= 3 * stderr + 0.06 * abs(first_order - exact)
