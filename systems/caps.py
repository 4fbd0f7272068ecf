"""Spherical caps (Crabtree, Bello-Rivas, Ferguson & Kevrekidis,
"GANs and closures: micro-macro consistency in multiscale modeling",
eqs. 6.1–6.2), with restoring terms.

The printed (6.1) has constant drifts, which leave x2, x3 without an equilibrium, while the text
speaks of a two-dimensional fast equilibrium measure. We read a2, a4 as relaxation rates:

    dx1 = a1 dt,    dx2 = −a2 x2 dt + a3 dB2,    dx3 = −a4 x3 dt + a5 dB3

with (a1, a2, a4) = (1, 10, 100) and a3 = a5 = √0.02, so that given x1 the fast pair is
N(0, a3²/(2 a2)) × N(0, a5²/(2 a4)), independent. Data are shown through (6.2):

    y1 = x1 + x2² + x3²,    y2 = x2² + x3²,    y3 = x3

(``observe``), caps whose apex moves along y1 with the slow x1.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .base import System, columns, ou_reference_moments


class Caps(System):
    """Spherical caps (module doc): x1 drifting at rate a1, x2 and x3 Ornstein–Uhlenbeck of rates a2, a4 and
    noise a3, a5; observed through y = (x1 + x2² + x3², x2² + x3², x3) (eq. 6.2).
    """

    name = "caps"
    dim = 3
    slow = ("x1",)
    observed = ("y1", "y2", "y3")
    defaults = {"a1": 1.0, "a2": 10.0, "a3": math.sqrt(0.02), "a4": 100.0, "a5": math.sqrt(0.02)}
    default_dt = 1e-3
    summary = "eqs. (6.1)-(6.2) with restoring fast terms: 2-D fast measure on caps along x1"

    @property
    def x0(self) -> np.ndarray:
        """The origin (0, 0, 0): x1 = 0 with the fast pair at its conditional mean."""
        return np.zeros(3)

    def drift(self, x, t):
        """(a1, −a2 x2, −a4 x3), ``(walkers, 3)``."""
        return columns(self.a1, -self.a2 * x[:, 1], -self.a4 * x[:, 2])

    def diffusion(self, x, t):
        """(0, a3, a5), diagonal noise, ``(3,)`` broadcast over walkers."""
        return torch.tensor([0.0, self.a3, self.a5], dtype=x.dtype, device=x.device)

    def observe(self, x) -> np.ndarray:
        """Map (6.2) from states ``(..., 3)`` to the cap coordinates ``(..., 3)``."""
        x = np.asarray(x, dtype=float)
        r2 = x[..., 1] ** 2 + x[..., 2] ** 2
        return np.stack([x[..., 0] + r2, r2, x[..., 2]], axis=-1)

    # analytic facts -------------------------------------------------------------------------
    def conditional_variances(self) -> tuple[float, float]:
        """Variances of x2 and x3 given x1 (means are 0): a3²/(2 a2), a5²/(2 a4)."""
        return self.a3**2 / (2 * self.a2), self.a5**2 / (2 * self.a4)

    def reference_moments(self, coord, dt):
        """x2, x3 are Ornstein–Uhlenbeck processes, independent of x1."""
        if coord not in ("x2", "x3"):
            return None
        rate, sigma = (self.a2, self.a3) if coord == "x2" else (self.a4, self.a5)
        return ou_reference_moments(0.0, rate, sigma, dt)
