"""Pseudo-arclength continuation of coarse fixed points on the stochastic coarse time-stepper: the pitchfork
of averaging_cubic, the S-shaped system's folds (where natural-parameter continuation fails), the Schlögl
model by SSA bursts, and the `eqfree continue` command."""

import json

import numpy as np
import pytest

from eqfree import CoarseTimeStepper, Coordinates, systems
from eqfree.cli import main
from eqfree.coarse import BurstDrift, continuation, natural_continuation, newton_krylov
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

    Tolerances: a branch point is a root of the burst drift, so B(z_k, λ_k) = −(F̄ − B) is the sampling error
    of F there (its standard error ``x1_drift_stderr``) plus the burst bias ½τB′B, which vanishes with B
    (relative size τ|B′|/2 < 0.01): 3 standard errors. Along λ this is |λ_k − 3s² − z_k²| < 3 se/|z_k|,
    the distance to the analytic branch. Eigenvalues: B′(z_k, λ_k) = λ_k − 3s² − 3z_k² at the computed point
    (on the branch, −2z*²), within 3 of their standard errors (biases below a third of one: tests/test_newton.py).
    """
    v = systems.get("averaging_cubic").fast_variance(1e-4)
    assert 3 * v == pytest.approx(0.75)
    z, lam = branch.x1.values, branch.lam.values
    residual = lam * z - z**3 - 3 * v * z
    assert np.all(np.abs(residual) < 3 * branch.x1_drift_stderr.values)
    slope = lam - 3 * v - 3 * z**2
    assert np.all(np.abs(branch.eigenvalue.values - slope) < 3 * branch.eigenvalue_stderr.values)
    resolved = 2 * z**2 > 3 * branch.eigenvalue_stderr.values  # −2z² resolved from 0: the point is stable
    assert resolved.sum() >= 6 and np.all(branch.stable.values[resolved])
    # through the turning point onto z < 0, then back out of the range
    assert z[0] > 0.8 and z.min() < -0.8 and branch.attrs["stop_reason"] == "lam left [-0.5, 1.5]"
    (fold,) = folds_of(branch)
    # 0.03: the absolute acceptance for the fold; and the statistical one: 3 standard errors of the fitted fold
    # (lam_stderr, from the branch points' drift errors) plus 0.005 for the local fit's truncation and the burst bias
    # ½τB′B at the points next to the fold (stated, not computed here)
    assert abs(fold["lam"] - 0.75) < 0.03 and abs(fold["lam"] - 0.75) < 3 * fold["lam_stderr"] + 0.005
    (branch_point,) = [p for p in branch.attrs["special_points"] if p["kind"] == "branch_point"]
    assert abs(branch_point["x1"]) < 0.1  # the pitchfork: det [∂F/∂u; tᵀ] ∝ −z(4z² + 1) changes sign at z = 0


def test_pitchfork_branch_at_the_command_defaults():
    """The API at the settings of `eqfree continue --system averaging_cubic --cv x1 --lift exact --parameter lam
    --from 1.5 --to -0.5 --z0 1.2 --seed 7` (1000 walkers, bursts of 100 fine steps, step 0.1)."""
    drift = BurstDrift(sde_family("averaging_cubic", 1e-4), tau=100 * 1e-4, n_walkers=1000)
    check_pitchfork(continuation(drift, 1.2, 1.5, -0.5, seed=7))


@pytest.mark.slow
def test_continue_command_acceptance(tmp_path, capsys):
    """The issue's command line, verbatim (plus --out): the same branch, in a store and a PNG."""
    out = tmp_path / "pitchfork.zarr"
    assert main(["continue", "--system", "averaging_cubic", "--cv", "x1", "--lift", "exact", "--parameter", "lam",
                 "--from", "1.5", "--to", "-0.5", "--z0", "1.2", "--seed", "7", "--out", str(out)]) == 0
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
