"""Coarse time derivative from a restricted burst: a least-squares line through its healed tail.

For each walker r and CV component, the samples z_r(t_j) with t_j ∈ [t_heal, τ] are fitted by

    z_r(t) ≈ a_r + (t − t̄) b_r,    t̄ = ⟨t_j⟩,    a_r = ⟨z_r(t_j)⟩_j,
    b_r = Σ_j (t_j − t̄)(z_r(t_j) − a_r) / Σ_j (t_j − t̄)².

Centred at the anchor time t̄, the slope is a second-order estimate of dz/dt at the anchor state a_r
(the error is O(w²) in the tail width w). Walkers are independent, so any linear functional of the
lines — the slope b = ⟨b_r⟩, or an extrapolated value ⟨a_r + (t − t̄) b_r⟩ — has standard error
sd_r(·)/√R from the scatter across walkers, with no model of the time correlation inside a burst.
A deterministic burst (no ``walker`` dim) has standard error zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import xarray as xr

from ..errors import InputError, InputTypeError


@dataclass(frozen=True)
class CoarseDerivative:
    """Per-walker tail lines of one burst; arrays have shape ``(walker, cv)``."""

    anchor_time: float
    intercepts: np.ndarray
    slopes: np.ndarray
    ends: np.ndarray
    cv: tuple[str, ...]
    deterministic: bool

    @property
    def n_walkers(self) -> int:
        """R, the number of walkers (rows of ``slopes``); 1 for a deterministic burst."""
        return self.slopes.shape[0]

    @property
    def slope(self) -> np.ndarray:
        """Estimated dz/dt at the anchor, ``(cv,)``."""
        return self.slopes.mean(axis=0)

    @property
    def slope_stderr(self) -> np.ndarray:
        """Standard error sd_r(b_r)/√R of :attr:`slope`, ``(cv,)``; zeros for a deterministic burst."""
        return self._stderr(self.slopes)

    @property
    def anchor(self) -> np.ndarray:
        """The fitted state at the anchor time t̄ (the mean over the tail)."""
        return self.intercepts.mean(axis=0)

    @property
    def end(self) -> np.ndarray:
        """Replica mean of the end-of-burst state z(τ)."""
        return self.ends.mean(axis=0)

    @property
    def end_stderr(self) -> np.ndarray:
        """Standard error sd_r(z_r(τ))/√R of :attr:`end`, ``(cv,)``; zeros for a deterministic burst."""
        return self._stderr(self.ends)

    def line(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """The fitted line at burst time ``t`` (extrapolation beyond τ included) and its standard error."""
        values = self.intercepts + (t - self.anchor_time) * self.slopes
        return values.mean(axis=0), self._stderr(values)

    def _stderr(self, samples: np.ndarray) -> np.ndarray:
        if self.deterministic:
            return np.zeros(samples.shape[1])
        return samples.std(axis=0, ddof=1) / math.sqrt(samples.shape[0])


def tail_mask(times: np.ndarray, t_heal: float) -> np.ndarray:
    """Which burst times lie in the tail [t_heal, τ] (τ = the last time); at least two must."""
    tau, t_heal = float(times[-1]), float(t_heal)
    if not (math.isfinite(t_heal) and 0 <= t_heal < tau):
        raise InputError(f"t_heal = {t_heal} must satisfy 0 <= t_heal < tau = {tau}: heal for less than the burst")
    tail = times >= t_heal - 1e-9 * tau
    if tail.sum() < 2:
        raise InputError(
            f"the tail t in [t_heal, tau] = [{t_heal}, {tau}] holds fewer than 2 saved states; "
            "lower t_heal or save more often"
        )
    return tail


def coarse_derivative(burst: xr.DataArray, t_heal: float = 0.0) -> CoarseDerivative:
    """Fit the tail t ∈ [t_heal, τ] of a restricted burst, dims ``(time, walker, cv)`` or, for a
    deterministic burst, ``(time, cv)``; time counts from the lift, τ is its last value."""
    if not isinstance(burst, xr.DataArray):
        raise InputTypeError(f"burst must be an xarray.DataArray with dims (time, walker, cv) or (time, cv), "
                             f"got {type(burst)}")
    deterministic = burst.dims == ("time", "cv")
    if deterministic:
        burst = burst.expand_dims("walker", axis=1)
    elif burst.dims != ("time", "walker", "cv"):
        raise InputError(f"burst dims must be (time, walker, cv) or (time, cv), got {burst.dims}")
    elif burst.sizes["walker"] < 2:
        raise InputError(
            "a standard error needs at least 2 walkers; pass more walkers, "
            "or a deterministic burst with dims (time, cv)"
        )
    times = np.asarray(burst["time"].values, dtype=float)
    tail = tail_mask(times, t_heal)
    z = np.asarray(burst.values, dtype=float)
    if not np.all(np.isfinite(z)):
        step, walker, _ = np.argwhere(~np.isfinite(z))[0]
        raise InputError(
            f"burst is non-finite at time {times[step]:g}, walker {walker}: the fine simulation diverged; "
            "reduce its step, or check that the coarse state is within the model's range"
        )
    t = times[tail] - times[tail].mean()
    zt = z[tail]
    intercepts = zt.mean(axis=0)
    slopes = np.einsum("j,jrc->rc", t, zt - intercepts) / np.dot(t, t)
    return CoarseDerivative(
        anchor_time=float(times[tail].mean()),
        intercepts=intercepts,
        slopes=slopes,
        ends=z[-1],
        cv=tuple(str(c) for c in burst["cv"].values),
        deterministic=deterministic,
    )
