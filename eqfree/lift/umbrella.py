"""Umbrella sampling: the physics-based lifting operator (Crabtree, Bello-Rivas, Ferguson & Kevrekidis,
"GANs and closures: micro-macro consistency in multiscale modeling", sections 2–4).

A window at z runs the fine dynamics of many walkers at once under the bias U_z = κ/2 d(ξ(x), z)²
(:class:`~eqfree.evolve.HarmonicBias`), added to the fine dynamics by ``evolve.biased(bias)`` — an
Euler–Maruyama force −∇U_z by autograd, or an OpenMM torsion force. Warm-up is detected on the
walker-averaged CV series (MSER) and the rest of every walker's series is thinned by the pooled
statistical inefficiency g (:mod:`eqfree.timeseries`), leaving roughly independent samples of the CV (coordinates that
relax more slowly than the biased CV stay correlated across the kept frames: weigh their statistics
by their own inefficiency). For dynamics with the equilibrium exp(−βV) (overdamped Langevin, unit
mobility, noise √(2/β)) the biased law is ∝ exp(−βV − βU_z): the bias changes only the law of ξ, not the
law of x given ξ, and the reduced bias βU_z (stored with every sample, in kT) lets WHAM or MBAR
(:mod:`eqfree.reweight`) remove it. Where ξ is orthogonal to the rest (x1 of eq. 2.1), the window's
samples are already conditional samples.

Memory: windows advance in blocks of :data:`FRAMES_PER_BLOCK` saved frames (block b of a run draws its
noise from child b of the run's noise seed, whatever the grouping of windows into tasks). A grid run
(:meth:`UmbrellaSampling.run`) keeps of each block the CV of every walker (8 B per walker and frame) and,
only with ``save_states``, writes the states to a temporary file that is read back at the kept frames:
its memory is the CV series of one task, bounded by :data:`TASK_BYTES` when serial, plus one block of
states. A run that cannot fit is refused before its first step, naming what reduces it.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import warnings
from typing import NamedTuple

import numpy as np
import torch
import xarray as xr

from ..errors import InputError
from ..evolve import HarmonicBias, Restraints, as_ensemble, bias_force
from ..operators import Evolve
from ..parallel import run_tasks
from ..periodic import wrapped_difference
from ..progress import progress_bar
from ..restrict import CollectiveVariable, collective_variable
from ..reweight import UmbrellaReweighting, reweight_windows
from ..seeding import SeedLike, child
from ..timeseries import mser_warmup, statistical_inefficiency
from ..validation import checked_count

#: saved frames per call of the evolver: a run holds one such block of states at a time
FRAMES_PER_BLOCK = 512
#: the CV series (8 B per walker and frame) that one serial task of :meth:`UmbrellaSampling.run` keeps at most
TASK_BYTES = 2**28


class Series(NamedTuple):
    """What a run of windows keeps: saved ``time`` (T,), the CV ``xi`` (T, walkers), the ``last`` saved states
    (walkers, dim), the saved ``states`` (:class:`StateStore`: all of them in memory or in a temporary file, or
    none) and the ``coords`` names."""

    time: np.ndarray
    xi: np.ndarray
    last: np.ndarray
    states: StateStore
    coords: list[str]


class UmbrellaSampling:
    """Harmonic-bias windows on a CV ξ, or on several CVs ξ_1 … ξ_n at once, and the :class:`~eqfree.Lift` they
    define.

    On n CVs a window at z ∈ Rⁿ runs under U_z = Σ_i κ_i/2 d(ξ_i(x), z_i)² (:class:`~eqfree.evolve.Restraints`):
    centres are ``(K, n)``, the CV series and samples gain a last axis / dimension ``cv`` of length n, and the
    Lift takes z of shape (n,). One CV given alone (not in a list) is the case n = 1 without that axis.

    Parameters
    ----------
    evolve : the fine dynamics, an :class:`~eqfree.Evolve` (``system.evolver(dt)``: Euler–Maruyama of an
        SDE system, Langevin MD of an OpenMM one); windows run ``evolve.biased(bias)``, and its ``beta``
        turns bias energies into βU (kT).
    cv : ξ — ``"x1"``/index, a fitted :class:`~eqfree.restrict.KernelExpansion` (learned Φ), a
        :class:`~eqfree.restrict.CollectiveVariable` (e.g. an angle with ``period``; a dihedral for an
        OpenMM evolver) or a differentiable callable ``(..., dim) → (...)``, checked on probes before any step;
        or a list/tuple of them (several CVs).
    kappa : spring constant κ > 0, in the energy units of the dynamics (several CVs: one, or one per CV).
    n_steps : fine steps per window.
    n_walkers : walkers per window, advanced together.
    initial : where walkers start — a state ``(dim,)`` (e.g. ``system.x0``), data ``(N, dim)`` (the
        ``n_walkers`` points whose ξ is nearest z) or a :class:`~eqfree.Lift`.
    warmup : ``"auto"`` (detected on the CV series) or a number of saved frames to discard.
    save_every : keep every k-th step.
    period : the CV's period (an angle), or None; several CVs: one per CV (or one for all).

    Windows advance in blocks of :data:`FRAMES_PER_BLOCK` saved frames, one call of the evolver each
    (block b draws its noise from child b of the run's noise seed), so a run holds one block of states
    at a time besides the CV series it keeps.
    """

    def __init__(self, evolve: Evolve, cv, kappa, *, n_steps: int, initial, n_walkers: int = 100,
                 warmup: str | int = "auto", save_every: int = 1, period=None):
        #: whether ξ is one CV given alone (no ``cv`` axis) rather than a list of CVs
        self.scalar = not isinstance(cv, (list, tuple))
        specs = [cv] if self.scalar else list(cv)
        if not specs:
            raise InputError("give at least one CV")
        kappas = np.asarray(kappa, dtype=float).reshape(-1)
        periods = list(period) if isinstance(period, (list, tuple)) else [period] * len(specs)
        if kappas.size == 1:
            kappas = np.repeat(kappas, len(specs))
        if kappas.size != len(specs) or len(periods) != len(specs):
            raise InputError(f"give one kappa and one period per CV ({len(specs)}), got kappa = {kappa!r}, "
                             f"period = {period!r}")
        if not all(math.isfinite(k) and k > 0 for k in kappas):
            raise InputError(f"the spring constant kappa must be a finite positive number, got {kappa}")
        beta = float(evolve.beta)
        if not (math.isfinite(beta) and beta > 0):
            raise InputError(f"beta = 1/kT of the evolver must be a finite positive number, got {beta}")
        if not (warmup == "auto" or (isinstance(warmup, (int, np.integer)) and 0 <= warmup)):
            raise InputError(f"warmup must be 'auto' or a non-negative number of saved frames, got {warmup!r}")
        if initial is None:
            raise InputError("the walkers have no start: pass initial states (initial = a state (dim,), data "
                             "(N, dim) or a Lift) or define x0 on the system and pass initial=system.x0")
        self.evolve, self.beta = evolve, beta
        self.n_steps = checked_count(n_steps, "n_steps")
        self.n_walkers = checked_count(n_walkers, "n_walkers (independent walkers give the error bars)", 2)
        self.initial, self.warmup = initial, warmup
        self.save_every = checked_count(save_every, "save_every")
        dim = None if evolve.coords is None else len(evolve.coords)
        #: the CVs ξ_1 … ξ_n and their spring constants κ_i (n,)
        self.cvs: tuple[CollectiveVariable, ...] = tuple(
            collective_variable(spec, dim=dim, period=p) for spec, p in zip(specs, periods, strict=True))
        self.kappas = kappas
        if dim is not None:  # the CV contract fails here, before any sampling, where the state's size is known
            for one in self.cvs:
                one.check(dim)
        #: ξ and κ as given: one CollectiveVariable and a float, or a tuple of them and an array (n,)
        self.cv = self.cvs[0] if self.scalar else self.cvs
        self.kappa = float(kappas[0]) if self.scalar else self.kappas
        ranges = [one.valid_range for one in self.cvs]
        #: where a learned CV was fitted (checked by closure grids): (low, high), one pair per CV for several CVs,
        #: None for coordinates
        self.valid_range = ranges[0] if self.scalar else None if all(r is None for r in ranges) else [
            (-math.inf, math.inf) if r is None else r for r in ranges]

    @property
    def n_frames(self) -> int:
        """Saved frames per walker, the start included."""
        return self.n_steps // self.save_every + 1

    # -- bias energies ----------------------------------------------------------------------------
    def reduced_bias(self, cv_values, centers) -> np.ndarray:
        """βU_k at CV values ``(N,)`` for window centres ``(K,)`` → ``(K, N)``, in kT; several CVs: values
        ``(N, n)`` and centres ``(K, n)``."""
        values, centers = self.columns(cv_values), self.columns(centers)
        return self._reduced(values[None, :], centers[:, None])

    def columns(self, values) -> np.ndarray:
        """CV values as ``(..., n)``: one CV's ``(...)`` gains the axis."""
        values = np.asarray(values, dtype=float)
        values = values[..., None] if self.scalar else values
        if values.shape[-1:] != (len(self.cvs),):
            raise InputError(f"CV values must have a last axis of {len(self.cvs)} (one per CV), got {values.shape}")
        return values

    def _reduced(self, cv_values, center):
        """Σ_i βκ_i/2 d(ξ_i, z_i)²: the bias in kT of CV values and centres ``(..., n)`` (numpy, broadcasting)."""
        return (0.5 * self.beta * self.kappas * self._offset(cv_values, center) ** 2).sum(axis=-1)

    def values(self, x) -> np.ndarray:
        """ξ of states ``(..., dim)`` → ``(..., n)``."""
        return np.stack([one(x) for one in self.cvs], axis=-1)

    def _offset(self, values, center) -> np.ndarray:
        """d(ξ_i, z_i) per CV, ``(..., n)``: continuous across ±P/2 for an angle."""
        return np.stack([wrapped_difference(values[..., i], center[..., i], one.period)
                         for i, one in enumerate(self.cvs)], axis=-1)

    def output(self, values: np.ndarray) -> np.ndarray:
        """CV values ``(..., n)`` as returned: one CV's without the last axis."""
        return values[..., 0] if self.scalar else values

    def names(self) -> str:
        """The CVs' names, comma-separated."""
        return ", ".join(one.name for one in self.cvs)

    @property
    def dt(self) -> float:
        """The evolver's fine step."""
        return self.evolve.dt

    def _initial_walkers(self, z: np.ndarray, walkers: int, seed: SeedLike) -> np.ndarray:
        if callable(self.initial):
            return np.asarray(self.initial(z, walkers, seed=seed), dtype=float)
        state = np.asarray(self.initial, dtype=float)
        if state.ndim == 1:
            return np.broadcast_to(state, (walkers, state.size)).copy()
        if state.ndim == 2:
            if len(state) < walkers:
                raise InputError(f"initial data hold {len(state)} states; a window needs {walkers} walkers")
            distance = np.square(self._offset(self.values(state), z)).sum(axis=-1)
            return state[np.argsort(distance, kind="stable")[:walkers]]
        raise InputError("initial must be a state (dim,), data (N, dim) or a Lift; "
                         f"got an array of shape {state.shape}")

    def _centers(self, centers) -> np.ndarray:
        """Window centres as ``(K, n)``: one CV's ``(K,)`` (or a number), several CVs' ``(K, n)`` (or one ``(n,)``),
        finite; a centre outside a learned CV's ``valid_range`` is warned about."""
        centers = np.asarray(centers, dtype=float)
        centers = centers.reshape(-1, 1) if self.scalar else np.atleast_2d(centers)
        if centers.ndim != 2 or centers.shape[1] != len(self.cvs) or centers.shape[0] == 0:
            raise InputError(f"window centres on {len(self.cvs)} CVs ({self.names()}) must have shape "
                             f"(windows, {len(self.cvs)}), got {np.shape(centers)}")
        if not np.isfinite(centers).all():
            raise InputError(f"window centres must be finite, got {centers[~np.isfinite(centers).all(axis=1)][0]}")
        for i, one in enumerate(self.cvs):
            if one.valid_range is not None:
                low, high = one.valid_range
                outside = centers[(centers[:, i] < low) | (centers[:, i] > high), i]
                if outside.size:
                    warnings.warn(
                        f"window at {one.name} = {outside[0]:g} lies outside [{low:g}, {high:g}], the range of the "
                        "data the learned CV was fitted on: the CV is extrapolated there", UserWarning, stacklevel=4)
        return centers

    def _label(self, z: np.ndarray) -> str:
        """``name = value`` of a window's centre ``(n,)``."""
        return ", ".join(f"{one.name} = {value:g}" for one, value in zip(self.cvs, z, strict=True))

    # -- running windows ----------------------------------------------------------------------------
    def sample(self, centers, *, seed: SeedLike, first: int = 0, n_walkers: int | None = None,
               states: str | None = "memory", progress: bool | None = None) -> Series:
        """Windows ``first, first + 1, ...`` at ``centers``, all walkers advanced as one ensemble of
        ``evolve.biased(HarmonicBias(cv, kappa, per-walker centres))``; walker ``k·n_walkers + i`` is walker i
        of window k. Keeps the CV of every saved frame and, for ``states`` = ``"memory"`` or ``"file"`` (a
        temporary file, read back by :meth:`StateStore.take`), every saved state; ``None`` keeps only the last ones.

        Window k starts from walkers drawn with child (0, k) of ``seed`` and its walkers take slots
        k·n_walkers, ... of the noise streams of child 1, so every window's numbers are the same
        whether it runs alone or beside others. The CV contract and the memory the run needs are
        checked before the first step."""
        centers = self._centers(centers)
        walkers = self.n_walkers if n_walkers is None else checked_count(n_walkers, "n_walkers")
        if states not in ("memory", "file", None):
            raise InputError(f"states must be 'memory', 'file' or None, got {states!r}")
        x = np.concatenate([self._initial_walkers(z, walkers, child(child(seed, 0), first + k))
                            for k, z in enumerate(centers)])
        total, dim = x.shape
        for one in self.cvs:
            one.check(dim, x[0])
        n = len(self.cvs)
        check_memory(self.n_frames * total * 8 * (n + dim if states == "memory" else n + 1),
                     f"{len(centers)} windows of {walkers} walkers keep {self.n_frames} frames each",
                     "raise save_every (--save-every) or use fewer walkers (--walkers)" if states != "memory" else
                     "raise save_every, use fewer walkers, or call run(), which keeps the CV series alone")
        bias = Restraints(HarmonicBias(one, kappa, np.repeat(centers[:, i], walkers))
                          for i, (one, kappa) in enumerate(zip(self.cvs, self.kappas, strict=True)))
        force = bias_force(bias, as_ensemble(x))
        if not torch.isfinite(force).all():
            bad = int(torch.nonzero(~torch.isfinite(force).all(dim=1))[0])
            raise InputError(f"the gradient of the CV {self.names()} is not finite at x = {x[bad].tolist()} "
                             f"(window at {self._label(centers[bad // walkers])}): the bias force cannot be "
                             "applied there")
        evolve, noise = self.evolve.biased(bias), child(seed, 1)
        xi = np.empty((self.n_frames, total, n))
        xi[0] = self.values(x)
        kept = StateStore(states, (self.n_frames, total, dim), x)
        block_steps = FRAMES_PER_BLOCK * self.save_every
        coords = None
        with progress_bar(progress, total=self.n_steps, unit="step", desc="umbrella windows") as bar:
            for block, start in enumerate(range(0, self.n_steps, block_steps)):
                steps = min(block_steps, self.n_steps - start)
                burst = evolve(x, steps, seed=child(noise, block), first_walker=first * walkers,
                               save_every=self.save_every)
                coords, frames = list(burst.coord.values), burst.values[1:]
                if len(frames):
                    at = 1 + start // self.save_every
                    xi[at:at + len(frames)] = self.values(frames)
                    kept.write(frames)
                    x = frames[-1]
                bar.update(steps)
        time = burst.time.values[0] + self.dt * self.save_every * np.arange(self.n_frames)
        return Series(time, self.output(xi), x, kept, coords)

    def decorrelation(self, cv: np.ndarray, z) -> tuple[int, float]:
        """Warm-up (saved frames, MSER on the walker-averaged offset from z unless ``warmup`` is given) and the
        pooled statistical inefficiency g of the rest of one window's CV series ``(time, walker)`` (several
        CVs: ``(time, walker, n)`` and z ``(n,)``; the latest warm-up and the largest g over the CVs)."""
        values, z = self.columns(cv), self.columns(z)
        offset = self._offset(values, z)  # continuous across ±P/2 for an angle
        frames = offset.shape[0]
        start = max(mser_warmup(offset[..., i]) for i in range(len(self.cvs))) if self.warmup == "auto" else int(
            self.warmup)
        if start >= frames - 2:
            raise InputError(f"window at {self._label(z)}: nothing left after a warm-up of {start} frames; "
                             "increase n_steps")
        if self.warmup == "auto" and start >= 0.45 * frames:
            warnings.warn(f"window at {self._label(z)} is still relaxing near half its run (warm-up detected "
                          f"until frame {start} of {frames}): increase n_steps", UserWarning, stacklevel=4)
        for i, one in enumerate(self.cvs):
            if not np.ptp(offset[start:, :, i]) > 0:
                raise InputError(f"window at {self._label(z)}: the CV does not change over the run ({one.name} "
                                 f"stays at {values[-1, 0, i]:g}); the walkers sit where it is flat (beyond the data "
                                 "of a learned CV?): start them elsewhere (initial=...)")
        return start, max(statistical_inefficiency(offset[start:, :, i]) for i in range(len(self.cvs)))

    def windows(self, centers, *, seed: SeedLike, first: int = 0, n_walkers: int | None = None,
                progress: bool | None = None) -> list[xr.Dataset]:
        """Windows ``first, first + 1, ...`` of a run at ``centers`` (:meth:`sample`), each with its whole
        trajectories and analysed (:meth:`analyse`)."""
        centers = self._centers(centers)
        walkers = self.n_walkers if n_walkers is None else checked_count(n_walkers, "n_walkers")
        series = self.sample(centers, seed=seed, first=first, n_walkers=walkers, progress=progress)
        result = []
        for k, z in enumerate(centers):
            own = slice(k * walkers, (k + 1) * walkers)
            trajectory = xr.DataArray(series.states.array[:, own], dims=("time", "walker", "coord"), name="x",
                                      coords={"time": series.time, "walker": np.arange(walkers),
                                              "coord": series.coords},
                                      attrs={"long_name": "fine-scale state", "dt": self.dt})
            result.append(self._analysed(trajectory, series.xi[:, own], self.output(z)))
        return result

    def analyse(self, trajectory: xr.DataArray, z: float) -> xr.Dataset:
        """CV ``xi``, bias energy ``bias`` (βU, kT) and the warm-up/decorrelation (attrs ``warmup_frames``,
        ``inefficiency``, ``stride``) of one window's trajectories ``(time, walker, coord)`` at ``z``."""
        return self._analysed(trajectory, self.output(self.values(trajectory.values)), z)

    def _analysed(self, trajectory: xr.DataArray, cv: np.ndarray, z) -> xr.Dataset:
        start, inefficiency = self.decorrelation(cv, z)
        dims = ("time", "walker") if self.scalar else ("time", "walker", "cv")
        return xr.Dataset(
            {"x": trajectory,
             "xi": (dims, cv, {"long_name": f"collective variable {self.names()}"}),
             "bias": (("time", "walker"), self._reduced(self.columns(cv), self.columns(z)),
                      {"long_name": "reduced bias energy beta*U", "units": "kT"})},
            coords={} if self.scalar else {"cv": [one.name for one in self.cvs]},
            attrs={"center": z, "kappa": self.kappa, "beta": self.beta, "warmup_frames": start,
                   "inefficiency": inefficiency, "stride": max(1, math.ceil(inefficiency))},
        )

    def window(self, z, *, seed: SeedLike, n_walkers: int | None = None,
               progress: bool | None = None) -> xr.Dataset:
        """Run one window at ``z`` (several CVs: ``(n,)``): trajectories ``x`` (time, walker, coord), the CV ``xi``
        and ``bias`` (βU, kT) per frame, and the warm-up analysis in attrs (``warmup_frames``, ``inefficiency``,
        ``stride``)."""
        return self.windows(self._centers(z)[:1], seed=seed, n_walkers=n_walkers, progress=progress)[0]

    # -- the Lift -----------------------------------------------------------------------------------
    def __call__(self, z, n: int, *, seed: SeedLike) -> np.ndarray:
        """n fine states of the biased law at z ``(n_cvs,)``: the last saved states of n walkers run for
        ``n_steps``."""
        z = np.atleast_1d(np.asarray(z, dtype=float))
        if z.shape != (len(self.cvs),):
            raise InputError(f"umbrella sampling on {len(self.cvs)} CV(s) ({self.names()}) lifts one point of shape "
                             f"({len(self.cvs)},) at a time, got z of shape {z.shape}")
        return self.sample(z[None], seed=seed, n_walkers=n, states=None).last

    # -- windows across a grid ------------------------------------------------------------------
    def run(self, grid, *, seed: SeedLike, executor=None, windows_per_task: int | None = None,
            save_states: bool = True, progress: bool | None = None) -> xr.Dataset:
        """All windows of ``grid``, pooled after warm-up and thinning — the windows dataset that
        :meth:`reweight` and :mod:`eqfree.reweight` consume:

        - per sample (dim ``sample``, grouped by window, time-major within a window): the CV ``xi``,
          ``bias`` (βU of its own window, kT), ``window_index``, ``walker`` (0 … n_walkers − 1 within its
          window: the independent unit), ``frame_time``, and, with ``save_states``, the states ``x``
          (sample, coord);
        - per window (dim ``window``): coordinate ``center``, ``warmup_frames``, ``inefficiency``,
          ``n_samples``; attrs ``kappa``, ``beta``, ``cv``, ``dt``, ``n_steps``, ``n_walkers`` (and ``period``).

        Several CVs: ``grid`` is the centres ``(K, n)``; ``xi`` and ``center`` gain the dimension ``cv`` (named
        after the CVs), ``kappa`` and ``period`` (NaN where not periodic) are lists, one per CV, and ``cv`` their
        names comma-separated.

        Memory stays bounded: a task keeps the CV series of its windows (8 B per walker and frame)
        and one block of states; with ``save_states`` the states go to a temporary file, read back at the
        kept frames only. Tasks of ``windows_per_task`` windows go through ``executor`` (default: when
        serial, as many windows as keep a task's CV series under :data:`TASK_BYTES`, advanced as one
        ensemble; one window per task on an executor); the numbers depend on neither choice.
        """
        grid = np.asarray(grid, dtype=float)
        if (grid.ndim != 1 if self.scalar else grid.ndim != 2) or grid.size == 0:
            shape = "(K,)" if self.scalar else f"(K, {len(self.cvs)})"
            raise InputError(f"the grid of window centres must be non-empty, of shape {shape}, got shape {grid.shape}")
        centers = self._centers(grid)
        if windows_per_task is not None:
            per_task = checked_count(windows_per_task, "windows_per_task")
        elif executor is None:
            per_task = max(1, TASK_BYTES // (8 * self.n_frames * self.n_walkers))
        else:
            per_task = 1
        tasks = [(self, centers[i:i + per_task], i, seed, save_states) for i in range(0, len(centers), per_task)]
        windows: list[xr.Dataset] = []
        for _, samples in sorted(run_tasks(_window_samples, tasks, executor=executor, progress=progress,
                                           desc="umbrella tasks"), key=lambda item: item[0]):
            windows.extend(samples)
        pooled = xr.concat([w.assign(window_index=("sample", np.full(w.sizes["sample"], k)))
                            for k, w in enumerate(windows)], dim="sample")
        per_window = {name: ("window", [w.attrs[name] for w in windows]) for name in ("warmup_frames", "inefficiency")}
        pooled = pooled.assign(n_samples=("window", [w.sizes["sample"] for w in windows]), **per_window)
        if self.scalar:
            pooled = pooled.assign_coords(center=("window", centers[:, 0]))
            described = {"kappa": self.kappa, "cv": self.cv.name,
                         **({} if self.cv.period is None else {"period": self.cv.period})}
        else:
            pooled = pooled.assign_coords(center=(("window", "cv"), centers), cv=[one.name for one in self.cvs])
            described = {"kappa": self.kappas.tolist(), "cv": self.names(),
                         "period": [math.nan if one.period is None else one.period for one in self.cvs]}
        pooled.attrs = {**described, "beta": self.beta, "dt": self.dt, "n_steps": self.n_steps,
                        "n_walkers": self.n_walkers}
        return pooled

    def reweight(self, windows: xr.Dataset, estimator: str = "wham", *, seed: SeedLike | None = None,
                 **options) -> UmbrellaReweighting:
        """Fit WHAM or MBAR (:mod:`eqfree.reweight`) to pooled ``windows`` from :meth:`run`: window free
        energies, the PMF along ξ (kT), unbiased weights and the overlap matrix, through
        :func:`eqfree.reweight.reweight_windows` (the bias βκ/2 d(ξ, z_k)² from the windows' attributes). MBAR gets
        the reduced biases of every sample in every window (K, N); WHAM, with enough walkers per window, the
        samples compressed into cells of (window, fine CV bin) exact to a stated bound (:mod:`eqfree.reweight.cells`).
        The walkers are the independent units the bootstrap resamples, drawn from ``seed`` (WHAM needs one, MBAR
        without one gives pymbar's analytical errors); ``options`` go to the estimator."""
        return reweight_windows(windows, estimator, seed=seed, **options)


def _window_samples(sampler: UmbrellaSampling, centers: np.ndarray, first: int, seed, save_states: bool
                    ) -> list[xr.Dataset]:
    """Decorrelated samples of windows ``first, ...``, each flattened to a ``sample`` dimension (a task)."""
    series = sampler.sample(centers, seed=seed, first=first, states="file" if save_states else None)
    walkers = sampler.n_walkers
    flat = []
    n = len(sampler.cvs)
    for k, z in enumerate(centers):
        own = slice(k * walkers, (k + 1) * walkers)
        start, inefficiency = sampler.decorrelation(series.xi[:, own], sampler.output(z))
        stride = max(1, math.ceil(inefficiency))
        frames = np.arange(start, sampler.n_frames, stride)
        xi = sampler.columns(series.xi[frames, own]).reshape(-1, n)
        samples = {"xi": (("sample",) if sampler.scalar else ("sample", "cv"), sampler.output(xi),
                          {"long_name": f"collective variable {sampler.names()}"}),
                   "bias": ("sample", sampler.reduced_bias(sampler.output(xi), sampler.output(z[None]))[0],
                            {"long_name": "reduced bias energy beta*U", "units": "kT"}),
                   "walker": ("sample", np.tile(np.arange(walkers), frames.size)),
                   "frame_time": ("sample", np.repeat(series.time[frames], walkers))}
        coords = {}
        if save_states:
            samples["x"] = (("sample", "coord"), series.states.take(frames, own).reshape(-1, series.last.shape[1]))
            coords["coord"] = series.coords
        flat.append(xr.Dataset(samples, coords=coords, attrs={
            "center": sampler.output(z), "kappa": sampler.kappa, "beta": sampler.beta, "warmup_frames": start,
            "inefficiency": inefficiency, "stride": stride}))
    return flat


class StateStore:
    """The saved states ``(T, walkers, dim)`` of a run: kept in ``memory`` (``array``), written to a temporary
    ``file`` (read back frame by frame at the frames asked for, so memory holds only those), or not kept
    (``None``); the first frame is ``x0``."""

    def __init__(self, where: str | None, shape: tuple[int, int, int], x0: np.ndarray):
        self.where, self.shape = where, shape
        if where == "memory":
            self.array = np.empty(shape)
            self.array[0] = x0
        elif where == "file":
            check_disk(8 * math.prod(shape), "the states of the windows (save_states)",
                       "drop save_states (--save-states) or raise save_every (--save-every)")
            self.file = tempfile.TemporaryFile()
            self.file.write(np.ascontiguousarray(x0, dtype=float).tobytes())
        self.filled = 1

    def write(self, frames: np.ndarray) -> None:
        """Append ``frames`` ``(n, walkers, dim)`` after those already written."""
        if self.where == "memory":
            self.array[self.filled:self.filled + len(frames)] = frames
        elif self.where == "file":
            self.file.write(np.ascontiguousarray(frames, dtype=float).tobytes())
        self.filled += len(frames)

    def take(self, frames: np.ndarray, walkers: slice) -> np.ndarray:
        """States ``(len(frames), walkers, dim)`` at saved ``frames`` of the walkers in the slice ``walkers``."""
        if self.where == "memory":
            return self.array[frames, walkers]
        if self.where is None:
            raise InputError("this run kept no states")
        _, total, dim = self.shape
        first, stop, _ = walkers.indices(total)
        out = np.empty((len(frames), stop - first, dim))
        self.file.flush()
        for row, frame in enumerate(frames):
            self.file.seek(8 * dim * (int(frame) * total + first))
            self.file.readinto(memoryview(out[row]).cast("B"))
        return out


def available_memory() -> int:
    """Bytes of memory available to a new allocation: ``MemAvailable`` of /proc/meminfo where there is one
    (Linux), else the physical memory."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_memory(needed: int, what: str, remedy: str) -> None:
    """Refuse a run whose arrays (``needed`` bytes) would not fit the available memory, before any step."""
    available = available_memory()
    if needed > available:
        raise InputError(f"{what}: about {needed / 2**30:.1f} GiB, more than the {available / 2**30:.1f} GiB "
                         f"of memory available; {remedy}")


def check_disk(needed: int, what: str, remedy: str) -> None:
    """Refuse a temporary file of ``needed`` bytes that the temporary directory cannot hold."""
    free = shutil.disk_usage(tempfile.gettempdir()).free
    if needed > free:
        raise InputError(f"{what} need about {needed / 2**30:.1f} GiB of temporary disk, more than the "
                         f"{free / 2**30:.1f} GiB free in {tempfile.gettempdir()}; {remedy}")
