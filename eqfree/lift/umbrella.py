"""Umbrella sampling: the physics-based lifting operator (seed paper, sections 2–4).

A window at z runs the fine dynamics of many walkers at once under the bias U_z = κ/2 d(ξ(x), z)²
(:mod:`eqfree.lift.bias`). Warm-up is detected on the walker-averaged CV series (MSER) and the rest
of every walker's series is thinned by the pooled statistical inefficiency g
(:mod:`eqfree.timeseries`), leaving roughly independent samples of the CV (coordinates that
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
from collections.abc import Sequence

import numpy as np
import torch
import xarray as xr

from ..errors import InputError
from ..evolve import coordinate_names, euler_maruyama
from ..evolve.euler_maruyama import as_ensemble, bias_force
from ..parallel import run_tasks
from ..periodic import wrapped_difference
from ..reweight import MBAR, WHAM, UmbrellaReweighting
from ..seeding import SeedLike, child
from ..timeseries import mser_warmup, statistical_inefficiency
from ..validation import checked_count, checked_positive
from .bias import CollectiveVariable, HarmonicBias, collective_variable


class UmbrellaSampling:
    """Harmonic-bias windows on a CV ξ, and the :class:`~eqfree.Lift` they define.

    Parameters
    ----------
    sde : the fine dynamics (any SDE object; a system from :mod:`systems`).
    cv : ξ — ``"x1"``/index, a fitted :class:`~eqfree.restrict.KernelExpansion` (learned Φ), a
        :class:`CollectiveVariable` (e.g. an angle with ``period``) or a differentiable callable.
    kappa : spring constant κ > 0, in the energy units of the dynamics.
    dt, n_steps : Euler–Maruyama step and steps per window.
    walkers : walkers per window, advanced together.
    beta : 1/kT of the dynamics; bias energies are reported as βU (kT).
    initial : where walkers start — ``None`` (the SDE's ``x0``), a state ``(dim,)``, data
        ``(N, dim)`` (the ``walkers`` points whose ξ is nearest z) or a :class:`~eqfree.Lift`.
    warmup : ``"auto"`` (detected on the CV series) or a number of saved frames to discard.
    save_every : keep every k-th step.
    """

    def __init__(self, sde, cv, kappa: float, *, dt: float, n_steps: int, walkers: int = 100, beta: float = 1.0,
                 initial=None, warmup: str | int = "auto", save_every: int = 1, period: float | None = None,
                 device=None, noise_dtype: torch.dtype = torch.float64, coords: Sequence[str] | None = None):
        kappa, beta = float(kappa), float(beta)
        if not (math.isfinite(kappa) and kappa > 0):
            raise InputError(f"the spring constant kappa must be a finite positive number, got {kappa}")
        if not (math.isfinite(beta) and beta > 0):
            raise InputError(f"beta = 1/kT must be a finite positive number, got {beta}")
        if not (warmup == "auto" or (isinstance(warmup, (int, np.integer)) and 0 <= warmup)):
            raise InputError(f"warmup must be 'auto' or a non-negative number of saved frames, got {warmup!r}")
        self.sde, self.kappa, self.beta = sde, kappa, beta
        self.dt, self.n_steps = checked_positive(dt, "dt"), checked_count(n_steps, "n_steps")
        self.walkers = checked_count(walkers, "walkers (independent walkers give the error bars)", 2)
        self.initial, self.warmup, self.save_every = initial, warmup, save_every
        self.device, self.noise_dtype = device, noise_dtype
        self.coords = list(coords) if coords is not None else getattr(sde, "coords", None)
        self.cv: CollectiveVariable = collective_variable(cv, dim=getattr(sde, "dim", None), period=period)
        #: where a learned CV was fitted (checked by closure grids); None for coordinates
        self.valid_range = self.cv.valid_range

    # -- one window -----------------------------------------------------------------------------
    def reduced_bias(self, cv_values, centers) -> np.ndarray:
        """βU_k at CV values ``(N,)`` for window centres ``(K,)`` → ``(K, N)``, in kT."""
        return self._reduced(np.asarray(cv_values, float)[None, :], np.asarray(centers, float)[:, None])

    def _reduced(self, cv_values, center):
        """βκ/2 d(ξ, z)²: the bias in kT (numpy, broadcasting)."""
        return 0.5 * self.beta * self.kappa * wrapped_difference(cv_values, center, self.cv.period) ** 2

    def _initial_walkers(self, z: float, walkers: int, seed: SeedLike) -> np.ndarray:
        if callable(self.initial):
            return np.asarray(self.initial(np.atleast_1d(z), walkers, seed=seed), dtype=float)
        state = np.asarray(getattr(self.sde, "x0", None) if self.initial is None else self.initial, dtype=float)
        if state.ndim == 1:
            return np.broadcast_to(state, (walkers, state.size)).copy()
        if state.ndim == 2:
            if len(state) < walkers:
                raise InputError(f"initial data hold {len(state)} states; a window needs {walkers} walkers")
            distance = np.abs(wrapped_difference(self.cv(state), z, self.cv.period))
            return state[np.argsort(distance, kind="stable")[:walkers]]
        raise InputError("initial must be None, a state (dim,), data (N, dim) or a Lift; "
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

    def _windows(self, centers: np.ndarray, first: int, seed: SeedLike, walkers: int,
                 progress: bool = False) -> list[xr.Dataset]:
        """Windows ``first, first + 1, ...`` of a run, all walkers advanced in one ensemble.

        Window k starts from walkers drawn with child (0, k) of ``seed`` and its walkers take slots
        k·walkers, ... of the noise stream of child 1, so every window's numbers are the same
        whether it runs alone or beside others."""
        for z in centers:
            self._check_center(z)
        x0 = np.concatenate([self._initial_walkers(z, walkers, child(child(seed, 0), first + k))
                             for k, z in enumerate(centers)])
        trajectory = self._biased_trajectories(x0, np.repeat(centers, walkers), child(seed, 1), first * walkers,
                                               progress)
        return [self._analyse(trajectory.isel(walker=slice(k * walkers, (k + 1) * walkers)).assign_coords(
                    walker=np.arange(walkers)), z) for k, z in enumerate(centers)]

    def _biased_trajectories(self, x0: np.ndarray, centers: np.ndarray, seed, first_walker: int,
                             progress: bool) -> xr.DataArray:
        """Biased dynamics of walkers x0 ``(walkers, dim)``, walker i held at ``centers[i]`` and drawing the
        noise of walker ``first_walker + i`` of ``seed``; dims ``(time, walker, coord)``."""
        x0 = as_ensemble(x0)
        bias = HarmonicBias(self.cv, self.kappa, torch.as_tensor(centers, device=self.device))
        force = bias_force(bias, x0)
        if not torch.isfinite(force).all():
            bad = int(torch.nonzero(~torch.isfinite(force).all(dim=1))[0])
            raise InputError(f"the gradient of the CV {self.cv.name} is not finite at x = {x0[bad].tolist()} "
                             f"(window at {centers[bad]:g}): the bias force cannot be applied there")
        return euler_maruyama(
            self.sde, x0, dt=self.dt, n_steps=self.n_steps, seed=seed, save_every=self.save_every,
            bias=bias, device=self.device, noise_dtype=self.noise_dtype, first_walker=first_walker,
            coords=self.coords or coordinate_names(x0.shape[1]), progress=progress)

    def _analyse(self, trajectory: xr.DataArray, z: float) -> xr.Dataset:
        """CV, bias energy and the warm-up/decorrelation of one window's trajectories."""
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

    def window(self, z: float, *, seed: SeedLike, walkers: int | None = None, progress: bool = False) -> xr.Dataset:
        """Run one window at ``z``: trajectories ``x`` (time, walker, coord), the CV ``xi`` and ``bias`` (βU, kT)
        per frame, and the warm-up analysis in attrs (``warmup_frames``, ``inefficiency``, ``stride``)."""
        walkers = self.walkers if walkers is None else walkers
        return self._windows(np.array([float(z)]), 0, seed, walkers, progress)[0]

    # -- the Lift -----------------------------------------------------------------------------------
    def __call__(self, z, n: int, *, seed: SeedLike) -> np.ndarray:
        """n fine states of the biased law at z: the final states of n walkers run for ``n_steps``."""
        z = np.atleast_1d(np.asarray(z, dtype=float))
        if z.shape != (1,):
            raise InputError(f"umbrella sampling lifts one CV value at a time, got z of shape {z.shape}")
        return self.window(z[0], seed=seed, walkers=n).x.values[-1]

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
                        "n_steps": self.n_steps, "walkers": self.walkers,
                        **({} if self.cv.period is None else {"period": self.cv.period})}
        return pooled

    def reweight(self, windows: xr.Dataset, estimator: str = "mbar", **options) -> UmbrellaReweighting:
        """Fit WHAM or MBAR (:mod:`eqfree.reweight`) to pooled ``windows`` from :meth:`run`: window free
        energies, the PMF along ξ (kT), unbiased sample weights and the overlap matrix. WHAM bootstraps
        whole walkers (the independent units); ``options`` go to the estimator."""
        estimators = {"wham": WHAM, "mbar": MBAR}
        if estimator not in estimators:
            raise InputError(f"estimator must be 'wham' or 'mbar', got {estimator!r}")
        fitted = estimators[estimator](period=self.cv.period, **options)
        arguments = (self.reduced_bias(windows.xi.values, windows.center.values), windows.window_index.values,
                     windows.xi.values)
        if estimator == "wham":  # the bootstrap resamples whole walkers within each window
            return fitted.fit(*arguments, groups=windows.walker.values)
        return fitted.fit(*arguments)


def _window_samples(sampler: UmbrellaSampling, centers: np.ndarray, first: int, seed) -> list[xr.Dataset]:
    """Decorrelated samples of windows ``first, ...``, each flattened to a ``sample`` dimension (a task)."""
    flat = []
    for window in sampler._windows(centers, first, seed, sampler.walkers):
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
