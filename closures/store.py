"""Closure datasets and their zarr stores: one chunk per grid point, a ``done`` mask, the recipe in attrs.

A closure dataset lives on the dimension ``cv`` (the grid of collective-variable values) and holds
``drift``, ``drift_stderr``, ``n_samples`` and ``done`` — plus ``diffusion`` and
``diffusion_stderr`` when the estimator gives them. Points not yet computed hold NaN (counts 0)
and ``done = False``; nothing reads them as numbers without checking ``done``.

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


def _rate(unit: str, time_units: str) -> str:
    if time_units == "1":
        return unit
    return f"{time_units}-1" if unit == "1" else f"{unit} {time_units}-1"


def template(grid, *, diffusion: bool, cv_long_name: str = "collective variable", cv_units: str = "1",
             time_units: str = "1", attrs: dict | None = None) -> xr.Dataset:
    """An empty closure dataset on ``grid`` (NaN estimates, zero counts, nothing done)."""
    grid = np.asarray(grid, dtype=float)
    squared = "1" if cv_units == "1" else f"{cv_units}2"
    meta = {
        "drift": ("averaged drift B(z)", _rate(cv_units, time_units)),
        "drift_stderr": ("standard error of the averaged drift", _rate(cv_units, time_units)),
        "diffusion": ("diffusion D(z) of dz = B dt + sqrt(D) dW", _rate(squared, time_units)),
        "diffusion_stderr": ("standard error of the diffusion", _rate(squared, time_units)),
    }
    names = ESTIMATES if diffusion else ESTIMATES[:2]
    variables = {name: ("cv", np.full(grid.size, np.nan), {"long_name": meta[name][0], "units": meta[name][1]})
                 for name in names}
    variables["n_samples"] = ("cv", np.zeros(grid.size, dtype=np.int64),
                              {"long_name": "independent samples per grid point", "units": "1"})
    variables["done"] = ("cv", np.zeros(grid.size, dtype=bool), {"long_name": "grid point computed"})
    return xr.Dataset(variables, coords={"cv": ("cv", grid, {"long_name": cv_long_name, "units": cv_units})},
                      attrs=dict(attrs or {}))


def save(dataset: xr.Dataset, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write a closure dataset as a zarr v3 store with one chunk per grid point."""
    dataset = dataset.copy()
    for name, variable in dataset.variables.items():
        variable.encoding = {"chunks": (1,)} if name in dataset.data_vars else {}
    return write_zarr(dataset, path, overwrite=overwrite)


def load(path: str | Path) -> xr.Dataset:
    """Read a closure store into memory."""
    dataset = open_zarr(path).load()
    if "cv" not in dataset.dims or not {"drift", "done"} <= set(dataset.data_vars):
        raise InputError(f"{path} is not a closure store (it needs 'drift' and 'done' on a 'cv' dimension)")
    return dataset


class PointWriter:
    """Writes finished grid points into an existing closure store, each into its own chunks."""

    def __init__(self, path: str | Path):
        group = zarr.open_group(str(path), mode="r+", zarr_format=3)
        self.arrays = {name: group[name] for name in group.array_keys()}

    def __call__(self, index: int, values: dict) -> None:
        """Write point ``index``; ``done`` goes last, so a crash never marks a half-written point."""
        for name, value in values.items():
            self.arrays[name][index] = value
        self.arrays["done"][index] = True


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
    names = [name for name in ESTIMATES if name in dataset]
    finite = np.all([np.isfinite(dataset[name].values) for name in names], axis=0)
    lost = np.flatnonzero(dataset["done"].values & ~finite)
    if lost.size:
        warnings.warn(f"{path}: {lost.size} grid point(s) marked done have missing or non-finite values "
                      f"(cv = {dataset.cv.values[lost].tolist()}); computing them again", ResumeWarning, stacklevel=3)
        dataset["done"].values[lost] = False
    return dataset


class ResumeWarning(UserWarning):
    """A resumed store held points marked done whose values were lost; they are computed again."""
