"""The closure model: B(z) (and D(z)) interpolated between the estimated grid points.

Interpolation is shape-preserving piecewise cubic (PCHIP: C¹, no overshoot, so a non-negative
diffusion stays non-negative) or piecewise linear. The model evaluates only inside the grid and
only on intervals whose end points are done; anything else is refused, never extrapolated. A burst
estimate is read with its ½τB'B and p(B'D + ½BD') terms removed across the grid
(:func:`~closures.estimators.debiased`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr
from scipy.interpolate import PchipInterpolator

from eqfree.errors import InputError

from . import store as closure_store
from .estimators import debiased

INTERPOLATIONS = ("pchip", "linear")


class Closure:
    """dz/dt = B(z) (+ √D(z) dW) from a closure dataset; see :mod:`closures.store` for its layout.
    ``dataset`` holds the estimates it interpolates (a burst estimate's, debiased)."""

    def __init__(self, dataset: xr.Dataset, *, interpolation: str = "pchip"):
        if interpolation not in INTERPOLATIONS:
            raise InputError(f"interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}")
        if "cv" not in dataset.dims or not {"drift", "done"} <= set(dataset.data_vars):
            raise InputError("a closure dataset needs 'drift' and 'done' on a 'cv' dimension (see closures.store)")
        self.dataset = dataset = debiased(dataset)
        self.interpolation = interpolation
        self.grid = np.asarray(dataset["cv"].values, dtype=float)
        self.done = np.asarray(dataset["done"].values, dtype=bool)
        if self.grid.size < 2:
            raise InputError(f"a closure needs at least 2 grid points to interpolate, got {self.grid.size}")
        self.has_diffusion = "diffusion" in dataset.data_vars
        self._drift = self._interpolant(dataset["drift"].values)
        self._diffusion = self._interpolant(dataset["diffusion"].values) if self.has_diffusion else None

    @classmethod
    def from_zarr(cls, path: str | Path, **options) -> Closure:
        """The closure of the store at ``path`` (``options`` as for the constructor)."""
        return cls(closure_store.load(path), **options)

    def _interpolant(self, values):
        # piecewise linear everywhere, PCHIP within each run of consecutive done points; check()
        # keeps evaluations off intervals that touch a point not done
        values = np.where(self.done, np.asarray(values, dtype=float), 0.0)
        runs = [run[self.done[run]] for run in np.split(np.arange(self.grid.size), np.flatnonzero(~self.done))]
        splines = [] if self.interpolation == "linear" else [
            (self.grid[run[0]], self.grid[run[-1]], PchipInterpolator(self.grid[run], values[run]))
            for run in runs if run.size > 2
        ]

        def evaluate(z):
            out = np.interp(z, self.grid, values)
            for low, high, spline in splines:
                inside = (z >= low) & (z <= high)
                out[inside] = spline(z[inside])
            return out

        return evaluate

    def check(self, z) -> np.ndarray:
        """``z`` as a float array, or a ValueError if any value is outside the grid or between points not done."""
        z = np.asarray(z, dtype=float)
        if not np.all(np.isfinite(z)):
            raise InputError("closure evaluated at a non-finite z")
        low, high = self.grid[0], self.grid[-1]
        outside = z[(z < low) | (z > high)]
        if outside.size:
            raise InputError(
                f"z = {outside.flat[0]:g} is outside the closure's grid [{low:g}, {high:g}]; "
                "estimate the closure on a wider grid (closures never extrapolate)"
            )
        left = np.clip(np.searchsorted(self.grid, z, side="right") - 1, 0, self.grid.size - 1)
        right = np.minimum(left + 1, self.grid.size - 1)
        usable = self.done[left] & ((self.grid[left] == z) | self.done[right])
        if not np.all(usable):
            bad = z[~usable].flat[0]
            raise InputError(
                f"the closure is not estimated around z = {bad:g} (grid points not done: "
                f"{self.grid[~self.done][:5].tolist()}); resume the estimation to complete the store"
            )
        return z

    def drift(self, z) -> np.ndarray:
        """B(z), same shape as ``z``."""
        z = self.check(z)
        return self._drift(z.reshape(-1)).reshape(z.shape)

    def diffusion(self, z) -> np.ndarray:
        """D(z) ≥ 0, same shape as ``z``; only for closures estimated with a diffusion (bursts)."""
        if not self.has_diffusion:
            raise InputError("this closure has no diffusion (its estimator gives the drift only); "
                             "estimate it with BurstEstimator to integrate the SDE")
        z = self.check(z)
        return self._diffusion(z.reshape(-1)).reshape(z.shape)

    def __repr__(self) -> str:
        return (f"Closure({self.grid.size} points on [{self.grid[0]:g}, {self.grid[-1]:g}], "
                f"{int(self.done.sum())} done, diffusion={'yes' if self.has_diffusion else 'no'})")
