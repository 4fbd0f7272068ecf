"""A coarse right-hand side f(t, z) for ``scipy.integrate.solve_ivp``.

f(t, z) is the slope of the tail fit of a burst started at z (:mod:`.derivative`): an estimate of
F(φ_t̄(z)), the coarse vector field a time t̄ (the anchor, mean tail time) downstream of z, which is
F(z) + O(t̄). The coarse dynamics is taken as autonomous; t is ignored.

Seeds: the burst at z has the key made of the bit pattern of z (each float64 as two uint32 words),
so f is a fixed function of z — the same z gives the same value in any call order, which is what
an adaptive stepper assumes when it re-evaluates a point. With walker bursts that function is
noisy: the stepper's error estimate mixes truncation error with sampling noise, so step-size control
is unreliable; bound the step (``max_step``) and loosen the tolerances, or use a deterministic burst.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from .bursts import ODEBursts, WalkerBursts


class CoarseRHS:
    """``f(t, z) -> dz/dt`` of shape ``(n_cv,)``; counts its calls and fine steps (per walker)."""

    def __init__(self, bursts: WalkerBursts | ODEBursts):
        self.bursts = bursts
        self.n_calls = 0
        self.fine_steps = 0

    def __call__(self, t: float, z) -> np.ndarray:
        z = np.asarray(z, dtype=float)
        if z.ndim != 1:
            raise InputError(
                f"CoarseRHS evaluates one state of shape (n_cv,), got shape {z.shape}; "
                "call solve_ivp with vectorized=False"
            )
        key = tuple(int(w) for w in np.ascontiguousarray(z).view(np.uint32))
        slope = self.bursts.derivative(z, key).slope
        self.n_calls += 1
        self.fine_steps += self.bursts.steps
        return slope
