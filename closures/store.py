"""Closure datasets and their zarr stores: one chunk per grid point, a ``done`` mask, the recipe in attrs.

A closure on n collective variables (n = 1, 2, 3) lives on a regular grid, one dimension per CV named after it
(the restriction's names, ``x1``, ``x2``, ...; ``z1``, ``z2``, ... for an estimator without names), whose
coordinate holds the grid values (attrs ``long_name``, ``units``; a periodic CV also ``period``, its grid
omitting the repeated end). With ``component``, ``row`` and ``column`` of size n, labelled by the CV names:

    drift, drift_stderr           (*cvs, component)       the drift vector B(z)
    diffusion, diffusion_stderr   (*cvs, row, column)     the diffusion tensor D(z) of dz = B dt + √D dW (bursts)
    n_samples, done               (*cvs)

A grid point is numbered by its C-order flat index. Points not yet computed hold NaN (counts 0) and
``done = False``; nothing reads them as numbers without checking ``done``. A 1-D closure is the n = 1 case.
Stores written before the n-D layout (one CV on a dimension ``cv``, scalar estimates) are read by :func:`load`
converted to it: the dimension takes the CV's name, the estimates a ``component`` (and ``row``, ``column``) of size 1.

The driver writes the template once, then each finished point into its own chunks, ``done``
last, so an interrupted run leaves only whole points marked done. The recipe (estimator,
operators, grid, seed) is stored as the provenance parameters; a rerun resumes only into a store
with the same recipe.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import xarray as xr
import zarr

from eqfree.errors import InputError
from eqfree.io import open_zarr, parameters_of, write_zarr

ESTIMATES = ("drift", "drift_stderr", "diffusion", "diffusion_stderr")
#: the dimensions of a vector's components and of a tensor's entries
COMPONENT, ROW, COLUMN = "component", "row", "column"


def _rate(unit: str, time_units: str) -> str:
    if time_units == "1":
        return unit
    return f"{time_units}-1" if unit == "1" else f"{unit} {time_units}-1"


def as_axes(grid) -> list[np.ndarray]:
    """The grid per CV: a list (or tuple) of 1-D arrays, one per CV; any other array-like is one CV's grid."""
    if isinstance(grid, (list, tuple)) and grid and all(np.ndim(axis) == 1 for axis in grid):
        return [np.asarray(axis, dtype=float) for axis in grid]
    return [np.asarray(grid, dtype=float)]


def template(grid, *, diffusion: bool, names: list[str] | None = None, periods: list[float | None] | None = None,
             cv_units: str = "1", time_units: str = "1", attrs: dict | None = None) -> xr.Dataset:
    """An empty closure dataset on ``grid`` (one 1-D array, or one per CV; NaN estimates, zero counts, nothing
    done); ``names`` default to ``z1, z2, ...``, ``periods`` (None for a CV that is not periodic) to none."""
    axes = as_axes(grid)
    n = len(axes)
    names = [f"z{i + 1}" for i in range(n)] if names is None else list(names)
    periods = [None] * n if periods is None else list(periods)
    if len(names) != n or len(periods) != n:
        raise InputError(f"the grid has {n} axes but {len(names)} CV names and {len(periods)} periods were given: "
                         "give one name and one period (None if not periodic) per axis")
    shape = tuple(axis.size for axis in axes)
    squared = "1" if cv_units == "1" else f"{cv_units}2"
    meta = {
        "drift": ("averaged drift B(z)", _rate(cv_units, time_units)),
        "drift_stderr": ("standard error of the averaged drift", _rate(cv_units, time_units)),
        "diffusion": ("diffusion D(z) of dz = B dt + sqrt(D) dW", _rate(squared, time_units)),
        "diffusion_stderr": ("standard error of the diffusion", _rate(squared, time_units)),
    }
    variables = {}
    for name in ESTIMATES if diffusion else ESTIMATES[:2]:
        dims = (*names, COMPONENT) if name.startswith("drift") else (*names, ROW, COLUMN)
        size = shape + (n,) * (len(dims) - n)
        variables[name] = (dims, np.full(size, np.nan), {"long_name": meta[name][0], "units": meta[name][1]})
    variables["n_samples"] = (names, np.zeros(shape, dtype=np.int64),
                              {"long_name": "independent samples per grid point", "units": "1"})
    variables["done"] = (names, np.zeros(shape, dtype=bool), {"long_name": "grid point computed"})
    coords = {}
    for name, axis, period in zip(names, axes, periods, strict=True):
        coords[name] = (name, axis, {"long_name": f"collective variable {name}", "units": cv_units,
                                     **({} if period is None else {"period": float(period)})})
    for dim in (COMPONENT, ROW, COLUMN):  # as zarr reads strings back
        coords[dim] = (dim, np.array(names, dtype=np.dtypes.StringDType()))
    return xr.Dataset(variables, coords=coords, attrs=dict(attrs or {}))


def grid_of(dataset: xr.Dataset) -> tuple[list[str], list[np.ndarray], list[float | None]]:
    """The CV names, the grid per CV and the periods (None where not periodic) of a closure dataset."""
    names = list(dataset["done"].dims)
    axes = [np.asarray(dataset[name].values, dtype=float) for name in names]
    periods = [dataset[name].attrs.get("period") for name in names]
    return names, axes, [None if p is None else float(p) for p in periods]


def periodic_padding(axes, periods, *arrays) -> tuple:
    """``(axes, *arrays)`` with each periodic axis extended by one period's repeat on either side (the grid point
    before its first and after its last), ``arrays`` ``(*shape, ...)``: what interpolation across the seam needs."""
    axes, arrays = list(axes), list(arrays)
    for k, period in enumerate(periods):
        if period is not None:
            axis = axes[k]
            wrap = np.r_[axis.size - 1, np.arange(axis.size), 0]
            axes[k] = np.r_[axis[-1] - period, axis, axis[0] + period]
            arrays = [np.take(array, wrap, axis=k) for array in arrays]
    return (axes, *arrays)


def points_of(dataset: xr.Dataset, flat) -> list:
    """The coordinates of the grid points with C-order flat indices ``flat``: values for one CV, lists for several."""
    _, axes, _ = grid_of(dataset)
    index = np.unravel_index(np.asarray(flat, dtype=int), tuple(axis.size for axis in axes))
    points = np.stack([axis[i] for axis, i in zip(axes, index, strict=True)], axis=-1)
    return points[:, 0].tolist() if len(axes) == 1 else points.tolist()


def in_layout(dataset: xr.Dataset, source: str = "the dataset") -> xr.Dataset:
    """``dataset`` in the layout of the module doc: a store from before the n-D layout converted, anything else
    that is not a closure refused."""
    if "cv" in dataset.dims and "drift" in dataset.data_vars and dataset["drift"].dims == ("cv",):
        name = dataset["cv"].attrs.get("long_name", "").removeprefix("collective variable").strip() or "z1"
        dataset = dataset.rename({"cv": name})
        for variable in ESTIMATES:
            if variable in dataset:
                new = ({COMPONENT: [name]} if variable.startswith("drift") else {ROW: [name], COLUMN: [name]})
                dataset[variable] = dataset[variable].expand_dims(new, axis=[-1] if len(new) == 1 else [-2, -1])
    if not {"drift", "done"} <= set(dataset.data_vars) or dataset["drift"].dims != (*dataset["done"].dims, COMPONENT):
        raise InputError(f"{source} is not a closure store (it needs 'drift' on its CVs' dimensions and "
                         "'component', and 'done' on the CVs'; see eqfree.closures.store)")
    return dataset


def save(dataset: xr.Dataset, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write a closure dataset as a zarr v3 store with one chunk per grid point."""
    dataset = dataset.copy()
    cvs = set(dataset["done"].dims)
    for name, variable in dataset.variables.items():
        variable.encoding = ({"chunks": tuple(1 if dim in cvs else size for dim, size in variable.sizes.items())}
                             if name in dataset.data_vars else {})
    return write_zarr(dataset, path, overwrite=overwrite)


def load(path: str | Path) -> xr.Dataset:
    """Read a closure store into memory (a store from before the n-D layout converted to it)."""
    return in_layout(open_zarr(path).load(), str(path))


class PointWriter:
    """Writes finished grid points into an existing closure store, each into its own chunks."""

    def __init__(self, path: str | Path):
        group = zarr.open_group(str(path), mode="r+", zarr_format=3)
        self.arrays = {name: group[name] for name in group.array_keys()}
        self.shape = self.arrays["done"].shape

    def __call__(self, index: int, values: dict) -> None:
        """Write point ``index`` (C-order flat); ``done`` goes last, so a crash never marks a half-written point."""
        point = tuple(int(i) for i in np.unravel_index(index, self.shape))
        for name, value in values.items():  # (n,) and (n, n) into a store of either layout (one CV: (1,) or ())
            self.arrays[name][point] = np.reshape(value, self.arrays[name].shape[len(point):])
        self.arrays["done"][point] = True


def recipe_differences(stored: dict, wanted: dict, prefix: str = "") -> list[str]:
    """``key: stored → wanted`` for every recipe entry that differs, in full (``a.b`` for entries of entries)."""
    wanted = json.loads(json.dumps(wanted, sort_keys=True, default=str))  # as it would be stored
    differences = []
    for key in sorted(set(stored) | set(wanted)):
        old, new = stored.get(key, "(absent)"), wanted.get(key, "(absent)")
        if isinstance(old, dict) and isinstance(new, dict):
            differences += recipe_differences(old, new, f"{prefix}{key}.")
        elif old != new:
            differences.append(f"{prefix}{key}: {_text(old)} → {_text(new)}")
    return differences


def _text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def check_resumable(path: str | Path, parameters: dict) -> xr.Dataset:
    """The store at ``path`` if it was written by the same recipe (else an InputError showing every difference),
    with ``done`` cleared at the points whose values are missing or not finite (a lost chunk), which are then
    computed again; a :class:`ResumeWarning` names them."""
    dataset = load(path)
    differences = recipe_differences(parameters_of(dataset.attrs), parameters)
    if differences:
        raise InputError(
            f"{path} was written by a different recipe, so it cannot be resumed; differences (stored → now): "
            + "; ".join(differences) + ". Use another store, or overwrite=True (CLI: --overwrite) to start afresh"
        )
    done = dataset["done"].values
    finite = np.all([np.isfinite(dataset[name].values).reshape(done.size, -1).all(axis=1)
                     for name in ESTIMATES if name in dataset], axis=0)
    lost = np.flatnonzero(done.reshape(-1) & ~finite)
    if lost.size:
        warnings.warn(f"{path}: {lost.size} grid point(s) marked done have missing or non-finite values "
                      f"(cv = {points_of(dataset, lost)}); computing them again", ResumeWarning, stacklevel=3)
        done[np.unravel_index(lost, done.shape)] = False
    return dataset


class ResumeWarning(UserWarning):
    """A resumed store held points marked done whose values were lost; they are computed again."""
