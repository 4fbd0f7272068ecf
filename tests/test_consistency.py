"""eqfree.testing's calibrated checks: the two-sample test against scipy, p-value adjustments, each check
passing correct operators and rejecting a stated bad one, the CLI's exit status, the pytest plugin.

Calibration (false alarms at α = 0.05 over 200 seeds inside the binomial 99 % interval) and power (≥ 0.9
against each bad operator) are slow studies, marked ``slow``."""

import functools
import math

import numpy as np
import pytest
import xarray as xr
from scipy import stats

from eqfree import Coordinates, systems
from eqfree.cli import main
from eqfree.closures import BurstEstimator, estimate_closure
from eqfree.lift import CcGAN, UmbrellaSampling
from eqfree.systems import LinearGaussianLift
from eqfree.testing import (
    adjusted,
    check_closure_pmf,
    check_lift,
    check_lifts_agree,
    check_markov,
    two_sample_test,
)

pytest_plugins = ("pytester",)

CUBIC = systems.get("averaging_cubic")
CUBIC_EXACT = CUBIC.exact_lift(CUBIC.dt)  # Euler–Maruyama's invariant law at the default step
CUBIC_WIDE = LinearGaussianLift(0.0, 1.0, 1.2 * CUBIC.fast_variance(CUBIC.dt))  # fast variance 20 % off
LINEAR = systems.get("fast_slow_linear")
OSCILLATOR = systems.get("two_slow", eps=0.05)  # dt = 5e-3: the oscillator is resolved, x3 is fast
WELL = systems.get("double_well")
GRID = np.linspace(-1, 1, 5)
ALPHA = 0.05


# -- the two-sample test and the adjustments --------------------------------------------------------------
def test_energy_statistic_is_scipys_energy_distance_squared():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=300), 1.3 * rng.normal(size=200) + 0.1
    result = two_sample_test(x, y, seed=1)
    assert result.statistic == pytest.approx(stats.energy_distance(x, y) ** 2, rel=1e-12)
    assert two_sample_test(7 * x, 7 * y, seed=1).p_value == result.p_value  # a unit changes E, not p


def test_sliced_statistic_is_the_largest_projection():
    """In 2-D the statistic is the largest E over the two axes and two random directions: at least that of
    the axis along which the laws differ."""
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(400, 2)), rng.normal(size=(400, 2)) * [1.0, 1.5]
    result = two_sample_test(x, y, seed=2)
    axes = [stats.energy_distance(x[:, i], y[:, i]) ** 2 for i in range(2)]
    assert result.statistic >= axes[1] * (1 - 1e-12) and axes[1] > axes[0]


def test_permutation_p_values_are_uniform_under_equal_laws():
    """50 tests of two samples of the same law: KS against U(0, 1) (p-values on the 1/200 lattice)."""
    rng = np.random.default_rng(3)
    p = [two_sample_test(rng.normal(size=(100, 2)), rng.normal(size=(100, 2)), seed=s).p_value for s in range(50)]
    # under the null the permutation p-values are uniform (exact test): KS at level 1e-3, a false failure for 0.1 % of
    # seeds
    assert stats.kstest(p, "uniform").pvalue > 0.001


def test_holm_and_benjamini_hochberg():
    p = np.array([0.01, 0.04, 0.03, 0.005])
    # Holm by hand: sorted 0.005·4, 0.01·3, 0.03·2, 0.04·1, then the running maximum
    np.testing.assert_allclose(adjusted(p, "holm"), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(adjusted(p, "bh"), stats.false_discovery_control(p))
    with pytest.raises(ValueError, match="correction must be one of"):
        adjusted(p, "bonferroni")


# -- the checks on correct and bad operators ------------------------------------------------------------
def test_lift_check_passes_the_exact_lift_and_rejects_a_wrong_variance():
    """At the documented n_samples = 4000, on three points (the power study runs five, tests below)."""
    grid = [-1.0, 0.0, 1.0]
    good = check_lift(CUBIC_EXACT, CUBIC.evolver(), "x1", grid, n_steps=100, seed=3)
    # the check's own decision: a correct lift passes at family-wise level α (Bonferroni α/3 over the 3 points), so this
    # fails for ≤ 5 % of seeds, the level the check is documented at (seed 3 fixed); the false-alarm rate itself is
    # measured by test_false_alarm_rate
    assert good.consistent and good.p_value.min() > ALPHA / 3
    assert good.samples["healed"].shape == (3, 4000, 2)
    bad = check_lift(CUBIC_WIDE, CUBIC.evolver(), "x1", grid, n_steps=100, seed=3)
    assert not bad.consistent
    with pytest.raises(AssertionError, match="the lift check rejects"):
        bad.assert_consistent()


def test_markov_check_rejects_a_cv_that_leaves_out_a_slow_variable():
    evolve = OSCILLATOR.evolver()
    both = check_markov(OSCILLATOR.exact_lift(OSCILLATOR.dt, cv=("x1", "x2")), evolve, Coordinates(["x1", "x2"]),
                        [[1.0, -1.0], [0.0, 1.0]], tau=1.0, n_samples=500, seed=4)
    assert both.consistent
    position = check_markov(OSCILLATOR.exact_lift(OSCILLATOR.dt), evolve, Coordinates("x1"), [-1.0, 1.0], tau=1.0,
                            n_samples=500, seed=4)
    assert position.rejected.all()


def test_markov_check_passes_an_exact_markov_cv():
    """fast_slow_linear's x1 is a Brownian motion with drift, whatever x2 does: Markovian at every τ."""
    report = check_markov(LINEAR.exact_lift(LINEAR.dt), LINEAR.evolver(), Coordinates("x1"), GRID, tau=20.0,
                          n_samples=500, seed=5)
    assert report.consistent


def well_closure(seed, n_walkers=8000, diffusion_factor=1.0):
    """double_well's closure in x1 by bursts of 4 steps, D from the slope of Var Δx1 over steps 2–4 (the default
    t_heal = τ/2: Leimkuhler–Matthews' first step carries half a step's noise, an intercept the slope ignores),
    debiased by the check; D scaled by ``diffusion_factor`` makes a bad closure. The step dt = 1e-3 keeps the
    burst biases and the noise the debiasing adds (∝ τ, not in the stated errors) small against se_B ∝ 1/√τ."""
    lift = LinearGaussianLift(0.0, 0.0, 1 / (WELL.beta * WELL.d))
    estimator = BurstEstimator(lift, WELL.evolver(1e-3), Coordinates("x1"), tau=4e-3, n_walkers=n_walkers)
    closure = estimate_closure(estimator, np.linspace(-2.5, 2.5, 21), seed=seed)
    for name in ("diffusion", "diffusion_stderr"):
        closure[name] = closure[name] * diffusion_factor
    return closure


def well_pmf():
    """The exact PMF of x1 in kT, on a fine grid (central differences over 0.125 err by F''' h²/24 < 0.02)."""
    z = np.linspace(-4, 4, 8001)
    f = WELL.beta * (WELL.a / 4 * z**4 - WELL.b / 2 * z**2 + WELL.c * z)
    return xr.Dataset({"pmf": ("cv", f - f.min()), "pmf_stderr": ("cv", np.zeros_like(z))}, coords={"cv": z})


def test_closure_pmf_check_passes_the_exact_closure_and_rejects_a_wrong_diffusion():
    good = check_closure_pmf(well_closure(6), well_pmf())
    assert good.consistent and good.grid.size == 19
    bad = check_closure_pmf(well_closure(6, diffusion_factor=1.2), well_pmf())
    assert not bad.consistent
    # the residual of the bad closure is −0.2 B(z) = 0.2 U'(z) (D constant)
    edge = np.abs(bad.grid) > 2.1
    np.testing.assert_allclose(bad.samples["residual"][edge], 0.2 * (bad.grid[edge] ** 3 - 6 * bad.grid[edge] + 1),
                               atol=4 * bad.samples["residual_stderr"][edge].max())


def test_lifts_agree_check():
    umbrella = UmbrellaSampling(CUBIC.evolver(), "x1", 1 / CUBIC.dt, n_steps=100, initial=CUBIC_EXACT)
    grid = [-1.0, 0.0, 1.0]
    assert check_lifts_agree(CUBIC_EXACT, umbrella, grid, n_samples=1000, seed=7).consistent
    assert not check_lifts_agree(CUBIC_EXACT, CUBIC_WIDE, grid, seed=7).consistent


def test_bad_input():
    with pytest.raises(ValueError, match="alpha must lie in"):
        check_lifts_agree(CUBIC_EXACT, CUBIC_EXACT, GRID, alpha=1.5, seed=1)
    with pytest.raises(ValueError, match="restrains one CV"):
        check_lift(CUBIC_EXACT, CUBIC.evolver(), "x1", np.zeros((3, 2)), n_steps=10, seed=1)
    limited = LinearGaussianLift(0.0, 1.0, 0.25, valid_range=(-0.5, 0.5))
    with pytest.raises(ValueError, match="leaves the lift's valid range"):
        check_lifts_agree(limited, CUBIC_EXACT, GRID, seed=1)
    with pytest.raises(ValueError, match="needs"):
        check_closure_pmf(well_closure(1).drop_vars("diffusion"), well_pmf())


# -- the command line and the plugin ----------------------------------------------------------------------
@pytest.mark.slow
def test_cli_check_lift_at_its_defaults():
    """The issue's two commands, at the default 4000 samples."""
    command = ["check", "lift", "--system", "averaging_cubic", "--cv", "x1", "--grid=-1:1:5", "--seed", "3"]
    assert main([*command, "--lift", "exact"]) == 0
    assert main([*command, "--lift", "umbrella:kappa=1000,steps=1"]) == 1


def test_cli_check_lift_exit_status(capsys):
    command = ["check", "lift", "--system", "averaging_cubic", "--cv", "x1", "--grid=-1:1:5", "--seed", "3",
               "--samples", "500"]
    assert main([*command, "--lift", "exact"]) == 0
    assert "lift: consistent" in capsys.readouterr().out
    assert main([*command, "--lift", "umbrella:kappa=1000,steps=1"]) == 1
    assert "REJECT" in capsys.readouterr().out
    assert main([*command, "--lift", "umbrella:kappa=1000"]) == 2
    with pytest.raises(SystemExit) as exit:
        main([*command[:4], "--grid=-1:1"])
    assert exit.value.code == 2


def test_cli_check_writes_a_store(tmp_path):
    out = tmp_path / "lifts.zarr"
    status = main(["check", "lifts", "--system", "fast_slow_linear", "--cv", "x1", "--lift", "exact", "--other",
                   "exact", "--grid=0:1:2", "--samples", "500", "--seed", "1", "--out", str(out)])
    stored = xr.open_zarr(out)
    assert status == 0 and stored.attrs["check"] == "lifts" and stored["p_value"].size == 2


def test_pytest_plugin(pytester):
    pytester.makepyfile("""
        import numpy as np, pytest
        from eqfree.systems import LinearGaussianLift

        @pytest.mark.eqfree(seed=2)
        def test_same(eqfree_check):
            lift = LinearGaussianLift(1.0, 0.0, 0.05)
            assert eqfree_check.lifts_agree(lift, lift, [0.0, 1.0], n_samples=300).consistent

        def test_different(eqfree_check):
            eqfree_check.lifts_agree(LinearGaussianLift(1.0, 0.0, 0.05), LinearGaussianLift(1.0, 0.0, 0.2),
                                     [0.0], n_samples=300)
    """)
    result = pytester.runpytest("-p", "no:cacheprovider")  # the plugin comes in by its pytest11 entry point
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*the lifts check rejects*"])


def test_oscillator_facts():
    """two_slow: N(0, I) in (x1, x2) for the SDE; x1(t) | x(0) by the propagator e^{−At}, against 4000 walkers."""
    np.testing.assert_allclose(OSCILLATOR.stationary_covariance()[:2, :2], np.eye(2), atol=1e-12)
    x0 = OSCILLATOR.exact_lift(OSCILLATOR.dt, cv=("x1", "x2"))(np.array([1.0, 0.5]), 4000, seed=1)
    end = OSCILLATOR.evolver()(x0, 200, seed=2, save_every=200).values[-1]
    mean, covariance = OSCILLATOR.transition([1.0, 0.5, 1.0], 1.0)
    # Euler–Maruyama at dt = 5e-3 shifts the mean by O(dt) ~ 0.003, below the 4-sd bound (~0.013)
    assert abs(end[:, 0].mean() - mean[0]) < 4 * np.sqrt(covariance[0, 0] / 4000) + 0.005


# -- calibration and power (slow studies) -----------------------------------------------------------------
SEEDS = 200
UMBRELLA = UmbrellaSampling(CUBIC.evolver(), "x1", 1 / CUBIC.dt, n_steps=100, initial=CUBIC_EXACT)
LINEAR_UMBRELLA = UmbrellaSampling(LINEAR.evolver(), "x1", 1 / LINEAR.dt, n_steps=100,
                                   initial=LINEAR.exact_lift(LINEAR.dt))  # 100 steps = 10 relaxation times of x2
UNDERTRAINED_EPOCHS = 1000  # a fifth of the CcGAN's default (the paper's) 5000


@functools.cache
def linear_training_data() -> np.ndarray:
    """fast_slow_linear's CcGAN training data, as tests/conftest.py's fast_slow_training_data: 50 walkers from
    (0, 1) until x1 ≈ 10 (dt = 0.5, every 20th step), labelled by x1."""
    trajectories = LINEAR.simulate(50, 20_000, dt=0.5, save_every=20, seed=11)
    return trajectories.isel(time=slice(1, None)).values.reshape(-1, 2)


def fast_coordinate(x):
    """x2: the CcGAN spreads x1 about z (label error ~0.3), umbrella sampling pins it (~1e-3); the check
    compares the fast variable's law."""
    return x[:, 1:]


def run_check(case: str, seed: int, n_samples: int | None = None):
    """One check on one seed: the correct operators of the issue's acceptance, and the four bad ones."""
    if case == "lift averaging_cubic":
        return check_lift(CUBIC_EXACT, CUBIC.evolver(), "x1", GRID, n_steps=100, n_samples=n_samples, seed=seed)
    if case == "lift fast_slow_linear":
        return check_lift(LINEAR.exact_lift(LINEAR.dt), LINEAR.evolver(), "x1", GRID, n_steps=100,
                          n_samples=n_samples, seed=seed)
    if case == "lift wrong variance":
        return check_lift(CUBIC_WIDE, CUBIC.evolver(), "x1", GRID, n_steps=100, n_samples=n_samples, seed=seed)
    if case == "markov fast_slow_linear":
        return check_markov(LINEAR.exact_lift(LINEAR.dt), LINEAR.evolver(), Coordinates("x1"), GRID, tau=20.0,
                            n_samples=n_samples, seed=seed)
    if case == "markov two_slow (x1, x2)":
        return check_markov(OSCILLATOR.exact_lift(OSCILLATOR.dt, cv=("x1", "x2")), OSCILLATOR.evolver(),
                            Coordinates(["x1", "x2"]), [[1.0, -1.0], [0.0, 1.0], [-1.0, 0.0]], tau=1.0,
                            n_samples=n_samples, seed=seed)
    if case == "markov two_slow x1":
        return check_markov(OSCILLATOR.exact_lift(OSCILLATOR.dt), OSCILLATOR.evolver(), Coordinates("x1"), GRID,
                            tau=1.0, n_samples=n_samples, seed=seed)
    if case == "closure-pmf double_well":
        return check_closure_pmf(well_closure(seed, n_samples), well_pmf())
    if case == "closure-pmf wrong diffusion":
        return check_closure_pmf(well_closure(seed, n_samples, diffusion_factor=1.2), well_pmf())
    if case == "lifts exact vs umbrella":
        return check_lifts_agree(CUBIC_EXACT, UMBRELLA, GRID, n_samples=n_samples, seed=seed)
    if case == "lifts wrong variance vs umbrella":
        return check_lifts_agree(CUBIC_WIDE, UMBRELLA, GRID, n_samples=n_samples, seed=seed)
    if case == "lifts undertrained CcGAN vs umbrella":
        data = linear_training_data()
        ccgan = CcGAN(n_epochs=UNDERTRAINED_EPOCHS, lr_schedule="constant", average_from=1.0).fit(  # the paper's
            data, data[:, 0], seed=seed, progress=False)  # last weights: averaged, 1000 epochs already pass 7 of 10
        return check_lifts_agree(ccgan, LINEAR_UMBRELLA, np.linspace(1, 9, 5), n_samples=n_samples, seed=seed,
                                 features=fast_coordinate)
    raise KeyError(case)


@pytest.mark.slow
@pytest.mark.parametrize("case, n_samples", [
    ("lift averaging_cubic", 500), ("lift fast_slow_linear", 500), ("markov fast_slow_linear", 500),
    ("markov two_slow (x1, x2)", 500), ("closure-pmf double_well", 8000), ("lifts exact vs umbrella", 500)])
def test_false_alarm_rate(case, n_samples):
    """Correct operators, 200 seeds: the number of rejections at α = 0.05 inside the binomial 99 % interval
    around 0.05 · 200 = 10 (Holm over K independent points has family-wise level 1 − (1 − α/K)^K ≈ 0.049).
    The permutation test is exact at any size, so a smaller n_samples than the default tests the same level."""
    rejections = sum(not run_check(case, seed, n_samples).consistent for seed in range(SEEDS))
    low, high = stats.binom.interval(0.99, SEEDS, ALPHA)
    assert low <= rejections <= high, f"{case}: {rejections} false alarms in {SEEDS}"


@pytest.mark.slow
@pytest.mark.parametrize("case, n_samples, n_seeds", [
    ("lift wrong variance", 4000, 50), ("markov two_slow x1", 500, 50), ("closure-pmf wrong diffusion", 8000, 50),
    ("lifts wrong variance vs umbrella", 4000, 50), ("lifts undertrained CcGAN vs umbrella", 4000, 10)])
def test_power(case, n_samples, n_seeds):
    """The four bad operators of the issue at the documented sample sizes (docs/consistency.md): rejected in
    ≥ 90 % of the seeds. The CcGAN (fast_slow_linear, trained UNDERTRAINED_EPOCHS on its simulated data, training
    and check seed both the study's seed; 10 seeds: each trains a CcGAN) is compared with umbrella sampling on x2;
    a cheap generative lift with a 20 % wrong fast variance is a second lifts case."""
    rejections = sum(not run_check(case, seed, n_samples).consistent for seed in range(n_seeds))
    # the power the issue specifies (≥ 90 % of seeds, docs/consistency.md), a specification rather than a standard
    # error; with 50 seeds the binomial se of the rate at 0.95 is 0.03
    assert rejections >= math.ceil(0.9 * n_seeds), f"{case}: power {rejections / n_seeds:.2f}"
