"""Alanine dipeptide with OpenMM: the force field, the Langevin evolver, umbrella sampling on ψ."""

import math
import runpy
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

pytest.importorskip("openmm")

from eqfree import (
    DivergenceError,  # noqa: E402
    systems,  # noqa: E402
)
from eqfree.lift import UmbrellaSampling  # noqa: E402
from eqfree.periodic import wrapped_difference  # noqa: E402
from eqfree.systems.alanine_dipeptide import CUTS, basin_of, radius_of_gyration  # noqa: E402


@pytest.fixture(scope="module")
def alanine():
    return systems.get("alanine_dipeptide")


@pytest.fixture(scope="module")
def frames(alanine):
    """Conformations from 2 ps of MD (1 walker, every 200 fs)."""
    return alanine.simulate(1, 2000, seed=4, save_every=200).values[1:, 0]


def test_built_system_has_22_atoms_finite_energies_and_a_beta_minimum(alanine, frames):
    assert alanine.openmm_system.getNumParticles() == 22 and alanine.x0.shape == (66,)
    assert [r.name for r in alanine.topology.residues()] == ["ACE", "ALA", "NME"]
    assert alanine.masses.sum() == pytest.approx(144.17, abs=0.01)  # C6H12N2O2
    energies = alanine.energy(frames)
    assert np.isfinite(energies).all() and energies.min() > alanine.energy(alanine.x0[None])[0]
    phi, psi = np.degrees(alanine.restriction()(alanine.x0))
    assert -180 < phi < -40 and 50 < psi <= 180  # β/C7eq
    assert alanine.basins(alanine.x0) == "beta"


def test_builtin_obc2_matches_the_generic_gb_force(alanine, frames):
    """GBSAOBCForce with the CustomGBForce's radii and scales: OpenMM's energies agree (the Reference platform,
    double precision), on the minimum and on thermal conformations, up to the two forces' Coulomb constants."""
    generic = systems.get("alanine_dipeptide", gb="obc2-custom")
    states = np.vstack([alanine.x0, frames])
    builtin_energy = alanine.evolver(platform="Reference").potential_energy(states)
    generic_energy = generic.evolver(platform="Reference").potential_energy(states)
    # the one known difference: implicit/obc2.xml's expression has 1/(4π ε0) = 138.935485 kJ nm/mol/e², the
    # built-in force OpenMM's ONE_4PI_EPS0 = 138.935456, a relative 2.1e-7 of the GB polarization energy, which is
    # below 150 kJ/mol in magnitude here (the GB force's total, surface term included, is −57 to −72 kJ/mol on
    # these states): bound 2.1e-7 × 150 = 3.1e-5 kJ/mol (measured 1.7e-5); double round-off (~1e-12) is far below.
    # Old: atol 1e-3 (60 times the measured difference, unexplained)
    np.testing.assert_allclose(builtin_energy, generic_energy, rtol=0, atol=(138.935485 / 138.935456 - 1) * 150)
    assert np.ptp(builtin_energy) > 10  # the conformations differ: the comparison is not one number


def test_gbn2_and_rigid_hydrogen_bonds(alanine):
    gbn2 = systems.get("alanine_dipeptide", gb="gbn2")
    assert np.isfinite(gbn2.energy(alanine.x0[None])).all()
    assert abs(gbn2.energy(alanine.x0[None])[0] - alanine.energy(alanine.x0[None])[0]) > 1  # another solvent model
    fast = systems.get("alanine_dipeptide", constraints="hbonds")
    assert fast.dt == 0.002 and fast.openmm_system.getNumConstraints() == 12  # the 12 bonds to hydrogen
    path = fast.simulate(1, 200, seed=0, save_every=50).values[-1]
    pairs, lengths = fast.bonds()
    constrained = np.arange(len(pairs)) >= len(pairs) - 12
    # OpenMM holds each constraint to its integrator's tolerance, 1e-5 relative to the constrained distance
    # (LangevinMiddleIntegrator's default, getConstraintTolerance()); measured 8e-8 relative. Old: atol 1e-5 nm
    # (1e-4 relative on 0.1 nm bonds)
    np.testing.assert_allclose(fast.bond_lengths(path)[:, constrained], np.broadcast_to(lengths[constrained], (1, 12)),
                               rtol=1e-5, atol=0)


def test_evolver_seeds_walkers_alone_whatever_the_executor(alanine):
    evolver = alanine.evolver()
    x0 = np.broadcast_to(alanine.x0, (3, 66))
    serial = evolver(x0, 100, seed=9, save_every=50)
    assert serial.dims == ("time", "walker", "coord") and serial.shape == (3, 3, 66)
    np.testing.assert_allclose(serial.time, [0.0, 0.05, 0.1]) and serial.attrs["units"] == "nm"
    with ThreadPoolExecutor(2) as pool:
        threaded = evolver(x0, 100, seed=9, save_every=50, executor=pool, walkers_per_task=1)
    np.testing.assert_array_equal(serial.values, threaded.values)
    alone = evolver(x0[:1], 100, seed=9, save_every=50, first_walker=2)
    np.testing.assert_array_equal(alone.values[:, 0], serial.values[:, 2])
    assert not np.array_equal(serial.values[-1, 0], serial.values[-1, 1])  # different walkers, different noise


def test_a_diverging_walker_is_reported(alanine):
    with pytest.raises(DivergenceError, match="walker 0"):
        alanine.evolver(dt=0.05)(alanine.x0, 2000, seed=0, save_every=100)  # 50 fs steps: hydrogens fly off


def test_radius_of_gyration_and_basins():
    rng = np.random.default_rng(0)
    atoms, masses = rng.normal(size=(22, 3)), rng.uniform(1, 16, size=22)
    # R_g² is the trace of the mass-weighted gyration tensor; rigid motions leave it unchanged
    centre = masses @ atoms / masses.sum()
    tensor = (masses[:, None] * (atoms - centre)).T @ (atoms - centre) / masses.sum()
    moved = Rotation.random(random_state=rng).apply(atoms) + 5.0
    assert radius_of_gyration(atoms.reshape(-1), masses) == pytest.approx(math.sqrt(np.trace(tensor)), rel=1e-12)
    assert radius_of_gyration(moved.reshape(1, -1), masses)[0] == pytest.approx(math.sqrt(np.trace(tensor)), rel=1e-12)
    phi, psi = np.radians([-80, -80, -80, -80, 60]), np.radians([150, -170, -20, 84, -40])
    assert list(basin_of(phi, psi)) == ["beta", "beta", "alpha_R", "alpha_R", "alpha_L"]


def test_ramachandran_cuts_each_dihedral_at_its_cut(alanine, frames):
    """φ, ψ of ``ramachandran()`` lie in [cut, cut + 2π) and differ from the plain dihedrals by whole turns (to
    rounding), on numpy and on torch states alike."""
    cut = alanine.ramachandran()
    plain, values = alanine.restriction("phi", "psi")(frames), cut(frames)
    lows = np.array([CUTS["phi"], CUTS["psi"]])
    assert cut.names == ["phi", "psi"]
    assert np.all((values >= lows) & (values < lows + 2 * math.pi))  # exact: the cut's definition, one period
    turns = (values - plain) / (2 * math.pi)
    np.testing.assert_allclose(turns, np.round(turns), atol=1e-12)
    np.testing.assert_allclose(cut(torch.as_tensor(frames)).numpy(), values, atol=1e-12)


def test_bad_input(alanine):
    with pytest.raises(ValueError, match="unknown parameter"):
        systems.get("alanine_dipeptide", solvent="water")
    with pytest.raises(ValueError, match="gb must be one of"):
        systems.get("alanine_dipeptide", gb="obc9")
    with pytest.raises(ValueError, match="unknown dihedral"):
        alanine.torsion("omega")
    with pytest.raises(ValueError, match=r"shape \(walkers, 66\)"):
        alanine.evolver()(np.zeros((2, 60)), 10, seed=0)
    with pytest.raises(ValueError, match="non-finite"):
        alanine.evolver()(np.full(66, np.nan), 10, seed=0)
    with pytest.raises(ValueError, match="not available here"):
        alanine.evolver(platform="NoSuchPlatform").potential_energy(alanine.x0)
    with pytest.raises(ValueError, match="initial"):
        UmbrellaSampling(alanine.evolver(), alanine.cv("psi"), 50.0, n_steps=10, initial=None)


@pytest.fixture(scope="module")
def psi_curvature(alanine):
    """F'' of the ψ PMF near the β minimum by umbrella integration (Kästner & Thiel 2005), independent of the
    windows' widths: a window of stiffness κ at ψ0 has mean force F'(⟨ψ⟩) = κ(ψ0 − ⟨ψ⟩) at its mean (exact for
    a locally harmonic F); three κ = 50 windows at 140°, 155°, 170° give F' at three points. Returns F'' (the
    slope between the outer two), its standard error (each mean's sd/√n_eff, n_eff = samples/g), a bias bound
    for the anharmonicity (half the difference of the two half-interval slopes; itself noisy, ~6), and F' at
    the middle point with its standard error; kJ/mol/rad^n."""
    kappa = 50.0
    sampler = UmbrellaSampling(alanine.evolver(), alanine.cv("psi"), kappa, n_steps=3000, n_walkers=4, save_every=10,
                               warmup=20, initial=alanine.x0)
    points, forces, errors = [], [], []
    for k, degrees in enumerate((140, 155, 170)):
        window = sampler.window(math.radians(degrees), seed=20 + k)
        offset = wrapped_difference(window.xi.values[20:], window.attrs["center"], 2 * math.pi)
        points.append(math.radians(degrees) + offset.mean())
        forces.append(-kappa * offset.mean())
        errors.append(kappa * offset.std() / math.sqrt(offset.size / window.attrs["inefficiency"]))
    (x1, x2, x3), (f1, f2, f3), (e1, e2, e3) = points, forces, errors
    bias = abs((f3 - f2) / (x3 - x2) - (f2 - f1) / (x2 - x1)) / 2
    return (f3 - f1) / (x3 - x1), math.hypot(e1, e3) / (x3 - x1), bias, f2, e2


@pytest.mark.parametrize("kappa", [50.0, 500.0])
def test_umbrella_window_restrains_psi_with_the_width_of_its_spring(alanine, psi_curvature, kappa):
    """A window at the β minimum (ψ = 155°): the biased ψ has width 1/√(β(κ + F'')), F'' the PMF's curvature
    there, measured independently by umbrella integration (``psi_curvature``: the slope of the mean force, not
    a width; 34.1 ± 3.9 kJ/mol/rad² at its seeds, 33.2 ± 0.8 with 16 walkers — the snapshot F'' ≈ 20 this test
    used before, the package's own earlier measurement, was 3.6 se low). At κ = 500 the width is 1/√(βκ) within
    F''/(2κ) ≈ 3.4 %; at κ = 50 the curvature narrows it to about 0.77/√(βκ).

    Tolerance: 3 relative standard errors of a standard deviation, 1/√(2 n_eff), n_eff = samples/g, plus the
    predicted width's own uncertainty from F'': ½ (4 se + bias bound)/(κ + F'') (a relative error δ of κ + F''
    moves the width by δ/2)."""
    curvature, curvature_se, curvature_bias, slope, slope_se = psi_curvature
    sampler = UmbrellaSampling(alanine.evolver(), alanine.cv("psi"), kappa, n_steps=3000, n_walkers=4, save_every=10,
                               warmup=20, initial=alanine.x0)
    window = sampler.window(math.radians(155), seed=1)
    kept = window.isel(time=slice(20, None))
    offset = wrapped_difference(kept.xi.values, window.attrs["center"], 2 * math.pi)
    n_eff = offset.size / window.attrs["inefficiency"]
    spread = 4 * curvature_se + curvature_bias  # bound on |F'' − its estimate| (docstring)
    tolerance = 3 / math.sqrt(2 * n_eff) + 0.5 * spread / (kappa + curvature)  # (docstring)
    width = 1 / math.sqrt(sampler.beta * kappa)
    curved = 1 / math.sqrt(sampler.beta * (kappa + curvature))
    print(f"kappa {kappa}: F'' = {curvature:.1f} +- {curvature_se:.1f} (bias bound {curvature_bias:.1f}); "
          f"sd/predicted - 1 = {offset.std() / curved - 1:+.3f}, tolerance {tolerance:.3f}")
    assert abs(offset.std() / curved - 1) < tolerance, (offset.std(), curved, tolerance)
    # 3 standard errors of the mean, sd/√n_eff, plus the PMF's pull at 155°: |F'(155°)|/(κ + F''), F' from
    # psi_curvature's middle window (bounded by |F'| + 4 se)
    assert abs(offset.mean()) < 3 * offset.std() / math.sqrt(n_eff) + (abs(slope) + 4 * slope_se) / (kappa + curvature)
    assert window.bias.attrs["units"] == "kT"
    if kappa == 500:  # the spring alone sets the width, up to the curvature's bias
        # 3 relative standard errors plus the curvature's bias 1 − √(κ/(κ + F'')), F'' at its upper bound
        narrowing = 1 - math.sqrt(kappa / (kappa + curvature + spread))
        assert abs(offset.std() / width - 1) < 3 / math.sqrt(2 * n_eff) + narrowing


def test_mbar_pmf_of_psi_has_the_beta_and_alpha_minima(alanine):
    """16 windows × 2 walkers × 2 ps at κ = 100 from the β minimum: the MBAR PMF has its global minimum in the
    β basin near ψ = 155° and a local one in αR near ψ = −15°; tolerance ±25°, two and a half 10° bins either way.
    The windows stay at φ < 0: the PMF is that of the φ < 0 half.

    The minima are a SPECIFICATION, not an independent truth: 155° and −15° come from the package's own 20 ns
    reference run (issue 26: a snapshot of its output); no literature value for Amber14/OBC2 is at hand, and an
    independent run (ns of MD) is not affordable in the default suite. The reweighting itself is checked against
    quadrature and pymbar on exact data in tests/test_reweight.py; this test checks that short windows of the
    package's MD locate the basins its long run found, within ±25° — not derived from a standard error. (The β
    minimum is corroborated independently by the mean force: 16 κ = 50 windows' walkers give F'(154.3°) =
    +0.6 ± 0.3 kJ/mol/rad, F'' ≈ 33, so ψ_min ≈ 153–154°; the αR one is not.)"""
    sampler = UmbrellaSampling(alanine.evolver(), alanine.cv("psi"), 100.0, n_steps=2000, n_walkers=2, save_every=10,
                               warmup=20, initial=alanine.x0)
    grid = np.radians(np.arange(-180, 180, 22.5))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # short windows: a few relax for most of their run
        windows = sampler.run(grid, seed=3)
    pmf = sampler.reweight(windows, "mbar", bins=36).pmf_
    angle, free_energy = np.degrees(pmf.cv.values), pmf.pmf.values / alanine.beta  # kJ/mol
    beta_minimum = angle[np.argmin(free_energy)]
    alpha = (angle > -90) & (angle < 60)
    alpha_minimum = angle[alpha][np.argmin(free_energy[alpha])]
    # (specification, docstring: the package's own 20 ns run; ±25°, not derived)
    assert abs(wrapped_difference(beta_minimum, 155, 360)) <= 25, (beta_minimum, free_energy)
    assert abs(alpha_minimum - (-15)) <= 25, (alpha_minimum, free_energy)
    barrier = free_energy[(angle > 60) & (angle < 120)].max()
    assert barrier - free_energy[alpha].min() > 2 and barrier > 5  # the αR–β barrier near ψ = 85°
    phi = alanine.restriction("phi")(windows.x.values)[:, 0]
    # the setup (the docstring's φ < 0 half): the windows start in β (φ = −80°) and the φ > 0 basins lie behind a
    # barrier that few walkers cross in 2 ps. The share of samples at φ < 0 over 14 independent runs (seeds 0-13,
    # Reference platform): mean 0.946, standard deviation 0.036 (lowest 0.885); the bound is mean − 3 sd
    assert (phi < 0).mean() > 0.946 - 3 * 0.036


@pytest.mark.filterwarnings("ignore::UserWarning")  # three sparse windows: the point is the CLI path
def test_cli_simulate_and_umbrella_on_psi(alanine, tmp_path, capsys):
    from eqfree.cli import main
    from eqfree.io import open_zarr

    store = tmp_path / "md.zarr"
    assert main(["simulate", "--system", "alanine_dipeptide", "--walkers", "2", "--steps", "200", "--save-every", "50",
                 "--seed", "1", "--out", str(store), "--quiet"]) == 0
    data = open_zarr(store)
    assert data.x.shape == (5, 2, 66) and data.x.attrs["units"] == "nm" and data.time.attrs["units"] == "ps"
    np.testing.assert_array_equal(data.x.values, alanine.simulate(2, 200, seed=1, save_every=50).values)
    windows = tmp_path / "umbrella.zarr"
    assert main(["umbrella", "--system", "alanine_dipeptide", "--cv", "psi", "--grid", "2.3:2.9:3", "--kappa", "500",
                 "--steps", "800", "--walkers", "2", "--save-every", "10", "--seed", "0", "--estimator", "mbar",
                 "--bins", "12", "--initial", str(store), "--out", str(windows), "--quiet"]) == 0
    result = open_zarr(windows)
    width = 1 / math.sqrt(alanine.beta * 500)
    for k, centre in enumerate(result.center.values):  # each window holds ψ within a few widths of its centre
        offset = wrapped_difference(result.xi.values[result.window_index.values == k], centre, 2 * math.pi)
        # max: ψ in a κ = 500 window is ~N(ψ0 + pull, width²) (curvature F''/(2κ) = 2 %): |Z| > 5 has probability
        # 6e-7 per sample (9e-6 with the pull below), ≤ 1.4e-3 over a window's ≤ 160 samples. Mean: the PMF's
        # pull |F'(ψ0)|/(κ + F'') ≤ F''|ψ0 − ψ_min|/(κ + F'') ≤ 50 · 0.44/550 = 0.040 rad = 0.57 width (F'' ≤ 50: the
        # umbrella-integration value 34 ± 4 of psi_curvature plus 4 se; ψ_min within 2° of 155° by its F'(155°);
        # |ψ0 − ψ_min| ≤ 25.2° on this grid), plus 4 standard errors width/√n (the n pooled samples are thinned by
        # the window's stride ⌈g⌉: about independent). Measured 0.41, −0.07, −0.30 width. Old: |mean| < width
        stderr = width / math.sqrt(offset.size)
        assert np.abs(offset).max() < 5 * width and abs(offset.mean()) < 4 * stderr + 0.6 * width
    assert np.isfinite(result.pmf.values).any() and "3 windows" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason=(
    "measured 2026-12-04 (tutorial 14 full mode, friction 10/ps, 64 walkers x tau = 0.25 ps): 7 of 48 debiased "
    "tensors floored (all on the phi ends of the grid, where 1/2 p J_phiphi ~ -0.9), the stationary law misses "
    "the PMF by 1.00 kT RMS over 25 bins against a bound of 0.50 (standard errors 0.35: PMF 0.23, closure 0.27), "
    "P(psi >= 70 deg) 0.34 vs 0.63; MFPT closure 15.0 +- 4.7 ps vs direct MD 45.3 +- 9.7 ps (24 runs, none "
    "censored; within this test's MFPT bound only by the direct runs' spread). The dihedrals' variance levels "
    "off by 0.25 ps and the crossing is 1.2x slower than at 1/ps, not 10x: not overdamped at this friction; "
    "at 100/ps (tau = 0.05 ps, 256 walkers) the stationary law misses by 4.4 kT"))
def test_alanine_closure_2d_stationary_law_and_mfpt_against_umbrella_and_direct_md(tmp_path, monkeypatch):
    """Tutorial 14 in full mode (about 17 minutes on one core): the φ/ψ closure at friction 10/ps, its stationary
    law against the umbrella PMF, and its αR → β MFPT against direct MD at the same friction.

    Bounds. The closure is its own only where no diffusion tensor was floored. Stationary law: were it exact,
    the gaps of the m compared bins (shifted by their mean) would be normal with standard errors σ_b, the PMF's
    and the closure's free energy's (closures drawn within the estimates' standard errors) in quadrature, and
    their RMS exceeds √(mean σ_b²)·(1 + 3/√(2m)) with probability ≈ 0.1 % (the RMS of m independent normals has
    relative sd 1/√(2m); the closure's errors are correlated across bins, which widens that spread: the factor
    is a guide, not a strict 0.1 %); m ≥ 20 gives the factor ≤ 1.48. MFPT: 3 combined standard errors (closure
    draws; direct runs' spread/√n) plus the bursts' τ bias: the diffusion is the generalized-least-squares slope
    of the variance over [τ/2, τ] = [0.125, 0.25] ps (saved every 5 fs), where a Langevin coordinate with
    friction γ = 10/ps has Var = 2D(t − (1 − e^{−γt})/γ), whose slope there is 0.825 × 2D: D is 17.5 % low and
    a diffusion-limited MFPT 21 % long, so 0.22 T_direct."""
    monkeypatch.delenv("EQFREE_FAST", raising=False)
    monkeypatch.setenv("EQFREE_OUT", str(tmp_path))
    run = runpy.run_path(str(Path(__file__).parents[1] / "tutorials" / "14_alanine_closure_2d.py"))
    assert run["floored"] == 0
    gap, compared, stderr = run["gap"], run["compared"], run["gap_se"]
    m = int(compared.sum())
    assert m >= 20  # the design (docstring): m ≥ 20 compared bins keeps the RMS factor 1 + 3/√(2m) ≤ 1.48
    rms_se = np.sqrt(np.mean(stderr[compared] ** 2))
    assert np.sqrt(np.mean(gap[compared] ** 2)) <= rms_se * (1 + 3 / np.sqrt(2 * m))
    result, direct, direct_se = run["result"], run["direct_mfpt"], run["direct_mfpt_se"]
    assert run["finished"].all()  # a censored run would make the direct mean a lower bound
    assert abs(result["mfpt"] - direct) <= 3 * np.hypot(result["mfpt_stderr"], direct_se) + 0.22 * direct
