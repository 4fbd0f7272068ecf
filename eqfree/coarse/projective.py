"""Coarse projective integration: projective forward Euler, PI-RK2 and PI-RK4.

One macro step of length Δ from z_n (Gear & Kevrekidis 2003; Lee & Gear 2007 for the Runge–Kutta
outer steps). A burst of duration τ ≤ Δ started at z_n is fitted on its tail (:mod:`.derivative`):
anchor state ā at burst time t̄ and slope k₁. The remaining h = Δ − t̄ is covered by an explicit RK
method (nodes c, matrix a, weights b) whose stage derivatives are slopes of further bursts:

    X_i = ā + (c_i h − t̄) Σ_j a_ij k_j / c_i,    k_i = slope of the burst started at X_i,
    z_{n+1} = ā + h Σ_i b_i k_i.

X_i is placed a time t̄ before the stage abscissa, so that the anchor of its burst lands at time
t_n + t̄ + c_i h; where c_i h < t̄ (RK4 with Δ < 3t̄) this is a short backward extrapolation. With one stage this is
projective forward Euler, z_{n+1} = ā + (Δ − t̄) k₁: the fitted tail line evaluated at Δ. When the
tail holds the last two fine states (t_heal = τ − δt, after k + 1 = τ/δt inner steps) it is exactly
Gear & Kevrekidis's z_{n+1} = z_{k+1} + M (z_{k+1} − z_k) with M = (Δ − τ)/δt projected fine steps.
"rk2" is Heun's method (c = 0, 1; b = ½, ½), "rk4" the classical one.

Order: the anchor of stage i lands O(t̄Δ) away from the ideal stage value (X_i is shifted back
along an O(Δ)-accurate direction). That is within what a second-order method tolerates, so PI-RK2
is second order in Δ; for PI-RK4 it adds an O(t̄Δ) global error, so fourth order shows while
t̄ ≪ Δ (short bursts from an accurate lift) and levels off at that term after long healing.

Statistical error: a stochastic coarse trajectory is one realization of a noisy map, and an error in
z_n is carried forward — contracted or amplified — by the coarse flow: var(z_{n+1}) ≈ J_n var(z_n) J_nᵀ
+ (the variance the step adds), J_n = ∂z_{n+1}/∂z_n ≈ 1 + Δ ∂F. Summing the step variances alone
ignores J_n (it over-states the error under contraction, 1.8–2.2× on ``averaging_cubic`` at t = 1,
and under-states it under expansion), and J_n is not observable from one realization in more than
one dimension. ``realizations`` = G independent trajectories (independent seeds, R walkers each)
are therefore run and averaged,

    z_n = (1/G) Σ_g z_n^(g),    z_stderr_n = sd_g(z_n^(g)) / √G,

which is exact whatever the flow does to earlier errors. To first order in 1/R the average of G runs
of R walkers has the error of one run of G·R walkers at the same cost; the standard error itself
is uncertain by a relative 1/√(2(G − 1)).
"""

from __future__ import annotations

import math

import numpy as np
import xarray as xr

from ..errors import DivergenceError, InputError
from ..validation import checked_count
from .bursts import ODEBursts, WalkerBursts

#: (nodes c, matrix a (strictly lower), weights b)
TABLEAUS = {
    "euler": ((0.0,), ((),), (1.0,)),
    "rk2": ((0.0, 1.0), ((), (1.0,)), (0.5, 0.5)),
    "rk4": ((0.0, 0.5, 0.5, 1.0), ((), (0.5,), (0.0, 0.5), (0.0, 0.0, 1.0)), (1 / 6, 1 / 3, 1 / 3, 1 / 6)),
}


def _macro_steps(t0: float, t_end: float, macro_step: float, tau: float) -> int:
    macro_step = float(macro_step)
    if not (math.isfinite(macro_step) and macro_step >= tau):
        raise InputError(f"macro_step = {macro_step} must be at least the burst duration tau = {tau}")
    span = float(t_end) - float(t0)
    n = round(span / macro_step) if math.isfinite(span) else 0
    if n < 1 or not math.isclose(n * macro_step, span, rel_tol=1e-9, abs_tol=1e-12):
        raise InputError(f"t_end - t0 = {span} must be a positive multiple of macro_step = {macro_step}")
    return n


def projective_integrate(
    bursts: WalkerBursts | ODEBursts, z0, t_end: float, macro_step: float, *, method: str = "euler", t0: float = 0.0,
    realizations: int = 2,
) -> xr.Dataset:
    """Integrate the coarse dynamics from ``z0`` at ``t0`` to ``t_end`` in macro steps Δ = ``macro_step``.

    ``bursts`` supplies the burst duration τ, healing time and seeds (:mod:`.bursts`); the burst of
    realization g, step n, stage i has key ``(g, n, i)``. Returns a Dataset over the macro times with
    ``z`` (time, cv), the mean over the ``realizations``, its ``z_stderr`` (the spread of the realizations over
    √G; stochastic bursts need G >= 2; zero for deterministic bursts) and ``fine_steps``, cumulative fine steps per
    walker and realization (times ``n_walkers · realizations`` for all fine steps).
    """
    if method not in TABLEAUS:
        raise InputError(f"unknown method {method!r}; choose one of {sorted(TABLEAUS)}")
    z0 = np.atleast_1d(np.asarray(z0, dtype=float))
    if z0.ndim != 1 or not np.all(np.isfinite(z0)):
        raise InputError(f"z0 must be a finite scalar or 1-D array, got {z0!r}")
    realizations = checked_count(realizations, "realizations")
    if realizations == 1 and not isinstance(bursts, ODEBursts):
        raise InputError("one stochastic realization has no error estimate: pass realizations >= 2 "
                         "(independent runs whose spread gives z_stderr)")
    n_steps = _macro_steps(t0, t_end, macro_step, bursts.tau)
    tableau = TABLEAUS[method]

    runs = []
    for g in range(realizations):
        states = [z0]
        for n in range(n_steps):
            with np.errstate(over="ignore", invalid="ignore"):  # a blow-up is reported by _check_finite
                z, cv = _step(bursts, states[-1], (g, n), t0, macro_step, *tableau)
            states.append(z)
        runs.append(states)
    runs = np.array(runs)
    if realizations > 1:
        stderr = runs.std(axis=0, ddof=1) / math.sqrt(realizations)
    else:
        stderr = np.zeros_like(runs[0])  # deterministic bursts
    times = t0 + macro_step * np.arange(n_steps + 1)
    return xr.Dataset(
        {
            "z": (("time", "cv"), runs.mean(axis=0), {"long_name": "coarse state, mean over realizations"}),
            "z_stderr": (("time", "cv"), stderr, {"long_name": "standard error of z across realizations"}),
            "fine_steps": ("time", np.arange(n_steps + 1) * len(tableau[0]) * bursts.steps,
                           {"long_name": "cumulative fine steps per walker and realization"}),
        },
        coords={"time": times, "cv": list(cv)},
        attrs={
            "method": method, "macro_step": float(macro_step), "tau": float(bursts.tau), "t_heal": float(bursts.t_heal),
            "dt": float(bursts.dt), "n_walkers": int(bursts.n_walkers), "realizations": int(realizations),
            "bursts_per_step": len(tableau[0]), "M": (macro_step - bursts.tau) / bursts.dt,
        },
    )


def _step(bursts, z, key, t0, macro_step, nodes, matrix, weights):
    """One macro step from z (step ``key[-1]``): the new state and the CV names."""
    n = key[-1]
    first = bursts.derivative(z, (*key, 0))
    h = macro_step - first.anchor_time
    slopes = [first.slope]
    for i in range(1, len(nodes)):
        direction = sum(a * k for a, k in zip(matrix[i], slopes)) / nodes[i]
        stage = first.anchor + (nodes[i] * h - first.anchor_time) * direction
        _check_finite(stage, n, t0 + n * macro_step, "a stage state")
        slopes.append(bursts.derivative(stage, (*key, i)).slope)
    z = first.anchor + h * sum(b * k for b, k in zip(weights, slopes))
    _check_finite(z, n, t0 + (n + 1) * macro_step, "the coarse state")
    return z, first.cv


def _check_finite(z: np.ndarray, step: int, t: float, what: str) -> None:
    if not np.all(np.isfinite(z)):
        raise DivergenceError(
            f"projective step {step} made {what} non-finite (t = {t:g}): the macro step is outside the "
            "stability region of the method; reduce macro_step or lengthen the healing part of the burst"
        )
