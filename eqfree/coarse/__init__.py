"""Coarse integration on top of the coarse time-stepper: derivatives from bursts, projective
integration (forward Euler, PI-RK2, PI-RK4) and a coarse right-hand side for ``solve_ivp``."""

from .bursts import ODEBursts, WalkerBursts
from .derivative import CoarseDerivative, coarse_derivative
from .projective import projective_integrate
from .rhs import CoarseRHS

__all__ = ["CoarseDerivative", "CoarseRHS", "ODEBursts", "WalkerBursts", "coarse_derivative", "projective_integrate"]
