"""The Milstein scheme for diagonal multiplicative noise, strong order 1.

    X_{n+1,i} = X_{n,i} + [f_i − ∂_i U] Δt + g_i √Δt ξ_{n,i} + ½ g_i ∂g_i/∂x_i Δt (ξ_{n,i}² − 1)

(Milstein 1974; Kloeden & Platen, "Numerical Solution of Stochastic Differential Equations", 1992, §10.3),
for diagonal noise whose component g_i depends on x_i alone (then no Lévy areas are needed);
∂g_i/∂x_i is taken by forward-mode autodiff (the directional derivative of g along (1, …, 1), which is
the diagonal of its Jacobian under that condition). With additive noise it is Euler–Maruyama.
"""

from __future__ import annotations

import torch
from torch.func import jvp

from ..errors import InputError
from .ensemble import Fields, Scheme
from .noise import BlockNoise


class Milstein(Scheme):
    """One Milstein step per call (module doc)."""

    name = "milstein"

    def __init__(self, fields: Fields, x: torch.Tensor, t0: float, dt: float, noise: BlockNoise):
        if not fields.diagonal:
            raise InputError("the milstein scheme needs diagonal noise (g_i depending on x_i alone); "
                             "for general noise use scheme='euler_maruyama'")
        super().__init__(fields, x, t0, dt, noise)
        self.ones = torch.ones_like(x)

    def step(self, x: torch.Tensor, t: float) -> None:
        """One Milstein step of ``x`` ``(walkers, dim)`` in place (module doc)."""
        drift, _ = self.fields(x, t)
        g, dg = jvp(lambda y: torch.broadcast_to(self.fields.sde.diffusion(y, t), y.shape), (x,), (self.ones,))
        xi = self.noise()
        correction = (xi * xi - 1.0).mul_(g * dg)
        x.add_(drift, alpha=self.dt).add_(xi.mul_(g), alpha=self.sqrt_dt).add_(correction, alpha=0.5 * self.dt)
