"""Automatic relevance determination (ARD, MacKay 1994): a sparsity prior on decoder parameters.

    θ_j | τ_j ~ N(0, 1/τ_j),    τ_j ~ Gamma(a0, b0)  (shape a0, rate b0; a0 = b0 = 1e-5 by default)

MAP training by an inner EM loop:

- E-step: p(τ_j | θ_j) = Gamma(a0 + ½, b0 + θ_j²/2), so ⟨τ_j⟩ = (a0 + ½)/(b0 + θ_j²/2);
- M-step: the log-prior adds −⟨τ_j⟩ θ_j to ∂/∂θ_j of the objective, i.e. the penalty
  ½ Σ_j ⟨τ_j⟩ θ_j² is added to the loss.

A parameter is *switched off* when its prior standard deviation ⟨τ_j⟩^(−1/2) — about |θ_j| —
has fallen below a tolerance.
"""

from __future__ import annotations

import torch

from ...errors import InputError


def ard_precision(theta, a0: float = 1e-5, b0: float = 1e-5):
    """The E-step ⟨τ_j⟩ = (a0 + ½)/(b0 + θ_j²/2) (numpy or torch, elementwise)."""
    return (a0 + 0.5) / (b0 + theta**2 / 2)


class ARDPrior:
    """The ARD prior of a list of parameters: their precisions ⟨τ_j⟩, penalty and EM update."""

    def __init__(self, parameters, a0: float = 1e-5, b0: float = 1e-5):
        if not (a0 > 0 and b0 > 0):
            raise InputError(f"the Gamma hyperprior needs a0 > 0 and b0 > 0, got a0 = {a0!r}, b0 = {b0!r}")
        self.parameters = list(parameters)
        self.a0, self.b0 = float(a0), float(b0)
        self.precisions = [torch.zeros_like(p, requires_grad=False) for p in self.parameters]

    @torch.no_grad()
    def update(self) -> None:
        """E-step at the current parameters."""
        for tau, p in zip(self.precisions, self.parameters):
            tau.copy_(ard_precision(p, self.a0, self.b0))

    def penalty(self) -> torch.Tensor:
        """½ Σ_j ⟨τ_j⟩ θ_j² (the negative log-prior up to a constant, ⟨τ⟩ held fixed)."""
        return 0.5 * sum((tau * p**2).sum() for tau, p in zip(self.precisions, self.parameters))

    def switched_off(self, tolerance: float) -> float:
        """Fraction of parameters whose prior standard deviation ⟨τ_j⟩^(−1/2) is below ``tolerance``."""
        off = sum(int((tau > tolerance**-2).sum()) for tau in self.precisions)
        return off / sum(tau.numel() for tau in self.precisions)
