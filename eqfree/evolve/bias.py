"""The harmonic umbrella bias on a collective variable (Crabtree, Bello-Rivas, Ferguson & Kevrekidis,
"GANs and closures: micro-macro consistency in multiscale modeling", eqs. 2.2–2.3):

    U_z(x) = κ/2 d(ξ(x), z)²,    −∇U_z(x) = −κ d(ξ(x), z) ∇ξ(x)

with d(a, b) = a − b, or, for a periodic CV of period P (an angle), the wrapped difference
d(a, b) = a − b − P·round((a − b)/P) ∈ [−P/2, P/2): the force does not jump where the angle
crosses ±P/2. An evolver adds it with ``evolve.biased(bias)``. Near the centre its Hessian is
κ ∇ξ ∇ξᵀ: the restraint's stiffness along ∇ξ is κ|∇ξ|², which bounds the stable step of an explicit
integrator (κ|∇ξ|² Δt < 2 at unit mobility).
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import InputError
from ..periodic import wrapped_difference


class HarmonicBias:
    """U(x) = κ/2 d(ξ(x), z)² per walker: ``cv`` a :class:`~eqfree.restrict.CollectiveVariable` (a
    differentiable ξ with a ``period``), ``kappa`` κ > 0 and ``center`` one z or one per walker
    ``(walkers,)``."""

    def __init__(self, cv, kappa: float, center: float | np.ndarray | torch.Tensor):
        self.cv, self.kappa, self.center = cv, float(kappa), center

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        center = torch.as_tensor(self.center, device=x.device) if not np.isscalar(self.center) else self.center
        return 0.5 * self.kappa * wrapped_difference(self.cv(x), center, self.cv.period) ** 2

    def __repr__(self) -> str:
        return f"HarmonicBias({self.cv!r}, kappa={self.kappa:g})"

    def centers(self, n_walkers: int) -> np.ndarray:
        """The centre of each of ``n_walkers`` walkers, ``(n_walkers,)``."""
        center = self.center.detach().cpu().numpy() if torch.is_tensor(self.center) else self.center
        return np.broadcast_to(np.asarray(center, dtype=float), (n_walkers,))

    def stiffness(self, x: torch.Tensor) -> torch.Tensor:
        """κ|∇ξ(x)|² per walker ``(walkers,)``: the curvature of U along ∇ξ at the centre."""
        with torch.enable_grad():
            xg = x.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(self.cv(xg).sum(), xg)
        return self.kappa * grad.square().sum(dim=-1)


class Restraints:
    """U(x) = Σ_i κ_i/2 d(ξ_i(x), z_i)²: one :class:`HarmonicBias` per CV, summed — a window on several CVs
    (one restraint is the one-CV window). Its Hessian at the centre, Σ_i κ_i ∇ξ_i ∇ξ_iᵀ, has the stiffness
    κ_i|∇ξ_i|² along each ∇ξ_i when the gradients are orthogonal (coordinates, φ and ψ of distinct atoms);
    an evolver checks each restraint's (:meth:`HarmonicBias.stiffness`)."""

    def __init__(self, biases):
        self.biases = tuple(biases)
        if not self.biases or not all(isinstance(bias, HarmonicBias) for bias in self.biases):
            raise InputError(f"Restraints are one or more HarmonicBias, got {biases!r}")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return sum(bias(x) for bias in self.biases)

    def __repr__(self) -> str:
        return f"Restraints({', '.join(map(repr, self.biases))})"


def restraint_terms(bias) -> tuple:
    """The terms of a bias: a :class:`Restraints`' restraints, or the bias itself; none for ``None``."""
    return () if bias is None else bias.biases if isinstance(bias, Restraints) else (bias,)
