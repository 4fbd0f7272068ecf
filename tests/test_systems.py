"""The seed systems: registry, analytic facts, and simulations against those facts."""

import numpy as np
import pytest
import torch
from scipy import integrate

from eqfree import systems
from eqfree.statistics import ensemble_moments


def test_registry():
    assert systems.available() == ["alanine_dipeptide", "averaging_cubic", "caps", "double_well", "fast_slow_linear",
                                   "half_moons", "s_shaped", "schlogl", "two_slow"]
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
    assert well.prob_left() == pytest.approx(0.9917, abs=5e-5)
    assert well.log_partition() == pytest.approx(12.065, abs=5e-4)
    # the default start is the global minimum: zero force, lower energy than the other well
    x0 = torch.tensor(well.x0)[None]
    assert torch.allclose(well.drift(x0, 0.0), torch.zeros(1, 2, dtype=torch.float64), atol=1e-12)
    assert well.potential(well.x0) < well.potential(np.array([well.minima()[-1], 0.0]))
    # log Z by brute 2-D quadrature
    brute, _ = integrate.dblquad(lambda x2, x1: np.exp(-well.potential(np.array([x1, x2]))), -8, 8, -12, 12)
    assert well.log_partition() == pytest.approx(np.log(brute), abs=1e-7)


def test_fast_slow_linear_facts(fast_slow):
    assert fast_slow.conditional_moments() == (1.0, pytest.approx(0.05))
    total, _ = integrate.quad(fast_slow.conditional_density, -np.inf, np.inf)
    assert total == pytest.approx(1.0, abs=1e-10)
    samples = fast_slow.sample_conditional(10.0, 200_000, seed=1)
    assert np.all(samples[:, 0] == 10.0)
    assert abs(samples[:, 1].mean() - 1) < 3 * np.sqrt(0.05 / 200_000)


def test_caps_fast_pair_relaxes_to_its_conditional_law():
    caps = systems.get("caps")
    assert caps.conditional_variances() == pytest.approx((1e-3, 1e-4))
    run = caps.simulate(2000, 1500, seed=4, save_every=10)  # T = 1.5; relaxation times 0.05 and 0.005
    late = run.sel(time=slice(0.5, None))
    for coord in ("x2", "x3"):
        mean, var = caps.reference_moments(coord, caps.dt)[caps.scheme]  # the default scheme's invariant law
        moments = ensemble_moments(late.sel(coord=coord).values)
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
