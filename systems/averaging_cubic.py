"""A nonlinear fast–slow system with a closed-form averaged drift (for closure tests).

    dx1 = −x2³ dt,    dx2 = −ε⁻¹ (x2 − x1) dt + √(2 s²/ε) dW

In the fast limit x2 | x1 ~ N(x1, s²), so the averaging principle gives the closed ODE
dx1/dt = B(x1) = −E[x2³ | x1] = −x1³ − 3 s² x1. The default step is ε/10.
"""

from __future__ import annotations

import numpy as np
import torch

from eqfree.errors import InputError

from .base import System, columns, euler_maruyama_ou_variance
from .gaussian import LinearGaussianLift


class AveragingCubic(System):
    name = "averaging_cubic"
    dim = 2
    slow = ("x1",)
    defaults = {"eps": 1e-3, "s": 0.5}
    default_dt = 1e-4
    summary = "slow dx1 = -x2^3 dt, fast OU x2 around x1; B(x1) = -x1^3 - 3 s^2 x1"

    def __init__(self, **params):
        super().__init__(**params)
        if self.eps <= 0 or self.s < 0:
            raise InputError(f"averaging_cubic needs eps > 0 and s >= 0, got eps={self.eps}, s={self.s}")
        self.dt = 0.1 * self.eps

    @property
    def x0(self) -> np.ndarray:
        return np.array([1.0, 1.0])

    def drift(self, x, t):
        return columns(-x[:, 1] ** 3, -(x[:, 1] - x[:, 0]) / self.eps)

    def diffusion(self, x, t):
        return torch.tensor([0.0, (2 * self.s**2 / self.eps) ** 0.5], dtype=x.dtype, device=x.device)

    # analytic facts -------------------------------------------------------------------------
    def fast_variance(self, dt: float | None = None) -> float:
        """Variance of x2 given x1: s² in the fast limit, or 2 s² / (2 − dt/ε), the invariant variance of
        Euler–Maruyama with step ``dt`` for the OU x2 at frozen x1."""
        if dt is None:
            return self.s**2
        return euler_maruyama_ou_variance(1 / self.eps, (2 * self.s**2 / self.eps) ** 0.5, dt)

    def averaged_drift(self, x1, dt: float | None = None):
        """B(x1) = −E[x2³ | x1] = −x1³ − 3 v x1 with v = :meth:`fast_variance` (``dt``: EM's averaged drift)."""
        x1 = np.asarray(x1, dtype=float)
        return -(x1**3) - 3 * self.fast_variance(dt) * x1

    def exact_lift(self, dt: float | None = None) -> LinearGaussianLift:
        """x1 = z, x2 ~ N(z, v) with v = :meth:`fast_variance` (the fast-limit law)."""
        return LinearGaussianLift(0.0, 1.0, self.fast_variance(dt))

    def conditional_moments(self, x1: float, dt: float | None = None) -> tuple[float, float]:
        """Mean and variance of x2 given x1 in the fast limit (``dt``: under Euler–Maruyama): (x1, v)."""
        return float(x1), self.fast_variance(dt)
