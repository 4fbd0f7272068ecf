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

from .base import System, columns, euler_maruyama_ou_variance, ou_reference_moments, ou_variance
from .gaussian import LinearGaussianLift


class FastSlowLinear(System):
    """dx1 = a1 dt + a2 dB1, dx2 = a3 (1 − x2) dt + a4 dB2 (eq. 2.1 of Crabtree et al.; module doc); parameters
    ``a1`` … ``a4``; x2 | x1 ~ N(1, a4²/(2 a3)).
    """

    name = "fast_slow_linear"
    dim = 2
    slow = ("x1",)
    defaults = {"a1": 1e-3, "a2": 1e-3, "a3": 0.1, "a4": 0.1}
    default_dt = 1.0
    summary = "eq. (2.1): slow drifting x1, fast OU x2 with x2 | x1 ~ N(1, 0.05)"

    @property
    def x0(self) -> np.ndarray:
        """(0, 1): x1 = 0 with x2 at its conditional mean."""
        return np.array([0.0, 1.0])

    def drift(self, x, t):
        """(a1, a3 (1 − x2)), ``(walkers, 2)``."""
        return columns(self.a1, self.a3 * (1.0 - x[:, 1]))

    def diffusion(self, x, t):
        """(a2, a4), diagonal noise, ``(2,)`` broadcast over walkers."""
        return torch.tensor([self.a2, self.a4], dtype=x.dtype, device=x.device)

    # analytic facts -------------------------------------------------------------------------
    def conditional_moments(self) -> tuple[float, float]:
        """Mean and variance of x2 given x1: (1, a4²/(2 a3))."""
        return 1.0, self.a4**2 / (2 * self.a3)

    def euler_maruyama_conditional_variance(self, dt: float) -> float:
        """Stationary variance of x2 under Euler–Maruyama with step dt: a4² / (a3 (2 − a3 dt))."""
        return euler_maruyama_ou_variance(self.a3, self.a4, dt)

    def reference_moments(self, coord, dt):
        """Stationary (mean, variance) of the Ornstein–Uhlenbeck x2: exact (1, a4²/(2 a3)) and those of the
        schemes at step ``dt`` (:meth:`.base.System.reference_moments`); ``None`` for x1.
        """
        if coord != "x2":
            return None
        return ou_reference_moments(1.0, self.a3, self.a4, dt)

    def conditional_density(self, x2, x1=None) -> np.ndarray:
        """Exact density of x2 given x1 (the same for every x1)."""
        mean, var = self.conditional_moments()
        return stats.norm.pdf(x2, loc=mean, scale=np.sqrt(var))

    def slow_moments(self, x1_0: float, t: float) -> tuple[float, float]:
        """Mean and variance of x1(t) given x1(0): (x1_0 + a1 t, a2² t)."""
        return x1_0 + self.a1 * t, self.a2**2 * t

    def exact_lift(self, dt: float | None = None, scheme: str | None = None) -> LinearGaussianLift:
        """x1 = z, x2 ~ N(1, a4²/(2 a3)) (with ``dt``: the invariant variance of ``scheme``, by default
        :attr:`scheme`, whose Leimkuhler–Matthews chain has it exact)."""
        return LinearGaussianLift(1.0, 0.0, ou_variance(self.a3, self.a4, dt, scheme or self.scheme))

    def sample_conditional(self, z: float, n: int, seed) -> np.ndarray:
        """n exact draws from the conditional equilibrium at x1 = z, shape ``(n, 2)``."""
        mean, var = self.conditional_moments()
        rng = np.random.default_rng(as_seed_sequence(seed))
        return np.column_stack([np.full(n, float(z)), rng.normal(mean, np.sqrt(var), n)])
