"""Change of variables for an Itô SDE by Itô's lemma (Crabtree, Bello-Rivas, Ferguson & Kevrekidis,
"GANs and closures: micro-macro consistency in multiscale modeling",
eq. D.2).

For dX = μ(X, t) dt + σ(X, t) dW (σ with columns σ_l, l = 1..m) and a smooth invertible map
Y = f(X), with x = f⁻¹(y),

    dY = [ Df(x) μ + ½ Σ_l D²f(x)[σ_l, σ_l] ] dt + Σ_l Df(x) σ_l dW_l,

where ½ Σ_l D²f[σ_l, σ_l] = ½ tr(σᵀ D²f σ) is the Itô correction. Every derivative is taken by
torch forward-mode autodiff (``torch.func.jvp``; nested for the second directional derivative),
matrix-free, on the whole ensemble and, by ``torch.func.vmap``, along every direction (μ, σ_1..σ_m) at
once. ``f`` and ``f_inv`` map batches ``(walkers, dim)`` row by row; only a local inverse is needed (any
branch on which Df and D²f agree).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.func import jvp, vmap

from ..errors import InputTypeError
from .sde import SDEProtocol, diffusion_matrix

Map = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class ItoTransformedSDE:
    """The SDE of Y = f(X) (general noise, the Brownian motions of the original)."""

    sde: SDEProtocol
    f: Map
    f_inv: Map
    noise: str = "general"

    @property
    def beta(self) -> float:
        """β of the original SDE (a change of variables leaves the energy scale alone)."""
        return self.sde.beta

    def _along(self, x: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Df(x) v and D²f(x)[v, v] for per-walker directions v ``(walkers, dim)``."""
        return jvp(lambda p: jvp(self.f, (p,), (v,))[1], (x,), (v,))

    def drift_and_diffusion(self, y: torch.Tensor, t: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(Df μ + ½ Σ_l D²f[σ_l, σ_l], Df σ) at x = f⁻¹(y): shapes ``(walkers, dim)`` and ``(walkers, dim, m)``."""
        x = self.f_inv(y)
        mu = torch.broadcast_to(self.sde.drift(x, t), x.shape)
        directions = torch.cat((mu[None], diffusion_matrix(self.sde, x, t).movedim(-1, 0)))  # (1 + m, walkers, dim)
        transported, curvatures = vmap(lambda v: self._along(x, v))(directions)
        return transported[0] + 0.5 * curvatures[1:].sum(0), transported[1:].movedim(0, -1)

    def drift(self, y: torch.Tensor, t: float) -> torch.Tensor:
        """Df(x) μ + ½ Σ_l D²f(x)[σ_l, σ_l] at x = f⁻¹(y), ``(walkers, dim)``."""
        return self.drift_and_diffusion(y, t)[0]

    def diffusion(self, y: torch.Tensor, t: float) -> torch.Tensor:
        """Df σ at x = f⁻¹(y), ``(walkers, dim, m)`` (general noise, m the original's Brownian motions)."""
        x = self.f_inv(y)
        columns = diffusion_matrix(self.sde, x, t).movedim(-1, 0)
        return vmap(lambda v: jvp(self.f, (x,), (v,))[1])(columns).movedim(0, -1)


def ito_transform(sde: SDEProtocol, f: Map, f_inv: Map) -> ItoTransformedSDE:
    """The SDE satisfied by Y = f(X) when X solves ``sde`` (eq. D.2)."""
    if not (callable(f) and callable(f_inv)):
        raise InputTypeError("f and f_inv must be callables mapping (walkers, dim) tensors to (walkers, dim)")
    return ItoTransformedSDE(sde, f, f_inv)
