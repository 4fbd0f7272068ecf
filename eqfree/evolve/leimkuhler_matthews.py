"""The Leimkuhler–Matthews scheme: second order in the invariant measure for additive noise.

    X_{n+1} = X_n + [f(X_n) − ∇U(X_n)] Δt + G √Δt (ξ_n + ξ_{n+1}) / 2,    ξ_n ~ N(0, I_m)

(Leimkuhler & Matthews, "Rational construction of stochastic numerical methods for molecular sampling",
AMRX 2013; the high-friction limit of BAOAB). For overdamped Langevin dX = −∇V dt + √(2/β) dW the
invariant law of the chain is exp(−βV) up to O(Δt²) (Euler–Maruyama: O(Δt)); for an Ornstein–Uhlenbeck
process dX = −λX dt + σ dW it is exact, N(0, σ²/(2λ)), at every stable step λΔt < 2. It costs what
Euler–Maruyama costs: one force and one normal draw per step. Like Euler–Maruyama it is weak order 1
along a path.

The noise of the previous step is the scheme's state. A call (a burst, a window, a restart) draws a fresh
ξ_0 independent of the starting states, which keeps every later step right in law, and makes the first
step's noise half a step short: Var[X_n − X_0] = σ²(n − ½)Δt for Brownian motion (a lag of Δt/2 in
the diffusion, of the order of the path error anyway). G must not depend on X (additive noise); for
multiplicative noise use :mod:`~eqfree.evolve.milstein` or Euler–Maruyama.
"""

from __future__ import annotations

import torch

from .ensemble import Fields, Scheme
from .noise import BlockNoise


class LeimkuhlerMatthews(Scheme):
    """One Leimkuhler–Matthews step per call (module doc); ξ_0 is drawn when the scheme is built."""

    name = "leimkuhler_matthews"

    def __init__(self, fields: Fields, x: torch.Tensor, t0: float, dt: float, noise: BlockNoise):
        super().__init__(fields, x, t0, dt, noise)
        self.previous = noise()  # the stream leaves it untouched until the call after next
        self.both = torch.empty_like(self.previous)

    def step(self, x: torch.Tensor, t: float) -> None:
        """X ← X + [f − ∇U] Δt + G √Δt (ξ_n + ξ_{n+1})/2 in place, ``x`` ``(walkers, dim)``; keeps ξ_{n+1}."""
        drift, g = self.fields(x, t)
        new = self.noise()
        torch.add(new, self.previous, out=self.both)
        self.previous = new
        self.fields.add_kick_(x.add_(drift, alpha=self.dt), g, self.both, 0.5 * self.sqrt_dt)
