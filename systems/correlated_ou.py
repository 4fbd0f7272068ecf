"""Two slow variables in a double well, driven by correlated fast Ornstein–Uhlenbeck noises (2-D closures).

With z = (x1, x2) slow and u = (x3, x4) fast,

    dz = B(z) dt + (2ε)^(−½) S u dt,        du = −ε⁻¹ u dt + √(2/ε) dW,
    B(z) = −½ D ∇U(z),    U(z) = h (z1² − 1)² + ½ k z2²,    D = S Sᵀ = [[s1², ρ s1 s2], [ρ s1 s2, s2²]],

S the Cholesky factor of D (so the fast noises η = (2ε)^(−½) S u are correlated with coefficient ρ; the
fast variables themselves are independent, which keeps the fine noise diagonal). u is autonomous, with the
stationary law N(0, I) and E[u(0) u(t)ᵀ] = e^{−t/ε} I.

**Averaged drift and homogenized diffusion** (ε → 0; Pavliotis & Stuart, *Multiscale Methods*, ch. 11):
E[η | z] = 0, so the averaged drift is B(z); the Green–Kubo integral of the noise's autocorrelation is

    D_hom = 2 ∫₀^∞ E[η(0) η(t)ᵀ] dt = 2 · S Sᵀ/(2ε) · ε = D,

constant, with off-diagonal ρ s1 s2 (:meth:`CorrelatedOU.averaged_drift`,
:meth:`CorrelatedOU.homogenized_diffusion`). The limit dz = B dt + √D dW has drift −½ D ∇U, so it is
reversible with the stationary law ∝ exp(−U(z)) whatever ρ (:meth:`CorrelatedOU.stationary_density`). At
ρ = 0, D is diagonal and z1 is autonomous: dz1 = −½ s1² U′(z1) dt + s1 dW1, so first-passage times and
committors between regions bounded in z1 only are those of this 1-D SDE.

**Finite ε** (colored noise of correlation time ε; Hänggi & Jung, *Adv. Chem. Phys.* 89, 1995): the slow
process is, to first order, the Itô SDE with drift B + O(ε²) and diffusion

    D_ε(z) = D + (ε/2) (J D + D Jᵀ) + O(ε²),    J = ∇B = −½ D ∇²U

(:meth:`CorrelatedOU.diffusion_bias`; for a linear B this is exact to first order: the stationary cross
covariance E[z ηᵀ] = ½ (I − εJ)⁻¹ D), a relative bias of order ε|J| (|J| = 4 h s1² at the wells' bottoms: 6 % at
the defaults). Bursts started from :meth:`CorrelatedOU.exact_lift` (u ~ N(0, I), independent of z: the
fast-limit conditional law, and u's exact marginal at any ε) also see the lag of the slow spread behind the
Markov limit's, Var(∫₀ᵗ η) = D [t − ε(1 − e^{−t/ε})], which offsets their drift by
−½ ε ∇²B : D (:meth:`CorrelatedOU.drift_bias`).

First passages of the fine system across a target's edge are delayed further: x1 is driven by noise of
correlation time ε, not white on the scale √(D ε) of the edge, so it crosses as if the edge were a distance
ℓ further, of order √(D₁₁ ε) (the Milne extrapolation length of colored noise, Doering, Hagan & Levermore,
*Phys. Rev. Lett.* 59, 2129, 1987; measured here, at ε = 0.01 and 0.0025: ℓ ≈ 1.4–1.9 √(D₁₁ ε)), which no
Markovian closure represents: the bound ℓ ≤ 2 √(D₁₁ ε) is what the tests allow, T′(edge) ℓ in the MFPT. At the
defaults, from (−1, 0) to x1 ≥ 0.5, the fine system's MFPT is 8.28 ± 0.25 against 7.55 from B and D.

The default step is ε/5: the Leimkuhler–Matthews chain holds u at its exact law and ∫u dt at its exact
long-run variance 2εt (the chain's spectral density at frequency 0 is 2ε/dt), so D is not biased by dt.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import integrate

from eqfree.errors import InputError

from .base import System, ou_variance
from .two_slow import GaussianConditionalLift


class CorrelatedOU(System):
    """Slow z = (x1, x2) in U = h (z1² − 1)² + ½ k z2² driven by fast OU noises (x3, x4) correlated through
    ``rho`` = ρ (module doc); parameters ``eps`` = ε, ``rho``, ``s1``, ``s2`` (D = [[s1², ρ s1 s2], [ρ s1 s2,
    s2²]]), ``h``, ``k``. Averaged drift −½ D ∇U, homogenized diffusion D, stationary law ∝ exp(−U).
    """

    name = "correlated_ou"
    dim = 4
    slow = ("x1", "x2")
    defaults = {"eps": 1e-2, "rho": 0.6, "s1": 1.0, "s2": 1.0, "h": 1.5, "k": 1.0}
    default_dt = 2e-3
    summary = "slow (x1, x2) in a double well driven by correlated fast OU noises; 2-D closed-form B and D"

    def __init__(self, **params):
        super().__init__(**params)
        if not (self.eps > 0 and self.s1 > 0 and self.s2 > 0 and -1 < self.rho < 1 and self.h >= 0
                and self.k >= 0):
            raise InputError(f"correlated_ou needs eps > 0, s1 > 0, s2 > 0, -1 < rho < 1, h >= 0 and k >= 0, "
                             f"got {self.params}")
        self.dt = 0.2 * self.eps
        off = self.rho * self.s1 * self.s2
        self.tensor = np.array([[self.s1**2, off], [off, self.s2**2]])
        self.factor = np.linalg.cholesky(self.tensor)
        (s11, _), (s21, s22) = self.factor
        scale = (2 * self.eps) ** -0.5
        self.linear = np.array([[0.0, -0.5 * off * self.k, scale * s11, 0.0],
                                [0.0, -0.5 * self.s2**2 * self.k, scale * s21, scale * s22],
                                [0.0, 0.0, -1 / self.eps, 0.0],
                                [0.0, 0.0, 0.0, -1 / self.eps]])
        self.cubic = np.array([-2 * self.h * self.s1**2, -2 * self.h * off, 0.0, 0.0])  # −½ D ∇U's 4h z1(z1² − 1)

    @property
    def x0(self) -> np.ndarray:
        """The left well's bottom (−1, 0), the fast variables at their mean."""
        return np.array([-1.0, 0.0, 0.0, 0.0])

    def drift(self, x, t):
        """(B(z) + (2ε)^(−½) S u, −u/ε), ``(walkers, 4)``: x Lᵀ (its linear part) plus z1 (z1² − 1) v (the double
        well's cubic force), in six tensor operations (the per-step cost of small ensembles is their number)."""
        z1 = x[:, 0]
        return torch.addr(x @ x.new_tensor(self.linear).T, z1 * (z1 * z1 - 1), x.new_tensor(self.cubic))

    def diffusion(self, x, t):
        """(0, 0, √(2/ε), √(2/ε)), diagonal noise, ``(4,)`` broadcast over walkers."""
        fast = (2 / self.eps) ** 0.5
        return torch.tensor([0.0, 0.0, fast, fast], dtype=x.dtype, device=x.device)

    # analytic facts -------------------------------------------------------------------------
    def potential(self, z) -> np.ndarray:
        """U(z) = h (z1² − 1)² + ½ k z2² for ``z`` ``(..., 2)``."""
        z = np.asarray(z, dtype=float)
        return self.h * (z[..., 0] ** 2 - 1) ** 2 + 0.5 * self.k * z[..., 1] ** 2

    def averaged_drift(self, z) -> np.ndarray:
        """B(z) = −½ D ∇U(z), ``(..., 2)``."""
        z = np.asarray(z, dtype=float)
        gradient = np.stack([4 * self.h * z[..., 0] * (z[..., 0] ** 2 - 1), self.k * z[..., 1]], axis=-1)
        return -0.5 * gradient @ self.tensor.T

    def homogenized_diffusion(self, z) -> np.ndarray:
        """D = 2 ∫₀^∞ E[η(0) η(t)ᵀ] dt = [[s1², ρ s1 s2], [ρ s1 s2, s2²]] (module doc), ``(..., 2, 2)``."""
        z = np.asarray(z, dtype=float)
        return np.broadcast_to(self.tensor, (*z.shape[:-1], 2, 2)).copy()

    def drift_jacobian(self, z) -> np.ndarray:
        """J = ∇B = −½ D ∇²U, ``(..., 2, 2)`` (J[..., i, j] = ∂B_i/∂z_j)."""
        z = np.asarray(z, dtype=float)
        hessian = np.zeros((*z.shape[:-1], 2, 2))
        hessian[..., 0, 0] = self.h * (12 * z[..., 0] ** 2 - 4)
        hessian[..., 1, 1] = self.k
        return -0.5 * self.homogenized_diffusion(z) @ hessian

    def diffusion_bias(self, z) -> np.ndarray:
        """D_ε − D = (ε/2)(J D + D Jᵀ) + O(ε²) at finite ε (module doc), ``(..., 2, 2)``."""
        j, d = self.drift_jacobian(z), self.homogenized_diffusion(z)
        product = j @ d
        return 0.5 * self.eps * (product + np.swapaxes(product, -1, -2))

    def drift_bias(self, z) -> np.ndarray:
        """The drift offset −½ ε ∇²B : D of bursts from :meth:`exact_lift` (module doc), ``(..., 2)``: only
        ∂³U/∂z1³ = 24 h z1 is non-zero, so (∇²B : D)_i = −12 h z1 D_i1 D_11."""
        z = np.asarray(z, dtype=float)
        d = self.tensor
        return 6 * self.eps * self.h * z[..., 0, None] * d[:, 0] * d[0, 0]

    def stationary_density(self, z) -> np.ndarray:
        """exp(−U(z))/Z of the homogenized SDE (module doc), Z = Z1 √(2π/k) with Z1 = ∫ e^{−h(z1²−1)²} dz1
        by quadrature; needs h > 0 and k > 0."""
        if not (self.h > 0 and self.k > 0):
            raise InputError("the stationary law needs h > 0 and k > 0")
        z1, _ = integrate.quad(lambda x: np.exp(-self.h * (x**2 - 1) ** 2), -np.inf, np.inf, epsabs=0, epsrel=1e-12)
        return np.exp(-self.potential(z)) / (z1 * np.sqrt(2 * np.pi / self.k))

    def exact_lift(self, dt: float | None = None, scheme: str | None = None) -> GaussianConditionalLift:
        """x1, x2 = z; x3, x4 ~ N(0, v) independent of z, v = 1 (the fast-limit law, and u's exact marginal),
        or with ``dt`` the invariant variance of ``scheme`` (by default :attr:`scheme`; 1 for
        Leimkuhler–Matthews)."""
        v = ou_variance(1 / self.eps, (2 / self.eps) ** 0.5, dt, scheme or self.scheme)
        return GaussianConditionalLift(np.diag([1.0, 1.0, v, v]), (0, 1))
