"""Point estimators of the averaged drift B(z) (and diffusion D(z)) of one collective variable z.

Both estimate at one coarse value z from fine states lifted there, and return plain numbers, so a
worker process can run them and hand the result back to the driver that stores it.

**Bursts** (:class:`BurstEstimator`). n walkers x_j ~ L(z) evolve for τ; with
Δz_j = R(x_j(τ)) − R(x_j(0)) (measured from the restricted lift, so a lift that misses z by δ
estimates the drift at z + δ instead of adding δ/τ),

    drift     = mean_j Δz_j / τ,                 se = sd_j(Δz_j) / (τ √n)
    diffusion = Σ_j (Δz_j − mean Δz)² / ((n − 1) τ),   se from the walkers' squared deviations

(D in the convention dz = B dt + √D dW). Centring removes the B²τ bias of the raw E[Δz²]/τ. For a
drift that varies along the burst the estimates carry

    E[Δz]/τ = B + ½ τ B'B + O(τ²),        Var(Δz)/τ = D + O(τ)

plus what the lift's distance from the true conditional law contributes while the fast variables
heal; pick τ a few fast relaxation times, short against the slow scale |B'|⁻¹.

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

from eqfree.errors import InputError, InputTypeError
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


class BurstEstimator:
    """Drift and diffusion from short bursts: n walkers lifted at z, evolved for τ (module doc)."""

    estimates_diffusion = True

    def __init__(self, lift: Lift, evolve: Evolve, restrict: Restrict, *, tau: float, n_walkers: int):
        self.lift, self.evolve, self.restrict = lift, evolve, restrict
        self.tau = checked_positive(tau, "tau (the burst length)")
        self.n_steps = steps_for(self.tau, evolve.dt)
        self.n_walkers = checked_count(n_walkers, "n_walkers", 2)
        self.names = list(restrict.names)
        self._stepper = CoarseTimeStepper(lift, evolve, restrict)

    @property
    def recipe(self) -> dict:
        return {
            "estimator": "bursts", "tau": self.tau, "dt": float(self.evolve.dt), "n_walkers": self.n_walkers,
            "lift": describe(self.lift), "evolve": describe(self.evolve), "restrict": describe(self.restrict),
        }

    def __call__(self, z: float, seed: SeedLike) -> dict[str, float]:
        """Estimates at ``z`` from R ∘ E_τ ∘ L (lift with child 0 of ``seed``, burst with child 1)."""
        burst = self._stepper(z, self.tau, self.n_walkers, seed=seed, save_every=self.n_steps)
        if burst.sizes["cv"] != 1:
            raise InputError(f"restriction gives {burst.sizes['cv']} CVs; closures need one collective variable: "
                             "restrict to a single coordinate")
        step = (burst[-1] - burst[0]).values[:, 0]
        if not np.all(np.isfinite(step)):
            raise InputError(f"the burst at z = {z} left non-finite CV values; check the lift's valid range")
        n = self.n_walkers
        deviation2 = (step - step.mean()) ** 2 * n / (n - 1)
        return {
            "drift": step.mean() / self.tau,
            "drift_stderr": step.std(ddof=1) / (self.tau * math.sqrt(n)),
            "diffusion": deviation2.mean() / self.tau,
            "diffusion_stderr": deviation2.std(ddof=1) / (self.tau * math.sqrt(n)),
            "n_samples": n,
        }


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
