"""OpenMM's side of molecular dynamics: the dihedral bias force and the Langevin evolver, against analytic truths."""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from eqfree.evolve import HarmonicBias, OpenMMEvolver, Restraints
from eqfree.evolve.molecular import MOLAR_GAS_CONSTANT, torsion_bias
from eqfree.restrict import CollectiveVariable, Dihedrals

openmm = pytest.importorskip("openmm")


def four_atoms(theta: float) -> np.ndarray:
    """Atoms (1,0,0), (0,0,0), (0,0,1), (cos θ, sin θ, 1) in nm: their dihedral (IUPAC sign) is θ exactly,
    atan2(|b2| b1·(b2×b3), (b1×b2)·(b2×b3)) = atan2(sin θ, cos θ), b1 = (−1,0,0), b2 = e3, b3 = (cos θ, sin θ, 0)."""
    return np.array([[1.0, 0, 0], [0, 0, 0], [0, 0, 1], [math.cos(theta), math.sin(theta), 1]])


def energy(system, positions, **parameters) -> float:
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
    for name, value in parameters.items():
        context.setParameter(name, value)
    context.setPositions(positions)
    return context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(openmm.unit.kilojoule_per_mole)


def bare_system(n_atoms: int, mass: float = 12.0):
    system = openmm.System()
    for _ in range(n_atoms):
        system.addParticle(mass)
    return system


@pytest.mark.parametrize("center", [0.0, 3.0, -3.0])
def test_torsion_bias_is_the_harmonic_bias_on_the_wrapped_dihedral(center):
    """κ/2 d(θ, z)² with d the distance on the circle, min(|θ − z|, 2π − |θ − z|): at z = ±3 the nearest image
    lies across ±π. The truth is the closed form at the constructed θ, to float precision."""
    kappa = 250.0
    system = bare_system(4)
    system.addForce(torsion_bias((0, 1, 2, 3), kappa))
    for theta in np.linspace(-math.pi + 0.01, math.pi - 0.01, 13):
        gap = abs(theta - center)
        exact = 0.5 * kappa * min(gap, 2 * math.pi - gap) ** 2
        assert energy(system, four_atoms(theta), umbrella_center=center) == pytest.approx(exact, rel=1e-9, abs=1e-9)


def test_biased_evolver_adds_exactly_the_bias_of_its_dihedral():
    """The biased evolver's energy minus the unbiased one is the HarmonicBias's own value (torch) at every state."""
    kappa = 100.0
    dihedral = CollectiveVariable(Dihedrals({"theta": (0, 1, 2, 3)}), name="theta", period=2 * math.pi)
    plain = OpenMMEvolver(bare_system(4), platform="Reference")
    biased = plain.biased(HarmonicBias(dihedral, kappa, 0.0))
    states = np.stack([four_atoms(theta).reshape(-1) for theta in (-2.5, -0.4, 0.0, 1.1, 3.0)])
    expected = HarmonicBias(dihedral, kappa, 0.0)(torch.as_tensor(states)).numpy()
    np.testing.assert_allclose(biased.potential_energy(states) - plain.potential_energy(states), expected,
                               rtol=1e-9, atol=1e-9)


def test_restraints_on_two_dihedrals_add_both_harmonic_biases_with_their_own_centres():
    """Two four-atom groups (the second shifted 5 nm; a dihedral does not move under translation) restrained by
    Restraints on θ1 (κ = 100, centre 0.5) and θ2 (κ = 40, centre 3.0, the nearest image across ±π for θ2 < 0):
    each torsion force reads its own parameters ``umbrella_center_0`` / ``_1``, so the biased evolver's energy is
    κ1/2 d(θ1, z1)² + κ2/2 d(θ2, z2)², d the distance on the circle — the closed form, to float precision."""
    angles = {"a": (0, 1, 2, 3), "b": (4, 5, 6, 7)}
    cvs = [CollectiveVariable(Dihedrals({name: atoms}), name=name, period=2 * math.pi)
           for name, atoms in angles.items()]
    kappas, centers = (100.0, 40.0), (0.5, 3.0)
    biased = OpenMMEvolver(bare_system(8), platform="Reference").biased(
        Restraints(HarmonicBias(cv, k, z) for cv, k, z in zip(cvs, kappas, centers, strict=True)))
    context = biased.context()
    for i, center in enumerate(centers):
        context.setParameter(f"umbrella_center_{i}", center)
    pairs = [(-2.5, 2.9), (0.4, -3.0), (1.1, 0.0), (3.0, -1.0)]
    states = np.stack([np.concatenate([four_atoms(t1), four_atoms(t2) + [5.0, 0, 0]]).reshape(-1) for t1, t2 in pairs])

    def distance(theta, center):
        gap = abs(theta - center)
        return min(gap, 2 * math.pi - gap)

    exact = [sum(0.5 * k * distance(t, z) ** 2 for t, k, z in zip(pair, kappas, centers, strict=True))
             for pair in pairs]
    np.testing.assert_allclose(biased.potential_energy(states), exact, rtol=1e-9, atol=1e-9)


def harmonic_oscillator(k: float, mass: float):
    """One atom in U = k/2 |r|² (kJ/mol/nm²)."""
    system = bare_system(1, mass)
    force = openmm.CustomExternalForce("0.5*k*(x^2 + y^2 + z^2)")
    force.addGlobalParameter("k", k)
    force.addParticle(0, [])
    system.addForce(force)
    return system


def test_langevin_bursts_reach_the_boltzmann_variance_and_do_not_depend_on_the_executor():
    """An atom in a harmonic well: the Boltzmann law is N(0, kT/k) per coordinate (LangevinMiddle samples it
    exactly for a harmonic force, Leimkuhler & Matthews 2013). ω² = k/m = 10/ps², γ = 5/ps: underdamped, the
    position's correlation decays as e^{−γt/2}, so frames 2 ps apart are independent to e^{−5} < 1 % and the
    start (the origin) is forgotten by 2 ps. 400 walkers × 4 frames × 3 coordinates = 4800 samples: the
    variance's standard error is √(2/4800) ≈ 2 %, the bound 3 se. Same seed, same numbers, serial or on threads:
    one context per thread on the CPU platform; on the Reference platform, whose random stream is one per process,
    walkers take turns."""
    k, temperature = 100.0, 300.0
    evolver = OpenMMEvolver(harmonic_oscillator(k, 10.0), temperature=temperature, friction=5.0, dt=0.002,
                            platform="Reference")
    start = np.zeros((400, 3))
    run = evolver(start, 4000, seed=5, save_every=1000)
    samples = run.isel(time=slice(1, None)).values.reshape(-1)
    exact = MOLAR_GAS_CONSTANT * temperature / k
    assert abs(samples.var() / exact - 1) < 3 * math.sqrt(2 / samples.size)
    assert abs(samples.mean()) < 3 * math.sqrt(exact / samples.size)
    for platform in ("CPU", "Reference"):
        threads = OpenMMEvolver(harmonic_oscillator(k, 10.0), temperature=temperature, friction=5.0, dt=0.002,
                                platform=platform)
        serial = threads(start[:6], 2000, seed=5, save_every=1000)
        with ThreadPoolExecutor(3) as pool:  # three threads building contexts while others step
            threaded = threads(start[:6], 2000, seed=5, save_every=1000, executor=pool)
        np.testing.assert_array_equal(threaded.values, serial.values)
