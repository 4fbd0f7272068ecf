"""Integrate a closure: the closed ODE dz/dt = B(z), or the SDE dz = B dt + √D dW as an ensemble.

The ODE goes to ``scipy.integrate.solve_ivp``; the SDE is Euler–Maruyama,

    z_{k+1} = z_k + B(z_k) Δt + √(D(z_k) Δt) ξ_k,   ξ_k ~ N(0, 1) i.i.d. from the explicit seed,

with the diffusion D estimated by the burst estimator. Paths must stay inside the closure's grid.
"""

from __future__ import annotations

import math

import numpy as np
import xarray as xr
from scipy.integrate import solve_ivp

from eqfree.errors import ConvergenceError, InputError
from eqfree.operators import steps_for
from eqfree.seeding import SeedLike, as_seed_sequence
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
