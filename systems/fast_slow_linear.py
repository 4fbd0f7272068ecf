"""Linear fast–slow system (Crabtree, Bello-Rivas, Ferguson & Kevrekidis,
"GANs and closures: micro-macro consistency in multiscale modeling",
eq. 2.1).

    dx1 = a1 dt + a2 dB1,    dx2 = a3 (1 − x2) dt + a4 dB2

x1 is slow (drift a1, diffusion a2), x2 an Ornstein–Uhlenbeck process a3/a1 = 100 times faster,
independent of x1: the conditional law of x2 given x1 is N(1, a4²/(2 a3)) = N(1, 0.05).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import stats

from eqfree.seeding import as_seed_sequence

from .base import System, columns, euler_maruyama_ou_variance
from .gaussian import LinearGaussianLift


class FastSlowLinear(System):
    name = "fast_slow_linear"
    dim = 2
    slow = ("x1",)
    defaults = {"a1": 1e-3, "a2": 1e-3, "a3": 0.1, "a4": 0.1}
    default_dt = 1.0
    summary = "eq. (2.1): slow drifting x1, fast OU x2 with x2 | x1 ~ N(1, 0.05)"

    @property
    def x0(self) -> np.ndarray:
        return np.array([0.0, 1.0])

    def drift(self, x, t):
        return columns(self.a1, self.a3 * (1.0 - x[:, 1]))

    def diffusion(self, x, t):
        return torch.tensor([self.a2, self.a4], dtype=x.dtype, device=x.device)

    # analytic facts -------------------------------------------------------------------------
    def conditional_moments(self) -> tuple[float, float]:
        """Mean and variance of x2 given x1: (1, a4²/(2 a3))."""
        return 1.0, self.a4**2 / (2 * self.a3)

    def euler_maruyama_conditional_variance(self, dt: float) -> float:
        """Stationary variance of x2 under Euler–Maruyama with step dt: a4² / (a3 (2 − a3 dt))."""
        return euler_maruyama_ou_variance(self.a3, self.a4, dt)

    def reference_moments(self, coord, dt):
        if coord != "x2":
            return None
        mean, var = self.conditional_moments()
        return {"exact": (mean, var), "euler_maruyama": (mean, self.euler_maruyama_conditional_variance(dt))}

    def conditional_density(self, x2, x1=None) -> np.ndarray:
        """Exact density of x2 given x1 (the same for every x1)."""
        mean, var = self.conditional_moments()
        return stats.norm.pdf(x2, loc=mean, scale=np.sqrt(var))

    def slow_moments(self, x1_0: float, t: float) -> tuple[float, float]:
        """Mean and variance of x1(t) given x1(0): (x1_0 + a1 t, a2² t)."""
        return x1_0 + self.a1 * t, self.a2**2 * t

    def exact_lift(self, dt: float | None = None) -> LinearGaussianLift:
        """x1 = z, x2 ~ N(1, a4²/(2 a3)) (with ``dt``: Euler–Maruyama's invariant variance)."""
        mean, variance = self.conditional_moments()
        return LinearGaussianLift(mean, 0.0, variance if dt is None else self.euler_maruyama_conditional_variance(dt))

    def sample_conditional(self, z: float, n: int, seed) -> np.ndarray:
        """n exact draws from the conditional equilibrium at x1 = z, shape ``(n, 2)``."""
        mean, var = self.conditional_moments()
        rng = np.random.default_rng(as_seed_sequence(seed))
        return np.column_stack([np.full(n, float(z)), rng.normal(mean, np.sqrt(var), n)])
