"""The coarse time-stepper R ∘ E_τ ∘ L against the exact slow law of eq. (2.1)."""

import numpy as np
import pytest

from eqfree import CoarseTimeStepper, Coordinates, Evolve, FunctionLift, Lift, Restrict


def exact_lift(system):
    return FunctionLift(lambda z, n, *, seed: system.sample_conditional(z[0], n, seed))


def stepper(system, dt=0.1):
    return CoarseTimeStepper(exact_lift(system), system.evolver(dt=dt), Coordinates("x1"))


def test_protocols_are_satisfied(fast_slow):
    assert isinstance(exact_lift(fast_slow), Lift)
    assert isinstance(fast_slow.evolver(), Evolve)
    assert isinstance(Coordinates("x1"), Restrict)


def test_restricted_bursts_follow_the_slow_law(fast_slow):
    """x1(τ) | x1(0) = z ~ N(z + a1 τ, a2² τ) whatever the fast x2 does."""
    z, tau, replicas = 10.0, 5.0, 20_000
    bursts = stepper(fast_slow)(z, tau, replicas, seed=9, save_every=10)
    assert bursts.dims == ("time", "walker", "cv")
    assert bursts.shape == (6, replicas, 1) and list(bursts.cv.values) == ["x1"]
    np.testing.assert_allclose(bursts.time.values, np.arange(6) * 1.0)
    np.testing.assert_array_equal(bursts[0].values, z)
    final = bursts[-1, :, 0].values
    mean, var = fast_slow.slow_moments(z, tau)
    # x1 under eq. (2.1) is exactly Gaussian (Brownian with drift, slow_moments): 3 standard errors of a mean, √(var/R),
    # and of a Gaussian variance, var·√(2/R), over R independent replicas; the lift is exact, so no bias
    assert abs(final.mean() - mean) < 3 * np.sqrt(var / replicas)
    assert abs(final.var(ddof=1) - var) < 3 * var * np.sqrt(2 / replicas)


def test_same_seed_same_bursts(fast_slow):
    a = stepper(fast_slow)(1.0, 1.0, 50, seed=4)
    b = stepper(fast_slow)(1.0, 1.0, 50, seed=4)
    c = stepper(fast_slow)(1.0, 1.0, 50, seed=5)
    np.testing.assert_array_equal(a.values, b.values)
    assert not np.array_equal(a.values, c.values)


def test_bad_coarse_steps(fast_slow):
    step = stepper(fast_slow)
    with pytest.raises(ValueError, match="multiple of the fine step"):
        step(1.0, 0.25, 10, seed=0)
    with pytest.raises(ValueError, match="n_walkers"):
        step(1.0, 1.0, 0, seed=0)
    with pytest.raises(ValueError, match="finite"):
        step(np.nan, 1.0, 10, seed=0)
    broken = CoarseTimeStepper(FunctionLift(lambda z, n, *, seed: np.zeros((n + 1, 2))), fast_slow.evolver(),
                               Coordinates("x1"))
    with pytest.raises(ValueError, match="lift returned shape"):
        broken(1.0, 1.0, 3, seed=0)
