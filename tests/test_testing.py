"""eqfree.testing: micro–macro consistency of exact and broken lifts, strategies, zarr round trips."""

import tempfile
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings

from eqfree import Coordinates, FunctionLift, systems
from eqfree.closures import load, save
from eqfree.seeding import as_seed_sequence
from eqfree.systems import LinearGaussianLift
from eqfree.testing import check_micro_macro_consistency
from eqfree.testing.strategies import closure_datasets, cv_grids, cv_values, perturbed_lifts, seeds

LINEAR = systems.get("fast_slow_linear")
CUBIC = systems.get("averaging_cubic")
CUBIC_LIFT = LinearGaussianLift(0.0, 1.0, CUBIC.s**2, valid_range=(-3.0, 3.0))
X1 = Coordinates("x1")


@FunctionLift
def linear_exact_lift(z, n, *, seed):
    """fast_slow_linear's exact conditional sampler as a Lift."""
    return LINEAR.sample_conditional(float(np.asarray(z).reshape(-1)[0]), n, seed)


@FunctionLift
def offset_lift(z, n, *, seed):
    """Broken: the slow coordinate lands 0.1 above z."""
    x = CUBIC_LIFT(z, n, seed=seed)
    x[:, 0] += 0.1
    return x


@FunctionLift
def jittered_lift(z, n, *, seed):
    """Broken: right on average, but each state's slow coordinate is off by 0.05 ξ."""
    x = CUBIC_LIFT(z, n, seed=seed)
    x[:, 0] += 0.05 * np.random.default_rng(as_seed_sequence(seed).spawn(1)[0]).standard_normal(n)
    return x


@settings(max_examples=30, deadline=None)
@given(z=cv_values(low=-5.0, high=5.0), seed=seeds())
def test_exact_lift_of_fast_slow_linear_is_consistent(z, seed):
    report = check_micro_macro_consistency(linear_exact_lift, X1, z, 200, seed=seed, tolerance=1e-12)
    assert report.mean_error == 0.0 and report.n == 200
    fast = linear_exact_lift(z, 2000, seed=seed)[:, 1]
    mean, variance = LINEAR.conditional_moments()
    # exact sampler, no bias: 4.5 standard errors of a mean of 2000 independent draws, √(var/n); over the 30 examples
    # Hypothesis draws the chance of a false failure is 30 × 6.8e-6 = 2e-4 (Bonferroni)
    assert abs(fast.mean() - mean) < 4.5 * np.sqrt(variance / fast.size)


@settings(max_examples=30, deadline=None)
@given(z=cv_values(CUBIC_LIFT), seed=seeds())
def test_exact_lift_of_averaging_cubic_is_consistent(z, seed):
    assert check_micro_macro_consistency(CUBIC_LIFT, X1, z, 200, seed=seed, tolerance=1e-12).max_error == 0.0
    fast = CUBIC_LIFT(np.array([z]), 2000, seed=seed)[:, 1]
    mean, variance = CUBIC.conditional_moments(z)
    # as above: 4.5 se, Bonferroni over 30 examples (false-failure rate 2e-4)
    assert abs(fast.mean() - mean) < 4.5 * np.sqrt(variance / fast.size)


@settings(max_examples=20, deadline=None)
@given(z=cv_values(CUBIC_LIFT), seed=seeds())
def test_broken_lifts_fail_the_check(z, seed):
    with pytest.raises(AssertionError, match=r"mean \|R\(L\(z\)\) − z\| = 0.1 \(tolerance 0.01\)"):
        check_micro_macro_consistency(offset_lift, X1, z, 100, seed=seed, tolerance=0.01)
    # mean |0.05 ξ| = 0.04: passes a loose mean bound, fails the per-sample bound
    with pytest.raises(AssertionError, match=r"per-sample tolerance 0.1\)"):
        check_micro_macro_consistency(jittered_lift, X1, z, 1000, seed=seed, tolerance=0.06, sample_tolerance=0.1)


def test_report_carries_the_errors():
    report = check_micro_macro_consistency(jittered_lift, X1, 0.5, 20_000, seed=1, tolerance=0.05, sample_tolerance=1.0)
    expected = 0.05 * np.sqrt(2 / np.pi)  # E|0.05 ξ|
    assert abs(report.mean_error - expected) < 4 * 0.05 * np.sqrt(1 - 2 / np.pi) / np.sqrt(report.n)
    assert 0.15 < report.max_error < 0.3  # about 4 sd for 20,000 draws


def test_bad_use_of_the_check():
    with pytest.raises(ValueError, match=r"outside the lift's valid range \(-3.0, 3.0\)"):
        check_micro_macro_consistency(CUBIC_LIFT, X1, 3.5, seed=1, tolerance=0.1)
    with pytest.raises(AssertionError, match=r"restriction of 10 lifted states has shape \(10, 2\)"):
        check_micro_macro_consistency(CUBIC_LIFT, Coordinates(["x1", "x2"]), 0.0, 10, seed=1, tolerance=0.1)
    with pytest.raises(ValueError, match="give low and high"):
        cv_values(linear_exact_lift)


@settings(max_examples=30, deadline=None)
@given(drawn=perturbed_lifts(CUBIC_LIFT), z=cv_values(CUBIC_LIFT), seed=seeds())
def test_perturbed_lifts_scale_the_spread(drawn, z, seed):
    """The perturbation scales each coordinate's deviation from its sample mean: the fast sd by the factor
    exactly, the pinned slow coordinate not at all."""
    factor, lift = drawn
    # an invariant, not a statistical bound: the range perturbed_lifts promises for its factor ([1/2, 2], outside
    # (1/1.2, 1.2))
    assert 1 / 2.0 <= factor <= 2.0 and not 1 / 1.2 < factor < 1.2 and lift.valid_range == CUBIC_LIFT.valid_range
    x, reference = lift(np.array([z]), 300, seed=seed), CUBIC_LIFT(np.array([z]), 300, seed=seed)
    np.testing.assert_allclose(x[:, 1].std(), factor * reference[:, 1].std(), rtol=1e-12)
    np.testing.assert_allclose(x[:, 0], z, rtol=0, atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(grid=cv_grids(-2.0, 2.0))
def test_grids_are_strictly_increasing(grid):
    # invariants of the strategy, not tolerances: at least two strictly increasing points inside [−2, 2]
    assert grid.size >= 2 and np.all(np.diff(grid) > 0) and grid.min() >= -2 and grid.max() <= 2


@settings(max_examples=25, deadline=None)
@given(dataset=closure_datasets())
def test_closure_datasets_round_trip_through_zarr(dataset):
    with tempfile.TemporaryDirectory() as directory:
        path = save(dataset, Path(directory) / "closure.zarr")
        back = load(path)
    xr.testing.assert_identical(back, dataset)
    for name, variable in dataset.variables.items():
        assert back[name].attrs == variable.attrs and back[name].dtype == variable.dtype
