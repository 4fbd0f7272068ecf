"""Property tests of the ensemble integrator: determinism, walker independence, shapes."""

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from eqfree import SDE, euler_maruyama
from eqfree.evolve.noise import WALKERS_PER_BLOCK


def nonlinear(dim, noise="diagonal"):
    g = ((lambda x, t: 0.3 + 0.1 * torch.cos(x)) if noise == "diagonal"
         else (lambda x, t: 0.2 * torch.ones(x.shape[1], x.shape[1] + 1, dtype=x.dtype)))
    return SDE(lambda x, t: -x**3 + torch.roll(x, 1, dims=1) + 0.1 * t, g, noise)


def start(walkers, dim, seed=0):
    return np.random.default_rng(seed).normal(size=(walkers, dim))


@settings(max_examples=25, deadline=None)
@given(walkers=st.integers(1, 40), dim=st.integers(1, 5), seed=st.integers(0, 2**32), steps=st.integers(0, 40),
       noise=st.sampled_from(["diagonal", "general"]))
def test_same_seed_identical_trajectories(walkers, dim, seed, steps, noise):
    x0 = start(walkers, dim)
    a = euler_maruyama(nonlinear(dim, noise), x0, dt=0.01, n_steps=steps, seed=seed)
    b = euler_maruyama(nonlinear(dim, noise), x0, dt=0.01, n_steps=steps, seed=seed)
    np.testing.assert_array_equal(a.values, b.values)
    if steps:
        c = euler_maruyama(nonlinear(dim, noise), x0, dt=0.01, n_steps=steps, seed=seed + 1)
        assert not np.array_equal(a.values[1:], c.values[1:])


@settings(max_examples=20, deadline=None)
@given(walkers=st.integers(1, 2 * WALKERS_PER_BLOCK + 3), extra=st.integers(1, WALKERS_PER_BLOCK + 5),
       seed=st.integers(0, 1000), dim=st.integers(1, 3))
def test_walkers_are_independent_of_the_ensemble(walkers, extra, seed, dim):
    """Walker i's trajectory is unchanged when walkers are appended (across noise blocks too)."""
    x0 = start(walkers + extra, dim)
    few = euler_maruyama(nonlinear(dim), x0[:walkers], dt=0.01, n_steps=20, seed=seed)
    more = euler_maruyama(nonlinear(dim), x0, dt=0.01, n_steps=20, seed=seed)
    np.testing.assert_array_equal(few.values, more.values[:, :walkers])


def test_shorter_run_is_a_prefix_of_a_longer_one():
    x0 = start(10, 2)
    short = euler_maruyama(nonlinear(2), x0, dt=0.01, n_steps=17, seed=3)
    long = euler_maruyama(nonlinear(2), x0, dt=0.01, n_steps=50, seed=3)
    np.testing.assert_array_equal(short.values, long.values[:18])


@settings(max_examples=30, deadline=None)
@given(walkers=st.integers(1, 30), dim=st.integers(1, 6), steps=st.integers(0, 30), save_every=st.integers(1, 7),
       noise=st.sampled_from(["diagonal", "general"]))
def test_shapes_and_labels(walkers, dim, steps, save_every, noise):
    run = euler_maruyama(nonlinear(dim, noise), start(walkers, dim), dt=0.02, n_steps=steps, seed=1,
                         save_every=save_every)
    saved = steps // save_every + 1
    assert run.dims == ("time", "walker", "coord")
    assert run.shape == (saved, walkers, dim)
    assert run.dtype == np.float64
    np.testing.assert_allclose(run.time.values, 0.02 * save_every * np.arange(saved))
    assert list(run.coord.values) == [f"x{i + 1}" for i in range(dim)]
    full = euler_maruyama(nonlinear(dim, noise), start(walkers, dim), dt=0.02, n_steps=steps, seed=1)
    np.testing.assert_array_equal(run.values, full.values[::save_every])


def test_bias_force_is_minus_gradient_of_the_potential():
    """A harmonic bias k/2 (x1 − z)² on a noiseless system moves x1 by −k (x1 − z) dt per step."""
    still = SDE(lambda x, t: torch.zeros_like(x), lambda x, t: torch.zeros(x.shape[1], dtype=x.dtype))
    k, z, dt = 3.0, 0.5, 0.01
    run = euler_maruyama(still, [[2.0, 1.0]], dt=dt, n_steps=10, seed=0,
                         bias=lambda x: 0.5 * k * (x[:, 0] - z) ** 2)
    expected = z + (2.0 - z) * (1 - k * dt) ** np.arange(11)
    np.testing.assert_allclose(run[:, 0, 0].values, expected, rtol=1e-14)
    np.testing.assert_array_equal(run[:, 0, 1].values, 1.0)


def test_mixed_precision_noise_has_the_right_law():
    """float32 increments: the OU variance σ²/(θ(2 − θ dt)) under EM holds to its standard error."""
    theta, sigma, dt = 1.0, 1.0, 0.1
    ou = SDE(lambda x, t: -theta * x, lambda x, t: torch.tensor([sigma], dtype=x.dtype))
    final = euler_maruyama(ou, np.zeros((100_000, 1)), dt=dt, n_steps=100, seed=8, save_every=100,
                           noise_dtype=torch.float32)[-1, :, 0].values
    expected = sigma**2 / (theta * (2 - theta * dt)) * (1 - (1 - theta * dt) ** 200)
    # expected is EM's exact variance on OU at this dt (no discretization bias; float32 noise rounds each increment by
    # 6e-8 relative, nil); 3 standard errors of a Gaussian's variance, var·√(2/n), and of its mean, √(var/n), over n =
    # 100 000 independent walkers
    assert abs(final.var() - expected) < 3 * expected * np.sqrt(2 / final.size)
    assert abs(final.mean()) < 3 * np.sqrt(expected / final.size)


def test_fields_that_alias_the_state_are_safe():
    """Geometric Brownian motion written with drift and diffusion returning x itself."""
    aliasing = SDE(lambda x, t: x, lambda x, t: x)
    copying = SDE(lambda x, t: x.clone(), lambda x, t: x.clone())
    x0 = start(7, 2) ** 2 + 0.5
    a = euler_maruyama(aliasing, x0, dt=0.01, n_steps=30, seed=2)
    b = euler_maruyama(copying, x0, dt=0.01, n_steps=30, seed=2)
    np.testing.assert_array_equal(a.values, b.values)


@settings(max_examples=10, deadline=None)
@given(first=st.integers(0, 2100), count=st.integers(1, 1100))
def test_a_slice_of_walkers_simulated_apart_draws_the_same_noise(first, count):
    """``first_walker`` places a call's walkers in the seed's stream, across noise-block boundaries."""
    sde = SDE(lambda x, t: -x, lambda x, t: torch.ones_like(x))
    everything = euler_maruyama(sde, np.zeros((first + count, 1)), dt=0.1, n_steps=3, seed=11)
    part = euler_maruyama(sde, np.zeros((count, 1)), dt=0.1, n_steps=3, seed=11, first_walker=first)
    np.testing.assert_array_equal(part.values, everything.values[:, first:])
