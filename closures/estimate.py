"""Estimate a closure across a grid of collective-variable values, resumably, on any executor.

Grid point i is estimated with seed ``child(seed, i)``, so its numbers depend on the seed and on i
only — not on the executor, the number of workers, the order of completion or on whether the run
was interrupted and resumed. Workers return plain numbers; the driver writes each finished point
into the store (:mod:`closures.store`) and marks it done.
"""

from __future__ import annotations

import sys
from concurrent.futures import Executor
from pathlib import Path

import numpy as np
import xarray as xr

from eqfree.errors import InputError
from eqfree.io import check_output, output_lock, provenance
from eqfree.operators import Lift
from eqfree.parallel import run_tasks
from eqfree.seeding import SeedLike, as_seed_sequence, child

from . import store as closure_store
from .estimators import ClosureEstimator


def check_grid(grid, lift: Lift | None = None) -> np.ndarray:
    """A finite, strictly increasing 1-D grid inside the lift's ``valid_range`` (``None``: anywhere)."""
    grid = np.asarray(grid, dtype=float)
    if grid.ndim != 1 or grid.size < 1 or not np.all(np.isfinite(grid)):
        raise InputError(f"grid must be a non-empty 1-D array of finite values, got shape {grid.shape}")
    if np.any(np.diff(grid) <= 0):
        raise InputError("grid must be strictly increasing; sort it and drop repeated values")
    valid = None if lift is None else lift.valid_range
    if valid is not None:
        low, high = map(float, valid)
        outside = grid[(grid < low) | (grid > high)]
        if outside.size:
            raise InputError(
                f"grid values {outside[:5].tolist()}{' ...' if outside.size > 5 else ''} lie outside the lift's "
                f"valid range [{low:g}, {high:g}]; restrict the grid to that range or use a lift valid there"
            )
    return grid


def seed_recipe(seed: SeedLike):
    """The seed as it goes into a recipe: an int, or a SeedSequence's entropy and spawn key."""
    as_seed_sequence(seed)  # refuses None and other types
    if isinstance(seed, np.random.SeedSequence):
        return {"entropy": seed.entropy, "spawn_key": list(seed.spawn_key)}
    return int(seed)


def estimate_closure(
    estimator: ClosureEstimator,
    grid,
    *,
    seed: SeedLike,
    store: str | Path | None = None,
    overwrite: bool = False,
    executor: Executor | None = None,
    progress: bool | None = None,
    metadata: dict | None = None,
    attrs: dict | None = None,
    cv_units: str = "1",
    time_units: str = "1",
    command: list[str] | None = None,
) -> xr.Dataset:
    """Estimate ``estimator`` (a :mod:`closures.estimators` object) at every grid value.

    Parameters
    ----------
    estimator : callable ``estimator(z, seed) -> dict`` with a ``recipe`` and ``estimates_diffusion``.
    grid : increasing CV values, inside the lift's ``valid_range`` where it declares one.
    seed : int or SeedSequence; point i uses ``child(seed, i)``.
    store : zarr path, checked before anything is computed and locked while written
        (:func:`eqfree.io.output_lock`: a second writer is refused). New: the template is written first
        and each point as it finishes. Existing: resumed — only points not yet done are computed, and
        points marked done whose values were lost (a missing chunk) are computed again, with a
        :class:`~closures.store.ResumeWarning` — if it was written by the same recipe, refused otherwise
        (``overwrite=True`` starts afresh; only an eqfree store is ever replaced).
    executor : any ``concurrent.futures.Executor`` (dask: ``Client.get_executor()``); serial if None.
    progress : a progress bar; ``None``: when standard error is a terminal.
    metadata : extra recipe entries that change the results (e.g. the system's name and parameters),
        stored and compared on resume.
    attrs : extra attributes stored but not compared (e.g. the text of a recipe file).
    cv_units, time_units : CF units of the CV and of time.

    Returns the completed dataset (see :mod:`closures.store`).
    """
    grid = check_grid(grid, estimator.lift)
    parameters = {"grid": grid.tolist(), "seed": seed_recipe(seed), **estimator.recipe, "metadata": metadata or {}}
    progress = sys.stderr.isatty() if progress is None else progress
    if store is None:
        return _estimate(estimator, grid, seed, None, _template(estimator, grid, parameters, cv_units, time_units,
                                                               attrs, command), executor, progress)
    path = check_output(store, overwrite=overwrite, resume=True)
    with output_lock(path):
        if path.exists() and any(path.iterdir()) and not overwrite:
            dataset = closure_store.check_resumable(path, parameters)
        else:
            dataset = _template(estimator, grid, parameters, cv_units, time_units, attrs, command)
            closure_store.save(dataset, path, overwrite=overwrite)
        return _estimate(estimator, grid, seed, path, dataset, executor, progress)


def _template(estimator, grid, parameters, cv_units, time_units, attrs, command) -> xr.Dataset:
    names = estimator.names
    return closure_store.template(
        grid, diffusion=estimator.estimates_diffusion, cv_units=cv_units, time_units=time_units,
        cv_long_name=f"collective variable {names[0]}" if names else "collective variable",
        attrs={**provenance("eqfree averaged-drift closure", parameters, command), **(attrs or {})},
    )


def _estimate(estimator, grid, seed, path, dataset, executor, progress) -> xr.Dataset:
    """Compute the points not done, writing each into the store at ``path`` (if any) as it finishes."""
    missing = np.flatnonzero(~dataset["done"].values)
    tasks = [(grid[i], child(seed, int(i))) for i in missing]
    write = None if path is None or not missing.size else closure_store.PointWriter(path)
    for k, values in run_tasks(estimator, tasks, executor=executor, progress=progress, desc="closure"):
        i = int(missing[k])
        if write is not None:
            write(i, values)
        for name, value in values.items():
            dataset[name].values[i] = value
        dataset["done"].values[i] = True
    return dataset
