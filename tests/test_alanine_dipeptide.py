"""Alanine dipeptide with OpenMM: the force field, the Langevin evolver, umbrella sampling on ψ."""

import math
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

pytest.importorskip("openmm")

from eqfree import (
    DivergenceError,  # noqa: E402
    systems,  # noqa: E402
)
from eqfree.lift import UmbrellaSampling  # noqa: E402
from eqfree.periodic import wrapped_difference  # noqa: E402
from eqfree.systems.alanine_dipeptide import basin_of, radius_of_gyration  # noqa: E402


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
    """GBSAOBCForce with the CustomGBForce's radii and scales: OpenMM's energies agree within 1e-3 kJ/mol
    (the Reference platform, double precision), on the minimum and on thermal conformations."""
    generic = systems.get("alanine_dipeptide", gb="obc2-custom")
    states = np.vstack([alanine.x0, frames])
    builtin_energy = alanine.evolver(platform="Reference").potential_energy(states)
    generic_energy = generic.evolver(platform="Reference").potential_energy(states)
    np.testing.assert_allclose(builtin_energy, generic_energy, rtol=0, atol=1e-3)
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
    np.testing.assert_allclose(fast.bond_lengths(path)[:, constrained], np.broadcast_to(lengths[constrained], (1, 12)),
                               atol=1e-5)


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


@pytest.mark.parametrize("kappa", [50.0, 500.0])
def test_umbrella_window_restrains_psi_with_the_width_of_its_spring(alanine, kappa):
    """A window at the β minimum (ψ = 155°): the biased ψ has width 1/√(β(κ + F'')), F'' ≈ 20 kJ/mol/rad² the
    PMF's curvature there (measured). At κ = 500 that is 1/√(βκ) within 2 %; at κ = 50 the curvature narrows it to
    about 0.85/√(βκ). Tolerance: 3 standard errors of a standard deviation, 1/√(2 n_eff), n_eff = samples/g."""
    sampler = UmbrellaSampling(alanine.evolver(), alanine.cv("psi"), kappa, n_steps=3000, n_walkers=4, save_every=10,
                               warmup=20, initial=alanine.x0)
    window = sampler.window(math.radians(155), seed=1)
    kept = window.isel(time=slice(20, None))
    offset = wrapped_difference(kept.xi.values, window.attrs["center"], 2 * math.pi)
    n_eff = offset.size / window.attrs["inefficiency"]
    tolerance = 3 / math.sqrt(2 * n_eff)
    width = 1 / math.sqrt(sampler.beta * kappa)
    curved = 1 / math.sqrt(sampler.beta * (kappa + 20.0))
    assert abs(offset.std() / curved - 1) < tolerance, (offset.std(), curved, tolerance)
    assert abs(offset.mean()) < 3 * offset.std() / math.sqrt(n_eff)
    assert window.bias.attrs["units"] == "kT"
    if kappa == 500:  # the spring alone sets the width, up to the curvature's 1 − √(500/520) = 1.9 % (stated above)
        assert abs(offset.std() / width - 1) < tolerance + 1 - math.sqrt(kappa / (kappa + 20.0))


def test_mbar_pmf_of_psi_has_the_beta_and_alpha_minima(alanine):
    """16 windows × 2 walkers × 2 ps at κ = 100 from the β minimum: the MBAR PMF has its global minimum in the
    β basin near ψ = 155° and a local one in αR near ψ = −15° (a 20 ns reference run puts them at 155° and −15°);
    tolerance ±25°, two bins either way. The windows stay at φ < 0: the PMF is that of the φ < 0 half."""
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
    assert abs(wrapped_difference(beta_minimum, 155, 360)) <= 25, (beta_minimum, free_energy)
    assert abs(alpha_minimum - (-15)) <= 25, (alpha_minimum, free_energy)
    barrier = free_energy[(angle > 60) & (angle < 120)].max()
    assert barrier - free_energy[alpha].min() > 2 and barrier > 5  # the αR–β barrier near ψ = 85°
    phi = alanine.restriction("phi")(windows.x.values)[:, 0]
    assert (phi < 0).mean() > 0.9


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
        assert np.abs(offset).max() < 5 * width and abs(offset.mean()) < width
    assert np.isfinite(result.pmf.values).any() and "3 windows" in capsys.readouterr().out
