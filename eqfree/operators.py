"""The three equation-free operators and their composition, the coarse time-stepper R ∘ E_τ ∘ L.

Shapes (float64 numpy arrays at the boundaries):

- ``Lift``:     ``lift(z, n, *, seed) -> (n, dim)`` — n fine states drawn from the conditional
  equilibrium ν_z at one coarse state ``z`` of shape ``(n_cv,)``.
- ``Evolve``:   ``evolve(x, n_steps, *, seed, save_every=1) -> DataArray (time, walker, coord)`` —
  a burst of ``n_steps`` steps of length ``evolve.dt`` from ``x`` of shape ``(walkers, dim)``.
- ``Restrict``: ``restrict(x) -> (..., n_cv)`` for fine states ``(..., dim)``.

Lifts declare ``valid_range`` and restrictions ``names`` (never probed); :class:`FunctionLift` makes
a plain function a Lift.

Seeding: a coarse step with seed s lifts with child 0 of s and evolves with child 1 of s
(:mod:`eqfree.seeding`), so the same seed gives the same burst.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import xarray as xr

from .errors import InputError
from .seeding import SeedLike, child
from .validation import checked_count


@runtime_checkable
class System(Protocol):
    """A fine system: what every SDE model and molecular system declares (never probed).

    ``name``; ``dim`` and ``coords`` (the fine coordinates' count and names); ``slow`` (the slow
    CVs' names); ``beta`` = 1/kT in the system's energy units; ``x0`` ``(dim,)``, a typical state;
    ``dt``, the default fine step; ``params``, the model parameters by name; ``evolver(dt)``, its
    :class:`Evolve`. SDE systems are also SDEs (``drift``, ``diffusion``, ``noise``)."""

    name: str
    dim: int
    coords: list[str]
    slow: tuple[str, ...]
    beta: float
    x0: np.ndarray
    dt: float
    params: dict[str, float]

    def evolver(self, dt: float | None = None) -> Evolve:
        """The system's :class:`Evolve` at fine step ``dt`` (``None``: the default ``self.dt``)."""


@runtime_checkable
class Lift(Protocol):
    """``lift(z, n, *, seed) -> (n, dim)``; ``valid_range``: (low, high) of the CV where the lift was
    built (a learned lift's training labels), or ``None`` where it holds everywhere."""

    valid_range: tuple[float, float] | None

    def __call__(self, z: np.ndarray, n: int, *, seed: SeedLike) -> np.ndarray: ...


@dataclass(frozen=True)
class FunctionLift:
    """A :class:`Lift` from a function ``fn(z, n, *, seed) -> (n, dim)``, valid on ``valid_range``
    (``None``: everywhere)."""

    fn: Callable[..., np.ndarray]
    valid_range: tuple[float, float] | None = None

    def __call__(self, z: np.ndarray, n: int, *, seed: SeedLike) -> np.ndarray:
        return self.fn(z, n, seed=seed)


@dataclass(frozen=True)
class StateLift:
    """The :class:`Lift` of CVs that are the whole fine state: every walker is the point z itself, its value
    ``z[i]`` at coordinate ``indices[i]`` (the CVs in any order)."""

    indices: tuple[int, ...]
    valid_range = None

    def __call__(self, z: np.ndarray, n: int, *, seed: SeedLike) -> np.ndarray:
        state = np.empty(len(self.indices))
        state[list(self.indices)] = np.asarray(z, dtype=float).reshape(-1)
        return np.tile(state, (n, 1))


@runtime_checkable
class Evolve(Protocol):
    """Bursts of the fine dynamics at step ``dt`` over states with coordinate names ``coords``, at
    inverse temperature ``beta``; ``biased(bias)`` is the same dynamics with the potential ``bias``
    added (umbrella sampling). Walker i of a call draws the noise of walker ``first_walker + i`` of
    ``seed``, so walkers can be split across calls without changing the numbers."""

    dt: float
    coords: list[str]
    beta: float

    def __call__(self, x: np.ndarray, n_steps: int, *, seed: SeedLike, save_every: int = 1, first_walker: int = 0,
                 progress: bool | None = None) -> xr.DataArray: ...

    def biased(self, bias) -> Evolve:
        """The same dynamics with the potential ``bias`` added (replacing any bias held): same ``dt`` and ``beta``."""


@runtime_checkable
class Restrict(Protocol):
    """``restrict(x) -> (..., n_cv)`` with ``names`` the CVs' names."""

    names: list[str]

    def __call__(self, x): ...


def steps_for(duration: float, dt: float) -> int:
    """Number of steps of length dt in ``duration``; refuses durations that are not multiples of dt."""
    steps = round(duration / dt)
    on_grid = math.isclose(steps * dt, duration, rel_tol=1e-9, abs_tol=1e-12)
    if not (math.isfinite(duration) and duration >= 0) or not on_grid:
        raise InputError(f"duration {duration} must be a non-negative multiple of the fine step dt = {dt}")
    return steps


@dataclass
class CoarseTimeStepper:
    """Φ_τ = R ∘ E_τ ∘ L: lift ``n_walkers`` fine states at z, burst for τ, restrict each saved state."""

    lift: Lift
    evolve: Evolve
    restrict: Restrict

    def __call__(self, z, tau: float, n_walkers: int, *, seed: SeedLike, save_every: int = 1) -> xr.DataArray:
        """Restricted burst trajectories, dims ``(time, walker, cv)``; time counts from the lift."""
        z = np.atleast_1d(np.asarray(z, dtype=float))
        if z.ndim != 1 or not np.all(np.isfinite(z)):
            raise InputError(f"coarse state z must be a finite scalar or 1-D array, got {z!r}")
        n_walkers = checked_count(n_walkers, "n_walkers")
        n_steps = steps_for(tau, self.evolve.dt)
        x0 = np.asarray(self.lift(z, n_walkers, seed=child(seed, 0)), dtype=float)
        if x0.ndim != 2 or x0.shape[0] != n_walkers:
            raise InputError(f"lift returned shape {x0.shape}; expected ({n_walkers}, dim)")
        burst = self.evolve(x0, n_steps, seed=child(seed, 1), save_every=save_every)
        coarse = np.asarray(self.restrict(burst.values))
        names = self.restrict.names
        if len(names) != coarse.shape[-1]:
            raise InputError(f"the restriction names {len(names)} CVs ({names}) but returned {coarse.shape[-1]}")
        return xr.DataArray(
            coarse,
            dims=("time", "walker", "cv"),
            coords={"time": burst["time"].values - burst["time"].values[0], "cv": list(names)},
            name="z",
            attrs={"long_name": "restricted burst trajectories", "tau": float(tau), "dt": float(self.evolve.dt)},
        )
