"""Pseudo-arclength continuation of coarse fixed points on the stochastic coarse time-stepper: the pitchfork
of averaging_cubic, the S-shaped system's folds (where natural-parameter continuation fails), the Schlögl
model by SSA bursts, and the `eqfree continue` command."""

import json
import math

import numpy as np
import pytest
from scipy import stats

from eqfree import CoarseTimeStepper, Coordinates, systems
from eqfree.cli import main
from eqfree.coarse import BurstDrift, continuation, natural_continuation, newton_krylov
from eqfree.errors import InputError
from eqfree.io import open_zarr


def sde_family(name, dt):
    def family(lam):
        system = systems.get(name, lam=lam)
        return CoarseTimeStepper(system.exact_lift(dt), system.evolver(dt), Coordinates("x1", 2))

    return family


def folds_of(branch):
    return [p for p in branch.attrs["special_points"] if p["kind"] == "fold"]


# -- the pitchfork: B(z) = λz − z³ − 3s²z, the branch λ = 3s² + z² turning at z = 0, λ = 0.75 --------------
def check_pitchfork(branch):
    """The acceptance checks of the pitchfork branch (each point, the turning point, the eigenvalues).

    Tolerances. Newton stops on the burst drift within its noise, leaving F̄ = ``x1_drift`` at each point, so
    F̄ − B(z_k, λ_k) is the sampling error of F there (standard error ``x1_drift_stderr``) plus the bursts' bias:
    ½τB′B vanishes with B, and the Leimkuhler–Matthews start (a fresh ξ₀ per burst: the first step's noise is
    half a step short) leaves x2's variance short of s² by s²Δt/(2τ) on average over a burst, which raises
    F = λz − E[x2³] by c z, c = 3s²Δt/(2τ) = 0.00375 (measured with 2·10⁵ walkers: F − B = 0.0009 ± 0.0008 and
    0.0019 ± 0.0015 at z = 0.5 and 0.85, against 0.0019 and 0.0032). The m points are checked at once: k =
    Φ⁻¹(1 − 0.005/m) standard errors plus c|z|, a family-wise 1 % bound (Bonferroni). Eigenvalues: B′(z_k, λ_k)
    = λ_k − 3s² − 3z_k² at the computed point (on the branch, −2z*²), within k of their standard errors (biases
    below a third of one: tests/test_newton.py).
    """
    v = systems.get("averaging_cubic").fast_variance(1e-4)
    assert 3 * v == pytest.approx(0.75)
    bias = 3 * v * 1e-4 / (2 * 100 * 1e-4)  # c = 3s²Δt/(2τ): bursts of 100 steps of 1e-4
    z, lam = branch.x1.values, branch.lam.values
    k = stats.norm.isf(0.005 / len(z))
    residual = lam * z - z**3 - 3 * v * z
    assert np.all(np.abs(branch.x1_drift.values - residual) < k * branch.x1_drift_stderr.values + bias * np.abs(z))
    slope = lam - 3 * v - 3 * z**2
    assert np.all(np.abs(branch.eigenvalue.values - slope) < k * branch.eigenvalue_stderr.values)
    resolved = 2 * z**2 > 3 * branch.eigenvalue_stderr.values  # −2z² resolved from 0: the point is stable
    assert resolved.sum() >= 6 and np.all(branch.stable.values[resolved])
    # through the turning point onto z < 0, then back out of the range: the branch leaves λ ≤ 1.5 at z = −√0.75
    # and the last point lies at most one largest step (0.2) before, along which z moves by 0.2/√(1 + 4z²) ≤ 0.13
    # where |z| ≥ 0.6 (so the last point's |z| is at least √0.75 − 0.13 > 0.6: consistent)
    end = -math.sqrt(0.75) + 0.2 / math.sqrt(1 + 4 * 0.6**2)
    assert z[0] > 0.8 and z.min() < end and branch.attrs["stop_reason"] == "lam left [-0.5, 1.5]"
    (fold,) = folds_of(branch)
    # 0.03: the absolute acceptance for the fold; and the statistical one: the bias c z of F moves the branch
    # to λ = 3s² + z² − c, its fold to 0.75 − c; 3 standard errors of the fitted fold (lam_stderr, from the branch
    # points' drift errors) plus 0.005 for the local fit's truncation (stated, not computed here)
    assert abs(fold["lam"] - 0.75) < 0.03 and abs(fold["lam"] - 0.75 + bias) < 3 * fold["lam_stderr"] + 0.005
    (branch_point,) = [p for p in branch.attrs["special_points"] if p["kind"] == "branch_point"]
    assert abs(branch_point["x1"]) < 0.1  # the pitchfork: det [∂F/∂u; tᵀ] ∝ −z(4z² + 1) changes sign at z = 0


ODD = [[-1.0]]  # averaging_cubic is odd under (x1, x2) -> -(x1, x2): the coarse symmetry z -> -z


def pitchfork(seed, symmetry=ODD):
    """The branch at the settings of `eqfree continue --system averaging_cubic --cv x1 --lift exact --parameter
    lam --from 1.5 --to -0.5 --z0 1.2 --odd --seed SEED` (1000 walkers, bursts of 100 fine steps, step 0.1)."""
    drift = BurstDrift(sde_family("averaging_cubic", 1e-4), tau=100 * 1e-4, n_walkers=1000, symmetry=symmetry)
    return continuation(drift, 1.2, 1.5, -0.5, seed=seed)


def passes(check, branch) -> bool:
    try:
        check(branch)
    except (AssertionError, ValueError):
        return False
    return True


def test_pitchfork_branch_at_the_command_defaults():
    """The API at the command's defaults with ``--odd`` and the example's seed 7; over seeds:
    :func:`test_pitchfork_branch_over_seeds`."""
    check_pitchfork(pitchfork(7))


def test_odd_drift_is_exactly_odd_and_unbiased():
    """With the symmetry, the drift estimate is exactly odd at every seed (F̄(−z) = −F̄(z), F̄(0) = 0: the
    invariant that keeps the pitchfork), and it estimates the same B as without (two estimates of one mean,
    within 4 combined standard errors)."""
    plain = BurstDrift(sde_family("averaging_cubic", 1e-4), tau=100 * 1e-4, n_walkers=1000)
    odd = BurstDrift(sde_family("averaging_cubic", 1e-4), tau=100 * 1e-4, n_walkers=1000, symmetry=ODD)
    for z in (0.0, 0.4):
        here, there = odd.samples(np.array([z, 1.0]), seed=3), odd.samples(np.array([-z, 1.0]), seed=3)
        np.testing.assert_allclose(here, -there, rtol=0, atol=1e-12)  # round-off: the same bursts, mirrored
    assert odd.n_bursts == 8  # two ensembles per evaluation
    with_symmetry, without = odd.samples(np.array([0.4, 1.0]), seed=4), plain.samples(np.array([0.4, 1.0]), seed=5)
    gap = with_symmetry.mean() - without.mean()
    assert abs(gap) < 4 * np.hypot(with_symmetry.std(ddof=1), without.std(ddof=1)) / np.sqrt(1000)  # independent seeds
    with pytest.raises(InputError, match="S @ S = I"):
        BurstDrift(sde_family("averaging_cubic", 1e-4), tau=0.01, n_walkers=10, symmetry=[[2.0]])


@pytest.mark.slow
def test_pitchfork_branch_over_seeds():
    """The command's defaults with ``--odd`` over seeds 0–9: ≥ 9 of 10 pass :func:`check_pitchfork` (issue 26's rule
    for what a user runs with their own seed). Measured 2026-12-04: 9 of 10 (seed 2: one point's drift 3.8 of its
    standard errors from B, a tail the family-wise bound allows 1 % of the time)."""
    assert sum(passes(check_pitchfork, pitchfork(seed)) for seed in range(10)) >= 9  # the specification (docstring)


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="measured 2026-12-04 (this test): 3 of 10 seeds pass "
                   "(3, 7, 9). At seeds 1, 2, 4, 5, 6 and 8 the branch joins the trivial one (min z −0.02 to 0.00) "
                   "and leaves the range with no fold; at seed 0 it crosses but the fold, 0.7174 ± 0.0115, is 2.9 se "
                   "off")
def test_pitchfork_without_the_symmetry_over_seeds():
    """Without ``--odd`` the bursts' sampling error breaks z → −z and unfolds the pitchfork (λ = z² − ε/z): the
    branch from z = 1.2 joins the trivial one instead of crossing at most seeds (bifurcation docs)."""
    assert sum(passes(check_pitchfork, pitchfork(seed, None)) for seed in range(10)) >= 9  # the same specification


@pytest.mark.slow
def test_continue_command_acceptance(tmp_path, capsys):
    """The issue's command line, verbatim (plus --out, and --odd: the pitchfork needs the symmetry, see
    test_pitchfork_without_the_symmetry_over_seeds): the same branch, in a store and a PNG."""
    out = tmp_path / "pitchfork.zarr"
    assert main(["continue", "--system", "averaging_cubic", "--cv", "x1", "--lift", "exact", "--parameter", "lam",
                 "--from", "1.5", "--to", "-0.5", "--z0", "1.2", "--odd", "--seed", "7", "--out", str(out)]) == 0
    branch = open_zarr(out).load()
    check_pitchfork(branch)
    assert (tmp_path / "pitchfork.png").stat().st_size > 20_000
    assert "fold at lam = 0.7" in capsys.readouterr().out


def test_continue_command_writes_a_branch_store_and_a_png(tmp_path, capsys):
    out, png = tmp_path / "branch.zarr", tmp_path / "figures" / "branch.png"
    argv = ["continue", "--system", "averaging_cubic", "--cv", "x1", "--lift", "exact", "--parameter", "lam",
            "--from", "1.5", "--to", "1.0", "--z0", "1.2", "--seed", "7", "--walkers", "200", "--step", "0.2",
            "--out", str(out), "--png", str(png), "--quiet"]
    assert main(argv) == 0
    branch = open_zarr(out).load()
    for name in ("lam", "lam_stderr", "x1", "x1_stderr", "eigenvalue", "eigenvalue_stderr", "stable"):
        assert branch[name].dims == ("point",)
    assert branch.attrs["parameter"] == "lam" and branch.attrs["cv"] == ["x1"]
    assert json.loads(json.dumps(branch.attrs["special_points"])) == []  # no fold in [1, 1.5]
    # every point on the branch z² = λ − 0.75 within 3 standard errors of the drift (check_pitchfork's bound)
    z, lam = branch.x1.values, branch.lam.values
    assert np.all(np.abs(lam * z - z**3 - 0.75 * z) < 3 * branch.x1_drift_stderr.values)
    assert np.all(branch.stable.values) and png.stat().st_size > 20_000
    assert "wrote" in capsys.readouterr().out
    assert main(argv) == 2  # the store exists: refused without --overwrite
    assert "exists" in capsys.readouterr().err
    argv[argv.index("lam", argv.index("--parameter"))] = "nonsense"
    assert main([*argv, "--overwrite"]) == 2
    assert "has no parameter 'nonsense'" in capsys.readouterr().err


# -- the S-shaped system: λ = z³ − cz, folds at z = ∓√(c/3), λ = ±(2c/3)√(c/3) -----------------------------
S_DT = 1e-4


def check_fold(branch, analytic):
    """A fold within 0.03 in λ of the analytic one, and within 3 of its standard errors (the fit's cubic term
    over the window leaves O(Δs⁴) ≈ 10⁻³)."""
    gaps = [abs(f["lam"] - analytic[1]) for f in folds_of(branch)]
    fold = folds_of(branch)[int(np.argmin(gaps))]
    # the docstring's bounds: 0.03 absolute, and 3 standard errors plus 1e-3 for the fit's O(Δs⁴) ≈ 10⁻³
    assert abs(fold["lam"] - analytic[1]) < min(0.03, 3 * fold["lam_stderr"] + 1e-3)
    # x at a fold is fixed only to √(2δλ/|λ''|): with δλ ≈ 3 se + 1e-3 ≈ 0.005 and |λ''| = 6|x| ≈ 4 at |x| = 0.661, ≈
    # 0.05
    assert abs(fold["x1"] - analytic[0]) < 0.05


def test_s_shaped_fold_and_middle_branch_where_natural_continuation_fails():
    system = systems.get("s_shaped")
    lower, upper = system.folds(S_DT)  # (x, λ): (−0.661, 0.579) and (0.661, −0.579)
    drift = BurstDrift(sde_family("s_shaped", S_DT), tau=100 * S_DT, n_walkers=300)
    branch = continuation(drift, -0.9, 0.35, 0.75, seed=3, step=0.08)
    check_fold(branch, lower)
    z, lam = branch.x1.values, branch.lam.values
    # the middle (unstable) branch: B′ = c − 3z² > 0, traced within 3 drift standard errors of λ = z³ − cz
    middle = system.slope(S_DT) - 3 * z**2 > 0.1
    assert middle.sum() >= 2 and np.all(~branch.stable.values[middle]) and z.max() > -0.45
    # a branch point is a root of the burst drift: 3 of its standard errors (x1_drift_stderr over independent walkers;
    # ∂B/∂λ = −1) plus the burst bias ½τB′B, which vanishes at the root (check_pitchfork's docstring)
    assert np.all(np.abs(lam - system.branch(z, S_DT)) < 3 * branch.x1_drift_stderr.values)
    # natural-parameter continuation from the same start, over the same range: Newton at each λ from the last
    # state stays on the lower branch up to the fold, and beyond it never reaches the middle branch
    natural = natural_continuation(drift, -0.9, np.linspace(0.35, 0.75, 5), seed=3)
    z_natural = natural.x1.values
    assert np.all(system.slope(S_DT) - 3 * z_natural**2 < 0)  # only stable states: no middle branch
    assert natural.lam.values.max() < lower[1] or np.any(np.diff(z_natural) > 1)  # stopped, or jumped


@pytest.mark.slow
def test_s_shaped_hysteresis_loop():
    """The whole S from λ = −1 to 1: both folds within 0.03, the middle branch between them."""
    system = systems.get("s_shaped")
    drift = BurstDrift(sde_family("s_shaped", S_DT), tau=100 * S_DT, n_walkers=500)
    branch = continuation(drift, -1.4, -1.0, 1.0, seed=21)
    for fold in system.folds(S_DT):
        check_fold(branch, fold)
    z = branch.x1.values
    # the branch's ends at λ = ∓1 are the outer roots of z³ − cz = λ, z = ∓1.42 (c = 1.3125); 1.3 leaves one
    # continuation step (≤ 0.1) short of them
    assert z[0] < -1.3 and z[-1] > 1.3 and branch.attrs["stop_reason"] == "lam left [-1, 1]"
    # as in the fast test: 3 drift standard errors, the burst bias vanishing at the root
    assert np.all(np.abs(branch.lam.values - system.branch(z, S_DT)) < 3 * branch.x1_drift_stderr.values)
    natural = natural_continuation(drift, -1.4, np.linspace(-1, 1, 11), seed=22)
    # not a tolerance: the sign of B′ = c − 3z², stable states only
    assert np.all(system.slope(S_DT) - 3 * natural.x1.values**2 < 0)


# -- Schlögl by SSA bursts: the chain's steady states b_Ω(x), within O(1/Ω) of the rate equation's g(x) ------
def schlogl_family(omega):
    def family(b):
        system = systems.get("schlogl", omega=omega, b=b)
        return CoarseTimeStepper(system.exact_lift(), system.evolver(), Coordinates("x1", 1))

    return family


def burst_bias(system, x, tau):
    """|E[Δx]/τ − F_Ω(x)| at a root of F_Ω: ½τ L F_Ω with L F = F F′ + ½ D F″ and F = 0 leaves ¼ τ D |F″|,
    D = (β + δ)/Ω² the chain's diffusion in concentration, F″ = 2k1 − 6k2x (to O(1/Ω)); doubled for the
    O(τ²) terms and the root's offset from the chain's (τ|F′| ≤ 0.3 on the branch)."""
    rates = system.propensities(np.atleast_1d(x * system.omega)[:, None])
    diffusion = rates.sum(axis=1) / system.omega**2
    return 2 * 0.25 * tau * diffusion * np.abs(2 * system.k1 - 6 * system.k2 * x)


def check_schlogl_points(system, x, b, drift_stderr, tau):
    """Each point against the chain (b_Ω(x): 3 standard errors of the drift, ∂F/∂b = 1, plus the burst bias)
    and against the rate equation (g(x): the same plus the stated O(1/Ω) bound)."""
    margin = 3 * drift_stderr + burst_bias(system, x, tau)
    assert np.all(np.abs(b - system.chain_branch(x)) < margin)
    assert np.all(np.abs(b - system.branch(x)) < margin + system.branch_bound(x))


def test_schlogl_steady_states_from_ssa_bursts():
    system = systems.get("schlogl")  # Ω = 100, b = 0.5: three steady states 0.293, 1, 1.707
    drift = BurstDrift(schlogl_family(100), tau=0.1, n_walkers=500)
    for guess, stable in ((0.35, True), (0.95, False), (1.65, True)):
        point = newton_krylov(drift, guess, lam=0.5, seed=13)
        check_schlogl_points(system, point.z, 0.5, point.drift_stderr, 0.1)
        assert point.stable is stable


@pytest.mark.slow
def test_schlogl_branch_and_folds_from_ssa_bursts():
    """The S-shaped branch of the Schlögl model at Ω = 100 from SSA bursts: every point and both folds within
    the O(1/Ω) bound of the rate equation (plus 3 standard errors and the burst bias)."""
    system = systems.get("schlogl")
    drift = BurstDrift(schlogl_family(100), tau=0.1, n_walkers=1000)
    branch = continuation(drift, 0.15, 0.3, 0.7, seed=11, parameter="b", step=0.1)
    x, b = branch.x1.values, branch.b.values
    check_schlogl_points(system, x, b, branch.x1_drift_stderr.values, 0.1)
    folds = sorted(folds_of(branch), key=lambda f: f["x1"])
    assert len(folds) == 2
    for fold, (x_fold, b_fold) in zip(folds, system.folds()):
        # the docstring's bound: the rate equation's stated O(1/Ω) bound (branch_bound) plus the burst bias at τ = 0.1
        # (burst_bias: ¼τD|F″|, doubled), plus 3 standard errors of the fold's b
        bound = system.branch_bound(x_fold) + burst_bias(system, x_fold, 0.1)
        assert abs(fold["b"] - b_fold) < bound + 3 * fold["b_stderr"]
