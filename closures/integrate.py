"""Integrate a closure: the closed ODE dz/dt = B(z), the SDE dz = B dt + √D dW as an ensemble, or the
mean path with its error band.

:func:`integrate` solves the ODE with ``scipy.integrate.solve_ivp``, or runs the SDE by Euler–Maruyama,

    z_{k+1} = z_k + B(z_k) Δt + √(D(z_k) Δt) ξ_k,   ξ_k ~ N(0, 1) i.i.d. from the explicit seed.

:func:`mean_path` is E[z(t)] under the closed SDE with the two uncertainties a prediction carries:

(a) the closure's own: K closures drawn from the estimates' standard errors, independently at each grid
    point (the points are estimated from independent seeds) and interpolated linearly between them,
    B_k(z) = B(z) + Σ_i φ_i(z) se_B,i η_ki, D_k(z) = max(0, D(z) + Σ_i φ_i(z) se_D,i ζ_ki) with φ_i the
    hat functions on the grid and η, ζ ~ N(0, 1); each draw runs M paths with the noise of the first M
    paths of the estimate itself (common random numbers), so that the spread of their means,
    closure_sd = sd_k(m_k), is the closure's and not the paths' Monte Carlo noise;
(b) the closed SDE's intrinsic noise: N paths of the estimated closure, whose mean is ``z``, whose spread
    is ``path_sd`` and whose Monte Carlo error is ``z_stderr`` = path_sd/√N.

Paths follow the Heun predictor for the drift with Itô noise, z̃ = z + B(z) Δt + √(D(z) Δt) ξ,
z' = z + ½ (B(z) + B(z̃)) Δt + √(D(z) Δt) ξ (weak order 2 for additive noise; the mean of
Euler–Maruyama would lag by O(Δt B'B)). An ensemble mean of N' independent fine runs should then differ
from ``z`` by N(0, closure_sd² + z_stderr² + se²) with se its own standard error (path_sd/√N').
Paths must stay inside the closure's grid.
"""

from __future__ import annotations

import math

import numpy as np
import xarray as xr
from scipy.integrate import solve_ivp
from tqdm.auto import tqdm

from eqfree.errors import ConvergenceError, InputError
from eqfree.operators import steps_for
from eqfree.seeding import SeedLike, as_seed_sequence, child
from eqfree.validation import checked_count

from .model import Closure


def _span(t_span) -> tuple[float, float]:
    t0, t1 = map(float, t_span)
    if not (math.isfinite(t0) and math.isfinite(t1) and t1 > t0):
        raise InputError(f"t_span must be (t0, t1) with finite t1 > t0, got {t_span!r}")
    return t0, t1


def integrate(
    closure: Closure,
    z0: float,
    t_span,
    *,
    t_eval=None,
    sde: bool = False,
    n_walkers: int = 1,
    dt: float | None = None,
    seed: SeedLike | None = None,
    method: str = "RK45",
    rtol: float = 1e-8,
    atol: float = 1e-10,
) -> xr.DataArray:
    """The closure's path from ``z0`` over ``t_span = (t0, t1)``.

    ODE (default): solved by ``solve_ivp(method, rtol, atol)`` and reported at ``t_eval`` (default:
    the solver's steps); returns dims ``(time,)``.
    SDE (``sde=True``): ``n_walkers`` Euler–Maruyama paths with step ``dt`` and an explicit ``seed``,
    reported at ``t_eval`` (multiples of ``dt`` from t0; default every step); dims ``(time, walker)``.
    """
    t0, t1 = _span(t_span)
    z0 = float(closure.check(z0))
    cv_attrs = closure.dataset["cv"].attrs
    units = {"units": cv_attrs.get("units", "1"), "long_name": cv_attrs.get("long_name", "collective variable")}
    if not sde:
        def rhs(t, z):
            try:
                return closure.drift(z)
            except ValueError as error:
                raise InputError(f"closed ODE at t = {t:g}: {error}") from None

        solution = solve_ivp(rhs, (t0, t1), [z0], method=method, t_eval=t_eval, rtol=rtol, atol=atol)
        if not solution.success:
            raise ConvergenceError(f"solve_ivp failed: {solution.message}; try another method or tolerances")
        return xr.DataArray(solution.y[0], dims=("time",), coords={"time": solution.t}, name="z",
                            attrs={**units, "model": "closed ODE dz/dt = B(z)", "method": method})

    if seed is None or dt is None:
        raise InputError("the SDE needs an explicit seed and a time step dt")
    n_walkers = checked_count(n_walkers, "n_walkers")
    n_steps = steps_for(t1 - t0, dt)
    saved = (np.arange(n_steps + 1) if t_eval is None
             else np.array([steps_for(t - t0, dt) for t in np.atleast_1d(t_eval)]))
    if saved.size == 0 or saved.max() > n_steps:
        raise InputError(f"t_eval must be times in [{t0:g}, {t1:g}]")
    rng = np.random.default_rng(as_seed_sequence(seed))
    z = np.full(n_walkers, z0)
    out = np.empty((saved.size, n_walkers))
    out[saved == 0] = z
    low, high = closure.grid[0], closure.grid[-1]
    for step in range(1, n_steps + 1):
        z = z + closure.drift(z) * dt + np.sqrt(closure.diffusion(z) * dt) * rng.standard_normal(n_walkers)
        outside = np.flatnonzero((z < low) | (z > high))
        if outside.size:
            raise InputError(
                f"SDE path {outside[0]} left the closure's grid [{low:g}, {high:g}] at step {step} "
                f"(t = {t0 + step * dt:g}); estimate the closure on a wider grid or shorten t_span"
            )
        out[saved == step] = z
    return xr.DataArray(out, dims=("time", "walker"), coords={"time": t0 + saved * dt, "walker": np.arange(n_walkers)},
                        name="z", attrs={**units, "model": "closed SDE dz = B dt + sqrt(D) dW",
                                         "method": "euler_maruyama", "dt": float(dt)})


def _saved_steps(t_eval, t0: float, t1: float, dt: float) -> tuple[int, np.ndarray]:
    n_steps = steps_for(t1 - t0, dt)
    saved = np.array([steps_for(t - t0, dt) for t in np.atleast_1d(t_eval)])
    if saved.size == 0 or saved.max() > n_steps:
        raise InputError(f"t_eval must be times in [{t0:g}, {t1:g}]")
    return n_steps, saved


def mean_path(
    closure: Closure,
    z0: float,
    t_span,
    *,
    seed: SeedLike,
    t_eval=None,
    dt: float | None = None,
    n_walkers: int = 4096,
    n_samples: int = 32,
    walkers_per_sample: int = 64,
    progress: bool = False,
) -> xr.Dataset:
    """The closed SDE's mean path from ``z0`` with its error band (module doc).

    ``n_walkers`` paths of the estimated closure; ``n_samples`` closures drawn from the standard errors,
    ``walkers_per_sample`` paths each; step ``dt`` (default: a tenth of the spacing of ``t_eval``, which
    defaults to 101 equispaced times). Draws use child 0 of ``seed``, the noise child 1. A closure without
    a diffusion gives the ODE's path under the drift's uncertainty (``path_sd`` = 0). Returns, on
    ``time``: ``z`` (the mean path), ``closure_sd`` (a), ``path_sd`` (b) and ``z_stderr`` (Monte Carlo).
    """
    t0, t1 = _span(t_span)
    z0 = float(closure.check(z0))
    n_walkers = checked_count(n_walkers, "n_walkers", 2)
    n_samples = checked_count(n_samples, "n_samples (closures drawn)", 2)
    per_sample = checked_count(walkers_per_sample, "walkers_per_sample", 1)
    if per_sample > n_walkers:
        raise InputError(f"walkers_per_sample = {per_sample} must not exceed n_walkers = {n_walkers}: the draws "
                         "share the noise of the estimate's first paths")
    times = np.linspace(t0, t1, 101) if t_eval is None else np.asarray(t_eval, dtype=float)
    if dt is None:
        gaps = np.diff(np.unique(np.r_[t0, times]))
        dt = (gaps.min() if gaps.size else t1 - t0) / 10
    n_steps, saved = _saved_steps(times, t0, t1, dt)
    data = closure.dataset
    grid, done = closure.grid, closure.done
    draws = np.random.default_rng(as_seed_sequence(child(seed, 0)))
    noise = np.random.default_rng(as_seed_sequence(child(seed, 1)))

    def shifts(name):  # row 0: the estimate itself; rows 1..K: the draws
        se = np.where(done, np.nan_to_num(data[name].values), 0.0) if name in data else np.zeros(grid.size)
        return np.vstack([np.zeros(grid.size), draws.standard_normal((n_samples, grid.size)) * se])

    drift_shift, diffusion_shift = shifts("drift_stderr"), shifts("diffusion_stderr")
    row = np.r_[np.zeros(n_walkers, dtype=int), np.repeat(np.arange(1, n_samples + 1), per_sample)]
    shared = np.r_[np.arange(n_walkers), np.tile(np.arange(per_sample), n_samples)]

    def field(value, shift, z):
        i = np.clip(np.searchsorted(grid, z, side="right") - 1, 0, grid.size - 2)
        w = (z - grid[i]) / (grid[i + 1] - grid[i])
        return value(z) + (1 - w) * shift[row, i] + w * shift[row, i + 1]

    def inside(z, step):
        outside = np.flatnonzero((z < grid[0]) | (z > grid[-1]))
        if outside.size:
            raise InputError(
                f"SDE path {outside[0]} left the closure's grid [{grid[0]:g}, {grid[-1]:g}] at step {step} "
                f"(t = {t0 + step * dt:g}); estimate the closure on a wider grid or shorten t_span"
            )
        return z

    z = np.full(row.size, z0)
    out = np.empty((saved.size, row.size))
    out[saved == 0] = z
    with tqdm(total=n_steps, disable=not progress, unit="step", desc="closed SDE") as bar:
        for step in range(1, n_steps + 1):
            kick = 0.0
            if closure.has_diffusion:
                diffusion = np.maximum(field(closure.diffusion, diffusion_shift, z), 0.0)
                kick = np.sqrt(diffusion * dt) * noise.standard_normal(n_walkers)[shared]
            now = field(closure.drift, drift_shift, z)
            predicted = inside(z + now * dt + kick, step)
            z = inside(z + 0.5 * (now + field(closure.drift, drift_shift, predicted)) * dt + kick, step)
            out[saved == step] = z
            bar.update()
    paths, sampled = out[:, :n_walkers], out[:, n_walkers:].reshape(saved.size, n_samples, per_sample)
    path_sd = paths.std(axis=1, ddof=1)
    units = {"units": data["cv"].attrs.get("units", "1")}
    return xr.Dataset(
        {
            "z": ("time", paths.mean(axis=1), {**units, "long_name": "mean path of the closed SDE"}),
            "closure_sd": ("time", sampled.mean(axis=2).std(axis=1, ddof=1),
                           {**units, "long_name": "sd of the mean path over the closure's uncertainty"}),
            "path_sd": ("time", path_sd, {**units, "long_name": "sd of single paths of the closed SDE"}),
            "z_stderr": ("time", path_sd / np.sqrt(n_walkers),
                         {**units, "long_name": "Monte Carlo standard error of the mean path"}),
        },
        coords={"time": t0 + saved * dt},
        attrs={"model": "closed SDE dz = B dt + sqrt(D) dW, B and D drawn from their standard errors",
               "draws": "independent normal at each grid point, linear between points; common random numbers",
               "method": "heun drift, ito noise", "dt": float(dt), "n_walkers": n_walkers, "n_samples": n_samples,
               "walkers_per_sample": per_sample},
    )
