"""Half-moons: eq. (2.1) seen through the map (4.1) and simulated directly in the new variables.

    y1 = x2 cos(x1 + x2 − 1),    y2 = x2 sin(x1 + x2 − 1)

The SDE in y comes from Itô's lemma (eq. D.2) applied by :func:`eqfree.ito_transform`; the printed
D.3 is not used. The state coordinates are named ``x1, x2`` (the paper's y1, y2). The radius
|y| equals the original fast x2, so it follows N(1, 0.05); the slow variable is not a coordinate
(``slow`` is empty): it is the original x1 = atan2(y2, y1) − |y| + 1 (mod 2π), to be learned.
"""

from __future__ import annotations

import numpy as np
import torch

from eqfree.evolve import ito_transform

from .base import System
from .fast_slow_linear import FastSlowLinear


def moons(x: torch.Tensor) -> torch.Tensor:
    """Map (4.1) from the original (x1, x2) to the half-moon plane (functional: torch.func can transform it)."""
    angle = x[..., 0] + x[..., 1] - 1.0
    return torch.stack((x[..., 1] * torch.cos(angle), x[..., 1] * torch.sin(angle)), dim=-1)


def moons_inverse(y: torch.Tensor) -> torch.Tensor:
    """A local inverse of (4.1): x2 = |y|, x1 = atan2(y2, y1) − |y| + 1 (branch in (−π, π])."""
    radius = torch.hypot(y[..., 0], y[..., 1])
    return torch.stack((torch.atan2(y[..., 1], y[..., 0]) - radius + 1.0, radius), dim=-1)


class HalfMoons(System):
    """Eq. (2.1) of Crabtree et al. through the map (4.1), simulated in y = moons(x) by Itô's lemma (module
    doc); parameters those of :class:`~eqfree.systems.fast_slow_linear.FastSlowLinear`; general noise.
    """

    name = "half_moons"
    dim = 2
    slow = ()
    noise = "general"
    scheme = "euler_maruyama"  # multiplicative general noise: Leimkuhler–Matthews needs additive noise
    defaults = dict(FastSlowLinear.defaults)
    default_dt = 5e-2
    summary = "eq. (2.1) through map (4.1), simulated in y by Itô's lemma; radius ~ N(1, 0.05)"

    def __init__(self, **params):
        super().__init__(**params)
        self.original = FastSlowLinear(**self.params)
        self._sde = ito_transform(self.original, moons, moons_inverse)

    @property
    def x0(self) -> np.ndarray:
        """The original system's x0 = (0, 1) through the map: (1, 0)."""
        return moons(torch.as_tensor(self.original.x0)).numpy()

    def drift_and_diffusion(self, x, t):
        """(drift, diffusion) of the transformed SDE, ``(walkers, 2)`` and ``(walkers, 2, 2)`` (eq. D.2)."""
        return self._sde.drift_and_diffusion(x, t)

    def drift(self, x, t):
        """Df μ + ½ Σ_l D²f[σ_l, σ_l] at x = f⁻¹(y) (eq. D.2), ``(walkers, 2)``."""
        return self._sde.drift(x, t)

    def diffusion(self, x, t):
        """Df σ at x = f⁻¹(y), general noise ``(walkers, 2, 2)``."""
        return self._sde.diffusion(x, t)

    # analytic facts -------------------------------------------------------------------------
    def radius_moments(self) -> tuple[float, float]:
        """Mean and variance of |y| at equilibrium: those of the original x2."""
        return self.original.conditional_moments()

    def to_original(self, y) -> np.ndarray:
        """Original (x1 mod 2π branch, x2) of half-moon states ``(..., 2)``."""
        return moons_inverse(torch.as_tensor(np.asarray(y, dtype=float))).numpy()

    def from_original(self, x) -> np.ndarray:
        """Half-moon states y ``(..., 2)`` of original states x ``(..., 2)`` by the map (4.1)."""
        return moons(torch.as_tensor(np.asarray(x, dtype=float))).numpy()
