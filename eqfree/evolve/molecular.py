"""The Evolve operator for molecular dynamics: Langevin bursts of an OpenMM ``System``.

Every walker is an independent replica: positions from the state x (nm, flat ``3 n_atoms``),
velocities drawn from Maxwell–Boltzmann at T, then ``n_steps`` of OpenMM's LangevinMiddle
integrator (BAOAB splitting; friction γ, step dt) whose stationary law is ∝ exp(−βU), β = 1/(k_B T).
Walker i of a call with ``seed`` takes its integrator and velocity seeds from child
``first_walker + i`` of the seed alone, so the numbers do not depend on how walkers are grouped into
tasks or which executor runs them, on one platform with a fixed thread count. OpenMM's Reference platform draws
from one random stream per process, so there the walkers of a process take turns (a lock holds the stream from a
walker's seeding to its last step, and while a context is built, which reseeds it): threads give the same numbers
as one thread, but no speed-up; processes run in parallel. Energies are kJ/mol, times ps.

Why LangevinMiddle: it is the BAOAB splitting of Leimkuhler & Matthews ("Rational construction of
stochastic numerical methods for molecular sampling", AMRX 2013; in OpenMM after Zhang, Liu, Yan, Tuckerman &
Liu, J. Phys. Chem. A 123, 6056, 2019), whose configurational averages are second order in dt (the
older LangevinIntegrator's are first order), and whose high-friction limit is the Leimkuhler–Matthews
scheme the SDE systems run by default (:mod:`eqfree.evolve.leimkuhler_matthews`): umbrella windows of
a molecule and of an SDE carry the same O(dt²) bias in their equilibrium law. Its explicit steps stay
stable for ω dt < 2 at every frequency ω of the (biased) dynamics; with a torsion restraint κ that
adds ω² = κ |∇φ|²/m along the angle: for a hydrogen 0.1 nm from the axis (|∇φ| = 10/nm) at
κ = 10³ kJ/mol/rad², ω ≈ 320/ps, ω dt ≈ 0.3 at dt = 1 fs — of the order of the bond frequencies that
already set dt, so no separate check is made here (the SDE evolver checks κ|∇ξ|² dt < 2).
"""

from __future__ import annotations

import contextlib
import copy
import math
import threading
from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr

from ..errors import InputError, InputTypeError, MissingDependencyError
from ..parallel import run_tasks
from ..progress import progress_bar
from ..seeding import SeedLike, as_seed_sequence, child
from ..validation import checked_count, checked_positive
from .bias import HarmonicBias, Restraints, restraint_terms
from .ensemble import DivergenceError

#: the molar gas constant R = N_A k_B, kJ/(mol K)
MOLAR_GAS_CONSTANT = 0.00831446261815324


def import_openmm():
    """The ``openmm`` module, or an ImportError that says how to install it."""
    try:
        import openmm
    except ImportError:
        raise MissingDependencyError("molecular dynamics needs OpenMM: pip install 'eqfree[md]'") from None
    return openmm


CENTER, KAPPA = "umbrella_center", "umbrella_kappa"

#: held on the Reference platform by a task of walkers, and by the building of a context (which reseeds): that
#: platform's random stream is one per process, shared by its threads
_REFERENCE_STREAM = threading.RLock()


def _stream_lock(platform: str):
    """The lock of the Reference platform's one random stream, or no lock on another platform."""
    return _REFERENCE_STREAM if platform == "Reference" else contextlib.nullcontext()


def torsion_bias(atoms: Sequence[int], kappa: float, suffix: str = ""):
    """The ``CustomTorsionForce`` κ/2 d(θ, z)², d = min(|θ − z|, 2π − |θ − z|), on ``atoms``: the
    harmonic bias on the wrapped difference (:class:`~eqfree.evolve.HarmonicBias`), its centre z the
    global parameter ``umbrella_center`` + ``suffix`` (rad) and κ ``umbrella_kappa`` + ``suffix``
    (kJ/mol/rad²): several restraints in one context take distinct suffixes."""
    openmm = import_openmm()
    center, kappa_name = CENTER + suffix, KAPPA + suffix
    force = openmm.CustomTorsionForce(f"0.5*{kappa_name}*d^2; d = min(a, 2*pi - a); a = abs(theta - {center}); "
                                      f"pi = {math.pi!r}")
    force.addGlobalParameter(center, 0.0)
    force.addGlobalParameter(kappa_name, float(kappa))
    force.addTorsion(*(int(a) for a in atoms), [])
    return force


def _openmm_seeds(seed: np.random.SeedSequence) -> tuple[int, int]:
    """Two positive 31-bit integers (OpenMM reads a seed of 0 as 'choose one at random')."""
    first, second = seed.generate_state(2, np.uint32) % np.uint32(2**31 - 2) + 1
    return int(first), int(second)


class OpenMMEvolver:
    """``E(x, n_steps)``: Langevin bursts of an ``openmm.System`` (an :class:`~eqfree.Evolve`).

    Parameters
    ----------
    system : the ``openmm.System`` (forces, masses, constraints), without the bias.
    temperature : T in K.    friction : γ in 1/ps.    dt : the step in ps.
    platform : an OpenMM platform name (``"CPU"``, ``"CUDA"``, ``"Reference"``, ...). For a few dozen atoms the
        Reference platform is the fastest on a CPU: alanine dipeptide (22 atoms, implicit solvent) steps in 34 µs
        there against 609 µs on the CPU platform with one thread, whose fixed cost per force dominates at that size.
    threads : CPU threads per context on the CPU platform (None: OpenMM's default).
    coords : names of the 3 n_atoms coordinates (default ``x1, x2, ...``).
    bias : an added :class:`~eqfree.evolve.HarmonicBias` on one dihedral, or :class:`~eqfree.evolve.Restraints`
        on several (see :meth:`biased`).
    """

    def __init__(self, system, *, temperature: float = 300.0, friction: float = 1.0, dt: float = 0.001,
                 platform: str = "CPU", threads: int | None = 1, coords: Sequence[str] | None = None,
                 bias: HarmonicBias | Restraints | None = None):
        openmm = import_openmm()
        if not isinstance(system, openmm.System):
            raise InputTypeError(f"system must be an openmm.System, got {type(system).__name__}")
        self.system, self.bias = system, bias
        self._simulated = system  # the system the contexts run: with the bias force, if any
        #: the restraints of the bias, restraint i a torsion force with parameters suffixed ``_i``
        self.restraints = restraint_terms(bias)
        if bias is not None:
            self._simulated = copy.deepcopy(system)
            for i, restraint in enumerate(self.restraints):
                self._simulated.addForce(torsion_bias(self._torsion(restraint), restraint.kappa, f"_{i}"))
        self.temperature = checked_positive(temperature, "temperature (K)")
        self.friction = checked_positive(friction, "friction (1/ps)")
        self.dt = checked_positive(dt, "dt (ps)")
        self.platform, self.threads = platform, threads
        self.dim = 3 * system.getNumParticles()
        self.coords = list(coords) if coords is not None else [f"x{i + 1}" for i in range(self.dim)]
        if len(self.coords) != self.dim:
            raise InputError(f"{len(self.coords)} coordinate names for {self.dim} coordinates")
        self._local = threading.local()

    @property
    def beta(self) -> float:
        """β = 1/(k_B T) in mol/kJ."""
        return 1.0 / (MOLAR_GAS_CONSTANT * self.temperature)

    def biased(self, bias: HarmonicBias | Restraints) -> OpenMMEvolver:
        """The same dynamics with a harmonic bias on one dihedral, or restraints on several, each an OpenMM
        ``CustomTorsionForce`` (:func:`torsion_bias`), replacing any bias this evolver holds; the centres (one,
        or one per walker) are set per walker."""
        return OpenMMEvolver(self.system, temperature=self.temperature, friction=self.friction, dt=self.dt,
                             platform=self.platform, threads=self.threads, coords=self.coords, bias=bias)

    @staticmethod
    def _torsion(bias) -> tuple[int, ...]:
        """The four atoms of the one dihedral that ``bias`` holds; refuses any other bias."""
        atoms = bias.cv.torsion if isinstance(bias, HarmonicBias) and bias.cv.period is not None else None
        if atoms is None:
            raise InputError(f"an OpenMM evolver adds harmonic biases on dihedrals (HarmonicBias of a periodic "
                             f"CollectiveVariable of Dihedrals with one angle, or Restraints of them), got {bias!r}")
        return atoms

    # -- the context, built once per thread ----------------------------------------------------------
    def __getstate__(self):
        return {key: value for key, value in self.__dict__.items() if key != "_local"}

    def __setstate__(self, state):
        self.__dict__.update(state, _local=threading.local())

    def context(self):
        """This thread's ``openmm.Context`` (built on first use; contexts are never shared between threads)."""
        if getattr(self._local, "context", None) is None:
            with _stream_lock(self.platform):
                self._local.context = self._new_context()
        return self._local.context

    def _new_context(self):
        openmm = import_openmm()
        integrator = openmm.LangevinMiddleIntegrator(self.temperature, self.friction, self.dt)
        try:
            platform = openmm.Platform.getPlatformByName(self.platform)
        except Exception:
            names = [openmm.Platform.getPlatform(i).getName() for i in range(openmm.Platform.getNumPlatforms())]
            raise InputError(f"OpenMM platform {self.platform!r} is not available here; available: {names}") from None
        properties = {"Threads": str(self.threads)} if self.platform == "CPU" and self.threads else {}
        return openmm.Context(self._simulated, integrator, platform, properties)

    def _positions(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        if x.ndim == 1:
            x = x[None]
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise InputError(f"states must have shape (walkers, {self.dim}) in nm, got {x.shape}")
        if not np.isfinite(x).all():
            raise InputError(f"state {int(np.nonzero(~np.isfinite(x).all(axis=1))[0][0])} has non-finite coordinates")
        return x

    def potential_energy(self, x) -> np.ndarray:
        """U(x) in kJ/mol of states ``(n, 3 n_atoms)`` (nm)."""
        openmm = import_openmm()
        context, energies = self.context(), []
        for state in self._positions(x):
            context.setPositions(state.reshape(-1, 3))
            energy = context.getState(getEnergy=True).getPotentialEnergy()
            energies.append(energy.value_in_unit(openmm.unit.kilojoule_per_mole))
        return np.array(energies)

    def minimize(self, x, *, tolerance: float = 1.0, max_iterations: int = 0) -> np.ndarray:
        """Local energy minimization (L-BFGS) of each state until the RMS force is below ``tolerance``
        kJ/mol/nm; returns the minimized states ``(n, 3 n_atoms)``."""
        openmm = import_openmm()
        context, minimized = self.context(), []
        for state in self._positions(x):
            context.setPositions(state.reshape(-1, 3))
            openmm.LocalEnergyMinimizer.minimize(context, tolerance, max_iterations)
            positions = context.getState(getPositions=True).getPositions(asNumpy=True)
            minimized.append(positions.value_in_unit(openmm.unit.nanometer).reshape(-1))
        return np.array(minimized)

    # -- bursts ----------------------------------------------------------------------------------------
    def __call__(self, x, n_steps: int, *, seed: SeedLike, save_every: int = 1, first_walker: int = 0,
                 parameters: Mapping[str, Sequence[float]] | None = None, executor=None,
                 walkers_per_task: int | None = None, progress: bool | None = None) -> xr.DataArray:
        """Bursts of ``n_steps`` from states ``(walkers, 3 n_atoms)``; dims ``(time, walker, coord)``, the
        initial states included, time in ps.

        ``parameters`` sets global context parameters per walker (``{name: (walkers,) values}``); a
        :meth:`biased` evolver sets its bias centres so. Tasks of ``walkers_per_task`` walkers go through
        ``executor`` (default: one task when serial, one walker per task on an executor); the numbers do
        not depend on either.
        """
        x = self._positions(x)
        n_steps, save_every = checked_count(n_steps, "n_steps", 0), checked_count(save_every, "save_every")
        first_walker, seed = checked_count(first_walker, "first_walker", 0), as_seed_sequence(seed)
        walkers = len(x)
        centers = {f"{CENTER}_{i}": restraint.centers(walkers) for i, restraint in enumerate(self.restraints)}
        parameters = {**centers, **(parameters or {})}
        values = {name: np.broadcast_to(np.asarray(v, dtype=float), (walkers,))
                  for name, v in parameters.items()}
        per_task = (walkers if executor is None else 1) if walkers_per_task is None else checked_count(
            walkers_per_task, "walkers_per_task")
        tasks = [(self, x[i:i + per_task], n_steps, save_every, seed, first_walker + i,
                  {name: v[i:i + per_task] for name, v in values.items()}, progress and executor is None)
                 for i in range(0, walkers, per_task)]
        pieces = sorted(run_tasks(_walkers, tasks, executor=executor, progress=progress and executor is not None,
                                  desc="MD replicas"), key=lambda item: item[0])
        saved = np.arange(0, n_steps + 1, save_every)
        return xr.DataArray(
            np.concatenate([piece for _, piece in pieces], axis=1),
            dims=("time", "walker", "coord"),
            coords={"time": saved * self.dt, "walker": np.arange(walkers), "coord": self.coords},
            name="x",
            attrs={"long_name": "atom positions", "units": "nm", "integrator": "openmm_langevin_middle",
                   "dt": self.dt, "temperature": self.temperature, "friction": self.friction},
        )


def _walkers(evolver: OpenMMEvolver, x: np.ndarray, n_steps: int, save_every: int, seed, first: int,
             parameters: Mapping[str, np.ndarray], progress: bool) -> np.ndarray:
    """Walkers ``first, first + 1, ...`` one after another in this process's context (a task);
    returns ``(saved frames, walkers, 3 n_atoms)``. Steps past the last saved frame are not run: they would not
    be returned."""
    out = np.empty((n_steps // save_every + 1, len(x), evolver.dim))
    with progress_bar(progress, total=len(x) * n_steps, unit="step", desc="Langevin MD") as bar:
        for i, state in enumerate(x):
            with _stream_lock(evolver.platform):
                _walker(evolver, state, child(seed, first + i), {name: float(v[i]) for name, v in parameters.items()},
                        save_every, first + i, out[:, i], bar)
    return out


def _walker(evolver: OpenMMEvolver, state: np.ndarray, seed, parameters: Mapping[str, float], save_every: int,
            index: int, out: np.ndarray, bar) -> None:
    """Walker ``index`` from ``state`` in this thread's context: its frames, every ``save_every`` steps, into
    ``out`` ``(frames, 3 n_atoms)``; a non-finite step raises :class:`DivergenceError`."""
    openmm = import_openmm()
    integrator_seed, velocity_seed = _openmm_seeds(seed)
    context = evolver.context()
    integrator = context.getIntegrator()
    integrator.setRandomNumberSeed(integrator_seed)
    context.reinitialize()  # the integrator reads its seed when the context is (re)built
    for name, value in parameters.items():
        context.setParameter(name, value)
    context.setPositions(state.reshape(-1, 3))
    context.setVelocitiesToTemperature(evolver.temperature, velocity_seed)
    out[0] = state
    for frame in range(1, len(out)):
        step = frame * save_every
        try:  # the CPU platform raises on non-finite coordinates; the Reference platform steps on
            integrator.step(save_every)
        except openmm.OpenMMException as error:
            raise DivergenceError(index, step, step * evolver.dt) from error
        positions = context.getState(getPositions=True).getPositions(asNumpy=True)
        out[frame] = positions.value_in_unit(openmm.unit.nanometer).reshape(-1)
        if not np.isfinite(out[frame]).all():
            raise DivergenceError(index, step, step * evolver.dt)
        bar.update(save_every)
