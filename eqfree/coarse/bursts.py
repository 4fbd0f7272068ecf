"""Where restricted bursts come from: walkers of a coarse time-stepper, or one deterministic ODE burst.

Both give the tail fit of a burst of duration τ started at a coarse state z,
``derivative(z, key) -> CoarseDerivative`` (:mod:`eqfree.coarse.derivative`). ``key`` is a tuple of
non-negative ints that addresses the burst's seed: the burst at ``key`` uses the SeedSequence with
spawn key ``seed.spawn_key + key``, so a projective step n, stage i (key ``(n, i)``) draws the same
numbers whatever else was run. Deterministic bursts ignore the key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from ..errors import InputError, InputTypeError
from ..operators import CoarseTimeStepper, steps_for
from ..seeding import SeedLike, as_seed_sequence, child
from ..validation import checked_count, checked_positive
from .derivative import CoarseDerivative, coarse_derivative, tail_mask


def burst_steps(tau: float, dt: float, t_heal: float, save_every: int = 1) -> int:
    """Fine steps in a burst of duration τ; checks that the tail [t_heal, τ] holds two saved states."""
    steps = steps_for(checked_positive(tau, "tau (burst duration)"), dt)
    integer = isinstance(save_every, (int, np.integer)) and not isinstance(save_every, bool)
    if not integer or save_every < 1 or steps % save_every:
        raise InputError(
            f"save_every = {save_every!r} must be a positive integer dividing the {steps} fine steps of the burst, "
            "so that z(tau) is saved"
        )
    tail_mask(np.arange(0, steps + 1, save_every) * dt, t_heal)
    return steps


@dataclass(frozen=True)
class WalkerBursts:
    """``n_walkers`` independent bursts of a :class:`~eqfree.CoarseTimeStepper` (stochastic fine models)."""

    stepper: CoarseTimeStepper
    tau: float
    n_walkers: int
    seed: SeedLike
    t_heal: float = 0.0
    save_every: int = 1
    steps: int = field(init=False)

    def __post_init__(self):
        checked_count(self.n_walkers, "n_walkers (the standard error needs two)", 2)
        as_seed_sequence(self.seed)
        object.__setattr__(self, "steps", burst_steps(self.tau, self.dt, self.t_heal, self.save_every))

    @property
    def dt(self) -> float:
        """The fine step of the stepper's :class:`~eqfree.Evolve`, in the system's time unit."""
        return float(self.stepper.evolve.dt)

    def burst(self, z, key: tuple[int, ...] = ()) -> xr.DataArray:
        """The restricted states of ``n_walkers`` bursts of duration τ lifted at ``z``: dims ``(time, walker, cv)``."""
        return self.stepper(z, self.tau, self.n_walkers, seed=child(self.seed, *key), save_every=self.save_every)

    def derivative(self, z, key: tuple[int, ...] = ()) -> CoarseDerivative:
        """The tail fit of the burst at ``z`` (:func:`~eqfree.coarse.derivative.coarse_derivative`)."""
        return coarse_derivative(self.burst(z, key), self.t_heal)


@dataclass(frozen=True)
class ODEBursts:
    """One deterministic burst per state: ``fn(z, n_steps) -> (n_steps + 1, n_cv)`` restricted states
    at times 0, dt, ..., n_steps·dt (lift, fine ODE steps and restriction are up to ``fn``)."""

    fn: Callable[[np.ndarray, int], np.ndarray]
    dt: float
    tau: float
    t_heal: float = 0.0
    n_walkers: int = field(default=1, init=False)
    steps: int = field(init=False)

    def __post_init__(self):
        if not callable(self.fn):
            raise InputTypeError(f"fn must be callable as fn(z, n_steps), got {type(self.fn)}")
        checked_positive(self.dt, "dt (fine step)")
        object.__setattr__(self, "steps", burst_steps(self.tau, self.dt, self.t_heal))

    def burst(self, z, key: tuple[int, ...] = ()) -> xr.DataArray:
        """``fn(z, steps)`` as a burst with dims ``(time, cv)``, times 0, dt, ..., τ (``key`` ignored)."""
        z = np.atleast_1d(np.asarray(z, dtype=float))
        if z.ndim != 1 or not np.all(np.isfinite(z)):
            raise InputError(f"coarse state z must be a finite scalar or 1-D array, got {z!r}")
        values = np.asarray(self.fn(z, self.steps), dtype=float)
        if values.ndim == 1:
            values = values[:, None]
        if values.shape != (self.steps + 1, z.size):
            raise InputError(f"fn returned shape {values.shape}; "
                             f"expected (n_steps + 1, n_cv) = {(self.steps + 1, z.size)}")
        return xr.DataArray(
            values,
            dims=("time", "cv"),
            coords={"time": self.dt * np.arange(self.steps + 1), "cv": [f"z{i + 1}" for i in range(z.size)]},
            name="z",
        )

    def derivative(self, z, key: tuple[int, ...] = ()) -> CoarseDerivative:
        """The tail fit of the deterministic burst at ``z`` (standard errors zero)."""
        return coarse_derivative(self.burst(z, key), self.t_heal)
