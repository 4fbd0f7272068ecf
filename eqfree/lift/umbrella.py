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
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch
import xarray as xr

from ..errors import InputError
from ..evolve import HarmonicBias, as_ensemble, bias_force
from ..operators import Evolve
from ..parallel import run_tasks
from ..periodic import wrapped_difference
from ..restrict import CollectiveVariable, collective_variable
from ..reweight import MBAR, WHAM, UmbrellaReweighting
from ..seeding import SeedLike, child
from ..timeseries import mser_warmup, statistical_inefficiency
from ..validation import checked_count


class UmbrellaSampling:
    """Harmonic-bias windows on a CV ξ, and the :class:`~eqfree.Lift` they define.

    Parameters
    ----------
    evolve : the fine dynamics, an :class:`~eqfree.Evolve` (``system.evolver(dt)``: Euler–Maruyama of an
        SDE system, Langevin MD of an OpenMM one); windows run ``evolve.biased(bias)``, and its ``beta``
        turns bias energies into βU (kT).
    cv : ξ — ``"x1"``/index, a fitted :class:`~eqfree.restrict.KernelExpansion` (learned Φ), a
        :class:`~eqfree.restrict.CollectiveVariable` (e.g. an angle with ``period``; a dihedral for an
        OpenMM evolver) or a differentiable callable.
    kappa : spring constant κ > 0, in the energy units of the dynamics.
    n_steps : fine steps per window.
    n_walkers : walkers per window, advanced together.
    initial : where walkers start — a state ``(dim,)`` (e.g. ``system.x0``), data ``(N, dim)`` (the
        ``n_walkers`` points whose ξ is nearest z) or a :class:`~eqfree.Lift`.
    warmup : ``"auto"`` (detected on the CV series) or a number of saved frames to discard.
    save_every : keep every k-th step.
    """

    def __init__(self, evolve: Evolve, cv, kappa: float, *, n_steps: int, initial, n_walkers: int = 100,
                 warmup: str | int = "auto", save_every: int = 1, period: float | None = None):
        kappa, beta = float(kappa), float(evolve.beta)
        if not (math.isfinite(kappa) and kappa > 0):
            raise InputError(f"the spring constant kappa must be a finite positive number, got {kappa}")
        if not (math.isfinite(beta) and beta > 0):
            raise InputError(f"beta = 1/kT of the evolver must be a finite positive number, got {beta}")
        if not (warmup == "auto" or (isinstance(warmup, (int, np.integer)) and 0 <= warmup)):
            raise InputError(f"warmup must be 'auto' or a non-negative number of saved frames, got {warmup!r}")
        if initial is None:
            raise InputError("give the walkers' start: initial = a state (e.g. system.x0), data or a Lift")
        self.evolve, self.kappa, self.beta = evolve, kappa, beta
        self.n_steps = checked_count(n_steps, "n_steps")
        self.n_walkers = checked_count(n_walkers, "n_walkers (independent walkers give the error bars)", 2)
        self.initial, self.warmup, self.save_every = initial, warmup, save_every
        dim = None if evolve.coords is None else len(evolve.coords)
        self.cv: CollectiveVariable = collective_variable(cv, dim=dim, period=period)
        #: where a learned CV was fitted (checked by closure grids); None for coordinates
        self.valid_range = self.cv.valid_range

    # -- one window -----------------------------------------------------------------------------
    def reduced_bias(self, cv_values, centers) -> np.ndarray:
        """βU_k at CV values ``(N,)`` for window centres ``(K,)`` → ``(K, N)``, in kT."""
        return self._reduced(np.asarray(cv_values, float)[None, :], np.asarray(centers, float)[:, None])

    def _reduced(self, cv_values, center):
        """βκ/2 d(ξ, z)²: the bias in kT (numpy, broadcasting)."""
        return 0.5 * self.beta * self.kappa * wrapped_difference(cv_values, center, self.cv.period) ** 2

    @property
    def dt(self) -> float:
        """The evolver's fine step."""
        return self.evolve.dt

    def _initial_walkers(self, z: float, walkers: int, seed: SeedLike) -> np.ndarray:
        if callable(self.initial):
            return np.asarray(self.initial(np.atleast_1d(z), walkers, seed=seed), dtype=float)
        state = np.asarray(self.initial, dtype=float)
        if state.ndim == 1:
            return np.broadcast_to(state, (walkers, state.size)).copy()
        if state.ndim == 2:
            if len(state) < walkers:
                raise InputError(f"initial data hold {len(state)} states; a window needs {walkers} walkers")
            distance = np.abs(wrapped_difference(self.cv(state), z, self.cv.period))
            return state[np.argsort(distance, kind="stable")[:walkers]]
        raise InputError("initial must be a state (dim,), data (N, dim) or a Lift; "
                         f"got an array of shape {state.shape}")

    def _check_center(self, z: float) -> None:
        z = float(z)
        if not math.isfinite(z):
            raise InputError(f"window centre must be finite, got {z}")
        if self.cv.valid_range is not None:
            low, high = self.cv.valid_range
            if not low <= z <= high:
                warnings.warn(
                    f"window at {self.cv.name} = {z:g} lies outside [{low:g}, {high:g}], the range of the data the "
                    "learned CV was fitted on: the CV is extrapolated there", UserWarning, stacklevel=3)

    def windows(self, centers, *, seed: SeedLike, first: int = 0, n_walkers: int | None = None,
                progress: bool = False) -> list[xr.Dataset]:
        """Windows ``first, first + 1, ...`` of a run at ``centers``, all walkers advanced in one ensemble
        of ``evolve.biased(HarmonicBias(cv, kappa, per-walker centres))``, each analysed (:meth:`analyse`).

        Window k starts from walkers drawn with child (0, k) of ``seed`` and its walkers take slots
        k·n_walkers, ... of the noise stream of child 1, so every window's numbers are the same
        whether it runs alone or beside others."""
        centers = np.atleast_1d(np.asarray(centers, dtype=float))
        walkers = self.n_walkers if n_walkers is None else checked_count(n_walkers, "n_walkers")
        for z in centers:
            self._check_center(z)
        x0 = np.concatenate([self._initial_walkers(z, walkers, child(child(seed, 0), first + k))
                             for k, z in enumerate(centers)])
        trajectory = self.biased_trajectories(x0, np.repeat(centers, walkers), seed=child(seed, 1),
                                              first_walker=first * walkers, progress=progress)
        return [self.analyse(trajectory.isel(walker=slice(k * walkers, (k + 1) * walkers)).assign_coords(
                    walker=np.arange(walkers)), z) for k, z in enumerate(centers)]

    def biased_trajectories(self, x0: np.ndarray, centers: np.ndarray, *, seed: SeedLike, first_walker: int = 0,
                            progress: bool = False) -> xr.DataArray:
        """Biased dynamics of walkers x0 ``(walkers, dim)``, walker i held at ``centers[i]`` and drawing the
        noise of walker ``first_walker + i`` of ``seed``; dims ``(time, walker, coord)``."""
        bias = HarmonicBias(self.cv, self.kappa, np.asarray(centers, dtype=float))
        x = as_ensemble(x0)
        force = bias_force(bias, x)
        if not torch.isfinite(force).all():
            bad = int(torch.nonzero(~torch.isfinite(force).all(dim=1))[0])
            raise InputError(f"the gradient of the CV {self.cv.name} is not finite at x = {x[bad].tolist()} "
                             f"(window at {centers[bad]:g}): the bias force cannot be applied there")
        return self.evolve.biased(bias)(x0, self.n_steps, seed=seed, save_every=self.save_every,
                                        first_walker=first_walker, progress=progress)

    def analyse(self, trajectory: xr.DataArray, z: float) -> xr.Dataset:
        """CV ``xi``, bias energy ``bias`` (βU, kT) and the warm-up/decorrelation (attrs ``warmup_frames``,
        ``inefficiency``, ``stride``) of one window's trajectories ``(time, walker, coord)`` at ``z``."""
        cv = self.cv(trajectory.values)
        offset = wrapped_difference(cv, z, self.cv.period)  # continuous across ±P/2 for an angle
        start = mser_warmup(offset) if self.warmup == "auto" else int(self.warmup)
        if start >= cv.shape[0] - 2:
            raise InputError(f"window at {z:g}: nothing left after a warm-up of {start} frames; increase n_steps")
        if self.warmup == "auto" and start >= 0.45 * cv.shape[0]:
            warnings.warn(f"window at {self.cv.name} = {z:g} is still relaxing near half its run (warm-up detected "
                          f"until frame {start} of {cv.shape[0]}): increase n_steps", UserWarning, stacklevel=4)
        if not np.ptp(offset[start:]) > 0:
            raise InputError(f"window at {self.cv.name} = {z:g}: the CV does not change over the run (it stays at "
                             f"{cv[-1, 0]:g}); the walkers sit where it is flat (beyond the data of a learned CV?): "
                             "start them elsewhere (initial=...)")
        inefficiency = statistical_inefficiency(offset[start:])
        return xr.Dataset(
            {"x": trajectory,
             "xi": (("time", "walker"), cv, {"long_name": f"collective variable {self.cv.name}"}),
             "bias": (("time", "walker"), self._reduced(cv, z),
                      {"long_name": "reduced bias energy beta*U", "units": "kT"})},
            attrs={"center": z, "kappa": self.kappa, "beta": self.beta, "warmup_frames": start,
                   "inefficiency": inefficiency, "stride": max(1, math.ceil(inefficiency))},
        )

    def window(self, z: float, *, seed: SeedLike, n_walkers: int | None = None, progress: bool = False) -> xr.Dataset:
        """Run one window at ``z``: trajectories ``x`` (time, walker, coord), the CV ``xi`` and ``bias`` (βU, kT)
        per frame, and the warm-up analysis in attrs (``warmup_frames``, ``inefficiency``, ``stride``)."""
        return self.windows([float(z)], seed=seed, n_walkers=n_walkers, progress=progress)[0]

    # -- the Lift -----------------------------------------------------------------------------------
    def __call__(self, z, n: int, *, seed: SeedLike) -> np.ndarray:
        """n fine states of the biased law at z: the final states of n walkers run for ``n_steps``."""
        z = np.atleast_1d(np.asarray(z, dtype=float))
        if z.shape != (1,):
            raise InputError(f"umbrella sampling lifts one CV value at a time, got z of shape {z.shape}")
        return self.window(z[0], seed=seed, n_walkers=n).x.values[-1]

    # -- windows across a grid ------------------------------------------------------------------
    def run(self, grid, *, seed: SeedLike, executor=None, windows_per_task: int | None = None,
            progress: bool = False) -> xr.Dataset:
        """All windows of ``grid``, pooled after warm-up and thinning: ``x`` (sample, coord), CV ``xi``, ``bias``
        (own-window βU), ``window_index``, ``walker``, ``frame_time``; per window ``center``,
        ``warmup_frames``, ``inefficiency``, ``n_samples``.

        Tasks of ``windows_per_task`` windows go through ``executor`` (default: all windows in one
        vectorized task when serial, one window per task on an executor); the numbers do not depend
        on either choice.
        """
        centers = np.atleast_1d(np.asarray(grid, dtype=float))
        if centers.ndim != 1 or centers.size == 0:
            raise InputError(f"the grid of window centres must be a non-empty 1-D sequence, got shape {centers.shape}")
        default = len(centers) if executor is None else 1
        per_task = default if windows_per_task is None else checked_count(windows_per_task, "windows_per_task")
        starts = range(0, len(centers), per_task)
        tasks = [(self, centers[i:i + per_task], i, seed) for i in starts]
        windows: list[xr.Dataset] = []
        for _, samples in sorted(run_tasks(_window_samples, tasks, executor=executor, progress=progress,
                                           desc="umbrella windows"), key=lambda item: item[0]):
            windows.extend(samples)
        pooled = xr.concat([w.assign(window_index=("sample", np.full(w.sizes["sample"], k)))
                            for k, w in enumerate(windows)], dim="sample")
        per_window = {name: ("window", [w.attrs[name] for w in windows]) for name in ("warmup_frames", "inefficiency")}
        pooled = pooled.assign(n_samples=("window", [w.sizes["sample"] for w in windows]), **per_window)
        pooled = pooled.assign_coords(center=("window", centers))
        pooled.attrs = {"kappa": self.kappa, "beta": self.beta, "cv": self.cv.name, "dt": self.dt,
                        "n_steps": self.n_steps, "n_walkers": self.n_walkers,
                        **({} if self.cv.period is None else {"period": self.cv.period})}
        return pooled

    def reweight(self, windows: xr.Dataset, estimator: str = "mbar", *, seed: SeedLike | None = None,
                 **options) -> UmbrellaReweighting:
        """Fit WHAM or MBAR (:mod:`eqfree.reweight`) to pooled ``windows`` from :meth:`run`: window free
        energies, the PMF along ξ (kT), unbiased sample weights and the overlap matrix. WHAM bootstraps
        whole walkers (the independent units), drawn from ``seed`` (needed for WHAM alone: MBAR's errors are
        analytic); ``options`` go to the estimator."""
        estimators = {"wham": WHAM, "mbar": MBAR}
        if estimator not in estimators:
            raise InputError(f"estimator must be 'wham' or 'mbar', got {estimator!r}")
        fitted = estimators[estimator](period=self.cv.period, **options)
        arguments = (self.reduced_bias(windows.xi.values, windows.center.values), windows.window_index.values,
                     windows.xi.values)
        if estimator == "wham":  # the bootstrap resamples whole walkers within each window
            if seed is None:
                raise InputError("WHAM's bootstrap errors need an explicit seed: reweight(windows, 'wham', seed=...)")
            return fitted.fit(*arguments, groups=windows.walker.values, seed=seed)
        return fitted.fit(*arguments)


def _window_samples(sampler: UmbrellaSampling, centers: np.ndarray, first: int, seed) -> list[xr.Dataset]:
    """Decorrelated samples of windows ``first, ...``, each flattened to a ``sample`` dimension (a task)."""
    flat = []
    for window in sampler.windows(centers, seed=seed, first=first):
        frames = np.arange(window.attrs["warmup_frames"], window.sizes["time"], window.attrs["stride"])
        kept = window.isel(time=frames).stack(sample=("time", "walker"))
        flat.append(xr.Dataset(
            {"x": (("sample", "coord"), kept.x.transpose("sample", "coord").values),
             "xi": ("sample", kept.xi.values, window.xi.attrs),
             "bias": ("sample", kept.bias.values, window.bias.attrs),
             "walker": ("sample", kept.walker.values),
             "frame_time": ("sample", kept.time.values)},
            coords={"coord": window.coord.values}, attrs=window.attrs,
        ))
    return flat
