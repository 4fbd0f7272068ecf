"""The Metropolis-adjusted Langevin algorithm: exact equilibrium sampling of exp(−β(V + U)).

Each step proposes the Euler–Maruyama move of the dynamics and accepts it with the Metropolis–Hastings
probability (Roberts & Tweedie, "Exponential convergence of Langevin distributions and their discrete
approximations", Bernoulli 1996; Bou-Rabee & Vanden-Eijnden 2010 for its use as a time stepper):

    Y = X + F(X) Δt + g √Δt ξ,    F = f − ∇U,
    α = min(1, exp(−β[V + U](Y) + β[V + U](X)) q(X | Y) / q(Y | X)),   q(y | x) = N(y; x + F(x) Δt, g² Δt),

so the chain leaves exp(−β(V + U)) invariant exactly, at any Δt: no step bias in equilibrium averages
(umbrella windows, lifts), at the price of rejected moves (the acceptance rate is reported in the
trajectory's ``acceptance`` attribute). The SDE must declare its potential V and β
(:class:`~eqfree.evolve.sde.GradientSDE`) and have constant diagonal noise g > 0. The uniform of the
acceptance test is Φ(ξ′) of one more normal draw per walker and step, so the seeding guarantees of
:mod:`eqfree.evolve.noise` hold. A rejected walker stays where it is: along a path MALA is a
Metropolis chain, not a discretization with a weak order.
"""

from __future__ import annotations

import torch

from ..errors import InputError
from .ensemble import Fields, Scheme
from .noise import BlockNoise
from .sde import GradientSDE


class MALA(Scheme):
    """One MALA step per call (module doc)."""

    name = "mala"

    @staticmethod
    def draws(m: int) -> int:
        """m + 1: the m components of ξ and the normal ξ′ whose Φ(ξ′) is the acceptance test's uniform."""
        return m + 1

    def __init__(self, fields: Fields, x: torch.Tensor, t0: float, dt: float, noise: BlockNoise):
        sde = fields.sde
        if not isinstance(sde, GradientSDE):
            raise InputError("the mala scheme samples exp(-beta V): the SDE must declare potential(x) and beta "
                             "(a system such as double_well); otherwise use scheme='leimkuhler_matthews'")
        if not fields.diagonal:
            raise InputError("the mala scheme needs constant diagonal noise")
        super().__init__(fields, x, t0, dt, noise)
        self.g = torch.broadcast_to(sde.diffusion(x, t0), x.shape).clone()
        if not torch.all(self.g > 0):
            raise InputError("the mala scheme needs noise on every coordinate (diffusion > 0)")
        self.beta = float(sde.beta)
        self.force, self.energy = self.evaluate(x, t0)
        self.accepted = self.proposed = 0

    def evaluate(self, x: torch.Tensor, t: float) -> tuple[torch.Tensor, torch.Tensor]:
        """F(x) = f − ∇U and β(V + U)(x) per walker."""
        force, _ = self.fields(x, t)
        energy = self.fields.sde.potential(x)
        if self.fields.bias is not None:
            energy = energy + self.fields.bias(x)
        return torch.broadcast_to(force, x.shape), self.beta * energy

    def step(self, x: torch.Tensor, t: float) -> None:
        """Propose Y and accept it with probability α per walker (module doc), in place on ``x`` ``(walkers, dim)``."""
        dim = x.shape[1]
        draws = self.noise()
        xi, uniform = draws[:, :dim], draws[:, dim]
        spread = self.g * self.sqrt_dt
        proposal = x + self.force * self.dt + spread * xi
        force, energy = self.evaluate(proposal, t)
        backward = ((x - proposal - force * self.dt) / spread).square().sum(dim=1)
        log_ratio = self.energy - energy + 0.5 * (xi.square().sum(dim=1) - backward)
        accept = torch.special.log_ndtr(uniform) < log_ratio  # NaN (a proposal off to infinity) rejects
        x.copy_(torch.where(accept[:, None], proposal, x))
        self.force = torch.where(accept[:, None], force, self.force)
        self.energy = torch.where(accept, energy, self.energy)
        self.accepted += int(accept.sum())
        self.proposed += accept.numel()

    def attrs(self) -> dict:
        """``{"acceptance": accepted/proposed moves}`` over the run (empty before the first step)."""
        return {"acceptance": self.accepted / self.proposed} if self.proposed else {}
