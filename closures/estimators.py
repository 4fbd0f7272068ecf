"""Point estimators of the averaged drift B(z) (and diffusion D(z)) of collective variables z ∈ Rⁿ.

Both estimate at one coarse value z from fine states lifted there, and return plain arrays, so a
worker process can run them and hand the result back to the driver that stores it.

**Bursts** (:class:`BurstEstimator`). n walkers x_j ~ L(z) evolve for τ and are restricted at the saved
times t_k; Δz_j(t) = R(x_j(t)) − R(x_j(0)) (from the restricted lift, so a lift that misses z by δ
estimates at z + δ instead of adding δ/τ); m(t), V(t) are their mean and variance across walkers.

    drift     = m(τ)/τ,                                        se = sd_j(Δz_j(τ)) / (τ √n)
    diffusion = Σ_k w_k V(t_k)    over the tail t_k ∈ [t_heal, τ], Σ w_k = 0, Σ w_k t_k = 1

(with n CVs, z ∈ Rⁿ: the drift vector, and V(t) the walkers' covariance matrix, so D is the n × n slope of the
covariance; :meth:`BurstEstimator.__call__` then returns arrays (n,) and (n, n), also for one CV)

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

With n CVs the same expansion, with J = ∂B/∂z (J_ik = ∂_k B_i), gives drift = B + ½τ J B, and the covariance
obeys dV/dt = E[(z − m) B(z)ᵀ] + E[B(z) (z − m)ᵀ] + E[D(z)] = V Jᵀ + J V + D(m(t)) + O(t²), with V ≈ D t and
D(m(t)) ≈ D + t (B·∇)D, so V(t) = −A + D t + ½ (J D + D Jᵀ + (B·∇)D) t² + O(t³) (1-D: (B'D + ½BD') t²) and

    B = drift − ½ τ Ĵ drift,        D = diffusion − ½ p (Ĵ diffusion + diffusion Ĵᵀ + (drift·∇) D̂),

symmetric like D (applied as the congruence of :func:`debiased`, which keeps D positive semi-definite).
A periodic CV's increments are unwrapped along the burst (``periods``).

What remains: |δB| ≤ τ |B''| D / 4 + O(τ² B'² |B|, ε |B'B|) (the last, the fast variables' lag behind the
moving z, belongs to the finite-ε dynamics), and |δD|/D ≤ 2 e^{−t_heal/θ} θ/(τ − t_heal) (memory)
+ 2θ|B'| + θ|B D'|/D (the memory's intercept A ≈ Dθ contracts, and follows the moving z)
+ ¼ p |D''| (the curvature of D: E[D(z_t)] = D + t B·∇D + ½ t D:∇∇D adds ¼ D:∇∇D t² to V, not removed)
+ O(p² B'², p h² |B'''|) (h the grid spacing): below 0.3 % + 2θ|B'| + θ|BD'|/D + ¼p|D''| with the default
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
from eqfree.periodic import check_period, wrapped_difference
from eqfree.seeding import SeedLike, child
from eqfree.validation import checked_count, checked_positive

from .store import grid_of, in_layout, periodic_padding

SlowDrift = Callable[[np.ndarray], np.ndarray]


@runtime_checkable
class ClosureEstimator(Protocol):
    """B(z) (and D(z)) at one z: what :func:`~eqfree.closures.estimate_closure` needs of an estimator.

    ``lift`` (its ``valid_range`` bounds the grid), ``names`` (the CVs' names, or empty), ``periods`` (the
    CVs' periods, None where not periodic; or None: none is), ``estimates_diffusion``, ``recipe`` (a JSON-able
    description compared on resume) and ``estimator(z, seed) -> {"drift": ..., "drift_stderr": ...,
    ["diffusion", "diffusion_stderr"], "n_samples"}`` — arrays (n,) and (n, n) for z an array of the n CVs'
    values (n = 1 included).
    """

    lift: Lift
    names: list[str]
    periods: list[float | None] | None
    estimates_diffusion: bool
    recipe: dict

    def __call__(self, z: np.ndarray, seed: SeedLike) -> dict[str, np.ndarray]: ...


def describe(operator) -> str:
    """A stable description of an operator for a recipe: a function's, method's or class's qualified
    name, else its repr, without memory addresses."""
    if isinstance(operator, (types.FunctionType, types.BuiltinFunctionType, types.MethodType, type)):
        return f"{operator.__module__}.{operator.__qualname__}"
    return re.sub(r" at 0x[0-9a-fA-F]+", "", repr(operator))


def _lifted(lift: Lift, z: np.ndarray, n: int, seed: SeedLike) -> np.ndarray:
    x = np.asarray(lift(z, n, seed=seed), dtype=float)
    where = ", ".join(f"{v:g}" for v in z)
    if x.ndim != 2 or x.shape[0] != n:
        raise InputError(f"lift returned shape {x.shape} at z = {where}; a Lift must return (n, dim) = ({n}, dim)")
    if not np.all(np.isfinite(x)):
        raise InputError(f"lift returned non-finite states at z = {where}; check the lift's valid range")
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
                 t_heal: float | None = None, periods: list[float | None] | None = None):
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
        self.periods = checked_periods(periods, len(self.names))
        self._stepper = CoarseTimeStepper(lift, evolve, restrict)

    @property
    def recipe(self) -> dict:
        """What the estimates depend on (τ, healing, dt, walkers, the operators, the bias left): compared on resume."""
        return {
            "estimator": "bursts", "tau": self.tau, "t_heal": self.t_heal, "diffusion_lever": self.lever,
            "dt": float(self.evolve.dt), "n_walkers": self.n_walkers, "bias": BIAS,
            "lift": describe(self.lift), "evolve": describe(self.evolve), "restrict": describe(self.restrict),
            **({} if self.periods is None else {"periods": self.periods}),
        }

    def __call__(self, z: np.ndarray, seed: SeedLike) -> dict[str, np.ndarray]:
        """Estimates at ``z`` from R ∘ E_τ ∘ L (lift with child 0 of ``seed``, burst with child 1)."""
        burst = self._stepper(z, self.tau, self.n_walkers, seed=seed, save_every=self.save_every)
        values = burst.values  # (time, walker, cv)
        for a, period in enumerate(self.periods or []):
            if period is not None:  # unwrapped: the sum of the wrapped increments between saved states
                values[1:, :, a] = values[0, :, a] + np.cumsum(
                    wrapped_difference(values[1:, :, a], values[:-1, :, a], period), axis=0)
        step = values - values[0]
        if not np.all(np.isfinite(step)):
            raise InputError(f"the burst at z = {z} left non-finite CV values; check the lift's valid range")
        n = self.n_walkers
        centred = step - step.mean(axis=1, keepdims=True)
        q = np.einsum("k,kja,kjb->jab", self.weights, centred, centred) * (n / (n - 1))
        q = 0.5 * (q + np.swapaxes(q, 1, 2))  # symmetric to the last bit
        estimates = {
            "drift": step[-1].mean(axis=0) / self.tau,
            "drift_stderr": step[-1].std(axis=0, ddof=1) / (self.tau * math.sqrt(n)),
            "diffusion": q.mean(axis=0),
            "diffusion_stderr": q.std(axis=0, ddof=1) / math.sqrt(n),
        }
        return {**estimates, "n_samples": n}


def grid_gradient(values: np.ndarray, axes: list[np.ndarray], done: np.ndarray, periods: list[float | None]
                  ) -> np.ndarray:
    """∂_k values along every grid axis k, ``(*shape, ..., n)``: second-order differences (np.gradient) within
    each run of consecutive done points along the axis (a periodic axis's run continues across its end), 0 at a
    point alone in its run; ``values`` ``(*shape, ...)``, ``done`` ``(*shape)``."""
    n = len(axes)
    slopes = np.zeros((*values.shape, n))
    for k, (axis, period) in enumerate(zip(axes, periods, strict=True)):
        lines = np.moveaxis(values, k, n - 1).reshape(-1, axis.size, *values.shape[n:])
        masks = np.moveaxis(done, k, n - 1).reshape(-1, axis.size)
        out = np.zeros_like(lines)
        for line, mask, result in zip(lines, masks, out, strict=True):
            if period is not None and mask.all():  # around the circle: one period's repeat on either side
                (z,), padded = periodic_padding([axis], [period], line)
                result[:] = np.gradient(padded, z, axis=0)[1:-1]
                continue
            order = np.arange(axis.size)
            z = axis.copy()
            if period is not None:  # start the circle at a point not done, so no run is split at the end
                first = int(np.flatnonzero(~mask)[0])
                order = np.roll(order, -first)
                z = np.where(order < first, axis[order] + period, axis[order])
            for run in np.split(np.arange(axis.size), np.flatnonzero(~mask[order])):
                run = run[mask[order][run]]
                if run.size > 1:
                    result[order[run]] = np.gradient(line[order[run]], z[run], axis=0,
                                                     edge_order=2 if run.size > 2 else 1)
        slopes[..., k] = np.moveaxis(out.reshape(*np.moveaxis(values, k, n - 1).shape), n - 1, k)
    return slopes


def debiased(dataset: xr.Dataset) -> xr.Dataset:
    """The closure of a burst estimate with its drift's ½τJB and its diffusion's ½p(JD + DJᵀ + (B·∇)D) removed
    (module doc; 1-D: ½τB'B and p(B'D + ½BD')), J and ∇D the grid's finite differences (:func:`grid_gradient`:
    second order, within each run of consecutive done points; a lone done point stays as estimated).

    The diffusion's correction is applied as the congruence D = F⁻¹ (D̂ − ½p(B̂·∇)D̂) F⁻ᵀ, F = I + ½pĴ, equal to
    the module doc's to first order in p and positive semi-definite whenever D̂ − ½p(B̂·∇)D̂ is (the explicit
    D̂ − ½p(ĴD̂ + D̂Ĵᵀ) is not: a degenerate direction goes negative). Standard errors are propagated through the
    factors, the entries taken as independent: se(B_i)² = Σ_k (δ_ik − ½τJ_ik)² se(B̂_k)² and
    se(D_ab)² = Σ_cd G_ac² G_bd² se(D̂_cd)², G = F⁻¹ (exact in 1-D). A burst estimate in the layout of before the
    n-D closures comes back in the new one (:func:`~closures.store.in_layout`); any other dataset, or one already
    debiased, comes back as it is.
    """
    recipe = parameters_of(dataset.attrs)
    if recipe.get("estimator") != "bursts" or "diffusion_lever" not in recipe or dataset.attrs.get("debiased"):
        return dataset
    tau, lever = float(recipe["tau"]), float(recipe["diffusion_lever"])
    dataset = in_layout(dataset)
    _, axes, periods = grid_of(dataset)
    done = dataset["done"].values.astype(bool)
    drift, diffusion = dataset["drift"].values, dataset["diffusion"].values  # (*shape, n), (*shape, n, n)
    jacobian = grid_gradient(drift, axes, done, periods)  # J_ik = ∂_k B_i: (*shape, i, k)
    along = np.einsum("...abk,...k->...ab", grid_gradient(diffusion, axes, done, periods), drift)  # (B·∇)D
    n = len(axes)
    factor = np.eye(n) - 0.5 * tau * jacobian
    inverse = np.linalg.inv(np.eye(n) + 0.5 * lever * jacobian)  # G = F⁻¹, F = I + ½pĴ
    out = dataset.copy(deep=True)
    out["drift"].values = np.einsum("...ik,...k->...i", factor, drift)
    out["drift_stderr"].values = np.sqrt(np.einsum("...ik,...k->...i", factor**2, dataset["drift_stderr"].values**2))
    out["diffusion"].values = np.einsum("...ac,...cd,...bd->...ab", inverse, diffusion - 0.5 * lever * along, inverse)
    out["diffusion_stderr"].values = np.sqrt(np.einsum("...ac,...bd,...cd->...ab", inverse**2, inverse**2,
                                                       dataset["diffusion_stderr"].values ** 2))
    out.attrs["debiased"] = 1
    return out


def checked_periods(periods, n: int) -> list[float | None] | None:
    """``None`` (no CV periodic), or one period (or None) per CV of the ``n``."""
    if periods is None:
        return None
    periods = [check_period(p) for p in periods]
    if len(periods) != n:
        raise InputError(f"give one period (or None) per CV: {n} CVs, {len(periods)} periods")
    return None if all(p is None for p in periods) else periods


class ConditionalAverageEstimator:
    """B(z) = E_{ν_z}[μ_slow(x)]: the known slow drift averaged over n states lifted at z; ``slow_drift(x)``
    returns (n_samples,) for one CV or (n_samples, n) for n; ``names`` and ``periods`` label the CVs."""

    estimates_diffusion = False

    def __init__(self, lift: Lift, slow_drift: SlowDrift, *, n_samples: int, names: list[str] | None = None,
                 periods: list[float | None] | None = None):
        if not callable(slow_drift):
            raise InputTypeError("slow_drift must be callable as slow_drift(x) -> (n_samples,) or (n_samples, n), "
                                 f"got {type(slow_drift).__name__}")
        self.lift, self.slow_drift = lift, slow_drift
        self.n_samples = checked_count(n_samples, "n_samples", 2)
        self.names: list[str] = list(names or [])
        self.periods = checked_periods(periods, len(self.names) if names else len(periods or []))

    @property
    def recipe(self) -> dict:
        """What the estimates depend on (samples, lift, slow drift): compared on resume."""
        return {"estimator": "conditional_average", "n_samples": self.n_samples,
                "lift": describe(self.lift), "slow_drift": describe(self.slow_drift),
                **({} if self.periods is None else {"periods": self.periods})}

    def __call__(self, z, seed: SeedLike) -> dict:
        """Estimate at ``z`` (an array of n coordinates); the lift draws with child 0 of ``seed``."""
        point = np.atleast_1d(np.asarray(z, dtype=float))
        x = _lifted(self.lift, point, self.n_samples, child(seed, 0))
        mu = np.asarray(self.slow_drift(x), dtype=float)
        n = point.size
        if mu.shape not in {(self.n_samples, n)} | ({(self.n_samples,)} if n == 1 else set()):
            raise InputError(f"slow_drift returned shape {mu.shape}; expected ({self.n_samples}, {n})"
                             + (f" or ({self.n_samples},)" if n == 1 else "") + f" for {n} collective variable(s)")
        mu = mu.reshape(self.n_samples, n)
        if not np.all(np.isfinite(mu)):
            raise InputError(f"slow_drift returned non-finite values at z = {z}")
        return {"drift": mu.mean(axis=0), "drift_stderr": mu.std(axis=0, ddof=1) / math.sqrt(self.n_samples),
                "n_samples": self.n_samples}
