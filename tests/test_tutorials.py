"""Tutorials run in fast mode (EQFREE_FAST=1), write their figures, and their numbers hold."""

import runpy
from pathlib import Path

import numpy as np
import pytest

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
    assert abs(radius.mean - 1) < 4 * radius.mean_stderr
    variances = run["fast_pair"].var(axis=0)
    # ~760 effective samples (4 walkers, t in [0.5, 10], variance correlation time 1/(2 a2) = 0.05): se ≈ 5 %
    np.testing.assert_allclose(variances, run["caps"].conditional_variances(), rtol=0.25)


def test_learned_coordinates_tutorial(fast_mode):
    run = runpy.run_path(str(TUTORIALS / "02_learned_coordinates.py"))
    for name in ("fig2_fast_slow_linear_learned", "fig4_half_moons_learned"):
        assert (fast_mode / f"{name}.png").stat().st_size > 20_000
    assert abs(run["rho_linear"]) > 0.99
    assert abs(run["rho_moons"]["Mahalanobis"]) > 0.95
    assert run["held_out_error"] < 0.05


def test_umbrella_sampling_tutorial(fast_mode):
    run = runpy.run_path(str(TUTORIALS / "03_umbrella_sampling.py"))
    for name in ("fig2_umbrella_windows", "fig3_umbrella_x2", "double_well_pmf"):
        assert (fast_mode / f"{name}.png").stat().st_size > 20_000
    assert max(run["w1"].values()) < 0.02
    assert max(run["pmf_excess"].values()) < 1  # every bin below 8 kT within 4 se + 0.07 kT


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
    # steps hold ~530 independent samples: W1 ≈ 0.8 σ/√530 + 0.005 (Euler-Maruyama floor) ≈ 0.013
    assert run["w1_short"] < 0.03 and run["w1_long"] < 0.03
    # exploration on caps reaches x1 = 20 in rounds of 2.5, each within the stopping tolerance 5/√κ
    rounds, kappa, n_steps, dt = run["rounds"], run["KAPPA_CAPS"], run["STEPS"], 1e-3
    assert run["reached"] and float(rounds.z[-1]) == 20.0 and rounds.sizes["round"] >= 4
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
    # the seeded reverse-KL run of tests/test_variational.py: reweighted dF within 0.3 kT of the quadrature value,
    # the loss above its bound -log Z by at most the Monte-Carlo error
    assert abs(report["dF"] - run["delta_f"]) < 0.3
    assert report["gap"] > -4 * report["loss_stderr"]
    assert len(run["chain"]) == report["evaluations"]  # Metropolis had the same energy budget
    for name in ("cg_alanine_rg_band", "cg_alanine_latent"):
        assert (fast_mode / f"{name}.png").stat().st_size > 20_000
    alanine = report["alanine"]
    assert alanine["frames"] == 2 * (10_000 // 20 + 1 - 10)
    for n, fit in alanine["fits"].items():
        low, high = fit["band"]
        assert low < fit["mean"] < high and fit["z"].shape == (alanine["frames"], 2) and len(fit["chosen"]) == n
