"""A nonlinear fast–slow system with a closed-form averaged drift (for closure tests).

    dx1 = (λ x1 − x2³) dt,    dx2 = −ε⁻¹ (x2 − x1) dt + √(2 s²/ε) dW

In the fast limit x2 | x1 ~ N(x1, s²), so the averaging principle gives the closed ODE
dx1/dt = B(x1) = λ x1 − E[x2³ | x1] = λ x1 − x1³ − 3 s² x1: a pitchfork at λ = 3 s² (λ = ``lam``,
0 by default). Its fluctuations are O(ε): dx1 = B dt + √D dW with the homogenized diffusion
D(x1) = 2ε [9 s² (x1² + s²)² + 9 x1² s⁴ + 2 s⁶] (Green–Kubo, :meth:`homogenized_diffusion`).
The default step is ε/10.
"""

from __future__ import annotations

import numpy as np
import torch

from eqfree.errors import InputError

from .base import System, columns, ou_variance
from .gaussian import LinearGaussianLift


class AveragingCubic(System):
    """dx1 = (λ x1 − x2³) dt, dx2 = −ε⁻¹ (x2 − x1) dt + √(2 s²/ε) dW (module doc); parameters ``eps`` = ε,
    ``s``, ``lam`` = λ; averaged drift B(x1) = λ x1 − x1³ − 3 s² x1.
    """

    name = "averaging_cubic"
    dim = 2
    slow = ("x1",)
    defaults = {"eps": 1e-3, "s": 0.5, "lam": 0.0}
    default_dt = 1e-4
    summary = "slow dx1 = (lam x1 - x2^3) dt, fast OU x2 around x1; B(x1) = lam x1 - x1^3 - 3 s^2 x1"

    def __init__(self, **params):
        super().__init__(**params)
        if self.eps <= 0 or self.s < 0:
            raise InputError(f"averaging_cubic needs eps > 0 and s >= 0, got eps={self.eps}, s={self.s}")
        self.dt = 0.1 * self.eps

    @property
    def x0(self) -> np.ndarray:
        """(1, 1): x1 = 1 with x2 at its conditional mean."""
        return np.array([1.0, 1.0])

    def drift(self, x, t):
        """(λ x1 − x2³, −(x2 − x1)/ε), ``(walkers, 2)``."""
        return columns(self.lam * x[:, 0] - x[:, 1] ** 3, -(x[:, 1] - x[:, 0]) / self.eps)

    def diffusion(self, x, t):
        """(0, √(2 s²/ε)), diagonal noise, ``(2,)`` broadcast over walkers."""
        return torch.tensor([0.0, (2 * self.s**2 / self.eps) ** 0.5], dtype=x.dtype, device=x.device)

    # analytic facts -------------------------------------------------------------------------
    def fast_variance(self, dt: float | None = None, scheme: str | None = None) -> float:
        """Variance of x2 given x1: s² in the fast limit, or with ``dt`` the invariant variance of ``scheme``
        (by default :attr:`scheme`) for the OU x2 at frozen x1: s² for Leimkuhler–Matthews, 2 s² / (2 − dt/ε)
        for Euler–Maruyama."""
        return ou_variance(1 / self.eps, (2 * self.s**2 / self.eps) ** 0.5, dt, scheme or self.scheme)

    def averaged_drift(self, x1, dt: float | None = None, scheme: str | None = None):
        """B(x1) = λ x1 − E[x2³ | x1] = λ x1 − x1³ − 3 v x1 with v = :meth:`fast_variance` (with ``dt``:
        the scheme's averaged drift)."""
        x1 = np.asarray(x1, dtype=float)
        return self.lam * x1 - x1**3 - 3 * self.fast_variance(dt, scheme) * x1

    def homogenized_diffusion(self, x1):
        """D(x1) of the homogenized slow SDE dx1 = B dt + √D dW, by Green–Kubo on the OU fast variable:

            D = 2 ∫₀^∞ Cov(x2(0)³, x2(t)³ | x1) dt = 2ε [9 s² (x1² + s²)² + 9 x1² s⁴ + 2 s⁶].

        With y = x2 − x1 = s u, u ~ N(0, 1) an OU of rate 1/ε, x2³ − E[x2³] = 3 s (x1² + s²) He₁(u)
        + 3 x1 s² He₂(u) + s³ He₃(u), and E[He_n(u(0)) He_m(u(t))] = δ_nm n! e^{−n t/ε}, so mode n adds
        2 c_n² n! ε/n. D is O(ε): the slow variable's fluctuations, not seen by the averaged ODE (the
        leading term of the homogenization expansion, Pavliotis & Stuart, *Multiscale Methods*, ch. 11)."""
        x1 = np.asarray(x1, dtype=float)
        s2 = self.s**2
        return 2 * self.eps * (9 * s2 * (x1**2 + s2) ** 2 + 9 * x1**2 * s2**2 + 2 * s2**3)

    def exact_lift(self, dt: float | None = None, scheme: str | None = None) -> LinearGaussianLift:
        """x1 = z, x2 ~ N(z, v) with v = :meth:`fast_variance` (the fast-limit law, or the scheme's)."""
        return LinearGaussianLift(0.0, 1.0, self.fast_variance(dt, scheme))

    def conditional_moments(self, x1: float, dt: float | None = None,
                            scheme: str | None = None) -> tuple[float, float]:
        """Mean and variance of x2 given x1 in the fast limit (with ``dt``: under the scheme): (x1, v)."""
        return float(x1), self.fast_variance(dt, scheme)
