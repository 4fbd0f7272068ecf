"""Averaged-drift closures across a grid of values of one, two or three collective variables.

    estimator = BurstEstimator(lift, system.evolver(dt), Coordinates("x1"), tau=0.01, n_walkers=2000)
    dataset = estimate_closure(estimator, np.linspace(-1.5, 1.5, 41), seed=1, store="closure.zarr")
    closure = Closure.from_zarr("closure.zarr")
    path = integrate(closure, z0=1.0, t_span=(0, 1))
    # two CVs: one grid per CV, the drift a vector and the diffusion a tensor at each point of their product
    # estimate_closure(BurstEstimator(..., Coordinates(["x1", "x2"]), ...), [grid1, grid2], seed=1)
    band = mean_path(closure, z0=1.0, t_span=(0, 1), seed=2)   # mean path with its error band
    passage(closure, -1.0, Box((0.5,), (1.5,)), seed=3)       # MFPT and rate with standard errors

- :mod:`closures.estimators` — B(z) (and D(z)) at one z: short bursts, or the conditional average
  of a known slow drift; :func:`debiased` removes the bursts' ½τJB and ½p(JD + DJᵀ + (B·∇)D) across the grid.
- :mod:`closures.estimate` — the whole (product) grid on any executor, resumable, seeds per grid point.
- :mod:`closures.store` — the dataset layout (a dimension per CV, ``component``, ``row``, ``column``) and its
  zarr store (one chunk per point, ``done`` mask).
- :mod:`closures.model` — :class:`Closure`, the interpolated (debiased) B(z), D(z), periodic CVs wrapped,
  refusing to extrapolate.
- :mod:`closures.integrate` — the closed ODE (solve_ivp) or SDE ensemble, and the mean path with the
  band of the closure's uncertainty and the SDE's noise.
- :mod:`closures.kinetics` — mean first-passage times, rates and committors of the closed SDE (backward
  Kolmogorov equation: quadrature in 1-D, finite volumes with scipy.sparse on n-D grids), with standard errors.
"""

from .estimate import check_grid, estimate_closure
from .estimators import BurstEstimator, ClosureEstimator, ConditionalAverageEstimator, debiased
from .integrate import integrate, mean_path
from .kinetics import (
    Box,
    closure_draws,
    committor,
    first_passage_time,
    grid_committor,
    grid_generator,
    grid_mfpt,
    grid_stationary,
    kinetics_axes,
    parse_point,
    passage,
    simulated_passages,
    stationary_density,
)
from .model import Closure
from .store import ResumeWarning, load, save

__all__ = ["Box", "BurstEstimator", "ClosureEstimator", "ConditionalAverageEstimator", "Closure", "ResumeWarning",
           "check_grid", "closure_draws", "committor", "debiased", "estimate_closure", "first_passage_time",
           "grid_committor", "grid_generator", "grid_mfpt", "grid_stationary", "integrate", "kinetics_axes", "load",
           "mean_path", "parse_point", "passage", "save", "simulated_passages", "stationary_density"]
