"""Two slow variables and a fast one: a Langevin oscillator (position x1, velocity x2) and x3 following x1.

    dx1 = x2 dt,    dx2 = −(x1 + γ x2) dt + √(2γ) dW2,    dx3 = −ε⁻¹ (x3 − x1) dt + √(2 s²/ε) dW3

that is dx = −A x dt + Σ^½ dW. The oscillator (unit mass, frequency and kT) has the stationary law
N(0, I) in (x1, x2); both vary on the period 2π, so a CV that keeps x1 and leaves out x2 forgets
where x1 is heading, and is not Markovian at any τ short against 1/γ; (x1, x2) is.
Everything is Gaussian: the stationary covariance C solves A C + C Aᵀ = Σ (continuous Lyapunov), or
C = M C Mᵀ + Σ dt with M = I − A dt for Euler–Maruyama at step dt (discrete Lyapunov); the law of the
other coordinates given the CV coordinates is the Gaussian conditional of C (:meth:`TwoSlow.exact_lift`),
and x(t) | x(0) ~ N(e^{−At} x(0), C − e^{−At} C e^{−Aᵀt}).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import linalg

from eqfree.errors import InputError
from eqfree.seeding import SeedLike, as_seed_sequence

from .base import System, columns


@dataclass(frozen=True)
class GaussianConditionalLift:
    """The :class:`~eqfree.Lift` of a Gaussian N(0, C) on the coordinates ``given`` = z: the others drawn from
    N(C_og C_gg⁻¹ z, C_oo − C_og C_gg⁻¹ C_go)."""

    covariance: np.ndarray
    given: tuple[int, ...]
    valid_range: tuple[float, float] | None = None

    def __call__(self, z, n: int, *, seed: SeedLike) -> np.ndarray:
        z = np.asarray(z, dtype=float).reshape(-1)
        if z.shape != (len(self.given),):
            raise InputError(f"this lift takes z of {len(self.given)} value(s), got shape {z.shape}")
        dim = len(self.covariance)
        given, other = list(self.given), [i for i in range(dim) if i not in self.given]
        c = self.covariance
        gain = linalg.solve(c[np.ix_(given, given)], c[np.ix_(given, other)], assume_a="pos").T
        covariance = c[np.ix_(other, other)] - gain @ c[np.ix_(given, other)]
        rng = np.random.default_rng(as_seed_sequence(seed))
        x = np.empty((n, dim))
        x[:, given] = z
        x[:, other] = rng.multivariate_normal(gain @ z, covariance, size=n, method="cholesky")
        return x


class TwoSlow(System):
    """A Langevin oscillator (x1, x2) of friction γ = ``gamma`` and a fast x3 relaxing to x1 at rate 1/ε with
    spread ``s`` (module doc): dx = −A x dt + Σ^½ dW, Gaussian, with (x1, x2) the Markovian slow pair.
    """

    name = "two_slow"
    dim = 3
    slow = ("x1", "x2")
    defaults = {"gamma": 0.5, "eps": 1e-2, "s": 0.5}
    default_dt = 1e-3
    #: Euler–Maruyama, whose invariant law at step dt (a discrete Lyapunov equation) the exact lift draws from
    scheme = "euler_maruyama"
    summary = "Langevin oscillator (x1, x2) and a fast x3 around x1; x1 alone is not Markovian"

    def __init__(self, **params):
        super().__init__(**params)
        if not (self.gamma > 0 and self.eps > 0 and self.s > 0):
            raise InputError(f"two_slow needs gamma > 0, eps > 0 and s > 0, got {self.params}")
        self.dt = 0.1 * self.eps

    @property
    def x0(self) -> np.ndarray:
        """The origin, the stationary mean."""
        return np.zeros(3)

    def drift(self, x, t):
        """−A x."""
        x1, x2, x3 = x[:, 0], x[:, 1], x[:, 2]
        return columns(x2, -(x1 + self.gamma * x2), -(x3 - x1) / self.eps)

    def diffusion(self, x, t):
        """Diagonal noise (0, √(2γ), √(2 s²/ε))."""
        return torch.tensor([0.0, (2 * self.gamma) ** 0.5, (2 * self.s**2 / self.eps) ** 0.5], dtype=x.dtype,
                            device=x.device)

    # analytic facts -------------------------------------------------------------------------
    @property
    def rate_matrix(self) -> np.ndarray:
        """A in dx = −A x dt + Σ^½ dW."""
        return np.array([[0.0, -1.0, 0.0], [1.0, self.gamma, 0.0], [-1 / self.eps, 0.0, 1 / self.eps]])

    @property
    def noise_covariance(self) -> np.ndarray:
        """Σ = diag(0, 2γ, 2 s²/ε)."""
        return np.diag([0.0, 2 * self.gamma, 2 * self.s**2 / self.eps])

    def stationary_covariance(self, dt: float | None = None) -> np.ndarray:
        """C: of the SDE, or (``dt``) of its Euler–Maruyama chain (module doc); the mean is 0."""
        a, sigma = self.rate_matrix, self.noise_covariance
        if dt is None:
            return linalg.solve_continuous_lyapunov(-a, -sigma)
        return linalg.solve_discrete_lyapunov(np.eye(3) - a * dt, sigma * dt)

    def transition(self, x0, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Mean ``(..., 3)`` and covariance ``(3, 3)`` of x(t) given x(0) = ``x0`` (the SDE)."""
        propagator = linalg.expm(-self.rate_matrix * t)
        c = self.stationary_covariance()
        return np.asarray(x0, dtype=float) @ propagator.T, c - propagator @ c @ propagator.T

    def exact_lift(self, dt: float | None = None, scheme: str | None = None,
                   cv: tuple[str, ...] = ("x1",)) -> GaussianConditionalLift:
        """The stationary law of the other coordinates given the ``cv`` coordinates (``dt``: under
        Euler–Maruyama with that step, the only ``scheme`` whose invariant law is known here)."""
        if dt is not None and (scheme or self.scheme) != "euler_maruyama":
            raise InputError(f"two_slow knows the invariant law of euler_maruyama only, not of {scheme!r}")
        unknown = sorted(set(cv) - set(self.coords))
        if unknown or not cv:
            raise InputError(f"cv must name coordinates of {self.coords}, got {cv}")
        return GaussianConditionalLift(self.stationary_covariance(dt), tuple(self.coords.index(c) for c in cv))
