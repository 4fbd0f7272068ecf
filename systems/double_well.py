"""Overdamped Langevin dynamics in a tilted double well (the reverse-KL example of Schöberl, Zabaras &
Koutsourelakis 2019).

    U(x) = a/4 x1⁴ − b/2 x1² + c x1 + d/2 x2²,    dx = −∇U dt + √(2/β) dW

With (a, b, c, d) = (1, 6, 1, 1) and β = 1 the left well holds P(x1 < 0) = 0.9917 and
log Z = log ∫ exp(−βU) = 12.065; both are computed here by quadrature, not stored.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import integrate

from eqfree.errors import InputError

from .base import System, columns


class DoubleWell(System):
    name = "double_well"
    dim = 2
    slow = ("x1",)
    defaults = {"a": 1.0, "b": 6.0, "c": 1.0, "d": 1.0, "beta": 1.0}
    default_dt = 1e-2
    summary = "overdamped Langevin in a tilted double well; P(x1<0) = 0.9917, log Z = 12.065"

    def __init__(self, **params):
        super().__init__(**params)
        if self.a <= 0 or self.d <= 0 or self.beta <= 0:
            raise InputError(f"double_well needs a > 0, d > 0 and beta > 0 for a normalizable law, got {self.params}")

    def potential(self, x):
        """U(x) for states ``(..., 2)`` (numpy or torch)."""
        x1, x2 = x[..., 0], x[..., 1]
        return self.a / 4 * x1**4 - self.b / 2 * x1**2 + self.c * x1 + self.d / 2 * x2**2

    def drift(self, x, t):
        x1, x2 = x[:, 0], x[:, 1]
        return columns(-(self.a * x1**3 - self.b * x1 + self.c), -self.d * x2)

    def diffusion(self, x, t):
        return torch.full((2,), (2.0 / self.beta) ** 0.5, dtype=x.dtype, device=x.device)

    def minima(self) -> np.ndarray:
        """x1 of the local minima (real roots of U'(x1) with U'' > 0), ascending."""
        roots = np.roots([self.a, 0.0, -self.b, self.c])
        roots = np.sort(roots[np.abs(roots.imag) < 1e-9].real)
        return roots[3 * self.a * roots**2 - self.b > 0]

    @property
    def x0(self) -> np.ndarray:
        """The global minimum."""
        wells = self.minima()
        return np.array([wells[np.argmin(self.potential(np.column_stack([wells, 0 * wells])))], 0.0])

    # analytic facts -------------------------------------------------------------------------
    def _x1_weight(self, lower: float, upper: float) -> tuple[float, float]:
        """∫ exp(−β (U(x1, 0) − U_min)) dx1 over [lower, upper], and U_min (the shift keeps it in range)."""
        shift = self.potential(self.x0)
        integrand = lambda x1: np.exp(-self.beta * (self.potential(np.array([x1, 0.0])) - shift))
        value, _ = integrate.quad(integrand, lower, upper, epsabs=0, epsrel=1e-12)
        return value, shift

    def prob_left(self) -> float:
        """P(x1 < 0) under exp(−βU)."""
        left, _ = self._x1_weight(-np.inf, 0.0)
        right, _ = self._x1_weight(0.0, np.inf)
        return left / (left + right)

    def log_partition(self) -> float:
        """log ∫∫ exp(−βU(x)) dx1 dx2."""
        z1, shift = self._x1_weight(-np.inf, np.inf)
        return float(np.log(z1) - self.beta * shift + 0.5 * np.log(2 * np.pi / (self.beta * self.d)))
