"""Integrate a closure on n CVs: the closed ODE dz/dt = B(z), the SDE dz = B dt + √D dW as an ensemble, or
the mean path with its error band.

:func:`integrate` solves the ODE with ``scipy.integrate.solve_ivp``, or runs the SDE by Euler–Maruyama,

    z_{k+1} = z_k + B(z_k) Δt + √(D(z_k) Δt) ξ_k,   ξ_k ~ N(0, Iₙ) i.i.d. from the explicit seed,

with √ the symmetric square root of the eigen-decomposition, eigenvalues clipped at 0 (:func:`root`), so a
semi-definite D (one CV without noise, an interpolated tensor at the edge of definiteness) is accepted.

:func:`mean_path` is E[z(t)] under the closed SDE with the two uncertainties a prediction carries:

(a) the closure's own: K closures drawn from the estimates' standard errors, independently at each grid
    point (the points are estimated from independent seeds) and interpolated linearly between them,
    B_k(z) = B(z) + Σ_i φ_i(z) se_B,i η_ki, D_k(z) = D(z) + Σ_i φ_i(z) se_D,i ζ_ki (its root clipped at 0)
    with φ_i the hat functions on the grid (multilinear with several CVs) and η, ζ ~ N(0, 1) per component and
    entry (ζ symmetric); each draw runs M paths with the noise of the first M
    paths of the estimate itself (common random numbers), so that the spread of their means,
    closure_sd = sd_k(m_k), is the closure's and not the paths' Monte Carlo noise;
(b) the closed SDE's intrinsic noise: N paths of the estimated closure, whose mean is ``z``, whose spread
    is ``path_sd`` and whose Monte Carlo error is ``z_stderr`` = path_sd/√N.

Paths follow the Heun predictor for the drift with Itô noise, z̃ = z + B(z) Δt + √(D(z) Δt) ξ,
z' = z + ½ (B(z) + B(z̃)) Δt + √(D(z) Δt) ξ (weak order 2 for additive noise; the mean of
Euler–Maruyama would lag by O(Δt B'B)). An ensemble mean of N' independent fine runs should then differ
from ``z`` by N(0, closure_sd² + z_stderr² + se²) with se its own standard error (path_sd/√N').
Paths must stay inside the closure's grid; along a periodic CV they wrap, and are reported unwrapped (continuous).
With several CVs every output carries a ``component`` dimension (the band per component); with one, none.
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


def _start(closure: Closure, z0) -> np.ndarray:
    """``z0`` as a point ``(n,)`` the closure accepts (a number for one CV)."""
    z = np.atleast_1d(np.asarray(z0, dtype=float))
    if z.shape != (closure.ndim,):
        raise InputError(f"z0 must have {closure.ndim} coordinate(s) ({', '.join(closure.names)}), got {z.size}: "
                         "give one value per CV of the closure, in that order")
    closure.check(z[None, :])
    return z


def root(matrices: np.ndarray) -> np.ndarray:
    """The symmetric square roots of symmetric ``(..., n, n)``, eigenvalues clipped at 0 (semi-definite)."""
    if matrices.shape[-1] == 1:  # the eigendecomposition of 1 × 1 matrices, without its per-call overhead
        return np.sqrt(np.maximum(matrices, 0.0))
    values, vectors = np.linalg.eigh(matrices)
    return np.einsum("...ik,...k,...jk->...ij", vectors, np.sqrt(np.maximum(values, 0.0)), vectors)


def _inside(closure: Closure, z: np.ndarray, step: int, t: float) -> np.ndarray:
    """``z`` ``(walkers, n)``, or an InputError naming the first path that left the grid along a CV not periodic."""
    for k, (axis, period) in enumerate(zip(closure.axes, closure.periods, strict=True)):
        if period is None:
            outside = np.flatnonzero((z[:, k] < axis[0]) | (z[:, k] > axis[-1]))
            if outside.size:
                along = "" if closure.ndim == 1 else f" along {closure.names[k]}"
                raise InputError(
                    f"SDE path {outside[0]} left the closure's grid [{axis[0]:g}, {axis[-1]:g}]{along} at step {step} "
                    f"(t = {t:g}); estimate the closure on a wider grid or shorten t_span"
                )
    return z


def _attrs(closure: Closure) -> dict:
    first = closure.dataset[closure.names[0]].attrs
    long_name = first.get("long_name", "collective variable") if closure.ndim == 1 else (
        f"collective variables {', '.join(closure.names)}")
    return {"units": first.get("units", "1"), "long_name": long_name}


def integrate(
    closure: Closure,
    z0,
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
    """The closure's path from ``z0`` (a number for one CV, n coordinates for n) over ``t_span = (t0, t1)``.

    ODE (default): solved by ``solve_ivp(method, rtol, atol)`` and reported at ``t_eval`` (default:
    the solver's steps); returns dims ``(time,)`` (n CVs: ``(time, component)``).
    SDE (``sde=True``): ``n_walkers`` Euler–Maruyama paths with step ``dt`` and an explicit ``seed``,
    reported at ``t_eval`` (multiples of ``dt`` from t0; default every step); dims ``(time, walker)``
    (n CVs: ``(time, walker, component)``).
    """
    t0, t1 = _span(t_span)
    start = _start(closure, z0)
    n = closure.ndim
    vector = {"component": closure.names} if n > 1 else {}
    if not sde:
        def rhs(t, z):
            try:
                return closure.drift(z[None, :])[0]
            except InputError as error:
                raise InputError(f"closed ODE at t = {t:g}: {error}") from None

        solution = solve_ivp(rhs, (t0, t1), start, method=method, t_eval=t_eval, rtol=rtol, atol=atol)
        if not solution.success:
            raise ConvergenceError(f"solve_ivp failed: {solution.message}; try another method or tolerances")
        return xr.DataArray(solution.y.T if n > 1 else solution.y[0], dims=("time", *vector),
                            coords={"time": solution.t, **vector}, name="z",
                            attrs={**_attrs(closure), "model": "closed ODE dz/dt = B(z)", "method": method})

    if seed is None or dt is None:
        raise InputError("the SDE needs an explicit seed and a time step dt")
    n_walkers = checked_count(n_walkers, "n_walkers")
    n_steps = steps_for(t1 - t0, dt)
    saved = (np.arange(n_steps + 1) if t_eval is None
             else np.array([steps_for(t - t0, dt) for t in np.atleast_1d(t_eval)]))
    if saved.size == 0 or saved.max() > n_steps:
        raise InputError(f"t_eval must be times in [{t0:g}, {t1:g}]")
    rng = np.random.default_rng(as_seed_sequence(seed))
    z = np.tile(start, (n_walkers, 1))
    out = np.empty((saved.size, n_walkers, n))
    out[saved == 0] = z
    for step in range(1, n_steps + 1):
        kick = np.einsum("wij,wj->wi", root(closure.diffusion(z) * dt), rng.standard_normal((n_walkers, n)))
        z = _inside(closure, z + closure.drift(z) * dt + kick, step, t0 + step * dt)
        out[saved == step] = z
    return xr.DataArray(out if n > 1 else out[..., 0], dims=("time", "walker", *vector),
                        coords={"time": t0 + saved * dt, "walker": np.arange(n_walkers), **vector},
                        name="z", attrs={**_attrs(closure), "model": "closed SDE dz = B dt + sqrt(D) dW",
                                         "method": "euler_maruyama", "dt": float(dt)})


def _saved_steps(t_eval, t0: float, t1: float, dt: float) -> tuple[int, np.ndarray]:
    n_steps = steps_for(t1 - t0, dt)
    saved = np.array([steps_for(t - t0, dt) for t in np.atleast_1d(t_eval)])
    if saved.size == 0 or saved.max() > n_steps:
        raise InputError(f"t_eval must be times in [{t0:g}, {t1:g}]")
    return n_steps, saved


def mean_path(
    closure: Closure,
    z0,
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
    """The closed SDE's mean path from ``z0`` (a number for one CV, n coordinates for n) with its error band
    (module doc).

    ``n_walkers`` paths of the estimated closure; ``n_samples`` closures drawn from the standard errors,
    ``walkers_per_sample`` paths each; step ``dt`` (default: a tenth of the spacing of ``t_eval``, which
    defaults to 101 equispaced times). Draws use child 0 of ``seed``, the noise child 1. A closure without
    a diffusion gives the ODE's path under the drift's uncertainty (``path_sd`` = 0). Returns, on
    ``time`` (n CVs: and ``component``): ``z`` (the mean path), ``closure_sd`` (a), ``path_sd`` (b) and
    ``z_stderr`` (Monte Carlo).
    """
    t0, t1 = _span(t_span)
    start = _start(closure, z0)
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
    data, n, done = closure.dataset, closure.ndim, closure.done
    draws = np.random.default_rng(as_seed_sequence(child(seed, 0)))
    noise = np.random.default_rng(as_seed_sequence(child(seed, 1)))

    def shifts(name, tail):
        """Row 0: the estimate itself; rows 1..K: the draws, ``(K + 1, points, *tail)``."""
        se = (np.where(done.reshape(done.shape + (1,) * len(tail)), np.nan_to_num(data[name].values), 0.0)
              if name in data else np.zeros(done.shape + tail))
        eta = draws.standard_normal((n_samples, *done.shape, *tail))
        if len(tail) == 2:  # a symmetric tensor: the upper triangle's draws mirrored
            eta = np.triu(eta) + np.swapaxes(np.triu(eta, 1), -1, -2)
        return np.concatenate([np.zeros((1, *done.shape, *tail)), eta * se]).reshape(n_samples + 1, done.size, *tail)

    drift_shift, diffusion_shift = shifts("drift_stderr", (n,)), shifts("diffusion_stderr", (n, n))
    row = np.r_[np.zeros(n_walkers, dtype=int), np.repeat(np.arange(1, n_samples + 1), per_sample)]
    shared = np.r_[np.arange(n_walkers), np.tile(np.arange(per_sample), n_samples)]

    def field(value, shift, z):  # each path's own closure: the estimate plus its row's shifts, between grid points
        index, weight = closure.hats(z)
        corners = shift[row[:, None], index]  # (paths, corners, *tail)
        return value(z) + np.einsum("pc,pc...->p...", weight, corners)

    z = np.tile(start, (row.size, 1))
    out = np.empty((saved.size, row.size, n))
    out[saved == 0] = z
    with tqdm(total=n_steps, disable=not progress, unit="step", desc="closed SDE") as bar:
        for step in range(1, n_steps + 1):
            t = t0 + step * dt
            kick = 0.0
            if closure.has_diffusion:
                diffusion = field(closure.diffusion, diffusion_shift, z)
                kick = np.einsum("wij,wj->wi", root(diffusion * dt), noise.standard_normal((n_walkers, n))[shared])
            now = field(closure.drift, drift_shift, z)
            predicted = _inside(closure, z + now * dt + kick, step, t)
            z = _inside(closure, z + 0.5 * (now + field(closure.drift, drift_shift, predicted)) * dt + kick, step, t)
            out[saved == step] = z
            bar.update()
    # displacements from z0 (exactly 0 at t0, so z(t0) = z0 and its spreads 0 to the last bit), (time, n, paths)
    out = np.ascontiguousarray(np.moveaxis(out - start, 1, -1))
    paths, sampled = out[..., :n_walkers], out[..., n_walkers:].reshape(saved.size, n, n_samples, per_sample)
    path_sd = paths.std(axis=-1, ddof=1)
    dims = ("time", "component") if n > 1 else ("time",)

    def shaped(values):
        return values if n > 1 else values[..., 0]

    units = {"units": _attrs(closure)["units"]}
    return xr.Dataset(
        {
            "z": (dims, shaped(start + paths.mean(axis=-1)), {**units, "long_name": "mean path of the closed SDE"}),
            "closure_sd": (dims, shaped(sampled.mean(axis=-1).std(axis=-1, ddof=1)),
                           {**units, "long_name": "sd of the mean path over the closure's uncertainty"}),
            "path_sd": (dims, shaped(path_sd), {**units, "long_name": "sd of single paths of the closed SDE"}),
            "z_stderr": (dims, shaped(path_sd / np.sqrt(n_walkers)),
                         {**units, "long_name": "Monte Carlo standard error of the mean path"}),
        },
        coords={"time": t0 + saved * dt, **({"component": closure.names} if n > 1 else {})},
        attrs={"model": "closed SDE dz = B dt + sqrt(D) dW, B and D drawn from their standard errors",
               "draws": "independent normal at each grid point, linear between points; common random numbers",
               "method": "heun drift, ito noise", "dt": float(dt), "n_walkers": n_walkers, "n_samples": n_samples,
               "walkers_per_sample": per_sample},
    )
