"""Estimate a closure across a grid of collective-variable values, resumably, on any executor.

The grid is the product of one grid per CV; the point of C-order flat index i is estimated with seed
``child(seed, i)`` (one CV: i is the grid index), so its numbers depend on the seed and on i only — not on
the executor, the number of workers, the order of completion or on whether the run was interrupted and
resumed. Workers return plain numbers; the driver writes each finished point into the store
(:mod:`closures.store`) and marks it done.
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


def check_grid(grid, lift: Lift | None = None, periods: list[float | None] | None = None) -> list[np.ndarray]:
    """The grid per CV (a 1-D array for one CV, or a list of them, :func:`~closures.store.as_axes`): each finite
    and strictly increasing, a periodic one (``periods[i]`` not None) spanning less than its period (its grid
    omits the repeated end), and inside the lift's ``valid_range`` (one CV: (low, high); several: one pair per CV,
    a box; ``None``: anywhere)."""
    axes = closure_store.as_axes(grid)
    periods = [None] * len(axes) if periods is None else list(periods)
    if len(periods) != len(axes):
        raise InputError(f"the grid has {len(axes)} axes but {len(periods)} periods were given: one per CV")
    valid = None if lift is None or lift.valid_range is None else np.asarray(lift.valid_range, dtype=float)
    if valid is not None and valid.shape not in {(2,), (len(axes), 2)}:
        raise InputError(f"the lift's valid_range {lift.valid_range} is not (low, high) nor one such pair per CV of "
                         f"the {len(axes)}")
    boxes = [None] * len(axes) if valid is None else np.broadcast_to(valid, (len(axes), 2))
    for i, (axis, period, box) in enumerate(zip(axes, periods, boxes, strict=True)):
        which = "grid" if len(axes) == 1 else f"the grid of CV {i + 1}"
        if axis.ndim != 1 or axis.size < 1 or not np.all(np.isfinite(axis)):
            raise InputError(f"{which} must be a non-empty 1-D array of finite values, got shape {axis.shape}")
        if np.any(np.diff(axis) <= 0):
            raise InputError(f"{which} must be strictly increasing; sort it and drop repeated values")
        if period is not None and not axis[-1] - axis[0] < period:
            raise InputError(f"{which} spans {axis[-1] - axis[0]:g}, not less than its period {period:g}: a periodic "
                             "grid omits the repeated end")
        if box is not None:
            low, high = map(float, box)
            outside = axis[(axis < low) | (axis > high)]
            if outside.size:
                raise InputError(
                    f"{which} values {outside[:5].tolist()}{' ...' if outside.size > 5 else ''} lie outside the "
                    f"lift's valid range [{low:g}, {high:g}]; restrict the grid to that range or use a lift valid there"
                )
    return axes


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
    """Estimate ``estimator`` (a :mod:`closures.estimators` object) at every point of the grid.

    Parameters
    ----------
    estimator : callable ``estimator(z, seed) -> dict`` with a ``recipe``, ``names``, ``periods`` and
        ``estimates_diffusion``.
    grid : one CV's increasing values (a 1-D array), or a list of them, one per CV in the estimator's order: the
        product grid, inside the lift's ``valid_range`` where it declares one (:func:`check_grid`).
    seed : int or SeedSequence; the point of C-order flat index i uses ``child(seed, i)`` (with one CV, i is
        the grid index).
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
    cv_units, time_units : CF units of the CVs and of time.

    Returns the completed dataset (see :mod:`closures.store`).
    """
    n = len(closure_store.as_axes(grid))
    names = list(estimator.names) or [f"z{i + 1}" for i in range(n)]
    if len(names) != n:
        raise InputError(f"the estimator has {len(names)} CVs ({', '.join(names)}) but the grid gives {n} axes: "
                         "give one grid per CV, in order")
    periods = estimator.periods
    axes = check_grid(grid, estimator.lift, periods)
    recipe_grid = axes[0].tolist() if len(axes) == 1 else [axis.tolist() for axis in axes]
    parameters = {"grid": recipe_grid, "seed": seed_recipe(seed), **estimator.recipe, "metadata": metadata or {}}
    progress = sys.stderr.isatty() if progress is None else progress
    empty = closure_store.template(
        axes, diffusion=estimator.estimates_diffusion, names=names, periods=periods, cv_units=cv_units,
        time_units=time_units,
        attrs={**provenance("eqfree averaged-drift closure", parameters, command), **(attrs or {})})
    if store is None:
        return _estimate(estimator, axes, seed, None, empty, executor, progress)
    path = check_output(store, overwrite=overwrite, resume=True)
    with output_lock(path):
        if path.exists() and any(path.iterdir()) and not overwrite:
            dataset = closure_store.check_resumable(path, parameters)
        else:
            dataset = empty
            closure_store.save(dataset, path, overwrite=overwrite)
        return _estimate(estimator, axes, seed, path, dataset, executor, progress)


def _estimate(estimator, axes, seed, path, dataset, executor, progress) -> xr.Dataset:
    """Compute the points not done, writing each into the store at ``path`` (if any) as it finishes."""
    shape = tuple(axis.size for axis in axes)
    missing = np.flatnonzero(~dataset["done"].values.reshape(-1))
    points = [tuple(int(j) for j in np.unravel_index(i, shape)) for i in missing]
    coordinates = [np.array([a[j] for a, j in zip(axes, point, strict=True)]) for point in points]
    tasks = [(z, child(seed, int(i))) for z, i in zip(coordinates, missing, strict=True)]
    write = None if path is None or not missing.size else closure_store.PointWriter(path)
    for k, values in run_tasks(estimator, tasks, executor=executor, progress=progress, desc="closure"):
        if write is not None:
            write(int(missing[k]), values)
        for name, value in values.items():
            dataset[name].values[points[k]] = value
        dataset["done"].values[points[k]] = True
    return dataset
