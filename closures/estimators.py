"""Point estimators of the averaged drift B(z) (and diffusion D(z)) of one collective variable z.

Both estimate at one coarse value z from fine states lifted there, and return plain numbers, so a
worker process can run them and hand the result back to the driver that stores it.

**Bursts** (:class:`BurstEstimator`). n walkers x_j ~ L(z) evolve for τ and are restricted at the saved
times t_k; Δz_j(t) = R(x_j(t)) − R(x_j(0)) (from the restricted lift, so a lift that misses z by δ
estimates at z + δ instead of adding δ/τ); m(t), V(t) are their mean and variance across walkers.

    drift     = m(τ)/τ,                                        se = sd_j(Δz_j(τ)) / (τ √n)
    diffusion = Σ_k w_k V(t_k)    over the tail t_k ∈ [t_heal, τ], Σ w_k = 0, Σ w_k t_k = 1

(with n CVs, z ∈ Rⁿ: the drift vector, and V(t) the walkers' covariance matrix, so D is the n × n slope of the
covariance; :meth:`BurstEstimator.__call__` then returns arrays (n,) and (n, n), plain numbers for one CV)

(D in the convention dz = B dt + √D dW): the slope of V(t) once the fast variables have healed
(generalized least squares, :func:`slope_weights`). D̂ is the walkers' mean of
q_j = Σ_k w_k (Δz_jk − m_k)² n/(n − 1), so se = sd_j(q_j)/√n. The end-point V(τ)/τ carries the fast
variables' memory: with a fast correlation time θ,
V(t) = D t − A + O(Dθ e^{−t/θ}) with A ≈ Dθ, so V(τ)/τ = D(1 − θ/τ); the slope does not (A is an
intercept). Along the burst the walkers' mean moves and their spread contracts,

    m(t)/t = B + ½ t (B'B + ½ B''D) + O(t², ε B'B),      V(t) = −A + D t + (B'D + ½ BD') t² + O(t³),

so with the lever p = Σ_k w_k t_k² (≈ t_heal + τ) the burst statistics are

    drift = B + ½ τ B'B + O(τ D B'', τ² B'² B),      diffusion = D + p (B'D + ½ BD') + O(D e^{−t_heal/θ} θ/τ).

The walkers' spread, √(Dτ), is far too small to resolve B' at one z, but across the grid B' and D' are
the finite differences of the estimates, and :func:`debiased` removes both terms:

    B = drift − ½ τ B̂' drift,        D = diffusion − p (B̂' diffusion + ½ drift D̂').

What remains: |δB| ≤ τ |B''| D / 4 + O(τ² B'² |B|, ε |B'B|) (the last, the fast variables' lag behind the
moving z, belongs to the finite-ε dynamics), and |δD|/D ≤ 2 e^{−t_heal/θ} θ/(τ − t_heal) (memory)
+ 2θ|B'| + θ|B D'|/D (the memory's intercept A ≈ Dθ contracts, and follows the moving z)
+ O(p² B'², p h² |B'''|) (h the grid spacing): below 0.3 % + 2θ|B'| + θ|BD'|/D with the default
t_heal = τ/2 when τ ≥ 10 θ. This statement goes into the recipe (``bias``) and so into the store's attributes.

**Conditional average** (:class:`ConditionalAverageEstimator`). When the slow drift is known in
fine coordinates, B(z) = E_{ν_z}[μ_slow(x)] (averaging principle) is a plain sample mean over
lifted states, se = sd/√n; it is exact up to the lift's error and needs no dynamics.
"""

from __future__ import annotations

import math
import re
import types
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np
import xarray as xr

from eqfree.errors import InputError, InputTypeError
from eqfree.io import parameters_of
from eqfree.operators import CoarseTimeStepper, Evolve, Lift, Restrict, steps_for
from eqfree.seeding import SeedLike, child
from eqfree.validation import checked_count, checked_positive

SlowDrift = Callable[[np.ndarray], np.ndarray]


@runtime_checkable
class ClosureEstimator(Protocol):
    """B(z) (and D(z)) at one z: what :func:`~eqfree.closures.estimate_closure` needs of an estimator.

    ``lift`` (its ``valid_range`` bounds the grid), ``names`` (the CV's name, or empty),
    ``estimates_diffusion``, ``recipe`` (a JSON-able description compared on resume) and
    ``estimator(z, seed) -> {"drift": ..., "drift_stderr": ..., ["diffusion", "diffusion_stderr"], "n_samples"}``.
    """

    lift: Lift
    names: list[str]
    estimates_diffusion: bool
    recipe: dict

    def __call__(self, z: float, seed: SeedLike) -> dict[str, float]: ...


def describe(operator) -> str:
    """A stable description of an operator for a recipe: a function's, method's or class's qualified
    name, else its repr, without memory addresses."""
    if isinstance(operator, (types.FunctionType, types.BuiltinFunctionType, types.MethodType, type)):
        return f"{operator.__module__}.{operator.__qualname__}"
    return re.sub(r" at 0x[0-9a-fA-F]+", "", repr(operator))


def _lifted(lift: Lift, z: float, n: int, seed: SeedLike) -> np.ndarray:
    x = np.asarray(lift(np.array([z]), n, seed=seed), dtype=float)
    if x.ndim != 2 or x.shape[0] != n:
        raise InputError(f"lift returned shape {x.shape} at z = {z}; a Lift must return (n, dim) = ({n}, dim)")
    if not np.all(np.isfinite(x)):
        raise InputError(f"lift returned non-finite states at z = {z}; check the lift's valid range")
    return x


BIAS = ("drift = B + O(tau D |B''|/4, tau^2 B'^2 |B|, eps |B'B|) after removing tau/2 B'B across the grid; "
        "diffusion = D (1 + O(2 exp(-t_heal/theta) theta/(tau - t_heal), 2 theta |B'| + theta |B D'|/D, "
        "lever^2 B'^2)) after removing lever (B'D + B D'/2) across the grid "
        "(theta: the fast correlation time; see eqfree.closures.estimators)")


def slope_weights(times: np.ndarray, tail: np.ndarray) -> np.ndarray:
    """w with Σ_k w_k V(t_k) the generalized least-squares slope of V(t) = a + D t over the tail, for the
    covariance of a sample variance of Brownian paths, Cov(V̂(s), V̂(t)) ∝ min(s, t)² (about 10 % less
    variance than ordinary least squares); any such w is unbiased for D: Σ w = 0, Σ w t = 1."""
    t = times[tail]
    covariance = np.minimum.outer(t, t) ** 2
    design = np.c_[np.ones_like(t), t]
    solved = np.linalg.solve(covariance, design)
    weights = np.zeros_like(times)
    weights[tail] = solved @ np.linalg.inv(design.T @ solved)[:, 1]
    return weights


def saving_interval(n_steps: int, most: int = 64) -> int:
    """The smallest divisor of ``n_steps`` that saves at most ``most`` states after the first."""
    return next(d for d in range(1, n_steps + 1) if n_steps % d == 0 and n_steps // d <= most)


class BurstEstimator:
    """Drift and diffusion from short bursts: n walkers lifted at z, evolved for τ, restricted at up to 65
    saved times; the diffusion is the slope of the walkers' variance over the tail [t_heal, τ] (default
    t_heal = τ/2; module doc)."""

    estimates_diffusion = True

    def __init__(self, lift: Lift, evolve: Evolve, restrict: Restrict, *, tau: float, n_walkers: int,
                 t_heal: float | None = None):
        self.lift, self.evolve, self.restrict = lift, evolve, restrict
        self.tau = checked_positive(tau, "tau (the burst length)")
        self.n_steps = steps_for(self.tau, evolve.dt)
        self.n_walkers = checked_count(n_walkers, "n_walkers", 2)
        self.t_heal = 0.5 * self.tau if t_heal is None else float(t_heal)
        self.save_every = saving_interval(self.n_steps)
        self.times = np.arange(0, self.n_steps + 1, self.save_every) * float(evolve.dt)
        if not (math.isfinite(self.t_heal) and 0 <= self.t_heal < self.tau):
            raise InputError(f"t_heal = {self.t_heal} must satisfy 0 <= t_heal < tau = {self.tau}")
        tail = self.times >= self.t_heal - 1e-9 * self.tau
        if tail.sum() < 3:
            raise InputError(f"the tail [t_heal, tau] = [{self.t_heal:g}, {self.tau:g}] holds {tail.sum()} saved "
                             "states, too few for the diffusion's slope: lower t_heal, or make tau a multiple of "
                             "the fine step with more divisors")
        self.weights = slope_weights(self.times, tail)
        self.lever = float(self.weights @ self.times**2)
        self.names = list(restrict.names)
        self._stepper = CoarseTimeStepper(lift, evolve, restrict)

    @property
    def recipe(self) -> dict:
        """What the estimates depend on (τ, healing, dt, walkers, the operators, the bias left): compared on resume."""
        return {
            "estimator": "bursts", "tau": self.tau, "t_heal": self.t_heal, "diffusion_lever": self.lever,
            "dt": float(self.evolve.dt), "n_walkers": self.n_walkers, "bias": BIAS,
            "lift": describe(self.lift), "evolve": describe(self.evolve), "restrict": describe(self.restrict),
        }

    def __call__(self, z: float, seed: SeedLike) -> dict[str, float]:
        """Estimates at ``z`` from R ∘ E_τ ∘ L (lift with child 0 of ``seed``, burst with child 1)."""
        burst = self._stepper(z, self.tau, self.n_walkers, seed=seed, save_every=self.save_every)
        step = burst.values - burst.values[0]  # (time, walker, cv)
        if not np.all(np.isfinite(step)):
            raise InputError(f"the burst at z = {z} left non-finite CV values; check the lift's valid range")
        n = self.n_walkers
        centred = step - step.mean(axis=1, keepdims=True)
        q = np.einsum("k,kja,kjb->jab", self.weights, centred, centred) * (n / (n - 1))
        estimates = {
            "drift": step[-1].mean(axis=0) / self.tau,
            "drift_stderr": step[-1].std(axis=0, ddof=1) / (self.tau * math.sqrt(n)),
            "diffusion": q.mean(axis=0),
            "diffusion_stderr": q.std(axis=0, ddof=1) / math.sqrt(n),
        }
        if burst.sizes["cv"] == 1:  # one CV: plain numbers
            estimates = {name: value.item() for name, value in estimates.items()}
        return {**estimates, "n_samples": n}


def debiased(dataset: xr.Dataset) -> xr.Dataset:
    """The closure of a burst estimate with its drift's ½τB'B and its diffusion's p(B'D + ½BD') removed,
    B' and D' the grid's finite differences (second order, within each run of consecutive done points;
    a lone done point stays as estimated). Any other dataset, or one already debiased, comes back as it is.
    """
    recipe = parameters_of(dataset.attrs)
    if recipe.get("estimator") != "bursts" or "diffusion_lever" not in recipe or dataset.attrs.get("debiased"):
        return dataset
    tau, lever = float(recipe["tau"]), float(recipe["diffusion_lever"])
    grid, done = dataset["cv"].values, dataset["done"].values.astype(bool)
    drift, diffusion = dataset["drift"].values, dataset["diffusion"].values
    slope, diffusion_slope = np.zeros_like(grid), np.zeros_like(grid)
    for run in np.split(np.arange(grid.size), np.flatnonzero(~done)):
        run = run[done[run]]
        if run.size > 1:
            order = 2 if run.size > 2 else 1
            slope[run] = np.gradient(drift[run], grid[run], edge_order=order)
            diffusion_slope[run] = np.gradient(diffusion[run], grid[run], edge_order=order)
    out = dataset.copy(deep=True)
    out["drift"].values = drift - 0.5 * tau * slope * drift
    out["drift_stderr"].values = dataset["drift_stderr"].values * np.abs(1 - 0.5 * tau * slope)
    out["diffusion"].values = diffusion - lever * (slope * diffusion + 0.5 * drift * diffusion_slope)
    out["diffusion_stderr"].values = dataset["diffusion_stderr"].values * np.abs(1 - lever * slope)
    out.attrs["debiased"] = 1
    return out


class ConditionalAverageEstimator:
    """B(z) = E_{ν_z}[μ_slow(x)]: the known slow drift averaged over n states lifted at z."""

    estimates_diffusion = False

    def __init__(self, lift: Lift, slow_drift: SlowDrift, *, n_samples: int):
        if not callable(slow_drift):
            raise InputTypeError("slow_drift must be callable as slow_drift(x) -> (n,), "
                                 f"got {type(slow_drift).__name__}")
        self.lift, self.slow_drift = lift, slow_drift
        self.n_samples = checked_count(n_samples, "n_samples", 2)
        self.names: list[str] = []

    @property
    def recipe(self) -> dict:
        """What the estimates depend on (samples, lift, slow drift): compared on resume."""
        return {"estimator": "conditional_average", "n_samples": self.n_samples,
                "lift": describe(self.lift), "slow_drift": describe(self.slow_drift)}

    def __call__(self, z: float, seed: SeedLike) -> dict[str, float]:
        """Estimate at ``z``; the lift draws with child 0 of ``seed``."""
        x = _lifted(self.lift, z, self.n_samples, child(seed, 0))
        mu = np.asarray(self.slow_drift(x), dtype=float)
        if mu.shape not in {(self.n_samples,), (self.n_samples, 1)}:
            raise InputError(f"slow_drift returned shape {mu.shape}; expected ({self.n_samples},) for one "
                             "collective variable")
        mu = mu.reshape(-1)
        if not np.all(np.isfinite(mu)):
            raise InputError(f"slow_drift returned non-finite values at z = {z}")
        return {"drift": mu.mean(), "drift_stderr": mu.std(ddof=1) / math.sqrt(self.n_samples),
                "n_samples": self.n_samples}
