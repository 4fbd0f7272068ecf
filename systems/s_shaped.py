"""A fast–slow system whose averaged drift is S-shaped in the parameter: two folds and hysteresis.

    dx1 = (λ + a x1 − x2³) dt,    dx2 = −ε⁻¹ (x2 − x1) dt + √(2 s²/ε) dW

In the fast limit x2 | x1 ~ N(x1, v) with v = s² (or the scheme's invariant variance at step dt),
so the averaging principle gives dx1/dt = B(x1) = λ + c x1 − x1³ with c = a − 3v. Steady states lie
on λ = x³ − c x; with c > 0 the curve has two folds at x = ∓√(c/3), λ = ±(2c/3)√(c/3), the middle
branch between them unstable (B′ = c − 3x² > 0). At the defaults (a, s) = (1.5, 0.25), c = 1.3125:
folds at x = ∓0.6614, λ = ±0.5787. The default step is ε/10.
"""

from __future__ import annotations

import numpy as np
import torch

from eqfree.errors import InputError

from .base import System, columns, ou_variance
from .gaussian import LinearGaussianLift


class SShaped(System):
    """dx1 = (λ + a x1 − x2³) dt, dx2 = −ε⁻¹ (x2 − x1) dt + √(2 s²/ε) dW (module doc); parameters ``eps`` = ε,
    ``s``, ``a``, ``lam`` = λ; S-shaped averaged drift B(x1) = λ + (a − 3 s²) x1 − x1³ with two folds.
    """

    name = "s_shaped"
    dim = 2
    slow = ("x1",)
    defaults = {"eps": 1e-3, "s": 0.25, "a": 1.5, "lam": 0.0}
    default_dt = 1e-4
    summary = "slow dx1 = (lam + a x1 - x2^3) dt, fast OU x2 around x1; S-shaped B, folds at lam = +-0.5787"

    def __init__(self, **params):
        super().__init__(**params)
        if self.eps <= 0 or self.s < 0:
            raise InputError(f"s_shaped needs eps > 0 and s >= 0, got eps={self.eps}, s={self.s}")
        self.dt = 0.1 * self.eps

    @property
    def x0(self) -> np.ndarray:
        """(z, z) with z the lowest steady state of B at this λ (x2 at its conditional mean)."""
        z = self.steady_states()[0]
        return np.array([z, z])

    def drift(self, x, t):
        """(λ + a x1 − x2³, −(x2 − x1)/ε), ``(walkers, 2)``."""
        return columns(self.lam + self.a * x[:, 0] - x[:, 1] ** 3, -(x[:, 1] - x[:, 0]) / self.eps)

    def diffusion(self, x, t):
        """(0, √(2 s²/ε)), diagonal noise, ``(2,)`` broadcast over walkers."""
        return torch.tensor([0.0, (2 * self.s**2 / self.eps) ** 0.5], dtype=x.dtype, device=x.device)

    # analytic facts -------------------------------------------------------------------------
    def fast_variance(self, dt: float | None = None, scheme: str | None = None) -> float:
        """Variance of x2 given x1: s², or with ``dt`` the invariant variance of ``scheme`` (default :attr:`scheme`)."""
        return ou_variance(1 / self.eps, (2 * self.s**2 / self.eps) ** 0.5, dt, scheme or self.scheme)

    def slope(self, dt: float | None = None, scheme: str | None = None) -> float:
        """c = a − 3v."""
        return self.a - 3 * self.fast_variance(dt, scheme)

    def averaged_drift(self, x1, dt: float | None = None, scheme: str | None = None, lam: float | None = None):
        """B(x1) = λ + c x1 − x1³ (``lam``: at another λ)."""
        x1 = np.asarray(x1, dtype=float)
        return (self.lam if lam is None else lam) + self.slope(dt, scheme) * x1 - x1**3

    def branch(self, x1, dt: float | None = None, scheme: str | None = None):
        """λ = x³ − c x, the parameter at which x is a steady state."""
        x1 = np.asarray(x1, dtype=float)
        return x1**3 - self.slope(dt, scheme) * x1

    def folds(self, dt: float | None = None, scheme: str | None = None) -> np.ndarray:
        """(x, λ) of the two folds, rows ordered by x."""
        x = np.sqrt(self.slope(dt, scheme) / 3) * np.array([-1.0, 1.0])
        return np.column_stack([x, self.branch(x, dt, scheme)])

    def steady_states(self, dt: float | None = None, scheme: str | None = None) -> np.ndarray:
        """Real roots of B at this λ (ascending)."""
        roots = np.roots([-1.0, 0.0, self.slope(dt, scheme), self.lam])
        return np.sort(roots[np.abs(roots.imag) < 1e-9].real)

    def exact_lift(self, dt: float | None = None, scheme: str | None = None) -> LinearGaussianLift:
        """x1 = z, x2 ~ N(z, v) with v = :meth:`fast_variance`."""
        return LinearGaussianLift(0.0, 1.0, self.fast_variance(dt, scheme))
