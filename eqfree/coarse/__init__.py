"""Coarse integration on top of the coarse time-stepper: derivatives from bursts, projective
integration (forward Euler, PI-RK2, PI-RK4), a coarse right-hand side for ``solve_ivp``, and coarse
bifurcation analysis: Newton–Krylov fixed points, pseudo-arclength continuation, coarse eigenvalues."""

from .bursts import ODEBursts, WalkerBursts
from .continuation import continuation, natural_continuation
from .derivative import CoarseDerivative, coarse_derivative
from .newton import BurstDrift, FixedPoint, newton_krylov
from .projective import projective_integrate
from .rhs import CoarseRHS
from .stability import Eigenvalues, coarse_eigenvalues

__all__ = ["CoarseDerivative", "CoarseRHS", "ODEBursts", "WalkerBursts", "coarse_derivative", "projective_integrate",
           "BurstDrift", "FixedPoint", "newton_krylov", "continuation", "natural_continuation", "Eigenvalues",
           "coarse_eigenvalues"]
