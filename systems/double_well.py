"""Overdamped Langevin dynamics in a tilted double well (the reverse-KL example of Schöberl, Zabaras &
Koutsourelakis 2019).

    U(x) = a/4 x1⁴ − b/2 x1² + c x1 + d/2 x2²,    dx = −∇U dt + √(2/β) dW

With (a, b, c, d) = (1, 6, 1, 1) and β = 1 the left well holds P(x1 < 0) = 0.9917 and
log Z = log ∫ exp(−βU) = 12.065; both are computed here by quadrature, not stored.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import integrate, optimize, sparse, special
from scipy.sparse import linalg as sparse_linalg

from eqfree.errors import InputError

from .base import System


class DoubleWell(System):
    """Overdamped Langevin dx = −∇U dt + √(2/β) dW in U = a/4 x1⁴ − b/2 x1² + c x1 + d/2 x2² (module doc);
    parameters ``a``, ``b``, ``c``, ``d`` and ``beta`` = β.
    """

    name = "double_well"
    dim = 2
    slow = ("x1",)
    defaults = {"a": 1.0, "b": 6.0, "c": 1.0, "d": 1.0, "beta": 1.0}
    default_dt = 1e-2
    summary = "overdamped Langevin in a tilted double well; P(x1<0) = 0.9917, log Z = 12.065"

    def __init__(self, **params):
        super().__init__(**params)
        if self.a <= 0 or self.d <= 0 or self.beta <= 0:
            raise InputError(f"double_well needs a > 0, d > 0 and beta > 0 for a normalizable law, got {self.params}")

    def potential(self, x):
        """U(x) for states ``(..., 2)`` (numpy or torch)."""
        x1, x2 = x[..., 0], x[..., 1]
        return self.a / 4 * x1**4 - self.b / 2 * x1**2 + self.c * x1 + self.d / 2 * x2**2

    def drift(self, x, t):
        """−∇U = (x1 (b − a x1²) − c, −d x2), ``(walkers, 2)``, in eight tensor operations and one
        temporary (the per-step cost of small ensembles is the number of operations, of large ones the memory)."""
        out = x * -self.d  # by a number: torch's broadcast of a (2,) factor is ~5x slower on large ensembles
        x1 = x[:, 0]
        out[:, 0] = (self.a * x1).mul_(x1).neg_().add_(self.b).mul_(x1).sub_(self.c)
        return out

    def diffusion(self, x, t):
        """√(2/β) on both coordinates, diagonal noise, ``(2,)`` broadcast over walkers."""
        return torch.full((2,), (2.0 / self.beta) ** 0.5, dtype=x.dtype, device=x.device)

    def minima(self) -> np.ndarray:
        """x1 of the local minima (real roots of U'(x1) with U'' > 0), ascending."""
        roots = np.roots([self.a, 0.0, -self.b, self.c])
        roots = np.sort(roots[np.abs(roots.imag) < 1e-9].real)
        return roots[3 * self.a * roots**2 - self.b > 0]

    @property
    def x0(self) -> np.ndarray:
        """The global minimum."""
        wells = self.minima()
        return np.array([wells[np.argmin(self.potential(np.column_stack([wells, 0 * wells])))], 0.0])

    # analytic facts -------------------------------------------------------------------------
    def _x1_weight(self, lower: float, upper: float) -> tuple[float, float]:
        """∫ exp(−β (U(x1, 0) − U_min)) dx1 over [lower, upper], and U_min (the shift keeps it in range)."""
        shift = self.potential(self.x0)
        integrand = lambda x1: np.exp(-self.beta * (self.potential(np.array([x1, 0.0])) - shift))
        value, _ = integrate.quad(integrand, lower, upper, epsabs=0, epsrel=1e-12)
        return value, shift

    def prob_left(self) -> float:
        """P(x1 < 0) under exp(−βU)."""
        left, _ = self._x1_weight(-np.inf, 0.0)
        right, _ = self._x1_weight(0.0, np.inf)
        return left / (left + right)

    def mean_square(self) -> float:
        """⟨x1²⟩ under exp(−βU), by quadrature."""
        weight, _ = self._x1_weight(-np.inf, np.inf)
        shift = self.potential(self.x0)
        integrand = lambda x1: x1**2 * np.exp(-self.beta * (self.potential(np.array([x1, 0.0])) - shift))
        return integrate.quad(integrand, -np.inf, np.inf, epsabs=0, epsrel=1e-12)[0] / weight

    def scheme_moments(self, dt: float, scheme: str | None = None, resolution: int = 24) -> dict[str, float]:
        """``{"mean_square": ⟨x1²⟩, "prob_left": P(x1 < 0)}`` under the invariant law of ``scheme`` (by default
        :attr:`scheme`; ``euler_maruyama`` or ``leimkuhler_matthews``) at step ``dt``, without sampling: the
        transfer operator's null vector (:meth:`transfer_moments`) at grid resolutions r and r/2, Richardson
        extrapolated (the grid's error is O(r⁻²)): (4 m_r − m_(r/2))/3. At r = 24 the Leimkuhler–Matthews
        errors at dt = 0.02, 0.04 agree with r = 40 within 3e-7."""
        fine = self.transfer_moments(dt, scheme, resolution)
        coarse = self.transfer_moments(dt, scheme, resolution // 2)
        return {key: (4 * fine[key] - coarse[key]) / 3 for key in fine}

    def transfer_moments(self, dt: float, scheme: str | None = None, resolution: int = 24) -> dict[str, float]:
        """``{"mean_square": ⟨x1²⟩, "prob_left": P(x1 < 0)}`` under the invariant law of ``scheme`` (by default
        :attr:`scheme`; ``euler_maruyama`` or ``leimkuhler_matthews``) at step ``dt``, without sampling.

        x1 is an autonomous chain (U is separable, the noise diagonal): Euler–Maruyama
        x' = x + F(x) dt + 2c ξ, and Leimkuhler–Matthews through u_n = x_n + F(x_n) dt + c ξ_n, the Markov chain
        u' = u + 2c ξ + F(u + c ξ) dt with x = u + c ξ′ (ξ′ fresh), c = σ√dt/2, σ = √(2/β). Its stationary
        density is the null vector of the transfer operator on a grid of spacing 2c/``resolution`` (ξ by
        120-point Gauss–Hermite quadrature, mass split linearly between grid points, which adds a variance
        ≈ spacing²/6 per step: an O(resolution⁻²) error, removed by :meth:`scheme_moments`).
        """
        scheme = scheme or self.scheme
        sigma = (2.0 / self.beta) ** 0.5
        c = sigma * dt**0.5 / 2
        force = lambda x1: -(self.a * x1**3 - self.b * x1 + self.c)
        if scheme == "euler_maruyama":
            step, spread = (lambda u, xi: u + force(u) * dt + 2 * c * xi), 0.0
        elif scheme == "leimkuhler_matthews":
            step, spread = (lambda u, xi: u + 2 * c * xi + force(u + c * xi) * dt), c
        else:
            raise InputError(f"the invariant law of scheme {scheme!r} is not computed here: "
                             "use 'euler_maruyama' or 'leimkuhler_matthews'")
        shift = self.potential(self.x0)
        excess = lambda x1: self.beta * (self.potential(np.array([x1, 0.0])) - shift) - 45.0
        wells = self.minima()
        low, high = optimize.brentq(excess, wells[0] - 50, wells[0]), optimize.brentq(excess, wells[-1], wells[-1] + 50)
        grid = np.arange(low, high, 2 * c / resolution)
        n, spacing = grid.size, grid[1] - grid[0]
        nodes, weights = np.polynomial.hermite_e.hermegauss(120)
        nodes, weights = nodes[weights > 1e-16 * weights.max()], weights[weights > 1e-16 * weights.max()]
        weights = weights / weights.sum()
        target = (step(grid[:, None], nodes[None, :]) - grid[0]) / spacing
        left = np.floor(target).astype(np.int64)
        inside = (left >= 0) & (left < n - 1)
        rows = np.broadcast_to(np.arange(n)[:, None], target.shape)[inside]
        fraction, left, mass = (target - left)[inside], left[inside], np.broadcast_to(weights, target.shape)[inside]
        transfer = sparse.csr_matrix((np.concatenate([mass * (1 - fraction), mass * fraction]),
                                      (np.concatenate([rows, rows]), np.concatenate([left, left + 1]))), shape=(n, n))
        balance = (transfer.T - sparse.identity(n)).tocsc()  # balance · density = 0, one equation redundant
        keep = np.arange(n) != n // 2  # fix density[n // 2] = 1 and drop its equation
        density = np.ones(n)
        density[keep] = sparse_linalg.spsolve(balance[keep][:, keep], -balance[keep][:, n // 2].toarray().ravel())
        density /= density.sum()
        if spread == 0.0:
            return {"mean_square": float(density @ grid**2), "prob_left": float(density[grid < 0].sum())}
        return {"mean_square": float(density @ (grid**2 + spread**2)),
                "prob_left": float(density @ special.ndtr(-grid / spread))}

    def log_partition(self) -> float:
        """log ∫∫ exp(−βU(x)) dx1 dx2."""
        z1, shift = self._x1_weight(-np.inf, np.inf)
        return float(np.log(z1) - self.beta * shift + 0.5 * np.log(2 * np.pi / (self.beta * self.d)))
