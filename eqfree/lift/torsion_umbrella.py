"""Umbrella sampling on a dihedral angle of a molecule, with OpenMM as the fine simulator.

The bias is an OpenMM ``CustomTorsionForce`` on the four atoms (i, j, k, l) of the torsion θ,

    U_z(θ) = κ/2 d², d = min(|θ − z|, 2π − |θ − z|),

the harmonic bias on the wrapped difference (:mod:`eqfree.lift.bias`), with the centre z a global
parameter set per walker. Windows, warm-up detection, thinning, the executor layer and WHAM/MBAR
are those of :class:`~eqfree.lift.UmbrellaSampling`; energies are kJ/mol and β = 1/(k_B T) of the
evolver, so the stored bias βU is in kT.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import xarray as xr

from ..errors import InputError
from ..evolve.molecular import OpenMMEvolver, import_openmm
from ..restrict import Dihedrals
from .bias import CollectiveVariable
from .umbrella import UmbrellaSampling

CENTER, KAPPA = "umbrella_center", "umbrella_kappa"


def torsion_bias(atoms: Sequence[int], kappa: float):
    """The ``CustomTorsionForce`` κ/2 d(θ, z)² on ``atoms``, its centre z the global parameter
    ``umbrella_center`` (rad) and κ ``umbrella_kappa`` (kJ/mol/rad²)."""
    openmm = import_openmm()
    force = openmm.CustomTorsionForce(f"0.5*{KAPPA}*d^2; d = min(a, 2*pi - a); a = abs(theta - {CENTER}); "
                                      f"pi = {math.pi!r}")
    force.addGlobalParameter(CENTER, 0.0)
    force.addGlobalParameter(KAPPA, float(kappa))
    force.addTorsion(*(int(a) for a in atoms), [])
    return force


class TorsionUmbrella(UmbrellaSampling):
    """Harmonic-bias windows on the dihedral of ``atoms`` of an OpenMM system, and the Lift they define.

    Parameters
    ----------
    evolver : the :class:`~eqfree.evolve.OpenMMEvolver` of the molecule (its T sets β).
    atoms : the torsion's four atom indices.    name : the CV's name (e.g. ``"psi"``).
    kappa : spring constant κ in kJ/mol/rad².
    n_steps, walkers, warmup, save_every : as for :class:`UmbrellaSampling`.
    initial : where walkers start: a state ``(dim,)`` in nm, data ``(N, dim)`` (the walkers nearest each
        centre) or a :class:`~eqfree.Lift` (a trained generator).
    """

    def __init__(self, evolver: OpenMMEvolver, atoms: Sequence[int], kappa: float, *, n_steps: int, initial,
                 name: str = "theta", walkers: int = 10, warmup: str | int = "auto", save_every: int = 1):
        if initial is None:
            raise InputError("give the walkers' start: initial = a state, data or a Lift")
        cv = CollectiveVariable(Dihedrals({name: atoms}), name=name, period=2 * math.pi)
        super().__init__(evolver, cv, kappa, dt=evolver.dt, n_steps=n_steps, walkers=walkers, beta=evolver.beta,
                         initial=initial, warmup=warmup, save_every=save_every, coords=evolver.coords)
        self.atoms = tuple(int(a) for a in atoms)
        self.biased = evolver.with_forces(torsion_bias(self.atoms, self.kappa))

    def _biased_trajectories(self, x0: np.ndarray, centers: np.ndarray, seed, first_walker: int,
                             progress: bool) -> xr.DataArray:
        return self.biased(x0, self.n_steps, seed=seed, save_every=self.save_every, first_walker=first_walker,
                           parameters={CENTER: centers}, progress=progress)
