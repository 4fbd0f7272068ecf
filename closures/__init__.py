"""Averaged-drift closures across a grid of collective-variable values.

    estimator = BurstEstimator(lift, system.evolver(dt), Coordinates("x1"), tau=0.01, n_walkers=2000)
    dataset = estimate_closure(estimator, np.linspace(-1.5, 1.5, 41), seed=1, store="closure.zarr")
    closure = Closure.from_zarr("closure.zarr")
    path = integrate(closure, z0=1.0, t_span=(0, 1))

- :mod:`closures.estimators` — B(z) (and D(z)) at one z: short bursts, or the conditional average
  of a known slow drift.
- :mod:`closures.estimate` — the whole grid on any executor, resumable, seeds per grid point.
- :mod:`closures.store` — the dataset layout and its zarr store (one chunk per point, ``done`` mask).
- :mod:`closures.model` — :class:`Closure`, the interpolated B(z), D(z), refusing to extrapolate.
- :mod:`closures.integrate` — the closed ODE (solve_ivp) or SDE ensemble.
"""

from .estimate import check_grid, estimate_closure
from .estimators import BurstEstimator, ClosureEstimator, ConditionalAverageEstimator
from .integrate import integrate
from .model import Closure
from .store import load, save

__all__ = ["BurstEstimator", "ClosureEstimator", "ConditionalAverageEstimator", "Closure", "check_grid",
           "estimate_closure", "integrate", "load", "save"]
