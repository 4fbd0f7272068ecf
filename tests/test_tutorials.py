"""Tutorials run in fast mode (EQFREE_FAST=1), write their figures, and their numbers hold."""

import math
import runpy
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from test_metrics import perfect_chain_w1

from eqfree.metrics import wasserstein_marginals

TUTORIALS = Path(__file__).parents[1] / "tutorials"


@pytest.fixture
def fast_mode(tmp_path, monkeypatch):
    monkeypatch.setenv("EQFREE_FAST", "1")
    monkeypatch.setenv("EQFREE_OUT", str(tmp_path))
    return tmp_path


def test_fine_systems_tutorial(fast_mode):
    run = runpy.run_path(str(TUTORIALS / "01_fine_systems.py"))
    for name in ("fig2_fast_slow_linear", "fig4_half_moons", "fig9_caps"):
        assert (fast_mode / f"{name}.png").stat().st_size > 20_000
    # the data behind the figures: x2 mean of one long dt = 1 run within 4 sd of its (correlated) mean
    settled, em_var = run["settled"], run["em_var"]
    correlation_time = 1 / 0.1  # 1/a3
    assert abs(settled.mean() - 1) < 4 * np.sqrt(em_var * 2 * correlation_time / settled.size)
    radius = run["radius"]
    # the half-moons radius is x2, whose equilibrium mean is 1 (systems.half_moons.radius_moments): 4 standard errors
    # (ensemble_moments over independent walkers); EM's O(dt) bias is in the variance, not the mean
    assert abs(radius.mean - 1) < 4 * radius.mean_stderr
    variances = run["fast_pair"].var(axis=0)
    # truth: the stationary variance of each OU pair coordinate under the system's scheme at δt = 1e-3
    # (Leimkuhler–Matthews: σ²/(2a), exact; Euler–Maruyama would be 0.5 % above for x2, 5 % for x3). Standard
    # error of a variance from W = 4 walkers of n frames spaced h (t ∈ [0.5, 10]): relative sd
    # √(2(1 + ρ²)/((1 − ρ²) W n)), ρ = e^{−a h}: 7.3 % for x2 (a = 10), 2.3–2.6 % for x3 (a = 100), fast
    # (h = 0.01) or not. Bound 4 sd; old: rtol 0.25 for both (3.4 sd for x2, 10 sd for x3)
    caps = run["caps"]
    h = run["scale"] * caps.dt  # frames saved every `scale` steps
    rates = np.array([caps.a2, caps.a4])
    truth = np.array([caps.reference_moments(coord, caps.dt)[caps.scheme][1] for coord in ("x2", "x3")])
    rho2, frames = np.exp(-2 * rates * h), len(run["fast_pair"])
    relative_sd = np.sqrt(2 * (1 + rho2) / ((1 - rho2) * frames))
    # (the bound derived in the comment above: 4 relative sd of a variance from W walkers of correlated frames)
    assert np.all(np.abs(variances / truth - 1) < 4 * relative_sd), (variances, truth, relative_sd)


def test_learned_coordinates_tutorial(fast_mode):
    run = runpy.run_path(str(TUTORIALS / "02_learned_coordinates.py"))
    for name in ("fig2_fast_slow_linear_learned", "fig4_half_moons_learned"):
        assert (fast_mode / f"{name}.png").stat().st_size > 20_000
    # specifications, not standard errors (as tests/test_diffusion_maps.py and tests/test_extension.py): the learned
    # coordinate is monotone in x1 (0.99), the Mahalanobis one on the half moons (0.95), and the out-of-sample extension
    # reproduces held-out values to 5 % (its accuracy claim)
    assert abs(run["rho_linear"]) > 0.99
    assert abs(run["rho_moons"]["Mahalanobis"]) > 0.95
    assert run["held_out_error"] < 0.05  # (specification, above)


def test_umbrella_sampling_tutorial(fast_mode):
    run = runpy.run_path(str(TUTORIALS / "03_umbrella_sampling.py"))
    for name in ("fig2_umbrella_windows", "fig3_umbrella_x2", "double_well_pmf"):
        assert (fast_mode / f"{name}.png").stat().st_size > 20_000
    # x2 of each window against the exact N(1, 0.05). Its kept frames (20 walkers, Δt = frame spacing × stride apart)
    # are an OU of rate a3 sampled with lag-one correlation ρ = e^{−a3 Δt}. Truth: the law of the system's scheme at
    # dt = 1 (Leimkuhler–Matthews: exactly N(1, 0.05)) with, on the learned window, x2's mean moved by the restraint's
    # force −a1 s2/(s1 a3) (s = ∇Φ at (10, 1); tests/test_umbrella.py). Moments: 4 standard errors of a stationary
    # AR(1) sample, √(v g/n) for the mean (g = (1 + ρ)/(1 − ρ)) and v √(2(1 + ρ²)/((1 − ρ²) n)) for the variance.
    # W1 (the tutorial's, to a 200 000-draw reference): a perfect sampler of the same chains (test_metrics.py's
    # perfect_chain_w1: mean 0.008, sd 0.004 here) plus 4 of its sd (its right tail: P > mean + 4 sd ≈ 0.3 %,
    # simulated), plus the bias bounds: the scheme's variance error |√v − √0.05|√(2/π) (0 here), the mean shift (a
    # shift moves W1 by at most its size) and the reference draw's own W1 to the law (triangle inequality, computed).
    # Old: W1 < 0.02 for both, not derived (≈ mean + 3 sd; moments unchecked)
    linear, Phi, target = run["linear"], run["Phi"], run["target"]
    variance = linear.exact_lift(1.0).variance
    law = stats.norm(1.0, math.sqrt(variance))
    s1, s2 = Phi.gradient(target)[0, 0]
    reference = wasserstein_marginals(run["exact"], stats.norm(1.0, math.sqrt(0.05)))[0]
    for name, window in run["windows"].items():
        x2 = run["samples"][name][:, 1]
        shift = -linear.a1 * s2 / (s1 * linear.a3) if "phi" in name else 0.0
        rho = math.exp(-linear.a3 * float(window.time[1] - window.time[0]) * window.attrs["stride"])
        n, g = x2.size, (1 + rho) / (1 - rho)
        walkers = window.sizes["walker"]
        perfect, spread = perfect_chain_w1(law, n // walkers, walkers, rho)
        bias = abs(math.sqrt(variance) - math.sqrt(0.05)) * math.sqrt(2 / math.pi) + abs(shift) + reference
        print(f"{name}: x2 mean {x2.mean():.4f} (truth {1 + shift:.4f}, se {math.sqrt(variance * g / n):.4f}), var "
              f"{x2.var():.5f} (se {variance * math.sqrt(2 * (1 + rho**2) / ((1 - rho**2) * n)):.5f}), W1 "
              f"{run['w1'][name]:.4f} (perfect sampler {perfect:.4f} ± {spread:.4f}, bias {bias:.4f})")
        assert abs(x2.mean() - 1 - shift) < 4 * math.sqrt(variance * g / n)  # (derived above)
        assert abs(x2.var() - variance) < 4 * variance * math.sqrt(2 * (1 + rho**2) / ((1 - rho**2) * n))  # (above)
        assert run["w1"][name] < perfect + 4 * spread + bias  # (derived above)
    assert max(run["pmf_excess"].values()) < 1  # every bin below 8 kT within 4 se + 0.07 kT
    assert run["import_difference"] < 1e-10  # the windows through text files: the same PMF


def test_closures_tutorial(fast_mode):
    run = runpy.run_path(str(TUTORIALS / "05_closures.py"))
    for name in ("closure_drift", "closure_paths"):
        assert (fast_mode / f"{name}.png").stat().st_size > 20_000
    assert (fast_mode / "closure_bursts.zarr").is_dir() and (fast_mode / "closure_average.zarr").is_dir()
    # 41 points at once: 3.7 se is the family-wise 1 % bound (bias β removed from the burst estimate)
    assert run["burst_z"].max() < 3.7 and run["average_z"].max() < 3.7
    assert np.abs(run["beta"]).max() < 0.1
    # closed ODE vs direct mean: within the derived path bound (< 0.05, tests/test_closures.py);
    # the closure that forgets −3 s² z misses by far more
    assert run["ode_gap"] < 0.05 and run["wrong_gap"] > 0.2
    assert run["burst_closure"].has_diffusion and not run["closure"].has_diffusion


def test_kinetics_tutorial(fast_mode):
    run = runpy.run_path(str(TUTORIALS / "12_kinetics.py"))
    assert (fast_mode / "kinetics.png").stat().st_size > 20_000
    # MFPT within 3 se + the burst bias 9.6 τ = 2 % (tests/test_kinetics.py), as a number of standard errors
    result, exact = run["result"], run["exact"]
    assert abs(result["mfpt"] - exact) <= 3 * result["mfpt_stderr"] + 0.0192 * exact
    # the closed SDE's 500 passages: 3 se, plus the Euler and monitoring bias (≈ 2 % of T at dt = 10⁻³)
    assert abs(run["passage_z"]) < 3 + 0.02 * result["mfpt"] / (run["times"].std() / np.sqrt(500))
    assert run["plane_error"] < 2e-3  # O(h²) at h = 0.05 (tests/test_kinetics.py)


def test_generative_lifting_tutorial(fast_mode):
    run = runpy.run_path(str(TUTORIALS / "04_generative_lifting.py"))
    for name in ("fig3_generative_x2", "fig9_caps_noise_dimension", "fig10_caps_extrapolation"):
        assert (fast_mode / f"{name}.png").stat().st_size > 20_000
    # briefly trained, the score model already samples x2 | x1 = 10 (tests/test_score_model.py: W1 < 0.02)
    assert run["report"]["score model"]["W1(x2)"] < 0.02
    # one noise variable draws a curve whatever the training; two cover the cap (tests/test_ccgan.py)
    assert run["ratio"][1] < 0.01 < 0.3 < run["ratio"][2]


def test_assisted_umbrella_tutorial(fast_mode):
    run = runpy.run_path(str(TUTORIALS / "06_assisted_umbrella.py"))
    for name in ("fig6_assisted_umbrella", "fig6_convergence", "explore_rounds"):
        assert (fast_mode / f"{name}.png").stat().st_size > 20_000
    # Figure 6: x2 is OU with rate 0.1 at dt = 1 (integrated autocorrelation ~19 steps), so 10^4 fine
    # steps hold ~530 independent samples: W1 ≈ 1.29 σ/√530 ≈ 0.013 (E W1 of n Gaussian draws, sd 0.34 of it);
    # 0.03 ≈ mean + 4 sd. (The default scheme, Leimkuhler–Matthews, is exact for this OU: no floor)
    assert run["w1_short"] < 0.03 and run["w1_long"] < 0.03
    # exploration on caps reaches x1 = 20 in rounds of 2.5, each within the stopping tolerance 5/√κ
    rounds, kappa, n_steps, dt = run["rounds"], run["KAPPA_CAPS"], run["STEPS"], 1e-3
    assert run["reached"] and float(rounds.z[-1]) == 20.0 and rounds.sizes["round"] >= 4
    # the explorer's own stopping tolerance 5/√κ (5 window widths), a specification of the method
    assert np.all(rounds.label_consistency.values < 5 / np.sqrt(kappa))
    # x1 (no noise) relaxes from the generator's start to z + 1/κ at rate κ: over n_steps + 1 frames the
    # start's error adds at most (error + 1/κ) / (κ dt (n_steps + 1)) to mean |x1 - z| (2x for the 20 starts)
    excess = np.abs(rounds.w1.values[:, 0] - 1 / kappa)
    assert np.all(excess < 2 * (rounds.label_consistency.values + 1 / kappa) / (kappa * dt * (n_steps + 1)))
    # (x2, x3) of the last round against the exact law: the bound of tests/test_assisted.py
    caps = run["caps"]
    for k, rate in ((1, caps.a2), (2, caps.a4)):
        sigma = np.sqrt(caps.conditional_variances()[k - 1])
        n_eff = run["RUNS"] * n_steps * rate * dt / 2
        # W1 of n_eff effective draws from the exact law has mean ≈ 1.29σ/√n_eff; bound 3σ/√n_eff ≈ 2.3× that (the bound
        # of tests/test_assisted.py), with n_eff = runs × steps × rate × dt / 2 (the OU's integrated autocorrelation
        # time 2/rate)
        assert rounds.w1.values[-1, k] < 3 * sigma / np.sqrt(n_eff)
    # retrained on the refined states, the generator lands on x1 = 20 far better than it extrapolated there
    assert run["after"][0] < run["before"][0] / 2


def test_alanine_dipeptide_tutorial(fast_mode):
    pytest.importorskip("openmm")
    run = runpy.run_path(str(TUTORIALS / "07_alanine_dipeptide.py"))
    for name in ("alanine_pmf_psi", "fig7_alanine_ccgan", "fig8_alanine_ccgan_vs_us"):
        assert (fast_mode / f"{name}.png").stat().st_size > 20_000
    assert run["gb_gap"] < 1e-3  # built-in and generic OBC2: the same energy (tests/test_alanine_dipeptide.py)
    # picosecond windows from the β structure already put the PMF's global minimum in the β basin (155° ± 2 bins)
    assert abs(run["minima"]["beta"] - 155) <= 20
    # ten times the spring: the window at ψ = 4 narrows by about √10 (less where the PMF curves, see the tutorial)
    assert run["widths"][50.0] / run["widths"][500.0] > 1.5
    # walkers started along ψ: the MD data hold both basins
    assert min(run["populations"]["beta"], run["populations"]["alpha_R"]) > 0.1


def test_variational_cg_tutorial(fast_mode):
    run = runpy.run_path(str(TUTORIALS / "08_variational_cg.py"))
    for name in ("cg_double_well_target_prediction", "cg_double_well_training", "cg_double_well_latent",
                 "cg_double_well_vae_band"):
        assert (fast_mode / f"{name}.png").stat().st_size > 20_000
    report = run["report"]
    # the fast mode's small networks (8, 16, 16) at seed 0 (the defaults: tests/test_variational.py): reweighted dF
    # within the acceptance 0.3 kT of the quadrature value (issue 26) and within 4 of its standard errors
    # (self-normalized importance sampling is consistent; its O(1/ESS) bias is ~1e-5 kT); the loss above its bound
    # -log Z by at most 4 Monte-Carlo errors
    assert abs(report["dF"] - run["delta_f"]) < min(0.3, 4 * report["dF_se"])
    assert report["gap"] > -4 * report["loss_stderr"]
    assert len(run["chain"]) == report["evaluations"]  # Metropolis had the same energy budget
    for name in ("cg_alanine_rg_band", "cg_alanine_latent"):
        assert (fast_mode / f"{name}.png").stat().st_size > 20_000
    alanine = report["alanine"]
    assert alanine["frames"] == 2 * (10_000 // 20 + 1 - 10)
    for n, fit in alanine["fits"].items():
        low, high = fit["band"]
        assert low < fit["mean"] < high and fit["z"].shape == (alanine["frames"], 2) and len(fit["chosen"]) == n


def test_integrators_tutorial(fast_mode):
    run = runpy.run_path(str(TUTORIALS / "09_integrators.py"))
    assert (fast_mode / "integrators_invariant_error.png").stat().st_size > 20_000
    # transfer-operator orders between dt = 0.02 and 0.04: 1.26 (EM, its dt² term adds) and 1.91 (LM)
    assert 1.0 < run["orders"]["euler_maruyama"] < 1.4 and 1.8 < run["orders"]["leimkuhler_matthews"] < 2.2
    # sampled at dt = 0.02: LM and MALA at the quadrature, EM at its own law (−0.023), within 3 se
    exact, sampled, well = run["exact"], run["sampled"], run["well"]
    laws = {scheme: well.scheme_moments(0.02, scheme) for scheme in ("leimkuhler_matthews", "euler_maruyama")}
    left_out = {scheme: 2 * abs(law["prob_left"] - well.prob_left()) for scheme, law in laws.items()}
    # 3 standard errors (over independent walkers) plus the scheme's bias the run can show: none for MALA (exact);
    # for LM its own bias 7.8e-5 plus the well-weight part 2|ΔP| = 9e-5 (tests/test_integrators.py::left_out;
    # old: 3 se alone)
    lm_bias = abs(laws["leimkuhler_matthews"]["mean_square"] - exact) + left_out["leimkuhler_matthews"]
    for scheme, bias in (("leimkuhler_matthews", lm_bias), ("mala", 0.0)):
        assert abs(sampled[scheme][0] - exact) < 3 * sampled[scheme][1] + bias  # (derived above)
    em, se = sampled["euler_maruyama"]
    # EM against its own law: 3 se + the left-out 2|ΔP| = 4.5e-4 (old: 5e-4)
    assert abs(em - laws["euler_maruyama"]["mean_square"]) < 3 * se + left_out["euler_maruyama"]
    assert "dt < 0.008" in run["refusal"]


def test_consistency_tutorial(fast_mode):
    run = runpy.run_path(str(TUTORIALS / "11_consistency.py"))
    assert (fast_mode / "consistency_checks.png").stat().st_size > 20_000
    # seeded: the user's exact lift, Markovian CV and closure pass; the lift with the fast variance 50 % off is
    # rejected by the lift check and by the comparison of lifts (power ~1 at n = 1000, docs/consistency.md)
    assert run["good_lift"].consistent and run["markov"].consistent and run["closure_pmf"].consistent
    assert not run["wrong_lift"].consistent and not run["lifts"].consistent


def test_bifurcation_tutorial(fast_mode):
    run = runpy.run_path(str(TUTORIALS / "10_bifurcation.py"))
    assert (fast_mode / "bifurcation_diagrams.png").stat().st_size > 20_000
    # the pitchfork at the settings of `eqfree continue` (tests/test_continuation.py): turning point within 0.03
    # of 3s² = 0.75, and Newton–Krylov reads the sign of B′(0) = λ − 0.75 on both sides, resolved
    assert abs(run["pitchfork_fold"]["lam"] - 0.75) < 0.03
    for lam, point in run["trivial"].items():
        eig = point.eigenvalues
        # the sign is resolved: the eigenvalue stands 3 of its standard errors clear of 0 (|B′(0)| = 0.25 against se ≈
        # 0.03 at these settings)
        assert np.sign(eig.values[0]) == np.sign(lam - 0.75) and abs(eig.values[0]) > 3 * eig.stderr[0]
    # the S-shaped system's folds within 0.03 of ±0.5788 (the fast mode's 300 walkers: standard errors ≈ 0.005)
    assert len(run["s_folds"]) == 2 and all(abs(abs(lam) - 0.5788) < 0.03 for lam, _ in run["s_folds"])
    # (the fast mode's 300 walkers resolve the tangent's sign at one Schlögl fold or both; 1000 resolve both:
    # tests/test_continuation.py::test_schlogl_branch_and_folds_from_ssa_bursts)
    assert len(run["c_folds"]) >= 1
    schlogl = run["schlogl"]

    def burst_bias(x):  # ½ τ D |F″| at a root (tests/test_continuation.py::burst_bias), τ = 0.1
        diffusion = schlogl.propensities(np.atleast_1d(x * schlogl.omega)[:, None]).sum(axis=1) / schlogl.omega**2
        return 0.5 * 0.1 * diffusion * np.abs(2 * schlogl.k1 - 6 * schlogl.k2 * x)

    for b, se in run["c_folds"]:  # the nearest fold of the rate equation, within the chain's O(1/Ω) shift there
        x_fold, b_fold = schlogl.folds()[np.argmin(np.abs(b - schlogl.folds()[:, 1]))]
        # the rate equation's stated O(1/Ω) bound (branch_bound) plus the burst bias at τ = 0.1 plus 3 standard errors
        # of the fold's b (tests/test_continuation.py)
        assert abs(b - b_fold) < schlogl.branch_bound(x_fold) + burst_bias(x_fold) + 3 * se
    # SSA-burst branch points on the chain's own steady-state curve: within 3 drift standard errors + the bias
    x, drift_stderr = run["c_branch"].x1.values, run["c_branch"].x1_drift_stderr.values
    assert np.all(run["schlogl_gap"] < 3 + burst_bias(x) / drift_stderr)
    assert np.all(run["natural"].stable.values)


def test_closures_2d_tutorial(fast_mode):
    run = runpy.run_path(str(TUTORIALS / "13_closures_2d.py"))
    for name in ("closure_2d_coefficients", "closure_2d_kinetics"):
        assert (fast_mode / f"{name}.png").stat().st_size > 20_000
    assert (fast_mode / "closure_2d.zarr").is_dir()
    # 5 entries per point each within 3 se + its stated bias with probability ≥ 0.997: ≥ 0.987 per point, so
    # among the 88 points more than 4 outside (5 %) has probability < 1 % (Poisson(1.2))
    assert run["within"] >= 0.95
    assert run["path_gap"].max() < 3.5  # 10 times × 2 CVs at once: the family-wise 1 % bound
    # MFPT: 3 combined se, the finite-ε bias of D (3.5 % of T, tests/test_kinetics.py) and the colored noise's
    # boundary layer T′ ℓ, ℓ ≤ 2√(D₁₁ε) (systems/correlated_ou.py)
    result, direct = run["result"], run["direct_mfpt"]
    bound = (3 * np.hypot(result["mfpt_stderr"], run["direct_mfpt_se"]) + 0.035 * result["mfpt"]
             + run["edge_slope"] * 2 * np.sqrt(run["system"].eps))
    assert abs(result["mfpt"] - direct) <= bound
    # the committor on 5 points at once (3.7: family-wise 1 %), plus the boundary layer's shift
    assert np.all(np.abs(run["on_line"] - run["hits"]) <= 3.7 * run["committor_se"] + run["committor_bias"])


def test_alanine_closure_2d_tutorial(fast_mode):
    pytest.importorskip("openmm")
    run = runpy.run_path(str(TUTORIALS / "14_alanine_closure_2d.py"))
    assert (fast_mode / "alanine_closure_2d.png").stat().st_size > 20_000
    assert (fast_mode / "alanine_closure_2d.zarr").is_dir()
    # the fast mode's picosecond runs only exercise the code (the full mode's numbers are in docs/howto); what holds
    # at any length: the closed SDE's stationary law solves π Q = 0 (to the sparse solve's rounding, relative to
    # the largest rate) and sums to 1; the PMF is relative to its lowest bin, so it is ≥ 0 with 0 there
    pi, generator = run["pi"], run["generator"]
    assert np.abs(pi @ generator).max() <= 1e-8 * np.abs(generator.diagonal()).max()
    assert abs(pi.sum() - 1) < 1e-12
    pmf = run["pmf"].pmf.values
    assert np.nanmin(pmf) == 0 and np.all(pmf[np.isfinite(pmf)] >= 0)


@pytest.mark.parametrize("path", sorted(TUTORIALS.glob("[0-9]*.py")), ids=lambda path: path.name)
def test_section_underlines_cover_their_titles(path):
    """reStructuredText (the docs build the tutorials with sphinx-gallery, warnings as errors) needs a title's
    underline at least as long as the title, in the module docstring and in the ``# `` comment cells alike."""
    lines = [line.removeprefix("# ").rstrip() if line.startswith("# ") else line.rstrip()
             for line in path.read_text().splitlines()]
    underline = {char * n for char in "=-~^" for n in range(3, 200)}
    short = [f"{path.name}:{i + 2}" for i, (title, rule) in enumerate(zip(lines, lines[1:]))
             if title.strip() and rule in underline and len(rule) < len(title)]
    assert not short, f"underline shorter than its title at {', '.join(short)}"
