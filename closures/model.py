"""The closure model: B(z) (and D(z)) interpolated between the estimated grid points, for n = 1, 2, 3 CVs.

One CV: shape-preserving piecewise cubic (PCHIP: C¹, no overshoot, so a non-negative diffusion stays
non-negative) within each run of consecutive done points, or piecewise linear. Several CVs:
``scipy.interpolate.RegularGridInterpolator``, multilinear by default — its weights are non-negative, so the
interpolated D is a convex combination of the grid's positive semi-definite tensors and stays one — or PCHIP
along each axis in turn (on a complete grid of ≥ 4 points per CV). A periodic CV is wrapped: its grid is padded
with one period's repeat on either side. The model evaluates only inside the grid and only in cells whose
corners are done; anything else is refused, never extrapolated. A burst estimate is read with its ½τJB and
½p(JD + DJᵀ + (B·∇)D) terms removed across the grid (:func:`~closures.estimators.debiased`).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import xarray as xr
from scipy.interpolate import PchipInterpolator, RegularGridInterpolator

from eqfree.errors import InputError

from . import store as closure_store
from .estimators import debiased

INTERPOLATIONS = ("pchip", "linear")


class Closure:
    """dz = B(z) dt (+ √D(z) dW) from a closure dataset (layout: :mod:`closures.store`); ``dataset`` holds
    the estimates it interpolates (a burst estimate's, debiased).

    ``names``, ``axes`` (the grid per CV), ``periods`` (None where not periodic), ``done`` (the grid's shape),
    ``ndim`` (the number of CVs n) and ``has_diffusion`` describe it. Points z are arrays ``(..., n)``; with one
    CV also ``(...)`` — a z with ndim ≥ 2 and a last axis of size 1 is read as ``(..., 1)``, anything else as
    ``(...)``. ``interpolation``: ``"pchip"`` or ``"linear"``; default PCHIP for one CV, linear for several.
    """

    def __init__(self, dataset: xr.Dataset, *, interpolation: str | None = None):
        self.dataset = dataset = debiased(closure_store.in_layout(dataset))
        self.names, self.axes, self.periods = closure_store.grid_of(dataset)
        self.ndim = len(self.axes)
        self.interpolation = interpolation or ("pchip" if self.ndim == 1 else "linear")
        if self.interpolation not in INTERPOLATIONS:
            raise InputError(f"interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}")
        self.done = np.asarray(dataset["done"].values, dtype=bool)
        small = [f"{name} ({axis.size})" for name, axis in zip(self.names, self.axes, strict=True) if axis.size < 2]
        if small:
            raise InputError(f"a closure needs at least 2 grid points per CV to interpolate, got {', '.join(small)}")
        if self.ndim > 1 and self.interpolation == "pchip":
            if not self.done.all():
                raise InputError("PCHIP on several CVs needs every grid point done: resume the estimation, or use "
                                 "interpolation='linear'")
            if min(axis.size for axis in self.axes) < 4:
                raise InputError("PCHIP on several CVs needs at least 4 grid points per CV; use interpolation='linear'")
        self.has_diffusion = "diffusion" in dataset.data_vars
        self._drift = self.interpolator(dataset["drift"].values, self.interpolation)
        self._diffusion = (self.interpolator(dataset["diffusion"].values, self.interpolation) if self.has_diffusion
                           else None)

    @classmethod
    def from_zarr(cls, path: str | Path, **options) -> Closure:
        """The closure of the store at ``path`` (``options`` as for the constructor)."""
        return cls(closure_store.load(path), **options)

    # -- interpolation ------------------------------------------------------------------------------------
    def interpolator(self, values, method: str = "linear"):
        """``f(points) -> (m, ...)``: ``values`` ``(*shape, ...)``, given at the grid points, interpolated as the
        closure interpolates (``method`` ``"linear"`` or ``"pchip"``) at ``points`` ``(m, n)`` that :meth:`check`
        accepted (periodic coordinates wrapped). Values at points not done are never used."""
        values = np.where(self.done.reshape(self.done.shape + (1,) * (np.ndim(values) - self.ndim)),
                          np.nan_to_num(np.asarray(values, dtype=float)), 0.0)
        axes, values, done = closure_store.periodic_padding(self.axes, self.periods, values, self.done)
        if self.ndim > 1:
            interpolant = RegularGridInterpolator(tuple(axes), values, method=method, bounds_error=False,
                                                  fill_value=None)
            return lambda points: interpolant(points)
        # one CV: piecewise linear everywhere, PCHIP within each run of consecutive done points; check()
        # keeps evaluations off intervals that touch a point not done
        grid, trailing = axes[0], values.shape[1:]
        columns = values.reshape(grid.size, -1)
        runs = [run[done[run]] for run in np.split(np.arange(grid.size), np.flatnonzero(~done))]
        splines = [] if method == "linear" else [
            (grid[run[0]], grid[run[-1]], PchipInterpolator(grid[run], columns[run])) for run in runs if run.size > 2
        ]

        def evaluate(points):
            z = points[:, 0]
            out = np.stack([np.interp(z, grid, column) for column in columns.T], axis=-1)
            for low, high, spline in splines:
                inside = (z >= low) & (z <= high)
                out[inside] = spline(z[inside])
            return out.reshape(z.size, *trailing)

        return evaluate

    def hats(self, points) -> tuple[np.ndarray, np.ndarray]:
        """The multilinear hat functions of the grid at ``points`` ``(m, n)`` that :meth:`check` accepted:
        ``(index, weight)``, each ``(m, 2ⁿ)``, the C-order flat indices of the corners of each point's cell and
        φ_i there (non-negative, summing to 1; a periodic axis's last cell closes on its first point), so a field
        f given at the grid points is Σ_c weight[:, c] f[index[:, c]] between them."""
        points = np.asarray(points, dtype=float).reshape(-1, self.ndim)
        lows, highs, fractions = [], [], []
        for k, (axis, period) in enumerate(zip(self.axes, self.periods, strict=True)):
            c = points[:, k] if period is None else axis[0] + np.mod(points[:, k] - axis[0], period)
            last = axis.size - 1 if period is not None else axis.size - 2
            low = np.clip(np.searchsorted(axis, c, side="right") - 1, 0, last)
            ends = np.r_[axis[1:], axis[0] + period] if period is not None else axis[1:]
            lows.append(low)
            highs.append((low + 1) % axis.size)
            fractions.append((c - axis[low]) / (ends[low] - axis[low]))
        index, weight = [], []
        for corner in itertools.product((False, True), repeat=self.ndim):
            where = tuple(np.where(up, high, low) for up, low, high in zip(corner, lows, highs, strict=True))
            index.append(np.ravel_multi_index(where, self.done.shape))
            weight.append(np.prod([np.where(up, f, 1 - f) for up, f in zip(corner, fractions, strict=True)], axis=0))
        return np.stack(index, axis=1), np.stack(weight, axis=1)

    # -- evaluation ---------------------------------------------------------------------------------------
    def _vector_style(self, z: np.ndarray) -> bool:
        return self.ndim > 1 or (z.ndim >= 2 and z.shape[-1] == 1)

    def check(self, z) -> np.ndarray:
        """``z`` as a float array (periodic coordinates wrapped into [first grid value, + period)), or an
        InputError if a point is outside the grid or in a cell touching a grid point not done."""
        z = np.array(z, dtype=float)
        if not np.all(np.isfinite(z)):
            raise InputError("closure evaluated at a non-finite z")
        if self.ndim > 1 and (z.ndim == 0 or z.shape[-1] != self.ndim):
            raise InputError(f"a point of this closure has {self.ndim} coordinates ({', '.join(self.names)}), "
                             f"got an array of shape {z.shape}")
        points = z.reshape(-1, self.ndim)
        lefts, rights, exact = [], [], []
        for k, (axis, period) in enumerate(zip(self.axes, self.periods, strict=True)):
            c = points[:, k]
            if period is not None:
                c[:] = axis[0] + np.mod(c - axis[0], period)
            else:
                outside = c[(c < axis[0]) | (c > axis[-1])]
                if outside.size:
                    where = f"z = {outside[0]:g}" if self.ndim == 1 else f"{self.names[k]} = {outside[0]:g}"
                    raise InputError(
                        f"{where} is outside the closure's grid [{axis[0]:g}, {axis[-1]:g}]; estimate the closure "
                        "on a wider grid (closures never extrapolate)"
                    )
            left = np.clip(np.searchsorted(axis, c, side="right") - 1, 0, axis.size - 1)
            lefts.append(left)
            rights.append((left + 1) % axis.size if period is not None else np.minimum(left + 1, axis.size - 1))
            exact.append(axis[left] == c)
        usable = np.ones(points.shape[0], dtype=bool)
        for corner in itertools.product((False, True), repeat=self.ndim):
            index = tuple(np.where(up & ~same, right, left)
                          for up, left, right, same in zip(corner, lefts, rights, exact, strict=True))
            usable &= self.done[index]
        if not np.all(usable):
            bad = points[np.flatnonzero(~usable)[0]]
            missing = closure_store.points_of(self.dataset, np.flatnonzero(~self.done.reshape(-1))[:5])
            where = f"z = {bad[0]:g}" if self.ndim == 1 else f"z = ({', '.join(f'{v:g}' for v in bad)})"
            raise InputError(f"the closure is not estimated around {where} (grid points not done: {missing}); "
                             "resume the estimation to complete the store")
        return z

    def drift(self, z) -> np.ndarray:
        """B(z): ``(..., n)`` for z ``(..., n)``; with one CV and z ``(...)``, ``(...)``."""
        z = self.check(z)
        return self._drift(z.reshape(-1, self.ndim)).reshape(z.shape)

    def diffusion(self, z) -> np.ndarray:
        """D(z): ``(..., n, n)`` for z ``(..., n)``; with one CV and z ``(...)``, ``(...)``. Only for closures
        estimated with a diffusion (bursts)."""
        if not self.has_diffusion:
            raise InputError("this closure has no diffusion (its estimator gives the drift only); "
                             "estimate it with BurstEstimator to integrate the SDE")
        z = self.check(z)
        values = self._diffusion(z.reshape(-1, self.ndim))
        return values.reshape((*z.shape, self.ndim) if self._vector_style(z) else z.shape)

    def __repr__(self) -> str:
        extent = " × ".join(f"[{axis[0]:g}, {axis[-1]:g}]" for axis in self.axes)
        size = "×".join(str(axis.size) for axis in self.axes)
        return (f"Closure({size} points on {extent}, {int(self.done.sum())} done, "
                f"diffusion={'yes' if self.has_diffusion else 'no'})")
