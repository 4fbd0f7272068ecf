"""Alanine dipeptide (ACE-ALA-NME, 22 atoms) in implicit solvent, built with OpenMM alone
(Crabtree, Bello-Rivas, Ferguson & Kevrekidis,
"GANs and closures: micro-macro consistency in multiscale modeling",
section 5).

The ten heavy atoms come from ``heavy_atoms.pdb`` (standard bond lengths and angles, φ = −80°,
ψ = 150°); ``Modeller.addHydrogens`` adds the twelve hydrogens. Force field: Amber14
(``amber14-all.xml``) with a generalized-Born implicit solvent, no cutoff:

- ``gb="obc2"`` (default): OBC2 (Amber igb = 5, mbondi2 radii, ACE surface term) through OpenMM's
  built-in ``GBSAOBCForce`` — the energies of ``implicit/obc2.xml`` (whose generic ``CustomGBForce``
  it replaces, particle by particle) at 35 instead of 1260 µs per step on the default Reference platform;
- ``gb="obc2-custom"``: that generic ``CustomGBForce`` itself (the reference of the swap);
- ``gb="gbn2"``: GBn2 (Amber igb = 8, ``implicit/gbn2.xml``), which has no built-in counterpart.

Dynamics: Langevin at ``temperature`` (300 K) with ``friction`` (1/ps) and a 1 fs step, no
constraints — the paper's settings. ``constraints="hbonds"`` (bonds to hydrogen rigid) allows the
documented fast option of a 2 fs step. States are flat (66,) arrays in nm; the CVs are the backbone
dihedrals φ = C(ACE)–N–CA–C and ψ = N–CA–C–N(NME), in radians, periodic.
"""

from __future__ import annotations

import math
import random
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from eqfree.errors import InputError
from eqfree.evolve.molecular import MOLAR_GAS_CONSTANT, OpenMMEvolver, import_openmm
from eqfree.periodic import wrap_into
from eqfree.restrict import CollectiveVariable, Dihedrals
from eqfree.validation import checked_count

HEAVY_ATOMS = Path(__file__).with_name("heavy_atoms.pdb")

#: the backbone dihedrals as (residue, atom name) quadruples
TORSIONS = {
    "phi": (("ACE", "C"), ("ALA", "N"), ("ALA", "CA"), ("ALA", "C")),
    "psi": (("ALA", "N"), ("ALA", "CA"), ("ALA", "C"), ("NME", "N")),
}

#: Ramachandran basins in degrees, (φ range, ψ range); ψ ranges may wrap through ±180°. The ψ
#: boundaries are the maxima of the ψ-PMF of the φ < 0 half (about −110° and 85° with OBC2).
BASINS = {
    "beta": ((-180.0, 0.0), (85.0, -110.0)),  # β, C7eq and PII: ψ ≥ 85° or ψ < −110°
    "alpha_R": ((-180.0, 0.0), (-110.0, 85.0)),
    "alpha_L": ((0.0, 180.0), (-180.0, 180.0)),  # αL and C7ax: all of φ ≥ 0
}

_FORCE_FIELDS = {"obc2": "implicit/obc2.xml", "obc2-custom": "implicit/obc2.xml", "gbn2": "implicit/gbn2.xml"}


#: where the φ/ψ closure cuts each dihedral (rad): φ in [−3.6, −3.6 + 2π) (the cut at φ ≈ 154°, between β and αL,
#: rarely visited), ψ in [−1.92, −1.92 + 2π) (the cut at ψ ≈ −110°, the ψ-PMF maximum between β and αR)
CUTS = {"phi": -3.6, "psi": -1.92}


class CutDihedrals:
    """A Restrict operator: dihedrals wrapped into [low, low + 2π) (:func:`~eqfree.periodic.wrap_into`), so that a
    grid on the φ < 0 half and a ψ grid starting at ``low`` hold every sample without a jump."""

    def __init__(self, dihedrals: Dihedrals, lows):
        self.dihedrals, self.lows = dihedrals, np.asarray(lows, dtype=float)

    @property
    def names(self) -> list[str]:
        """The dihedrals' names."""
        return self.dihedrals.names

    def __call__(self, x):
        values = self.dihedrals(x)
        lows = torch.as_tensor(self.lows, dtype=values.dtype) if torch.is_tensor(values) else self.lows
        return wrap_into(values, lows)

    def __repr__(self) -> str:
        return f"CutDihedrals({self.names}, lows={self.lows.tolist()})"


def _in_range(angle_degrees: np.ndarray, low: float, high: float) -> np.ndarray:
    """low ≤ angle < high on the circle (a range with low > high wraps through ±180°)."""
    if low < high:
        return (angle_degrees >= low) & (angle_degrees < high)
    return (angle_degrees >= low) | (angle_degrees < high)


def basin_of(phi, psi) -> np.ndarray:
    """The :data:`BASINS` label of each (φ, ψ) pair in radians (an array of strings)."""
    phi, psi = np.degrees(np.asarray(phi, float)), np.degrees(np.asarray(psi, float))
    labels = np.full(np.broadcast(phi, psi).shape, "", dtype="<U7")
    for name, (phi_range, psi_range) in BASINS.items():
        labels[_in_range(phi, *phi_range) & _in_range(psi, *psi_range)] = name
    return labels


def radius_of_gyration(x, masses=None) -> np.ndarray:
    """R_g = √(Σ m_i |r_i − r̄|² / Σ m_i) (r̄ the centre of mass; all masses 1 by default) of states
    ``(..., 3 n_atoms)``, in the states' length unit."""
    atoms = np.asarray(x, float).reshape(*np.shape(x)[:-1], -1, 3)
    m = np.ones(atoms.shape[-2]) if masses is None else np.asarray(masses, float)
    centre = np.einsum("...ik,i->...k", atoms, m) / m.sum()
    return np.sqrt(np.einsum("...i,i->...", np.sum((atoms - centre[..., None, :]) ** 2, axis=-1), m) / m.sum())


class AlanineDipeptide:
    """The 22-atom alanine dipeptide with OpenMM as its fine simulator (module doc).

    Parameters (all optional): ``temperature`` (K), ``friction`` (1/ps), ``gb`` (``"obc2"``,
    ``"obc2-custom"``, ``"gbn2"``), ``constraints`` (``"none"`` or ``"hbonds"``), ``platform``
    (``"Reference"``, ``"CPU"``, ``"CUDA"``, ...), ``threads`` (threads per context on the CPU platform).

    The default platform is OpenMM's Reference: for these 22 atoms it steps 18 times faster than the CPU
    platform (34 against 609 µs per step, one thread; :class:`~eqfree.evolve.OpenMMEvolver`), in double
    precision.
    """

    name = "alanine_dipeptide"
    dim = 66
    slow = ("phi", "psi")
    observed = ()
    summary = "ACE-ALA-NME, Amber14 + OBC2 implicit solvent, Langevin 300 K with OpenMM; CVs phi, psi (rad)"
    defaults = {"temperature": 300.0, "friction": 1.0, "gb": "obc2", "constraints": "none", "platform": "Reference",
                "threads": 1}

    def __init__(self, **params):
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            raise InputError(f"unknown parameter(s) {unknown} for system {self.name!r}; valid: {sorted(self.defaults)}")
        self.params = {**self.defaults, **params}
        for key in ("temperature", "friction"):
            value = float(self.params[key])
            if not (math.isfinite(value) and value > 0):
                raise InputError(f"{key} must be a positive number, got {self.params[key]!r}")
            self.params[key] = value
        self.params["threads"] = int(self.params["threads"])
        if self.params["gb"] not in _FORCE_FIELDS:
            raise InputError(f"gb must be one of {sorted(_FORCE_FIELDS)}, got {self.params['gb']!r}")
        if self.params["constraints"] not in ("none", "hbonds"):
            raise InputError(f"constraints must be 'none' or 'hbonds', got {self.params['constraints']!r}")
        #: the fine step in ps: 1 fs, or 2 fs with rigid bonds to hydrogen
        self.dt = 0.002 if self.params["constraints"] == "hbonds" else 0.001
        self.temperature, self.friction = self.params["temperature"], self.params["friction"]

    def __repr__(self) -> str:
        return f"AlanineDipeptide({', '.join(f'{k}={v!r}' for k, v in self.params.items())})"

    # -- structure and force field ------------------------------------------------------------------
    @cached_property
    def _model(self):
        openmm = import_openmm()
        from openmm import app

        forcefield = app.ForceField("amber14-all.xml", _FORCE_FIELDS[self.params["gb"]])
        pdb = app.PDBFile(str(HEAVY_ATOMS))
        modeller = app.Modeller(pdb.topology, pdb.positions)
        saved = random.getstate()  # addHydrogens starts hydrogens at random (Python's random module) and relaxes
        random.seed(0)             # them: a fixed seed and the double-precision Reference platform make the
        try:                       # structure, and x0, the same in every process
            modeller.addHydrogens(forcefield, platform=openmm.Platform.getPlatformByName("Reference"))
        finally:
            random.setstate(saved)
        constraints = app.HBonds if self.params["constraints"] == "hbonds" else None
        system = forcefield.createSystem(modeller.topology, nonbondedMethod=app.NoCutoff, constraints=constraints)
        if self.params["gb"] == "obc2":
            _use_builtin_obc2(openmm, system)
        positions = np.array([[p.x, p.y, p.z] for p in modeller.positions])  # nm
        return modeller.topology, system, positions.reshape(-1)

    @property
    def topology(self):
        """The ``openmm.app.Topology`` (ACE, ALA, NME; 22 atoms)."""
        return self._model[0]

    @property
    def openmm_system(self):
        """The ``openmm.System`` (forces, masses, constraints)."""
        return self._model[1]

    @cached_property
    def atoms(self) -> list[tuple[str, str]]:
        """(residue name, atom name) of every atom, in state order."""
        return [(atom.residue.name, atom.name) for atom in self.topology.atoms()]

    @property
    def coords(self) -> list[str]:
        """Coordinate names ``ACE.CH3.x, ACE.CH3.y, ...``."""
        return [f"{residue}.{atom}.{axis}" for residue, atom in self.atoms for axis in "xyz"]

    @cached_property
    def masses(self) -> np.ndarray:
        """Atom masses in dalton."""
        dalton = import_openmm().unit.dalton
        return np.array([self.openmm_system.getParticleMass(i).value_in_unit(dalton) for i in range(len(self.atoms))])

    def atom_index(self, residue: str, atom: str) -> int:
        """The index of atom ``atom`` (e.g. ``"CA"``) of residue ``residue`` (e.g. ``"ALA"``) in the topology."""
        try:
            return self.atoms.index((residue, atom))
        except ValueError:
            raise InputError(f"no atom {atom} in residue {residue}; atoms: {self.atoms}") from None

    def torsion(self, name: str) -> tuple[int, int, int, int]:
        """Atom indices of the dihedral ``"phi"`` or ``"psi"``."""
        if name not in TORSIONS:
            raise InputError(f"unknown dihedral {name!r}; alanine dipeptide has {sorted(TORSIONS)}")
        return tuple(self.atom_index(*atom) for atom in TORSIONS[name])

    def bonds(self) -> tuple[np.ndarray, np.ndarray]:
        """Bonded atom pairs ``(n_bonds, 2)`` and their force-field equilibrium lengths (nm); bonds
        turned into constraints keep their constraint length."""
        openmm = import_openmm()
        pairs, lengths = [], []
        for force in self.openmm_system.getForces():
            if isinstance(force, openmm.HarmonicBondForce):
                for k in range(force.getNumBonds()):
                    i, j, length, _ = force.getBondParameters(k)
                    pairs.append((i, j)), lengths.append(length.value_in_unit(openmm.unit.nanometer))
        for k in range(self.openmm_system.getNumConstraints()):
            i, j, length = self.openmm_system.getConstraintParameters(k)
            pairs.append((i, j)), lengths.append(length.value_in_unit(openmm.unit.nanometer))
        return np.array(pairs), np.array(lengths)

    def bond_lengths(self, x) -> np.ndarray:
        """Lengths (nm) of :meth:`bonds` in states ``(..., 66)``: ``(..., n_bonds)``."""
        pairs, _ = self.bonds()
        atoms = np.asarray(x, float).reshape(*np.shape(x)[:-1], -1, 3)
        return np.linalg.norm(atoms[..., pairs[:, 0], :] - atoms[..., pairs[:, 1], :], axis=-1)

    # -- collective variables -----------------------------------------------------------------------
    def restriction(self, *names: str) -> Dihedrals:
        """The Restrict operator of dihedrals ``names`` (default φ, ψ), radians, shape (..., n)."""
        return Dihedrals({name: self.torsion(name) for name in (names or self.slow)})

    def ramachandran(self) -> CutDihedrals:
        """φ, ψ (rad) cut at :data:`CUTS`: the Restrict operator of the φ/ψ closure."""
        return CutDihedrals(self.restriction("phi", "psi"), [CUTS["phi"], CUTS["psi"]])

    def cv(self, name: str = "psi") -> CollectiveVariable:
        """One dihedral as a periodic CV (for biases and generators)."""
        return CollectiveVariable(self.restriction(name), name=name, period=2 * math.pi)

    def radius_of_gyration(self, x, mass_weighted: bool = False) -> np.ndarray:
        """R_g of states ``(..., 66)`` in nm over all 22 atoms (:func:`radius_of_gyration`)."""
        return radius_of_gyration(x, self.masses if mass_weighted else None)

    def basins(self, x) -> np.ndarray:
        """The Ramachandran basin (:data:`BASINS`) of each state."""
        angles = self.restriction("phi", "psi")(x)
        return basin_of(angles[..., 0], angles[..., 1])

    # -- dynamics -------------------------------------------------------------------------------------
    def evolver(self, dt: float | None = None, **options) -> OpenMMEvolver:
        """The Evolve operator: Langevin bursts at this system's temperature and friction."""
        options = {"platform": self.params["platform"], "threads": self.params["threads"], **options}
        return OpenMMEvolver(self.openmm_system, temperature=self.temperature, friction=self.friction,
                             dt=self.dt if dt is None else dt, coords=self.coords, **options)

    @property
    def beta(self) -> float:
        """β = 1/(k_B T) = 1/(RT) in mol/kJ."""
        return 1.0 / (MOLAR_GAS_CONSTANT * self.temperature)

    def energy(self, x) -> np.ndarray:
        """Potential energy (kJ/mol) of states ``(n, 66)``."""
        return self.evolver().potential_energy(x)

    @cached_property
    def x0(self) -> np.ndarray:
        """The minimized structure (66,) in nm, from the PDB geometry with hydrogens added."""
        return self.evolver(platform="Reference").minimize(self._model[2], tolerance=0.1)[0]

    def simulate(self, n_walkers: int, n_steps: int, *, seed, dt: float | None = None, x0=None, save_every: int = 1,
                 executor=None, progress: bool | None = None) -> xr.DataArray:
        """Langevin MD of ``n_walkers`` independent replicas from ``x0`` (default: :attr:`x0`);
        dims ``(time, walker, coord)``, nm and ps."""
        n_walkers = checked_count(n_walkers, "n_walkers")
        start = self.x0 if x0 is None else np.asarray(x0, dtype=float)
        if start.shape not in {(self.dim,), (n_walkers, self.dim)}:
            raise InputError(f"x0 for {self.name} must have shape ({self.dim},) or ({n_walkers}, {self.dim}) in nm, "
                             f"got {start.shape}")
        result = self.evolver(dt)(np.broadcast_to(start, (n_walkers, self.dim)), n_steps, seed=seed,
                                  save_every=save_every, executor=executor, progress=progress)
        result.attrs.update(system=self.name, **{f"param_{k}": v for k, v in self.params.items()})
        return result


def _use_builtin_obc2(openmm, system) -> None:
    """Replace the generic OBC2 ``CustomGBForce`` of ``implicit/obc2.xml`` by ``GBSAOBCForce``.

    Its per-particle parameters are (charge, offset radius ρ − 0.009 nm, scaled offset radius
    s(ρ − 0.009)); the built-in force takes (charge, ρ, s). Dielectrics 1 (solute) and 78.5
    (solvent, the generic force's value; the built-in default is 78.3) and the ACE surface term
    (2.25936 kJ/mol/nm², probe 0.14 nm) match the generic expression.
    """
    index, custom = next((i, f) for i, f in enumerate(system.getForces()) if isinstance(f, openmm.CustomGBForce))
    builtin = openmm.GBSAOBCForce()
    builtin.setSoluteDielectric(1.0)
    builtin.setSolventDielectric(78.5)
    builtin.setNonbondedMethod(openmm.GBSAOBCForce.NoCutoff)
    for i in range(custom.getNumParticles()):
        charge, offset_radius, scaled_radius = custom.getParticleParameters(i)
        builtin.addParticle(charge, offset_radius + 0.009, scaled_radius / offset_radius)
    system.removeForce(index)
    system.addForce(builtin)
